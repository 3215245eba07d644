//! The MTA-STS area (RFC 8461): the `_mta-sts` TXT record (§3.1) and the policy file
//! (§3.2), fetched over HTTPS with bounded time and size, or read from a file offline;
//! and whether the policy covers every MX host (§4.1).

use std::net::SocketAddr;
use std::time::Duration;

use dmarc_proto::dmarc::DomainName;
use dmarc_proto::{DnsError, Lookup};
use serde::Serialize;

use super::mx::MxHost;
use crate::{Code, Finding};

/// The largest policy file read (RFC 8461 §3.2 lets senders stop at 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// Where the policy file comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PolicySource {
    /// `https://mta-sts.<domain>/.well-known/mta-sts.txt`, the host's addresses looked up
    /// through the check's resolver. The default.
    #[default]
    Fetch,
    /// This text, as if fetched (to check a policy before publishing it).
    Text(String),
    /// Do not look at the policy file.
    Skip,
}

/// What the MTA-STS check found.
#[derive(Debug, Clone, Serialize)]
pub struct MtaStsReport {
    /// The `_mta-sts` record.
    pub record: Option<String>,
    /// Its `id`.
    pub id: Option<String>,
    /// Where the policy was read from.
    pub policy_url: Option<String>,
    /// The parsed policy, when it was read.
    pub policy: Option<Policy>,
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// `mode`: `enforce`, `testing` or `none`.
    pub mode: String,
    /// `mx` patterns.
    pub mx: Vec<String>,
    /// `max_age`, seconds.
    pub max_age: u64,
}

