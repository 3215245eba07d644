//! Reading: the summary of what reports saw, and the list of rejected inputs.

use std::net::IpAddr;

use serde::Serialize;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::backend::{Cell, Row, Val};
use crate::rollup::{self, Span};
use crate::{Store, StoreError};

/// How the summary splits time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One row per domain and UTC day.
    Day,
    /// One row per domain and calendar month (UTC).
    #[default]
    Month,
    /// One row per domain for the whole selected range.
    Total,
}

/// What [`Store::summary`] covers.
///
/// A report belongs to the day of the middle of its period (reporters' periods rarely
/// start at midnight UTC); `since` and `until` select by that instant.
#[derive(Debug, Clone, Default)]
pub struct SummaryQuery {
    /// Only this policy domain (compared lower-case, without trailing dot).
    pub domain: Option<String>,
    /// Only reports whose period's middle is at or after this Unix time.
    pub since: Option<i64>,
    /// Only reports whose period's middle is before this Unix time.
    pub until: Option<i64>,
    /// How to split time.
    pub granularity: Granularity,
    /// How many sources to list in the top and failing lists; 0 means 10.
    pub top: usize,
}

/// Messages and results of one domain in one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainPeriod {
    /// The policy domain.
    pub domain: String,
    /// The period: `YYYY-MM-DD`, `YYYY-MM`, or `all`.
    pub period: String,
    /// Aggregate reports counted.
    pub reports: i64,
    /// Messages seen.
    pub messages: i64,
    /// Messages passing DMARC (aligned SPF or aligned DKIM pass).
    pub dmarc_pass: i64,
    /// Messages with an aligned SPF pass.
    pub spf_aligned_pass: i64,
    /// Messages with an aligned DKIM pass.
    pub dkim_aligned_pass: i64,
    /// Messages with disposition `none`.
    pub disposition_none: i64,
    /// Messages with disposition `quarantine`.
    pub disposition_quarantine: i64,
    /// Messages with disposition `reject`.
    pub disposition_reject: i64,
    /// Messages with disposition `pass` (RFC 9990).
    pub disposition_pass: i64,
    /// Messages without a disposition or with an unknown one.
    pub disposition_other: i64,
}

impl DomainPeriod {
    /// `dmarc_pass / messages`, 0 when there were none.
    pub fn pass_rate(&self) -> f64 {
        rate(self.dmarc_pass, self.messages)
    }
    /// `spf_aligned_pass / messages`.
    pub fn spf_rate(&self) -> f64 {
        rate(self.spf_aligned_pass, self.messages)
    }
    /// `dkim_aligned_pass / messages`.
    pub fn dkim_rate(&self) -> f64 {
        rate(self.dkim_aligned_pass, self.messages)
    }
}

/// `part / whole`, 0 for an empty whole.
pub(crate) fn rate(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One sending source (IP address) and how its messages fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStats {
    /// The source IP address as reported.
    pub ip: String,
    /// Its reverse-DNS name, from the cache (see [`crate::rdns`]); `None` when not looked
    /// up or when it has none.
    pub rdns: Option<String>,
    /// Messages seen from it.
    pub messages: i64,
    /// Of which passing DMARC.
    pub dmarc_pass: i64,
    /// Of which with an aligned SPF pass.
    pub spf_aligned_pass: i64,
    /// Of which with an aligned DKIM pass.
    pub dkim_aligned_pass: i64,
    /// Distinct reporters that saw it.
    pub reporters: i64,
}

impl SourceStats {
    /// `dmarc_pass / messages`.
    pub fn pass_rate(&self) -> f64 {
        rate(self.dmarc_pass, self.messages)
    }
}

/// A source whose messages failed DMARC, with what happened to them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingSource {
    /// The source IP address.
    pub ip: String,
    /// Its reverse-DNS name, from the cache.
    pub rdns: Option<String>,
    /// Messages failing DMARC.
    pub failing: i64,
    /// Of which rejected.
    pub rejected: i64,
    /// Of which quarantined.
    pub quarantined: i64,
    /// A `From` domain it used (the smallest, for stability) and how many distinct ones.
    pub header_from: String,
    /// Distinct `From` domains.
    pub header_from_count: i64,
    /// An envelope `MAIL FROM` domain it used, when reported.
    pub envelope_from: Option<String>,
}

