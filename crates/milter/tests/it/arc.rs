//! ARC through the milter: `[arc]` mapped into the receiver. A message forwarded by a
//! mailing list (DKIM broken by the list's footer, SPF the list's) whose chain the list
//! sealed: refused by p=reject when the sealer is not trusted, accepted with the
//! trusted-forwarder override when it is (`arc.trusted_sealers`), the override in the log
//! line, in the counted Observation and in the store's row; no `arc=` and no ARC key asked
//! with `arc.enabled = false`.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use dmarc_dns::ZoneFile;
use dmarc_milter::codec::Reply;
use dmarc_milter::config::{MilterConfig, Override};
use dmarc_milter::counter::{Counter, Flusher, StoreWriter};
use dmarc_milter::handler::{DmarcFilter, LogSink, MessageRecord, MessageSink};
use dmarc_milter::log::Logger;
use dmarc_milter::metrics::Metrics;
use dmarc_proto::FixedClock;
use dmarc_proto::arc::ChainStatus;
use dmarc_proto::arc::seal::{SealOptions, seal};
use dmarc_proto::dkim::SigningKey;
use dmarc_receiver::{FixedDraw, Observation};

use crate::handler::deliver;
use crate::support::Questions;

const LIST_IP: &str = "192.0.2.25";

/// The message as brand.example sent it to the list, and as the list forwards it: the
/// list added a footer after brand.example signed it.
const MESSAGE: &str = "From: Alice <alice@brand.example>\r\nTo: list@lists.example\r\n\
Subject: [list] hello\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n\
Message-ID: <1@brand.example>\r\n\r\nHello, world.\r\n-- \r\nThe list footer\r\n";

/// What the list's MX saw when brand.example's message arrived.
const SAW_BRAND: &str = "spf=pass smtp.mailfrom=alice@brand.example; \
dkim=pass header.d=brand.example header.s=s1; dmarc=pass header.from=brand.example";

/// brand.example: p=reject, SPF for its own servers only; lists.example: SPF for the
/// list's IP and its ARC key.
fn zone(key: &SigningKey) -> ZoneFile {
    let text = format!(
        "_dmarc.brand.example. IN TXT \"v=DMARC1; p=reject\"\n\
         brand.example. IN TXT \"v=spf1 ip4:198.51.100.0/24 -all\"\n\
         lists.example. IN TXT \"v=spf1 ip4:{LIST_IP} -all\"\n\
         arc._domainkey.lists.example. IN TXT \"{}\"\n",
        key.dns_record().unwrap()
    );
    ZoneFile::parse(&text, None).unwrap()
}

/// The message sealed by lists.example a minute ago.
fn sealed(key: &SigningKey) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let opts = SealOptions::new("lists.example", "arc", "mx.lists.example");
    let set = seal(
        MESSAGE.as_bytes(),
        key,
        &opts,
        &[SAW_BRAND.to_string()],
        ChainStatus::None,
        &FixedClock::from_unix_seconds(now - 60),
    )
    .unwrap();
    [set.to_prepend().as_bytes(), MESSAGE.as_bytes()].concat()
}

/// Keeps each record's Observation.
#[derive(Default)]
struct Observations(Mutex<Vec<Option<Observation>>>);

impl MessageSink for Observations {
    fn record(&self, r: &MessageRecord<'_>) {
        self.0.lock().unwrap().push(r.observation.cloned());
    }
}

struct Setup {
    filter: Arc<DmarcFilter<Questions<ZoneFile>>>,
    logger: Arc<Logger>,
    observations: Arc<Observations>,
    counter: Arc<Counter>,
    metrics: Arc<Metrics>,
    asked: Arc<Mutex<Vec<String>>>,
}

/// The filter with `settings` over the defaults, as the daemon builds it from its
/// configuration (authserv-id mx.receiver.example).
fn setup(key: &SigningKey, settings: &[&str]) -> Setup {
    let mut o = vec![Override::new("authserv_id", "mx.receiver.example")];
    o.extend(settings.iter().map(|s| Override::parse(s).unwrap()));
    let s = MilterConfig::load(None, &o)
        .unwrap()
        .validate("mx")
        .unwrap();
    let logger = Arc::new(Logger::memory());
    let metrics = Metrics::new();
    let observations = Arc::new(Observations::default());
    let counter = Counter::new(100, metrics.clone());
    let sinks: Vec<Arc<dyn MessageSink>> = vec![
        Arc::new(LogSink(logger.clone())),
        observations.clone(),
        counter.clone(),
    ];
    let asked = Arc::new(Mutex::new(Vec::new()));
    let filter = Arc::new(DmarcFilter::new(
        s.policy,
        Arc::new(Questions(zone(key), asked.clone())),
        Arc::new(FixedDraw(0)),
        sinks,
        metrics.clone(),
    ));
    Setup {
        filter,
        logger,
        observations,
        counter,
        metrics,
        asked,
    }
}

async fn from_the_list(s: &Setup, msg: &[u8]) -> Vec<Reply> {
    deliver(
        s.filter.clone(),
        LIST_IP,
        "mx.lists.example",
        "list-bounces@lists.example",
        &["user@receiver.example"],
        msg,
    )
    .await
}

