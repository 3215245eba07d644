//! check_host() (§4) and the initial processing of the two identities (§2.3, §2.4, §4.3).
//!
//! The evaluation borrows what it can: names from the request and from the (cached) parsed
//! records, answers from its own memory of the DNS questions asked. Text for people (the
//! reason, the trace) is written only where it is shown: the reason once at the end, the
//! trace only when [`SpfOptions::trace`] asks for it.

use std::borrow::Cow;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use super::macros::{MacroContext, MacroString, MacroValues};
use super::record::{Directive, Mechanism, ParsedSpf, is_spf_record};
use super::trace::{
    AnswerClass, QueryTrace, RecordTrace, TermOutcome, TermTrace, Trace, escape_txt,
};
use super::{
    DecidingTerm, Identity, SharedStr, SpfOptions, SpfOutput, SpfReason, SpfRequest, SpfResult,
};
use crate::Clock;
use crate::dns::memo::{Answer, Memo, QType, ask};
use crate::dns::{DnsError, Lookup, reverse_name};
use crate::name::{NameFault, NameRules};

/// Checks the MAIL FROM identity (§2.4): `check_host(ip, domain of MAIL FROM, MAIL FROM)`,
/// or `postmaster@<helo>` when the reverse-path is null. A missing local part means
/// `postmaster` (§4.3).
///
/// (A plain function returning the evaluation's future, so that the future is not wrapped,
/// and moved, once more.)
pub fn verify_mail_from<'a, L: Lookup + ?Sized>(
    lookup: &'a L,
    clock: &'a dyn Clock,
    options: &'a SpfOptions,
    request: &'a SpfRequest,
) -> impl Future<Output = SpfOutput> + Send + 'a {
    let helo = request.helo.slice(request.helo.trim_end_matches('.'));
    let tracing = options.trace;
    let (sender, domain, note): (SharedStr, SharedStr, Option<String>) =
        match request.mail_from.as_ref().filter(|m| !m.is_empty()) {
            None => (
                postmaster_at(&helo),
                helo.clone(),
                tracing.then(|| format!("null reverse-path: checking postmaster@{helo} (§2.4)")),
            ),
            Some(addr) => match split_at_last_at(addr) {
                Some(("", d)) => (
                    SharedStr::concat(&["postmaster@", d]),
                    addr.slice(d),
                    tracing.then(|| {
                        format!("MAIL FROM {addr:?} has no local part: using postmaster (§4.3)")
                    }),
                ),
                Some((_, d)) => (
                    addr.clone(),
                    addr.slice(d),
                    tracing.then(|| format!("checking MAIL FROM {addr}")),
                ),
                None => (
                    SharedStr::concat(&["postmaster@", addr]),
                    addr.clone(),
                    tracing.then(|| {
                        format!(
                            "MAIL FROM {addr:?} has no '@': taking it as a domain, local part postmaster"
                        )
                    }),
                ),
            },
        };
    run(
        lookup,
        clock,
        options,
        request.ip,
        Identity::MailFrom,
        domain,
        sender,
        request.helo.clone(),
        note,
    )
}

/// Checks the HELO identity (§2.3): `check_host(ip, helo, postmaster@helo)`.
///
/// (A plain function returning the evaluation's future, so that the future is not wrapped,
/// and moved, once more.)
pub fn verify_helo<'a, L: Lookup + ?Sized>(
    lookup: &'a L,
    clock: &'a dyn Clock,
    options: &'a SpfOptions,
    request: &'a SpfRequest,
) -> impl Future<Output = SpfOutput> + Send + 'a {
    let helo = request.helo.slice(request.helo.trim_end_matches('.'));
    let sender = postmaster_at(&helo);
    run(
        lookup,
        clock,
        options,
        request.ip,
        Identity::Helo,
        helo,
        sender,
        request.helo.clone(),
        options
            .trace
            .then(|| format!("checking HELO {}", request.helo)),
    )
}

/// `postmaster@<helo>`: a view into the request's buffer when
/// [`SpfRequest::with_identities`] put it there, else a copy.
fn postmaster_at(helo: &SharedStr) -> SharedStr {
    helo.with_prefix(super::POSTMASTER_AT)
        .unwrap_or_else(|| SharedStr::concat(&[super::POSTMASTER_AT, helo]))
}

/// The check_host() function of §4: is `ip` allowed to send mail for `domain`, with
/// `sender` (`local-part@domain`) and `helo` for the macros?
///
/// A `domain` that is not a syntactically valid multi-label domain name gives `none`
/// without any DNS query (§4.3).
pub fn check_host<'a, L: Lookup + ?Sized>(
    lookup: &'a L,
    clock: &'a dyn Clock,
    options: &'a SpfOptions,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
) -> impl Future<Output = SpfOutput> + Send + 'a {
    run(
        lookup,
        clock,
        options,
        ip,
        Identity::MailFrom,
        SharedStr::from(domain),
        SharedStr::from(sender),
        SharedStr::from(helo),
        options
            .trace
            .then(|| format!("check_host({ip}, {domain}, {sender})")),
    )
}

