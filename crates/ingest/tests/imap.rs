//! End-to-end tests of IMAP ingestion against a real Dovecot on loopback.
//!
//! Start the server with `scripts/dovecot.sh`, which exports the `DMARC_TEST_IMAP_*`
//! variables these tests read:
//!
//! ```text
//! bash scripts/dovecot.sh -- cargo test -p dmarc-ingest --test imap
//! ```
//!
//! Without those variables every test here fails with that instruction. Each test works in
//! mailboxes of its own (unique names), so the tests run in parallel and can be re-run against
//! the same server.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_imap::Session;
use dmarc_ingest::imap::{
    Action, Disposition, ImapConfig, ImapError, ImapSummary, ImapUrl, MessageRef, Password,
    Security, Trust, run_imap,
};
use dmarc_report::Limits;
use futures_util::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// The server under test

struct Server {
    host: String,
    nomove_host: String,
    starttls_port: u16,
    tls_port: u16,
    user: String,
    password: String,
    ca_file: PathBuf,
}

fn server() -> Server {
    fn var(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: these tests need the loopback Dovecot started by \
                 scripts/dovecot.sh. Run them as\n    \
                 bash scripts/dovecot.sh -- cargo test -p dmarc-ingest --test imap\n\
                 or start `bash scripts/dovecot.sh` in another shell and paste the \
                 `export DMARC_TEST_IMAP_...` lines it prints (scripts/test.sh does this)."
            )
        })
    }
    let port = |name: &str| {
        var(name)
            .parse::<u16>()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    Server {
        host: var("DMARC_TEST_IMAP_HOST"),
        nomove_host: var("DMARC_TEST_IMAP_NOMOVE_HOST"),
        starttls_port: port("DMARC_TEST_IMAP_PORT"),
        tls_port: port("DMARC_TEST_IMAP_TLS_PORT"),
        user: var("DMARC_TEST_IMAP_USER"),
        password: var("DMARC_TEST_IMAP_PASSWORD"),
        ca_file: PathBuf::from(var("DMARC_TEST_IMAP_CA_FILE")),
    }
}

impl Server {
    /// A configuration for `mailbox` trusting the test CA; flags, one pass.
    fn config(&self, security: Security, host: &str, port: u16, mailbox: &str) -> ImapConfig {
        let url = ImapUrl {
            security,
            user: self.user.clone(),
            host: host.to_owned(),
            port,
            mailbox: mailbox.to_owned(),
        };
        let mut config = ImapConfig::new(url, Password::new(self.password.clone()));
        config.trust = Trust::CaFile(self.ca_file.clone());
        config.command_timeout = Duration::from_secs(20);
        config.connect_timeout = Duration::from_secs(10);
        config
    }

    fn imaps(&self, mailbox: &str) -> ImapConfig {
        self.config(Security::ImplicitTls, &self.host, self.tls_port, mailbox)
    }

    fn starttls(&self, mailbox: &str) -> ImapConfig {
        self.config(Security::StartTls, &self.host, self.starttls_port, mailbox)
    }

    /// A second connection to inspect and fill mailboxes (plaintext: Dovecot allows it on
    /// loopback only).
    async fn admin(&self) -> Admin {
        let tcp = TcpStream::connect((self.host.as_str(), self.starttls_port))
            .await
            .expect("connect to Dovecot");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().expect("greeting");
        let session = client
            .login(&self.user, &self.password)
            .await
            .map_err(|(e, _)| e)
            .expect("admin login");
        Admin(session)
    }
}

struct Admin(Session<TcpStream>);

impl Admin {
    async fn create(&mut self, mailbox: &str) {
        self.0.create(mailbox).await.expect("CREATE");
    }

    async fn append(&mut self, mailbox: &str, message: &[u8], flags: Option<&str>) {
        self.0
            .append(mailbox, flags, None, message)
            .await
            .expect("APPEND");
    }

