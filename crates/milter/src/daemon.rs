//! The daemon: configuration, logging, metrics, the server, and the signals.
//!
//! * `SIGHUP` reads the configuration file again (with the same command-line settings
//!   over it). A file that does not parse or validate is refused: the running
//!   configuration stays and the log says why. A good one applies to connections opened
//!   from then on; open connections finish with the one they started with. Listening
//!   addresses, `[server]` (its `workers` included: the runtime is built once, see
//!   [`runtime`]), `[log]` and `[metrics]` change only on restart.
//! * `SIGTERM` and `SIGINT` stop accepting connections, let the messages in progress
//!   finish (within `server.shutdown_grace`), write the counts of observations (retried
//!   within `server.shutdown_grace` again), and return; a second one closes every
//!   connection at once.
//! * With `db` set, every verified message is counted ([`crate::counter`]) and the
//!   counts are written every `counting.flush_interval`; `db` and `[counting]` change
//!   only on restart.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use dmarc_proto::Lookup;
use dmarc_receiver::Randomness;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{ConfigError, DnsSettings, MilterConfig, Override, Settings};
use crate::counter::{Counter, FailureQueue, Flusher, StoreWriter};
use crate::handler::{DmarcFilter, LogSink, MessageSink, MetricsSink};
use crate::log::Logger;
use crate::metrics::{Metered, Metrics};
use crate::server::{
    ConnectionEnd, ConnectionError, Current, Listeners, ServerError, ServerObserver, Stop,
};

/// What the daemon needs besides the configuration.
pub struct DaemonOptions<B> {
    /// The configuration file, if any.
    pub config: Option<PathBuf>,
    /// Command-line settings applied over the file (at start and at every reload).
    pub overrides: Vec<Override>,
    /// This host's name: the authserv-id when none is configured.
    pub hostname: String,
    /// Builds the DNS resolver for the `[dns]` settings (called at start and on reload,
    /// inside the runtime).
    pub build_lookup: B,
    /// The source of `pct` draws.
    pub rng: Arc<dyn Randomness>,
}

impl<B> fmt::Debug for DaemonOptions<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonOptions")
            .field("config", &self.config)
            .field("overrides", &self.overrides)
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

/// Why the daemon could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration.
    Config(ConfigError),
    /// The DNS resolver could not be set up.
    Dns(String),
    /// Logging could not be set up.
    Log(std::io::Error),
    /// A listener could not be bound.
    Server(ServerError),
    /// The metrics listener could not be bound.
    Metrics {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The signal handlers could not be installed.
    Signal(std::io::Error),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Config(_) => f.write_str("bad configuration"),
            DaemonError::Dns(why) => write!(f, "cannot set up DNS: {why}"),
            DaemonError::Log(_) => f.write_str("cannot set up logging"),
            DaemonError::Server(_) => f.write_str("cannot start the server"),
            DaemonError::Metrics { addr, .. } => {
                write!(f, "cannot listen for metrics on {addr}")
            }
            DaemonError::Signal(_) => f.write_str("cannot install signal handlers"),
        }
    }
}

impl std::error::Error for DaemonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DaemonError::Config(e) => Some(e),
            DaemonError::Log(e) | DaemonError::Signal(e) => Some(e),
            DaemonError::Server(e) => Some(e),
            DaemonError::Metrics { source, .. } => Some(source),
            DaemonError::Dns(_) => None,
        }
    }
}

/// This host's name, from the kernel (`/proc/sys/kernel/hostname`), then
/// `/etc/hostname`; `localhost` when neither says.
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Reads and validates the configuration (what `--check-config` does, without DNS).
pub fn load_settings(
    config: Option<&std::path::Path>,
    overrides: &[Override],
    hostname: &str,
) -> Result<Settings, ConfigError> {
    MilterConfig::load(config, overrides)?.validate(hostname)
}

/// An error and its sources, joined by `: `.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        next = inner.source();
    }
    s
}

struct Observer {
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
}

impl ServerObserver for Observer {
    fn connection_opened(&self, _peer: &str) {
        self.metrics.connection_opened();
    }

