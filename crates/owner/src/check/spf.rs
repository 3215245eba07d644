//! The SPF area: the domain's record and everything it includes, walked as a whole.
//!
//! A receiver's evaluation (RFC 7208 §4) stops at the first matching term; a domain owner
//! needs every branch, because any sending IP may need it. So this walks the record
//! statically: each term is parsed by the protocol core's parser ([`Record::parse`]) and
//! every `include` and `redirect` is followed, counting the terms that cause DNS queries
//! and the void lookups as an evaluation that reaches every term would (§4.6.4). Terms
//! after `all` are never evaluated and cost nothing. Beside the walk, the protocol core's
//! own evaluation runs once for an address no record lists ([`ReceiverView`]), giving the
//! verdict a receiver reaches for mail from an unlisted host.

use std::net::{IpAddr, Ipv4Addr};

use dmarc_dns::SystemClock;
use dmarc_proto::dmarc::DomainName;
use dmarc_proto::spf::{
    self, MacroLetter, MacroPart, MacroString, MacroValues, Mechanism, Qualifier, Record,
    SpfOptions, is_spf_record,
};
use dmarc_proto::{DnsError, Lookup};
use serde::Serialize;

use crate::{Code, Finding};

/// RFC 7208 §4.6.4: DNS-querying terms per evaluation.
pub const MAX_LOOKUPS: u32 = 10;
/// RFC 7208 §4.6.4: void lookups per evaluation.
pub const MAX_VOID_LOOKUPS: u32 = 2;
/// RFC 7208 §4.6.4: MX hosts an `mx` mechanism may look at.
const MAX_MX: usize = 10;
/// The deepest include/redirect nesting walked (a bound on hostile records; far beyond
/// what the lookup limit lets an evaluation reach).
const MAX_DEPTH: usize = 12;
/// The most nodes walked in total.
const MAX_NODES: usize = 64;
/// An address no SPF record lists (240.0.0.0/4 is reserved, RFC 1112 §4), for the
/// receiver's view.
const UNLISTED_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(240, 0, 0, 1));

/// What the SPF check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpfReport {
    /// The record as published.
    pub record: Option<String>,
    /// Its length in bytes.
    pub length: Option<usize>,
    /// DNS-querying terms of the whole tree (limit 10).
    pub dns_lookups: u32,
    /// Void lookups of the whole tree (limit 2).
    pub void_lookups: u32,
    /// The evaluation tree: the record and every include and redirect.
    pub tree: Option<SpfNode>,
    /// What a receiver's evaluation gives for mail from an address the record does not
    /// list.
    pub receiver_view: Option<ReceiverView>,
}

/// The record of one domain in the tree.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpfNode {
    /// The domain.
    pub domain: String,
    /// Its SPF record, when one was found.
    pub record: Option<String>,
    /// The terms in order, modifiers last.
    pub terms: Vec<SpfTerm>,
    /// DNS-querying terms of this record and everything below it.
    pub dns_lookups: u32,
    /// Void lookups of this record and everything below it.
    pub void_lookups: u32,
    /// What made this record unusable, if anything.
    pub error: Option<String>,
}

/// One term.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpfTerm {
    /// The term as written (canonical form).
    pub term: String,
    /// The qualifier's result for a mechanism (`pass`, `fail`, `softfail`, `neutral`).
    pub qualifier: Option<&'static str>,
    /// The target domain, when there is one and it could be expanded.
    pub target: Option<String>,
    /// DNS-querying terms this term costs, nested ones included.
    pub dns_lookups: u32,
    /// Void lookups it causes, nested ones included.
    pub void_lookups: u32,
    /// Addresses found (`a`, and the hosts of `mx`).
    pub addresses: Vec<String>,
    /// MX hosts found (`mx`).
    pub mx_hosts: Vec<String>,
    /// True when the term is never evaluated (after `all`, or a redirect beside `all`).
    pub ignored: bool,
    /// A remark, for a person.
    pub note: Option<String>,
    /// The record an `include` or `redirect` leads to.
    pub nested: Option<Box<SpfNode>>,
}

/// The verdict of the protocol core's own evaluation for an unlisted address.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverView {
    /// The address used.
    pub ip: String,
    /// The result.
    pub result: &'static str,
    /// Why.
    pub reason: String,
    /// DNS-querying terms the evaluation used.
    pub dns_lookups: u32,
    /// Void lookups it met.
    pub void_lookups: u32,
}

