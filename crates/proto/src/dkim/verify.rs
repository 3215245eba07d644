//! Verification (§6): every signature of a message, keys fetched concurrently, each body
//! hash computed once.

use std::borrow::Cow;
use std::sync::Arc;

use aws_lc_rs::digest;
use smallvec::SmallVec;

use super::canon::{
    BodyCanonicalizer, BodySink, canonicalize_header, is_canonical, surely_not_canonical,
};
use super::key::{KeyCache, KeyRecord, ParsedKey, PublicKey, parse_record_and_key};
use super::parse::{Signature, SignatureInfo, parse_signature};
use super::{Algorithm, Canon, DkimResult, HashAlgorithm, Problem, SignatureResult, VerifyConfig};
use crate::clock::Clock;
use crate::dns::{DnsError, DnsResult, Lookup};
use crate::message::{FieldSpan, HeaderField, Message, OwnedHeader, parse_header_block};

/// Verifies DKIM signatures. Cheap to share: holds its settings and, optionally, a cache of
/// parsed keys.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    config: VerifyConfig,
    cache: Option<Arc<KeyCache>>,
}

impl Verifier {
    /// A verifier with these settings and no key cache.
    pub fn new(config: VerifyConfig) -> Self {
        Verifier {
            config,
            cache: None,
        }
    }

    /// Keeps parsed public keys in `cache`, keyed by the key record bytes.
    pub fn with_key_cache(mut self, cache: Arc<KeyCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The settings.
    pub fn config(&self) -> &VerifyConfig {
        &self.config
    }

    /// Verifies every `DKIM-Signature` of `message`, in header order (top first). An empty
    /// result means the message is unsigned (DKIM result `none`).
    pub async fn verify<L, C>(&self, message: &[u8], lookup: &L, clock: &C) -> Vec<SignatureResult>
    where
        L: Lookup + ?Sized,
        C: Clock + ?Sized,
    {
        let msg = Message::parse(message);
        let spans = msg.headers().iter().map(HeaderField::span).collect();
        let mut v = StreamingVerifier::new(
            Cow::Borrowed(msg.header_block()),
            spans,
            self.config.clone(),
            self.cache.clone(),
        );
        v.whole_body(msg.body());
        v.finish(lookup, clock).await
    }

    /// Starts a verification of a message already parsed, borrowing its header block and
    /// reusing its header split (for the receiver's single call, which holds the whole
    /// message). Give the body with [`StreamingVerifier::whole_body`].
    pub fn start_message<'a>(&self, message: &Message<'a>) -> StreamingVerifier<'a> {
        let spans = message.headers().iter().map(HeaderField::span).collect();
        StreamingVerifier::new(
            Cow::Borrowed(message.header_block()),
            spans,
            self.config.clone(),
            self.cache.clone(),
        )
    }

    /// Starts a streaming verification over a header block the verifier takes, already
    /// split (no copy, no second split): as [`start`](Self::start), for a receiver session
    /// that collected the fields itself.
    pub fn start_owned(&self, header: OwnedHeader) -> StreamingVerifier<'static> {
        let (block, spans) = header.into_parts();
        StreamingVerifier::new(
            Cow::Owned(block),
            spans,
            self.config.clone(),
            self.cache.clone(),
        )
    }

    /// Starts a streaming verification: `header_block` is the message's header fields (up
    /// to, optionally including, the empty line). Feed the body with
    /// [`StreamingVerifier::body`].
    pub fn start(&self, header_block: &[u8]) -> StreamingVerifier<'static> {
        let spans = parse_header_block(header_block)
            .iter()
            .map(HeaderField::span)
            .collect();
        StreamingVerifier::new(
            Cow::Owned(header_block.to_vec()),
            spans,
            self.config.clone(),
            self.cache.clone(),
        )
    }
}

/// The answers to key queries, by DNS name (compared without case). Filled by
/// [`fetch_keys`] or by hand. A message asks for one or two keys, so this is a short list.
#[derive(Debug, Clone, Default)]
pub struct KeyAnswers(Vec<(Arc<str>, DnsResult<Vec<u8>>)>);

