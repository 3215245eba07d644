//! The verdict (§5.3): policy discovery, identifier alignment (§4.4, §4.10.2), the
//! requested and applied policy, and DNS failure handling.

use std::fmt::Write as _;

use futures_util::future::{join, join_all, join3};
use smallvec::SmallVec;

use super::discovery::{
    DiscoveredPolicy, PolicySource, Resolver, discover, psl_organizational_domain, walk_org,
};
use super::{
    AlignmentMode, AlignmentReason, AuthResult, AuthorDomains, DmarcInput, DmarcOptions,
    DmarcOutput, DmarcResult, DnsFailureMode, DomainName, FromFault, IdentifierAlignment,
    MAX_AUTHOR_DOMAINS, MultipleAddresses, Policy, Spec, Unreadable, read_authors,
};
use crate::dns::{DnsError, Lookup};
use crate::name::within;

/// Evaluates DMARC for one message whose Author Domain is known.
///
/// Never fails: every problem becomes a verdict with a reason. DNS questions go through
/// `lookup`; answers are shared between the walks of one call.
pub async fn evaluate<L: Lookup>(
    lookup: &L,
    input: &DmarcInput,
    options: &DmarcOptions,
) -> DmarcOutput {
    let author = match DomainName::new(input.author_domain.trim()) {
        Ok(d) => d,
        Err(e) => {
            return DmarcOutput::new(
                options.spec,
                DmarcResult::PermError,
                format!("the Author Domain is unusable: {e}"),
            );
        }
    };
    evaluate_domain(
        lookup,
        &author,
        &input.spf,
        &input.dkim,
        input.pct_draw,
        options,
    )
    .await
}