/// Checks the SPF record of `domain`, appending findings.
pub async fn check<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    findings: &mut Vec<Finding>,
) -> SpfReport {
    let name = domain.to_string();
    let mut report = SpfReport::default();
    let rrs = match lookup.txt(&name).await {
        Ok(rrs) => rrs,
        Err(DnsError::Temporary(why)) => {
            findings.push(Finding::at(
                Code::SpfDnsError,
                &name,
                format!("the TXT lookup failed ({why}); receivers get temperror"),
            ));
            return report;
        }
        Err(_) => Vec::new(),
    };
    let spf: Vec<&Vec<u8>> = rrs.iter().filter(|r| is_spf_record(r)).collect();
    let record = match spf.as_slice() {
        [] => {
            findings.push(Finding::at(
                Code::SpfMissing,
                &name,
                format!("{name} publishes no SPF record, so receivers get none for mail using it in MAIL FROM or HELO; publish one listing your senders, or \"v=spf1 -all\" if it sends no mail"),
            ));
            return report;
        }
        [one] => *one,
        many => {
            findings.push(Finding::at(
                Code::SpfMultipleRecords,
                &name,
                format!("{} TXT records start with v=spf1; receivers return permerror (§4.5): merge them into one", many.len()),
            ));
            report.record = Some(String::from_utf8_lossy(many[0]).into_owned());
            return report;
        }
    };
    let text = String::from_utf8_lossy(record).into_owned();
    report.length = Some(record.len());
    report.record = Some(text.clone());
    length_findings(&name, record.len(), findings);
    glued_findings(&name, &text, findings);

    let mut walker = Walker {
        lookup,
        findings,
        nodes: 0,
        cache: Vec::new(),
        top: name.clone(),
    };
    let mut stack = vec![name.clone()];
    let node = walker.node(&name, record, &mut stack).await;
    report.dns_lookups = node.dns_lookups;
    report.void_lookups = node.void_lookups;
    report.tree = Some(node);
    if report.dns_lookups > MAX_LOOKUPS {
        findings.push(Finding::at(
            Code::SpfTooManyLookups,
            &name,
            format!("the record needs {} DNS-querying terms; receivers stop at {MAX_LOOKUPS} with permerror (RFC 7208 §4.6.4): replace includes by ip4:/ip6: ranges or drop unused ones", report.dns_lookups),
        ));
    }
    if report.void_lookups > MAX_VOID_LOOKUPS {
        findings.push(Finding::at(
            Code::SpfTooManyVoidLookups,
            &name,
            format!("{} terms point at names with no records; receivers stop at {MAX_VOID_LOOKUPS} with permerror (RFC 7208 §4.6.4): remove them", report.void_lookups),
        ));
    }

    // The receiver's view, from the protocol core's evaluation.
    let options = SpfOptions {
        trace: false,
        ..SpfOptions::default()
    };
    let sender = format!("postmaster@{name}");
    let out = spf::check_host(
        lookup,
        &SystemClock,
        &options,
        UNLISTED_IP,
        &name,
        &sender,
        &name,
    )
    .await;
    let view = ReceiverView {
        ip: UNLISTED_IP.to_string(),
        result: out.result.as_str(),
        reason: out.reason.to_string(),
        dns_lookups: out.lookups,
        void_lookups: out.void_lookups,
    };
    let explained = findings
        .iter()
        .any(|f| f.area == crate::Area::Spf && f.severity == crate::Severity::Error);
    if matches!(out.result, spf::SpfResult::PermError) && !explained {
        findings.push(Finding::at(
            Code::SpfPermerror,
            &name,
            format!(
                "receivers evaluate the record to permerror: {}; fix it",
                out.reason
            ),
        ));
    }
    report.receiver_view = Some(view);
    report
}

