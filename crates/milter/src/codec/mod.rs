//! Milter protocol frames, sans-I/O: version 6 as Postfix (2.6 and later) and Sendmail
//! (8.14 and later) speak it.
//!
//! Every packet on the wire is a frame:
//!
//! ```text
//! frame   = length command data
//! length  = 4 bytes, unsigned, network byte order: the size of command + data
//! command = 1 byte: SMFIC_* from the MTA, SMFIR_* from the filter
//! data    = length - 1 bytes; strings are NUL-terminated, numbers are 4-byte
//!           (or, for the connect port, 2-byte) network byte order
//! ```
//!
//! [`FrameDecoder`] cuts a byte stream into [`Frame`]s, refusing a frame larger than its
//! configured maximum before buffering it; [`Command::parse`] and [`Reply::parse`] read a
//! frame's fields; [`Command::encode`] and [`Reply::encode`] write frames. Both directions
//! are implemented so that a test client (and the property tests) can speak to the
//! session. Every malformed frame is a [`CodecError`] that names the frame's command byte,
//! its position in the stream and what was wrong where; nothing here panics on input.
//!
//! The layout of each frame follows Postfix's `src/milter/milter8.c` (the MTA side) and
//! Sendmail's libmilter (the filter side); neither is a formal specification, so where
//! they differ the behaviour of both is accepted (an IPv6 client address with or without
//! Sendmail's `IPv6:` prefix, for example).

mod command;
mod reply;

use std::fmt;

pub use command::{Command, ConnectAddress};
pub use reply::{Reply, ReplyError, SmtpReply};

/// The protocol version this crate speaks (the newest there is).
pub const PROTOCOL_VERSION: u32 = 6;

/// The oldest protocol version accepted from an MTA (libmilter's minimum).
pub const MIN_PROTOCOL_VERSION: u32 = 2;

/// The default largest frame accepted: 1 MiB, Sendmail's largest negotiable data size
/// (Postfix sends body chunks of at most 65,535 bytes and header fields of at most
/// `header_size_limit`, 100 KiB by default).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Command bytes from the MTA (`SMFIC_*`) and reply bytes from the filter (`SMFIR_*`).
pub mod code {
    /// Abort the current message.
    pub const SMFIC_ABORT: u8 = b'A';
    /// A body chunk.
    pub const SMFIC_BODY: u8 = b'B';
    /// Connection information.
    pub const SMFIC_CONNECT: u8 = b'C';
    /// Macro definitions for the command that follows.
    pub const SMFIC_MACRO: u8 = b'D';
    /// End of the message (optionally with a last body chunk).
    pub const SMFIC_BODYEOB: u8 = b'E';
    /// HELO/EHLO.
    pub const SMFIC_HELO: u8 = b'H';
    /// A header field.
    pub const SMFIC_HEADER: u8 = b'L';
    /// MAIL FROM.
    pub const SMFIC_MAIL: u8 = b'M';
    /// End of the header.
    pub const SMFIC_EOH: u8 = b'N';
    /// Option negotiation (also the filter's answer to it).
    pub const SMFIC_OPTNEG: u8 = b'O';
    /// Quit: the connection ends.
    pub const SMFIC_QUIT: u8 = b'Q';
    /// RCPT TO.
    pub const SMFIC_RCPT: u8 = b'R';
    /// DATA.
    pub const SMFIC_DATA: u8 = b'T';
    /// An SMTP command the MTA does not know.
    pub const SMFIC_UNKNOWN: u8 = b'U';
    /// Quit, and a new connection follows on the same socket.
    pub const SMFIC_QUIT_NC: u8 = b'K';

    /// Accept the message (or, at connect and HELO, the connection).
    pub const SMFIR_ACCEPT: u8 = b'a';
    /// Continue.
    pub const SMFIR_CONTINUE: u8 = b'c';
    /// Accept and silently discard the message.
    pub const SMFIR_DISCARD: u8 = b'd';
    /// Change (or, with an empty value, delete) a header field.
    pub const SMFIR_CHGHEADER: u8 = b'm';
    /// Still working: reset the MTA's timeout.
    pub const SMFIR_PROGRESS: u8 = b'p';
    /// Reject with the MTA's default 5xx reply.
    pub const SMFIR_REJECT: u8 = b'r';
    /// Temporary failure with the MTA's default 4xx reply.
    pub const SMFIR_TEMPFAIL: u8 = b't';
    /// Add a header field at the end.
    pub const SMFIR_ADDHEADER: u8 = b'h';
    /// Insert a header field at an index.
    pub const SMFIR_INSHEADER: u8 = b'i';
    /// Reply with this SMTP reply (4xx or 5xx).
    pub const SMFIR_REPLYCODE: u8 = b'y';
    /// Quarantine the message (Postfix: the hold queue).
    pub const SMFIR_QUARANTINE: u8 = b'q';
    /// Skip the remaining events of this kind (body chunks).
    pub const SMFIR_SKIP: u8 = b's';
}

