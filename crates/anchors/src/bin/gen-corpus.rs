//! Generates a signed corpus in the layout of `mail-bench` (`messages/NNNNN.eml`,
//! `cases.jsonl`, `zone.txt`, `zone.json`), for benchmarks larger than the corpus in
//! `../shared/corpora` (and kept out of git: write it under `target/`).
//!
//! 24 brand domains (each with an RSA-2048 key, an SPF record and a DMARC record of
//! varying policy), 4 service providers (own keys, SPF for their bounce domains), a
//! forwarder and an attacker network; the scenarios of mail-bench: direct mail, a
//! provider signing for itself and the brand, a provider signing for itself only,
//! forwarding intact and with a footer added after signing, spoofing. Bodies from 1 to
//! about 60 KB. Deterministic for a given N (a fixed pseudo-random sequence; only the
//! keys are random).
//!
//! Usage: gen-corpus DIR N

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use dmarc_proto::FixedClock;
use dmarc_proto::dkim::sign::sign;
use dmarc_proto::dkim::{SignOptions, SigningKey};

const BRANDS: usize = 24;
const ESPS: usize = 4;
const SIGNED_AT: u64 = 1_795_329_660;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "account", "order", "delivery", "invoice", "update", "reminder", "review", "report",
    "schedule", "payment", "please", "your", "the", "and", "for", "on", "in", "by", "this",
    "regards", "thanks", "team", "meeting", "project", "notice", "today", "tomorrow",
];

