//! Commands from the MTA to the filter (`SMFIC_*`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::code::*;
use super::{Actions, CodecError, EncodeError, Frame, Protocol, Reader, Writer, encode_atomically};

/// A command from the MTA. Text fields that SMTP defines as ASCII (HELO name, envelope
/// addresses and their ESMTP arguments, macro names and values, host names) are decoded
/// as UTF-8, invalid bytes replaced (U+FFFD); header fields and body chunks stay bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `SMFIC_OPTNEG`: the protocol version, the actions and the protocol steps the MTA
    /// offers.
    OptNeg {
        /// Protocol version.
        version: u32,
        /// Actions the filter may request.
        actions: Actions,
        /// Protocol steps the MTA can skip, replies it can do without, extensions.
        protocol: Protocol,
    },
    /// `SMFIC_MACRO`: macro values for the command named by `for_command` (its command
    /// byte), sent just before it.
    Macro {
        /// The command byte the macros belong to (`C`, `H`, `M`, `R`, `T`, `N`, `E`).
        for_command: u8,
        /// `(name, value)` pairs in order; names as the MTA spells them (`j`,
        /// `{client_addr}`).
        macros: Vec<(String, String)>,
    },
    /// `SMFIC_CONNECT`: the SMTP client.
    Connect {
        /// The client's host name (Postfix sends `[ip]` when the name is unknown).
        hostname: String,
        /// The client's address.
        address: ConnectAddress,
    },
    /// `SMFIC_HELO`: the HELO/EHLO argument.
    Helo {
        /// The name given.
        name: String,
    },
    /// `SMFIC_MAIL`: the MAIL FROM argument (`<address>`, angle brackets as sent), then
    /// the ESMTP parameters.
    Mail {
        /// At least one element: the reverse-path first.
        args: Vec<String>,
    },
    /// `SMFIC_RCPT`: the RCPT TO argument, then the ESMTP parameters.
    Rcpt {
        /// At least one element: the forward-path first.
        args: Vec<String>,
    },
    /// `SMFIC_DATA`.
    Data,
    /// `SMFIC_HEADER`: one header field. Continuation lines are separated by `\n` (as
    /// Postfix and Sendmail send them); unless `SMFIP_HDR_LEADSPC` was negotiated, the
    /// MTA has removed one space after the colon.
    Header {
        /// The field name.
        name: Vec<u8>,
        /// The field value.
        value: Vec<u8>,
    },
    /// `SMFIC_EOH`: end of the header.
    EndOfHeaders,
    /// `SMFIC_BODY`: a body chunk (CRLF line ends; Postfix sends at most 65,535 bytes).
    Body {
        /// The bytes.
        chunk: Vec<u8>,
    },
    /// `SMFIC_BODYEOB`: end of message. Sendmail may put the last body chunk here;
    /// Postfix never does (the chunk is then empty).
    EndOfMessage {
        /// A last body chunk, usually empty.
        chunk: Vec<u8>,
    },
    /// `SMFIC_ABORT`: forget the current message.
    Abort,
    /// `SMFIC_QUIT`: the connection ends.
    Quit,
    /// `SMFIC_QUIT_NC`: this connection's SMTP session ends; a new one follows on the
    /// same socket (starting with `SMFIC_CONNECT`, without a new negotiation).
    QuitNewConnection,
    /// `SMFIC_UNKNOWN`: an SMTP command the MTA does not know, as the client sent it.
    Unknown {
        /// The command line.
        command: String,
    },
}

/// The SMTP client's address in `SMFIC_CONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectAddress {
    /// `SMFIA_INET` (`4`) or `SMFIA_INET6` (`6`), with the client's port (0 when the MTA
    /// does not know it).
    Inet(SocketAddr),
    /// `SMFIA_UNIX` (`L`): a local socket's path.
    Unix(String),
    /// `SMFIA_UNKNOWN` (`U`): no address (for example, mail submitted on the command line
    /// to an MTA that does not simulate one).
    Unknown,
}

