//! DKIM conformance (RFC 6376, RFC 8301, RFC 8463), driven by the outside corpora in
//! `../shared/corpora` (see its HOW_TO_USE.md §3) and by generated messages.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use dmarc_proto::FixedClock;
use dmarc_proto::dkim::sign::{SignOptions, sign, signature_for_field};
use dmarc_proto::dkim::{
    Algorithm, BodyCanonicalizer, Canon, Canonicalization, DkimResult, DkimSigner, Problem,
    SignError, SignatureResult, SigningKey, Verifier, VerifyConfig, canonicalize_body,
    canonicalize_header, parse_signature,
};
use dmarc_proto::dns::{DnsError, DnsResult, Lookup, MxRecord};
use dmarc_proto::message::Message;
use dmarc_testkit::{corpus, to_crlf};
use serde_yaml::Value;

// ---------------------------------------------------------------------------------------
// Test DNS and helpers

/// An in-memory TXT zone: names absent are NXDOMAIN. Counts queries.
#[derive(Default)]
struct MapLookup {
    txt: HashMap<String, Vec<Vec<u8>>>,
    queries: AtomicUsize,
}

impl MapLookup {
    fn add(&mut self, name: &str, value: &[u8]) {
        self.txt
            .entry(name.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(value.to_vec());
    }
}

impl Lookup for MapLookup {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.txt
            .get(&name.trim_end_matches('.').to_ascii_lowercase())
            .cloned()
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

fn verify(msg: &[u8], dns: &MapLookup, now: u64) -> Vec<SignatureResult> {
    verify_with(&Verifier::default(), msg, dns, now)
}

fn verify_with(v: &Verifier, msg: &[u8], dns: &MapLookup, now: u64) -> Vec<SignatureResult> {
    futures::executor::block_on(v.verify(msg, dns, &FixedClock::from_unix_seconds(now)))
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(corpus(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_yaml::from_slice(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.split_whitespace().collect::<String>())
        .unwrap()
}

const NOW: u64 = 1_795_330_000; // 2026-11-22

/// Cases expected to fail, with the reason. The test fails when a listed case passes, so
/// the list stays true.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

fn check_expected(failures: &[String]) {
    let mut unexpected = Vec::new();
    for f in failures {
        if !EXPECTED_FAILURES.iter().any(|(id, _)| f.starts_with(id)) {
            unexpected.push(f.clone());
        }
    }
    assert!(
        unexpected.is_empty(),
        "failures:\n{}",
        unexpected.join("\n")
    );
}

fn assert_expected_failures_still_fail(passing: &[&str]) {
    for (id, why) in EXPECTED_FAILURES {
        assert!(
            !passing.contains(id),
            "{id} is listed as an expected failure ({why}) but passes: remove it"
        );
    }
}

/// An RSA signer for keys that aws-lc refuses to sign with (under 2048 bits), so the
/// 1024-bit corpus keys can be exercised. Test-only: the product signs with aws-lc.
struct RustCryptoRsa(rsa::RsaPrivateKey);

impl RustCryptoRsa {
    fn from_pem(pem: &[u8]) -> Self {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let text = String::from_utf8_lossy(pem);
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(&text)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(&text))
            .unwrap();
        RustCryptoRsa(key)
    }
}

impl DkimSigner for RustCryptoRsa {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaSha256
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignError> {
        use rsa::signature::{SignatureEncoding, Signer};
        let k = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(self.0.clone());
        Ok(k.sign(data).to_vec())
    }
}

fn key_from_file(rel: &str) -> Box<dyn DkimSigner> {
    let pem = read(rel);
    match SigningKey::from_pem(&pem) {
        Ok(k) => Box::new(k),
        Err(_) => Box::new(RustCryptoRsa::from_pem(&pem)),
    }
}

fn all_canons() -> Vec<Canonicalization> {
    let mut v = Vec::new();
    for header in [Canon::Simple, Canon::Relaxed] {
        for body in [Canon::Simple, Canon::Relaxed] {
            v.push(Canonicalization { header, body });
        }
    }
    v
}

fn prepend(field: &str, msg: &[u8]) -> Vec<u8> {
    let mut out = field.as_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

// ---------------------------------------------------------------------------------------
// §3.4 canonicalisation: dkim-canonicalization/canonicalization-vectors.yaml

fn canon_of(v: &Value) -> Canon {
    match v.as_str().unwrap() {
        "simple" => Canon::Simple,
        "relaxed" => Canon::Relaxed,
        other => panic!("{other}"),
    }
}

#[test]
fn rfc6376_3_4_canonicalization_vectors() {
    let doc = yaml("dkim-canonicalization/canonicalization-vectors.yaml");
    let mut failures = Vec::new();
    let mut count = 0;
    for case in doc["header_cases"].as_sequence().unwrap() {
        count += 1;
        let id = case["id"].as_str().unwrap();
        let canon = canon_of(&case["canonicalization"]);
        let mut out = Vec::new();
        let expect: Vec<u8> = if let Some(fields) = case["input_fields"].as_sequence() {
            for f in fields {
                let value = f["value"].as_str().unwrap();
                let value = value.strip_suffix("\r\n").unwrap_or(value);
                canonicalize_header(
                    canon,
                    f["name"].as_str().unwrap().as_bytes(),
                    value.as_bytes(),
                    true,
                    &mut out,
                );
            }
            case["expect_fields"]
                .as_sequence()
                .unwrap()
                .iter()
                .flat_map(|f| {
                    format!(
                        "{}:{}",
                        f["name"].as_str().unwrap(),
                        f["value"].as_str().unwrap()
                    )
                    .into_bytes()
                })
                .collect()
        } else {
            let line = case["input_line"].as_str().unwrap();
            let msg = Message::parse(line.as_bytes());
            let f = &msg.headers()[0];
            canonicalize_header(canon, f.name(), f.value(), true, &mut out);
            case["expect_line"].as_str().unwrap().as_bytes().to_vec()
        };
        if out != expect {
            failures.push(format!(
                "{id}: got {:?}, want {:?}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expect)
            ));
        }
    }
    for case in doc["body_cases"].as_sequence().unwrap() {
        count += 1;
        let id = case["id"].as_str().unwrap();
        let canon = canon_of(&case["canonicalization"]);
        let input = case["input"].as_str().unwrap();
        let expect = case["expect"].as_str().unwrap();
        let got = canonicalize_body(canon, input.as_bytes());
        let fixed = canonicalize_body(canon, expect.as_bytes());
        if got != expect.as_bytes() || fixed != expect.as_bytes() {
            failures.push(format!("{id}: got {:?}", String::from_utf8_lossy(&got)));
        }
    }
    for case in doc["body_hash_cases"].as_sequence().unwrap() {
        count += 1;
        let id = case["id"].as_str().unwrap();
        let canon = canon_of(&case["canonicalization"]);
        let body = match case["input"].as_str() {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let raw = to_crlf(&read("dkim-canonicalization/mailauth-message1.eml"));
                Message::parse(&raw).body().to_vec()
            }
        };
        let mut c = canonicalize_body(canon, &body);
        if let Some(l) = case["l"].as_u64() {
            c.truncate(l as usize);
        }
        let alg = match case["hash"].as_str().unwrap() {
            "sha256" => &aws_lc_rs::digest::SHA256,
            _ => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        };
        let got = base64::engine::general_purpose::STANDARD
            .encode(aws_lc_rs::digest::digest(alg, &c).as_ref());
        if got != case["expect_bh"].as_str().unwrap() {
            failures.push(format!("{id}: got {got}"));
        }
    }
    for case in doc["c_tag_cases"].as_sequence().unwrap() {
        count += 1;
        let c = case["c"].as_str();
        let sig = match c {
            Some(c) => {
                format!("v=1; a=rsa-sha256; c={c}; d=x.example; s=s; h=from; bh=AA==; b=AA==")
            }
            None => "v=1; a=rsa-sha256; d=x.example; s=s; h=from; bh=AA==; b=AA==".to_string(),
        };
        let got = parse_signature(sig.as_bytes());
        let ok = match (&case["expect"], got) {
            (Value::String(s), Err(e))
                if matches!(e.problem, Problem::UnknownCanonicalization(_)) =>
            {
                s == "invalid"
            }
            (Value::Mapping(_), Ok(sig)) => {
                sig.canonicalization
                    == Canonicalization {
                        header: canon_of(&case["expect"]["header"]),
                        body: canon_of(&case["expect"]["body"]),
                    }
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("c_tag {c:?}"));
        }
    }
    assert_eq!(count, 16 + 12 + 10 + 9);
    check_expected(&failures);
}

/// The streaming canonicaliser gives the same body hash however the body is cut.
#[test]
fn body_hash_independent_of_chunking() {
    let raw = to_crlf(&read("dkim-canonicalization/mailauth-message1.eml"));
    let body = Message::parse(&raw).body().to_vec();
    for canon in [Canon::Simple, Canon::Relaxed] {
        let whole = canonicalize_body(canon, &body);
        for size in [1, 2, 3, 7, 64, 1000] {
            let mut out = Vec::new();
            let mut c = BodyCanonicalizer::new(canon);
            for ch in body.chunks(size) {
                c.update(ch, &mut out);
            }
            c.finish(&mut out);
            assert_eq!(out, whole, "{canon:?} chunks of {size}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// RFC 8463 Appendix A: dkim-rfc8463/

fn rfc8463_dns() -> MapLookup {
    let dns: HashMap<String, String> =
        serde_json::from_slice(&read("dkim-rfc8463/dns.json")).unwrap();
    let mut l = MapLookup::default();
    for (k, v) in dns {
        l.add(&k, v.as_bytes());
    }
    l
}

#[test]
fn rfc8463_appendix_a3_verifies() {
    let msg = to_crlf(&read("dkim-rfc8463/rfc8463-appendix-a3-signed.eml"));
    let dns = rfc8463_dns();
    let r = verify(&msg, &dns, 1_528_637_909 + 10);
    assert_eq!(r.len(), 2);
    for (res, (alg, sel)) in r
        .iter()
        .zip([("ed25519-sha256", "brisbane"), ("rsa-sha256", "test")])
    {
        assert_eq!(res.result, DkimResult::Pass, "{res:?}");
        assert_eq!(res.info.algorithm.as_deref(), Some(alg));
        assert_eq!(res.info.selector.as_deref(), Some(sel));
    }
    // Same key name for both d= is asked once per distinct selector.
    assert_eq!(dns.queries.load(Ordering::Relaxed), 2);
}

#[test]
fn rfc8463_signing_reproduces_b_exactly() {
    let signed = to_crlf(&read("dkim-rfc8463/rfc8463-appendix-a3-signed.eml"));
    let msg = Message::parse(&signed);
    let sig_fields: Vec<_> = msg.fields("DKIM-Signature").collect();
    assert_eq!(sig_fields.len(), 2);
    // The unsigned message: without its two DKIM-Signature fields.
    let start = sig_fields[1].offset() + sig_fields[1].raw().len();
    let unsigned = &signed[start..];

    let seed = b64(std::str::from_utf8(&read(
        "dkim-rfc8463/rfc8463-appendix-a1-ed25519-secret.b64",
    ))
    .unwrap());
    let ed = SigningKey::ed25519_from_seed(&seed).unwrap();
    let rsa_key =
        RustCryptoRsa::from_pem(&read("dkim-rfc8463/rfc8463-appendix-a1-rsa-private.pem"));
    let signers: [&dyn DkimSigner; 2] = [&ed, &rsa_key];
    for (field, signer) in sig_fields.iter().zip(signers) {
        let sig = parse_signature(field.value()).unwrap();
        let got = signature_for_field(unsigned, field.raw(), signer).unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(&got),
            base64::engine::general_purpose::STANDARD.encode(&sig.signature),
            "{}",
            sig.algorithm
        );
    }
    // aws-lc refuses to sign with an RSA key under 2048 bits (RFC 8301 §3.2 "SHOULD use at
    // least 2048"): the product never makes such signatures.
    assert!(
        SigningKey::from_pem(&read("dkim-rfc8463/rfc8463-appendix-a1-rsa-private.pem")).is_err()
    );
}

// ---------------------------------------------------------------------------------------
// dkimpy: dkim-dkimpy/vectors.yaml

fn dkimpy_value(v: &str) -> Vec<u8> {
    if let Some(rel) = v.strip_prefix("data/") {
        String::from_utf8(read(&format!("dkim-dkimpy/data/{rel}")))
            .unwrap()
            .trim()
            .as_bytes()
            .to_vec()
    } else {
        v.as_bytes().to_vec()
    }
}

#[test]
fn dkimpy_verify_vectors() {
    let doc = yaml("dkim-dkimpy/vectors.yaml");
    let mut failures = Vec::new();
    let mut passing = Vec::new();
    let vectors = doc["verify_vectors"].as_sequence().unwrap();
    assert_eq!(vectors.len(), 8);
    for v in vectors {
        let id = v["id"].as_str().unwrap();
        let mut dns = MapLookup::default();
        if let Some(m) = v["dns"].as_mapping() {
            for (k, val) in m {
                dns.add(k.as_str().unwrap(), &dkimpy_value(val.as_str().unwrap()));
            }
        }
        let raw = read(&format!("dkim-dkimpy/{}", v["message"].as_str().unwrap()));
        // dkimpy gives the same results on the raw (LF) bytes and after CRLF conversion.
        for (form, msg) in [("raw", raw.clone()), ("crlf", to_crlf(&raw))] {
            let results = verify(&msg, &dns, NOW);
            let expect = v["expect"].as_sequence().unwrap();
            let mut ok = results.len() >= expect.len();
            for e in expect {
                let i = e["sig"].as_u64().unwrap() as usize;
                let want_pass = e["result"].as_str().unwrap() == "pass";
                let got = results.get(i).map(|r| r.result);
                if (got == Some(DkimResult::Pass)) != want_pass {
                    ok = false;
                }
            }
            if expect.is_empty() && !results.is_empty() {
                ok = false;
            }
            if ok {
                passing.push(id);
            } else {
                failures.push(format!("{id} ({form}): {results:?}"));
            }
        }
    }
    // The invalid d= is refused without asking DNS with the raw value.
    check_expected(&failures);
    assert_expected_failures_still_fail(&passing);
}

#[test]
fn dkimpy_invalid_domain_is_permerror_without_query() {
    let mut dns = MapLookup::default();
    dns.add(
        "test._domainkey.legitimate.com(.attacker.com",
        b"v=DKIM1; p=AAAA",
    );
    let msg = read("dkim-dkimpy/data/test.message.baddomain");
    let r = verify(&msg, &dns, NOW);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].result, DkimResult::PermError);
    assert!(matches!(r[0].problem, Some(Problem::InvalidDomain(_))));
    assert_eq!(dns.queries.load(Ordering::Relaxed), 0);
}

/// `bad_key_records`: none of them may let the RFC 6376 example signature verify.
#[test]
fn dkimpy_bad_key_records() {
    let doc = yaml("dkim-dkimpy/vectors.yaml");
    let msg = to_crlf(&read("dkim-dkimpy/data/rfc6376.signed.rsa.msg"));
    // The good record passes, as a control.
    let mut good = MapLookup::default();
    good.add(
        "test._domainkey.football.example.com",
        &dkimpy_value("data/test.txt"),
    );
    assert_eq!(verify(&msg, &good, NOW)[0].result, DkimResult::Pass);
    let bad = doc["bad_key_records"].as_sequence().unwrap();
    assert_eq!(bad.len(), 4);
    for b in bad {
        let rec = b["record"].as_str().unwrap();
        let mut dns = MapLookup::default();
        dns.add("test._domainkey.football.example.com", &dkimpy_value(rec));
        let r = verify(&msg, &dns, NOW);
        assert_ne!(r[0].result, DkimResult::Pass, "{rec}: {:?}", r[0]);
        let expected = match rec {
            "data/badversion.txt" | "data/badk.txt" => DkimResult::PermError,
            "data/test_bad.txt" => DkimResult::PermError,
            "data/test_tlsrpt.txt" => DkimResult::PermError,
            other => panic!("{other}"),
        };
        assert_eq!(r[0].result, expected, "{rec}: {:?}", r[0]);
    }
}

/// `key_pairs` x `sign_then_verify_inputs` x the four `c=` combinations.
#[test]
fn dkimpy_sign_then_verify() {
    let pairs: &[(&str, &str, &str)] = &[
        (
            "test._domainkey.example.com",
            "data/test.txt",
            "data/test.private",
        ),
        (
            "test._domainkey.example.com",
            "data/test2.txt",
            "data/test2.private",
        ),
        (
            "test._domainkey.example.com",
            "data/ed25519test.dns",
            "data/ed25519test.key",
        ),
        (
            "brisbane._domainkey.example.com",
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            "data/rfc8032_7_1.key",
        ),
        (
            "test._domainkey.example.com",
            "data/1024_testkey_wo_markers.pub.txt",
            "data/1024_testkey.key",
        ),
        (
            "test._domainkey.example.com",
            "data/1024_testkey_wo_markers.pub.rsa.txt",
            "data/1024_testkey.key",
        ),
        (
            "test._domainkey.example.com",
            "data/2048_testkey_wo_markers.pub.txt",
            "data/2048_testkey.key",
        ),
        (
            "test._domainkey.example.com",
            "data/2048_testkey_wo_markers.pub.rsa.txt",
            "data/2048_testkey.key",
        ),
        (
            "test._domainkey.example.com",
            "data/2048_testkey_PKCS8.key.pub.txt",
            "data/2048_testkey_PKCS8.key",
        ),
    ];
    let doc = yaml("dkim-dkimpy/vectors.yaml");
    let inputs = doc["sign_then_verify_inputs"].as_sequence().unwrap();
    assert_eq!(inputs.len(), 7);
    let mut runs = 0;
    for (name, record, key_file) in pairs {
        let selector = name.split('.').next().unwrap();
        let domain = name.split_once("._domainkey.").unwrap().1;
        let mut dns = MapLookup::default();
        dns.add(name, &dkimpy_value(record));
        let signer = key_from_file(&format!("dkim-dkimpy/{key_file}"));
        for input in inputs {
            let file = input["message"].as_str().unwrap();
            let msg = read(&format!("dkim-dkimpy/{file}"));
            for c in all_canons() {
                let mut opts = SignOptions::new(domain, selector);
                opts.canonicalization = c;
                let clock = FixedClock::from_unix_seconds(NOW);
                let res = sign(&msg, signer.as_ref(), &opts, &clock);
                if file.ends_with("test_nofrom.message") {
                    assert_eq!(res, Err(SignError::NoFrom));
                    continue;
                }
                let field = res.unwrap();
                let signed = prepend(&field, &msg);
                let r = verify(&signed, &dns, NOW);
                // Our signature is the first; message.mbox carries another (unverifiable) one.
                assert_eq!(
                    r[0].result,
                    DkimResult::Pass,
                    "{key_file} {file} {c}: {:?}",
                    r[0]
                );
                assert_eq!(r[0].info.domain.as_deref(), Some(domain));
                runs += 1;
            }
        }
    }
    assert_eq!(runs, pairs.len() * 6 * 4);
}

// ---------------------------------------------------------------------------------------
// mail-auth vectors: dkim-mail-auth/*.txt

#[test]
fn mail_auth_vectors() {
    let mut count = 0;
    for n in 1..=6 {
        let raw = read(&format!("dkim-mail-auth/{n:03}.txt"));
        let split = raw.windows(2).position(|w| w == b"\n\n").unwrap();
        let mut dns = MapLookup::default();
        for line in std::str::from_utf8(&raw[..split]).unwrap().lines() {
            let (name, value) = line.split_once(' ').unwrap();
            dns.add(name, value.as_bytes());
        }
        let msg = to_crlf(&raw[split + 2..]);
        let r = verify(&msg, &dns, 1_667_843_664);
        assert!(!r.is_empty());
        for s in &r {
            assert_eq!(s.result, DkimResult::Pass, "{n:03}.txt: {s:?}");
            count += 1;
        }
        if n == 5 {
            // x=1667930064: expired a second later.
            let late = verify(&msg, &dns, 1_667_930_065);
            assert_eq!(late[0].result, DkimResult::Neutral);
            assert_eq!(late[0].problem, Some(Problem::Expired));
            assert_eq!(late[0].reason().as_deref(), Some("signature expired"));
        }
    }
    assert_eq!(count, 8);
}

// ---------------------------------------------------------------------------------------
// mail-bench: every DKIM verdict agrees with dkimpy

fn mail_bench_dns() -> MapLookup {
    let zone: HashMap<String, HashMap<String, Vec<String>>> =
        serde_json::from_slice(&read("mail-bench/zone.json")).unwrap();
    let mut l = MapLookup::default();
    for (name, types) in zone {
        for v in types.get("TXT").into_iter().flatten() {
            l.add(&name, v.as_bytes());
        }
    }
    l
}

#[test]
fn mail_bench_verdicts_agree() {
    let dns = mail_bench_dns();
    let cases = String::from_utf8(read("mail-bench/cases.jsonl")).unwrap();
    let mut sigs = 0;
    let mut failures = Vec::new();
    let verifier = Verifier::default();
    for line in cases.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = case["file"].as_str().unwrap();
        let msg = read(&format!("mail-bench/{file}"));
        let results = verify_with(&verifier, &msg, &dns, NOW);
        let expect = case["dkim"].as_array().unwrap();
        if results.len() != expect.len() {
            failures.push(format!(
                "{file}: {} signatures, want {}",
                results.len(),
                expect.len()
            ));
            continue;
        }
        for (got, want) in results.iter().zip(expect) {
            sigs += 1;
            let want_result = want["result"].as_str().unwrap();
            if got.info.domain.as_deref() != want["d"].as_str()
                || got.info.selector.as_deref() != want["s"].as_str()
                || (got.result == DkimResult::Pass) != (want_result == "pass")
            {
                failures.push(format!("{file}: got {got:?}, want {want}"));
            } else if want_result != "pass" {
                // The forwarded_modified messages had a footer added to the body.
                assert_eq!(got.problem, Some(Problem::BodyHashMismatch), "{file}");
            }
        }
    }
    assert_eq!(sigs, 296);
    check_expected(&failures);
}

#[test]
fn mail_bench_streaming_matches_whole_message() {
    let dns = mail_bench_dns();
    let verifier = Verifier::default();
    let clock = FixedClock::from_unix_seconds(NOW);
    for (k, n) in [0, 3, 5, 7, 8, 24, 42, 100, 199, 250, 299]
        .into_iter()
        .enumerate()
    {
        let msg = read(&format!("mail-bench/messages/{n:05}.eml"));
        let whole = verify_with(&verifier, &msg, &dns, NOW);
        let parsed = Message::parse(&msg);
        let mut v = verifier.start(parsed.header_block());
        let names = v.key_names();
        let keys = futures::executor::block_on(dmarc_proto::dkim::fetch_keys(&dns, &names));
        for chunk in parsed.body().chunks(1 + k * 977) {
            v.body(chunk);
        }
        let streamed = v.finish_with_keys(&keys, &clock);
        assert_eq!(streamed, whole, "message {n}");
    }
}

// ---------------------------------------------------------------------------------------
// Edge cases of §3.4, §3.5, §6.1 and RFC 8301, on messages signed here.

fn ed_key() -> SigningKey {
    SigningKey::ed25519_from_seed(&[7u8; 32]).unwrap()
}

fn dns_for(key: &SigningKey, name: &str) -> MapLookup {
    let mut d = MapLookup::default();
    d.add(name, key.dns_record().unwrap().as_bytes());
    d
}

const BASIC: &[u8] =
    b"From: Joe <joe@example.com>\r\nTo: x@example.net\r\nSubject: hi\r\n\r\nHello\r\n";

fn sign_basic(opts: &SignOptions, key: &SigningKey, msg: &[u8]) -> Vec<u8> {
    let field = sign(msg, key, opts, &FixedClock::from_unix_seconds(NOW)).unwrap();
    prepend(&field, msg)
}

#[test]
fn oversigning_blocks_added_fields() {
    let key = ed_key();
    let dns = dns_for(&key, "s._domainkey.example.com");
    let opts = SignOptions::new("example.com", "s");
    let signed = sign_basic(&opts, &key, BASIC);
    assert_eq!(verify(&signed, &dns, NOW)[0].result, DkimResult::Pass);
    // A second Subject added below (or above) breaks it: Subject was oversigned.
    let mut added = signed.clone();
    let pos = added.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    added.splice(pos..pos, b"Subject: evil\r\n".iter().copied());
    assert_eq!(
        verify(&added, &dns, NOW)[0].problem,
        Some(Problem::SignatureMismatch)
    );
    // Without oversigning, a field added on top of the signed one is also caught
    // (bottom-up selection), but one appended below replaces the signed instance.
    let mut opts = SignOptions::new("example.com", "s");
    opts.oversign = false;
    let signed = sign_basic(&opts, &key, BASIC);
    let mut added = signed.clone();
    let pos = added.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    added.splice(
        pos..pos,
        b"Reply-To: evil@attacker.example\r\n".iter().copied(),
    );
    // Reply-To was not signed at all: still passes.
    assert_eq!(verify(&added, &dns, NOW)[0].result, DkimResult::Pass);
}

#[test]
fn body_length_is_verified_and_reported() {
    let key = ed_key();
    let dns = dns_for(&key, "s._domainkey.example.com");
    let mut opts = SignOptions::new("example.com", "s");
    opts.body_length = true;
    let signed = sign_basic(&opts, &key, BASIC);
    let r = verify(&signed, &dns, NOW);
    assert_eq!(r[0].result, DkimResult::Pass);
    assert_eq!(r[0].partial_body, None);
    let mut appended = signed.clone();
    appended.extend_from_slice(b"Appended footer\r\n");
    let r = verify(&appended, &dns, NOW);
    assert_eq!(r[0].result, DkimResult::Pass);
    assert_eq!(r[0].partial_body, Some((7, 24)));
    assert!(r[0].reason().unwrap().contains("only 7 of 24 body octets"));
    assert!(r[0].method_result().to_string().contains("reason="));
    // Truncated below l=: the body is shorter than signed.
    let cut = &signed[..signed.len() - 3];
    let r = verify(cut, &dns, NOW);
    assert!(matches!(
        r[0].problem,
        Some(Problem::BodyLengthExceeded { .. })
    ));
    assert_eq!(r[0].result, DkimResult::Fail);
}

#[test]
fn expiry_identity_and_sha1() {
    let key = ed_key();
    let dns = dns_for(&key, "s._domainkey.example.com");
    let mut opts = SignOptions::new("example.com", "s");
    opts.expire_after = Some(100);
    opts.identity = Some("joe@mail.example.com".into());
    let signed = sign_basic(&opts, &key, BASIC);
    assert_eq!(verify(&signed, &dns, NOW + 100)[0].result, DkimResult::Pass);
    let r = verify(&signed, &dns, NOW + 101);
    assert_eq!(
        (r[0].result, r[0].problem.clone()),
        (DkimResult::Neutral, Some(Problem::Expired))
    );
    assert_eq!(r[0].info.identity.as_deref(), Some("joe@mail.example.com"));
    // i= outside d= is refused at signing.
    opts.identity = Some("joe@other.example".into());
    assert!(sign(BASIC, &key, &opts, &FixedClock::from_unix_seconds(NOW)).is_err());
    // rsa-sha1 is refused with its own reason, and accepted when configured.
    let sha1 = b"DKIM-Signature: v=1; a=rsa-sha1; d=example.com; s=s; h=from; bh=AA==; b=AA==\r\n";
    let msg = prepend(std::str::from_utf8(sha1).unwrap(), BASIC);
    let r = verify(&msg, &dns, NOW);
    assert_eq!(
        (r[0].result, r[0].problem.clone()),
        (DkimResult::Policy, Some(Problem::Sha1NotAllowed))
    );
    let lenient = Verifier::new(VerifyConfig {
        allow_rsa_sha1: true,
        ..VerifyConfig::default()
    });
    let r = verify_with(&lenient, &msg, &dns, NOW);
    assert!(
        matches!(r[0].problem, Some(Problem::KeyTypeMismatch { .. })),
        "{r:?}"
    );
}

#[test]
fn key_record_problems() {
    let key = ed_key();
    let opts = SignOptions::new("example.com", "s");
    let signed = sign_basic(&opts, &key, BASIC);
    let rec = key.dns_record().unwrap();
    let check = |record: &str, want: DkimResult, problem: Problem| {
        let mut dns = MapLookup::default();
        dns.add("s._domainkey.example.com", record.as_bytes());
        let r = verify(&signed, &dns, NOW);
        assert_eq!(r[0].result, want, "{record}: {:?}", r[0]);
        assert_eq!(
            std::mem::discriminant(r[0].problem.as_ref().unwrap()),
            std::mem::discriminant(&problem),
            "{record}: {:?}",
            r[0]
        );
    };
    check(
        "v=DKIM1; k=ed25519; p=",
        DkimResult::PermError,
        Problem::KeyRevoked,
    );
    check(
        &rec.replace("k=ed25519", "k=rsa"),
        DkimResult::PermError,
        Problem::BadPublicKey(String::new()),
    );
    check(
        &format!("{rec}; h=sha1"),
        DkimResult::PermError,
        Problem::HashNotAllowedByKey(dmarc_proto::dkim::HashAlgorithm::Sha256),
    );
    check(
        &format!("{rec}; s=tlsrpt"),
        DkimResult::PermError,
        Problem::KeyNotForEmail,
    );
    // t=y: passes, flagged as testing.
    let mut dns = MapLookup::default();
    dns.add("s._domainkey.example.com", format!("{rec}; t=y").as_bytes());
    let r = verify(&signed, &dns, NOW);
    assert_eq!(r[0].result, DkimResult::Pass);
    assert!(r[0].testing);
    // No key at all.
    let r = verify(&signed, &MapLookup::default(), NOW);
    assert_eq!(
        (r[0].result, r[0].problem.clone()),
        (DkimResult::PermError, Some(Problem::NoKey))
    );
}

#[test]
fn strict_identity_flag() {
    let key = ed_key();
    let mut opts = SignOptions::new("example.com", "s");
    opts.identity = Some("joe@sub.example.com".into());
    let signed = sign_basic(&opts, &key, BASIC);
    let mut dns = MapLookup::default();
    dns.add(
        "s._domainkey.example.com",
        format!("{}; t=s", key.dns_record().unwrap()).as_bytes(),
    );
    let r = verify(&signed, &dns, NOW);
    assert_eq!(r[0].problem, Some(Problem::StrictIdentityMismatch));
}

#[test]
fn small_rsa_keys_are_refused() {
    // A 512-bit RSA key (RFC 8301 §3.2 refuses anything under 1024 bits).
    let record = "v=DKIM1; k=rsa; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKZP+u6vYwoRNmoZBZ7v+pu9yskzhRHGJUEdPqpSdB5RhQ0MB2twkMHopk2v/zjQ3RJV8RRGrG288WdY6/oPwpkCAwEAAQ==";
    let msg = prepend(
        "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AA==; b=AA==\r\n",
        BASIC,
    );
    let mut dns = MapLookup::default();
    dns.add("s._domainkey.example.com", record.as_bytes());
    let r = verify(&msg, &dns, NOW);
    assert_eq!(r[0].result, DkimResult::Policy, "{r:?}");
    assert!(matches!(
        r[0].problem,
        Some(Problem::KeyTooSmall {
            bits: 512,
            minimum: 1024
        })
    ));
    assert_eq!(
        r[0].reason().as_deref(),
        Some("key too small (512 bits, minimum 1024)")
    );
}

#[test]
fn malformed_signatures_from_the_wild() {
    let dns = MapLookup::default();
    let cases: &[(&[u8], Problem)] = &[
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=to; bh=AA==; b=AA==\r\n", Problem::FromNotSigned),
        (b"DKIM-Signature: a=rsa-sha256; d=example.com; s=s; h=from; bh=AA==; b=AA==\r\n", Problem::MissingTag("v")),
        (b"DKIM-Signature: v=1; a=rsa-sha512; d=example.com; s=s; h=from; bh=AA==; b=AA==\r\n", Problem::UnknownAlgorithm("rsa-sha512".into())),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AA==; b=AA==; q=http\r\n", Problem::UnsupportedQueryMethod("http".into())),
        (b"DKIM-Signature: v=1; v=1; a=rsa-sha256\r\n", Problem::SignatureSyntax(String::new())),
        (b"DKIM-Signature: garbage\r\n", Problem::SignatureSyntax(String::new())),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AA==; b=\r\n", Problem::BadTagValue("b", String::new())),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AA==; b=AA==; l=12x\r\n", Problem::BadTagValue("l", String::new())),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=ex\xc3\xa4mple.com; s=s; h=from; bh=AA==; b=AA==\r\n", Problem::InvalidDomain(String::new())),
    ];
    for (field, want) in cases {
        let msg = prepend(&String::from_utf8_lossy(field), BASIC);
        let msg = if field.iter().any(|b| *b >= 0x80) {
            let mut m = field.to_vec();
            m.extend_from_slice(BASIC);
            m
        } else {
            msg
        };
        let r = verify(&msg, &dns, NOW);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].result,
            DkimResult::PermError,
            "{:?}",
            String::from_utf8_lossy(field)
        );
        assert_eq!(
            std::mem::discriminant(r[0].problem.as_ref().unwrap()),
            std::mem::discriminant(want),
            "{:?}: {:?}",
            String::from_utf8_lossy(field),
            r[0].problem
        );
    }
    assert_eq!(dns.queries.load(Ordering::Relaxed), 0);
}

