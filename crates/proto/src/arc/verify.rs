//! Chain validation (§5.2).
//!
//! The steps, in the order of §5.2:
//!
//! 1. Collect the ARC sets. None: `none`. More than 50: `fail`.
//! 2. The newest seal says `cv=fail`: `fail`.
//! 3. Structure: every instance 1..N has exactly one AAR, AMS and AS (no gaps, no
//!    duplicates); the first seal says `cv=none`, every later one `cv=pass`. Else `fail`.
//! 4. The newest AMS verifies, else `fail`.
//! 5. oldest-pass: the older AMSs are checked from N-1 down; the oldest instance from which
//!    every AMS verifies is reported.
//! 6. Every seal, N down to 1, verifies, else `fail`.
//! 7. `pass`.
//!
//! The chain's status needs only steps 4 and 6 (the newest AMS and every seal); step 5 is
//! optional in §5.2 and decides nothing but oldest-pass, which is reported only for a
//! chain that passes. So step 5 runs last, and only when step 6 passed: a failing chain
//! costs no older AMS check, and the checks of step 5 stop at the first older AMS that
//! fails. An AMS whose body hash does not match fails before its signature is checked, and
//! AMSs (and DKIM signatures) that hash the body alike share one body hash.
//!
//! The keys of every seal and AMS are asked for at once, before any signature is checked
//! ([`ArcVerification::key_names`] lets a receiver ask them with the DKIM keys, in one DNS
//! round, and finish with [`ArcVerification::finish_with_keys`]).

use std::borrow::Cow;
use std::sync::Arc;

use smallvec::SmallVec;

use super::parse::{AmsField, SealCore, SealField, field_kind, parse_aar, parse_ams, parse_seal};
use super::{ArcHop, ArcOutput, ArcProblem, ChainStatus, FieldKind, MAX_INSTANCES};
use crate::clock::Clock;
use crate::dkim::key::ParsedKey;
use crate::dkim::parse::Signature;
use crate::dkim::verify::{
    BodyHashes, check_key, key_from_answer, shared_key_name, signed_header_data,
};
use crate::dkim::{
    Canon, KeyAnswers, KeyCache, Problem, StreamingVerifier, canonicalize_header, fetch_keys,
};
use crate::dns::Lookup;
use crate::message::{FieldSpan, HeaderField, Message, OwnedHeader};

/// Verifier settings. Every field states its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcConfig {
    /// The smallest RSA key accepted, in bits. Default 1024 (RFC 8301 §3.2; never less).
    pub min_rsa_bits: usize,
    /// Check an AMS's `x=` against the clock. Default `true`.
    pub check_expiration: bool,
    /// Check the older AMSs to report oldest-pass (§5.2 step 5, optional there). Default
    /// `true`.
    pub oldest_pass: bool,
}

impl Default for ArcConfig {
    fn default() -> Self {
        ArcConfig {
            min_rsa_bits: 1024,
            check_expiration: true,
            oldest_pass: true,
        }
    }
}

/// Validates ARC chains. Cheap to share: holds its settings and, optionally, the DKIM key
/// cache (the keys are the same kind of record).
#[derive(Debug, Clone, Default)]
pub struct ArcVerifier {
    config: ArcConfig,
    cache: Option<Arc<KeyCache>>,
}

impl ArcVerifier {
    /// A verifier with these settings and no key cache.
    pub fn new(config: ArcConfig) -> Self {
        ArcVerifier {
            config,
            cache: None,
        }
    }

    /// Keeps parsed public keys in `cache` (the one the DKIM verifier uses, if any).
    pub fn with_key_cache(mut self, cache: Arc<KeyCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Validates the chain of `message`.
    pub async fn verify<L, C>(&self, message: &[u8], lookup: &L, clock: &C) -> ArcOutput
    where
        L: Lookup + ?Sized,
        C: Clock + ?Sized,
    {
        let msg = Message::parse(message);
        let mut v = self.start(&msg);
        v.whole_body(msg.body());
        v.finish(lookup, clock).await
    }

    /// Starts a validation of a parsed message: the structure is checked at once. Give the
    /// body with [`ArcVerification::body`].
    pub fn start<'a>(&self, message: &Message<'a>) -> ArcVerification<'a> {
        ArcVerification::new(
            Cow::Borrowed(message.header_block()),
            message.headers().iter().map(HeaderField::span).collect(),
            self.config.clone(),
            self.cache.clone(),
        )
    }

    /// Starts a validation over a header block the verification takes, already split
    /// (for a receiver session that collected the fields itself, as
    /// [`crate::dkim::Verifier::start_owned`]).
    pub fn start_owned(&self, header: OwnedHeader) -> ArcVerification<'static> {
        let (block, spans) = header.into_parts();
        ArcVerification::new(
            Cow::Owned(block),
            spans,
            self.config.clone(),
            self.cache.clone(),
        )
    }
}

