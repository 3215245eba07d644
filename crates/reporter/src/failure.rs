//! Failure reports (RFC 9991): one AFRF message (RFC 5965 with the RFC 6591
//! `auth-failure` fields and RFC 9991's `Identity-Alignment`) per queued candidate,
//! `multipart/report; report-type=feedback-report` with three parts: a text for a person,
//! the `message/feedback-report` fields, and the reported message's header fields as
//! `text/rfc822-headers` (never its body).
//!
//! Privacy (RFC 9991 §7): only the header fields a domain owner needs to diagnose the
//! failure are copied (trace, authentication and identity fields; `[failure]
//! extra_header_fields` adds more, `"*"` all), the local parts of addresses are replaced
//! by tokens (RFC 6590 redaction: the same local part gives the same token within a
//! report, and tokens are keyed with a secret drawn per report, so they cannot be
//! reversed by guessing), and `http`/`https` URIs are defanged to `hxxp`/`hxxps`.
//! The field words are those of `dmarc_report::failure`, the parser our own ingest uses,
//! so that our reports read back as we wrote them.

use dmarc_proto::message::parse_header_block;
use dmarc_receiver::failure::FailureCandidate;
use dmarc_report::failure::{AuthFailure, DeliveryResult, FeedbackType, IdentityAlignment};
use dmarc_store::time::format_rfc5322;

use crate::config::{Config, FailureOptions};

/// The kind word of failure reports in the store.
pub const FAILURE: &str = "failure";
/// The media type of the machine-readable part.
pub const FEEDBACK_REPORT: &str = "message/feedback-report";
/// The media type of the reported header fields.
pub const RFC822_HEADERS: &str = "text/rfc822-headers";

/// The header fields copied by default: what says where the message came from, how it
/// authenticated, and who it claims to be from and to.
pub const DEFAULT_FIELDS: &[&str] = &[
    "Received",
    "Return-Path",
    "Authentication-Results",
    "Received-SPF",
    "DKIM-Signature",
    "ARC-Seal",
    "ARC-Message-Signature",
    "ARC-Authentication-Results",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "Resent-From",
    "Resent-Sender",
    "Resent-Date",
    "Resent-Message-ID",
];

/// Fields whose `@` is not a mailbox (message identifiers): never redacted.
const ID_FIELDS: &[&str] = &[
    "Message-ID",
    "In-Reply-To",
    "References",
    "Resent-Message-ID",
    "Content-ID",
];

/// The key of a report's redaction tokens.
#[derive(Debug, Clone)]
pub struct Redaction {
    key: aws_lc_rs::hmac::Key,
}

impl Redaction {
    /// A fresh random key (one per report).
    pub fn random() -> Redaction {
        let mut secret = [0u8; 32];
        // The system RNG fails only when the OS has none; a fixed key then still redacts.
        let _ = aws_lc_rs::rand::fill(&mut secret);
        Redaction::with_secret(&secret)
    }

    /// A key from this secret (tests).
    pub fn with_secret(secret: &[u8]) -> Redaction {
        Redaction {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
        }
    }

    /// The token replacing `local`: 8 letters and digits.
    pub fn token(&self, local: &str) -> String {
        const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let tag = aws_lc_rs::hmac::sign(&self.key, local.to_ascii_lowercase().as_bytes());
        tag.as_ref()[..8]
            .iter()
            .map(|b| ALPHABET[usize::from(b & 31)] as char)
            .collect()
    }
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// The `tag=` prefixes an address can follow in DKIM-Signature, ARC and
/// Authentication-Results fields.
const TAGS: &[&str] = &[
    "i",
    "smtp.mailfrom",
    "smtp.rcptto",
    "smtp.helo",
    "header.i",
    "header.from",
    "header.sender",
    "envelope-from",
    "envelope-to",
];

/// Replaces the local part of every `local@domain` in `text` by its token.
pub fn redact_addresses(text: &str, r: &Redaction) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut pending_start = 0; // chars[pending_start..i] not yet written
    while i < chars.len() {
        if chars[i] == '@' {
            let mut s = i;
            while s > pending_start && is_local_char(chars[s - 1]) {
                s -= 1;
            }
            let mut e = i + 1;
            while e < chars.len() && is_domain_char(chars[e]) {
                e += 1;
            }
            let domain: String = chars[i + 1..e].iter().collect();
            // `i=user@d`, `smtp.mailfrom=user@d`: the tag is not part of the address.
            let scanned: String = chars[s..i].iter().collect();
            if let Some((tag, _)) = scanned.split_once('=')
                && TAGS.iter().any(|t| t.eq_ignore_ascii_case(tag))
            {
                s += tag.chars().count() + 1;
            }
            if s < i && domain.trim_matches('.').contains('.') {
                let local: String = chars[s..i].iter().collect();
                out.extend(&chars[pending_start..s]);
                out.push_str(&r.token(&local));
                pending_start = i;
            }
        }
        i += 1;
    }
    out.extend(&chars[pending_start..]);
    out
}