/// `note` is the first line of the trace's notes, given only when tracing.
#[allow(clippy::too_many_arguments)]
async fn run<L: Lookup + ?Sized>(
    lookup: &L,
    clock: &dyn Clock,
    options: &SpfOptions,
    ip: IpAddr,
    identity: Identity,
    domain: SharedStr,
    sender: SharedStr,
    helo: SharedStr,
    note: Option<String>,
) -> SpfOutput {
    let tracing = options.trace;
    let ip = unmap(ip);
    let mut notes = Vec::new();
    if let Some(n) = note.filter(|_| tracing) {
        notes.push(n);
    }
    let domain = domain.slice(domain.strip_suffix('.').unwrap_or(&domain));
    // RFC 8616 §4: internationalized names are evaluated in their A-label form.
    let (converted, idn_error) = to_a_labels(&domain, &mut notes, tracing);
    let domain = match converted {
        Cow::Borrowed(d) => domain.slice(d),
        Cow::Owned(d) => SharedStr::from(d),
    };
    let (sender, at) = canonical_sender(sender);
    let mut trace = Trace {
        notes,
        ..Trace::default()
    };
    let output =
        |result: SpfResult, reason: SpfReason, domain: SharedStr, sender: SharedStr| SpfOutput {
            result,
            reason,
            explanation: None,
            identity,
            domain,
            sender,
            helo: helo.clone(),
            ip,
            lookups: 0,
            void_lookups: 0,
            dns_queries: 0,
            deciding_term: None,
            trace: Trace::default(),
        };
    let early = idn_error.or_else(|| check_initial_domain(&domain).err());
    if let Some(why) = early {
        let reason = format!("{why}; no SPF check is possible (§4.3)");
        if tracing {
            trace.notes.push(reason.clone());
        }
        let mut out = output(SpfResult::None, reason.into(), domain, sender);
        out.trace = trace;
        return out;
    }
    let mut ev = Evaluator {
        lookup,
        clock,
        opts: options,
        start: clock.now(),
        ip,
        sender: &sender,
        local: sender.get(..at).unwrap_or_default(),
        sender_domain: sender.get(at + 1..).unwrap_or_default(),
        helo: &helo,
        lookups: 0,
        voids: 0,
        queries: 0,
        budget_exceeded: false,
        memory: Memo::new(),
        pending: Vec::new(),
        validated: None,
    };
    let evaluated = ev.eval_domain_inner(&domain).await;
    trace.record = evaluated.trace.map(|t| *t);
    let mut explanation = None;
    let (result, reason, deciding_term) = match evaluated.verdict {
        // An answer was missing, so whatever was decided without it does not stand.
        Ok(_) if ev.budget_exceeded => (SpfResult::TempError, ev.budget_reason().into(), None),
        Ok(v) => {
            let v_domain = match &v.domain {
                Some(d) => SharedStr::from(d.as_str()),
                None => domain.clone(),
            };
            let exp = v.record.as_ref().and_then(|p| p.record.exp.as_ref());
            if v.result == SpfResult::Fail
                && (exp.is_some() || options.default_explanation.is_some())
            {
                // Boxed, as rare: see `eval_mx`.
                explanation = Box::pin(ev.explanation(exp, &v_domain)).await;
                trace.explanation_queries = std::mem::take(&mut ev.pending);
            }
            let (reason, deciding) = v.public(ip, v_domain);
            (v.result, reason, deciding)
        }
        Err(a) if ev.budget_exceeded => (SpfResult::TempError, ev.budget_reason().into(), a.term),
        Err(a) => (a.result, a.reason.into(), a.term),
    };
    let (lookups, void_lookups, dns_queries) = (ev.lookups, ev.voids, ev.queries);
    drop(ev);
    let mut out = output(result, reason, domain, sender);
    out.explanation = explanation;
    out.deciding_term = deciding_term;
    out.lookups = lookups;
    out.void_lookups = void_lookups;
    out.dns_queries = dns_queries;
    out.trace = trace;
    out
}

/// `local-part@domain` as the macros see it (§4.3), with the length of its local part:
/// `postmaster` for a missing local part, the domain without a final dot and in A-labels.
/// Unchanged (not copied) when it already is so, as it nearly always is.
fn canonical_sender(sender: SharedStr) -> (SharedStr, usize) {
    if let Some(at) = last_at(&sender).filter(|&at| at > 0)
        && sender
            .get(at + 1..)
            .is_some_and(|d| d.is_ascii() && !d.ends_with('.'))
    {
        return (sender, at);
    }
    let (local, sender_domain, has_local) = match split_at_last_at(&sender) {
        Some(("", d)) => ("postmaster", d, false),
        Some((l, d)) => (l, d, true),
        None => ("postmaster", &*sender, false),
    };
    let trimmed = sender_domain.strip_suffix('.').unwrap_or(sender_domain);
    let (converted, _) = to_a_labels(trimmed, &mut Vec::new(), false);
    if has_local && matches!(converted, Cow::Borrowed(_)) && trimmed.len() == sender_domain.len() {
        let at = local.len();
        return (sender.clone(), at);
    }
    (SharedStr::concat(&[local, "@", &converted]), local.len())
}

/// The position of the last `@`. (A plain scan: the domain after it is short, and
/// `rfind` sets up a vectorised search that costs more than it saves here.)
fn last_at(s: &str) -> Option<usize> {
    s.bytes().rposition(|b| b == b'@')
}

/// `s` split at its last `@`, like `rsplit_once('@')`.
fn split_at_last_at(s: &str) -> Option<(&str, &str)> {
    let at = last_at(s)?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// Converts a name with U-labels to A-labels (UTS #46 processing, as RFC 8616 §4 asks for
/// SPF); ASCII names are returned as they are. The error says why a name cannot be converted.
/// The conversion is noted in `notes` when `tracing`.
fn to_a_labels<'n>(
    name: &'n str,
    notes: &mut Vec<String>,
    tracing: bool,
) -> (Cow<'n, str>, Option<String>) {
    if name.is_ascii() {
        return (Cow::Borrowed(name), None);
    }
    match idna::domain_to_ascii(name) {
        Ok(ascii) => {
            if tracing {
                notes.push(format!(
                    "{name} is checked in its A-label form {ascii} (RFC 8616 §4)"
                ));
            }
            (Cow::Owned(ascii), None)
        }
        Err(_) => (
            Cow::Borrowed(name),
            Some(format!(
                "{name:?} is not a valid internationalized domain name"
            )),
        ),
    }
}

/// An IPv4-mapped IPv6 address is the IPv4 address (§5).
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// §4.3: the domain must be a multi-label domain name with labels of 1 to 63 octets.
fn check_initial_domain(domain: &str) -> Result<(), String> {
    let fault = match crate::name::check(domain, NameRules::SPF) {
        Ok(_) => return Ok(()),
        Err(f) => f,
    };
    Err(match fault {
        NameFault::Empty => "the domain is empty".into(),
        NameFault::AddressLiteral => {
            format!("{domain:?} is an address literal, not a domain name")
        }
        NameFault::Byte(_) if !domain.is_ascii() => format!(
            "{domain:?} is not ASCII: internationalized names must be given as A-labels (xn--)"
        ),
        NameFault::Byte(b) => format!(
            "{domain:?} contains {}, which no host name has",
            super::macros::show_byte(b)
        ),
        NameFault::TooLong => format!("{domain:?} is longer than 253 octets"),
        NameFault::SingleLabel => {
            format!("{domain:?} is not a fully qualified (multi-label) domain name")
        }
        NameFault::LongLabel(n) => {
            format!("{domain:?} has a label longer than 63 octets ({n} octets)")
        }
        NameFault::EmptyLabel => format!("{domain:?} has an empty label"),
        other => format!("{domain:?} is not a domain name: {other}"),
    })
}

/// Makes an expanded domain-spec ready for a query (§4.8): drops a trailing dot, shortens
/// names over 253 octets from the left, and rejects names DNS cannot carry. The result
/// borrows from `name` unless an internationalized name had to be converted.
fn prepare_target(name: &str) -> Result<Cow<'_, str>, String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if !n.is_ascii() {
        // Non-ASCII from a macro (an internationalized local part or HELO): A-labels, as
        // DNS carries them (RFC 8616 §4).
        let converted = idna::domain_to_ascii(n)
            .map_err(|_| format!("{n:?} is not a valid internationalized domain name"))?;
        return check_target(name, &converted).map(|t| Cow::Owned(t.to_owned()));
    }
    check_target(name, n).map(Cow::Borrowed)
}

