//! The tokio server: listeners on TCP and Unix sockets, one task per milter connection,
//! bounded in number and in time, and a graceful stop.
//!
//! * At most [`ServerSettings::max_connections`] connections are served at once; further
//!   ones wait in the listen backlog.
//! * Each connection reads frames with [`FrameDecoder`] (the frame size bounded), runs
//!   them through a [`Session`] and writes the replies; a read that takes longer than
//!   [`ServerSettings::read_timeout`] or a write longer than
//!   [`ServerSettings::write_timeout`] ends it. While a message's verdict is computed the
//!   MTA is sent `SMFIR_PROGRESS` every [`ServerSettings::progress_interval`].
//! * A malformed frame, a command out of order or an I/O error closes that connection
//!   only (the MTA applies its default action); it is reported to the
//!   [`ServerObserver`]. Nothing a peer sends stops the server.
//! * Each connection takes the [`Filter`] current when it opens from a [`Current`]: a
//!   reload replaces it for new connections, and open ones keep theirs.
//! * Stopping ([`Stop::Drain`]) closes the listeners, lets every connection finish the
//!   message in progress within [`ServerSettings::shutdown_grace`] (connections between
//!   messages close at once); [`Stop::Now`] closes them all at once. [`serve`] returns
//!   when every connection is gone.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::codec::{CodecError, Command, EncodeError, FrameDecoder, Reply};
use crate::filter::Filter;
use crate::listen::ListenAddr;
use crate::session::{Session, SessionError, SessionLimits};

/// Settings of the server. Every field states its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// Connections served at once. Default 256.
    pub max_connections: usize,
    /// The largest frame accepted, in bytes. Default [`crate::codec::DEFAULT_MAX_FRAME`].
    pub max_frame: usize,
    /// The longest wait for the next bytes from the MTA. Postfix keeps a milter
    /// connection open for the whole SMTP session, idle between SMTP commands (up to its
    /// `smtpd_timeout`, 300 s). Default 600 s.
    pub read_timeout: Duration,
    /// The longest a write of replies may take. Default 60 s.
    pub write_timeout: Duration,
    /// How often `SMFIR_PROGRESS` is sent while the end of a message is being judged.
    /// Default 10 s.
    pub progress_interval: Duration,
    /// After a stop is asked for, how long messages in progress may take before their
    /// connections are closed. Default 30 s.
    pub shutdown_grace: Duration,
    /// The permissions of Unix sockets created. Default `0o660`.
    pub socket_mode: u32,
    /// Limits of each session.
    pub limits: SessionLimits,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_connections: 256,
            max_frame: crate::codec::DEFAULT_MAX_FRAME,
            read_timeout: Duration::from_secs(600),
            write_timeout: Duration::from_secs(60),
            progress_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            socket_mode: 0o660,
            limits: SessionLimits::default(),
        }
    }
}

/// The filter in use, replaceable while connections run (configuration reload).
#[derive(Debug)]
pub struct Current<F>(RwLock<Arc<F>>);

impl<F> Current<F> {
    /// Starts with `filter`.
    pub fn new(filter: Arc<F>) -> Self {
        Current(RwLock::new(filter))
    }

    /// The filter for a new connection.
    pub fn get(&self) -> Arc<F> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the filter for connections opened from now on.
    pub fn replace(&self, filter: Arc<F>) {
        match self.0.write() {
            Ok(mut g) => *g = filter,
            Err(poisoned) => *poisoned.into_inner() = filter,
        }
    }
}

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    /// Serving.
    Running,
    /// Not accepting; finish the messages in progress.
    Drain,
    /// Close every connection now.
    Now,
}

/// How a connection ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The MTA sent `SMFIC_QUIT`.
    Quit,
    /// The MTA closed the socket between frames.
    Closed,
    /// The server is stopping.
    Stopped,
}

