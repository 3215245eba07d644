//! The DMARC filter: the [`crate::filter`] traits implemented over the staged receiver
//! session ([`dmarc_receiver::session`]), driven frame by frame.
//!
//! * MAIL FROM starts a [`Transaction`]: SPF for MAIL FROM and HELO is asked at once
//!   (the questions travel while the MTA sends RCPT TO and the header, through
//!   [`MessageFilter::drive`]).
//! * Header fields go to the transaction as they come (and are kept in the message for
//!   the failure-report candidate); the end of the header starts the DMARC record and
//!   the DKIM key lookups ([`Transaction::end_of_headers`]).
//! * Body chunks are hashed by the DKIM verifier as they arrive and not kept.
//! * End of message awaits what DNS work is still missing ([`Body::finish`]), bounded by
//!   [`Policy::message_timeout`], and [`decide`] turns the [`Verdicts`] into an
//!   [`Outcome`]: one Authentication-Results field inserted at the top, every field
//!   claiming our authserv-id deleted, optionally Received-SPF, and accept, quarantine
//!   (hold or a header), reject (`550 5.7.1`) or tempfail (`451 4.7.5`) as configured.
//!
//! The message (header and body together) is bounded by [`Policy::max_message_size`]:
//! past it the session is dropped, the rest of the body skipped, and the `oversize`
//! choice applies. Early decisions happen where the facts are known: client networks at
//! connect, SASL-authenticated clients at MAIL FROM, exempt sender and recipient domains
//! and a bad From field at end of header. Every outcome goes to the [`MessageSink`]s
//! (log line, metrics, the counter of observations).

mod sink;

pub use sink::{Exemption, LogSink, MessageRecord, MessageSink, MetricsSink, log_line};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use dmarc_dns::SystemClock;
use dmarc_proto::Lookup;
use dmarc_proto::arc::forwarder::TrustedSealers;
use dmarc_proto::auth_results;
use dmarc_proto::dmarc::{
    AuthorOptions, MultipleAddresses, MultipleFields, Spec, Unreadable, author_domains,
};
use dmarc_receiver::{
    Action, Body, Observation, Randomness, Receiver, ReceiverConfig, SmtpFacts, Transaction,
    Verdicts,
};

use crate::codec::SmtpReply;
use crate::config::{
    BadFromChoice, DnsFailureChoice, Mode, OversizeChoice, Policy, QuarantineChoice, SpecChoice,
};
use crate::filter::{
    BodyStep, Client, ConnectionFilter, Decision, EnvelopeAddress, Filter, HeaderEdit, HeaderField,
    Macros, MessageFilter, Negotiated, Outcome, Step,
};
use crate::metrics::Metrics;

/// Recipients kept per message (more are counted, not kept).
const MAX_RECIPIENTS: usize = 100;
/// From fields kept for the Author Domain check.
const MAX_FROM_FIELDS: usize = 8;

/// The [`Filter`]: one per configuration.
pub struct DmarcFilter<L> {
    shared: Arc<Shared<L>>,
}

impl<L> std::fmt::Debug for DmarcFilter<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmarcFilter")
            .field("authserv_id", &self.shared.policy.authserv_id)
            .finish_non_exhaustive()
    }
}

struct Shared<L> {
    policy: Policy,
    env: SessionEnv<L>,
    sinks: Vec<Arc<dyn MessageSink>>,
    metrics: Arc<Metrics>,
}

/// What every receiver session of this filter uses, shared: DNS, the clock, the `pct`
/// draws and the receiver's configuration.
type SessionEnv<L> = Receiver<Arc<L>, SystemClock, SharedRng, Arc<ReceiverConfig>>;

/// The configured random source, cheap to clone into each session.
#[derive(Clone)]
struct SharedRng(Arc<dyn Randomness>);

impl Randomness for SharedRng {
    fn percent(&self) -> u8 {
        self.0.percent()
    }
}