/// [`evaluate`] for an Author Domain already validated, the identities borrowed.
async fn evaluate_domain<L: Lookup>(
    lookup: &L,
    author: &DomainName,
    spf_ids: &[super::SpfIdentity],
    dkim_ids: &[super::DkimIdentity],
    pct_draw: Option<u8>,
    options: &DmarcOptions,
) -> DmarcOutput {
    let spec = options.spec;
    let resolver = Resolver::new(lookup, spec).with_record_cache(options.record_cache.as_deref());
    // The Public Suffix List is for RFC 7489 only (not even loaded otherwise).
    let psl = (spec == Spec::Rfc7489).then(|| options.psl());
    let mut out = DmarcOutput::new(spec, DmarcResult::None, String::new());
    out.author_domain = Some(author.as_str().to_owned());

    // §5.3.2: policy discovery.
    let discovered = match discover(&resolver, author, psl, options.psl_sections).await {
        Ok(d) => d,
        Err(e) => return dns_failure(out, options, "looking for the DMARC record", &e),
    };
    let (policy_domain, parsed, mut org_domain) = match discovered {
        DiscoveredPolicy::NoPolicy { reason, org_domain } => {
            out.org_domain = org_domain;
            out.reason = format!("{reason} ({spec})");
            return out;
        }
        DiscoveredPolicy::Found {
            policy_domain,
            record,
            org_domain,
            ..
        } => (policy_domain, record, org_domain),
    };
    if spec == Spec::Rfc7489 && org_domain.is_none() {
        org_domain = Some(psl_organizational_domain(
            options.psl(),
            options.psl_sections,
            author,
        ));
    }
    let super::ParsedRecord {
        record,
        diagnostics,
        ..
    } = parsed;
    out.policy_domain = Some(policy_domain.clone());
    out.record_diagnostics = diagnostics;
    out.dkim_mode = record.adkim;
    out.spf_mode = record.aspf;

    // §4.10.1: which tag applies. `np` needs to know whether the Author Domain exists, which
    // is asked concurrently with the alignment walks, and only when it matters.
    let is_subdomain = policy_domain != *author;
    let need_existence = spec == Spec::Rfc9989
        && is_subdomain
        && record.nonexistent_policy() != record.subdomain_policy();
    let alignment = align_all(
        &resolver,
        author,
        org_domain.clone(),
        spf_ids,
        dkim_ids,
        options,
        &record,
    );
    let (existence, alignment) = if need_existence {
        let (e, a) = join(domain_exists(lookup, author), alignment).await;
        (Some(e), a)
    } else {
        (None, alignment.await)
    };
    let Alignment {
        spf,
        dkim,
        org_domain: aligned_org,
        dns_error,
    } = alignment;
    if aligned_org.is_some() {
        org_domain = aligned_org;
    }
    // §4.10.2: when the Author Domain has its own record and every authenticated
    // identifier is that same domain, it is treated as the Organizational Domain.
    let mut passing = spf
        .iter()
        .chain(&dkim)
        .filter(|r| r.result == AuthResult::Pass);
    if org_domain.is_none()
        && !is_subdomain
        && passing.clone().next().is_some()
        && passing.all(|r| r.domain == author.as_str())
    {
        org_domain = Some(author.clone());
    }
    out.org_domain = org_domain;
    out.spf = spf;
    out.dkim = dkim;

    let (requested, source) = if !is_subdomain {
        (record.policy(), PolicySource::P)
    } else {
        match existence {
            Some(Ok(false)) => (record.nonexistent_policy(), PolicySource::Np),
            Some(Ok(true)) | None => (record.subdomain_policy(), PolicySource::Sp),
            Some(Err(ref e)) => {
                if out.spf_aligned() || out.dkim_aligned() {
                    // The verdict does not depend on it; report the sp policy.
                    (record.subdomain_policy(), PolicySource::Sp)
                } else {
                    out.record = Some(record);
                    return dns_failure(
                        out,
                        options,
                        "checking whether the Author Domain exists (for np)",
                        e,
                    );
                }
            }
        }
    };
    out.author_domain_exists = existence.and_then(|r| r.ok());
    out.requested_policy = Some(requested);
    out.policy_source = Some(source);

    // t=y (RFC 9989) or pct (RFC 7489) make the applied policy one step milder.
    let mut applied = requested;
    match spec {
        Spec::Rfc9989 => {
            if record.testing {
                out.testing = true;
                applied = applied.one_step_down();
            }
        }
        Spec::Rfc7489 => {
            let pct = record.pct.unwrap_or(100);
            if pct < 100 {
                let selected = match pct_draw {
                    Some(draw) => draw < pct,
                    None => pct > 0,
                };
                out.sampled = Some(selected);
                if !selected {
                    applied = applied.one_step_down();
                }
            }
        }
    }
    out.applied_policy = Some(applied);
    out.record = Some(record);

    let via = Via {
        policy_domain: &policy_domain,
        source: is_subdomain.then_some(source),
        requested,
    };

    // One buffer for the reason, large enough for the usual sentence.
    let mut reason = String::with_capacity(160);
    if let Some(a) = out.dkim.iter().find(|a| a.aligned) {
        out.result = DmarcResult::Pass;
        for part in ["DKIM d=", &a.domain, " is aligned; "] {
            reason.push_str(part);
        }
        via.push_to(&mut reason);
    } else if let Some(a) = out.spf.iter().find(|a| a.aligned) {
        out.result = DmarcResult::Pass;
        for part in ["SPF domain ", &a.domain, " is aligned; "] {
            reason.push_str(part);
        }
        via.push_to(&mut reason);
    } else if let Some(e) = dns_error {
        return dns_failure(out, options, "determining an Organizational Domain", &e);
    } else {
        out.result = DmarcResult::Fail;
        reason.push_str(if out.spf.is_empty() && out.dkim.is_empty() {
            "no authenticated identifier"
        } else {
            "no authenticated identifier is aligned"
        });
        reason.push_str("; ");
        via.push_to(&mut reason);
        if applied != requested {
            let why = if out.testing {
                "t=y"
            } else {
                "not selected by pct"
            };
            let _ = write!(reason, ", applied as {applied} ({why})");
        }
    }
    out.reason = reason;
    if out.record.as_ref().is_some_and(|r| r.fell_back_to_none) {
        out.reason.push_str(
            " (the record acts as p=none: its p, sp or np is missing or invalid, RFC 9989 §4.10.1)",
        );
    }
    out
}

