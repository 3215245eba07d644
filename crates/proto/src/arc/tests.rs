//! Unit tests of the ARC module: parsing, the structural rules of §5.2, sealing round
//! trips, the `arc=` result and the trusted-forwarder decision.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::forwarder::{NoOverride, TRUSTED_FORWARDER, TrustedSealers, trusted_forwarder_override};
use super::seal::{SealError, SealOptions, seal};
use super::*;
use crate::FixedClock;
use crate::dkim::SigningKey;
use crate::dmarc::{
    AuthResult, DmarcInput, DmarcOptions, DmarcOutput, DmarcResult, SpfIdentity, evaluate,
};
use crate::dns::{DnsError, DnsResult, Lookup, MxRecord};

/// TXT records by name; the name in `.1` times out.
#[derive(Default)]
struct Zone(HashMap<String, Vec<u8>>, Option<String>);

impl Lookup for Zone {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        if self.1.as_deref() == Some(name) {
            return Err(DnsError::Temporary("time-out".into()));
        }
        self.0
            .get(&name.to_ascii_lowercase())
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

const T: u64 = 1_750_000_000;
const MESSAGE: &[u8] = b"From: Alice <alice@brand.example>\r\nTo: list@lists.example\r\n\
Subject: hello\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\nMessage-ID: <1@brand.example>\r\n\
\r\nHello, world.\r\n";

/// Hops with Ed25519 keys published in `zone`.
struct Hops {
    zone: Zone,
    keys: Vec<(String, SigningKey)>,
}

impl Hops {
    fn new(domains: &[&str]) -> Self {
        let mut zone = Zone::default();
        let mut keys = Vec::new();
        for d in domains {
            let k = SigningKey::generate_ed25519().expect("key");
            zone.0.insert(
                format!("arc._domainkey.{d}"),
                k.dns_record().expect("record").into_bytes(),
            );
            keys.push((d.to_string(), k));
        }
        Hops { zone, keys }
    }

    fn verify(&self, msg: &[u8]) -> ArcOutput {
        futures_util::FutureExt::now_or_never(ArcVerifier::default().verify(
            msg,
            &self.zone,
            &FixedClock::from_unix_seconds(T + 10),
        ))
        .expect("no I/O")
    }

    /// Seals `msg` as hop `k` (0-based) with the chain status it verifies.
    fn seal(&self, msg: &[u8], k: usize, results: &str) -> Result<Vec<u8>, SealError> {
        self.seal_edited(msg, msg, k, results)
    }

    /// Verifies `received`, then seals `msg` (the message as this hop changed it).
    fn seal_edited(
        &self,
        received: &[u8],
        msg: &[u8],
        k: usize,
        results: &str,
    ) -> Result<Vec<u8>, SealError> {
        let (d, key) = self.keys.get(k).expect("hop");
        let status = self.verify(received).status;
        let opts = SealOptions::new(d.as_str(), "arc", format!("mx.{d}"));
        let set = seal(
            msg,
            key,
            &opts,
            &[results.to_string()],
            status,
            &FixedClock::from_unix_seconds(T + k as u64),
        )?;
        Ok([set.to_prepend().as_bytes(), msg].concat())
    }
}

fn replace(msg: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8_lossy(msg)
        .replacen(from, to, 1)
        .into_bytes()
}

#[test]
fn no_sets_is_none() {
    let hops = Hops::new(&[]);
    let out = hops.verify(MESSAGE);
    assert_eq!(out.status, ChainStatus::None);
    assert_eq!(out.instances, 0);
    assert_eq!(out.reason(), "no ARC sets");
    assert_eq!(out.method_result(None).to_string(), "arc=none");
}

#[test]
fn three_hops_pass_with_oldest_pass_and_hop_results() {
    let hops = Hops::new(&["one.example", "two.example", "three.example"]);
    let m1 = hops
        .seal(
            MESSAGE,
            0,
            "spf=pass smtp.mailfrom=brand.example; dkim=pass header.d=brand.example",
        )
        .expect("seal 1");
    let m2 = hops
        .seal(&m1, 1, "spf=fail smtp.mailfrom=one.example")
        .expect("seal 2");
    let m3 = hops
        .seal(&m2, 2, "spf=pass smtp.mailfrom=two.example")
        .expect("seal 3");
    let out = hops.verify(&m3);
    assert_eq!(out.status, ChainStatus::Pass, "{}", out.reason());
    assert_eq!(out.instances, 3);
    assert_eq!(out.oldest_pass, Some(1));
    assert_eq!(out.newest_sealer(), Some("three.example"));
    let first = out.hop(1).expect("hop 1");
    assert_eq!(first.authserv_id(), Some("mx.one.example"));
    let Some(Ok(ar)) = &first.authentication_results else {
        panic!("AAR 1 unreadable")
    };
    assert_eq!(ar.results.len(), 2);
    assert_eq!(ar.results[1].property("header", "d"), Some("brand.example"));
    assert_eq!(
        out.method_result(Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))))
            .to_string(),
        "arc=pass (i=3 sealed by three.example) header.oldest-pass=1 smtp.remote-ip=192.0.2.1"
    );
    assert!(
        out.reason().contains("3 ARC sets verified"),
        "{}",
        out.reason()
    );
}

