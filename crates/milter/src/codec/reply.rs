//! Replies from the filter to the MTA (`SMFIR_*`), and the SMTP reply text of
//! `SMFIR_REPLYCODE`.

use std::fmt;

use super::code::*;
use super::{
    Actions, CodecError, EncodeError, Frame, MacroStage, Protocol, Reader, Writer,
    encode_atomically,
};

/// A reply from the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `SMFIC_OPTNEG`: the negotiated version, the actions requested, the protocol steps
    /// chosen, and the macros wanted per stage (sent only when `SMFIF_SETSYMLIST` is
    /// among the actions).
    OptNeg {
        /// Protocol version (at most the MTA's).
        version: u32,
        /// Actions requested (a subset of those offered).
        actions: Actions,
        /// Protocol steps and replies chosen (a subset of those offered).
        protocol: Protocol,
        /// Per stage, the macro names wanted, separated by spaces (`"j {daemon_name}"`).
        macros: Vec<(MacroStage, String)>,
    },
    /// `SMFIR_CONTINUE`.
    Continue,
    /// `SMFIR_ACCEPT`.
    Accept,
    /// `SMFIR_REJECT`: the MTA's default 5xx reply.
    Reject,
    /// `SMFIR_TEMPFAIL`: the MTA's default 4xx reply.
    TempFail,
    /// `SMFIR_DISCARD`.
    Discard,
    /// `SMFIR_REPLYCODE`: reject or tempfail with this reply.
    ReplyCode(SmtpReply),
    /// `SMFIR_QUARANTINE`: quarantine with a reason (Postfix: the hold queue). Not a
    /// decision: the final reply follows.
    Quarantine {
        /// Why, for the postmaster.
        reason: String,
    },
    /// `SMFIR_INSHEADER`: insert a field before the field at `index` (0 = the top).
    InsertHeader {
        /// The position: 0 inserts above every field.
        index: u32,
        /// The field name.
        name: String,
        /// The value, folded lines separated by `\n`.
        value: String,
    },
    /// `SMFIR_CHGHEADER`: replace the value of the `index`-th field named `name` (1 =
    /// the first of that name); an empty value deletes the field.
    ChangeHeader {
        /// Which occurrence of the name, from 1.
        index: u32,
        /// The field name.
        name: String,
        /// The new value; empty deletes.
        value: String,
    },
    /// `SMFIR_ADDHEADER`: append a field at the end of the header.
    AddHeader {
        /// The field name.
        name: String,
        /// The value.
        value: String,
    },
    /// `SMFIR_PROGRESS`: still working, reset the timeout.
    Progress,
    /// `SMFIR_SKIP`: skip the remaining events of this kind (body chunks).
    Skip,
}

impl Reply {
    /// The reply byte.
    pub fn code(&self) -> u8 {
        match self {
            Reply::OptNeg { .. } => SMFIC_OPTNEG,
            Reply::Continue => SMFIR_CONTINUE,
            Reply::Accept => SMFIR_ACCEPT,
            Reply::Reject => SMFIR_REJECT,
            Reply::TempFail => SMFIR_TEMPFAIL,
            Reply::Discard => SMFIR_DISCARD,
            Reply::ReplyCode(_) => SMFIR_REPLYCODE,
            Reply::Quarantine { .. } => SMFIR_QUARANTINE,
            Reply::InsertHeader { .. } => SMFIR_INSHEADER,
            Reply::ChangeHeader { .. } => SMFIR_CHGHEADER,
            Reply::AddHeader { .. } => SMFIR_ADDHEADER,
            Reply::Progress => SMFIR_PROGRESS,
            Reply::Skip => SMFIR_SKIP,
        }
    }