/// Evaluates DMARC from the raw From field value(s) of a message: reads the Author
/// Domain(s) (§5.3.1) under `options.author` ([`read_authors`]), then evaluates. Every
/// shape of From has an outcome that the sender cannot turn into "nothing enforced"
/// unless the options opt in (§11.5):
///
/// * several Author Domains: each is evaluated (at most [`MAX_AUTHOR_DOMAINS`]; more are
///   refused) and the strictest verdict applies: the one whose action is the most severe
///   (reject, quarantine, tempfail, then the rest), then fail before temperror before
///   permerror before pass before none;
/// * several From fields, or one that cannot be read: a DMARC `fail` of every domain they
///   name (their policies are looked up, nothing counts as aligned), the strictest
///   applying; `permerror` and refused ([`DmarcOutput::from_refused`], action reject)
///   when they name none.
pub async fn evaluate_message<L: Lookup>(
    lookup: &L,
    from_fields: &[&[u8]],
    spf: &[super::SpfIdentity],
    dkim: &[super::DkimIdentity],
    pct_draw: Option<u8>,
    options: &DmarcOptions,
) -> DmarcOutput {
    let authors = read_authors(from_fields, &options.author);
    evaluate_authors(lookup, authors, spf, dkim, pct_draw, options).await
}

/// [`evaluate_message`] with the From field(s) already read: `authors` is what
/// [`read_authors`] returned for them with `options.author`. For a caller that needed
/// the Author Domains earlier (the receiver asks for their policy while SPF and DKIM run)
/// and should not read the field twice.
pub async fn evaluate_authors<L: Lookup>(
    lookup: &L,
    authors: Result<AuthorDomains, FromFault>,
    spf: &[super::SpfIdentity],
    dkim: &[super::DkimIdentity],
    pct_draw: Option<u8>,
    options: &DmarcOptions,
) -> DmarcOutput {
    let spec = options.spec;
    let refused = |reason: String| {
        let mut out = DmarcOutput::new(spec, DmarcResult::PermError, reason);
        out.from_refused = true;
        out
    };
    let authors = match authors {
        Ok(a) => a,
        Err(fault) => {
            // RFC 9989 §5.3.1: DMARC validation is not possible as usual.
            return match fault.outcome {
                Unreadable::Accept => DmarcOutput::new(
                    spec,
                    DmarcResult::PermError,
                    format!("{}; let through as configured", fault.error),
                ),
                Unreadable::Reject => refused(format!("{}; refused as configured", fault.error)),
                Unreadable::Fail => match fault.named.as_slice() {
                    [] => refused(format!(
                        "{}, and it names no domain whose policy could apply; refused",
                        fault.error
                    )),
                    many if many.len() > MAX_AUTHOR_DOMAINS => refused(format!(
                        "{}, and it names more than {MAX_AUTHOR_DOMAINS} domains; refused",
                        fault.error
                    )),
                    named => {
                        let mut out = strictest(lookup, named, &[], &[], pct_draw, options).await;
                        out.reason = format!(
                            "{}: treated as a DMARC failure of {} ({})",
                            fault.error,
                            join_names(named),
                            out.reason
                        );
                        out
                    }
                },
            };
        }
    };
    let declined = |reason: String| {
        let mut out = DmarcOutput::new(spec, DmarcResult::None, reason);
        out.declined = true;
        out
    };
    let several_addresses = authors.addresses.len() > 1;
    match (
        authors.domains.as_slice(),
        options.author.multiple_addresses,
    ) {
        ([], _) => refused("the From field holds no domain".into()),
        (_, MultipleAddresses::Reject) if several_addresses => refused(format!(
            "the From field has {} addresses; refused as configured (RFC 9989 §5.3.1)",
            authors.addresses.len()
        )),
        (_, MultipleAddresses::Decline) if several_addresses => declined(format!(
            "the From field has {} addresses; DMARC is not evaluated, as configured (RFC 9989 §5.3.1)",
            authors.addresses.len()
        )),
        ([only], _) => evaluate_domain(lookup, only, spf, dkim, pct_draw, options).await,
        (many, MultipleAddresses::SameDomainOnly) => declined(format!(
            "the From field has addresses in {} domains ({}); there is no single Author Domain, so DMARC is not evaluated, as configured (RFC 9989 §5.3.1)",
            many.len(),
            join_names(many)
        )),
        (many, _) if many.len() > MAX_AUTHOR_DOMAINS => refused(format!(
            "the From field has addresses in more than {MAX_AUTHOR_DOMAINS} domains, more than are evaluated one by one; refused"
        )),
        (many, _) => {
            let mut out = strictest(lookup, many, spf, dkim, pct_draw, options).await;
            out.reason = format!(
                "{} (the strictest of {} Author Domains: {})",
                out.reason,
                many.len(),
                join_names(many)
            );
            out
        }
    }
}

