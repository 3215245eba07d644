//! Failure-report candidates (RFC 9991): which failed messages the Domain Owner asked to
//! hear about (`fo=`, RFC 9989 §4.7), and what a failure report about one needs, kept from
//! the moment the message was verified until a report is made from it.
//!
//! The decision is [`qualify`]: `0` (the default) asks for a report when every mechanism
//! fails to give an aligned pass (DMARC fails), `1` when any mechanism does, `d` when a
//! DKIM signature failed to verify (whatever its alignment), `s` when SPF failed (whatever
//! its alignment); options combine (`fo=0:d` is "DMARC failed, or a signature failed").
//! [`candidate`] adds the conditions around it: a record with `ruf=` (without it `fo=` is
//! ignored, RFC 9989 §4.7), not a `psd=y` record (RFC 9991 §2), and not a message that is
//! itself a report (no report loops: a failure report about a report would answer a
//! report with a report).

use std::net::IpAddr;

use dmarc_proto::dkim::{DkimResult, Problem, SignatureResult};
use dmarc_proto::dmarc::record::Psd;
use dmarc_proto::dmarc::{AlignmentMode, DmarcResult, FailureOption};
use dmarc_proto::message::parse_header_block;
use dmarc_proto::spf::SpfResult;
use serde::{Deserialize, Serialize};

use crate::{Action, Observation, Verdicts};

/// The largest header block kept in a candidate, bytes (the rest is cut at a field
/// boundary, and the candidate says so).
pub const MAX_HEADER: usize = 64 * 1024;

/// How a DKIM signature failed, in RFC 6591 `Auth-Failure` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimFailure {
    /// `bodyhash`: the body hash did not match (the body was changed).
    BodyHash,
    /// `revoked`: the key is revoked (an empty `p=`).
    Revoked,
    /// `signature`: the signature did not verify.
    Signature,
}

impl DkimFailure {
    /// The `Auth-Failure` word.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimFailure::BodyHash => "bodyhash",
            DkimFailure::Revoked => "revoked",
            DkimFailure::Signature => "signature",
        }
    }

    /// How `r` failed, when it failed to verify (`fail`, or a revoked key).
    pub fn of(r: &SignatureResult) -> Option<DkimFailure> {
        match (&r.result, &r.problem) {
            (_, Some(Problem::KeyRevoked)) => Some(DkimFailure::Revoked),
            (DkimResult::Fail, Some(Problem::BodyHashMismatch)) => Some(DkimFailure::BodyHash),
            (DkimResult::Fail, _) => Some(DkimFailure::Signature),
            _ => None,
        }
    }
}

/// What `fo=` looks at, taken from the verdicts (a value of its own so that the rule is
/// tested without a DNS world).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// DMARC was evaluated against a record (the result is `pass` or `fail`).
    pub evaluated: bool,
    /// An aligned SPF pass was found.
    pub spf_aligned: bool,
    /// An aligned DKIM pass was found.
    pub dkim_aligned: bool,
    /// How the first DKIM signature that failed to verify failed, if one did.
    pub dkim_failure: Option<DkimFailure>,
    /// SPF (MAIL FROM) gave `fail`.
    pub spf_failed: bool,
}

impl Outcome {
    /// The outcome of a verified message.
    pub fn of(v: &Verdicts) -> Outcome {
        Outcome {
            evaluated: matches!(v.dmarc.result, DmarcResult::Pass | DmarcResult::Fail),
            spf_aligned: v.dmarc.spf_aligned(),
            dkim_aligned: v.dmarc.dkim_aligned(),
            dkim_failure: v.dkim.iter().find_map(DkimFailure::of),
            spf_failed: v.spf.result == SpfResult::Fail,
        }
    }
}

/// Why a message qualifies for a failure report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualification {
    /// The `fo=` options that asked for it, in the record's order.
    pub options: Vec<FailureOption>,
    /// The `Auth-Failure` of the report: `dmarc` when `0` or `1` asked, else the DKIM
    /// failure (`d`), else `spf` (`s`).
    pub auth_failure: &'static str,
    /// `Identity-Alignment` lists `dkim`: DKIM gave no aligned pass.
    pub dkim_unaligned: bool,
    /// `Identity-Alignment` lists `spf`: SPF gave no aligned pass.
    pub spf_unaligned: bool,
}