/// The name of a command or reply byte, for messages (`SMFIC_CONNECT`, `SMFIR_ACCEPT`);
/// `"unknown"` for a byte that is neither.
pub fn code_name(byte: u8) -> &'static str {
    use code::*;
    match byte {
        SMFIC_ABORT => "SMFIC_ABORT",
        SMFIC_BODY => "SMFIC_BODY",
        SMFIC_CONNECT => "SMFIC_CONNECT",
        SMFIC_MACRO => "SMFIC_MACRO",
        SMFIC_BODYEOB => "SMFIC_BODYEOB",
        SMFIC_HELO => "SMFIC_HELO",
        SMFIC_HEADER => "SMFIC_HEADER",
        SMFIC_MAIL => "SMFIC_MAIL",
        SMFIC_EOH => "SMFIC_EOH",
        SMFIC_OPTNEG => "SMFIC_OPTNEG",
        SMFIC_QUIT => "SMFIC_QUIT",
        SMFIC_RCPT => "SMFIC_RCPT",
        SMFIC_DATA => "SMFIC_DATA",
        SMFIC_UNKNOWN => "SMFIC_UNKNOWN",
        SMFIC_QUIT_NC => "SMFIC_QUIT_NC",
        SMFIR_ACCEPT => "SMFIR_ACCEPT",
        SMFIR_CONTINUE => "SMFIR_CONTINUE",
        SMFIR_DISCARD => "SMFIR_DISCARD",
        SMFIR_CHGHEADER => "SMFIR_CHGHEADER",
        SMFIR_PROGRESS => "SMFIR_PROGRESS",
        SMFIR_REJECT => "SMFIR_REJECT",
        SMFIR_TEMPFAIL => "SMFIR_TEMPFAIL",
        SMFIR_ADDHEADER => "SMFIR_ADDHEADER",
        SMFIR_INSHEADER => "SMFIR_INSHEADER",
        SMFIR_REPLYCODE => "SMFIR_REPLYCODE",
        SMFIR_QUARANTINE => "SMFIR_QUARANTINE",
        SMFIR_SKIP => "SMFIR_SKIP",
        _ => "unknown",
    }
}

macro_rules! flags {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $flag:ident = $bit:expr,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[$fdoc])* pub const $flag: $name = $name($bit);)*

            const NAMES: &'static [(&'static str, u32)] = &[$((stringify!($flag), $bit)),*];

            /// No flag set.
            pub const NONE: $name = $name(0);

            /// True when every flag of `other` is set here.
            pub fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// The flags set in both.
            pub fn intersection(self, other: $name) -> $name {
                $name(self.0 & other.0)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:#x}: {})", stringify!($name), self.0, self)
            }
        }

        /// The names of the flags set, joined by `|` (`-` for none); unnamed bits in hex.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut rest = self.0;
                let mut first = true;
                for (name, bit) in Self::NAMES {
                    if rest & bit != 0 {
                        if !first {
                            f.write_str("|")?;
                        }
                        f.write_str(name)?;
                        first = false;
                        rest &= !bit;
                    }
                }
                if rest != 0 {
                    if !first {
                        f.write_str("|")?;
                    }
                    write!(f, "{rest:#x}")?;
                    first = false;
                }
                if first {
                    f.write_str("-")?;
                }
                Ok(())
            }
        }
    };
}

