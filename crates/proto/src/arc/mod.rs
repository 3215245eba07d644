//! ARC, the Authenticated Received Chain (RFC 8617): verifying a chain, sealing a message,
//! and the trusted-forwarder decision. `§` references are to RFC 8617.
//!
//! ARC lets a receiver see what earlier hops saw: each forwarder (a mailing list, a
//! forwarding service) adds an *ARC set* of three header fields with the same instance
//! number `i=`:
//!
//! * `ARC-Authentication-Results` (AAR): the Authentication-Results that hop wrote;
//! * `ARC-Message-Signature` (AMS): a DKIM-like signature over the message as that hop
//!   forwarded it;
//! * `ARC-Seal` (AS): a signature over all the ARC sets so far, with `cv=` saying how the
//!   chain looked when the hop received the message.
//!
//! Everything ARC has in common with DKIM is DKIM's code: the tag-list parser, header and
//! body canonicalisation, body hashing, key records, key checks and signature verification
//! ([`crate::dkim`]); the AAR payload is read by the Authentication-Results parser
//! ([`crate::auth_results::parse`]).
//!
//! ARC is a module a receiver can leave out: nothing else in the crate depends on it (the
//! specification is being moved to Historic, while the big mailbox providers still seal).
//!
//! * [`ArcVerifier`] validates a chain (§5.2): [`ChainStatus`] `none`, `pass` or `fail`,
//!   with the [`ArcProblem`] that decided a failure, the oldest instance whose AMS still
//!   verifies (oldest-pass), and each hop's seal and AAR ([`ArcHop`]).
//! * [`seal::seal`] adds the next ARC set (§5.1).
//! * [`forwarder::trusted_forwarder_override`] decides whether a DMARC failure is
//!   overridden because a trusted sealer vouches for an aligned pass.

pub mod forwarder;
mod parse;
pub mod seal;
mod verify;

use std::fmt;
use std::net::IpAddr;

use crate::auth_results::{MethodResult, ParsedAuthenticationResults, ResultSink};
use crate::dkim::Problem;

pub use parse::{AarField, parse_aar};
pub use verify::{ArcConfig, ArcVerification, ArcVerifier};

/// The most ARC sets a message may carry (§4.2.1, §5.2).
pub const MAX_INSTANCES: u32 = 50;

/// The chain validation status (§4.4): the `cv=` of a seal and the `arc=` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainStatus {
    /// No ARC sets (or, in a seal, the first set: there was no chain before it).
    None,
    /// The chain verified.
    Pass,
    /// The chain is broken.
    Fail,
}

impl ChainStatus {
    /// `none`, `pass` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainStatus::None => "none",
            ChainStatus::Pass => "pass",
            ChainStatus::Fail => "fail",
        }
    }

    /// Parses a `cv=` value or an `arc=` result word. The ABNF of §4.1.3 spells them in
    /// lower case; they are compared without case, as RFC 8601 result words are.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            s if s.eq_ignore_ascii_case("none") => Some(ChainStatus::None),
            s if s.eq_ignore_ascii_case("pass") => Some(ChainStatus::Pass),
            s if s.eq_ignore_ascii_case("fail") => Some(ChainStatus::Fail),
            _ => None,
        }
    }
}

impl fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three ARC header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// `ARC-Authentication-Results`.
    AuthenticationResults,
    /// `ARC-Message-Signature`.
    MessageSignature,
    /// `ARC-Seal`.
    Seal,
}

impl FieldKind {
    /// The field name.
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::AuthenticationResults => "ARC-Authentication-Results",
            FieldKind::MessageSignature => "ARC-Message-Signature",
            FieldKind::Seal => "ARC-Seal",
        }
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a chain failed: the first rule of §5.2 it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArcProblem {
    /// More than [`MAX_INSTANCES`] ARC sets, or an instance number above it.
    TooManySets(u64),
    /// A field whose `i=` cannot be read: which field and why.
    BadInstance(FieldKind, String),
    /// Two fields of the same kind with the same instance.
    Duplicate(FieldKind, u32),
    /// An instance lacks one of its three fields (a gap in the chain shows as this).
    Missing(FieldKind, u32),
    /// The newest seal already says the chain failed (`cv=fail`, §5.2 step 2).
    NewestSealSaysFail(u32),
    /// The seal of instance 1 has a `cv=` other than `none`.
    FirstSealNotNone(ChainStatus),
    /// A seal of an instance above 1 has a `cv=` other than `pass`.
    SealNotPass(u32, ChainStatus),
    /// A seal that cannot be used (malformed, or an unacceptable algorithm).
    SealSyntax(u32, Problem),
    /// The newest AMS does not verify (§5.2 step 4).
    MessageSignature(u32, Problem),
    /// A seal does not verify (§5.2 step 6).
    Seal(u32, Problem),
}

impl ArcProblem {
    /// True when a DNS failure decided this (a later attempt may pass): a receiver that
    /// cares can tell this from a broken chain.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            ArcProblem::MessageSignature(_, Problem::KeyLookupFailed(_))
                | ArcProblem::Seal(_, Problem::KeyLookupFailed(_))
        )
    }
}