/// One structurally sound ARC set.
struct Set {
    aar: usize,
    ams: usize,
    ams_sig: Result<Signature, Problem>,
    ams_slot: (usize, usize),
    ams_key: Option<Arc<str>>,
    seal_field: usize,
    seal: SealCore,
    seal_key: Arc<str>,
}

enum State {
    /// Decided from the structure alone.
    Decided(ArcOutput),
    /// Sound; the signatures remain to be checked.
    Chain {
        sets: Vec<Set>,
        hops: Vec<ArcHop>,
        /// The AMSs' body hashes; `None` once they are computed by a DKIM verification
        /// ([`ArcVerification::share_body_hashes`]).
        hashes: Option<BodyHashes>,
    },
}

/// A validation in progress (see [`ArcVerifier::start`]).
pub struct ArcVerification<'a> {
    header: Cow<'a, [u8]>,
    spans: Vec<FieldSpan>,
    config: ArcConfig,
    cache: Option<Arc<KeyCache>>,
    state: State,
}

impl std::fmt::Debug for ArcVerification<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sets = match &self.state {
            State::Decided(o) => o.instances,
            State::Chain { sets, .. } => sets.len(),
        };
        f.debug_struct("ArcVerification")
            .field("sets", &sets)
            .finish()
    }
}

/// The fields of one kind: (instance, field index, parsed).
type Found<T> = Vec<(u32, usize, T)>;

impl<'a> ArcVerification<'a> {
    fn new(
        header: Cow<'a, [u8]>,
        spans: Vec<FieldSpan>,
        config: ArcConfig,
        cache: Option<Arc<KeyCache>>,
    ) -> Self {
        let fields: Vec<HeaderField<'_>> = spans
            .iter()
            .map(|s| HeaderField::from_span(&header, *s))
            .collect();
        let state = structure(&fields);
        ArcVerification {
            header,
            spans,
            config,
            cache,
            state,
        }
    }

    /// The number of ARC sets found.
    pub fn instances(&self) -> usize {
        match &self.state {
            State::Decided(o) => o.instances,
            State::Chain { sets, .. } => sets.len(),
        }
    }

