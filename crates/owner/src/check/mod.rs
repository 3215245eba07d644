//! The DNS check of one domain: every area, with findings.
//!
//! [`check_domain`] asks the independent questions of every area at once (DMARC, SPF,
//! DKIM, MX, TLS-RPT, MTA-STS), then those that depend on an answer (the MTA-STS policy's
//! MX coverage, BIMI's DMARC requirement, the sender setup check), and returns a
//! [`DomainReport`]: the records found and the [`Finding`]s, sorted by area and severity.

pub mod bimi;
pub mod dkim;
pub mod dmarc;
pub mod mta_sts;
pub mod mx;
pub mod sender;
pub mod spf;
pub mod tls_rpt;

use std::fmt::Write as _;
use std::time::Duration;

use dmarc_proto::Lookup;
use dmarc_proto::dmarc::DomainName;
use serde::Serialize;

pub use dkim::{COMMON_SELECTORS, DkimKey, SelectorSource};
pub use dmarc::DmarcReport;
pub use mta_sts::{MtaStsReport, PolicySource};
pub use mx::MxHost;
pub use sender::{SenderReport, SenderSpec};
pub use spf::SpfReport;

use crate::services::Catalogue;
use crate::{Area, Code, Finding, Severity};

/// What to check besides the records every domain has. Every field states its default.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// DKIM selectors to check. Default none.
    pub selectors: Vec<String>,
    /// DKIM selectors seen in aggregate reports for the domain. Default none.
    pub report_selectors: Vec<String>,
    /// DKIM signing domains seen in aggregate reports (for the strict-alignment check).
    /// Default none.
    pub report_dkim_domains: Vec<String>,
    /// Also try [`COMMON_SELECTORS`]. Default true.
    pub common_selectors: bool,
    /// Where the MTA-STS policy file comes from. Default [`PolicySource::Fetch`].
    pub mta_sts_policy: PolicySource,
    /// Time allowed for the HTTPS fetch of the policy. Default 10 seconds.
    pub http_timeout: Duration,
    /// The BIMI selector. Default `default`.
    pub bimi_selector: String,
    /// The sender setup check to run. Default none.
    pub sender: Option<SenderSpec>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            selectors: Vec::new(),
            report_selectors: Vec::new(),
            report_dkim_domains: Vec::new(),
            common_selectors: true,
            mta_sts_policy: PolicySource::Fetch,
            http_timeout: Duration::from_secs(10),
            bimi_selector: "default".into(),
            sender: None,
        }
    }
}

/// Everything found for one domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainReport {
    /// The domain checked.
    pub domain: String,
    /// DMARC.
    pub dmarc: DmarcReport,
    /// SPF.
    pub spf: SpfReport,
    /// DKIM keys, one per selector that has one (or was asked for).
    pub dkim: Vec<DkimKey>,
    /// MX hosts.
    pub mx: Vec<MxHost>,
    /// MTA-STS, when published.
    pub mta_sts: Option<MtaStsReport>,
    /// TLS-RPT, when published.
    pub tls_rpt: Option<tls_rpt::TlsRptReport>,
    /// BIMI, when published.
    pub bimi: Option<bimi::BimiReport>,
    /// The sender setup check, when asked for.
    pub sender: Option<SenderReport>,
    /// Every finding, by area, then most severe first.
    pub findings: Vec<Finding>,
}

impl DomainReport {
    /// True when a finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// The findings of one area.
    pub fn findings_in(&self, area: Area) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.area == area)
    }
}

