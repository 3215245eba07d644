//! The DMARC area: the policy a receiver finds for the domain (RFC 9989 §4.10 tree walk,
//! and RFC 7489 §6.6.3 for comparison), the record tag by tag, and its problems.

use dmarc_proto::dmarc::record::{RecordSet, select_record, starts_with_version};
use dmarc_proto::dmarc::{
    DiscoveredPolicy, DomainName, ExternalCheck, Psl, PslSections, Record, ReportKind, ReportUri,
    Severity as DiagSeverity, Spec, discover_policy, organizational_domain,
    verify_external_destinations,
};
use dmarc_proto::{DnsError, Lookup};
use serde::Serialize;

use crate::{Code, Finding};

/// What the DMARC check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DmarcReport {
    /// The record that applies to the domain, as published (`None` when none does).
    pub record: Option<String>,
    /// Where it was found (`_dmarc.<policy domain>`).
    pub location: Option<String>,
    /// The DMARC Policy Domain (§3.2.5).
    pub policy_domain: Option<String>,
    /// The Organizational Domain (§4.10.2), when it was determined.
    pub org_domain: Option<String>,
    /// `p`: the policy for the domain itself (effective value).
    pub policy: Option<&'static str>,
    /// The policy for existing subdomains: `sp`, else `p`.
    pub subdomain_policy: Option<&'static str>,
    /// The policy for non-existent subdomains: `np`, else `sp`, else `p`.
    pub nonexistent_policy: Option<&'static str>,
    /// The policy that applies to mail from this very domain: `p` when the record is its
    /// own, else the subdomain policy.
    pub applied_policy: Option<&'static str>,
    /// DKIM alignment: `relaxed` (the default) or `strict`.
    pub adkim: Option<&'static str>,
    /// SPF alignment: `relaxed` (the default) or `strict`.
    pub aspf: Option<&'static str>,
    /// `t=y`: testing.
    pub testing: Option<bool>,
    /// Aggregate report destinations, each checked.
    pub rua: Vec<Destination>,
    /// Failure report destinations, each checked.
    pub ruf: Vec<Destination>,
    /// Every tag with its effective value and where the value comes from.
    pub tags: Vec<TagValue>,
    /// How receivers find the record.
    pub discovery: Discovery,
}

/// One tag's effective value.
#[derive(Debug, Clone, Serialize)]
pub struct TagValue {
    /// The tag name.
    pub tag: &'static str,
    /// The effective value.
    pub value: String,
    /// `published`, `default` or `inherited` (from `p` or `sp`).
    pub source: &'static str,
    /// What it means, for a person.
    pub meaning: String,
}

/// A report destination and what checking it found.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    /// The URI as published.
    pub uri: String,
    /// The mail domain, for `mailto:`.
    pub domain: Option<String>,
    /// True when the destination is outside the Policy Domain's Organizational Domain.
    pub external: bool,
    /// `same-organization`, `authorized`, `not-authorized`, `override-elsewhere`,
    /// `no-domain`, `name-too-long` or `temperror` (RFC 9990 §4).
    pub authorization: &'static str,
    /// Whether the mail domain accepts mail (MX, or an address for the implicit MX).
    pub accepts_mail: Option<bool>,
}

/// Discovery by both specifications.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Discovery {
    /// RFC 9989: the DNS tree walk.
    pub rfc9989: DiscoveryResult,
    /// RFC 7489: the Public Suffix List.
    pub rfc7489: DiscoveryResult,
}

/// The outcome of one discovery.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscoveryResult {
    /// The DMARC Policy Domain found, if any.
    pub policy_domain: Option<String>,
    /// The names queried in order and what each held (`record`, `none`, `multiple`,
    /// `unusable`); empty when no walk was needed.
    pub queried: Vec<(String, &'static str)>,
    /// Why, for a person.
    pub reason: String,
}

