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