impl ConnectAddress {
    /// The client's IP address, when it has one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            ConnectAddress::Inet(sa) => Some(sa.ip()),
            _ => None,
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An argument vector: NUL-terminated strings filling the data, at least one.
fn argv(r: &mut Reader<'_>, what: &str) -> Result<Vec<String>, CodecError> {
    let mut args = Vec::new();
    if r.remaining() == 0 {
        return Err(r.error(0, format!("no {what}: the data is empty")));
    }
    while r.remaining() > 0 {
        let field = if args.is_empty() {
            what.to_owned()
        } else {
            format!("ESMTP argument {}", args.len())
        };
        args.push(text(r.cstr(&field)?));
    }
    Ok(args)
}

impl Command {
    /// Reads a command from a frame. The frame is taken: a body chunk keeps the frame's
    /// bytes rather than a copy of them.
    pub fn parse(frame: Frame) -> Result<Command, CodecError> {
        match frame.code {
            SMFIC_BODY => return Ok(Command::Body { chunk: frame.data }),
            SMFIC_BODYEOB => return Ok(Command::EndOfMessage { chunk: frame.data }),
            _ => {}
        }
        let mut r = Reader::new(&frame);
        let cmd = match frame.code {
            SMFIC_OPTNEG => {
                let version = r.u32("protocol version")?;
                let actions = Actions(r.u32("action flags")?);
                let protocol = Protocol(r.u32("protocol flags")?);
                r.end()?;
                Command::OptNeg {
                    version,
                    actions,
                    protocol,
                }
            }
            SMFIC_MACRO => {
                let for_command = r.u8("the command byte the macros are for")?;
                let mut macros = Vec::new();
                while r.remaining() > 0 {
                    let at = r.pos;
                    let name = r.cstr("a macro name")?;
                    if r.remaining() == 0 {
                        return Err(r.error(
                            at,
                            format!("macro {:?} has no value", String::from_utf8_lossy(name)),
                        ));
                    }
                    let value = r.cstr("a macro value")?;
                    macros.push((text(name), text(value)));
                }
                Command::Macro {
                    for_command,
                    macros,
                }
            }
            SMFIC_CONNECT => {
                let hostname = text(r.cstr("the client host name")?);
                let family_at = r.pos;
                let family = r.u8("the address family")?;
                let address = match family {
                    b'U' => ConnectAddress::Unknown,
                    b'4' | b'6' | b'L' => {
                        let port = r.u16("port")?;
                        let addr_at = r.pos;
                        let addr = r.cstr("the client address")?;
                        let addr_text = String::from_utf8_lossy(addr);
                        match family {
                            b'4' => {
                                let ip: Ipv4Addr = addr_text.parse().map_err(|_| {
                                    r.error(
                                        addr_at,
                                        format!("{addr_text:?} is not an IPv4 address"),
                                    )
                                })?;
                                ConnectAddress::Inet(SocketAddr::new(ip.into(), port))
                            }
                            b'6' => {
                                // Sendmail writes "IPv6:2001:db8::1"; Postfix the bare address.
                                let bare = match addr_text.get(..5) {
                                    Some(p) if p.eq_ignore_ascii_case("IPv6:") => {
                                        addr_text.get(5..).unwrap_or_default()
                                    }
                                    _ => &addr_text,
                                };
                                let ip: Ipv6Addr = bare.parse().map_err(|_| {
                                    r.error(
                                        addr_at,
                                        format!("{addr_text:?} is not an IPv6 address"),
                                    )
                                })?;
                                ConnectAddress::Inet(SocketAddr::new(ip.into(), port))
                            }
                            _ => ConnectAddress::Unix(addr_text.into_owned()),
                        }
                    }
                    other => {
                        return Err(r.error(
                            family_at,
                            format!(
                                "unknown address family {} (expected 'U', 'L', '4' or '6')",
                                super::show_byte(other)
                            ),
                        ));
                    }
                };
                r.end()?;
                Command::Connect { hostname, address }
            }
            SMFIC_HELO => {
                let name = text(r.cstr("the HELO name")?);
                r.end()?;
                Command::Helo { name }
            }
            SMFIC_MAIL => Command::Mail {
                args: argv(&mut r, "reverse-path")?,
            },
            SMFIC_RCPT => Command::Rcpt {
                args: argv(&mut r, "forward-path")?,
            },
            SMFIC_HEADER => {
                let name = r.cstr("the header field name")?.to_vec();
                if name.is_empty() {
                    return Err(r.error(0, "the header field name is empty"));
                }
                let value = r.cstr("the header field value")?.to_vec();
                r.end()?;
                Command::Header { name, value }
            }
            SMFIC_UNKNOWN => {
                let command = text(r.cstr("the SMTP command")?);
                r.end()?;
                Command::Unknown { command }
            }
            SMFIC_DATA | SMFIC_EOH | SMFIC_ABORT | SMFIC_QUIT | SMFIC_QUIT_NC => {
                r.end()?;
                match frame.code {
                    SMFIC_DATA => Command::Data,
                    SMFIC_EOH => Command::EndOfHeaders,
                    SMFIC_ABORT => Command::Abort,
                    SMFIC_QUIT => Command::Quit,
                    _ => Command::QuitNewConnection,
                }
            }
            code => {
                return Err(CodecError::UnknownCode {
                    code,
                    offset: frame.offset,
                });
            }
        };
        Ok(cmd)
    }