    /// UID and flags of every message, in UID order.
    async fn messages(&mut self, mailbox: &str) -> Vec<(u32, Vec<String>)> {
        let mailbox = self.0.examine(mailbox).await.expect("EXAMINE");
        if mailbox.exists == 0 {
            return Vec::new();
        }
        let fetches: Vec<_> = self
            .0
            .fetch("1:*", "(UID FLAGS)")
            .await
            .expect("FETCH")
            .collect()
            .await;
        let mut out: Vec<(u32, Vec<String>)> = fetches
            .into_iter()
            .map(|f| {
                let f = f.expect("FETCH response");
                let flags = f.flags().map(|fl| format!("{fl:?}")).collect();
                (f.uid.expect("UID"), flags)
            })
            .collect();
        out.sort();
        out
    }

    async fn bodies(&mut self, mailbox: &str) -> Vec<Vec<u8>> {
        let mailbox = self.0.examine(mailbox).await.expect("EXAMINE");
        if mailbox.exists == 0 {
            return Vec::new();
        }
        let fetches: Vec<_> = self
            .0
            .fetch("1:*", "(UID BODY.PEEK[])")
            .await
            .expect("FETCH")
            .collect()
            .await;
        let mut out: Vec<(u32, Vec<u8>)> = fetches
            .into_iter()
            .map(|f| {
                let f = f.expect("FETCH response");
                (f.uid.expect("UID"), f.body().expect("body").to_vec())
            })
            .collect();
        out.sort();
        out.into_iter().map(|(_, b)| b).collect()
    }

    async fn exists(&mut self, encoded_name: &str) -> bool {
        let names: Vec<_> = self
            .0
            .list(Some(""), Some(encoded_name))
            .await
            .expect("LIST")
            .collect()
            .await;
        names
            .into_iter()
            .any(|n| n.expect("LIST response").name() == encoded_name)
    }
}

/// Debug form of the flags as `async-imap` prints them.
const SEEN: &str = "Seen";
const FLAGGED: &str = "Flagged";
const DELETED: &str = "Deleted";
const PROCESSED: &str = "Custom(\"$DmarcProcessed\")";
const REJECTED: &str = "Custom(\"$DmarcRejected\")";

fn has(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f == flag)
}

/// A mailbox name no other test or earlier run uses.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------------------
// Messages

/// The report e-mails of the mail-auth corpus (aggregate, failure and TLS reports), CRLF.
fn samples() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["dmarc-feedback", "arf", "tlsrpt"] {
        let dir = dmarc_testkit::corpus(&format!("reports-mail-auth/{dir}"));
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        for f in files {
            let bytes = dmarc_testkit::to_crlf(&std::fs::read(&f).unwrap());
            out.push((f.display().to_string(), bytes));
        }
    }
    assert_eq!(out.len(), 12, "the mail-auth corpus has 12 report e-mails");
    out
}

/// A message that is no report at all.
fn garbage() -> Vec<u8> {
    b"From: someone@example.org\r\nTo: dmarc@example.com\r\nSubject: hello\r\n\
      Message-ID: <not-a-report@example.org>\r\n\r\nJust a note, no report here.\r\n"
        .to_vec()
}

/// A plain message of about `size` bytes.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: big@example.org\r\nSubject: big\r\n\r\n".to_vec();
    let line = b"0123456789012345678901234567890123456789012345678901234567890123456789012345\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

/// What the handler saw.
#[derive(Debug, Clone)]
struct Seen {
    message: MessageRef,
    bytes: Vec<u8>,
    parsed: bool,
}

/// The handler the CLI would use, minus the store: parse with `dmarc_report::parse`,
/// processed when every part parsed, rejected otherwise.
fn parsing_handler(
    log: Arc<Mutex<Vec<Seen>>>,
) -> impl FnMut(&[u8], &MessageRef) -> Result<Disposition, Infallible> + Send + 'static {
    move |bytes, message| {
        let results = dmarc_report::parse(bytes, &Limits::default());
        let parsed = !results.is_empty() && results.iter().all(Result::is_ok);
        log.lock().unwrap().push(Seen {
            message: message.clone(),
            bytes: bytes.to_vec(),
            parsed,
        });
        Ok(if parsed {
            Disposition::Processed
        } else {
            Disposition::Rejected
        })
    }
}