/// [`prepare_target`] for an expansion that may be owned.
fn prepare_owned_target(name: Cow<'_, str>) -> Result<Cow<'_, str>, String> {
    match name {
        Cow::Borrowed(n) => prepare_target(n),
        Cow::Owned(n) => prepare_target(&n).map(|t| Cow::Owned(t.into_owned())),
    }
}

/// The shortening and checks of [`prepare_target`] on an ASCII name without a final dot;
/// `name` is the name as given, for the error.
fn check_target<'n>(name: &str, mut n: &'n str) -> Result<&'n str, String> {
    while n.len() > 253 {
        match n.split_once('.') {
            Some((_, rest)) => n = rest,
            None => return Err(format!("{name:?} cannot be shortened to 253 octets")),
        }
    }
    match crate::name::check(n, NameRules::QUERY) {
        Ok(_) => Ok(n),
        Err(NameFault::Empty) => Err("the name is empty".into()),
        Err(NameFault::EmptyLabel) => {
            Err(format!("{n:?} has an empty label, so it cannot be queried"))
        }
        Err(NameFault::LongLabel(_)) => Err(format!(
            "{n:?} has a label over 63 octets, so it cannot be queried"
        )),
        Err(other) => Err(format!("{n:?} cannot be queried: {other}")),
    }
}

/// The records of an answer as the trace shows them.
fn answer_texts(answer: &Answer) -> Vec<String> {
    match answer {
        Answer::Txt(v) => v.iter().map(|t| escape_txt(t)).collect(),
        Answer::A(v) => v.iter().map(ToString::to_string).collect(),
        Answer::Aaaa(v) => v.iter().map(ToString::to_string).collect(),
        Answer::Mx(v) => v
            .iter()
            .map(|m| {
                format!(
                    "{} {}",
                    m.preference,
                    if m.exchange.is_empty() {
                        "."
                    } else {
                        &m.exchange
                    }
                )
            })
            .collect(),
        Answer::Ptr(v) => v.clone(),
    }
}

/// Why a record gave its (non-error) result; written out by [`Evaluator::reason_text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// A mechanism matched: the verdict's `term`.
    Matched,
    /// Nothing matched and there was no redirect (§4.7).
    DefaultNeutral,
    /// The domain has no SPF record.
    NoRecord,
}

/// The outcome of evaluating a record.
struct Verdict {
    result: SpfResult,
    why: Why,
    /// The record that gave the result (for its `exp=` and the deciding term).
    record: Option<Arc<ParsedSpf>>,
    /// The index of the deciding directive in `record`.
    term: Option<usize>,
    /// The domain of `record`; `None` for the domain the record was evaluated for (a
    /// redirect fills in its target when it passes a verdict up).
    domain: Option<String>,
}

impl Verdict {
    fn no_record() -> Verdict {
        Verdict {
            result: SpfResult::None,
            why: Why::NoRecord,
            record: None,
            term: None,
            domain: None,
        }
    }

    /// The reason and the deciding term as the output gives them; `domain` is the domain
    /// of the verdict's record. Nothing is written out here (see [`SpfReason`]).
    fn public(&self, ip: IpAddr, domain: SharedStr) -> (SpfReason, Option<DecidingTerm>) {
        match self.why {
            Why::Matched => {
                let term = match (&self.record, self.term) {
                    (Some(p), Some(i)) => DecidingTerm::from_record(domain, p.clone(), i),
                    _ => DecidingTerm::new(&*domain, ""),
                };
                (
                    SpfReason::matched(self.result, ip, term.clone()),
                    Some(term),
                )
            }
            Why::DefaultNeutral => (SpfReason::default_neutral(domain, ip), None),
            Why::NoRecord => (SpfReason::no_record(domain), None),
        }
    }
}

/// Directive `i` of a parsed record in canonical form.
fn term_text(p: &ParsedSpf, i: usize) -> Cow<'_, str> {
    match p.terms.get(i) {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(
            p.record
                .directives
                .get(i)
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
    }
}

/// An evaluation that stopped with temperror or permerror.
struct Abort {
    result: SpfResult,
    reason: String,
    term: Option<DecidingTerm>,
}

impl Abort {
    fn perm(reason: String) -> Abort {
        Abort {
            result: SpfResult::PermError,
            reason,
            term: None,
        }
    }
    fn temp(reason: String) -> Abort {
        Abort {
            result: SpfResult::TempError,
            reason,
            term: None,
        }
    }
    fn outcome(&self) -> TermOutcome {
        if self.result == SpfResult::TempError {
            TermOutcome::TempError
        } else {
            TermOutcome::PermError
        }
    }
}

/// The trace of one term, kept only when tracing (boxed, so that the futures that carry
/// it stay small).
type Tt = Option<Box<TermTrace>>;

fn term_trace(tracing: bool, outcome: TermOutcome) -> Tt {
    tracing.then(|| {
        Box::new(TermTrace {
            term: String::new(),
            target: None,
            outcome,
            detail: String::new(),
            lookups: 0,
            void_lookups: 0,
            queries: Vec::new(),
            nested: None,
        })
    })
}

/// What evaluating one domain's record gives.
struct DomainEval {
    verdict: Result<Verdict, Abort>,
    /// The record's trace, when tracing (boxed: the futures that carry it stay small).
    trace: Option<Box<RecordTrace>>,
    /// The TXT query for the record came back empty (NXDOMAIN or NODATA): a void lookup of
    /// the `include` or `redirect` that asked it (§4.6.4).
    void_txt: bool,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct Evaluator<'a, L: ?Sized> {
    lookup: &'a L,
    clock: &'a dyn Clock,
    opts: &'a SpfOptions,
    start: Duration,
    ip: IpAddr,
    sender: &'a str,
    local: &'a str,
    sender_domain: &'a str,
    helo: &'a str,
    lookups: u32,
    voids: u32,
    queries: u32,
    budget_exceeded: bool,
    /// The questions asked and their answers (§4.6.4: none is asked twice).
    memory: Memo,
    /// Queries made since the current term started; each term takes its own. Only filled
    /// when tracing.
    pending: Vec<QueryTrace>,
    /// The validated names of the client (§5.5), computed once.
    validated: Option<Vec<String>>,
}

impl<'a, L: Lookup + ?Sized> Evaluator<'a, L> {
    fn budget_reason(&self) -> String {
        format!(
            "the evaluation took longer than its time budget of {:?} (§4.6.4)",
            self.opts.time_budget.unwrap_or_default()
        )
    }

    /// The reason of a verdict for a person, written out; `domain` is the domain of its
    /// record.
    fn reason_text(&self, v: &Verdict, domain: &str) -> String {
        v.public(self.ip, SharedStr::from(domain)).0.into()
    }

