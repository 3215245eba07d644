//! The per-message DNS memo: the questions a piece of work asked and their answers, so
//! that none is asked twice.
//!
//! One type serves every user. An SPF evaluation owns a [`Memo`] (RFC 7208 §4.6.4: a
//! question is asked at most once per evaluation; its counters are the evaluation's own)
//! and asks through [`Memo::ask_all`] ahead of use when it knows several names at once.
//! The receiver session asks for the DMARC records as soon as the header is read
//! ([`Memo::ask_all`] inside its work), and the DMARC evaluation that runs after SPF and
//! DKIM gets those answers through [`MemoLookup`], the memo in front of a [`Lookup`].
//!
//! A message asks a handful of questions, so the memo is a short list searched in order
//! (names compared without case or a trailing dot), not a hash map; the names live one
//! after the other in one inline buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use smallvec::SmallVec;

use super::{DnsError, DnsResult, Lookup, MxRecord};

/// The type of a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QType {
    /// TXT.
    Txt,
    /// A.
    A,
    /// AAAA.
    Aaaa,
    /// MX.
    Mx,
    /// PTR; the question's name is the address as text (`192.0.2.1`).
    Ptr,
}

impl QType {
    /// The type's name: `TXT`, `A`, `AAAA`, `MX`, `PTR`.
    pub fn as_str(self) -> &'static str {
        match self {
            QType::Txt => "TXT",
            QType::A => "A",
            QType::Aaaa => "AAAA",
            QType::Mx => "MX",
            QType::Ptr => "PTR",
        }
    }
}

/// The records of an answer; never empty (an empty answer is [`DnsError::NoData`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// TXT records.
    Txt(Vec<Vec<u8>>),
    /// A records.
    A(Vec<Ipv4Addr>),
    /// AAAA records.
    Aaaa(Vec<Ipv6Addr>),
    /// MX records.
    Mx(Vec<MxRecord>),
    /// PTR targets.
    Ptr(Vec<String>),
}

impl Answer {
    /// The number of records.
    pub fn len(&self) -> usize {
        match self {
            Answer::Txt(v) => v.len(),
            Answer::A(v) => v.len(),
            Answer::Aaaa(v) => v.len(),
            Answer::Mx(v) => v.len(),
            Answer::Ptr(v) => v.len(),
        }
    }

    /// True when there is no record (never, for an answer the memo holds).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One question to the lookup, with the contract's promise that `Ok` is never empty
/// enforced for lookups that break it. A PTR question whose name is not an address has no
/// answer (NXDOMAIN).
pub async fn ask<L: Lookup + ?Sized>(
    lookup: &L,
    qtype: QType,
    name: &str,
) -> Result<Answer, DnsError> {
    let answer = match qtype {
        QType::Txt => lookup.txt(name).await.map(Answer::Txt),
        QType::A => lookup.a(name).await.map(Answer::A),
        QType::Aaaa => lookup.aaaa(name).await.map(Answer::Aaaa),
        QType::Mx => lookup.mx(name).await.map(Answer::Mx),
        QType::Ptr => match name.parse::<IpAddr>() {
            Ok(ip) => lookup.ptr(ip).await.map(Answer::Ptr),
            Err(_) => Err(DnsError::NxDomain),
        },
    };
    match answer {
        Ok(a) if a.is_empty() => Err(DnsError::NoData),
        other => other,
    }
}

/// A remembered answer.
#[derive(Debug)]
struct Entry {
    qtype: QType,
    /// The name asked, lower-cased and without a trailing dot, in [`Memo::names`].
    start: usize,
    end: usize,
    answer: Result<Answer, DnsError>,
    /// Asked ahead of use ([`Memo::ask_all`]) and not yet used.
    ahead: bool,
}

/// The DNS questions of one piece of work and their answers. The first few live inline.
#[derive(Debug, Default)]
pub struct Memo {
    /// The names asked, lower-cased, one after the other.
    names: SmallVec<[u8; 128]>,
    entries: SmallVec<[Entry; 3]>,
}

/// `name` as the memo keeps it: without a trailing dot.
fn key(name: &str) -> &[u8] {
    let b = name.as_bytes();
    b.strip_suffix(b".").unwrap_or(b)
}

impl Memo {
    /// An empty memo.
    pub fn new() -> Memo {
        Memo::default()
    }

