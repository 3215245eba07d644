//! Per-source sums kept at ingest (migration 7): the report rows summed per policy domain,
//! calendar month (UTC, of the report period's middle), source address and everything the
//! readers group by, so that [`crate::Store::summary`] and [`crate::Store::source_facts`]
//! read a few rows per source and month instead of every report row.
//!
//! Each stored report adds its rows to the sums in the transaction that stores it (a
//! refused duplicate adds nothing). The sums are added up in memory ([`Sums`]) and written
//! at the end of that transaction: once per report, or once per batch of reports
//! ([`crate::Store::begin_batch`], what `dmarc ingest` and the benchmark generator use), so
//! that a batch adds each key once instead of once per report. Migration 7 fills them for
//! the reports already stored with the same rules, read back from the rows. The store
//! never deletes a report, so the sums only grow. A missing value (no disposition, no
//! envelope `MAIL FROM`, no selector ...) is kept as `''` (the key columns cannot be
//! NULL), and the readers take `''` as missing on both paths.
//!
//! Migration 10 adds the same sums per UTC day (`aggregate_daily_*`, the same columns with
//! `day` for `month`), kept and filled the same way, for the partial months at the ends of
//! a window ([`plan`]): a window is read as whole months from the monthly sums, the whole
//! days of its partial months from the daily sums, and only a part of a day (a bound that
//! is not a midnight) from the rows.

use std::collections::HashMap;

use dmarc_report::aggregate::AggregateReport;

use crate::StoreError;
use crate::backend::{Conn, Dialect, Row, Val};
use crate::time::{civil_from_days, days_from_civil};

/// The month of a report period: months since January of year 0 of the period's middle
/// (`begin / 2 + end / 2`, as the readers compute it).
pub(crate) fn month_of(begin: i64, end: i64) -> i64 {
    let mid = begin / 2 + end / 2;
    let (y, m, _) = civil_from_days(mid.div_euclid(86_400));
    y * 12 + (m - 1)
}

/// The Unix time at which month `month` (as [`month_of`] counts) starts.
pub(crate) fn month_start(month: i64) -> i64 {
    days_from_civil(month.div_euclid(12), month.rem_euclid(12) + 1, 1).saturating_mul(86_400)
}

/// The month holding `t`.
pub(crate) fn month_floor(t: i64) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(86_400));
    y * 12 + (m - 1)
}

/// The first month starting at or after `t`.
pub(crate) fn month_from(t: i64) -> i64 {
    let month = month_floor(t);
    if month_start(month) >= t {
        month
    } else {
        month + 1
    }
}

/// A window of report periods (`since..until` of their middles, unbounded where `None`)
/// split into its whole months and the rest ([`plan`] splits the rest into days).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Split {
    /// Windows to read from the report rows.
    pub(crate) rows: Vec<(Option<i64>, Option<i64>)>,
    /// Months `first..last` (unbounded where `None`) to read from the sums, if any.
    pub(crate) months: Option<(Option<i64>, Option<i64>)>,
}

/// The period of a table of sums: calendar months (migration 7) or UTC days (migration
/// 10), both of the report period's middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    /// `aggregate_source_*`, column `month` (as [`month_of`] counts).
    Month,
    /// `aggregate_daily_*`, column `day` (days since the epoch, rounded down).
    Day,
}

impl Grain {
    /// The table of sums `what` (`sums`, `reporters`, `dkim`, `spf` or `reasons`).
    pub(crate) fn table(self, what: &str) -> String {
        match self {
            Grain::Month => format!("aggregate_source_{what}"),
            Grain::Day => format!("aggregate_daily_{what}"),
        }
    }

    /// The period column of its tables.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Grain::Month => "month",
            Grain::Day => "day",
        }
    }
}

/// Periods `first..last` of one grain (unbounded where `None`) to read from the sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) grain: Grain,
    pub(crate) first: Option<i64>,
    pub(crate) last: Option<i64>,
}

impl Span {
    /// The table of sums `what` of this span's grain.
    pub(crate) fn table(&self, what: &str) -> String {
        self.grain.table(what)
    }

