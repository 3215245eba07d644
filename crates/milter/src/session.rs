//! The milter protocol's state machine for one milter connection: option negotiation,
//! then SMTP sessions (one, or several with `SMFIC_QUIT_NC`), each with any number of
//! messages. Sans-I/O: it takes decoded [`Command`]s and returns the [`Reply`]s to send;
//! the [`crate::filter`] traits it calls decide.
//!
//! # Order
//!
//! Commands are accepted in the order Sendmail's libmilter allows (its `next_states`
//! table), with what Postfix does besides:
//!
//! ```text
//! OPTNEG -> CONNECT -> HELO* -> ( MAIL -> RCPT+ -> DATA? -> HEADER* -> EOH -> BODY* -> EOM )*
//! ```
//!
//! * `SMFIC_MACRO` may come at any time after negotiation (it precedes the command it is
//!   for); `SMFIC_ABORT` at any time after negotiation (no reply; a message in progress
//!   is forgotten and the session is ready for the next MAIL FROM); `SMFIC_QUIT` at any
//!   time (the connection ends); `SMFIC_QUIT_NC` after negotiation (a new `SMFIC_CONNECT`
//!   follows); `SMFIC_UNKNOWN` after negotiation.
//! * HELO in the middle of a transaction aborts the message first (Postfix sends it so
//!   when a client says EHLO after MAIL FROM, RFC 5321 §4.1.4).
//! * Anything else out of order is a [`SessionError::OutOfOrder`]: the connection is
//!   closed (the MTA then applies its default action, `milter_default_action` in
//!   Postfix), and no other connection is affected.
//! * After a final decision on a message (accept, reject, ... before its end), the rest
//!   of that message's events, should the MTA still send them, are answered with the
//!   same decision without calling the filter.
//!
//! # Negotiation
//!
//! The session asks only for what a DMARC milter needs ([`WANTED_ACTIONS`],
//! [`WANTED_PROTOCOL`]), intersected with what the MTA offers: no DATA and no unknown
//! commands; no replies to HELO, RCPT, DATA, header fields and body chunks (so the MTA
//! streams them); replies at connect, MAIL FROM and end of header, where the filter may
//! decide early; `SMFIR_SKIP` to cut the body short; header values with their leading
//! space. When the MTA cannot do without a reply, the session sends `SMFIR_CONTINUE`
//! itself, so filters never see the difference. The macros of
//! [`crate::filter::Filter::macro_request`] are asked for per stage when the MTA allows it
//! (`SMFIF_SETSYMLIST`, protocol version 6).

use std::fmt;
use std::mem;
use std::sync::Arc;

use crate::codec::{
    Actions, Command, MIN_PROTOCOL_VERSION, MacroStage, PROTOCOL_VERSION, Protocol, Reply,
};
use crate::filter::{
    BodyStep, Client, ConnectionFilter, Decision, EnvelopeAddress, Filter, HeaderEdit, Macros,
    MessageFilter, Negotiated, Step,
};

/// The actions asked for: add (insert) header fields, change and delete them, quarantine,
/// and send the macro lists.
pub const WANTED_ACTIONS: Actions = Actions(
    Actions::ADDHDRS.0 | Actions::CHGHDRS.0 | Actions::QUARANTINE.0 | Actions::SETSYMLIST.0,
);

/// The actions without which the filter cannot work: adding header fields (the
/// Authentication-Results field).
pub const REQUIRED_ACTIONS: Actions = Actions::ADDHDRS;

/// The protocol options asked for (those the MTA offers): see the module documentation.
pub const WANTED_PROTOCOL: Protocol = Protocol(
    Protocol::NODATA.0
        | Protocol::NOUNKNOWN.0
        | Protocol::NR_HELO.0
        | Protocol::NR_RCPT.0
        | Protocol::NR_DATA.0
        | Protocol::NR_UNKN.0
        | Protocol::NR_HDR.0
        | Protocol::NR_BODY.0
        | Protocol::SKIP.0
        | Protocol::HDR_LEADSPC.0,
);

/// Limits on what one session keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Macros kept per stage; more are ignored. Default 64.
    pub macros_per_stage: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            macros_per_stage: 64,
        }
    }
}

/// Why the session cannot go on; the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// A command arrived where the protocol does not allow it.
    OutOfOrder {
        /// The command (`SMFIC_HEADER`).
        command: &'static str,
        /// Where the session was (`"between messages"`).
        state: &'static str,
    },
    /// The MTA's offer cannot be accepted.
    Negotiation(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::OutOfOrder { command, state } => {
                write!(f, "{command} is out of order {state}")
            }
            SessionError::Negotiation(why) => write!(f, "option negotiation failed: {why}"),
        }
    }
}

impl std::error::Error for SessionError {}

/// What to send after a command, and whether the connection ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The replies, in order (none for commands the MTA does not wait on).
    pub replies: Vec<Reply>,
    /// True after `SMFIC_QUIT`: close the connection.
    pub close: bool,
    /// Things the operator should know (a header edit the MTA does not allow, ...).
    pub notes: Vec<String>,
}

impl Response {
    fn none() -> Response {
        Response::default()
    }

    fn reply(reply: Reply) -> Response {
        Response {
            replies: vec![reply],
            ..Response::default()
        }
    }
}

type MessageOf<F> = <<F as Filter>::Connection as ConnectionFilter>::Message;

enum Phase<M> {
    /// Between messages (after connect, HELO, end of message, abort).
    Idle,
    /// After MAIL FROM; `rcpt` once a recipient came.
    Envelope { msg: M, rcpt: bool },
    /// After DATA.
    Data(M),
    /// In the header.
    Headers(M),
    /// After end of header.
    Body { msg: M, skipping: bool },
    /// The message was decided before its end.
    Decided(Decision),
}

enum State<F: Filter> {
    Start,
    Negotiated,
    Connection {
        conn: F::Connection,
        phase: Phase<MessageOf<F>>,
    },
    /// The connection was decided at connect.
    Settled(Decision),
    Closed,
}