    /// The number of answers held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no answer is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The index of the answer to `qtype` at `name`, if asked.
    pub fn find(&self, qtype: QType, name: &str) -> Option<usize> {
        let name = key(name);
        self.entries.iter().position(|e| {
            e.qtype == qtype
                && self
                    .names
                    .get(e.start..e.end)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// The answer at index `i` (see [`Memo::find`], [`Memo::insert`]).
    pub fn answer(&self, i: usize) -> Option<&Result<Answer, DnsError>> {
        self.entries.get(i).map(|e| &e.answer)
    }

    /// The question at index `i`: its type and its name (lower-case, no trailing dot).
    pub fn question(&self, i: usize) -> Option<(QType, &str)> {
        let e = self.entries.get(i)?;
        // Only whole names (`&str`s, lower-cased byte by byte in ASCII) are stored.
        let name = std::str::from_utf8(self.names.get(e.start..e.end)?).ok()?;
        Some((e.qtype, name))
    }

    /// Remembers `answer` to `qtype` at `name` (`ahead`: asked ahead of use); returns its
    /// index. Indices stay valid until [`Memo::remove`].
    pub fn insert(
        &mut self,
        qtype: QType,
        name: &str,
        answer: Result<Answer, DnsError>,
        ahead: bool,
    ) -> usize {
        let start = self.names.len();
        self.names.extend_from_slice(key(name));
        if let Some(added) = self.names.get_mut(start..) {
            added.make_ascii_lowercase();
        }
        self.entries.push(Entry {
            qtype,
            start,
            end: self.names.len(),
            answer,
            ahead,
        });
        self.entries.len() - 1
    }

    /// Marks answer `i` as used; true when it had been asked ahead of use and not used yet.
    pub fn use_answer(&mut self, i: usize) -> bool {
        self.entries
            .get_mut(i)
            .is_some_and(|e| std::mem::take(&mut e.ahead))
    }

    /// Marks every answer as used; returns the indices of those asked ahead and not used.
    pub fn use_all(&mut self) -> SmallVec<[usize; 4]> {
        let mut unused = SmallVec::new();
        for (i, e) in self.entries.iter_mut().enumerate() {
            if std::mem::take(&mut e.ahead) {
                unused.push(i);
            }
        }
        unused
    }

    /// Takes answer `i` out (the last answer takes its index).
    pub fn remove(&mut self, i: usize) -> Option<Result<Answer, DnsError>> {
        (i < self.entries.len()).then(|| self.entries.swap_remove(i).answer)
    }

    /// The names of `names` not answered yet, each once (compared without case).
    pub fn missing<'n>(&self, qtype: QType, names: &[&'n str]) -> SmallVec<[&'n str; 8]> {
        let mut out: SmallVec<[&str; 8]> = SmallVec::new();
        for &n in names {
            if self.find(qtype, n).is_none()
                && !out.iter().any(|o| key(o).eq_ignore_ascii_case(key(n)))
            {
                out.push(n);
            }
        }
        out
    }

    /// Asks `qtype` at every name of `names` not answered yet, all at once, so that they
    /// cost one round trip rather than one each; each name is asked once. The answers are
    /// kept as asked ahead of use. Returns the number of questions asked.
    pub async fn ask_all<L: Lookup + ?Sized>(
        &mut self,
        lookup: &L,
        qtype: QType,
        names: &[&str],
    ) -> u32 {
        let missing = self.missing(qtype, names);
        let answers =
            futures_util::future::join_all(missing.iter().map(|n| ask(lookup, qtype, n))).await;
        let mut asked = 0;
        for (name, answer) in missing.into_iter().zip(answers) {
            self.insert(qtype, name, answer, true);
            asked += 1;
        }
        asked
    }
}

/// A [`Memo`] in front of a [`Lookup`]: a question already answered is not asked again.
///
/// With `hand_over`, the caller promises that it asks each name at most once (one DMARC
/// evaluation, whose discovery keeps its own answers): an answer held is then moved out
/// rather than copied, and further answers are not kept. Otherwise every answer is kept
/// and copied out (several evaluations that may ask the same names).
#[derive(Debug)]
pub struct MemoLookup<'a, L: ?Sized> {
    inner: &'a L,
    hand_over: bool,
    memo: Mutex<Memo>,
}

impl<'a, L: Lookup + ?Sized> MemoLookup<'a, L> {
    /// `memo` (answers asked ahead, or none) in front of `inner`.
    pub fn new(inner: &'a L, memo: Memo, hand_over: bool) -> Self {
        MemoLookup {
            inner,
            hand_over,
            memo: Mutex::new(memo),
        }
    }