    /// Asks one DNS question, at most once per evaluation. `Ok` is the index of the answer
    /// in memory (see [`Evaluator::answer`]).
    async fn query(&mut self, qtype: QType, name: &str) -> Result<usize, DnsError> {
        let tracing = self.opts.trace;
        if let Some(i) = self.memory.find(qtype, name) {
            // A prefetched answer is shown as asked the first time it is used.
            let cached = !self.memory.use_answer(i);
            let answer = self.memory.answer(i);
            if tracing && let Some(a) = answer {
                let q = query_trace(qtype, shown_name(qtype, name), a.as_ref(), cached);
                self.pending.push(q);
            }
            return match answer {
                Some(Err(e)) => Err(e.clone()),
                _ => Ok(i),
            };
        }
        if self.over_budget() {
            let e = self.budget_error();
            if tracing {
                let q = query_trace(qtype, shown_name(qtype, name), Err(&e), false);
                self.pending.push(q);
            }
            return Err(e);
        }
        self.queries += 1;
        let answer = ask(self.lookup, qtype, name).await;
        if tracing {
            let q = query_trace(qtype, shown_name(qtype, name), answer.as_ref(), false);
            self.pending.push(q);
        }
        let err = answer.as_ref().err().cloned();
        let i = self.memory.insert(qtype, name, answer, false);
        match err {
            None => Ok(i),
            Some(e) => Err(e),
        }
    }

    /// The answer [`Evaluator::query`] gave as index `i`.
    fn answer(&self, i: usize) -> Option<&Answer> {
        self.memory.answer(i)?.as_ref().ok()
    }

    /// Asks the questions of `names` not yet answered, all at once, so that a set of MX
    /// hosts or PTR names costs one round trip rather than one each. The answers wait in
    /// memory for [`Evaluator::query`], which shows each in the trace where it is used.
    async fn prefetch(&mut self, qtype: QType, names: &[String]) {
        if self.over_budget() {
            return;
        }
        let names: SmallVec<[&str; 8]> = names.iter().map(String::as_str).collect();
        let missing = self.memory.missing(qtype, &names);
        if missing.len() < 2 {
            // One question gains nothing from being asked early.
            return;
        }
        self.queries += self.memory.ask_all(self.lookup, qtype, &missing).await;
    }

    /// Shows in the trace the prefetched answers that were not used (the search ended
    /// before reaching them): they were asked all the same.
    fn flush_prefetched(&mut self) {
        let unused = self.memory.use_all();
        if unused.is_empty() || !self.opts.trace {
            return;
        }
        let mut shown: Vec<QueryTrace> = unused
            .into_iter()
            .filter_map(|i| {
                let (qtype, name) = self.memory.question(i)?;
                let answer = self.memory.answer(i)?;
                Some(query_trace(qtype, name.to_owned(), answer.as_ref(), false))
            })
            .collect();
        shown.sort_by(|a, b| a.name.cmp(&b.name));
        for mut q in shown {
            q.note = Some("asked with the others, not needed".into());
            self.pending.push(q);
        }
    }

    fn over_budget(&mut self) -> bool {
        if let Some(budget) = self.opts.time_budget
            && self.clock.now().saturating_sub(self.start) > budget
        {
            self.budget_exceeded = true;
        }
        self.budget_exceeded
    }

    fn budget_error(&self) -> DnsError {
        DnsError::Temporary(format!(
            "time budget of {:?} exhausted; not asked",
            self.opts.time_budget.unwrap_or_default()
        ))
    }

    /// The address question for the client's family.
    fn address_qtype(&self) -> QType {
        match self.ip {
            IpAddr::V4(_) => QType::A,
            IpAddr::V6(_) => QType::Aaaa,
        }
    }

    /// Whether an address of `name` of the client's family is in the client's network of
    /// the given prefix lengths.
    async fn address_match(&mut self, name: &str, cidr4: u8, cidr6: u8) -> Result<bool, DnsError> {
        let i = self.query(self.address_qtype(), name).await?;
        let ip = self.ip;
        Ok(match self.answer(i) {
            Some(Answer::A(v)) => v
                .iter()
                .any(|a| in_network(ip, IpAddr::V4(*a), cidr4, cidr6)),
            Some(Answer::Aaaa(v)) => v
                .iter()
                .any(|a| in_network(ip, IpAddr::V6(*a), cidr4, cidr6)),
            _ => false,
        })
    }

    fn count_lookup(&mut self, term: &str) -> Result<(), Abort> {
        if self.lookups >= self.opts.max_dns_terms {
            return Err(Abort::perm(format!(
                "{term} would be DNS-querying term number {}; the limit is {} (§4.6.4)",
                self.lookups + 1,
                self.opts.max_dns_terms
            )));
        }
        self.lookups += 1;
        Ok(())
    }

    fn count_void(&mut self, name: &str) -> Result<(), Abort> {
        self.voids += 1;
        if self.voids > self.opts.max_void_lookups {
            return Err(Abort::perm(format!(
                "{name} gave void lookup number {}; the limit is {} (§4.6.4)",
                self.voids, self.opts.max_void_lookups
            )));
        }
        Ok(())
    }