/// Which part of a domain's SPF record lets one address send: the protocol core's own
/// evaluation ([`spf::check_host`] with its trace), not a second one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authorisation {
    /// The result for the address (`pass`, `fail`, `softfail`, `neutral`, `none`,
    /// `temperror`, `permerror`).
    pub result: &'static str,
    /// The term of the domain's own record that decided (`include:_spf.example.net`,
    /// `ip4:192.0.2.0/24`, `-all`), when one did.
    pub term: Option<String>,
    /// The include and redirect targets followed down to the deciding term, outermost
    /// first (empty when the term is in the domain's own record).
    pub via: Vec<String>,
    /// The term that decided, in the record where it is.
    pub deciding: Option<String>,
}

impl Authorisation {
    /// True when the record authorises the address (`pass`).
    pub fn passes(&self) -> bool {
        self.result == "pass"
    }
}

/// Evaluates the SPF record of `domain` for mail from `ip` and says which term decided.
pub async fn authorisation<L: Lookup>(lookup: &L, domain: &str, ip: IpAddr) -> Authorisation {
    let options = SpfOptions::default();
    let sender = format!("postmaster@{domain}");
    let out = spf::check_host(lookup, &SystemClock, &options, ip, domain, &sender, domain).await;
    let mut term = None;
    let mut via = Vec::new();
    let mut record = out.trace.record.as_ref();
    while let Some(r) = record {
        let decided = r.terms.iter().rev().find(|t| {
            matches!(
                t.outcome,
                spf::TermOutcome::Match | spf::TermOutcome::Redirected
            )
        });
        let Some(t) = decided else { break };
        if term.is_none() {
            term = Some(t.term.clone());
        }
        match &t.nested {
            Some(n) if via.len() < MAX_DEPTH => {
                via.push(n.domain.clone());
                record = Some(n);
            }
            _ => break,
        }
    }
    Authorisation {
        result: out.result.as_str(),
        term,
        via,
        deciding: out.deciding_term.as_ref().map(|d| d.term().to_string()),
    }
}

fn length_findings(name: &str, len: usize, findings: &mut Vec<Finding>) {
    if len > 512 {
        findings.push(Finding::at(
            Code::SpfRecordLong,
            name,
            format!("the record is {len} bytes, over 512: the answer may not fit a UDP response and some receivers fail it (RFC 7208 §3.4); shorten it, e.g. move ranges to an included record"),
        ));
    } else if len > 450 {
        findings.push(Finding::at(
            Code::SpfRecordLong,
            name,
            format!("the record is {len} bytes; RFC 7208 §3.4 asks to stay under about 450 so the whole answer fits in 512 bytes: shorten it"),
        ));
    }
    if len > 255 {
        findings.push(Finding::at(
            Code::SpfRecordSplit,
            name,
            format!("the record is {len} bytes, more than one TXT string holds (255): it must be published as several strings, which receivers join with no space (RFC 7208 §3.3); split it at a space inside a string, not between terms"),
        ));
    }
}

/// Two terms run together, as when a record split into strings lost the space at a
/// boundary (`include:a.exampleinclude:b.example`).
fn glued_findings(name: &str, text: &str, findings: &mut Vec<Finding>) {
    const STARTS: [&str; 8] = [
        "include:",
        "ip4:",
        "ip6:",
        "redirect=",
        "exists:",
        "a:",
        "mx:",
        "all",
    ];
    for term in text.split(' ').skip(1) {
        let body = term.trim_start_matches(['+', '-', '~', '?']);
        let lower = body.to_ascii_lowercase();
        let glued = STARTS.iter().find_map(|s| {
            lower
                .get(1..)
                .and_then(|rest| rest.find(s))
                .map(|i| (i + 1, *s))
        });
        if let Some((at, what)) = glued {
            let before = lower.as_bytes().get(at - 1).copied().unwrap_or(b' ');
            // `all` glued after a name, or a mechanism after a name character.
            let looks_glued = what != "all" && before.is_ascii_alphanumeric()
                || what == "all"
                    && matches!(before, b'-' | b'~' | b'?' | b'+')
                    && at + 3 == lower.len();
            if looks_glued {
                findings.push(Finding::at(
                    Code::SpfSplitGlued,
                    name,
                    format!("\"{term}\" looks like two terms without the space between them; if the record is split into strings, receivers join them with no space (RFC 7208 §3.3): put the space inside a string"),
                ));
                return;
            }
        }
    }
}

