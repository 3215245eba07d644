//! The seam between the milter protocol and what judges the mail: three traits and the
//! values that cross them. Nothing here knows about SPF, DKIM or DMARC.
//!
//! ```text
//! Filter (one per configuration, shared)
//!   .connect(client, negotiated, macros) -> Step<Connection>      reply: continue / accept / ...
//! ConnectionFilter (one per SMTP session)
//!   .helo(name, macros)                                            no reply needed
//!   .mail(from, macros) -> Step<Message>                           reply: continue / accept / ...
//!   .close()
//! MessageFilter (one per message; owns the per-message state)
//!   .rcpt(to, macros)                                              no reply needed
//!   .header(name, value)*                                          no reply needed
//!   .end_of_headers(macros) -> Step<()>                            reply: continue / accept / reject ...
//!   .body(chunk) -> BodyStep                                       continue, or skip the rest
//!   .end_of_message(macros).await -> Outcome                       header edits, quarantine, decision
//!   .abort()                                                       the MTA gave up on the message
//!   .drive().await                                                 background work between frames
//! ```
//!
//! The [`crate::session::Session`] calls these in protocol order, refuses commands out of
//! order, hides what the negotiation changed (replies the MTA does not wait for, the
//! leading space of header values, `\n` versus CRLF in folded fields) and turns the
//! results into replies. A message's state lives in its [`MessageFilter`], created at
//! MAIL FROM and consumed by [`MessageFilter::end_of_message`] or
//! [`MessageFilter::abort`]: the staged receiver session fits it step for step.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;

use crate::codec::{Actions, ConnectAddress, MacroStage, Protocol, SmtpReply};

/// The macros the MTA sent, by stage. Looking a name up searches the latest stage first,
/// as libmilter's `smfi_getsymval` does; the macros of later stages are forgotten when an
/// earlier stage's command arrives (a new MAIL FROM clears the RCPT macros of the last
/// message). Names are compared without their braces: `{auth_authen}`, `auth_authen`
/// and, for one-letter names, `i` and `{i}` are the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Macros {
    stages: [Vec<(String, String)>; 7],
}

fn bare(name: &str) -> &str {
    name.strip_prefix('{')
        .and_then(|n| n.strip_suffix('}'))
        .unwrap_or(name)
}

/// The position of a stage in protocol order.
fn order(stage: MacroStage) -> usize {
    MacroStage::ALL
        .iter()
        .position(|s| *s == stage)
        .unwrap_or_default()
}

impl Macros {
    /// The value of macro `name` (`"i"`, `"{client_addr}"`, `"auth_authen"`); empty
    /// values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = bare(name);
        self.stages.iter().rev().find_map(|list| {
            list.iter()
                .rev()
                .find(|(n, _)| bare(n) == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        })
    }

    /// Replaces the macros of `stage` (keeping at most `limit` pairs).
    pub fn set(&mut self, stage: MacroStage, pairs: Vec<(String, String)>, limit: usize) {
        let mut pairs = pairs;
        pairs.truncate(limit);
        if let Some(slot) = self.stages.get_mut(order(stage)) {
            *slot = pairs;
        }
    }

    /// Forgets the macros of every stage after `stage` (in protocol order).
    pub fn clear_after(&mut self, stage: MacroStage) {
        for slot in self.stages.iter_mut().skip(order(stage) + 1) {
            slot.clear();
        }
    }

    /// Forgets every macro.
    pub fn clear(&mut self) {
        for slot in &mut self.stages {
            slot.clear();
        }
    }

    /// Every `(stage, name, value)`, in protocol order.
    pub fn iter(&self) -> impl Iterator<Item = (MacroStage, &str, &str)> {
        MacroStage::ALL
            .into_iter()
            .zip(&self.stages)
            .flat_map(|(stage, list)| {
                list.iter()
                    .map(move |(n, v)| (stage, n.as_str(), v.as_str()))
            })
    }
}

