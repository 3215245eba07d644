//! Failure ("ruf") reports: the Abuse Reporting Format (RFC 5965) with the authentication
//! failure extensions (RFC 6591) and the DMARC fields (RFC 9991 §4), and the plain-text
//! notices some receivers send instead.
//!
//! Leniency: a top-level `multipart/mixed` instead of `multipart/report`, a base64-encoded
//! feedback part, blank or whitespace-only lines before the fields, unknown fields (kept in
//! [`FailureReport::other_fields`]); with no feedback part at all, a plain-text notice that
//! mentions DMARC and names a source IP still gives a report (with a warning saying so).

use std::net::IpAddr;

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

use crate::aggregate::parse::parse_ip;
use crate::words::word_enum;

word_enum! {
    /// `Feedback-Type` (RFC 5965 §3.1, RFC 6591 §3).
    pub enum FeedbackType {
        /// `abuse`.
        Abuse = "abuse",
        /// `auth-failure` (RFC 6591): the DMARC failure report type.
        AuthFailure = "auth-failure",
        /// `fraud`.
        Fraud = "fraud",
        /// `not-spam`.
        NotSpam = "not-spam",
        /// `other`.
        Other = "other",
        /// `virus`.
        Virus = "virus",
    }
}

word_enum! {
    /// `Auth-Failure` (RFC 6591 §3.1, RFC 9991 §4).
    pub enum AuthFailure {
        /// `adsp`.
        Adsp = "adsp",
        /// `bodyhash`.
        BodyHash = "bodyhash",
        /// `revoked`.
        Revoked = "revoked",
        /// `signature`.
        Signature = "signature",
        /// `spf`.
        Spf = "spf",
        /// `dmarc` (RFC 9991).
        Dmarc = "dmarc",
    }
}

word_enum! {
    /// `Delivery-Result` (RFC 6591 §3.1).
    pub enum DeliveryResult {
        /// `delivered`.
        Delivered = "delivered",
        /// `spam`.
        Spam = "spam",
        /// `policy`.
        Policy = "policy",
        /// `reject`.
        Reject = "reject",
        /// `other`.
        Other = "other",
    }
}

/// `Identity-Alignment` (RFC 9991 §4): which mechanisms failed to give an aligned identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdentityAlignment {
    /// `dkim` listed.
    pub dkim: bool,
    /// `spf` listed.
    pub spf: bool,
}

impl IdentityAlignment {
    /// Parses `none` or a comma-separated list of `dkim` / `spf`; `None` for anything else.
    pub fn parse(s: &str) -> Option<IdentityAlignment> {
        let s = strip_comments(s);
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Some(IdentityAlignment::default());
        }
        let mut a = IdentityAlignment::default();
        for m in s.split(',') {
            match m.trim().to_ascii_lowercase().as_str() {
                "dkim" => a.dkim = true,
                "spf" => a.spf = true,
                _ => return None,
            }
        }
        Some(a)
    }

    /// The field value as RFC 9991 writes it: `none`, `dkim`, `spf` or `dkim, spf`.
    pub fn as_str(&self) -> &'static str {
        match (self.dkim, self.spf) {
            (false, false) => "none",
            (true, false) => "dkim",
            (false, true) => "spf",
            (true, true) => "dkim, spf",
        }
    }
}

