//! `[alerts.dns_records]`: a DMARC, SPF or DKIM record changing or breaking.
//!
//! For each domain (those listed, else the policy domains of the reports of the window and
//! baseline, most messages first) the domain owner's check (`dmarc check`'s DMARC, SPF and
//! DKIM pieces, crate `dmarc-owner`) reads the DMARC record, the SPF record with its whole
//! evaluation tree, and the DKIM keys of the selectors the reports show signing as the
//! domain. What it answered is compared with what the store kept from the last evaluation
//! (migration 9, `dns_records`):
//!
//! - `dns_change`: the text differs (old and new text in the detail, and whether the DMARC
//!   policy got weaker). A change is an event: its subject carries the evaluation time, so
//!   it holds only in the evaluation that saw it, is delivered once, and clears at the next
//!   evaluation without a second message; a later change is a new condition.
//! - `dns_broken`: the check's own findings at error severity (no record, syntax,
//!   permerror, too many lookups, a missing or unusable key ...), a record that was
//!   published and is gone, or a DKIM key that was live and is now revoked. It holds while
//!   the record stays broken and clears when it is fixed.
//!
//! A temporary DNS failure concludes nothing: the record's last answer stands (a break
//! stays active, nothing changes), and only `lookup_failures` failures in a row make it a
//! break of its own.

use std::collections::BTreeMap;
use std::time::Duration;

use dmarc_owner::check::{SelectorSource, dkim, dmarc, spf};
use dmarc_owner::{Code, Finding, Severity};
use dmarc_proto::Lookup;
use dmarc_proto::dmarc::{DomainName, Policy, Record};
use dmarc_proto::name::{self, NameRules};
use dmarc_store::Store;
use dmarc_store::alerts::Condition;
use dmarc_store::dns_records::DnsRecordSeen;
use serde::{Deserialize, Serialize};

use crate::WebError;

/// Time allowed for one domain's questions.
const DOMAIN_BUDGET: Duration = Duration::from_secs(30);
/// Domains checked at once.
const CONCURRENT_DOMAINS: usize = 8;
/// Record text shown in an alert, in characters.
const SHOWN: usize = 1000;

/// `[alerts.dns_records]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRecords {
    /// The domains to watch; default the policy domains of the reports of the window and
    /// baseline, most messages first.
    #[serde(default)]
    pub domains: Vec<String>,
    /// DKIM selectors to watch for every domain, besides those the reports show.
    #[serde(default)]
    pub selectors: Vec<String>,
    /// The most domains per evaluation (default 50).
    #[serde(default = "default_max_domains")]
    pub max_domains: usize,
    /// The most DKIM selectors per domain (default 10), those signing most mail first.
    #[serde(default = "default_max_selectors")]
    pub max_selectors: usize,
    /// Temporary lookup failures in a row that make a break of their own (default 3; 0:
    /// never).
    #[serde(default = "default_lookup_failures")]
    pub lookup_failures: i64,
}

fn default_max_domains() -> usize {
    50
}
fn default_max_selectors() -> usize {
    10
}
fn default_lookup_failures() -> i64 {
    3
}

impl DnsRecords {
    /// Refuses names that are not domain names or selectors.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for d in &self.domains {
            DomainName::new(d).map_err(|e| format!("alerts.dns_records.domains: {d:?}: {e}"))?;
        }
        for s in &self.selectors {
            if !is_selector(s) {
                return Err(format!(
                    "alerts.dns_records.selectors: {s:?} is not a DKIM selector"
                ));
            }
        }
        Ok(())
    }
}

/// A selector as DKIM takes it (`dmarc_proto::name::check` with DKIM's rules), short
/// enough that `SELECTOR._domainkey.DOMAIN` still fits in DNS.
fn is_selector(s: &str) -> bool {
    s.len() <= 200 && name::check(s, NameRules::DKIM).is_ok()
}

/// One domain to look at, with its DKIM selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The domain.
    pub domain: DomainName,
    /// The selectors.
    pub selectors: Vec<String>,
}