/// The `fo=` rule (RFC 9989 §4.7): whether the message with this outcome is to be
/// reported under these options (an empty list is the default, `0`), and why. `None`
/// when no option asks for it, or DMARC was not evaluated (no record, or an error: there
/// is no verdict to report).
pub fn qualify(fo: &[FailureOption], o: &Outcome) -> Option<Qualification> {
    if !o.evaluated {
        return None;
    }
    let default = [FailureOption::Zero];
    let fo = if fo.is_empty() { &default[..] } else { fo };
    let mut options = Vec::new();
    for f in fo {
        let asks = match f {
            FailureOption::Zero => !o.spf_aligned && !o.dkim_aligned,
            FailureOption::One => !o.spf_aligned || !o.dkim_aligned,
            FailureOption::Dkim => o.dkim_failure.is_some(),
            FailureOption::Spf => o.spf_failed,
        };
        if asks && !options.contains(f) {
            options.push(*f);
        }
    }
    if options.is_empty() {
        return None;
    }
    let dmarc = options
        .iter()
        .any(|f| matches!(f, FailureOption::Zero | FailureOption::One));
    let auth_failure = if dmarc {
        "dmarc"
    } else if let Some(d) = o
        .dkim_failure
        .filter(|_| options.contains(&FailureOption::Dkim))
    {
        d.as_str()
    } else {
        "spf"
    };
    Some(Qualification {
        options,
        auth_failure,
        dkim_unaligned: !o.dkim_aligned,
        spf_unaligned: !o.spf_aligned,
    })
}

/// The DKIM signature a report names (`DKIM-Domain`, `DKIM-Identity`, `DKIM-Selector`):
/// one that failed for an aligned identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedSignature {
    /// `d=`.
    pub domain: String,
    /// `i=` (default `@d`).
    pub identity: String,
    /// `s=`.
    pub selector: String,
}

/// A failed message queued for a failure report: everything RFC 9991 and RFC 6591 ask a
/// report to say, as the receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCandidate {
    /// The DMARC Policy Domain.
    pub policy_domain: String,
    /// When the message arrived, Unix seconds (`Arrival-Date`).
    pub arrival: i64,
    /// The SMTP client (`Source-IP`).
    pub source_ip: IpAddr,
    /// `fo=` as published (empty for the default).
    pub fo: String,
    /// The options that asked for the report (`0`, `1`, `d`, `s`).
    pub asked_by: Vec<String>,
    /// `ruf=` as published, each URI with its `!size`.
    pub ruf: Vec<String>,
    /// `Auth-Failure`: `dmarc`, `bodyhash`, `revoked`, `signature` or `spf`.
    pub auth_failure: String,
    /// `Identity-Alignment` lists `dkim`.
    pub dkim_unaligned: bool,
    /// `Identity-Alignment` lists `spf`.
    pub spf_unaligned: bool,
    /// A failed signature of an aligned identifier, when there is one.
    pub failed_signature: Option<FailedSignature>,
    /// `Delivery-Result`: `delivered`, `spam`, `reject` or `policy`.
    pub delivery_result: String,
    /// The Authentication-Results field this receiver added (name and value, unfolded).
    pub authentication_results: String,
    /// RFC5321.MailFrom (`Original-Mail-From`; empty for the null reverse-path).
    pub mail_from: String,
    /// RCPT TO (`Original-Rcpt-To`).
    pub rcpt_to: Vec<String>,
    /// The Author Domain (`Reported-Domain`).
    pub reported_domain: String,
    /// The verdict in words.
    pub explanation: String,
    /// The aggregate-report view of the message.
    pub observation: Observation,
    /// The header fields as received (CRLF or LF kept; invalid UTF-8 replaced), at most
    /// [`MAX_HEADER`] bytes.
    pub header: String,
    /// True when the header block was longer than [`MAX_HEADER`] and cut.
    pub header_truncated: bool,
}

/// Why a message is not queued for a failure report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotQueued {
    /// No policy record applied, or it has no `ruf=`.
    NoRuf,
    /// The record is a Public Suffix Domain's (`psd=y`): its `ruf` is not used.
    PublicSuffix,
    /// `fo=` does not ask for this message.
    NotAsked,
    /// The message is itself a report (no report loops).
    ReportMessage,
}

/// True when a header block is that of report mail: a `multipart/report` (failure reports,
/// delivery status notifications) or an aggregate report (the `Report Domain:` Subject of
/// RFC 9990 §3 and RFC 7489 §7.2.1.1, which our own reports carry too). Such mail is
/// neither counted for aggregate reports nor reported in failure reports: a report about a
/// report could loop between two receivers.
pub fn is_report_message(header: &[u8]) -> bool {
    parse_header_block(header).iter().any(|f| {
        let value = String::from_utf8_lossy(f.value()).to_ascii_lowercase();
        let value = value.trim();
        (f.is("Content-Type") && value.starts_with("multipart/report"))
            || (f.is("Subject") && value.starts_with("report domain:"))
    })
}

