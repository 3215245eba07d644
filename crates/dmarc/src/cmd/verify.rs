//! `dmarc verify`: SPF, DKIM and DMARC for one message (or a batch), as a receiver would.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use dmarc_dns::{AnyLookup, SystemClock};
use dmarc_proto::dmarc::{
    AuthorOptions, DnsFailureMode, MultipleAddresses, MultipleFields, Spec, Unreadable,
};
use dmarc_proto::message::Message;
use dmarc_receiver::failure::{self, FailureCandidate};
use dmarc_receiver::{
    Observation, Randomness, Receiver, ReceiverConfig, SmtpFacts, Verdicts, verify_message,
};
use serde::{Deserialize, Serialize};

use crate::dns_args::DnsArgs;
use crate::input;

/// Arguments of `dmarc verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The message (RFC 5322, CRLF or LF line ends). Not with --batch.
    #[arg(
        value_name = "FILE",
        required_unless_present = "batch",
        conflicts_with = "batch"
    )]
    pub file: Option<PathBuf>,

    /// The SMTP client's IP address.
    #[arg(long, value_name = "IP", required_unless_present = "batch")]
    pub ip: Option<String>,

    /// The HELO/EHLO name the client gave.
    #[arg(long, value_name = "NAME", required_unless_present = "batch")]
    pub helo: Option<String>,

    /// The MAIL FROM address (angle brackets optional). "" or "<>", or leaving it out, is
    /// the null reverse-path: SPF then checks postmaster@HELO, and DMARC uses the HELO
    /// name as the SPF identity.
    #[arg(long = "mail-from", value_name = "ADDR")]
    pub mail_from: Option<String>,

    /// Verify many messages: a JSON Lines file, one object per line with `file` (relative
    /// to the JSONL file's directory), `ip`, `helo`, `mail_from` ("" = null
    /// reverse-path), optionally `rcpt_to` (a list of addresses) and `arrival` (Unix
    /// seconds or RFC 3339, the time --record files the case under; default now). Prints
    /// one JSON object per case, in input order.
    #[arg(long, value_name = "CASES.jsonl")]
    pub batch: Option<PathBuf>,

    /// With --batch: how many messages are verified at the same time, one worker thread
    /// each (default: the number of cores).
    #[arg(long, value_name = "N", requires = "batch")]
    pub jobs: Option<usize>,

    /// With --batch: count each case's observation (the aggregate-report row it makes)
    /// in the store, under its arrival hour (for `dmarc report send`).
    #[arg(long, requires = "batch")]
    pub record: bool,

    /// With --record: also queue a failure-report candidate for each case whose policy
    /// asks for one (`ruf=` and `fo=`; see `dmarc report send`). Off by default, as the
    /// milter's `[failure] queue`: a candidate keeps the message's header fields.
    #[arg(long, requires = "record")]
    pub queue_failures: bool,

    /// The store for --record.
    #[command(flatten)]
    pub store: crate::cmd::ingest::DbArgs,

    /// Print JSON instead of text (always on with --batch).
    #[arg(long)]
    pub json: bool,

    /// The authserv-id written in Authentication-Results.
    #[arg(long = "authserv-id", value_name = "ID", default_value = "localhost")]
    pub authserv_id: String,

    /// Report the results of these upstream verifiers' Authentication-Results fields
    /// (repeatable).
    #[arg(long = "trust-authserv-id", value_name = "ID")]
    pub trust_authserv_id: Vec<String>,

    /// Trust this ARC sealer (the d= of the ARC-Seal; repeatable): when DMARC fails with
    /// a policy to enforce, the chain passes, the newest sealer is trusted and the
    /// ARC-Authentication-Results it vouches for show an SPF or DKIM pass aligned with the
    /// From domain, the message is accepted (reported as the override trusted_forwarder).
    #[arg(long = "arc-trusted-sealer", value_name = "DOMAIN")]
    pub arc_trusted_sealer: Vec<String>,

    /// Do not verify ARC chains (no arc= result, no ARC keys asked, no trusted-forwarder
    /// override).
    #[arg(long = "no-arc", conflicts_with = "arc_trusted_sealer")]
    pub no_arc: bool,

    /// Follow RFC 7489 (Public Suffix List, pct) instead of RFC 9989 (DNS tree walk).
    #[arg(long)]
    pub rfc7489: bool,

    /// When DNS fails temporarily while looking for the DMARC policy, report none
    /// instead of temperror (fail open).
    #[arg(long = "fail-open")]
    pub fail_open: bool,

    /// A From field with addresses in several domains: evaluate each domain and apply the
    /// strictest verdict (the default, RFC 9989 §5.3.1, §11.5); reject any From field
    /// with more than one address (OpenDMARC's RejectMultiValueFrom); or, an opt-in a
    /// sender can abuse, same-domain-only / decline (dmarc=none, nothing enforced).
    #[arg(
        long = "from-multiple-addresses",
        value_name = "CHOICE",
        default_value = "evaluate"
    )]
    pub from_multiple_addresses: AddressesChoice,

    /// Several From fields: fail (the default: a DMARC failure of every domain they name,
    /// the strictest policy applies; rejected when they name none); evaluate (pool their
    /// addresses, as for --from-multiple-addresses); reject (OpenDMARC's RequiredHeaders);
    /// or, an opt-in a sender can abuse, accept (dmarc=permerror, nothing enforced).
    #[arg(
        long = "from-multiple-fields",
        value_name = "CHOICE",
        default_value = "fail"
    )]
    pub from_multiple_fields: FieldsChoice,

    /// No From field, or one that cannot be read (longer than 16384 bytes, broken syntax,
    /// no address, no valid domain): fail (the default: a DMARC failure of every domain it
    /// names, each `@domain` in it; rejected when it names none); reject (OpenDMARC's
    /// RequiredHeaders); or, an opt-in a sender can abuse, accept (dmarc=permerror,
    /// nothing enforced).
    #[arg(
        long = "from-unreadable",
        value_name = "CHOICE",
        default_value = "fail"
    )]
    pub from_unreadable: UnreadableChoice,

    #[command(flatten)]
    pub dns: DnsArgs,
}

