//! An in-memory [`Lookup`] for the DMARC tests: name -> type -> records, NXDOMAIN for
//! absent names, NODATA for a present name without the asked type, optionally every query a
//! temporary failure. Every query is logged in order.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use dmarc_proto::dns::DnsResult;
use dmarc_proto::{DnsError, Lookup, MxRecord};
use serde_json::Value;

#[derive(Debug, Default)]
pub struct Zone {
    txt: HashMap<String, Vec<Vec<u8>>>,
    a: HashMap<String, Vec<Ipv4Addr>>,
    aaaa: HashMap<String, Vec<Ipv6Addr>>,
    mx: HashMap<String, Vec<MxRecord>>,
    names: HashMap<String, ()>,
    all_temperror: bool,
    log: Mutex<Vec<(String, String)>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Zone {
    pub fn new() -> Self {
        Zone::default()
    }

    /// Every query fails temporarily.
    pub fn all_temperror() -> Self {
        Zone {
            all_temperror: true,
            ..Zone::default()
        }
    }

    pub fn txt(mut self, name: &str, rr: &str) -> Self {
        self.names.insert(key(name), ());
        self.txt
            .entry(key(name))
            .or_default()
            .push(rr.as_bytes().to_vec());
        self
    }

    pub fn a(mut self, name: &str, ip: &str) -> Self {
        self.names.insert(key(name), ());
        self.a
            .entry(key(name))
            .or_default()
            .push(ip.parse().unwrap());
        self
    }

    /// Builds a zone from the `dns` map of the DMARC evaluation tables (HOW_TO_USE §5.1).
    pub fn from_json(dns: &Value, default: &str) -> Self {
        let mut z = if default == "temperror" {
            Zone::all_temperror()
        } else {
            assert_eq!(default, "nxdomain", "unknown dns_default");
            Zone::new()
        };
        for (name, types) in dns.as_object().unwrap() {
            let k = key(name);
            z.names.insert(k.clone(), ());
            for (ty, rrs) in types.as_object().unwrap() {
                let rrs = rrs.as_array().unwrap();
                match ty.as_str() {
                    "TXT" => {
                        let list = z.txt.entry(k.clone()).or_default();
                        for rr in rrs {
                            list.push(txt_rr(rr));
                        }
                    }
                    "A" => {
                        let list = z.a.entry(k.clone()).or_default();
                        for rr in rrs {
                            list.push(rr.as_str().unwrap().parse().unwrap());
                        }
                    }
                    "AAAA" => {
                        let list = z.aaaa.entry(k.clone()).or_default();
                        for rr in rrs {
                            list.push(rr.as_str().unwrap().parse().unwrap());
                        }
                    }
                    "MX" => {
                        let list = z.mx.entry(k.clone()).or_default();
                        for rr in rrs {
                            let pair = rr.as_array().unwrap();
                            list.push(MxRecord {
                                preference: pair[0].as_u64().unwrap() as u16,
                                exchange: key(pair[1].as_str().unwrap()),
                            });
                        }
                    }
                    other => panic!("unknown record type {other} in the test zone"),
                }
            }
        }
        z
    }

    /// The queries asked so far, as (type, name).
    pub fn queries(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }

    /// The TXT queries under `_dmarc.` asked so far, in order.
    pub fn dmarc_queries(&self) -> Vec<String> {
        self.queries()
            .into_iter()
            .filter(|(t, n)| t == "TXT" && n.starts_with("_dmarc."))
            .map(|(_, n)| n)
            .collect()
    }

    fn answer<T: Clone>(
        &self,
        ty: &str,
        name: &str,
        map: &HashMap<String, Vec<T>>,
    ) -> DnsResult<T> {
        let k = key(name);
        self.log.lock().unwrap().push((ty.to_owned(), k.clone()));
        if self.all_temperror {
            return Err(DnsError::Temporary("timed out (test zone)".into()));
        }
        match map.get(&k) {
            Some(v) if !v.is_empty() => Ok(v.clone()),
            _ if self.names.contains_key(&k) => Err(DnsError::NoData),
            _ => Err(DnsError::NxDomain),
        }
    }
}

/// One TXT RR from the tables: a string, or a list of character-strings to join.
pub fn txt_rr(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Array(parts) => parts
            .iter()
            .flat_map(|p| p.as_str().unwrap().as_bytes().to_vec())
            .collect(),
        other => panic!("unexpected TXT value {other}"),
    }
}

impl Lookup for Zone {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        self.answer("TXT", name, &self.txt)
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        self.answer("A", name, &self.a)
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        self.answer("AAAA", name, &self.aaaa)
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        self.answer("MX", name, &self.mx)
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        let name = dmarc_proto::dns::reverse_name(ip);
        self.log.lock().unwrap().push(("PTR".into(), name));
        Err(DnsError::NxDomain)
    }
}

/// Reads a JSON table from the corpora.
pub fn table(rel: &str) -> Value {
    let path = dmarc_testkit::corpus(rel);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
