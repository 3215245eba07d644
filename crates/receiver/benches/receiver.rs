//! The receiver's full verify path (`receiver::verify_message`: SPF for MAIL FROM and HELO,
//! every DKIM signature, DMARC, the Authentication-Results field) over the mail-bench
//! corpus (300 messages) with a warm cache, against
//!
//! * the DKIM floor: one SHA-256 pass over each message's bytes plus one RSA-2048
//!   verification per message, with aws-lc-rs (as `benches/dkim.rs` measures it);
//! * mail-auth 0.13.3's full path on the same cases: parse, `verify_dkim`, `verify_spf`
//!   (MAIL FROM, which checks HELO first as mail-auth does with `SpfParameters::verify`),
//!   `verify_dmarc` and its Authentication-Results, with every resolver cache filled in
//!   advance from `zone.json` (negative answers included), so that it never asks the
//!   network.
//!
//! Messages are read (and, for ours, parsed by the call itself) from memory.
//!
//! Run: `cargo bench -p dmarc-receiver --bench receiver`

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmarc_proto::FixedClock;
use dmarc_proto::dmarc::DmarcResult;

use dmarc_receiver::{FixedDraw, ReceiverConfig, SmtpFacts, verify_message};
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::{DnssecStatus, RecordSet, Txt};

#[path = "../../proto/benches/support/floor.rs"]
mod floor;
#[path = "../../proto/benches/support/map_lookup.rs"]
mod map_lookup;
use map_lookup::MapLookup;

/// A mail-auth resolver cache filled in advance; names absent answer `default`.
struct Warm<K, V> {
    map: HashMap<K, V>,
    default: V,
}

impl<K: Hash + Eq, V: Clone> mail_auth::ResolverCache<K, V> for Warm<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Some(
            self.map
                .get(name)
                .cloned()
                .unwrap_or_else(|| self.default.clone()),
        )
    }
    fn remove<Q>(&self, _: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }
    fn insert(&self, _: K, _: V, _: std::time::Instant) {}
}

struct Case {
    message: Vec<u8>,
    facts: SmtpFacts,
    ip: IpAddr,
    helo: String,
    mail_from: String,
    dmarc: String,
}

fn corpus() -> (Vec<Case>, MapLookup) {
    let dir = dmarc_testkit::corpus("mail-bench");
    let text = std::fs::read_to_string(dir.join("cases.jsonl")).expect("cases.jsonl");
    let cases = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let ip: IpAddr = v["ip"].as_str().expect("ip").parse().expect("ip");
            let helo = v["helo"].as_str().expect("helo").to_owned();
            let mail_from = v["mail_from"].as_str().expect("mail_from").to_owned();
            Case {
                message: std::fs::read(dir.join(v["file"].as_str().expect("file")))
                    .expect("message"),
                facts: SmtpFacts::new(ip, helo.clone()).with_mail_from(mail_from.clone()),
                ip,
                helo,
                mail_from,
                dmarc: v["dmarc"].as_str().expect("dmarc").to_owned(),
            }
        })
        .collect();
    let zone: HashMap<String, HashMap<String, Vec<String>>> =
        serde_json::from_slice(&std::fs::read(dir.join("zone.json")).expect("zone")).expect("zone");
    let mut lookup = MapLookup {
        txt: HashMap::new(),
        a: HashMap::new(),
    };
    for (name, types) in zone {
        let k = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(v) = types.get("TXT") {
            lookup
                .txt
                .insert(k.clone(), v.iter().map(|s| s.as_bytes().to_vec()).collect());
        }
        if let Some(v) = types.get("A") {
            lookup
                .a
                .insert(k.clone(), v.iter().map(|s| s.parse().expect("A")).collect());
        }
    }
    (cases, lookup)
}

type MaTxt = Warm<Box<str>, Txt>;
type MaMx = Warm<Box<str>, RecordSet<mail_auth::MX>>;
type MaV4 = Warm<Box<str>, RecordSet<Ipv4Addr>>;
type MaV6 = Warm<Box<str>, RecordSet<Ipv6Addr>>;
type MaPtr = Warm<IpAddr, RecordSet<Box<str>>>;

fn empty<T>() -> RecordSet<T> {
    RecordSet {
        rrset: Arc::from(Vec::new()),
        dnssec_status: DnssecStatus::Indeterminate,
    }
}