impl<F: Filter> State<F> {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "before option negotiation",
            State::Negotiated => "before the connect information",
            State::Connection { phase, .. } => match phase {
                Phase::Idle => "between messages",
                Phase::Envelope { rcpt: false, .. } => "after MAIL FROM, before any RCPT TO",
                Phase::Envelope { rcpt: true, .. } => "in the envelope",
                Phase::Data(_) => "after DATA",
                Phase::Headers(_) => "in the header",
                Phase::Body { .. } => "in the body",
                Phase::Decided(_) => "after the message was decided",
            },
            State::Settled(_) => "after the connection was decided",
            State::Closed => "after QUIT",
        }
    }
}

/// Ends whatever is in progress: the message is aborted, the connection closed.
fn shut<F: Filter>(state: State<F>) {
    if let State::Connection { conn, phase } = state {
        abort_phase(phase);
        conn.close();
    }
}

fn abort_phase<M: MessageFilter>(phase: Phase<M>) {
    match phase {
        Phase::Envelope { msg, .. } | Phase::Data(msg) | Phase::Headers(msg) => msg.abort(),
        Phase::Body { msg, .. } => msg.abort(),
        Phase::Idle | Phase::Decided(_) => {}
    }
}

fn decision_reply(d: &Decision) -> Reply {
    match d {
        Decision::Accept => Reply::Accept,
        Decision::Reject => Reply::Reject,
        Decision::TempFail => Reply::TempFail,
        Decision::Discard => Reply::Discard,
        Decision::Reply(r) => Reply::ReplyCode(r.clone()),
    }
}

/// One milter connection's protocol state.
pub struct Session<F: Filter> {
    filter: Arc<F>,
    state: State<F>,
    negotiated: Option<Negotiated>,
    macros: Macros,
    limits: SessionLimits,
    header_index: usize,
}

impl<F: Filter> fmt::Debug for Session<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state.name())
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}

/// The outcome of one step: the next state and the response, or the state to shut down
/// and the error.
type StepResult<F> = Result<(State<F>, Response), (State<F>, SessionError)>;

impl<F: Filter> Session<F> {
    /// A session waiting for option negotiation.
    pub fn new(filter: Arc<F>, limits: SessionLimits) -> Self {
        Session {
            filter,
            state: State::Start,
            negotiated: None,
            macros: Macros::default(),
            limits,
            header_index: 0,
        }
    }

    /// What was negotiated, once it was.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// True when no message is in progress (the connection can be closed without losing
    /// one).
    pub fn between_messages(&self) -> bool {
        !matches!(
            self.state,
            State::Connection {
                phase: Phase::Envelope { .. }
                    | Phase::Data(_)
                    | Phase::Headers(_)
                    | Phase::Body { .. },
                ..
            }
        )
    }