async fn run_once(config: &ImapConfig, log: &Arc<Mutex<Vec<Seen>>>) -> ImapSummary {
    run_imap(
        config,
        CancellationToken::new(),
        parsing_handler(log.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("IMAP run failed: {}", chain(&e)))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// Fills `mailbox` with the samples and the garbage message; returns them in UID order.
async fn fill(admin: &mut Admin, mailbox: &str) -> Vec<Vec<u8>> {
    admin.create(mailbox).await;
    let mut all: Vec<Vec<u8>> = samples().into_iter().map(|(_, b)| b).collect();
    all.insert(4, garbage());
    for m in &all {
        admin.append(mailbox, m, None).await;
    }
    all
}

fn summary(processed: u64, rejected: u64, oversized: u64) -> (u64, u64, u64) {
    (processed, rejected, oversized)
}

fn counts(s: &ImapSummary) -> (u64, u64, u64) {
    (s.processed, s.rejected, s.oversized)
}

// ---------------------------------------------------------------------------------------------
// One pass

#[tokio::test]
async fn implicit_tls_moves_reports_and_garbage_to_their_folders() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("tls");
    let appended = fill(&mut admin, &inbox).await;
    let processed = format!("{inbox}-Processed");
    // A non-ASCII folder name, sent in modified UTF-7 (RFC 3501 §5.1.3).
    let errors = format!("{inbox}-Trait\u{e9}s");
    let errors_wire = format!("{inbox}-Trait&AOk-s");
    assert!(!admin.exists(&processed).await);

    let mut config = server.imaps(&inbox);
    config.on_processed = Action::MoveTo(processed.clone());
    config.on_rejected = Action::MoveTo(errors.clone());
    config.batch_size = 5;
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = run_once(&config, &log).await;
    assert_eq!(counts(&s), summary(12, 1, 0), "{s}");
    assert_eq!(s.connections, 1);

    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 13);
    for (i, (seen, sent)) in seen.iter().zip(&appended).enumerate() {
        assert_eq!(&seen.bytes, sent, "message {i} came back altered");
        assert_eq!(seen.message.mailbox, inbox);
        assert_eq!(seen.message.size, sent.len() as u64);
        assert!(seen.message.uid_validity > 0);
    }
    let uids: Vec<u32> = seen.iter().map(|s| s.message.uid).collect();
    assert!(uids.windows(2).all(|w| w[0] < w[1]), "UID order: {uids:?}");
    assert!(!seen[4].parsed, "the garbage message parsed");
    assert_eq!(seen.iter().filter(|s| s.parsed).count(), 12);
    assert!(
        seen[0].message.source().starts_with(&format!(
            "imaps://{}@{}:{}/{inbox};UIDVALIDITY=",
            server.user, server.host, server.tls_port
        )),
        "{}",
        seen[0].message.source()
    );

    assert!(
        admin.messages(&inbox).await.is_empty(),
        "messages left behind"
    );
    assert!(admin.exists(&processed).await);
    assert!(
        admin.exists(&errors_wire).await,
        "folder {errors_wire} missing"
    );
    let moved = admin.messages(&processed).await;
    assert_eq!(moved.len(), 12);
    assert!(moved.iter().all(|(_, f)| has(f, SEEN)), "{moved:?}");
    let mut expected: Vec<Vec<u8>> = appended.clone();
    let garbage = expected.remove(4);
    assert_eq!(admin.bodies(&processed).await, expected);
    let rejected = admin.messages(&errors_wire).await;
    assert_eq!(rejected.len(), 1);
    assert!(
        !has(&rejected[0].1, SEEN),
        "a rejected message was marked read"
    );
    assert_eq!(admin.bodies(&errors_wire).await, vec![garbage]);

    // Nothing left to do.
    let again = Arc::new(Mutex::new(Vec::new()));
    let s = run_once(&config, &again).await;
    assert_eq!(counts(&s), summary(0, 0, 0));
    assert!(again.lock().unwrap().is_empty());
}

