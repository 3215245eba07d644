//! Reading reports from an IMAP mailbox (RFC 3501), once or continuously with IDLE.
//!
//! [`run_imap`] connects to the server (implicit TLS, STARTTLS or — only when asked for
//! explicitly — plaintext), logs in, selects the mailbox, and offers every message it has not
//! handled yet to a caller-supplied handler, in UID order and in batches, fetched with
//! `BODY.PEEK[]` so that nothing is marked read before it has been handled. What happens to each
//! message afterwards depends on the [`Disposition`] the handler returns and on the
//! configuration:
//!
//! | handler says              | with a folder configured                      | without          |
//! |---------------------------|-----------------------------------------------|------------------|
//! | [`Disposition::Processed`] | `\Seen`, moved to [`ImapConfig::on_processed`] | `\Seen` + keyword (`$DmarcProcessed`) |
//! | [`Disposition::Rejected`]  | moved to [`ImapConfig::on_rejected`]           | `\Flagged` + keyword (`$DmarcRejected`) |
//! | [`Disposition::Leave`]     | untouched; offered again by the next run       | same             |
//!
//! Moving uses `UID MOVE` (RFC 6851) when the server has it, otherwise `UID COPY`, `UID STORE
//! +FLAGS (\Deleted)` and `UID EXPUNGE` (RFC 4315) — or plain `EXPUNGE` if the server lacks
//! UIDPLUS, which also removes other messages already marked `\Deleted`, as RFC 6851 §3.3
//! describes for clients without MOVE. Target folders are created when missing. Messages
//! bigger than [`ImapConfig::max_message_size`] are not downloaded and are treated as rejected.
//!
//! A message already flagged with either keyword, or marked `\Deleted`, is not offered again;
//! `\Seen` alone does not matter, so reports someone has read in a mail client are still
//! ingested. Delivery to the handler is at least once: if the connection drops after the
//! handler ran but before the message was moved or flagged, the next run offers it again,
//! which is why the store's ingestion is idempotent.
//!
//! With [`ImapConfig::watch`] the function does not return after the first pass: it waits for
//! new mail with IDLE (RFC 2177), re-issuing IDLE every [`ImapConfig::idle_refresh`] (25
//! minutes, under the 30-minute inactivity timeout servers may apply), or polls with NOOP when
//! the server lacks IDLE. When the connection is lost it reconnects with exponential backoff.
//! It stops when the `shutdown` token is cancelled, at the next safe point (never between
//! running the handler and recording the result on the server, except when the connection is
//! lost there).
//!
//! # Wiring it into the CLI
//!
//! ```no_run
//! use dmarc_ingest::imap::{
//!     run_imap, Disposition, ImapConfig, ImapUrl, MessageRef, Password, PASSWORD_ENV,
//! };
//! use tokio_util::sync::CancellationToken;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     let url: ImapUrl = "imaps://dmarc@mail.example.net/Reports".parse()?;
//!     let password = std::env::var(PASSWORD_ENV)?;
//!     let mut config = ImapConfig::new(url, Password::new(password));
//!     config.batch_size = 20;
//!     config.validate()?;
//!     let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//!     let shutdown = CancellationToken::new();
//!     let on_signal = shutdown.clone();
//!     let summary = runtime.block_on(async {
//!         tokio::spawn(async move {
//!             let _ = tokio::signal::ctrl_c().await;
//!             on_signal.cancel();
//!         });
//!         run_imap(&config, shutdown, |bytes: &[u8], msg: &MessageRef| {
//!             // e.g. dmarc_ingest::ingest_bytes(&store, &msg.source(), bytes, &limits)
//!             let results = dmarc_report::parse(bytes, &dmarc_report::Limits::default());
//!             let ok = !results.is_empty() && results.iter().all(|r| r.is_ok());
//!             Ok::<_, std::io::Error>(if ok { Disposition::Processed } else { Disposition::Rejected })
//!         })
//!         .await
//!     })?;
//!     eprintln!("{summary}");
//!     Ok(())
//! }
//! ```
//!
//! (In the real CLI the handler calls the store's ingestion; a message whose bytes could not be
//! parsed is still recorded there with its error, and `Rejected` only decides which folder it
//! ends up in.)

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