fn aligned_with(d: &str, author: &str, org: Option<&str>, mode: AlignmentMode) -> bool {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    let author = author.to_ascii_lowercase();
    if d == author {
        return true;
    }
    match (mode, org) {
        (AlignmentMode::Relaxed, Some(org)) => {
            let org = org.to_ascii_lowercase();
            (d == org || d.ends_with(&format!(".{org}")))
                && (author == org || author.ends_with(&format!(".{org}")))
        }
        _ => false,
    }
}

fn delivery_result(a: Action) -> &'static str {
    match a {
        Action::Accept => "delivered",
        Action::Quarantine => "spam",
        Action::Reject => "reject",
        Action::TempFail => "policy",
    }
}

/// The candidate of a verified message, when its policy asks for a failure report about
/// it; `header` is its header block as received, `arrival` Unix seconds.
pub fn candidate(v: &Verdicts, header: &[u8], arrival: i64) -> Result<FailureCandidate, NotQueued> {
    let d = &v.dmarc;
    let (Some(pd), Some(record)) = (&d.policy_domain, &d.record) else {
        return Err(NotQueued::NoRuf);
    };
    if record.ruf.is_empty() {
        return Err(NotQueued::NoRuf);
    }
    if record.psd == Psd::Yes {
        return Err(NotQueued::PublicSuffix);
    }
    let q = qualify(&record.fo, &Outcome::of(v)).ok_or(NotQueued::NotAsked)?;
    if is_report_message(header) {
        return Err(NotQueued::ReportMessage);
    }
    let author = d.author_domain.clone().unwrap_or_default();
    let org = d.org_domain.as_ref().map(|o| o.as_str().to_owned());
    let failed_signature = v
        .dkim
        .iter()
        .filter(|s| s.result != DkimResult::Pass)
        .find_map(|s| {
            let dom = s.info.domain.as_deref()?;
            aligned_with(dom, &author, org.as_deref(), d.dkim_mode).then(|| FailedSignature {
                domain: dom.to_owned(),
                identity: s.info.identity.clone().unwrap_or_else(|| format!("@{dom}")),
                selector: s.info.selector.clone().unwrap_or_default(),
            })
        });
    let (header, header_truncated) = cut_header(header);
    let ar = v.authentication_results_header();
    Ok(FailureCandidate {
        policy_domain: pd.as_str().to_owned(),
        arrival,
        source_ip: v.facts.ip,
        fo: record
            .fo
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(":"),
        asked_by: q.options.iter().map(|f| f.as_str().to_owned()).collect(),
        ruf: record
            .ruf
            .iter()
            .map(|u| match u.max_size {
                Some(n) => format!("{}!{n}", u.uri),
                None => u.uri.clone(),
            })
            .collect(),
        auth_failure: q.auth_failure.to_owned(),
        dkim_unaligned: q.dkim_unaligned,
        spf_unaligned: q.spf_unaligned,
        failed_signature,
        delivery_result: delivery_result(v.action).to_owned(),
        authentication_results: ar
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .trim_start_matches("Authentication-Results:")
            .trim()
            .to_owned(),
        mail_from: v.facts.mail_from.clone().unwrap_or_default(),
        rcpt_to: v.recipients.clone(),
        reported_domain: author,
        explanation: v.explain(),
        observation: v.observation(),
        header,
        header_truncated,
    })
}

