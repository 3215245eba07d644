//! The JSON form of [`Verdicts`] (what `dmarc verify --json` prints), serialised straight
//! from the verdicts: the views below borrow them, nothing is copied into an intermediate
//! value. Keys are in alphabetical order within each object.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use dmarc_proto::dmarc::{DmarcOutput, IdentifierAlignment};
use dmarc_proto::spf::SpfOutput;

use dmarc_proto::arc::forwarder::{ForwarderOverride, NoOverride};
use dmarc_proto::arc::{ArcHop, ArcOutput};
use dmarc_proto::dkim::Problem;

use crate::{UpstreamResults, Verdicts};

#[derive(serde::Serialize)]
struct Spf<'a> {
    domain: &'a str,
    identity: &'a str,
    reason: &'a str,
    result: &'a str,
}

impl<'a> Spf<'a> {
    fn of(s: &'a SpfOutput) -> Self {
        Spf {
            domain: s.domain.as_str(),
            identity: s.identity.as_str(),
            reason: &s.reason,
            result: s.result.as_str(),
        }
    }
}

#[derive(serde::Serialize)]
struct Dkim<'a> {
    d: Option<&'a str>,
    reason: Option<String>,
    result: &'a str,
    s: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct Row<'a> {
    aligned: bool,
    domain: &'a str,
    reason: Display<'a, dmarc_proto::dmarc::AlignmentReason>,
    result: &'a str,
    selector: Option<&'a str>,
}

impl<'a> Row<'a> {
    fn of(r: &'a IdentifierAlignment) -> Self {
        Row {
            aligned: r.aligned,
            domain: &r.domain,
            reason: Display(&r.reason),
            result: r.result.as_str(),
            selector: r.selector.as_deref(),
        }
    }
}

/// Serialises a value through its `Display`, written straight into the output.
struct Display<'a, T>(&'a T);

impl<T: std::fmt::Display> Serialize for Display<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// A list serialised from an iterator of views, without collecting it first.
struct List<I>(I);

impl<I, T> Serialize for List<I>
where
    I: Iterator<Item = T> + Clone,
    T: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

#[derive(serde::Serialize)]
#[serde(bound = "I: Iterator<Item = Row<'a>> + Clone")]
struct Alignment<'a, I: Iterator<Item = Row<'a>> + Clone> {
    dkim: bool,
    dkim_identifiers: List<I>,
    dkim_mode: &'a str,
    spf: bool,
    spf_identifiers: List<I>,
    spf_mode: &'a str,
}

struct Dmarc<'a>(&'a DmarcOutput);

impl Serialize for Dmarc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut st = s.serialize_struct("Dmarc", 12)?;
        st.serialize_field(
            "alignment",
            &Alignment {
                dkim: d.dkim_aligned(),
                dkim_identifiers: List(d.dkim.iter().map(Row::of)),
                dkim_mode: d.dkim_mode.as_str(),
                spf: d.spf_aligned(),
                spf_identifiers: List(d.spf.iter().map(Row::of)),
                spf_mode: d.spf_mode.as_str(),
            },
        )?;
        st.serialize_field("applied_policy", &d.applied_policy.map(|p| p.as_str()))?;
        st.serialize_field("header_from", &d.author_domain)?;
        st.serialize_field("org_domain", &d.org_domain.as_ref().map(|p| p.as_str()))?;
        st.serialize_field(
            "policy_domain",
            &d.policy_domain.as_ref().map(|p| p.as_str()),
        )?;
        st.serialize_field("policy_source", &d.policy_source.map(|p| p.as_str()))?;
        st.serialize_field("reason", &d.reason)?;
        st.serialize_field("requested_policy", &d.requested_policy.map(|p| p.as_str()))?;
        st.serialize_field("result", d.result.as_str())?;
        st.serialize_field("spec", d.spec.as_str())?;
        st.serialize_field("testing", &d.testing)?;
        st.end()
    }
}

#[derive(serde::Serialize)]
struct Method<'a> {
    method: &'a str,
    result: &'a str,
}

struct Upstream<'a>(&'a UpstreamResults);

impl Serialize for Upstream<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let u = self.0;
        let mut st = s.serialize_struct("Upstream", 3)?;
        match &u.parsed {
            Ok(p) => {
                st.serialize_field("authserv_id", &p.authserv_id)?;
                st.serialize_field("field_index", &u.field_index)?;
                st.serialize_field(
                    "results",
                    &List(p.results.iter().map(|r| Method {
                        method: &r.method,
                        result: &r.result,
                    })),
                )?;
            }
            Err(e) => {
                st.serialize_field("error", &Display(e))?;
                st.serialize_field("field_index", &u.field_index)?;
            }
        }
        st.end()
    }
}

/// A signature check: `"pass"`, the problem in words, or `null` when not checked.
struct Check<'a>(&'a Option<Result<(), Problem>>);

impl Serialize for Check<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_none(),
            Some(Ok(())) => s.serialize_str("pass"),
            Some(Err(p)) => s.collect_str(p),
        }
    }
}