impl fmt::Display for ArcProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArcProblem::TooManySets(n) => write!(
                f,
                "more than {MAX_INSTANCES} ARC sets (instance {n}); the chain is not evaluated"
            ),
            ArcProblem::BadInstance(kind, why) => write!(f, "{kind} with an unusable i=: {why}"),
            ArcProblem::Duplicate(kind, i) => write!(f, "two {kind} fields for instance {i}"),
            ArcProblem::Missing(kind, i) => write!(f, "instance {i} has no {kind} field"),
            ArcProblem::NewestSealSaysFail(i) => write!(
                f,
                "the newest seal (i={i}) says the chain had already failed (cv=fail)"
            ),
            ArcProblem::FirstSealNotNone(cv) => {
                write!(f, "the first seal (i=1) has cv={cv}; it must be cv=none")
            }
            ArcProblem::SealNotPass(i, cv) => {
                write!(
                    f,
                    "the seal of instance {i} has cv={cv}; it must be cv=pass"
                )
            }
            ArcProblem::SealSyntax(i, p) => write!(f, "ARC-Seal i={i} is unusable: {p}"),
            ArcProblem::MessageSignature(i, p) => {
                write!(f, "ARC-Message-Signature i={i} does not verify: {p}")
            }
            ArcProblem::Seal(i, p) => write!(f, "ARC-Seal i={i} does not verify: {p}"),
        }
    }
}

impl std::error::Error for ArcProblem {}

/// What one hop (one ARC set) says, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcHop {
    /// The instance number `i=`.
    pub instance: u32,
    /// The sealer: the ARC-Seal's `d=`, as written.
    pub sealer: Option<String>,
    /// The ARC-Seal's `s=`.
    pub seal_selector: Option<String>,
    /// The ARC-Seal's `cv=`.
    pub cv: Option<ChainStatus>,
    /// The AMS's `d=`.
    pub signer: Option<String>,
    /// Whether this hop's AMS verified, when it was checked (`None`: not checked, because
    /// the chain failed before, or a newer AMS failed first).
    pub message_signature: Option<Result<(), Problem>>,
    /// Whether this hop's seal verified, when it was checked.
    pub seal: Option<Result<(), Problem>>,
    /// The AAR: the authserv-id and results this hop recorded, or why they could not be
    /// read (an unreadable AAR does not break the chain: §5.2 does not look inside it).
    pub authentication_results: Option<Result<ParsedAuthenticationResults, String>>,
}

impl ArcHop {
    /// The authserv-id of this hop's AAR, if it could be read.
    pub fn authserv_id(&self) -> Option<&str> {
        match &self.authentication_results {
            Some(Ok(ar)) => Some(&ar.authserv_id),
            _ => None,
        }
    }
}

/// The verdict on a message's ARC chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcOutput {
    /// The chain validation status.
    pub status: ChainStatus,
    /// The number of ARC sets found (the distinct instance numbers).
    pub instances: usize,
    /// With a passing chain, the oldest instance whose AMS still verifies, every newer AMS
    /// verifying too (§5.2 step 5): 1 when the message reached the last hop as the first
    /// sealer signed it. `None` when the chain did not pass.
    pub oldest_pass: Option<u32>,
    /// Why the chain failed.
    pub problem: Option<ArcProblem>,
    /// The hops, oldest (i=1) first.
    pub hops: Vec<ArcHop>,
}

impl ArcOutput {
    /// The verdict on a message without ARC sets.
    pub fn none() -> Self {
        ArcOutput {
            status: ChainStatus::None,
            instances: 0,
            oldest_pass: None,
            problem: None,
            hops: Vec::new(),
        }
    }

    /// The newest hop (the one that sealed last).
    pub fn newest(&self) -> Option<&ArcHop> {
        self.hops.iter().max_by_key(|h| h.instance)
    }

    /// The sealer (`d=`) of the newest seal.
    pub fn newest_sealer(&self) -> Option<&str> {
        self.newest().and_then(|h| h.sealer.as_deref())
    }

    /// The hop with instance `i`.
    pub fn hop(&self, i: u32) -> Option<&ArcHop> {
        self.hops.iter().find(|h| h.instance == i)
    }

    /// Why, for a person.
    pub fn reason(&self) -> String {
        match (self.status, &self.problem) {
            (ChainStatus::None, _) => "no ARC sets".to_string(),
            (_, Some(p)) => p.to_string(),
            (_, None) => {
                let sealers: Vec<&str> = self
                    .hops
                    .iter()
                    .map(|h| h.sealer.as_deref().unwrap_or("?"))
                    .collect();
                let mut s = format!(
                    "{} ARC set{} verified (sealed by {})",
                    self.instances,
                    if self.instances == 1 { "" } else { "s" },
                    sealers.join(", ")
                );
                if let Some(o) = self.oldest_pass {
                    if o == 1 {
                        s.push_str("; every message signature still verifies");
                    } else {
                        s.push_str(&format!(
                            "; the message was changed before hop {o} (oldest-pass {o})"
                        ));
                    }
                }
                s
            }
        }
    }