    /// Where the session is, in words (`"in the header"`), for logs.
    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }

    /// Handles one command.
    pub async fn handle(&mut self, cmd: Command) -> Result<Response, SessionError> {
        let state = mem::replace(&mut self.state, State::Closed);
        match self.step(state, cmd).await {
            Ok((state, response)) => {
                self.state = state;
                Ok(response)
            }
            Err((state, e)) => {
                shut(state);
                Err(e)
            }
        }
    }

    /// Ends the session (end of stream, error, shutdown): aborts the message in progress
    /// and closes the connection filter.
    pub fn finish(&mut self) {
        shut(mem::replace(&mut self.state, State::Closed));
    }

    /// The background work of the message in progress (see
    /// [`MessageFilter::drive`]); never completes when there is none.
    pub async fn drive(&mut self) {
        match &mut self.state {
            State::Connection {
                phase:
                    Phase::Envelope { msg, .. }
                    | Phase::Data(msg)
                    | Phase::Headers(msg)
                    | Phase::Body { msg, .. },
                ..
            } => msg.drive().await,
            _ => std::future::pending().await,
        }
    }

    /// True when the MTA waits for a reply to the command with this code (as negotiated;
    /// option negotiation and end of message always get one, macros never).
    pub fn wants_reply(&self, code: u8) -> bool {
        use crate::codec::code::*;
        let nr = |flag: Protocol| !self.negotiated.is_some_and(|n| n.protocol.contains(flag));
        match code {
            SMFIC_OPTNEG | SMFIC_BODYEOB => true,
            SMFIC_CONNECT => nr(Protocol::NR_CONN),
            SMFIC_HELO => nr(Protocol::NR_HELO),
            SMFIC_MAIL => nr(Protocol::NR_MAIL),
            SMFIC_RCPT => nr(Protocol::NR_RCPT),
            SMFIC_DATA => nr(Protocol::NR_DATA),
            SMFIC_UNKNOWN => nr(Protocol::NR_UNKN),
            SMFIC_HEADER => nr(Protocol::NR_HDR),
            SMFIC_EOH => nr(Protocol::NR_EOH),
            SMFIC_BODY => nr(Protocol::NR_BODY),
            _ => false,
        }
    }

    /// `reply` if the MTA waits for one after the command `code`, else nothing.
    fn answer(&self, code: u8, reply: Reply) -> Response {
        if self.wants_reply(code) {
            Response::reply(reply)
        } else {
            Response::none()
        }
    }

    async fn step(&mut self, state: State<F>, cmd: Command) -> StepResult<F> {
        let code = cmd.code();
        let out_of_order = |state: State<F>, cmd: &Command| {
            let e = SessionError::OutOfOrder {
                command: cmd.name(),
                state: state.name(),
            };
            Err((state, e))
        };
        // Commands valid in (nearly) every state.
        match (&state, &cmd) {
            (State::Start, Command::OptNeg { .. }) => {}
            (State::Start, Command::Quit) => {
                return Ok((
                    State::Closed,
                    Response {
                        close: true,
                        ..Response::none()
                    },
                ));
            }
            (State::Start | State::Closed, _) => return out_of_order(state, &cmd),
            (_, Command::OptNeg { .. }) => return out_of_order(state, &cmd),
            (_, Command::Macro { for_command, .. }) => {
                if let (Some(stage), Command::Macro { macros, .. }) =
                    (MacroStage::for_command(*for_command), cmd)
                {
                    self.macros.set(stage, macros, self.limits.macros_per_stage);
                }
                return Ok((state, Response::none()));
            }
            (_, Command::Quit) => {
                shut(state);
                return Ok((
                    State::Closed,
                    Response {
                        close: true,
                        ..Response::none()
                    },
                ));
            }
            (_, Command::QuitNewConnection) => {
                shut(state);
                self.macros.clear();
                return Ok((State::Negotiated, Response::none()));
            }
            (_, Command::Unknown { .. }) => {
                let r = self.answer(code, Reply::Continue);
                return Ok((state, r));
            }
            _ => {}
        }

        match state {
            State::Start => match cmd {
                Command::OptNeg {
                    version,
                    actions,
                    protocol,
                } => match negotiate(version, actions, protocol, &*self.filter) {
                    Ok((negotiated, reply)) => {
                        self.negotiated = Some(negotiated);
                        Ok((State::Negotiated, Response::reply(reply)))
                    }
                    Err(e) => Err((State::Start, e)),
                },
                _ => out_of_order(State::Start, &cmd),
            },
            State::Negotiated => match cmd {
                Command::Connect { hostname, address } => {
                    self.macros.clear_after(MacroStage::Connect);
                    let client = Client { hostname, address };
                    let negotiated = self.negotiated.unwrap_or(Negotiated {
                        version: PROTOCOL_VERSION,
                        actions: Actions::NONE,
                        protocol: Protocol::NONE,
                    });
                    match self.filter.connect(&client, &negotiated, &self.macros) {
                        Step::Continue(conn) => {
                            let r = self.answer(code, Reply::Continue);
                            Ok((
                                State::Connection {
                                    conn,
                                    phase: Phase::Idle,
                                },
                                r,
                            ))
                        }
                        Step::Done(d) => {
                            // A discard is not allowed for a connection: accept.
                            let d = if d == Decision::Discard {
                                Decision::Accept
                            } else {
                                d
                            };
                            let r = self.answer(code, decision_reply(&d));
                            Ok((State::Settled(d), r))
                        }
                    }
                }
                Command::Abort => Ok((State::Negotiated, Response::none())),
                _ => out_of_order(State::Negotiated, &cmd),
            },
            State::Settled(d) => {
                let r = match cmd {
                    Command::Abort => Response::none(),
                    _ => self.answer(code, decision_reply(&d)),
                };
                Ok((State::Settled(d), r))
            }
            State::Connection { conn, phase } => self.message_step(conn, phase, cmd).await,
            State::Closed => out_of_order(State::Closed, &cmd),
        }
    }

    async fn message_step(
        &mut self,
        mut conn: F::Connection,
        phase: Phase<MessageOf<F>>,
        cmd: Command,
    ) -> StepResult<F> {
        let code = cmd.code();
        let keep = |conn, phase, r: Response| -> StepResult<F> {
            Ok((State::Connection { conn, phase }, r))
        };
        match (phase, cmd) {
            (phase, Command::Abort) => {
                abort_phase(phase);
                keep(conn, Phase::Idle, Response::none())
            }
            (phase, cmd @ Command::Helo { .. }) => {
                // HELO/EHLO in a transaction resets it (RFC 5321 §4.1.4); Postfix then
                // sends ABORT too.
                abort_phase(phase);
                self.macros.clear_after(MacroStage::Helo);
                if let Command::Helo { name } = &cmd {
                    conn.helo(name, &self.macros);
                }
                let r = self.answer(code, Reply::Continue);
                keep(conn, Phase::Idle, r)
            }
            (Phase::Idle | Phase::Decided(_), cmd @ Command::Mail { .. }) => {
                self.macros.clear_after(MacroStage::Mail);
                self.header_index = 0;
                let Command::Mail { args } = &cmd else {
                    return keep(conn, Phase::Idle, Response::none());
                };
                let from = EnvelopeAddress::from_args(args);
                match conn.mail(&from, &self.macros) {
                    Step::Continue(msg) => {
                        let r = self.answer(code, Reply::Continue);
                        keep(conn, Phase::Envelope { msg, rcpt: false }, r)
                    }
                    Step::Done(d) => {
                        let r = self.answer(code, decision_reply(&d));
                        keep(conn, Phase::Decided(d), r)
                    }
                }
            }
            (Phase::Decided(d), Command::EndOfMessage { .. }) => {
                let r = self.answer(code, decision_reply(&d));
                keep(conn, Phase::Idle, r)
            }
            (Phase::Decided(d), cmd) if is_message_event(&cmd) => {
                let r = self.answer(code, decision_reply(&d));
                keep(conn, Phase::Decided(d), r)
            }
            (Phase::Envelope { mut msg, .. }, cmd @ Command::Rcpt { .. }) => {
                self.macros.clear_after(MacroStage::Rcpt);
                if let Command::Rcpt { args } = &cmd {
                    msg.rcpt(&EnvelopeAddress::from_args(args), &self.macros);
                }
                let r = self.answer(code, Reply::Continue);
                keep(conn, Phase::Envelope { msg, rcpt: true }, r)
            }
            (Phase::Envelope { msg, rcpt: true }, Command::Data) => {
                self.macros.clear_after(MacroStage::Data);
                let r = self.answer(code, Reply::Continue);
                keep(conn, Phase::Data(msg), r)
            }
            (
                Phase::Envelope {
                    mut msg,
                    rcpt: true,
                }
                | Phase::Data(mut msg)
                | Phase::Headers(mut msg),
                cmd @ Command::Header { .. },
            ) => {
                if let Command::Header { name, value } = &cmd {
                    let leading_space_kept = self
                        .negotiated
                        .is_some_and(|n| n.protocol.contains(Protocol::HDR_LEADSPC));
                    let value = wire_value_to_message(value, leading_space_kept);
                    msg.header(self.header_index, name, &value);
                    self.header_index += 1;
                }
                let r = self.answer(code, Reply::Continue);
                keep(conn, Phase::Headers(msg), r)
            }
            (
                Phase::Envelope {
                    mut msg,
                    rcpt: true,
                }
                | Phase::Data(mut msg)
                | Phase::Headers(mut msg),
                Command::EndOfHeaders,
            ) => {
                self.macros.clear_after(MacroStage::EndOfHeaders);
                match msg.end_of_headers(&self.macros) {
                    Step::Continue(()) => {
                        let r = self.answer(code, Reply::Continue);
                        keep(
                            conn,
                            Phase::Body {
                                msg,
                                skipping: false,
                            },
                            r,
                        )
                    }
                    Step::Done(d) => {
                        let r = self.answer(code, decision_reply(&d));
                        keep(conn, Phase::Decided(d), r)
                    }
                }
            }
            (Phase::Body { mut msg, skipping }, cmd @ Command::Body { .. }) => {
                let Command::Body { chunk } = &cmd else {
                    return keep(conn, Phase::Body { msg, skipping }, Response::none());
                };
                let step = if skipping {
                    BodyStep::Skip
                } else {
                    msg.body(chunk)
                };
                match step {
                    BodyStep::Continue => {
                        let r = self.answer(code, Reply::Continue);
                        keep(conn, Phase::Body { msg, skipping }, r)
                    }
                    BodyStep::Skip => {
                        let can_skip = self
                            .negotiated
                            .is_some_and(|n| n.protocol.contains(Protocol::SKIP));
                        let reply = if can_skip {
                            Reply::Skip
                        } else {
                            Reply::Continue
                        };
                        let r = self.answer(code, reply);
                        keep(
                            conn,
                            Phase::Body {
                                msg,
                                skipping: true,
                            },
                            r,
                        )
                    }
                    BodyStep::Done(d) => {
                        msg.abort();
                        let r = self.answer(code, decision_reply(&d));
                        keep(conn, Phase::Decided(d), r)
                    }
                }
            }
            (Phase::Body { mut msg, skipping }, Command::EndOfMessage { chunk }) => {
                self.macros.clear_after(MacroStage::EndOfMessage);
                if !chunk.is_empty()
                    && !skipping
                    && let BodyStep::Done(d) = msg.body(&chunk)
                {
                    msg.abort();
                    return keep(conn, Phase::Idle, Response::reply(decision_reply(&d)));
                }
                let outcome = msg.end_of_message(&self.macros).await;
                let mut response = Response::none();
                if !matches!(
                    outcome.decision,
                    Decision::Reject | Decision::TempFail | Decision::Reply(_)
                ) {
                    for edit in &outcome.edits {
                        match self.edit_reply(edit) {
                            Ok(reply) => response.replies.push(reply),
                            Err(note) => response.notes.push(note),
                        }
                    }
                    if let Some(reason) = &outcome.quarantine {
                        if self.negotiated.is_some_and(|n| n.can_quarantine()) {
                            response.replies.push(Reply::Quarantine {
                                reason: reason.clone(),
                            });
                        } else {
                            response
                                .notes
                                .push("the MTA does not allow quarantine (SMFIF_QUARANTINE): not quarantined".into());
                        }
                    }
                }
                response.replies.push(decision_reply(&outcome.decision));
                keep(conn, Phase::Idle, response)
            }
            (phase, cmd) => {
                let state = State::Connection { conn, phase };
                let e = SessionError::OutOfOrder {
                    command: cmd.name(),
                    state: state.name(),
                };
                Err((state, e))
            }
        }
    }

    /// The reply for a header edit, or why it cannot be sent.
    fn edit_reply(&self, edit: &HeaderEdit) -> Result<Reply, String> {
        let n = self.negotiated.unwrap_or(Negotiated {
            version: PROTOCOL_VERSION,
            actions: Actions::NONE,
            protocol: Protocol::NONE,
        });
        // With SMFIP_HDR_LEADSPC the MTA adds no space after the colon: we do.
        let value = |v: &str| {
            if n.protocol.contains(Protocol::HDR_LEADSPC) {
                format!(" {v}")
            } else {
                v.to_owned()
            }
        };
        let need = |flag: Actions, what: &str| {
            if n.actions.contains(flag) {
                Ok(())
            } else {
                Err(format!(
                    "the MTA does not allow {what} (SMFIF_{flag}): header edit dropped"
                ))
            }
        };
        match edit {
            HeaderEdit::Insert { index, field } => {
                need(Actions::ADDHDRS, "adding header fields")?;
                Ok(Reply::InsertHeader {
                    index: *index,
                    name: field.name().to_owned(),
                    value: value(field.value()),
                })
            }
            HeaderEdit::Add(field) => {
                need(Actions::ADDHDRS, "adding header fields")?;
                Ok(Reply::AddHeader {
                    name: field.name().to_owned(),
                    value: value(field.value()),
                })
            }
            HeaderEdit::Change { occurrence, field } => {
                need(Actions::CHGHDRS, "changing header fields")?;
                Ok(Reply::ChangeHeader {
                    index: *occurrence,
                    name: field.name().to_owned(),
                    value: value(field.value()),
                })
            }
            HeaderEdit::Delete { name, occurrence } => {
                need(Actions::CHGHDRS, "deleting header fields")?;
                Ok(Reply::ChangeHeader {
                    index: *occurrence,
                    name: name.clone(),
                    value: String::new(),
                })
            }
        }
    }
}