    /// The conditions on the period column of sums `s` (`s.month >= ?` ...) and the
    /// bounds they bind, in order.
    pub(crate) fn conds(&self) -> (Vec<String>, Vec<i64>) {
        let col = self.grain.column();
        let mut conds = Vec::new();
        let mut bounds = Vec::new();
        if let Some(f) = self.first {
            conds.push(format!("s.{col} >= ?"));
            bounds.push(f);
        }
        if let Some(l) = self.last {
            conds.push(format!("s.{col} < ?"));
            bounds.push(l);
        }
        (conds, bounds)
    }
}

/// A window of report periods as the readers read it: whole months from the monthly
/// sums, whole days of the partial months from the daily sums, and what is left (the
/// partial days at the ends of a window whose bounds are not midnights) from the rows.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Windows to read from the report rows.
    pub(crate) rows: Vec<(Option<i64>, Option<i64>)>,
    /// Spans to read from the sums.
    pub(crate) sums: Vec<Span>,
}

const DAY: i64 = 86_400;

/// How a reader reads `since..until`: whole months and days from the sums with
/// `use_sums` (see [`Plan`]), else all of it from the rows (the check of the sums).
pub(crate) fn plan(since: Option<i64>, until: Option<i64>, use_sums: bool) -> Plan {
    if !use_sums {
        return Plan {
            rows: vec![(since, until)],
            sums: Vec::new(),
        };
    }
    let months = split(since, until);
    let mut plan = Plan {
        rows: Vec::new(),
        sums: months
            .months
            .map(|(first, last)| Span {
                grain: Grain::Month,
                first,
                last,
            })
            .into_iter()
            .collect(),
    };
    for (s, u) in months.rows {
        let (Some(s), Some(u)) = (s, u) else {
            plan.rows.push((s, u));
            continue;
        };
        // The whole days `first..last` of `s..u`.
        let first = s.div_euclid(DAY) + i64::from(s.rem_euclid(DAY) != 0);
        let last = u.div_euclid(DAY);
        if first >= last {
            plan.rows.push((Some(s), Some(u)));
            continue;
        }
        let (from, to) = (first.saturating_mul(DAY), last.saturating_mul(DAY));
        if s < from {
            plan.rows.push((Some(s), Some(from)));
        }
        if to < u {
            plan.rows.push((Some(to), Some(u)));
        }
        plan.sums.push(Span {
            grain: Grain::Day,
            first: Some(first),
            last: Some(last),
        });
    }
    plan
}

/// Splits `since..until` into whole months and the partial months at its ends (what the
/// source page reads from the monthly sums; the other readers use [`plan`]).
pub(crate) fn split(since: Option<i64>, until: Option<i64>) -> Split {
    let first = since.map(month_from);
    let last = until.map(month_floor);
    if first.zip(last).is_some_and(|(a, b)| a >= b) {
        return Split {
            rows: vec![(since, until)],
            months: None,
        };
    }
    let mut rows = Vec::new();
    if let (Some(s), Some(m)) = (since, first)
        && s < month_start(m)
    {
        rows.push((Some(s), Some(month_start(m))));
    }
    if let (Some(u), Some(m)) = (until, last)
        && month_start(m) < u
    {
        rows.push((Some(month_start(m)), Some(u)));
    }
    Split {
        rows,
        months: Some((first, last)),
    }
}

/// A batch of reports ([`crate::Store::begin_batch`]) writes its per-source sums and
/// commits once its reports hold this many rows, so that the sums it keeps in memory stay
/// bounded (at most one key per row in each table).
pub const BATCH_ROWS: u64 = 250_000;

/// Names interned for one batch: the sums' keys are small integer tuples, each text
/// stored once.
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn get(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

/// The per-day figures of one source: messages, DMARC pass, aligned SPF pass, aligned DKIM
/// pass, reports (and the last report counted, so that each report counts once).
#[derive(Debug, Default, Clone, Copy)]
struct Day {
    sums: [i64; 5],
    last_report: u64,
}

/// The sums of one grain ([`Grain`]), keyed by `(period, names)`.
#[derive(Debug, Default)]
struct Tables {
    /// `[policy_domain, source_ip, header_from, envelope_from, disposition, dkim_aligned,
    /// spf_aligned, policy_p, policy_sp]`: messages, rows.
    sums: HashMap<(i64, [u32; 9]), [i64; 2]>,
    /// `[policy_domain, source_ip, org_name]`: messages, rows.
    reporters: HashMap<(i64, [u32; 3]), [i64; 2]>,
    /// `[policy_domain, source_ip, domain, selector, result, header_from]`.
    dkim: HashMap<(i64, [u32; 6]), i64>,
    /// `[policy_domain, source_ip, domain, scope, result]`.
    spf: HashMap<(i64, [u32; 5]), i64>,
    /// `[policy_domain, source_ip, reason_type]`.
    reasons: HashMap<(i64, [u32; 3]), i64>,
}

/// Which tables a [`Sums`] fills: all of them at ingest, those of its migration in a
/// backfill (a later migration's tables do not exist yet when an earlier one runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    /// Everything (ingest).
    All,
    /// Migration 7: the monthly sums and `aggregate_source_days`.
    Months,
    /// Migration 10: the daily sums.
    Daily,
}