impl KeyAnswers {
    /// Records the answer for `name` (replacing an earlier answer for the same name).
    pub fn insert(&mut self, name: impl Into<Arc<str>>, answer: DnsResult<Vec<u8>>) {
        let name = name.into();
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(slot) => slot.1 = answer,
            None => self.0.push((name, answer)),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&DnsResult<Vec<u8>>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| a)
    }
}

/// Asks for every key in `names` (from [`StreamingVerifier::key_names`]) at once and
/// collects the answers. The names are shared, not copied.
pub async fn fetch_keys<L: Lookup + ?Sized>(lookup: &L, names: &[Arc<str>]) -> KeyAnswers {
    let answers = futures_util::future::join_all(names.iter().map(|n| lookup.txt(n))).await;
    let mut out = KeyAnswers(Vec::with_capacity(names.len()));
    for (name, answer) in names.iter().zip(answers) {
        out.insert(Arc::clone(name), answer);
    }
    out
}

struct Slot {
    hash: HashAlgorithm,
    limit: Option<u64>,
    ctx: digest::Context,
    written: u64,
    /// The canonical body length, once known.
    canon_len: u64,
    result: Option<digest::Digest>,
}

impl BodySink for [Slot] {
    #[inline]
    fn write(&mut self, data: &[u8]) {
        for slot in self.iter_mut() {
            let take = match slot.limit {
                Some(l) => {
                    let room = l.saturating_sub(slot.written);
                    usize::try_from(room).map_or(data.len(), |r| r.min(data.len()))
                }
                None => data.len(),
            };
            if take > 0 {
                slot.ctx.update(data.get(..take).unwrap_or_default());
                slot.written += take as u64;
            }
        }
    }
}

struct Group {
    canon: Canon,
    canonicalizer: BodyCanonicalizer,
    slots: Vec<Slot>,
    /// The `bh=` values the signatures of this group expect (see [`BodyHashes::whole_body`]).
    expected: Expected,
    /// The body hashes are known already (see [`BodyHashes::whole_body`]).
    done: bool,
}

/// The `bh=` the signatures of a group carry: when they all carry the same, a raw hash of
/// the body equal to it proves the body canonical.
enum Expected {
    One(SmallVec<[u8; 64]>),
    Mixed,
}

/// The body hashes a set of signatures needs, one per (body canonicalisation, hash, `l=`),
/// each body canonicalisation run once: for DKIM's signatures and, when the receiver
/// shares them ([`crate::arc::ArcVerification::share_body_hashes`]), ARC's AMSs too.
#[derive(Default)]
pub(crate) struct BodyHashes {
    groups: Vec<Group>,
}

impl BodyHashes {
    /// The (group, slot) computing the hash for `canon`, `hash` and `limit` (`l=`), added
    /// if no earlier signature needed it; `expected` is the signature's `bh=`.
    pub(crate) fn want(
        &mut self,
        canon: Canon,
        hash: HashAlgorithm,
        limit: Option<u64>,
        expected: &[u8],
    ) -> (usize, usize) {
        let g = match self.groups.iter().position(|g| g.canon == canon) {
            Some(g) => g,
            None => {
                self.groups.push(Group {
                    canon,
                    canonicalizer: BodyCanonicalizer::new(canon),
                    slots: Vec::new(),
                    expected: Expected::One(SmallVec::from_slice(expected)),
                    done: false,
                });
                self.groups.len() - 1
            }
        };
        let Some(group) = self.groups.get_mut(g) else {
            return (g, 0);
        };
        if matches!(&group.expected, Expected::One(e) if e.as_slice() != expected) {
            group.expected = Expected::Mixed;
        }
        let slots = &mut group.slots;
        let s = match slots
            .iter()
            .position(|s| s.hash == hash && s.limit == limit)
        {
            Some(s) => s,
            None => {
                slots.push(Slot {
                    hash,
                    limit,
                    ctx: digest::Context::new(hash.digest_algorithm()),
                    written: 0,
                    canon_len: 0,
                    result: None,
                });
                slots.len() - 1
            }
        };
        (g, s)
    }

    /// The number of hashes computed.
    fn len(&self) -> usize {
        self.groups.iter().map(|g| g.slots.len()).sum()
    }

