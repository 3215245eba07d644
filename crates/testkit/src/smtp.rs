//! An SMTP client for the tests through real MTAs (Postfix, Sendmail): one command and its
//! whole reply at a time, the message dot-stuffed; failures as text, for the test to say
//! which step broke.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One SMTP connection.
#[derive(Debug)]
pub struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    /// Connects to `addr` (`HOST:PORT`, replies awaited up to 60 s) and reads the 220
    /// greeting.
    pub fn connect(addr: &str) -> Result<Smtp, String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect to {addr}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| format!("set_read_timeout: {e}"))?;
        let reader = BufReader::new(s.try_clone().map_err(|e| format!("clone: {e}"))?);
        let mut smtp = Smtp { reader, writer: s };
        let r = smtp.reply()?;
        if r.starts_with("220") {
            Ok(smtp)
        } else {
            Err(format!("greeting: {r}"))
        }
    }

    /// The next reply, its lines (CRLF removed) joined by "\n".
    pub fn reply(&mut self) -> Result<String, String> {
        let mut all = Vec::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return Err(format!("connection closed after {all:?}")),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
            let line = line.trim_end().to_owned();
            let more = line.as_bytes().get(3) == Some(&b'-');
            all.push(line);
            if !more {
                return Ok(all.join("\n"));
            }
        }
    }

    /// Sends `line` (CRLF added); its reply.
    pub fn command(&mut self, line: &str) -> Result<String, String> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        self.reply()
    }

    /// [`Smtp::command`], with a reply not starting with `code` an error.
    pub fn expect(&mut self, line: &str, code: &str) -> Result<String, String> {
        let r = self.command(line)?;
        if r.starts_with(code) {
            Ok(r)
        } else {
            Err(format!("{line}: {r}"))
        }
    }

    /// DATA (354 expected), then `message` dot-stuffed and ended by CRLF . CRLF; the reply
    /// to the final dot.
    pub fn data(&mut self, message: &[u8]) -> Result<String, String> {
        self.expect("DATA", "354")?;
        let mut out = Vec::with_capacity(message.len() + 64);
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                out.push(b'.');
            }
            out.extend_from_slice(line);
        }
        if !out.is_empty() && !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.writer
            .write_all(&out)
            .map_err(|e| format!("write: {e}"))?;
        self.reply()
    }
}