/// The domains and selectors to look at, from the configuration and the reports whose
/// period's middle is in `[since, until)`; capped by `max_domains` and `max_selectors`.
pub fn targets(
    cfg: &DnsRecords,
    store: &mut Store,
    since: i64,
    until: i64,
) -> Result<Vec<Target>, WebError> {
    let names = if cfg.domains.is_empty() {
        // A hostile report's policy domain may be anything: only domain names are asked.
        store.report_domains(since, until, cfg.max_domains)?
    } else {
        cfg.domains.clone()
    };
    let mut out: Vec<Target> = Vec::new();
    for name in names {
        let Ok(domain) = DomainName::new(name.trim_end_matches('.')) else {
            continue;
        };
        if out.len() >= cfg.max_domains || out.iter().any(|t| t.domain == domain) {
            continue;
        }
        let mut selectors: Vec<String> = Vec::new();
        let reported = store.dkim_selectors_between(domain.as_str(), since, until)?;
        let ours = reported
            .into_iter()
            .filter(|(signer, _, _)| signer == domain.as_str())
            .map(|(_, s, _)| s);
        for s in cfg
            .selectors
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .chain(ours)
        {
            if selectors.len() < cfg.max_selectors && is_selector(&s) && !selectors.contains(&s) {
                selectors.push(s);
            }
        }
        out.push(Target { domain, selectors });
    }
    Ok(out)
}

/// What one question about one record answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// The domain.
    pub domain: String,
    /// `dmarc`, `spf` or `dkim`.
    pub kind: &'static str,
    /// The DNS name (`_dmarc.example.com`, `example.com`, `s1._domainkey.example.com`).
    pub name: String,
    /// The answer.
    pub answer: Answer,
}

/// The answer about one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Answer {
    /// DNS answered: the record (none when nothing is published) and the check's
    /// error-severity findings, `code: message`.
    Answered {
        /// The record as published.
        record: Option<String>,
        /// Why it is broken.
        problems: Vec<String>,
    },
    /// A temporary DNS failure somewhere in the record's check: nothing is concluded.
    Temporary {
        /// Why.
        reason: String,
    },
}

/// Asks about every target's DMARC, SPF and DKIM records (a few domains at once, each
/// within its time budget; one over budget counts as a temporary failure).
pub async fn observe<L: Lookup>(lookup: &L, targets: &[Target]) -> Vec<Observed> {
    let mut out = Vec::new();
    for chunk in targets.chunks(CONCURRENT_DOMAINS) {
        let answers =
            futures_util::future::join_all(chunk.iter().map(|t| observe_within(lookup, t))).await;
        out.extend(answers.into_iter().flatten());
    }
    out
}

/// One domain's records within [`DOMAIN_BUDGET`]; all temporary failures past it.
async fn observe_within<L: Lookup>(lookup: &L, t: &Target) -> Vec<Observed> {
    match tokio::time::timeout(DOMAIN_BUDGET, observe_domain(lookup, t)).await {
        Ok(o) => o,
        Err(_) => names(t)
            .into_iter()
            .map(|(kind, name)| Observed {
                domain: t.domain.to_string(),
                kind,
                name,
                answer: Answer::Temporary {
                    reason: format!(
                        "the questions took longer than {} s",
                        DOMAIN_BUDGET.as_secs()
                    ),
                },
            })
            .collect(),
    }
}

/// The kinds and names looked at for `t`.
fn names(t: &Target) -> Vec<(&'static str, String)> {
    let d = &t.domain;
    let mut out = vec![("dmarc", d.dmarc_name()), ("spf", d.to_string())];
    out.extend(
        t.selectors
            .iter()
            .map(|s| ("dkim", format!("{s}._domainkey.{d}"))),
    );
    out
}