    /// The DNS names of the keys the chain needs (none when the structure already decided),
    /// without duplicates. Ask them with [`fetch_keys`], together with the DKIM keys.
    pub fn key_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = Vec::new();
        if let State::Chain { sets, .. } = &self.state {
            for (k, s) in sets.iter().enumerate().rev() {
                // The older AMSs only matter for oldest-pass.
                let ams = s
                    .ams_key
                    .as_ref()
                    .filter(|_| self.config.oldest_pass || k + 1 == sets.len());
                for n in [Some(&s.seal_key), ams].into_iter().flatten() {
                    if !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
                        names.push(Arc::clone(n));
                    }
                }
            }
        }
        names
    }

    /// Hashes the next chunk of the body (chunks may be cut anywhere).
    pub fn body(&mut self, chunk: &[u8]) {
        if let State::Chain {
            hashes: Some(hashes),
            ..
        } = &mut self.state
        {
            hashes.update(chunk);
        }
    }

    /// Hashes a body that is available whole (quicker than [`body`](Self::body) when the
    /// body is already in canonical form). Give the body once, by one of the two.
    pub fn whole_body(&mut self, body: &[u8]) {
        if let State::Chain {
            hashes: Some(hashes),
            ..
        } = &mut self.state
        {
            hashes.whole_body(body);
        }
    }

    /// Leaves the body hashes the AMSs need to `dkim`, the DKIM verification of the same
    /// message: a hash that a DKIM signature and an AMS both need (same body
    /// canonicalisation, algorithm and `l=`) is then computed once, and each body
    /// canonicalisation runs once for both. Then give the body to `dkim` only and finish
    /// with [`finish_with_dkim`](Self::finish_with_dkim), before finishing `dkim`.
    pub fn share_body_hashes(&mut self, dkim: &mut StreamingVerifier<'_>) {
        let State::Chain { sets, hashes, .. } = &mut self.state else {
            return;
        };
        if hashes.take().is_none() {
            return; // Shared already.
        }
        let shared = dkim.body_hashes();
        for set in sets {
            if let Ok(sig) = &set.ams_sig {
                set.ams_slot = shared.want(
                    sig.canonicalization.body,
                    sig.algorithm.hash(),
                    sig.body_length,
                    sig.body_hash(),
                );
            }
        }
    }

    /// Fetches the keys (all at once) and gives the verdict.
    pub async fn finish<L, C>(self, lookup: &L, clock: &C) -> ArcOutput
    where
        L: Lookup + ?Sized,
        C: Clock + ?Sized,
    {
        let names = self.key_names();
        let keys = fetch_keys(lookup, &names).await;
        self.finish_with_keys(&keys, clock)
    }

    /// Gives the verdict with the key answers already fetched.
    pub fn finish_with_keys<C: Clock + ?Sized>(self, keys: &KeyAnswers, clock: &C) -> ArcOutput {
        self.finish_inner(keys, clock, None)
    }

    /// [`finish_with_keys`](Self::finish_with_keys) for a chain whose body hashes `dkim`
    /// computed ([`share_body_hashes`](Self::share_body_hashes)). Call it before finishing
    /// `dkim`.
    pub fn finish_with_dkim<C: Clock + ?Sized>(
        self,
        keys: &KeyAnswers,
        clock: &C,
        dkim: &mut StreamingVerifier<'_>,
    ) -> ArcOutput {
        let shared = dkim.body_hashes();
        shared.finish();
        self.finish_inner(keys, clock, Some(shared))
    }

    fn finish_inner<C: Clock + ?Sized>(
        self,
        keys: &KeyAnswers,
        clock: &C,
        shared: Option<&BodyHashes>,
    ) -> ArcOutput {
        let (sets, mut hops, mut own) = match self.state {
            State::Decided(out) => return out,
            State::Chain { sets, hops, hashes } => (sets, hops, hashes),
        };
        if let Some(own) = &mut own {
            own.finish();
        }
        // Without its own hashes and without the DKIM verification's, every AMS body hash
        // is missing (a mismatch): only a caller that shared and then did not say with
        // whom gets there.
        let none = BodyHashes::default();
        let hashes = own.as_ref().or(shared).unwrap_or(&none);
        let fields: Vec<HeaderField<'_>> = self
            .spans
            .iter()
            .map(|s| HeaderField::from_span(&self.header, *s))
            .collect();
        let now = clock.unix_seconds();
        let mut parsed: SmallVec<[(Arc<str>, Arc<ParsedKey>); 4]> = SmallVec::new();
        let mut key = |name: &Arc<str>| -> Option<Arc<ParsedKey>> {
            if let Some((_, k)) = parsed.iter().find(|(n, _)| n == name) {
                return Some(Arc::clone(k));
            }
            let k = key_from_answer(keys.get(name)?, self.cache.as_deref());
            parsed.push((Arc::clone(name), Arc::clone(&k)));
            Some(k)
        };
        let n = sets.len();
        let instances = n;
        let fail = |hops: Vec<ArcHop>, problem: ArcProblem| ArcOutput {
            status: ChainStatus::Fail,
            instances,
            oldest_pass: None,
            problem: Some(problem),
            hops,
        };
        let mut buf = Vec::with_capacity(2048);
        let mut used = vec![false; fields.len()];
        type KeyFn<'k> = dyn FnMut(&Arc<str>) -> Option<Arc<ParsedKey>> + 'k;
        let mut ams_ok = |set: &Set, key: &mut KeyFn<'_>, buf: &mut Vec<u8>| {
            let sig = set.ams_sig.as_ref().map_err(Clone::clone)?;
            let k = set.ams_key.as_ref().and_then(key);
            verify_ams(
                sig,
                set.ams,
                &fields,
                k.as_deref(),
                hashes.get(set.ams_slot),
                &self.config,
                now,
                buf,
                &mut used,
            )
        };
        // Step 4: the newest AMS.
        let Some(newest) = sets.last() else {
            return ArcOutput::none();
        };
        let r = ams_ok(newest, &mut key, &mut buf);
        if let Some(h) = hops.get_mut(n - 1) {
            h.message_signature = Some(r.clone());
        }
        if let Err(p) = r {
            return fail(hops, ArcProblem::MessageSignature(n as u32, p));
        }
        // Step 6: every seal, newest first (before step 5, which only a passing chain
        // needs).
        for k in (0..n).rev() {
            let r = verify_seal(&sets, k, &fields, &mut key, &self.config, &mut buf);
            if let Some(h) = hops.get_mut(k) {
                h.seal = Some(r.clone());
            }
            if let Err(p) = r {
                return fail(hops, ArcProblem::Seal(k as u32 + 1, p));
            }
        }
        // Step 5: oldest-pass, down from N-1 to the first older AMS that fails.
        let mut oldest = n as u32;
        if self.config.oldest_pass {
            for i in (0..n - 1).rev() {
                let Some(set) = sets.get(i) else { break };
                let r = ams_ok(set, &mut key, &mut buf);
                let ok = r.is_ok();
                if let Some(h) = hops.get_mut(i) {
                    h.message_signature = Some(r);
                }
                if !ok {
                    break;
                }
                oldest = i as u32 + 1;
            }
        }
        ArcOutput {
            status: ChainStatus::Pass,
            instances,
            oldest_pass: self.config.oldest_pass.then_some(oldest),
            problem: None,
            hops,
        }
    }
}

