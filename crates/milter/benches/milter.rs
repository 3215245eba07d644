//! The milter's own CPU per message, in one process, beside the DKIM floor and the
//! library's `verify_message` on the same messages, interleaved (the style of
//! `crates/receiver/benches/receiver.rs`: rounds of every variant in turn, the minimum per
//! variant, which holds up on a shared machine).
//!
//! * floor: one SHA-256 pass over each message plus one RSA-2048 verification
//!   (`crates/proto/benches/support/floor.rs`, as the DKIM and receiver benchmarks);
//! * `verify_message`: the receiver's single call (SPF for MAIL FROM and HELO, every DKIM
//!   signature, DMARC, the Authentication-Results field);
//! * milter: the sans-I/O path of one milter connection per message, as smtp-source makes
//!   Postfix open one: the bytes Postfix sends (option negotiation, connect, HELO, MAIL,
//!   RCPT, each header field, end of header, the body in chunks of 65,535 bytes, end of
//!   message, abort, quit, each with the macros Postfix sends before it, cut into the reads
//!   that end at a command awaiting a reply) through [`FrameDecoder`] (the bytes read into
//!   its buffer), [`Command::parse`], the [`Session`] with the DMARC filter (log line and
//!   metrics included; the log kept in memory, not written) and the replies encoded, in a
//!   current-thread Tokio runtime as `dmarc milter` runs with `server.workers = 1`.
//!
//! The three ask the same warm in-memory DNS (mail-bench's `zone.json`). Everything but
//! the sockets, the wake-ups and the write of the log line is in the milter figure: it is
//! the "own CPU" that issue 12's target (within 1.3x the DKIM floor) speaks of.
//!
//! Run: `cargo bench -p dmarc-milter --bench milter` (`MILTER_ROUNDS`, default 15).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use dmarc_milter::client::{header_fields, split_message};
use dmarc_milter::codec::{Actions, Command, ConnectAddress, FrameDecoder, Protocol, Reply, code};
use dmarc_milter::handler::DmarcFilter;
use dmarc_milter::metrics::Metered;
use dmarc_milter::session::{Session, SessionLimits};
use dmarc_proto::FixedClock;
use dmarc_receiver::{FixedDraw, ReceiverConfig, SmtpFacts, verify_message};

#[path = "../../proto/benches/support/floor.rs"]
mod floor;
// The filter as the integration tests build it (the bench uses a few of their helpers).
#[path = "../../proto/benches/support/map_lookup.rs"]
mod map_lookup;
#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;
use map_lookup::MapLookup;

struct Case {
    message: Vec<u8>,
    facts: SmtpFacts,
    /// The reads of one milter connection, as Postfix writes them.
    reads: Vec<Vec<u8>>,
}