/// `--from-multiple-addresses`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AddressesChoice {
    /// Each domain evaluated, the strictest verdict applies.
    Evaluate,
    /// Refused when the From field has more than one address.
    Reject,
    /// Evaluated when all addresses share a domain, else dmarc=none (opt-in).
    SameDomainOnly,
    /// dmarc=none whenever there is more than one address (opt-in).
    Decline,
}

/// `--from-multiple-fields`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FieldsChoice {
    /// A DMARC failure of every domain named.
    Fail,
    /// Their addresses pooled and evaluated.
    Evaluate,
    /// Refused.
    Reject,
    /// dmarc=permerror, nothing enforced (opt-in).
    Accept,
}

/// `--from-unreadable`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UnreadableChoice {
    /// A DMARC failure of every domain named.
    Fail,
    /// Refused.
    Reject,
    /// dmarc=permerror, nothing enforced (opt-in).
    Accept,
}

impl VerifyArgs {
    /// The library's From options for these flags.
    fn author_options(&self) -> AuthorOptions {
        AuthorOptions {
            multiple_addresses: match self.from_multiple_addresses {
                AddressesChoice::Evaluate => MultipleAddresses::EvaluateEach,
                AddressesChoice::Reject => MultipleAddresses::Reject,
                AddressesChoice::SameDomainOnly => MultipleAddresses::SameDomainOnly,
                AddressesChoice::Decline => MultipleAddresses::Decline,
            },
            multiple_fields: match self.from_multiple_fields {
                FieldsChoice::Fail => MultipleFields::Fail,
                FieldsChoice::Evaluate => MultipleFields::Evaluate,
                FieldsChoice::Reject => MultipleFields::Reject,
                FieldsChoice::Accept => MultipleFields::Accept,
            },
            unreadable: match self.from_unreadable {
                UnreadableChoice::Fail => Unreadable::Fail,
                UnreadableChoice::Reject => Unreadable::Reject,
                UnreadableChoice::Accept => Unreadable::Accept,
            },
        }
    }
}

