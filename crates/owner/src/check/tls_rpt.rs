//! The TLS-RPT area (RFC 8460 §3): the `_smtp._tls` record naming where SMTP TLS reports go.

use dmarc_proto::dmarc::DomainName;
use dmarc_proto::dmarc::record::parse_report_uri;
use dmarc_proto::{DnsError, Lookup};
use serde::Serialize;

use crate::{Code, Finding};

/// What the TLS-RPT check found.
#[derive(Debug, Clone, Serialize)]
pub struct TlsRptReport {
    /// The record.
    pub record: String,
    /// Its `rua` destinations (`mailto:` or `https:`).
    pub rua: Vec<String>,
}

/// Checks `_smtp._tls.<domain>`. `None` when there is no record (the caller says what
/// that means, which depends on MTA-STS).
pub async fn check<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    findings: &mut Vec<Finding>,
) -> Option<TlsRptReport> {
    let name = format!("_smtp._tls.{domain}");
    let rrs = match lookup.txt(&name).await {
        Ok(rrs) => rrs,
        Err(DnsError::Temporary(why)) => {
            findings.push(Finding::at(
                Code::TlsRptSyntax,
                &name,
                format!("the TXT lookup failed ({why})"),
            ));
            return None;
        }
        Err(_) => Vec::new(),
    };
    let records: Vec<&Vec<u8>> = rrs
        .iter()
        .filter(|r| r.len() >= 10 && r[..10].eq_ignore_ascii_case(b"v=TLSRPTv1"))
        .collect();
    let record = match records.as_slice() {
        [] => return None,
        [one] => String::from_utf8_lossy(one).into_owned(),
        many => {
            findings.push(Finding::at(
                Code::TlsRptMultipleRecords,
                &name,
                format!("{} records start with v=TLSRPTv1; senders then send no reports (RFC 8460 §3): keep one", many.len()),
            ));
            return None;
        }
    };
    let mut rua = Vec::new();
    let mut problems = Vec::new();
    let mut fields = record.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next() != Some("v=TLSRPTv1") {
        problems.push("the record must start with exactly v=TLSRPTv1".to_string());
    }
    for field in fields {
        let Some((k, v)) = field.split_once('=') else {
            problems.push(format!("\"{field}\" is not field=value"));
            continue;
        };
        if k.trim() == "rua" {
            for uri in v.split(',').map(str::trim) {
                match parse_report_uri(uri) {
                    Ok(u) if u.scheme == "mailto" || u.scheme == "https" => rua.push(u.uri),
                    Ok(u) => problems.push(format!(
                        "{} is neither mailto: nor https: (RFC 8460 §3)",
                        u.uri
                    )),
                    Err(why) => problems.push(format!("{uri:?} is not a URI ({why})")),
                }
            }
        }
    }
    if rua.is_empty() {
        problems.push("no usable rua= destination".into());
    }
    for p in problems {
        findings.push(Finding::at(
            Code::TlsRptSyntax,
            &name,
            format!("{p}; fix the record (\"v=TLSRPTv1; rua=mailto:...\")"),
        ));
    }
    Some(TlsRptReport { record, rua })
}