/// One domain's records, through the owner's check.
async fn observe_domain<L: Lookup>(lookup: &L, t: &Target) -> Vec<Observed> {
    let d = &t.domain;
    let selectors: Vec<(String, SelectorSource)> = t
        .selectors
        .iter()
        .map(|s| (s.clone(), SelectorSource::Reports))
        .collect();
    let (mut f_dmarc, mut f_spf, mut f_dkim) = (Vec::new(), Vec::new(), Vec::new());
    let (dmarc_found, spf_found, keys) = tokio::join!(
        dmarc::check(lookup, d, &mut f_dmarc),
        spf::check(lookup, d, &mut f_spf),
        dkim::check(lookup, d, &selectors, &mut f_dkim),
    );
    let observed = |kind: &'static str,
                    name: String,
                    record: Option<String>,
                    fs: Vec<&Finding>,
                    temp: Code| {
        let answer = match fs.iter().find(|f| f.code == temp) {
            Some(f) => Answer::Temporary {
                reason: f.message.clone(),
            },
            None => Answer::Answered {
                record,
                problems: fs
                    .iter()
                    .filter(|f| f.severity == Severity::Error)
                    .map(|f| format!("{}: {}", f.code, f.message))
                    .collect(),
            },
        };
        Observed {
            domain: d.to_string(),
            kind,
            name,
            answer,
        }
    };
    let mut out = vec![
        observed(
            "dmarc",
            d.dmarc_name(),
            dmarc_found.record,
            f_dmarc.iter().collect(),
            Code::DmarcDnsError,
        ),
        observed(
            "spf",
            d.to_string(),
            spf_found.record,
            f_spf.iter().collect(),
            Code::SpfDnsError,
        ),
    ];
    for k in keys {
        let fs = f_dkim
            .iter()
            .filter(|f| f.name.as_deref() == Some(k.name.as_str()))
            .collect();
        out.push(observed("dkim", k.name, k.record, fs, Code::DkimDnsError));
    }
    out
}

/// Compares what was observed with what the store kept: the conditions that hold, and the
/// rows to keep for next time.
pub fn evaluate(
    cfg: &DnsRecords,
    store: &mut Store,
    observed: &[Observed],
    now: i64,
) -> Result<(Vec<Condition>, Vec<DnsRecordSeen>), WebError> {
    let mut kept: BTreeMap<String, Vec<DnsRecordSeen>> = BTreeMap::new();
    let mut conditions = Vec::new();
    let mut rows = Vec::new();
    for o in observed {
        if !kept.contains_key(&o.domain) {
            let seen = store.dns_records_seen(&o.domain)?;
            kept.insert(o.domain.clone(), seen);
        }
        let old = kept
            .get(&o.domain)
            .and_then(|v| v.iter().find(|r| r.kind == o.kind && r.name == o.name));
        let (row, mut c) = judge(cfg, o, old, now);
        rows.push(row);
        conditions.append(&mut c);
    }
    Ok((conditions, rows))
}

/// `DMARC`, `SPF` or `DKIM`.
fn title(kind: &str) -> &'static str {
    match kind {
        "dmarc" => "DMARC",
        "spf" => "SPF",
        _ => "DKIM",
    }
}

/// A problem the check cannot see from one answer: a record that was there and is gone.
const REMOVED: &str = "record_removed";
/// The same for a DKIM key that was live and is now revoked.
const REVOKED: &str = "key_revoked";