fn macros(stage: u8, pairs: &[(&str, &str)]) -> Command {
    Command::Macro {
        for_command: stage,
        macros: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// The frames Postfix 3.7 sends for one SMTP session with one message (as in
/// `tests/fixtures/frames/postfix/pass.frames`), grouped into the reads that end with a
/// command the milter answers.
fn postfix_reads(ip: IpAddr, helo: &str, mail_from: &str, message: &[u8]) -> Vec<Vec<u8>> {
    let queue_id = [("i", "0F1DA9BE07D")];
    let client = format!("[{ip}]");
    let mut commands = vec![
        (
            Command::OptNeg {
                version: 6,
                actions: Actions(0x1ff),
                protocol: Protocol(0x1f_ffff),
            },
            true,
        ),
        (
            macros(
                code::SMFIC_CONNECT,
                &[
                    ("j", "mx.receiver.example"),
                    ("{daemon_name}", "mx.receiver.example"),
                    ("{daemon_addr}", "127.0.0.1"),
                    ("{client_addr}", &ip.to_string()),
                    ("{client_name}", &client),
                    ("{client_ptr}", &client),
                    ("{if_addr}", "127.0.0.1"),
                ],
            ),
            false,
        ),
        (
            Command::Connect {
                hostname: client.clone(),
                address: ConnectAddress::Inet(SocketAddr::new(ip, 47348)),
            },
            true,
        ),
        (macros(code::SMFIC_HELO, &[]), false),
        (
            Command::Helo {
                name: helo.to_owned(),
            },
            false,
        ),
        (
            macros(code::SMFIC_MAIL, &[("{mail_addr}", mail_from)]),
            false,
        ),
        (
            Command::Mail {
                args: vec![format!("<{mail_from}>")],
            },
            true,
        ),
        (
            macros(
                code::SMFIC_RCPT,
                &[("{rcpt_addr}", "user@receiver.example")],
            ),
            false,
        ),
        (
            Command::Rcpt {
                args: vec!["<user@receiver.example>".into()],
            },
            false,
        ),
        (macros(code::SMFIC_DATA, &queue_id), false),
    ];
    let (header, body) = split_message(message);
    let received = (
        b"Received".to_vec(),
        format!(
            " from {helo} ({client})\n\tby mx.receiver.example (Postfix) with ESMTP id 0F1DA9BE07D\n\tfor <user@receiver.example>; Thu,  3 Dec 2026 14:00:00 +0000 (UTC)"
        )
        .into_bytes(),
    );
    for (name, value) in std::iter::once(received).chain(header_fields(header)) {
        commands.push((macros(code::SMFIC_HEADER, &queue_id), false));
        commands.push((Command::Header { name, value }, false));
    }
    commands.push((macros(code::SMFIC_EOH, &queue_id), false));
    commands.push((Command::EndOfHeaders, true));
    for chunk in body.chunks(65_535) {
        commands.push((macros(code::SMFIC_BODY, &queue_id), false));
        commands.push((
            Command::Body {
                chunk: chunk.to_vec(),
            },
            false,
        ));
    }
    commands.push((macros(code::SMFIC_BODYEOB, &queue_id), false));
    commands.push((Command::EndOfMessage { chunk: Vec::new() }, true));
    commands.push((Command::Abort, false));
    commands.push((Command::Quit, false));
    let mut reads = Vec::new();
    let mut read = Vec::new();
    for (cmd, answered) in commands {
        cmd.encode(&mut read).expect("encode");
        if answered {
            reads.push(std::mem::take(&mut read));
        }
    }
    reads.push(read);
    reads
}

fn corpus() -> (Vec<Case>, MapLookup) {
    let dir = dmarc_testkit::corpus("mail-bench");
    let lookup = map_lookup::load_zone_json(&dir.join("zone.json"));
    let cases = map_lookup::mail_bench_cases(&dir)
        .into_iter()
        .map(|(message, (ip, helo, mail_from))| Case {
            reads: postfix_reads(ip, &helo, &mail_from, &message),
            facts: SmtpFacts::new(ip, helo).with_mail_from(mail_from),
            message,
        })
        .collect();
    (cases, lookup)
}

type Filter = DmarcFilter<Metered<MapLookup>>;

/// One milter connection: every read decoded, every command handled, every reply
/// encoded; returns the last reply that decides (accept, reject, ...) and whether the
/// message was quarantined.
async fn connection(filter: &Arc<Filter>, reads: &[Vec<u8>]) -> (Option<Reply>, bool) {
    let mut decoder = FrameDecoder::new(dmarc_milter::codec::DEFAULT_MAX_FRAME);
    let mut session = Session::new(filter.clone(), SessionLimits::default());
    let mut out = Vec::new();
    let mut decided = None;
    let mut quarantined = false;
    for read in reads {
        decoder.read_buffer(read.len()).extend_from_slice(read);
        while let Some(frame) = decoder.next_frame().expect("frame") {
            let response = session
                .handle(Command::parse(frame).expect("command"))
                .await
                .expect("session");
            for r in &response.replies {
                r.encode(&mut out).expect("reply");
                match r {
                    Reply::Continue | Reply::InsertHeader { .. } | Reply::ChangeHeader { .. } => {}
                    Reply::Quarantine { .. } => quarantined = true,
                    _ => decided = Some(r.clone()),
                }
            }
            if response.close {
                break;
            }
        }
        std::hint::black_box(&out);
        out.clear();
    }
    session.finish();
    (decided, quarantined)
}

fn main() {
    let (cases, lookup) = corpus();
    let n = cases.len();
    let total_bytes: usize = cases.iter().map(|c| c.message.len()).sum();
    let clock = FixedClock::from_unix_seconds(1_795_400_000);
    let config = ReceiverConfig::new("mx.receiver.example");
    let draw = FixedDraw(0);
    let floor_work = floor::Floor::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let support::Built {
        filter: milter,
        logger,
        ..
    } = support::filter_with(
        map_lookup::load_zone_json(&dmarc_testkit::corpus("mail-bench").join("zone.json")),
        &["exempt.client_ips=[]", "quarantine=hold"],
    );

    // Every connection ends with a decision, never a temporary failure.
    let (mut accepted, mut refused, mut held) = (0, 0, 0);
    runtime.block_on(async {
        for case in &cases {
            match connection(&milter, &case.reads).await {
                (Some(Reply::Accept), false) => accepted += 1,
                (Some(Reply::Accept), true) => held += 1,
                (Some(Reply::ReplyCode(r)), _) if r.code() == 550 => refused += 1,
                other => panic!("unexpected outcome {other:?}"),
            }
        }
    });
    println!(
        "mail-bench: {n} messages, {total_bytes} bytes, {} milter frames bytes; milter: {accepted} accepted, {refused} refused with 550, {held} held; {} log lines",
        cases
            .iter()
            .map(|c| c.reads.iter().map(Vec::len).sum::<usize>())
            .sum::<usize>(),
        logger.lines().len()
    );

    let floor = || {
        for case in &cases {
            floor_work.message(&case.message);
        }
    };
    let library = || {
        runtime.block_on(async {
            for case in &cases {
                let v = verify_message(&lookup, &clock, &draw, &config, &case.facts, &case.message)
                    .await;
                std::hint::black_box(v.authentication_results_header());
            }
        });
    };
    let own = || {
        runtime.block_on(async {
            for case in &cases {
                std::hint::black_box(connection(&milter, &case.reads).await);
            }
        });
    };
    let rounds: usize = std::env::var("MILTER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut best = [f64::MAX; 3];
    for _ in 0..rounds {
        let fns: [(usize, &dyn Fn()); 3] = [(0, &floor), (1, &library), (2, &own)];
        for &(i, f) in &fns {
            let t = Instant::now();
            f();
            best[i] = best[i].min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
    }
    println!(
        "interleaved minimum over {rounds} rounds, per message: DKIM floor {:.1} µs; verify_message {:.1} µs ({:.2}x floor); milter session (frames in, replies out) {:.1} µs ({:.2}x floor, {:.2}x verify_message)",
        best[0],
        best[1],
        best[1] / best[0],
        best[2],
        best[2] / best[0],
        best[2] / best[1],
    );
}
