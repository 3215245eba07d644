//! When can a domain enforce DMARC? The policy simulation over the stored reports and
//! the rollout advice.
//!
//! A report row fails DMARC when neither its policy-evaluated DKIM nor its SPF result is
//! `pass` ([`dmarc_store::sources::OutcomeRow::dmarc_pass`]); every count below is a sum
//! of such rows' message counts, split by the kind of the row's source
//! ([`crate::sources`]). At `pct=N` (RFC 7489 sampling) the expected share of failing
//! mail the policy applies to is N%; with `t=y` (RFC 9989 §4.7) receivers apply the policy
//! one level milder, so `quarantine` with `t=y` quarantines nothing at those receivers.
//!
//! The stages are those of the usual rollout: monitor with `p=none` for at least two
//! weeks, fix every legitimate source that fails, then `quarantine` at pct 10, 25, 50 and
//! 100 (or `t=y` first), then `reject`; subdomains (`sp`) before the organisational
//! domain, and `np=reject` at once (a name that does not exist sends no mail).

use std::collections::{BTreeMap, BTreeSet};

use dmarc_proto::Lookup;
use dmarc_proto::dmarc::{DomainName, Record as DmarcRecord, Spec};
use dmarc_proto::tag_list::{Strictness, TagList};
use dmarc_store::format_utc;
use serde::Serialize;

use crate::check::dmarc::DmarcReport;
use crate::sources::{Kind, SourcesReport};

/// Days of reports wanted before enforcing.
pub const MIN_WINDOW_DAYS: i64 = 14;
/// The receivers whose reports together count this share of the messages decide the
/// window length.
pub const MAIN_RECEIVERS_SHARE: f64 = 0.8;

/// The policy published now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Current {
    /// `p` (`None` when no record applies).
    pub p: Option<String>,
    /// `sp` as published (`None`: inherits `p`).
    pub sp: Option<String>,
    /// `np` as published (`None`: inherits `sp`, else `p`).
    pub np: Option<String>,
    /// `pct` as published (RFC 7489; `None`: 100).
    pub pct: Option<u8>,
    /// `t=y`.
    pub t: bool,
    /// The record.
    pub record: Option<String>,
    /// Where it is (`_dmarc.<policy domain>`).
    pub location: Option<String>,
    /// The stage it is: `none`, `quarantine` or `reject`, with `pct`/`t`.
    pub stage: String,
}

/// The window of reports read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Window {
    /// First report period start (UTC), `None` when there are no reports.
    pub first: Option<String>,
    /// Last report period end (UTC).
    pub last: Option<String>,
    /// Distinct UTC days with reports from the main receivers.
    pub days: i64,
    /// Messages reported.
    pub messages: i64,
    /// Report rows read.
    pub rows: i64,
    /// The receivers that together report at least 80% of the messages, most first.
    pub main_receivers: Vec<String>,
    /// True when `days` is at least [`MIN_WINDOW_DAYS`].
    pub long_enough: bool,
}

/// What one stage would have done to the window's mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// `quarantine` or `reject`.
    pub stage: &'static str,
    /// The share of failing mail it applies to (RFC 7489 `pct`; 0 with `t=y`).
    pub pct: u8,
    /// `t=y`.
    pub t: bool,
    /// Messages it would have quarantined or rejected (expected: failing × pct / 100,
    /// rounded, legitimate and unknown each).
    pub messages: i64,
    /// Of which from legitimate sources (own, service, forwarder).
    pub legitimate: i64,
    /// Of which from unknown sources.
    pub unknown: i64,
    /// Failing messages the policy governs (all of them at pct 100).
    pub failing: i64,
    /// Report rows those failing messages come from.
    pub rows: i64,
    /// Sources with failing messages.
    pub sources: usize,
    /// Of which legitimate.
    pub legitimate_sources: usize,
    /// Of the messages, those with a subdomain `From`.
    pub subdomain_messages: i64,
}

