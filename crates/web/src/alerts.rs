//! Alerts without a SIEM: rules from the `[alerts]` section of the configuration,
//! evaluated over the store (`dmarc alerts check`, and `dmarc serve` on a schedule),
//! delivered once per condition until it clears, by webhook (a JSON POST) and by email
//! (the `[transport]` of the report-sending settings).
//!
//! Times are those of the reports: an aggregate report counts at the middle of its
//! period, a failure report at its arrival. The *window* is the last `window_days` before
//! now; the *baseline* the `baseline_days` before the window.
//!
//! Rules (each on when its table is present):
//!
//! - `[alerts.new_source] min_messages`: a source address sending more than that many
//!   messages as a domain in the window, never seen in the baseline;
//! - `[alerts.pass_rate_drop] points, min_messages`: a domain's DMARC pass rate in the
//!   window more than `points` percentage points below its baseline rate (both windows
//!   with at least `min_messages`);
//! - `[alerts.failing_source] min_messages`: a source that passed DMARC for all its
//!   baseline mail (a legitimate sender) failing it for more than that many messages now;
//! - `[alerts.reporter_silent] days`: a reporter that sent in the baseline and whose latest
//!   report ended more than `days` days ago;
//! - `[alerts.failure_spike] factor, min_reports`: failure reports about a domain in the
//!   window at least `min_reports` and `factor` times the baseline's rate;
//! - `[alerts.tls_failures] min_failed_sessions`: failed SMTP TLS sessions of a policy
//!   domain and result type in the window;
//! - `[alerts.dns_records] domains, selectors, max_domains, max_selectors,
//!   lookup_failures`: a DMARC, SPF or DKIM record changing (`dns_change`, delivered once)
//!   or breaking (`dns_broken`, until fixed), from the live DNS ([`dns`]).

pub mod dns;

use std::collections::BTreeMap;
use std::path::Path;

use dmarc_store::Store;
use dmarc_store::alerts::{AlertChanges, Condition};
use dmarc_store::dns_records::DnsRecordSeen;
use serde::{Deserialize, Serialize};

use crate::WebError;

const DAY: i64 = 86_400;

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// The recent window, in days (default 2: reports arrive a day after their period).
    #[serde(default = "default_window")]
    pub window_days: i64,
    /// The baseline before it, in days (default 30).
    #[serde(default = "default_baseline")]
    pub baseline_days: i64,
    /// How often `dmarc serve` evaluates the rules, in minutes (default 60; 0: never).
    #[serde(default = "default_interval")]
    pub interval_minutes: u64,
    /// A URL to POST each fired and cleared condition to, as JSON.
    pub webhook: Option<String>,
    /// Addresses to mail each fired and cleared condition to.
    #[serde(default)]
    pub email_to: Vec<String>,
    /// The sender of that mail.
    pub email_from: Option<String>,
    /// New sources.
    pub new_source: Option<MinMessages>,
    /// Pass-rate drops.
    pub pass_rate_drop: Option<PassRateDrop>,
    /// Legitimate sources starting to fail.
    pub failing_source: Option<MinMessages>,
    /// Silent reporters.
    pub reporter_silent: Option<Days>,
    /// Failure-report spikes.
    pub failure_spike: Option<Spike>,
    /// SMTP TLS failures.
    pub tls_failures: Option<TlsFailures>,
    /// DMARC, SPF and DKIM records changing or breaking.
    pub dns_records: Option<dns::DnsRecords>,
}

fn default_window() -> i64 {
    2
}
fn default_baseline() -> i64 {
    30
}
fn default_interval() -> u64 {
    60
}

/// A threshold in messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinMessages {
    /// More than this many messages (default 100).
    #[serde(default = "default_min_messages")]
    pub min_messages: i64,
}

fn default_min_messages() -> i64 {
    100
}

/// `[alerts.pass_rate_drop]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassRateDrop {
    /// Percentage points below the baseline (default 10).
    #[serde(default = "default_points")]
    pub points: f64,
    /// The least messages in each of the window and the baseline (default 100).
    #[serde(default = "default_min_messages")]
    pub min_messages: i64,
}

fn default_points() -> f64 {
    10.0
}

/// `[alerts.reporter_silent]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Days {
    /// Silent for more than this many days (default 3).
    #[serde(default = "default_days")]
    pub days: i64,
}

fn default_days() -> i64 {
    3
}