#[test]
fn a_list_that_edits_moves_oldest_pass() {
    let hops = Hops::new(&["one.example", "list.example"]);
    let m1 = hops
        .seal(MESSAGE, 0, "dkim=pass header.d=brand.example")
        .expect("seal 1");
    let edited = replace(&m1, "Subject: hello", "Subject: [list] hello");
    let m2 = hops
        .seal_edited(&m1, &edited, 1, "arc=pass")
        .expect("seal 2");
    let out = hops.verify(&m2);
    assert_eq!(out.status, ChainStatus::Pass, "{}", out.reason());
    assert_eq!(out.oldest_pass, Some(2));
    assert_eq!(
        out.hop(1).and_then(|h| h.message_signature.clone()),
        Some(Err(crate::dkim::Problem::SignatureMismatch))
    );
}

#[test]
fn changes_after_the_last_seal_fail() {
    let hops = Hops::new(&["one.example", "two.example"]);
    let m1 = hops
        .seal(MESSAGE, 0, "spf=pass smtp.mailfrom=brand.example")
        .expect("seal 1");
    let m2 = hops.seal(&m1, 1, "arc=pass").expect("seal 2");
    let body = replace(&m2, "Hello, world.", "Hello, moon.");
    let out = hops.verify(&body);
    assert_eq!(out.status, ChainStatus::Fail);
    assert_eq!(
        out.problem,
        Some(ArcProblem::MessageSignature(
            2,
            crate::dkim::Problem::BodyHashMismatch
        ))
    );
    // An older AAR edited: the seals break.
    let aar = replace(
        &m2,
        "spf=pass smtp.mailfrom=brand.example",
        "spf=pass smtp.mailfrom=evil.example",
    );
    let out = hops.verify(&aar);
    assert_eq!(out.status, ChainStatus::Fail);
    assert!(
        matches!(out.problem, Some(ArcProblem::Seal(_, _))),
        "{:?}",
        out.problem
    );
    // A failed chain has no oldest-pass: the older AMS is not checked (§5.2 step 5 only
    // for a chain whose seals verify).
    assert_eq!(out.oldest_pass, None);
    assert_eq!(out.hop(1).and_then(|h| h.message_signature.clone()), None);
    assert_eq!(
        out.hop(2).and_then(|h| h.message_signature.clone()),
        Some(Ok(()))
    );
}