/// Where a message's receiver session stands (each state boxed: they are large, and
/// each is moved once).
enum Stage<L: Lookup + Send + Sync + 'static> {
    /// After MAIL FROM: SPF running, header fields arriving.
    Envelope(Box<Transaction<'static, SessionEnv<L>>>),
    /// After the header: DMARC record and keys asked, body being hashed.
    Body(Box<Body<'static, SessionEnv<L>>>),
    /// Given up on (the message grew past `max_message_size`), or moved out.
    None,
}

/// How the library reads the From field for each `bad_from` choice, in one place:
/// `evaluate` is the library's default (every Author Domain of a From field evaluated, the
/// strictest verdict applying; several From fields, or one that cannot be read, a DMARC
/// failure of the domains they name; refused when they name none: RFC 9989 §11.5);
/// `reject` refuses every such message (it is refused at end of header already, so the
/// evaluation meets one only in monitor mode, where it is reported as refused).
pub fn author_options(choice: BadFromChoice) -> AuthorOptions {
    match choice {
        BadFromChoice::Evaluate => AuthorOptions::default(),
        BadFromChoice::Reject => AuthorOptions {
            multiple_addresses: MultipleAddresses::Reject,
            multiple_fields: MultipleFields::Reject,
            unreadable: Unreadable::Reject,
        },
    }
}

/// The one Author Domain of a message's From fields, or what is wrong with them (no From
/// field, several, no address, several addresses, an invalid domain: RFC 5322 §3.6,
/// RFC 9989 §5.3.1).
pub fn single_author_domain(from_fields: &[&[u8]]) -> Result<String, String> {
    match author_domains(from_fields, &author_options(BadFromChoice::Reject)) {
        Err(e) => Err(e.to_string()),
        Ok(a) if a.addresses.len() != 1 => Err(format!(
            "the From field has {} addresses",
            a.addresses.len()
        )),
        Ok(a) => a
            .domains
            .first()
            .map(|d| d.as_str().to_owned())
            .ok_or_else(|| "the From field has no domain".to_owned()),
    }
}

impl<L: Lookup + Send + Sync + 'static> DmarcFilter<L> {
    /// A filter with these settings, asking DNS through `lookup` (count its questions
    /// with [`crate::metrics::Metered`]), drawing `pct` samples from `rng`, and handing
    /// every message's outcome to `sinks`.
    pub fn new(
        policy: Policy,
        lookup: Arc<L>,
        rng: Arc<dyn Randomness>,
        sinks: Vec<Arc<dyn MessageSink>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut receiver = ReceiverConfig::new(policy.authserv_id.clone());
        receiver.dmarc.spec = match policy.spec {
            SpecChoice::Rfc9989 => Spec::Rfc9989,
            SpecChoice::Rfc7489 => Spec::Rfc7489,
        };
        receiver.dmarc.author = author_options(policy.bad_from);
        receiver.trusted_authserv_ids = policy.exempt.trusted_authserv_ids.clone();
        receiver.arc.enabled = policy.arc.enabled;
        receiver.arc.trusted_sealers = TrustedSealers::new(&policy.arc.trusted_sealers);
        let env = Receiver {
            lookup,
            clock: SystemClock,
            rng: SharedRng(rng),
            config: Arc::new(receiver),
        };
        DmarcFilter {
            shared: Arc::new(Shared {
                policy,
                env,
                sinks,
                metrics,
            }),
        }
    }
}

impl<L: Lookup + Send + Sync + 'static> Filter for DmarcFilter<L> {
    type Connection = DmarcConnection<L>;

    fn connect(
        &self,
        client: &Client,
        negotiated: &Negotiated,
        macros: &Macros,
    ) -> Step<DmarcConnection<L>> {
        let ip = client
            .ip()
            .or_else(|| macros.get("client_addr").and_then(|a| a.parse().ok()));
        if let Some(ip) = ip
            && self.shared.policy.exempt.client(ip)
        {
            self.shared
                .metrics
                .exempt(Exemption::ClientAddress.as_str());
            return Step::Done(Decision::Accept);
        }
        Step::Continue(DmarcConnection {
            shared: self.shared.clone(),
            ip,
            name: client.hostname.clone(),
            helo: String::new(),
            negotiated: *negotiated,
        })
    }
}

/// One SMTP session.
pub struct DmarcConnection<L> {
    shared: Arc<Shared<L>>,
    ip: Option<IpAddr>,
    name: String,
    helo: String,
    negotiated: Negotiated,
}

impl<L> std::fmt::Debug for DmarcConnection<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmarcConnection")
            .field("ip", &self.ip)
            .field("helo", &self.helo)
            .finish_non_exhaustive()
    }
}