/// One reporting organisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reporter {
    /// `org_name`.
    pub org_name: String,
    /// Aggregate reports from it.
    pub reports: i64,
    /// Messages those reports count.
    pub messages: i64,
    /// Start of its earliest report period (Unix time).
    pub first: i64,
    /// End of its latest report period (Unix time).
    pub last: i64,
}

/// SMTP TLS results for one policy domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsDomain {
    /// The policy domain (`""` when a policy named none).
    pub domain: String,
    /// TLS reports covering it.
    pub reports: i64,
    /// Successful sessions.
    pub successful_sessions: i64,
    /// Failed sessions.
    pub failed_sessions: i64,
}

/// Counts over the whole store (not filtered).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Aggregate reports stored.
    pub aggregate_reports: i64,
    /// Aggregate records stored.
    pub aggregate_records: i64,
    /// Failure reports stored.
    pub failure_reports: i64,
    /// SMTP TLS reports stored.
    pub tls_reports: i64,
    /// Rejected inputs recorded.
    pub rejected: i64,
}

/// What the stored reports say, for [`SummaryQuery`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Per domain and period, domains in name order, periods in time order.
    pub domains: Vec<DomainPeriod>,
    /// Sources by volume, largest first.
    pub top_sources: Vec<SourceStats>,
    /// Sources failing DMARC by failing volume, largest first.
    pub failing_sources: Vec<FailingSource>,
    /// Reporters by messages reported, largest first.
    pub reporters: Vec<Reporter>,
    /// Failure reports in the selection, per reported domain.
    pub failure_reports: Vec<(String, i64)>,
    /// SMTP TLS results in the selection, per policy domain.
    pub tls: Vec<TlsDomain>,
    /// Store-wide counts.
    pub totals: Totals,
}

/// One rejected input (or part of one), as [`Store::rejected`] lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedEntry {
    /// Its id (for [`Store::rejected_content`]).
    pub id: i64,
    /// Where the input came from.
    pub source: String,
    /// The kind of source (`file`, `mbox`, `maildir`, `imap` ...).
    pub source_kind: String,
    /// Which part of the input failed (the container path).
    pub part: String,
    /// The short class of the error.
    pub error_kind: String,
    /// The error.
    pub error: String,
    /// Size of the kept input in bytes (0 when not kept).
    pub size: i64,
    /// SHA-256 of the kept input (hex).
    pub sha256: String,
    /// When first seen (Unix time).
    pub first_seen: i64,
    /// When last seen (Unix time).
    pub last_seen: i64,
    /// How many times it was seen.
    pub times_seen: i64,
}

/// The WHERE conditions over `aggregate_reports r` for a query, with their parameters.
struct Filter {
    sql: String,
    domain: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

impl Filter {
    fn new(q: &SummaryQuery, domain_col: &str, mid: &str) -> Filter {
        let domain = q
            .domain
            .as_deref()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase());
        let mut conds = vec!["1 = 1".to_string()];
        if domain.is_some() {
            conds.push(format!("{domain_col} = ?"));
        }
        if q.since.is_some() {
            conds.push(format!("{mid} >= ?"));
        }
        if q.until.is_some() {
            conds.push(format!("{mid} < ?"));
        }
        Filter {
            sql: conds.join(" AND "),
            domain,
            since: q.since,
            until: q.until,
        }
    }

    fn params(&self) -> Vec<Val<'_>> {
        let mut p = Vec::new();
        if let Some(d) = &self.domain {
            p.push(Val::Text(d));
        }
        if let Some(s) = self.since {
            p.push(Val::I64(s));
        }
        if let Some(u) = self.until {
            p.push(Val::I64(u));
        }
        p
    }
}

/// What the summary sums per source.
#[derive(Default)]
struct SourceSums {
    messages: i64,
    pass: i64,
    spf: i64,
    dkim: i64,
    reporters: HashSet<u32>,
    failing: i64,
    failing_rows: bool,
    rejected: i64,
    quarantined: i64,
    froms: HashSet<String>,
    envelope_from: Option<String>,
}