/// Checks the DMARC setup of `domain`, appending findings.
pub async fn check<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    findings: &mut Vec<Finding>,
) -> DmarcReport {
    let psl = Psl::builtin();
    let sections = PslSections::default();
    let own_name = domain.dmarc_name();
    let (own_txt, rfc9989, rfc7489) = futures_util::join!(
        lookup.txt(&own_name),
        discover_policy(lookup, domain, Spec::Rfc9989, psl, sections),
        discover_policy(lookup, domain, Spec::Rfc7489, psl, sections),
    );
    let mut report = DmarcReport::default();

    // What is at the domain's own _dmarc name, whatever discovery made of it.
    let own_rrs = match &own_txt {
        Ok(rrs) => rrs.clone(),
        Err(DnsError::Temporary(why)) => {
            findings.push(Finding::at(
                Code::DmarcDnsError,
                &own_name,
                format!("the TXT lookup failed ({why}); receivers will retry or treat the domain as having no policy, so check the name servers"),
            ));
            Vec::new()
        }
        Err(_) => Vec::new(),
    };
    for rr in &own_rrs {
        let text = String::from_utf8_lossy(rr);
        if !starts_with_version(rr)
            && text
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("v=dmarc")
        {
            findings.push(Finding::at(
                Code::DmarcVersion,
                &own_name,
                format!("\"{text}\" is not a DMARC record to receivers: it must start with exactly v=DMARC1 (upper-case, §4.7); rewrite the version tag"),
            ));
        }
    }
    if let RecordSet::Multiple(n) = select_record(&own_rrs, Spec::Rfc9989) {
        findings.push(Finding::at(
            Code::DmarcMultipleRecords,
            &own_name,
            format!("{n} TXT records start with v=DMARC1; receivers discard them all and apply no policy (§4.10 step 2); keep one"),
        ));
    }

    match &rfc9989 {
        Ok(found) => report.discovery.rfc9989 = discovery_result(found),
        Err(e) => {
            report.discovery.rfc9989.reason = format!("temporary DNS failure: {e}");
            if !matches!(own_txt, Err(DnsError::Temporary(_))) {
                findings.push(Finding::at(
                    Code::DmarcDnsError,
                    &own_name,
                    format!("the tree walk failed ({e}); receivers will retry later"),
                ));
            }
        }
    }
    if let Ok(found) = &rfc7489 {
        report.discovery.rfc7489 = discovery_result(found);
    }

    let Ok(DiscoveredPolicy::Found {
        policy_domain,
        record,
        org_domain,
        ..
    }) = rfc9989
    else {
        if let Ok(DiscoveredPolicy::NoPolicy { reason, org_domain }) = &rfc9989 {
            report.org_domain = org_domain.as_ref().map(ToString::to_string);
            unusable_record_findings(&own_rrs, &own_name, findings);
            if !findings.iter().any(|f| {
                matches!(
                    f.code,
                    Code::DmarcMultipleRecords | Code::DmarcNoUsablePolicy
                )
            }) {
                findings.push(Finding::at(
                    Code::DmarcMissing,
                    &own_name,
                    format!("{reason}; publish a record such as \"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}\" at {own_name} (dmarc record dmarc builds one)"),
                ));
            }
            wrong_name_findings(lookup, domain, findings).await;
        }
        return report;
    };

    let location = policy_domain.dmarc_name();
    let published = published_text(lookup, &policy_domain, &own_rrs, domain).await;
    let rec = &record.record;
    let own = policy_domain == *domain;
    report.record = published;
    report.location = Some(location.clone());
    report.policy_domain = Some(policy_domain.to_string());
    let org = match org_domain {
        Some(o) => o,
        None => organizational_domain(lookup, &policy_domain)
            .await
            .unwrap_or_else(|_| policy_domain.clone()),
    };
    report.org_domain = Some(org.to_string());
    report.policy = Some(rec.p.as_str());
    report.subdomain_policy = Some(rec.subdomain_policy().as_str());
    report.nonexistent_policy = Some(rec.nonexistent_policy().as_str());
    report.applied_policy = Some(if own { rec.p } else { rec.subdomain_policy() }.as_str());
    report.adkim = Some(rec.adkim.as_str());
    report.aspf = Some(rec.aspf.as_str());
    report.testing = Some(rec.testing);
    report.tags = tag_values(rec, report.record.as_deref().unwrap_or(""));

    // What the parser noticed.
    for d in &record.diagnostics {
        let tag = d.tag.as_deref().unwrap_or("");
        let ignored = record.ignored_tags.iter().any(|t| t == tag);
        if ignored && matches!(tag, "pct" | "rf" | "ri") {
            let extra = match (tag, rec.pct) {
                ("pct", Some(p)) if p < 100 => format!(
                    "; RFC 7489 receivers still apply the policy to only {p}% of failing mail, RFC 9989 receivers to all of it"
                ),
                _ => String::new(),
            };
            findings.push(Finding::at(
                Code::DmarcHistoricTag,
                &location,
                format!("{tag}= was removed by RFC 9989 (Appendix A.6){extra}; remove it"),
            ));
        } else if ignored {
            findings.push(Finding::at(
                Code::DmarcUnknownTag,
                &location,
                format!("{tag}= is not a DMARC tag and is ignored (§4.7); check its spelling or remove it"),
            ));
        } else if tag == "fo" && d.severity == DiagSeverity::Info {
            findings.push(Finding::at(
                Code::DmarcFoWithoutRuf,
                &location,
                "fo= has no effect without ruf=; remove it or add a ruf destination".to_string(),
            ));
        } else if d.severity == DiagSeverity::Error {
            findings.push(Finding::at(
                Code::DmarcSyntax,
                &location,
                format!(
                    "{}; receivers ignore that part and use the default (§4.8): fix it",
                    d.message
                ),
            ));
        } else if d.severity == DiagSeverity::Warning {
            findings.push(Finding::at(
                Code::DmarcSyntaxWarning,
                &location,
                format!("{}; receivers tolerate it, but fix it", d.message),
            ));
        }
    }

    // The policy itself.
    let applied = if own { rec.p } else { rec.subdomain_policy() };
    if applied == dmarc_proto::dmarc::Policy::None {
        findings.push(Finding::at(
            Code::DmarcPolicyNone,
            &location,
            if rec.fell_back_to_none {
                "the record acts as p=none (no valid p, §4.10.1): receivers only monitor; publish p=quarantine or p=reject once the reports show your mail aligns".to_string()
            } else {
                "p=none asks receivers only to monitor: spoofed mail is delivered; move to p=quarantine, then p=reject, once the reports show your own mail passes".to_string()
            },
        ));
    }
    if rec.p != dmarc_proto::dmarc::Policy::None {
        for (tag, value) in [("sp", rec.sp), ("np", rec.np)] {
            if let Some(v) = value.filter(|v| *v < rec.p) {
                findings.push(Finding::at(
                    Code::DmarcSubdomainWeaker,
                    &location,
                    format!("{tag}={v} is weaker than p={}: spoofed mail from {} subdomains gets {v}; raise {tag} or remove it to inherit p", rec.p, if tag == "np" { "non-existent" } else { "existing" }),
                ));
            }
        }
    }
    if rec.testing {
        findings.push(Finding::at(
            Code::DmarcTesting,
            &location,
            format!(
                "t=y: receivers apply {} instead of {} (§4.7); remove t=y when testing is over",
                applied.one_step_down(),
                applied
            ),
        ));
    }

    // Report destinations.
    if rec.rua.is_empty() {
        findings.push(Finding::at(
            Code::DmarcNoRua,
            &location,
            format!("no rua=: you get no aggregate reports and cannot see who sends as {domain}; add rua=mailto:dmarc-reports@{}", org),
        ));
    }
    for (tag, uris, kind, code) in [
        (
            "rua",
            &rec.rua,
            ReportKind::Aggregate,
            Code::DmarcRuaNotAuthorized,
        ),
        (
            "ruf",
            &rec.ruf,
            ReportKind::Failure,
            Code::DmarcRufNotAuthorized,
        ),
    ] {
        if uris.len() > 2 {
            findings.push(Finding::at(
                Code::DmarcTooManyUris,
                &location,
                format!("{tag} has {} URIs; receivers need only send to two (RFC 7489 §6.2) and may ignore the rest: keep at most two", uris.len()),
            ));
        }
        let checked = verify_external_destinations(lookup, &policy_domain, &org, uris, kind).await;
        let mut out = Vec::new();
        for (uri, check) in checked {
            out.push(
                destination(
                    lookup,
                    &uri,
                    &check,
                    tag,
                    code,
                    &policy_domain,
                    &location,
                    findings,
                )
                .await,
            );
        }
        if tag == "rua" {
            report.rua = out;
        } else {
            report.ruf = out;
        }
    }

    // RFC 7489 receivers.
    if let Ok(DiscoveredPolicy::Found {
        policy_domain: old,
        record: old_rec,
        ..
    }) = &rfc7489
    {
        if *old != policy_domain || old_rec.record.p != rec.p || old_rec.record.sp != rec.sp {
            findings.push(Finding::at(
                Code::DmarcDiscoveryDiffers,
                &location,
                format!("receivers still on RFC 7489 use the record at {} (p={}) instead of {} (p={}); publish a record at {} so both agree", old.dmarc_name(), old_rec.record.p, location, rec.p, domain.dmarc_name()),
            ));
        }
    } else if matches!(rfc7489, Ok(DiscoveredPolicy::NoPolicy { .. })) {
        findings.push(Finding::at(
            Code::DmarcDiscoveryDiffers,
            &location,
            format!("receivers still on RFC 7489 find no policy for {domain} (they look only at the domain and its registrable domain); publish a record at {}", domain.dmarc_name()),
        ));
    }
    report
}

