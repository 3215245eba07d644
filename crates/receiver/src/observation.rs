//! What a receiver keeps of each message for DMARC reporting: an [`Observation`] holds
//! everything an aggregate-report row (RFC 9990 §3, RFC 7489 Appendix C) and a failure
//! report (RFC 9991) need, in the words those reports use.
//!
//! Observations are counted under their aggregate-report key (every field but the count):
//! two messages with equal observations are one row with count 2.

use std::net::IpAddr;

use dmarc_proto::dmarc::{DmarcResult, Policy, Record};
use serde::{Deserialize, Serialize};

use crate::Verdicts;

/// One message as an aggregate report sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observation {
    /// The domain whose DMARC record was applied; `None` when there was none (the message
    /// is then outside every aggregate report).
    pub policy_domain: Option<String>,
    /// The SMTP client's IP address.
    pub source_ip: IpAddr,
    /// The Author Domain (RFC5322.From domain); `None` when none could be read.
    pub header_from: Option<String>,
    /// The RFC5321.MailFrom domain, lower-case; `None` for the null reverse-path.
    pub envelope_from: Option<String>,
    /// The distinct RCPT TO domains, lower-case, in order of first appearance.
    pub envelope_to: Vec<String>,
    /// SPF results: the MAIL FROM identity (`mfrom`), then HELO (`helo`) when checked.
    pub spf: Vec<SpfAuth>,
    /// One result per DKIM signature, in header order.
    pub dkim: Vec<DkimAuth>,
    /// The DMARC result (`pass`, `fail`, `none`, `temperror`, `permerror`).
    pub dmarc: String,
    /// DMARC's view of SPF: `pass` when an aligned SPF pass was found, else `fail`.
    pub spf_aligned: String,
    /// DMARC's view of DKIM: `pass` when an aligned DKIM pass was found, else `fail`.
    pub dkim_aligned: String,
    /// The policy applied: `none`, `quarantine` or `reject` (`none` when a trusted ARC
    /// sealer's word overrode a failure: see [`Observation::overrides`]).
    pub disposition: String,
    /// Why the disposition differs from the published policy, when it does.
    pub overrides: Vec<Override>,
    /// The record as published at the policy domain, when one was found.
    pub published: Option<PublishedPolicy>,
}

/// An SPF result for an aggregate report's `auth_results`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpfAuth {
    /// The domain checked (empty when there was none).
    pub domain: String,
    /// `mfrom` or `helo`.
    pub scope: String,
    /// `none`, `neutral`, `pass`, `fail`, `softfail`, `temperror`, `permerror`.
    pub result: String,
    /// Why, for a person (RFC 9990 `human_result`), when the result is not `pass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_result: Option<String>,
}

/// A DKIM result for an aggregate report's `auth_results`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DkimAuth {
    /// `d=` (empty when the signature had none).
    pub domain: String,
    /// `s=`, when there was one.
    pub selector: Option<String>,
    /// `pass`, `fail`, `neutral`, `policy`, `temperror`, `permerror`.
    pub result: String,
    /// Why, for a person (RFC 9990 `human_result`): the problem of a signature that did
    /// not pass, or a note on a pass (`l=`, `t=y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_result: Option<String>,
}

/// A policy override reason (RFC 9990 `PolicyOverrideType`, RFC 7489 Appendix C).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Override {
    /// `policy_test_mode`, `sampled_out`, `local_policy`, `trusted_forwarder`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Words for a person.
    pub comment: String,
}

/// The published policy, as an aggregate report's `policy_published` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPolicy {
    /// The policy domain.
    pub domain: String,
    /// `p=`.
    pub p: String,
    /// `sp=`, when given.
    pub sp: Option<String>,
    /// `np=`, when given.
    pub np: Option<String>,
    /// `adkim=` (`r` or `s`).
    pub adkim: String,
    /// `aspf=` (`r` or `s`).
    pub aspf: String,
    /// `pct=`, when given (RFC 7489).
    pub pct: Option<u8>,
    /// `fo=`, colon-separated, when given.
    pub fo: Option<String>,
    /// `t=y`.
    pub testing: bool,
}

fn mode(m: dmarc_proto::dmarc::AlignmentMode) -> String {
    match m {
        dmarc_proto::dmarc::AlignmentMode::Strict => "s",
        dmarc_proto::dmarc::AlignmentMode::Relaxed => "r",
    }
    .to_owned()
}