impl<L: Lookup + Send + Sync + 'static> std::fmt::Debug for DmarcMessage<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmarcMessage")
            .field("queue_id", &self.queue_id)
            .field("mail_from", &self.mail_from)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl<L: Lookup + Send + Sync + 'static> ConnectionFilter for DmarcConnection<L> {
    type Message = DmarcMessage<L>;

    fn helo(&mut self, name: &str, _macros: &Macros) {
        name.clone_into(&mut self.helo);
    }

    fn mail(&mut self, from: &EnvelopeAddress, macros: &Macros) -> Step<DmarcMessage<L>> {
        let mut msg = DmarcMessage {
            shared: self.shared.clone(),
            ip: self.ip,
            name: self.name.clone(),
            helo: self.helo.clone(),
            mail_from: from.address.clone(),
            queue_id: macros.get("i").map(str::to_owned),
            recipients: Vec::new(),
            recipient_domains_exempt: true,
            stage: Stage::None,
            header: Vec::new(),
            size: 0,
            oversize: false,
            from_fields: Vec::new(),
            from_count: 0,
            ar_seen: 0,
            forged: Vec::new(),
            trusted_upstream: false,
            negotiated: self.negotiated,
            started: Instant::now(),
        };
        let exempt =
            if self.shared.policy.exempt.authenticated && macros.get("auth_authen").is_some() {
                Some(Exemption::Authenticated)
            } else if self.ip.is_none() {
                Some(Exemption::NoClientAddress)
            } else {
                None
            };
        match exempt {
            Some(e) => {
                msg.finish(None, Action::Accept, Some(e), None, None);
                Step::Done(Decision::Accept)
            }
            None => {
                // A message with a client address (checked above): SPF starts now.
                if let Some(ip) = self.ip {
                    let facts =
                        SmtpFacts::new(ip, self.helo.clone()).with_mail_from(from.address.clone());
                    msg.stage =
                        Stage::Envelope(Box::new(Transaction::new(self.shared.env.clone(), facts)));
                }
                Step::Continue(msg)
            }
        }
    }
}

/// One message: the facts, the receiver session, what was seen in the header.
pub struct DmarcMessage<L: Lookup + Send + Sync + 'static> {
    shared: Arc<Shared<L>>,
    ip: Option<IpAddr>,
    name: String,
    helo: String,
    mail_from: String,
    queue_id: Option<String>,
    recipients: Vec<String>,
    /// Every recipient so far is in an exempt domain.
    recipient_domains_exempt: bool,
    stage: Stage<L>,
    /// The header block as received (the failure-report candidate's header fields).
    header: Vec<u8>,
    /// Bytes of the message so far (header fields and body).
    size: u64,
    oversize: bool,
    from_fields: Vec<Vec<u8>>,
    from_count: usize,
    /// Authentication-Results fields seen.
    ar_seen: u32,
    /// Occurrences (from 1) of Authentication-Results fields claiming our authserv-id.
    forged: Vec<u32>,
    /// A trusted upstream's field with a dmarc result was seen.
    trusted_upstream: bool,
    negotiated: Negotiated,
    started: Instant,
}

impl<L: Lookup + Send + Sync + 'static> DmarcMessage<L> {
    /// Counts `len` more bytes of the message: false (and the session dropped) once the
    /// message is larger than `max_message_size`.
    fn grow(&mut self, len: usize) -> bool {
        self.size = self.size.saturating_add(len as u64);
        if !self.oversize && self.size > self.shared.policy.max_message_size {
            self.oversize = true;
            self.stage = Stage::None;
            self.header = Vec::new();
        }
        !self.oversize
    }

    fn update_queue_id(&mut self, macros: &Macros) {
        if let Some(i) = macros.get("i") {
            i.clone_into(self.queue_id.get_or_insert_with(String::new));
        }
    }

    fn author_domain(&self) -> Result<String, String> {
        if self.from_count > self.from_fields.len() {
            return Err(format!("the message has {} From fields", self.from_count));
        }
        let fields: Vec<&[u8]> = self.from_fields.iter().map(Vec::as_slice).collect();
        single_author_domain(&fields)
    }

    /// Hands the record to every sink.
    fn finish(
        &self,
        verdicts: Option<&Verdicts>,
        action: Action,
        exemption: Option<Exemption>,
        from_domain: Option<&str>,
        note: Option<String>,
    ) {
        // The aggregate-report row of a verified message, made once for every sink.
        let observation: Option<Observation> = verdicts.map(Verdicts::observation);
        // FAILURE-REPORT CANDIDATES (issue 13) are handed over here: the sinks get
        // `record.verdicts` (the record's `fo=` among them) and `record.header`, the
        // header fields as received; with `[failure] queue`, `counter::FailureQueue`
        // makes the candidate (`dmarc_receiver::failure::candidate`) and the flusher
        // writes it to the store.
        let record = MessageRecord {
            queue_id: self.queue_id.as_deref(),
            client_ip: self.ip,
            client_name: &self.name,
            helo: &self.helo,
            mail_from: &self.mail_from,
            recipients: &self.recipients,
            from_domain: verdicts
                .and_then(|v| v.dmarc.author_domain.as_deref())
                .or(from_domain),
            verdicts,
            action,
            exemption,
            note,
            elapsed: self.started.elapsed(),
            observation: observation.as_ref(),
            header: &self.header,
        };
        for s in &self.shared.sinks {
            s.record(&record);
        }
    }

    /// Deletions of the fields claiming our authserv-id, highest first.
    fn deletions(&self) -> Vec<HeaderEdit> {
        let mut forged = self.forged.clone();
        forged.sort_unstable_by(|a, b| b.cmp(a));
        forged
            .into_iter()
            .map(|occurrence| HeaderEdit::Delete {
                name: "Authentication-Results".into(),
                occurrence,
            })
            .collect()
    }
}