/// The macros a filter asks the MTA for, per stage (sent in the negotiation answer when
/// the MTA allows it, `SMFIF_SETSYMLIST`; otherwise the MTA sends its configured lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroRequest {
    /// `(stage, names)`; a stage not listed keeps the MTA's own list.
    pub stages: Vec<(MacroStage, Vec<String>)>,
}

impl Default for MacroRequest {
    /// What a DMARC milter uses: the MTA's name (`j`, `{daemon_name}`, `{daemon_addr}`),
    /// the client (`{client_addr}`, `{client_name}`, `{client_ptr}`, `{if_addr}`, `_`)
    /// at connect; the queue id (`i`) and SASL login (`{auth_type}`, `{auth_authen}`) and
    /// sender (`{mail_addr}`) at MAIL; `{rcpt_addr}` at RCPT; the queue id again at DATA,
    /// end of header and end of message (Postfix assigns it only after the first
    /// recipient).
    fn default() -> Self {
        let names = |s: &str| s.split(' ').map(str::to_owned).collect();
        MacroRequest {
            stages: vec![
                (
                    MacroStage::Connect,
                    names(
                        "j {daemon_name} {daemon_addr} {client_addr} {client_name} {client_ptr} {if_addr} _",
                    ),
                ),
                (
                    MacroStage::Mail,
                    names("i {auth_type} {auth_authen} {mail_addr}"),
                ),
                (MacroStage::Rcpt, names("i {rcpt_addr}")),
                (MacroStage::Data, names("i")),
                (MacroStage::EndOfHeaders, names("i")),
                (MacroStage::EndOfMessage, names("i")),
            ],
        }
    }
}

/// What was agreed in option negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol version both speak.
    pub version: u32,
    /// The actions the filter may take (requested and offered).
    pub actions: Actions,
    /// The protocol steps and replies chosen.
    pub protocol: Protocol,
}

impl Negotiated {
    /// True when the filter may quarantine (`SMFIF_QUARANTINE`).
    pub fn can_quarantine(&self) -> bool {
        self.actions.contains(Actions::QUARANTINE)
    }

    /// True when the filter may change and delete header fields (`SMFIF_CHGHDRS`).
    pub fn can_change_headers(&self) -> bool {
        self.actions.contains(Actions::CHGHDRS)
    }
}

/// The SMTP client, from `SMFIC_CONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The host name the MTA found (`[192.0.2.1]` in Postfix when there is none).
    pub hostname: String,
    /// The address and port, a local socket, or unknown.
    pub address: ConnectAddress,
}

impl Client {
    /// The client's IP address, if it connected over IP.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.ip()
    }
}

/// An envelope address from MAIL FROM or RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeAddress {
    /// The address without angle brackets; empty for the null reverse-path `<>`.
    pub address: String,
    /// The ESMTP parameters (`SIZE=1000`, `BODY=8BITMIME`).
    pub parameters: Vec<String>,
}

impl EnvelopeAddress {
    /// From the argument vector of `SMFIC_MAIL` / `SMFIC_RCPT`.
    pub fn from_args(args: &[String]) -> EnvelopeAddress {
        let (first, rest) = args
            .split_first()
            .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
        let t = first.trim();
        let address = t
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(t);
        EnvelopeAddress {
            address: address.to_owned(),
            parameters: rest.to_vec(),
        }
    }

    /// The domain after the last `@`, when there is one.
    pub fn domain(&self) -> Option<&str> {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .filter(|d| !d.is_empty())
    }
}

/// A final decision on a connection or a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept: no more events for this message (or, at connect, this connection).
    Accept,
    /// Reject with the MTA's default reply.
    Reject,
    /// Temporary failure with the MTA's default reply.
    TempFail,
    /// Accept and throw the message away (messages only; at connect it is sent as an
    /// accept, since MTAs ignore a discard there).
    Discard,
    /// Reject (5xx) or temporary failure (4xx) with this reply.
    Reply(SmtpReply),
}

/// Go on (with the state for the next steps) or stop with a decision.
#[derive(Debug)]
pub enum Step<T> {
    /// Go on.
    Continue(T),
    /// Stop here.
    Done(Decision),
}