mod connect;
mod session;
mod wire;

/// Default port for IMAP over implicit TLS (RFC 8314 §7.3).
pub const IMAPS_PORT: u16 = 993;
/// Default port for IMAP with STARTTLS (RFC 3501 §2.1).
pub const IMAP_PORT: u16 = 143;
/// Environment variable the CLI reads the password from.
pub const PASSWORD_ENV: &str = "DMARC_IMAP_PASSWORD";

/// Runs IMAP ingestion: connects, offers every not-yet-handled message of the configured
/// mailbox to `handler`, moves or flags it according to the result and, with
/// [`ImapConfig::watch`], keeps waiting for new messages until `shutdown` is cancelled.
///
/// `handler` receives the raw message (RFC 5322 bytes, as stored on the server) and a
/// [`MessageRef`] naming it. An `Err` from the handler stops the run: messages handled
/// before it are still moved or flagged, the failing one is left untouched, and the error is
/// returned as [`ImapError::Handler`]. A handler that wants a message retried later without
/// stopping returns [`Disposition::Leave`].
///
/// Returns what was done once the mailbox has been drained (without `watch`) or once
/// `shutdown` is cancelled (with it). Errors: configuration problems, TLS or login failures,
/// and — without `watch` — any connection failure; with `watch`, connection failures are
/// logged (with `tracing`) and retried with backoff ([`ImapError::is_transient`]).
///
/// The handler runs on the async task; it may block briefly (a database write) but should not
/// run for minutes.
///
/// Progress and retries are reported with `tracing` (info: mailbox selected, folder created;
/// warn: reconnecting, oversized message). Do not enable `trace` level for the `async_imap`
/// target in production: that library logs every command it sends, the login included.
pub async fn run_imap<F, E>(
    config: &ImapConfig,
    shutdown: CancellationToken,
    handler: F,
) -> Result<ImapSummary, ImapError>
where
    F: FnMut(&[u8], &MessageRef) -> Result<Disposition, E>,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    session::run(config, shutdown, handler).await
}

/// What the handler decided about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// The message was ingested: mark it `\Seen` and move it to [`ImapConfig::on_processed`]'s
    /// folder, or flag it with the processed keyword.
    Processed,
    /// The message is not a report that could be ingested (bad format, not a report at all):
    /// move it to [`ImapConfig::on_rejected`]'s folder or flag it `\Flagged` + the rejected
    /// keyword, so that it is not offered again and a person can look at it.
    Rejected,
    /// Leave the message untouched; it is offered again on the next run or connection (not
    /// again within the same connection, so a watcher does not spin on it).
    Leave,
}

/// Identifies the message being offered to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    /// Mailbox name as configured (UTF-8, before modified UTF-7 encoding).
    pub mailbox: String,
    /// `UIDVALIDITY` of the mailbox (RFC 3501 §2.3.1.1); 0 if the server did not send one.
    pub uid_validity: u32,
    /// UID of the message.
    pub uid: u32,
    /// Size of the message as the server reported it (`RFC822.SIZE`), in bytes.
    pub size: u64,
    server: String,
}

impl MessageRef {
    /// A stable name for the message, as an IMAP URL (RFC 5092 §3):
    /// `imap://USER@HOST:PORT/MAILBOX;UIDVALIDITY=V/;UID=N`, with user and mailbox
    /// percent-encoded. Suitable as the `source` recorded with an ingested report.
    pub fn source(&self) -> String {
        format!(
            "{}/{};UIDVALIDITY={}/;UID={}",
            self.server,
            percent_encode(&self.mailbox),
            self.uid_validity,
            self.uid
        )
    }
}