impl Stage {
    /// The stage in words: `quarantine t=y`, `quarantine pct=25`, `reject`.
    pub fn label(&self) -> String {
        if self.t {
            format!("{} t=y", self.stage)
        } else if self.pct < 100 {
            format!("{} pct={}", self.stage, self.pct)
        } else {
            self.stage.to_string()
        }
    }
}

/// A legitimate source that would lose mail at the next stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// The source's name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Its messages failing DMARC.
    pub failing: i64,
    /// Its messages.
    pub messages: i64,
    /// True when the owner can fix it (own servers, services); forwarders cannot be.
    pub fixable: bool,
    /// The fix.
    pub fix: String,
}

/// Mail with a subdomain `From`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subdomain {
    /// The `From` domain.
    pub domain: String,
    /// Messages.
    pub messages: i64,
    /// Failing DMARC from legitimate sources.
    pub legitimate_failing: i64,
    /// Failing DMARC from unknown sources.
    pub unknown_failing: i64,
}

/// The record to publish next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Next {
    /// `quarantine` or `reject`.
    pub stage: &'static str,
    /// `pct` of the record (100 when left out).
    pub pct: u8,
    /// `t=y`.
    pub t: bool,
    /// What it applies to: `p` (the domain and, inheriting, its subdomains) or `sp`
    /// (subdomains first).
    pub applies_to: &'static str,
    /// The TXT record to publish.
    pub record: String,
    /// Where.
    pub name: String,
    /// True when nothing blocks it.
    pub ready: bool,
    /// Why (not).
    pub why: String,
    /// Remarks.
    pub notes: Vec<String>,
}

/// The simulation and advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutReport {
    /// The domain.
    pub domain: String,
    /// The policy published now.
    pub current: Current,
    /// The reports read.
    pub window: Window,
    /// Messages from legitimate sources.
    pub legitimate_messages: i64,
    /// Of which passing DMARC.
    pub legitimate_aligned: i64,
    /// `legitimate_aligned / legitimate_messages` (0 with no legitimate mail).
    pub aligned_share: f64,
    /// Messages from unknown sources (of which failing in the simulation).
    pub unknown_messages: i64,
    /// Each next stage.
    pub simulation: Vec<Stage>,
    /// Legitimate sources failing DMARC, most failing first.
    pub blockers: Vec<Blocker>,
    /// Mail with subdomain `From` domains.
    pub subdomains: Vec<Subdomain>,
    /// The next record, `None` when `p=reject` is already published.
    pub next: Option<Next>,
}

/// The stages simulated, in the order of the usual rollout: (policy, pct, t).
const STAGES: [(&str, u8, bool); 6] = [
    ("quarantine", 10, false),
    ("quarantine", 25, false),
    ("quarantine", 50, false),
    ("quarantine", 100, false),
    ("quarantine", 0, true),
    ("reject", 100, false),
];

/// The path the advice follows (`t=y` is the alternative first step for RFC 9989
/// receivers, noted but not proposed).
const PATH: [(&str, u8, bool); 5] = [
    ("quarantine", 10, false),
    ("quarantine", 25, false),
    ("quarantine", 50, false),
    ("quarantine", 100, false),
    ("reject", 100, false),
];

/// How strict a policy is in effect: -1 for none, the share quarantined for quarantine
/// (0 with `t=y`), 101 for reject (100 with `t=y`, which RFC 9989 receivers apply as
/// quarantine).
fn strength(p: &str, pct: u8, t: bool) -> i32 {
    match (p, t) {
        ("quarantine", true) => 0,
        ("quarantine", false) => i32::from(pct.min(100)),
        ("reject", true) => 100,
        ("reject", false) if pct < 100 => 100,
        ("reject", false) => 101,
        _ => -1,
    }
}