/// Evaluates every domain of `domains` (at least one) and keeps the strictest verdict.
async fn strictest<L: Lookup>(
    lookup: &L,
    domains: &[DomainName],
    spf: &[super::SpfIdentity],
    dkim: &[super::DkimIdentity],
    pct_draw: Option<u8>,
    options: &DmarcOptions,
) -> DmarcOutput {
    let mut worst: Option<DmarcOutput> = None;
    for domain in domains {
        let out = evaluate_domain(lookup, domain, spf, dkim, pct_draw, options).await;
        worst = Some(match worst {
            Some(w) if severity(&w) >= severity(&out) => w,
            _ => out,
        });
    }
    worst.unwrap_or_else(|| {
        let mut out = DmarcOutput::new(options.spec, DmarcResult::PermError, "no Author Domain");
        out.from_refused = true;
        out
    })
}

fn join_names(domains: &[DomainName]) -> String {
    domains
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// "policy of example.com (sp)=reject", formatted when the reason is written.
struct Via<'a> {
    policy_domain: &'a DomainName,
    /// The tag, shown when the policy is not the Author Domain's own.
    source: Option<PolicySource>,
    requested: Policy,
}

impl Via<'_> {
    /// Appends the text (plain string pushes: this is on every message's path).
    fn push_to(&self, out: &mut String) {
        out.push_str("policy of ");
        out.push_str(self.policy_domain);
        if let Some(source) = self.source {
            for part in [" (", source.as_str(), ")"] {
                out.push_str(part);
            }
        }
        out.push('=');
        out.push_str(self.requested.as_str());
    }
}

/// Ordering of verdicts for [`strictest`]: higher is worse. First what the receiver does
/// (reject, quarantine, tempfail, the rest), then the result.
fn severity(out: &DmarcOutput) -> (u8, u8) {
    let action = match (out.disposition(), out.result) {
        (Some(Policy::Reject), _) => 4,
        (Some(Policy::Quarantine), _) => 3,
        (_, DmarcResult::TempError) => 2,
        _ => 1,
    };
    let rank = match out.result {
        DmarcResult::Fail => 5,
        DmarcResult::TempError => 4,
        DmarcResult::PermError => 3,
        DmarcResult::Pass => 2,
        DmarcResult::None => 1,
    };
    (action, rank)
}

fn dns_failure(
    mut out: DmarcOutput,
    options: &DmarcOptions,
    what: &str,
    e: &DnsError,
) -> DmarcOutput {
    match options.dns_failure {
        DnsFailureMode::TempError => {
            out.result = DmarcResult::TempError;
            out.reason = format!("DNS failed while {what}: {e}");
        }
        DnsFailureMode::FailOpen => {
            out.result = DmarcResult::None;
            out.reason = format!("DNS failed while {what} ({e}); failing open as configured");
        }
    }
    out.applied_policy = None;
    out
}

