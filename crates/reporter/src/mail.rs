//! The report message (RFC 9990 §3 "Email"): RFC 5322 + MIME, the report attached with its
//! media type and file name, the RFC 9990 Subject, DKIM-signed with the project's signer.
//!
//! Everything in the message is derived from the report and the destination (the MIME
//! boundary and the Message-ID too), so the `.eml` a dry run writes is byte for byte what
//! a real run sends, up to the `Date` field and the signature's `t=`.

use base64::Engine;
use dmarc_proto::clock::Clock;
use dmarc_proto::dkim::SigningKey;
use dmarc_proto::dkim::sign::{SignOptions, sign};
use dmarc_store::time::format_rfc5322;

use crate::Error;
use crate::config::{Config, DkimOptions};

/// What one report message carries.
#[derive(Debug, Clone)]
pub struct Letter<'a> {
    /// `Report Domain:` of the Subject.
    pub policy_domain: &'a str,
    /// The report id (`Report-ID:` of the Subject, and the Message-ID's left part).
    pub report_id: &'a str,
    /// The attachment's file name.
    pub filename: &'a str,
    /// Its media type.
    pub media_type: &'a str,
    /// Its bytes.
    pub content: &'a [u8],
    /// The text part: what the report is, for a person.
    pub text: String,
    /// The destination address (To).
    pub to: &'a str,
    /// The top-level media type with its parameters (the boundary is added), e.g.
    /// `multipart/report; report-type=feedback-report` for a failure report. Default
    /// `multipart/mixed`.
    pub content_type: Option<String>,
    /// The Subject. Default: RFC 9990's (`Report Domain: ... Submitter: ... Report-ID:`).
    pub subject: Option<String>,
    /// A further part after the attachment: its media type and bytes (the reported
    /// header fields of a failure report).
    pub extra: Option<(&'a str, &'a [u8])>,
}

/// A DKIM key with its options, loaded once.
#[derive(Debug)]
pub struct Signer {
    key: SigningKey,
    options: SignOptions,
}

impl Signer {
    /// Loads the key of `[dkim]`.
    pub fn load(o: &DkimOptions) -> Result<Signer, Error> {
        let pem = std::fs::read(&o.key)
            .map_err(|e| Error::Config(format!("dkim.key {}: {e}", o.key.display())))?;
        let key = SigningKey::from_pem(&pem)
            .map_err(|e| Error::Config(format!("dkim.key {}: {e}", o.key.display())))?;
        Ok(Signer {
            key,
            options: SignOptions::new(o.domain.clone(), o.selector.clone()),
        })
    }
}

fn short_hash(s: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// A header field value safe to write as is: control characters become spaces.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The display name for From: a quoted string when it is printable ASCII, else an RFC 2047
/// encoded word.
fn display_name(name: &str) -> String {
    let name = clean(name);
    if name.is_ascii() {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(name.as_bytes())
        )
    }
}

