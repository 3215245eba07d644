//! The DNS Tree Walk (§4.10), DMARC Policy Discovery (§4.10.1) and the Organizational
//! Domain (§4.10.2), plus their RFC 7489 counterparts (§6.6.3 and §3.2 of RFC 7489).
//!
//! Every `_dmarc` answer is remembered for the length of one evaluation, so
//! the walks for the Author Domain and for each authenticated identifier share their
//! queries, as the examples of Appendix B.4 expect.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use foldhash::quality::RandomState;
use smallvec::SmallVec;

use super::record::{Psd, RecordSet, select_record};
use super::{DomainName, ParsedRecord, Psl, PslSections, Spec};
use crate::dns::{DnsError, Lookup};

/// The most targets a walk visits (§4.10: "no more than eight DNS queries").
const MAX_WALK: usize = 8;

/// One `_dmarc` query's outcome, shared between walks.
pub(crate) type Answer = Result<Arc<RecordSet>, DnsError>;

/// Asks and remembers `_dmarc` TXT questions for one evaluation.
pub(crate) struct Resolver<'a, L> {
    lookup: &'a L,
    spec: Spec,
    /// The answers so far: a handful per evaluation, so a list (no allocation for four). A
    /// hostile message is bounded by the identity limit: at most eight names per walk.
    cache: Mutex<SmallVec<[(DomainName, Answer); 4]>>,
    records: Option<&'a DmarcRecordCache>,
}

impl<'a, L: Lookup> Resolver<'a, L> {
    pub(crate) fn new(lookup: &'a L, spec: Spec) -> Self {
        Resolver {
            lookup,
            spec,
            cache: Mutex::new(SmallVec::new()),
            records: None,
        }
    }

    /// Parses records through `cache` (shared between evaluations) when there is one.
    pub(crate) fn with_record_cache(mut self, cache: Option<&'a DmarcRecordCache>) -> Self {
        self.records = cache;
        self
    }

    /// The record set at `_dmarc.<domain>`; temporary DNS failures are returned as errors,
    /// NXDOMAIN and NODATA as [`RecordSet::NoRecord`].
    pub(crate) async fn query(&self, domain: &DomainName) -> Answer {
        if let Some(hit) = self.cache_get(domain) {
            return hit;
        }
        let mut buf = [0u8; DMARC_NAME_MAX];
        let answer = match self.lookup.txt(dmarc_name_in(domain, &mut buf)).await {
            Ok(rrs) => Ok(match self.records {
                Some(cache) => cache.select_owned(rrs, self.spec),
                None => Arc::new(select_record(&rrs, self.spec)),
            }),
            Err(DnsError::NxDomain | DnsError::NoData) => Ok(no_record()),
            Err(e) => Err(e),
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.push((domain.clone(), answer.clone()));
        }
        answer
    }

    fn cache_get(&self, domain: &DomainName) -> Option<Answer> {
        let cache = self.cache.lock().ok()?;
        cache
            .iter()
            .find(|(d, _)| d == domain)
            .map(|(_, a)| a.clone())
    }
}

/// The shared "no record" answer (NXDOMAIN and NODATA are common: one allocation per
/// thread, not per question).
fn no_record() -> Arc<RecordSet> {
    thread_local! {
        static NO_RECORD: Arc<RecordSet> = Arc::new(RecordSet::NoRecord);
    }
    NO_RECORD.with(Arc::clone)
}

/// Longest `_dmarc.` name: the prefix and a 253-octet name.
const DMARC_NAME_MAX: usize = 7 + 253;

/// `_dmarc.<domain>` written into `buf` (no allocation).
fn dmarc_name_in<'b>(domain: &DomainName, buf: &'b mut [u8; DMARC_NAME_MAX]) -> &'b str {
    let name = domain.as_str().as_bytes();
    let len = 7 + name.len();
    if let Some(out) = buf.get_mut(..len) {
        out[..7].copy_from_slice(b"_dmarc.");
        out[7..].copy_from_slice(name);
    }
    buf.get(..len)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("_dmarc.invalid")
}

/// The cached answers: their count, and the answers by hash.
type Answers = (usize, HashMap<u64, SmallVec<[CachedAnswer; 1]>>);

/// One cached answer: the specification, the RRs, and what they gave.
#[derive(Debug)]
struct CachedAnswer {
    spec: Spec,
    rrs: Vec<Vec<u8>>,
    set: Arc<RecordSet>,
}