/// The sums of the reports stored since the last [`Sums::flush`], in memory, to be added
/// to the tables in the transaction that stores those reports: a batch of reports adds
/// each key once, not once per report. Filled by [`Sums::add_aggregate`] (ingest) and by
/// [`backfill`] (migrations 7 and 10, from the stored rows) with the same rules.
#[derive(Debug)]
pub(crate) struct Sums {
    names: Names,
    /// PostgreSQL text cannot hold NUL: the store writes U+FFFD instead, and the sums'
    /// keys must be the text as stored.
    no_nul: bool,
    fill: Fill,
    /// Per month (`aggregate_source_*`).
    months: Tables,
    /// Per day (`aggregate_daily_*`).
    daily: Tables,
    /// `(day, [source_ip, policy_domain])` (`aggregate_source_days`).
    days: HashMap<(i64, [u32; 2]), Day>,
    /// Report rows added since the last flush.
    rows: u64,
    /// Reports added so far (never reset: tells the reports apart for `days`).
    reports: u64,
}

/// What the sums need of a stored report (missing values as `''`).
pub(crate) struct ReportHead<'a> {
    pub(crate) policy_domain: &'a str,
    pub(crate) org_name: &'a str,
    pub(crate) policy_p: &'a str,
    pub(crate) policy_sp: &'a str,
    pub(crate) begin: i64,
    pub(crate) end: i64,
}

/// What the sums need of a stored report row (missing values as `''`).
pub(crate) struct RowFacts<'a> {
    pub(crate) source_ip: &'a str,
    pub(crate) messages: i64,
    pub(crate) disposition: &'a str,
    pub(crate) dkim_aligned: &'a str,
    pub(crate) spf_aligned: &'a str,
    pub(crate) header_from: &'a str,
    pub(crate) envelope_from: &'a str,
}

/// A row added by [`Sums::row`], to add its DKIM, SPF and reason results to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowKey {
    month: i64,
    /// The day of the period's middle (rounded down, as the daily sums count it).
    daily: i64,
    policy_domain: u32,
    source_ip: u32,
    header_from: u32,
    messages: i64,
}

/// The report being added by [`Sums::row`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReportKey {
    month: i64,
    day: i64,
    daily: i64,
    seq: u64,
    policy_domain: u32,
    org_name: u32,
    policy_p: u32,
    policy_sp: u32,
}

impl Sums {
    pub(crate) fn new(dialect: Dialect) -> Sums {
        Sums::filling(dialect, Fill::All)
    }

    /// Sums that fill the tables `fill` names.
    pub(crate) fn filling(dialect: Dialect, fill: Fill) -> Sums {
        Sums {
            names: Names::default(),
            no_nul: dialect == Dialect::Postgres,
            fill,
            months: Tables::default(),
            daily: Tables::default(),
            days: HashMap::new(),
            rows: 0,
            reports: 0,
        }
    }

    /// Calls `f` with the tables of each grain this fills and the period of
    /// `month` or `daily` that they key.
    fn each(&mut self, month: i64, daily: i64, mut f: impl FnMut(i64, &mut Tables)) {
        if self.fill != Fill::Daily {
            f(month, &mut self.months);
        }
        if self.fill != Fill::Months {
            f(daily, &mut self.daily);
        }
    }