    /// The command byte.
    pub fn code(&self) -> u8 {
        match self {
            Command::OptNeg { .. } => SMFIC_OPTNEG,
            Command::Macro { .. } => SMFIC_MACRO,
            Command::Connect { .. } => SMFIC_CONNECT,
            Command::Helo { .. } => SMFIC_HELO,
            Command::Mail { .. } => SMFIC_MAIL,
            Command::Rcpt { .. } => SMFIC_RCPT,
            Command::Data => SMFIC_DATA,
            Command::Header { .. } => SMFIC_HEADER,
            Command::EndOfHeaders => SMFIC_EOH,
            Command::Body { .. } => SMFIC_BODY,
            Command::EndOfMessage { .. } => SMFIC_BODYEOB,
            Command::Abort => SMFIC_ABORT,
            Command::Quit => SMFIC_QUIT,
            Command::QuitNewConnection => SMFIC_QUIT_NC,
            Command::Unknown { .. } => SMFIC_UNKNOWN,
        }
    }

    /// The command's protocol name (`SMFIC_CONNECT`).
    pub fn name(&self) -> &'static str {
        super::code_name(self.code())
    }

    /// Appends the command as a frame to `out` (as an MTA would send it). On error `out`
    /// is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_atomically(out, |out| {
            let mut w = Writer::new(out, self.code());
            match self {
                Command::OptNeg {
                    version,
                    actions,
                    protocol,
                } => {
                    w.u32(*version).u32(actions.0).u32(protocol.0);
                }
                Command::Macro {
                    for_command,
                    macros,
                } => {
                    w.u8(*for_command);
                    for (name, value) in macros {
                        w.cstr(name.as_bytes(), "macro name")?
                            .cstr(value.as_bytes(), "macro value")?;
                    }
                }
                Command::Connect { hostname, address } => {
                    w.cstr(hostname.as_bytes(), "host name")?;
                    match address {
                        ConnectAddress::Unknown => {
                            w.u8(b'U');
                        }
                        ConnectAddress::Inet(sa) => {
                            w.u8(if sa.is_ipv4() { b'4' } else { b'6' })
                                .u16(sa.port())
                                .cstr(sa.ip().to_string().as_bytes(), "address")?;
                        }
                        ConnectAddress::Unix(path) => {
                            w.u8(b'L').u16(0).cstr(path.as_bytes(), "socket path")?;
                        }
                    }
                }
                Command::Helo { name } => {
                    w.cstr(name.as_bytes(), "HELO name")?;
                }
                Command::Mail { args } | Command::Rcpt { args } => {
                    for a in args {
                        w.cstr(a.as_bytes(), "envelope argument")?;
                    }
                }
                Command::Header { name, value } => {
                    w.cstr(name, "header field name")?
                        .cstr(value, "header field value")?;
                }
                Command::Body { chunk } | Command::EndOfMessage { chunk } => {
                    w.bytes(chunk);
                }
                Command::Unknown { command } => {
                    w.cstr(command.as_bytes(), "SMTP command")?;
                }
                Command::Data
                | Command::EndOfHeaders
                | Command::Abort
                | Command::Quit
                | Command::QuitNewConnection => {}
            }
            w.finish()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FrameDecoder;