flags! {
    /// What a filter may do to a message (`SMFIF_*`): offered by the MTA in option
    /// negotiation, requested by the filter in its answer.
    Actions {
        /// Add (and insert) header fields.
        ADDHDRS = 1 << 0,
        /// Replace the body.
        CHGBODY = 1 << 1,
        /// Add recipients.
        ADDRCPT = 1 << 2,
        /// Delete recipients.
        DELRCPT = 1 << 3,
        /// Change and delete header fields.
        CHGHDRS = 1 << 4,
        /// Quarantine the message.
        QUARANTINE = 1 << 5,
        /// Change the envelope sender.
        CHGFROM = 1 << 6,
        /// Add recipients with ESMTP arguments.
        ADDRCPT_PAR = 1 << 7,
        /// Send the lists of macros wanted per stage in the negotiation answer.
        SETSYMLIST = 1 << 8,
    }
}

flags! {
    /// Protocol steps and capabilities (`SMFIP_*`): offered by the MTA (what it can skip
    /// or do), chosen by the filter. `NO*` flags skip a step, `NR_*` flags mean the filter
    /// sends no reply for that step.
    Protocol {
        /// Do not send connect information.
        NOCONNECT = 1 << 0,
        /// Do not send HELO.
        NOHELO = 1 << 1,
        /// Do not send MAIL FROM.
        NOMAIL = 1 << 2,
        /// Do not send RCPT TO.
        NORCPT = 1 << 3,
        /// Do not send the body.
        NOBODY = 1 << 4,
        /// Do not send the header fields.
        NOHDRS = 1 << 5,
        /// Do not send end of header.
        NOEOH = 1 << 6,
        /// No reply for each header field.
        NR_HDR = 1 << 7,
        /// Do not send unknown SMTP commands.
        NOUNKNOWN = 1 << 8,
        /// Do not send DATA.
        NODATA = 1 << 9,
        /// The MTA understands SMFIR_SKIP.
        SKIP = 1 << 10,
        /// Send rejected recipients too.
        RCPT_REJ = 1 << 11,
        /// No reply for connect.
        NR_CONN = 1 << 12,
        /// No reply for HELO.
        NR_HELO = 1 << 13,
        /// No reply for MAIL FROM.
        NR_MAIL = 1 << 14,
        /// No reply for RCPT TO.
        NR_RCPT = 1 << 15,
        /// No reply for DATA.
        NR_DATA = 1 << 16,
        /// No reply for unknown commands.
        NR_UNKN = 1 << 17,
        /// No reply for end of header.
        NR_EOH = 1 << 18,
        /// No reply for body chunks.
        NR_BODY = 1 << 19,
        /// Header values keep their leading white space (the MTA does not eat one space
        /// after the colon, and does not add one to the values the filter sends).
        HDR_LEADSPC = 1 << 20,
    }
}

/// A protocol stage that macros belong to (`SMFIM_*`): the index used in the lists of
/// the negotiation answer. Listed in protocol order; the numbers are the protocol's (end
/// of message is 5 and end of header 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MacroStage {
    /// Connect.
    Connect,
    /// HELO/EHLO.
    Helo,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA.
    Data,
    /// End of header.
    EndOfHeaders,
    /// End of message.
    EndOfMessage,
}

impl MacroStage {
    /// Every stage, in protocol order.
    pub const ALL: [MacroStage; 7] = [
        MacroStage::Connect,
        MacroStage::Helo,
        MacroStage::Mail,
        MacroStage::Rcpt,
        MacroStage::Data,
        MacroStage::EndOfHeaders,
        MacroStage::EndOfMessage,
    ];

    /// The protocol's number for the stage (`SMFIM_CONNECT` = 0 ... `SMFIM_EOH` = 6).
    pub fn index(self) -> u32 {
        match self {
            MacroStage::Connect => 0,
            MacroStage::Helo => 1,
            MacroStage::Mail => 2,
            MacroStage::Rcpt => 3,
            MacroStage::Data => 4,
            MacroStage::EndOfMessage => 5,
            MacroStage::EndOfHeaders => 6,
        }
    }

    /// The stage with this protocol number.
    pub fn from_index(index: u32) -> Option<MacroStage> {
        MacroStage::ALL.into_iter().find(|s| s.index() == index)
    }

    /// The stage whose command an `SMFIC_MACRO` frame names (its first data byte).
    pub fn for_command(command: u8) -> Option<MacroStage> {
        Some(match command {
            code::SMFIC_CONNECT => MacroStage::Connect,
            code::SMFIC_HELO => MacroStage::Helo,
            code::SMFIC_MAIL => MacroStage::Mail,
            code::SMFIC_RCPT => MacroStage::Rcpt,
            code::SMFIC_DATA => MacroStage::Data,
            code::SMFIC_EOH => MacroStage::EndOfHeaders,
            code::SMFIC_BODYEOB => MacroStage::EndOfMessage,
            _ => return None,
        })
    }