#[tokio::test]
async fn starttls_flags_messages_when_no_folder_is_given() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("starttls");
    admin.create(&inbox).await;
    let samples = samples();
    // Someone read two of the reports in a mail client: they must still be ingested.
    for (i, (_, m)) in samples.iter().enumerate() {
        admin
            .append(&inbox, m, if i < 2 { Some("(\\Seen)") } else { None })
            .await;
    }
    admin.append(&inbox, &garbage(), None).await;

    let config = server.starttls(&inbox);
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = run_once(&config, &log).await;
    assert_eq!(counts(&s), summary(12, 1, 0), "{s}");

    let messages = admin.messages(&inbox).await;
    assert_eq!(messages.len(), 13, "flag mode must not move messages");
    for (uid, flags) in &messages[..12] {
        assert!(
            has(flags, SEEN) && has(flags, PROCESSED),
            "{uid}: {flags:?}"
        );
        assert!(
            !has(flags, FLAGGED) && !has(flags, REJECTED),
            "{uid}: {flags:?}"
        );
    }
    let (uid, flags) = &messages[12];
    assert!(
        has(flags, FLAGGED) && has(flags, REJECTED),
        "{uid}: {flags:?}"
    );
    assert!(
        !has(flags, SEEN) && !has(flags, PROCESSED),
        "{uid}: {flags:?}"
    );

    let again = Arc::new(Mutex::new(Vec::new()));
    let s = run_once(&config, &again).await;
    assert_eq!(counts(&s), summary(0, 0, 0));
    assert!(again.lock().unwrap().is_empty());

    // A new arrival is the only thing the next run handles.
    admin.append(&inbox, &samples[0].1, None).await;
    let third = Arc::new(Mutex::new(Vec::new()));
    let s = run_once(&config, &third).await;
    assert_eq!(counts(&s), summary(1, 0, 0));
    let third = third.lock().unwrap();
    assert_eq!(third.len(), 1);
    assert!(third[0].message.uid > messages[12].0);
    assert!(
        third[0]
            .message
            .source()
            .starts_with(&format!("imap://{}@", server.user))
    );
}

#[tokio::test]
async fn without_move_and_uidplus_copy_store_expunge_is_used() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("nomove");
    let appended = fill(&mut admin, &inbox).await;
    // 127.0.0.2 advertises neither MOVE nor UIDPLUS (see scripts/dovecot.sh).
    let mut config = server.config(
        Security::ImplicitTls,
        &server.nomove_host,
        server.tls_port,
        &inbox,
    );
    let processed = format!("{inbox}.done");
    let errors = format!("{inbox}-errors");
    config.on_processed = Action::MoveTo(processed.clone());
    config.on_rejected = Action::MoveTo(errors.clone());
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = run_once(&config, &log).await;
    assert_eq!(counts(&s), summary(12, 1, 0), "{s}");
    assert!(admin.messages(&inbox).await.is_empty(), "not expunged");
    let moved = admin.messages(&processed).await;
    assert_eq!(moved.len(), 12);
    assert!(
        moved.iter().all(|(_, f)| has(f, SEEN) && !has(f, DELETED)),
        "{moved:?}"
    );
    assert_eq!(admin.bodies(&errors).await, vec![appended[4].clone()]);
}

#[tokio::test]
async fn plaintext_only_when_asked_for() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("plain");
    admin.create(&inbox).await;
    admin.append(&inbox, &samples()[0].1, None).await;
    let config = server.config(
        Security::Plaintext,
        &server.host,
        server.starttls_port,
        &inbox,
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    assert_eq!(counts(&run_once(&config, &log).await), summary(1, 0, 0));
}