/// The summary's sums per source, from rows and per-source sums alike.
#[derive(Default)]
struct SourceAcc {
    /// Where each source's sums are in `sources`: a small table that stays in the cache
    /// through the hundreds of thousands of lookups of a big window (the sums themselves
    /// are large).
    index: HashMap<Box<str>, usize>,
    /// Each source's address and sums, in the order first seen.
    sources: Vec<(String, SourceSums)>,
    /// The source of the previous call: the sums come in key order, a source's outcomes
    /// of one period one after another.
    last: Option<usize>,
    orgs: HashMap<String, u32>,
}

impl SourceAcc {
    fn org(&mut self, org: &str) -> u32 {
        intern(&mut self.orgs, org)
    }

    /// Adds `n` messages of `ip` with policy-evaluated DKIM and SPF results and
    /// disposition `eval`, `From` domain `from` and envelope `MAIL FROM` `env` (`''` counts
    /// as missing, as the per-source sums keep it).
    fn add(
        &mut self,
        ip: &str,
        n: i64,
        eval: [Option<&str>; 3],
        from: &str,
        env: Option<&str>,
    ) -> &mut SourceSums {
        let src = self.add_outcome(ip, n, eval);
        if !passes(eval) {
            src.add_failing_from(from, env);
        }
        src
    }

    /// [`SourceAcc::add`] without the `From` and `MAIL FROM` domains (added for the
    /// listed failing sources only, by [`SourceSums::add_failing_from`]).
    fn add_outcome(&mut self, ip: &str, n: i64, eval: [Option<&str>; 3]) -> &mut SourceSums {
        let dkim = eval[0] == Some("pass");
        let spf = eval[1] == Some("pass");
        let pass = passes(eval);
        let i = match self.last {
            Some(i) if self.sources.get(i).is_some_and(|(x, _)| x == ip) => i,
            _ => match self.index.get(ip) {
                Some(&i) => i,
                None => {
                    self.index.insert(ip.into(), self.sources.len());
                    self.sources.push((ip.to_string(), SourceSums::default()));
                    self.sources.len() - 1
                }
            },
        };
        self.last = Some(i);
        let Some((_, src)) = self.sources.get_mut(i) else {
            unreachable!("an index into `sources`")
        };
        src.messages += n;
        if pass {
            src.pass += n;
        }
        if spf {
            src.spf += n;
        }
        if dkim {
            src.dkim += n;
        }
        if !pass {
            src.failing += n;
            src.failing_rows = true;
            match eval[2] {
                Some("reject") => src.rejected += n,
                Some("quarantine") => src.quarantined += n,
                _ => {}
            }
        }
        src
    }
}

/// Whether policy-evaluated DKIM and SPF results `eval` (then the disposition) pass DMARC.
fn passes(eval: [Option<&str>; 3]) -> bool {
    eval[0] == Some("pass") || eval[1] == Some("pass")
}

impl SourceSums {
    /// Notes the `From` domain `from` and envelope `MAIL FROM` `env` of failing messages.
    fn add_failing_from(&mut self, from: &str, env: Option<&str>) {
        if !self.froms.contains(from) {
            self.froms.insert(from.to_string());
        }
        if let Some(env) = env.filter(|e| !e.is_empty())
            && self.envelope_from.as_deref().is_none_or(|e| env < e)
        {
            self.envelope_from = Some(env.to_string());
        }
    }
}

fn intern(ids: &mut HashMap<String, u32>, s: &str) -> u32 {
    let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    match ids.get(s) {
        Some(id) => *id,
        None => *ids.entry(s.to_string()).or_insert(next),
    }
}

/// The WHERE conditions over per-source sums `s` for `q`'s domain and the periods of
/// `span`, and their parameters (the domain first).
fn span_filter<'a>(span: &Span, domain: Option<&'a str>) -> (String, Vec<Val<'a>>) {
    let mut conds = vec!["1 = 1".to_string()];
    let mut params: Vec<Val<'a>> = Vec::new();
    if let Some(d) = domain {
        conds.push("s.policy_domain = ?".to_string());
        params.push(Val::Text(d));
    }
    let (c, bounds) = span.conds();
    conds.extend(c);
    params.extend(bounds.into_iter().map(Val::I64));
    (conds.join(" AND "), params)
}

