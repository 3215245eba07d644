//! The BIMI area (draft-brand-indicators-for-message-identification): the record at
//! `<selector>._bimi.<domain>`, its logo (`l=`, an HTTPS SVG) and evidence (`a=`, a VMC or
//! CMC), and the enforcing DMARC policy BIMI requires.

use dmarc_proto::dmarc::DomainName;
use dmarc_proto::tag_list::{Strictness, TagList};
use dmarc_proto::{DnsError, Lookup};
use serde::Serialize;

use super::dmarc::DmarcReport;
use crate::{Code, Finding};

/// What the BIMI check found.
#[derive(Debug, Clone, Serialize)]
pub struct BimiReport {
    /// The name queried.
    pub name: String,
    /// The record.
    pub record: String,
    /// `l=`: the logo URL.
    pub logo: Option<String>,
    /// `a=`: the evidence document URL.
    pub evidence: Option<String>,
}

/// Checks the BIMI record at `<selector>._bimi.<domain>` against the DMARC result. `None`
/// when there is no record.
pub async fn check<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    selector: &str,
    dmarc: &DmarcReport,
    findings: &mut Vec<Finding>,
) -> Option<BimiReport> {
    let name = format!("{selector}._bimi.{domain}");
    let rrs = match lookup.txt(&name).await {
        Ok(rrs) => rrs,
        Err(DnsError::Temporary(why)) => {
            findings.push(Finding::at(
                Code::BimiSyntax,
                &name,
                format!("the TXT lookup failed ({why})"),
            ));
            return None;
        }
        Err(_) => return None,
    };
    let rr = rrs
        .iter()
        .find(|r| r.len() >= 7 && r[..7].eq_ignore_ascii_case(b"v=BIMI1"))?;
    let record = String::from_utf8_lossy(rr).into_owned();
    let mut report = BimiReport {
        name: name.clone(),
        record: record.clone(),
        logo: None,
        evidence: None,
    };
    match TagList::parse_with(rr, Strictness::SkipEmpty) {
        Err(e) => {
            findings.push(Finding::at(
                Code::BimiSyntax,
                &name,
                format!("the record is not a valid tag-list ({e}); write it as \"v=BIMI1; l=https://.../logo.svg; a=https://.../vmc.pem\""),
            ));
            return Some(report);
        }
        Ok(tags) => {
            for t in tags.tags() {
                let value = t.value_str().map(str::trim).unwrap_or("");
                match t.name {
                    "l" if !value.is_empty() => report.logo = Some(value.to_string()),
                    "a" if !value.is_empty() => report.evidence = Some(value.to_string()),
                    "v" | "l" | "a" | "s" => {}
                    other => findings.push(Finding::at(
                        Code::BimiSyntax,
                        &name,
                        format!("unknown tag {other}=; remove it"),
                    )),
                }
            }
        }
    }
    match &report.logo {
        None => findings.push(Finding::at(
            Code::BimiLogoUrl,
            &name,
            "no l= logo URL: mailbox providers show no logo; set l=https://<host>/logo.svg"
                .to_string(),
        )),
        Some(l) if !l.starts_with("https://") || !l.to_ascii_lowercase().ends_with(".svg") => {
            findings.push(Finding::at(
                Code::BimiLogoUrl,
                &name,
                format!("l={l} must be an https:// URL of an SVG Tiny PS file (.svg)"),
            ));
        }
        Some(_) => {}
    }
    match &report.evidence {
        None => findings.push(Finding::at(
            Code::BimiNoEvidence,
            &name,
            "no a= evidence: Gmail and Apple show the logo only with a Verified Mark Certificate (VMC) or Common Mark Certificate; add a=https://<host>/vmc.pem".to_string(),
        )),
        Some(a) if !a.starts_with("https://") => findings.push(Finding::at(
            Code::BimiEvidenceUrl,
            &name,
            format!("a={a} must be an https:// URL of the certificate (PEM)"),
        )),
        Some(_) => {}
    }
    let enforcing = dmarc.applied_policy.is_some_and(|p| p != "none")
        && dmarc.subdomain_policy.is_some_and(|p| p != "none")
        && dmarc.testing != Some(true);
    if !enforcing {
        let now = match (dmarc.applied_policy, dmarc.subdomain_policy) {
            (Some(p), Some(sp)) => format!(
                "the DMARC policy is p={p}, sp={sp}{}",
                if dmarc.testing == Some(true) {
                    ", t=y"
                } else {
                    ""
                }
            ),
            _ => "there is no DMARC policy".to_string(),
        };
        findings.push(Finding::at(
            Code::BimiDmarcNotEnforcing,
            &name,
            format!("{now}; BIMI requires an enforcing DMARC policy (p=quarantine or reject, sp not none, no testing), so no logo is shown: enforce DMARC first"),
        ));
    }
    Some(report)
}