    /// The reply's protocol name (`SMFIR_ACCEPT`).
    pub fn name(&self) -> &'static str {
        super::code_name(self.code())
    }

    /// Appends the reply as a frame to `out`. On error `out` is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_atomically(out, |out| {
            let mut w = Writer::new(out, self.code());
            match self {
                Reply::OptNeg {
                    version,
                    actions,
                    protocol,
                    macros,
                } => {
                    w.u32(*version).u32(actions.0).u32(protocol.0);
                    for (stage, list) in macros {
                        w.u32(stage.index()).cstr(list.as_bytes(), "macro list")?;
                    }
                }
                Reply::ReplyCode(reply) => {
                    w.cstr(reply.to_wire().as_bytes(), "SMTP reply")?;
                }
                Reply::Quarantine { reason } => {
                    w.cstr(reason.as_bytes(), "quarantine reason")?;
                }
                Reply::InsertHeader { index, name, value }
                | Reply::ChangeHeader { index, name, value } => {
                    w.u32(*index)
                        .cstr(name.as_bytes(), "header field name")?
                        .cstr(value.as_bytes(), "header field value")?;
                }
                Reply::AddHeader { name, value } => {
                    w.cstr(name.as_bytes(), "header field name")?
                        .cstr(value.as_bytes(), "header field value")?;
                }
                Reply::Continue
                | Reply::Accept
                | Reply::Reject
                | Reply::TempFail
                | Reply::Discard
                | Reply::Progress
                | Reply::Skip => {}
            }
            w.finish()
        })
    }

    /// Reads a reply from a frame (as an MTA would).
    pub fn parse(frame: &Frame) -> Result<Reply, CodecError> {
        let mut r = Reader::new(frame);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let reply = match frame.code {
            SMFIC_OPTNEG => {
                let version = r.u32("protocol version")?;
                let actions = Actions(r.u32("action flags")?);
                let protocol = Protocol(r.u32("protocol flags")?);
                let mut macros = Vec::new();
                while r.remaining() > 0 {
                    let at = r.pos;
                    let index = r.u32("macro stage")?;
                    let stage = MacroStage::from_index(index)
                        .ok_or_else(|| r.error(at, format!("unknown macro stage {index}")))?;
                    macros.push((stage, text(r.cstr("a macro list")?)));
                }
                Reply::OptNeg {
                    version,
                    actions,
                    protocol,
                    macros,
                }
            }
            SMFIR_REPLYCODE => {
                let at = r.pos;
                let wire = text(r.cstr("the SMTP reply")?);
                r.end()?;
                Reply::ReplyCode(
                    SmtpReply::from_wire(&wire).map_err(|e| r.error(at, e.to_string()))?,
                )
            }
            SMFIR_QUARANTINE => {
                let reason = text(r.cstr("the quarantine reason")?);
                r.end()?;
                Reply::Quarantine { reason }
            }
            SMFIR_INSHEADER | SMFIR_CHGHEADER => {
                let index = r.u32("header index")?;
                let name = text(r.cstr("the header field name")?);
                let value = text(r.cstr("the header field value")?);
                r.end()?;
                if frame.code == SMFIR_INSHEADER {
                    Reply::InsertHeader { index, name, value }
                } else {
                    Reply::ChangeHeader { index, name, value }
                }
            }
            SMFIR_ADDHEADER => {
                let name = text(r.cstr("the header field name")?);
                let value = text(r.cstr("the header field value")?);
                r.end()?;
                Reply::AddHeader { name, value }
            }
            SMFIR_CONTINUE | SMFIR_ACCEPT | SMFIR_REJECT | SMFIR_TEMPFAIL | SMFIR_DISCARD
            | SMFIR_PROGRESS | SMFIR_SKIP => {
                r.end()?;
                match frame.code {
                    SMFIR_CONTINUE => Reply::Continue,
                    SMFIR_ACCEPT => Reply::Accept,
                    SMFIR_REJECT => Reply::Reject,
                    SMFIR_TEMPFAIL => Reply::TempFail,
                    SMFIR_DISCARD => Reply::Discard,
                    SMFIR_PROGRESS => Reply::Progress,
                    _ => Reply::Skip,
                }
            }
            code => {
                return Err(CodecError::UnknownCode {
                    code,
                    offset: frame.offset,
                });
            }
        };
        Ok(reply)
    }
}