/// The middle of a report period, written so that no sum can overflow.
const AGG_MID: &str = "(r.begin_ts / 2 + r.end_ts / 2)";

fn sum(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")
}

impl Store {
    /// Summarises the stored reports: per domain and period, top sources, failing
    /// sources, reporters, failure and TLS reports. Reverse-DNS names come from the cache
    /// only; fill it first with `dmarc_owner::rdns::resolve_missing` if wanted.
    ///
    /// The sources of whole months are read from the per-source sums kept at ingest
    /// (migration 7), the whole days of the partial months at the window's ends from the
    /// daily sums (migration 10), what is left of a day from the rows.
    pub fn summary(&mut self, q: &SummaryQuery) -> Result<Summary, StoreError> {
        self.summary_with(q, true)
    }

    /// [`Store::summary`] from the report rows alone, without the sums kept at ingest: the
    /// same figures, in time proportional to the rows (a check of the kept sums).
    pub fn summary_from_rows(&mut self, q: &SummaryQuery) -> Result<Summary, StoreError> {
        self.summary_with(q, false)
    }

    fn summary_with(&mut self, q: &SummaryQuery, use_sums: bool) -> Result<Summary, StoreError> {
        let top = if q.top == 0 { 10 } else { q.top };
        let domains = if use_sums {
            self.domain_periods(q)?
        } else {
            self.domain_periods_from_rows(q)?
        };

        // The whole months and days of the window from the per-source sums kept at ingest
        // (`crate::rollup`), what is left of a day at its ends from the rows.
        let split = rollup::plan(q.since, q.until, use_sums);
        let domain = q
            .domain
            .as_deref()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase());
        let domain = domain.as_deref();
        let mut acc = SourceAcc::default();
        for &(since, until) in &split.rows {
            let part = SummaryQuery {
                since,
                until,
                ..q.clone()
            };
            self.scan_source_rows(&part, &mut acc)?;
        }
        for span in &split.sums {
            self.scan_source_sums(span, domain, &mut acc)?;
        }

        let mut sources = acc.sources;
        let mut ranked: Vec<(&String, &SourceSums)> =
            sources.iter().map(|(ip, s)| (ip, s)).collect();
        ranked.sort_by(|a, b| b.1.messages.cmp(&a.1.messages).then(a.0.cmp(b.0)));
        let mut top_sources = Vec::new();
        for (ip, s) in ranked.iter().take(top) {
            let mut reporters = s.reporters.clone();
            for span in &split.sums {
                self.source_reporters(span, domain, ip, &mut acc.orgs, &mut reporters)?;
            }
            top_sources.push(SourceStats {
                ip: (*ip).clone(),
                rdns: None,
                messages: s.messages,
                dmarc_pass: s.pass,
                spf_aligned_pass: s.spf,
                dkim_aligned_pass: s.dkim,
                reporters: reporters.len() as i64,
            });
        }
        ranked.retain(|(_, s)| s.failing_rows);
        ranked.sort_by(|a, b| b.1.failing.cmp(&a.1.failing).then(a.0.cmp(b.0)));
        let failing: Vec<String> = ranked
            .iter()
            .take(top)
            .map(|(ip, _)| (*ip).clone())
            .collect();
        let mut failing_sources = Vec::new();
        for ip in failing {
            let Some((_, s)) = acc.index.get(ip.as_str()).and_then(|&i| sources.get_mut(i)) else {
                continue;
            };
            for span in &split.sums {
                self.failing_froms(span, domain, &ip, s)?;
            }
            failing_sources.push(FailingSource {
                rdns: None,
                failing: s.failing,
                rejected: s.rejected,
                quarantined: s.quarantined,
                header_from: s.froms.iter().min().cloned().unwrap_or_default(),
                header_from_count: s.froms.len() as i64,
                envelope_from: s.envelope_from.clone(),
                ip,
            });
        }

        let reporters = self.reporters(q)?;
        let failure_reports = self.failure_report_domains(q)?;