/// Checks MTA-STS for `domain`; `mx` are its MX hosts (for the coverage check). `None` when
/// no record is published.
pub async fn check<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    mx: &[MxHost],
    source: &PolicySource,
    timeout: Duration,
    findings: &mut Vec<Finding>,
) -> Option<MtaStsReport> {
    let name = format!("_mta-sts.{domain}");
    let rrs = match lookup.txt(&name).await {
        Ok(rrs) => rrs,
        Err(DnsError::Temporary(why)) => {
            findings.push(Finding::at(
                Code::MtaStsRecordSyntax,
                &name,
                format!("the TXT lookup failed ({why})"),
            ));
            return None;
        }
        Err(_) => {
            if matches!(source, PolicySource::Text(_)) {
                findings.push(Finding::at(
                    Code::MtaStsMissing,
                    &name,
                    format!("no MTA-STS record at {name}: senders never fetch the policy; publish \"v=STSv1; id=<date>\""),
                ));
            } else {
                findings.push(Finding::at(
                    Code::MtaStsMissing,
                    &name,
                    "no MTA-STS record: senders may deliver mail to you without TLS; consider MTA-STS (RFC 8461) with TLS-RPT".to_string(),
                ));
            }
            return None;
        }
    };
    let sts: Vec<&Vec<u8>> = rrs
        .iter()
        .filter(|r| r.len() >= 7 && r[..7].eq_ignore_ascii_case(b"v=STSv1"))
        .collect();
    let mut report = MtaStsReport {
        record: None,
        id: None,
        policy_url: None,
        policy: None,
    };
    match sts.as_slice() {
        [] => {
            findings.push(Finding::at(
                Code::MtaStsMissing,
                &name,
                "no TXT record at _mta-sts starts with v=STSv1: senders ignore MTA-STS".to_string(),
            ));
            return None;
        }
        [one] => {
            let text = String::from_utf8_lossy(one).into_owned();
            match parse_record(&text) {
                Ok(id) => report.id = Some(id),
                Err(why) => findings.push(Finding::at(
                    Code::MtaStsRecordSyntax,
                    &name,
                    format!("{why}; senders treat the domain as without MTA-STS (RFC 8461 §3.1): publish \"v=STSv1; id=20240101000000\""),
                )),
            }
            report.record = Some(text);
        }
        many => {
            findings.push(Finding::at(
                Code::MtaStsMultipleRecords,
                &name,
                format!("{} records start with v=STSv1; senders then ignore MTA-STS (RFC 8461 §3.1): keep one", many.len()),
            ));
            return Some(report);
        }
    }
    let url = format!("https://mta-sts.{domain}/.well-known/mta-sts.txt");
    let text = match source {
        PolicySource::Skip => return Some(report),
        PolicySource::Text(t) => {
            report.policy_url = Some("(file)".into());
            Ok(t.clone())
        }
        PolicySource::Fetch => {
            report.policy_url = Some(url.clone());
            fetch_policy(lookup, domain, &url, timeout).await
        }
    };
    let text = match text {
        Ok(t) => t,
        Err(why) => {
            findings.push(Finding::at(
                Code::MtaStsPolicyFetch,
                &url,
                format!("the policy could not be fetched: {why}; senders that cached none deliver without MTA-STS: serve it over HTTPS with a valid certificate for mta-sts.{domain}"),
            ));
            return Some(report);
        }
    };
    let policy = match parse_policy(&text) {
        Ok(p) => p,
        Err(why) => {
            findings.push(Finding::at(
                Code::MtaStsPolicySyntax,
                &url,
                format!("the policy is malformed: {why} (RFC 8461 §3.2); fix the file"),
            ));
            return Some(report);
        }
    };
    match policy.mode.as_str() {
        "testing" => findings.push(Finding::at(
            Code::MtaStsTesting,
            &url,
            "mode: testing: failures are only reported (with TLS-RPT), not enforced; switch to enforce once the reports are clean".to_string(),
        )),
        "none" => findings.push(Finding::at(
            Code::MtaStsModeNone,
            &url,
            "mode: none withdraws the policy; remove the _mta-sts record too if that is meant".to_string(),
        )),
        _ => {}
    }
    if policy.max_age < 86_400 || policy.max_age > 31_557_600 {
        findings.push(Finding::at(
            Code::MtaStsMaxAge,
            &url,
            format!("max_age {} is outside a day to a year; RFC 8461 §3.2 allows at most 31557600 and suggests weeks: use 604800 or more", policy.max_age),
        ));
    }
    if policy.mode != "none" {
        for host in mx.iter().filter(|h| h.exchange != ".") {
            if !policy.mx.iter().any(|p| mx_matches(p, &host.exchange)) {
                findings.push(Finding::at(
                    Code::MtaStsMxNotCovered,
                    &url,
                    format!("MX host {} matches no mx: line of the policy, so senders enforcing it will not deliver there (RFC 8461 §4.1): add \"mx: {}\"", host.exchange, host.exchange),
                ));
            }
        }
    }
    report.policy = Some(policy);
    Some(report)
}

/// The `id` of a `_mta-sts` record (`v=STSv1; id=...`, RFC 8461 §3.1).
fn parse_record(text: &str) -> Result<String, String> {
    let mut parts = text.split(';').map(str::trim).filter(|p| !p.is_empty());
    if parts.next() != Some("v=STSv1") {
        return Err(format!("\"{text}\" must start with v=STSv1"));
    }
    let mut id = None;
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("\"{p}\" is not field=value"))?;
        if k.trim() == "id" {
            let v = v.trim();
            if v.is_empty() || v.len() > 32 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("id={v:?} must be 1 to 32 letters and digits"));
            }
            if id.replace(v.to_string()).is_some() {
                return Err("id appears twice".into());
            }
        }
    }
    id.ok_or_else(|| "the record has no id=".into())
}