/// Walks a record tree.
struct Walker<'l, 'f, L> {
    lookup: &'l L,
    findings: &'f mut Vec<Finding>,
    nodes: usize,
    /// Included domains already walked, with their subtotals: a repeated include costs
    /// its lookups again (every evaluated term counts), without asking DNS again.
    cache: Vec<(String, SpfNode)>,
    /// The checked domain, for the findings' names.
    top: String,
}

/// What a static walk can know of a domain-spec's target.
enum Target {
    /// The expanded name (a literal, or macros of the current domain, `%{d}`, only).
    Name(String),
    /// It depends on the sender or the client (other macros).
    Macro,
    /// A literal that is no usable domain name: receivers treat it as no record.
    Invalid(String),
}

fn expand_target(spec: &MacroString, domain: &str) -> Target {
    let only_domain = spec.parts().iter().all(|p| match p {
        MacroPart::Literal(_) => true,
        MacroPart::Macro { letter, .. } => *letter == MacroLetter::Domain,
    });
    if !only_domain {
        return Target::Macro;
    }
    let values = MacroValues {
        sender: "",
        local_part: "",
        sender_domain: "",
        domain,
        ip: UNLISTED_IP,
        helo: "",
        receiver: "",
        now: 0,
        validated_name: None,
    };
    let t = spec.expand(&values);
    let t = t.trim_end_matches('.').to_ascii_lowercase();
    match DomainName::new(&t) {
        Ok(d) => Target::Name(d.to_string()),
        Err(e) => Target::Invalid(e.to_string()),
    }
}

/// The expanded name, when there is one.
fn static_target(spec: &MacroString, domain: &str) -> Option<String> {
    match expand_target(spec, domain) {
        Target::Name(n) => Some(n),
        _ => None,
    }
}

fn qualifier_word(q: Qualifier) -> &'static str {
    q.result().as_str()
}

impl<L: Lookup> Walker<'_, '_, L> {
    fn add(&mut self, code: Code, name: &str, message: String) {
        self.findings.push(Finding::at(code, name, message));
    }

    /// Walks the record `txt` of `domain`; `stack` holds the domains being walked above it.
    fn node<'s>(
        &'s mut self,
        domain: &'s str,
        txt: &'s [u8],
        stack: &'s mut Vec<String>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = SpfNode> + Send + 's>>
    where
        L: Sync,
    {
        Box::pin(async move { self.node_inner(domain, txt, stack).await })
    }

