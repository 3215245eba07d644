//! An in-memory zone for the SPF suites, with the semantics of pyspf's test driver
//! (HOW_TO_USE.md §1): records are scanned in order, `TIMEOUT` fails a query that reaches it
//! before yielding a record of the asked type, SPF records double as TXT when the name has
//! no TXT entry at all, and a CNAME is followed one level. Every query is logged, so tests
//! can assert that no question is asked twice.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use dmarc_proto::dns::{DnsResult, reverse_name};
use dmarc_proto::{DnsError, Lookup, MxRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    Spf(Vec<u8>),
    Txt(Vec<u8>),
    TxtNone,
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ptr(String),
    Cname(String),
    Mx(u16, String),
    Timeout,
    /// Every query at the name fails with SERVFAIL.
    ServFail,
}

#[derive(Debug, Default)]
pub struct Zone {
    pub names: HashMap<String, Vec<Rec>>,
    /// Names containing this text answer SERVFAIL (mail-auth's `_dns_error.` convention).
    pub servfail_marker: Option<&'static str>,
    pub log: Mutex<Vec<(&'static str, String)>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum T {
    Txt,
    A,
    Aaaa,
    Ptr,
    Mx,
}

pub fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Zone {
    pub fn add(&mut self, name: &str, rec: Rec) {
        self.names.entry(norm(name)).or_default().push(rec);
    }

    /// Takes the query log and clears it.
    pub fn take_log(&self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn answer(&self, t: T, name: &str, follow: bool) -> Result<Vec<Rec>, DnsError> {
        if let Some(m) = self.servfail_marker
            && norm(name).contains(m)
        {
            return Err(DnsError::Temporary("SERVFAIL".into()));
        }
        let Some(recs) = self.names.get(&norm(name)) else {
            return Err(DnsError::NxDomain);
        };
        if recs.contains(&Rec::ServFail) {
            return Err(DnsError::Temporary("SERVFAIL".into()));
        }
        if follow && let Some(Rec::Cname(target)) = recs.iter().find(|r| matches!(r, Rec::Cname(_)))
        {
            return self.answer(t, target, false);
        }
        let synth = t == T::Txt && !recs.iter().any(|r| matches!(r, Rec::Txt(_) | Rec::TxtNone));
        let mut out = Vec::new();
        for r in recs {
            let hit = match (t, r) {
                (_, Rec::Timeout) => {
                    if out.is_empty() {
                        return Err(DnsError::Temporary("timeout (test zone)".into()));
                    }
                    break;
                }
                (T::Txt, Rec::Txt(_)) => true,
                (T::Txt, Rec::Spf(_)) => synth,
                (T::A, Rec::A(_))
                | (T::Aaaa, Rec::Aaaa(_))
                | (T::Ptr, Rec::Ptr(_))
                | (T::Mx, Rec::Mx(..)) => true,
                _ => false,
            };
            if hit {
                out.push(r.clone());
            }
        }
        if out.is_empty() {
            Err(DnsError::NoData)
        } else {
            Ok(out)
        }
    }

    fn log(&self, t: &'static str, name: &str) {
        self.log.lock().unwrap().push((t, norm(name)));
    }
}

impl Lookup for Zone {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        self.log("TXT", name);
        Ok(self
            .answer(T::Txt, name, true)?
            .into_iter()
            .filter_map(|r| match r {
                Rec::Txt(t) | Rec::Spf(t) => Some(t),
                _ => None,
            })
            .collect())
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        self.log("A", name);
        Ok(self
            .answer(T::A, name, true)?
            .into_iter()
            .filter_map(|r| if let Rec::A(a) = r { Some(a) } else { None })
            .collect())
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        self.log("AAAA", name);
        Ok(self
            .answer(T::Aaaa, name, true)?
            .into_iter()
            .filter_map(|r| if let Rec::Aaaa(a) = r { Some(a) } else { None })
            .collect())
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        self.log("MX", name);
        Ok(self
            .answer(T::Mx, name, true)?
            .into_iter()
            .filter_map(|r| match r {
                Rec::Mx(preference, exchange) => Some(MxRecord {
                    preference,
                    exchange: norm(&exchange),
                }),
                _ => None,
            })
            .collect())
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        let name = reverse_name(ip);
        self.log("PTR", &name);
        Ok(self
            .answer(T::Ptr, &name, true)?
            .into_iter()
            .filter_map(|r| {
                if let Rec::Ptr(p) = r {
                    Some(norm(&p))
                } else {
                    None
                }
            })
            .collect())
    }
}

/// The queries asked more than once, if any.
pub fn duplicates(log: &[(&'static str, String)]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut dups = Vec::new();
    for q in log {
        if !seen.insert(q.clone()) {
            dups.push(format!("{} {}", q.0, q.1));
        }
    }
    dups
}