/// `[alerts.failure_spike]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    /// Times the baseline's daily rate (default 3).
    #[serde(default = "default_factor")]
    pub factor: f64,
    /// The least failure reports in the window (default 5).
    #[serde(default = "default_min_reports")]
    pub min_reports: i64,
}

fn default_factor() -> f64 {
    3.0
}
fn default_min_reports() -> i64 {
    5
}

/// `[alerts.tls_failures]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFailures {
    /// At least this many failed sessions (default 1).
    #[serde(default = "default_min_failed")]
    pub min_failed_sessions: i64,
}

fn default_min_failed() -> i64 {
    1
}

/// The parts of the configuration file the alerts read.
#[derive(Debug, Deserialize)]
struct File {
    alerts: Option<AlertConfig>,
    transport: Option<dmarc_reporter::config::TransportOptions>,
    #[serde(flatten)]
    _other: toml::Table,
}

/// The alert settings and the mail transport, from the configuration file.
#[derive(Debug, Clone)]
pub struct Alerts {
    /// `[alerts]`.
    pub config: AlertConfig,
    /// `[transport]`, for `email_to`.
    pub transport: Option<dmarc_reporter::config::TransportOptions>,
}

impl Alerts {
    /// Reads `[alerts]` (and `[transport]`) from `path`; `None` when there is no `[alerts]`.
    pub fn load(path: &Path) -> Result<Option<Alerts>, WebError> {
        let err = |detail: String| WebError::Config {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let f: File = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let Some(config) = f.alerts else {
            return Ok(None);
        };
        if !config.email_to.is_empty() && (config.email_from.is_none() || f.transport.is_none()) {
            return Err(err(
                "alerts: email_to needs email_from and a [transport] section".into(),
            ));
        }
        if config.window_days < 1 || config.baseline_days < 1 {
            return Err(err(
                "alerts: window_days and baseline_days must be at least 1".into(),
            ));
        }
        if let Some(d) = &config.dns_records {
            d.validate().map_err(err)?;
        }
        Ok(Some(Alerts {
            config,
            transport: f.transport,
        }))
    }

    /// The names of the rules that are on.
    pub fn rules(&self) -> Vec<&'static str> {
        let c = &self.config;
        let mut r = Vec::new();
        if c.new_source.is_some() {
            r.push("new_source");
        }
        if c.pass_rate_drop.is_some() {
            r.push("pass_rate_drop");
        }
        if c.failing_source.is_some() {
            r.push("failing_source");
        }
        if c.reporter_silent.is_some() {
            r.push("reporter_silent");
        }
        if c.failure_spike.is_some() {
            r.push("failure_spike");
        }
        if c.tls_failures.is_some() {
            r.push("tls_failures");
        }
        if c.dns_records.is_some() {
            r.push("dns_change");
            r.push("dns_broken");
        }
        r
    }

    /// The domains and DKIM selectors whose records the DNS rule looks at, at `now` (none
    /// when the rule is off): ask about them with [`dns::observe`] and pass the answers to
    /// [`check`].
    pub fn dns_targets(&self, store: &mut Store, now: i64) -> Result<Vec<dns::Target>, WebError> {
        let c = &self.config;
        let Some(d) = &c.dns_records else {
            return Ok(Vec::new());
        };
        let since = now - (c.window_days + c.baseline_days) * DAY;
        dns::targets(d, store, since, now)
    }