/// Composes the message (CRLF line endings), then signs it when a signer is given.
pub fn compose(
    config: &Config,
    letter: &Letter<'_>,
    date: i64,
    signer: Option<&Signer>,
    clock: &dyn Clock,
) -> Result<Vec<u8>, Error> {
    let org = &config.organization;
    let receiver = org.receiver_domain();
    let boundary = format!(
        "=_dmarc_{}",
        short_hash(&format!("{}|{}", letter.report_id, letter.to))
    );
    let message_id = format!(
        "<{}.{}@{receiver}>",
        short_hash(letter.report_id),
        short_hash(letter.to)
    );
    let mut m = String::with_capacity(letter.content.len() * 4 / 3 + 2048);
    m.push_str(&format!(
        "From: {} <{}>\r\n",
        display_name(&org.name),
        org.email
    ));
    m.push_str(&format!("To: <{}>\r\n", clean(letter.to)));
    match &letter.subject {
        Some(s) => m.push_str(&format!("Subject: {}\r\n", clean(s))),
        // RFC 9990 §3: Report Domain, Submitter, Report-ID, folded as the RFC shows.
        None => m.push_str(&format!(
            "Subject: Report Domain: {}\r\n Submitter: {receiver}\r\n Report-ID: <{}>\r\n",
            clean(letter.policy_domain),
            clean(letter.report_id)
        )),
    }
    m.push_str(&format!("Date: {}\r\n", format_rfc5322(date)));
    m.push_str(&format!("Message-ID: {message_id}\r\n"));
    // RFC 3834: automatic mail; auto-responders and our own receiver (no reports about
    // report mail) know it by this.
    m.push_str("Auto-Submitted: auto-generated\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    match &letter.content_type {
        Some(ct) => m.push_str(&format!(
            "Content-Type: {ct};\r\n boundary=\"{boundary}\"\r\n"
        )),
        None => m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n"
        )),
    }
    m.push_str("\r\nThis is a MIME message.\r\n\r\n");
    m.push_str(&format!("--{boundary}\r\n"));
    let text = letter.text.replace("\r\n", "\n").replace('\n', "\r\n");
    let text_cte = if text.is_ascii() { "7bit" } else { "8bit" };
    m.push_str(&format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {text_cte}\r\n\r\n{text}\r\n"
    ));
    m.push_str(&format!("--{boundary}\r\n"));
    part(&mut m, letter.media_type, letter.filename, letter.content);
    if let Some((media_type, content)) = letter.extra {
        m.push_str(&format!("--{boundary}\r\n"));
        part(&mut m, media_type, "", content);
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    let mut bytes = m.into_bytes();
    if let Some(s) = signer {
        let field =
            sign(&bytes, &s.key, &s.options, clock).map_err(|e| Error::Sign(e.to_string()))?;
        let mut signed = field.into_bytes();
        signed.append(&mut bytes);
        bytes = signed;
    }
    Ok(bytes)
}

/// One body part: its header (with a file name, an attachment) and its content, 7bit for
/// text and messages, base64 otherwise.
fn part(m: &mut String, media_type: &str, filename: &str, content: &[u8]) {
    if filename.is_empty() {
        m.push_str(&format!("Content-Type: {media_type}\r\n"));
    } else {
        m.push_str(&format!(
            "Content-Type: {media_type}; name=\"{filename}\"\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n"
        ));
    }
    if media_type.starts_with("message/") || media_type.starts_with("text/") {
        // A failure report's machine-readable part and the original headers: 7bit text.
        m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        let body = String::from_utf8_lossy(content)
            .replace("\r\n", "\n")
            .replace('\n', "\r\n");
        m.push_str(&body);
        if !body.ends_with("\r\n") {
            m.push_str("\r\n");
        }
        // The line end before the next boundary belongs to the boundary (RFC 2046
        // §5.1.1): the content keeps its own.
        m.push_str("\r\n");
    } else {
        m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(content);
        for chunk in b64.as_bytes().chunks(76) {
            m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            m.push_str("\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmarc_proto::clock::FixedClock;

    #[test]
    fn subject_from_and_attachment_are_as_rfc9990_asks() {
        let mut c = Config::new("Example \"Mail\"", "dmarc@mx.example.net");
        c.organization.receiver = Some("mx.example.net".into());
        let letter = Letter {
            policy_domain: "example.com",
            report_id: "1.2.example.com@mx.example.net",
            filename: "mx.example.net!example.com!1!2!abc.xml.gz",
            media_type: "application/gzip",
            content: b"\x1f\x8b not really",
            text: "hello\n".into(),
            to: "rua@example.com",
            content_type: None,
            subject: None,
            extra: None,
        };
        let clock = FixedClock::from_unix_seconds(100);
        let a = compose(&c, &letter, 100, None, &clock).unwrap();
        let b = compose(&c, &letter, 100, None, &clock).unwrap();
        assert_eq!(a, b, "deterministic");
        let s = String::from_utf8(a).unwrap();
        assert!(s.contains(
            "Subject: Report Domain: example.com\r\n Submitter: mx.example.net\r\n Report-ID: <1.2.example.com@mx.example.net>\r\n"
        ), "{s}");
        assert!(s.contains("From: \"Example \\\"Mail\\\"\" <dmarc@mx.example.net>\r\n"));
        assert!(s.contains(
            "Content-Type: application/gzip; name=\"mx.example.net!example.com!1!2!abc.xml.gz\""
        ));
        assert!(s.contains("Date: Thu, 01 Jan 1970 00:01:40 +0000\r\n"));
        assert!(
            !s.contains("\n\n") && !s.replace("\r\n", "").contains('\n'),
            "CRLF only"
        );
    }
}
