//! Who sends as a domain: every source IP of the stored aggregate reports, named and
//! classified, grouped into sources with what passes, what fails and the fix.
//!
//! The evidence for one address, in the order it is weighed:
//!
//! 1. a known forwarder or mailing-list host ([`Catalogue::forwarders`]) by its
//!    forward-confirmed reverse-DNS name, a DKIM `d=` or an SPF domain: `forwarder`;
//! 2. a known service ([`Catalogue::services`]) by the include of the domain's live SPF
//!    record that authorises it, a DKIM `d=` or MAIL FROM domain of the service's, or its
//!    forward-confirmed reverse-DNS name: `service` (but a host recognised by its name
//!    only, relaying mail with the author's DKIM intact and SPF failing, is a forwarder:
//!    a mailbox at that service forwarding mail on);
//! 3. authorised by the domain's own SPF terms (`ip4`, `ip6`, `a`, `mx`, or an include
//!    under the domain), or a forward-confirmed name under the organisational domain:
//!    `own`;
//! 4. override reasons `forwarded`, `mailing_list` or `trusted_forwarder` for most of its
//!    messages, or SPF failing while the author's DKIM passes aligned for most of them:
//!    `forwarder`;
//! 5. anything else: `unknown` (likely spoofing).
//!
//! Reverse DNS comes from the store's cache ([`dmarc_store::rdns`]), filled first for the
//! addresses that need it. The SPF authorisation is the protocol core's evaluation of the
//! live record ([`crate::check::spf::authorisation`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use dmarc_proto::Lookup;
use dmarc_proto::dmarc::{DomainName, Psl, PslSections};
use dmarc_store::sources::{SourceFacts, SourceQuery};
use dmarc_store::{Store, StoreError};
use serde::Serialize;

use crate::check::spf::{Authorisation, authorisation};
use crate::services::{Catalogue, DkimRecords, MailFrom, Service};

/// How many SPF evaluations run at once.
const CONCURRENCY: usize = 16;
/// The most addresses evaluated against the live SPF record (the largest by volume
/// first); the rest are named from the reports and reverse DNS only.
pub const MAX_SPF_EVALUATIONS: usize = 5000;

/// What a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The domain's own infrastructure.
    Own,
    /// A known email service sending for the domain.
    Service,
    /// A forwarder or mailing list relaying the domain's mail.
    Forwarder,
    /// Nothing says it is the domain's: likely spoofing.
    Unknown,
}

impl Kind {
    /// The name used in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Own => "own",
            Kind::Service => "service",
            Kind::Forwarder => "forwarder",
            Kind::Unknown => "unknown",
        }
    }

    /// True for the kinds that send the domain's legitimate mail.
    pub fn is_legitimate(self) -> bool {
        self != Kind::Unknown
    }
}

/// What goes wrong for a source's mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// SPF passes, but for a MAIL FROM domain not aligned with `From` (a service's bounce
    /// domain, a forwarder's SRS domain).
    SpfUnaligned,
    /// SPF fails (or is not `pass`) for the domain's own MAIL FROM: the host is not
    /// authorised in SPF.
    SpfNotAuthorised,
    /// DKIM passes, but only for a signing domain not aligned with `From` (the service's
    /// own domain).
    DkimUnaligned,
    /// A signature of an aligned domain fails (a broken key, or a message altered on the
    /// way).
    DkimFails,
    /// No DKIM signature at all.
    NoDkim,
}

/// One problem of a source, with the messages it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What.
    pub code: ProblemCode,
    /// Messages concerned (of those failing DMARC).
    pub messages: i64,
    /// For a person.
    pub detail: String,
}

/// One address of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The address as reported.
    pub ip: String,
    /// Its reverse-DNS name, when it has one.
    pub rdns: Option<String>,
    /// Whether that name's addresses include it.
    pub rdns_confirmed: bool,
    /// How the domain's live SPF record treats it (when evaluated).
    pub spf: Option<Authorisation>,
    /// Why it got its name and kind.
    pub evidence: String,
    /// Messages.
    pub messages: i64,
    /// Of which passing DMARC.
    pub dmarc_pass: i64,
}