/// An SMTP reply for `SMFIR_REPLYCODE`: a 4xx or 5xx code, an optional enhanced status
/// code (RFC 3463) of the same class, and one or more lines of text. Built only valid:
/// the checks are those Postfix applies before using a milter's reply
/// (`milter8_valid_smtp_reply`), so the MTA never refuses it.
///
/// ```
/// use dmarc_milter::codec::SmtpReply;
///
/// let r = SmtpReply::new(550, Some("5.7.1"), "rejected by DMARC policy for example.org").unwrap();
/// assert_eq!(r.to_wire(), "550 5.7.1 rejected by DMARC policy for example.org");
/// let m = SmtpReply::new(451, Some("4.7.5"), "first line\nsecond 100%").unwrap();
/// assert_eq!(m.to_wire(), "451-4.7.5 first line\r\n451 4.7.5 second 100%%");
/// assert!(SmtpReply::new(250, None, "ok").is_err());
/// assert!(SmtpReply::new(550, Some("4.7.1"), "class differs").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    code: u16,
    enhanced: Option<String>,
    lines: Vec<String>,
}

/// Why a reply text is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// The code is not 4xx or 5xx.
    Code(u16),
    /// The enhanced status code is not `class.subject.detail` with the code's class.
    Enhanced(String),
    /// A line holds a control character (other than tab) or a non-ASCII character.
    BadCharacter {
        /// The line, from 1.
        line: usize,
    },
    /// A line is too long for SMTP (512 bytes with code and CRLF, RFC 5321 §4.5.3.1.5).
    LineTooLong {
        /// The line, from 1.
        line: usize,
    },
    /// More lines than a reply may reasonably have (32).
    TooManyLines,
    /// The text of `SMFIR_REPLYCODE` does not have the form `ddd[-| ]...` on every line.
    Syntax(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Code(c) => write!(f, "reply code {c} is not 4xx or 5xx"),
            ReplyError::Enhanced(e) => write!(
                f,
                "enhanced status code {e:?} is not class.subject.detail with the reply code's class"
            ),
            ReplyError::BadCharacter { line } => write!(
                f,
                "line {line} of the reply text holds a control or non-ASCII character"
            ),
            ReplyError::LineTooLong { line } => {
                write!(
                    f,
                    "line {line} of the reply text is longer than SMTP allows"
                )
            }
            ReplyError::TooManyLines => f.write_str("the reply text has more than 32 lines"),
            ReplyError::Syntax(why) => write!(f, "malformed SMTP reply: {why}"),
        }
    }
}

impl std::error::Error for ReplyError {}

const MAX_LINES: usize = 32;
/// RFC 5321 §4.5.3.1.5: 512 octets with the CRLF.
const MAX_LINE: usize = 510;

impl SmtpReply {
    /// A reply with `code` (400-599), an optional enhanced status code such as `5.7.1`
    /// (its class must be the code's first digit), and `text`, one line per `\n`.
    pub fn new(code: u16, enhanced: Option<&str>, text: &str) -> Result<SmtpReply, ReplyError> {
        if !(400..600).contains(&code) {
            return Err(ReplyError::Code(code));
        }
        if let Some(e) = enhanced
            && !valid_enhanced(e, code)
        {
            return Err(ReplyError::Enhanced(e.to_owned()));
        }
        let lines: Vec<String> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
            .collect();
        if lines.len() > MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
        let prefix = 4 + enhanced.map_or(0, |e| e.len() + 1);
        for (i, line) in lines.iter().enumerate() {
            if line
                .bytes()
                .any(|b| !(b == b'\t' || (b' '..=b'~').contains(&b)))
            {
                return Err(ReplyError::BadCharacter { line: i + 1 });
            }
            if prefix + line.len() > MAX_LINE {
                return Err(ReplyError::LineTooLong { line: i + 1 });
            }
        }
        Ok(SmtpReply {
            code,
            enhanced: enhanced.map(str::to_owned),
            lines,
        })
    }