    async fn node_inner(&mut self, domain: &str, txt: &[u8], stack: &mut Vec<String>) -> SpfNode {
        self.nodes += 1;
        let mut node = SpfNode {
            domain: domain.to_string(),
            record: Some(String::from_utf8_lossy(txt).into_owned()),
            ..SpfNode::default()
        };
        let record = match Record::parse(txt) {
            Ok(r) => r,
            Err(e) => {
                let where_ = if stack.len() > 1 {
                    format!(" (reached through {})", stack.join(" -> "))
                } else {
                    String::new()
                };
                self.add(
                    Code::SpfSyntax,
                    domain,
                    format!("syntax error in the SPF record of {domain}{where_}: {e}; receivers return permerror (RFC 7208 §4.6): fix the term"),
                );
                node.error = Some(e.to_string());
                return node;
            }
        };
        let all_at = record
            .directives
            .iter()
            .position(|d| d.mechanism == Mechanism::All);
        for (i, d) in record.directives.iter().enumerate() {
            let mut term = SpfTerm {
                term: d.to_string(),
                qualifier: Some(qualifier_word(d.qualifier)),
                ..SpfTerm::default()
            };
            if all_at.is_some_and(|a| i > a) {
                term.ignored = true;
                term.note = Some("after all: never evaluated".into());
                node.terms.push(term);
                continue;
            }
            self.directive(domain, &d.mechanism, &mut term, stack).await;
            node.dns_lookups += term.dns_lookups;
            node.void_lookups += term.void_lookups;
            node.terms.push(term);
        }
        if let Some(a) = all_at {
            let after = record.directives.len() - a - 1;
            if after > 0 {
                self.add(
                    Code::SpfTermsAfterAll,
                    domain,
                    format!("{after} term(s) after \"{}\" in the record of {domain} are never evaluated (§4.6.2): move them before all or remove them", record.directives[a]),
                );
            }
            let q = record.directives[a].qualifier;
            if stack.len() == 1 {
                match q {
                    Qualifier::Pass => self.add(
                        Code::SpfPassAll,
                        domain,
                        "+all lets every host on the Internet pass SPF for this domain: end the record with -all or ~all".into(),
                    ),
                    Qualifier::Neutral => self.add(
                        Code::SpfNeutralAll,
                        domain,
                        "?all makes no assertion about unlisted hosts, so SPF protects nothing: end the record with -all or ~all".into(),
                    ),
                    _ => {}
                }
            } else if q == Qualifier::Pass {
                self.add(
                    Code::SpfPassAll,
                    domain,
                    format!("the included record of {domain} ends in +all, so every host passes through the include in {}: remove that include", self.top),
                );
            }
        }
        if let Some(redirect) = &record.redirect {
            let mut term = SpfTerm {
                term: format!("redirect={redirect}"),
                ..SpfTerm::default()
            };
            if all_at.is_some() {
                term.ignored = true;
                term.note = Some("ignored: the record has all (§6.1)".into());
                self.add(
                    Code::SpfRedirectIgnored,
                    domain,
                    format!("redirect={redirect} in the record of {domain} is ignored because the record has an all mechanism (§6.1): remove one of them"),
                );
            } else {
                self.follow(domain, redirect, true, &mut term, stack).await;
                node.dns_lookups += term.dns_lookups;
                node.void_lookups += term.void_lookups;
            }
            node.terms.push(term);
        } else if all_at.is_none() && stack.len() == 1 {
            self.add(
                Code::SpfNoAll,
                domain,
                "the record has neither all nor redirect=, so unlisted hosts get neutral (§4.7): end it with -all or ~all".into(),
            );
        }
        if let Some(exp) = &record.exp {
            let mut term = SpfTerm {
                term: format!("exp={exp}"),
                note: Some("explanation: costs no lookup".into()),
                ..SpfTerm::default()
            };
            if let Some(target) = static_target(exp, domain) {
                if let Err(DnsError::NxDomain | DnsError::NoData) = self.lookup.txt(&target).await {
                    self.add(
                        Code::SpfExpMissing,
                        domain,
                        format!("exp={target} has no TXT record, so failing mail gets no explanation: publish it or remove exp="),
                    );
                }
                term.target = Some(target);
            }
            node.terms.push(term);
        }
        for (n, v) in &record.unknown {
            node.terms.push(SpfTerm {
                term: format!("{n}={v}"),
                note: Some("unknown modifier: ignored (§6)".into()),
                ..SpfTerm::default()
            });
        }
        node
    }

