//! ARC in the receiver session: the chain verified with its keys asked in the DKIM round,
//! the `arc=` result of Authentication-Results (and its round trip through our parser), the
//! explanation, the JSON, turning ARC off, and every branch of the trusted-forwarder
//! decision (accept, untrusted sealer, chain failed, no aligned pass in the AAR, a DMARC
//! pass or temperror left alone), down to the Observation an aggregate report is made of.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use dmarc_proto::FixedClock;
use dmarc_proto::arc::ChainStatus;
use dmarc_proto::arc::forwarder::NoOverride;
use dmarc_proto::arc::seal::{SealOptions, seal};
use dmarc_proto::auth_results;
use dmarc_proto::dkim::SigningKey;
use dmarc_proto::dmarc::DmarcResult;
use dmarc_proto::dns::{DnsError, DnsResult, Lookup, MxRecord};
use dmarc_receiver::{
    Action, FixedDraw, Receiver, ReceiverConfig, SmtpFacts, Verdicts, verify_message,
};
use futures_executor::block_on;

const NOW: u64 = 1_760_000_000;
const LIST_IP: &str = "192.0.2.25";

/// TXT records by name; every question is recorded; `slow` names time out.
#[derive(Default)]
struct Zone {
    txt: HashMap<String, Vec<u8>>,
    slow: Vec<String>,
    asked: Mutex<Vec<String>>,
}

impl Zone {
    fn asked(&self, name: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n.eq_ignore_ascii_case(name))
            .count()
    }
}

impl Lookup for Zone {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.asked.lock().unwrap().push(name.clone());
        if self.slow.contains(&name) {
            return Err(DnsError::Temporary("time-out".into()));
        }
        self.txt
            .get(&name)
            .map(|v| vec![v.clone()])
            .ok_or(DnsError::NxDomain)
    }
    async fn a(&self, _: &str) -> DnsResult<Ipv4Addr> {
        Err(DnsError::NxDomain)
    }
    async fn aaaa(&self, _: &str) -> DnsResult<Ipv6Addr> {
        Err(DnsError::NxDomain)
    }
    async fn mx(&self, _: &str) -> DnsResult<MxRecord> {
        Err(DnsError::NxDomain)
    }
    async fn ptr(&self, _: IpAddr) -> DnsResult<String> {
        Err(DnsError::NxDomain)
    }
}

const MESSAGE: &str = "From: Alice <alice@brand.example>\r\nTo: list@lists.example\r\n\
Subject: [list] hello\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n\
Message-ID: <1@brand.example>\r\n\r\nHello, world.\r\n-- \r\nThe list footer\r\n";

/// brand.example publishes p=reject and an SPF record for its own servers only;
/// lists.example publishes its ARC key and an SPF record that passes for the list's IP.
fn zone(key: &SigningKey) -> Zone {
    let mut z = Zone::default();
    z.txt.insert(
        "_dmarc.brand.example".into(),
        b"v=DMARC1; p=reject".to_vec(),
    );
    z.txt.insert(
        "brand.example".into(),
        b"v=spf1 ip4:198.51.100.0/24 -all".to_vec(),
    );
    z.txt.insert(
        "lists.example".into(),
        format!("v=spf1 ip4:{LIST_IP} -all").into_bytes(),
    );
    z.txt.insert(
        "arc._domainkey.lists.example".into(),
        key.dns_record().unwrap().into_bytes(),
    );
    z
}

/// The message as lists.example forwards it: sealed with `results` as what it saw.
fn sealed(key: &SigningKey, results: &str) -> Vec<u8> {
    let opts = SealOptions::new("lists.example", "arc", "mx.lists.example");
    let set = seal(
        MESSAGE.as_bytes(),
        key,
        &opts,
        &[results.to_string()],
        ChainStatus::None,
        &FixedClock::from_unix_seconds(NOW - 60),
    )
    .unwrap();
    [set.to_prepend().as_bytes(), MESSAGE.as_bytes()].concat()
}

const SAW_BRAND: &str = "spf=pass smtp.mailfrom=alice@brand.example; \
dkim=pass header.d=brand.example header.s=s1; dmarc=pass header.from=brand.example";

fn list_facts() -> SmtpFacts {
    SmtpFacts::new(LIST_IP.parse().unwrap(), "mx.lists.example")
        .with_mail_from("list-bounces@lists.example")
}

fn run(zone: &Zone, config: &ReceiverConfig, facts: &SmtpFacts, msg: &[u8]) -> Verdicts {
    block_on(verify_message(
        zone,
        &FixedClock::from_unix_seconds(NOW),
        &FixedDraw(0),
        config,
        facts,
        msg,
    ))
}

fn config() -> ReceiverConfig {
    ReceiverConfig::new("mx.receiver.example")
}