    /// Hashes the next chunk of the body.
    pub(crate) fn update(&mut self, chunk: &[u8]) {
        for g in &mut self.groups {
            g.canonicalizer.update(chunk, g.slots.as_mut_slice());
        }
    }

    /// Hashes a body that is available whole.
    ///
    /// A body that is already in canonical form is its own canonicalisation (both
    /// algorithms are idempotent: canon(canon(x)) = canon(x)). So the body is first hashed
    /// as it is, trailing empty lines aside, in one pass without looking at each byte; when
    /// that SHA-256 equals the `bh=` of every signature of the group, the body is the
    /// canonical form the signer hashed (SHA-256 second preimages being out of reach), and
    /// canonicalising it would give the same bytes. When it does not match, a quick scan
    /// tells whether the body is canonical as it is (then the raw hash stands and the body
    /// was changed); only bodies with whitespace runs, trailing whitespace or bare LFs are
    /// canonicalised byte by byte. Groups with an `l=` always take the exact path. Call
    /// [`finish`](Self::finish) after.
    pub(crate) fn whole_body(&mut self, body: &[u8]) {
        let mut trimmed = body;
        while let Some(rest) = trimmed.strip_suffix(b"\r\n") {
            trimmed = rest;
        }
        // The raw SHA-256 of the body with and without the final CRLF, computed once for
        // every group that needs it.
        let mut raw: [Option<(digest::Digest, u64)>; 2] = [None, None];
        for g in &mut self.groups {
            // A body with a spot that needs changing near its start or its end (bare LF
            // line endings, a list footer with trailing whitespace, a `-- ` signature
            // separator) is not canonical: skip the raw hash.
            let direct = g.slots.iter().all(|s| s.limit.is_none())
                && !surely_not_canonical(g.canon, trimmed);
            // The canonical body: the body without its trailing empty lines and one CRLF
            // (for simple, an empty body is one CRLF; for relaxed it stays empty).
            let tail: &[u8] = if !trimmed.is_empty() || g.canon == Canon::Simple {
                b"\r\n"
            } else {
                b""
            };
            let raw_hash = |raw: &mut [Option<(digest::Digest, u64)>; 2], hash: HashAlgorithm| {
                let compute = || {
                    let mut ctx = digest::Context::new(hash.digest_algorithm());
                    ctx.update(trimmed);
                    ctx.update(tail);
                    (ctx.finish(), (trimmed.len() + tail.len()) as u64)
                };
                match (hash, raw.get_mut(usize::from(tail.is_empty()))) {
                    (HashAlgorithm::Sha256, Some(cached)) => *cached.get_or_insert_with(compute),
                    _ => compute(),
                }
            };
            let matched = direct
                && g.slots.iter().all(|s| s.hash == HashAlgorithm::Sha256)
                && match &g.expected {
                    Expected::One(e) => {
                        e.as_slice() == raw_hash(&mut raw, HashAlgorithm::Sha256).0.as_ref()
                    }
                    Expected::Mixed => false,
                };
            // A body that does not match but is canonical as it is has the raw hash all
            // the same: the mismatch is real, no need to canonicalise.
            if matched || (direct && is_canonical(g.canon, trimmed)) {
                for s in &mut g.slots {
                    let (d, len) = raw_hash(&mut raw, s.hash);
                    s.result = Some(d);
                    s.written = len;
                    s.canon_len = len;
                }
                g.done = true;
            } else {
                g.canonicalizer.update(body, g.slots.as_mut_slice());
            }
        }
    }

    /// Ends the body (again: a no-op).
    pub(crate) fn finish(&mut self) {
        finish_groups(&mut self.groups);
    }

    /// The finished hash of `(group, slot)` and the canonical body length.
    pub(crate) fn get(&self, (g, s): (usize, usize)) -> Option<(&[u8], u64)> {
        let slot = self.groups.get(g)?.slots.get(s)?;
        Some((slot.result.as_ref()?.as_ref(), slot.canon_len))
    }

    /// How much of the canonical body `(group, slot)` hashed (less than the body for `l=`).
    fn written(&self, (g, s): (usize, usize)) -> u64 {
        self.groups
            .get(g)
            .and_then(|g| g.slots.get(s))
            .map_or(0, |s| s.written)
    }
}