/// The current policy, from the live DMARC check.
pub fn current(dmarc: &DmarcReport) -> Current {
    let mut c = Current {
        record: dmarc.record.clone(),
        location: dmarc.location.clone(),
        ..Current::default()
    };
    if let Some(rec) = &dmarc.record
        && let Ok(list) = TagList::parse_with(rec.as_bytes(), Strictness::SkipEmpty)
    {
        let get = |t: &str| {
            list.value(t)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(|v| v.trim().to_ascii_lowercase())
        };
        c.sp = get("sp");
        c.np = get("np");
        c.pct = get("pct")
            .and_then(|v| v.parse().ok())
            .filter(|p: &u8| *p <= 100);
        c.t = get("t").as_deref() == Some("y");
    }
    c.p = dmarc.policy.map(str::to_string);
    c.stage = match (&c.p, c.pct, c.t) {
        (None, _, _) => "no record".to_string(),
        (Some(p), pct, t) => {
            let mut s = p.clone();
            if let Some(n) = pct.filter(|n| *n < 100) {
                s.push_str(&format!(" pct={n}"));
            }
            if t {
                s.push_str(" t=y");
            }
            s
        }
    };
    c
}

fn expected(failing: i64, pct: u8) -> i64 {
    (failing * i64::from(pct) + 50) / 100
}

/// Simulates every next stage and advises on the next record.
pub fn advise(sources: &SourcesReport, dmarc: &DmarcReport) -> RolloutReport {
    let domain = sources.domain.clone();
    let current = current(dmarc);
    let facts = &sources.facts;
    let kind_of = |ip: &str| sources.kinds.get(ip).map_or(Kind::Unknown, |k| k.0);
    let name_of = |ip: &str| {
        sources
            .kinds
            .get(ip)
            .map_or_else(String::new, |k| k.1.clone())
    };

    // The window, from the receivers with most of the volume.
    let mut per_reporter: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &facts.reporters {
        *per_reporter.entry(r.org_name.as_str()).or_default() += r.messages;
    }
    let total: i64 = per_reporter.values().sum();
    let mut ranked: Vec<(&str, i64)> = per_reporter.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut main = Vec::new();
    let mut covered = 0;
    for (org, m) in &ranked {
        if total > 0 && covered as f64 >= MAIN_RECEIVERS_SHARE * total as f64 {
            break;
        }
        main.push(org.to_string());
        covered += m;
    }
    let days: BTreeSet<i64> = facts
        .reporters
        .iter()
        .filter(|r| main.iter().any(|m| m == &r.org_name))
        .map(|r| r.day)
        .collect();
    let window = Window {
        first: facts
            .reporters
            .iter()
            .map(|r| r.first)
            .min()
            .map(format_utc),
        last: facts.reporters.iter().map(|r| r.last).max().map(format_utc),
        days: days.len() as i64,
        messages: sources.messages,
        rows: sources.rows,
        main_receivers: main,
        long_enough: days.len() as i64 >= MIN_WINDOW_DAYS,
    };

    // Failing mail per kind, and subdomains.
    let (mut legit_fail, mut unknown_fail, mut fail_rows) = (0i64, 0i64, 0i64);
    let (mut legit_fail_sub, mut unknown_fail_sub) = (0i64, 0i64);
    let mut failing_sources: BTreeSet<String> = BTreeSet::new();
    let mut failing_legit_sources: BTreeSet<String> = BTreeSet::new();
    let mut subs: BTreeMap<String, Subdomain> = BTreeMap::new();
    let (mut legit_msgs, mut legit_pass, mut unknown_msgs) = (0i64, 0i64, 0i64);
    for o in &facts.outcomes {
        let kind = kind_of(&o.ip);
        let sub = o.header_from != domain;
        if kind.is_legitimate() {
            legit_msgs += o.messages;
            if o.dmarc_pass() {
                legit_pass += o.messages;
            }
        } else {
            unknown_msgs += o.messages;
        }
        if sub {
            let e = subs
                .entry(o.header_from.clone())
                .or_insert_with(|| Subdomain {
                    domain: o.header_from.clone(),
                    messages: 0,
                    legitimate_failing: 0,
                    unknown_failing: 0,
                });
            e.messages += o.messages;
            if !o.dmarc_pass() {
                if kind.is_legitimate() {
                    e.legitimate_failing += o.messages;
                } else {
                    e.unknown_failing += o.messages;
                }
            }
        }
        if o.dmarc_pass() {
            continue;
        }
        fail_rows += o.rows;
        failing_sources.insert(name_of(&o.ip));
        if kind.is_legitimate() {
            legit_fail += o.messages;
            failing_legit_sources.insert(name_of(&o.ip));
            if sub {
                legit_fail_sub += o.messages;
            }
        } else {
            unknown_fail += o.messages;
            if sub {
                unknown_fail_sub += o.messages;
            }
        }
    }
    let now = current
        .p
        .as_deref()
        .map_or(-1, |p| strength(p, current.pct.unwrap_or(100), current.t));
    let simulation: Vec<Stage> = STAGES
        .iter()
        .filter(|&&(p, pct, t)| strength(p, pct, t) > now)
        .map(|&(stage, pct, t)| {
            let legitimate = expected(legit_fail, pct);
            let unknown = expected(unknown_fail, pct);
            Stage {
                stage,
                pct,
                t,
                messages: legitimate + unknown,
                legitimate,
                unknown,
                failing: legit_fail + unknown_fail,
                rows: fail_rows,
                sources: failing_sources.len(),
                legitimate_sources: failing_legit_sources.len(),
                subdomain_messages: expected(legit_fail_sub, pct) + expected(unknown_fail_sub, pct),
            }
        })
        .collect();

    let mut blockers: Vec<Blocker> = sources
        .sources
        .iter()
        .filter(|s| s.kind.is_legitimate() && s.dmarc_fail > 0)
        .map(|s| Blocker {
            name: s.name.clone(),
            kind: s.kind,
            failing: s.dmarc_fail,
            messages: s.messages,
            fixable: s.kind != Kind::Forwarder,
            fix: s.fix.clone().unwrap_or_default(),
        })
        .collect();
    blockers.sort_by(|a, b| b.failing.cmp(&a.failing).then(a.name.cmp(&b.name)));

    let aligned_share = if legit_msgs > 0 {
        legit_pass as f64 / legit_msgs as f64
    } else {
        0.0
    };
    let subdomains: Vec<Subdomain> = subs.into_values().collect();
    let next = next_record(
        &domain,
        &current,
        now,
        &window,
        &blockers,
        &subdomains,
        legit_fail - legit_fail_sub,
    );
    RolloutReport {
        domain,
        current,
        window,
        legitimate_messages: legit_msgs,
        legitimate_aligned: legit_pass,
        aligned_share,
        unknown_messages: unknown_msgs,
        simulation,
        blockers,
        subdomains,
        next,
    }
}

