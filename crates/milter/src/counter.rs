//! The counting of observations for aggregate reports: every verified message's
//! [`Observation`] is counted in memory under its aggregate-report key (the observation
//! and the UTC hour it arrived in, [`dmarc_store::period_of`]), and the counts are
//! written to the store's observations table by upsert (the rows `dmarc verify --batch
//! --record` writes), so that several milters on one PostgreSQL database add up.
//!
//! * Memory grows with distinct rows, not with messages: a row is one key and a count.
//! * [`Flusher::run`] writes the counts every `counting.flush_interval`, and early when
//!   the table holds `counting.max_rows` distinct rows.
//! * A write that fails (store unreachable, locked, full disk) loses nothing: the counts
//!   go back into the table, merged with those counted meanwhile, and the next flush
//!   tries again (the connection is opened anew). While the store is failing the table
//!   may outgrow `max_rows`; the log says so, and early flushes wait for the next tick.
//! * At SIGTERM the daemon, once the messages in flight are done, writes what is left
//!   ([`Flusher::finish`], retried within `server.shutdown_grace`).
//! * A crash (kill -9) loses at most the counts since the last write: each write is one
//!   transaction, so the store holds whole flushes only.
//!
//! Messages that are not verified (exempt, too large, timed out, refused before their
//! end) have no observation and are not counted; neither are sessions that end before
//! MAIL FROM, nor report mail ([`dmarc_receiver::failure::is_report_message`]: no reports
//! about reports).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dmarc_receiver::Observation;
use dmarc_receiver::failure::{self, FailureCandidate};
use dmarc_store::{Store, period_of};
use tokio::sync::{Notify, watch};

use crate::daemon::chain;
use crate::handler::{MessageRecord, MessageSink};
use crate::log::Logger;
use crate::metrics::Metrics;

/// Counts not yet written: per period start, each distinct observation and its count.
#[derive(Debug, Default)]
pub struct Table {
    periods: HashMap<i64, HashMap<Observation, u64>>,
    rows: usize,
    messages: u64,
    /// When the oldest count in the table was made.
    oldest: Option<Instant>,
}

impl Table {
    /// Distinct rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Messages counted.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Nothing counted.
    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// Adds `n` messages of `o` in the period starting at `period`.
    fn add(&mut self, period: i64, o: &Observation, n: u64) {
        let rows = self.periods.entry(period).or_default();
        if let Some(count) = rows.get_mut(o) {
            *count += n;
        } else {
            rows.insert(o.clone(), n);
            self.rows += 1;
        }
        self.messages += n;
    }