/// Checks `domain`.
pub async fn check_domain<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    options: &CheckOptions,
) -> DomainReport {
    let mut selectors: Vec<(String, SelectorSource)> = Vec::new();
    let mut add = |s: &str, src| {
        let s = s.trim().to_ascii_lowercase();
        if !s.is_empty() && !selectors.iter().any(|(x, _)| *x == s) {
            selectors.push((s, src));
        }
    };
    for s in &options.selectors {
        add(s, SelectorSource::Given);
    }
    for s in &options.report_selectors {
        add(s, SelectorSource::Reports);
    }
    if options.common_selectors {
        for s in COMMON_SELECTORS {
            add(s, SelectorSource::Common);
        }
    }

    let (mut f_dmarc, mut f_spf, mut f_dkim, mut f_mx, mut f_tls) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (dmarc, spf, dkim, mx, tls_rpt) = futures_util::join!(
        dmarc::check(lookup, domain, &mut f_dmarc),
        spf::check(lookup, domain, &mut f_spf),
        dkim::check(lookup, domain, &selectors, &mut f_dkim),
        mx::check(lookup, domain, &mut f_mx),
        tls_rpt::check(lookup, domain, &mut f_tls),
    );
    let (mut f_sts, mut f_bimi) = (Vec::new(), Vec::new());
    let (mta_sts, bimi) = futures_util::join!(
        mta_sts::check(
            lookup,
            domain,
            &mx,
            &options.mta_sts_policy,
            options.http_timeout,
            &mut f_sts
        ),
        bimi::check(lookup, domain, &options.bimi_selector, &dmarc, &mut f_bimi),
    );
    if tls_rpt.is_none() && !f_tls.iter().any(|f| f.code == Code::TlsRptMultipleRecords) {
        let why = if mta_sts.is_some() {
            "MTA-STS is published but no TLS-RPT record: you will not hear about TLS failures"
        } else {
            "no TLS-RPT record: senders cannot report TLS problems delivering to you"
        };
        f_tls.push(Finding::at(
            Code::TlsRptMissing,
            format!("_smtp._tls.{domain}"),
            format!("{why}; publish \"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\" (RFC 8460 §3)"),
        ));
    }
    let mut findings = Vec::new();
    findings.append(&mut f_dmarc);
    findings.append(&mut f_spf);
    findings.append(&mut f_dkim);
    findings.append(&mut f_mx);
    findings.append(&mut f_sts);
    findings.append(&mut f_tls);
    findings.append(&mut f_bimi);

    let sender = match &options.sender {
        Some(spec) => Some(sender::check(lookup, domain, &dmarc, spec, &mut findings).await),
        None => None,
    };
    strict_alignment(
        lookup,
        domain,
        &dmarc,
        options,
        sender.as_ref(),
        &mut findings,
    )
    .await;

    findings.sort_by(|a, b| a.area.cmp(&b.area).then(b.severity.cmp(&a.severity)));
    DomainReport {
        domain: domain.to_string(),
        dmarc,
        spf,
        dkim,
        mx,
        mta_sts,
        tls_rpt,
        bimi,
        sender,
        findings,
    }
}