/// `http://` -> `hxxp://`, `https://` -> `hxxps://` (RFC 9991 §7.3), any case.
pub fn defang(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(p) = lower[from..].find("http").map(|p| p + from) {
        let rest = &lower[p + 4..];
        if rest.starts_with("://") || rest.starts_with("s://") {
            out.push_str(&text[last..p]);
            out.push_str(if text[p..].starts_with('H') { "H" } else { "h" });
            out.push_str("xx");
            out.push_str(&text[p + 3..p + 4]);
            last = p + 4;
        }
        from = p + 4;
    }
    out.push_str(&text[last..]);
    out
}

/// The reported header fields, chosen and redacted as configured, CRLF line endings.
pub fn reported_header(c: &FailureCandidate, o: &FailureOptions, r: &Redaction) -> String {
    let all = o.extra_header_fields.iter().any(|f| f.trim() == "*");
    let keep = |name: &str| {
        all || DEFAULT_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name))
            || o.extra_header_fields
                .iter()
                .any(|f| f.trim().eq_ignore_ascii_case(name))
    };
    let mut out = String::with_capacity(c.header.len());
    for f in parse_header_block(c.header.as_bytes()) {
        let name = String::from_utf8_lossy(f.trimmed_name()).into_owned();
        if !keep(&name) {
            continue;
        }
        let mut text = String::from_utf8_lossy(f.raw_without_eol()).into_owned();
        if o.redact_local_parts && !ID_FIELDS.iter().any(|i| i.eq_ignore_ascii_case(&name)) {
            text = redact_addresses(&text, r);
        }
        if o.defang_uris {
            text = defang(&text);
        }
        // Bare LF or CR inside a field become CRLF folds; the 7bit part stays valid.
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 && !line.starts_with([' ', '\t']) {
                out.push(' ');
            }
            out.push_str(&non_ascii_replaced(line));
            out.push_str("\r\n");
        }
    }
    out
}

/// Non-ASCII characters as `?`, so that the parts stay 7bit.
fn non_ascii_replaced(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii() && c != '\0' { c } else { '?' })
        .collect()
}

fn field(out: &mut String, name: &str, value: &str) {
    let value: String = value.split_whitespace().collect::<Vec<_>>().join(" ");
    out.push_str(name);
    out.push_str(": ");
    out.push_str(&non_ascii_replaced(&value));
    out.push_str("\r\n");
}

/// A field whose value is the base64 of `data`, folded into lines of at most 78
/// characters.
fn folded_base64(out: &mut String, name: &str, data: &[u8]) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    out.push_str(name);
    out.push(':');
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str("\r\n ");
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out.push_str("\r\n");
}