/// A bounded cache of parsed DMARC record sets, keyed by the TXT answer's bytes (and the
/// specification followed), shared between evaluations like the DKIM key cache: a receiver
/// sees the same few thousand `_dmarc` answers over and over, and parses each once. The
/// key is the answer itself, so a changed record is a different key and never served
/// stale; when the cache is full it is emptied and fills again. A lookup hashes the answer
/// in place (a randomly seeded fast hash; equal hashes are told apart by the bytes) and
/// allocates nothing.
#[derive(Debug)]
pub struct DmarcRecordCache {
    capacity: usize,
    hasher: RandomState,
    /// Answers by the hash of (specification, RRs); equal hashes share a bucket.
    map: Mutex<Answers>,
}

impl DmarcRecordCache {
    /// A cache holding at most `capacity` answers (at least 1).
    pub fn new(capacity: usize) -> Self {
        DmarcRecordCache {
            capacity: capacity.max(1),
            hasher: RandomState::default(),
            map: Mutex::new((0, HashMap::new())),
        }
    }

    /// The number of answers held.
    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.0)
    }

    /// True when no answer is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key(&self, rrs: &[Vec<u8>], spec: Spec) -> u64 {
        let mut h = self.hasher.build_hasher();
        spec.hash(&mut h);
        // Each RR's length, then its bytes: the boundaries are part of the key.
        rrs.len().hash(&mut h);
        for rr in rrs {
            rr.len().hash(&mut h);
            h.write(rr);
        }
        h.finish()
    }

    fn get(&self, key: u64, rrs: &[Vec<u8>], spec: Spec) -> Option<Arc<RecordSet>> {
        let m = self.map.lock().ok()?;
        m.1.get(&key)?
            .iter()
            .find(|e| e.spec == spec && e.rrs == rrs)
            .map(|e| e.set.clone())
    }

    fn put(&self, key: u64, rrs: Vec<Vec<u8>>, spec: Spec, set: Arc<RecordSet>) {
        if let Ok(mut m) = self.map.lock() {
            if m.0 >= self.capacity {
                m.1.clear();
                m.0 = 0;
            }
            m.1.entry(key)
                .or_default()
                .push(CachedAnswer { spec, rrs, set });
            m.0 += 1;
        }
    }

    /// [`select_record`] on `rrs`, from the cache when this answer was seen before.
    pub fn select(&self, rrs: &[Vec<u8>], spec: Spec) -> Arc<RecordSet> {
        let key = self.key(rrs, spec);
        if let Some(hit) = self.get(key, rrs, spec) {
            return hit;
        }
        let set = Arc::new(select_record(rrs, spec));
        self.put(key, rrs.to_vec(), spec, set.clone());
        set
    }

    /// [`DmarcRecordCache::select`] for an answer the caller owns (kept without a copy).
    pub(crate) fn select_owned(&self, rrs: Vec<Vec<u8>>, spec: Spec) -> Arc<RecordSet> {
        let key = self.key(&rrs, spec);
        if let Some(hit) = self.get(key, &rrs, spec) {
            return hit;
        }
        let set = Arc::new(select_record(&rrs, spec));
        self.put(key, rrs, spec, set.clone());
        set
    }
}

/// One visited name of a tree walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkStep {
    /// The domain whose `_dmarc` name was queried.
    pub domain: DomainName,
    /// What was there.
    pub found: Arc<RecordSet>,
}

impl WalkStep {
    /// The `psd` value of the single DMARC record here (usable or not), if there is one.
    fn psd(&self) -> Option<Psd> {
        psd_of(&self.found)
    }

    /// True if exactly one DMARC record is here (a "valid DMARC Policy Record" for the
    /// purposes of the walk, whether or not its policy is usable).
    pub fn has_record(&self) -> bool {
        self.psd().is_some()
    }
}

/// The result of a DNS Tree Walk (§4.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeWalk {
    /// Where the walk started.
    pub start: DomainName,
    /// The names visited, longest first.
    pub steps: Vec<WalkStep>,
}