/// A DKIM signing domain and selector seen for a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// `d=`.
    pub domain: String,
    /// `s=`, when reported.
    pub selector: Option<String>,
    /// True when `d=` is aligned (relaxed) with the `From` domain of the rows.
    pub aligned: bool,
    /// Messages with a passing result.
    pub pass: i64,
    /// Messages with another result.
    pub fail: i64,
}

/// An SPF domain seen for a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpfDomain {
    /// The domain checked.
    pub domain: String,
    /// True when it is aligned (relaxed) with the domain.
    pub aligned: bool,
    /// Messages with `pass`.
    pub pass: i64,
    /// Messages with another result.
    pub fail: i64,
}

/// One named source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// The catalogue id, for a known service or forwarder.
    pub service: Option<String>,
    /// Its addresses.
    pub ips: Vec<String>,
    /// Messages.
    pub messages: i64,
    /// Of which passing DMARC.
    pub dmarc_pass: i64,
    /// Of which with aligned DKIM passing.
    pub dkim_aligned_pass: i64,
    /// Of which with aligned SPF passing.
    pub spf_aligned_pass: i64,
    /// Messages failing DMARC.
    pub dmarc_fail: i64,
    /// Report rows summed.
    pub rows: i64,
    /// What passes, for a person.
    pub passes: Vec<String>,
    /// What fails.
    pub problems: Vec<Problem>,
    /// The fix in one sentence, when something fails.
    pub fix: Option<String>,
    /// DKIM selectors seen (with their signing domains).
    pub selectors: Vec<String>,
    /// DKIM signatures seen.
    pub dkim: Vec<Signature>,
    /// SPF domains seen.
    pub spf: Vec<SpfDomain>,
    /// The addresses in detail.
    pub addresses: Vec<Address>,
}

/// The sources of a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcesReport {
    /// The domain.
    pub domain: String,
    /// Its organisational domain (alignment is judged against it).
    pub org_domain: String,
    /// Messages in the window.
    pub messages: i64,
    /// Report rows in the window.
    pub rows: i64,
    /// The sources, most messages first.
    pub sources: Vec<Source>,
    /// The facts read from the store, for the simulation.
    #[serde(skip)]
    pub facts: SourceFacts,
    /// The kind of every address, for the simulation.
    #[serde(skip)]
    pub kinds: BTreeMap<String, (Kind, String)>,
}

/// Why naming failed.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn org_of(d: &str) -> String {
    Psl::builtin()
        .registrable_domain(d, PslSections::default())
        .unwrap_or_else(|| d.to_string())
}

fn aligned(a: &str, b: &str) -> bool {
    a == b || org_of(a) == org_of(b)
}

fn under(name: &str, domain: &str) -> bool {
    name == domain || name.ends_with(&format!(".{domain}"))
}

/// Per-address sums.
#[derive(Default)]
struct Tally {
    messages: i64,
    rows: i64,
    pass: i64,
    dkim_pass: i64,
    spf_pass: i64,
    /// Messages with aligned DKIM passing and aligned SPF not passing.
    dkim_survives: i64,
    forward_reasons: i64,
}

/// What [`gather`] read from the store: the facts, and the addresses to ask DNS about.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The domain.
    pub domain: DomainName,
    /// The facts.
    pub facts: SourceFacts,
    /// Every source address, most messages first.
    pub by_volume: Vec<IpAddr>,
    /// Those without a fresh reverse-DNS cache entry.
    pub rdns_missing: Vec<IpAddr>,
}

/// What [`resolve`] found in DNS.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Reverse lookups with their forward confirmation, to cache.
    pub rdns: Vec<dmarc_store::rdns::Looked>,
    /// The live SPF record's verdict per address.
    pub spf: BTreeMap<String, Authorisation>,
}

/// Reads the facts about the sources of `q.domain` (step 1 of 3; no DNS).
pub fn gather(
    store: &mut Store,
    domain: &DomainName,
    q: &SourceQuery,
) -> Result<Gathered, SourcesError> {
    let facts = store.source_facts(q)?;
    let mut volume: BTreeMap<&str, i64> = BTreeMap::new();
    for o in &facts.outcomes {
        *volume.entry(o.ip.as_str()).or_default() += o.messages;
    }
    let mut ranked: Vec<(&str, i64)> = volume.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let by_volume: Vec<IpAddr> = ranked
        .iter()
        .filter_map(|(ip, _)| ip.parse().ok())
        .collect();
    let rdns_missing = store.rdns_needing_lookup(&by_volume, dmarc_store::time::now())?;
    Ok(Gathered {
        domain: domain.clone(),
        facts,
        by_volume,
        rdns_missing,
    })
}