fn finish_groups(groups: &mut [Group]) {
    for g in groups {
        if g.done {
            continue;
        }
        g.canonicalizer.finish(g.slots.as_mut_slice());
        g.done = true;
        let canon_len = g.canonicalizer.written();
        for s in &mut g.slots {
            s.canon_len = canon_len;
            let ctx =
                std::mem::replace(&mut s.ctx, digest::Context::new(s.hash.digest_algorithm()));
            s.result = Some(ctx.finish());
        }
    }
}

// Entries sit in one Vec, one per signature: the unused room of an invalid entry costs less
// than a box per valid signature.
#[allow(clippy::large_enum_variant)]
enum Entry {
    Invalid(Problem, SignatureInfo),
    Valid {
        sig: Signature,
        key_name: Arc<str>,
        group: usize,
        slot: usize,
    },
}

/// A verification in progress, for a message that arrives in pieces: the header block
/// first, then the body in chunks. The body is hashed as it arrives and not kept.
///
/// ```text
/// let mut v = verifier.start(header_block);
/// let names = v.key_names();          // ask DNS now, while the body streams
/// v.body(chunk1); v.body(chunk2); ...
/// let results = v.finish(&lookup, &clock).await;   // or finish_with_keys
/// ```
pub struct StreamingVerifier<'a> {
    header: Cow<'a, [u8]>,
    spans: Vec<FieldSpan>,
    config: VerifyConfig,
    cache: Option<Arc<KeyCache>>,
    entries: Vec<(usize, Entry)>,
    hashes: BodyHashes,
}

impl std::fmt::Debug for StreamingVerifier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingVerifier")
            .field("signatures", &self.entries.len())
            .field("body_hashes", &self.hashes.len())
            .finish()
    }
}

impl<'a> StreamingVerifier<'a> {
    fn new(
        header: Cow<'a, [u8]>,
        spans: Vec<FieldSpan>,
        config: VerifyConfig,
        cache: Option<Arc<KeyCache>>,
    ) -> Self {
        let mut entries = Vec::new();
        let mut hashes = BodyHashes::default();
        let mut count = 0usize;
        for field in spans.iter().map(|s| HeaderField::from_span(&header, *s)) {
            // The length rules most fields out without comparing names.
            if field.trimmed_name().len() != "DKIM-Signature".len() || !field.is("DKIM-Signature") {
                continue;
            }
            count += 1;
            if count > config.max_signatures {
                let info = parse_signature(field.value()).map_or_else(|e| e.info, |s| s.info);
                entries.push((
                    field.index(),
                    Entry::Invalid(Problem::TooManySignatures, info),
                ));
                continue;
            }
            let entry = match parse_signature(field.value()) {
                Err(e) => Entry::Invalid(e.problem, e.info),
                Ok(sig) if sig.algorithm == Algorithm::RsaSha1 && !config.allow_rsa_sha1 => {
                    Entry::Invalid(Problem::Sha1NotAllowed, sig.info)
                }
                Ok(sig) => {
                    let (g, slot) = hashes.want(
                        sig.canonicalization.body,
                        sig.algorithm.hash(),
                        sig.body_length,
                        sig.body_hash(),
                    );
                    Entry::Valid {
                        key_name: shared_key_name(&sig),
                        sig,
                        group: g,
                        slot,
                    }
                }
            };
            entries.push((field.index(), entry));
        }
        StreamingVerifier {
            header,
            spans,
            config,
            cache,
            entries,
            hashes,
        }
    }

    /// The number of `DKIM-Signature` fields found.
    pub fn signature_count(&self) -> usize {
        self.entries.len()
    }