/// A random source for the RFC 7489 pct draw: the standard library's randomly keyed
/// hasher over a counter.
#[derive(Debug)]
pub(crate) struct StdRandom {
    state: RandomState,
    counter: AtomicU64,
}

impl StdRandom {
    pub(crate) fn new() -> Self {
        StdRandom {
            state: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }
}

impl Randomness for StdRandom {
    fn percent(&self) -> u8 {
        let mut h = self.state.build_hasher();
        h.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
        u8::try_from(h.finish() % 100).unwrap_or(0)
    }
}

/// Checks the arguments, verifies, prints. Exit status 0 for a single message whatever
/// the verdict; with --batch, 1 when any case could not be verified.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut config = ReceiverConfig::new(args.authserv_id.clone());
    config.trusted_authserv_ids = args.trust_authserv_id.clone();
    if args.rfc7489 {
        config.dmarc.spec = Spec::Rfc7489;
    }
    if args.fail_open {
        config.dmarc.dns_failure = DnsFailureMode::FailOpen;
    }
    config.dmarc.author = args.author_options();
    config.arc.enabled = !args.no_arc;
    config.arc.trusted_sealers =
        dmarc_proto::arc::forwarder::TrustedSealers::new(&args.arc_trusted_sealer);
    if let Some(batch) = &args.batch {
        return run_batch(batch, &args, config);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let lookup = {
        let _guard = runtime.enter();
        args.dns.lookup()?
    };
    let rng = StdRandom::new();
    let (Some(file), Some(ip), Some(helo)) = (&args.file, &args.ip, &args.helo) else {
        bail!("FILE, --ip and --helo are required without --batch");
    };
    let ip: IpAddr = ip
        .trim()
        .parse()
        .with_context(|| format!("--ip {ip:?} is not an IPv4 or IPv6 address"))?;
    if helo.is_empty() {
        bail!("--helo must not be empty");
    }
    let message = input::read(file, "message", input::MAX_MESSAGE)?;
    let facts =
        SmtpFacts::new(ip, helo.clone()).with_mail_from(args.mail_from.clone().unwrap_or_default());
    let v = runtime.block_on(verify_message(
        &lookup,
        &SystemClock,
        &rng,
        &config,
        &facts,
        &message,
    ));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", human(&v))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One line of a batch file.
#[derive(Deserialize)]
struct CaseLine {
    file: Option<String>,
    ip: Option<String>,
    helo: Option<String>,
    mail_from: Option<String>,
    #[serde(default)]
    rcpt_to: Vec<String>,
    arrival: Option<Arrival>,
}

/// When a case arrived: Unix seconds or an RFC 3339 time.
#[derive(Deserialize)]
#[serde(untagged)]
enum Arrival {
    Seconds(i64),
    Text(String),
}

/// One case of a batch, as read from a JSONL line.
struct Case {
    line: usize,
    file: String,
    path: PathBuf,
    facts: SmtpFacts,
    recipients: Vec<String>,
    /// Unix seconds; `None` is "now".
    arrival: Option<i64>,
}

/// A case that could not be read, with its line and (when known) its file.
struct CaseError {
    line: usize,
    file: Option<String>,
    error: String,
}

fn parse_case(n: usize, line: &str, dir: &Path) -> Result<Case, CaseError> {
    let fail = |file: Option<&str>, error: String| CaseError {
        line: n,
        file: file.map(str::to_owned),
        error,
    };
    let c: CaseLine =
        serde_json::from_str(line).map_err(|e| fail(None, format!("bad JSON: {e}")))?;
    let file = c
        .file
        .ok_or_else(|| fail(None, "no \"file\" string".into()))?;
    let f = Some(file.as_str());
    let ip_text = c.ip.ok_or_else(|| fail(f, "no \"ip\" string".into()))?;
    let ip: IpAddr = ip_text
        .trim()
        .parse()
        .map_err(|_| fail(f, format!("{ip_text:?} is not an IP address")))?;
    let helo = c.helo.ok_or_else(|| fail(f, "no \"helo\" string".into()))?;
    let arrival = match c.arrival {
        None => None,
        Some(Arrival::Seconds(s)) => Some(s),
        Some(Arrival::Text(t)) => Some(
            dmarc_store::time::parse_rfc3339(&t)
                .map_err(|e| fail(f, format!("\"arrival\" {t:?}: {e}")))?,
        ),
    };
    Ok(Case {
        line: n,
        path: dir.join(&file),
        file,
        facts: SmtpFacts::new(ip, helo).with_mail_from(c.mail_from.unwrap_or_default()),
        recipients: c.rcpt_to,
        arrival,
    })
}

/// What the batch shares between its workers.
struct Batch {
    lookup: AnyLookup,
    config: ReceiverConfig,
    rng: StdRandom,
    record: bool,
    /// Failure-report candidates are made (`--queue-failures`).
    queue_failures: bool,
}

/// The output of a run of consecutive cases: their JSON lines, whether any failed, and
/// their observations (with `--record`).
#[derive(Default)]
struct ChunkOut {
    json: Vec<u8>,
    failed: bool,
    observations: Vec<(i64, Observation)>,
    candidates: Vec<FailureCandidate>,
    /// Report messages (aggregate or failure reports, bounces): not counted.
    report_mail: usize,
}

/// Cases per task: workers take runs of consecutive cases, so that handing work out and
/// putting the output back in order costs once per run, not once per message.
const CHUNK: usize = 32;

#[derive(Serialize)]
struct ErrorLine<'a> {
    line: usize,
    file: Option<&'a str>,
    error: &'a str,
}

#[derive(Serialize)]
struct CaseLineOut<'a> {
    line: usize,
    file: &'a str,
    #[serde(flatten)]
    verdicts: &'a Verdicts,
}