/// Asks DNS what [`gather`] needs (step 2 of 3; no store): reverse DNS with forward
/// confirmation, and the live SPF record's verdict for the [`MAX_SPF_EVALUATIONS`]
/// largest sources.
pub async fn resolve<L: Lookup>(lookup: &L, g: &Gathered) -> Resolved {
    let domain = g.domain.to_string();
    let rdns = crate::rdns::lookup_all(lookup, &g.rdns_missing).await;
    let mut spf = BTreeMap::new();
    let evaluate: Vec<IpAddr> = g
        .by_volume
        .iter()
        .take(MAX_SPF_EVALUATIONS)
        .copied()
        .collect();
    for chunk in evaluate.chunks(CONCURRENCY) {
        let answers = futures_util::future::join_all(
            chunk.iter().map(|ip| authorisation(lookup, &domain, *ip)),
        )
        .await;
        for (ip, a) in chunk.iter().zip(answers) {
            spf.insert(ip.to_string(), a);
        }
    }
    Resolved { rdns, spf }
}

/// All three steps, for a store that may be used inside the runtime (SQLite).
pub async fn name_sources<L: Lookup>(
    store: &mut Store,
    lookup: &L,
    domain: &DomainName,
    q: &SourceQuery,
) -> Result<SourcesReport, SourcesError> {
    let g = gather(store, domain, q)?;
    let r = resolve(lookup, &g).await;
    classify(store, g, r)
}