/// The header block as text, cut at a field boundary at [`MAX_HEADER`] bytes.
fn cut_header(header: &[u8]) -> (String, bool) {
    if header.len() <= MAX_HEADER {
        return (String::from_utf8_lossy(header).into_owned(), false);
    }
    let mut end = 0;
    for f in parse_header_block(header) {
        let stop = f.offset() + f.raw().len();
        if stop > MAX_HEADER {
            break;
        }
        end = stop;
    }
    (String::from_utf8_lossy(&header[..end]).into_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureOption::{Dkim as D, One, Spf as S, Zero};

    fn outcome(spf_aligned: bool, dkim_aligned: bool) -> Outcome {
        Outcome {
            evaluated: true,
            spf_aligned,
            dkim_aligned,
            dkim_failure: None,
            spf_failed: false,
        }
    }

    #[test]
    fn fo_0_only_when_every_mechanism_fails_alignment() {
        let q = qualify(&[Zero], &outcome(false, false)).expect("both unaligned");
        assert_eq!(q.options, vec![Zero]);
        assert_eq!(q.auth_failure, "dmarc");
        assert!(q.dkim_unaligned && q.spf_unaligned);
        assert_eq!(qualify(&[Zero], &outcome(true, false)), None);
        assert_eq!(qualify(&[Zero], &outcome(false, true)), None);
        // The default is 0.
        assert!(qualify(&[], &outcome(false, false)).is_some());
        assert_eq!(qualify(&[], &outcome(false, true)), None);
    }

    #[test]
    fn fo_1_when_any_mechanism_fails_alignment_even_if_dmarc_passes() {
        let q = qualify(&[One], &outcome(true, false)).expect("dkim unaligned");
        assert_eq!(q.auth_failure, "dmarc");
        assert!(q.dkim_unaligned && !q.spf_unaligned);
        let q = qualify(&[One], &outcome(false, true)).expect("spf unaligned");
        assert!(!q.dkim_unaligned && q.spf_unaligned);
        assert!(qualify(&[One], &outcome(false, false)).is_some());
        assert_eq!(qualify(&[One], &outcome(true, true)), None);
    }

    #[test]
    fn fo_d_when_a_signature_failed_whatever_its_alignment() {
        let mut o = outcome(true, true);
        assert_eq!(qualify(&[D], &o), None);
        o.dkim_failure = Some(DkimFailure::BodyHash);
        let q = qualify(&[D], &o).expect("a signature failed");
        assert_eq!(q.options, vec![D]);
        assert_eq!(q.auth_failure, "bodyhash");
        assert!(!q.dkim_unaligned, "DKIM still gave an aligned pass");
        o.dkim_failure = Some(DkimFailure::Revoked);
        assert_eq!(qualify(&[D], &o).unwrap().auth_failure, "revoked");
    }

    #[test]
    fn fo_s_when_spf_failed_whatever_its_alignment() {
        let mut o = outcome(false, true);
        assert_eq!(qualify(&[S], &o), None);
        o.spf_failed = true;
        let q = qualify(&[S], &o).expect("spf failed");
        assert_eq!(q.auth_failure, "spf");
        assert!(q.spf_unaligned && !q.dkim_unaligned);
    }

    #[test]
    fn combinations_report_when_any_option_asks() {
        // fo=0:d: DMARC passed through SPF, but a signature failed: d asks.
        let mut o = outcome(true, false);
        o.dkim_failure = Some(DkimFailure::Signature);
        let q = qualify(&[Zero, D], &o).expect("d asks");
        assert_eq!(q.options, vec![D]);
        assert_eq!(q.auth_failure, "signature");
        // Both fail: 0 and d ask; the report is a DMARC one.
        let mut o = outcome(false, false);
        o.dkim_failure = Some(DkimFailure::Signature);
        let q = qualify(&[Zero, D], &o).expect("both ask");
        assert_eq!(q.options, vec![Zero, D]);
        assert_eq!(q.auth_failure, "dmarc");
        // fo=d:s with only SPF failing.
        let mut o = outcome(false, true);
        o.spf_failed = true;
        assert_eq!(qualify(&[D, S], &o).unwrap().options, vec![S]);
        // fo=1:s, all aligned and nothing failed: nothing to report.
        assert_eq!(qualify(&[One, S], &outcome(true, true)), None);
    }

    #[test]
    fn nothing_without_an_evaluated_policy() {
        let mut o = outcome(false, false);
        o.evaluated = false;
        o.spf_failed = true;
        assert_eq!(qualify(&[Zero, One, D, S], &o), None);
    }

    #[test]
    fn report_mail_is_recognised() {
        assert!(is_report_message(
            b"From: a@b.example\r\nContent-Type: multipart/report; report-type=feedback-report;\r\n boundary=x\r\n"
        ));
        assert!(is_report_message(
            b"Subject: Report Domain: example.com\r\n Submitter: mx.example.net\r\n"
        ));
        assert!(is_report_message(
            b"Subject: Report domain: example.com Submitter: google.com Report-ID: <1>\r\n"
        ));
        assert!(!is_report_message(
            b"Auto-Submitted: auto-generated\r\nContent-Type: multipart/mixed; boundary=y\r\n"
        ));
        assert!(!is_report_message(
            b"From: a@b.example\r\nSubject: hello\r\nContent-Type: text/plain\r\n"
        ));
    }

    #[test]
    fn long_headers_are_cut_at_a_field_boundary() {
        let mut h = Vec::new();
        for i in 0..4000 {
            h.extend_from_slice(format!("X-Filler-{i}: some words here\r\n").as_bytes());
        }
        let (text, cut) = cut_header(&h);
        assert!(cut);
        assert!(text.len() <= MAX_HEADER);
        assert!(text.ends_with("\r\n"));
        let (text, cut) = cut_header(b"A: b\r\n");
        assert_eq!((text.as_str(), cut), ("A: b\r\n", false));
    }
}