#[tokio::test]
async fn oversized_messages_are_rejected_without_download() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("big");
    admin.create(&inbox).await;
    let small = samples().remove(0).1;
    let big = big_message(300_000);
    admin.append(&inbox, &small, None).await;
    admin.append(&inbox, &big, None).await;
    let mut config = server.imaps(&inbox);
    config.max_message_size = 100_000;
    let errors = format!("{inbox}-errors");
    config.on_rejected = Action::MoveTo(errors.clone());
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = run_once(&config, &log).await;
    assert_eq!(counts(&s), summary(1, 0, 1), "{s}");
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "the big message reached the handler"
    );
    assert_eq!(admin.bodies(&errors).await, vec![big]);
    let left = admin.messages(&inbox).await;
    assert_eq!(left.len(), 1);
    assert!(has(&left[0].1, PROCESSED));
}

#[tokio::test]
async fn handler_error_stops_the_run_but_keeps_earlier_rulings() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("fail");
    admin.create(&inbox).await;
    let samples = samples();
    for (_, m) in &samples[..5] {
        admin.append(&inbox, m, None).await;
    }
    let config = server.imaps(&inbox);
    let mut calls = 0;
    let err = run_imap(
        &config,
        CancellationToken::new(),
        |_: &[u8], _: &MessageRef| {
            calls += 1;
            match calls {
                1 => Ok(Disposition::Processed),
                2 => Ok(Disposition::Leave),
                _ => Err(std::io::Error::other("database is locked")),
            }
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImapError::Handler { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(
        chain(&err).contains("database is locked"),
        "{}",
        chain(&err)
    );
    assert!(chain(&err).contains(";UID=3"), "{}", chain(&err));
    assert_eq!(calls, 3, "the handler ran after it failed");

    let flags = admin.messages(&inbox).await;
    assert!(has(&flags[0].1, PROCESSED), "{flags:?}");
    for (uid, f) in &flags[1..] {
        assert!(!has(f, PROCESSED) && !has(f, SEEN), "{uid}: {f:?}");
    }
    // The left message and the failed ones are offered again.
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = run_once(&config, &log).await;
    assert_eq!(counts(&s), summary(4, 0, 0));
}

// ---------------------------------------------------------------------------------------------
// Failures that must be clear and final

#[tokio::test]
async fn certificate_not_trusted_fails_unless_told_otherwise() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("cert");
    admin.create(&inbox).await;
    admin.append(&inbox, &samples()[0].1, None).await;

    let mut config = server.imaps(&inbox);
    config.trust = Trust::SystemRoots;
    config.watch = true; // a certificate error must not be retried
    let log = Arc::new(Mutex::new(Vec::new()));
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        run_imap(
            &config,
            CancellationToken::new(),
            parsing_handler(log.clone()),
        ),
    )
    .await
    .expect("a certificate error was retried")
    .unwrap_err();
    assert!(matches!(err, ImapError::Tls { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(
        chain(&err).to_lowercase().contains("certificate"),
        "{}",
        chain(&err)
    );

    config.trust = Trust::DangerAcceptInvalidCerts;
    config.watch = false;
    assert_eq!(counts(&run_once(&config, &log).await), summary(1, 0, 0));
}

#[tokio::test]
async fn wrong_password_and_missing_mailbox_are_reported() {
    let server = server();
    let mut config = server.imaps("INBOX");
    config.password = Password::new("not-the-password");
    config.watch = true;
    let err = run_imap(
        &config,
        CancellationToken::new(),
        |_: &[u8], _: &MessageRef| Ok::<_, Infallible>(Disposition::Leave),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImapError::Login { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains(&server.user), "{err}");

    let missing = unique("missing");
    let config = server.starttls(&missing);
    let err = run_imap(
        &config,
        CancellationToken::new(),
        |_: &[u8], _: &MessageRef| Ok::<_, Infallible>(Disposition::Leave),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains(&missing), "{}", chain(&err));
    assert!(!err.is_transient());
}

/// A server that offers STARTTLS but refuses it: the client must stop before sending the
/// password. (No Dovecot needed; a scripted server on loopback.)
#[tokio::test]
async fn refused_starttls_never_falls_back_to_plaintext() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(String::new()));
    let log = received.clone();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] fake\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            log.lock().unwrap().push_str(&text);
            for line in text.lines() {
                let tag = line.split(' ').next().unwrap_or("*");
                let reply = format!("{tag} BAD STARTTLS not today\r\n");
                if sock.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    });
    let url = ImapUrl {
        security: Security::StartTls,
        user: "u".into(),
        host: "127.0.0.1".into(),
        port,
        mailbox: "INBOX".into(),
    };
    let mut config = ImapConfig::new(url, Password::new("secret-password"));
    config.trust = Trust::DangerAcceptInvalidCerts;
    let err = run_imap(
        &config,
        CancellationToken::new(),
        |_: &[u8], _: &MessageRef| Ok::<_, Infallible>(Disposition::Leave),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImapError::StartTlsRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("not today"), "{err}");
    let sent = received.lock().unwrap().clone();
    assert!(sent.contains("STARTTLS"), "{sent}");
    assert!(
        !sent.contains("secret-password")
            && !sent.contains("LOGIN")
            && !sent.contains("AUTHENTICATE"),
        "{sent}"
    );
}