/// What `--record` keeps of one case: its observation, and its failure-report candidate
/// when the policy asks for a failure report about it; `Some(None)` for report mail,
/// which is not counted (no reports about reports).
type Recorded = Option<Option<((i64, Observation), Option<FailureCandidate>)>>;

/// What became of one case: its verdicts, or why it could not be verified. (Nearly every
/// case is verified, so the rare failure's unused space costs less than a box per case.)
#[allow(clippy::large_enum_variant)]
enum Outcome {
    Verified {
        case: Case,
        verdicts: Verdicts,
        recorded: Recorded,
    },
    Failed(CaseError),
}

impl Outcome {
    /// Appends the case's JSON line to `out`.
    fn write_line(&self, out: &mut Vec<u8>) {
        let _ = match self {
            Outcome::Verified { case, verdicts, .. } => serde_json::to_writer(
                &mut *out,
                &CaseLineOut {
                    line: case.line,
                    file: &case.file,
                    verdicts,
                },
            ),
            Outcome::Failed(e) => serde_json::to_writer(
                &mut *out,
                &ErrorLine {
                    line: e.line,
                    file: e.file.as_deref(),
                    error: &e.error,
                },
            ),
        };
        out.push(b'\n');
    }
}

/// Verifies one case (its JSON line is written by the run, into the run's buffer).
async fn verify_case(batch: &Batch, case: Result<Case, CaseError>) -> Outcome {
    let case = match case {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
    };
    let message = match input::read(&case.path, "message", input::MAX_MESSAGE) {
        Ok(m) => m,
        Err(e) => {
            return Outcome::Failed(CaseError {
                line: case.line,
                file: Some(case.file),
                error: format!("{e:#}"),
            });
        }
    };
    let msg = Message::parse(&message);
    let env = Receiver {
        lookup: &batch.lookup,
        clock: &SystemClock,
        rng: &batch.rng,
        config: &batch.config,
    };
    let mut tx = env
        .connect(case.facts.ip, case.facts.helo.clone())
        .mail_from(case.facts.mail_from.as_deref().unwrap_or_default());
    for r in &case.recipients {
        tx.rcpt_to(r);
    }
    let mut body = tx.message(&msg);
    body.whole_body(msg.body());
    // The session's future is several KiB: on the heap, polled in place, so that this
    // case's future (moved into the run's task) stays small.
    let v = Box::pin(body.finish()).await;
    let recorded = batch.record.then(|| {
        if failure::is_report_message(msg.header_block()) {
            return None;
        }
        let at = case.arrival.unwrap_or_else(dmarc_store::time::now);
        let candidate = batch
            .queue_failures
            .then(|| failure::candidate(&v, msg.header_block(), at).ok())
            .flatten();
        Some(((at, v.observation()), candidate))
    });
    Outcome::Verified {
        case,
        verdicts: v,
        recorded,
    }
}