impl<L: Lookup + Send + Sync + 'static> MessageFilter for DmarcMessage<L> {
    fn rcpt(&mut self, to: &EnvelopeAddress, macros: &Macros) {
        self.update_queue_id(macros);
        let exempt_domain = to.domain().is_some_and(|d| {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            self.shared.policy.exempt.recipient_domains.contains(&d)
        });
        self.recipient_domains_exempt &= exempt_domain;
        if self.recipients.len() < MAX_RECIPIENTS {
            self.recipients.push(to.address.clone());
        }
        if let Stage::Envelope(tx) = &mut self.stage {
            tx.rcpt_to(&to.address);
        }
    }

    fn header(&mut self, _index: usize, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"From") {
            self.from_count += 1;
            if self.from_fields.len() < MAX_FROM_FIELDS {
                self.from_fields.push(value.to_vec());
            }
        } else if name.eq_ignore_ascii_case(b"Authentication-Results") {
            self.ar_seen += 1;
            let text = String::from_utf8_lossy(value);
            if let Some(id) = auth_results::authserv_id(&text) {
                if id.eq_ignore_ascii_case(&self.shared.policy.authserv_id) {
                    self.forged.push(self.ar_seen);
                } else if self
                    .shared
                    .policy
                    .exempt
                    .trusted_authserv_ids
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(&id))
                    && auth_results::parse(&text)
                        .is_ok_and(|p| p.results.iter().any(|r| r.method == "dmarc"))
                {
                    self.trusted_upstream = true;
                }
            }
        }
        if self.grow(name.len() + value.len() + 3) {
            for part in [name, b":", value, b"\r\n"] {
                self.header.extend_from_slice(part);
            }
            if let Stage::Envelope(tx) = &mut self.stage {
                tx.header(name, value);
            }
        }
    }

    fn end_of_headers(&mut self, macros: &Macros) -> Step<()> {
        self.update_queue_id(macros);
        let policy = &self.shared.policy;
        let from = self.author_domain();
        if let Err(problem) = &from
            && policy.bad_from == BadFromChoice::Reject
            && policy.mode == Mode::Enforce
        {
            let reply = policy.bad_from_reply.render("");
            self.finish(None, Action::Reject, None, None, Some(problem.clone()));
            return Step::Done(Decision::Reply(reply));
        }
        if let Ok(domain) = &from
            && policy.exempt.sender_domains.contains(domain)
        {
            self.finish(
                None,
                Action::Accept,
                Some(Exemption::SenderDomain),
                Some(domain),
                None,
            );
            return Step::Done(Decision::Accept);
        }
        if self.recipient_domains_exempt
            && !self.recipients.is_empty()
            && !policy.exempt.recipient_domains.is_empty()
        {
            self.finish(
                None,
                Action::Accept,
                Some(Exemption::RecipientDomains),
                from.as_deref().ok(),
                None,
            );
            return Step::Done(Decision::Accept);
        }
        // The DMARC record and the DKIM keys are asked for now, while the body comes.
        self.stage = match std::mem::replace(&mut self.stage, Stage::None) {
            Stage::Envelope(tx) => Stage::Body(Box::new((*tx).end_of_headers())),
            other => other,
        };
        Step::Continue(())
    }

    fn body(&mut self, chunk: &[u8]) -> BodyStep {
        if !self.grow(chunk.len()) {
            return BodyStep::Skip;
        }
        if let Stage::Body(body) = &mut self.stage {
            body.body(chunk);
        }
        BodyStep::Continue
    }

    async fn drive(&mut self) {
        match &mut self.stage {
            Stage::Envelope(tx) => tx.drive().await,
            Stage::Body(body) => body.drive().await,
            Stage::None => {}
        }
        // The work is done: nothing more to do until the next frame.
        std::future::pending::<()>().await;
    }

    async fn end_of_message(mut self, macros: &Macros) -> Outcome {
        self.update_queue_id(macros);
        let shared = self.shared.clone();
        let policy = &shared.policy;
        if self.oversize {
            let note = format!(
                "message larger than max_message_size ({} bytes): not verified",
                policy.max_message_size
            );
            let (action, decision) = match policy.oversize {
                OversizeChoice::Accept => (Action::Accept, Decision::Accept),
                OversizeChoice::TempFail => (
                    Action::TempFail,
                    reply(452, "4.3.4", "Message too large to verify; try again later"),
                ),
                OversizeChoice::Reject => (
                    Action::Reject,
                    reply(552, "5.3.4", "Message too large to verify"),
                ),
            };
            let from = self.author_domain().ok();
            self.finish(None, action, None, from.as_deref(), Some(note));
            return Outcome {
                edits: self.deletions(),
                quarantine: None,
                decision,
            };
        }
        let body = match std::mem::replace(&mut self.stage, Stage::None) {
            Stage::Body(body) => *body,
            // A header without its end (the MTA skipped SMFIC_EOH): end it here.
            Stage::Envelope(tx) => (*tx).end_of_headers(),
            // Not reached: a message without a client address is exempt at MAIL FROM.
            Stage::None => return Outcome::accept(),
        };
        let Ok(verdicts) = tokio::time::timeout(policy.message_timeout, body.finish()).await else {
            return self.timed_out();
        };
        let d = decide(policy, &verdicts, self.trusted_upstream, &self.negotiated);
        let mut edits = self.deletions();
        edits.extend(d.edits);
        let action = d.action;
        self.finish(Some(&verdicts), action, None, None, d.note);
        Outcome {
            edits,
            quarantine: d.quarantine,
            decision: d.decision,
        }
    }
}