        let tf = Filter::new(q, "COALESCE(p.policy_domain, '')", AGG_MID);
        let sql = format!(
            "SELECT COALESCE(p.policy_domain, ''), COUNT(DISTINCT r.id), {ok}, {bad} \
             FROM tls_reports r JOIN tls_policies p ON p.report = r.id WHERE {w} \
             GROUP BY COALESCE(p.policy_domain, '') ORDER BY 1",
            ok = sum("p.successful_sessions"),
            bad = sum("p.failed_sessions"),
            w = tf.sql,
        );
        let tls = self
            .conn
            .query(&sql, &tf.params())?
            .into_iter()
            .map(|row| {
                let c = |i: usize| row.get(i).map_or(0, Cell::i64);
                TlsDomain {
                    domain: row.first().map(Cell::text).unwrap_or_default(),
                    reports: c(1),
                    successful_sessions: c(2),
                    failed_sessions: c(3),
                }
            })
            .collect();

        let mut summary = Summary {
            domains,
            top_sources,
            failing_sources,
            reporters,
            failure_reports,
            tls,
            // Not the rows counted: that reads every one of them (most of the time of an
            // unfiltered summary on a big store).
            totals: self.quick_totals()?,
        };
        self.fill_rdns(&mut summary)?;
        Ok(summary)
    }

    /// Adds the report rows of `q`'s window to the per-source sums of the summary.
    fn scan_source_rows(
        &mut self,
        q: &SummaryQuery,
        acc: &mut SourceAcc,
    ) -> Result<(), StoreError> {
        let f = Filter::new(q, "r.policy_domain", AGG_MID);
        // One scan of the rows, summed here per source: grouping in SQL makes SQLite sort
        // millions of rows, which costs several times the scan.
        let sql = format!(
            "SELECT r.org_name, x.source_ip, x.message_count, x.dkim_aligned, x.spf_aligned, \
             x.disposition, x.header_from, x.envelope_from \
             FROM aggregate_reports r JOIN aggregate_records x ON x.report = r.id WHERE {w}",
            w = f.sql,
        );
        self.conn.for_each(&sql, &f.params(), |cells| {
            let row = Row::new(cells, "summary rows");
            let org = acc.org(row.str(0)?);
            let src = acc.add(
                row.str(1)?,
                row.int(2)?,
                [row.opt_str(3)?, row.opt_str(4)?, row.opt_str(5)?],
                row.str(6)?,
                row.opt_str(7)?,
            );
            src.reporters.insert(org);
            Ok(())
        })
    }

    /// Adds the per-source sums of `span` to the summary's sums, without the `From` and
    /// `MAIL FROM` domains, which [`Store::failing_froms`] reads for the listed failing
    /// sources only (grouping in SQL instead costs SQLite a sort of every row, more than
    /// the decoding it saves).
    fn scan_source_sums(
        &mut self,
        span: &Span,
        domain: Option<&str>,
        acc: &mut SourceAcc,
    ) -> Result<(), StoreError> {
        let (w, params) = span_filter(span, domain);
        let sql = format!(
            "SELECT s.source_ip, s.messages, s.dkim_aligned, s.spf_aligned, s.disposition \
             FROM {} s WHERE {w}",
            span.table("sums")
        );
        self.conn.for_each(&sql, &params, |cells| {
            let row = Row::new(cells, "per-source sums");
            acc.add_outcome(
                row.str(0)?,
                row.int(1)?,
                [row.opt_str(2)?, row.opt_str(3)?, row.opt_str(4)?],
            );
            Ok(())
        })
    }

    /// Adds the `From` and `MAIL FROM` domains of `ip`'s failing messages in `span` to
    /// `src`.
    fn failing_froms(
        &mut self,
        span: &Span,
        domain: Option<&str>,
        ip: &str,
        src: &mut SourceSums,
    ) -> Result<(), StoreError> {
        let (w, more) = span_filter(span, domain);
        let sql = format!(
            "SELECT DISTINCT s.dkim_aligned, s.spf_aligned, s.header_from, s.envelope_from \
             FROM {} s WHERE s.source_ip = ? AND {w}",
            span.table("sums")
        );
        let mut params = vec![Val::Text(ip)];
        params.extend(more);
        self.conn.for_each(&sql, &params, |cells| {
            let row = Row::new(cells, "per-source sums");
            if !passes([row.opt_str(0)?, row.opt_str(1)?, None]) {
                src.add_failing_from(row.str(2)?, row.opt_str(3)?);
            }
            Ok(())
        })
    }

    /// Adds the reporters of `ip` in `span` to `reporters`.
    fn source_reporters(
        &mut self,
        span: &Span,
        domain: Option<&str>,
        ip: &str,
        orgs: &mut HashMap<String, u32>,
        reporters: &mut HashSet<u32>,
    ) -> Result<(), StoreError> {
        let (w, more) = span_filter(span, domain);
        let sql = format!(
            "SELECT DISTINCT s.org_name FROM {} s WHERE s.source_ip = ? AND {w}",
            span.table("reporters")
        );
        let mut params = vec![Val::Text(ip)];
        params.extend(more);
        self.conn.for_each(&sql, &params, |cells| {
            let row = Row::new(cells, "source reporters");
            reporters.insert(intern(orgs, row.str(0)?));
            Ok(())
        })
    }

    /// The summary's reporters (without reading report rows: the reports' own message
    /// counts).
    pub fn reporters(&mut self, q: &SummaryQuery) -> Result<Vec<Reporter>, StoreError> {
        let f = Filter::new(q, "r.policy_domain", AGG_MID);
        let params = f.params();
        let sql = format!(
            "SELECT r.org_name, COUNT(*), {msgs}, MIN(r.begin_ts), MAX(r.end_ts) \
             FROM aggregate_reports r WHERE {w} GROUP BY r.org_name \
             ORDER BY 3 DESC, r.org_name",
            msgs = sum("r.message_count"),
            w = f.sql,
        );
        let mut reporters = Vec::new();
        for row in self.conn.query(&sql, &params)? {
            let c = |i: usize| row.get(i).map_or(0, Cell::i64);
            reporters.push(Reporter {
                org_name: row.first().map(Cell::text).unwrap_or_default(),
                reports: c(1),
                messages: c(2),
                first: c(3),
                last: c(4),
            });
        }

        Ok(reporters)
    }

    /// The summary's failure reports per reported domain.
    pub fn failure_report_domains(
        &mut self,
        q: &SummaryQuery,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let ff = Filter::new(q, "r.reported_domain", "r.arrival_ts");
        let sql = format!(
            "SELECT r.reported_domain, COUNT(*) FROM failure_reports r WHERE {} \
             GROUP BY r.reported_domain ORDER BY 2 DESC, r.reported_domain",
            ff.sql
        );
        Ok(self
            .conn
            .query(&sql, &ff.params())?
            .into_iter()
            .map(|row| {
                (
                    row.first().map(Cell::text).unwrap_or_default(),
                    row.get(1).map_or(0, Cell::i64),
                )
            })
            .collect())
    }

    /// [`Summary::domains`] for `q` from the per-report sums kept at ingest (migration 6),
    /// without reading the report rows: the same figures, in time proportional to the
    /// number of reports.
    pub fn domain_periods(&mut self, q: &SummaryQuery) -> Result<Vec<DomainPeriod>, StoreError> {
        let f = Filter::new(q, "r.policy_domain", AGG_MID);
        let sql = format!(
            "SELECT r.policy_domain, {AGG_MID} / 86400, s.messages, s.dmarc_pass, \
             s.spf_aligned_pass, s.dkim_aligned_pass, s.disposition_none, \
             s.disposition_quarantine, s.disposition_reject, s.disposition_pass \
             FROM aggregate_reports r JOIN aggregate_report_sums s ON s.report = r.id \
             WHERE {w}",
            w = f.sql,
        );
        let mut days: BTreeMap<(String, i64), (i64, [i64; 8])> = BTreeMap::new();
        self.conn.for_each(&sql, &f.params(), |cells| {
            let row = Row::new(cells, "per-report sums");
            let d = days
                .entry((row.text(0)?, row.int(1)?))
                .or_insert((0, [0; 8]));
            d.0 += 1;
            for (i, v) in d.1.iter_mut().enumerate() {
                *v += row.int(2 + i)?;
            }
            Ok(())
        })?;
        Ok(periods(
            days.into_iter().map(|(k, (n, c))| (k, n, c)),
            q.granularity,
        ))
    }

    /// [`Store::domain_periods`] from the report rows (no per-report sums).
    fn domain_periods_from_rows(
        &mut self,
        q: &SummaryQuery,
    ) -> Result<Vec<DomainPeriod>, StoreError> {
        let f = Filter::new(q, "r.policy_domain", AGG_MID);
        let sql = format!(
            "SELECT r.policy_domain, {AGG_MID} / 86400, r.id, x.message_count, x.dkim_aligned, \
             x.spf_aligned, x.disposition \
             FROM aggregate_reports r JOIN aggregate_records x ON x.report = r.id WHERE {w}",
            w = f.sql,
        );
        let mut days: BTreeMap<(String, i64), (HashSet<i64>, [i64; 8])> = BTreeMap::new();
        self.conn.for_each(&sql, &f.params(), |cells| {
            let row = Row::new(cells, "summary rows");
            let d = days.entry((row.text(0)?, row.int(1)?)).or_default();
            d.0.insert(row.int(2)?);
            let n = row.int(3)?;
            let dkim = row.opt_str(4)? == Some("pass");
            let spf = row.opt_str(5)? == Some("pass");
            let slot = match row.opt_str(6)? {
                Some("none") => Some(4),
                Some("quarantine") => Some(5),
                Some("reject") => Some(6),
                Some("pass") => Some(7),
                _ => None,
            };
            d.1[0] += n;
            for (i, on) in [(1, dkim || spf), (2, spf), (3, dkim)] {
                if on {
                    d.1[i] += n;
                }
            }
            if let Some(i) = slot {
                d.1[i] += n;
            }
            Ok(())
        })?;
        Ok(periods(
            days.into_iter()
                .map(|(k, (reports, c))| (k, reports.len() as i64, c)),
            q.granularity,
        ))
    }

    /// [`Store::totals`] without counting the record rows (the reports' own row counts,
    /// which are the rows stored).
    pub fn quick_totals(&mut self) -> Result<Totals, StoreError> {
        let mut one = |sql: &str| -> Result<i64, StoreError> {
            Ok(self.conn.query_one(sql, &[])?.map_or(0, |c| c.i64()))
        };
        Ok(Totals {
            aggregate_reports: one("SELECT COUNT(*) FROM aggregate_reports")?,
            aggregate_records: one(
                "SELECT CAST(COALESCE(SUM(record_count), 0) AS BIGINT) FROM aggregate_reports",
            )?,
            failure_reports: one("SELECT COUNT(*) FROM failure_reports")?,
            tls_reports: one("SELECT COUNT(*) FROM tls_reports")?,
            rejected: one("SELECT COUNT(*) FROM rejected")?,
        })
    }

    /// Store-wide counts.
    pub fn totals(&mut self) -> Result<Totals, StoreError> {
        let mut one = |sql: &str| -> Result<i64, StoreError> {
            Ok(self.conn.query_one(sql, &[])?.map_or(0, |c| c.i64()))
        };
        Ok(Totals {
            aggregate_reports: one("SELECT COUNT(*) FROM aggregate_reports")?,
            aggregate_records: one("SELECT COUNT(*) FROM aggregate_records")?,
            failure_reports: one("SELECT COUNT(*) FROM failure_reports")?,
            tls_reports: one("SELECT COUNT(*) FROM tls_reports")?,
            rejected: one("SELECT COUNT(*) FROM rejected")?,
        })
    }

    /// Sets the reverse-DNS names of a summary's top and failing sources from the cache
    /// (as [`Store::summary`] does; for a summary kept while the cache filled).
    pub fn fill_rdns(&mut self, s: &mut Summary) -> Result<(), StoreError> {
        for src in &mut s.top_sources {
            src.rdns = self.cached_rdns_name(&src.ip)?;
        }
        for src in &mut s.failing_sources {
            src.rdns = self.cached_rdns_name(&src.ip)?;
        }
        Ok(())
    }

    /// The IP addresses a summary would list (top and failing sources), parsed.
    pub fn summary_ips(s: &Summary) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = s
            .top_sources
            .iter()
            .map(|x| x.ip.as_str())
            .chain(s.failing_sources.iter().map(|x| x.ip.as_str()))
            .filter_map(|ip| ip.parse().ok())
            .collect();
        ips.sort();
        ips.dedup();
        ips
    }

    /// Rejected inputs, newest first.
    pub fn rejected(&mut self) -> Result<Vec<RejectedEntry>, StoreError> {
        let rows = self.conn.query(
            "SELECT j.id, j.source, j.source_kind, j.part, j.error_kind, j.error, i.size, \
             j.input_digest, j.first_seen, j.last_seen, j.times_seen \
             FROM rejected j JOIN rejected_inputs i ON i.digest = j.input_digest \
             ORDER BY j.last_seen DESC, j.id DESC",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let t = |i: usize| row.get(i).map(Cell::text).unwrap_or_default();
                let c = |i: usize| row.get(i).map_or(0, Cell::i64);
                RejectedEntry {
                    id: c(0),
                    source: t(1),
                    source_kind: t(2),
                    part: t(3),
                    error_kind: t(4),
                    error: t(5),
                    size: c(6),
                    sha256: t(7),
                    first_seen: c(8),
                    last_seen: c(9),
                    times_seen: c(10),
                }
            })
            .collect())
    }

    /// The kept bytes of a rejected input; `None` if there is no such entry or its bytes
    /// were not kept.
    pub fn rejected_content(&mut self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_one(
                "SELECT i.content FROM rejected j JOIN rejected_inputs i \
                 ON i.digest = j.input_digest WHERE j.id = ?",
                &[Val::I64(id)],
            )?
            .and_then(Cell::bytes))
    }
}