/// Steps 1 to 3: collects the ARC fields, checks the structure, and prepares the checks of
/// the signatures.
fn structure(fields: &[HeaderField<'_>]) -> State {
    let mut aars: Found<Result<crate::auth_results::ParsedAuthenticationResults, String>> =
        Vec::new();
    let mut amss: Found<AmsField> = Vec::new();
    let mut seals: Found<SealField> = Vec::new();
    let mut bad: Option<ArcProblem> = None;
    for f in fields {
        if f.is_malformed() {
            continue;
        }
        let Some(kind) = field_kind(f.trimmed_name()) else {
            continue;
        };
        let i = f.index();
        let parsed = match kind {
            FieldKind::AuthenticationResults => {
                parse_aar(f.value()).map(|a| aars.push((a.instance, i, a.results)))
            }
            FieldKind::MessageSignature => {
                parse_ams(f.value()).map(|a| amss.push((a.instance, i, a)))
            }
            FieldKind::Seal => parse_seal(f.value()).map(|s| seals.push((s.instance, i, s))),
        };
        if let Err(why) = parsed {
            bad.get_or_insert(ArcProblem::BadInstance(kind, why));
        }
    }
    if aars.is_empty() && amss.is_empty() && seals.is_empty() && bad.is_none() {
        return State::Decided(ArcOutput::none());
    }
    let mut instances: Vec<u32> = aars
        .iter()
        .map(|a| a.0)
        .chain(amss.iter().map(|a| a.0))
        .chain(seals.iter().map(|s| s.0))
        .collect();
    instances.sort_unstable();
    instances.dedup();
    let n = instances.last().copied().unwrap_or(0);

    // What each hop says, for the verdict, whatever the outcome.
    let hops: Vec<ArcHop> = instances
        .iter()
        .filter(|&&i| i <= MAX_INSTANCES)
        .map(|&i| {
            let seal = seals.iter().find(|s| s.0 == i).map(|s| &s.2);
            ArcHop {
                instance: i,
                sealer: seal.and_then(|s| s.domain.clone()),
                seal_selector: seal.and_then(|s| s.selector.clone()),
                cv: seal.and_then(|s| s.cv),
                signer: amss
                    .iter()
                    .find(|a| a.0 == i)
                    .and_then(|a| a.2.domain.clone()),
                message_signature: None,
                seal: None,
                authentication_results: aars.iter().find(|a| a.0 == i).map(|a| a.2.clone()),
            }
        })
        .collect();
    let decided = |problem: ArcProblem, hops: Vec<ArcHop>| {
        State::Decided(ArcOutput {
            status: ChainStatus::Fail,
            instances: instances.len(),
            oldest_pass: None,
            problem: Some(problem),
            hops,
        })
    };

    // Step 1: at most 50 sets.
    if n > MAX_INSTANCES || instances.len() > MAX_INSTANCES as usize {
        return decided(ArcProblem::TooManySets(u64::from(n)), hops);
    }
    // Step 2: the newest seal says the chain failed.
    if seals
        .iter()
        .any(|s| s.0 == n && s.2.cv == Some(ChainStatus::Fail))
    {
        return decided(ArcProblem::NewestSealSaysFail(n), hops);
    }
    // Step 3: the structure.
    if let Some(p) = bad {
        return decided(p, hops);
    }
    for i in 1..=n {
        let counts = [
            (
                FieldKind::AuthenticationResults,
                aars.iter().filter(|a| a.0 == i).count(),
            ),
            (
                FieldKind::MessageSignature,
                amss.iter().filter(|a| a.0 == i).count(),
            ),
            (FieldKind::Seal, seals.iter().filter(|s| s.0 == i).count()),
        ];
        for (kind, c) in counts {
            if c == 0 {
                return decided(ArcProblem::Missing(kind, i), hops);
            }
            if c > 1 {
                return decided(ArcProblem::Duplicate(kind, i), hops);
            }
        }
    }
    seals.sort_unstable_by_key(|s| s.0);
    for s in &seals {
        let (i, seal) = (s.0, &s.2);
        match &seal.seal {
            Err(p) => return decided(ArcProblem::SealSyntax(i, p.clone()), hops),
            Ok(core) if i == 1 && core.cv != ChainStatus::None => {
                return decided(ArcProblem::FirstSealNotNone(core.cv), hops);
            }
            Ok(core) if i > 1 && core.cv != ChainStatus::Pass => {
                return decided(ArcProblem::SealNotPass(i, core.cv), hops);
            }
            Ok(_) => {}
        }
    }

    // Sound: prepare the signature checks, oldest set first.
    let mut hashes = BodyHashes::default();
    let mut sets = Vec::with_capacity(n as usize);
    amss.sort_unstable_by_key(|a| a.0);
    aars.sort_unstable_by_key(|a| a.0);
    for ((seal, ams), aar) in seals.into_iter().zip(amss).zip(aars) {
        let Ok(core) = seal.2.seal else {
            continue; // Ruled out above.
        };
        let ams_slot = match &ams.2.sig {
            Ok(sig) => hashes.want(
                sig.canonicalization.body,
                sig.algorithm.hash(),
                sig.body_length,
                sig.body_hash(),
            ),
            Err(_) => (usize::MAX, usize::MAX),
        };
        let ams_key = ams.2.sig.as_ref().ok().map(shared_key_name);
        sets.push(Set {
            aar: aar.1,
            ams: ams.1,
            ams_sig: ams.2.sig,
            ams_slot,
            ams_key,
            seal_field: seal.1,
            seal_key: Arc::from(core.key_name()),
            seal: core,
        });
    }
    State::Chain {
        sets,
        hops,
        hashes: Some(hashes),
    }
}

#[allow(clippy::too_many_arguments)]
fn verify_ams(
    sig: &Signature,
    own: usize,
    fields: &[HeaderField<'_>],
    key: Option<&ParsedKey>,
    body: Option<(&[u8], u64)>,
    config: &ArcConfig,
    now: u64,
    buf: &mut Vec<u8>,
    used: &mut [bool],
) -> Result<(), Problem> {
    if config.check_expiration
        && let Some(x) = sig.expiration
        && x < now
    {
        return Err(Problem::Expired);
    }
    let (_, public) = check_key(key, sig.algorithm, config.min_rsa_bits, true)?;
    let (body_hash, canon_len) = body.unwrap_or_default();
    if let Some(l) = sig.body_length
        && l > canon_len
    {
        return Err(Problem::BodyLengthExceeded {
            signed: l,
            actual: canon_len,
        });
    }
    if body_hash != sig.body_hash.as_slice() {
        return Err(Problem::BodyHashMismatch);
    }
    let field = fields.get(own).ok_or(Problem::SignatureMismatch)?;
    let value = field.value();
    let stripped = without(value, &sig.b_range);
    buf.clear();
    signed_header_data(
        sig.canonicalization.header,
        sig.signed_names(value),
        fields,
        Some(own),
        (field.name(), &stripped),
        buf,
        used,
    );
    if public.verify(sig.algorithm, buf, &sig.signature) {
        Ok(())
    } else {
        Err(Problem::SignatureMismatch)
    }
}

/// Checks the seal of set `k` (0-based): relaxed canonicalisation of the AAR, AMS and AS
/// of every set up to `k`, in instance order, the seal itself with an empty `b=` and no
/// final CRLF (§5.1.1).
fn verify_seal(
    sets: &[Set],
    k: usize,
    fields: &[HeaderField<'_>],
    key: &mut impl FnMut(&Arc<str>) -> Option<Arc<ParsedKey>>,
    config: &ArcConfig,
    buf: &mut Vec<u8>,
) -> Result<(), Problem> {
    let set = sets.get(k).ok_or(Problem::SignatureMismatch)?;
    let parsed = key(&set.seal_key);
    let (_, public) = check_key(
        parsed.as_deref(),
        set.seal.algorithm,
        config.min_rsa_bits,
        true,
    )?;
    buf.clear();
    seal_data(sets.get(..=k).unwrap_or_default(), fields, buf, |s| {
        (s.aar, s.ams, s.seal_field, s.seal.b_range.clone())
    });
    if public.verify(set.seal.algorithm, buf, &set.seal.signature) {
        Ok(())
    } else {
        Err(Problem::SignatureMismatch)
    }
}

/// The data a seal signs (§5.1.1): for each set in order, its AAR, AMS and AS, relaxed;
/// the last AS with its `b=` value (`b_range` of that field's value) removed and without
/// the final CRLF. `at` gives a set's three field indexes and the last seal's `b=` range.
pub(crate) fn seal_data<T>(
    sets: &[T],
    fields: &[HeaderField<'_>],
    buf: &mut Vec<u8>,
    at: impl Fn(&T) -> (usize, usize, usize, std::ops::Range<usize>),
) {
    let last = sets.len().saturating_sub(1);
    for (j, s) in sets.iter().enumerate() {
        let (aar, ams, seal, b) = at(s);
        for idx in [aar, ams, seal] {
            let Some(f) = fields.get(idx) else { continue };
            if j == last && idx == seal {
                let stripped = without(f.value(), &b);
                canonicalize_header(Canon::Relaxed, f.name(), &stripped, false, buf);
            } else {
                canonicalize_header(Canon::Relaxed, f.name(), f.value(), true, buf);
            }
        }
    }
}

/// `value` without the bytes of `range`.
fn without(value: &[u8], range: &std::ops::Range<usize>) -> SmallVec<[u8; 512]> {
    let mut out = SmallVec::new();
    out.extend_from_slice(value.get(..range.start).unwrap_or(value));
    out.extend_from_slice(value.get(range.end..).unwrap_or_default());
    out
}

/// The ARC sets already on a message, as a sealer needs them.
pub(crate) enum SealSets {
    /// No ARC field.
    None,
    /// A sound chain: each set's (AAR, AMS, AS) field indexes, oldest first.
    Sound(Vec<(usize, usize, usize)>),
    /// The newest seal (this instance) says `cv=fail`.
    Failed(u32),
    /// A broken structure: the highest instance and what is wrong.
    Broken(u32, String),
}

/// Finds the ARC sets of a message for sealing (the structural checks of §5.2, steps 1 to
/// 3; the signatures are not checked).
pub(crate) fn existing_sets(fields: &[HeaderField<'_>]) -> SealSets {
    match structure(fields) {
        State::Decided(o) if o.status == ChainStatus::None => SealSets::None,
        State::Decided(o) => match o.problem {
            Some(ArcProblem::NewestSealSaysFail(i)) => SealSets::Failed(i),
            p => SealSets::Broken(
                o.hops.iter().map(|h| h.instance).max().unwrap_or(0),
                p.map(|p| p.to_string()).unwrap_or_default(),
            ),
        },
        State::Chain { sets, .. } => {
            SealSets::Sound(sets.iter().map(|s| (s.aar, s.ams, s.seal_field)).collect())
        }
    }
}

/// The relaxed canonical form of every field of `sets` (AAR, AMS, AS field indexes), each
/// with its CRLF: the part of a new seal's data that covers the existing sets.
pub(crate) fn whole_sets(
    sets: &[(usize, usize, usize)],
    fields: &[HeaderField<'_>],
    buf: &mut Vec<u8>,
) {
    for &(aar, ams, seal) in sets {
        for idx in [aar, ams, seal] {
            if let Some(f) = fields.get(idx) {
                canonicalize_header(Canon::Relaxed, f.name(), f.value(), true, buf);
            }
        }
    }
}