#[test]
fn chain_verified_and_reported_without_trust() {
    let key = SigningKey::generate_ed25519().unwrap();
    let zone = zone(&key);
    let msg = sealed(&key, SAW_BRAND);
    let v = run(&zone, &config(), &list_facts(), &msg);
    let arc = v.arc.as_ref().expect("ARC on by default");
    assert_eq!(arc.status, ChainStatus::Pass, "{}", arc.reason());
    assert_eq!(arc.instances, 1);
    assert_eq!(arc.oldest_pass, Some(1));
    assert_eq!(arc.hop(1).unwrap().authserv_id(), Some("mx.lists.example"));
    // DMARC fails (the list's SPF is not aligned, no DKIM), and without trust nothing
    // changes.
    assert_eq!(v.dmarc.result, DmarcResult::Fail);
    assert_eq!(v.action, Action::Reject);
    assert!(v.trusted_forwarder.is_none());
    assert!(v.observation().overrides.is_empty());
    // The key was asked once, with the DMARC record and SPF.
    assert_eq!(zone.asked("arc._domainkey.lists.example"), 1);

    // Authentication-Results: arc= as the big receivers write it, and it parses back.
    let header = v.authentication_results_header();
    assert!(
        header.contains(
            "arc=pass (i=1 sealed by lists.example) header.oldest-pass=1 smtp.remote-ip=192.0.2.25"
        ),
        "{header}"
    );
    assert_eq!(header, v.authentication_results().to_header());
    let value = v.authentication_results().to_string();
    let parsed = auth_results::parse(&value).unwrap();
    let r = parsed.results.iter().find(|r| r.method == "arc").unwrap();
    assert_eq!(r.result, "pass");
    assert_eq!(r.property("header", "oldest-pass"), Some("1"));
    assert_eq!(r.property("smtp", "remote-ip"), Some(LIST_IP));

    // In words, and in JSON.
    let words = v.explain();
    assert!(
        words.contains(
            "ARC: forwarded by lists.example, whose seal verified; at the first hop \
             (mx.lists.example) SPF passed for brand.example, DKIM passed for brand.example, \
             DMARC passed for brand.example."
        ),
        "{words}"
    );
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["arc"]["result"], "pass");
    assert_eq!(json["arc"]["instances"], 1);
    assert_eq!(json["arc"]["oldest_pass"], 1);
    assert!(json["arc"]["reason"].as_str().unwrap().contains("verified"));
    assert_eq!(json["arc"]["hops"][0]["authserv_id"], "mx.lists.example");
    assert_eq!(json["arc"]["hops"][0]["results"][1]["method"], "dkim");
    assert_eq!(json["arc"]["hops"][0]["seal"], "pass");
    assert!(json["arc"]["trusted_forwarder"].is_null());
}

#[test]
fn a_trusted_sealer_turns_the_failure_into_accept() {
    let key = SigningKey::generate_ed25519().unwrap();
    let zone = zone(&key);
    let msg = sealed(&key, SAW_BRAND);
    let config = config().with_trusted_sealers(["Lists.Example."]);
    let v = run(&zone, &config, &list_facts(), &msg);
    assert_eq!(
        v.dmarc.result,
        DmarcResult::Fail,
        "DMARC itself still fails"
    );
    assert_eq!(v.action, Action::Accept);
    let o = v.trusted_forwarder.clone().unwrap().expect("override");
    assert_eq!(o.sealer, "lists.example");
    assert_eq!(o.vouched_instance, 1);
    assert_eq!(o.evidence, "dkim=pass header.d=brand.example");
    // The aggregate report's row: disposition none, reason trusted_forwarder naming the
    // sealer.
    let obs = v.observation();
    assert_eq!(obs.dmarc, "fail");
    assert_eq!(obs.disposition, "none");
    assert_eq!(obs.overrides.len(), 1);
    assert_eq!(obs.overrides[0].kind, "trusted_forwarder");
    assert_eq!(
        obs.overrides[0].comment,
        "forwarded by lists.example, whose ARC seal verified; at hop 1 (mx.lists.example) \
         DKIM passed for brand.example"
    );
    assert!(
        v.explain().contains(
            "Accepted although DMARC failed (trusted_forwarder): forwarded by lists.example"
        ),
        "{}",
        v.explain()
    );
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["action"], "accept");
    assert_eq!(json["arc"]["trusted_forwarder"]["accepted"], true);
    assert_eq!(
        json["arc"]["trusted_forwarder"]["reason"],
        "trusted_forwarder"
    );
    // The DMARC record was asked once: the second evaluation took it from the memo.
    assert_eq!(zone.asked("_dmarc.brand.example"), 1);
}