impl<L: Lookup + Send + Sync + 'static> DmarcMessage<L> {
    /// The verification did not finish in time: a temporary failure.
    fn timed_out(&self) -> Outcome {
        let policy = &self.shared.policy;
        let secs = policy.message_timeout.as_secs_f64();
        let note = format!("verification did not finish within {secs} s");
        let from = self.author_domain().ok();
        let domain = from.as_deref().unwrap_or("the sender's domain");
        let enforce =
            policy.mode == Mode::Enforce && policy.dns_failure == DnsFailureChoice::TempFail;
        let (action, decision) = if enforce {
            (
                Action::TempFail,
                Decision::Reply(policy.tempfail.render(domain)),
            )
        } else {
            (Action::Accept, Decision::Accept)
        };
        self.finish(None, action, None, from.as_deref(), Some(note.clone()));
        let mut edits = self.deletions();
        if action == Action::Accept
            && let Ok(field) = HeaderField::new(
                "Authentication-Results",
                format!("{};\r\n\tdmarc=temperror ({note})", policy.authserv_id),
            )
        {
            edits.push(HeaderEdit::Insert { index: 0, field });
        }
        Outcome {
            edits,
            quarantine: None,
            decision,
        }
    }
}

fn reply(code: u16, enhanced: &str, text: &str) -> Decision {
    match SmtpReply::new(code, Some(enhanced), text) {
        Ok(r) => Decision::Reply(r),
        Err(_) if code >= 500 => Decision::Reject,
        Err(_) => Decision::TempFail,
    }
}

/// What [`decide`] chose for a verified message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// What is done.
    pub action: Action,
    /// The header fields to insert (Authentication-Results, Received-SPF, the quarantine
    /// field), in the order to send them.
    pub edits: Vec<HeaderEdit>,
    /// The quarantine reason, for `quarantine = "hold"`.
    pub quarantine: Option<String>,
    /// The reply.
    pub decision: Decision,
    /// Why the action differs from what the verdict asks, if it does.
    pub note: Option<String>,
}