impl TreeWalk {
    /// The Organizational Domain by the selection of §4.10.2: among the records found,
    /// longest name first, a `psd=n` record's domain; else the domain one label below a
    /// `psd=y` record (other than the start); else the record with the fewest labels; and
    /// the start itself when no record was found.
    pub fn organizational_domain(&self) -> DomainName {
        let mut shortest = None;
        for step in &self.steps {
            match step.psd() {
                Some(Psd::No) => return step.domain.clone(),
                Some(Psd::Yes) if step.domain != self.start => {
                    return self.start.suffix(step.domain.label_count() + 1);
                }
                Some(_) => shortest = Some(&step.domain),
                None => {}
            }
        }
        shortest.cloned().unwrap_or_else(|| self.start.clone())
    }

    /// The step for `domain`, if the walk visited it.
    pub fn step(&self, domain: &DomainName) -> Option<&WalkStep> {
        self.steps.iter().find(|s| &s.domain == domain)
    }

    /// The Public Suffix Domain the walk met: the shortest name with a `psd=y` record.
    pub fn public_suffix_domain(&self) -> Option<&WalkStep> {
        self.steps.iter().rev().find(|s| s.psd() == Some(Psd::Yes))
    }
}

/// The names a tree walk from `start` queries, in order (§4.10 steps 3-7): the start, then,
/// for fewer than eight labels, each parent in turn; for eight or more, the start shortened
/// to seven labels and then each parent. Never more than eight names.
pub fn tree_walk_targets(start: &DomainName) -> Vec<DomainName> {
    let mut out = Vec::with_capacity(MAX_WALK);
    out.extend(walk_targets(start));
    out
}

/// Performs the DNS Tree Walk of §4.10 from `start`: queries each target of
/// [`tree_walk_targets`] in order and stops after a single DMARC record with `psd=y` or
/// `psd=n`. A temporary DNS failure ends the walk with that error.
pub async fn tree_walk<L: Lookup>(lookup: &L, start: &DomainName) -> Result<TreeWalk, DnsError> {
    let resolver = Resolver::new(lookup, Spec::Rfc9989);
    walk(&resolver, start).await
}

pub(crate) async fn walk<L: Lookup>(
    resolver: &Resolver<'_, L>,
    start: &DomainName,
) -> Result<TreeWalk, DnsError> {
    let mut steps = Vec::new();
    for target in walk_targets(start) {
        let found = resolver.query(&target).await?;
        let step = WalkStep {
            domain: target,
            found,
        };
        let stop = matches!(step.psd(), Some(Psd::Yes | Psd::No));
        steps.push(step);
        if stop {
            break;
        }
    }
    Ok(TreeWalk {
        start: start.clone(),
        steps,
    })
}

/// The targets of [`tree_walk_targets`], one at a time (no allocation: suffixes share the
/// start's text).
fn walk_targets(start: &DomainName) -> impl Iterator<Item = DomainName> + '_ {
    let x = start.label_count();
    let next = if x < 8 { x - 1 } else { 7 };
    std::iter::once(start.clone()).chain((1..=next).rev().map(move |n| start.suffix(n)))
}

/// [`TreeWalk::organizational_domain`] of the walk from `start`, decided step by step
/// without keeping the steps.
pub(crate) async fn walk_org<L: Lookup>(
    resolver: &Resolver<'_, L>,
    start: &DomainName,
) -> Result<DomainName, DnsError> {
    let mut shortest = None;
    for target in walk_targets(start) {
        let found = resolver.query(&target).await?;
        match psd_of(&found) {
            Some(Psd::No) => return Ok(target),
            Some(Psd::Yes) if target != *start => {
                return Ok(start.suffix(target.label_count() + 1));
            }
            Some(psd) => {
                shortest = Some(target);
                if psd == Psd::Yes {
                    break;
                }
            }
            None => {}
        }
    }
    Ok(shortest.unwrap_or_else(|| start.clone()))
}

/// The `psd` value of the single DMARC record of a set (usable or not), if there is one.
fn psd_of(set: &RecordSet) -> Option<Psd> {
    match set {
        RecordSet::Found(p) => Some(p.record.psd),
        RecordSet::Unusable(e) => Some(e.psd),
        RecordSet::NoRecord | RecordSet::Multiple(_) => None,
    }
}

/// The Organizational Domain of `domain` by the RFC 9989 tree walk (§4.10.2).
pub async fn organizational_domain<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
) -> Result<DomainName, DnsError> {
    Ok(tree_walk(lookup, domain).await?.organizational_domain())
}