    /// The reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code, when there is one.
    pub fn enhanced(&self) -> Option<&str> {
        self.enhanced.as_deref()
    }

    /// The lines of text.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// True for 5xx (a permanent failure).
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The reply as SMTP writes it (`550-5.7.1 a\r\n550 5.7.1 b`, no final CRLF), with
    /// every `%` doubled: Sendmail uses the text as a format string and Postfix turns
    /// `%%` back into `%`.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push_str("\r\n");
            }
            out.push_str(&self.code.to_string());
            out.push(if i == last { ' ' } else { '-' });
            if let Some(e) = &self.enhanced {
                out.push_str(e);
                out.push(' ');
            }
            out.push_str(&line.replace('%', "%%"));
        }
        out
    }

    /// Reads an `SMFIR_REPLYCODE` text: every line `ddd-` (or `ddd ` for the last) with
    /// the same code, lines separated by CRLF, `%%` read as `%`.
    pub fn from_wire(wire: &str) -> Result<SmtpReply, ReplyError> {
        let raw: Vec<&str> = wire.split("\r\n").collect();
        let mut code = None;
        let mut enhanced: Option<String> = None;
        let mut text = Vec::new();
        let last = raw.len().saturating_sub(1);
        for (i, line) in raw.iter().enumerate() {
            let syntax = |why: &str| ReplyError::Syntax(format!("line {}: {why}", i + 1));
            let digits = line
                .get(..3)
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
            let Some(digits) = digits else {
                return Err(syntax("does not start with a 3-digit code"));
            };
            let c: u16 = digits.parse().map_err(|_| syntax("bad code"))?;
            if *code.get_or_insert(c) != c {
                return Err(syntax("the code differs from the first line's"));
            }
            let sep = line.as_bytes().get(3).copied();
            match (sep, i == last) {
                (Some(b' '), true) | (Some(b'-'), false) => {}
                (None, true) => {}
                _ => {
                    return Err(syntax(
                        "the code is not followed by '-' (more lines) or ' ' (last)",
                    ));
                }
            }
            let mut rest = line.get(4..).unwrap_or_default();
            // An enhanced status code when the rest starts with "d." (RFC 3463).
            if let Some((first, after)) = rest.split_once(' ').or(Some((rest, "")))
                && first.as_bytes().get(1) == Some(&b'.')
                && first.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            {
                match &enhanced {
                    None if i == 0 => enhanced = Some(first.to_owned()),
                    Some(e) if e == first => {}
                    _ => return Err(syntax("the enhanced status code differs between lines")),
                }
                rest = after;
            }
            text.push(rest.replace("%%", "%"));
        }
        let code = code.ok_or_else(|| ReplyError::Syntax("empty reply".into()))?;
        SmtpReply::new(code, enhanced.as_deref(), &text.join("\n"))
    }
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for line in &self.lines {
            if !first {
                f.write_str(" / ")?;
            }
            first = false;
            write!(f, "{}", self.code)?;
            if let Some(e) = &self.enhanced {
                write!(f, " {e}")?;
            }
            write!(f, " {line}")?;
        }
        Ok(())
    }
}