/// mail-auth's caches from the zone: each TXT name holds the parsed record of its kind.
fn mail_auth_caches(lookup: &MapLookup) -> (MaTxt, MaMx, MaV4, MaV6, MaPtr) {
    let not_found = Txt::Error(mail_auth::Error::Dns(
        mail_auth::DnsError::InvalidRecordType,
    ));
    let mut txt = HashMap::new();
    for (name, values) in &lookup.txt {
        let parsed = values.iter().find_map(|v| {
            if name.starts_with("_dmarc.") {
                mail_auth::dmarc::Dmarc::parse(v).ok().map(Txt::from)
            } else if name.contains("._domainkey.") {
                mail_auth::common::verify::DomainKey::parse(v)
                    .ok()
                    .map(Txt::from)
            } else {
                mail_auth::spf::Spf::parse(v).ok().map(Txt::from)
            }
        });
        txt.insert(
            format!("{name}.").into_boxed_str(),
            parsed.unwrap_or_else(|| not_found.clone()),
        );
    }
    let mut v4 = HashMap::new();
    for (name, ips) in &lookup.a {
        v4.insert(
            format!("{name}.").into_boxed_str(),
            RecordSet {
                rrset: Arc::from(ips.clone()),
                dnssec_status: DnssecStatus::Indeterminate,
            },
        );
    }
    (
        Warm {
            map: txt,
            default: not_found,
        },
        Warm {
            map: HashMap::new(),
            default: empty(),
        },
        Warm {
            map: v4,
            default: empty(),
        },
        Warm {
            map: HashMap::new(),
            default: empty(),
        },
        Warm {
            map: HashMap::new(),
            default: empty(),
        },
    )
}