/// Why a connection was closed on error.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectionError {
    /// A frame could not be read.
    Codec(CodecError),
    /// A command out of order or a failed negotiation.
    Session(SessionError),
    /// A reply could not be encoded (a filter produced a value the protocol cannot carry).
    Encode(EncodeError),
    /// Reading or writing failed.
    Io(io::Error),
    /// Nothing arrived for this long.
    ReadTimeout(Duration),
    /// A write did not finish in this long.
    WriteTimeout(Duration),
    /// The filter panicked (a bug): the connection is closed, the server goes on.
    Panic(String),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Codec(_) => f.write_str("malformed input"),
            ConnectionError::Session(_) => f.write_str("protocol error"),
            ConnectionError::Encode(_) => f.write_str("cannot encode a reply"),
            ConnectionError::Io(_) => f.write_str("I/O error"),
            ConnectionError::ReadTimeout(d) => {
                write!(f, "nothing received for {} s", d.as_secs_f64())
            }
            ConnectionError::WriteTimeout(d) => {
                write!(f, "a write did not complete in {} s", d.as_secs_f64())
            }
            ConnectionError::Panic(what) => write!(f, "the filter panicked: {what}"),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectionError::Codec(e) => Some(e),
            ConnectionError::Session(e) => Some(e),
            ConnectionError::Encode(e) => Some(e),
            ConnectionError::Io(e) => Some(e),
            ConnectionError::ReadTimeout(_)
            | ConnectionError::WriteTimeout(_)
            | ConnectionError::Panic(_) => None,
        }
    }
}

impl ConnectionError {
    /// A short word for metrics: `codec`, `protocol`, `encode`, `io`, `timeout`.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectionError::Codec(_) => "codec",
            ConnectionError::Session(_) => "protocol",
            ConnectionError::Encode(_) => "encode",
            ConnectionError::Io(_) => "io",
            ConnectionError::ReadTimeout(_) | ConnectionError::WriteTimeout(_) => "timeout",
            ConnectionError::Panic(_) => "panic",
        }
    }
}

impl From<CodecError> for ConnectionError {
    fn from(e: CodecError) -> Self {
        ConnectionError::Codec(e)
    }
}

impl From<SessionError> for ConnectionError {
    fn from(e: SessionError) -> Self {
        ConnectionError::Session(e)
    }
}

impl From<EncodeError> for ConnectionError {
    fn from(e: EncodeError) -> Self {
        ConnectionError::Encode(e)
    }
}

impl From<io::Error> for ConnectionError {
    fn from(e: io::Error) -> Self {
        ConnectionError::Io(e)
    }
}

/// Why the server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// A host name did not resolve.
    Resolve {
        /// The address.
        addr: ListenAddr,
        /// Why.
        source: io::Error,
    },
    /// A socket could not be bound.
    Bind {
        /// The address.
        addr: ListenAddr,
        /// Why.
        source: io::Error,
    },
    /// Another process answers on this Unix socket.
    InUse(PathBuf),
    /// The path exists and is not a socket.
    NotASocket(PathBuf),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Resolve { addr, .. } => write!(f, "cannot resolve {addr}"),
            ServerError::Bind { addr, .. } => write!(f, "cannot listen on {addr}"),
            ServerError::InUse(p) => {
                write!(f, "{} is in use: another milter answers on it", p.display())
            }
            ServerError::NotASocket(p) => {
                write!(f, "{} exists and is not a socket", p.display())
            }
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Resolve { source, .. } | ServerError::Bind { source, .. } => Some(source),
            ServerError::InUse(_) | ServerError::NotASocket(_) => None,
        }
    }
}