fn authentication_results(replies: &[Reply]) -> String {
    replies
        .iter()
        .find_map(|r| match r {
            Reply::InsertHeader { name, value, .. } if name == "Authentication-Results" => Some(
                value
                    .replace("\r\n\t", " ")
                    .replace("\n\t", " ")
                    .trim()
                    .to_owned(),
            ),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Authentication-Results in {replies:?}"))
}

#[tokio::test]
async fn a_trusted_sealer_gets_a_forwarded_failure_accepted_and_counted_with_the_override() {
    let key = SigningKey::generate_ed25519().unwrap();
    let msg = sealed(&key);

    // Without trust: the chain is verified and reported, p=reject applies.
    let plain = setup(&key, &[]);
    let r = from_the_list(&plain, &msg).await;
    assert!(
        matches!(r.last(), Some(Reply::ReplyCode(t)) if t.to_wire().starts_with("550 5.7.1")),
        "{r:?}"
    );
    let obs = plain.observations.0.lock().unwrap()[0].clone().unwrap();
    assert_eq!(
        (obs.dmarc.as_str(), obs.disposition.as_str()),
        ("fail", "reject")
    );
    assert!(obs.overrides.is_empty());
    assert!(
        plain.logger.lines()[0].contains(", arc=pass, dmarc=fail, policy=reject, action=reject"),
        "{:?}",
        plain.logger.lines()
    );

    // The list trusted (written as a postmaster might: any case, a trailing dot).
    let trusted = setup(&key, &[r#"arc.trusted_sealers=["Lists.Example."]"#]);
    let r = from_the_list(&trusted, &msg).await;
    assert_eq!(r.last(), Some(&Reply::Accept), "{r:?}");
    let ar = authentication_results(&r);
    assert!(ar.starts_with("mx.receiver.example;"), "{ar}");
    assert!(
        ar.contains("arc=pass (i=1 sealed by lists.example) header.oldest-pass=1"),
        "{ar}"
    );
    assert!(ar.contains("dmarc=fail"), "DMARC itself still fails: {ar}");
    let line = &trusted.logger.lines()[0];
    assert!(
        line.contains(
            ", arc=pass, dmarc=fail, policy=reject, override=trusted_forwarder sealer=lists.example, action=accept"
        ),
        "{line}"
    );
    let obs = trusted.observations.0.lock().unwrap()[0].clone().unwrap();
    assert_eq!(obs.header_from.as_deref(), Some("brand.example"));
    assert_eq!(obs.dmarc, "fail");
    assert_eq!(obs.disposition, "none");
    assert_eq!(obs.overrides.len(), 1);
    assert_eq!(obs.overrides[0].kind, "trusted_forwarder");
    assert_eq!(
        obs.overrides[0].comment,
        "forwarded by lists.example, whose ARC seal verified; at hop 1 (mx.lists.example) \
         DKIM passed for brand.example"
    );

    // The counter holds it, and writes the override into the store's row.
    assert_eq!(trusted.counter.pending(), (1, 1));
    let db = tempfile::tempdir().unwrap();
    let path = db.path().join("counts.sqlite");
    let mut flusher = Flusher::new(
        trusted.counter.clone(),
        StoreWriter::new(path.display().to_string()),
        Arc::new(Logger::memory()),
        trusted.metrics.clone(),
    );
    assert_eq!(flusher.flush().await, Ok(1));
    let mut store = dmarc_store::Store::open_sqlite(&path).unwrap();
    let rows = store
        .observation_counts(Some("brand.example"), 0, i64::MAX)
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].count, 1);
    assert_eq!(rows[0].observation, obs);
    assert_eq!(rows[0].observation.overrides[0].kind, "trusted_forwarder");
}

#[tokio::test]
async fn arc_turned_off_asks_no_arc_key_and_reports_no_arc() {
    let key = SigningKey::generate_ed25519().unwrap();
    let msg = sealed(&key);
    let off = setup(&key, &["arc.enabled=false"]);
    let r = from_the_list(&off, &msg).await;
    assert!(
        matches!(r.last(), Some(Reply::ReplyCode(t)) if t.to_wire().starts_with("550 5.7.1")),
        "{r:?}"
    );
    assert!(
        !off.asked
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.contains("arc._domainkey")),
        "{:?}",
        off.asked.lock().unwrap()
    );
    let line = &off.logger.lines()[0];
    assert!(!line.contains(", arc="), "{line}");

    // On (the default), the key is asked once.
    let on = setup(&key, &[]);
    let r = from_the_list(&on, &msg).await;
    assert!(matches!(r.last(), Some(Reply::ReplyCode(_))), "{r:?}");
    let asked = on.asked.lock().unwrap();
    assert_eq!(
        asked
            .iter()
            .filter(|q| q.eq_ignore_ascii_case("TXT arc._domainkey.lists.example"))
            .count(),
        1,
        "{asked:?}"
    );
}

#[test]
fn arc_settings_are_validated() {
    let check = |settings: &[&str]| {
        let o: Vec<Override> = settings
            .iter()
            .map(|s| Override::parse(s).unwrap())
            .collect();
        MilterConfig::load(None, &o)
            .unwrap()
            .validate("mx")
            .map(|s| s.policy.arc)
            .map_err(|e| e.to_string())
    };
    let a = check(&[r#"arc.trusted_sealers=["Lists.Example.", "lists.example", "fwd.example"]"#])
        .unwrap();
    assert!(a.enabled);
    assert_eq!(a.trusted_sealers, ["lists.example", "fwd.example"]);
    let e = check(&[r#"arc.trusted_sealers=["lists example"]"#]).unwrap_err();
    assert!(
        e.starts_with("arc.trusted_sealers:") && e.contains("\"lists example\""),
        "{e}"
    );
    let e = check(&[r#"arc.trusted_sealers=["user@lists.example"]"#]).unwrap_err();
    assert!(e.starts_with("arc.trusted_sealers:"), "{e}");
    let e = check(&[
        "arc.enabled=false",
        r#"arc.trusted_sealers=["lists.example"]"#,
    ])
    .unwrap_err();
    assert!(e.contains("set arc.enabled = true"), "{e}");
    assert!(!check(&["arc.enabled=false"]).unwrap().enabled);
}