/// Counts of what a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImapSummary {
    /// Messages the handler accepted ([`Disposition::Processed`]).
    pub processed: u64,
    /// Messages the handler rejected ([`Disposition::Rejected`]), oversized ones excluded.
    pub rejected: u64,
    /// Messages the handler asked to leave alone ([`Disposition::Leave`]).
    pub left: u64,
    /// Messages over [`ImapConfig::max_message_size`], treated as rejected without being
    /// downloaded or offered to the handler.
    pub oversized: u64,
    /// Successful logins (more than one when `watch` reconnected).
    pub connections: u64,
}

impl fmt::Display for ImapSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IMAP: {} processed, {} rejected, {} left, {} oversized ({} connection{})",
            self.processed,
            self.rejected,
            self.left,
            self.oversized,
            self.connections,
            if self.connections == 1 { "" } else { "s" }
        )
    }
}

/// How to protect the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// TLS from the first byte (`imaps://`, port 993; RFC 8314 §3.3).
    ImplicitTls,
    /// Plain connection upgraded with STARTTLS before login (`imap://`, port 143; RFC 3501
    /// §6.2.1). Failing STARTTLS is an error, never a reason to continue in plaintext.
    StartTls,
    /// No TLS at all: the password crosses the network in clear. Only with
    /// `--imap-insecure-plaintext`; meant for loopback test servers.
    Plaintext,
}

/// Where the server's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trust {
    /// The operating system's trust store (`rustls-native-certs`). The default.
    #[default]
    SystemRoots,
    /// Only the CA certificates in this PEM file (like `curl --cacert`): for a private CA or
    /// a self-signed server certificate.
    CaFile(PathBuf),
    /// Accept any certificate, expired, self-signed or for another name. The connection is
    /// encrypted but not authenticated: anyone on the path can read the password.
    DangerAcceptInvalidCerts,
}

/// What to do with a message after the handler ruled on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Move it to this folder (UTF-8 name; created if missing).
    MoveTo(String),
    /// Leave it in the mailbox and flag it (see [`Disposition`] for the flags).
    Flag,
}

/// A parsed `imaps://USER@HOST[:PORT]/MAILBOX` or `imap://...` URL (RFC 5092 §3, without
/// message parts). The user name and mailbox are percent-decoded; the mailbox defaults to
/// `INBOX`. A password in the URL is refused: it would show in `ps` output and shell history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// [`Security::ImplicitTls`] for `imaps`, [`Security::StartTls`] for `imap`.
    pub security: Security,
    /// Login name.
    pub user: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port; 993 or 143 by default.
    pub port: u16,
    /// Mailbox to read (UTF-8).
    pub mailbox: String,
}