/// What the server reports as it runs (for logs and metrics). Every method has an
/// empty default.
pub trait ServerObserver: Send + Sync + 'static {
    /// A connection was accepted.
    fn connection_opened(&self, _peer: &str) {}
    /// A connection ended.
    fn connection_closed(&self, _peer: &str, _end: &Result<ConnectionEnd, ConnectionError>) {}
    /// Something the operator should know about a connection.
    fn note(&self, _peer: &str, _note: &str) {}
    /// `accept` failed (out of file descriptors, say); the listener goes on after a pause.
    fn accept_error(&self, _listener: &str, _error: &io::Error) {}
}

/// An observer that reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl ServerObserver for Quiet {}

enum Socket {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// Bound listening sockets.
pub struct Listeners {
    sockets: Vec<(String, Socket)>,
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.sockets.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Listeners {
    /// Binds every address (a host name binds every address it resolves to). A Unix
    /// socket left by a process that is gone is replaced; one that answers is not.
    pub async fn bind(addrs: &[ListenAddr], socket_mode: u32) -> Result<Listeners, ServerError> {
        let mut sockets = Vec::new();
        for addr in addrs {
            match addr {
                ListenAddr::Tcp { host, port } => {
                    let resolved: Vec<_> = tokio::net::lookup_host((host.as_str(), *port))
                        .await
                        .map_err(|source| ServerError::Resolve {
                            addr: addr.clone(),
                            source,
                        })?
                        .collect();
                    let mut seen = Vec::new();
                    for sa in resolved {
                        if seen.contains(&sa) {
                            continue;
                        }
                        seen.push(sa);
                        let l =
                            TcpListener::bind(sa)
                                .await
                                .map_err(|source| ServerError::Bind {
                                    addr: addr.clone(),
                                    source,
                                })?;
                        let name = match l.local_addr() {
                            Ok(a) => ListenAddr::Tcp {
                                host: a.ip().to_string(),
                                port: a.port(),
                            }
                            .to_string(),
                            Err(_) => addr.to_string(),
                        };
                        sockets.push((name, Socket::Tcp(l)));
                    }
                }
                ListenAddr::Unix(path) => {
                    let l = bind_unix(addr, path, socket_mode)?;
                    sockets.push((addr.to_string(), Socket::Unix(l, path.clone())));
                }
            }
        }
        Ok(Listeners { sockets })
    }

    /// The addresses listened on, in Postfix's spelling (with the ports chosen for port 0).
    pub fn names(&self) -> Vec<String> {
        self.sockets.iter().map(|(n, _)| n.clone()).collect()
    }
}

fn bind_unix(addr: &ListenAddr, path: &Path, mode: u32) -> Result<UnixListener, ServerError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ServerError::NotASocket(path.to_owned()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::InUse(path.to_owned()));
        }
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path).map_err(|source| ServerError::Bind {
        addr: addr.clone(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ServerError::Bind {
            addr: addr.clone(),
            source,
        }
    })?;
    Ok(l)
}

/// Serves until `stop` leaves [`Stop::Running`], then drains (see the module
/// documentation) and returns. Unix socket files are removed.
pub async fn serve<F: Filter>(
    listeners: Listeners,
    filters: Arc<Current<F>>,
    settings: ServerSettings,
    observer: Arc<dyn ServerObserver>,
    stop: watch::Receiver<Stop>,
) {
    let permits = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    // Every connection task holds a sender; when all are dropped, all are done.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut accepters = Vec::new();
    let mut unix_paths = Vec::new();
    for (name, socket) in listeners.sockets {
        if let Socket::Unix(_, path) = &socket {
            unix_paths.push(path.clone());
        }
        accepters.push(tokio::spawn(accept_loop(
            name,
            socket,
            filters.clone(),
            settings,
            observer.clone(),
            stop.clone(),
            permits.clone(),
            done_tx.clone(),
        )));
    }
    drop(done_tx);
    for a in accepters {
        let _ = a.await;
    }
    for p in unix_paths {
        let _ = std::fs::remove_file(p);
    }
    // Listeners are closed: wait for the connections (each bounds its own drain).
    let _ = done_rx.recv().await;
}