#[test]
fn oldest_pass_stops_at_the_first_older_ams_that_fails() {
    // The third hop edits the message: the second AMS fails, and the first is older than
    // that failure.
    let hops = Hops::new(&["one.example", "relay.example", "list.example"]);
    let m1 = hops
        .seal(MESSAGE, 0, "dkim=pass header.d=brand.example")
        .expect("seal 1");
    let m2 = hops.seal(&m1, 1, "arc=pass").expect("seal 2");
    let edited = replace(&m2, "Subject: hello", "Subject: [list] hello");
    let m3 = hops
        .seal_edited(&m2, &edited, 2, "arc=pass")
        .expect("seal 3");
    let out = hops.verify(&m3);
    assert_eq!(out.status, ChainStatus::Pass, "{}", out.reason());
    assert_eq!(out.oldest_pass, Some(3));
    let checked = |i| out.hop(i).and_then(|h| h.message_signature.clone());
    assert_eq!(checked(3), Some(Ok(())));
    assert_eq!(
        checked(2),
        Some(Err(crate::dkim::Problem::SignatureMismatch))
    );
    // Older than the first failure: not checked.
    assert_eq!(checked(1), None);
    for i in 1..=3 {
        assert_eq!(
            out.hop(i).and_then(|h| h.seal.clone()),
            Some(Ok(())),
            "seal {i}"
        );
    }
}

#[test]
fn structural_rules() {
    let hops = Hops::new(&["one.example", "two.example"]);
    let m1 = hops
        .seal(MESSAGE, 0, "spf=pass smtp.mailfrom=brand.example")
        .expect("seal 1");
    let m2 = hops.seal(&m1, 1, "arc=pass").expect("seal 2");
    let text = String::from_utf8_lossy(&m2).to_string();

    // A gap: instance 1's AAR renumbered 3.
    let gap = text.replacen(
        "ARC-Authentication-Results: i=1;",
        "ARC-Authentication-Results: i=3;",
        1,
    );
    let out = hops.verify(gap.as_bytes());
    assert_eq!(
        out.problem,
        Some(ArcProblem::Missing(FieldKind::AuthenticationResults, 1))
    );

    // A duplicate.
    let dup = text.replacen(
        "ARC-Authentication-Results: i=2;",
        "ARC-Authentication-Results: i=1;",
        1,
    );
    let out = hops.verify(dup.as_bytes());
    assert_eq!(
        out.problem,
        Some(ArcProblem::Duplicate(FieldKind::AuthenticationResults, 1))
    );

    // cv=none above instance 1.
    let cv = text.replacen("cv=pass", "cv=none", 1);
    let out = hops.verify(cv.as_bytes());
    assert_eq!(
        out.problem,
        Some(ArcProblem::SealNotPass(2, ChainStatus::None))
    );

    // cv=fail at the newest seal ends the chain, without DNS.
    let failed = text.replacen("cv=pass", "cv=fail", 1);
    let out = hops.verify(failed.as_bytes());
    assert_eq!(out.problem, Some(ArcProblem::NewestSealSaysFail(2)));
    assert!(out.reason().contains("cv=fail"));

    // More than 50.
    let many = format!("ARC-Authentication-Results: i=51; x; none\r\n{text}");
    let out = hops.verify(many.as_bytes());
    assert_eq!(out.problem, Some(ArcProblem::TooManySets(51)));

    // An unreadable i=.
    let bad = text.replacen(
        "ARC-Authentication-Results: i=1;",
        "ARC-Authentication-Results: i=x;",
        1,
    );
    let out = hops.verify(bad.as_bytes());
    assert!(
        matches!(
            out.problem,
            Some(ArcProblem::BadInstance(FieldKind::AuthenticationResults, _))
        ),
        "{:?}",
        out.problem
    );
    assert_eq!(out.status, ChainStatus::Fail);
}