struct Hop<'a>(&'a ArcHop);

impl Serialize for Hop<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = self.0;
        let mut st = s.serialize_struct("Hop", 9)?;
        match &h.authentication_results {
            Some(Ok(ar)) => {
                st.serialize_field("authserv_id", &ar.authserv_id)?;
                st.serialize_field(
                    "results",
                    &List(ar.results.iter().map(|r| Method {
                        method: &r.method,
                        result: &r.result,
                    })),
                )?;
            }
            Some(Err(e)) => st.serialize_field("aar_error", e)?,
            None => st.serialize_field("aar_error", "no ARC-Authentication-Results")?,
        }
        st.serialize_field("cv", &h.cv.map(|c| c.as_str()))?;
        st.serialize_field("instance", &h.instance)?;
        st.serialize_field("message_signature", &Check(&h.message_signature))?;
        st.serialize_field("seal", &Check(&h.seal))?;
        st.serialize_field("sealer", &h.sealer)?;
        st.serialize_field("selector", &h.seal_selector)?;
        st.serialize_field("signer", &h.signer)?;
        st.end()
    }
}

struct Forwarder<'a>(&'a Result<ForwarderOverride, NoOverride>);

impl Serialize for Forwarder<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Ok(o) => {
                let mut st = s.serialize_struct("Forwarder", 7)?;
                st.serialize_field("accepted", &true)?;
                st.serialize_field("comment", &o.comment)?;
                st.serialize_field("evidence", &o.evidence)?;
                st.serialize_field("reason", o.kind)?;
                st.serialize_field("sealer", &o.sealer)?;
                st.serialize_field("vouched_by", &o.vouched_by)?;
                st.serialize_field("vouched_instance", &o.vouched_instance)?;
                st.end()
            }
            Err(why) => {
                let mut st = s.serialize_struct("Forwarder", 2)?;
                st.serialize_field("accepted", &false)?;
                st.serialize_field("why_not", &Display(why))?;
                st.end()
            }
        }
    }
}

/// The `arc` object: `explanation`, `hops` (oldest first), `instances`, `oldest_pass`,
/// `reason`, `result`, `trusted_forwarder` (`null` when not decided).
struct ArcView<'a>(
    &'a ArcOutput,
    Option<&'a Result<ForwarderOverride, NoOverride>>,
);

impl Serialize for ArcView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut st = s.serialize_struct("ArcView", 7)?;
        st.serialize_field("explanation", &a.explain())?;
        st.serialize_field("hops", &List(a.hops.iter().map(Hop)))?;
        st.serialize_field("instances", &a.instances)?;
        st.serialize_field("oldest_pass", &a.oldest_pass)?;
        st.serialize_field("reason", &a.reason())?;
        st.serialize_field("result", a.status.as_str())?;
        st.serialize_field("trusted_forwarder", &self.1.map(Forwarder))?;
        st.end()
    }
}

/// The JSON of `dmarc verify --json`: `action`, `arc` (`null` when ARC is off: `result`,
/// `instances`, `oldest_pass`, `reason`, `explanation`, `hops` with each hop's AAR
/// authserv-id and results, seal and message-signature checks, and `trusted_forwarder`),
/// `authentication_results` (the field's value), `dkim` (one object per signature: `d`, `reason`, `result`, `s`), `dmarc`
/// (`alignment`, `applied_policy`, `header_from`, `org_domain`, `policy_domain`,
/// `policy_source`, `reason`, `requested_policy`, `result`, `spec`, `testing`),
/// `explanation`, `forged_authentication_results`, `helo_spf` and `spf` (`domain`,
/// `identity`, `reason`, `result`), `upstream_authentication_results`.
impl Serialize for Verdicts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Verdicts", 10)?;
        st.serialize_field("action", self.action.as_str())?;
        st.serialize_field(
            "arc",
            &self
                .arc
                .as_ref()
                .map(|a| ArcView(a, self.trusted_forwarder.as_ref())),
        )?;
        st.serialize_field(
            "authentication_results",
            &Display(&self.authentication_results()),
        )?;
        st.serialize_field(
            "dkim",
            &List(self.dkim.iter().map(|sig| Dkim {
                d: sig.info.domain.as_deref(),
                reason: sig.reason(),
                result: sig.result.as_str(),
                s: sig.info.selector.as_deref(),
            })),
        )?;
        st.serialize_field("dmarc", &Dmarc(&self.dmarc))?;
        st.serialize_field("explanation", &self.explain())?;
        st.serialize_field("forged_authentication_results", &self.forged_fields)?;
        st.serialize_field("helo_spf", &self.helo_spf.as_ref().map(Spf::of))?;
        st.serialize_field("spf", &Spf::of(&self.spf))?;
        st.serialize_field(
            "upstream_authentication_results",
            &List(self.upstream.iter().map(Upstream)),
        )?;
        st.end()
    }
}