#[test]
fn lf_only_and_missing_separator() {
    let key = ed_key();
    let dns = dns_for(&key, "s._domainkey.example.com");
    for c in all_canons() {
        let mut opts = SignOptions::new("example.com", "s");
        opts.canonicalization = c;
        // Signed as CRLF, verified after conversion to LF, and the other way round.
        let signed = sign_basic(&opts, &key, BASIC);
        let lf: Vec<u8> = String::from_utf8(signed.clone())
            .unwrap()
            .replace("\r\n", "\n")
            .into_bytes();
        assert_eq!(verify(&lf, &dns, NOW)[0].result, DkimResult::Pass, "{c} LF");
        // A message with no body and no separator.
        let headers_only = b"From: a@example.com\r\nSubject: x";
        let signed = sign_basic(&opts, &key, headers_only);
        assert_eq!(
            verify(&signed, &dns, NOW)[0].result,
            DkimResult::Pass,
            "{c} no body"
        );
        // 8-bit bytes in a header.
        let eight = b"From: J\xf6rg <j@example.com>\r\nSubject: \xe9t\xe9\r\n\r\nx\r\n";
        let signed = sign_basic(&opts, &key, eight);
        assert_eq!(
            verify(&signed, &dns, NOW)[0].result,
            DkimResult::Pass,
            "{c} 8-bit"
        );
    }
}