impl FromStr for ImapUrl {
    type Err = ImapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| ImapError::Config(format!("IMAP URL {s:?}: {why}"));
        let url = url::Url::parse(s).map_err(|e| bad(e.to_string()))?;
        let (security, default_port) = match url.scheme() {
            "imaps" => (Security::ImplicitTls, IMAPS_PORT),
            "imap" => (Security::StartTls, IMAP_PORT),
            other => {
                return Err(bad(format!(
                    "scheme {other:?} is not imaps (implicit TLS) or imap (STARTTLS)"
                )));
            }
        };
        if url.password().is_some() {
            return Err(bad(format!(
                "do not put the password in the URL; set {PASSWORD_ENV} or use --imap-password-file"
            )));
        }
        let raw_user = percent_decode(url.username()).map_err(&bad)?;
        // RFC 5092 §3.2: "user;AUTH=mechanism"; we do PLAIN or LOGIN ourselves.
        let user = match find_ignore_case(&raw_user, ";AUTH=") {
            Some(at) => {
                let mechanism = raw_user.get(at + 6..).unwrap_or("");
                if !["*", "PLAIN", "LOGIN"]
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(mechanism))
                {
                    return Err(bad(format!(
                        "authentication mechanism {mechanism:?} is not supported (PLAIN or LOGIN)"
                    )));
                }
                raw_user.get(..at).unwrap_or("").to_owned()
            }
            None => raw_user,
        };
        if user.is_empty() {
            return Err(bad(
                "no user name; write imaps://USER@HOST/MAILBOX".to_owned()
            ));
        }
        if user.chars().any(|c| c.is_control()) {
            return Err(bad("the user name contains a control character".to_owned()));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(bad("no host".to_owned())),
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("unexpected '?' or '#' part".to_owned()));
        }
        let path = url.path().strip_prefix('/').unwrap_or(url.path());
        let mailbox = percent_decode(path).map_err(&bad)?;
        if mailbox.contains(';') {
            return Err(bad(
                "message parts (';UID=', ';UIDVALIDITY=') are not supported; give a mailbox"
                    .to_owned(),
            ));
        }
        let mailbox = if mailbox.is_empty() {
            "INBOX".to_owned()
        } else {
            mailbox
        };
        wire::encode_mailbox(&mailbox).map_err(bad)?;
        Ok(ImapUrl {
            security,
            user,
            host,
            port: url.port().unwrap_or(default_port),
            mailbox,
        })
    }
}

impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            Security::ImplicitTls => "imaps",
            Security::StartTls | Security::Plaintext => "imap",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "{scheme}://{}@{host}:{}/{}",
            percent_encode(&self.user),
            self.port,
            percent_encode(&self.mailbox)
        )
    }
}

/// A password that does not show in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Everything [`run_imap`] needs. Build it with [`ImapConfig::new`] and adjust the public
/// fields; each states its default (the CLI's `--imap*` flags set them).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImapConfig {
    /// Server, user and mailbox. `server.security` is how the connection is protected.
    pub server: ImapUrl,
    /// Login password (sent with `AUTHENTICATE PLAIN`, or `LOGIN` if the server lacks it).
    pub password: Password,
    /// Certificate trust. Default: [`Trust::SystemRoots`].
    pub trust: Trust,
    /// What to do with processed messages. Default: [`Action::Flag`].
    pub on_processed: Action,
    /// What to do with rejected and oversized messages. Default: [`Action::Flag`].
    pub on_rejected: Action,
    /// Keyword set on processed messages when they are flagged. Default `$DmarcProcessed`.
    pub processed_keyword: String,
    /// Keyword set on rejected messages when they are flagged. Default `$DmarcRejected`.
    pub rejected_keyword: String,
    /// Messages fetched per `UID FETCH`. Default 50.
    pub batch_size: usize,
    /// Largest message downloaded, in bytes. Default 25 MiB.
    pub max_message_size: u64,
    /// Keep running and process new messages as they arrive. Default false.
    pub watch: bool,
    /// How long one IDLE lasts before it is re-issued. Default 25 minutes.
    pub idle_refresh: Duration,
    /// Polling interval when the server has no IDLE. Default 60 seconds.
    pub poll_interval: Duration,
    /// First wait before reconnecting; doubled after each failure. Default 1 second.
    pub reconnect_min: Duration,
    /// Longest wait before reconnecting. Default 5 minutes.
    pub reconnect_max: Duration,
    /// Time allowed for the TCP connection and the TLS handshake. Default 30 seconds.
    pub connect_timeout: Duration,
    /// Time allowed for one command's response (one message's data, for FETCH). Default
    /// 120 seconds.
    pub command_timeout: Duration,
}

impl ImapConfig {
    /// A configuration with every default: flag messages, trust the system roots, one pass.
    pub fn new(server: ImapUrl, password: Password) -> Self {
        ImapConfig {
            server,
            password,
            trust: Trust::SystemRoots,
            on_processed: Action::Flag,
            on_rejected: Action::Flag,
            processed_keyword: "$DmarcProcessed".to_owned(),
            rejected_keyword: "$DmarcRejected".to_owned(),
            batch_size: 50,
            max_message_size: 25 * 1024 * 1024,
            watch: false,
            idle_refresh: Duration::from_secs(25 * 60),
            poll_interval: Duration::from_secs(60),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(120),
        }
    }