    async fn directive(
        &mut self,
        domain: &str,
        mechanism: &Mechanism,
        term: &mut SpfTerm,
        stack: &mut Vec<String>,
    ) {
        if mechanism.queries_dns() {
            term.dns_lookups = 1;
        }
        match mechanism {
            Mechanism::All | Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. } => {}
            Mechanism::Include(spec) => self.follow(domain, spec, false, term, stack).await,
            Mechanism::A { domain: spec, .. } => {
                let Some(target) = self.target(spec.as_ref(), domain, term) else {
                    return;
                };
                let (a, aaaa) =
                    futures_util::join!(self.lookup.a(&target), self.lookup.aaaa(&target));
                match (&a, &aaaa) {
                    (Err(DnsError::Temporary(why)), _) | (_, Err(DnsError::Temporary(why))) => {
                        self.add(Code::SpfDnsError, domain, format!("the address lookup for {target} failed ({why}); receivers get temperror"));
                    }
                    _ => {}
                }
                term.addresses
                    .extend(a.iter().flatten().map(ToString::to_string));
                term.addresses
                    .extend(aaaa.iter().flatten().map(ToString::to_string));
                if a.as_ref().is_err_and(DnsError::is_void)
                    && aaaa.as_ref().is_err_and(DnsError::is_void)
                {
                    term.void_lookups = 1;
                    self.add(
                        Code::SpfANoAddress,
                        domain,
                        format!("\"{}\" in the record of {domain} points at {target}, which has no A or AAAA record: it never matches and costs a void lookup (§4.6.4); fix or remove it", term.term),
                    );
                }
            }
            Mechanism::Mx { domain: spec, .. } => {
                let Some(target) = self.target(spec.as_ref(), domain, term) else {
                    return;
                };
                let mut mxs = match self.lookup.mx(&target).await {
                    Ok(m) => m,
                    Err(DnsError::Temporary(why)) => {
                        self.add(
                            Code::SpfDnsError,
                            domain,
                            format!(
                                "the MX lookup for {target} failed ({why}); receivers get temperror"
                            ),
                        );
                        return;
                    }
                    Err(_) => {
                        term.void_lookups = 1;
                        self.add(
                            Code::SpfMxNoRecords,
                            domain,
                            format!("\"{}\" in the record of {domain} points at {target}, which has no MX record: it never matches and costs a void lookup (§4.6.4); fix or remove it", term.term),
                        );
                        return;
                    }
                };
                mxs.sort_by_key(|m| m.preference);
                if mxs.len() > MAX_MX {
                    self.add(
                        Code::SpfTooManyMx,
                        domain,
                        format!("{target} has {} MX hosts; an mx mechanism may look at no more than {MAX_MX}, else permerror (§4.6.4): list the senders with ip4:/ip6: instead", mxs.len()),
                    );
                }
                let hosts: Vec<String> = mxs
                    .iter()
                    .filter(|m| !m.exchange.is_empty())
                    .take(MAX_MX + 1)
                    .map(|m| m.exchange.clone())
                    .collect();
                let lookup = self.lookup;
                let answers = futures_util::future::join_all(
                    hosts
                        .iter()
                        .map(|h| async move { futures_util::join!(lookup.a(h), lookup.aaaa(h)) }),
                )
                .await;
                for (host, (a, aaaa)) in hosts.iter().zip(answers) {
                    let before = term.addresses.len();
                    term.addresses
                        .extend(a.iter().flatten().map(ToString::to_string));
                    term.addresses
                        .extend(aaaa.iter().flatten().map(ToString::to_string));
                    if term.addresses.len() == before
                        && a.as_ref().is_err_and(DnsError::is_void)
                        && aaaa.as_ref().is_err_and(DnsError::is_void)
                    {
                        self.add(
                            Code::SpfMxHostNoAddress,
                            domain,
                            format!("MX host {host} of {target} (from \"{}\") has no A or AAAA record: fix the MX", term.term),
                        );
                    }
                }
                term.mx_hosts = hosts;
            }
            Mechanism::Ptr(spec) => {
                let target = spec.as_ref().and_then(|s| static_target(s, domain));
                term.target = target.or_else(|| Some(domain.to_string()));
                self.add(
                    Code::SpfPtr,
                    domain,
                    format!("\"{}\" in the record of {domain}: ptr is slow, unreliable and must not be used (§5.5); list the addresses with ip4:/ip6: or a: instead", term.term),
                );
            }
            Mechanism::Exists(spec) => match static_target(spec, domain) {
                Some(target) => {
                    match self.lookup.a(&target).await {
                        Err(e) if e.is_void() => term.void_lookups = 1,
                        _ => {}
                    }
                    term.target = Some(target);
                }
                None => {
                    term.note =
                        Some("depends on the sender (macros): looked up at evaluation".into());
                }
            },
        }
    }

    /// The static target of an `a`/`mx` mechanism; `None` (noted) for one with macros.
    fn target(
        &mut self,
        spec: Option<&MacroString>,
        domain: &str,
        term: &mut SpfTerm,
    ) -> Option<String> {
        let target = match spec.map(|s| expand_target(s, domain)) {
            None => Some(domain.to_string()),
            Some(Target::Name(t)) => Some(t),
            Some(Target::Macro) => {
                term.note = Some("depends on the sender (macros): not followed".into());
                None
            }
            Some(Target::Invalid(why)) => {
                term.note = Some(format!("{why}: never matches"));
                None
            }
        };
        term.target.clone_from(&target);
        target
    }

    /// Follows an `include` (or a `redirect` when `redirect`).
    async fn follow(
        &mut self,
        domain: &str,
        spec: &MacroString,
        redirect: bool,
        term: &mut SpfTerm,
        stack: &mut Vec<String>,
    ) {
        let what = if redirect { "redirect" } else { "include" };
        term.dns_lookups = 1;
        let target = match expand_target(spec, domain) {
            Target::Name(t) => t,
            Target::Macro => {
                term.note = Some("depends on the sender (macros): not followed".into());
                self.add(
                    Code::SpfMacroNotFollowed,
                    domain,
                    format!("{what} target {spec} depends on the sender, so its lookups cannot be counted here; the total may be higher"),
                );
                return;
            }
            Target::Invalid(why) => {
                term.note = Some("not a domain name".into());
                let code = if redirect {
                    Code::SpfRedirectMissing
                } else {
                    Code::SpfIncludeMissing
                };
                self.add(
                    code,
                    domain,
                    format!("{what}:{spec} in the record of {domain}: {why}, so receivers find no record there and return permerror (§4.8, §5.2): fix the name"),
                );
                return;
            }
        };
        term.target = Some(target.clone());
        if stack.contains(&target) {
            term.note = Some("loop".into());
            self.add(
                Code::SpfLoop,
                domain,
                format!(
                    "{what} loop: {} -> {target}; receivers return permerror: remove the {what}",
                    stack.join(" -> ")
                ),
            );
            return;
        }
        if let Some((_, cached)) = self.cache.iter().find(|(d, _)| *d == target) {
            term.dns_lookups += cached.dns_lookups;
            term.void_lookups += cached.void_lookups;
            term.note = Some(format!(
                "{target} is included again: its lookups count again"
            ));
            return;
        }
        if stack.len() >= MAX_DEPTH || self.nodes >= MAX_NODES {
            term.note = Some("not followed: the tree is too deep or too large".into());
            return;
        }
        let rrs = match self.lookup.txt(&target).await {
            Ok(rrs) => rrs,
            Err(DnsError::Temporary(why)) => {
                self.add(
                    Code::SpfDnsError,
                    domain,
                    format!("the TXT lookup for {target} failed ({why}); receivers get temperror"),
                );
                return;
            }
            Err(_) => {
                term.void_lookups = 1;
                Vec::new()
            }
        };
        let spf: Vec<&Vec<u8>> = rrs.iter().filter(|r| is_spf_record(r)).collect();
        let record = match spf.as_slice() {
            [one] => *one,
            [] => {
                let code = if redirect {
                    Code::SpfRedirectMissing
                } else {
                    Code::SpfIncludeMissing
                };
                let section = if redirect { "§6.1" } else { "§5.2" };
                self.add(
                    code,
                    domain,
                    format!("{what}:{target} in the record of {domain}: {target} has no SPF record, which makes every evaluation that reaches it a permerror ({section}); fix the name or remove the {what}"),
                );
                term.note = Some("no SPF record".into());
                return;
            }
            many => {
                self.add(
                    Code::SpfMultipleRecords,
                    &target,
                    format!("{target} (reached by {what} from {domain}) publishes {} SPF records: permerror (§4.5)", many.len()),
                );
                return;
            }
        };
        stack.push(target.clone());
        let nested = self.node(&target, record, stack).await;
        stack.pop();
        term.dns_lookups += nested.dns_lookups;
        term.void_lookups += nested.void_lookups;
        self.cache.push((target, nested.clone()));
        term.nested = Some(Box::new(nested));
    }
}

impl SpfNode {
    /// The tree as indented text for people.
    pub fn to_text(&self, depth: usize, out: &mut String) {
        use std::fmt::Write as _;
        let pad = "  ".repeat(depth);
        let _ = writeln!(
            out,
            "{pad}{}: {} lookups, {} void",
            self.domain, self.dns_lookups, self.void_lookups
        );
        for t in &self.terms {
            let mut line = format!("{pad}  {}", t.term);
            if t.dns_lookups > 0 {
                let _ = write!(
                    line,
                    "  [{} lookup{}]",
                    t.dns_lookups,
                    if t.dns_lookups == 1 { "" } else { "s" }
                );
            }
            if t.void_lookups > 0 {
                let _ = write!(line, " [void {}]", t.void_lookups);
            }
            if !t.addresses.is_empty() {
                let _ = write!(line, " -> {}", t.addresses.join(", "));
            }
            if let Some(n) = &t.note {
                let _ = write!(line, " ({n})");
            }
            let _ = writeln!(out, "{line}");
            if let Some(n) = &t.nested {
                n.to_text(depth + 2, out);
            }
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "{pad}  error: {e}");
        }
    }
}