/// What to do after a body chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStep {
    /// Send the next chunk.
    Continue,
    /// The rest of the body is not needed: the MTA is told to skip it when it can
    /// (`SMFIR_SKIP`), and the chunks that still arrive are not handed to the filter.
    Skip,
    /// Stop with a decision.
    Done(Decision),
}

/// A header field to add: a name and a value, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    name: String,
    value: String,
}

/// Why a header field cannot be added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EditError {
    /// The name is empty or holds a character outside printable ASCII, or `:`
    /// (RFC 5322 §3.6.8).
    Name(String),
    /// The value holds a NUL or a bare CR, a line break not followed by white space, or
    /// a line longer than 998 characters (RFC 5322 §2.1.1).
    Value(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Name(n) => write!(f, "{n:?} is not a header field name"),
            EditError::Value(why) => write!(f, "bad header field value: {why}"),
        }
    }
}

impl std::error::Error for EditError {}

impl HeaderField {
    /// A field `name: value`. The value is written without the space after the colon;
    /// it may be folded, with CRLF or LF followed by a space or tab.
    pub fn new(name: impl Into<String>, value: impl AsRef<str>) -> Result<HeaderField, EditError> {
        let name = name.into();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| (b'!'..=b'~').contains(&b) && b != b':')
        {
            return Err(EditError::Name(name));
        }
        let value = value.as_ref().replace("\r\n", "\n");
        if value.contains('\0') || value.contains('\r') {
            return Err(EditError::Value("it holds a NUL or a bare CR".into()));
        }
        let mut lines = value.split('\n');
        if let Some(first) = lines.next()
            && first.len() + name.len() + 2 > 998
        {
            return Err(EditError::Value("the first line is too long".into()));
        }
        for line in lines {
            if !line.starts_with([' ', '\t']) {
                return Err(EditError::Value(
                    "a line break is not followed by white space".into(),
                ));
            }
            if line.len() > 998 {
                return Err(EditError::Value("a folded line is too long".into()));
            }
        }
        Ok(HeaderField { name, value })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value, folded lines separated by `\n` (as the protocol carries them).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A change to the header, requested at end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Insert the field before the field at `index` (0 = at the top, above the MTA's
    /// own Received field).
    Insert {
        /// Where.
        index: u32,
        /// The field.
        field: HeaderField,
    },
    /// Append the field at the end of the header.
    Add(HeaderField),
    /// Replace the value of the `occurrence`-th field with this name (from 1, counted
    /// in the header as the filter received it).
    Change {
        /// Which field of that name.
        occurrence: u32,
        /// The name and the new value.
        field: HeaderField,
    },
    /// Delete the `occurrence`-th field named `name` (from 1, as received).
    Delete {
        /// The name.
        name: String,
        /// Which field of that name.
        occurrence: u32,
    },
}

/// What to do at end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Header edits, applied in order (deletions are best listed highest occurrence
    /// first, so that each index still names the field meant).
    pub edits: Vec<HeaderEdit>,
    /// Quarantine the message with this reason (Postfix: the hold queue).
    pub quarantine: Option<String>,
    /// The decision.
    pub decision: Decision,
}

impl Outcome {
    /// Accept without changes.
    pub fn accept() -> Outcome {
        Outcome {
            edits: Vec::new(),
            quarantine: None,
            decision: Decision::Accept,
        }
    }
}

/// The factory of connection filters: one value per configuration, shared by every
/// connection (a reload makes a new one; connections keep the one they started with).
pub trait Filter: Send + Sync + 'static {
    /// The per-connection state.
    type Connection: ConnectionFilter;

    /// The macros to ask the MTA for.
    fn macro_request(&self) -> MacroRequest {
        MacroRequest::default()
    }

    /// A new SMTP connection (`SMFIC_CONNECT`): go on with a connection filter, or
    /// decide for the whole connection now (accept: no more events; the MTA closes the
    /// milter connection).
    fn connect(
        &self,
        client: &Client,
        negotiated: &Negotiated,
        macros: &Macros,
    ) -> Step<Self::Connection>;
}