    /// Checks the settings that can be checked without a server: names, keywords, limits.
    pub fn validate(&self) -> Result<(), ImapError> {
        let config = ImapError::Config;
        wire::encode_mailbox(&self.server.mailbox).map_err(config)?;
        for (what, action) in [
            ("--imap-move-to", &self.on_processed),
            ("--imap-error-folder", &self.on_rejected),
        ] {
            if let Action::MoveTo(folder) = action {
                wire::encode_mailbox(folder).map_err(|e| config(format!("{what}: {e}")))?;
                if same_mailbox(folder, &self.server.mailbox) {
                    return Err(config(format!(
                        "{what} {folder:?} is the mailbox being read; choose another folder"
                    )));
                }
            }
        }
        wire::check_keyword(&self.processed_keyword).map_err(config)?;
        wire::check_keyword(&self.rejected_keyword).map_err(config)?;
        let fail = |why: &str| Err(config(why.to_owned()));
        if self
            .processed_keyword
            .eq_ignore_ascii_case(&self.rejected_keyword)
        {
            return fail("the processed and rejected keywords must differ");
        }
        if self.batch_size == 0 {
            return fail("the batch size must be at least 1");
        }
        if self.max_message_size == 0 {
            return fail("the message size limit must be at least 1 byte");
        }
        if self.server.user.contains('\0') || self.password.expose().contains('\0') {
            return fail("user name and password must not contain NUL");
        }
        Ok(())
    }
}

/// Why IMAP ingestion failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// The configuration is unusable (URL, names, keywords, password file, CA file...).
    #[error("{0}")]
    Config(String),
    /// The TCP connection could not be made.
    #[error("cannot connect to {address}")]
    Connect {
        /// `host:port`.
        address: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (often: certificate not trusted, or for another name).
    #[error("TLS handshake with {host} failed")]
    Tls {
        /// Server name the certificate was checked against.
        host: String,
        /// The rustls error inside an I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused STARTTLS; plaintext is never used as a fallback.
    #[error(
        "{host} refused STARTTLS ({reason}); use imaps:// if it offers implicit TLS, \
         or --imap-insecure-plaintext for a loopback test server"
    )]
    StartTlsRefused {
        /// Server host.
        host: String,
        /// The server's answer.
        reason: String,
    },
    /// The server rejected the user name or password, or offers no usable mechanism.
    #[error("login to {host} as {user} failed: {reason}")]
    Login {
        /// Server host.
        host: String,
        /// User name.
        user: String,
        /// The server's answer.
        reason: String,
    },
    /// The server answered a command with NO or BAD, or the exchange broke.
    #[error("IMAP {command} failed")]
    Command {
        /// The command (without arguments that could be secret).
        command: String,
        /// The client library's error, carrying the server's text.
        #[source]
        source: async_imap::error::Error,
    },
    /// The server did not answer in time.
    #[error("IMAP {what}: no answer within {} s", .after.as_secs())]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The server closed the connection.
    #[error("the server closed the connection during {0}")]
    Closed(String),
    /// The server said something this client cannot work with.
    #[error("unexpected IMAP server behaviour: {0}")]
    Protocol(String),
    /// The handler returned an error.
    #[error("handling {message} failed")]
    Handler {
        /// [`MessageRef::source`] of the message.
        message: String,
        /// The handler's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl ImapError {
    /// Whether retrying later may help: lost connections, timeouts, refused connections.
    /// Configuration, certificate, login and handler errors are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Connect { .. } | ImapError::Timeout { .. } | ImapError::Closed(_) => true,
            ImapError::Tls { source, .. } => !source
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()),
            ImapError::Command { source, .. } => matches!(
                source,
                async_imap::error::Error::Io(_) | async_imap::error::Error::ConnectionLost
            ),
            ImapError::Config(_)
            | ImapError::StartTlsRefused { .. }
            | ImapError::Login { .. }
            | ImapError::Protocol(_)
            | ImapError::Handler { .. } => false,
        }
    }
}