/// §3.2.13 and Appendix A.4: a domain does not exist when a query for it returns NXDOMAIN,
/// or when A, AAAA and MX all return NODATA. The three are asked concurrently. A temporary
/// failure with no positive answer is an error.
async fn domain_exists<L: Lookup>(lookup: &L, domain: &DomainName) -> Result<bool, DnsError> {
    let name = domain.as_str();
    let (a, aaaa, mx) = join3(lookup.a(name), lookup.aaaa(name), lookup.mx(name)).await;
    let all = [a.map(|_| ()), aaaa.map(|_| ()), mx.map(|_| ())];
    if all.iter().any(Result::is_ok) {
        return Ok(true);
    }
    if all.iter().any(|r| matches!(r, Err(DnsError::NxDomain))) {
        return Ok(false);
    }
    if all.iter().all(|r| matches!(r, Err(DnsError::NoData))) {
        return Ok(false);
    }
    Err(all
        .into_iter()
        .find_map(|r| match r {
            Err(e @ DnsError::Temporary(_)) => Some(e),
            _ => None,
        })
        .unwrap_or(DnsError::Temporary("no answer".into())))
}

struct Alignment {
    spf: Vec<IdentifierAlignment>,
    dkim: Vec<IdentifierAlignment>,
    /// The Author Domain's Organizational Domain, if a walk determined it.
    org_domain: Option<super::DomainName>,
    /// A temporary DNS failure that kept some identifier from being decided.
    dns_error: Option<DnsError>,
}

/// Checks every identifier against the Author Domain, in three steps: what needs no DNS
/// (results other than pass, identical names, strict mode, no common label); then the
/// Author Domain's Organizational Domain, if any identifier needs it; then the
/// Organizational Domains of the remaining identifiers that lie within the Author
/// Domain's, whose walks run concurrently and share the remembered answers. Nothing is
/// spawned when no identifier needs a walk of its own.
async fn align_all<L: Lookup>(
    resolver: &Resolver<'_, L>,
    author: &DomainName,
    known_org: Option<DomainName>,
    spf_ids: &[super::SpfIdentity],
    dkim_ids: &[super::DkimIdentity],
    options: &DmarcOptions,
    record: &super::Record,
) -> Alignment {
    let limit = options.identity_limit();
    let spf_ids = spf_ids.get(..limit).unwrap_or(spf_ids);
    let dkim_ids = dkim_ids.get(..limit).unwrap_or(dkim_ids);
    // Rows waiting for an Organizational Domain: (DKIM?, index).
    let mut pending: SmallVec<[(bool, usize); 4]> = SmallVec::new();
    let mut spf = Vec::with_capacity(spf_ids.len());
    for (i, id) in spf_ids.iter().enumerate() {
        let (row, waits) = classify(author, &id.domain, None, id.result, record.aspf);
        if waits {
            pending.push((false, i));
        }
        spf.push(row);
    }
    let mut dkim = Vec::with_capacity(dkim_ids.len());
    for (i, id) in dkim_ids.iter().enumerate() {
        let (row, waits) = classify(
            author,
            &id.domain,
            id.selector.clone(),
            id.result,
            record.adkim,
        );
        if waits {
            pending.push((true, i));
        }
        dkim.push(row);
    }
    let mut dns_error = None;
    let mut author_org = known_org;
    if !pending.is_empty() && author_org.is_none() {
        match org_of(resolver, options, author).await {
            Ok(o) => author_org = Some(o),
            Err(e) => dns_error = Some(e),
        }
    }
    // Decide what needs no walk; keep the identifiers that need one.
    let mut walks: SmallVec<[(bool, usize, DomainName); 4]> = SmallVec::new();
    for (is_dkim, i) in pending {
        let rows = if is_dkim { &mut dkim } else { &mut spf };
        let Some(row) = rows.get_mut(i) else {
            continue;
        };
        match &author_org {
            None => row.reason = AlignmentReason::AuthorOrgUnknown(author.clone()),
            Some(org) if !within(&row.domain, org) => {
                // An identifier's Organizational Domain is one of its own suffixes, so it
                // cannot be the Author Domain's unless it lies within it.
                row.reason = AlignmentReason::OutsideAuthorOrg {
                    author: author.clone(),
                    author_org: org.clone(),
                };
            }
            Some(org) => {
                // `classify` left the normalised name in the row.
                let domain = DomainName::from_valid(&row.domain);
                match options.spec {
                    Spec::Rfc7489 => {
                        let own =
                            psl_organizational_domain(options.psl(), options.psl_sections, &domain);
                        finish_relaxed(row, Ok(own), org);
                    }
                    Spec::Rfc9989 => walks.push((is_dkim, i, domain)),
                }
            }
        }
    }
    if let Some(org) = &author_org {
        // The walks: one awaited directly, several concurrently.
        let orgs: SmallVec<[Result<DomainName, DnsError>; 4]> = match walks.as_slice() {
            [] => SmallVec::new(),
            [(_, _, domain)] => std::iter::once(walk_org(resolver, domain).await).collect(),
            many => join_all(many.iter().map(|(_, _, domain)| walk_org(resolver, domain)))
                .await
                .into_iter()
                .collect(),
        };
        for ((is_dkim, i, _), own) in walks.into_iter().zip(orgs) {
            let rows = if is_dkim { &mut dkim } else { &mut spf };
            if let Some(row) = rows.get_mut(i)
                && let Some(e) = finish_relaxed(row, own, org)
            {
                dns_error.get_or_insert(e);
            }
        }
    }
    Alignment {
        spf,
        dkim,
        org_domain: author_org,
        dns_error,
    }
}