/// One record: the row to keep and the conditions it raises.
fn judge(
    cfg: &DnsRecords,
    o: &Observed,
    old: Option<&DnsRecordSeen>,
    now: i64,
) -> (DnsRecordSeen, Vec<Condition>) {
    let what = format!("The {} record of {} at {}", title(o.kind), o.domain, o.name);
    let broken_subject = format!("{} {} {}", o.domain, o.kind, o.name);
    let mut conditions = Vec::new();
    let (record, problems) = match &o.answer {
        Answer::Temporary { reason } => {
            let failures = old.map_or(0, |r| r.failures) + 1;
            let since = old.and_then(|r| r.failed_since).unwrap_or(now);
            let row = match old {
                Some(r) => DnsRecordSeen {
                    failures,
                    failed_since: Some(since),
                    ..r.clone()
                },
                None => DnsRecordSeen {
                    domain: o.domain.clone(),
                    kind: o.kind.into(),
                    name: o.name.clone(),
                    record: None,
                    status: "unknown".into(),
                    problems: String::new(),
                    first_seen: now,
                    last_seen: now,
                    previous: None,
                    changed_at: None,
                    failures,
                    failed_since: Some(since),
                },
            };
            let mut lines: Vec<String> = Vec::new();
            if row.status == "broken" {
                lines.extend(row.problems.lines().map(str::to_string));
                lines.push(format!(
                    "(this evaluation's lookup failed temporarily, {}: the problems are those of the last answer, at {})",
                    clean(reason),
                    dmarc_store::format_utc(row.last_seen)
                ));
            }
            if cfg.lookup_failures > 0 && failures >= cfg.lookup_failures {
                lines.push(format!(
                    "lookup_failed: the lookup has failed temporarily at {failures} evaluations in a row since {} ({}); receivers get temperror, retry, and in the end treat the record as absent: check the name servers",
                    dmarc_store::format_utc(since),
                    clean(reason)
                ));
            }
            if !lines.is_empty() {
                conditions.push(Condition {
                    rule: "dns_broken".into(),
                    subject: broken_subject,
                    detail: format!("{what} is broken.\n{}", lines.join("\n")),
                });
            }
            return (row, conditions);
        }
        Answer::Answered { record, problems } => (record, problems),
    };
    let known = old.filter(|r| r.status != "unknown");
    let had = |code: &str| {
        known.is_some_and(|r| {
            r.problems
                .lines()
                .any(|l| l.starts_with(&format!("{code}:")))
        })
    };
    let mut problems = problems.clone();
    if problems.is_empty()
        && record.is_none()
        && let Some(r) = known
        && (r.record.is_some() || had(REMOVED))
    {
        // Once removed, the text it had is the previous one.
        let was = r.record.as_deref().or(r.previous.as_deref());
        problems.push(format!(
            "{REMOVED}: {} no longer publishes one{}",
            o.name,
            was.map_or_else(String::new, |t| format!("; it was \"{}\"", shown(t)))
        ));
    }
    if o.kind == "dkim"
        && problems.is_empty()
        && record.as_deref().is_some_and(revoked)
        && let Some(r) = known
        && (r.record.as_deref().is_some_and(|t| !revoked(t)) || had(REVOKED))
    {
        problems.push(format!(
            "{REVOKED}: the key at {} was live and is now revoked (empty p=), while reports show mail signed with it: those signatures fail",
            o.name
        ));
    }
    let changed = known.is_some_and(|r| r.record != *record);
    let row = DnsRecordSeen {
        domain: o.domain.clone(),
        kind: o.kind.into(),
        name: o.name.clone(),
        record: record.clone(),
        status: if problems.is_empty() { "ok" } else { "broken" }.into(),
        problems: problems.join("\n"),
        first_seen: match known {
            Some(r) if !changed => r.first_seen,
            _ => now,
        },
        last_seen: now,
        previous: if changed {
            known.and_then(|r| r.record.clone())
        } else {
            known.and_then(|r| r.previous.clone())
        },
        changed_at: if changed {
            Some(now)
        } else {
            known.and_then(|r| r.changed_at)
        },
        failures: 0,
        failed_since: None,
    };
    if let Some(r) = known
        && changed
    {
        let text = |t: &Option<String>| {
            t.as_deref().map_or_else(
                || "(none published)".to_string(),
                |t| format!("\"{}\"", shown(t)),
            )
        };
        let mut detail = format!(
            "{what} changed.\nWas: {} (seen since {})\nNow: {}",
            text(&r.record),
            dmarc_store::format_utc(r.first_seen),
            text(record)
        );
        if o.kind == "dmarc"
            && let (Some(a), Some(b)) = (&r.record, record)
        {
            for w in weakened(a, b) {
                detail.push('\n');
                detail.push_str(&w);
            }
        }
        detail.push_str(
            "\nIf you did not make this change, someone who can edit your DNS did: check who.",
        );
        conditions.push(Condition {
            rule: "dns_change".into(),
            subject: format!(
                "{} {} {} {}",
                o.domain,
                o.kind,
                o.name,
                dmarc_store::format_utc(now)
            ),
            detail,
        });
    }
    if !problems.is_empty() {
        let now_text = record.as_deref().map_or_else(
            || "(none published)".to_string(),
            |t| format!("\"{}\"", shown(t)),
        );
        conditions.push(Condition {
            rule: "dns_broken".into(),
            subject: broken_subject,
            detail: format!(
                "{what} is broken.\n{}\nNow: {now_text}",
                problems
                    .iter()
                    .map(|p| clean(p))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        });
    }
    (row, conditions)
}

/// True when a DKIM key record parses and is revoked (empty `p=`).
fn revoked(text: &str) -> bool {
    dmarc_proto::dkim::parse_key_record(text.as_bytes()).is_ok_and(|k| k.is_revoked())
}

/// How the policy of DMARC record `new` is weaker than that of `old`, for a person.
fn weakened(old: &str, new: &str) -> Vec<String> {
    let (Ok(a), Ok(b)) = (Record::parse(old.as_bytes()), Record::parse(new.as_bytes())) else {
        return Vec::new();
    };
    let (a, b) = (&a.record, &b.record);
    let rank = |p: Policy| match p {
        Policy::None => 0,
        Policy::Quarantine => 1,
        Policy::Reject => 2,
    };
    let mut out = Vec::new();
    let pairs = [
        ("p", a.p, b.p),
        ("sp", a.sp.unwrap_or(a.p), b.sp.unwrap_or(b.p)),
    ];
    for (tag, x, y) in pairs {
        if rank(y) < rank(x) {
            out.push(format!(
                "The policy is weaker: {tag}={} became {tag}={}.",
                x.as_str(),
                y.as_str()
            ));
        }
    }
    let (pa, pb) = (a.pct.unwrap_or(100), b.pct.unwrap_or(100));
    if pb < pa {
        out.push(format!(
            "The policy is weaker: it applies to {pb}% of failing mail, not {pa}%."
        ));
    }
    if b.testing && !a.testing {
        out.push("The policy is weaker: t=y (testing) applies it one step milder.".into());
    }
    out
}

/// Record text for an alert: control characters escaped, at most [`SHOWN`] characters.
fn shown(text: &str) -> String {
    let mut s = clean(text);
    if s.chars().count() > SHOWN {
        s = s.chars().take(SHOWN).collect();
        s.push('…');
    }
    s
}

/// Control characters escaped (DNS text comes from strangers).
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DnsRecords {
        toml::from_str("").expect("defaults")
    }

    fn answered(
        kind: &'static str,
        name: &str,
        record: Option<&str>,
        problems: &[&str],
    ) -> Observed {
        Observed {
            domain: "example.com".into(),
            kind,
            name: name.into(),
            answer: Answer::Answered {
                record: record.map(str::to_string),
                problems: problems.iter().map(|p| p.to_string()).collect(),
            },
        }
    }

    fn temporary(kind: &'static str, name: &str) -> Observed {
        Observed {
            domain: "example.com".into(),
            kind,
            name: name.into(),
            answer: Answer::Temporary {
                reason: "SERVFAIL".into(),
            },
        }
    }

    /// Judges `steps` in order, each at the next hour, keeping the row: the rules and
    /// subjects (without the time) of what held at each step.
    fn run(cfg: &DnsRecords, steps: &[Observed]) -> Vec<Vec<String>> {
        let mut row: Option<DnsRecordSeen> = None;
        let mut out = Vec::new();
        for (i, o) in steps.iter().enumerate() {
            let (r, c) = judge(cfg, o, row.as_ref(), 3600 * (i as i64 + 1));
            row = Some(r);
            out.push(
                c.iter()
                    .map(|c| format!("{} {}", c.rule, c.subject.split(' ').nth(1).unwrap_or("")))
                    .collect(),
            );
        }
        out
    }

    const KEY: &str = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    #[test]
    fn a_change_holds_once_and_a_break_until_fixed() {
        let n = "_dmarc.example.com";
        let steps = [
            answered("dmarc", n, Some("v=DMARC1; p=reject"), &[]),
            answered("dmarc", n, Some("v=DMARC1; p=reject"), &[]),
            answered("dmarc", n, Some("v=DMARC1; p=none"), &[]),
            answered("dmarc", n, Some("v=DMARC1; p=none"), &[]),
            answered("dmarc", n, None, &["dmarc_missing: no record"]),
            answered("dmarc", n, None, &["dmarc_missing: no record"]),
            answered("dmarc", n, Some("v=DMARC1; p=none"), &[]),
        ];
        let held = run(&cfg(), &steps);
        let expect: Vec<Vec<&str>> = vec![
            vec![],
            vec![],
            vec!["dns_change dmarc"],
            vec![],
            vec!["dns_change dmarc", "dns_broken dmarc"],
            vec!["dns_broken dmarc"],
            vec!["dns_change dmarc"],
        ];
        assert_eq!(held, expect);
    }

    #[test]
    fn the_change_detail_has_both_texts_and_says_the_policy_got_weaker() {
        let n = "_dmarc.example.com";
        let (old, _) = judge(
            &cfg(),
            &answered("dmarc", n, Some("v=DMARC1; p=reject; pct=100"), &[]),
            None,
            0,
        );
        let (row, c) = judge(
            &cfg(),
            &answered("dmarc", n, Some("v=DMARC1; p=none; pct=50; t=y"), &[]),
            Some(&old),
            86_400,
        );
        assert_eq!(c.len(), 1);
        let d = &c[0].detail;
        assert!(
            d.contains("Was: \"v=DMARC1; p=reject; pct=100\" (seen since 1970-01-01 00:00:00)"),
            "{d}"
        );
        assert!(d.contains("Now: \"v=DMARC1; p=none; pct=50; t=y\""), "{d}");
        assert!(d.contains("p=reject became p=none"), "{d}");
        assert!(d.contains("sp=reject became sp=none"), "{d}");
        assert!(d.contains("50% of failing mail, not 100%"), "{d}");
        assert!(d.contains("t=y (testing)"), "{d}");
        // A stronger policy is a change, and nothing more.
        let (_, stronger) = judge(
            &cfg(),
            &answered("dmarc", n, Some("v=DMARC1; p=reject"), &[]),
            Some(&row),
            2 * 86_400,
        );
        assert!(
            !stronger[0].detail.contains("weaker"),
            "{}",
            stronger[0].detail
        );
        // Text from DNS is shown with its control characters escaped, and bounded.
        assert_eq!(clean("a\u{7}b\r\n"), "a\\u{7}b\\u{d}\\u{a}");
        assert_eq!(shown(&"x".repeat(5000)).chars().count(), SHOWN + 1);
        assert_eq!(
            c[0].subject,
            "example.com dmarc _dmarc.example.com 1970-01-02 00:00:00"
        );
        assert_eq!(row.previous.as_deref(), Some("v=DMARC1; p=reject; pct=100"));
        assert_eq!(row.changed_at, Some(86_400));
        assert_eq!(row.first_seen, 86_400);
    }

    #[test]
    fn a_temporary_failure_concludes_nothing_until_it_persists() {
        let n = "example.com";
        let steps = [
            answered("spf", n, Some("v=spf1 -all"), &[]),
            temporary("spf", n),
            temporary("spf", n),
            answered("spf", n, Some("v=spf1 -all"), &[]),
            temporary("spf", n),
            temporary("spf", n),
            temporary("spf", n),
            answered("spf", n, Some("v=spf1 -all"), &[]),
        ];
        let held = run(&cfg(), &steps);
        let expect: Vec<Vec<&str>> = vec![
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec!["dns_broken spf"],
            vec![],
        ];
        assert_eq!(held, expect);
        // A break stays active through a failed lookup; no change is seen across it.
        let steps = [
            answered(
                "spf",
                n,
                Some("v=spf1 include:gone.example -all"),
                &["spf_include_missing: x"],
            ),
            temporary("spf", n),
            answered(
                "spf",
                n,
                Some("v=spf1 include:gone.example -all"),
                &["spf_include_missing: x"],
            ),
            answered("spf", n, Some("v=spf1 -all"), &[]),
        ];
        let never = DnsRecords {
            lookup_failures: 0,
            ..cfg()
        };
        let held = run(&never, &steps);
        let expect: Vec<Vec<&str>> = vec![
            vec!["dns_broken spf"],
            vec!["dns_broken spf"],
            vec!["dns_broken spf"],
            vec!["dns_change spf"],
        ];
        assert_eq!(held, expect);
        // The first answer failing is no change from "none" when DNS answers later.
        let held = run(
            &cfg(),
            &[
                temporary("spf", n),
                answered("spf", n, Some("v=spf1 -all"), &[]),
            ],
        );
        assert_eq!(held, vec![Vec::<String>::new(), vec![]]);
    }

    #[test]
    fn a_removed_spf_record_and_a_revoked_live_key_are_breaks_until_fixed() {
        let n = "example.com";
        let held = run(
            &cfg(),
            &[
                answered("spf", n, Some("v=spf1 -all"), &[]),
                answered("spf", n, None, &[]),
                answered("spf", n, None, &[]),
                answered("spf", n, Some("v=spf1 -all"), &[]),
            ],
        );
        let expect: Vec<Vec<&str>> = vec![
            vec![],
            vec!["dns_change spf", "dns_broken spf"],
            vec!["dns_broken spf"],
            vec!["dns_change spf"],
        ];
        assert_eq!(held, expect);
        // A domain that never published SPF has nothing removed.
        let held = run(
            &cfg(),
            &[answered("spf", n, None, &[]), answered("spf", n, None, &[])],
        );
        assert_eq!(held, vec![Vec::<String>::new(), vec![]]);

        let k = "s1._domainkey.example.com";
        let gone = "v=DKIM1; k=ed25519; p=";
        let held = run(
            &cfg(),
            &[
                answered("dkim", k, Some(KEY), &[]),
                answered("dkim", k, Some(gone), &[]),
                answered("dkim", k, Some(gone), &[]),
                answered("dkim", k, Some(KEY), &[]),
            ],
        );
        let expect: Vec<Vec<&str>> = vec![
            vec![],
            vec!["dns_change dkim", "dns_broken dkim"],
            vec!["dns_broken dkim"],
            vec!["dns_change dkim"],
        ];
        assert_eq!(held, expect);
        // A selector revoked since it was first seen (retired) is no break.
        let held = run(
            &cfg(),
            &[
                answered("dkim", k, Some(gone), &[]),
                answered("dkim", k, Some(gone), &[]),
            ],
        );
        assert_eq!(held, vec![Vec::<String>::new(), vec![]]);
    }

    #[test]
    fn selectors_and_domains_are_validated() {
        assert!(is_selector("s1") && is_selector("google._x-1.k2"));
        assert!(!is_selector("") && !is_selector("a..b") && !is_selector("<script>"));
        let bad: DnsRecords = toml::from_str("domains = [\"not a domain\"]").expect("toml");
        assert!(bad.validate().is_err());
        let bad: DnsRecords = toml::from_str("selectors = [\"a b\"]").expect("toml");
        assert!(bad.validate().is_err());
        let good: DnsRecords =
            toml::from_str("domains = [\"example.com\"]\nselectors = [\"s1\"]").expect("toml");
        assert!(good.validate().is_ok());
    }
}