#[allow(clippy::too_many_arguments)]
fn next_record(
    domain: &str,
    current: &Current,
    now: i32,
    window: &Window,
    blockers: &[Blocker],
    subdomains: &[Subdomain],
    org_legit_failing: i64,
) -> Option<Next> {
    let &(stage, pct, t) = PATH
        .iter()
        .find(|&&(p, pct, t)| strength(p, pct, t) > now)?;
    let target = strength(stage, pct, t);
    let sub_legit_failing: i64 = subdomains.iter().map(|s| s.legitimate_failing).sum();
    let fixable: Vec<&Blocker> = blockers.iter().filter(|b| b.fixable).collect();
    // Subdomains first: when only the organisational domain's own mail is blocked, raise sp.
    let sp_first = org_legit_failing > 0
        && sub_legit_failing == 0
        && !subdomains.is_empty()
        && current
            .sp
            .as_deref()
            .is_none_or(|sp| strength(sp, 100, false) < target);
    let mut notes = Vec::new();
    let mut tags: Vec<(String, String)> = Vec::new();
    if let Some(rec) = &current.record
        && let Ok(list) = TagList::parse_with(rec.as_bytes(), Strictness::SkipEmpty)
    {
        for tag in list.tags() {
            let value = tag.value_str().unwrap_or("").trim().to_string();
            tags.push((tag.name.to_ascii_lowercase(), value));
        }
    }
    if !tags.iter().any(|(n, _)| n == "v") {
        tags.insert(0, ("v".into(), "DMARC1".into()));
    }
    let mut set = |name: &str, value: Option<String>| {
        tags.retain(|(n, _)| n != name);
        if let Some(v) = value {
            // After v and p, in the usual order.
            let at = tags
                .iter()
                .position(|(n, _)| !matches!(n.as_str(), "v" | "p" | "sp" | "np" | "pct" | "t"))
                .unwrap_or(tags.len());
            tags.insert(at, (name.to_string(), v));
        }
    };
    let applies_to;
    if sp_first {
        applies_to = "sp";
        set(
            "p",
            Some(current.p.clone().unwrap_or_else(|| "none".into())),
        );
        set("sp", Some(stage.to_string()));
        notes.push(format!(
            "subdomains first: their mail has no failing legitimate source, {domain}'s own has; sp={stage} applies the stage to subdomains only"
        ));
    } else {
        applies_to = "p";
        set("p", Some(stage.to_string()));
        // An sp milder than the new p would hold subdomains back: let them inherit.
        if let Some(sp) = &current.sp
            && strength(sp, 100, false) < target
        {
            set("sp", None);
            notes.push(format!("sp={sp} removed: subdomains inherit p={stage}"));
        } else if let Some(sp) = &current.sp {
            set("sp", Some(sp.clone()));
        }
    }
    if current.np.is_none() {
        set("np", Some("reject".into()));
        notes.push("np=reject: names that do not exist send no legitimate mail, so they can be rejected at once (RFC 9989; RFC 7489 receivers ignore np)".into());
    } else {
        set("np", current.np.clone());
    }
    set("pct", (pct < 100 && !t).then(|| pct.to_string()));
    set("t", t.then(|| "y".to_string()));
    if pct < 100 {
        notes.push(format!("pct={pct} is sampling for RFC 7489 receivers; RFC 9989 receivers ignore pct and apply the policy to all failing mail (add t=y to have them apply none while you test)"));
    }
    let v = tags
        .iter()
        .position(|(n, _)| n == "v")
        .map(|at| tags.remove(at));
    let mut record = v.map_or("v=DMARC1".to_string(), |(_, v)| format!("v={v}"));
    for (n, val) in &tags {
        record.push_str(&format!("; {n}={val}"));
    }
    // Valid by construction: the record parser must accept it under both specifications.
    for spec in [Spec::Rfc9989, Spec::Rfc7489] {
        if let Err(e) = DmarcRecord::parse_for(record.as_bytes(), spec) {
            notes.push(format!(
                "the record built is not valid ({e}); write it by hand"
            ));
        }
    }
    let ready = window.long_enough && fixable.is_empty();
    let why = match (window.long_enough, fixable.len()) {
        (true, 0) => {
            let fwd = blockers.len();
            if fwd > 0 {
                format!(
                    "no fixable legitimate source fails; {fwd} forwarder(s) lose mail whose DKIM they break"
                )
            } else {
                "every legitimate source passes DMARC".to_string()
            }
        }
        (false, 0) => format!(
            "only {} day(s) of reports from the main receivers; wait for at least {MIN_WINDOW_DAYS}",
            window.days
        ),
        (long, n) => format!(
            "{n} legitimate source(s) fail DMARC: fix them first{}",
            if long {
                String::new()
            } else {
                format!(
                    ", and collect at least {MIN_WINDOW_DAYS} days of reports (now {})",
                    window.days
                )
            }
        ),
    };
    let name = current.location.clone().unwrap_or_else(|| {
        DomainName::new(domain).map_or(format!("_dmarc.{domain}"), |d| d.dmarc_name())
    });
    Some(Next {
        stage,
        pct,
        t,
        applies_to,
        record,
        name,
        ready,
        why,
        notes,
    })
}

/// Runs the live DMARC check and advises.
pub async fn rollout<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    sources: &SourcesReport,
) -> RolloutReport {
    let mut findings = Vec::new();
    let dmarc = crate::check::dmarc::check(lookup, domain, &mut findings).await;
    advise(sources, &dmarc)
}