fn words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| WORDS[rng.below(WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Zone-file TXT data: the value in 255-byte character-strings.
fn txt(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c).replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Zone {
    txt: BTreeMap<String, Vec<String>>,
}

impl Zone {
    fn add(&mut self, name: &str, value: String) {
        self.txt.entry(name.to_owned()).or_default().push(value);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<usize>())) else {
        eprintln!("usage: gen-corpus DIR N");
        return ExitCode::from(2);
    };
    match generate(Path::new(dir), n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-corpus: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(dir: &Path, n: usize) -> Result<(), String> {
    let msgs = dir.join("messages");
    std::fs::create_dir_all(&msgs).map_err(|e| format!("{}: {e}", msgs.display()))?;
    let key = |what: &str| SigningKey::generate_rsa(2048).map_err(|e| format!("{what}: {e}"));
    let mut zone = Zone {
        txt: BTreeMap::new(),
    };
    let policies = [
        "p=none",
        "p=quarantine; fo=1",
        "p=reject",
        "p=quarantine; np=reject",
        "p=reject; t=y",
        "p=reject; sp=quarantine",
        "p=reject; adkim=s; aspf=s",
    ];
    let mut brand_keys = Vec::new();
    for b in 0..BRANDS {
        let d = format!("brand{b}.example");
        let k = key(&d)?;
        zone.add(
            &format!("s{b}._domainkey.{d}"),
            k.dns_record().map_err(|e| e.to_string())?,
        );
        zone.add(&d, format!("v=spf1 ip4:198.51.100.{} -all", b + 1));
        zone.add(
            &format!("_dmarc.{d}"),
            format!(
                "v=DMARC1; {}; rua=mailto:dmarc@{d}",
                policies[b % policies.len()]
            ),
        );
        brand_keys.push((d, format!("s{b}"), k));
    }
    let mut esp_keys = Vec::new();
    for e in 0..ESPS {
        let d = format!("esp{e}.example");
        let k = key(&d)?;
        zone.add(
            &format!("k1._domainkey.{d}"),
            k.dns_record().map_err(|e| e.to_string())?,
        );
        zone.add(
            &format!("bounces.{d}"),
            format!("v=spf1 ip4:203.0.113.{}/28 -all", 16 * e),
        );
        esp_keys.push((d, "k1".to_owned(), k));
    }
    zone.add(
        "forwarder.example",
        "v=spf1 ip4:192.0.2.0/24 -all".to_owned(),
    );
    zone.add(
        "attacker.example",
        "v=spf1 ip4:100.64.0.0/16 -all".to_owned(),
    );

    let clock = FixedClock::from_unix_seconds(SIGNED_AT);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
    let mut cases = String::new();
    for i in 0..n {
        let b = rng.below(BRANDS);
        let e = rng.below(ESPS);
        let brand = &brand_keys[b].0;
        let esp = &esp_keys[e].0;
        let scenario = [
            "direct",
            "esp_aligned_dkim",
            "esp_unaligned",
            "forwarded_intact",
            "forwarded_modified",
            "spoof",
        ][rng.below(6)];
        let mut body = String::new();
        let long = rng.below(10) == 0;
        let paragraphs = 1 + rng.below(if long { 400 } else { 40 });
        for _ in 0..paragraphs {
            let len = 8 + rng.below(12);
            let _ = write!(body, "{}\r\n\r\n", words(&mut rng, len));
        }
        let mut head = String::new();
        let _ = write!(
            head,
            "From: Sender <info@{brand}>\r\nTo: <user@receiver.example>\r\n\
             Subject: {}\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
             Message-ID: <{i:08x}.{b}@{brand}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n",
            words(&mut rng, 3)
        );
        for h in 0..rng.below(8) {
            let _ = write!(head, "X-Custom-{h}: {}\r\n", words(&mut rng, 4));
        }
        let message = format!("{head}\r\n{body}");
        let signers: Vec<&(String, String, SigningKey)> = match scenario {
            "direct" | "forwarded_intact" | "forwarded_modified" => vec![&brand_keys[b]],
            "esp_aligned_dkim" => vec![&esp_keys[e], &brand_keys[b]],
            "esp_unaligned" => vec![&esp_keys[e]],
            _ => vec![],
        };
        let mut signed = message.clone();
        for (d, s, k) in signers.iter().rev() {
            let field = sign(
                signed.as_bytes(),
                k,
                &SignOptions::new(d.as_str(), s.as_str()),
                &clock,
            )
            .map_err(|e| format!("signing for {d}: {e}"))?;
            signed = format!("{field}{signed}");
        }
        if scenario == "forwarded_modified" {
            signed.push_str("--\r\nlist footer added after signing\r\n");
        }
        let (ip, helo, mail_from) = match scenario {
            "direct" => (
                format!("198.51.100.{}", b + 1),
                format!("mail.{brand}"),
                format!("bounce@{brand}"),
            ),
            "esp_aligned_dkim" | "esp_unaligned" => (
                format!("203.0.113.{}", 16 * e + 1 + rng.below(14)),
                format!("mail.bounces.{esp}"),
                format!("b-{i}@bounces.{esp}"),
            ),
            "forwarded_intact" | "forwarded_modified" => (
                format!("192.0.2.{}", 1 + rng.below(250)),
                "mx.forwarder.example".to_owned(),
                if rng.below(4) == 0 {
                    String::new()
                } else {
                    format!("fwd-{i}@forwarder.example")
                },
            ),
            _ => (
                format!("100.64.{}.{}", rng.below(256), 1 + rng.below(250)),
                "mail.attacker.example".to_owned(),
                "x@attacker.example".to_owned(),
            ),
        };
        let file = format!("messages/{i:05}.eml");
        std::fs::write(dir.join(&file), signed.as_bytes()).map_err(|e| format!("{file}: {e}"))?;
        let case = serde_json::json!({
            "file": file, "ip": ip, "helo": helo, "mail_from": mail_from,
            "scenario": scenario, "from_domain": brand,
        });
        let _ = writeln!(cases, "{case}");
    }
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write("cases.jsonl", &cases)?;
    let mut zone_txt = String::from("; generated by gen-corpus\n$TTL 300\n");
    let mut json: BTreeMap<String, BTreeMap<&str, Vec<String>>> = BTreeMap::new();
    for (name, values) in &zone.txt {
        for v in values {
            let _ = writeln!(zone_txt, "{name}. IN TXT {}", txt(v));
        }
        json.entry(format!("{name}."))
            .or_default()
            .insert("TXT", values.clone());
    }
    write("zone.txt", &zone_txt)?;
    write(
        "zone.json",
        &serde_json::to_string(&json).map_err(|e| e.to_string())?,
    )?;
    eprintln!("gen-corpus: {n} messages in {}", dir.display());
    Ok(())
}