// ---------------------------------------------------------------------------------------------
// Watching

/// Handler for watchers: parses, and reports each UID on a channel.
fn watch_handler(
    tx: tokio::sync::mpsc::UnboundedSender<(u32, bool)>,
) -> impl FnMut(&[u8], &MessageRef) -> Result<Disposition, Infallible> + Send + 'static {
    move |bytes, message| {
        let results = dmarc_report::parse(bytes, &Limits::default());
        let parsed = !results.is_empty() && results.iter().all(Result::is_ok);
        let _ = tx.send((message.uid, parsed));
        Ok(if parsed {
            Disposition::Processed
        } else {
            Disposition::Rejected
        })
    }
}

async fn next_within(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(u32, bool)>,
    limit: Duration,
) -> (u32, bool) {
    tokio::time::timeout(limit, rx.recv())
        .await
        .expect("no message handled in time")
        .expect("watcher stopped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_handles_new_mail_with_idle_until_cancelled() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("watch");
    admin.create(&inbox).await;
    let samples = samples();
    admin.append(&inbox, &samples[0].1, None).await;
    admin.append(&inbox, &garbage(), None).await;

    let mut config = server.imaps(&inbox);
    config.watch = true;
    config.on_processed = Action::MoveTo(format!("{inbox}-done"));
    // Re-IDLE often, so that the refresh path runs during the test too, but not so often
    // that the refresh alone would find the first new message in time.
    config.idle_refresh = Duration::from_secs(6);
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { run_imap(&config, shutdown, watch_handler(tx)).await }
    });

    assert!(next_within(&mut rx, Duration::from_secs(20)).await.1);
    assert!(!next_within(&mut rx, Duration::from_secs(5)).await.1);

    // Arrives during IDLE.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    admin.append(&inbox, &samples[5].1, None).await;
    assert!(next_within(&mut rx, Duration::from_secs(5)).await.1);
    let latency = started.elapsed();
    assert!(
        latency < Duration::from_secs(3),
        "new mail took {latency:?}: IDLE notifications are not acted on"
    );

    // Arrives after at least one IDLE refresh.
    tokio::time::sleep(Duration::from_secs(7)).await;
    admin.append(&inbox, &samples[10].1, None).await;
    assert!(next_within(&mut rx, Duration::from_secs(5)).await.1);

    shutdown.cancel();
    let s = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("watcher did not stop after cancellation")
        .unwrap()
        .unwrap();
    assert_eq!(counts(&s), summary(3, 1, 0), "{s}");
    assert_eq!(s.connections, 1);
    assert!(rx.try_recv().is_err(), "a message was handled twice");
    assert_eq!(admin.messages(&format!("{inbox}-done")).await.len(), 3);
    let left = admin.messages(&inbox).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(has(&left[0].1, REJECTED));
    eprintln!("IDLE latency: {latency:?}");
}

