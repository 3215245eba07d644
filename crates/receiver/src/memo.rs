//! The per-message memo in front of the lookup for the DMARC evaluation.
//!
//! The session asks for the DMARC record of each Author Domain as soon as the header is
//! read ([`Memo::ask`]); the evaluation, after SPF and DKIM, asks the same questions and
//! gets those answers from here. A message asks a handful of questions, so each kind is a
//! short list searched in order (names compared without case or a trailing dot), not a
//! hash map.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use dmarc_proto::dns::{DnsResult, Lookup, MxRecord};
use smallvec::SmallVec;

/// The name of a TXT question, kept inline: `_dmarc.<domain>` fits for nearly every domain.
pub(crate) type NameBuf = SmallVec<[u8; 64]>;

/// TXT answers: one inline (the Author Domain's), more on the heap.
pub(crate) type TxtAnswers = SmallVec<[(NameBuf, DnsResult<Vec<u8>>); 1]>;

/// With one Author Domain (`hand_over`), the one evaluation asks each name at most once
/// (its resolver keeps its own answers), so an answer asked in advance is handed over,
/// moved rather than copied, and the evaluation's further questions are not kept. With
/// several Author Domains the evaluations can ask the same names (a shared parent's
/// record), so every answer is kept and copied out.
pub(crate) struct Memo<'a, L> {
    inner: &'a L,
    hand_over: bool,
    txt: Mutex<TxtAnswers>,
    a: Mutex<Vec<(String, DnsResult<Ipv4Addr>)>>,
    aaaa: Mutex<Vec<(String, DnsResult<Ipv6Addr>)>>,
    mx: Mutex<Vec<(String, DnsResult<MxRecord>)>>,
    ptr: Mutex<Vec<(IpAddr, DnsResult<String>)>>,
}

impl<'a, L: Lookup> Memo<'a, L> {
    /// A memo holding `txt`, the answers asked in advance.
    pub(crate) fn new(inner: &'a L, hand_over: bool, txt: TxtAnswers) -> Self {
        Memo {
            inner,
            hand_over,
            txt: Mutex::new(txt),
            a: Mutex::default(),
            aaaa: Mutex::default(),
            mx: Mutex::default(),
            ptr: Mutex::default(),
        }
    }

    /// Asks for the TXT records of every name at once (duplicates asked once).
    pub(crate) async fn ask(lookup: &L, names: SmallVec<[NameBuf; 1]>) -> TxtAnswers {
        let mut unique: SmallVec<[NameBuf; 1]> = SmallVec::new();
        for n in names {
            if std::str::from_utf8(&n).is_ok()
                && !unique.iter().any(|u| u.eq_ignore_ascii_case(n.as_slice()))
            {
                unique.push(n);
            }
        }
        // Every name kept is UTF-8 (checked above).
        let answers = futures_util::future::join_all(
            unique
                .iter()
                .map(|n| lookup.txt(std::str::from_utf8(n).unwrap_or_default())),
        )
        .await;
        unique.into_iter().zip(answers).collect()
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn same_name_bytes(a: &[u8], b: &str) -> bool {
    a.strip_suffix(b".")
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b).as_bytes())
}

fn recall<K, V: Clone>(list: &Mutex<Vec<(K, V)>>, hit: impl Fn(&K) -> bool) -> Option<V> {
    list.lock()
        .ok()
        .and_then(|l| l.iter().find(|(k, _)| hit(k)).map(|(_, v)| v.clone()))
}

fn remember<K, V>(list: &Mutex<Vec<(K, V)>>, key: K, value: V) {
    if let Ok(mut l) = list.lock() {
        l.push((key, value));
    }
}

impl<L: Lookup> Lookup for Memo<'_, L> {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        if let Ok(mut l) = self.txt.lock()
            && let Some(at) = l.iter().position(|(k, _)| same_name_bytes(k, name))
        {
            if self.hand_over {
                return l.swap_remove(at).1;
            }
            if let Some((_, v)) = l.get(at) {
                return v.clone();
            }
        }
        let v = self.inner.txt(name).await;
        if !self.hand_over
            && let Ok(mut l) = self.txt.lock()
        {
            l.push((NameBuf::from_slice(name.as_bytes()), v.clone()));
        }
        v
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        if let Some(v) = recall(&self.a, |k| same_name(k, name)) {
            return v;
        }
        let v = self.inner.a(name).await;
        remember(&self.a, name.to_owned(), v.clone());
        v
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        if let Some(v) = recall(&self.aaaa, |k| same_name(k, name)) {
            return v;
        }
        let v = self.inner.aaaa(name).await;
        remember(&self.aaaa, name.to_owned(), v.clone());
        v
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        if let Some(v) = recall(&self.mx, |k| same_name(k, name)) {
            return v;
        }
        let v = self.inner.mx(name).await;
        remember(&self.mx, name.to_owned(), v.clone());
        v
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        if let Some(v) = recall(&self.ptr, |k| *k == ip) {
            return v;
        }
        let v = self.inner.ptr(ip).await;
        remember(&self.ptr, ip, v.clone());
        v
    }
}