/// One failure report, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailureReport {
    /// `Feedback-Type`; `None` only for a notice that does not say.
    pub feedback_type: Option<FeedbackType>,
    /// `Version`.
    pub version: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Arrival-Date` (or `Received-Date`) as written.
    pub arrival_date: Option<String>,
    /// `Arrival-Date` in seconds since the Unix epoch, when it parses.
    pub arrival_timestamp: Option<i64>,
    /// `Source-IP`.
    pub source_ip: Option<IpAddr>,
    /// `Source-Port` (RFC 6591).
    pub source_port: Option<u16>,
    /// `Reporting-MTA`.
    pub reporting_mta: Option<String>,
    /// `Original-Envelope-Id`.
    pub original_envelope_id: Option<String>,
    /// `Original-Mail-From`.
    pub original_mail_from: Option<String>,
    /// `Original-Rcpt-To` (repeatable).
    #[serde(default)]
    pub original_rcpt_to: Vec<String>,
    /// `Reported-Domain` (repeatable).
    #[serde(default)]
    pub reported_domain: Vec<String>,
    /// `Reported-URI` (repeatable).
    #[serde(default)]
    pub reported_uri: Vec<String>,
    /// `Authentication-Results` (repeatable), unfolded.
    #[serde(default)]
    pub authentication_results: Vec<String>,
    /// `Incidents`.
    pub incidents: Option<u64>,
    /// `Auth-Failure` (RFC 6591).
    pub auth_failure: Option<AuthFailure>,
    /// `Delivery-Result` (RFC 6591).
    pub delivery_result: Option<DeliveryResult>,
    /// `Identity-Alignment` (RFC 9991).
    pub identity_alignment: Option<IdentityAlignment>,
    /// `DKIM-Domain`.
    pub dkim_domain: Option<String>,
    /// `DKIM-Identity`.
    pub dkim_identity: Option<String>,
    /// `DKIM-Selector`.
    pub dkim_selector: Option<String>,
    /// `DKIM-Canonicalized-Header` (base64, as written).
    pub dkim_canonicalized_header: Option<String>,
    /// `DKIM-Canonicalized-Body` (base64, as written).
    pub dkim_canonicalized_body: Option<String>,
    /// `DKIM-ADSP-DNS`.
    pub dkim_adsp_dns: Option<String>,
    /// `DKIM-Selector-DNS`.
    pub dkim_selector_dns: Option<String>,
    /// `SPF-DNS`.
    pub spf_dns: Option<String>,
    /// Other fields of the feedback part, in order, as (name, value).
    #[serde(default)]
    pub other_fields: Vec<(String, String)>,
    /// The header section of the reported message (from a `message/rfc822` or
    /// `text/rfc822-headers` part), line endings normalised to LF.
    pub original_headers: Option<String>,
    /// Whether the report included the reported message's body.
    #[serde(default)]
    pub original_body_included: bool,
    /// The human-readable first part.
    pub human_readable: Option<String>,
    /// Subject of the report message itself.
    pub subject: Option<String>,
    /// What the parser tolerated.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Reads a failure report from a parsed email message, if it is one.
///
/// `None`: the message has no `message/feedback-report` part (and is not a plain-text
/// DMARC failure notice; see [`from_plain_text`]).
pub(crate) fn from_message(msg: &Message<'_>) -> Option<FailureReport> {
    let mut report = FailureReport::default();
    let mut feedback: Option<String> = None;
    let mut ctype_top = String::new();
    if let Some(ct) = msg.content_type() {
        ctype_top = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""));
    }
    for part in &msg.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let ty = ct.ctype().to_ascii_lowercase();
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        match (ty.as_str(), sub.as_str()) {
            ("message", "feedback-report") if feedback.is_none() => {
                feedback = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            ("message", "rfc822" | "global") | ("text", "rfc822-headers")
                if report.original_headers.is_none() && feedback.is_some() =>
            {
                let (headers, body) = original_message(part);
                report.original_headers = Some(headers);
                report.original_body_included = body;
            }
            ("text", "plain") if report.human_readable.is_none() && feedback.is_none() => {
                report.human_readable = part.text_contents().map(|t| t.trim().to_string());
            }
            _ => {}
        }
    }
    let fields = feedback?;
    if !ctype_top.eq_ignore_ascii_case("multipart/report") {
        report.warnings.push(format!(
            "report message is {ctype_top}, not multipart/report (RFC 5965 §2)"
        ));
    }
    report.subject = msg.subject().map(str::to_string);
    apply_fields(&mut report, &fields);
    if report.feedback_type.is_none() {
        report
            .warnings
            .push("feedback part has no Feedback-Type field".to_string());
    }
    Some(report)
}

fn original_message(part: &MessagePart<'_>) -> (String, bool) {
    match &part.body {
        PartType::Message(m) => {
            let raw = m.raw_message();
            let split = find_header_end(raw);
            let headers = String::from_utf8_lossy(&raw[..split.0]);
            let body_len = raw.len().saturating_sub(split.1);
            (normalise_eol(&headers), body_len > 0)
        }
        _ => {
            let raw = part.contents();
            let split = find_header_end(raw);
            let headers = String::from_utf8_lossy(&raw[..split.0]);
            let body = raw.get(split.1..).unwrap_or(b"");
            (
                normalise_eol(&headers),
                body.iter().any(|b| !b.is_ascii_whitespace()),
            )
        }
    }
}

/// Where a header section ends: (end of headers, start of body).
fn find_header_end(raw: &[u8]) -> (usize, usize) {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            match raw.get(i + 1) {
                Some(b'\n') => return (i + 1, i + 2),
                Some(b'\r') if raw.get(i + 2) == Some(&b'\n') => return (i + 1, i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    (raw.len(), raw.len())
}

fn normalise_eol(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// Unfolds header-style fields (`Name: value`, continuation lines starting with white space),
/// skipping blank lines anywhere.
pub(crate) fn unfold_fields(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push('\n');
                last.1.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(' ') {
                out.push((name.to_string(), value.trim().to_string()));
            }
        }
    }
    out
}

fn apply_fields(r: &mut FailureReport, text: &str) {
    for (name, value) in unfold_fields(text) {
        let v = value.trim().to_string();
        let flat = || v.split_whitespace().collect::<Vec<_>>().join(" ");
        match name.to_ascii_lowercase().as_str() {
            "feedback-type" => r.feedback_type = Some(FeedbackType::parse(&strip_comments(&v))),
            "version" => r.version = Some(flat()),
            "user-agent" => r.user_agent = Some(flat()),
            "arrival-date" | "received-date" => {
                r.arrival_timestamp = mail_parser::DateTime::parse_rfc822(&flat())
                    .filter(|d| d.is_valid())
                    .map(|d| d.to_timestamp());
                if r.arrival_timestamp.is_none() {
                    r.warnings
                        .push(format!("{name} {v:?} is not an RFC 5322 date"));
                }
                r.arrival_date = Some(flat());
            }
            "source-ip" => {
                let first = strip_comments(&v);
                let first = first.split_whitespace().next().unwrap_or("");
                r.source_ip = parse_ip(first);
                if r.source_ip.is_none() {
                    r.warnings
                        .push(format!("Source-IP {v:?} is not an IP address"));
                }
            }
            "source-port" => r.source_port = strip_comments(&v).trim().parse().ok(),
            "reporting-mta" => {
                // RFC 5965 §3.2: `mta-name-type ";" mta-name`; the type is always "dns".
                let f = flat();
                let name = f.split_once(';').map_or(f.as_str(), |(_, n)| n.trim());
                r.reporting_mta = Some(name.to_string());
            }
            "original-envelope-id" => r.original_envelope_id = Some(flat()),
            "original-mail-from" => r.original_mail_from = Some(flat()),
            "original-rcpt-to" => r.original_rcpt_to.push(flat()),
            "reported-domain" => r.reported_domain.push(flat()),
            "reported-uri" => r.reported_uri.push(flat()),
            "authentication-results" => r.authentication_results.push(v.clone()),
            "incidents" => r.incidents = strip_comments(&v).trim().parse().ok(),
            "auth-failure" => r.auth_failure = Some(AuthFailure::parse(&strip_comments(&v))),
            "delivery-result" => {
                r.delivery_result = Some(DeliveryResult::parse(&strip_comments(&v)))
            }
            "identity-alignment" => {
                r.identity_alignment = IdentityAlignment::parse(&v);
                if r.identity_alignment.is_none() {
                    r.warnings
                        .push(format!("Identity-Alignment {v:?} is not none/dkim/spf"));
                }
            }
            "dkim-domain" => r.dkim_domain = Some(flat()),
            "dkim-identity" => r.dkim_identity = Some(flat()),
            "dkim-selector" => r.dkim_selector = Some(flat()),
            "dkim-canonicalized-header" => r.dkim_canonicalized_header = Some(v.clone()),
            "dkim-canonicalized-body" => r.dkim_canonicalized_body = Some(v.clone()),
            "dkim-adsp-dns" => r.dkim_adsp_dns = Some(flat()),
            "dkim-selector-dns" => r.dkim_selector_dns = Some(flat()),
            "spf-dns" => r.spf_dns = Some(flat()),
            _ => r.other_fields.push((name, v.clone())),
        }
    }
}

/// Removes RFC 5322 comments `( ... )` (nested) from a field value.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// Reads a plain-text DMARC failure notice (no `message/feedback-report` part), as some
/// MTAs send: `Name: value` lines such as `Sender IP Address:`, `Source-IP:`,
/// `Sender Domain:`, `Received Date:`. `None` unless the text mentions DMARC and names a
/// source IP.
pub(crate) fn from_plain_text(msg: &Message<'_>) -> Option<FailureReport> {
    let text = msg.body_text(0)?;
    if !text.to_ascii_lowercase().contains("dmarc") {
        return None;
    }
    let mut r = FailureReport {
        subject: msg.subject().map(str::to_string),
        ..FailureReport::default()
    };
    let mut alignment = IdentityAlignment::default();
    let mut alignment_seen = false;
    for line in text.lines() {
        let Some((name, value)) = line.trim().split_once(':') else {
            continue;
        };
        let key: String = name
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let value = value.trim();
        match key.as_str() {
            "feedbacktype" => r.feedback_type = Some(FeedbackType::parse(value)),
            "senderipaddress" | "sourceip" | "senderip" | "ipaddress" | "connectingip"
                if r.source_ip.is_none() =>
            {
                r.source_ip = value.split_whitespace().next().and_then(parse_ip);
            }
            "senderdomain" | "reporteddomain" | "headerfrom" | "fromdomain"
                if !value.is_empty() && !r.reported_domain.iter().any(|d| d == value) =>
            {
                r.reported_domain.push(value.to_string());
            }
            "receiveddate" | "arrivaldate" => {
                r.arrival_timestamp = mail_parser::DateTime::parse_rfc822(value)
                    .filter(|d| d.is_valid())
                    .map(|d| d.to_timestamp());
                r.arrival_date = Some(value.to_string());
            }
            "spfalignment" => {
                alignment_seen = true;
                alignment.spf = is_no(value);
            }
            "dkimalignment" => {
                alignment_seen = true;
                alignment.dkim = is_no(value);
            }
            "authenticationresults" => r.authentication_results.push(value.to_string()),
            _ => {}
        }
    }
    r.source_ip?;
    if r.feedback_type.is_none() {
        r.feedback_type = Some(FeedbackType::AuthFailure);
    }
    r.auth_failure = Some(AuthFailure::Dmarc);
    if alignment_seen {
        r.identity_alignment = Some(alignment);
    }
    r.human_readable = Some(text.trim().to_string());
    if let Some(part) = msg.parts.iter().find(|p| {
        p.content_type().is_some_and(|ct| {
            (ct.ctype().eq_ignore_ascii_case("message")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("rfc822")))
                || (ct.ctype().eq_ignore_ascii_case("text")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers")))
        })
    }) {
        let (headers, body) = original_message(part);
        r.original_headers = Some(headers);
        r.original_body_included = body;
    }
    r.warnings.push(
        "not an ARF report (no message/feedback-report part); fields read from a plain-text \
         DMARC failure notice"
            .to_string(),
    );
    Some(r)
}

/// "Alignment: no" (or fail/false) means the mechanism failed to give an aligned identity.
fn is_no(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    v.starts_with("no") || v.starts_with("fail") || v == "false"
}
