//! The counting of observations: the handler's records counted by key, written to a real
//! (in-memory SQLite) store, with writes that fail on purpose in between.

use std::sync::Arc;

use dmarc_milter::counter::{CountWriter, Counter, Flusher};
use dmarc_milter::handler::MessageSink;
use dmarc_milter::log::Logger;
use dmarc_milter::metrics::Metrics;
use dmarc_receiver::Observation;
use dmarc_receiver::failure::FailureCandidate;
use dmarc_store::Store;

use crate::support::{cases, counted_filter, message};

/// The store, failing while `down` is set.
struct Flaky {
    store: Store,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl CountWriter for Flaky {
    fn write(&mut self, items: &[(i64, &Observation, u64)]) -> Result<u64, String> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("connection refused (test)".into());
        }
        self.store
            .add_observation_counts(items)
            .map_err(|e| e.to_string())
    }

    fn queue(&mut self, candidates: &[FailureCandidate]) -> Result<u64, String> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("connection refused (test)".into());
        }
        self.store
            .queue_failure_candidates(candidates)
            .map_err(|e| e.to_string())
    }
}

fn total(store: &mut Store) -> u64 {
    store
        .observation_counts(None, 0, i64::MAX)
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum()
}

#[tokio::test]
async fn counts_survive_a_failing_store_and_grow_with_rows_not_messages() {
    let metrics = Metrics::new();
    let counter = Counter::new(1000, metrics.clone());
    // Messages through the real filter, counted by the counter as a sink.
    let sinks: Vec<Arc<dyn MessageSink>> = vec![counter.clone()];
    let filter = counted_filter(sinks, &metrics);
    let c = &cases()[0];
    let msg = message(c);
    let send = |n: usize| {
        let filter = filter.clone();
        let msg = msg.clone();
        async move {
            for _ in 0..n {
                crate::handler::deliver(
                    filter.clone(),
                    &c.ip.to_string(),
                    &c.helo,
                    &c.mail_from,
                    &["user@receiver.example"],
                    &msg,
                )
                .await;
            }
        }
    };
    send(5).await;
    assert_eq!(counter.pending(), (1, 5), "one row for five equal messages");

    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = Flaky {
        store: Store::open_sqlite_memory().unwrap(),
        down: down.clone(),
    };
    let mut flusher = Flusher::new(counter.clone(), writer, Arc::new(Logger::memory()), metrics);
    assert!(flusher.flush().await.is_err());
    assert!(flusher.failing());
    assert_eq!(counter.pending(), (1, 5), "kept after the failed write");
    send(3).await;
    assert!(flusher.flush().await.is_err());
    assert_eq!(counter.pending(), (1, 8), "merged with what came meanwhile");
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(flusher.flush().await, Ok(8));
    assert_eq!(counter.pending(), (0, 0));
    send(2).await;
    assert!(flusher.finish(std::time::Duration::from_secs(2)).await);
    // Every message counted once, none lost.
    let Flaky { mut store, .. } = take_writer(flusher);
    assert_eq!(total(&mut store), 10);
}

fn take_writer(f: Flusher<Flaky>) -> Flaky {
    f.into_writer().expect("writer")
}

/// `[failure] queue`: a message through the real filter whose policy asks for failure
/// reports (mail-bench's `ruf=` domains, `fo=1`) becomes a candidate with its header
/// fields; one that passes with both mechanisms aligned does not; a failing store keeps
/// the candidates for the next write.
#[tokio::test]
async fn failure_candidates_are_queued_through_the_flusher() {
    use dmarc_milter::counter::FailureQueue;
    let metrics = Metrics::new();
    let counter = Counter::new(1000, metrics.clone());
    let queue = FailureQueue::new(10);
    let sinks: Vec<Arc<dyn MessageSink>> = vec![counter.clone(), queue.clone()];
    let filter = counted_filter(sinks, &metrics);
    let zone_text = std::fs::read_to_string(crate::support::mail_bench().join("zone.txt")).unwrap();
    let ruf = |d: &str| {
        zone_text
            .lines()
            .any(|l| l.starts_with(&format!("_dmarc.{d}.")) && l.contains("ruf="))
    };
    let all = cases();
    let failing = all
        .iter()
        .find(|c| ruf(&c.from_domain) && c.dmarc == "fail")
        .expect("a failing message of a ruf= domain");
    let passing = all
        .iter()
        .find(|c| {
            ruf(&c.from_domain)
                && c.dmarc == "pass"
                && c.spf == "pass"
                && c.mail_from.ends_with(&c.from_domain)
        })
        .expect("an aligned message of a ruf= domain");
    for c in [failing, passing] {
        crate::handler::deliver(
            filter.clone(),
            &c.ip.to_string(),
            &c.helo,
            &c.mail_from,
            &["user@receiver.example"],
            &message(c),
        )
        .await;
    }
    assert_eq!(queue.pending(), 1, "only the failing message");

    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = Flaky {
        store: Store::open_sqlite_memory().unwrap(),
        down: down.clone(),
    };
    let mut flusher = Flusher::new(counter.clone(), writer, Arc::new(Logger::memory()), metrics)
        .with_failures(queue.clone());
    assert!(flusher.flush().await.is_err());
    assert_eq!(queue.pending(), 1, "kept after the failed write");
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(flusher.flush().await, Ok(2));
    assert_eq!(queue.pending(), 0);
    let Flaky { mut store, .. } = take_writer(flusher);
    let queued = store.failure_candidates("queued", 10).unwrap();
    assert_eq!(queued.len(), 1);
    let c = &queued[0].candidate;
    assert_eq!(c.source_ip, failing.ip);
    assert_eq!(c.reported_domain, failing.from_domain);
    assert_eq!(c.auth_failure, "dmarc");
    assert_eq!(c.rcpt_to, vec!["user@receiver.example".to_owned()]);
    assert!(c.header.contains("From:"), "{}", c.header);
    assert!(
        c.authentication_results.starts_with("mx.receiver.example;"),
        "{}",
        c.authentication_results
    );
}