    /// The DNS names of the keys the usable signatures need, without duplicates. Ask them
    /// with [`fetch_keys`] while the body streams, then call
    /// [`finish_with_keys`](Self::finish_with_keys).
    pub fn key_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = Vec::new();
        for (_, e) in &self.entries {
            if let Entry::Valid { key_name, .. } = e
                && !names.contains(key_name)
            {
                names.push(Arc::clone(key_name));
            }
        }
        names
    }

    /// Hashes the next chunk of the body. Chunks may be cut anywhere.
    pub fn body(&mut self, chunk: &[u8]) {
        self.hashes.update(chunk);
    }

    /// Hashes a body that is available whole: quicker than [`body`](Self::body) when the
    /// body is already in canonical form, as most are (see how in the code of
    /// `BodyHashes::whole_body`). Give the body once, by one of the two.
    pub fn whole_body(&mut self, body: &[u8]) {
        self.hashes.whole_body(body);
    }

    /// Adds the body hashes of an ARC chain (see
    /// [`ArcVerification::share_body_hashes`](crate::arc::ArcVerification::share_body_hashes)).
    pub(crate) fn body_hashes(&mut self) -> &mut BodyHashes {
        &mut self.hashes
    }

    /// Ends the body, fetches the keys and gives the results, in header order.
    pub async fn finish<L, C>(self, lookup: &L, clock: &C) -> Vec<SignatureResult>
    where
        L: Lookup + ?Sized,
        C: Clock + ?Sized,
    {
        let keys = fetch_keys(lookup, &self.key_names()).await;
        self.finish_with_keys(&keys, clock)
    }

    /// Ends the body and gives the results, with the key answers already fetched.
    pub fn finish_with_keys<C: Clock + ?Sized>(
        self,
        keys: &KeyAnswers,
        clock: &C,
    ) -> Vec<SignatureResult> {
        self.finish_inner(|name| keys.get(name), clock)
    }

    fn finish_inner<'k, C: Clock + ?Sized>(
        mut self,
        keys: impl Fn(&str) -> Option<&'k DnsResult<Vec<u8>>>,
        clock: &C,
    ) -> Vec<SignatureResult> {
        self.hashes.finish();
        let now = clock.unix_seconds();
        let entries = std::mem::take(&mut self.entries);
        let fields: SmallVec<[HeaderField<'_>; 32]> = self
            .spans
            .iter()
            .map(|s| HeaderField::from_span(&self.header, *s))
            .collect();
        let mut parsed_keys: SmallVec<[(Arc<str>, Arc<ParsedKey>); 2]> = SmallVec::new();
        let mut buf = Vec::with_capacity(self.header.len() + 256);
        let mut scratch = SmallVec::new();
        let mut used: SmallVec<[bool; 64]> = smallvec::smallvec![false; fields.len()];
        let mut results = Vec::with_capacity(entries.len());
        for (index, entry) in entries {
            let result = match entry {
                Entry::Invalid(problem, info) => SignatureResult {
                    result: problem.result(),
                    problem: Some(problem),
                    info,
                    field_index: index,
                    partial_body: None,
                    testing: false,
                },
                Entry::Valid {
                    sig,
                    key_name,
                    group,
                    slot,
                } => {
                    let key = match parsed_keys.iter().find(|(n, _)| *n == key_name) {
                        Some((_, k)) => Some(k.clone()),
                        None => keys(&key_name).map(|answer| {
                            let k = key_from_answer(answer, self.cache.as_deref());
                            parsed_keys.push((key_name, k.clone()));
                            k
                        }),
                    };
                    let (body_hash, canon_len) = self
                        .hashes
                        .get((group, slot))
                        .map_or((None, 0), |(h, len)| (Some(h), len));
                    let written = self.hashes.written((group, slot));
                    let mut testing = false;
                    let outcome = evaluate(
                        &sig,
                        index,
                        &fields,
                        key.as_deref(),
                        body_hash,
                        canon_len,
                        &self.config,
                        now,
                        (&mut buf, &mut scratch),
                        &mut used,
                        &mut testing,
                    );
                    let partial_body = match (sig.body_length, &outcome) {
                        (Some(_), Ok(())) if written < canon_len => Some((written, canon_len)),
                        _ => None,
                    };
                    SignatureResult {
                        result: outcome
                            .as_ref()
                            .map_or_else(Problem::result, |()| DkimResult::Pass),
                        problem: outcome.err(),
                        info: sig.info,
                        field_index: index,
                        partial_body,
                        testing,
                    }
                }
            };
            results.push(result);
        }
        results
    }
}