#[test]
fn sealing_rules() {
    let hops = Hops::new(&["one.example", "two.example"]);
    let (d, key) = &hops.keys[0];
    let opts = SealOptions::new(d.as_str(), "arc", "mx.one.example");
    let clock = FixedClock::from_unix_seconds(T);
    // The first seal says cv=none.
    assert!(matches!(
        seal(MESSAGE, key, &opts, &[], ChainStatus::Pass, &clock),
        Err(SealError::NotSound(_))
    ));
    let m1 = hops
        .seal(MESSAGE, 0, "spf=pass smtp.mailfrom=brand.example")
        .expect("seal 1");
    assert!(matches!(
        seal(&m1, key, &opts, &[], ChainStatus::None, &clock),
        Err(SealError::NotFirst(1))
    ));
    // A broken chain is sealed with cv=fail, covering only its own set; after that, no
    // more sets.
    let broken = replace(&m1, "Hello, world.", "Hello, moon.");
    let m2 = hops.seal(&broken, 1, "arc=fail").expect("seal 2");
    let out = hops.verify(&m2);
    assert_eq!(out.problem, Some(ArcProblem::NewestSealSaysFail(2)));
    assert!(matches!(
        hops.seal(&m2, 0, "arc=fail"),
        Err(SealError::ChainAlreadyFailed(2))
    ));
}

#[test]
fn results_cannot_inject_fields() {
    let hops = Hops::new(&["one.example"]);
    let (d, key) = &hops.keys[0];
    let opts = SealOptions::new(d.as_str(), "arc", "mx.one.example");
    let clock = FixedClock::from_unix_seconds(T);
    for bad in [
        "spf=pass\r\nX-Evil: 1",
        "spf=pass\nX-Evil: 1",
        "spf=pass\rX: 1",
    ] {
        assert!(matches!(
            seal(
                MESSAGE,
                key,
                &opts,
                &[bad.to_string()],
                ChainStatus::None,
                &clock
            ),
            Err(SealError::AuthenticationResults(_))
        ));
    }
    // Folded results (LF or CRLF) are kept, folded with CRLF.
    let set = seal(
        MESSAGE,
        key,
        &opts,
        &["spf=pass\n\tsmtp.mailfrom=brand.example".to_string()],
        ChainStatus::None,
        &clock,
    )
    .expect("seal");
    assert!(
        set.authentication_results
            .contains("spf=pass\r\n\tsmtp.mailfrom=brand.example")
    );
    // An authserv-id that is not a token is quoted, its line break made a space.
    let odd = SealOptions::new(d.as_str(), "arc", "mx one\r\nX: y");
    let set = seal(MESSAGE, key, &odd, &[], ChainStatus::None, &clock).expect("seal");
    assert_eq!(
        set.authentication_results.matches('\n').count(),
        1,
        "{:?}",
        set.authentication_results
    );
}

#[test]
fn aar_parsing() {
    let a = parse_aar(b" i=2; mx.example; spf=pass smtp.mailfrom=a.example").expect("aar");
    assert_eq!(a.instance, 2);
    assert_eq!(a.results.expect("results").authserv_id, "mx.example");
    assert!(parse_aar(b" mx.example; i=2; spf=pass").is_err());
    assert!(parse_aar(b" i=2 mx.example; spf=pass").is_err());
    assert!(parse_aar(b" i=0; mx.example; none").is_err());
    // A broken payload is kept as an error, not a broken chain.
    let a = parse_aar(b" i=1; mx.example; dmarc=pass by x (y").expect("aar");
    assert!(a.results.is_err());
}

#[test]
fn hostile_input_never_panics() {
    let hops = Hops::new(&["one.example"]);
    let m1 = hops
        .seal(MESSAGE, 0, "spf=pass smtp.mailfrom=brand.example")
        .expect("seal 1");
    for cut in 0..m1.len() {
        let _ = hops.verify(&m1[..cut]);
        let mut flipped = m1.clone();
        flipped[cut] ^= 0x55;
        let _ = hops.verify(&flipped);
    }
}

/// DMARC for brand.example, through the real evaluation: `record` published at
/// `_dmarc.brand.example` in `zone`, the SPF identity `spf_domain` passing (and not
/// aligned), no DKIM.
fn dmarc_of(zone: &Zone, spf_domain: &str) -> DmarcOutput {
    let input = DmarcInput {
        author_domain: "brand.example".into(),
        spf: vec![SpfIdentity::new(spf_domain, AuthResult::Pass)],
        dkim: Vec::new(),
        pct_draw: None,
    };
    now(evaluate(zone, &input, &DmarcOptions::default()))
}

fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_util::FutureExt::now_or_never(f).expect("no I/O")
}

fn decide(
    zone: &Zone,
    dmarc: &DmarcOutput,
    arc: &ArcOutput,
    trusted: &TrustedSealers,
) -> Result<super::forwarder::ForwarderOverride, NoOverride> {
    now(trusted_forwarder_override(
        zone,
        dmarc,
        arc,
        trusted,
        &DmarcOptions::default(),
    ))
}

#[test]
fn trusted_forwarder_decision() {
    let mut hops = Hops::new(&["forward.example", "lists.example"]);
    hops.zone.0.insert(
        "_dmarc.brand.example".into(),
        b"v=DMARC1; p=reject".to_vec(),
    );
    let m1 = hops
        .seal(
            MESSAGE,
            0,
            "spf=pass smtp.mailfrom=bounce@mail.brand.example; dkim=fail header.d=brand.example",
        )
        .expect("seal 1");
    let m2 = hops
        .seal(&m1, 1, "arc=pass; spf=fail smtp.mailfrom=forward.example")
        .expect("seal 2");
    let arc = hops.verify(&m2);
    assert_eq!(arc.status, ChainStatus::Pass);
    let dmarc = dmarc_of(&hops.zone, "lists.example");
    assert_eq!(dmarc.result, DmarcResult::Fail, "{}", dmarc.reason);

    // Both trusted: hop 1's AAR counts, and its SPF pass aligns (relaxed).
    let both = TrustedSealers::new(["lists.example.", "FORWARD.example"]);
    let o = decide(&hops.zone, &dmarc, &arc, &both).expect("override");
    assert_eq!(o.kind, TRUSTED_FORWARDER);
    assert_eq!(o.sealer, "lists.example");
    assert_eq!(o.vouched_instance, 1);
    assert_eq!(o.vouched_by, "mx.forward.example");
    assert_eq!(o.evidence, "spf=pass smtp.mailfrom=mail.brand.example");
    assert_eq!(
        o.comment,
        "forwarded by lists.example, whose ARC seal verified; at hop 1 (mx.forward.example) \
         SPF passed for mail.brand.example"
    );

    // Only the newest trusted: its own AAR shows no aligned pass.
    let newest = TrustedSealers::new(["lists.example"]);
    assert_eq!(
        decide(&hops.zone, &dmarc, &arc, &newest),
        Err(NoOverride::NoAlignedPass(2))
    );
    // Strict SPF alignment published: mail.brand.example is not brand.example.
    let mut strict = Zone(hops.zone.0.clone(), None);
    strict.0.insert(
        "_dmarc.brand.example".into(),
        b"v=DMARC1; p=reject; aspf=s".to_vec(),
    );
    let strict_dmarc = dmarc_of(&strict, "lists.example");
    assert_eq!(strict_dmarc.result, DmarcResult::Fail);
    assert_eq!(
        decide(&strict, &strict_dmarc, &arc, &both),
        Err(NoOverride::NoAlignedPass(1))
    );
    // Only the older one trusted: the newest sealer decides.
    let older = TrustedSealers::new(["forward.example"]);
    assert_eq!(
        decide(&hops.zone, &dmarc, &arc, &older),
        Err(NoOverride::SealerNotTrusted("lists.example".into()))
    );
    // Off by default.
    assert_eq!(
        decide(&hops.zone, &dmarc, &arc, &TrustedSealers::default()),
        Err(NoOverride::Off)
    );
    // Never changes a pass.
    let pass = dmarc_of(&hops.zone, "brand.example");
    assert_eq!(pass.result, DmarcResult::Pass);
    assert_eq!(
        decide(&hops.zone, &pass, &arc, &both),
        Err(NoOverride::DmarcDidNotFail(DmarcResult::Pass))
    );
    // Nor a temperror: the record lookup fails.
    let mut broken_dns = Zone(hops.zone.0.clone(), None);
    broken_dns.0.remove("_dmarc.brand.example");
    broken_dns.1 = Some("_dmarc.brand.example".into());
    let temp = dmarc_of(&broken_dns, "lists.example");
    assert_eq!(temp.result, DmarcResult::TempError, "{}", temp.reason);
    assert_eq!(
        decide(&hops.zone, &temp, &arc, &both),
        Err(NoOverride::DmarcDidNotFail(DmarcResult::TempError))
    );
    // A broken chain vouches for nothing.
    let broken = hops.verify(&replace(&m2, "Hello, world.", "Hello, moon."));
    assert_eq!(
        decide(&hops.zone, &dmarc, &broken, &both),
        Err(NoOverride::ChainDidNotPass(ChainStatus::Fail))
    );
}