/// The `message/feedback-report` fields (RFC 5965 §3, RFC 6591 §3.1, RFC 9991 §4).
///
/// `spf_dns`: the `SPF-DNS` value (`txt : <domain> : "<record>"`) when SPF failed for an
/// aligned identifier (RFC 9991 §4 requires it then; see [`aligned_spf_failure`]).
pub fn feedback_fields(
    c: &FailureCandidate,
    config: &Config,
    r: &Redaction,
    spf_dns: Option<&str>,
    incidents: u64,
) -> String {
    let o = &config.failure;
    let addr = |a: &str| {
        if o.redact_local_parts {
            redact_addresses(a, r)
        } else {
            a.to_owned()
        }
    };
    let mut f = String::with_capacity(1024);
    field(&mut f, "Feedback-Type", FeedbackType::AuthFailure.as_str());
    field(&mut f, "Version", "1");
    field(
        &mut f,
        "User-Agent",
        &format!("dmarc/{}", env!("CARGO_PKG_VERSION")),
    );
    field(
        &mut f,
        "Auth-Failure",
        AuthFailure::parse(&c.auth_failure).as_str(),
    );
    field(
        &mut f,
        "Authentication-Results",
        &addr(&c.authentication_results),
    );
    field(
        &mut f,
        "Identity-Alignment",
        IdentityAlignment {
            dkim: c.dkim_unaligned,
            spf: c.spf_unaligned,
        }
        .as_str(),
    );
    if let Some(s) = &c.failed_signature {
        field(&mut f, "DKIM-Domain", &s.domain);
        field(&mut f, "DKIM-Identity", &addr(&s.identity));
        if !s.selector.is_empty() {
            field(&mut f, "DKIM-Selector", &s.selector);
        }
        if o.dkim_canonicalized_header
            && let Some(data) = dmarc_proto::dkim::signed_header_data_of(
                c.header.as_bytes(),
                &s.domain,
                &s.selector,
            )
        {
            folded_base64(&mut f, "DKIM-Canonicalized-Header", &data);
        }
    }
    if let Some(v) = spf_dns {
        field(&mut f, "SPF-DNS", v);
    }
    field(
        &mut f,
        "Delivery-Result",
        DeliveryResult::parse(&c.delivery_result).as_str(),
    );
    field(&mut f, "Arrival-Date", &format_rfc5322(c.arrival));
    field(&mut f, "Source-IP", &c.source_ip.to_string());
    field(
        &mut f,
        "Reporting-MTA",
        &format!("dns; {}", config.organization.receiver_domain()),
    );
    field(
        &mut f,
        "Original-Mail-From",
        &if c.mail_from.is_empty() {
            "<>".to_owned()
        } else {
            format!("<{}>", addr(&c.mail_from))
        },
    );
    for rcpt in &c.rcpt_to {
        field(&mut f, "Original-Rcpt-To", &format!("<{}>", addr(rcpt)));
    }
    field(&mut f, "Reported-Domain", &c.reported_domain);
    field(&mut f, "Incidents", &incidents.max(1).to_string());
    f
}

/// True when two candidates are like incidents, which one report may stand for (its
/// `Incidents` counting them): the same policy domain and Author Domain, the same source
/// IP, and the same failure (`Auth-Failure`, `Identity-Alignment`, failed signature,
/// `Delivery-Result`).
pub fn like_incidents(a: &FailureCandidate, b: &FailureCandidate) -> bool {
    a.policy_domain.eq_ignore_ascii_case(&b.policy_domain)
        && a.reported_domain.eq_ignore_ascii_case(&b.reported_domain)
        && a.source_ip == b.source_ip
        && a.auth_failure == b.auth_failure
        && a.dkim_unaligned == b.dkim_unaligned
        && a.spf_unaligned == b.spf_unaligned
        && a.failed_signature == b.failed_signature
        && a.delivery_result == b.delivery_result
}

/// A failure report's stored content: the feedback fields, an empty line, the reported
/// header fields.
/// `incidents` is the number of like failures the report stands for (`Incidents`).
pub fn content(
    c: &FailureCandidate,
    config: &Config,
    r: &Redaction,
    spf_dns: Option<&str>,
    incidents: u64,
) -> Vec<u8> {
    let mut s = feedback_fields(c, config, r, spf_dns, incidents);
    s.push_str("\r\n");
    s.push_str(&reported_header(c, &config.failure, r));
    s.into_bytes()
}

/// The MAIL FROM domain, when SPF did not pass for an identifier aligned with the Author
/// Domain (`aspf=s`: the same domain; relaxed: both under the policy domain, which is the
/// Author Domain or its Organizational Domain): the domain whose SPF record `SPF-DNS`
/// shows.
pub fn aligned_spf_failure(c: &FailureCandidate) -> Option<String> {
    let spf = c.observation.spf.iter().find(|s| s.scope == "mfrom")?;
    if spf.result == "pass" || spf.result == "none" || spf.domain.is_empty() {
        return None;
    }
    let d = spf.domain.trim_end_matches('.').to_ascii_lowercase();
    let author = c.reported_domain.to_ascii_lowercase();
    let pd = c.policy_domain.to_ascii_lowercase();
    let strict = c
        .observation
        .published
        .as_ref()
        .is_some_and(|p| p.aspf == "s");
    let under = |x: &str| x == pd || x.ends_with(&format!(".{pd}"));
    let aligned = d == author || (!strict && under(&d) && under(&author));
    aligned.then_some(d)
}

/// Splits a stored content back into (feedback fields, header fields).
pub fn split_content(content: &[u8]) -> (&[u8], &[u8]) {
    match content.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => (&content[..p + 2], &content[p + 4..]),
        None => (content, b""),
    }
}