    fn connection_closed(&self, peer: &str, end: &Result<ConnectionEnd, ConnectionError>) {
        match end {
            Ok(_) => self.metrics.connection_closed(None),
            Err(e) => {
                self.metrics.connection_closed(Some(e.kind()));
                self.logger
                    .warn(&format!("milter connection {peer} closed: {}", chain(e)));
            }
        }
    }

    fn note(&self, peer: &str, note: &str) {
        self.logger
            .warn(&format!("milter connection {peer}: {note}"));
    }

    fn accept_error(&self, listener: &str, error: &std::io::Error) {
        self.logger
            .error(&format!("accept on {listener} failed: {error}"));
    }
}

fn build_filter<L, B>(
    settings: &Settings,
    build: &B,
    rng: &Arc<dyn Randomness>,
    sinks: &[Arc<dyn MessageSink>],
    metrics: &Arc<Metrics>,
) -> Result<DmarcFilter<Metered<L>>, DaemonError>
where
    L: Lookup + Send + Sync + 'static,
    B: Fn(&DnsSettings) -> Result<L, String>,
{
    let lookup = build(&settings.dns).map_err(DaemonError::Dns)?;
    Ok(DmarcFilter::new(
        settings.policy.clone(),
        Arc::new(Metered::new(lookup, metrics.clone())),
        rng.clone(),
        sinks.to_vec(),
        metrics.clone(),
    ))
}

/// The Tokio runtime for `settings.workers` threads (`server.workers`): with one, a
/// current-thread runtime, so that a connection's frames, its checks and its replies
/// never pass between threads (measured through Postfix: about 12 % less CPU per
/// message than two worker threads at the same throughput, BENCHMARKS.md); with more,
/// a multi-threaded one with that many workers (`TOKIO_WORKER_THREADS` is not read).
pub fn runtime(settings: &Settings) -> std::io::Result<tokio::runtime::Runtime> {
    if settings.workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.workers)
            .enable_all()
            .build()
    }
}