/// The action and header edits for verified `verdicts` under `policy`.
///
/// | verdict action | enforce | monitor, or a trusted upstream verdict |
/// |---|---|---|
/// | accept | accept | accept |
/// | quarantine | `hold`: SMFIR_QUARANTINE; `header`: the field; `accept` | accept |
/// | reject | `550 5.7.1 <reject_text>` | accept |
/// | tempfail (DNS) | `dns_failure`: `451 4.7.5 <tempfail_text>` or accept | accept |
///
/// Authentication-Results is added whenever the message is accepted (inserted last, so
/// it ends up on top); Received-SPF too when asked for.
pub fn decide(
    policy: &Policy,
    verdicts: &Verdicts,
    trusted_upstream: bool,
    negotiated: &Negotiated,
) -> Judgement {
    let domain = verdicts
        .dmarc
        .author_domain
        .clone()
        .unwrap_or_else(|| "the sender's domain".into());
    let hands_off = if policy.mode == Mode::Monitor {
        Some("monitor mode")
    } else if trusted_upstream {
        Some("verified upstream by a trusted authserv-id")
    } else {
        None
    };
    let wanted = verdicts.action;
    let mut quarantine = None;
    let mut extra = None;
    let (action, decision, note) = match (wanted, hands_off) {
        (Action::Accept, _) => (Action::Accept, Decision::Accept, None),
        (_, Some(why)) => (
            Action::Accept,
            Decision::Accept,
            Some(format!("{why}: not enforcing {wanted}")),
        ),
        (Action::Reject, None) => (
            Action::Reject,
            Decision::Reply(policy.reject.render(&domain)),
            None,
        ),
        (Action::Quarantine, None) => match policy.quarantine {
            QuarantineChoice::Hold if negotiated.can_quarantine() => {
                quarantine = Some(policy.hold_reason.replace("{domain}", &domain));
                (Action::Quarantine, Decision::Accept, None)
            }
            QuarantineChoice::Hold | QuarantineChoice::Header => {
                extra = Some(policy.quarantine_header.clone());
                let note = (policy.quarantine == QuarantineChoice::Hold)
                    .then(|| "the MTA does not allow quarantine: header added instead".to_owned());
                (Action::Quarantine, Decision::Accept, note)
            }
            QuarantineChoice::Accept => (
                Action::Accept,
                Decision::Accept,
                Some("quarantine = accept: delivered normally".into()),
            ),
        },
        (Action::TempFail, None) => match policy.dns_failure {
            DnsFailureChoice::TempFail => (
                Action::TempFail,
                Decision::Reply(policy.tempfail.render(&domain)),
                None,
            ),
            DnsFailureChoice::Accept => (
                Action::Accept,
                Decision::Accept,
                Some("temporary DNS failure: accepted (dns_failure = accept)".into()),
            ),
        },
    };
    let mut edits = Vec::new();
    if matches!(decision, Decision::Accept) {
        if let Some(field) = extra {
            edits.push(HeaderEdit::Insert { index: 0, field });
        }
        if policy.received_spf
            && let Some(field) = received_spf(verdicts, &policy.authserv_id)
        {
            edits.push(HeaderEdit::Insert { index: 0, field });
        }
        if let Some(field) = authentication_results(verdicts) {
            edits.push(HeaderEdit::Insert { index: 0, field });
        }
    }
    Judgement {
        action,
        edits,
        quarantine,
        decision,
        note,
    }
}

/// Our Authentication-Results field, folded one result per line.
pub fn authentication_results(verdicts: &Verdicts) -> Option<HeaderField> {
    let text = verdicts.authentication_results_header();
    let text = text.strip_suffix("\r\n").unwrap_or(&text);
    let (name, value) = text.split_once(':')?;
    HeaderField::new(name, value.trim_start()).ok()
}

/// The Received-SPF field for the MAIL FROM result, folded before each `key=value`.
fn received_spf(verdicts: &Verdicts, receiver: &str) -> Option<HeaderField> {
    let text = verdicts.spf.received_spf(receiver);
    let (name, value) = text.split_once(':')?;
    HeaderField::new(name, value.trim_start().replace("; ", ";\r\n\t")).ok()
}