/// Names and classifies the sources (step 3 of 3; no DNS): caches the reverse-DNS
/// answers, then weighs the evidence.
pub fn classify(
    store: &mut Store,
    g: Gathered,
    resolved: Resolved,
) -> Result<SourcesReport, SourcesError> {
    store.cache_rdns_all(&resolved.rdns, dmarc_store::time::now())?;
    let facts = g.facts;
    let domain_s = g.domain.to_string();
    let org = org_of(&domain_s);
    let catalogue = Catalogue::builtin();

    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    for o in &facts.outcomes {
        let t = tally.entry(o.ip.clone()).or_default();
        t.messages += o.messages;
        t.rows += o.rows;
        let dk = o.dkim_aligned.as_deref() == Some("pass");
        let sp = o.spf_aligned.as_deref() == Some("pass");
        if dk || sp {
            t.pass += o.messages;
        }
        if dk {
            t.dkim_pass += o.messages;
        }
        if sp {
            t.spf_pass += o.messages;
        }
        if dk && !sp {
            t.dkim_survives += o.messages;
        }
    }
    for r in &facts.reasons {
        if matches!(
            r.reason.as_str(),
            "forwarded" | "mailing_list" | "trusted_forwarder"
        ) && let Some(t) = tally.get_mut(&r.ip)
        {
            t.forward_reasons += r.messages;
        }
    }
    let spf_of = resolved.spf;

    let mut dkim_of: BTreeMap<&str, Vec<&dmarc_store::sources::DkimRow>> = BTreeMap::new();
    for d in &facts.dkim {
        dkim_of.entry(d.ip.as_str()).or_default().push(d);
    }
    let mut spfrows_of: BTreeMap<&str, Vec<&dmarc_store::sources::SpfRow>> = BTreeMap::new();
    for s in &facts.spf {
        spfrows_of.entry(s.ip.as_str()).or_default().push(s);
    }

    // Classify every address.
    let mut kinds: BTreeMap<String, (Kind, String)> = BTreeMap::new();
    let mut addresses: BTreeMap<String, Address> = BTreeMap::new();
    let mut service_of: BTreeMap<String, String> = BTreeMap::new();
    let ips: Vec<&str> = tally.keys().map(String::as_str).collect();
    let cached = store.cached_rdns_many(&ips)?;
    for (ip, t) in &tally {
        let entry = cached.get(ip.as_str());
        let rdns = entry.as_ref().and_then(|e| e.name.clone());
        let confirmed = entry
            .as_ref()
            .and_then(|e| e.confirmed_name().map(str::to_string));
        let auth = spf_of.get(ip).cloned();
        let dkims = dkim_of.get(ip.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let spfs = spfrows_of
            .get(ip.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let names: Vec<&str> = confirmed
            .iter()
            .map(String::as_str)
            .chain(dkims.iter().map(|d| d.domain.as_str()))
            .chain(spfs.iter().map(|s| s.domain.as_str()))
            .collect();
        let forwarding = t.forward_reasons * 2 > t.messages || t.dkim_survives * 2 > t.messages;

        let mut decided: Option<(Kind, String, String, Option<String>)> = None;
        if let Some(f) = names.iter().find_map(|n| catalogue.forwarder_by_name(n)) {
            decided = Some((
                Kind::Forwarder,
                f.name.clone(),
                format!("a known forwarder ({})", f.notes),
                Some(f.id.clone()),
            ));
        }
        if decided.is_none() {
            let by_include = auth.as_ref().filter(|a| a.passes()).and_then(|a| {
                a.via
                    .iter()
                    .find_map(|d| catalogue.by_spf_include(d))
                    .map(|s| {
                        (
                            s,
                            format!(
                                "authorised by {} in the SPF record",
                                a.term.as_deref().unwrap_or("?")
                            ),
                        )
                    })
            });
            let by_dkim = dkims.iter().find_map(|d| {
                (!under(&d.domain, &org))
                    .then(|| catalogue.by_dkim_domain(&d.domain))
                    .flatten()
                    .map(|s| (s, format!("signs with d={}", d.domain)))
            });
            let by_mail_from = spfs.iter().find_map(|s| {
                (!under(&s.domain, &org))
                    .then(|| {
                        catalogue
                            .by_spf_include(&s.domain)
                            .or_else(|| catalogue.by_dkim_domain(&s.domain))
                            .or_else(|| catalogue.by_ptr_name(&s.domain))
                    })
                    .flatten()
                    .map(|svc| (svc, format!("uses the MAIL FROM domain {}", s.domain)))
            });
            let by_ptr = confirmed.as_deref().and_then(|n| {
                catalogue
                    .by_ptr_name(n)
                    .map(|s| (s, format!("its reverse-DNS name {n} (forward-confirmed)")))
            });
            let strong = by_include.or(by_dkim).or(by_mail_from);
            decided = match (strong, by_ptr) {
                (Some((s, why)), _) => {
                    Some((Kind::Service, s.name.clone(), why, Some(s.id.clone())))
                }
                (None, Some((s, why))) if forwarding => Some((
                    Kind::Forwarder,
                    format!("{} (forwarding)", s.name),
                    format!(
                        "{why}, relaying your mail with your DKIM intact while SPF fails: a mailbox there forwards it"
                    ),
                    Some(s.id.clone()),
                )),
                (None, Some((s, why))) => {
                    Some((Kind::Service, s.name.clone(), why, Some(s.id.clone())))
                }
                (None, None) => None,
            };
        }
        if decided.is_none() {
            // `+all` (anywhere in the chain) authorises everyone: it names no host.
            let own_term = auth.as_ref().filter(|a| a.passes()).and_then(|a| {
                let foreign = a.via.iter().any(|d| !under(d, &org));
                let everyone = a
                    .deciding
                    .as_deref()
                    .is_some_and(|t| t.trim_start_matches('+').eq_ignore_ascii_case("all"));
                (!foreign && !everyone).then(|| a.term.clone().unwrap_or_default())
            });
            let own_name = confirmed.as_deref().filter(|n| under(n, &org));
            decided = match (own_term, own_name) {
                (Some(term), name) => Some((
                    Kind::Own,
                    format!("own servers ({term})"),
                    match name {
                        Some(n) => format!("authorised by {term} in the SPF record; named {n}"),
                        None => format!("authorised by {term} in the SPF record"),
                    },
                    None,
                )),
                (None, Some(n)) => Some((
                    Kind::Own,
                    format!("own servers ({})", n.split_once('.').map_or(n, |x| x.1)),
                    format!("its reverse-DNS name {n} (forward-confirmed) is under {org}"),
                    None,
                )),
                (None, None) => None,
            };
        }
        if decided.is_none() && forwarding {
            let label = confirmed
                .as_deref()
                .or(rdns.as_deref())
                .map(org_of)
                .unwrap_or_else(|| "no reverse DNS".to_string());
            let why = if t.forward_reasons * 2 > t.messages {
                format!(
                    "receivers gave forwarded/mailing_list/trusted_forwarder for {} of {} messages",
                    t.forward_reasons, t.messages
                )
            } else {
                format!(
                    "SPF fails while your DKIM passes aligned for {} of {} messages",
                    t.dkim_survives, t.messages
                )
            };
            decided = Some((Kind::Forwarder, format!("forwarder ({label})"), why, None));
        }
        let (kind, name, evidence, service) = decided.unwrap_or_else(|| {
            let label = confirmed
                .as_deref()
                .or(rdns.as_deref())
                .map(org_of)
                .unwrap_or_else(|| "no reverse DNS".to_string());
            (
                Kind::Unknown,
                format!("unknown ({label})"),
                "not authorised by your SPF record, no known service or forwarder, no name under your domain".to_string(),
                None,
            )
        });
        kinds.insert(ip.clone(), (kind, name.clone()));
        if let Some(s) = service {
            service_of.insert(name.clone(), s);
        }
        addresses.insert(
            ip.clone(),
            Address {
                ip: ip.clone(),
                rdns,
                rdns_confirmed: confirmed.is_some(),
                spf: auth,
                evidence,
                messages: t.messages,
                dmarc_pass: t.pass,
            },
        );
    }

    // Group by name.
    let mut groups: BTreeMap<(Kind, String), Vec<String>> = BTreeMap::new();
    for (ip, (kind, name)) in &kinds {
        groups
            .entry((*kind, name.clone()))
            .or_default()
            .push(ip.clone());
    }
    let mut sources = Vec::new();
    for ((kind, name), ips) in groups {
        let service = service_of.get(&name).cloned();
        let svc = service.as_deref().and_then(|id| catalogue.get(id));
        let mut s = Source {
            name,
            kind,
            service,
            ips: ips.clone(),
            messages: 0,
            dmarc_pass: 0,
            dkim_aligned_pass: 0,
            spf_aligned_pass: 0,
            dmarc_fail: 0,
            rows: 0,
            passes: Vec::new(),
            problems: Vec::new(),
            fix: None,
            selectors: Vec::new(),
            dkim: Vec::new(),
            spf: Vec::new(),
            addresses: ips
                .iter()
                .filter_map(|ip| addresses.get(ip).cloned())
                .collect(),
        };
        for ip in &ips {
            if let Some(t) = tally.get(ip) {
                s.messages += t.messages;
                s.rows += t.rows;
                s.dmarc_pass += t.pass;
                s.dkim_aligned_pass += t.dkim_pass;
                s.spf_aligned_pass += t.spf_pass;
            }
        }
        s.dmarc_fail = s.messages - s.dmarc_pass;
        describe(&mut s, &facts, &domain_s, &org, svc);
        sources.push(s);
    }
    sources.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.name.cmp(&b.name)));
    let messages = sources.iter().map(|s| s.messages).sum();
    let rows = sources.iter().map(|s| s.rows).sum();
    Ok(SourcesReport {
        domain: domain_s,
        org_domain: org,
        messages,
        rows,
        sources,
        facts,
        kinds,
    })
}