    /// Adds every count of `other`.
    fn merge(&mut self, other: Table) {
        for (period, rows) in other.periods {
            for (o, n) in rows {
                let mine = self.periods.entry(period).or_default();
                match mine.get_mut(&o) {
                    Some(count) => *count += n,
                    None => {
                        mine.insert(o, n);
                        self.rows += 1;
                    }
                }
            }
        }
        self.messages += other.messages;
        self.oldest = match (self.oldest, other.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Every row: period start, observation, count.
    pub fn items(&self) -> Vec<(i64, &Observation, u64)> {
        self.periods
            .iter()
            .flat_map(|(p, rows)| rows.iter().map(move |(o, n)| (*p, o, *n)))
            .collect()
    }
}

/// The in-memory counts, shared by every connection (a [`MessageSink`]).
#[derive(Debug)]
pub struct Counter {
    table: Mutex<Table>,
    max_rows: usize,
    full: Notify,
    metrics: Arc<Metrics>,
}

impl Counter {
    /// An empty counter that asks for an early flush at `max_rows` distinct rows.
    pub fn new(max_rows: usize, metrics: Arc<Metrics>) -> Arc<Counter> {
        Arc::new(Counter {
            table: Mutex::new(Table::default()),
            max_rows: max_rows.max(1),
            full: Notify::new(),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere while holding the lock leaves consistent counts (every update
        // is complete before the guard drops): keep counting.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one message of `o` arriving at `at` (Unix seconds).
    pub fn count(&self, at: i64, o: &Observation) {
        let (rows, messages) = {
            let mut t = self.lock();
            t.add(period_of(at), o, 1);
            t.oldest.get_or_insert_with(Instant::now);
            (t.rows, t.messages)
        };
        self.metrics.set_pending(rows, messages);
        if rows >= self.max_rows {
            self.full.notify_one();
        }
    }

    /// Takes every count out, leaving the table empty.
    pub fn take(&self) -> Table {
        let t = std::mem::take(&mut *self.lock());
        self.metrics.set_pending(0, 0);
        t
    }

    /// Puts counts back (a write failed), merged with those counted meanwhile.
    pub fn restore(&self, table: Table) {
        let (rows, messages) = {
            let mut t = self.lock();
            t.merge(table);
            (t.rows, t.messages)
        };
        self.metrics.set_pending(rows, messages);
    }

    /// Distinct rows and messages held.
    pub fn pending(&self) -> (usize, u64) {
        let t = self.lock();
        (t.rows, t.messages)
    }

    /// Completes when the table has reached `max_rows` rows.
    pub async fn full(&self) {
        self.full.notified().await;
    }
}

impl MessageSink for Counter {
    fn record(&self, r: &MessageRecord<'_>) {
        // Report mail (aggregate and failure reports, bounces) is not counted: no reports
        // about reports.
        if let Some(o) = r.observation
            && !failure::is_report_message(r.header)
        {
            self.count(dmarc_store::time::now(), o);
        }
    }
}

/// Failure-report candidates (RFC 9991) waiting to be written to the store, where `dmarc
/// report send` finds them (a [`MessageSink`], on with `[failure] queue`). A verified
/// message whose policy asks for a failure report about it
/// ([`dmarc_receiver::failure::candidate`]: `ruf=`, `fo=`, not report mail) becomes one;
/// they are written with the counts, kept when a write fails, and at most `max_pending`
/// are held (more are dropped and counted, since they hold whole header blocks).
#[derive(Debug)]
pub struct FailureQueue {
    pending: Mutex<Vec<FailureCandidate>>,
    max_pending: usize,
    dropped: std::sync::atomic::AtomicU64,
}

impl FailureQueue {
    /// An empty queue holding at most `max_pending` candidates.
    pub fn new(max_pending: usize) -> Arc<FailureQueue> {
        Arc::new(FailureQueue {
            pending: Mutex::new(Vec::new()),
            max_pending: max_pending.max(1),
            dropped: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<FailureCandidate>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Candidates held.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Candidates dropped because the queue was full, since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed)
    }

    fn push(&self, c: FailureCandidate) {
        let mut q = self.lock();
        if q.len() < self.max_pending {
            q.push(c);
        } else {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn take(&self) -> Vec<FailureCandidate> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts candidates back (a write failed) ahead of those queued meanwhile.
    fn restore(&self, mut back: Vec<FailureCandidate>) {
        let mut q = self.lock();
        back.append(&mut q);
        if back.len() > self.max_pending {
            let over = back.len() - self.max_pending;
            back.truncate(self.max_pending);
            self.dropped
                .fetch_add(over as u64, std::sync::atomic::Ordering::Relaxed);
        }
        *q = back;
    }
}

impl MessageSink for FailureQueue {
    fn record(&self, r: &MessageRecord<'_>) {
        if let Some(v) = r.verdicts
            && let Ok(c) = failure::candidate(v, r.header, dmarc_store::time::now())
        {
            self.push(c);
        }
    }
}

/// Where the counts are written: the store, or (in tests) something that fails on
/// purpose. Called on a blocking thread.
pub trait CountWriter: Send + 'static {
    /// Adds the counts in one transaction; returns the messages written.
    fn write(&mut self, items: &[(i64, &Observation, u64)]) -> Result<u64, String>;
    /// Queues failure-report candidates in one transaction; returns how many.
    fn queue(&mut self, candidates: &[FailureCandidate]) -> Result<u64, String>;
}

/// The report store at a location (`db`), connected on first use and again after a
/// failed write.
#[derive(Debug)]
pub struct StoreWriter {
    location: String,
    store: Option<Store>,
}

impl StoreWriter {
    /// A writer to `location` (an SQLite path or a `postgres://` URL), not yet connected.
    pub fn new(location: impl Into<String>) -> Self {
        StoreWriter {
            location: location.into(),
            store: None,
        }
    }

    /// Connects now, if not connected (to report a problem at start).
    pub fn connect(&mut self) -> Result<&mut Store, String> {
        if self.store.is_none() {
            let store = Store::open(&self.location).map_err(|e| chain(&e))?;
            self.store = Some(store);
        }
        self.store
            .as_mut()
            .ok_or_else(|| "not connected".to_owned())
    }
}

impl CountWriter for StoreWriter {
    fn write(&mut self, items: &[(i64, &Observation, u64)]) -> Result<u64, String> {
        let result = self
            .connect()
            .and_then(|s| s.add_observation_counts(items).map_err(|e| chain(&e)));
        if result.is_err() {
            // Connect anew next time: the connection may be what failed.
            self.store = None;
        }
        result
    }

    fn queue(&mut self, candidates: &[FailureCandidate]) -> Result<u64, String> {
        let result = self.connect().and_then(|s| {
            s.queue_failure_candidates(candidates)
                .map_err(|e| chain(&e))
        });
        if result.is_err() {
            self.store = None;
        }
        result
    }
}

/// Writes the counter's counts (and the failure-report candidates) to a [`CountWriter`].
pub struct Flusher<W> {
    counter: Arc<Counter>,
    failures: Option<Arc<FailureQueue>>,
    writer: Option<W>,
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
    /// The last write failed.
    failing: bool,
    /// The table outgrew `max_rows` while failing (said once per outage).
    said_over: bool,
}

impl<W> std::fmt::Debug for Flusher<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher")
            .field("pending", &self.counter.pending())
            .field("failing", &self.failing)
            .finish_non_exhaustive()
    }
}

impl<W: CountWriter> Flusher<W> {
    /// A flusher of `counter` into `writer`.
    pub fn new(
        counter: Arc<Counter>,
        writer: W,
        logger: Arc<Logger>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Flusher {
            counter,
            failures: None,
            writer: Some(writer),
            logger,
            metrics,
            failing: false,
            said_over: false,
        }
    }

    /// Writes the candidates of `queue` too, with every flush.
    pub fn with_failures(mut self, queue: Arc<FailureQueue>) -> Self {
        self.failures = Some(queue);
        self
    }

    /// Writes the queued failure-report candidates (before the counts, so that a
    /// failing count write does not hold them back).
    async fn flush_failures(&mut self) {
        let Some(queue) = self.failures.clone() else {
            return;
        };
        let dropped = queue.take_dropped();
        if dropped > 0 {
            self.logger.warn(&format!(
                "failure reports: {dropped} candidates dropped, more than failure.max_pending were waiting"
            ));
        }
        let candidates = queue.take();
        if candidates.is_empty() {
            return;
        }
        let Some(mut writer) = self.writer.take() else {
            queue.restore(candidates);
            return;
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| writer.queue(&candidates)))
                .unwrap_or_else(|_| Err("the store write panicked".into()));
            (writer, candidates, result)
        })
        .await;
        let Ok((writer, candidates, result)) = joined else {
            return;
        };
        self.writer = Some(writer);
        if let Err(why) = result {
            let n = candidates.len();
            queue.restore(candidates);
            self.logger.warn(&format!(
                "failure reports: cannot queue {n} candidates (kept, retried): {why}"
            ));
        }
    }

    /// The writer back (to read what was written).
    pub fn into_writer(self) -> Option<W> {
        self.writer
    }

    /// Closes the writer on a blocking thread: a PostgreSQL client's drop blocks on its
    /// connection, which must not happen on the runtime's own threads (it panics there).
    pub async fn close(mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || drop(writer)).await;
        }
    }

    /// The last write failed.
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// Writes every count held, once: the messages written, or why not (the counts are
    /// then back in the table).
    pub async fn flush(&mut self) -> Result<u64, String> {
        self.flush_failures().await;
        let table = self.counter.take();
        if table.is_empty() {
            return Ok(0);
        }
        let Some(mut writer) = self.writer.take() else {
            self.counter.restore(table);
            return Err("the store was lost in an earlier write".into());
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| writer.write(&table.items())))
                    .unwrap_or_else(|_| Err("the store write panicked".into()));
            (writer, table, result)
        })
        .await;
        let (writer, table, result) = match joined {
            Ok(r) => r,
            // Not reached: the closure catches panics, and the runtime is running.
            Err(e) => return Err(format!("the store write did not run: {e}")),
        };
        self.writer = Some(writer);
        match result {
            Ok(n) => {
                self.metrics.flushed(true, n);
                if let Some(oldest) = table.oldest {
                    self.metrics.set_flush_lag(oldest.elapsed());
                }
                if self.failing {
                    self.logger.info(&format!(
                        "observations: the store works again; {n} messages in {} rows written",
                        table.rows()
                    ));
                }
                self.failing = false;
                self.said_over = false;
                Ok(n)
            }
            Err(why) => {
                self.metrics.flushed(false, 0);
                if let Some(oldest) = table.oldest {
                    self.metrics.set_flush_lag(oldest.elapsed());
                }
                self.counter.restore(table);
                let (rows, messages) = self.counter.pending();
                self.logger.warn(&format!(
                    "observations: cannot write the counts ({messages} messages in {rows} rows kept, retried): {why}"
                ));
                if rows > self.counter.max_rows && !self.said_over {
                    self.said_over = true;
                    self.logger.warn(&format!(
                        "observations: {rows} rows held, more than counting.max_rows ({}), while the store is failing",
                        self.counter.max_rows
                    ));
                }
                self.failing = true;
                Err(why)
            }
        }
    }

    /// Writes every `interval`, and early when the table is full (not while the store
    /// is failing: then at the next tick), until `stop` changes; returns the flusher for
    /// the last write ([`Flusher::finish`]).
    pub async fn run(mut self, interval: Duration, mut stop: watch::Receiver<bool>) -> Self {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let counter = self.counter.clone();
            tokio::select! {
                _ = tick.tick() => {}
                () = counter.full(), if !self.failing => {}
                _ = stop.changed() => break,
            }
            let _ = self.flush().await;
        }
        self
    }

    /// The last write, at shutdown: tried until it succeeds or `within` has passed.
    /// Returns whether every count was written.
    pub async fn finish(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.flush().await {
                Ok(_) => return true,
                Err(_) if Instant::now() + Duration::from_millis(500) < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(_) => {
                    let (rows, messages) = self.counter.pending();
                    self.logger.error(&format!(
                        "observations: {messages} messages in {rows} rows could not be written before exit"
                    ));
                    return false;
                }
            }
        }
    }
}