/// Room for a signature value without `b=` (the `h=` list and a few short tags), so that
/// the usual one is copied on the stack.
type Scratch = SmallVec<[u8; 512]>;

/// The key name of `sig` (§3.6.2.1), written on the stack and then shared: one allocation.
pub(crate) fn shared_key_name(sig: &Signature) -> Arc<str> {
    let mut name: SmallVec<[u8; 320]> = SmallVec::new();
    name.extend(sig.selector().bytes().map(|b| b.to_ascii_lowercase()));
    name.extend_from_slice(b"._domainkey.");
    name.extend(sig.domain().bytes().map(|b| b.to_ascii_lowercase()));
    // Both parts are strings, so this is never lossy.
    Arc::from(&*String::from_utf8_lossy(&name))
}

pub(crate) fn key_from_answer(
    answer: &DnsResult<Vec<u8>>,
    cache: Option<&KeyCache>,
) -> Arc<ParsedKey> {
    match answer {
        Err(DnsError::Temporary(why)) => Arc::new(Err(Problem::KeyLookupFailed(why.clone()))),
        Err(_) => Arc::new(Err(Problem::NoKey)),
        Ok(records) => {
            // §6.1.2: with several records, use one that parses.
            let mut first_err = None;
            for r in records {
                let parsed = match cache {
                    Some(c) => c.get_or_parse(r),
                    None => Arc::new(parse_record_and_key(r)),
                };
                if parsed.is_ok() {
                    return parsed;
                }
                if first_err.is_none() {
                    first_err = Some(parsed);
                }
            }
            first_err.unwrap_or_else(|| Arc::new(Err(Problem::NoKey)))
        }
    }
}

/// The checks of a key against the signature that uses it (§3.6.1, §6.1.2, RFC 8301 §3.2),
/// shared by DKIM signatures and ARC's AMS and AS: the key is there and not revoked, its
/// type and `h=` fit the algorithm, it is for email, `t=s` holds (`identity_is_domain`:
/// the `i=` domain is `d=`) and an RSA key has at least `min_rsa_bits` (never under 1024).
pub(crate) fn check_key(
    key: Option<&ParsedKey>,
    algorithm: Algorithm,
    min_rsa_bits: usize,
    identity_is_domain: bool,
) -> Result<(&KeyRecord, &PublicKey), Problem> {
    let (record, public) = match key {
        None => return Err(Problem::NoKey),
        Some(Err(p)) => return Err(p.clone()),
        Some(Ok((record, public))) => (record, public),
    };
    let Some(public) = public else {
        return Err(Problem::KeyRevoked);
    };
    if record.key_type != algorithm.key_type() {
        return Err(Problem::KeyTypeMismatch {
            key: record.key_type,
            algorithm,
        });
    }
    if let Some(hashes) = &record.hashes
        && !hashes.contains(&algorithm.hash())
    {
        return Err(Problem::HashNotAllowedByKey(algorithm.hash()));
    }
    if !record.for_email {
        return Err(Problem::KeyNotForEmail);
    }
    if record.strict && !identity_is_domain {
        return Err(Problem::StrictIdentityMismatch);
    }
    let minimum = min_rsa_bits.max(1024);
    if let Some(bits) = public.rsa_bits()
        && bits < minimum
    {
        return Err(Problem::KeyTooSmall { bits, minimum });
    }
    Ok((record, public))
}

