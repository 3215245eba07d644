//! check_host() (§4) and the initial processing of the two identities (§2.3, §2.4, §4.3).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::macros::{MacroContext, MacroString, MacroValues};
use super::record::{Directive, Mechanism, ParsedSpf, Record, is_spf_record};
use super::trace::{
    AnswerClass, QueryTrace, RecordTrace, TermOutcome, TermTrace, Trace, escape_txt,
};
use super::{DecidingTerm, Identity, SpfOptions, SpfOutput, SpfRequest, SpfResult};
use crate::Clock;
use crate::dns::{DnsError, Lookup, MxRecord, reverse_name};

/// Checks the MAIL FROM identity (§2.4): `check_host(ip, domain of MAIL FROM, MAIL FROM)`,
/// or `postmaster@<helo>` when the reverse-path is null. A missing local part means
/// `postmaster` (§4.3).
pub async fn verify_mail_from<L: Lookup + ?Sized>(
    lookup: &L,
    clock: &dyn Clock,
    options: &SpfOptions,
    request: &SpfRequest,
) -> SpfOutput {
    let helo = request.helo.trim_end_matches('.');
    let (sender, domain, note) = match request.mail_from.as_deref() {
        None | Some("") => (
            format!("postmaster@{helo}"),
            helo.to_owned(),
            format!("null reverse-path: checking postmaster@{helo} (§2.4)"),
        ),
        Some(addr) => match addr.rsplit_once('@') {
            Some(("", d)) => (
                format!("postmaster@{d}"),
                d.to_owned(),
                format!("MAIL FROM {addr:?} has no local part: using postmaster (§4.3)"),
            ),
            Some((_, d)) => (
                addr.to_owned(),
                d.to_owned(),
                format!("checking MAIL FROM {addr}"),
            ),
            None => (
                format!("postmaster@{addr}"),
                addr.to_owned(),
                format!(
                    "MAIL FROM {addr:?} has no '@': taking it as a domain, local part postmaster"
                ),
            ),
        },
    };
    run(
        lookup,
        clock,
        options,
        request.ip,
        Identity::MailFrom,
        &domain,
        &sender,
        &request.helo,
        note,
    )
    .await
}

/// Checks the HELO identity (§2.3): `check_host(ip, helo, postmaster@helo)`.
pub async fn verify_helo<L: Lookup + ?Sized>(
    lookup: &L,
    clock: &dyn Clock,
    options: &SpfOptions,
    request: &SpfRequest,
) -> SpfOutput {
    let helo = request.helo.trim_end_matches('.');
    run(
        lookup,
        clock,
        options,
        request.ip,
        Identity::Helo,
        helo,
        &format!("postmaster@{helo}"),
        &request.helo,
        format!("checking HELO {}", request.helo),
    )
    .await
}

