//! The trusted-forwarder override: local policy that accepts a DMARC failure when a
//! forwarder the receiver trusts vouches, through a verified ARC chain, that the message
//! authenticated before it was forwarded.
//!
//! [`trusted_forwarder_override`] is a pure function: it looks at the DMARC verdict, the
//! ARC verdict and the list of trusted sealers, and says whether to override, with the RFC
//! 9990 policy-override reason `trusted_forwarder` and a comment naming the sealer, or why
//! not. It never changes anything but a DMARC `fail` (a `pass`, `none`, `temperror` or
//! `permerror` stays what it is), and with an empty list it never overrides (off by
//! default).
//!
//! Which AAR counts: the chain is walked from the newest set down as long as the sealers
//! are trusted; the oldest AAR of that run is what trusted hands vouch for (a trusted list
//! server behind a trusted forwarding service vouches for what the list server saw). An
//! untrusted sealer's AAR is never believed.

use std::fmt;

use super::{ArcHop, ArcOutput, ChainStatus};
use crate::auth_results::ParsedAuthenticationResults;
use crate::dmarc::{
    AuthResult, DkimIdentity, DmarcInput, DmarcOptions, DmarcOutput, DmarcResult, SpfIdentity,
    evaluate,
};
use crate::dns::Lookup;

/// The RFC 9990 `PolicyOverrideType` of a trusted-forwarder override.
pub const TRUSTED_FORWARDER: &str = "trusted_forwarder";

/// The ARC sealers (the `d=` of the ARC-Seal) whose word is taken. Empty by default: no
/// override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedSealers(Vec<String>);

impl TrustedSealers {
    /// The list, from domain names (case and a trailing dot do not matter).
    pub fn new<I, S>(domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        TrustedSealers(
            domains
                .into_iter()
                .map(|d| normalise(d.as_ref()))
                .filter(|d| !d.is_empty())
                .collect(),
        )
    }

    /// Whether `sealer` is on the list.
    pub fn trusts(&self, sealer: &str) -> bool {
        let s = normalise(sealer);
        self.0.contains(&s)
    }

    /// True when the list is empty (the override is off).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn normalise(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// An override: the message is accepted although DMARC failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwarderOverride {
    /// The RFC 9990 reason: always [`TRUSTED_FORWARDER`].
    pub kind: &'static str,
    /// The newest sealer, which is trusted.
    pub sealer: String,
    /// The instance whose AAR vouches for the pass.
    pub vouched_instance: u32,
    /// The authserv-id of that AAR.
    pub vouched_by: String,
    /// The result that aligned, as the AAR has it (`dkim=pass header.d=brand.example`).
    pub evidence: String,
    /// For the aggregate report's `<comment>` and for people: who forwarded, and what was
    /// seen before.
    pub comment: String,
}

/// Why there is no override.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoOverride {
    /// DMARC did not fail: nothing to override (pass, none, temperror, permerror).
    DmarcDidNotFail(DmarcResult),
    /// No trusted sealers are configured.
    Off,
    /// The ARC chain did not pass.
    ChainDidNotPass(ChainStatus),
    /// The newest sealer is not trusted (or the seal has no `d=`).
    SealerNotTrusted(String),
    /// The vouched-for AAR could not be read.
    UnreadableAar(u32),
    /// The vouched-for AAR shows no SPF or DKIM pass aligned with the Author Domain.
    NoAlignedPass(u32),
    /// DMARC found no Author Domain to align with.
    NoAuthorDomain,
    /// Whether the vouched-for AAR's passes align could not be decided (a DNS failure):
    /// the instance and why.
    AlignmentUnknown(u32, String),
}

impl fmt::Display for NoOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoOverride::DmarcDidNotFail(r) => write!(f, "DMARC result is {r}, not fail"),
            NoOverride::Off => f.write_str("no trusted ARC sealers are configured"),
            NoOverride::ChainDidNotPass(s) => write!(f, "the ARC chain is {s}, not pass"),
            NoOverride::SealerNotTrusted(s) => {
                write!(f, "the newest ARC sealer {s} is not trusted")
            }
            NoOverride::UnreadableAar(i) => {
                write!(
                    f,
                    "the ARC-Authentication-Results of instance {i} cannot be read"
                )
            }
            NoOverride::NoAlignedPass(i) => write!(
                f,
                "the ARC-Authentication-Results of instance {i} show no aligned SPF or DKIM pass"
            ),
            NoOverride::NoAuthorDomain => f.write_str("DMARC found no Author Domain"),
            NoOverride::AlignmentUnknown(i, why) => write!(
                f,
                "whether the ARC-Authentication-Results of instance {i} show an aligned pass is unknown: {why}"
            ),
        }
    }
}

/// The hop whose AAR the trusted sealers vouch for: the oldest of the run of trusted
/// sealers that ends at the newest set. `None` when the newest sealer is not trusted.
pub fn vouched_hop<'a>(arc: &'a ArcOutput, trusted: &TrustedSealers) -> Option<&'a ArcHop> {
    let mut hops: Vec<&ArcHop> = arc.hops.iter().collect();
    hops.sort_by_key(|h| std::cmp::Reverse(h.instance));
    let mut vouched = None;
    for h in hops {
        match h.sealer.as_deref() {
            Some(s) if trusted.trusts(s) => vouched = Some(h),
            _ => break,
        }
    }
    vouched
}