#[allow(clippy::too_many_arguments)]
async fn accept_loop<F: Filter>(
    name: String,
    socket: Socket,
    filters: Arc<Current<F>>,
    settings: ServerSettings,
    observer: Arc<dyn ServerObserver>,
    mut stop: watch::Receiver<Stop>,
    permits: Arc<Semaphore>,
    done: mpsc::Sender<()>,
) {
    let mut counter: u64 = 0;
    loop {
        if *stop.borrow() != Stop::Running {
            return;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            changed = stop.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            a = accept(&socket) => a,
            changed = stop.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                observer.accept_error(&name, &e);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        counter += 1;
        let peer = peer.unwrap_or_else(|| format!("{name}#{counter}"));
        let filter = filters.get();
        let observer = observer.clone();
        let stop = stop.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _done = done;
            observer.connection_opened(&peer);
            let serve = async {
                match stream {
                    Stream::Tcp(s) => {
                        let _ = s.set_nodelay(true);
                        serve_connection(s, filter, &settings, &*observer, &peer, stop, quick_ack)
                            .await
                    }
                    Stream::Unix(s) => {
                        connection(s, filter, &settings, &*observer, &peer, stop).await
                    }
                }
            };
            // A filter that panics loses its connection, never the server.
            let end = std::panic::AssertUnwindSafe(serve)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown".to_owned());
                    Err(ConnectionError::Panic(what))
                });
            observer.connection_closed(&peer, &end);
        });
    }
}

/// Acknowledges at once what was read from a TCP connection (`TCP_QUICKACK`). Postfix
/// streams header fields and body chunks without waiting for replies (the `NR_*` steps)
/// and leaves Nagle's algorithm on, so each small write of its waits until the previous
/// one is acknowledged: with delayed acknowledgements (40 ms on Linux) a message would
/// wait that long at its end of body (measured through Postfix, scripts/bench/milter.sh:
/// ~47 ms added at the median without this, BENCHMARKS.md). [`serve_connection`] calls
/// it right after a read that brought no command awaiting a reply (a reply carries the
/// acknowledgement itself); Linux leaves quick-ack mode by itself, so it is set each time.
fn quick_ack(stream: &tokio::net::TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(socket: &Socket) -> io::Result<(Stream, Option<String>)> {
    match socket {
        Socket::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            Ok((Stream::Tcp(s), Some(peer.to_string())))
        }
        Socket::Unix(l, _) => {
            let (s, _) = l.accept().await?;
            Ok((Stream::Unix(s), None))
        }
    }
}

/// The room made for each read: a body chunk from Postfix (65,535 bytes) and its frame
/// header. The decoder's buffer is read into directly and not zeroed.
const READ_SIZE: usize = 64 * 1024 + 16;

/// Serves one milter connection until it ends.
pub async fn connection<F, S>(
    stream: S,
    filter: Arc<F>,
    settings: &ServerSettings,
    observer: &dyn ServerObserver,
    peer: &str,
    stop: watch::Receiver<Stop>,
) -> Result<ConnectionEnd, ConnectionError>
where
    F: Filter,
    S: AsyncRead + AsyncWrite + Send,
{
    serve_connection(stream, filter, settings, observer, peer, stop, |_: &S| {}).await
}