/// The RFC 7489 §3.2 Organizational Domain: the registrable domain by the Public Suffix
/// List, or the domain itself when the list gives none (the domain is a public suffix).
pub fn psl_organizational_domain(
    psl: &Psl,
    sections: PslSections,
    domain: &DomainName,
) -> DomainName {
    psl.registrable_domain(domain.as_str(), sections)
        .and_then(|d| DomainName::new(&d).ok())
        .unwrap_or_else(|| domain.clone())
}

/// RFC 7489 §3.1 alignment of an authenticated identifier `id` with the Author Domain
/// `author`, Organizational Domains taken from the Public Suffix List: identical names
/// align in both modes; in relaxed mode, names with the same registrable domain align.
pub fn psl_aligned(
    psl: &Psl,
    sections: PslSections,
    author: &DomainName,
    id: &DomainName,
    mode: super::AlignmentMode,
) -> bool {
    author == id
        || (mode == super::AlignmentMode::Relaxed
            && psl_organizational_domain(psl, sections, author)
                == psl_organizational_domain(psl, sections, id))
}

/// Which tag a requested policy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicySource {
    /// `p`: the record is the Author Domain's own.
    P,
    /// `sp`: the Author Domain is an existing subdomain of the Policy Domain (or its
    /// existence did not matter).
    Sp,
    /// `np`: the Author Domain does not exist (RFC 9989 only).
    Np,
}

impl PolicySource {
    /// `p`, `sp` or `np`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicySource::P => "p",
            PolicySource::Sp => "sp",
            PolicySource::Np => "np",
        }
    }
}

/// The outcome of policy discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveredPolicy {
    /// A usable record was found.
    Found {
        /// The DMARC Policy Domain.
        policy_domain: DomainName,
        /// The record (its [`Record`](super::Record) is shared with the cache).
        record: ParsedRecord,
        /// The Organizational Domain, when discovery had to determine it.
        org_domain: Option<DomainName>,
        /// The walk, when one was done (RFC 9989).
        walk: Option<Box<TreeWalk>>,
    },
    /// No usable record: DMARC does not apply. The text says why.
    NoPolicy {
        /// Why, for a person.
        reason: String,
        /// The Organizational Domain, when discovery determined it.
        org_domain: Option<DomainName>,
    },
}

/// DMARC Policy Discovery for `author` (§4.10.1 for [`Spec::Rfc9989`], RFC 7489 §6.6.3
/// otherwise). A temporary DNS failure is returned as the error.
pub async fn discover_policy<L: Lookup>(
    lookup: &L,
    author: &DomainName,
    spec: Spec,
    psl: &Psl,
    sections: PslSections,
) -> Result<DiscoveredPolicy, DnsError> {
    let resolver = Resolver::new(lookup, spec);
    discover(&resolver, author, Some(psl), sections).await
}