    /// The command byte of the stage.
    pub fn command(self) -> u8 {
        match self {
            MacroStage::Connect => code::SMFIC_CONNECT,
            MacroStage::Helo => code::SMFIC_HELO,
            MacroStage::Mail => code::SMFIC_MAIL,
            MacroStage::Rcpt => code::SMFIC_RCPT,
            MacroStage::Data => code::SMFIC_DATA,
            MacroStage::EndOfHeaders => code::SMFIC_EOH,
            MacroStage::EndOfMessage => code::SMFIC_BODYEOB,
        }
    }
}

/// One frame cut from the stream: its command (or reply) byte and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command or reply byte.
    pub code: u8,
    /// The data after the command byte.
    pub data: Vec<u8>,
    /// Where the frame's length field starts in the stream (bytes since the connection
    /// opened), for error messages.
    pub offset: u64,
}

/// What was wrong with the bytes received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The length field is 0: a frame holds at least its command byte.
    EmptyFrame {
        /// Where the frame starts in the stream.
        offset: u64,
    },
    /// The length field announces more than the configured maximum; the frame is not read.
    FrameTooLarge {
        /// The announced length (command byte and data).
        length: u64,
        /// The maximum accepted.
        max: usize,
        /// Where the frame starts in the stream.
        offset: u64,
    },
    /// The stream ended inside a frame.
    Truncated {
        /// How many bytes of the unfinished frame arrived.
        have: usize,
        /// Where the frame starts in the stream.
        offset: u64,
    },
    /// The command (or reply) byte is not one this side accepts.
    UnknownCode {
        /// The byte.
        code: u8,
        /// Where the frame starts in the stream.
        offset: u64,
    },
    /// A frame's data does not have the layout its command requires.
    Malformed {
        /// The command or reply byte.
        code: u8,
        /// Where the frame starts in the stream.
        offset: u64,
        /// The position within the frame's data (after the command byte).
        at: usize,
        /// What was wrong there.
        problem: String,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::EmptyFrame { offset } => write!(
                f,
                "frame at stream byte {offset}: length 0 (a frame holds at least its command byte)"
            ),
            CodecError::FrameTooLarge {
                length,
                max,
                offset,
            } => write!(
                f,
                "frame at stream byte {offset}: length {length} is larger than the maximum of {max} bytes"
            ),
            CodecError::Truncated { have, offset } => write!(
                f,
                "frame at stream byte {offset}: the connection ended after {have} bytes of it"
            ),
            CodecError::UnknownCode { code, offset } => write!(
                f,
                "frame at stream byte {offset}: unknown command byte {}",
                show_byte(*code)
            ),
            CodecError::Malformed {
                code,
                offset,
                at,
                problem,
            } => write!(
                f,
                "frame at stream byte {offset}, command {} ({}), data byte {at}: {problem}",
                show_byte(*code),
                code_name(*code)
            ),
        }
    }
}

impl std::error::Error for CodecError {}

/// A byte as `'C'` when printable, else `0x07`.
fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("{b:#04x}")
    }
}

/// Cuts a byte stream into frames. Feed it what arrives with [`push`](Self::push) and
/// take frames with [`next_frame`](Self::next_frame); a frame's length is checked
/// against the maximum as soon as its 4-byte length field is there, before its data is
/// buffered.
///
/// ```
/// use dmarc_milter::codec::{CodecError, FrameDecoder};
///
/// let mut d = FrameDecoder::new(1024);
/// d.push(&[0, 0, 0, 1, b'A', 0, 0]);           // SMFIC_ABORT, then half a length field
/// assert_eq!(d.next_frame().unwrap().unwrap().code, b'A');
/// assert_eq!(d.next_frame().unwrap(), None);   // waiting for more
/// d.push(&[0x10, 0]);                          // length 4096 > 1024
/// assert!(matches!(d.next_frame(), Err(CodecError::FrameTooLarge { length: 4096, .. })));
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    start: usize,
    max_frame: usize,
    /// Stream position of `buf[start]`.
    position: u64,
}

