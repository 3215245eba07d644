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
use dmarc_proto::receiver::{Randomness, ReceiverConfig, SmtpFacts, Verdicts, verify_message};
use serde_json::{Value, json};

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
    /// to the JSONL file's directory), `ip`, `helo` and `mail_from` ("" = null
    /// reverse-path). Prints one JSON object per case, in input order; uses every core.
    #[arg(long, value_name = "CASES.jsonl")]
    pub batch: Option<PathBuf>,

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let lookup = {
        let _guard = runtime.enter();
        Arc::new(args.dns.lookup()?)
    };
    let config = Arc::new(config);
    let rng = Arc::new(StdRandom::new());
    if let Some(batch) = &args.batch {
        return runtime.block_on(run_batch(batch, lookup, config, rng));
    }
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
        &*lookup,
        &SystemClock,
        &*rng,
        &config,
        &facts,
        &message,
    ));
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", verdicts_json(&v))?;
    } else {
        write!(out, "{}", human(&v))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One case of a batch, as read from a JSONL line.
struct Case {
    file: String,
    path: PathBuf,
    facts: SmtpFacts,
}

fn parse_case(line: &str, dir: &Path) -> Result<Case, (Option<String>, String)> {
    let v: Value = serde_json::from_str(line).map_err(|e| (None, format!("bad JSON: {e}")))?;
    let file = v["file"]
        .as_str()
        .ok_or((None, "no \"file\" string".to_owned()))?
        .to_owned();
    let with_file = |e: String| (Some(file.clone()), e);
    let ip_text = v["ip"]
        .as_str()
        .ok_or_else(|| with_file("no \"ip\" string".into()))?;
    let ip: IpAddr = ip_text
        .trim()
        .parse()
        .map_err(|_| with_file(format!("{ip_text:?} is not an IP address")))?;
    let helo = v["helo"]
        .as_str()
        .ok_or_else(|| with_file("no \"helo\" string".into()))?;
    let mail_from = match &v["mail_from"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        _ => return Err(with_file("\"mail_from\" is not a string".into())),
    };
    Ok(Case {
        path: dir.join(&file),
        file,
        facts: SmtpFacts::new(ip, helo).with_mail_from(mail_from),
    })
}

async fn run_batch(
    batch: &Path,
    lookup: Arc<AnyLookup>,
    config: Arc<ReceiverConfig>,
    rng: Arc<StdRandom>,
) -> anyhow::Result<ExitCode> {
    let text = input::read_text(batch, "cases file", input::MAX_CASES)?;
    let dir = batch
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut tasks = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let case = parse_case(line, &dir);
        let (lookup, config, rng) = (lookup.clone(), config.clone(), rng.clone());
        tasks.push(tokio::spawn(async move {
            let case = match case {
                Ok(c) => c,
                Err((file, error)) => return json!({"line": n, "file": file, "error": error}),
            };
            let path = case.path.clone();
            let read = tokio::task::spawn_blocking(move || {
                input::read(&path, "message", input::MAX_MESSAGE)
            })
            .await;
            let message = match read {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => {
                    return json!({"line": n, "file": case.file, "error": format!("{e:#}")});
                }
                Err(e) => return json!({"line": n, "file": case.file, "error": e.to_string()}),
            };
            let v = verify_message(
                &*lookup,
                &SystemClock,
                &*rng,
                &config,
                &case.facts,
                &message,
            )
            .await;
            let mut out = verdicts_json(&v);
            if let Some(o) = out.as_object_mut() {
                o.insert("line".into(), n.into());
                o.insert("file".into(), case.file.into());
            }
            out
        }));
    }
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for t in tasks {
        let v = t.await.context("a verification task panicked")?;
        failed |= v.get("error").is_some();
        writeln!(out, "{v}")?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The JSON object of one message's verdicts.
fn verdicts_json(v: &Verdicts) -> Value {
    let spf = |s: &dmarc_proto::spf::SpfOutput| {
        json!({
            "result": s.result.as_str(),
            "domain": s.domain,
            "identity": s.identity.as_str(),
            "reason": s.reason,
        })
    };
    let d = &v.dmarc;
    let row = |r: &dmarc_proto::dmarc::IdentifierAlignment| {
        json!({"domain": r.domain, "selector": r.selector, "result": r.result.as_str(),
               "aligned": r.aligned, "reason": r.reason})
    };
    json!({
        "spf": spf(&v.spf),
        "helo_spf": v.helo_spf.as_ref().map(spf),
        "dkim": v.dkim.iter().map(|s| json!({
            "d": s.info.domain,
            "s": s.info.selector,
            "result": s.result.as_str(),
            "reason": s.reason(),
        })).collect::<Vec<_>>(),
        "dmarc": {
            "result": d.result.as_str(),
            "header_from": d.author_domain,
            "policy_domain": d.policy_domain,
            "org_domain": d.org_domain,
            "requested_policy": d.requested_policy.map(|p| p.as_str()),
            "applied_policy": d.applied_policy.map(|p| p.as_str()),
            "policy_source": d.policy_source.map(|p| format!("{p:?}").to_ascii_lowercase()),
            "testing": d.testing,
            "alignment": {
                "spf": d.spf_aligned(),
                "dkim": d.dkim_aligned(),
                "spf_mode": d.spf_mode.as_str(),
                "dkim_mode": d.dkim_mode.as_str(),
                "spf_identifiers": d.spf.iter().map(row).collect::<Vec<_>>(),
                "dkim_identifiers": d.dkim.iter().map(row).collect::<Vec<_>>(),
            },
            "spec": d.spec.as_str(),
            "reason": d.reason,
        },
        "action": v.action.as_str(),
        "explanation": v.explain(),
        "authentication_results": v.authentication_results().to_string(),
        "forged_authentication_results": v.forged_fields,
        "upstream_authentication_results": v.upstream.iter().map(|u| match &u.parsed {
            Ok(p) => json!({"field_index": u.field_index, "authserv_id": p.authserv_id,
                "results": p.results.iter().map(|r| json!({"method": r.method, "result": r.result})).collect::<Vec<_>>()}),
            Err(e) => json!({"field_index": u.field_index, "error": e.to_string()}),
        }).collect::<Vec<_>>(),
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
            let via = d
                .policy_source
                .map(|p| format!("{p:?}").to_ascii_lowercase())
                .unwrap_or_default();
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
    let action = match v.action {
        dmarc_proto::receiver::Action::Accept => "accept the message",
        dmarc_proto::receiver::Action::Quarantine => "quarantine the message (deliver to spam)",
        dmarc_proto::receiver::Action::Reject => "reject the message (550 5.7.1)",
        dmarc_proto::receiver::Action::TempFail => "defer the message (451 4.7.1, retry later)",
    };
    s.push_str(&format!("A receiver would {action}.\n"));
    if !v.forged_fields.is_empty() {
        s.push_str(&format!(
            "Authentication-Results fields claiming our authserv-id (to delete): header indexes {:?}\n",
            v.forged_fields
        ));
    }
    s.push_str(&v.authentication_results().to_header().replace("\r\n", "\n"));
    s
}
