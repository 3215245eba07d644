//! How report messages leave: an SMTP relay (lettre, STARTTLS, optional AUTH) or a local
//! sendmail command (lettre's sendmail transport), behind one [`Transport`] trait whose
//! answers the run turns into delivery states.

use std::time::Duration;

use lettre::Transport as _;
use lettre::address::{Address, Envelope};
use lettre::transport::sendmail::SendmailTransport;
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};

use crate::Error;
use crate::config::{StartTls, TransportOptions};

/// What a transport said about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; the text is the server's answer.
    Sent(String),
    /// Not now (4xx, connection trouble): try again later.
    Temporary(String),
    /// Never (5xx, a bad address): the destination bounced.
    Permanent(String),
}

/// Sends one message to one recipient.
pub trait Transport {
    /// Hands `message` to the transport for `to`, with `from` as the envelope sender.
    fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Outcome;
}

/// The configured transport.
pub enum Configured {
    /// An SMTP relay.
    Smtp {
        /// The relay.
        transport: Box<SmtpTransport>,
        /// Why the relay refused our login, once it did: the same login is not tried again
        /// by this transport (each try costs the relay's failed-login delay, and repeated
        /// failures lock accounts and addresses out); every later message gets this answer.
        login_refused: Option<String>,
    },
    /// A sendmail command.
    Sendmail(SendmailTransport),
}

impl std::fmt::Debug for Configured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Configured::Smtp { .. } => f.write_str("Configured::Smtp"),
            Configured::Sendmail(_) => f.write_str("Configured::Sendmail"),
        }
    }
}

impl Configured {
    /// Builds the transport of `[transport]`.
    pub fn new(o: &TransportOptions) -> Result<Configured, Error> {
        match o {
            TransportOptions::Smtp {
                host,
                port,
                starttls,
                ca_file,
                username,
                password_file,
                timeout,
            } => {
                let tls = match starttls {
                    StartTls::None => Tls::None,
                    StartTls::Required | StartTls::Opportunistic => {
                        let mut p = TlsParameters::builder(host.clone());
                        if let Some(f) = ca_file {
                            let pem = std::fs::read(f).map_err(|e| {
                                Error::Config(format!("transport.ca_file {}: {e}", f.display()))
                            })?;
                            // lettre reads a file without certificates as none.
                            let has_cert =
                                pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----");
                            let cert = Certificate::from_pem(&pem)
                                .map_err(|e| e.to_string())
                                .and_then(|c| {
                                    has_cert
                                        .then_some(c)
                                        .ok_or_else(|| "no PEM certificate in it".to_owned())
                                })
                                .map_err(|e| {
                                    Error::Config(format!("transport.ca_file {}: {e}", f.display()))
                                })?;
                            p = p.add_root_certificate(cert);
                        }
                        let p = p.build().map_err(|e| {
                            Error::Config(format!("transport: TLS for {host}: {e}"))
                        })?;
                        if *starttls == StartTls::Required {
                            Tls::Required(p)
                        } else {
                            Tls::Opportunistic(p)
                        }
                    }
                };
                let mut b = SmtpTransport::builder_dangerous(host.as_str())
                    .port(*port)
                    .tls(tls)
                    .timeout(Some(Duration::from_secs(*timeout)));
                match (username, password_file) {
                    (Some(u), Some(p)) => {
                        let pw = std::fs::read_to_string(p).map_err(|e| {
                            Error::Config(format!("transport.password_file {}: {e}", p.display()))
                        })?;
                        let pw = pw.lines().next().unwrap_or_default().to_owned();
                        b = b.credentials(Credentials::new(u.clone(), pw));
                    }
                    (None, None) => {}
                    _ => {
                        return Err(Error::Config(
                            "transport: username and password_file go together".into(),
                        ));
                    }
                }
                Ok(Configured::Smtp {
                    transport: Box::new(b.build()),
                    login_refused: None,
                })
            }
            TransportOptions::Sendmail { command } => Ok(Configured::Sendmail(
                SendmailTransport::new_with_command(command.as_os_str()),
            )),
        }
    }
}

fn envelope(from: &str, to: &str) -> Result<Envelope, String> {
    let from: Address = from
        .parse()
        .map_err(|e| format!("envelope sender {from:?}: {e}"))?;
    let to: Address = to.parse().map_err(|e| format!("recipient {to:?}: {e}"))?;
    Envelope::new(Some(from), vec![to]).map_err(|e| e.to_string())
}