/// Fills what passes, what fails, the selectors and the fix of a source.
fn describe(s: &mut Source, facts: &SourceFacts, domain: &str, org: &str, svc: Option<&Service>) {
    let ips: std::collections::BTreeSet<&str> = s.ips.iter().map(String::as_str).collect();
    // Signatures and SPF domains.
    let mut dkim: BTreeMap<(String, Option<String>), Signature> = BTreeMap::new();
    for d in facts.dkim.iter().filter(|d| ips.contains(d.ip.as_str())) {
        let e = dkim
            .entry((d.domain.clone(), d.selector.clone()))
            .or_insert_with(|| Signature {
                domain: d.domain.clone(),
                selector: d.selector.clone(),
                aligned: aligned(&d.domain, &d.header_from),
                pass: 0,
                fail: 0,
            });
        if d.result == "pass" {
            e.pass += d.messages;
        } else {
            e.fail += d.messages;
        }
    }
    s.dkim = dkim.into_values().collect();
    s.dkim.sort_by(|a, b| {
        (b.pass + b.fail)
            .cmp(&(a.pass + a.fail))
            .then(a.domain.cmp(&b.domain))
    });
    s.selectors = s
        .dkim
        .iter()
        .filter_map(|d| {
            d.selector
                .as_ref()
                .map(|sel| format!("{sel} (d={})", d.domain))
        })
        .collect();
    let mut spf: BTreeMap<String, SpfDomain> = BTreeMap::new();
    for r in facts.spf.iter().filter(|r| ips.contains(r.ip.as_str())) {
        if r.scope.as_deref() == Some("helo") {
            continue;
        }
        let e = spf.entry(r.domain.clone()).or_insert_with(|| SpfDomain {
            domain: r.domain.clone(),
            aligned: aligned(&r.domain, domain),
            pass: 0,
            fail: 0,
        });
        if r.result == "pass" {
            e.pass += r.messages;
        } else {
            e.fail += r.messages;
        }
    }
    s.spf = spf.into_values().collect();
    s.spf.sort_by(|a, b| {
        (b.pass + b.fail)
            .cmp(&(a.pass + a.fail))
            .then(a.domain.cmp(&b.domain))
    });

    if s.dkim_aligned_pass > 0 {
        s.passes.push(format!(
            "DKIM aligned for {} of {} messages",
            s.dkim_aligned_pass, s.messages
        ));
    }
    if s.spf_aligned_pass > 0 {
        s.passes.push(format!(
            "SPF aligned for {} of {} messages",
            s.spf_aligned_pass, s.messages
        ));
    }

    // Problems, over the rows failing DMARC.
    let failing: Vec<_> = facts
        .outcomes
        .iter()
        .filter(|o| ips.contains(o.ip.as_str()) && !o.dmarc_pass())
        .collect();
    let fail_msgs: i64 = failing.iter().map(|o| o.messages).sum();
    if fail_msgs == 0 {
        return;
    }
    let unaligned_spf_pass: Vec<&SpfDomain> =
        s.spf.iter().filter(|d| !d.aligned && d.pass > 0).collect();
    let aligned_spf_fail: Vec<&SpfDomain> =
        s.spf.iter().filter(|d| d.aligned && d.fail > 0).collect();
    let unaligned_dkim: Vec<&Signature> =
        s.dkim.iter().filter(|d| !d.aligned && d.pass > 0).collect();
    let aligned_dkim_fail: Vec<&Signature> =
        s.dkim.iter().filter(|d| d.aligned && d.fail > 0).collect();
    let signed: i64 = s.dkim.iter().map(|d| d.pass + d.fail).max().unwrap_or(0);
    let join = |v: Vec<String>| v.join(", ");
    if !unaligned_spf_pass.is_empty() {
        s.problems.push(Problem {
            code: ProblemCode::SpfUnaligned,
            messages: unaligned_spf_pass
                .iter()
                .map(|d| d.pass)
                .sum::<i64>()
                .min(fail_msgs),
            detail: format!(
                "SPF passes for {}, a MAIL FROM domain not aligned with {domain}",
                join(
                    unaligned_spf_pass
                        .iter()
                        .map(|d| d.domain.clone())
                        .collect()
                )
            ),
        });
    }
    if !aligned_spf_fail.is_empty() {
        s.problems.push(Problem {
            code: ProblemCode::SpfNotAuthorised,
            messages: aligned_spf_fail
                .iter()
                .map(|d| d.fail)
                .sum::<i64>()
                .min(fail_msgs),
            detail: format!(
                "SPF does not pass for {}: the host is not authorised in its SPF record",
                join(aligned_spf_fail.iter().map(|d| d.domain.clone()).collect())
            ),
        });
    }
    if !unaligned_dkim.is_empty() && s.dkim_aligned_pass < s.messages {
        s.problems.push(Problem {
            code: ProblemCode::DkimUnaligned,
            messages: unaligned_dkim
                .iter()
                .map(|d| d.pass)
                .sum::<i64>()
                .min(fail_msgs),
            detail: format!(
                "DKIM is signed by {}, not by {domain}",
                join(
                    unaligned_dkim
                        .iter()
                        .map(|d| format!("d={}", d.domain))
                        .collect()
                )
            ),
        });
    }
    if !aligned_dkim_fail.is_empty() {
        s.problems.push(Problem {
            code: ProblemCode::DkimFails,
            messages: aligned_dkim_fail
                .iter()
                .map(|d| d.fail)
                .sum::<i64>()
                .min(fail_msgs),
            detail: format!(
                "the signature of {} fails",
                join(
                    aligned_dkim_fail
                        .iter()
                        .map(|d| match &d.selector {
                            Some(sel) => format!("d={} s={sel}", d.domain),
                            None => format!("d={}", d.domain),
                        })
                        .collect()
                )
            ),
        });
    }
    if signed < s.messages {
        s.problems.push(Problem {
            code: ProblemCode::NoDkim,
            messages: (s.messages - signed).min(fail_msgs),
            detail: "messages carry no DKIM signature".to_string(),
        });
    }
    s.fix = Some(fix(s, domain, org, svc));
}

