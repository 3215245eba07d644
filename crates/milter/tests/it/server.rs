//! The server on real sockets: isolation of bad connections, bounds, timeouts, progress,
//! reload and drain, Unix sockets.

use std::sync::Arc;
use std::time::Duration;

use dmarc_milter::client::Client;
use dmarc_milter::codec::{Command, ConnectAddress, Reply};
use dmarc_milter::filter::*;
use dmarc_milter::listen::ListenAddr;
use dmarc_milter::server::{Current, Listeners, ServerSettings, Stop, serve};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::watch;

use crate::support::{Recorder, cases, filter, message};

/// A filter that stamps `X-Filter: <name>` and waits `eom_delay` at end of message.
struct Stamp {
    name: &'static str,
    eom_delay: Duration,
}
struct StampConn(&'static str, Duration);
struct StampMsg(&'static str, Duration);

impl Filter for Stamp {
    type Connection = StampConn;
    fn connect(&self, _: &Client_, _: &Negotiated, _: &Macros) -> Step<StampConn> {
        Step::Continue(StampConn(self.name, self.eom_delay))
    }
}
type Client_ = dmarc_milter::filter::Client;

impl ConnectionFilter for StampConn {
    type Message = StampMsg;
    fn helo(&mut self, _: &str, _: &Macros) {}
    fn mail(&mut self, _: &EnvelopeAddress, _: &Macros) -> Step<StampMsg> {
        Step::Continue(StampMsg(self.0, self.1))
    }
}

impl MessageFilter for StampMsg {
    fn rcpt(&mut self, _: &EnvelopeAddress, _: &Macros) {}
    fn header(&mut self, _: usize, _: &[u8], _: &[u8]) {}
    fn end_of_headers(&mut self, _: &Macros) -> Step<()> {
        Step::Continue(())
    }
    fn body(&mut self, _: &[u8]) -> BodyStep {
        BodyStep::Continue
    }
    async fn end_of_message(self, _: &Macros) -> Outcome {
        assert!(self.0 != "panics", "a bug in a filter");
        tokio::time::sleep(self.1).await;
        Outcome {
            edits: vec![HeaderEdit::Add(
                HeaderField::new("X-Filter", self.0).unwrap(),
            )],
            ..Outcome::accept()
        }
    }
}

struct Running<F> {
    addr: String,
    current: Arc<Current<F>>,
    stop: watch::Sender<Stop>,
    server: tokio::task::JoinHandle<()>,
    observer: Arc<Recorder>,
}

async fn start<F: Filter>(filter: F, settings: ServerSettings) -> Running<F> {
    let listeners = Listeners::bind(
        &[ListenAddr::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        }],
        0o600,
    )
    .await
    .unwrap();
    let addr = listeners.names()[0].trim_start_matches("inet:").to_owned();
    let current = Arc::new(Current::new(Arc::new(filter)));
    let (stop, rx) = watch::channel(Stop::Running);
    let observer = Arc::new(Recorder::default());
    let server = tokio::spawn(serve(
        listeners,
        current.clone(),
        settings,
        observer.clone(),
        rx,
    ));
    Running {
        addr,
        current,
        stop,
        server,
        observer,
    }
}

fn stamp(name: &'static str) -> Stamp {
    Stamp {
        name,
        eom_delay: Duration::ZERO,
    }
}

async fn connect(addr: &str) -> Client<TcpStream> {
    connected(TcpStream::connect(addr).await.unwrap()).await
}

/// A client over `stream` that has negotiated and sent its connect.
async fn connected(stream: TcpStream) -> Client<TcpStream> {
    let mut c = Client::new(stream);
    c.negotiate().await.unwrap();
    c.send(&Command::Connect {
        hostname: "[192.0.2.1]".into(),
        address: ConnectAddress::Inet("192.0.2.1:25".parse().unwrap()),
    })
    .await
    .unwrap();
    c
}

async fn start_message(c: &mut Client<TcpStream>) {
    c.send(&Command::Mail {
        args: vec!["<a@example.org>".into()],
    })
    .await
    .unwrap();
    c.send(&Command::Rcpt {
        args: vec!["<b@example.net>".into()],
    })
    .await
    .unwrap();
    c.send(&Command::EndOfHeaders).await.unwrap();
}

async fn end_message(c: &mut Client<TcpStream>) -> Vec<Reply> {
    c.send(&Command::EndOfMessage { chunk: Vec::new() })
        .await
        .unwrap()
}

fn stamp_of(replies: &[Reply]) -> Option<&str> {
    replies.iter().find_map(|r| match r {
        Reply::AddHeader { name, value } if name == "X-Filter" => Some(value.trim()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_closes_only_its_connection() {
    let s = start(stamp("a"), ServerSettings::default()).await;
    let mut good = connect(&s.addr).await;
    start_message(&mut good).await;
    // Garbage of every kind, each on its own connection.
    let garbage: Vec<Vec<u8>> = vec![
        vec![0, 0, 0, 1, b'Z'],                // unknown command
        vec![0, 0, 0, 0],                      // length 0
        0x7fff_ffffu32.to_be_bytes().to_vec(), // too large
        vec![0, 0, 0, 3, b'C', b'h', 0],       // connect without a family
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),    // not the milter protocol
    ];
    for bytes in &garbage {
        let mut bad = Client::new(TcpStream::connect(&s.addr).await.unwrap());
        bad.negotiate().await.unwrap();
        bad.write_bytes(bytes).await.unwrap();
        assert!(bad.closed_within(Duration::from_secs(5)).await, "{bytes:?}");
    }
    // The good connection goes on.
    assert_eq!(stamp_of(&end_message(&mut good).await), Some("a"));
    let errors: Vec<String> = s
        .observer
        .lines()
        .into_iter()
        .filter(|l| l.contains("error"))
        .collect();
    assert_eq!(errors.len(), garbage.len(), "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown command byte 'Z'"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("larger than the maximum of 1048576 bytes"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("data byte 2: the data ends before the address family")),
        "{errors:?}"
    );
    s.stop.send(Stop::Drain).unwrap();
    good.send(&Command::Quit).await.unwrap();
    s.server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_commands_close_the_connection() {
    let s = start(stamp("a"), ServerSettings::default()).await;
    let mut c = connect(&s.addr).await;
    c.send_raw(&Command::EndOfHeaders).await.unwrap();
    assert!(c.closed_within(Duration::from_secs(5)).await);
    s.observer
        .wait_for("SMFIC_EOH is out of order between messages")
        .await;
    s.stop.send(Stop::Drain).unwrap();
    s.server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_time_out() {
    let settings = ServerSettings {
        read_timeout: Duration::from_millis(300),
        ..ServerSettings::default()
    };
    let s = start(stamp("a"), settings).await;
    let mut c = connect(&s.addr).await;
    assert!(c.closed_within(Duration::from_secs(5)).await);
    s.observer
        .wait_for("error timeout: nothing received for 0.3 s")
        .await;
    s.stop.send(Stop::Drain).unwrap();
    s.server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded() {
    let settings = ServerSettings {
        max_connections: 1,
        ..ServerSettings::default()
    };
    let s = start(stamp("a"), settings).await;
    let mut first = connect(&s.addr).await;
    // The second is accepted by the kernel but not served while the first is open.
    let mut second = Client::new(TcpStream::connect(&s.addr).await.unwrap());
    second
        .send_raw(&Command::OptNeg {
            version: 6,
            actions: dmarc_milter::client::POSTFIX_ACTIONS,
            protocol: dmarc_milter::client::POSTFIX_PROTOCOL,
        })
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), second.recv()).await;
    assert!(early.is_err(), "served beyond the bound: {early:?}");
    first.send(&Command::Quit).await.unwrap();
    assert!(matches!(second.recv().await.unwrap(), Reply::OptNeg { .. }));
    s.stop.send(Stop::Drain).unwrap();
    second.send(&Command::Quit).await.unwrap();
    s.server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_sent_while_a_message_is_judged() {
    let settings = ServerSettings {
        progress_interval: Duration::from_millis(100),
        ..ServerSettings::default()
    };
    let s = start(
        Stamp {
            name: "slow",
            eom_delay: Duration::from_millis(450),
        },
        settings,
    )
    .await;
    let mut c = connect(&s.addr).await;
    start_message(&mut c).await;
    c.send_raw(&Command::EndOfMessage { chunk: Vec::new() })
        .await
        .unwrap();
    let mut progress = 0;
    loop {
        match c.recv().await.unwrap() {
            Reply::Progress => progress += 1,
            Reply::Accept => break,
            _ => {}
        }
    }
    assert!((3..=5).contains(&progress), "{progress} progress replies");
    s.stop.send(Stop::Drain).unwrap();
    c.send(&Command::Quit).await.unwrap();
    s.server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_to_new_connections_only() {
    let s = start(stamp("old"), ServerSettings::default()).await;
    let mut before = connect(&s.addr).await;
    s.current.replace(Arc::new(stamp("new")));
    let mut after = connect(&s.addr).await;
    start_message(&mut before).await;
    start_message(&mut after).await;
    assert_eq!(stamp_of(&end_message(&mut before).await), Some("old"));
    assert_eq!(stamp_of(&end_message(&mut after).await), Some("new"));
    s.stop.send(Stop::Drain).unwrap();
    s.server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_finishes_the_message_in_progress() {
    let s = start(stamp("a"), ServerSettings::default()).await;
    let mut busy = connect(&s.addr).await;
    let mut idle = connect(&s.addr).await;
    start_message(&mut busy).await;
    s.stop.send(Stop::Drain).unwrap();
    // Between messages: closed at once. New connections: refused.
    assert!(idle.closed_within(Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(&s.addr).await.is_err(),
        "still accepting"
    );
    // In a message: it is finished, then the connection closes.
    assert_eq!(stamp_of(&end_message(&mut busy).await), Some("a"));
    assert!(busy.closed_within(Duration::from_secs(5)).await);
    tokio::time::timeout(Duration::from_secs(5), s.server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_is_bounded_by_the_grace_period() {
    let settings = ServerSettings {
        shutdown_grace: Duration::from_millis(300),
        ..ServerSettings::default()
    };
    let s = start(stamp("a"), settings).await;
    let mut stuck = connect(&s.addr).await;
    start_message(&mut stuck).await;
    s.stop.send(Stop::Drain).unwrap();
    // The MTA never finishes the message: the connection is closed after the grace.
    tokio::time::timeout(Duration::from_secs(5), s.server)
        .await
        .unwrap()
        .unwrap();
    assert!(stuck.closed_within(Duration::from_secs(1)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_sockets_are_created_replaced_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milter.sock");
    // A stale socket (nobody listening) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let addr = ListenAddr::Unix(path.clone());
    let listeners = Listeners::bind(std::slice::from_ref(&addr), 0o660)
        .await
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o660
    );
    // A live one is not taken over.
    let e = Listeners::bind(std::slice::from_ref(&addr), 0o660)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("in use"), "{e}");
    // Not a socket: refused.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(
        Listeners::bind(&[ListenAddr::Unix(file)], 0o660)
            .await
            .is_err()
    );

    let built = filter(&[]);
    let (stop, rx) = watch::channel(Stop::Running);
    let server = tokio::spawn(serve(
        listeners,
        Arc::new(Current::new(built.filter.clone())),
        ServerSettings::default(),
        Arc::new(Recorder::default()),
        rx,
    ));
    let c = &cases()[0];
    let mut client = Client::new(UnixStream::connect(&path).await.unwrap());
    client.negotiate().await.unwrap();
    client
        .send(&Command::Connect {
            hostname: "[203.0.113.82]".into(),
            address: ConnectAddress::Inet(format!("{}:25", c.ip).parse().unwrap()),
        })
        .await
        .unwrap();
    client
        .send(&Command::Helo {
            name: c.helo.clone(),
        })
        .await
        .unwrap();
    let r = client
        .message(&c.mail_from, &["user@receiver.example"], &message(c))
        .await
        .unwrap();
    assert_eq!(r.last(), Some(&Reply::Accept));
    client.send(&Command::Quit).await.unwrap();
    stop.send(Stop::Drain).unwrap();
    server.await.unwrap();
    assert!(!path.exists(), "socket removed at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections() {
    let s = start(stamp("a"), ServerSettings::default()).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let addr = s.addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = connect(&addr).await;
            for _ in 0..3 {
                start_message(&mut c).await;
                assert_eq!(stamp_of(&end_message(&mut c).await), Some("a"));
            }
            c.send(&Command::Quit).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    s.stop.send(Stop::Drain).unwrap();
    s.server.await.unwrap();
    assert!(!s.observer.lines().iter().any(|l| l.contains("error")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_filter_loses_its_connection_not_the_server() {
    let s = start(stamp("panics"), ServerSettings::default()).await;
    let mut c = connect(&s.addr).await;
    start_message(&mut c).await;
    c.send_raw(&Command::EndOfMessage { chunk: Vec::new() })
        .await
        .unwrap();
    assert!(c.closed_within(Duration::from_secs(5)).await);
    s.observer
        .wait_for("error panic: the filter panicked: a bug in a filter")
        .await;
    s.current.replace(Arc::new(stamp("fine")));
    let mut next = connect(&s.addr).await;
    start_message(&mut next).await;
    assert_eq!(stamp_of(&end_message(&mut next).await), Some("fine"));
    s.stop.send(Stop::Drain).unwrap();
    s.server.await.unwrap();
}

/// Over TCP, with Nagle's algorithm on at the MTA's end as Postfix leaves it: the header
/// fields and body chunks the MTA streams without waiting for replies are acknowledged at
/// once, so a message never waits for the peer's delayed acknowledgement (40 ms on
/// Linux) before its end of message goes out. Ten messages on one connection (quick-ack
/// mode at the start of a connection would hide the delay for the first segments).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_frames_never_wait_for_a_delayed_ack() {
    let running = start(stamp("a"), ServerSettings::default()).await;
    let stream = TcpStream::connect(&running.addr).await.unwrap();
    assert!(!stream.nodelay().unwrap(), "the MTA's end keeps Nagle on");
    let mut c = connected(stream).await;
    let mut header = String::new();
    for i in 0..12 {
        header.push_str(&format!("X-Field-{i}: value {i}\r\n"));
    }
    let msg = format!("{header}From: a@example.org\r\n\r\nbody line\r\n").into_bytes();
    let mut took = Vec::new();
    for _ in 0..10 {
        let t = std::time::Instant::now();
        let r = c
            .message("a@example.org", &["b@example.net"], &msg)
            .await
            .unwrap();
        took.push(t.elapsed());
        assert_eq!(r.last(), Some(&Reply::Accept), "{r:?}");
    }
    took.sort();
    // The median: a delayed acknowledgement would put it at 40 ms or more.
    assert!(took[5] < Duration::from_millis(25), "{took:?}");
    let _ = running.stop.send(Stop::Now);
}