    fn frame(code: u8, data: &[u8]) -> Frame {
        Frame {
            code,
            data: data.to_vec(),
            offset: 100,
        }
    }

    fn roundtrip(cmd: &Command) -> Command {
        let mut out = Vec::new();
        cmd.encode(&mut out).unwrap();
        let mut d = FrameDecoder::new(1 << 20);
        d.push(&out);
        Command::parse(d.next_frame().unwrap().unwrap()).unwrap()
    }

    #[test]
    fn postfix_optneg_offer() {
        // What Postfix 3.x sends with milter_protocol = 6.
        let mut data = Vec::new();
        data.extend_from_slice(&6u32.to_be_bytes());
        data.extend_from_slice(&0x1ffu32.to_be_bytes());
        data.extend_from_slice(&0x1f_ffffu32.to_be_bytes());
        let cmd = Command::parse(frame(b'O', &data)).unwrap();
        let Command::OptNeg {
            version,
            actions,
            protocol,
        } = cmd
        else {
            panic!("{cmd:?}");
        };
        assert_eq!(version, 6);
        assert!(actions.contains(Actions::SETSYMLIST | Actions::QUARANTINE));
        assert!(protocol.contains(Protocol::NR_BODY | Protocol::HDR_LEADSPC | Protocol::SKIP));
    }

    #[test]
    fn connect_every_family() {
        let v4 = Command::parse(frame(b'C', b"mail.example\x004\x00\x19192.0.2.1\x00")).unwrap();
        assert_eq!(
            v4,
            Command::Connect {
                hostname: "mail.example".into(),
                address: ConnectAddress::Inet("192.0.2.1:25".parse().unwrap()),
            }
        );
        // Sendmail's spelling and Postfix's.
        for addr in [&b"IPv6:2001:db8::1"[..], b"2001:db8::1"] {
            let mut data = b"[2001:db8::1]\x006\x01\xbb".to_vec();
            data.extend_from_slice(addr);
            data.push(0);
            let c = Command::parse(frame(b'C', &data)).unwrap();
            assert_eq!(
                c,
                Command::Connect {
                    hostname: "[2001:db8::1]".into(),
                    address: ConnectAddress::Inet("[2001:db8::1]:443".parse().unwrap()),
                }
            );
        }
        let unix = Command::parse(frame(b'C', b"localhost\x00L\x00\x00/run/x.sock\x00")).unwrap();
        assert_eq!(
            unix,
            Command::Connect {
                hostname: "localhost".into(),
                address: ConnectAddress::Unix("/run/x.sock".into()),
            }
        );
        let unknown = Command::parse(frame(b'C', b"localhost\x00U")).unwrap();
        assert_eq!(
            unknown,
            Command::Connect {
                hostname: "localhost".into(),
                address: ConnectAddress::Unknown,
            }
        );
        for c in [v4, unix, unknown] {
            assert_eq!(roundtrip(&c), c);
        }
    }

    #[test]
    fn connect_errors_say_where() {
        let e = Command::parse(frame(b'C', b"h\x00X")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "frame at stream byte 100, command 'C' (SMFIC_CONNECT), data byte 2: unknown address family 'X' (expected 'U', 'L', '4' or '6')"
        );
        let e = Command::parse(frame(b'C', b"h\x004\x00\x19300.1.1.1\x00")).unwrap_err();
        assert!(
            e.to_string()
                .contains("data byte 5: \"300.1.1.1\" is not an IPv4 address"),
            "{e}"
        );
        let e = Command::parse(frame(b'C', b"h\x004\x00")).unwrap_err();
        assert!(e.to_string().contains("ends before the 2-byte port"), "{e}");
        let e = Command::parse(frame(b'C', b"h\x00U\x00")).unwrap_err();
        assert!(e.to_string().contains("1 unexpected bytes"), "{e}");
    }

