//! The MTA side of the protocol, for tests, benchmarks and tools: sends commands as Postfix
//! does and reads the replies. It knows which commands get no reply (per the negotiated
//! `SMFIP_NR_*` options) and collects the replies of end of message up to the final one.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec::{Actions, CodecError, Command, FrameDecoder, PROTOCOL_VERSION, Protocol, Reply};

/// Everything Postfix 3.x offers with `milter_protocol = 6`.
pub const POSTFIX_ACTIONS: Actions = Actions(0x1ff);
/// The protocol options Postfix 3.x offers with `milter_protocol = 6`.
pub const POSTFIX_PROTOCOL: Protocol = Protocol(0x1f_ffff);

/// Why the client failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Reading or writing failed, or the milter closed the connection.
    Io(std::io::Error),
    /// The milter sent something unreadable.
    Codec(CodecError),
    /// No reply within the time limit.
    Timeout,
    /// The milter answered the negotiation with something else.
    Unexpected(Reply),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "I/O error: {e}"),
            ClientError::Codec(e) => write!(f, "bad reply: {e}"),
            ClientError::Timeout => f.write_str("no reply in time"),
            ClientError::Unexpected(r) => write!(f, "unexpected reply {}", r.name()),
        }
    }
}

impl std::error::Error for ClientError {}

/// A connection to a milter.
#[derive(Debug)]
pub struct Client<S> {
    stream: S,
    decoder: FrameDecoder,
    protocol: Protocol,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Wraps a connected stream; replies are awaited for at most 30 seconds.
    pub fn new(stream: S) -> Self {
        Client {
            stream,
            decoder: FrameDecoder::new(crate::codec::DEFAULT_MAX_FRAME),
            protocol: Protocol::NONE,
            timeout: Duration::from_secs(30),
        }
    }

    /// Negotiates with Postfix's offer; returns the milter's answer.
    pub async fn negotiate(&mut self) -> Result<Reply, ClientError> {
        self.negotiate_with(POSTFIX_ACTIONS, POSTFIX_PROTOCOL).await
    }

    /// Negotiates offering these actions and protocol options.
    pub async fn negotiate_with(
        &mut self,
        actions: Actions,
        protocol: Protocol,
    ) -> Result<Reply, ClientError> {
        self.send_raw(&Command::OptNeg {
            version: PROTOCOL_VERSION,
            actions,
            protocol,
        })
        .await?;
        let r = self.recv().await?;
        match &r {
            Reply::OptNeg { protocol, .. } => {
                self.protocol = *protocol;
                Ok(r)
            }
            _ => Err(ClientError::Unexpected(r)),
        }
    }

    /// Writes a command without waiting for anything.
    pub async fn send_raw(&mut self, cmd: &Command) -> Result<(), ClientError> {
        let mut out = Vec::new();
        cmd.encode(&mut out)
            .map_err(|e| ClientError::Io(std::io::Error::other(e)))?;
        self.write_bytes(&out).await
    }