impl FrameDecoder {
    /// A decoder refusing frames whose length (command byte and data) exceeds `max_frame`.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_frame: max_frame.max(1),
            position: 0,
        }
    }

    /// The command codes of the complete frames buffered, in order (without consuming
    /// them; a frame too large or empty ends the list, [`FrameDecoder::next_frame`] says
    /// why).
    pub fn complete_codes(&self) -> impl Iterator<Item = u8> + '_ {
        let mut rest = self.buf.get(self.start..).unwrap_or_default();
        let max = self.max_frame;
        std::iter::from_fn(move || {
            let length = u32::from_be_bytes(*rest.first_chunk::<4>()?) as usize;
            if length == 0 || length > max {
                return None;
            }
            let code = *rest.get(4..4 + length)?.first()?;
            rest = rest.get(4 + length..).unwrap_or_default();
            Some(code)
        })
    }

    /// Appends bytes received.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer to read the next bytes into, with room for at least `at_least` more
    /// (not zeroed): append to it only, as `tokio::io::AsyncReadExt::read_buf` does.
    /// Reading into it directly saves a copy of every byte through a separate read
    /// buffer.
    pub fn read_buffer(&mut self, at_least: usize) -> &mut Vec<u8> {
        self.compact(at_least);
        self.buf.reserve(at_least);
        &mut self.buf
    }

    /// Drops the bytes already returned when that makes room for `more` without growing
    /// the buffer, or when nothing is left unread.
    fn compact(&mut self, more: usize) {
        if self.start == 0 {
            return;
        }
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.buf.capacity() - self.buf.len() < more
            || (self.start > 4096 && self.start * 2 > self.buf.len())
        {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// The next complete frame, `None` when more bytes are needed, or an error when the
    /// frame cannot be valid (after which the stream cannot be resynchronised).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CodecError> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let Some(len_bytes) = pending.first_chunk::<4>() else {
            return Ok(None);
        };
        let length = u32::from_be_bytes(*len_bytes);
        let offset = self.position;
        if length == 0 {
            return Err(CodecError::EmptyFrame { offset });
        }
        let length = length as usize;
        if length > self.max_frame {
            return Err(CodecError::FrameTooLarge {
                length: length as u64,
                max: self.max_frame,
                offset,
            });
        }
        let Some(body) = pending.get(4..4 + length) else {
            return Ok(None);
        };
        let (code, data) = body.split_first().map_or((0, &[][..]), |(c, d)| (*c, d));
        let frame = Frame {
            code,
            data: data.to_vec(),
            offset,
        };
        self.start += 4 + length;
        self.position += 4 + length as u64;
        Ok(Some(frame))
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// Checks that the stream ended between frames (call at end of stream).
    pub fn finish(&self) -> Result<(), CodecError> {
        match self.buffered() {
            0 => Ok(()),
            have => Err(CodecError::Truncated {
                have,
                offset: self.position,
            }),
        }
    }
}

/// Reads the fields of one frame's data, with errors that say where.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    code: u8,
    offset: u64,
}

impl<'a> Reader<'a> {
    fn new(frame: &'a Frame) -> Self {
        Reader {
            data: &frame.data,
            pos: 0,
            code: frame.code,
            offset: frame.offset,
        }
    }

    fn error(&self, at: usize, problem: impl Into<String>) -> CodecError {
        CodecError::Malformed {
            code: self.code,
            offset: self.offset,
            at,
            problem: problem.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn u8(&mut self, what: &str) -> Result<u8, CodecError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.error(self.pos, format!("the data ends before {what}")))?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self, what: &str) -> Result<u16, CodecError> {
        let bytes = self
            .data
            .get(self.pos..)
            .and_then(|d| d.first_chunk::<2>())
            .ok_or_else(|| {
                self.error(self.pos, format!("the data ends before the 2-byte {what}"))
            })?;
        self.pos += 2;
        Ok(u16::from_be_bytes(*bytes))
    }

    fn u32(&mut self, what: &str) -> Result<u32, CodecError> {
        let bytes = self
            .data
            .get(self.pos..)
            .and_then(|d| d.first_chunk::<4>())
            .ok_or_else(|| {
                self.error(self.pos, format!("the data ends before the 4-byte {what}"))
            })?;
        self.pos += 4;
        Ok(u32::from_be_bytes(*bytes))
    }