/// Parses a policy file (RFC 8461 §3.2).
pub fn parse_policy(text: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("line {} (\"{line}\") is not \"key: value\"", n + 1))?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            "version" => version = Some(value.to_string()),
            "mode" => mode = Some(value.to_string()),
            "max_age" => {
                let v: u64 = value
                    .parse()
                    .ok()
                    .filter(|_| value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| format!("max_age {value:?} is not a number of seconds"))?;
                max_age = Some(v);
            }
            "mx" => mx.push(value.to_ascii_lowercase()),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("version: STSv1 is missing".into());
    }
    let mode = mode.ok_or("mode: is missing")?;
    if !matches!(mode.as_str(), "enforce" | "testing" | "none") {
        return Err(format!("mode: {mode} is not enforce, testing or none"));
    }
    let max_age = max_age.ok_or("max_age: is missing")?;
    if mx.is_empty() && mode != "none" {
        return Err("no mx: line".into());
    }
    Ok(Policy { mode, mx, max_age })
}

/// RFC 8461 §4.1: a pattern matches the host exactly, or `*.` matches exactly one label.
fn mx_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        None => host == pattern,
    }
}

/// Fetches the policy over HTTPS: no redirects (§3.3), bounded time and size, addresses of
/// the `mta-sts` host from the check's resolver.
async fn fetch_policy<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    url: &str,
    timeout: Duration,
) -> Result<String, String> {
    let host = format!("mta-sts.{domain}");
    let (a, aaaa) = futures_util::join!(lookup.a(&host), lookup.aaaa(&host));
    let mut addrs: Vec<SocketAddr> = a
        .iter()
        .flatten()
        .map(|ip| SocketAddr::new((*ip).into(), 443))
        .collect();
    addrs.extend(
        aaaa.iter()
            .flatten()
            .map(|ip| SocketAddr::new((*ip).into(), 443)),
    );
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .resolve_to_addrs(&host, &addrs)
        .user_agent(concat!("dmarc-owner/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))?;
    let mut response = client.get(url).send().await.map_err(|e| error_chain(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "{url} answered HTTP {status} (redirects are not followed, RFC 8461 §3.3)"
        ));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("text/plain") {
        return Err(format!(
            "Content-Type is {content_type:?}, not text/plain (RFC 8461 §3.2)"
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_POLICY_BYTES {
            return Err(format!(
                "the policy is larger than {MAX_POLICY_BYTES} bytes"
            ));
        }
    }
    String::from_utf8(body).map_err(|_| "the policy is not UTF-8 text".to_string())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_files() {
        let p = parse_policy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n").unwrap();
        assert_eq!(p.mx, ["mail.example.com", "*.example.net"]);
        assert_eq!(p.max_age, 604_800);
        assert!(parse_policy("version: STSv1\nmode: enforce\nmax_age: 1\n").is_err());
        assert!(parse_policy("mode: enforce\nmx: a\nmax_age: 1\n").is_err());
        assert!(parse_policy("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n").is_err());
        assert!(parse_policy("garbage").is_err());
    }

    #[test]
    fn mx_patterns_match_one_label() {
        assert!(mx_matches("*.example.net", "mx1.example.net"));
        assert!(!mx_matches("*.example.net", "a.b.example.net"));
        assert!(!mx_matches("*.example.net", "example.net"));
        assert!(mx_matches("mail.example.com", "Mail.Example.com."));
    }

    #[test]
    fn records() {
        assert!(
            parse_record("v=STSv1; id=2024-01-01;")
                .unwrap_err()
                .contains("letters and digits")
        );
        assert_eq!(parse_record("v=STSv1; id=abc123").unwrap(), "abc123");
        assert!(parse_record("v=STSv1").is_err());
    }

    #[tokio::test]
    async fn fetch_failures_say_why() {
        let zone =
            dmarc_dns::ZoneFile::parse("mta-sts.example.com. IN A 127.0.0.1\n", None).unwrap();
        let d = DomainName::new("example.com").unwrap();
        // Nothing listens on port 443 of loopback here (or it is not this host's name).
        let e = fetch_policy(
            &zone,
            &d,
            "https://mta-sts.example.com/.well-known/mta-sts.txt",
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(!e.is_empty());
        let d = DomainName::new("example.org").unwrap();
        let e = fetch_policy(
            &zone,
            &d,
            "https://mta-sts.example.org/x",
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(e.contains("has no address"), "{e}");
    }
}