/// A TCP relay to the server whose connections the test can cut.
struct Relay {
    port: u16,
    cut: tokio::sync::watch::Sender<u32>,
}

impl Relay {
    async fn start(host: &str, port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap().port();
        let (cut, cuts) = tokio::sync::watch::channel(0u32);
        let upstream = format!("{host}:{port}");
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                    // Dropping both sockets ends the connection abruptly.
                });
            }
        });
        Relay { port: local, cut }
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reconnects_after_the_connection_drops() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("reconnect");
    admin.create(&inbox).await;
    let samples = samples();
    admin.append(&inbox, &samples[1].1, None).await;

    let relay = Relay::start(&server.host, server.tls_port).await;
    let mut config = server.imaps(&inbox);
    config.server.port = relay.port;
    config.watch = true;
    config.reconnect_min = Duration::from_millis(200);
    config.reconnect_max = Duration::from_secs(1);
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { run_imap(&config, shutdown, watch_handler(tx)).await }
    });
    assert!(next_within(&mut rx, Duration::from_secs(20)).await.1);

    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.cut_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Mail that arrives while the watcher is disconnected is picked up after reconnecting.
    admin.append(&inbox, &samples[2].1, None).await;
    assert!(next_within(&mut rx, Duration::from_secs(15)).await.1);

    shutdown.cancel();
    let s = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("watcher did not stop")
        .unwrap()
        .unwrap();
    assert_eq!(counts(&s), summary(2, 0, 0), "{s}");
    assert!(s.connections >= 2, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_polls_when_the_server_has_no_idle() {
    let server = server();
    let mut admin = server.admin().await;
    let inbox = unique("poll");
    admin.create(&inbox).await;
    let samples = samples();
    admin.append(&inbox, &samples[3].1, None).await;
    // 127.0.0.2 advertises no IDLE (see scripts/dovecot.sh).
    let mut config = server.config(
        Security::StartTls,
        &server.nomove_host,
        server.starttls_port,
        &inbox,
    );
    config.watch = true;
    config.poll_interval = Duration::from_millis(500);
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { run_imap(&config, shutdown, watch_handler(tx)).await }
    });
    assert!(next_within(&mut rx, Duration::from_secs(20)).await.1);
    // Let the watcher finish its first pass and start polling.
    tokio::time::sleep(Duration::from_secs(1)).await;
    admin.append(&inbox, &samples[4].1, None).await;
    assert!(next_within(&mut rx, Duration::from_secs(5)).await.1);
    shutdown.cancel();
    let s = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("watcher did not stop")
        .unwrap()
        .unwrap();
    assert_eq!(counts(&s), summary(2, 0, 0), "{s}");
    assert_eq!(s.connections, 1);
}

/// With `watch`, an unreachable server is retried (with backoff) until shutdown; without it,
/// the error is returned at once. (No Dovecot needed.)
#[tokio::test]
async fn unreachable_server_is_retried_only_when_watching() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = ImapUrl {
        security: Security::ImplicitTls,
        user: "u".into(),
        host: "127.0.0.1".into(),
        port,
        mailbox: "INBOX".into(),
    };
    let mut config = ImapConfig::new(url, Password::new("p"));
    config.trust = Trust::DangerAcceptInvalidCerts;
    let leave = |_: &[u8], _: &MessageRef| Ok::<_, Infallible>(Disposition::Leave);
    let err = run_imap(&config, CancellationToken::new(), leave)
        .await
        .unwrap_err();
    assert!(matches!(err, ImapError::Connect { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );

    config.watch = true;
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(200);
    let shutdown = CancellationToken::new();
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stopper.cancel();
    });
    let started = Instant::now();
    let s = tokio::time::timeout(Duration::from_secs(10), run_imap(&config, shutdown, leave))
        .await
        .expect("the watcher ignored the shutdown")
        .expect("a watcher retries connection failures");
    assert_eq!(s.connections, 0);
    assert!(started.elapsed() >= Duration::from_millis(900));
}