/// Findings for a record at the domain's own name that gave no usable policy.
fn unusable_record_findings(rrs: &[Vec<u8>], name: &str, findings: &mut Vec<Finding>) {
    if let RecordSet::Unusable(e) = select_record(rrs, Spec::Rfc9989) {
        findings.push(Finding::at(
            Code::DmarcNoUsablePolicy,
            name,
            format!("{e}; receivers apply no DMARC policy: publish a valid p= (and a rua=)"),
        ));
    }
}

/// A DMARC record at the domain itself or at `dmarc.<domain>` (the underscore forgotten).
async fn wrong_name_findings<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    findings: &mut Vec<Finding>,
) {
    let typo = format!("dmarc.{domain}");
    let (apex, typo_txt) = futures_util::join!(lookup.txt(domain.as_str()), lookup.txt(&typo));
    for (name, answer) in [(domain.to_string(), apex), (typo, typo_txt)] {
        if let Ok(rrs) = answer
            && rrs.iter().any(|rr| starts_with_version(rr))
        {
            findings.push(Finding::at(
                Code::DmarcWrongName,
                &name,
                format!("a DMARC record is published at {name}, where receivers never look; move it to {}", domain.dmarc_name()),
            ));
        }
    }
}

/// The text of the record that applies, as published.
async fn published_text<L: Lookup>(
    lookup: &L,
    policy_domain: &DomainName,
    own_rrs: &[Vec<u8>],
    domain: &DomainName,
) -> Option<String> {
    let rrs = if policy_domain == domain {
        own_rrs.to_vec()
    } else {
        lookup
            .txt(&policy_domain.dmarc_name())
            .await
            .unwrap_or_default()
    };
    rrs.iter()
        .find(|rr| starts_with_version(rr))
        .map(|rr| String::from_utf8_lossy(rr).into_owned())
}