    fn values<'v>(&'v self, domain: &'v str, validated: Option<&'v str>) -> MacroValues<'v> {
        MacroValues {
            sender: self.sender,
            local_part: self.local,
            sender_domain: self.sender_domain,
            domain,
            ip: self.ip,
            helo: self.helo,
            receiver: &self.opts.receiver,
            now: self.clock.unix_seconds(),
            validated_name: validated,
        }
    }

    /// Expands a macro string, looking up `%{p}` if it is used. A string without macros
    /// is its own expansion and is not copied.
    async fn expand<'m>(&mut self, m: &'m MacroString, domain: &str) -> Cow<'m, str> {
        if let Some(lit) = m.as_literal() {
            return Cow::Borrowed(lit);
        }
        if m.is_literal() {
            return Cow::Owned(m.expand(&self.values(domain, None)));
        }
        let p = if m.needs_validated_name() {
            // Boxed, as rare: see `eval_mx`.
            let names = Box::pin(self.validated_names()).await;
            pick_validated(&names, domain)
        } else {
            None
        };
        Cow::Owned(m.expand(&self.values(domain, p.as_deref())))
    }

    /// The validated names of the client IP (§5.5): PTR names whose addresses include it.
    async fn validated_names(&mut self) -> Vec<String> {
        if let Some(v) = &self.validated {
            return v.clone();
        }
        let ip = self.ip.to_string();
        let names = match self.query(QType::Ptr, &ip).await {
            Ok(i) => match self.answer(i) {
                Some(Answer::Ptr(names)) => names.clone(),
                _ => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        let mut validated = Vec::new();
        let names: Vec<String> = names
            .iter()
            .take(self.opts.max_mx_ptr_names)
            .filter_map(|n| prepare_target(n).ok().map(Cow::into_owned))
            .collect();
        self.prefetch(self.address_qtype(), &names).await;
        for n in names {
            if let Ok(true) = self.address_match(&n, 32, 128).await {
                validated.push(n.to_ascii_lowercase());
            }
        }
        self.flush_prefetched();
        self.validated = Some(validated.clone());
        validated
    }

    /// [`Evaluator::eval_domain_inner`] boxed, for the records of `include` and
    /// `redirect`, which nest.
    fn eval_domain<'s>(&'s mut self, domain: &'s str) -> BoxFuture<'s, DomainEval> {
        Box::pin(self.eval_domain_inner(domain))
    }

    /// Evaluates the record of `domain` (§4.4 to §4.7).
    async fn eval_domain_inner(&mut self, domain: &str) -> DomainEval {
        let tracing = self.opts.trace;
        let mark = self.pending.len();
        let (record, void_txt) = self.find_record(domain).await;
        let mut rt = tracing.then(|| {
            Box::new(RecordTrace {
                domain: domain.to_owned(),
                record: None,
                queries: self.pending.split_off(mark),
                terms: Vec::new(),
                result: SpfResult::None,
                reason: String::new(),
            })
        });
        let parsed = match record {
            Ok(Some(r)) => r,
            Ok(None) => {
                let v = Verdict::no_record();
                if let Some(rt) = &mut rt {
                    rt.reason = self.reason_text(&v, domain);
                }
                return DomainEval {
                    verdict: Ok(v),
                    trace: rt,
                    void_txt,
                };
            }
            Err((text, a)) => {
                if let Some(rt) = &mut rt {
                    rt.record = text;
                    rt.result = a.result;
                    rt.reason = a.reason.clone();
                }
                return DomainEval {
                    verdict: Err(a),
                    trace: rt,
                    void_txt,
                };
            }
        };
        if let Some(rt) = &mut rt {
            rt.record = Some(parsed.text.clone());
        }
        let verdict = self.eval_record(domain, &parsed, &mut rt).await;
        if let Some(rt) = &mut rt {
            match &verdict {
                Ok(v) => {
                    rt.result = v.result;
                    rt.reason = self.reason_text(v, v.domain.as_deref().unwrap_or(domain));
                }
                Err(a) => {
                    rt.result = a.result;
                    rt.reason = a.reason.clone();
                }
            }
        }
        DomainEval {
            verdict,
            trace: rt,
            void_txt,
        }
    }

    /// Fetches and selects the SPF record (§4.4, §4.5). `Ok(None)` is "no record". The
    /// flag is true when the TXT query came back empty (a void lookup).
    #[allow(clippy::type_complexity)]
    async fn find_record(
        &mut self,
        domain: &str,
    ) -> (
        Result<Option<Arc<ParsedSpf>>, (Option<String>, Abort)>,
        bool,
    ) {
        let i = match self.query(QType::Txt, domain).await {
            Ok(i) => i,
            Err(DnsError::NxDomain) | Err(DnsError::NoData) => return (Ok(None), true),
            Err(DnsError::Temporary(e)) => {
                return (
                    Err((
                        None,
                        Abort::temp(format!("the TXT lookup for {domain} failed: {e}")),
                    )),
                    false,
                );
            }
        };
        let Some(Answer::Txt(txts)) = self.answer(i) else {
            return (Ok(None), false);
        };
        let mut spf = txts.iter().filter(|t| is_spf_record(t));
        let (Some(one), None) = (spf.next(), spf.next()) else {
            let n = txts.iter().filter(|t| is_spf_record(t)).count();
            if n == 0 {
                return (Ok(None), false);
            }
            return (
                Err((
                    None,
                    Abort::perm(format!(
                        "{domain} publishes {n} SPF records; there must be exactly one (§4.5)"
                    )),
                )),
                false,
            );
        };
        if one.len() > self.opts.max_record_bytes {
            return (
                Err((
                    Some(escape_txt(one)),
                    Abort::perm(format!(
                        "the SPF record of {domain} is {} bytes, over the limit of {}",
                        one.len(),
                        self.opts.max_record_bytes
                    )),
                )),
                false,
            );
        }
        let parsed = match &self.opts.record_cache {
            Some(cache) => cache.get_or_parse(one),
            None => ParsedSpf::parse(one).map(Arc::new),
        };
        let found = match parsed {
            Ok(p) => Ok(Some(p)),
            Err(e) => Err((
                Some(escape_txt(one)),
                Abort::perm(format!("syntax error in the SPF record of {domain}: {e}")),
            )),
        };
        (found, false)
    }

    async fn eval_record(
        &mut self,
        domain: &str,
        parsed: &Arc<ParsedSpf>,
        rt: &mut Option<Box<RecordTrace>>,
    ) -> Result<Verdict, Abort> {
        let tracing = self.opts.trace;
        let record = &parsed.record;
        for (i, d) in record.directives.iter().enumerate() {
            let term = term_text(parsed, i);
            let mark = self.pending.len();
            let mut tt = term_trace(tracing, TermOutcome::NoMatch);
            let matched = self.eval_directive(d, domain, &term, &mut tt).await;
            self.flush_prefetched();
            if let Some(tt) = tt.as_deref_mut() {
                tt.queries = self.pending.split_off(mark);
                tt.lookups = self.lookups;
                tt.void_lookups = self.voids;
            }
            match matched {
                Ok(true) => {
                    if let (Some(rt), Some(mut tt)) = (rt.as_deref_mut(), tt) {
                        tt.outcome = TermOutcome::Match;
                        tt.term = term.into_owned();
                        rt.terms.push(*tt);
                    }
                    return Ok(Verdict {
                        result: d.qualifier.result(),
                        why: Why::Matched,
                        record: Some(parsed.clone()),
                        term: Some(i),
                        domain: None,
                    });
                }
                Ok(false) => {
                    if let (Some(rt), Some(mut tt)) = (rt.as_deref_mut(), tt) {
                        tt.outcome = TermOutcome::NoMatch;
                        tt.term = term.into_owned();
                        rt.terms.push(*tt);
                    }
                }
                Err(mut a) => {
                    if let (Some(rt), Some(mut tt)) = (rt.as_deref_mut(), tt) {
                        tt.outcome = a.outcome();
                        if tt.detail.is_empty() {
                            tt.detail = a.reason.clone();
                        }
                        tt.term = term.to_string();
                        rt.terms.push(*tt);
                    }
                    if a.term.is_none() {
                        a.term = Some(DecidingTerm::new(domain, term));
                    }
                    return Err(a);
                }
            }
        }
        // No mechanism matched: redirect= (§6.1), unless there is an `all` (then one matched).
        if let Some(redirect) = &record.redirect
            && !record.has_all()
        {
            let term = format!("redirect={redirect}");
            let mark = self.pending.len();
            let mut tt = term_trace(tracing, TermOutcome::Redirected);
            let result = self.eval_redirect(redirect, domain, &term, &mut tt).await;
            if let Some(tt) = tt.as_deref_mut() {
                tt.term = term.clone();
                tt.queries = self.pending.split_off(mark);
                tt.lookups = self.lookups;
                tt.void_lookups = self.voids;
            }
            match result {
                Ok(v) => {
                    if let (Some(rt), Some(tt)) = (rt.as_deref_mut(), tt) {
                        rt.terms.push(*tt);
                    }
                    return Ok(v);
                }
                Err(mut a) => {
                    if let (Some(rt), Some(mut tt)) = (rt.as_deref_mut(), tt) {
                        tt.outcome = a.outcome();
                        tt.detail = a.reason.clone();
                        rt.terms.push(*tt);
                    }
                    if a.term.is_none() {
                        a.term = Some(DecidingTerm::new(domain, term));
                    }
                    return Err(a);
                }
            }
        }
        Ok(Verdict {
            result: SpfResult::Neutral,
            why: Why::DefaultNeutral,
            record: Some(parsed.clone()),
            term: None,
            domain: None,
        })
    }

    /// Follows `redirect=` (§6.1): the target's result is the result, and a target with no
    /// record is a permerror.
    async fn eval_redirect(
        &mut self,
        redirect: &MacroString,
        domain: &str,
        term: &str,
        tt: &mut Tt,
    ) -> Result<Verdict, Abort> {
        self.count_lookup(term)?;
        let target = self.expand(redirect, domain).await;
        if self.opts.trace
            && let Some(tt) = tt.as_deref_mut()
        {
            tt.target = Some(target.to_string());
        }
        let target = prepare_owned_target(target).map_err(|why| {
            Abort::perm(format!(
                "redirect={redirect}: {why}; a redirect to no record is a permerror (§6.1)"
            ))
        })?;
        let nested = self.eval_domain(&target).await;
        if let Some(tt) = tt.as_deref_mut() {
            tt.nested = nested.trace;
        }
        let mut v = nested.verdict?;
        if v.result == SpfResult::None {
            if nested.void_txt {
                self.count_void(&target)?;
            }
            return Err(Abort::perm(format!(
                "redirect={target}: {target} has no SPF record, which is a permerror (§6.1)"
            )));
        }
        if self.opts.trace
            && let Some(tt) = tt.as_deref_mut()
        {
            tt.detail = format!("the result of {target} is the result: {}", v.result);
        }
        if v.domain.is_none() {
            v.domain = Some(target.into_owned());
        }
        Ok(v)
    }

    /// Evaluates one mechanism: `Ok(true)` when it matches.
    async fn eval_directive(
        &mut self,
        d: &Directive,
        domain: &str,
        term: &str,
        tt: &mut Tt,
    ) -> Result<bool, Abort> {
        if d.mechanism.queries_dns() {
            self.count_lookup(term)?;
        }
        match &d.mechanism {
            Mechanism::All => {
                if let Some(tt) = tt.as_deref_mut() {
                    tt.detail = "all always matches".into();
                }
                Ok(true)
            }
            Mechanism::Ip4 { addr, prefix } => {
                let m = in_network(self.ip, IpAddr::V4(*addr), *prefix, 0);
                if self.ip.is_ipv6()
                    && let Some(tt) = tt.as_deref_mut()
                {
                    tt.detail = "the client is IPv6".into();
                }
                Ok(m)
            }
            Mechanism::Ip6 { addr, prefix } => {
                if self.ip.is_ipv4() {
                    if let Some(tt) = tt.as_deref_mut() {
                        tt.detail = "the client is IPv4".into();
                    }
                    return Ok(false);
                }
                Ok(in_network(self.ip, IpAddr::V6(*addr), 0, *prefix))
            }
            Mechanism::A {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let Some(target) = self.target(spec.as_ref(), domain, tt).await else {
                    return Ok(false);
                };
                match self.address_match(&target, *cidr4, *cidr6).await {
                    Ok(m) => Ok(m),
                    Err(e) => self.dns_failure(&target, e, tt),
                }
            }
            Mechanism::Mx {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let Some(target) = self.target(spec.as_ref(), domain, tt).await else {
                    return Ok(false);
                };
                // Boxed: the mx search is rare and its state would make every term's
                // future (moved at each await) larger.
                Box::pin(self.eval_mx(&target, *cidr4, *cidr6, tt)).await
            }
            Mechanism::Ptr(spec) => {
                let Some(target) = self.target(spec.as_ref(), domain, tt).await else {
                    return Ok(false);
                };
                let names = Box::pin(self.validated_names()).await;
                let t = target.to_ascii_lowercase();
                let dotted = format!(".{t}");
                match names.iter().find(|n| **n == t || n.ends_with(&dotted)) {
                    Some(n) => {
                        if let Some(tt) = tt.as_deref_mut() {
                            tt.detail = format!("validated name {n} is in {target}");
                        }
                        Ok(true)
                    }
                    None => {
                        if let Some(tt) = tt.as_deref_mut() {
                            tt.detail = if names.is_empty() {
                                "the client has no validated name".into()
                            } else {
                                format!("validated names: {}", names.join(", "))
                            };
                        }
                        Ok(false)
                    }
                }
            }
            Mechanism::Exists(spec) => {
                let Some(target) = self.target(Some(spec), domain, tt).await else {
                    return Ok(false);
                };
                // Always an A query, whatever the client's family (§5.7).
                match self.query(QType::A, &target).await {
                    Ok(_) => Ok(true),
                    Err(e) => self.dns_failure(&target, e, tt),
                }
            }
            Mechanism::Include(spec) => {
                let target = self.expand(spec, domain).await;
                if let Some(tt) = tt.as_deref_mut() {
                    tt.target = Some(target.to_string());
                }
                let target = match prepare_owned_target(target) {
                    Ok(t) => t,
                    Err(why) => {
                        return Err(Abort::perm(format!(
                            "include:{spec}: {why}; an include of no record is a permerror (§5.2)"
                        )));
                    }
                };
                let nested = self.eval_domain(&target).await;
                if let Some(tt) = tt.as_deref_mut() {
                    tt.nested = nested.trace;
                }
                match nested.verdict {
                    Ok(v) => match v.result {
                        SpfResult::Pass => {
                            if let Some(tt) = tt.as_deref_mut() {
                                tt.detail = format!("{target} gave pass");
                            }
                            Ok(true)
                        }
                        SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => {
                            if let Some(tt) = tt.as_deref_mut() {
                                tt.detail = format!(
                                    "{target} gave {}, so include does not match",
                                    v.result
                                );
                            }
                            Ok(false)
                        }
                        SpfResult::None => {
                            if nested.void_txt {
                                self.count_void(&target)?;
                            }
                            Err(Abort::perm(format!(
                                "include:{target}: {target} has no SPF record, which is a permerror (§5.2)"
                            )))
                        }
                        // A record's verdict is never an error (those are aborts); kept
                        // for completeness.
                        SpfResult::TempError | SpfResult::PermError => {
                            let v_domain = v.domain.as_deref().unwrap_or(&target);
                            let (reason, term) = v.public(self.ip, SharedStr::from(v_domain));
                            Err(Abort {
                                result: v.result,
                                reason: format!("in include:{target}: {reason}"),
                                term,
                            })
                        }
                    },
                    Err(a) => Err(Abort {
                        result: a.result,
                        reason: if a.reason.starts_with("in include:") {
                            a.reason
                        } else {
                            format!("in include:{target}: {}", a.reason)
                        },
                        term: a.term,
                    }),
                }
            }
        }
    }

    /// The search of an `mx` mechanism (§5.4) once its target is known.
    async fn eval_mx(
        &mut self,
        target: &str,
        cidr4: u8,
        cidr6: u8,
        tt: &mut Tt,
    ) -> Result<bool, Abort> {
        let mut mxs = match self.query(QType::Mx, target).await {
            Ok(i) => match self.answer(i) {
                Some(Answer::Mx(m)) => m.clone(),
                _ => Vec::new(),
            },
            Err(e) => return self.dns_failure(target, e, tt),
        };
        if mxs.len() > self.opts.max_mx_ptr_names {
            return Err(Abort::perm(format!(
                "{target} has {} MX records; an mx mechanism may look at no more than {} (§4.6.4)",
                mxs.len(),
                self.opts.max_mx_ptr_names
            )));
        }
        mxs.sort_by_key(|m| m.preference);
        let hosts: Vec<String> = mxs
            .iter()
            .filter_map(|m| prepare_target(&m.exchange).ok().map(Cow::into_owned))
            .collect();
        self.prefetch(self.address_qtype(), &hosts).await;
        for mx in &mxs {
            if mx.exchange.is_empty() {
                if let Some(tt) = tt.as_deref_mut() {
                    tt.detail = format!("{target} has a null MX (RFC 7505)");
                }
                continue;
            }
            let Ok(host) = prepare_target(&mx.exchange) else {
                continue;
            };
            match self.address_match(&host, cidr4, cidr6).await {
                Ok(true) => {
                    if let Some(tt) = tt.as_deref_mut() {
                        tt.detail = format!("the client is an address of MX host {host}");
                    }
                    return Ok(true);
                }
                Ok(false) => {}
                Err(DnsError::Temporary(e)) => {
                    return Err(Abort::temp(format!(
                        "the address lookup for MX host {host} failed: {e}"
                    )));
                }
                Err(_) => {}
            }
        }
        Ok(false)
    }

    /// The expanded and checked target of a mechanism; `None` (no match) when it cannot be
    /// queried, as §4.3 does for the checked domain.
    async fn target<'m>(
        &mut self,
        spec: Option<&'m MacroString>,
        domain: &'m str,
        tt: &mut Tt,
    ) -> Option<Cow<'m, str>> {
        let expanded = match spec {
            Some(s) => self.expand(s, domain).await,
            None => Cow::Borrowed(domain),
        };
        if let Some(tt) = tt.as_deref_mut() {
            tt.target = Some(expanded.to_string());
        }
        match prepare_owned_target(expanded) {
            Ok(t) => Some(t),
            Err(why) => {
                if let Some(tt) = tt.as_deref_mut() {
                    tt.detail = format!("{why}: no match");
                }
                None
            }
        }
    }

    /// NXDOMAIN/NODATA: no match and a void lookup; a temporary failure: temperror.
    fn dns_failure(&mut self, target: &str, e: DnsError, tt: &mut Tt) -> Result<bool, Abort> {
        match e {
            DnsError::NxDomain | DnsError::NoData => {
                if self.opts.trace
                    && let Some(tt) = tt.as_deref_mut()
                {
                    tt.detail = format!("{target}: {e}");
                }
                self.count_void(target)?;
                Ok(false)
            }
            DnsError::Temporary(why) => Err(Abort::temp(format!(
                "the DNS lookup for {target} failed: {why}"
            ))),
        }
    }

    /// The explanation for a fail (§6.2): the `exp=` text if it can be had, else the default.
    async fn explanation(&mut self, exp: Option<&MacroString>, domain: &str) -> Option<String> {
        if let Some(exp) = exp
            && let Some(text) = self.exp_text(exp, domain).await
        {
            return Some(text);
        }
        let default = self.opts.default_explanation.as_deref()?;
        match MacroString::parse(default, MacroContext::Explanation) {
            Ok(m) => Some(self.expand(&m, domain).await.into_owned()),
            Err(_) => Some(default.to_owned()),
        }
    }

    async fn exp_text(&mut self, exp: &MacroString, domain: &str) -> Option<String> {
        let name = self.expand(exp, domain).await;
        let name = prepare_owned_target(name).ok()?;
        let i = self.query(QType::Txt, &name).await.ok()?;
        let m = {
            let Some(Answer::Txt(txts)) = self.answer(i) else {
                return None;
            };
            let [one] = txts.as_slice() else { return None };
            if !one.iter().all(|b| (0x20..=0x7e).contains(b)) {
                return None;
            }
            let text = std::str::from_utf8(one).ok()?;
            MacroString::parse(text, MacroContext::Explanation).ok()?
        };
        Some(self.expand(&m, domain).await.into_owned())
    }
}