/// The fix in one sentence.
fn fix(s: &Source, domain: &str, org: &str, svc: Option<&Service>) -> String {
    let has = |c: ProblemCode| s.problems.iter().any(|p| p.code == c);
    let dkim_ok = s.dkim_aligned_pass > 0 && !has(ProblemCode::DkimFails);
    match s.kind {
        Kind::Service => {
            let name = svc.map_or(s.name.as_str(), |v| v.name.as_str());
            let mut parts = Vec::new();
            if !dkim_ok || has(ProblemCode::DkimUnaligned) {
                parts.push(match svc.map(|v| v.dkim_records) {
                    Some(DkimRecords::Cname) => {
                        let targets = svc.map(|v| v.dkim_cname_targets.join(", ")).unwrap_or_default();
                        format!("publish the service's DKIM CNAMEs (to {targets}) so that {name} signs as {domain}")
                    }
                    _ => format!("set up DKIM signing as {domain} at {name} and publish its key"),
                });
            }
            if has(ProblemCode::SpfUnaligned) || has(ProblemCode::SpfNotAuthorised) {
                match svc.map(|v| v.mail_from) {
                    Some(MailFrom::CustomSubdomain) => {
                        let label = svc
                            .and_then(|v| v.mail_from_label.clone())
                            .unwrap_or_else(|| "bounce".into());
                        parts.push(format!(
                            "set up a custom MAIL FROM at the service (a name like {label}.{domain})"
                        ));
                    }
                    Some(MailFrom::AuthorDomain) if has(ProblemCode::SpfNotAuthorised) => {
                        let inc = svc
                            .and_then(Service::spf_include)
                            .unwrap_or("the service's include");
                        parts.push(format!("authorise it in SPF (include:{inc})"));
                    }
                    _ => {}
                }
            }
            if parts.is_empty() {
                format!("{name}: find out why its messages fail DMARC (see the problems listed)")
            } else {
                let mut out = String::new();
                let _ = write!(out, "{}", parts.join(", and "));
                out
            }
        }
        Kind::Own => {
            let mut parts = Vec::new();
            if has(ProblemCode::NoDkim) || has(ProblemCode::DkimUnaligned) {
                parts.push(format!("sign its mail with DKIM as {domain}"));
            }
            if has(ProblemCode::DkimFails) {
                parts.push(
                    "fix its DKIM signing (the key published for the selector does not verify)"
                        .to_string(),
                );
            }
            if has(ProblemCode::SpfNotAuthorised) {
                let ip = s.ips.first().map_or(String::new(), |ip| {
                    if ip.contains(':') {
                        format!(" (ip6:{ip})")
                    } else {
                        format!(" (ip4:{ip})")
                    }
                });
                parts.push(format!("authorise it in SPF{ip}"));
            }
            if parts.is_empty() {
                "use a MAIL FROM under your domain or sign with DKIM as your domain".to_string()
            } else {
                parts.join(", and ")
            }
        }
        Kind::Forwarder => format!(
            "nothing to publish: forwarded mail can pass only by your DKIM signature, which {} breaks for {} message(s); keep signing all mail, and ask its operator to stop altering messages or to add ARC seals",
            s.name, s.dmarc_fail
        ),
        Kind::Unknown if s.dmarc_pass > 0 => format!(
            "find out who runs it: some of its mail passes DMARC as {org}, so it holds your key or relays your mail; authorise it or stop it"
        ),
        Kind::Unknown => {
            "nothing to fix: not your mail (likely spoofing), which an enforcing policy stops"
                .to_string()
        }
    }
}