    /// The memo's answer, or the lookup's, remembered.
    async fn get(&self, qtype: QType, name: &str) -> Result<Answer, DnsError> {
        if let Ok(mut m) = self.memo.lock()
            && let Some(i) = m.find(qtype, name)
        {
            if self.hand_over
                && let Some(a) = m.remove(i)
            {
                return a;
            }
            if let Some(a) = m.answer(i) {
                return a.clone();
            }
        }
        let answer = ask(self.inner, qtype, name).await;
        if !self.hand_over
            && let Ok(mut m) = self.memo.lock()
        {
            m.insert(qtype, name, answer.clone(), false);
        }
        answer
    }
}

/// The records of `answer` when it is of the variant `$v`.
macro_rules! records {
    ($answer:expr, $v:ident) => {
        match $answer {
            Ok(Answer::$v(records)) => Ok(records),
            Ok(_) => Err(DnsError::Temporary(
                "the memo held an answer of another type".into(),
            )),
            Err(e) => Err(e),
        }
    };
}

impl<L: Lookup + ?Sized> Lookup for MemoLookup<'_, L> {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        records!(self.get(QType::Txt, name).await, Txt)
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        records!(self.get(QType::A, name).await, A)
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        records!(self.get(QType::Aaaa, name).await, Aaaa)
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        records!(self.get(QType::Mx, name).await, Mx)
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        let name = ip.to_string();
        records!(self.get(QType::Ptr, &name).await, Ptr)
    }
    async fn cname(&self, name: &str) -> DnsResult<String> {
        self.inner.cname(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Answers every TXT question with the name asked, and counts the questions.
    #[derive(Default)]
    struct Echo(AtomicU32);
    impl Lookup for Echo {
        async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(vec![name.as_bytes().to_vec()])
        }
        async fn a(&self, _: &str) -> DnsResult<Ipv4Addr> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(vec![])
        }
        async fn aaaa(&self, _: &str) -> DnsResult<Ipv6Addr> {
            Err(DnsError::NxDomain)
        }
        async fn mx(&self, _: &str) -> DnsResult<MxRecord> {
            Err(DnsError::NxDomain)
        }
        async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(vec![ip.to_string()])
        }
    }

    #[test]
    fn asks_each_question_once() {
        let dns = Echo::default();
        let mut memo = Memo::new();
        let asked = pollster::block_on(memo.ask_all(
            &dns,
            QType::Txt,
            &[
                "_dmarc.Example.com",
                "_dmarc.example.com.",
                "_dmarc.other.org",
            ],
        ));
        assert_eq!(asked, 2);
        assert_eq!(dns.0.load(Ordering::Relaxed), 2);
        let i = memo.find(QType::Txt, "_DMARC.example.COM").unwrap();
        assert_eq!(memo.question(i), Some((QType::Txt, "_dmarc.example.com")));
        assert!(memo.find(QType::A, "_dmarc.example.com").is_none());
        assert!(memo.use_answer(i));
        assert!(!memo.use_answer(i));
        assert_eq!(memo.use_all().len(), 1);
        assert_eq!(
            pollster::block_on(memo.ask_all(&dns, QType::Txt, &["_dmarc.other.org"])),
            0
        );
        // An empty answer is NODATA, whatever the lookup said.
        let i = memo.insert(
            QType::A,
            "x.example",
            pollster::block_on(ask(&dns, QType::A, "x.example")),
            false,
        );
        assert_eq!(memo.answer(i), Some(&Err(DnsError::NoData)));
    }

    #[test]
    fn the_lookup_in_front_copies_or_hands_over() {
        let dns = Echo::default();
        let mut memo = Memo::new();
        pollster::block_on(memo.ask_all(&dns, QType::Txt, &["a.example"]));
        let kept = MemoLookup::new(&dns, memo, false);
        for _ in 0..3 {
            assert_eq!(
                pollster::block_on(kept.txt("A.example.")),
                Ok(vec![b"a.example".to_vec()])
            );
            assert!(pollster::block_on(kept.ptr("192.0.2.1".parse().unwrap())).is_ok());
        }
        // One TXT ahead, one PTR through the memo.
        assert_eq!(dns.0.load(Ordering::Relaxed), 2);

        let mut memo = Memo::new();
        pollster::block_on(memo.ask_all(&dns, QType::Txt, &["b.example"]));
        let handed = MemoLookup::new(&dns, memo, true);
        assert!(pollster::block_on(handed.txt("b.example")).is_ok());
        assert_eq!(dns.0.load(Ordering::Relaxed), 3);
        // Handed over, so asked again.
        assert!(pollster::block_on(handed.txt("b.example")).is_ok());
        assert_eq!(dns.0.load(Ordering::Relaxed), 4);
    }
}