    /// The conditions that hold at `now`, with `dns` the answers about the targets of
    /// [`Alerts::dns_targets`]; and the DNS records to keep for the next evaluation.
    pub fn evaluate(
        &self,
        store: &mut Store,
        now: i64,
        dns: &[dns::Observed],
    ) -> Result<(Vec<Condition>, Vec<DnsRecordSeen>), WebError> {
        let c = &self.config;
        let w0 = now - c.window_days * DAY;
        let b0 = w0 - c.baseline_days * DAY;
        let mut out = Vec::new();
        let mut seen = Vec::new();
        if let Some(d) = &c.dns_records {
            let (mut held, rows) = dns::evaluate(d, store, dns, now)?;
            out.append(&mut held);
            seen = rows;
        }
        let cond = |rule: &str, subject: String, detail: String| Condition {
            rule: rule.into(),
            subject,
            detail,
        };
        if c.new_source.is_some() || c.failing_source.is_some() || c.pass_rate_drop.is_some() {
            let recent = store.source_volumes(w0, now)?;
            let before = store.source_volumes(b0, w0)?;
            let seen: BTreeMap<(&str, &str), (i64, i64)> = before
                .iter()
                .map(|v| {
                    (
                        (v.domain.as_str(), v.ip.as_str()),
                        (v.messages, v.dmarc_pass),
                    )
                })
                .collect();
            for v in &recent {
                let old = seen.get(&(v.domain.as_str(), v.ip.as_str()));
                if let Some(r) = &c.new_source
                    && old.is_none()
                    && v.messages > r.min_messages
                {
                    out.push(cond(
                        "new_source",
                        format!("{} {}", v.domain, v.ip),
                        format!(
                            "{} sent {} messages as {} in the last {} day(s) ({} passing DMARC), \
                             and none in the {} days before",
                            v.ip,
                            v.messages,
                            v.domain,
                            c.window_days,
                            v.dmarc_pass,
                            c.baseline_days
                        ),
                    ));
                }
                if let (Some(r), Some((m, p))) = (&c.failing_source, old)
                    && *m > 0
                    && p == m
                    && v.messages - v.dmarc_pass > r.min_messages
                {
                    out.push(cond(
                        "failing_source",
                        format!("{} {}", v.domain, v.ip),
                        format!(
                            "{} passed DMARC for all its {m} messages as {} before, and now fails \
                             for {} of {}",
                            v.ip,
                            v.domain,
                            v.messages - v.dmarc_pass,
                            v.messages
                        ),
                    ));
                }
            }
            if let Some(r) = &c.pass_rate_drop {
                let sums = |vs: &[dmarc_store::alerts::SourceVolume]| {
                    let mut m: BTreeMap<String, (i64, i64)> = BTreeMap::new();
                    for v in vs {
                        let e = m.entry(v.domain.clone()).or_default();
                        e.0 += v.messages;
                        e.1 += v.dmarc_pass;
                    }
                    m
                };
                let (now_sums, base_sums) = (sums(&recent), sums(&before));
                for (d, (m, p)) in &now_sums {
                    let Some((bm, bp)) = base_sums.get(d) else {
                        continue;
                    };
                    if *m < r.min_messages || *bm < r.min_messages {
                        continue;
                    }
                    let (rate, base) = (
                        *p as f64 * 100.0 / *m as f64,
                        *bp as f64 * 100.0 / *bm as f64,
                    );
                    if base - rate > r.points {
                        out.push(cond(
                            "pass_rate_drop",
                            d.clone(),
                            format!(
                                "{d}: DMARC pass rate {rate:.1}% in the last {} day(s), {:.1} points \
                                 below its {base:.1}% of the {} days before",
                                c.window_days,
                                base - rate,
                                c.baseline_days
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(r) = &c.reporter_silent {
            for (org, last) in store.reporter_last_reports(b0, now)? {
                let silent = now - last;
                if silent > r.days * DAY {
                    out.push(cond(
                        "reporter_silent",
                        org.clone(),
                        format!(
                            "{org} sent reports before, but its latest report ended {} day(s) ago \
                             ({})",
                            silent / DAY,
                            dmarc_store::format_utc(last)
                        ),
                    ));
                }
            }
        }
        if let Some(r) = &c.failure_spike {
            let base: BTreeMap<String, i64> =
                store.failure_report_counts(b0, w0)?.into_iter().collect();
            for (d, n) in store.failure_report_counts(w0, now)? {
                let expected = base.get(&d).copied().unwrap_or(0) as f64 * c.window_days as f64
                    / c.baseline_days as f64;
                if n >= r.min_reports && n as f64 >= r.factor * expected {
                    out.push(cond(
                        "failure_spike",
                        d.clone(),
                        format!(
                            "{n} failure reports about {d} in the last {} day(s), against {expected:.1} \
                             expected from the {} days before",
                            c.window_days, c.baseline_days
                        ),
                    ));
                }
            }
        }
        if let Some(r) = &c.tls_failures {
            for (d, kind, n) in store.tls_failed_sessions(w0, now)? {
                if n >= r.min_failed_sessions {
                    out.push(cond(
                        "tls_failures",
                        format!("{d} {kind}"),
                        format!(
                            "{n} SMTP TLS sessions to {d} failed with {kind} in the last {} day(s)",
                            c.window_days
                        ),
                    ));
                }
            }
        }
        Ok((out, seen))
    }
}

/// What one check did, as `dmarc alerts check --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The rules evaluated.
    pub rules: Vec<&'static str>,
    /// The evaluation time (Unix).
    pub now: i64,
    /// What changed.
    pub changes: AlertChanges,
    /// How each fired or cleared condition was delivered (empty on a dry run).
    pub deliveries: Vec<String>,
    /// What DNS answered about each record the DNS rule looked at.
    pub dns: Vec<dns::Observed>,
}

/// Rules whose conditions are events: delivered when they fire, not when they clear.
const EVENT_RULES: &[&str] = &["dns_change"];

/// The JSON the webhook receives for one condition.
#[derive(Debug, Serialize)]
struct Hook<'a> {
    event: &'a str,
    rule: &'a str,
    subject: &'a str,
    detail: &'a str,
    at: String,
}

/// Evaluates the rules at `now` (with `dns` the answers about [`Alerts::dns_targets`]),
/// records the state, and (unless `dry_run`) delivers what fired or cleared. Blocking: run
/// it off the async threads.
pub fn check(
    alerts: &Alerts,
    store: &mut Store,
    now: i64,
    dry_run: bool,
    dns: Vec<dns::Observed>,
) -> Result<CheckResult, WebError> {
    let rules = alerts.rules();
    let (holding, seen) = alerts.evaluate(store, now, &dns)?;
    let changes = store.update_alerts(&rules, &holding, now, dry_run)?;
    let mut deliveries = Vec::new();
    if !dry_run {
        store.save_dns_records(&seen)?;
        let events = changes
            .fired
            .iter()
            .map(|c| ("fired", c))
            .chain(changes.cleared.iter().map(|c| ("cleared", c)));
        for (event, c) in events {
            if event == "cleared" && EVENT_RULES.contains(&c.rule.as_str()) {
                deliveries.push(format!(
                    "{event} {} {}: not delivered (a change is told once, when seen)",
                    c.rule, c.subject
                ));
                continue;
            }
            let said = deliver(alerts, event, c, now);
            if event == "fired" {
                store.alert_delivered(c, now, &said)?;
            }
            deliveries.push(format!("{event} {} {}: {said}", c.rule, c.subject));
        }
    }
    Ok(CheckResult {
        rules,
        now,
        changes,
        deliveries,
        dns,
    })
}

/// Sends one event by webhook and email; says what each answered.
fn deliver(alerts: &Alerts, event: &str, c: &Condition, now: i64) -> String {
    let mut said = Vec::new();
    let hook = Hook {
        event,
        rule: &c.rule,
        subject: &c.subject,
        detail: &c.detail,
        at: dmarc_store::format_utc(now),
    };
    if let Some(url) = &alerts.config.webhook {
        said.push(format!("webhook: {}", post_json(url, &hook)));
    }
    if let (Some(from), Some(t)) = (&alerts.config.email_from, &alerts.transport)
        && !alerts.config.email_to.is_empty()
    {
        use dmarc_reporter::transport::{Configured, Outcome, Transport};
        match Configured::new(t) {
            Ok(mut transport) => {
                for to in &alerts.config.email_to {
                    let msg = mail(from, to, event, c, now);
                    let r = match transport.send(from, to, msg.as_bytes()) {
                        Outcome::Sent(s) => format!("sent ({s})"),
                        Outcome::Temporary(s) => format!("not sent, temporary: {s}"),
                        Outcome::Permanent(s) => format!("not sent: {s}"),
                    };
                    said.push(format!("email {to}: {r}"));
                }
            }
            Err(e) => said.push(format!("email: {e}")),
        }
    }
    if said.is_empty() {
        "no delivery configured".into()
    } else {
        said.join("; ")
    }
}

/// Keeps header text on one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

fn mail(from: &str, to: &str, event: &str, c: &Condition, now: i64) -> String {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: dmarc alert {event}: {} {}\r\nDate: {}\r\n\
         Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         {}\r\n\r\nRule: {}\r\nSubject: {}\r\nEvent: {event}\r\n",
        one_line(&c.rule),
        one_line(&c.subject),
        dmarc_store::time::format_rfc5322(now),
        c.detail.replace('\n', "\r\n"),
        c.rule,
        one_line(&c.subject),
    )
}

/// POSTs `body` as JSON; the status, or why it failed.
fn post_json<T: Serialize>(url: &str, body: &T) -> String {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => return e.to_string(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return e.to_string(),
    };
    runtime.block_on(async {
        let client = match reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
        {
            Ok(c) => c,
            Err(e) => return e.to_string(),
        };
        match client
            .post(url)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
        {
            Ok(r) => r.status().to_string(),
            Err(e) => format!("failed: {e}"),
        }
    })
}