#[test]
fn authentication_results_property_set() {
    let msg = to_crlf(&read("dkim-rfc8463/rfc8463-appendix-a3-signed.eml"));
    let r = verify(&msg, &rfc8463_dns(), NOW);
    assert_eq!(
        r[0].method_result().to_string(),
        "dkim=pass header.d=football.example.com header.i=@football.example.com \
         header.s=brisbane header.a=ed25519-sha256 header.b=\"/gCrinpc\""
    );
    let r = verify(&msg, &MapLookup::default(), NOW);
    assert!(r[1].method_result().to_string().starts_with(
        "dkim=permerror reason=\"no key for signature\" header.d=football.example.com"
    ));
}

// ---------------------------------------------------------------------------------------
// Property: sign-then-verify for every algorithm and canonicalisation.

fn rsa_2048() -> &'static SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::from_pem(&read("dkim-dkimpy/data/2048_testkey_PKCS8.key")).unwrap()
    })
}

fn header_line() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    (
        proptest::sample::select(vec!["Subject", "To", "Cc", "X-Tag", "Date", "Reply-To"]),
        "[ \t]{0,2}:[ \t]{0,3}",
        "[a-zA-Z0-9 \t.,<>@]{0,30}",
        proptest::option::of("[ \t]{1,2}[a-z ]{1,10}"),
    )
        .prop_map(|(n, colon, v, fold)| match fold {
            Some(f) => format!("{n}{colon}{v}\r\n{f}\r\n"),
            None => format!("{n}{colon}{v}\r\n"),
        })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn prop_sign_then_verify(
        headers in proptest::collection::vec(header_line(), 0..6),
        body in proptest::collection::vec("[a-z \t]{0,20}(\r\n|\n|)", 0..12),
        ed in proptest::bool::ANY,
        c in 0usize..4,
        lf in proptest::bool::ANY,
        l in proptest::bool::ANY,
    ) {
        let mut msg = String::from("From: A <a@example.com>\r\n");
        for h in &headers { msg.push_str(h); }
        msg.push_str("\r\n");
        for b in &body { msg.push_str(b); }
        let msg = if lf { msg.replace("\r\n", "\n") } else { msg };
        let ed_k = ed_key();
        let key: &SigningKey = if ed { &ed_k } else { rsa_2048() };
        let mut opts = SignOptions::new("example.com", "sel");
        opts.canonicalization = all_canons()[c];
        opts.body_length = l;
        opts.headers.push("x-tag".into());
        let field = sign(msg.as_bytes(), key, &opts, &FixedClock::from_unix_seconds(NOW)).unwrap();
        let signed = prepend(&field, msg.as_bytes());
        let dns = dns_for(key, "sel._domainkey.example.com");
        let r = verify(&signed, &dns, NOW);
        proptest::prop_assert_eq!(r.len(), 1);
        proptest::prop_assert_eq!(r[0].result, DkimResult::Pass, "{:?}\n{}", r[0], String::from_utf8_lossy(&signed));
        // Changing a signed header's content breaks it.
        let tampered = String::from_utf8(signed).unwrap().replacen("From: A", "From: B", 1);
        let r = verify(tampered.as_bytes(), &dns, NOW);
        proptest::prop_assert_eq!(r[0].result, DkimResult::Fail);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// Hostile input: random bytes, and signature fields cut and spliced at random, never
    /// panic and always give one result per DKIM-Signature field.
    #[test]
    fn prop_hostile_input_never_panics(
        noise in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        cut in 0usize..400,
        splice in proptest::collection::vec(proptest::sample::select(
            vec![b';', b'=', b' ', b'\r', b'\n', b'\t', b':', b'@', 0u8, 0xff, b'b', b'h']), 0..8),
    ) {
        let dns = rfc8463_dns();
        let base = to_crlf(&read("dkim-rfc8463/rfc8463-appendix-a3-signed.eml"));
        let _ = verify(&noise, &dns, NOW);
        let mut m = base.clone();
        let at = cut.min(m.len());
        m.splice(at..at, splice.iter().copied());
        let r = verify(&m, &dns, NOW);
        let fields = Message::parse(&m).fields("DKIM-Signature").count();
        proptest::prop_assert_eq!(r.len(), fields);
        let mut with_noise = b"DKIM-Signature: ".to_vec();
        with_noise.extend_from_slice(&noise);
        with_noise.extend_from_slice(b"\r\n");
        with_noise.extend_from_slice(&base);
        let _ = verify(&with_noise, &dns, NOW);
    }
}

#[test]
fn corpora_exist() {
    assert!(Path::new(&corpus("dkim-dkimpy/data")).is_dir());
}
