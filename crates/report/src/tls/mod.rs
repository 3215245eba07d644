//! SMTP TLS reports (RFC 8460): JSON, read leniently.
//!
//! `§` refers to RFC 8460. Tolerated: `null` for any optional field, missing counts (read as
//! 0 with a warning), numbers written as strings, unknown policy and result types (kept as
//! written), unknown members (ignored).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ReportError, SourcePath};
use crate::time::parse_rfc3339;
use crate::words::word_enum;

/// One SMTP TLS report (§4.4).
///
/// The fields of this type and of the types it holds are declared in alphabetical order, so
/// that their derived `Serialize` writes the keys sorted, as `dmarc report parse --json`
/// writes every report kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsReport {
    /// `contact-info` (may be null in practice).
    pub contact_info: Option<String>,
    /// `date-range`.
    pub date_range: TlsDateRange,
    /// `organization-name`.
    pub organization_name: String,
    /// `policies`.
    pub policies: Vec<TlsPolicyResult>,
    /// `report-id`.
    pub report_id: String,
    /// What the parser tolerated.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `date-range`: RFC 3339 date-times as written, and as Unix seconds when they parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsDateRange {
    /// `start-datetime` in seconds since the Unix epoch.
    pub begin: Option<i64>,
    /// `end-datetime` in seconds since the Unix epoch.
    pub end: Option<i64>,
    /// `end-datetime` as written.
    pub end_datetime: String,
    /// `start-datetime` as written.
    pub start_datetime: String,
}

/// One entry of `policies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPolicyResult {
    /// `failure-details`.
    #[serde(default)]
    pub failure_details: Vec<TlsFailureDetails>,
    /// `policy`.
    pub policy: TlsPolicy,
    /// `summary`.
    pub summary: TlsSummary,
}

word_enum! {
    /// `policy-type` (§4.4).
    pub enum TlsPolicyType {
        /// `tlsa`: DANE.
        Tlsa = "tlsa",
        /// `sts`: MTA-STS.
        Sts = "sts",
        /// `no-policy-found`.
        NoPolicyFound = "no-policy-found",
    }
}

word_enum! {
    /// `result-type` (§4.3).
    pub enum TlsResultType {
        /// `starttls-not-supported`.
        StarttlsNotSupported = "starttls-not-supported",
        /// `certificate-host-mismatch`.
        CertificateHostMismatch = "certificate-host-mismatch",
        /// `certificate-expired`.
        CertificateExpired = "certificate-expired",
        /// `certificate-not-trusted`.
        CertificateNotTrusted = "certificate-not-trusted",
        /// `validation-failure`.
        ValidationFailure = "validation-failure",
        /// `tlsa-invalid`.
        TlsaInvalid = "tlsa-invalid",
        /// `dnssec-invalid`.
        DnssecInvalid = "dnssec-invalid",
        /// `dane-required`.
        DaneRequired = "dane-required",
        /// `sts-policy-fetch-error`.
        StsPolicyFetchError = "sts-policy-fetch-error",
        /// `sts-policy-invalid`.
        StsPolicyInvalid = "sts-policy-invalid",
        /// `sts-webpki-invalid`.
        StsWebpkiInvalid = "sts-webpki-invalid",
    }
}

/// `policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPolicy {
    /// `mx-host`.
    #[serde(default)]
    pub mx_host: Vec<String>,
    /// `policy-domain`.
    pub policy_domain: Option<String>,
    /// `policy-string`: the policy's lines.
    #[serde(default)]
    pub policy_string: Vec<String>,
    /// `policy-type`.
    pub policy_type: TlsPolicyType,
}

/// `summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TlsSummary {
    /// `total-failure-session-count`.
    pub total_failure_session_count: u64,
    /// `total-successful-session-count`.
    pub total_successful_session_count: u64,
}

/// One entry of `failure-details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFailureDetails {
    /// `additional-information` (a URI).
    pub additional_information: Option<String>,
    /// `failed-session-count`.
    pub failed_session_count: u64,
    /// `failure-reason-code`.
    pub failure_reason_code: Option<String>,
    /// `receiving-ip`.
    pub receiving_ip: Option<IpAddr>,
    /// `receiving-mx-helo`.
    pub receiving_mx_helo: Option<String>,
    /// `receiving-mx-hostname`.
    pub receiving_mx_hostname: Option<String>,
    /// `result-type`.
    pub result_type: TlsResultType,
    /// `sending-mta-ip`.
    pub sending_mta_ip: Option<IpAddr>,
}

