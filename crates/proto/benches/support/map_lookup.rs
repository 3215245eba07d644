//! An in-memory zone for the receiver benchmark and the `receiver_loop` profiling example
//! (included by both with `#[path]`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use dmarc_proto::dns::{DnsError, DnsResult, Lookup, MxRecord};

/// The zone in memory: absent names are NXDOMAIN, present names without the type NODATA.
pub struct MapLookup {
    pub txt: HashMap<String, Vec<Vec<u8>>>,
    pub a: HashMap<String, Vec<Ipv4Addr>>,
}

impl MapLookup {
    fn get<T: Clone>(&self, map: &HashMap<String, Vec<T>>, name: &str) -> DnsResult<T> {
        let k = name.trim_end_matches('.').to_ascii_lowercase();
        match map.get(&k) {
            Some(v) => Ok(v.clone()),
            None if self.txt.contains_key(&k) || self.a.contains_key(&k) => Err(DnsError::NoData),
            None => Err(DnsError::NxDomain),
        }
    }
}

impl Lookup for MapLookup {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        self.get(&self.txt, name)
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        self.get(&self.a, name)
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        self.get(&HashMap::new(), name)
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        self.get(&HashMap::new(), name)
    }
    async fn ptr(&self, _: IpAddr) -> DnsResult<String> {
        Err(DnsError::NxDomain)
    }
}

/// mail-bench's `zone.json` (`{name: {type: [values]}}`, TXT already joined) as a
/// [`MapLookup`]; only TXT and A are used by the corpus.
#[allow(dead_code)]
pub fn load_zone_json(path: &Path) -> MapLookup {
    let zone: HashMap<String, HashMap<String, Vec<String>>> =
        serde_json::from_slice(&std::fs::read(path).expect("zone.json")).expect("zone.json");
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
                .insert(k, v.iter().map(|s| s.parse().expect("A")).collect());
        }
    }
    lookup
}

/// The mail-bench cases (`cases.jsonl` in `dir`): each message's bytes and SMTP facts
/// (client IP, HELO, MAIL FROM).
#[allow(dead_code)] // not every includer needs it
pub fn mail_bench_cases(dir: &Path) -> Vec<(Vec<u8>, (IpAddr, String, String))> {
    let text = std::fs::read_to_string(dir.join("cases.jsonl")).expect("cases.jsonl");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let field = |k: &str| v[k].as_str().expect("string field").to_owned();
            let ip: IpAddr = field("ip").parse().expect("ip");
            let facts = (ip, field("helo"), field("mail_from"));
            (
                std::fs::read(dir.join(field("file"))).expect("message"),
                facts,
            )
        })
        .collect()
}