/// One SMTP session's filter.
pub trait ConnectionFilter: Send + 'static {
    /// The per-message state.
    type Message: MessageFilter;

    /// HELO/EHLO (possibly several times; a HELO in the middle of a transaction has
    /// aborted the message first).
    fn helo(&mut self, name: &str, macros: &Macros);

    /// MAIL FROM: start a message, or decide for it now.
    fn mail(&mut self, from: &EnvelopeAddress, macros: &Macros) -> Step<Self::Message>;

    /// The connection ends (QUIT, QUIT_NC, the socket closed or failed). Any message in
    /// progress has been aborted first.
    fn close(self)
    where
        Self: Sized,
    {
    }
}

/// One message's filter: owns everything the message needs until its end.
pub trait MessageFilter: Send + 'static {
    /// RCPT TO (each recipient the MTA accepted).
    fn rcpt(&mut self, to: &EnvelopeAddress, macros: &Macros);

    /// A header field, in order: `value` is everything after the colon as it stands in
    /// the message (leading white space included, folded lines joined by CRLF), without
    /// the final CRLF. `index` counts the fields from 0.
    fn header(&mut self, index: usize, name: &[u8], value: &[u8]);

    /// End of the header.
    fn end_of_headers(&mut self, macros: &Macros) -> Step<()>;

    /// A body chunk (CRLF line ends, as in the message).
    fn body(&mut self, chunk: &[u8]) -> BodyStep;

    /// End of the message: the verdict. Runs as long as it needs (the server sends
    /// progress replies meanwhile); it should bound its own time.
    fn end_of_message(self, macros: &Macros) -> impl Future<Output = Outcome> + Send
    where
        Self: Sized;

    /// The MTA gave up on the message (ABORT, a new HELO, the connection ended).
    fn abort(self)
    where
        Self: Sized,
    {
    }

    /// Background work while the next frame is awaited (DNS questions started at an
    /// earlier step, say). The future is dropped as soon as a frame arrives, so it must
    /// keep its progress in `self`; the default never completes and does nothing.
    fn drive(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_latest_stage_wins_and_braces_do_not_matter() {
        let mut m = Macros::default();
        m.set(
            MacroStage::Connect,
            vec![("j".into(), "mx".into()), ("{i}".into(), "early".into())],
            64,
        );
        m.set(MacroStage::Mail, vec![("i".into(), "ABC123".into())], 64);
        assert_eq!(m.get("i"), Some("ABC123"));
        assert_eq!(m.get("{i}"), Some("ABC123"));
        assert_eq!(m.get("{j}"), Some("mx"));
        m.clear_after(MacroStage::Helo);
        assert_eq!(m.get("i"), Some("early"));
        m.set(
            MacroStage::Mail,
            vec![("{auth_authen}".into(), String::new())],
            64,
        );
        assert_eq!(m.get("auth_authen"), None, "empty counts as absent");
    }

    #[test]
    fn envelope_address_strips_brackets() {
        let a = EnvelopeAddress::from_args(&["<a@Example.org>".into(), "SIZE=10".into()]);
        assert_eq!(a.address, "a@Example.org");
        assert_eq!(a.domain(), Some("Example.org"));
        assert_eq!(a.parameters, ["SIZE=10"]);
        let null = EnvelopeAddress::from_args(&["<>".into()]);
        assert_eq!(null.address, "");
        assert_eq!(null.domain(), None);
    }

    #[test]
    fn header_field_validation() {
        let f = HeaderField::new("Authentication-Results", "mx;\r\n\tspf=pass").unwrap();
        assert_eq!(f.value(), "mx;\n\tspf=pass");
        assert!(HeaderField::new("Bad Name", "x").is_err());
        assert!(HeaderField::new("X", "a\r\nB: injected").is_err());
        assert!(HeaderField::new("X", "a\rb").is_err());
        assert!(HeaderField::new("", "x").is_err());
    }
}