    /// A NUL-terminated string (without its NUL).
    fn cstr(&mut self, what: &str) -> Result<&'a [u8], CodecError> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return Err(self.error(self.pos, format!("the data ends before {what}")));
        }
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return Err(self.error(self.pos, format!("{what} is not terminated by a NUL byte")));
        };
        let s = rest.get(..nul).unwrap_or_default();
        self.pos += nul + 1;
        Ok(s)
    }

    /// Fails when bytes are left over.
    fn end(&self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(
                self.pos,
                format!("{n} unexpected bytes after the last field"),
            )),
        }
    }
}

/// Why a frame could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string field contains a NUL byte, which would end it early.
    NulInString {
        /// The field.
        field: &'static str,
    },
    /// The frame would be longer than the 4-byte length field allows.
    TooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NulInString { field } => {
                write!(f, "the {field} contains a NUL byte")
            }
            EncodeError::TooLong => f.write_str("the frame is longer than 4 GiB"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Writes one frame: the length is filled in by [`Writer::finish`].
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> Writer<'a> {
    fn new(out: &'a mut Vec<u8>, code: u8) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0, 0, 0, 0, code]);
        Writer { out, start }
    }

    fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.out.extend_from_slice(v);
        self
    }

    fn cstr(&mut self, v: &[u8], field: &'static str) -> Result<&mut Self, EncodeError> {
        if v.contains(&0) {
            return Err(EncodeError::NulInString { field });
        }
        self.out.extend_from_slice(v);
        self.out.push(0);
        Ok(self)
    }

    fn finish(self) -> Result<(), EncodeError> {
        let len = self.out.len() - self.start - 4;
        let len = u32::try_from(len).map_err(|_| EncodeError::TooLong)?;
        if let Some(slot) = self.out.get_mut(self.start..self.start + 4) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }
}

/// Rolls back a partly written frame when encoding fails, so `out` is unchanged.
fn encode_atomically(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let len = out.len();
    let r = write(out);
    if r.is_err() {
        out.truncate(len);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_display_names_and_unknown_bits() {
        let a = Actions::ADDHDRS | Actions::CHGHDRS | Actions(1 << 30);
        assert_eq!(a.to_string(), "ADDHDRS|CHGHDRS|0x40000000");
        assert_eq!(Protocol::NONE.to_string(), "-");
        assert!(a.contains(Actions::ADDHDRS));
        assert!(!a.contains(Actions::QUARANTINE));
    }

    #[test]
    fn macro_stages_use_the_protocol_numbers() {
        // SMFIM_EOM is 5 and SMFIM_EOH 6, although EOH comes first.
        assert_eq!(MacroStage::EndOfMessage.index(), 5);
        assert_eq!(MacroStage::EndOfHeaders.index(), 6);
        for s in MacroStage::ALL {
            assert_eq!(MacroStage::from_index(s.index()), Some(s));
            assert_eq!(MacroStage::for_command(s.command()), Some(s));
        }
        assert_eq!(MacroStage::from_index(7), None);
    }

    #[test]
    fn decoder_keeps_stream_offsets() {
        let mut d = FrameDecoder::new(100);
        d.push(&[0, 0, 0, 1, b'A', 0, 0, 0, 2, b'H']);
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!((f.code, f.offset), (b'A', 0));
        assert_eq!(d.next_frame().unwrap(), None);
        assert!(d.finish().is_err());
        d.push(&[0]);
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!((f.code, f.offset, f.data), (b'H', 5, vec![0]));
        assert!(d.finish().is_ok());
    }

    #[test]
    fn empty_frame_is_an_error() {
        let mut d = FrameDecoder::new(100);
        d.push(&[0, 0, 0, 0]);
        let e = d.next_frame().unwrap_err();
        assert_eq!(e, CodecError::EmptyFrame { offset: 0 });
        assert!(e.to_string().contains("length 0"));
    }

    #[test]
    fn oversized_frame_is_refused_before_its_data_arrives() {
        let mut d = FrameDecoder::new(65_536);
        d.push(&0x7fff_ffffu32.to_be_bytes());
        let e = d.next_frame().unwrap_err();
        assert!(
            e.to_string().contains("larger than the maximum of 65536"),
            "{e}"
        );
    }
}