/// The check_host() function of §4: is `ip` allowed to send mail for `domain`, with
/// `sender` (`local-part@domain`) and `helo` for the macros?
///
/// A `domain` that is not a syntactically valid multi-label domain name gives `none`
/// without any DNS query (§4.3).
pub async fn check_host<L: Lookup + ?Sized>(
    lookup: &L,
    clock: &dyn Clock,
    options: &SpfOptions,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
) -> SpfOutput {
    run(
        lookup,
        clock,
        options,
        ip,
        Identity::MailFrom,
        domain,
        sender,
        helo,
        format!("check_host({ip}, {domain}, {sender})"),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run<L: Lookup + ?Sized>(
    lookup: &L,
    clock: &dyn Clock,
    options: &SpfOptions,
    ip: IpAddr,
    identity: Identity,
    domain: &str,
    sender: &str,
    helo: &str,
    note: String,
) -> SpfOutput {
    let ip = unmap(ip);
    let mut notes = vec![note];
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    // RFC 8616 §4: internationalized names are evaluated in their A-label form.
    let (domain, idn_error) = to_a_labels(domain, &mut notes);
    let domain = domain.as_str();
    let (local, sender_domain) = match sender.rsplit_once('@') {
        Some(("", d)) => ("postmaster", d),
        Some((l, d)) => (l, d),
        None => ("postmaster", sender),
    };
    let sender_domain = sender_domain.strip_suffix('.').unwrap_or(sender_domain);
    let (sender_domain, _) = to_a_labels(sender_domain, &mut Vec::new());
    let sender_full = format!("{local}@{sender_domain}");
    let mut ev = Evaluator {
        lookup,
        clock,
        opts: options,
        start: clock.now(),
        ip,
        sender: sender_full.clone(),
        local: local.to_owned(),
        sender_domain,
        helo: helo.to_owned(),
        lookups: 0,
        voids: 0,
        queries: 0,
        budget_exceeded: false,
        cache: HashMap::new(),
        pending: Vec::new(),
        validated: None,
    };
    let mut trace = Trace {
        notes,
        ..Trace::default()
    };
    let mut out = SpfOutput {
        result: SpfResult::None,
        reason: String::new(),
        explanation: None,
        identity,
        domain: domain.to_owned(),
        sender: sender_full,
        helo: helo.to_owned(),
        ip,
        lookups: 0,
        void_lookups: 0,
        dns_queries: 0,
        deciding_term: None,
        trace: Trace::default(),
    };
    if let Some(why) = idn_error {
        out.reason = format!("{why}; no SPF check is possible (§4.3)");
        trace.notes.push(out.reason.clone());
        out.trace = trace;
        return out;
    }
    if let Err(why) = check_initial_domain(domain) {
        out.reason = format!("{why}; no SPF check is possible (§4.3)");
        trace.notes.push(out.reason.clone());
        out.trace = trace;
        return out;
    }
    let (verdict, record_trace) = ev.eval_domain(domain.to_owned()).await;
    trace.record = Some(record_trace);
    match verdict {
        Ok(v) => {
            out.result = v.result;
            out.reason = v.reason;
            out.deciding_term = v.deciding;
            if ev.budget_exceeded {
                // An answer was missing, so whatever was decided without it does not stand.
                out.result = SpfResult::TempError;
                out.reason = ev.budget_reason();
                out.deciding_term = None;
            } else if v.result == SpfResult::Fail {
                out.explanation = ev.explanation(v.exp.as_ref(), &v.domain).await;
                trace.explanation_queries = std::mem::take(&mut ev.pending);
            }
        }
        Err(a) => {
            out.result = a.result;
            out.reason = a.reason;
            out.deciding_term = a.term;
            if ev.budget_exceeded {
                out.result = SpfResult::TempError;
                out.reason = ev.budget_reason();
            }
        }
    }
    out.lookups = ev.lookups;
    out.void_lookups = ev.voids;
    out.dns_queries = ev.queries;
    out.trace = trace;
    out
}

/// Converts a name with U-labels to A-labels (UTS #46 processing, as RFC 8616 §4 asks for
/// SPF); ASCII names are returned as they are. The error says why a name cannot be converted.
fn to_a_labels(name: &str, notes: &mut Vec<String>) -> (String, Option<String>) {
    if name.is_ascii() {
        return (name.to_owned(), None);
    }
    match idna::domain_to_ascii(name) {
        Ok(ascii) => {
            notes.push(format!(
                "{name} is checked in its A-label form {ascii} (RFC 8616 §4)"
            ));
            (ascii, None)
        }
        Err(_) => (
            name.to_owned(),
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
    if domain.is_empty() {
        return Err("the domain is empty".into());
    }
    if domain.starts_with('[') {
        return Err(format!(
            "{domain:?} is an address literal, not a domain name"
        ));
    }
    if !domain.is_ascii() {
        return Err(format!(
            "{domain:?} is not ASCII: internationalized names must be given as A-labels (xn--)"
        ));
    }
    if let Some(b) = domain.bytes().find(|b| !(b.is_ascii_graphic())) {
        return Err(format!(
            "{domain:?} contains {}, which no host name has",
            super::macros::show_byte(b)
        ));
    }
    if domain.len() > 253 {
        return Err(format!("{domain:?} is longer than 253 octets"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "{domain:?} is not a fully qualified (multi-label) domain name"
        ));
    }
    if let Some(l) = labels.iter().find(|l| l.len() > 63) {
        return Err(format!(
            "{domain:?} has a label longer than 63 octets ({} octets)",
            l.len()
        ));
    }
    if labels.iter().any(|l| l.is_empty()) {
        return Err(format!("{domain:?} has an empty label"));
    }
    Ok(())
}

/// Makes an expanded domain-spec ready for a query (§4.8): drops a trailing dot, shortens
/// names over 253 octets from the left, and rejects names DNS cannot carry.
fn prepare_target(name: &str) -> Result<String, String> {
    let converted;
    let mut n = name.strip_suffix('.').unwrap_or(name);
    if !n.is_ascii() {
        // Non-ASCII from a macro (an internationalized local part or HELO): A-labels, as
        // DNS carries them (RFC 8616 §4).
        converted = idna::domain_to_ascii(n)
            .map_err(|_| format!("{n:?} is not a valid internationalized domain name"))?;
        n = &converted;
    }
    while n.len() > 253 {
        match n.split_once('.') {
            Some((_, rest)) => n = rest,
            None => return Err(format!("{name:?} cannot be shortened to 253 octets")),
        }
    }
    if n.is_empty() {
        return Err("the name is empty".into());
    }
    if n.split('.').any(str::is_empty) {
        return Err(format!("{n:?} has an empty label, so it cannot be queried"));
    }
    if n.split('.').any(|l| l.len() > 63) {
        return Err(format!(
            "{n:?} has a label over 63 octets, so it cannot be queried"
        ));
    }
    Ok(n.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum QType {
    Txt,
    A,
    Aaaa,
    Mx,
    Ptr,
}

impl QType {
    fn as_str(self) -> &'static str {
        match self {
            QType::Txt => "TXT",
            QType::A => "A",
            QType::Aaaa => "AAAA",
            QType::Mx => "MX",
            QType::Ptr => "PTR",
        }
    }
}

#[derive(Debug, Clone)]
enum Answer {
    Txt(Vec<Vec<u8>>),
    A(Vec<Ipv4Addr>),
    Aaaa(Vec<Ipv6Addr>),
    Mx(Vec<MxRecord>),
    Ptr(Vec<String>),
}

impl Answer {
    fn texts(&self) -> Vec<String> {
        match self {
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

    fn len(&self) -> usize {
        match self {
            Answer::Txt(v) => v.len(),
            Answer::A(v) => v.len(),
            Answer::Aaaa(v) => v.len(),
            Answer::Mx(v) => v.len(),
            Answer::Ptr(v) => v.len(),
        }
    }
}

/// A remembered answer.
struct CacheEntry {
    answer: Result<Arc<Answer>, DnsError>,
    /// Asked ahead of use by [`Evaluator::prefetch`] and not yet shown in the trace.
    prefetched: bool,
}

/// The outcome of evaluating a record.
struct Verdict {
    result: SpfResult,
    reason: String,
    deciding: Option<DecidingTerm>,
    /// The `exp=` of the record that gave the result, and that record's domain.
    exp: Option<MacroString>,
    domain: String,
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

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct Evaluator<'a, L: ?Sized> {
    lookup: &'a L,
    clock: &'a dyn Clock,
    opts: &'a SpfOptions,
    start: Duration,
    ip: IpAddr,
    sender: String,
    local: String,
    sender_domain: String,
    helo: String,
    lookups: u32,
    voids: u32,
    queries: u32,
    budget_exceeded: bool,
    cache: HashMap<(QType, String), CacheEntry>,
    /// Queries made since the current term started; each term takes its own.
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

    /// Asks one DNS question, at most once per evaluation.
    async fn query(&mut self, qtype: QType, name: &str) -> Result<Arc<Answer>, DnsError> {
        let key = cache_key(qtype, name);
        let tracing = self.opts.trace;
        let shown_name = || match qtype {
            QType::Ptr => name
                .parse::<IpAddr>()
                .map_or_else(|_| name.to_owned(), reverse_name),
            _ => name.to_owned(),
        };
        if let Some(entry) = self.cache.get_mut(&key) {
            // A prefetched answer is shown as asked the first time it is used.
            let cached = !std::mem::take(&mut entry.prefetched);
            let answer = entry.answer.clone();
            if tracing {
                self.pending
                    .push(query_trace(qtype, shown_name(), &answer, cached));
            }
            return answer;
        }
        if self.over_budget() {
            let e = self.budget_error();
            if tracing {
                self.pending
                    .push(query_trace(qtype, shown_name(), &Err(e.clone()), false));
            }
            return Err(e);
        }
        self.queries += 1;
        let answer = ask(self.lookup, qtype, name).await;
        if tracing {
            self.pending
                .push(query_trace(qtype, shown_name(), &answer, false));
        }
        self.cache.insert(
            key,
            CacheEntry {
                answer: answer.clone(),
                prefetched: false,
            },
        );
        answer
    }

    /// Asks the questions of `names` not yet answered, all at once, so that a set of MX
    /// hosts or PTR names costs one round trip rather than one each. The answers wait in
    /// memory for [`Evaluator::query`], which shows each in the trace where it is used.
    async fn prefetch(&mut self, qtype: QType, names: &[String]) {
        if self.over_budget() {
            return;
        }
        let mut keys = Vec::new();
        let mut asks = Vec::new();
        for name in names {
            let key = cache_key(qtype, name);
            if self.cache.contains_key(&key) || keys.contains(&key) {
                continue;
            }
            keys.push(key);
            asks.push(Box::pin(ask(self.lookup, qtype, name)));
        }
        if asks.len() < 2 {
            // One question gains nothing from being asked early.
            return;
        }
        let answers = JoinAll::new(asks).await;
        for (key, answer) in keys.into_iter().zip(answers) {
            self.queries += 1;
            self.cache.insert(
                key,
                CacheEntry {
                    answer,
                    prefetched: true,
                },
            );
        }
    }

    /// Shows in the trace the prefetched answers that were not used (the search ended
    /// before reaching them): they were asked all the same.
    fn flush_prefetched(&mut self) {
        if !self.opts.trace {
            for e in self.cache.values_mut() {
                e.prefetched = false;
            }
            return;
        }
        let mut unused: Vec<QueryTrace> = self
            .cache
            .iter_mut()
            .filter(|(_, e)| e.prefetched)
            .map(|((qtype, name), e)| {
                e.prefetched = false;
                query_trace(*qtype, name.clone(), &e.answer, false)
            })
            .collect();
        unused.sort_by(|a, b| a.name.cmp(&b.name));
        for mut q in unused {
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

    /// Addresses of `name` of the client's family.
    async fn addresses(&mut self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        match self.ip {
            IpAddr::V4(_) => match &*self.query(QType::A, name).await? {
                Answer::A(v) => Ok(v.iter().copied().map(IpAddr::V4).collect()),
                _ => Ok(Vec::new()),
            },
            IpAddr::V6(_) => match &*self.query(QType::Aaaa, name).await? {
                Answer::Aaaa(v) => Ok(v.iter().copied().map(IpAddr::V6).collect()),
                _ => Ok(Vec::new()),
            },
        }
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
            sender: &self.sender,
            local_part: &self.local,
            sender_domain: &self.sender_domain,
            domain,
            ip: self.ip,
            helo: &self.helo,
            receiver: &self.opts.receiver,
            now: self.clock.unix_seconds(),
            validated_name: validated,
        }
    }

    /// Expands a macro string, looking up `%{p}` if it is used.
    async fn expand(&mut self, m: &MacroString, domain: &str) -> String {
        if m.is_literal() {
            return m.expand(&self.values(domain, None));
        }
        let p = if m.needs_validated_name() {
            let names = self.validated_names().await;
            pick_validated(&names, domain)
        } else {
            None
        };
        m.expand(&self.values(domain, p.as_deref()))
    }

    /// The validated names of the client IP (§5.5): PTR names whose addresses include it.
    async fn validated_names(&mut self) -> Vec<String> {
        if let Some(v) = &self.validated {
            return v.clone();
        }
        let names = match self
            .query(QType::Ptr, &self.ip.to_string())
            .await
            .as_deref()
        {
            Ok(Answer::Ptr(names)) => names.clone(),
            _ => Vec::new(),
        };
        let mut validated = Vec::new();
        let names: Vec<String> = names
            .iter()
            .take(self.opts.max_mx_ptr_names)
            .filter_map(|n| prepare_target(n).ok())
            .collect();
        self.prefetch(self.address_qtype(), &names).await;
        for n in names {
            if let Ok(addrs) = self.addresses(&n).await
                && addrs.contains(&self.ip)
            {
                validated.push(n.to_ascii_lowercase());
            }
        }
        self.flush_prefetched();
        self.validated = Some(validated.clone());
        validated
    }

    /// Evaluates the record of `domain` (§4.4 to §4.7).
    fn eval_domain(
        &mut self,
        domain: String,
    ) -> BoxFuture<'_, (Result<Verdict, Abort>, RecordTrace)> {
        Box::pin(async move {
            let mut rt = RecordTrace {
                domain: domain.clone(),
                record: None,
                queries: Vec::new(),
                terms: Vec::new(),
                result: SpfResult::None,
                reason: String::new(),
            };
            let mark = self.pending.len();
            let record = self.find_record(&domain).await;
            rt.queries = self.pending.split_off(mark);
            let parsed = match record {
                Ok(Some(r)) => r,
                Ok(None) => {
                    rt.reason = format!("{domain} publishes no SPF record");
                    let v = Verdict {
                        result: SpfResult::None,
                        reason: rt.reason.clone(),
                        deciding: None,
                        exp: None,
                        domain,
                    };
                    return (Ok(v), rt);
                }
                Err((text, a)) => {
                    rt.record = text;
                    rt.result = a.result;
                    rt.reason = a.reason.clone();
                    return (Err(a), rt);
                }
            };
            if self.opts.trace {
                rt.record = Some(parsed.text.clone());
            }
            let verdict = self
                .eval_record(&domain, &parsed.record, &parsed.terms, &mut rt)
                .await;
            match &verdict {
                Ok(v) => {
                    rt.result = v.result;
                    rt.reason = v.reason.clone();
                }
                Err(a) => {
                    rt.result = a.result;
                    rt.reason = a.reason.clone();
                }
            }
            (verdict, rt)
        })
    }

    /// Fetches and selects the SPF record (§4.4, §4.5). `Ok(None)` is "no record".
    #[allow(clippy::type_complexity)]
    async fn find_record(
        &mut self,
        domain: &str,
    ) -> Result<Option<Arc<ParsedSpf>>, (Option<String>, Abort)> {
        let answer = self.query(QType::Txt, domain).await;
        let txts = match answer.as_deref() {
            Ok(Answer::Txt(t)) => t,
            Ok(_) | Err(DnsError::NxDomain) | Err(DnsError::NoData) => return Ok(None),
            Err(DnsError::Temporary(e)) => {
                return Err((
                    None,
                    Abort::temp(format!("the TXT lookup for {domain} failed: {e}")),
                ));
            }
        };
        let spf: Vec<&Vec<u8>> = txts.iter().filter(|t| is_spf_record(t)).collect();
        match spf.as_slice() {
            [] => Ok(None),
            [one] => {
                if one.len() > self.opts.max_record_bytes {
                    return Err((
                        Some(escape_txt(one)),
                        Abort::perm(format!(
                            "the SPF record of {domain} is {} bytes, over the limit of {}",
                            one.len(),
                            self.opts.max_record_bytes
                        )),
                    ));
                }
                let parsed = match &self.opts.record_cache {
                    Some(cache) => cache.get_or_parse(one),
                    None => ParsedSpf::parse(one).map(Arc::new),
                };
                match parsed {
                    Ok(p) => Ok(Some(p)),
                    Err(e) => Err((
                        Some(escape_txt(one)),
                        Abort::perm(format!("syntax error in the SPF record of {domain}: {e}")),
                    )),
                }
            }
            many => Err((
                None,
                Abort::perm(format!(
                    "{domain} publishes {} SPF records; there must be exactly one (§4.5)",
                    many.len()
                )),
            )),
        }
    }

    async fn eval_record(
        &mut self,
        domain: &str,
        record: &Record,
        terms: &[String],
        rt: &mut RecordTrace,
    ) -> Result<Verdict, Abort> {
        for (i, d) in record.directives.iter().enumerate() {
            let term = terms.get(i).cloned().unwrap_or_else(|| d.to_string());
            let mark = self.pending.len();
            let mut tt = TermTrace {
                term: String::new(),
                target: None,
                outcome: TermOutcome::NoMatch,
                detail: String::new(),
                lookups: 0,
                void_lookups: 0,
                queries: Vec::new(),
                nested: None,
            };
            let matched = self.eval_directive(d, domain, &term, &mut tt).await;
            self.flush_prefetched();
            tt.queries = self.pending.split_off(mark);
            tt.lookups = self.lookups;
            tt.void_lookups = self.voids;
            let deciding = |term: &str| DecidingTerm {
                domain: domain.to_owned(),
                term: term.to_owned(),
            };
            match matched {
                Ok(true) => {
                    tt.outcome = TermOutcome::Match;
                    let result = d.qualifier.result();
                    let reason = match_reason(result, self.ip, domain, &term);
                    let deciding = deciding(&term);
                    tt.term = term;
                    if self.opts.trace {
                        rt.terms.push(tt);
                    }
                    return Ok(Verdict {
                        result,
                        reason,
                        deciding: Some(deciding),
                        exp: record.exp.clone(),
                        domain: domain.to_owned(),
                    });
                }
                Ok(false) => {
                    tt.outcome = TermOutcome::NoMatch;
                    tt.term = term;
                    if self.opts.trace {
                        rt.terms.push(tt);
                    }
                }
                Err(mut a) => {
                    tt.outcome = a.outcome();
                    if tt.detail.is_empty() {
                        tt.detail = a.reason.clone();
                    }
                    if a.term.is_none() {
                        a.term = Some(deciding(&term));
                    }
                    tt.term = term;
                    if self.opts.trace {
                        rt.terms.push(tt);
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
            let mut tt = TermTrace {
                term: term.clone(),
                target: None,
                outcome: TermOutcome::Redirected,
                detail: String::new(),
                lookups: 0,
                void_lookups: 0,
                queries: Vec::new(),
                nested: None,
            };
            let deciding = DecidingTerm {
                domain: domain.to_owned(),
                term: term.clone(),
            };
            let result = self.eval_redirect(redirect, domain, &term, &mut tt).await;
            tt.queries = self.pending.split_off(mark);
            tt.lookups = self.lookups;
            tt.void_lookups = self.voids;
            match result {
                Ok(v) => {
                    if self.opts.trace {
                        rt.terms.push(tt);
                    }
                    return Ok(v);
                }
                Err(mut a) => {
                    tt.outcome = a.outcome();
                    tt.detail = a.reason.clone();
                    if self.opts.trace {
                        rt.terms.push(tt);
                    }
                    if a.term.is_none() {
                        a.term = Some(deciding);
                    }
                    return Err(a);
                }
            }
        }
        Ok(Verdict {
            result: SpfResult::Neutral,
            reason: format!(
                "no mechanism in the record of {domain} matched {}, so the default result applies (§4.7)",
                self.ip
            ),
            deciding: None,
            exp: record.exp.clone(),
            domain: domain.to_owned(),
        })
    }

    /// Follows `redirect=` (§6.1): the target's result is the result, and a target with no
    /// record is a permerror.
    async fn eval_redirect(
        &mut self,
        redirect: &MacroString,
        domain: &str,
        term: &str,
        tt: &mut TermTrace,
    ) -> Result<Verdict, Abort> {
        self.count_lookup(term)?;
        let target = self.expand(redirect, domain).await;
        tt.target = Some(target.clone());
        let target = prepare_target(&target).map_err(|why| {
            Abort::perm(format!(
                "redirect={redirect}: {why}; a redirect to no record is a permerror (§6.1)"
            ))
        })?;
        let (v, nested) = self.eval_domain(target.clone()).await;
        let void = record_lookup_was_void(&nested);
        tt.nested = Some(Box::new(nested));
        let v = v?;
        if v.result == SpfResult::None {
            if void {
                self.count_void(&target)?;
            }
            return Err(Abort::perm(format!(
                "redirect={target}: {target} has no SPF record, which is a permerror (§6.1)"
            )));
        }
        tt.detail = format!("the result of {target} is the result: {}", v.result);
        Ok(v)
    }

    /// Evaluates one mechanism: `Ok(true)` when it matches.
    async fn eval_directive(
        &mut self,
        d: &Directive,
        domain: &str,
        term: &str,
        tt: &mut TermTrace,
    ) -> Result<bool, Abort> {
        if d.mechanism.queries_dns() {
            self.count_lookup(term)?;
        }
        match &d.mechanism {
            Mechanism::All => {
                tt.detail = "all always matches".into();
                Ok(true)
            }
            Mechanism::Ip4 { addr, prefix } => {
                let m = in_network(self.ip, IpAddr::V4(*addr), *prefix, 0);
                if self.ip.is_ipv6() {
                    tt.detail = "the client is IPv6".into();
                }
                Ok(m)
            }
            Mechanism::Ip6 { addr, prefix } => {
                if self.ip.is_ipv4() {
                    tt.detail = "the client is IPv4".into();
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
                match self.addresses(&target).await {
                    Ok(addrs) => {
                        let m = addrs
                            .iter()
                            .any(|a| in_network(self.ip, *a, *cidr4, *cidr6));
                        Ok(m)
                    }
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
                let mut mxs = match self.query(QType::Mx, &target).await.as_deref() {
                    Ok(Answer::Mx(m)) => m.clone(),
                    Ok(_) => Vec::new(),
                    Err(e) => return self.dns_failure(&target, e.clone(), tt),
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
                    .filter_map(|m| prepare_target(&m.exchange).ok())
                    .collect();
                self.prefetch(self.address_qtype(), &hosts).await;
                for mx in &mxs {
                    if mx.exchange.is_empty() {
                        tt.detail = format!("{target} has a null MX (RFC 7505)");
                        continue;
                    }
                    let Ok(host) = prepare_target(&mx.exchange) else {
                        continue;
                    };
                    match self.addresses(&host).await {
                        Ok(addrs) => {
                            if addrs
                                .iter()
                                .any(|a| in_network(self.ip, *a, *cidr4, *cidr6))
                            {
                                tt.detail = format!("the client is an address of MX host {host}");
                                return Ok(true);
                            }
                        }
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
            Mechanism::Ptr(spec) => {
                let Some(target) = self.target(spec.as_ref(), domain, tt).await else {
                    return Ok(false);
                };
                let names = self.validated_names().await;
                let t = target.to_ascii_lowercase();
                let dotted = format!(".{t}");
                match names.iter().find(|n| **n == t || n.ends_with(&dotted)) {
                    Some(n) => {
                        tt.detail = format!("validated name {n} is in {target}");
                        Ok(true)
                    }
                    None => {
                        tt.detail = if names.is_empty() {
                            "the client has no validated name".into()
                        } else {
                            format!("validated names: {}", names.join(", "))
                        };
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
                tt.target = Some(target.clone());
                let target = match prepare_target(&target) {
                    Ok(t) => t,
                    Err(why) => {
                        return Err(Abort::perm(format!(
                            "include:{spec}: {why}; an include of no record is a permerror (§5.2)"
                        )));
                    }
                };
                let (v, nested) = self.eval_domain(target.clone()).await;
                let void_txt = record_lookup_was_void(&nested);
                tt.nested = Some(Box::new(nested));
                match v {
                    Ok(v) => match v.result {
                        SpfResult::Pass => {
                            tt.detail = format!("{target} gave pass");
                            Ok(true)
                        }
                        SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => {
                            tt.detail =
                                format!("{target} gave {}, so include does not match", v.result);
                            Ok(false)
                        }
                        SpfResult::None => {
                            if void_txt {
                                self.count_void(&target)?;
                            }
                            Err(Abort::perm(format!(
                                "include:{target}: {target} has no SPF record, which is a permerror (§5.2)"
                            )))
                        }
                        SpfResult::TempError | SpfResult::PermError => Err(Abort {
                            result: v.result,
                            reason: format!("in include:{target}: {}", v.reason),
                            term: v.deciding,
                        }),
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

    /// The expanded and checked target of a mechanism; `None` (no match) when it cannot be
    /// queried, as §4.3 does for the checked domain.
    async fn target(
        &mut self,
        spec: Option<&MacroString>,
        domain: &str,
        tt: &mut TermTrace,
    ) -> Option<String> {
        let expanded = match spec {
            Some(s) => self.expand(s, domain).await,
            None => domain.to_owned(),
        };
        tt.target = Some(expanded.clone());
        match prepare_target(&expanded) {
            Ok(t) => Some(t),
            Err(why) => {
                tt.detail = format!("{why}: no match");
                None
            }
        }
    }

    /// NXDOMAIN/NODATA: no match and a void lookup; a temporary failure: temperror.
    fn dns_failure(
        &mut self,
        target: &str,
        e: DnsError,
        tt: &mut TermTrace,
    ) -> Result<bool, Abort> {
        match e {
            DnsError::NxDomain | DnsError::NoData => {
                tt.detail = format!("{target}: {e}");
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
            Ok(m) => Some(self.expand(&m, domain).await),
            Err(_) => Some(default.to_owned()),
        }
    }

    async fn exp_text(&mut self, exp: &MacroString, domain: &str) -> Option<String> {
        let name = self.expand(exp, domain).await;
        let name = prepare_target(&name).ok()?;
        let answer = self.query(QType::Txt, &name).await;
        let txts = match answer.as_deref() {
            Ok(Answer::Txt(t)) => t,
            _ => return None,
        };
        let [one] = txts.as_slice() else { return None };
        if !one.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return None;
        }
        let text = std::str::from_utf8(one).ok()?;
        let m = MacroString::parse(text, MacroContext::Explanation).ok()?;
        Some(self.expand(&m, domain).await)
    }
}

/// True when the TXT query for a record came back empty (NXDOMAIN or NODATA): a void
/// lookup of the `include` or `redirect` that asked it (§4.6.4).
fn record_lookup_was_void(r: &RecordTrace) -> bool {
    r.queries
        .iter()
        .any(|q| matches!(q.answer, AnswerClass::NxDomain | AnswerClass::NoData))
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

fn match_reason(result: SpfResult, ip: IpAddr, domain: &str, term: &str) -> String {
    match result {
        SpfResult::Pass => format!("{domain} authorises {ip} with {term}"),
        SpfResult::Fail => format!("{domain} does not authorise {ip}: it matched {term}"),
        SpfResult::SoftFail => {
            format!("{domain} probably does not authorise {ip}: it matched {term}")
        }
        _ => format!("{domain} makes no assertion about {ip}: it matched {term}"),
    }
}

fn cache_key(qtype: QType, name: &str) -> (QType, String) {
    match qtype {
        QType::Ptr => (qtype, name.to_owned()),
        _ => (qtype, name.to_ascii_lowercase()),
    }
}

/// One question to the lookup, with the contract's promise that `Ok` is never empty
/// enforced for lookups that break it.
async fn ask<L: Lookup + ?Sized>(
    lookup: &L,
    qtype: QType,
    name: &str,
) -> Result<Arc<Answer>, DnsError> {
    let answer = match qtype {
        QType::Txt => lookup.txt(name).await.map(Answer::Txt),
        QType::A => lookup.a(name).await.map(Answer::A),
        QType::Aaaa => lookup.aaaa(name).await.map(Answer::Aaaa),
        QType::Mx => lookup.mx(name).await.map(Answer::Mx),
        QType::Ptr => match name.parse::<IpAddr>() {
            Ok(ip) => lookup.ptr(ip).await.map(Answer::Ptr),
            Err(_) => Err(DnsError::NxDomain),
        },
    };
    match answer {
        Ok(a) if a.len() == 0 => Err(DnsError::NoData),
        other => other.map(Arc::new),
    }
}

/// Polls several futures together and yields their outputs in order.
struct JoinAll<F: Future> {
    futures: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
}

impl<F: Future> JoinAll<F> {
    fn new(futures: Vec<Pin<Box<F>>>) -> Self {
        let outputs = futures.iter().map(|_| None).collect();
        JoinAll {
            futures: futures.into_iter().map(Some).collect(),
            outputs,
        }
    }
}

// The futures are boxed and the outputs are never pinned, so moving a `JoinAll` is fine.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        let mut pending = false;
        for (slot, out) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            return std::task::Poll::Pending;
        }
        std::task::Poll::Ready(this.outputs.iter_mut().filter_map(Option::take).collect())
    }
}

fn query_trace(
    qtype: QType,
    name: String,
    answer: &Result<Arc<Answer>, DnsError>,
    cached: bool,
) -> QueryTrace {
    let (class, records, error) = match answer {
        Ok(a) => (AnswerClass::Records, a.texts(), None),
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
                assert!(b.trace.record.as_ref().unwrap().terms.is_empty());
            }
            assert!(!a.trace.record.as_ref().unwrap().terms.is_empty());
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