    /// Report rows added since the last flush.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    fn id(&mut self, s: &str) -> u32 {
        if self.no_nul && s.contains('\0') {
            self.names.id(&s.replace('\0', "\u{FFFD}"))
        } else {
            self.names.id(s)
        }
    }

    /// Starts adding a report; its rows follow with [`Sums::row`].
    pub(crate) fn report(&mut self, r: &ReportHead<'_>) -> ReportKey {
        self.reports += 1;
        ReportKey {
            month: month_of(r.begin, r.end),
            // The day of the period's middle, as the readers' `(begin / 2 + end / 2) / 86400`.
            day: (r.begin / 2 + r.end / 2) / 86_400,
            daily: (r.begin / 2 + r.end / 2).div_euclid(DAY),
            seq: self.reports,
            policy_domain: self.id(r.policy_domain),
            org_name: self.id(r.org_name),
            policy_p: self.id(r.policy_p),
            policy_sp: self.id(r.policy_sp),
        }
    }

    /// Adds one row of report `r`.
    pub(crate) fn row(&mut self, r: &ReportKey, x: &RowFacts<'_>) -> RowKey {
        self.rows += 1;
        let ip = self.id(x.source_ip);
        let header_from = self.id(x.header_from);
        let key = [
            r.policy_domain,
            ip,
            header_from,
            self.id(x.envelope_from),
            self.id(x.disposition),
            self.id(x.dkim_aligned),
            self.id(x.spf_aligned),
            r.policy_p,
            r.policy_sp,
        ];
        let m = x.messages;
        let org = r.org_name;
        self.each(r.month, r.daily, |period, t| {
            let s = t.sums.entry((period, key)).or_default();
            s[0] = s[0].saturating_add(m);
            s[1] += 1;
            let s = t
                .reporters
                .entry((period, [r.policy_domain, ip, org]))
                .or_default();
            s[0] = s[0].saturating_add(m);
            s[1] += 1;
        });
        // `aggregate_source_days` is migration 7's (filled with the monthly sums).
        if self.fill != Fill::Daily {
            let (dkim, spf) = (x.dkim_aligned == "pass", x.spf_aligned == "pass");
            let d = self.days.entry((r.day, [ip, r.policy_domain])).or_default();
            for (i, add) in [
                m,
                if dkim || spf { m } else { 0 },
                if spf { m } else { 0 },
                if dkim { m } else { 0 },
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(v) = d.sums.get_mut(i) {
                    *v = v.saturating_add(add);
                }
            }
            if d.last_report != r.seq {
                d.last_report = r.seq;
                d.sums[4] += 1;
            }
        }
        RowKey {
            month: r.month,
            daily: r.daily,
            policy_domain: r.policy_domain,
            source_ip: ip,
            header_from,
            messages: m,
        }
    }

    /// Adds one DKIM result of row `x` (selector `''` when missing).
    pub(crate) fn dkim(&mut self, x: &RowKey, domain: &str, selector: &str, result: &str) {
        let key = [
            x.policy_domain,
            x.source_ip,
            self.id(domain),
            self.id(selector),
            self.id(result),
            x.header_from,
        ];
        self.each(x.month, x.daily, |period, t| {
            let s = t.dkim.entry((period, key)).or_default();
            *s = s.saturating_add(x.messages);
        });
    }

    /// Adds one SPF result of row `x` (scope `''` when missing).
    pub(crate) fn spf(&mut self, x: &RowKey, domain: &str, scope: &str, result: &str) {
        let key = [
            x.policy_domain,
            x.source_ip,
            self.id(domain),
            self.id(scope),
            self.id(result),
        ];
        self.each(x.month, x.daily, |period, t| {
            let s = t.spf.entry((period, key)).or_default();
            *s = s.saturating_add(x.messages);
        });
    }

    /// Adds one policy override reason of row `x`.
    pub(crate) fn reason(&mut self, x: &RowKey, reason_type: &str) {
        let key = [x.policy_domain, x.source_ip, self.id(reason_type)];
        self.each(x.month, x.daily, |period, t| {
            let s = t.reasons.entry((period, key)).or_default();
            *s = s.saturating_add(x.messages);
        });
    }

    /// Adds a parsed aggregate report, as the store keeps it (stored under `key`'s
    /// reporter, domain and period; counts capped at [`crate::MAX_RECORD_COUNT`]).
    pub(crate) fn add_aggregate(&mut self, a: &AggregateReport) {
        let key = a.report_key();
        let p = &a.policy_published;
        let word = |w: &Option<_>| w.as_ref().map_or_else(String::new, ToString::to_string);
        let (pp, sp) = (word(&p.p), word(&p.sp));
        let r = self.report(&ReportHead {
            policy_domain: &key.policy_domain,
            org_name: &key.org_name,
            policy_p: &pp,
            policy_sp: &sp,
            begin: key.begin,
            end: key.end,
        });
        for rec in &a.records {
            let pe = &rec.policy_evaluated;
            let ip = rec.source_ip.to_string();
            let x = self.row(
                &r,
                &RowFacts {
                    source_ip: &ip,
                    messages: crate::write::stored_count(rec.count),
                    disposition: pe.disposition.as_ref().map_or("", |d| d.as_str()),
                    dkim_aligned: pe.dkim.as_ref().map_or("", |d| d.as_str()),
                    spf_aligned: pe.spf.as_ref().map_or("", |d| d.as_str()),
                    header_from: &rec.identifiers.header_from,
                    envelope_from: rec.identifiers.envelope_from.as_deref().unwrap_or(""),
                },
            );
            for d in &rec.auth_results.dkim {
                self.dkim(
                    &x,
                    &d.domain,
                    d.selector.as_deref().unwrap_or(""),
                    d.result.as_str(),
                );
            }
            for s in &rec.auth_results.spf {
                self.spf(
                    &x,
                    &s.domain,
                    s.scope.as_ref().map_or("", |v| v.as_str()),
                    s.result.as_str(),
                );
            }
            for reason in &pe.reasons {
                self.reason(&x, reason.kind.as_str());
            }
        }
    }

    /// Forgets what was added since the last flush (its transaction was rolled back).
    pub(crate) fn clear(&mut self) {
        self.names = Names::default();
        self.months = Tables::default();
        self.daily = Tables::default();
        self.days = HashMap::new();
        self.rows = 0;
    }

    /// Adds everything added since the last flush to the tables (in the caller's
    /// transaction), in key order, and starts afresh.
    pub(crate) fn flush(&mut self, conn: &mut Conn) -> Result<(), StoreError> {
        let res = self.write(conn);
        self.clear();
        res
    }

    fn write(&self, conn: &mut Conn) -> Result<(), StoreError> {
        if self.fill != Fill::Daily {
            self.write_tables(conn, Grain::Month, &self.months)?;
            self.write_days(conn)?;
        }
        if self.fill != Fill::Months {
            self.write_tables(conn, Grain::Day, &self.daily)?;
        }
        Ok(())
    }

    /// Adds tables `t` to those of `grain`.
    fn write_tables(&self, conn: &mut Conn, grain: Grain, t: &Tables) -> Result<(), StoreError> {
        let n = |id: u32| Val::Text(self.names.get(id));
        let p = grain.column();
        upsert(
            conn,
            &format!(
                "{} (policy_domain, {p}, source_ip, header_from, envelope_from, disposition, \
                 dkim_aligned, spf_aligned, policy_p, policy_sp, messages, row_count)",
                grain.table("sums")
            ),
            &format!(
                "policy_domain, {p}, source_ip, header_from, envelope_from, disposition, \
                 dkim_aligned, spf_aligned, policy_p, policy_sp"
            ),
            &["messages", "row_count"],
            self.sorted(&t.sums, |&(m, k)| (k[0], m, k)),
            |&(m, k), v| {
                let mut row = vec![n(k[0]), Val::I64(m)];
                row.extend(k[1..].iter().map(|&i| n(i)));
                row.extend(v.iter().map(|&v| Val::I64(v)));
                row
            },
        )?;
        upsert(
            conn,
            &format!(
                "{} (policy_domain, {p}, source_ip, org_name, messages, row_count)",
                grain.table("reporters")
            ),
            &format!("policy_domain, {p}, source_ip, org_name"),
            &["messages", "row_count"],
            self.sorted(&t.reporters, |&(m, k)| (k[0], m, k)),
            |&(m, k), v| {
                vec![
                    n(k[0]),
                    Val::I64(m),
                    n(k[1]),
                    n(k[2]),
                    Val::I64(v[0]),
                    Val::I64(v[1]),
                ]
            },
        )?;
        upsert(
            conn,
            &format!(
                "{} (policy_domain, {p}, source_ip, domain, selector, result, header_from, \
                 messages)",
                grain.table("dkim")
            ),
            &format!("policy_domain, {p}, source_ip, domain, selector, result, header_from"),
            &["messages"],
            self.sorted(&t.dkim, |&(m, k)| (k[0], m, k)),
            |&(m, k), &v| {
                let mut row = vec![n(k[0]), Val::I64(m)];
                row.extend(k[1..].iter().map(|&i| n(i)));
                row.push(Val::I64(v));
                row
            },
        )?;
        upsert(
            conn,
            &format!(
                "{} (policy_domain, {p}, source_ip, domain, scope, result, messages)",
                grain.table("spf")
            ),
            &format!("policy_domain, {p}, source_ip, domain, scope, result"),
            &["messages"],
            self.sorted(&t.spf, |&(m, k)| (k[0], m, k)),
            |&(m, k), &v| {
                let mut row = vec![n(k[0]), Val::I64(m)];
                row.extend(k[1..].iter().map(|&i| n(i)));
                row.push(Val::I64(v));
                row
            },
        )?;
        upsert(
            conn,
            &format!(
                "{} (policy_domain, {p}, source_ip, reason_type, messages)",
                grain.table("reasons")
            ),
            &format!("policy_domain, {p}, source_ip, reason_type"),
            &["messages"],
            self.sorted(&t.reasons, |&(m, k)| (k[0], m, k)),
            |&(m, k), &v| vec![n(k[0]), Val::I64(m), n(k[1]), n(k[2]), Val::I64(v)],
        )
    }

    /// Adds the per-source, per-day figures to `aggregate_source_days`.
    fn write_days(&self, conn: &mut Conn) -> Result<(), StoreError> {
        let n = |id: u32| Val::Text(self.names.get(id));
        upsert(
            conn,
            "aggregate_source_days (source_ip, day, policy_domain, messages, dmarc_pass, \
             spf_aligned_pass, dkim_aligned_pass, reports)",
            "source_ip, day, policy_domain",
            &[
                "messages",
                "dmarc_pass",
                "spf_aligned_pass",
                "dkim_aligned_pass",
                "reports",
            ],
            self.sorted(&self.days, |&(d, k)| (k[0], d, k)),
            |&(d, k), v| {
                let mut row = vec![n(k[0]), Val::I64(d), n(k[1])];
                row.extend(v.sums.iter().map(|&v| Val::I64(v)));
                row
            },
        )
    }

    /// The entries of `map` in the order of their table's primary key (`order` gives the
    /// first text column, the integer column and the rest): sorted inserts touch each
    /// B-tree page once, and concurrent PostgreSQL writers lock rows in the same order.
    fn sorted<'m, K: Copy, V, const N: usize>(
        &self,
        map: &'m HashMap<K, V>,
        order: impl Fn(&K) -> (u32, i64, [u32; N]),
    ) -> Vec<(&'m K, &'m V)> {
        let mut v: Vec<(&K, &V)> = map.iter().collect();
        v.sort_by(|a, b| {
            let (a0, am, ak) = order(a.0);
            let (b0, bm, bk) = order(b.0);
            self.names
                .get(a0)
                .cmp(self.names.get(b0))
                .then(am.cmp(&bm))
                .then_with(|| {
                    ak.iter()
                        .skip(1)
                        .map(|&i| self.names.get(i))
                        .cmp(bk.iter().skip(1).map(|&i| self.names.get(i)))
                })
        });
        v
    }
}