async fn org_of<L: Lookup>(
    resolver: &Resolver<'_, L>,
    options: &DmarcOptions,
    domain: &DomainName,
) -> Result<DomainName, DnsError> {
    match options.spec {
        Spec::Rfc7489 => Ok(psl_organizational_domain(
            options.psl(),
            options.psl_sections,
            domain,
        )),
        Spec::Rfc9989 => walk_org(resolver, domain).await,
    }
}

/// The row of one identifier, decided when no Organizational Domain is needed; `true`
/// when it waits for one (the row's domain is then the normalised name).
fn classify(
    author: &DomainName,
    raw: &str,
    selector: Option<String>,
    result: AuthResult,
    mode: AlignmentMode,
) -> (IdentifierAlignment, bool) {
    let raw = raw.trim();
    let mut row = IdentifierAlignment {
        domain: String::new(),
        selector,
        result,
        aligned: false,
        alignment_domain: None,
        reason: AlignmentReason::Pending,
    };
    // The Author Domain itself (the usual aligned signature) is valid already.
    let normalized = if raw == author.as_str() {
        Ok(std::borrow::Cow::Borrowed(raw))
    } else {
        DomainName::normalize(raw)
    };
    match normalized {
        Ok(d) => row.domain = d.into_owned(),
        Err(e) => {
            row.domain = raw.to_owned();
            row.reason = AlignmentReason::InvalidDomain(e);
            return (row, false);
        }
    }
    if result != AuthResult::Pass {
        row.reason = AlignmentReason::NotPass(result);
        return (row, false);
    }
    if row.domain == author.as_str() {
        row.aligned = true;
        row.alignment_domain = Some(author.clone());
        row.reason = AlignmentReason::Identical;
        return (row, false);
    }
    if mode == AlignmentMode::Strict {
        row.reason = AlignmentReason::StrictNeeds(author.clone());
        return (row, false);
    }
    // Organizational Domains are suffixes of their domains, so two names without a common
    // label cannot share one.
    if author.as_str().rsplit('.').next() != row.domain.rsplit('.').next() {
        row.reason = AlignmentReason::NoCommonLabel;
        return (row, false);
    }
    (row, true)
}

/// Relaxed alignment (§3.2.10.1) of an identifier within the Author Domain's
/// Organizational Domain `author_org`, once its own is known (or its walk failed, which is
/// returned).
fn finish_relaxed(
    row: &mut IdentifierAlignment,
    own: Result<DomainName, DnsError>,
    author_org: &DomainName,
) -> Option<DnsError> {
    let org = match own {
        Ok(o) => o,
        Err(e) => {
            row.reason = AlignmentReason::OrgUnknown(e.clone());
            return Some(e);
        }
    };
    if org == *author_org {
        row.aligned = true;
        row.alignment_domain = Some(org.clone());
        row.reason = AlignmentReason::SameOrg(org);
    } else {
        row.reason = AlignmentReason::DifferentOrg {
            org,
            author_org: author_org.clone(),
        };
    }
    None
}
