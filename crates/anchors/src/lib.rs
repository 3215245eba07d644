//! Anchors for the whole-process benchmarks (`scripts/bench/verify.sh`, `BENCHMARKS.md`).
//!
//! * `anchor-verify CASES.jsonl ZONE.json`: mail-auth 0.13 runs SPF (MAIL FROM, with its
//!   HELO check), DKIM and DMARC on every case of a batch file (the format of
//!   `dmarc verify --batch`) in one process and prints each message's
//!   Authentication-Results field: the work of `dmarc verify --batch`.
//! * `anchor-dkim ZONE.json FILES...`: mail-auth's DKIM verification of each file, one
//!   line per file: the work of `dmarc dkim verify`.
//! * `anchor-report FILES.xml...`: mail-auth's aggregate report parser over each file: the
//!   parsing work of `dmarc report parse`.
//! * `gen-corpus DIR N`: a signed corpus of N messages with its DNS (`zone.txt`, and
//!   `zone.json` with the same records), in the layout of `mail-bench`.
//!
//! mail-auth answers DNS from its resolver caches, filled here from `zone.json` (the same
//! records as the `zone.txt` that `dmarc --dns-zone` reads; names absent do not exist), so
//! neither side touches the network.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::{DnssecStatus, RecordSet, Txt};

/// A mail-auth resolver cache filled in advance; names absent answer `default`.
#[derive(Debug)]
pub struct Warm<K, V> {
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

/// mail-auth's five caches, as `Parameters::with_*_cache` takes them.
#[allow(missing_debug_implementations)] // mail-auth's `Txt` is not `Debug`
pub struct Caches {
    /// TXT: each name holds the parsed record of its kind (DMARC, DKIM key, SPF).
    pub txt: Warm<Box<str>, Txt>,
    /// MX.
    pub mx: Warm<Box<str>, RecordSet<mail_auth::MX>>,
    /// A.
    pub v4: Warm<Box<str>, RecordSet<Ipv4Addr>>,
    /// AAAA.
    pub v6: Warm<Box<str>, RecordSet<Ipv6Addr>>,
    /// PTR.
    pub ptr: Warm<IpAddr, RecordSet<Box<str>>>,
}

fn set<T>(v: Vec<T>) -> RecordSet<T> {
    RecordSet {
        rrset: Arc::from(v),
        dnssec_status: DnssecStatus::Indeterminate,
    }
}

/// Reads `zone.json` (`{name: {type: [values]}}`, TXT strings joined) into mail-auth's
/// caches.
pub fn caches(zone_json: &Path) -> Result<Caches, String> {
    let text = std::fs::read(zone_json).map_err(|e| format!("{}: {e}", zone_json.display()))?;
    let zone: HashMap<String, HashMap<String, Vec<String>>> =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", zone_json.display()))?;
    let not_found = Txt::Error(mail_auth::Error::Dns(
        mail_auth::DnsError::InvalidRecordType,
    ));
    let (mut txt, mut v4, mut v6) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (name, types) in zone {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let key = format!("{name}.").into_boxed_str();
        if let Some(values) = types.get("TXT") {
            let parsed = values.iter().find_map(|v| {
                let v = v.as_bytes();
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
            txt.insert(key.clone(), parsed.unwrap_or_else(|| not_found.clone()));
        }
        if let Some(ips) = types.get("A") {
            let ips = ips.iter().filter_map(|s| s.parse().ok()).collect();
            v4.insert(key.clone(), set(ips));
        }
        if let Some(ips) = types.get("AAAA") {
            let ips = ips.iter().filter_map(|s| s.parse().ok()).collect();
            v6.insert(key, set(ips));
        }
    }
    Ok(Caches {
        txt: Warm {
            map: txt,
            default: not_found,
        },
        mx: Warm {
            map: HashMap::new(),
            default: set(Vec::new()),
        },
        v4: Warm {
            map: v4,
            default: set(Vec::new()),
        },
        v6: Warm {
            map: v6,
            default: set(Vec::new()),
        },
        ptr: Warm {
            map: HashMap::new(),
            default: set(Vec::new()),
        },
    })
}