/// Rows per multi-row upsert (well under both databases' parameter limits).
const UPSERT_ROWS: usize = 200;

/// Adds `rows` to `table` (`name (columns)`): new keys are inserted, existing ones get
/// the `added` columns summed.
fn upsert<'v, K: 'v, V: 'v>(
    conn: &mut Conn,
    table: &str,
    key: &str,
    added: &[&str],
    rows: Vec<(&'v K, &'v V)>,
    values: impl Fn(&K, &V) -> Vec<Val<'v>>,
) -> Result<(), StoreError> {
    let name = table.split_whitespace().next().unwrap_or(table);
    let set: Vec<String> = added
        .iter()
        .map(|c| format!("{c} = {name}.{c} + excluded.{c}"))
        .collect();
    let tail = format!(" ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "));
    for chunk in rows.chunks(UPSERT_ROWS) {
        let mut params: Vec<Val<'v>> = Vec::new();
        let mut groups: Vec<String> = Vec::with_capacity(chunk.len());
        for (k, v) in chunk {
            let row = values(k, v);
            groups.push(format!("({})", vec!["?"; row.len()].join(", ")));
            params.extend(row);
        }
        let sql = format!("INSERT INTO {table} VALUES {}{tail}", groups.join(", "));
        conn.exec(&sql, &params)?;
    }
    Ok(())
}