/// Messages in the store at `db` (an SQLite file the flusher writes meanwhile).
fn stored(db: &std::path::Path) -> u64 {
    total(&mut Store::open(db.to_str().unwrap()).unwrap())
}

/// Waits (at most 10 s) until the store at `db` holds `n` messages; what it holds.
async fn wait_stored(db: &std::path::Path, n: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = stored(db);
        if got >= n || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The early flush: with a flush interval of an hour, the counts are written as soon as
/// the table holds `max_rows` distinct rows, not before, and not because of repeats of a
/// row already held; every message ends up in the store once (the rest at the last write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_table_is_written_early_and_nothing_is_lost() {
    use dmarc_milter::counter::StoreWriter;
    const MAX_ROWS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("counts.sqlite3");
    // The schema exists before the flusher's first write, so that it can be read early.
    drop(Store::open(db.to_str().unwrap()).unwrap());

    let metrics = Metrics::new();
    let counter = Counter::new(MAX_ROWS, metrics.clone());
    let sinks: Vec<Arc<dyn MessageSink>> = vec![counter.clone()];
    let filter = counted_filter(sinks, &metrics);
    let flusher = Flusher::new(
        counter.clone(),
        StoreWriter::new(db.to_str().unwrap()),
        Arc::new(Logger::memory()),
        metrics,
    );
    // The rows are per UTC hour: keep the test inside one hour, or a row would split.
    let into_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 3600;
    if into_hour > 3600 - 30 {
        tokio::time::sleep(std::time::Duration::from_secs(3601 - into_hour)).await;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = std::time::Instant::now();
    let running = tokio::spawn(flusher.run(std::time::Duration::from_secs(3600), stopped));

    // Case 0 from a different client address each time: one distinct row per address.
    let c = &cases()[0];
    let msg = message(c);
    let send = |ips: std::ops::Range<usize>| {
        let filter = filter.clone();
        let msg = msg.clone();
        async move {
            for i in ips {
                crate::handler::deliver(
                    filter.clone(),
                    &format!("2001:db8::{i:x}"),
                    &c.helo,
                    &c.mail_from,
                    &["user@receiver.example"],
                    &msg,
                )
                .await;
            }
        }
    };

    // One row short of full: nothing is written.
    send(0..MAX_ROWS - 1).await;
    assert_eq!(counter.pending(), (MAX_ROWS - 1, MAX_ROWS as u64 - 1));
    // Repeats of rows already held add messages, not rows: still not full.
    send(0..10).await;
    assert_eq!(counter.pending(), (MAX_ROWS - 1, MAX_ROWS as u64 + 9));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stored(&db), 0, "written before the table was full");

    // The row that fills the table: everything held is written, without waiting an hour.
    send(MAX_ROWS - 1..MAX_ROWS).await;
    let first = MAX_ROWS as u64 + 10;
    assert_eq!(wait_stored(&db, first).await, first, "no early write");

    // Three times as many distinct rows again: written as the table fills, each time.
    let more = 3 * MAX_ROWS + 7;
    send(MAX_ROWS..MAX_ROWS + more).await;
    let sent = first + more as u64;
    // Once the writes in flight are done: fewer than max_rows rows held, the rest in the
    // store, nothing in between.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (rows, held, written) = loop {
        let (rows, held) = counter.pending();
        let written = stored(&db);
        if (rows < MAX_ROWS && written + held == sent) || std::time::Instant::now() > deadline {
            break (rows, held, written);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        rows < MAX_ROWS,
        "{rows} rows still held, max_rows {MAX_ROWS}"
    );
    assert_eq!(written + held, sent, "{written} written, {held} held");
    assert!(
        written >= first + 3 * MAX_ROWS as u64,
        "only {written} of {sent} written early"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the writes were early"
    );

    // Stopping writes the rest: every message once, every distinct row once.
    stop.send(true).unwrap();
    let mut flusher = running.await.unwrap();
    assert!(flusher.finish(std::time::Duration::from_secs(5)).await);
    flusher.close().await;
    assert_eq!(counter.pending(), (0, 0));
    let rows = Store::open(db.to_str().unwrap())
        .unwrap()
        .observation_counts(None, 0, i64::MAX)
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), sent, "none lost");
    // Each (hour, address) row once; the ten repeated addresses counted twice, the
    // others once.
    let mut keys = std::collections::HashSet::new();
    let mut by_ip = std::collections::BTreeMap::<std::net::IpAddr, u64>::new();
    for r in &rows {
        assert!(
            keys.insert((r.period_start, r.observation.source_ip)),
            "{r:?} twice"
        );
        *by_ip.entry(r.observation.source_ip).or_default() += r.count;
    }
    assert_eq!(by_ip.len(), MAX_ROWS + more, "one row per client address");
    for i in 0..MAX_ROWS + more {
        let ip: std::net::IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
        assert_eq!(by_ip.get(&ip), Some(&if i < 10 { 2 } else { 1 }), "{ip}");
    }
}