impl PublishedPolicy {
    fn of(domain: &str, r: &Record) -> Self {
        PublishedPolicy {
            domain: domain.to_owned(),
            p: r.p.as_str().to_owned(),
            sp: r.sp.map(|p| p.as_str().to_owned()),
            np: r.np.map(|p| p.as_str().to_owned()),
            adkim: mode(r.adkim),
            aspf: mode(r.aspf),
            pct: r.pct,
            fo: (!r.fo.is_empty()).then(|| {
                r.fo.iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(":")
            }),
            testing: r.testing,
        }
    }
}

fn domain_of(address: &str) -> Option<String> {
    let (_, d) = address.rsplit_once('@')?;
    let d = d.trim_end_matches('.');
    (!d.is_empty()).then(|| d.to_ascii_lowercase())
}

impl Observation {
    /// The observation of a verified message.
    pub fn of(v: &Verdicts) -> Self {
        let d = &v.dmarc;
        // RFC 9990 `human_result`: why SPF did not pass (the reason is rendered only then).
        let spf_human = |o: &dmarc_proto::spf::SpfOutput| {
            (o.result != dmarc_proto::spf::SpfResult::Pass).then(|| o.reason.to_string())
        };
        let mut spf = vec![SpfAuth {
            domain: v.spf.domain.as_str().to_owned(),
            scope: "mfrom".to_owned(),
            result: v.spf.result.as_str().to_owned(),
            human_result: spf_human(&v.spf),
        }];
        if let Some(h) = &v.helo_spf {
            spf.push(SpfAuth {
                domain: h.domain.as_str().to_owned(),
                scope: "helo".to_owned(),
                result: h.result.as_str().to_owned(),
                human_result: spf_human(h),
            });
        }
        let dkim = v
            .dkim
            .iter()
            .map(|s| DkimAuth {
                domain: s.info.domain.clone().unwrap_or_default(),
                selector: s.info.selector.clone(),
                result: s.result.as_str().to_owned(),
                human_result: s.reason(),
            })
            .collect();
        let mut envelope_to: Vec<String> = Vec::new();
        for r in &v.recipients {
            if let Some(dom) = domain_of(r)
                && !envelope_to.contains(&dom)
            {
                envelope_to.push(dom);
            }
        }
        let mut disposition = d.disposition().unwrap_or(Policy::None);
        let mut overrides = Vec::new();
        // A trusted ARC sealer vouched for the message (local policy): nothing was
        // enforced, and the report says who forwarded it.
        if let Some(Ok(o)) = &v.trusted_forwarder {
            overrides.push(Override {
                kind: o.kind.to_owned(),
                comment: o.comment.clone(),
            });
            disposition = Policy::None;
        }
        if d.result == DmarcResult::Fail
            && overrides.is_empty()
            && let (Some(requested), Some(applied)) = (d.requested_policy, d.applied_policy)
            && requested != applied
        {
            if d.testing {
                overrides.push(Override {
                    kind: "policy_test_mode".to_owned(),
                    comment: format!("t=y: {requested} applied as {applied}"),
                });
            } else if d.sampled == Some(false) {
                overrides.push(Override {
                    kind: "sampled_out".to_owned(),
                    comment: format!("not selected by pct: {requested} applied as {applied}"),
                });
            }
        }
        if d.result == DmarcResult::TempError {
            overrides.push(Override {
                kind: "local_policy".to_owned(),
                comment: format!("deferred (451): {}", d.reason),
            });
        }
        Observation {
            policy_domain: d.policy_domain.as_ref().map(|p| p.as_str().to_owned()),
            source_ip: v.facts.ip,
            header_from: d.author_domain.clone(),
            envelope_from: v
                .facts
                .mail_from
                .as_deref()
                .filter(|m| !m.is_empty())
                .and_then(domain_of),
            envelope_to,
            spf,
            dkim,
            dmarc: d.result.as_str().to_owned(),
            spf_aligned: if d.spf_aligned() { "pass" } else { "fail" }.to_owned(),
            dkim_aligned: if d.dkim_aligned() { "pass" } else { "fail" }.to_owned(),
            disposition: disposition.as_str().to_owned(),
            overrides,
            published: match (&d.policy_domain, &d.record) {
                (Some(pd), Some(r)) => Some(PublishedPolicy::of(pd.as_str(), r)),
                _ => None,
            },
        }
    }
}