/// Runs the daemon with `settings` (read by [`load_settings`] from the options' file and
/// overrides, which a reload reads again) until SIGTERM or SIGINT. Must be called inside
/// a Tokio runtime with I/O and time enabled ([`runtime`] builds the one `settings`
/// asks for).
pub async fn run<L, B>(settings: Settings, options: DaemonOptions<B>) -> Result<(), DaemonError>
where
    L: Lookup + Send + Sync + 'static,
    B: Fn(&DnsSettings) -> Result<L, String> + Send + Sync + 'static,
{
    let logger = Arc::new(Logger::from_settings(&settings.log).map_err(DaemonError::Log)?);
    let metrics = Metrics::new();
    let mut sinks: Vec<Arc<dyn MessageSink>> = vec![
        Arc::new(LogSink(logger.clone())),
        Arc::new(MetricsSink(metrics.clone())),
    ];
    let (flush_stop, flush_stop_rx) = watch::channel(false);
    let flusher = match &settings.db {
        None => {
            logger.info("db is not set: messages are not counted for aggregate reports");
            None
        }
        Some(db) => {
            let counter = Counter::new(settings.counting.max_rows, metrics.clone());
            sinks.push(counter.clone());
            let mut writer = StoreWriter::new(db.clone());
            let (writer, connected) = tokio::task::spawn_blocking(move || {
                let r = writer.connect().map(|_| ());
                (writer, r)
            })
            .await
            .unwrap_or_else(|e| (StoreWriter::new(db.clone()), Err(e.to_string())));
            match connected {
                Ok(()) => logger.info(&format!(
                    "counting observations into {db}, written every {} s",
                    settings.counting.flush_interval.as_secs_f64()
                )),
                Err(why) => logger.warn(&format!(
                    "counting observations into {db}: the store cannot be opened now ({why}); the counts are kept and the writes retried"
                )),
            }
            let mut flusher = Flusher::new(counter, writer, logger.clone(), metrics.clone());
            if settings.failure.queue {
                let queue = FailureQueue::new(settings.failure.max_pending);
                sinks.push(queue.clone());
                flusher = flusher.with_failures(queue);
                logger.info(&format!(
                    "failure-report candidates (RFC 9991) are queued into {db} for dmarc report send"
                ));
            }
            Some(tokio::spawn(
                flusher.run(settings.counting.flush_interval, flush_stop_rx),
            ))
        }
    };
    let filter = build_filter(
        &settings,
        &options.build_lookup,
        &options.rng,
        &sinks,
        &metrics,
    )?;
    let current = Arc::new(Current::new(Arc::new(filter)));
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let listeners = Listeners::bind(&settings.listen, settings.server.socket_mode)
        .await
        .map_err(DaemonError::Server)?;
    let metrics_task = match &settings.metrics_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr.as_str())
                .await
                .map_err(|source| DaemonError::Metrics {
                    addr: addr.clone(),
                    source,
                })?;
            let bound = l
                .local_addr()
                .map_or_else(|_| addr.clone(), |a| a.to_string());
            logger.info(&format!("metrics on http://{bound}/metrics"));
            Some(tokio::spawn(crate::metrics::serve_http(l, metrics.clone())))
        }
        None => None,
    };
    logger.info(&format!(
        "listening on {}; authserv-id {}; mode {}",
        listeners.names().join(", "),
        settings.policy.authserv_id,
        settings.policy.mode
    ));
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let observer: Arc<dyn ServerObserver> = Arc::new(Observer {
        logger: logger.clone(),
        metrics: metrics.clone(),
    });
    let server = tokio::spawn(crate::server::serve(
        listeners,
        current.clone(),
        settings.server,
        observer,
        stop_rx,
    ));
    let running = settings;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                match load_settings(options.config.as_deref(), &options.overrides, &options.hostname) {
                    Err(e) => {
                        metrics.reload(false);
                        logger.warn(&format!(
                            "reload refused, the running configuration stays: {}",
                            chain(&e)
                        ));
                    }
                    Ok(new) => match build_filter(&new, &options.build_lookup, &options.rng, &sinks, &metrics) {
                        Err(e) => {
                            metrics.reload(false);
                            logger.warn(&format!(
                                "reload refused, the running configuration stays: {}",
                                chain(&e)
                            ));
                        }
                        Ok(filter) => {
                            current.replace(Arc::new(filter));
                            metrics.reload(true);
                            if new.listen != running.listen
                                || new.server != running.server
                                || new.workers != running.workers
                                || new.metrics_listen != running.metrics_listen
                                || new.log != running.log
                                || new.db != running.db
                                || new.counting != running.counting
                                || new.failure != running.failure
                            {
                                logger.warn("reload: listen, [server] (workers included), [log], [metrics], db, [counting] and [failure] change only on restart");
                            }
                            logger.info(&format!(
                                "configuration reloaded; authserv-id {}; mode {}",
                                new.policy.authserv_id, new.policy.mode
                            ));
                        }
                    },
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    logger.info(
        "stopping: no new connections; finishing the messages in progress (a second SIGTERM stops at once)",
    );
    let _ = stop_tx.send(Stop::Drain);
    tokio::pin!(server);
    let done = loop {
        tokio::select! {
            r = &mut server => break r,
            _ = term.recv() => { let _ = stop_tx.send(Stop::Now); }
            _ = int.recv() => { let _ = stop_tx.send(Stop::Now); }
        }
    };
    if let Err(e) = done {
        logger.error(&format!("server task failed: {e}"));
    }
    if let Some(task) = flusher {
        let _ = flush_stop.send(true);
        match task.await {
            Ok(mut flusher) => {
                if flusher.finish(running.server.shutdown_grace).await {
                    logger.info("observations: every count written");
                }
                flusher.close().await;
            }
            Err(e) => logger.error(&format!("observation flusher failed: {e}")),
        }
    }
    if let Some(t) = metrics_task {
        t.abort();
    }
    logger.info("stopped");
    Ok(())
}