/// `psl` is used in RFC 7489 mode only (the built-in list when `None`).
pub(crate) async fn discover<L: Lookup>(
    resolver: &Resolver<'_, L>,
    author: &DomainName,
    psl: Option<&Psl>,
    sections: PslSections,
) -> Result<DiscoveredPolicy, DnsError> {
    let first = resolver.query(author).await?;
    match &*first {
        RecordSet::Found(record) => {
            return Ok(DiscoveredPolicy::Found {
                policy_domain: author.clone(),
                record: record.clone(),
                org_domain: None,
                walk: None,
            });
        }
        RecordSet::Unusable(e) => {
            return Ok(DiscoveredPolicy::NoPolicy {
                reason: format!("the DMARC record at {}: {e}", author.dmarc_name()),
                org_domain: None,
            });
        }
        RecordSet::Multiple(n) => {
            // RFC 7489 §6.6.3 step 5, and the Author Domain's record is the most specific
            // statement the owner made: an ambiguous one is not replaced by a parent's.
            return Ok(DiscoveredPolicy::NoPolicy {
                reason: format!(
                    "{} has {n} DMARC records; all are discarded and DMARC does not apply",
                    author.dmarc_name()
                ),
                org_domain: None,
            });
        }
        RecordSet::NoRecord => {}
    }
    match resolver.spec {
        Spec::Rfc7489 => {
            let psl = psl.unwrap_or_else(|| Psl::builtin());
            let org = psl_organizational_domain(psl, sections, author);
            if org == *author {
                return Ok(DiscoveredPolicy::NoPolicy {
                    reason: format!(
                        "no DMARC record at {} and it is its own Organizational Domain",
                        author.dmarc_name()
                    ),
                    org_domain: Some(org),
                });
            }
            let answer = resolver.query(&org).await?;
            Ok(match &*answer {
                RecordSet::Found(record) => DiscoveredPolicy::Found {
                    policy_domain: org.clone(),
                    record: record.clone(),
                    org_domain: Some(org),
                    walk: None,
                },
                other => DiscoveredPolicy::NoPolicy {
                    reason: format!(
                        "no DMARC record at {} and {} at the Organizational Domain ({})",
                        author.dmarc_name(),
                        describe(other),
                        org.dmarc_name()
                    ),
                    org_domain: Some(org),
                },
            })
        }
        Spec::Rfc9989 => {
            let walk = walk(resolver, author).await?;
            let org = walk.organizational_domain();
            let chosen = match walk
                .steps
                .iter()
                .position(|s| s.domain == org && s.has_record())
            {
                Some(i) => Some(i),
                None => walk.steps.iter().rposition(|s| s.psd() == Some(Psd::Yes)),
            };
            let Some(step) = chosen.and_then(|i| walk.steps.get(i)) else {
                return Ok(DiscoveredPolicy::NoPolicy {
                    reason: format!(
                        "no DMARC record found by the tree walk from {}",
                        author.dmarc_name()
                    ),
                    org_domain: Some(org),
                });
            };
            match &*step.found {
                RecordSet::Found(record) => Ok(DiscoveredPolicy::Found {
                    policy_domain: step.domain.clone(),
                    record: record.clone(),
                    org_domain: Some(org),
                    walk: Some(Box::new(walk)),
                }),
                other => Ok(DiscoveredPolicy::NoPolicy {
                    reason: format!(
                        "the tree walk chose {}, but {}",
                        step.domain.dmarc_name(),
                        describe(other)
                    ),
                    org_domain: Some(org),
                }),
            }
        }
    }
}

fn describe(set: &RecordSet) -> String {
    match set {
        RecordSet::NoRecord => "there is no DMARC record".into(),
        RecordSet::Multiple(n) => format!("there are {n} DMARC records (all discarded)"),
        RecordSet::Unusable(e) => format!("the record is unusable: {e}"),
        RecordSet::Found(_) => "a record was found".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_cache_is_keyed_by_answer_and_spec() {
        let cache = DmarcRecordCache::new(8);
        let rrs = vec![b"v=DMARC1; p=reject".to_vec()];
        let a = cache.select(&rrs, Spec::Rfc9989);
        assert_eq!(*a, select_record(&rrs, Spec::Rfc9989));
        assert!(Arc::ptr_eq(&a, &cache.select(&rrs, Spec::Rfc9989)));
        assert!(!Arc::ptr_eq(&a, &cache.select(&rrs, Spec::Rfc7489)));
        // The RR boundaries are part of the key.
        let split = vec![b"v=DMARC1; p=rej".to_vec(), b"ect".to_vec()];
        assert_eq!(
            *cache.select(&split, Spec::Rfc9989),
            select_record(&split, Spec::Rfc9989)
        );
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn targets_follow_the_eight_label_shortcut() {
        let d = DomainName::new("a.b.c.d.e.f.g.h.i.j.mail.example.com").unwrap();
        let t: Vec<String> = tree_walk_targets(&d)
            .iter()
            .map(|d| d.dmarc_name())
            .collect();
        assert_eq!(
            t,
            [
                "_dmarc.a.b.c.d.e.f.g.h.i.j.mail.example.com",
                "_dmarc.g.h.i.j.mail.example.com",
                "_dmarc.h.i.j.mail.example.com",
                "_dmarc.i.j.mail.example.com",
                "_dmarc.j.mail.example.com",
                "_dmarc.mail.example.com",
                "_dmarc.example.com",
                "_dmarc.com",
            ]
        );
        let d = DomainName::new("a.mail.example.com").unwrap();
        assert_eq!(tree_walk_targets(&d).len(), 4);
        let d = DomainName::new("h.g.f.e.d.c.b.a").unwrap();
        assert_eq!(tree_walk_targets(&d).len(), 8);
        let d = DomainName::new("localhost").unwrap();
        assert_eq!(tree_walk_targets(&d).len(), 1);
    }
}