async fn verify_chunk(batch: Arc<Batch>, cases: Vec<Result<Case, CaseError>>) -> ChunkOut {
    let mut out = ChunkOut::default();
    // The cases of a run are verified concurrently: with real DNS, a run waits for its
    // slowest answer, not the sum of them.
    let results =
        futures_util::future::join_all(cases.into_iter().map(|c| verify_case(&batch, c))).await;
    // One buffer for the run's lines, written in place from the verdicts.
    out.json.reserve(results.len() * 2048);
    for outcome in results {
        outcome.write_line(&mut out.json);
        match outcome {
            Outcome::Failed(_) => out.failed = true,
            Outcome::Verified { recorded, .. } => match recorded {
                Some(Some((obs, candidate))) => {
                    out.observations.push(obs);
                    out.candidates.extend(candidate);
                }
                Some(None) => out.report_mail += 1,
                None => {}
            },
        }
    }
    out
}

/// The number of cores, the default of `--jobs`.
pub(crate) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn run_batch(
    batch_path: &Path,
    args: &VerifyArgs,
    config: ReceiverConfig,
) -> anyhow::Result<ExitCode> {
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    // One worker per job; the thread that reads the cases and writes the output is the
    // runtime's own (block_on), and the blocking pool is not used (files are read in
    // the workers).
    let runtime = if jobs == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(jobs)
            .max_blocking_threads(1)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    let lookup = {
        let _guard = runtime.enter();
        args.dns.lookup()?
    };
    let mut store = if args.record {
        Some(args.store.open()?)
    } else {
        None
    };
    let text = input::read_text(batch_path, "cases file", input::MAX_CASES)?;
    let dir = batch_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let batch = Arc::new(Batch {
        lookup,
        config,
        rng: StdRandom::new(),
        record: store.is_some(),
        queue_failures: args.queue_failures,
    });
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if !line.trim().is_empty() {
            cases.push(parse_case(i + 1, line, &dir));
        }
    }
    let mut chunks = Vec::with_capacity(cases.len().div_ceil(CHUNK));
    let mut it = cases.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(CHUNK).collect::<Vec<_>>());
    }
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut failed = false;
    let mut observations = Vec::new();
    let mut candidates = Vec::new();
    let mut report_mail = 0;
    runtime.block_on(async {
        use futures_util::StreamExt as _;
        let mut outs = futures_util::stream::iter(chunks)
            .map(|chunk| tokio::spawn(verify_chunk(batch.clone(), chunk)))
            .buffered(jobs * 2);
        while let Some(out) = outs.next().await {
            let out = out.context("a verification task panicked")?;
            failed |= out.failed;
            stdout.write_all(&out.json)?;
            observations.extend(out.observations);
            candidates.extend(out.candidates);
            report_mail += out.report_mail;
        }
        anyhow::Ok(())
    })?;
    stdout.flush()?;
    drop(stdout);
    if let Some(store) = &mut store {
        let n = store
            .add_observations(&observations)
            .context("cannot record the observations")?;
        eprintln!("recorded {n} observations in {}", store.location());
        if report_mail > 0 {
            eprintln!(
                "{report_mail} report messages (aggregate or failure reports, bounces) not counted: no reports about reports"
            );
        }
        let n = store
            .queue_failure_candidates(&candidates)
            .context("cannot queue the failure-report candidates")?;
        if n > 0 {
            eprintln!(
                "queued {n} failure-report candidates (their policies ask for failure reports)"
            );
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The verdict for a person.
fn human(v: &Verdicts) -> String {
    let d = &v.dmarc;
    let mut s = String::new();
    s.push_str(&v.explain());
    s.push('\n');
    match (d.requested_policy, &d.policy_domain) {
        (Some(req), Some(pd)) => {
            let via = d.policy_source.map(|p| p.as_str()).unwrap_or_default();
            s.push_str(&format!(
                "Policy: {pd} requests {req} ({via}, {})",
                d.spec.as_str()
            ));
            match d.applied_policy {
                Some(applied) if applied != req => s.push_str(&format!(
                    "; applied as {applied} ({})",
                    if d.testing {
                        "t=y testing mode"
                    } else {
                        "not selected by pct"
                    }
                )),
                Some(applied) if d.result == dmarc_proto::dmarc::DmarcResult::Pass => {
                    s.push_str(&format!("; a failing message would get {applied}"))
                }
                Some(applied) => s.push_str(&format!("; applied as {applied}")),
                None => {}
            }
            s.push('\n');
        }
        _ => s.push_str(&format!("Policy: none ({})\n", d.reason)),
    }
    if let Some(arc) = v.arc.as_ref().filter(|a| !a.hops.is_empty()) {
        s.push_str(&format!(
            "ARC: {} ({} set{}{})\n",
            arc.status,
            arc.instances,
            if arc.instances == 1 { "" } else { "s" },
            arc.oldest_pass
                .map(|o| format!(", oldest-pass {o}"))
                .unwrap_or_default()
        ));
        for h in &arc.hops {
            s.push_str(&format!("  hop {}: ", h.instance));
            s.push_str(&format!(
                "sealed by {} (seal {})",
                h.sealer.as_deref().unwrap_or("?"),
                check(&h.seal)
            ));
            match &h.authentication_results {
                Some(Ok(ar)) => {
                    let seen: Vec<String> = ar
                        .results
                        .iter()
                        .map(|r| format!("{}={}", r.method, r.result))
                        .collect();
                    s.push_str(&format!("; {} saw {}", ar.authserv_id, seen.join(", ")));
                }
                Some(Err(why)) => s.push_str(&format!("; its AAR cannot be read ({why})")),
                None => s.push_str("; no AAR"),
            }
            s.push('\n');
        }
    }
    let action = match v.action {
        dmarc_receiver::Action::Accept => "accept the message",
        dmarc_receiver::Action::Quarantine => "quarantine the message (deliver to spam)",
        dmarc_receiver::Action::Reject => "reject the message (550 5.7.1)",
        dmarc_receiver::Action::TempFail => "defer the message (451 4.7.1, retry later)",
    };
    s.push_str(&format!("A receiver would {action}.\n"));
    if !v.forged_fields.is_empty() {
        s.push_str(&format!(
            "Authentication-Results fields claiming our authserv-id (to delete): header indexes {}\n",
            v.forged_fields
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s.push_str(&v.authentication_results().to_header().replace("\r\n", "\n"));
    s
}

/// A signature check in words.
fn check(c: &Option<Result<(), dmarc_proto::dkim::Problem>>) -> String {
    match c {
        None => "not checked".to_owned(),
        Some(Ok(())) => "verified".to_owned(),
        Some(Err(p)) => format!("failed: {p}"),
    }
}