fn bench(c: &mut Criterion) {
    let (cases, lookup) = corpus();
    let n = cases.len() as u64;
    let total_bytes: usize = cases.iter().map(|c| c.message.len()).sum();
    let clock = FixedClock::from_unix_seconds(1_795_400_000);
    let config = ReceiverConfig::new("mx.receiver.example");
    let draw = FixedDraw(0);

    // The floor.
    let floor_work = floor::Floor::new();

    // Ours: every verdict right before measuring.
    for case in &cases {
        let v = futures::executor::block_on(verify_message(
            &lookup,
            &clock,
            &draw,
            &config,
            &case.facts,
            &case.message,
        ));
        assert_eq!(v.dmarc.result.as_str(), case.dmarc);
    }

    // mail-auth.
    let (txt, mx, v4, v6, ptr) = mail_auth_caches(&lookup);
    let authenticator = mail_auth::MessageAuthenticator::new_cloudflare().expect("resolver");
    let mail_auth_one = |case: &Case| {
        let msg = mail_auth::AuthenticatedMessage::parse(&case.message).expect("parse");
        let dkim = futures::executor::block_on(
            authenticator.verify_dkim(
                mail_auth::Parameters::new(&msg)
                    .with_txt_cache(&txt)
                    .with_mx_cache(&mx)
                    .with_ipv4_cache(&v4)
                    .with_ipv6_cache(&v6)
                    .with_ptr_cache(&ptr),
            ),
        );
        let sender = if case.mail_from.is_empty() {
            format!("postmaster@{}", case.helo)
        } else {
            case.mail_from.clone()
        };
        let spf = futures::executor::block_on(
            authenticator.verify_spf(
                mail_auth::Parameters::new(
                    mail_auth::spf::verify::SpfParameters::verify_mail_from(
                        case.ip,
                        &case.helo,
                        "mx.receiver.example",
                        &sender,
                    ),
                )
                .with_txt_cache(&txt)
                .with_mx_cache(&mx)
                .with_ipv4_cache(&v4)
                .with_ipv6_cache(&v6)
                .with_ptr_cache(&ptr),
            ),
        );
        let mail_from_domain = sender.rsplit_once('@').map_or("", |(_, d)| d);
        let dmarc = futures::executor::block_on(
            authenticator.verify_dmarc(
                mail_auth::Parameters::new(mail_auth::dmarc::verify::DmarcParameters::new(
                    &msg,
                    &dkim,
                    mail_from_domain,
                    &spf,
                ))
                .with_txt_cache(&txt)
                .with_mx_cache(&mx)
                .with_ipv4_cache(&v4)
                .with_ipv6_cache(&v6)
                .with_ptr_cache(&ptr),
            ),
        );
        let header = mail_auth::AuthenticationResults::new("mx.receiver.example")
            .with_dkim_results(&dkim, msg.from())
            .with_spf_mailfrom_result(&spf, case.ip, &sender, &case.helo)
            .with_dmarc_result(&dmarc)
            .to_string();
        (
            dmarc.dkim_result().clone(),
            dmarc.spf_result().clone(),
            header,
        )
    };
    let mut agree = 0;
    for case in &cases {
        let (dkim, spf, _) = mail_auth_one(case);
        let pass = dkim == mail_auth::DmarcResult::Pass || spf == mail_auth::DmarcResult::Pass;
        if pass == (case.dmarc == "pass") {
            agree += 1;
        }
    }
    eprintln!(
        "mail-bench: {n} messages, {total_bytes} bytes; mail-auth agrees on DMARC pass/fail for {agree} of {n}"
    );

    let verifier = dmarc_proto::dkim::Verifier::new(Default::default())
        .with_key_cache(Arc::new(dmarc_proto::dkim::KeyCache::new(1024)));
    let floor = || {
        for case in &cases {
            floor_work.message(&case.message);
        }
    };
    let ours = || {
        for case in &cases {
            let v = futures::executor::block_on(verify_message(
                &lookup,
                &clock,
                &draw,
                &config,
                &case.facts,
                &case.message,
            ));
            std::hint::black_box(v.authentication_results_header());
        }
    };
    let dkim_only = || {
        for case in &cases {
            let r = futures::executor::block_on(verifier.verify(&case.message, &lookup, &clock));
            std::hint::black_box(r);
        }
    };
    let theirs = || {
        for case in &cases {
            std::hint::black_box(mail_auth_one(case));
        }
    };

    let spf_only = || {
        for case in &cases {
            let req = dmarc_proto::spf::SpfRequest::with_identities(
                case.ip,
                &case.helo,
                Some(case.mail_from.as_str()).filter(|m| !m.is_empty()),
            );
            let a = futures::executor::block_on(dmarc_proto::spf::verify_mail_from(
                &lookup,
                &clock,
                &config.spf,
                &req,
            ));
            let b = futures::executor::block_on(dmarc_proto::spf::verify_helo(
                &lookup,
                &clock,
                &config.spf,
                &req,
            ));
            std::hint::black_box((a, b));
        }
    };
    let dmarc_only = || {
        for case in &cases {
            let msg = dmarc_proto::message::Message::parse(&case.message);
            let from: Vec<&[u8]> = msg.fields("From").map(|f| f.value()).collect();
            let spf = [dmarc_proto::dmarc::SpfIdentity::new(
                case.mail_from
                    .rsplit_once('@')
                    .map_or(case.helo.as_str(), |(_, d)| d),
                dmarc_proto::dmarc::AuthResult::Pass,
            )];
            let out = futures::executor::block_on(dmarc_proto::dmarc::evaluate_message(
                &lookup,
                &from,
                &spf,
                &[],
                None,
                &config.dmarc,
            ));
            std::hint::black_box(out);
        }
    };
    let dkim_streaming = || {
        for case in &cases {
            let msg = dmarc_proto::message::Message::parse(&case.message);
            let mut sv = verifier.start_message(&msg);
            let names = sv.key_names();
            sv.whole_body(msg.body());
            let keys = futures::executor::block_on(dmarc_proto::dkim::fetch_keys(&lookup, &names));
            std::hint::black_box(sv.finish_with_keys(&keys, &clock));
        }
    };
    // Interleaved rounds, minimum per variant: on a shared, loaded machine this compares the
    // variants under the same conditions far better than criterion's consecutive groups.
    let rounds: usize = std::env::var("RECEIVER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut best = [f64::MAX; 7];
    for _ in 0..rounds {
        // (index into `best`, variant), in an order where each DKIM variant follows another.
        let fns: [(usize, &dyn Fn()); 7] = [
            (0, &floor),
            (2, &dkim_only),
            (6, &dkim_streaming),
            (1, &ours),
            (3, &theirs),
            (4, &spf_only),
            (5, &dmarc_only),
        ];
        for &(i, f) in &fns {
            let t = std::time::Instant::now();
            f();
            best[i] = best[i].min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
    }
    eprintln!(
        "interleaved minimum over {rounds} rounds, per message: floor {:.1} µs, dmarc-proto verify_message {:.1} µs ({:.2}x floor), dmarc-proto DKIM only {:.1} µs ({:.2}x floor), mail-auth SPF+DKIM+DMARC {:.1} µs ({:.2}x floor); ours / mail-auth = {:.2}; parts of ours: SPF (MAIL FROM + HELO) {:.1} µs, DMARC (From parsing + evaluation) {:.1} µs, DKIM streaming as the receiver calls it {:.1} µs",
        best[0],
        best[1],
        best[1] / best[0],
        best[2],
        best[2] / best[0],
        best[3],
        best[3] / best[0],
        best[1] / best[3],
        best[4],
        best[5],
        best[6],
    );

    let mut g = c.benchmark_group("receiver");
    g.throughput(Throughput::Elements(n));
    g.sample_size(20);
    g.bench_function("floor_sha256_plus_rsa2048_verify", |b| {
        b.iter(|| {
            for case in &cases {
                floor_work.message(&case.message);
            }
        })
    });
    g.bench_function("dmarc_proto_verify_message", |b| {
        b.iter(|| {
            for case in &cases {
                let v = futures::executor::block_on(verify_message(
                    &lookup,
                    &clock,
                    &draw,
                    &config,
                    &case.facts,
                    &case.message,
                ));
                debug_assert!(v.dmarc.result != DmarcResult::TempError);
                std::hint::black_box(v.authentication_results_header());
            }
        })
    });
    g.bench_function("dmarc_proto_dkim_only", |b| {
        b.iter(|| {
            for case in &cases {
                let r =
                    futures::executor::block_on(verifier.verify(&case.message, &lookup, &clock));
                std::hint::black_box(r);
            }
        })
    });
    g.bench_function("mail_auth_0_13_3_spf_dkim_dmarc", |b| {
        b.iter(|| {
            for case in &cases {
                std::hint::black_box(mail_auth_one(case));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