fn is_message_event(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Rcpt { .. }
            | Command::Data
            | Command::Header { .. }
            | Command::EndOfHeaders
            | Command::Body { .. }
    )
}

/// A header value as the protocol carries it, turned into the bytes after the colon in
/// the message: folded lines joined by CRLF rather than the protocol's LF, and, unless
/// the MTA kept it (`SMFIP_HDR_LEADSPC`), the one space it removed after the colon put
/// back. Postfix and Sendmail remove one space (not a tab) when there is one, so the
/// space is put back before a value that does not start with white space; a value that
/// is empty, or starts with a tab or a fold, had none.
pub fn wire_value_to_message(value: &[u8], leading_space_kept: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let starts_blank = value
        .first()
        .is_none_or(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    if !leading_space_kept && !starts_blank {
        out.push(b' ');
    }
    let mut prev = 0u8;
    for &b in value {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Chooses what to ask for from the MTA's offer.
fn negotiate<F: Filter>(
    version: u32,
    offered_actions: Actions,
    offered_protocol: Protocol,
    filter: &F,
) -> Result<(Negotiated, Reply), SessionError> {
    if version < MIN_PROTOCOL_VERSION {
        return Err(SessionError::Negotiation(format!(
            "the MTA speaks milter protocol version {version}; version {MIN_PROTOCOL_VERSION} or later is needed"
        )));
    }
    let version = version.min(PROTOCOL_VERSION);
    // libmilter: no flags at all means the version 1 set.
    let offered_actions = if offered_actions == Actions::NONE {
        Actions(0x0f)
    } else {
        offered_actions
    };
    let actions = WANTED_ACTIONS.intersection(offered_actions);
    if !actions.contains(REQUIRED_ACTIONS) {
        return Err(SessionError::Negotiation(format!(
            "the MTA does not let a filter add header fields (it offers {offered_actions}, SMFIF_ADDHDRS is needed)"
        )));
    }
    let protocol = WANTED_PROTOCOL.intersection(offered_protocol);
    let macros = if actions.contains(Actions::SETSYMLIST) && version >= 6 {
        filter
            .macro_request()
            .stages
            .into_iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(stage, names)| (stage, names.join(" ")))
            .collect()
    } else {
        Vec::new()
    };
    let negotiated = Negotiated {
        version,
        actions,
        protocol,
    };
    let reply = Reply::OptNeg {
        version,
        actions,
        protocol,
        macros,
    };
    Ok((negotiated, reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{ConnectAddress, SmtpReply};
    use crate::filter::{HeaderField, Outcome};
    use std::sync::Mutex;

    /// Records every call; decides as told.
    #[derive(Default)]
    struct Recorder {
        log: Mutex<Vec<String>>,
        accept_at_connect: bool,
        skip_body: bool,
        edits: Vec<HeaderEdit>,
        quarantine: Option<String>,
    }

    struct Conn(Arc<Recorder>);
    struct Msg(Arc<Recorder>);

    impl Recorder {
        fn push(&self, s: String) {
            self.log.lock().unwrap().push(s);
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.log.lock().unwrap())
        }
    }

    impl Filter for Arc<Recorder> {
        type Connection = Conn;
        fn connect(&self, client: &Client, _: &Negotiated, macros: &Macros) -> Step<Conn> {
            self.push(format!(
                "connect {} {:?} j={:?}",
                client.hostname,
                client.ip(),
                macros.get("j")
            ));
            if self.accept_at_connect {
                Step::Done(Decision::Accept)
            } else {
                Step::Continue(Conn(self.clone()))
            }
        }
    }

    impl ConnectionFilter for Conn {
        type Message = Msg;
        fn helo(&mut self, name: &str, _: &Macros) {
            self.0.push(format!("helo {name}"));
        }
        fn mail(&mut self, from: &EnvelopeAddress, macros: &Macros) -> Step<Msg> {
            self.0
                .push(format!("mail {} i={:?}", from.address, macros.get("i")));
            Step::Continue(Msg(self.0.clone()))
        }
        fn close(self) {
            self.0.push("close".into());
        }
    }

    impl MessageFilter for Msg {
        fn rcpt(&mut self, to: &EnvelopeAddress, _: &Macros) {
            self.0.push(format!("rcpt {}", to.address));
        }
        fn header(&mut self, index: usize, name: &[u8], value: &[u8]) {
            self.0.push(format!(
                "header {index} {}:{}",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(value)
            ));
        }
        fn end_of_headers(&mut self, _: &Macros) -> Step<()> {
            self.0.push("eoh".into());
            Step::Continue(())
        }
        fn body(&mut self, chunk: &[u8]) -> BodyStep {
            self.0.push(format!("body {}", chunk.len()));
            if self.0.skip_body {
                BodyStep::Skip
            } else {
                BodyStep::Continue
            }
        }
        async fn end_of_message(self, macros: &Macros) -> Outcome {
            self.0.push(format!("eom i={:?}", macros.get("i")));
            Outcome {
                edits: self.0.edits.clone(),
                quarantine: self.0.quarantine.clone(),
                decision: Decision::Accept,
            }
        }
        fn abort(self) {
            self.0.push("abort".into());
        }
    }

    fn run(session: &mut Session<Arc<Recorder>>, cmd: Command) -> Result<Response, SessionError> {
        futures_executor::block_on(session.handle(cmd))
    }

    const POSTFIX_ACTIONS: Actions = Actions(0x1ff);
    const POSTFIX_PROTOCOL: Protocol = Protocol(0x1f_ffff);

    fn optneg(protocol: Protocol) -> Command {
        Command::OptNeg {
            version: 6,
            actions: POSTFIX_ACTIONS,
            protocol,
        }
    }

    fn connect() -> Command {
        Command::Connect {
            hostname: "mail.example.org".into(),
            address: ConnectAddress::Inet("192.0.2.1:4567".parse().unwrap()),
        }
    }

    fn mail(a: &str) -> Command {
        Command::Mail {
            args: vec![format!("<{a}>")],
        }
    }

    fn rcpt(a: &str) -> Command {
        Command::Rcpt {
            args: vec![format!("<{a}>")],
        }
    }

    fn header(n: &str, v: &str) -> Command {
        Command::Header {
            name: n.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        }
    }

    fn body(b: &str) -> Command {
        Command::Body {
            chunk: b.as_bytes().to_vec(),
        }
    }

    fn eom() -> Command {
        Command::EndOfMessage { chunk: Vec::new() }
    }

    fn replies(r: Result<Response, SessionError>) -> Vec<Reply> {
        r.unwrap().replies
    }

    fn session(rec: &Arc<Recorder>) -> Session<Arc<Recorder>> {
        Session::new(Arc::new(rec.clone()), SessionLimits::default())
    }

    #[test]
    fn negotiation_with_postfix_asks_only_what_is_needed() {
        let rec = Arc::new(Recorder::default());
        let mut s = session(&rec);
        let r = replies(run(&mut s, optneg(POSTFIX_PROTOCOL)));
        let [
            Reply::OptNeg {
                version,
                actions,
                protocol,
                macros,
            },
        ] = r.as_slice()
        else {
            panic!("{r:?}");
        };
        assert_eq!(*version, 6);
        assert_eq!(*actions, WANTED_ACTIONS);
        assert_eq!(*protocol, WANTED_PROTOCOL);
        assert!(!protocol.contains(Protocol::NR_CONN | Protocol::NR_MAIL));
        assert!(!protocol.contains(Protocol::NR_EOH));
        let connect_list = &macros
            .iter()
            .find(|(s, _)| *s == MacroStage::Connect)
            .unwrap()
            .1;
        assert!(connect_list.contains("{client_addr}") && connect_list.contains("j"));
        assert!(
            macros
                .iter()
                .any(|(s, l)| *s == MacroStage::Mail && l.contains("{auth_authen}"))
        );
    }

    #[test]
    fn negotiation_refusals() {
        let rec = Arc::new(Recorder::default());
        let mut s = session(&rec);
        let e = run(
            &mut s,
            Command::OptNeg {
                version: 1,
                actions: POSTFIX_ACTIONS,
                protocol: POSTFIX_PROTOCOL,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("version 1"), "{e}");
        let mut s = session(&rec);
        let e = run(
            &mut s,
            Command::OptNeg {
                version: 6,
                actions: Actions::CHGHDRS,
                protocol: POSTFIX_PROTOCOL,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("SMFIF_ADDHDRS is needed"), "{e}");
        // An older MTA: version 2, no SETSYMLIST: no macro lists, version 2 kept.
        let mut s = session(&rec);
        let r = replies(run(
            &mut s,
            Command::OptNeg {
                version: 2,
                actions: Actions(0x3f),
                protocol: Protocol(0x7f),
            },
        ));
        assert_eq!(
            r,
            [Reply::OptNeg {
                version: 2,
                actions: Actions::ADDHDRS | Actions::CHGHDRS | Actions::QUARANTINE,
                protocol: Protocol::NONE,
                macros: vec![],
            }]
        );
    }

    /// The whole conversation of a Postfix delivering two messages over one connection,
    /// with every no-reply option: replies only at negotiation, connect, MAIL, EOH and EOM.
    #[test]
    fn postfix_conversation_two_messages() {
        let rec = Arc::new(Recorder {
            edits: vec![HeaderEdit::Insert {
                index: 0,
                field: HeaderField::new("Authentication-Results", "mx;\r\n\tdmarc=pass").unwrap(),
            }],
            ..Recorder::default()
        });
        let mut s = session(&rec);
        run(&mut s, optneg(POSTFIX_PROTOCOL)).unwrap();
        run(
            &mut s,
            Command::Macro {
                for_command: b'C',
                macros: vec![("j".into(), "mx.example".into())],
            },
        )
        .unwrap();
        assert_eq!(replies(run(&mut s, connect())), [Reply::Continue]);
        assert_eq!(
            replies(run(
                &mut s,
                Command::Helo {
                    name: "mail.example.org".into()
                }
            )),
            []
        );
        for n in 0..2 {
            run(
                &mut s,
                Command::Macro {
                    for_command: b'M',
                    macros: vec![("i".into(), format!("Q{n}"))],
                },
            )
            .unwrap();
            assert_eq!(
                replies(run(&mut s, mail("a@example.org"))),
                [Reply::Continue]
            );
            assert_eq!(replies(run(&mut s, rcpt("b@example.net"))), []);
            assert_eq!(replies(run(&mut s, header("From", " a@example.org"))), []);
            assert_eq!(replies(run(&mut s, header("Subject", " hi\n\tthere"))), []);
            assert_eq!(
                replies(run(&mut s, Command::EndOfHeaders)),
                [Reply::Continue]
            );
            assert_eq!(replies(run(&mut s, body("Hello\r\n"))), []);
            assert_eq!(
                replies(run(&mut s, eom())),
                [
                    Reply::InsertHeader {
                        index: 0,
                        name: "Authentication-Results".into(),
                        value: " mx;\n\tdmarc=pass".into()
                    },
                    Reply::Accept
                ]
            );
        }
        assert!(run(&mut s, Command::Quit).unwrap().close);
        let log = rec.take();
        assert_eq!(
            log[..12],
            [
                "connect mail.example.org Some(192.0.2.1) j=Some(\"mx.example\")",
                "helo mail.example.org",
                "mail a@example.org i=Some(\"Q0\")",
                "rcpt b@example.net",
                "header 0 From: a@example.org",
                "header 1 Subject: hi\r\n\tthere",
                "eoh",
                "body 7",
                "eom i=Some(\"Q0\")",
                "mail a@example.org i=Some(\"Q1\")",
                "rcpt b@example.net",
                "header 0 From: a@example.org",
            ]
        );
        assert_eq!(log.last().map(String::as_str), Some("close"));
    }

    #[test]
    fn without_no_reply_options_every_step_is_answered() {
        let rec = Arc::new(Recorder::default());
        let mut s = session(&rec);
        run(&mut s, optneg(Protocol::NONE)).unwrap();
        assert_eq!(replies(run(&mut s, connect())), [Reply::Continue]);
        assert_eq!(
            replies(run(&mut s, Command::Helo { name: "h".into() })),
            [Reply::Continue]
        );
        assert_eq!(replies(run(&mut s, mail("a@b"))), [Reply::Continue]);
        assert_eq!(replies(run(&mut s, rcpt("c@d"))), [Reply::Continue]);
        assert_eq!(replies(run(&mut s, Command::Data)), [Reply::Continue]);
        assert_eq!(
            replies(run(&mut s, header("From", "a@b"))),
            [Reply::Continue]
        );
        assert_eq!(
            replies(run(&mut s, Command::EndOfHeaders)),
            [Reply::Continue]
        );
        assert_eq!(replies(run(&mut s, body("x"))), [Reply::Continue]);
        assert_eq!(
            replies(run(
                &mut s,
                Command::Unknown {
                    command: "XYZZY".into()
                }
            )),
            [Reply::Continue]
        );
        assert_eq!(replies(run(&mut s, eom())), [Reply::Accept]);
        // Without SMFIP_HDR_LEADSPC the MTA ate one space: it is put back.
        assert!(rec.take().contains(&"header 0 From: a@b".to_owned()));
    }

    #[test]
    fn out_of_order_commands_are_errors() {
        let rec = Arc::new(Recorder::default());
        let cases: Vec<(Vec<Command>, Command, &str)> = vec![
            (
                vec![],
                connect(),
                "SMFIC_CONNECT is out of order before option negotiation",
            ),
            (
                vec![optneg(POSTFIX_PROTOCOL)],
                mail("a@b"),
                "SMFIC_MAIL is out of order before the connect information",
            ),
            (
                vec![optneg(POSTFIX_PROTOCOL), connect()],
                header("From", "x"),
                "SMFIC_HEADER is out of order between messages",
            ),
            (
                vec![optneg(POSTFIX_PROTOCOL), connect(), mail("a@b")],
                header("From", "x"),
                "SMFIC_HEADER is out of order after MAIL FROM, before any RCPT TO",
            ),
            (
                vec![
                    optneg(POSTFIX_PROTOCOL),
                    connect(),
                    mail("a@b"),
                    rcpt("c@d"),
                ],
                body("x"),
                "SMFIC_BODY is out of order in the envelope",
            ),
            (
                vec![optneg(POSTFIX_PROTOCOL)],
                optneg(POSTFIX_PROTOCOL),
                "SMFIC_OPTNEG is out of order before the connect information",
            ),
            (
                vec![optneg(POSTFIX_PROTOCOL), connect()],
                connect(),
                "SMFIC_CONNECT is out of order between messages",
            ),
        ];
        for (before, bad, message) in cases {
            let mut s = session(&rec);
            for c in before {
                run(&mut s, c).unwrap();
            }
            let e = run(&mut s, bad).unwrap_err();
            assert_eq!(e.to_string(), message);
        }
        // On each error the message in progress was aborted and the connection closed.
        let log = rec.take();
        assert_eq!(log.iter().filter(|l| *l == "abort").count(), 2, "{log:?}");
        assert_eq!(log.iter().filter(|l| *l == "close").count(), 4, "{log:?}");
    }

    #[test]
    fn eaten_leading_space_is_put_back_only_where_it_was() {
        assert_eq!(wire_value_to_message(b"value", false), b" value");
        assert_eq!(wire_value_to_message(b"\tvalue", false), b"\tvalue");
        assert_eq!(wire_value_to_message(b"", false), b"");
        assert_eq!(wire_value_to_message(b"\n\tfolded", false), b"\r\n\tfolded");
        assert_eq!(
            wire_value_to_message(b" kept\n more", true),
            b" kept\r\n more"
        );
        assert_eq!(wire_value_to_message(b"a\r\n b", true), b"a\r\n b");
    }

    #[test]
    fn abort_returns_to_between_messages() {
        let rec = Arc::new(Recorder::default());
        let mut s = session(&rec);
        for c in [
            optneg(POSTFIX_PROTOCOL),
            connect(),
            mail("a@b"),
            rcpt("c@d"),
        ] {
            run(&mut s, c).unwrap();
        }
        assert!(!s.between_messages());
        assert_eq!(replies(run(&mut s, Command::Abort)), []);
        assert!(s.between_messages());
        // An abort between messages is harmless; the next message proceeds.
        run(&mut s, Command::Abort).unwrap();
        for c in [mail("e@f"), rcpt("c@d"), Command::EndOfHeaders] {
            run(&mut s, c).unwrap();
        }
        assert_eq!(replies(run(&mut s, eom())), [Reply::Accept]);
        let log = rec.take();
        assert_eq!(log.iter().filter(|l| *l == "abort").count(), 1);
        assert!(log.contains(&"mail e@f i=None".to_owned()));
    }

    #[test]
    fn helo_in_a_transaction_aborts_it() {
        let rec = Arc::new(Recorder::default());
        let mut s = session(&rec);
        for c in [
            optneg(POSTFIX_PROTOCOL),
            connect(),
            mail("a@b"),
            rcpt("c@d"),
        ] {
            run(&mut s, c).unwrap();
        }
        run(
            &mut s,
            Command::Helo {
                name: "again".into(),
            },
        )
        .unwrap();
        run(&mut s, Command::Abort).unwrap();
        let log = rec.take();
        assert_eq!(log[log.len() - 2..], ["abort", "helo again"]);
    }

    #[test]
    fn quit_new_connection_starts_over_without_negotiation() {
        let rec = Arc::new(Recorder::default());
        let mut s = session(&rec);
        for c in [
            optneg(POSTFIX_PROTOCOL),
            Command::Macro {
                for_command: b'C',
                macros: vec![("j".into(), "mx1".into())],
            },
            connect(),
            mail("a@b"),
            Command::QuitNewConnection,
        ] {
            run(&mut s, c).unwrap();
        }
        assert_eq!(replies(run(&mut s, connect())), [Reply::Continue]);
        let log = rec.take();
        assert_eq!(
            log[2..],
            [
                "abort",
                "close",
                "connect mail.example.org Some(192.0.2.1) j=None"
            ]
        );
    }

    #[test]
    fn session_ending_before_mail_is_quiet() {
        let rec = Arc::new(Recorder::default());
        let mut s = session(&rec);
        for c in [
            optneg(POSTFIX_PROTOCOL),
            connect(),
            Command::Helo { name: "h".into() },
        ] {
            run(&mut s, c).unwrap();
        }
        assert!(run(&mut s, Command::Quit).unwrap().close);
        assert_eq!(
            rec.take(),
            [
                "connect mail.example.org Some(192.0.2.1) j=None",
                "helo h",
                "close"
            ]
        );
        // QUIT right after the negotiation, or even before it, is fine too.
        let mut s = session(&rec);
        run(&mut s, optneg(POSTFIX_PROTOCOL)).unwrap();
        assert!(run(&mut s, Command::Quit).unwrap().close);
        assert!(rec.take().is_empty());
    }

    #[test]
    fn accept_at_connect_settles_the_connection() {
        let rec = Arc::new(Recorder {
            accept_at_connect: true,
            ..Recorder::default()
        });
        let mut s = session(&rec);
        run(&mut s, optneg(POSTFIX_PROTOCOL)).unwrap();
        assert_eq!(replies(run(&mut s, connect())), [Reply::Accept]);
        // Should the MTA go on anyway, it hears the same decision.
        assert_eq!(replies(run(&mut s, mail("a@b"))), [Reply::Accept]);
        assert_eq!(replies(run(&mut s, rcpt("a@b"))), []);
        assert_eq!(rec.take().len(), 1);
    }

    #[test]
    fn skip_body_uses_smfir_skip_when_replies_are_due() {
        let rec = Arc::new(Recorder {
            skip_body: true,
            ..Recorder::default()
        });
        // The MTA offers SKIP but not NR_BODY: a reply is due, so SKIP is sent.
        let mut s = session(&rec);
        run(&mut s, optneg(Protocol::SKIP)).unwrap();
        for c in [connect(), mail("a@b"), rcpt("c@d"), Command::EndOfHeaders] {
            run(&mut s, c).unwrap();
        }
        assert_eq!(replies(run(&mut s, body("one"))), [Reply::Skip]);
        // A chunk still arriving is not handed to the filter.
        assert_eq!(replies(run(&mut s, body("two"))), [Reply::Skip]);
        assert_eq!(
            replies(run(
                &mut s,
                Command::EndOfMessage {
                    chunk: b"three".to_vec()
                }
            )),
            [Reply::Accept]
        );
        let log = rec.take();
        assert_eq!(
            log.iter().filter(|l| l.starts_with("body")).count(),
            1,
            "{log:?}"
        );
        // Without SKIP offered, continue.
        let mut s = session(&rec);
        run(&mut s, optneg(Protocol::NONE)).unwrap();
        for c in [connect(), mail("a@b"), rcpt("c@d"), Command::EndOfHeaders] {
            run(&mut s, c).unwrap();
        }
        assert_eq!(replies(run(&mut s, body("one"))), [Reply::Continue]);
    }

    #[test]
    fn last_chunk_in_end_of_message_reaches_the_filter() {
        let rec = Arc::new(Recorder::default());
        let mut s = session(&rec);
        for c in [
            optneg(POSTFIX_PROTOCOL),
            connect(),
            mail("a@b"),
            rcpt("c@d"),
            Command::EndOfHeaders,
        ] {
            run(&mut s, c).unwrap();
        }
        run(
            &mut s,
            Command::EndOfMessage {
                chunk: b"tail\r\n".to_vec(),
            },
        )
        .unwrap();
        assert!(rec.take().contains(&"body 6".to_owned()));
    }

    #[test]
    fn edits_and_quarantine_follow_the_negotiated_actions() {
        let field = HeaderField::new("X-Test", "v").unwrap();
        let rec = Arc::new(Recorder {
            edits: vec![
                HeaderEdit::Delete {
                    name: "Authentication-Results".into(),
                    occurrence: 2,
                },
                HeaderEdit::Add(field.clone()),
                HeaderEdit::Change {
                    occurrence: 1,
                    field,
                },
            ],
            quarantine: Some("held".into()),
            ..Recorder::default()
        });
        let mut s = session(&rec);
        run(
            &mut s,
            Command::OptNeg {
                version: 6,
                actions: Actions::ADDHDRS,
                protocol: Protocol::NONE,
            },
        )
        .unwrap();
        for c in [connect(), mail("a@b"), rcpt("c@d"), Command::EndOfHeaders] {
            run(&mut s, c).unwrap();
        }
        let r = run(&mut s, eom()).unwrap();
        assert_eq!(
            r.replies,
            [
                Reply::AddHeader {
                    name: "X-Test".into(),
                    value: "v".into()
                },
                Reply::Accept
            ]
        );
        assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
        // With everything allowed: delete is a change to an empty value, quarantine
        // comes before the decision.
        let mut s = session(&rec);
        for c in [
            optneg(POSTFIX_PROTOCOL),
            connect(),
            mail("a@b"),
            rcpt("c@d"),
            Command::EndOfHeaders,
        ] {
            run(&mut s, c).unwrap();
        }
        let r = run(&mut s, eom()).unwrap();
        assert_eq!(r.replies.len(), 5);
        assert_eq!(
            r.replies[0],
            Reply::ChangeHeader {
                index: 2,
                name: "Authentication-Results".into(),
                value: String::new()
            }
        );
        assert_eq!(
            r.replies[3],
            Reply::Quarantine {
                reason: "held".into()
            }
        );
        assert_eq!(r.replies[4], Reply::Accept);
    }

    #[test]
    fn a_reject_reply_is_sent_as_replycode() {
        struct Rejecter;
        struct RConn;
        impl Filter for Rejecter {
            type Connection = RConn;
            fn connect(&self, _: &Client, _: &Negotiated, _: &Macros) -> Step<RConn> {
                Step::Continue(RConn)
            }
        }
        impl ConnectionFilter for RConn {
            type Message = Msg;
            fn helo(&mut self, _: &str, _: &Macros) {}
            fn mail(&mut self, _: &EnvelopeAddress, _: &Macros) -> Step<Msg> {
                Step::Done(Decision::Reply(
                    SmtpReply::new(550, Some("5.7.1"), "no").unwrap(),
                ))
            }
        }
        let mut s = Session::new(Arc::new(Rejecter), SessionLimits::default());
        let run = |s: &mut Session<Rejecter>, c| futures_executor::block_on(s.handle(c));
        run(&mut s, optneg(POSTFIX_PROTOCOL)).unwrap();
        run(&mut s, connect()).unwrap();
        let r = run(&mut s, mail("a@b")).unwrap();
        assert_eq!(
            r.replies,
            [Reply::ReplyCode(
                SmtpReply::new(550, Some("5.7.1"), "no").unwrap()
            )]
        );
        // The next MAIL starts over.
        assert!(run(&mut s, mail("a@b")).is_ok());
    }
}