/// [`connection`], calling `ack` on the stream after each read that brought no command
/// awaiting a reply (see [`quick_ack`]).
async fn serve_connection<F, S>(
    stream: S,
    filter: Arc<F>,
    settings: &ServerSettings,
    observer: &dyn ServerObserver,
    peer: &str,
    mut stop: watch::Receiver<Stop>,
    ack: impl Fn(&S) + Send,
) -> Result<ConnectionEnd, ConnectionError>
where
    F: Filter,
    S: AsyncRead + AsyncWrite + Send,
{
    // Reads and writes take turns (a reply is written only between reads), so the stream
    // is not split.
    tokio::pin!(stream);
    let mut decoder = FrameDecoder::new(settings.max_frame);
    let mut session = Session::new(filter, settings.limits);
    let mut out = Vec::new();
    let result: Result<ConnectionEnd, ConnectionError> = async {
        // After the message's background work completes, it is not asked again until the
        // next frame (so a filter whose drive() returns at once cannot spin this loop).
        let mut drive = true;
        // Set when a drain starts: the message in progress must end by then.
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            // The replies to every frame already read go out in one write, before the
            // connection waits again (for the MTA or for a verdict).
            out.clear();
            while let Some(frame) = decoder.next_frame()? {
                drive = true;
                let cmd = Command::parse(frame)?;
                let response = if matches!(cmd, Command::EndOfMessage { .. }) {
                    if !out.is_empty() {
                        write(&mut stream, &out, settings.write_timeout).await?;
                        out.clear();
                    }
                    with_progress(session.handle(cmd), &mut stream, settings).await?
                } else {
                    session.handle(cmd).await
                }?;
                for note in &response.notes {
                    observer.note(peer, note);
                }
                for r in &response.replies {
                    r.encode(&mut out)?;
                }
                if response.close {
                    if !out.is_empty() {
                        write(&mut stream, &out, settings.write_timeout).await?;
                    }
                    return Ok(ConnectionEnd::Quit);
                }
            }
            if !out.is_empty() {
                write(&mut stream, &out, settings.write_timeout).await?;
            }
            let stopping = *stop.borrow();
            if stopping == Stop::Now
                || (stopping == Stop::Drain
                    && session.between_messages()
                    && decoder.buffered() == 0)
            {
                return Ok(ConnectionEnd::Stopped);
            }
            if stopping == Stop::Drain && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + settings.shutdown_grace);
            }
            let n = tokio::select! {
                r = tokio::time::timeout(
                    settings.read_timeout,
                    stream.read_buf(decoder.read_buffer(READ_SIZE)),
                ) => {
                    r.map_err(|_| ConnectionError::ReadTimeout(settings.read_timeout))??
                }
                () = session.drive(), if drive => {
                    drive = false;
                    continue;
                }
                changed = stop.changed() => {
                    if changed.is_err() {
                        return Ok(ConnectionEnd::Stopped);
                    }
                    continue;
                }
                () = sleep_until(deadline) => return Ok(ConnectionEnd::Stopped),
            };
            if n == 0 {
                decoder.finish()?;
                return Ok(ConnectionEnd::Closed);
            }
            if !decoder
                .complete_codes()
                .any(|code| session.wants_reply(code))
            {
                ack(&stream);
            }
        }
    }
    .await;
    session.finish();
    if result.is_ok() {
        let _ = stream.shutdown().await;
    }
    result
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn write<W: AsyncWrite + ?Sized>(
    wr: &mut std::pin::Pin<&mut W>,
    bytes: &[u8],
    limit: Duration,
) -> Result<(), ConnectionError> {
    tokio::time::timeout(limit, async {
        wr.write_all(bytes).await?;
        wr.flush().await
    })
    .await
    .map_err(|_| ConnectionError::WriteTimeout(limit))??;
    Ok(())
}

/// Runs `fut`, sending `SMFIR_PROGRESS` every interval until it completes.
async fn with_progress<T, W: AsyncWrite + ?Sized>(
    fut: impl Future<Output = T>,
    wr: &mut std::pin::Pin<&mut W>,
    settings: &ServerSettings,
) -> Result<T, ConnectionError> {
    tokio::pin!(fut);
    let every = settings.progress_interval.max(Duration::from_millis(100));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut progress = Vec::new();
    Reply::Progress.encode(&mut progress)?;
    loop {
        tokio::select! {
            r = &mut fut => return Ok(r),
            _ = tick.tick() => write(wr, &progress, settings.write_timeout).await?,
        }
    }
}