/// Parses an SMTP TLS report from its JSON bytes (not compressed).
pub fn parse_json(json: &[u8], path: &SourcePath) -> Result<TlsReport, ReportError> {
    let err = |detail: String| ReportError::Tls {
        path: path.clone(),
        detail,
    };
    let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
    let value: Value = serde_json::from_slice(json).map_err(|e| err(e.to_string()))?;
    let Value::Object(root) = value else {
        return Err(err("top level is not a JSON object".into()));
    };
    let mut w = Vec::new();
    let organization_name = string(&root, "organization-name").unwrap_or_else(|| {
        w.push("no organization-name".to_string());
        String::new()
    });
    let report_id = string(&root, "report-id").unwrap_or_else(|| {
        w.push("no report-id".to_string());
        String::new()
    });
    let contact_info = string(&root, "contact-info");
    let dr = root.get("date-range").and_then(Value::as_object);
    let Some(dr) = dr else {
        return Err(err("no date-range object".into()));
    };
    let start = string(dr, "start-datetime").unwrap_or_default();
    let end = string(dr, "end-datetime").unwrap_or_default();
    let begin_ts = parse_rfc3339(&start).ok();
    let end_ts = parse_rfc3339(&end).ok();
    if begin_ts.is_none() {
        w.push(format!(
            "start-datetime {start:?} is not an RFC 3339 date-time"
        ));
    }
    if end_ts.is_none() {
        w.push(format!("end-datetime {end:?} is not an RFC 3339 date-time"));
    }
    let Some(Value::Array(list)) = root.get("policies") else {
        return Err(err("no policies array".into()));
    };
    let mut policies = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let n = i + 1;
        let Some(p) = p.as_object() else {
            w.push(format!("policies[{n}] is not an object; skipped"));
            continue;
        };
        let pol = p.get("policy").and_then(Value::as_object);
        let Some(pol) = pol else {
            w.push(format!("policies[{n}] has no policy object; skipped"));
            continue;
        };
        let ptype = string(pol, "policy-type").unwrap_or_default();
        let policy_type = TlsPolicyType::parse(&ptype);
        if !policy_type.is_known() {
            w.push(format!(
                "policies[{n}]: unknown policy-type {ptype:?} kept as written"
            ));
        }
        let policy = TlsPolicy {
            policy_type,
            policy_string: strings(pol, "policy-string"),
            policy_domain: string(pol, "policy-domain"),
            mx_host: strings(pol, "mx-host"),
        };
        let summary = match p.get("summary").and_then(Value::as_object) {
            Some(s) => TlsSummary {
                total_successful_session_count: count(
                    s,
                    "total-successful-session-count",
                    n,
                    &mut w,
                ),
                total_failure_session_count: count(s, "total-failure-session-count", n, &mut w),
            },
            None => {
                w.push(format!("policies[{n}] has no summary"));
                TlsSummary::default()
            }
        };
        let mut failure_details = Vec::new();
        if let Some(Value::Array(fds)) = p.get("failure-details") {
            for fd in fds {
                let Some(fd) = fd.as_object() else {
                    w.push(format!(
                        "policies[{n}]: a failure-details entry is not an object; skipped"
                    ));
                    continue;
                };
                let rt = string(fd, "result-type").unwrap_or_default();
                let result_type = TlsResultType::parse(&rt);
                if !result_type.is_known() {
                    w.push(format!(
                        "policies[{n}]: unknown result-type {rt:?} kept as written"
                    ));
                }
                failure_details.push(TlsFailureDetails {
                    result_type,
                    sending_mta_ip: ip(fd, "sending-mta-ip", n, &mut w),
                    receiving_mx_hostname: string(fd, "receiving-mx-hostname"),
                    receiving_mx_helo: string(fd, "receiving-mx-helo"),
                    receiving_ip: ip(fd, "receiving-ip", n, &mut w),
                    failed_session_count: count(fd, "failed-session-count", n, &mut w),
                    additional_information: string(fd, "additional-information"),
                    failure_reason_code: string(fd, "failure-reason-code"),
                });
            }
        }
        policies.push(TlsPolicyResult {
            policy,
            summary,
            failure_details,
        });
    }
    Ok(TlsReport {
        organization_name,
        date_range: TlsDateRange {
            start_datetime: start,
            end_datetime: end,
            begin: begin_ts,
            end: end_ts,
        },
        contact_info,
        report_id,
        policies,
        warnings: w,
    })
}

fn string(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(obj: &Map<String, Value>, key: &str) -> Vec<String> {
    match obj.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn count(obj: &Map<String, Value>, key: &str, n: usize, w: &mut Vec<String>) -> u64 {
    match obj.get(key) {
        Some(Value::Number(v)) => v.as_u64().unwrap_or_else(|| {
            w.push(format!(
                "policies[{n}]: {key} {v} is not a count; read as 0"
            ));
            0
        }),
        Some(Value::String(s)) => s.trim().parse().unwrap_or_else(|_| {
            w.push(format!(
                "policies[{n}]: {key} {s:?} is not a count; read as 0"
            ));
            0
        }),
        None | Some(Value::Null) => 0,
        Some(v) => {
            w.push(format!(
                "policies[{n}]: {key} {v} is not a count; read as 0"
            ));
            0
        }
    }
}

fn ip(obj: &Map<String, Value>, key: &str, n: usize, w: &mut Vec<String>) -> Option<IpAddr> {
    let s = string(obj, key)?;
    let ip = crate::aggregate::parse::parse_ip(&s);
    if ip.is_none() {
        w.push(format!(
            "policies[{n}]: {key} {s:?} is not an IP address; dropped"
        ));
    }
    ip
}