    #[test]
    fn mail_with_esmtp_arguments() {
        let c = Command::parse(frame(
            b'M',
            b"<a@example.org>\x00SIZE=100\x00BODY=8BITMIME\x00",
        ))
        .unwrap();
        assert_eq!(
            c,
            Command::Mail {
                args: vec![
                    "<a@example.org>".into(),
                    "SIZE=100".into(),
                    "BODY=8BITMIME".into()
                ]
            }
        );
        assert_eq!(roundtrip(&c), c);
        let e = Command::parse(frame(b'M', b"")).unwrap_err();
        assert!(e.to_string().contains("no reverse-path"), "{e}");
        let e = Command::parse(frame(b'R', b"<a@b>\x00SIZE")).unwrap_err();
        assert!(
            e.to_string().contains("ESMTP argument 1 is not terminated"),
            "{e}"
        );
    }

    #[test]
    fn macros_in_pairs() {
        let c = Command::parse(frame(
            b'D',
            b"Cj\x00mx.example\x00{daemon_name}\x00smtpd\x00",
        ))
        .unwrap();
        assert_eq!(
            c,
            Command::Macro {
                for_command: b'C',
                macros: vec![
                    ("j".into(), "mx.example".into()),
                    ("{daemon_name}".into(), "smtpd".into())
                ],
            }
        );
        assert_eq!(roundtrip(&c), c);
        let e = Command::parse(frame(b'D', b"Cj\x00")).unwrap_err();
        assert!(e.to_string().contains("macro \"j\" has no value"), "{e}");
        assert!(Command::parse(frame(b'D', b"")).is_err());
        // Macros for no command at all are still a frame.
        assert!(Command::parse(frame(b'D', b"M")).is_ok());
    }

    #[test]
    fn header_and_body() {
        let c = Command::parse(frame(b'L', b"Subject\x00 hi\n\tthere\x00")).unwrap();
        assert_eq!(
            c,
            Command::Header {
                name: b"Subject".to_vec(),
                value: b" hi\n\tthere".to_vec()
            }
        );
        assert!(Command::parse(frame(b'L', b"\x00v\x00")).is_err());
        assert!(Command::parse(frame(b'L', b"Subject\x00")).is_err());
        let b = Command::parse(frame(b'B', b"a\x00b\r\n")).unwrap();
        assert_eq!(
            b,
            Command::Body {
                chunk: b"a\x00b\r\n".to_vec()
            }
        );
        assert_eq!(roundtrip(&b), b);
    }

    #[test]
    fn commands_without_data_refuse_data() {
        for code in [b'T', b'N', b'A', b'Q', b'K'] {
            assert!(Command::parse(frame(code, b"")).is_ok());
            let e = Command::parse(frame(code, b"x")).unwrap_err();
            assert!(e.to_string().contains("unexpected bytes"), "{e}");
        }
    }

    #[test]
    fn unknown_command_byte() {
        let e = Command::parse(frame(b'Z', b"")).unwrap_err();
        assert_eq!(
            e,
            CodecError::UnknownCode {
                code: b'Z',
                offset: 100
            }
        );
        // A reply byte is not a command.
        assert!(Command::parse(frame(b'c', b"")).is_err());
    }

    #[test]
    fn encode_refuses_nul_in_strings_and_leaves_output_unchanged() {
        let mut out = b"keep".to_vec();
        let e = Command::Helo {
            name: "a\0b".into(),
        }
        .encode(&mut out)
        .unwrap_err();
        assert_eq!(e, EncodeError::NulInString { field: "HELO name" });
        assert_eq!(out, b"keep");
    }
}