/// `%{p}` (§7.3): the validated name equal to the domain, else one in it, else any.
fn pick_validated(names: &[String], domain: &str) -> Option<String> {
    let d = domain.to_ascii_lowercase();
    let dotted = format!(".{d}");
    names
        .iter()
        .find(|n| **n == d)
        .or_else(|| names.iter().find(|n| n.ends_with(&dotted)))
        .or_else(|| names.first())
        .cloned()
}

fn in_network(ip: IpAddr, net: IpAddr, cidr4: u8, cidr6: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(cidr4.min(32)))
                .unwrap_or(0);
            (u32::from(a) & mask) == (u32::from(b) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(cidr6.min(128)))
                .unwrap_or(0);
            (u128::from(a) & mask) == (u128::from(b) & mask)
        }
        _ => false,
    }
}

/// The name of a question as the trace shows it (for PTR, the reverse name).
fn shown_name(qtype: QType, name: &str) -> String {
    match qtype {
        QType::Ptr => name
            .parse::<IpAddr>()
            .map_or_else(|_| name.to_owned(), reverse_name),
        _ => name.to_owned(),
    }
}

fn query_trace(
    qtype: QType,
    name: String,
    answer: Result<&Answer, &DnsError>,
    cached: bool,
) -> QueryTrace {
    let (class, records, error) = match answer {
        Ok(a) => (AnswerClass::Records, answer_texts(a), None),
        Err(DnsError::NxDomain) => (AnswerClass::NxDomain, Vec::new(), None),
        Err(DnsError::NoData) => (AnswerClass::NoData, Vec::new(), None),
        Err(DnsError::Temporary(e)) => (AnswerClass::TempError, Vec::new(), Some(e.clone())),
    };
    QueryTrace {
        qtype: qtype.as_str(),
        name,
        answer: class,
        records,
        cached,
        error,
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::MxRecord;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A small zone: an include chain, an `a` and an `mx` mechanism.
    struct Zone;
    impl Lookup for Zone {
        async fn txt(&self, name: &str) -> crate::dns::DnsResult<Vec<u8>> {
            match name {
                "example.com" => Ok(vec![b"v=spf1 a mx include:_spf.example.net ~all".to_vec()]),
                "_spf.example.net" => Ok(vec![b"v=spf1 ip4:192.0.2.0/24 -all".to_vec()]),
                _ => Err(DnsError::NxDomain),
            }
        }
        async fn a(&self, name: &str) -> crate::dns::DnsResult<Ipv4Addr> {
            match name {
                "example.com" => Ok(vec![Ipv4Addr::new(198, 51, 100, 1)]),
                _ => Err(DnsError::NxDomain),
            }
        }
        async fn aaaa(&self, _: &str) -> crate::dns::DnsResult<Ipv6Addr> {
            Err(DnsError::NoData)
        }
        async fn mx(&self, _: &str) -> crate::dns::DnsResult<MxRecord> {
            Err(DnsError::NoData)
        }
        async fn ptr(&self, _: IpAddr) -> crate::dns::DnsResult<String> {
            Err(DnsError::NxDomain)
        }
    }

    #[test]
    fn trace_and_record_cache_do_not_change_the_verdict() {
        let clock = crate::FixedClock::from_unix_seconds(1_700_000_000);
        let plain = SpfOptions::default();
        let fast = SpfOptions {
            trace: false,
            record_cache: Some(Arc::new(super::super::SpfRecordCache::new(16))),
            ..SpfOptions::default()
        };
        for ip in ["192.0.2.7", "198.51.100.1", "203.0.113.9"] {
            let req = SpfRequest::new(ip.parse().unwrap(), "mx.example.com")
                .with_mail_from("alice@example.com");
            let a = pollster::block_on(verify_mail_from(&Zone, &clock, &plain, &req));
            for _ in 0..2 {
                let b = pollster::block_on(verify_mail_from(&Zone, &clock, &fast, &req));
                assert_eq!(
                    (
                        a.result,
                        &a.reason,
                        &a.deciding_term,
                        a.lookups,
                        a.void_lookups
                    ),
                    (
                        b.result,
                        &b.reason,
                        &b.deciding_term,
                        b.lookups,
                        b.void_lookups
                    ),
                    "{ip}"
                );
                assert!(b.trace.record.is_none() && b.trace.notes.is_empty());
            }
            assert!(!a.trace.record.as_ref().unwrap().terms.is_empty());
        }
    }

    #[test]
    fn outputs_share_the_request_names_and_write_the_reason_when_read() {
        let clock = crate::FixedClock::from_unix_seconds(1_700_000_000);
        let opts = SpfOptions {
            trace: false,
            ..SpfOptions::default()
        };
        let req = SpfRequest::new("192.0.2.7".parse().unwrap(), "mx.example.com")
            .with_mail_from("alice@example.com");
        let m = pollster::block_on(verify_mail_from(&Zone, &clock, &opts, &req));
        let h = pollster::block_on(verify_helo(&Zone, &clock, &opts, &req));
        let from = req.mail_from.as_ref().unwrap();
        assert!(m.sender.same_buffer(from) && m.domain.same_buffer(from));
        assert_eq!(
            (m.sender.as_str(), m.domain.as_str()),
            ("alice@example.com", "example.com")
        );
        assert!(m.helo.same_buffer(&req.helo) && h.helo.same_buffer(&req.helo));
        assert!(h.domain.same_buffer(&req.helo));
        assert_eq!(h.sender, "postmaster@mx.example.com");
        assert_eq!(m.result, SpfResult::Pass);
        assert_eq!(
            m.reason,
            "example.com authorises 192.0.2.7 with include:_spf.example.net"
        );
        let d = m.deciding_term.clone().unwrap();
        assert_eq!(
            (d.domain(), d.term()),
            ("example.com", "include:_spf.example.net")
        );
        assert_eq!(String::from(m.reason.clone()), m.reason.to_string());
        assert_eq!(h.result, SpfResult::None);
        assert_eq!(h.reason, "mx.example.com publishes no SPF record");
    }

    #[test]
    fn one_buffer_request_gives_the_same_outputs_without_copying_names() {
        let clock = crate::FixedClock::from_unix_seconds(1_700_000_000);
        let opts = SpfOptions {
            trace: false,
            ..SpfOptions::default()
        };
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for (helo, from) in [
            ("mx.example.com", Some("<alice@example.com>")),
            ("mx.example.com.", Some("@example.com")),
            ("mx.example.com", None),
            ("", Some("alice@example.com")),
        ] {
            let one = SpfRequest::with_identities(ip, helo, from);
            let mut two = SpfRequest::new(ip, helo);
            if let Some(f) = from {
                two = two.with_mail_from(f);
            }
            assert_eq!(one, two);
            let m1 = pollster::block_on(verify_mail_from(&Zone, &clock, &opts, &one));
            let m2 = pollster::block_on(verify_mail_from(&Zone, &clock, &opts, &two));
            assert_eq!(m1, m2);
            let h1 = pollster::block_on(verify_helo(&Zone, &clock, &opts, &one));
            let h2 = pollster::block_on(verify_helo(&Zone, &clock, &opts, &two));
            assert_eq!(h1, h2);
            // `postmaster@<helo>` is a view into the request's one buffer.
            assert!(h1.sender.same_buffer(&one.helo) && h1.helo.same_buffer(&one.helo));
            if from.is_none() {
                assert!(m1.sender.same_buffer(&one.helo));
            }
            if let Some(f) = &one.mail_from {
                assert!(f.same_buffer(&one.helo));
            }
        }
    }

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_network(ip("192.0.2.10"), ip("192.0.2.0"), 24, 128));
        assert!(!in_network(ip("192.0.3.10"), ip("192.0.2.0"), 24, 128));
        assert!(in_network(ip("1.2.3.4"), ip("9.9.9.9"), 0, 128));
        assert!(in_network(ip("2001:db8::1"), ip("2001:db8::"), 32, 32));
        assert!(in_network(ip("2001:db8::1"), ip("::"), 32, 0));
        assert!(!in_network(ip("2001:db8::1"), ip("1.2.3.4"), 0, 0));
    }

    #[test]
    fn initial_domains() {
        assert!(check_initial_domain("example.com").is_ok());
        assert!(check_initial_domain("A2345678").is_err());
        assert!(check_initial_domain("[1.2.3.5]").is_err());
        assert!(check_initial_domain("A...example.com").is_err());
        assert!(check_initial_domain(&format!("{}.example.com", "a".repeat(64))).is_err());
        assert!(check_initial_domain(&format!("{}.example.com", "a".repeat(63))).is_ok());
    }

    #[test]
    fn truncation() {
        let long = format!("{}example.com", "abcdefghi.".repeat(30));
        let t = prepare_target(&long).unwrap();
        assert!(t.len() <= 253 && t.ends_with(".example.com"), "{t}");
        assert!(prepare_target("a..b").is_err());
    }
}