    /// The chain in words, for a person: who forwarded the message, whether the seals
    /// verified, and what the first hop saw (its ARC-Authentication-Results).
    ///
    /// "forwarded by lists.example, whose seal verified; at the first hop (mx.forward.example)
    /// DKIM passed for brand.example, SPF failed for forward.example"
    pub fn explain(&self) -> String {
        match self.status {
            ChainStatus::None => "no ARC sets".to_string(),
            ChainStatus::Fail => format!("the ARC chain failed: {}", self.reason()),
            ChainStatus::Pass => {
                let mut sealers: Vec<&ArcHop> = self.hops.iter().collect();
                sealers.sort_by_key(|h| std::cmp::Reverse(h.instance));
                let name = |h: &ArcHop| h.sealer.clone().unwrap_or_else(|| "?".into());
                let mut s = String::from("forwarded by ");
                s.push_str(&sealers.first().map(|h| name(h)).unwrap_or_default());
                if sealers.len() > 1 {
                    let rest: Vec<String> = sealers.iter().skip(1).map(|h| name(h)).collect();
                    s.push_str(&format!(" (before it, {})", rest.join(", then ")));
                }
                s.push_str(if sealers.len() > 1 {
                    ", whose seals verified"
                } else {
                    ", whose seal verified"
                });
                if let Some(o) = self.oldest_pass.filter(|&o| o > 1) {
                    let by = self.hop(o).map(name).unwrap_or_default();
                    s.push_str(&format!(
                        "; {by} changed the message (hop {o}: only the message signatures from there on verify)"
                    ));
                }
                if let Some(first) = self.hop(1) {
                    match &first.authentication_results {
                        Some(Ok(ar)) => {
                            let seen: Vec<String> = ar
                                .results
                                .iter()
                                .filter(|r| {
                                    ["spf", "dkim", "dmarc"]
                                        .iter()
                                        .any(|m| r.method.eq_ignore_ascii_case(m))
                                })
                                .map(describe_result)
                                .collect();
                            s.push_str(&format!("; at the first hop ({}) ", ar.authserv_id));
                            if seen.is_empty() {
                                s.push_str("no SPF, DKIM or DMARC result was recorded");
                            } else {
                                s.push_str(&seen.join(", "));
                            }
                        }
                        Some(Err(why)) => s.push_str(&format!(
                            "; the first hop's ARC-Authentication-Results cannot be read ({why})"
                        )),
                        None => {}
                    }
                }
                s
            }
        }
    }

    /// The `arc` method result for Authentication-Results, as the big receivers write it:
    /// `arc=pass header.oldest-pass=1 smtp.remote-ip=192.0.2.1`, with a comment naming the
    /// newest sealer, and `reason=` when the chain failed.
    pub fn method_result(&self, remote_ip: Option<IpAddr>) -> MethodResult<'_> {
        MethodResult::collect(|m| self.write_method_result(remote_ip, m))
    }

    /// Writes the `arc` result (as [`method_result`](Self::method_result)) into `sink`.
    pub fn write_method_result<'a>(
        &'a self,
        remote_ip: Option<IpAddr>,
        sink: &mut impl ResultSink<'a>,
    ) {
        sink.result("arc", self.status.as_str());
        match self.status {
            ChainStatus::Pass => {
                if let Some(s) = self.newest_sealer() {
                    sink.comment(format!("i={} sealed by {s}", self.instances).into());
                }
            }
            ChainStatus::Fail => sink.reason(self.reason().into()),
            ChainStatus::None => {}
        }
        if let Some(o) = self.oldest_pass {
            sink.property("header", "oldest-pass", o.to_string().into());
        }
        if let Some(ip) = remote_ip {
            sink.property("smtp", "remote-ip", ip.to_string().into());
        }
    }
}

/// One AAR result in words: "DKIM passed for brand.example".
fn describe_result(r: &crate::auth_results::ParsedMethodResult) -> String {
    let method = r.method.to_ascii_uppercase();
    let verb = match r.result.to_ascii_lowercase().as_str() {
        "pass" => "passed".to_string(),
        "fail" => "failed".to_string(),
        "softfail" => "soft-failed".to_string(),
        other => format!("was {other}"),
    };
    let domain = match r.method.to_ascii_lowercase().as_str() {
        "spf" => r
            .property("smtp", "mailfrom")
            .or_else(|| r.property("smtp", "mfrom"))
            .or_else(|| r.property("smtp", "helo"))
            .map(|id| id.rsplit_once('@').map_or(id, |(_, d)| d)),
        "dkim" => r.property("header", "d").or_else(|| {
            r.property("header", "i")
                .map(|i| i.rsplit_once('@').map_or(i, |(_, d)| d))
        }),
        _ => r.property("header", "from"),
    };
    match domain {
        Some(d) => format!("{method} {verb} for {d}"),
        None => format!("{method} {verb}"),
    }
}

#[cfg(test)]
mod tests;
