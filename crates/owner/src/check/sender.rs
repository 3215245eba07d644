//! The sender setup check: would a message sent through one service (or with a given MAIL
//! FROM domain and DKIM selectors) pass DMARC? SPF aligns when the MAIL FROM domain is
//! authorised by its SPF record and aligns with the From domain under `aspf`; DKIM aligns
//! when a key at the signing domain resolves and that domain aligns under `adkim`
//! (RFC 9989 §4.4, §3.2.10).

use dmarc_proto::dmarc::{DomainName, organizational_domain};
use dmarc_proto::{DnsError, Lookup};
use serde::Serialize;

use super::dkim::{self, DkimKey, SelectorSource};
use super::dmarc::DmarcReport;
use super::spf::{self, SpfNode};
use crate::services::{DkimRecords, MailFrom, Service};
use crate::{Code, Finding};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct SenderSpec {
    /// The service, from the catalogue.
    pub service: Option<Service>,
    /// The MAIL FROM (Return-Path) domain the service uses; for a service with a custom
    /// subdomain, the subdomain set up. Default: from the service's convention.
    pub mail_from: Option<String>,
    /// The DKIM selectors the service signs with. Default: the service's own names.
    pub dkim_selectors: Vec<String>,
    /// The DKIM signing domain (`d=`). Default: the domain, else the MAIL FROM domain.
    pub dkim_domain: Option<String>,
}

/// The outcome of the sender setup check.
#[derive(Debug, Clone, Serialize)]
pub struct SenderReport {
    /// The service's id, when one was named.
    pub service: Option<String>,
    /// Its documentation.
    pub source: Option<String>,
    /// The MAIL FROM domain checked.
    pub mail_from: Option<String>,
    /// Whether it exists in DNS.
    pub mail_from_exists: Option<bool>,
    /// Its MX hosts.
    pub mail_from_mx: Vec<String>,
    /// Its CNAME target, when it is an alias.
    pub mail_from_cname: Option<String>,
    /// Its SPF record.
    pub spf_record: Option<String>,
    /// Whether that SPF record authorises the service (`None` without a service to look
    /// for).
    pub spf_authorizes: Option<bool>,
    /// `aspf` in effect.
    pub aspf: &'static str,
    /// Whether SPF will align.
    pub spf_aligned: bool,
    /// The DKIM signing domain checked.
    pub dkim_domain: Option<String>,
    /// The keys checked.
    pub dkim: Vec<DkimKey>,
    /// `adkim` in effect.
    pub adkim: &'static str,
    /// Whether DKIM will align.
    pub dkim_aligned: bool,
    /// True when at least one of SPF and DKIM aligns: DMARC passes.
    pub passes: bool,
    /// The verdict, in words.
    pub verdict: String,
}