fn discovery_result(found: &DiscoveredPolicy) -> DiscoveryResult {
    match found {
        DiscoveredPolicy::Found {
            policy_domain,
            walk,
            ..
        } => DiscoveryResult {
            policy_domain: Some(policy_domain.to_string()),
            queried: walk
                .as_ref()
                .map(|w| {
                    w.steps
                        .iter()
                        .map(|s| (s.domain.dmarc_name(), set_word(&s.found)))
                        .collect()
                })
                .unwrap_or_default(),
            reason: format!("the record at {}", policy_domain.dmarc_name()),
        },
        DiscoveredPolicy::NoPolicy { reason, .. } => DiscoveryResult {
            policy_domain: None,
            queried: Vec::new(),
            reason: reason.clone(),
        },
    }
}

fn set_word(set: &RecordSet) -> &'static str {
    match set {
        RecordSet::NoRecord => "none",
        RecordSet::Multiple(_) => "multiple",
        RecordSet::Unusable(_) => "unusable",
        RecordSet::Found(_) => "record",
    }
}

#[allow(clippy::too_many_arguments)]
async fn destination<L: Lookup>(
    lookup: &L,
    uri: &ReportUri,
    check: &ExternalCheck,
    tag: &str,
    code: Code,
    policy_domain: &DomainName,
    location: &str,
    findings: &mut Vec<Finding>,
) -> Destination {
    let domain = uri.mailto_domain();
    if uri.scheme != "mailto" {
        findings.push(Finding::at(
            Code::DmarcUriScheme,
            location,
            format!("{tag} destination {} is not a mailto: URI; most receivers send reports only by mail: use mailto:", uri.uri),
        ));
    }
    let (external, authorization) = match check {
        ExternalCheck::SameOrganization => (false, "same-organization"),
        ExternalCheck::Authorized { .. } => (true, "authorized"),
        ExternalCheck::NotAuthorized => (true, "not-authorized"),
        ExternalCheck::OverrideElsewhere(_) => (true, "override-elsewhere"),
        ExternalCheck::NameTooLong => (true, "name-too-long"),
        ExternalCheck::NoDomain => (false, "no-domain"),
        ExternalCheck::TempError(_) => (true, "temperror"),
    };
    if let Some(d) = &domain {
        match check {
            ExternalCheck::NotAuthorized => findings.push(Finding::at(
                code,
                location,
                format!("{tag} sends reports to {d}, outside {policy_domain}, but {d} has not authorised it: receivers will not send them (RFC 9990 §4); ask {d} to publish \"v=DMARC1\" at {policy_domain}._report._dmarc.{d}"),
            )),
            ExternalCheck::OverrideElsewhere(to) => findings.push(Finding::at(
                code,
                location,
                format!("the authorisation record at {policy_domain}._report._dmarc.{d} names {to}, on another host, so receivers send to neither (RFC 9990 §4); fix that record"),
            )),
            ExternalCheck::NameTooLong => findings.push(Finding::at(
                code,
                location,
                format!("{policy_domain}._report._dmarc.{d} is longer than DNS allows, so {d} cannot authorise reports; use a destination inside {policy_domain}"),
            )),
            ExternalCheck::TempError(why) => findings.push(Finding::at(
                Code::DmarcDnsError,
                location,
                format!("could not check the authorisation of {d} ({why})"),
            )),
            _ => {}
        }
    }
    let accepts_mail = match &domain {
        Some(d) if uri.scheme == "mailto" => Some(accepts_mail(lookup, d).await),
        _ => None,
    };
    if let (Some(false), Some(d)) = (accepts_mail, &domain) {
        findings.push(Finding::at(
            Code::DmarcReportNoMx,
            location,
            format!("{tag} address {} is at {d}, which has no MX record and no address: reports cannot be delivered; fix the address or the domain's MX", uri.address.as_deref().unwrap_or(&uri.uri)),
        ));
    }
    Destination {
        uri: uri.uri.clone(),
        domain,
        external,
        authorization,
        accepts_mail,
    }
}