    /// Writes bytes as they are (to send malformed frames).
    pub async fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(ClientError::Io)?;
        self.stream.flush().await.map_err(ClientError::Io)
    }

    /// The next reply.
    pub async fn recv(&mut self) -> Result<Reply, ClientError> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = self.decoder.next_frame().map_err(ClientError::Codec)? {
                return Reply::parse(&frame).map_err(ClientError::Codec);
            }
            let n = tokio::time::timeout(self.timeout, self.stream.read(&mut buf))
                .await
                .map_err(|_| ClientError::Timeout)?
                .map_err(ClientError::Io)?;
            if n == 0 {
                return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.decoder.push(buf.get(..n).unwrap_or_default());
        }
    }

    /// True when the milter has closed the connection (waits up to `limit`).
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        let mut buf = [0u8; 1024];
        matches!(
            tokio::time::timeout(limit, self.stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    fn expects_reply(&self, cmd: &Command) -> bool {
        let nr = |f: Protocol| !self.protocol.contains(f);
        match cmd {
            Command::OptNeg { .. } | Command::EndOfMessage { .. } => true,
            Command::Connect { .. } => nr(Protocol::NR_CONN),
            Command::Helo { .. } => nr(Protocol::NR_HELO),
            Command::Mail { .. } => nr(Protocol::NR_MAIL),
            Command::Rcpt { .. } => nr(Protocol::NR_RCPT),
            Command::Data => nr(Protocol::NR_DATA),
            Command::Unknown { .. } => nr(Protocol::NR_UNKN),
            Command::Header { .. } => nr(Protocol::NR_HDR),
            Command::EndOfHeaders => nr(Protocol::NR_EOH),
            Command::Body { .. } => nr(Protocol::NR_BODY),
            Command::Macro { .. } | Command::Abort | Command::Quit | Command::QuitNewConnection => {
                false
            }
        }
    }

    /// Sends a command and returns its replies: none when the milter negotiated not to
    /// reply; for end of message, every reply up to the final one (progress replies
    /// dropped).
    pub async fn send(&mut self, cmd: &Command) -> Result<Vec<Reply>, ClientError> {
        self.send_raw(cmd).await?;
        if !self.expects_reply(cmd) {
            return Ok(Vec::new());
        }
        let mut replies = Vec::new();
        loop {
            let r = self.recv().await?;
            let last = match (&r, cmd) {
                (Reply::Progress, _) => continue,
                (
                    Reply::InsertHeader { .. }
                    | Reply::ChangeHeader { .. }
                    | Reply::AddHeader { .. }
                    | Reply::Quarantine { .. },
                    Command::EndOfMessage { .. },
                ) => false,
                _ => true,
            };
            replies.push(r);
            if last {
                return Ok(replies);
            }
        }
    }

    /// Sends a whole message as Postfix does (MAIL, RCPT, DATA macros, header fields with
    /// their leading space, EOH, the body in chunks of 65,535 bytes, EOM) and returns the
    /// replies of the last command sent: the first reply that decides, or end of message's.
    /// `message` is RFC 5322 with CRLF line ends.
    pub async fn message(
        &mut self,
        mail_from: &str,
        rcpt: &[&str],
        message: &[u8],
    ) -> Result<Vec<Reply>, ClientError> {
        let decided = |r: &[Reply]| {
            r.iter()
                .any(|r| !matches!(r, Reply::Continue | Reply::Skip))
        };
        let r = self
            .send(&Command::Mail {
                args: vec![format!("<{mail_from}>")],
            })
            .await?;
        if decided(&r) {
            return Ok(r);
        }
        for to in rcpt {
            self.send(&Command::Rcpt {
                args: vec![format!("<{to}>")],
            })
            .await?;
        }
        let (header, body) = split_message(message);
        for (name, value) in header_fields(header) {
            let r = self.send(&Command::Header { name, value }).await?;
            if decided(&r) {
                return Ok(r);
            }
        }
        let r = self.send(&Command::EndOfHeaders).await?;
        if decided(&r) {
            return Ok(r);
        }
        let mut skip = false;
        for chunk in body.chunks(65_535) {
            if skip {
                break;
            }
            let r = self
                .send(&Command::Body {
                    chunk: chunk.to_vec(),
                })
                .await?;
            skip = r.contains(&Reply::Skip);
            if decided(&r) {
                return Ok(r);
            }
        }
        self.send(&Command::EndOfMessage { chunk: Vec::new() })
            .await
    }
}

/// The header block (without the empty line) and the body.
pub fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    if message.starts_with(b"\r\n") {
        return (&[], message.get(2..).unwrap_or_default());
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (
            message.get(..i + 2).unwrap_or_default(),
            message.get(i + 4..).unwrap_or_default(),
        ),
        None => (message, &[]),
    }
}

/// The header fields as Postfix sends them: name, then the value after the colon with
/// its leading white space (as with `SMFIP_HDR_LEADSPC`) and folded lines joined by `\n`.
pub fn header_fields(header: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if let Some((_, v)) = fields.last_mut() {
                v.push(b'\n');
                v.extend_from_slice(line);
            }
            continue;
        }
        match line.iter().position(|&b| b == b':') {
            Some(colon) => fields.push((
                line.get(..colon).unwrap_or_default().to_vec(),
                line.get(colon + 1..).unwrap_or_default().to_vec(),
            )),
            None => fields.push((line.to_vec(), Vec::new())),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_as_postfix_sends_them() {
        let (h, b) = split_message(b"A: 1\r\nB:\r\n\tfolded\r\n\r\nbody\r\n");
        assert_eq!(b, b"body\r\n");
        assert_eq!(
            header_fields(h),
            [
                (b"A".to_vec(), b" 1".to_vec()),
                (b"B".to_vec(), b"\n\tfolded".to_vec())
            ]
        );
    }
}