/// The text part: what happened, for a person.
pub fn text(c: &FailureCandidate, config: &Config) -> String {
    let org = &config.organization;
    let what = match c.auth_failure.as_str() {
        "dmarc" => "failed DMARC authentication".to_owned(),
        "spf" => "failed SPF".to_owned(),
        other => format!("had a DKIM signature that failed ({other})"),
    };
    format!(
        "This is an authentication failure report (RFC 9991) from {} ({}).\n\n\
         A message claiming to be from {} {what}.\n\
         It was received from {} on {} and the policy of {} (fo={}) asks for a report.\n\
         Verdict: {}\n\
         The message was {}.\n\n\
         The header fields of the message are attached{}; its body is not.\n\n\
         Questions about this report: {}\n",
        org.name,
        org.receiver_domain(),
        c.reported_domain,
        c.source_ip,
        format_rfc5322(c.arrival),
        c.policy_domain,
        if c.fo.is_empty() { "0" } else { &c.fo },
        c.explanation,
        match c.delivery_result.as_str() {
            "delivered" => "delivered",
            "spam" => "delivered to spam",
            "reject" => "rejected",
            _ => "not delivered",
        },
        if config.failure.redact_local_parts {
            ", with the local parts of addresses replaced by tokens"
        } else {
            ""
        },
        org.email,
    )
}

/// The Subject of a failure report message.
pub fn subject(c: &FailureCandidate) -> String {
    format!(
        "DMARC failure report for {} from {}",
        c.reported_domain, c.source_ip
    )
}

/// True when the candidate is about report mail we sent ourselves (our envelope sender or
/// our From address): such a message is not reported (no loops between two receivers).
pub fn is_our_report_mail(c: &FailureCandidate, config: &Config) -> bool {
    let org = &config.organization;
    let ours = [
        org.envelope_sender().to_ascii_lowercase(),
        org.email.to_ascii_lowercase(),
    ];
    if ours.contains(&c.mail_from.to_ascii_lowercase()) {
        return true;
    }
    parse_header_block(c.header.as_bytes())
        .iter()
        .filter(|f| f.is("From"))
        .any(|f| {
            let v = String::from_utf8_lossy(f.value()).to_ascii_lowercase();
            ours.iter().any(|o| v.contains(o.as_str()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_parts_become_stable_tokens() {
        let r = Redaction::with_secret(b"k");
        let s = redact_addresses(
            "From: Alice <alice@example.com>, bob.smith+x@mail.example.org; for <alice@example.com>",
            &r,
        );
        let t = r.token("alice");
        assert!(s.contains(&format!("<{t}@example.com>")), "{s}");
        assert_eq!(s.matches(&t).count(), 2, "the same token twice: {s}");
        assert!(!s.contains("alice@") && !s.contains("bob.smith"), "{s}");
        assert!(
            s.starts_with("From: Alice <"),
            "display names are kept: {s}"
        );
        // Tags before an address are kept; an empty local part stays empty.
        let s = redact_addresses(
            "i=@d.example; smtp.mailfrom=bob@d.example; i=x@d.example",
            &r,
        );
        assert!(s.starts_with("i=@d.example; smtp.mailfrom="), "{s}");
        assert!(
            s.contains(&format!("smtp.mailfrom={}@d.example", r.token("bob"))),
            "{s}"
        );
        assert!(s.ends_with(&format!("i={}@d.example", r.token("x"))), "{s}");
        // VERP-style local parts are redacted whole.
        let s = redact_addresses("bounce-bob=x.example@list.example", &r);
        assert!(!s.contains("bob"), "{s}");
        // Not addresses.
        assert_eq!(
            redact_addresses("a@b, @x.y, q@localhost", &r),
            "a@b, @x.y, q@localhost"
        );
        // Another key, other tokens.
        assert_ne!(Redaction::with_secret(b"other").token("alice"), t);
    }

    #[test]
    fn uris_are_defanged() {
        assert_eq!(
            defang("see http://a.example/x and HTTPS://b.example, httpd"),
            "see hxxp://a.example/x and HxxPS://b.example, httpd"
        );
    }

    #[test]
    fn split_content_finds_the_empty_line() {
        let (a, b) = split_content(b"A: 1\r\nB: 2\r\n\r\nFrom: x\r\n");
        assert_eq!(a, b"A: 1\r\nB: 2\r\n");
        assert_eq!(b, b"From: x\r\n");
    }
}