/// Whether mail can be delivered to `domain`: a non-null MX, or no MX and an address
/// (the implicit MX of RFC 5321 §5.1).
pub(crate) async fn accepts_mail<L: Lookup>(lookup: &L, domain: &str) -> bool {
    match lookup.mx(domain).await {
        Ok(mx) => mx.iter().any(|m| !m.exchange.is_empty()),
        Err(DnsError::Temporary(_)) => true,
        Err(_) => lookup.a(domain).await.is_ok() || lookup.aaaa(domain).await.is_ok(),
    }
}

/// True when the published record `text` has the tag `tag`.
fn has_tag(text: &str, tag: &str) -> bool {
    text.split(';')
        .filter_map(|p| p.split_once('='))
        .any(|(name, _)| name.trim().eq_ignore_ascii_case(tag))
}

fn tag_values(rec: &Record, published: &str) -> Vec<TagValue> {
    use dmarc_proto::dmarc::AlignmentMode;
    let mut out = Vec::new();
    let mut push = |tag, value: String, source, meaning: String| {
        out.push(TagValue {
            tag,
            value,
            source,
            meaning,
        })
    };
    push(
        "p",
        rec.p.to_string(),
        if rec.fell_back_to_none {
            "default"
        } else {
            "published"
        },
        format!(
            "mail from the domain itself that fails DMARC: {}",
            policy_meaning(rec.p)
        ),
    );
    let sp = rec.subdomain_policy();
    push(
        "sp",
        sp.to_string(),
        if rec.sp.is_some() {
            "published"
        } else {
            "inherited"
        },
        format!("existing subdomains: {}", policy_meaning(sp)),
    );
    let np = rec.nonexistent_policy();
    push(
        "np",
        np.to_string(),
        if rec.np.is_some() {
            "published"
        } else {
            "inherited"
        },
        format!("non-existent subdomains: {}", policy_meaning(np)),
    );
    for (tag, mode) in [("adkim", rec.adkim), ("aspf", rec.aspf)] {
        push(
            tag,
            if mode == AlignmentMode::Strict {
                "s"
            } else {
                "r"
            }
            .into(),
            if has_tag(published, tag) {
                "published"
            } else {
                "default"
            },
            match mode {
                AlignmentMode::Strict => {
                    "strict: the domain must equal the From domain exactly".into()
                }
                AlignmentMode::Relaxed => {
                    "relaxed: any domain with the same Organizational Domain aligns".into()
                }
            },
        );
    }
    let fo: Vec<&str> = rec.fo.iter().map(|f| f.as_str()).collect();
    push(
        "fo",
        fo.join(":"),
        if has_tag(published, "fo") {
            "published"
        } else {
            "default"
        },
        "when failure reports are wanted".into(),
    );
    push(
        "t",
        if rec.testing { "y" } else { "n" }.into(),
        if has_tag(published, "t") {
            "published"
        } else {
            "default"
        },
        if rec.testing {
            "testing: the policy is applied one step milder".into()
        } else {
            "not testing".into()
        },
    );
    push(
        "psd",
        rec.psd.as_str().into(),
        if has_tag(published, "psd") {
            "published"
        } else {
            "default"
        },
        "whether the domain is a public suffix (u: let the tree walk decide)".into(),
    );
    out
}

fn policy_meaning(p: dmarc_proto::dmarc::Policy) -> &'static str {
    match p {
        dmarc_proto::dmarc::Policy::None => "delivered as usual (monitoring)",
        dmarc_proto::dmarc::Policy::Quarantine => "treated as suspicious (spam folder)",
        dmarc_proto::dmarc::Policy::Reject => "rejected",
    }
}