#[allow(clippy::too_many_arguments)]
fn evaluate(
    sig: &Signature,
    own_index: usize,
    fields: &[HeaderField<'_>],
    key: Option<&ParsedKey>,
    body_hash: Option<&[u8]>,
    canon_len: u64,
    config: &VerifyConfig,
    now: u64,
    (buf, scratch): (&mut Vec<u8>, &mut Scratch),
    used: &mut [bool],
    testing: &mut bool,
) -> Result<(), Problem> {
    if config.check_expiration
        && let Some(x) = sig.expiration
        && x < now
    {
        return Err(Problem::Expired);
    }
    if let Some(Ok((record, _))) = key {
        *testing = record.testing;
    }
    let (_, public) = check_key(
        key,
        sig.algorithm,
        config.min_rsa_bits,
        sig.identity_is_domain(),
    )?;
    if let Some(l) = sig.body_length
        && l > canon_len
    {
        return Err(Problem::BodyLengthExceeded {
            signed: l,
            actual: canon_len,
        });
    }
    if body_hash != Some(sig.body_hash.as_slice()) {
        return Err(Problem::BodyHashMismatch);
    }
    buf.clear();
    header_data(sig, own_index, fields, buf, scratch, used);
    if public.verify(sig.algorithm, buf, &sig.signature) {
        Ok(())
    } else {
        Err(Problem::SignatureMismatch)
    }
}

/// The data the `DKIM-Signature` of `d=` `domain` and `s=` `selector` in `header_block`
/// covers, exactly as [`Verifier`] hashes it (the signed fields, each canonicalised, then
/// the signature field with an empty `b=` and no final CRLF): what a failure report's
/// `DKIM-Canonicalized-Header` carries (RFC 6591 §3.2). The last such signature when there
/// are several; `None` when none parses.
pub fn signed_header_data_of(header_block: &[u8], domain: &str, selector: &str) -> Option<Vec<u8>> {
    let fields = crate::message::parse_header_block(header_block);
    let (own_index, sig) = fields.iter().enumerate().rev().find_map(|(i, f)| {
        if !f.is("DKIM-Signature") {
            return None;
        }
        let sig = parse_signature(f.value()).ok()?;
        (sig.domain().eq_ignore_ascii_case(domain) && sig.selector().eq_ignore_ascii_case(selector))
            .then_some((i, sig))
    })?;
    let mut buf = Vec::new();
    let mut stripped = Scratch::new();
    let mut used = vec![false; fields.len()];
    header_data(&sig, own_index, &fields, &mut buf, &mut stripped, &mut used);
    Some(buf)
}

/// Builds the data the signature covers (§3.7): the signed header fields, each selected
/// from the bottom up, canonicalised, then the signature field itself with an empty `b=`
/// and no final CRLF. `stripped` is scratch space for the signature value without `b=`.
fn header_data(
    sig: &Signature,
    own_index: usize,
    fields: &[HeaderField<'_>],
    buf: &mut Vec<u8>,
    stripped: &mut Scratch,
    used: &mut [bool],
) {
    let Some(own) = fields.get(own_index) else {
        return;
    };
    let value = own.value();
    stripped.clear();
    stripped.extend_from_slice(value.get(..sig.b_range.start).unwrap_or(value));
    stripped.extend_from_slice(value.get(sig.b_range.end..).unwrap_or_default());
    signed_header_data(
        sig.canonicalization.header,
        sig.signed_names(value),
        fields,
        Some(own_index),
        (own.name(), stripped),
        buf,
        used,
    );
}

/// The data a signature covers: the fields named in `names`, each instance selected from
/// the bottom up (§5.4.2) and never the field at `skip` (the signature itself), then the
/// signature field `own` (name, value with an empty `b=`) without its final CRLF.
pub(crate) fn signed_header_data<'n>(
    canon: Canon,
    names: impl IntoIterator<Item = &'n str>,
    fields: &[HeaderField<'_>],
    skip: Option<usize>,
    own: (&[u8], &[u8]),
    buf: &mut Vec<u8>,
    used: &mut [bool],
) {
    used.iter_mut().for_each(|u| *u = false);
    // Each field's name length, found once: most fields are ruled out by length alone.
    let lens: SmallVec<[usize; 32]> = fields.iter().map(|f| f.trimmed_name().len()).collect();
    for name in names {
        let found = fields
            .iter()
            .zip(&lens)
            .rev()
            .find(|(f, len)| {
                **len == name.len()
                    && Some(f.index()) != skip
                    && !used.get(f.index()).copied().unwrap_or(true)
                    && f.is(name)
            })
            .map(|(f, _)| f);
        if let Some(f) = found {
            if let Some(u) = used.get_mut(f.index()) {
                *u = true;
            }
            canonicalize_header(canon, f.name(), f.value(), true, buf);
        }
        // A name with no (more) instances is oversigning: it contributes nothing (§5.4).
    }
    canonicalize_header(canon, own.0, own.1, false, buf);
}