/// Fills the sums `fill` names from every stored report (migrations 7 and 10), in the
/// migration's transaction, with the rules of ingest ([`Sums::add_aggregate`]), read back
/// from the rows.
pub(crate) fn backfill(conn: &mut Conn, fill: Fill) -> Result<(), StoreError> {
    let mut sums = Sums::filling(conn.dialect(), fill);
    let reports = conn.query(
        "SELECT id, policy_domain, org_name, COALESCE(policy_p, ''), COALESCE(policy_sp, ''), \
         begin_ts, end_ts FROM aggregate_reports ORDER BY id",
        &[],
    )?;
    for cells in reports {
        let row = Row::new(&cells, "backfill reports");
        let id = row.int(0)?;
        let r = sums.report(&ReportHead {
            policy_domain: row.str(1)?,
            org_name: row.str(2)?,
            policy_p: row.str(3)?,
            policy_sp: row.str(4)?,
            begin: row.int(5)?,
            end: row.int(6)?,
        });
        let mut keys: HashMap<i64, RowKey> = HashMap::new();
        for cells in conn.query(
            "SELECT row_no, source_ip, message_count, COALESCE(disposition, ''), \
             COALESCE(dkim_aligned, ''), COALESCE(spf_aligned, ''), header_from, \
             COALESCE(envelope_from, '') FROM aggregate_records WHERE report = ?",
            &[Val::I64(id)],
        )? {
            let x = Row::new(&cells, "backfill rows");
            let key = sums.row(
                &r,
                &RowFacts {
                    source_ip: x.str(1)?,
                    messages: x.int(2)?,
                    disposition: x.str(3)?,
                    dkim_aligned: x.str(4)?,
                    spf_aligned: x.str(5)?,
                    header_from: x.str(6)?,
                    envelope_from: x.str(7)?,
                },
            );
            keys.insert(x.int(0)?, key);
        }
        // The DKIM, SPF and reason results of the rows: `(kind, table, columns)`.
        for (kind, table, cols) in [
            (
                0,
                "aggregate_dkim",
                "domain, COALESCE(selector, ''), result",
            ),
            (1, "aggregate_spf", "domain, COALESCE(scope, ''), result"),
            (2, "aggregate_reasons", "reason_type, '', ''"),
        ] {
            let sql =
                format!("SELECT row_no, {cols} FROM {table} WHERE report = ? ORDER BY row_no, seq");
            for cells in conn.query(&sql, &[Val::I64(id)])? {
                let x = Row::new(&cells, "backfill results");
                let Some(k) = keys.get(&x.int(0)?) else {
                    continue;
                };
                let (a, b, c) = (x.str(1)?, x.str(2)?, x.str(3)?);
                match kind {
                    0 => sums.dkim(k, a, b, c),
                    1 => sums.spf(k, a, b, c),
                    _ => sums.reason(k, a),
                }
            }
        }
        if sums.rows() >= BATCH_ROWS {
            sums.flush(conn)?;
        }
    }
    sums.flush(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        // 2024-01-01T00:00:00Z .. +1 day: middle on 2024-01-01.
        let jan = 1_704_067_200;
        assert_eq!(month_of(jan, jan + 86_399), 2024 * 12);
        assert_eq!(month_start(2024 * 12), jan);
        assert_eq!(month_floor(jan), 2024 * 12);
        assert_eq!(month_floor(jan - 1), 2023 * 12 + 11);
        assert_eq!(month_from(jan), 2024 * 12);
        assert_eq!(month_from(jan + 1), 2024 * 12 + 1);
        // 2024-02-29 is in February; 2024-03-01 starts March.
        let mar = month_start(2024 * 12 + 2);
        assert_eq!(month_floor(mar), 2024 * 12 + 2);
        assert_eq!(month_of(mar - 86_400, mar - 1), 2024 * 12 + 1);
        assert_eq!(month_of(0, 0), 1970 * 12);
        let apr = month_start(2024 * 12 + 3);
        assert_eq!(
            split(None, None),
            Split {
                rows: vec![],
                months: Some((None, None))
            }
        );
        assert_eq!(
            split(Some(mar), Some(apr)),
            Split {
                rows: vec![],
                months: Some((Some(2024 * 12 + 2), Some(2024 * 12 + 3)))
            }
        );
        assert_eq!(
            split(Some(mar + 1), Some(apr + 5)),
            Split {
                rows: vec![(Some(mar + 1), Some(apr + 5))],
                months: None
            }
        );
        assert_eq!(
            split(Some(mar - 1), Some(apr + 5)),
            Split {
                rows: vec![(Some(mar - 1), Some(mar)), (Some(apr), Some(apr + 5))],
                months: Some((Some(2024 * 12 + 2), Some(2024 * 12 + 3)))
            }
        );
        assert_eq!(month_of(-2, -2), 1969 * 12 + 11);
    }

    #[test]
    fn plans() {
        let day = |t: i64| t / DAY;
        let jan = 1_704_067_200; // 2024-01-01
        let (jan16, feb, feb15) = (jan + 15 * DAY, jan + 31 * DAY, jan + 45 * DAY);
        let (mar, mar14) = (feb + 29 * DAY, feb + 42 * DAY);
        let month = |first, last| Span {
            grain: Grain::Month,
            first,
            last,
        };
        let days = |a: i64, b: i64| Span {
            grain: Grain::Day,
            first: Some(day(a)),
            last: Some(day(b)),
        };
        // `--since 2024-01-16`: the rest of January from the daily sums, then months.
        assert_eq!(
            plan(Some(jan16), None, true),
            Plan {
                rows: vec![],
                sums: vec![month(Some(2024 * 12 + 1), None), days(jan16, feb)],
            }
        );
        // `--since 2024-02-15 --until 2024-03-14`: no whole month, days across its end.
        assert_eq!(
            plan(Some(feb15), Some(mar14), true),
            Plan {
                rows: vec![],
                sums: vec![days(feb15, mar14)],
            }
        );
        // One day.
        assert_eq!(
            plan(Some(feb15), Some(feb15 + DAY), true),
            Plan {
                rows: vec![],
                sums: vec![days(feb15, feb15 + DAY)],
            }
        );
        // Bounds inside days: their parts from the rows.
        assert_eq!(
            plan(Some(feb15 + 5), Some(mar + DAY + 7), true),
            Plan {
                rows: vec![
                    (Some(feb15 + 5), Some(feb15 + DAY)),
                    (Some(mar + DAY), Some(mar + DAY + 7))
                ],
                sums: vec![days(feb15 + DAY, mar + DAY)],
            }
        );
        assert_eq!(
            plan(Some(feb15 + 5), Some(feb15 + 7), true),
            Plan {
                rows: vec![(Some(feb15 + 5), Some(feb15 + 7))],
                sums: vec![],
            }
        );
        // Whole months only; all from the rows without the sums.
        assert_eq!(
            plan(Some(feb), Some(mar), true),
            Plan {
                rows: vec![],
                sums: vec![month(Some(2024 * 12 + 1), Some(2024 * 12 + 2))],
            }
        );
        assert_eq!(
            plan(Some(feb15), Some(mar14), false),
            Plan {
                rows: vec![(Some(feb15), Some(mar14))],
                sums: vec![],
            }
        );
        // Before 1970 (days rounded down) and at the ends of time: no overflow.
        assert_eq!(
            plan(Some(-2 * DAY - 5), Some(-5), true),
            Plan {
                rows: vec![(Some(-2 * DAY - 5), Some(-2 * DAY)), (Some(-DAY), Some(-5))],
                sums: vec![Span {
                    grain: Grain::Day,
                    first: Some(-2),
                    last: Some(-1)
                }],
            }
        );
        for (s, u) in [
            (i64::MIN, i64::MAX),
            (i64::MIN + 1, -1),
            (i64::MAX - 1, i64::MAX),
        ] {
            let p = plan(Some(s), Some(u), true);
            for (a, b) in &p.rows {
                assert!(a < b, "{p:?}");
            }
        }
    }
}