#[test]
fn chunked_body_gives_the_same_verdict() {
    let hops = Hops::new(&["one.example"]);
    let messy = [MESSAGE, b"trailing  space \r\n\r\n\r\n".as_slice()].concat();
    let m1 = hops
        .seal(&messy, 0, "spf=pass smtp.mailfrom=brand.example")
        .expect("seal");
    let msg = crate::message::Message::parse(&m1);
    for size in [1, 3, 7, 64] {
        let mut v = ArcVerifier::default().start(&msg);
        for chunk in msg.body().chunks(size) {
            v.body(chunk);
        }
        let out = futures_util::FutureExt::now_or_never(
            v.finish(&hops.zone, &FixedClock::from_unix_seconds(T + 10)),
        )
        .expect("no I/O");
        assert_eq!(out.status, ChainStatus::Pass, "{size}: {}", out.reason());
    }
    assert_eq!(hops.verify(&m1).status, ChainStatus::Pass);
}

/// A chain that shares its body hashes with the DKIM verification of the same message:
/// an AMS hashing the body as a DKIM signature does costs no second hash, and both
/// verdicts are what each verifier gives alone (whole body and chunks alike).
#[test]
fn shared_body_hashes_give_the_verdicts_of_each_alone() {
    use crate::dkim::sign::{SignOptions, sign};
    use crate::dkim::{DkimResult, Verifier};
    let mut hops = Hops::new(&["one.example"]);
    let brand = SigningKey::generate_ed25519().expect("key");
    hops.zone.0.insert(
        "s1._domainkey.brand.example".into(),
        brand.dns_record().expect("record").into_bytes(),
    );
    let clock = FixedClock::from_unix_seconds(T + 10);
    let field = sign(
        MESSAGE,
        &brand,
        &SignOptions::new("brand.example", "s1"),
        &FixedClock::from_unix_seconds(T),
    )
    .expect("sign");
    let signed = [field.as_bytes(), MESSAGE].concat();
    let sealed = hops.seal(&signed, 0, "dkim=pass").expect("seal");
    let msg = crate::message::Message::parse(&sealed);
    for chunk in [None, Some(5)] {
        let mut dkim = Verifier::default().start_message(&msg);
        let mut arc = ArcVerifier::default().start(&msg);
        arc.share_body_hashes(&mut dkim);
        // relaxed/relaxed, SHA-256, no l= on both sides: one hash.
        assert!(format!("{dkim:?}").contains("body_hashes: 1"), "{dkim:?}");
        match chunk {
            None => dkim.whole_body(msg.body()),
            Some(n) => msg.body().chunks(n).for_each(|c| dkim.body(c)),
        }
        let mut names = dkim.key_names();
        names.extend(arc.key_names());
        let keys =
            futures_util::FutureExt::now_or_never(crate::dkim::fetch_keys(&hops.zone, &names))
                .expect("no I/O");
        let chain = arc.finish_with_dkim(&keys, &clock, &mut dkim);
        let results = dkim.finish_with_keys(&keys, &clock);
        assert_eq!(chain.status, ChainStatus::Pass, "{}", chain.reason());
        assert_eq!(results.len(), 1);
        assert_eq!(
            results[0].result,
            DkimResult::Pass,
            "{:?}",
            results[0].problem
        );
        assert_eq!(chain, hops.verify(&sealed));
    }
}