/// The per-domain-and-period rows from per-domain-and-day sums (in `(domain, day)` order):
/// reports, then messages, DMARC passes, aligned SPF and DKIM passes, and the dispositions
/// none, quarantine, reject and pass.
fn periods(
    days: impl Iterator<Item = ((String, i64), i64, [i64; 8])>,
    g: Granularity,
) -> Vec<DomainPeriod> {
    let mut domains: Vec<DomainPeriod> = Vec::new();
    for ((domain, day), reports, c) in days {
        let period = period_label(day, g);
        let known = c[4] + c[5] + c[6] + c[7];
        let dp = DomainPeriod {
            domain,
            period,
            reports,
            messages: c[0],
            dmarc_pass: c[1],
            spf_aligned_pass: c[2],
            dkim_aligned_pass: c[3],
            disposition_none: c[4],
            disposition_quarantine: c[5],
            disposition_reject: c[6],
            disposition_pass: c[7],
            disposition_other: c[0] - known,
        };
        match domains.last_mut() {
            Some(last) if last.domain == dp.domain && last.period == dp.period => {
                // Each report falls on exactly one day, so the days of a month add up.
                last.reports += dp.reports;
                last.messages += dp.messages;
                last.dmarc_pass += dp.dmarc_pass;
                last.spf_aligned_pass += dp.spf_aligned_pass;
                last.dkim_aligned_pass += dp.dkim_aligned_pass;
                last.disposition_none += dp.disposition_none;
                last.disposition_quarantine += dp.disposition_quarantine;
                last.disposition_reject += dp.disposition_reject;
                last.disposition_pass += dp.disposition_pass;
                last.disposition_other += dp.disposition_other;
            }
            _ => domains.push(dp),
        }
    }
    domains
}

/// The label of the period holding `day` (days since the epoch).
fn period_label(day: i64, g: Granularity) -> String {
    let (y, m, d) = civil_from_days(day);
    match g {
        Granularity::Day => format!("{y:04}-{m:02}-{d:02}"),
        Granularity::Month => format!("{y:04}-{m:02}"),
        Granularity::Total => "all".to_string(),
    }
}

use crate::time::civil_from_days;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(period_label(0, Granularity::Day), "1970-01-01");
        assert_eq!(period_label(11_016, Granularity::Month), "2000-02");
        assert_eq!(period_label(11_016, Granularity::Day), "2000-02-29");
        assert_eq!(period_label(5, Granularity::Total), "all");
    }
}