/// Decides the trusted-forwarder override (see the module documentation).
///
/// Whether the vouched-for AAR shows an aligned pass is decided by DMARC itself: the AAR's
/// SPF (`smtp.mailfrom`) and DKIM (`header.d`, or the domain of `header.i`) passes are
/// evaluated as the identities of the Author Domain that failed, with `options` (the
/// receiver's, so the same specification, record and alignment modes) and `lookup` (give
/// the per-message memo the first evaluation used: the record is not asked again). No
/// second alignment rule exists.
pub async fn trusted_forwarder_override<L: Lookup>(
    lookup: &L,
    dmarc: &DmarcOutput,
    arc: &ArcOutput,
    trusted: &TrustedSealers,
    options: &DmarcOptions,
) -> Result<ForwarderOverride, NoOverride> {
    if dmarc.result != DmarcResult::Fail {
        return Err(NoOverride::DmarcDidNotFail(dmarc.result));
    }
    if trusted.is_empty() {
        return Err(NoOverride::Off);
    }
    if arc.status != ChainStatus::Pass {
        return Err(NoOverride::ChainDidNotPass(arc.status));
    }
    let sealer = arc.newest_sealer().unwrap_or_default().to_string();
    let Some(hop) = vouched_hop(arc, trusted) else {
        return Err(NoOverride::SealerNotTrusted(sealer));
    };
    let Some(author) = dmarc.author_domain.clone() else {
        return Err(NoOverride::NoAuthorDomain);
    };
    let Some(Ok(aar)) = &hop.authentication_results else {
        return Err(NoOverride::UnreadableAar(hop.instance));
    };
    let (spf, dkim) = aar_identities(aar);
    if spf.is_empty() && dkim.is_empty() {
        return Err(NoOverride::NoAlignedPass(hop.instance));
    }
    let input = DmarcInput {
        author_domain: author,
        spf,
        dkim,
        pct_draw: None,
    };
    let vouched = evaluate(lookup, &input, options).await;
    match vouched.result {
        DmarcResult::Pass => {}
        DmarcResult::TempError => {
            return Err(NoOverride::AlignmentUnknown(hop.instance, vouched.reason));
        }
        _ => return Err(NoOverride::NoAlignedPass(hop.instance)),
    }
    let (what, method, property, domain) = if let Some(r) = vouched.dkim.iter().find(|r| r.aligned)
    {
        ("DKIM", "dkim", "header.d", r.domain.clone())
    } else if let Some(r) = vouched.spf.iter().find(|r| r.aligned) {
        ("SPF", "spf", "smtp.mailfrom", r.domain.clone())
    } else {
        return Err(NoOverride::NoAlignedPass(hop.instance));
    };
    let comment = format!(
        "forwarded by {sealer}, whose ARC seal verified; at hop {} ({}) {what} passed for {domain}",
        hop.instance, aar.authserv_id
    );
    Ok(ForwarderOverride {
        kind: TRUSTED_FORWARDER,
        sealer,
        vouched_instance: hop.instance,
        vouched_by: aar.authserv_id.clone(),
        evidence: format!("{method}=pass {property}={domain}"),
        comment,
    })
}

/// The SPF and DKIM passes an AAR records, as DMARC identities: `spf=pass` with
/// `smtp.mailfrom` (or the older `smtp.mfrom`; the domain of an address), `dkim=pass` with
/// `header.d` (or the domain of `header.i`). Other results cannot make an aligned pass and
/// are left out; so is SPF for the HELO identity (DMARC uses MAIL FROM).
pub fn aar_identities(aar: &ParsedAuthenticationResults) -> (Vec<SpfIdentity>, Vec<DkimIdentity>) {
    let mut spf = Vec::new();
    let mut dkim = Vec::new();
    for r in aar
        .results
        .iter()
        .filter(|r| r.result.eq_ignore_ascii_case("pass"))
    {
        if r.method.eq_ignore_ascii_case("spf") {
            if let Some(id) = r
                .property("smtp", "mailfrom")
                .or_else(|| r.property("smtp", "mfrom"))
            {
                let domain = id.rsplit_once('@').map_or(id, |(_, d)| d);
                spf.push(SpfIdentity::new(domain, AuthResult::Pass));
            }
        } else if r.method.eq_ignore_ascii_case("dkim") {
            let domain = r.property("header", "d").or_else(|| {
                r.property("header", "i")
                    .and_then(|i| i.rsplit_once('@').map(|(_, d)| d))
            });
            if let Some(d) = domain {
                let mut id = DkimIdentity::new(d, AuthResult::Pass);
                if let Some(s) = r.property("header", "s") {
                    id = id.with_selector(s);
                }
                dkim.push(id);
            }
        }
    }
    (spf, dkim)
}