/// Whether two configured names denote the same mailbox (`INBOX` is case-insensitive,
/// RFC 3501 §5.1).
fn same_mailbox(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .to_ascii_uppercase()
        .find(&needle.to_ascii_uppercase())
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-escapes do not form UTF-8".to_owned())
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u: ImapUrl = "imaps://dmarc@mail.example.com/INBOX".parse().unwrap();
        assert_eq!(u.security, Security::ImplicitTls);
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port),
            ("dmarc", "mail.example.com", 993)
        );
        assert_eq!(u.mailbox, "INBOX");

        let u: ImapUrl = "imap://reports%40example.com@[::1]:1143/Reports/DMARC%20agg"
            .parse()
            .unwrap();
        assert_eq!(u.security, Security::StartTls);
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port),
            ("reports@example.com", "::1", 1143)
        );
        assert_eq!(u.mailbox, "Reports/DMARC agg");
        assert_eq!(
            u.to_string(),
            "imap://reports%40example.com@[::1]:1143/Reports/DMARC%20agg"
        );

        // An unescaped '@' in the user name: the last '@' separates the host.
        let u: ImapUrl = "imaps://a@b.example@imap.example:10993".parse().unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port),
            ("a@b.example", "imap.example", 10993)
        );
        assert_eq!(u.mailbox, "INBOX");

        let u: ImapUrl = "imaps://bob;AUTH=*@h/Rapports%20trait%C3%A9s"
            .parse()
            .unwrap();
        assert_eq!(u.user, "bob");
        assert_eq!(u.mailbox, "Rapports trait\u{e9}s");
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("pop3://u@h/INBOX", "scheme"),
            ("imaps://u:secret@h/INBOX", "password"),
            ("imaps://h/INBOX", "no user"),
            ("imaps://u@/INBOX", ""),
            ("imaps://u@h/INBOX?x", "'?'"),
            ("imaps://u@h/INBOX;UID=3", "message parts"),
            ("imaps://u;AUTH=GSSAPI@h/", "GSSAPI"),
            ("imaps://u@h/a%0Db", "control character"),
            ("imaps://u@h/a%FF", "UTF-8"),
            ("imaps://u@h:99999/", ""),
        ] {
            let err = url.parse::<ImapUrl>().unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn message_source() {
        let m = MessageRef {
            mailbox: "DMARC reports".into(),
            uid_validity: 7,
            uid: 42,
            size: 1,
            server: "imaps://u@h:993".into(),
        };
        assert_eq!(
            m.source(),
            "imaps://u@h:993/DMARC%20reports;UIDVALIDITY=7/;UID=42"
        );
    }

    #[test]
    fn password_is_not_printed() {
        let c = ImapConfig::new("imaps://u@h/".parse().unwrap(), Password::new("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn validation() {
        let base = ImapConfig::new("imaps://u@h/Reports".parse().unwrap(), Password::new("p"));
        assert!(base.validate().is_ok());
        let mut c = base.clone();
        c.on_processed = Action::MoveTo("Reports".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("mailbox being read")
        );
        let mut c = base.clone();
        c.processed_keyword = "two words".into();
        assert!(c.validate().is_err());
        let mut c = base.clone();
        c.rejected_keyword = "$dmarcprocessed".into();
        assert!(c.validate().is_err());
        let mut c = base.clone();
        c.batch_size = 0;
        assert!(c.validate().is_err());
        let mut c = base;
        c.on_rejected = Action::MoveTo("bad\nname".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("--imap-error-folder")
        );
    }
}