#[test]
fn an_untrusted_sealer_changes_nothing() {
    let key = SigningKey::generate_ed25519().unwrap();
    let zone = zone(&key);
    let msg = sealed(&key, SAW_BRAND);
    let config = config().with_trusted_sealers(["forwarder.example"]);
    let v = run(&zone, &config, &list_facts(), &msg);
    assert_eq!(v.action, Action::Reject);
    assert_eq!(
        v.trusted_forwarder,
        Some(Err(NoOverride::SealerNotTrusted("lists.example".into())))
    );
    assert!(v.observation().overrides.is_empty());
    assert_eq!(v.observation().disposition, "reject");
    assert!(
        v.explain().contains(
            "Not accepted as forwarded mail: the newest ARC sealer lists.example is not trusted."
        ),
        "{}",
        v.explain()
    );
}

#[test]
fn a_failed_chain_vouches_for_nothing() {
    let key = SigningKey::generate_ed25519().unwrap();
    let zone = zone(&key);
    let msg = String::from_utf8(sealed(&key, SAW_BRAND))
        .unwrap()
        .replace("Hello, world.", "Hello, moon.");
    let config = config().with_trusted_sealers(["lists.example"]);
    let v = run(&zone, &config, &list_facts(), msg.as_bytes());
    let arc = v.arc.as_ref().unwrap();
    assert_eq!(arc.status, ChainStatus::Fail);
    assert_eq!(v.action, Action::Reject);
    assert_eq!(
        v.trusted_forwarder,
        Some(Err(NoOverride::ChainDidNotPass(ChainStatus::Fail)))
    );
    let header = v.authentication_results_header();
    assert!(header.contains("arc=fail reason="), "{header}");
    assert!(
        v.explain()
            .contains("ARC: the ARC chain failed: ARC-Message-Signature i=1"),
        "{}",
        v.explain()
    );
}

#[test]
fn an_aar_without_an_aligned_pass_vouches_for_nothing() {
    let key = SigningKey::generate_ed25519().unwrap();
    let zone = zone(&key);
    let msg = sealed(
        &key,
        "spf=pass smtp.mailfrom=news@other.example; dkim=pass header.d=other.example; \
         dkim=fail header.d=brand.example",
    );
    let config = config().with_trusted_sealers(["lists.example"]);
    let v = run(&zone, &config, &list_facts(), &msg);
    assert_eq!(v.arc.as_ref().unwrap().status, ChainStatus::Pass);
    assert_eq!(v.action, Action::Reject);
    assert_eq!(v.trusted_forwarder, Some(Err(NoOverride::NoAlignedPass(1))));
}

#[test]
fn a_pass_is_left_alone() {
    let key = SigningKey::generate_ed25519().unwrap();
    let zone = zone(&key);
    let msg = sealed(&key, SAW_BRAND);
    // Straight from brand.example's own server: SPF passes and aligns.
    let facts = SmtpFacts::new("198.51.100.7".parse().unwrap(), "mail.brand.example")
        .with_mail_from("alice@brand.example");
    let config = config().with_trusted_sealers(["lists.example"]);
    let v = run(&zone, &config, &facts, &msg);
    assert_eq!(v.dmarc.result, DmarcResult::Pass);
    assert_eq!(v.action, Action::Accept);
    assert!(v.trusted_forwarder.is_none());
    assert!(v.observation().overrides.is_empty());
}

#[test]
fn a_temperror_is_left_alone() {
    let key = SigningKey::generate_ed25519().unwrap();
    let mut zone = zone(&key);
    zone.slow.push("_dmarc.brand.example".into());
    let msg = sealed(&key, SAW_BRAND);
    let config = config().with_trusted_sealers(["lists.example"]);
    let v = run(&zone, &config, &list_facts(), &msg);
    assert_eq!(v.dmarc.result, DmarcResult::TempError);
    assert_eq!(v.action, Action::TempFail);
    assert!(v.trusted_forwarder.is_none());
    assert_eq!(v.arc.as_ref().unwrap().status, ChainStatus::Pass);
}

#[test]
fn arc_can_be_turned_off() {
    let key = SigningKey::generate_ed25519().unwrap();
    let zone = zone(&key);
    let msg = sealed(&key, SAW_BRAND);
    let config = config()
        .without_arc()
        .with_trusted_sealers(["lists.example"]);
    let v = run(&zone, &config, &list_facts(), &msg);
    assert!(v.arc.is_none());
    assert!(v.trusted_forwarder.is_none());
    assert_eq!(v.action, Action::Reject);
    let header = v.authentication_results_header();
    assert!(!header.contains(" arc="), "{header}");
    assert_eq!(zone.asked("arc._domainkey.lists.example"), 0);
    assert!(serde_json::to_value(&v).unwrap()["arc"].is_null());
}