/// Strict alignment that breaks mail already sent: `aspf=s` with a MAIL FROM subdomain
/// that publishes SPF (the names services suggest are tried), `adkim=s` with a subdomain
/// signing domain (seen in reports, or the sender check's).
async fn strict_alignment<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    dmarc: &DmarcReport,
    options: &CheckOptions,
    sender: Option<&SenderReport>,
    findings: &mut Vec<Finding>,
) {
    let Some(location) = dmarc.location.as_deref() else {
        return;
    };
    if dmarc.aspf == Some("strict") {
        let mut labels: Vec<String> = Catalogue::builtin()
            .services()
            .iter()
            .filter_map(|s| s.mail_from_label.clone())
            .filter(|l| !l.contains('*'))
            .collect();
        for l in ["bounce", "bounces", "return", "email", "mail"] {
            if !labels.iter().any(|x| x == l) {
                labels.push(l.to_string());
            }
        }
        let mut names: Vec<String> = labels.iter().map(|l| format!("{l}.{domain}")).collect();
        if let Some(m) = sender.and_then(|s| s.mail_from.clone())
            && m != domain.as_str()
            && !names.contains(&m)
        {
            names.insert(0, m);
        }
        let answers = futures_util::future::join_all(names.iter().map(|n| lookup.txt(n))).await;
        let used: Vec<&String> = names
            .iter()
            .zip(answers)
            .filter(|(_, a)| {
                a.as_ref()
                    .is_ok_and(|rrs| rrs.iter().any(|r| dmarc_proto::spf::is_spf_record(r)))
            })
            .map(|(n, _)| n)
            .collect();
        if !used.is_empty() {
            findings.push(Finding::at(
                Code::DmarcStrictSpfBreaks,
                location,
                format!("aspf=s needs the MAIL FROM domain to be exactly {domain}, but {} publishes SPF for use as a MAIL FROM subdomain: mail sent with it fails SPF alignment; remove aspf=s", used.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
            ));
        }
    }
    if dmarc.adkim == Some("strict") {
        let mut subs: Vec<String> = options
            .report_dkim_domains
            .iter()
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
            .filter(|d| d.ends_with(&format!(".{domain}")))
            .collect();
        if let Some(d) = sender.and_then(|s| s.dkim_domain.clone())
            && d != domain.as_str()
            && d.ends_with(&format!(".{domain}"))
        {
            subs.push(d);
        }
        subs.sort();
        subs.dedup();
        if !subs.is_empty() {
            findings.push(Finding::at(
                Code::DmarcStrictDkimBreaks,
                location,
                format!("adkim=s needs d= to be exactly {domain}, but mail is signed with d={}: those signatures do not align; remove adkim=s", subs.join(", d=")),
            ));
        }
    }
}

impl DomainReport {
    /// The report as text for people: each area's record, then its findings.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.domain);
        for area in Area::ALL {
            let mut body = String::new();
            self.area_text(area, &mut body);
            let fs: Vec<&Finding> = self.findings_in(area).collect();
            if body.is_empty() && fs.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {}", area.title());
            out.push_str(&body);
            for f in fs {
                let _ = writeln!(
                    out,
                    "    {:<7} {}: {}",
                    f.severity.as_str(),
                    f.code,
                    f.message
                );
            }
        }
        let (e, w) = (
            self.findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count(),
            self.findings
                .iter()
                .filter(|f| f.severity == Severity::Warning)
                .count(),
        );
        let _ = writeln!(out, "  {e} error(s), {w} warning(s)");
        out
    }

    fn area_text(&self, area: Area, out: &mut String) {
        match area {
            Area::Dmarc => {
                let d = &self.dmarc;
                if let (Some(loc), Some(rec)) = (&d.location, &d.record) {
                    let _ = writeln!(out, "    {loc}: \"{rec}\"");
                    let tags: Vec<String> = d
                        .tags
                        .iter()
                        .map(|t| format!("{}={} ({})", t.tag, t.value, t.source))
                        .collect();
                    let _ = writeln!(out, "    effective: {}", tags.join(", "));
                    for (tag, list) in [("rua", &d.rua), ("ruf", &d.ruf)] {
                        for r in list {
                            let _ = writeln!(
                                out,
                                "    {tag} {}: {}{}",
                                r.uri,
                                r.authorization,
                                match r.accepts_mail {
                                    Some(false) => ", domain accepts no mail",
                                    _ => "",
                                }
                            );
                        }
                    }
                }
                let _ = writeln!(
                    out,
                    "    RFC 9989 tree walk: {}",
                    d.discovery.rfc9989.policy_domain.as_deref().map_or_else(
                        || d.discovery.rfc9989.reason.clone(),
                        |p| format!("policy domain {p}")
                    )
                );
                let _ = writeln!(
                    out,
                    "    RFC 7489: {}",
                    d.discovery.rfc7489.policy_domain.as_deref().map_or_else(
                        || d.discovery.rfc7489.reason.clone(),
                        |p| format!("policy domain {p}")
                    )
                );
            }
            Area::Spf => {
                if let Some(rec) = &self.spf.record {
                    let _ = writeln!(out, "    {}: \"{rec}\"", self.domain);
                    let _ = writeln!(
                        out,
                        "    {} DNS lookups (limit 10), {} void lookups (limit 2)",
                        self.spf.dns_lookups, self.spf.void_lookups
                    );
                    if let Some(tree) = &self.spf.tree {
                        let mut t = String::new();
                        tree.to_text(3, &mut t);
                        out.push_str(&t);
                    }
                    if let Some(v) = &self.spf.receiver_view {
                        let _ =
                            writeln!(out, "    a host not listed gets {}: {}", v.result, v.reason);
                    }
                }
            }
            Area::Dkim => {
                for k in &self.dkim {
                    let what = if !k.found {
                        "no key".to_string()
                    } else if k.revoked {
                        "revoked".to_string()
                    } else {
                        match (k.key_type, k.key_bits) {
                            (Some(t), Some(b)) => format!("{t} {b} bits"),
                            (Some(t), None) => t.to_string(),
                            _ => "unusable".to_string(),
                        }
                    };
                    let cname = k
                        .cname
                        .as_deref()
                        .map_or(String::new(), |c| format!(" (CNAME to {c})"));
                    let _ = writeln!(out, "    {}: {what}{cname}", k.name);
                }
            }
            Area::Mx => {
                for m in &self.mx {
                    let _ = writeln!(
                        out,
                        "    {} {} {}",
                        m.preference,
                        m.exchange,
                        m.addresses.join(", ")
                    );
                }
            }
            Area::MtaSts => {
                if let Some(s) = &self.mta_sts {
                    if let Some(r) = &s.record {
                        let _ = writeln!(out, "    _mta-sts.{}: \"{r}\"", self.domain);
                    }
                    if let Some(p) = &s.policy {
                        let _ = writeln!(
                            out,
                            "    policy: mode {}, max_age {}, mx {}",
                            p.mode,
                            p.max_age,
                            p.mx.join(" ")
                        );
                    }
                }
            }
            Area::TlsRpt => {
                if let Some(t) = &self.tls_rpt {
                    let _ = writeln!(out, "    _smtp._tls.{}: \"{}\"", self.domain, t.record);
                }
            }
            Area::Bimi => {
                if let Some(b) = &self.bimi {
                    let _ = writeln!(out, "    {}: \"{}\"", b.name, b.record);
                }
            }
            Area::Sender => {
                if let Some(s) = &self.sender {
                    let _ = writeln!(out, "    {}", s.verdict);
                    if let Some(m) = &s.mail_from {
                        let _ = writeln!(
                            out,
                            "    MAIL FROM {m}: SPF {}, aligned under aspf={}: {}",
                            s.spf_record
                                .as_deref()
                                .map_or("none".to_string(), |r| format!("\"{r}\"")),
                            s.aspf,
                            if s.spf_aligned { "yes" } else { "no" }
                        );
                    }
                    for k in &s.dkim {
                        let _ = writeln!(
                            out,
                            "    DKIM {}: {}",
                            k.name,
                            if k.found {
                                k.cname
                                    .as_deref()
                                    .map_or("key found".to_string(), |c| format!("CNAME to {c}"))
                            } else {
                                "no key".to_string()
                            }
                        );
                    }
                }
            }
        }
    }
}
