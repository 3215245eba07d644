//! `dmarc rollout`: what each next DMARC policy stage would have done to the stored
//! reports' mail, and the record to publish next.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use dmarc_owner::rollout::{RolloutReport, rollout};

use super::sources::WindowArgs;
use super::summary::clean;

/// Arguments of `dmarc rollout`.
#[derive(Debug, clap::Args)]
pub struct RolloutArgs {
    #[command(flatten)]
    window: WindowArgs,
}

/// Runs `dmarc rollout`.
pub fn run(args: RolloutArgs) -> anyhow::Result<ExitCode> {
    let report = args
        .window
        .load(async |lookup, domain, sources| rollout(lookup, domain, &sources).await)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.window.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_human(&mut out, &report)?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn write_human(out: &mut dyn Write, r: &RolloutReport) -> std::io::Result<()> {
    let c = &r.current;
    match (&c.location, &c.record) {
        (Some(l), Some(rec)) => writeln!(
            out,
            "{}: now {} ({l}: \"{}\")",
            r.domain,
            c.stage,
            clean(rec)
        )?,
        _ => writeln!(out, "{}: no DMARC record applies", r.domain)?,
    }
    let w = &r.window;
    writeln!(
        out,
        "Reports: {} message(s) in {} row(s), {} to {}; {} day(s) from the main receivers ({}){}",
        w.messages,
        w.rows,
        w.first.as_deref().unwrap_or("-"),
        w.last.as_deref().unwrap_or("-"),
        w.days,
        clean(&w.main_receivers.join(", ")),
        if w.long_enough { "" } else { ": fewer than 14" }
    )?;
    writeln!(
        out,
        "Legitimate mail aligned: {} of {} ({:.1}%); unknown sources: {} message(s)",
        r.legitimate_aligned,
        r.legitimate_messages,
        r.aligned_share * 100.0,
        r.unknown_messages
    )?;
    if !r.simulation.is_empty() {
        writeln!(
            out,
            "\nSimulation (messages the policy would have applied to)"
        )?;
        writeln!(
            out,
            "  {:<22} {:>10} {:>11} {:>10} {:>8}",
            "stage", "messages", "legitimate", "unknown", "sources"
        )?;
        for s in &r.simulation {
            let label = s.label();
            writeln!(
                out,
                "  {:<22} {:>10} {:>11} {:>10} {:>8}",
                label, s.messages, s.legitimate, s.unknown, s.sources
            )?;
        }
    }
    if !r.blockers.is_empty() {
        writeln!(out, "\nBlockers (legitimate sources failing DMARC)")?;
        for b in &r.blockers {
            writeln!(
                out,
                "  {} [{}]: {} of {} message(s) fail; fix: {}",
                clean(&b.name),
                b.kind.as_str(),
                b.failing,
                b.messages,
                clean(&b.fix)
            )?;
        }
    }
    for s in &r.subdomains {
        writeln!(
            out,
            "  subdomain {}: {} message(s), failing {} legitimate, {} unknown",
            clean(&s.domain),
            s.messages,
            s.legitimate_failing,
            s.unknown_failing
        )?;
    }
    match &r.next {
        Some(n) => {
            writeln!(
                out,
                "\nNext: {} ({})",
                if n.ready { "ready" } else { "not yet" },
                n.why
            )?;
            writeln!(out, "  {} TXT \"{}\"", n.name, n.record)?;
            for note in &n.notes {
                writeln!(out, "  note: {note}")?;
            }
        }
        None => writeln!(out, "\np=reject is published: nothing further to roll out.")?,
    }
    Ok(())
}