#[test]
fn a_message_without_arc_is_arc_none() {
    let key = SigningKey::generate_ed25519().unwrap();
    let zone = zone(&key);
    let v = run(&zone, &config(), &list_facts(), MESSAGE.as_bytes());
    let arc = v.arc.as_ref().unwrap();
    assert_eq!(arc.status, ChainStatus::None);
    let header = v.authentication_results_header();
    assert!(
        header.ends_with("arc=none smtp.remote-ip=192.0.2.25\r\n"),
        "{header}"
    );
    assert!(!v.explain().contains(" ARC:"), "{}", v.explain());
}

/// The staged session fed field by field and the body in chunks (the milter's way, the
/// header block owned by the session) gives the verdict of the single call.
#[test]
fn the_streaming_session_agrees() {
    let key = SigningKey::generate_ed25519().unwrap();
    let zone = zone(&key);
    let msg = sealed(&key, SAW_BRAND);
    let config = config().with_trusted_sealers(["lists.example"]);
    let whole = run(&zone, &config, &list_facts(), &msg);
    let clock = FixedClock::from_unix_seconds(NOW);
    let receiver = Receiver {
        lookup: &zone,
        clock: &clock,
        rng: &FixedDraw(0),
        config: &config,
    };
    let parsed = dmarc_proto::message::Message::parse(&msg);
    let mut tx = receiver
        .connect(LIST_IP.parse().unwrap(), "mx.lists.example")
        .mail_from("list-bounces@lists.example");
    tx.rcpt_to("bob@receiver.example");
    for f in parsed.headers() {
        tx.header(f.name(), f.value());
    }
    let mut body = tx.end_of_headers();
    for chunk in parsed.body().chunks(5) {
        body.body(chunk);
    }
    let v = block_on(body.finish());
    assert_eq!(v.arc, whole.arc);
    assert_eq!(v.trusted_forwarder, whole.trusted_forwarder);
    assert_eq!(v.action, Action::Accept);
}

/// The session drives `msg` as a milter does: fields one by one, the body in chunks.
fn run_streamed(zone: &Zone, config: &ReceiverConfig, msg: &[u8]) -> Verdicts {
    let clock = FixedClock::from_unix_seconds(NOW);
    let receiver = Receiver {
        lookup: zone,
        clock: &clock,
        rng: &FixedDraw(0),
        config,
    };
    let parsed = dmarc_proto::message::Message::parse(msg);
    let mut tx = receiver
        .connect(LIST_IP.parse().unwrap(), "mx.lists.example")
        .mail_from("list-bounces@lists.example");
    for f in parsed.headers() {
        tx.header(f.name(), f.value());
    }
    let mut body = tx.end_of_headers();
    for chunk in parsed.body().chunks(7) {
        body.body(chunk);
    }
    block_on(body.finish())
}

/// DKIM and ARC share their body hashes: the author's signature and the list's AMS agree
/// when the list left the body alone, and each gets its own verdict when the list changed
/// it (the two `bh=` then differ), on the whole-message path and the streamed one.
#[test]
fn dkim_and_arc_share_body_hashes_and_keep_their_verdicts() {
    use dmarc_proto::dkim::sign::sign;
    use dmarc_proto::dkim::{DkimResult, SignOptions};
    let list_key = SigningKey::generate_ed25519().unwrap();
    let brand_key = SigningKey::generate_ed25519().unwrap();
    let mut zone = zone(&list_key);
    zone.txt.insert(
        "s1._domainkey.brand.example".into(),
        brand_key.dns_record().unwrap().into_bytes(),
    );
    let signed_at = FixedClock::from_unix_seconds(NOW - 120);
    let opts = SignOptions::new("brand.example", "s1");
    let signature = sign(MESSAGE.as_bytes(), &brand_key, &opts, &signed_at).unwrap();
    let signed = format!("{signature}{MESSAGE}");
    let changed = format!("{signed}Unsubscribe: https://lists.example/u\r\n");
    let config = config();
    for (original, dkim_wanted) in [(&signed, DkimResult::Pass), (&changed, DkimResult::Fail)] {
        let opts = SealOptions::new("lists.example", "arc", "mx.lists.example");
        let set = seal(
            original.as_bytes(),
            &list_key,
            &opts,
            &[SAW_BRAND.to_string()],
            ChainStatus::None,
            &FixedClock::from_unix_seconds(NOW - 60),
        )
        .unwrap();
        let msg = [set.to_prepend().as_bytes(), original.as_bytes()].concat();
        let whole = run(&zone, &config, &list_facts(), &msg);
        let streamed = run_streamed(&zone, &config, &msg);
        for v in [&whole, &streamed] {
            assert_eq!(v.dkim.len(), 1);
            assert_eq!(v.dkim[0].result, dkim_wanted, "{:?}", v.dkim[0].problem);
            assert_eq!(v.arc.as_ref().unwrap().status, ChainStatus::Pass);
        }
        assert_eq!(whole.dkim, streamed.dkim);
        assert_eq!(whole.arc, streamed.arc);
    }
}