impl Transport for Configured {
    fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Outcome {
        let env = match envelope(from, to) {
            Ok(e) => e,
            Err(e) => return Outcome::Permanent(e),
        };
        match self {
            Configured::Smtp {
                login_refused: Some(why),
                ..
            } => Outcome::Temporary(format!("{why} (not tried again in this run)")),
            Configured::Smtp {
                transport,
                login_refused,
            } => match transport.send_raw(&env, message) {
                Ok(r) => Outcome::Sent(format!(
                    "{} {}",
                    r.code(),
                    r.message().collect::<Vec<_>>().join(" ")
                )),
                // 530-538 answer our login (RFC 4954 §6), not the recipient: a wrong
                // `password_file` must not count as the destination bouncing.
                Err(e) if e.status().is_some_and(|c| c.to_string().starts_with("53")) => {
                    let why = format!(
                        "the relay refused our SMTP AUTH login (check [transport] username \
                         and password_file): {e}"
                    );
                    *login_refused = Some(why.clone());
                    Outcome::Temporary(why)
                }
                Err(e) if e.is_permanent() => Outcome::Permanent(e.to_string()),
                Err(e) => Outcome::Temporary(e.to_string()),
            },
            // sendmail queues the message itself: a failure to run it is temporary.
            Configured::Sendmail(t) => match t.send_raw(&env, message) {
                Ok(()) => Outcome::Sent("handed to sendmail".to_owned()),
                Err(e) => Outcome::Temporary(e.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(ca_file: Option<std::path::PathBuf>) -> TransportOptions {
        TransportOptions::Smtp {
            host: "127.0.0.1".into(),
            port: 25,
            starttls: StartTls::Required,
            ca_file,
            username: None,
            password_file: None,
            timeout: 5,
        }
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = Configured::new(&smtp(Some(missing)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("transport.ca_file") && e.contains("missing.pem"),
            "{e}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Configured::new(&smtp(Some(empty))).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate in it"), "{e}");
        assert!(Configured::new(&smtp(None)).is_ok());
    }

    /// A relay on loopback that refuses every login with 535: how many connections it
    /// saw, and how many AUTH commands.
    fn refusing_relay() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let logins = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&logins);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let _ = conn.write_all(b"220 relay.test ESMTP\r\n");
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-relay.test\r\n250 AUTH PLAIN LOGIN\r\n",
                        "AUTH" => {
                            counted.fetch_add(1, Ordering::SeqCst);
                            b"535 5.7.8 Error: authentication failed\r\n"
                        }
                        "QUIT" => b"221 bye\r\n",
                        _ => b"250 ok\r\n",
                    };
                    let _ = conn.write_all(reply);
                    if verb == "QUIT" {
                        break;
                    }
                }
            }
        });
        (port, logins)
    }

    #[test]
    fn a_refused_login_is_not_tried_again() {
        let (port, logins) = refusing_relay();
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "wrong\n").unwrap();
        let options = TransportOptions::Smtp {
            host: "127.0.0.1".into(),
            port,
            starttls: StartTls::None,
            ca_file: None,
            username: Some("dmarc".into()),
            password_file: Some(password),
            timeout: 5,
        };
        let mut t = Configured::new(&options).unwrap();
        let msg = b"From: <a@example.com>\r\nSubject: x\r\n\r\nx\r\n";
        let outcomes: Vec<Outcome> = (0..5)
            .map(|_| t.send("a@example.com", "b@example.net", msg))
            .collect();
        for o in &outcomes {
            let Outcome::Temporary(why) = o else {
                panic!("{o:?}")
            };
            assert!(
                why.contains("the relay refused our SMTP AUTH login") && why.contains("535"),
                "{why}"
            );
        }
        assert!(
            matches!(&outcomes[4], Outcome::Temporary(w) if w.ends_with("(not tried again in this run)"))
        );
        assert_eq!(logins.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A new transport (the next run) tries again.
        let mut next = Configured::new(&options).unwrap();
        assert!(matches!(
            next.send("a@example.com", "b@example.net", msg),
            Outcome::Temporary(_)
        ));
        assert_eq!(logins.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
