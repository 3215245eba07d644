//! Log lines to standard error or to the syslog socket (RFC 3164 format over the local
//! datagram socket, as syslog(3) writes it). Every line is made printable first:
//! control characters that a client put in a HELO name or an address become `?`, so a
//! line is always one line.

use std::borrow::Cow;
use std::io::{self, Write as _};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::config::{LogDestination, LogSettings};

/// The longest syslog datagram sent (longer lines are cut).
const MAX_DATAGRAM: usize = 8000;

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Errors (the daemon cannot do something it should).
    Error,
    /// Warnings (a connection failed, a reload was refused).
    Warning,
    /// Information (one line per message, start and stop).
    Info,
}

impl Level {
    fn severity(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warning => 4,
            Level::Info => 6,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Level::Error => "error: ",
            Level::Warning => "warning: ",
            Level::Info => "",
        }
    }
}

/// Where lines go.
#[derive(Debug)]
pub struct Logger {
    tag: String,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    Stderr,
    Syslog {
        path: PathBuf,
        facility: u8,
        socket: Mutex<Option<UnixDatagram>>,
    },
    Memory(Mutex<Vec<String>>),
}

impl Logger {
    /// Lines to standard error, `TAG: warning: text`.
    pub fn stderr(tag: &str) -> Logger {
        Logger {
            tag: tag.to_owned(),
            sink: Sink::Stderr,
        }
    }

    /// Lines kept in memory (tests).
    pub fn memory() -> Logger {
        Logger {
            tag: "test".into(),
            sink: Sink::Memory(Mutex::default()),
        }
    }

    /// The logger the settings ask for. Syslog needs its socket to exist now.
    pub fn from_settings(settings: &LogSettings) -> io::Result<Logger> {
        match settings.destination {
            LogDestination::Stderr => Ok(Logger::stderr(&settings.tag)),
            LogDestination::Syslog => {
                let socket = UnixDatagram::unbound()?;
                socket.connect(&settings.socket).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "cannot connect to the syslog socket {}: {e}",
                            settings.socket.display()
                        ),
                    )
                })?;
                Ok(Logger {
                    tag: settings.tag.clone(),
                    sink: Sink::Syslog {
                        path: settings.socket.clone(),
                        facility: settings.facility,
                        socket: Mutex::new(Some(socket)),
                    },
                })
            }
        }
    }

    /// Logs a line.
    pub fn log(&self, level: Level, line: &str) {
        let line = printable(line);
        match &self.sink {
            Sink::Stderr => self.write_stderr(level, &line),
            Sink::Memory(lines) => {
                if let Ok(mut l) = lines.lock() {
                    l.push(format!("{}{line}", level.prefix()));
                }
            }
            Sink::Syslog {
                path,
                facility,
                socket,
            } => {
                let pri = u16::from(*facility) * 8 + u16::from(level.severity());
                let mut msg = format!(
                    "<{pri}>{}[{}]: {}{line}",
                    self.tag,
                    std::process::id(),
                    level.prefix()
                );
                if msg.len() > MAX_DATAGRAM {
                    let mut cut = MAX_DATAGRAM;
                    while !msg.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    msg.truncate(cut);
                }
                let Ok(mut guard) = socket.lock() else {
                    return;
                };
                // Try once more on a fresh socket (syslogd restarted).
                for _ in 0..2 {
                    if guard.is_none() {
                        *guard = UnixDatagram::unbound()
                            .and_then(|s| s.connect(path).map(|()| s))
                            .ok();
                    }
                    match guard.as_ref().map(|s| s.send(msg.as_bytes())) {
                        Some(Ok(_)) => return,
                        _ => *guard = None,
                    }
                }
                self.write_stderr(level, &line);
            }
        }
    }

    /// `TAG: PREFIXline` to standard error in one `write` (standard error is unbuffered:
    /// `writeln!` would write each piece on its own, and lines of several tasks could mix).
    fn write_stderr(&self, level: Level, line: &str) {
        let prefix = level.prefix();
        let mut text = String::with_capacity(self.tag.len() + 2 + prefix.len() + line.len() + 1);
        text.push_str(&self.tag);
        text.push_str(": ");
        text.push_str(prefix);
        text.push_str(line);
        text.push('\n');
        let _ = io::stderr().lock().write_all(text.as_bytes());
    }

    /// [`Level::Info`].
    pub fn info(&self, line: &str) {
        self.log(Level::Info, line);
    }

    /// [`Level::Warning`].
    pub fn warn(&self, line: &str) {
        self.log(Level::Warning, line);
    }

    /// [`Level::Error`].
    pub fn error(&self, line: &str) {
        self.log(Level::Error, line);
    }

    /// The lines logged so far by [`Logger::memory`] (empty for the others).
    pub fn lines(&self) -> Vec<String> {
        match &self.sink {
            Sink::Memory(l) => l.lock().map(|l| l.clone()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// The text with control characters replaced by `?`.
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_made_printable() {
        let l = Logger::memory();
        l.warn("helo=evil\r\nInjected: line");
        assert_eq!(l.lines(), ["warning: helo=evil??Injected: line"]);
    }

    #[test]
    fn syslog_datagrams_have_priority_tag_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let logger = Logger::from_settings(&LogSettings {
            destination: LogDestination::Syslog,
            facility: 2,
            socket: path,
            tag: "dmarc-milter".into(),
        })
        .unwrap();
        logger.warn("hello");
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        // mail (2) * 8 + warning (4) = 20.
        assert!(got.starts_with("<20>dmarc-milter["), "{got}");
        assert!(got.ends_with("]: warning: hello"), "{got}");
    }
}