/// Runs the sender setup check for mail with From domain `domain`, appending findings.
pub async fn check<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    dmarc: &DmarcReport,
    spec: &SenderSpec,
    findings: &mut Vec<Finding>,
) -> SenderReport {
    let service = spec.service.as_ref();
    let aspf = dmarc.aspf.unwrap_or("relaxed");
    let adkim = dmarc.adkim.unwrap_or("relaxed");
    let org = match &dmarc.org_domain {
        Some(o) => DomainName::new(o).unwrap_or_else(|_| domain.clone()),
        None => organizational_domain(lookup, domain)
            .await
            .unwrap_or_else(|_| domain.clone()),
    };
    let mut report = SenderReport {
        service: service.map(|s| s.id.clone()),
        source: service.map(|s| s.source.clone()),
        mail_from: None,
        mail_from_exists: None,
        mail_from_mx: Vec::new(),
        mail_from_cname: None,
        spf_record: None,
        spf_authorizes: None,
        aspf,
        spf_aligned: false,
        dkim_domain: None,
        dkim: Vec::new(),
        adkim,
        dkim_aligned: false,
        passes: false,
        verdict: String::new(),
    };
    let mut words: Vec<String> = Vec::new();

    // --- SPF: the MAIL FROM domain.
    let mail_from = match (&spec.mail_from, service.map(|s| s.mail_from)) {
        (Some(m), _) => {
            let m = m.rsplit_once('@').map_or(m.as_str(), |(_, d)| d);
            DomainName::new(m).ok()
        }
        (None, Some(MailFrom::AuthorDomain)) | (None, None) => Some(domain.clone()),
        (None, Some(MailFrom::CustomSubdomain)) => {
            let label = service
                .and_then(|s| s.mail_from_label.clone())
                .unwrap_or_default();
            if label.contains('*') {
                None
            } else {
                DomainName::new(&format!("{label}.{domain}")).ok()
            }
        }
        (None, Some(MailFrom::ServiceDomain)) => None,
    };
    match (&mail_from, service.map(|s| s.mail_from)) {
        (None, Some(MailFrom::ServiceDomain)) => words.push(format!(
            "{} keeps the MAIL FROM on its own domain, so SPF can never align with {domain}",
            service.map_or("The service", |s| s.name.as_str())
        )),
        (None, _) => words.push(format!(
            "the MAIL FROM subdomain is not known: give it with --mail-from (the service names it like {}.{domain})",
            service.and_then(|s| s.mail_from_label.as_deref()).unwrap_or("bounce")
        )),
        (Some(m), _) => {
            report.mail_from = Some(m.to_string());
            spf_leg(lookup, domain, &org, m, aspf, service, &mut report, &mut words, findings).await;
        }
    }

    // --- DKIM.
    let selectors: Vec<String> = if spec.dkim_selectors.is_empty() {
        service
            .map(|s| {
                s.dkim_selectors
                    .iter()
                    .filter(|p| !p.contains('*'))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    } else {
        spec.dkim_selectors.clone()
    };
    if selectors.is_empty() {
        words.push(format!(
            "DKIM cannot be checked without the selector: give it with --dkim-selector{}",
            service.map_or(String::new(), |s| format!(
                " ({} names it when you set up the domain)",
                s.name
            ))
        ));
    } else {
        dkim_leg(
            lookup,
            domain,
            &org,
            &mail_from,
            adkim,
            service,
            spec,
            &selectors,
            &mut report,
            &mut words,
            findings,
        )
        .await;
    }

    report.passes = report.spf_aligned || report.dkim_aligned;
    let subject = service.map_or_else(
        || format!("mail from {domain}"),
        |s| format!("mail from {domain} sent through {}", s.name),
    );
    let verdict = if report.passes {
        format!("DMARC will pass for {subject}: {}.", words.join("; "))
    } else {
        format!("DMARC will fail for {subject}: {}.", words.join("; "))
    };
    let code = match (report.spf_aligned, report.dkim_aligned) {
        (false, false) => Code::SenderNoAlignment,
        (true, false) => Code::SenderSpfOnly,
        _ => Code::SenderAligned,
    };
    let message = match code {
        Code::SenderSpfOnly => format!(
            "{verdict} Only SPF aligns, and forwarding breaks SPF: set up DKIM signing with your domain too."
        ),
        Code::SenderNoAlignment => {
            format!("{verdict} Set up a custom MAIL FROM domain or DKIM signing with your domain.")
        }
        _ => verdict.clone(),
    };
    findings.push(Finding::at(code, domain.to_string(), message));
    report.verdict = verdict;
    report
}

#[allow(clippy::too_many_arguments)]
async fn spf_leg<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    org: &DomainName,
    m: &DomainName,
    aspf: &str,
    service: Option<&Service>,
    report: &mut SenderReport,
    words: &mut Vec<String>,
    findings: &mut Vec<Finding>,
) {
    let name = m.to_string();
    let (txt, mx, cname, a) = futures_util::join!(
        lookup.txt(&name),
        lookup.mx(&name),
        lookup.cname(&name),
        lookup.a(&name)
    );
    let exists = ![&txt.as_ref().err(), &mx.as_ref().err(), &a.as_ref().err()]
        .iter()
        .all(|e| matches!(e, Some(DnsError::NxDomain)))
        || cname.is_ok();
    report.mail_from_exists = Some(exists);
    report.mail_from_cname = cname.ok().and_then(|v| v.into_iter().next());
    report.mail_from_mx = mx.iter().flatten().map(|m| m.exchange.clone()).collect();
    if !exists {
        findings.push(Finding::at(
            Code::SenderMailFromMissing,
            &name,
            format!(
                "the MAIL FROM domain {name} does not exist; create it as the service documents{}",
                service.map_or(String::new(), |s| format!(" ({})", s.source))
            ),
        ));
        words.push(format!(
            "the MAIL FROM domain {name} does not exist, so SPF gives none"
        ));
        return;
    }
    if let Some(s) = service {
        let via_cname = report
            .mail_from_cname
            .as_deref()
            .is_some_and(|t| s.mail_from_cname_matches(t));
        if !s.mail_from_mx.is_empty()
            && !report
                .mail_from_mx
                .iter()
                .any(|h| s.mail_from_mx_matches(h))
            && !via_cname
        {
            findings.push(Finding::at(
                Code::SenderMailFromNoMx,
                &name,
                format!("{name} has no MX to {} ({}); bounces and complaints cannot reach the service, which may refuse to use it: publish it", s.name, s.mail_from_mx.join(" or ")),
            ));
        }
    }
    let mut spf_findings = Vec::new();
    let spf = spf::check(lookup, m, &mut spf_findings).await;
    report.spf_record = spf.record.clone();
    let authorizes = match (service, &spf.tree) {
        (_, None) => Some(false),
        (Some(s), Some(tree)) => Some(
            report
                .mail_from_cname
                .as_deref()
                .is_some_and(|t| s.mail_from_cname_matches(t))
                || tree_includes(tree, s),
        ),
        (None, Some(_)) => None,
    };
    report.spf_authorizes = authorizes;
    let broken = spf_findings
        .iter()
        .any(|f| f.severity == crate::Severity::Error);
    let spf_ok = match authorizes {
        Some(false) => {
            let what = service.and_then(Service::spf_include).map_or_else(
                || "an SPF record".to_string(),
                |i| format!("an SPF record with include:{i}"),
            );
            findings.push(Finding::at(
                Code::SenderSpfNotAuthorizing,
                &name,
                format!(
                    "{name} {}; publish {what}",
                    if spf.record.is_none() {
                        "has no SPF record"
                    } else {
                        "has an SPF record that does not authorise the service"
                    }
                ),
            ));
            words.push(format!("SPF will not pass for {name}"));
            false
        }
        _ if broken => {
            findings.push(Finding::at(
                Code::SenderSpfNotAuthorizing,
                &name,
                format!(
                    "the SPF record of {name} is broken ({}): receivers get permerror",
                    spf_findings
                        .iter()
                        .find(|f| f.severity == crate::Severity::Error)
                        .map_or("", |f| f.message.as_str())
                ),
            ));
            words.push(format!("SPF for {name} ends in an error"));
            false
        }
        _ => true,
    };
    if !spf_ok {
        return;
    }
    let m_org = if m.is_within(org) {
        org.clone()
    } else {
        organizational_domain(lookup, m)
            .await
            .unwrap_or_else(|_| m.clone())
    };
    let strict = aspf == "strict";
    let aligned_relaxed = m_org == *org;
    let aligned = if strict {
        *m == *domain
    } else {
        aligned_relaxed
    };
    report.spf_aligned = aligned;
    if aligned {
        let mode = if strict { "strict" } else { "relaxed" };
        let mut w = format!("SPF will align through {name} under {mode} alignment");
        if !strict && *m != *domain {
            w.push_str("; aspf=s in your record would break it");
        }
        words.push(w);
    } else if strict && aligned_relaxed {
        findings.push(Finding::at(
            Code::SenderSpfNotAligned,
            &name,
            format!("SPF passes for {name}, but your DMARC record has aspf=s, which needs the MAIL FROM domain to be exactly {domain}: remove aspf=s (relaxed alignment accepts {name})"),
        ));
        words.push(format!(
            "SPF passes for {name} but does not align: aspf=s needs exactly {domain}"
        ));
    } else {
        findings.push(Finding::at(
            Code::SenderSpfNotAligned,
            &name,
            format!("SPF passes for {name}, whose Organizational Domain is {m_org}, not {org}: it cannot align; use a MAIL FROM subdomain of {domain}"),
        ));
        words.push(format!(
            "SPF passes for {name} but does not align with {domain}"
        ));
    }
}

/// True when the tree includes (or redirects to) one of the service's SPF domains.
fn tree_includes(node: &SpfNode, service: &Service) -> bool {
    node.terms.iter().any(|t| {
        !t.ignored
            && (t
                .target
                .as_deref()
                .is_some_and(|d| service.spf_include_matches(d))
                && (t.term.contains("include:") || t.term.starts_with("redirect="))
                || t.nested
                    .as_deref()
                    .is_some_and(|n| tree_includes(n, service)))
    })
}

/// A key and what examining it found.
type KeyWithFindings = (DkimKey, Vec<Finding>);

#[allow(clippy::too_many_arguments)]
async fn dkim_leg<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    org: &DomainName,
    mail_from: &Option<DomainName>,
    adkim: &str,
    service: Option<&Service>,
    spec: &SenderSpec,
    selectors: &[String],
    report: &mut SenderReport,
    words: &mut Vec<String>,
    findings: &mut Vec<Finding>,
) {
    let mut candidates: Vec<DomainName> = Vec::new();
    if let Some(d) = spec
        .dkim_domain
        .as_deref()
        .and_then(|d| DomainName::new(d).ok())
    {
        candidates.push(d);
    } else {
        candidates.push(domain.clone());
        if let Some(m) = mail_from
            .as_ref()
            .filter(|m| *m != domain && m.is_within(domain))
        {
            candidates.push(m.clone());
        }
    }
    let mut chosen: Option<(DomainName, Vec<KeyWithFindings>)> = None;
    for d in &candidates {
        let keys = futures_util::future::join_all(
            selectors
                .iter()
                .map(|s| dkim::key(lookup, d, s, SelectorSource::Sender)),
        )
        .await;
        let any = keys.iter().any(|(k, _)| k.found);
        if chosen.is_none() || any {
            chosen = Some((d.clone(), keys));
        }
        if any {
            break;
        }
    }
    let Some((d, keys)) = chosen else { return };
    report.dkim_domain = Some(d.to_string());
    let mut usable = Vec::new();
    for (key, key_findings) in keys {
        let broken = key_findings
            .iter()
            .any(|f| f.severity == crate::Severity::Error)
            || key.revoked
            || !key.found;
        if !key.found {
            findings.push(Finding::at(
                Code::SenderDkimMissing,
                &key.name,
                format!("no key at {}: the service's signatures with s={} will fail; publish the {} the service gives you", key.name, key.selector, service.map_or("key", |s| if s.dkim_records == DkimRecords::Cname { "CNAME" } else { "TXT key record" })),
            ));
        } else if let Some(s) = service.filter(|s| s.dkim_records == DkimRecords::Cname) {
            match &key.cname {
                Some(t) if s.dkim_cname_matches(t) => {}
                Some(t) => findings.push(Finding::at(
                    Code::SenderDkimCnameWrong,
                    &key.name,
                    format!("{} is a CNAME to {t}, not to {} ({}): the service cannot rotate this key; use the CNAME the service gives you", key.name, s.name, s.dkim_cname_targets.join(" or ")),
                )),
                None => findings.push(Finding::at(
                    Code::SenderDkimCnameWrong,
                    &key.name,
                    format!("{} is a TXT record, but {} publishes its keys through CNAMEs ({}): when it rotates the key, signatures will fail; replace it with the CNAME", key.name, s.name, s.dkim_cname_targets.join(" or ")),
                )),
            }
        }
        for f in key_findings
            .into_iter()
            .filter(|f| f.severity == crate::Severity::Error)
        {
            findings.push(f);
        }
        if !broken {
            usable.push(key.selector.clone());
        }
        report.dkim.push(key);
    }
    if usable.is_empty() {
        words.push(format!(
            "DKIM will not pass: no usable key at {} under {d}",
            selectors.join(", ")
        ));
        return;
    }
    let strict = adkim == "strict";
    let aligned_relaxed = d.is_within(org);
    let aligned = if strict {
        d == *domain
    } else {
        aligned_relaxed
    };
    report.dkim_aligned = aligned;
    if aligned {
        let mut w = format!(
            "DKIM will align with d={d} (selector {}) under {} alignment",
            usable.join(", "),
            if strict { "strict" } else { "relaxed" }
        );
        if !strict && d != *domain {
            w.push_str("; adkim=s would break it");
        }
        words.push(w);
    } else {
        findings.push(Finding::at(
            Code::SenderDkimNotAligned,
            d.to_string(),
            if strict && aligned_relaxed {
                format!("DKIM signs with d={d}, but adkim=s needs exactly {domain}: remove adkim=s or sign with d={domain}")
            } else {
                format!("DKIM signs with d={d}, outside {org}: it cannot align; sign with your own domain")
            },
        ));
        words.push(format!(
            "DKIM passes for d={d} but does not align under adkim={}",
            if strict { "s" } else { "r" }
        ));
    }
}