/// `class.subject.detail` (RFC 3463 §2): class the code's first digit, subject and
/// detail 1-3 digits.
fn valid_enhanced(e: &str, code: u16) -> bool {
    let mut parts = e.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let digits = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    class.len() == 1
        && digits(class)
        && digits(subject)
        && digits(detail)
        && class.as_bytes().first() == code.to_string().as_bytes().first()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FrameDecoder;

    fn roundtrip(reply: &Reply) -> Reply {
        let mut out = Vec::new();
        reply.encode(&mut out).unwrap();
        let mut d = FrameDecoder::new(1 << 20);
        d.push(&out);
        Reply::parse(&d.next_frame().unwrap().unwrap()).unwrap()
    }

    #[test]
    fn every_reply_round_trips() {
        let replies = [
            Reply::OptNeg {
                version: 6,
                actions: Actions::ADDHDRS | Actions::SETSYMLIST,
                protocol: Protocol::NR_HDR | Protocol::NODATA,
                macros: vec![
                    (MacroStage::Connect, "j {daemon_name}".into()),
                    (MacroStage::EndOfMessage, "i".into()),
                ],
            },
            Reply::Continue,
            Reply::Accept,
            Reply::Reject,
            Reply::TempFail,
            Reply::Discard,
            Reply::ReplyCode(SmtpReply::new(550, Some("5.7.1"), "no\nreally 50%").unwrap()),
            Reply::Quarantine {
                reason: "DMARC policy of example.org".into(),
            },
            Reply::InsertHeader {
                index: 0,
                name: "Authentication-Results".into(),
                value: " mx.example;\n\tdmarc=pass".into(),
            },
            Reply::ChangeHeader {
                index: 2,
                name: "Authentication-Results".into(),
                value: String::new(),
            },
            Reply::AddHeader {
                name: "X-Spam-Flag".into(),
                value: "YES".into(),
            },
            Reply::Progress,
            Reply::Skip,
        ];
        for r in &replies {
            assert_eq!(&roundtrip(r), r);
        }
    }

    #[test]
    fn optneg_answer_layout() {
        // version, actions, protocol, then (stage, NUL-terminated list) pairs.
        let mut out = Vec::new();
        Reply::OptNeg {
            version: 6,
            actions: Actions(0x121),
            protocol: Protocol(0x10_0000),
            macros: vec![(MacroStage::EndOfHeaders, "i".into())],
        }
        .encode(&mut out)
        .unwrap();
        assert_eq!(
            out,
            [
                &[0, 0, 0, 19, b'O'][..],
                &[0, 0, 0, 6, 0, 0, 1, 0x21, 0, 0x10, 0, 0],
                &[0, 0, 0, 6, b'i', 0]
            ]
            .concat()
        );
    }

    #[test]
    fn smtp_reply_checks_like_postfix() {
        assert!(SmtpReply::new(550, Some("5.7.1"), "ok").is_ok());
        assert!(SmtpReply::new(550, None, "ok").is_ok());
        assert_eq!(SmtpReply::new(600, None, "x"), Err(ReplyError::Code(600)));
        assert!(SmtpReply::new(550, Some("5.7"), "x").is_err());
        assert!(SmtpReply::new(550, Some("5.7.1234"), "x").is_err());
        assert_eq!(
            SmtpReply::new(550, None, "bad\x07bell"),
            Err(ReplyError::BadCharacter { line: 1 })
        );
        assert!(SmtpReply::new(550, None, "caf\u{e9}").is_err());
        assert!(SmtpReply::new(550, None, &"x".repeat(600)).is_err());
        assert!(SmtpReply::new(550, None, &"x\n".repeat(40)).is_err());
    }

    #[test]
    fn smtp_reply_from_wire() {
        let r = SmtpReply::from_wire("550-5.7.1 first\r\n550 5.7.1 second 10%%").unwrap();
        assert_eq!(r.code(), 550);
        assert_eq!(r.enhanced(), Some("5.7.1"));
        assert_eq!(r.lines(), ["first", "second 10%"]);
        assert_eq!(r.to_wire(), "550-5.7.1 first\r\n550 5.7.1 second 10%%");
        for bad in [
            "550-5.7.1 not last\r\n",
            "550-last line has a dash",
            "550 5.7.1 a\r\n551 5.7.1 b",
            "55 short",
            "550 5.7.1 a\r\n550 5.7.2 b",
            "250 2.0.0 ok",
            "550 4.7.1 class differs",
        ] {
            assert!(SmtpReply::from_wire(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_replies_refuse_nul() {
        let mut out = Vec::new();
        let e = Reply::AddHeader {
            name: "X".into(),
            value: "a\0b".into(),
        }
        .encode(&mut out)
        .unwrap_err();
        assert_eq!(
            e,
            EncodeError::NulInString {
                field: "header field value"
            }
        );
        assert!(out.is_empty());
    }
}
