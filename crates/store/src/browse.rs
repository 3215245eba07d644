//! Reading for the dashboard: lists of stored reports, one report's rows, one source's
//! history, failure reports, SMTP TLS failures, and the policy each domain publishes.
//!
//! Every list is bounded ([`MAX_PAGE`]), newest first, and filtered like the summary: a
//! report belongs to the instant of the middle of its period, failure reports to their
//! arrival time.

use serde::Serialize;

use crate::backend::{Row, Val};
use crate::{Store, StoreError};

/// The middle of a report period (as the summary computes it).
const MID: &str = "(r.begin_ts / 2 + r.end_ts / 2)";

/// The most rows any list returns.
pub const MAX_PAGE: usize = 1000;

/// What a list covers: filters and a page.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this policy (or reported) domain, compared lower-case without trailing dot.
    pub domain: Option<String>,
    /// Only this reporting organisation (`org_name`, exact).
    pub reporter: Option<String>,
    /// Only reports whose period's middle (arrival, for failure reports) is at or after.
    pub since: Option<i64>,
    /// Only reports whose period's middle (arrival) is before.
    pub until: Option<i64>,
    /// How many rows to skip.
    pub offset: usize,
    /// How many rows at most; 0 or more than [`MAX_PAGE`] means [`MAX_PAGE`].
    pub limit: usize,
}

impl ListQuery {
    fn limit(&self) -> i64 {
        let l = if self.limit == 0 || self.limit > MAX_PAGE {
            MAX_PAGE
        } else {
            self.limit
        };
        l as i64
    }

    fn domain(&self) -> Option<String> {
        self.domain
            .as_deref()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
    }

    /// The `WHERE` text over `domain_col`, `org_col` and `time_expr`, and its parameters.
    fn filter<'a>(
        &'a self,
        domain: &'a Option<String>,
        domain_col: &str,
        org_col: &str,
        time_expr: &str,
    ) -> (String, Vec<Val<'a>>) {
        let mut conds = vec!["1 = 1".to_string()];
        let mut params = Vec::new();
        if let Some(d) = domain {
            conds.push(format!("{domain_col} = ?"));
            params.push(Val::Text(d));
        }
        if let Some(s) = self.since {
            conds.push(format!("{time_expr} >= ?"));
            params.push(Val::I64(s));
        }
        if let Some(u) = self.until {
            conds.push(format!("{time_expr} < ?"));
            params.push(Val::I64(u));
        }
        if let Some(r) = &self.reporter {
            conds.push(format!("{org_col} = ?"));
            params.push(Val::Text(r));
        }
        (conds.join(" AND "), params)
    }
}

/// One stored aggregate report, without its rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateReportEntry {
    /// The store's id.
    pub id: i64,
    /// `org_name`.
    pub org_name: String,
    /// The reporter's contact address.
    pub email: String,
    /// `report_id`.
    pub report_id: String,
    /// The policy domain.
    pub policy_domain: String,
    /// Period start (Unix time).
    pub begin: i64,
    /// Period end (Unix time).
    pub end: i64,
    /// The published policy the reporter saw: `p`.
    pub policy_p: Option<String>,
    /// `sp`.
    pub policy_sp: Option<String>,
    /// `pct`.
    pub policy_pct: Option<i64>,
    /// `t=y` (RFC 9989 testing mode) when 1.
    pub policy_testing: Option<i64>,
    /// Rows in the report.
    pub record_count: i64,
    /// Messages the rows count.
    pub message_count: i64,
    /// Where the report was read from (a path, `path#message 3`, an IMAP URL ...).
    pub source: String,
    /// The part of that input it was (an attachment name, a zip member ...).
    pub source_part: String,
    /// When it was stored (Unix time).
    pub ingested_at: i64,
}

/// One SPF or DKIM result of a report row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthResult {
    /// The domain checked (`d=`, or the SPF domain).
    pub domain: String,
    /// The DKIM selector, or the SPF scope (`mfrom`, `helo`), when reported.
    pub detail: Option<String>,
    /// The result (`pass`, `fail`, ...).
    pub result: String,
    /// The reporter's human-readable result, when given.
    pub human_result: Option<String>,
}

/// One row of an aggregate report, with its authentication results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    /// Its position in the report (0-based).
    pub row_no: i64,
    /// `source_ip`.
    pub source_ip: String,
    /// `count`.
    pub message_count: i64,
    /// The disposition applied.
    pub disposition: Option<String>,
    /// The policy-evaluated DKIM result.
    pub dkim_aligned: Option<String>,
    /// The policy-evaluated SPF result.
    pub spf_aligned: Option<String>,
    /// `header_from`.
    pub header_from: String,
    /// `envelope_from`.
    pub envelope_from: Option<String>,
    /// `envelope_to`.
    pub envelope_to: Option<String>,
    /// DKIM results.
    pub dkim: Vec<AuthResult>,
    /// SPF results.
    pub spf: Vec<AuthResult>,
    /// Policy override reasons, `type` and comment.
    pub reasons: Vec<(String, Option<String>)>,
}

/// The policy a domain published, as the most recent aggregate report saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedPolicy {
    /// The policy domain.
    pub domain: String,
    /// `p`.
    pub p: Option<String>,
    /// `sp`.
    pub sp: Option<String>,
    /// `pct`.
    pub pct: Option<i64>,
    /// `t=y` when 1.
    pub testing: Option<i64>,
    /// The end of the period of the report it comes from.
    pub seen: i64,
}

impl PublishedPolicy {
    /// The stage in words: `none`, `quarantine pct=25`, `reject t=y` ...
    pub fn stage(&self) -> String {
        let mut s = self.p.clone().unwrap_or_else(|| "unknown".into());
        if let Some(pct) = self.pct.filter(|p| *p < 100) {
            s.push_str(&format!(" pct={pct}"));
        }
        if self.testing == Some(1) {
            s.push_str(" t=y");
        }
        s
    }
}

/// One source's messages on one UTC day (of the reports' period middles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// The policy domain of the reports.
    pub policy_domain: String,
    /// Messages.
    pub messages: i64,
    /// Of which passing DMARC (aligned DKIM or SPF pass).
    pub dmarc_pass: i64,
    /// Of which with aligned SPF passing.
    pub spf_aligned_pass: i64,
    /// Of which with aligned DKIM passing.
    pub dkim_aligned_pass: i64,
    /// Reports counting them.
    pub reports: i64,
}

/// One source's SPF or DKIM results for one domain, summed over its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceAuth {
    /// The domain checked.
    pub domain: String,
    /// The DKIM selector or the SPF scope.
    pub detail: Option<String>,
    /// The result.
    pub result: String,
    /// Messages of the rows carrying it.
    pub messages: i64,
}

/// Everything the store knows about one source address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceDetail {
    /// The address as reported.
    pub ip: String,
    /// Its cached reverse-DNS name and whether it was forward-confirmed.
    pub rdns: Option<String>,
    /// Whether the name resolves back to the address (`None`: not checked).
    pub rdns_confirmed: Option<bool>,
    /// Per day and policy domain.
    pub days: Vec<SourceDay>,
    /// DKIM results.
    pub dkim: Vec<SourceAuth>,
    /// SPF results.
    pub spf: Vec<SourceAuth>,
    /// `From` domains with messages and DMARC passes.
    pub header_from: Vec<(String, i64, i64)>,
    /// Reporters with messages.
    pub reporters: Vec<(String, i64)>,
}

/// One stored failure report (ARF), without the whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureReportEntry {
    /// The store's id.
    pub id: i64,
    /// Who sent it.
    pub reporter: String,
    /// The domain it is about.
    pub reported_domain: String,
    /// The original message's arrival (Unix time), when given.
    pub arrival: Option<i64>,
    /// `Feedback-Type`.
    pub feedback_type: Option<String>,
    /// `Source-IP`.
    pub source_ip: Option<String>,
    /// `Original-Mail-From`.
    pub original_mail_from: Option<String>,
    /// `Original-Rcpt-To` (several joined).
    pub original_rcpt_to: String,
    /// `Auth-Failure`.
    pub auth_failure: Option<String>,
    /// `Delivery-Result`.
    pub delivery_result: Option<String>,
    /// `Identity-Alignment`.
    pub identity_alignment: Option<String>,
    /// `Incidents`.
    pub incidents: Option<i64>,
    /// The `Authentication-Results` fields it carried.
    pub authentication_results: String,
    /// Where it was read from.
    pub source: String,
    /// When it was stored.
    pub ingested_at: i64,
}

/// SMTP TLS failures of one kind at one MX, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFailure {
    /// The policy domain.
    pub policy_domain: String,
    /// The receiving MX host name (`""` when not reported).
    pub mx: String,
    /// `result-type` (`starttls-not-supported`, `certificate-expired` ...).
    pub result_type: String,
    /// Failed sessions.
    pub failed_sessions: i64,
    /// Reports giving it.
    pub reports: i64,
    /// One `additional-information` or `failure-reason-code`, when given.
    pub detail: Option<String>,
}

/// SMTP TLS sessions of one policy at one MX pattern, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsPolicySessions {
    /// The policy domain.
    pub policy_domain: String,
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    /// The policy's MX host pattern (`""` when none).
    pub mx_host: String,
    /// Successful sessions.
    pub successful_sessions: i64,
    /// Failed sessions.
    pub failed_sessions: i64,
    /// Reports.
    pub reports: i64,
}

fn day_label(day: i64) -> String {
    let (y, m, d) = crate::time::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

impl Store {
    /// A value that changes whenever a report is stored or an input rejected (counts and
    /// newest ids of the report tables, the latest rejection): a reader can keep what it
    /// computed from the reports until it changes. Cheap: it reads no report rows.
    pub fn change_marker(&mut self) -> Result<Vec<i64>, StoreError> {
        let row = self.conn.query(
            "SELECT (SELECT COUNT(*) FROM aggregate_reports), \
             (SELECT COALESCE(MAX(id), 0) FROM aggregate_reports), \
             (SELECT COUNT(*) FROM failure_reports), \
             (SELECT COALESCE(MAX(id), 0) FROM failure_reports), \
             (SELECT COUNT(*) FROM tls_reports), (SELECT COALESCE(MAX(id), 0) FROM tls_reports), \
             (SELECT COUNT(*) FROM rejected), (SELECT COALESCE(MAX(last_seen), 0) FROM rejected)",
            &[],
        )?;
        Ok(row
            .first()
            .map(|r| r.iter().map(|c| c.i64()).collect())
            .unwrap_or_default())
    }

    /// Stored aggregate reports, newest period first.
    pub fn aggregate_reports(
        &mut self,
        q: &ListQuery,
    ) -> Result<Vec<AggregateReportEntry>, StoreError> {
        let domain = q.domain();
        let (w, mut params) = q.filter(&domain, "r.policy_domain", "r.org_name", MID);
        let limit = q.limit();
        let offset = q.offset as i64;
        params.push(Val::I64(limit));
        params.push(Val::I64(offset));
        let sql = format!(
            "SELECT r.id, r.org_name, r.email, r.report_id, r.policy_domain, r.begin_ts, \
             r.end_ts, r.policy_p, r.policy_sp, r.policy_pct, r.policy_testing, \
             r.record_count, r.message_count, r.source, r.source_part, r.ingested_at \
             FROM aggregate_reports r WHERE {w} ORDER BY r.end_ts DESC, r.id DESC \
             LIMIT ? OFFSET ?"
        );
        let mut out = Vec::new();
        self.conn.for_each(&sql, &params, |cells| {
            let row = Row::new(cells, "aggregate report list");
            out.push(report_entry(&row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// One aggregate report and its rows; `None` when there is no such id.
    pub fn aggregate_report(
        &mut self,
        id: i64,
    ) -> Result<Option<(AggregateReportEntry, Vec<ReportRow>)>, StoreError> {
        let mut entry = None;
        self.conn.for_each(
            "SELECT r.id, r.org_name, r.email, r.report_id, r.policy_domain, r.begin_ts, \
             r.end_ts, r.policy_p, r.policy_sp, r.policy_pct, r.policy_testing, \
             r.record_count, r.message_count, r.source, r.source_part, r.ingested_at \
             FROM aggregate_reports r WHERE r.id = ?",
            &[Val::I64(id)],
            |cells| {
                entry = Some(report_entry(&Row::new(cells, "aggregate report"))?);
                Ok(())
            },
        )?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        let mut rows: Vec<ReportRow> = Vec::new();
        self.conn.for_each(
            "SELECT row_no, source_ip, message_count, disposition, dkim_aligned, spf_aligned, \
             header_from, envelope_from, envelope_to FROM aggregate_records WHERE report = ? \
             ORDER BY row_no",
            &[Val::I64(id)],
            |cells| {
                let row = Row::new(cells, "aggregate report rows");
                rows.push(ReportRow {
                    row_no: row.int(0)?,
                    source_ip: row.text(1)?,
                    message_count: row.int(2)?,
                    disposition: row.opt_text(3)?,
                    dkim_aligned: row.opt_text(4)?,
                    spf_aligned: row.opt_text(5)?,
                    header_from: row.text(6)?,
                    envelope_from: row.opt_text(7)?,
                    envelope_to: row.opt_text(8)?,
                    dkim: Vec::new(),
                    spf: Vec::new(),
                    reasons: Vec::new(),
                });
                Ok(())
            },
        )?;
        let index = |rows: &[ReportRow], n: i64| rows.binary_search_by_key(&n, |r| r.row_no).ok();
        for (table, col) in [("aggregate_dkim", "selector"), ("aggregate_spf", "scope")] {
            let sql = format!(
                "SELECT row_no, domain, {col}, result, human_result FROM {table} \
                 WHERE report = ? ORDER BY row_no, seq"
            );
            self.conn.for_each(&sql, &[Val::I64(id)], |cells| {
                let row = Row::new(cells, "aggregate report results");
                if let Some(i) = index(&rows, row.int(0)?) {
                    let r = AuthResult {
                        domain: row.text(1)?,
                        detail: row.opt_text(2)?,
                        result: row.text(3)?,
                        human_result: row.opt_text(4)?,
                    };
                    if table == "aggregate_dkim" {
                        rows[i].dkim.push(r);
                    } else {
                        rows[i].spf.push(r);
                    }
                }
                Ok(())
            })?;
        }
        self.conn.for_each(
            "SELECT row_no, reason_type, comment FROM aggregate_reasons WHERE report = ? \
             ORDER BY row_no, seq",
            &[Val::I64(id)],
            |cells| {
                let row = Row::new(cells, "aggregate report reasons");
                if let Some(i) = index(&rows, row.int(0)?) {
                    rows[i].reasons.push((row.text(1)?, row.opt_text(2)?));
                }
                Ok(())
            },
        )?;
        Ok(Some((entry, rows)))
    }

    /// The policy each domain published, from its most recent aggregate report (in the
    /// window of `q`), domains in name order.
    pub fn published_policies(
        &mut self,
        q: &ListQuery,
    ) -> Result<Vec<PublishedPolicy>, StoreError> {
        let domain = q.domain();
        let (w, params) = q.filter(&domain, "r.policy_domain", "r.org_name", MID);
        let sql = format!(
            "SELECT r.policy_domain, r.policy_p, r.policy_sp, r.policy_pct, r.policy_testing, \
             r.end_ts FROM aggregate_reports r JOIN (SELECT r.policy_domain AS d, \
             MAX(r.end_ts) AS e FROM aggregate_reports r WHERE {w} GROUP BY r.policy_domain) l \
             ON l.d = r.policy_domain AND l.e = r.end_ts ORDER BY r.policy_domain, r.id DESC"
        );
        let mut out: Vec<PublishedPolicy> = Vec::new();
        self.conn.for_each(&sql, &params, |cells| {
            let row = Row::new(cells, "published policies");
            let domain = row.text(0)?;
            if out.last().is_some_and(|p| p.domain == domain) {
                return Ok(());
            }
            out.push(PublishedPolicy {
                domain,
                p: row.opt_text(1)?,
                sp: row.opt_text(2)?,
                pct: row.opt_int(3)?,
                testing: row.opt_int(4)?,
                seen: row.int(5)?,
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// What the stored aggregate reports say about one source address (in the window
    /// and domain of `q`).
    ///
    /// Without a reporter filter and with a window of whole months (or none), read from the
    /// sums kept at ingest (migration 7: per source and day, and per source and month);
    /// otherwise from the report rows.
    pub fn source_detail(&mut self, ip: &str, q: &ListQuery) -> Result<SourceDetail, StoreError> {
        let split = crate::rollup::split(q.since, q.until);
        match split.months {
            Some((first, last))
                if q.reporter.is_none()
                    && split.rows.is_empty()
                    && q.since.is_none_or(|s| s > 0)
                    && q.until.is_none_or(|u| u > 0) =>
            {
                self.source_detail_from_sums(ip, q, first, last)
            }
            _ => self.source_detail_from_rows(ip, q),
        }
    }

    /// [`Store::source_detail`] from the kept sums, for the months `first..last`.
    fn source_detail_from_sums(
        &mut self,
        ip: &str,
        q: &ListQuery,
        first: Option<i64>,
        last: Option<i64>,
    ) -> Result<SourceDetail, StoreError> {
        let domain = q.domain();
        let mut conds = vec!["s.source_ip = ?"];
        let mut params = vec![Val::Text(ip)];
        if let Some(d) = &domain {
            conds.push("s.policy_domain = ?");
            params.push(Val::Text(d));
        }
        let mut month_params = params.clone();
        let mut month_conds = conds.clone();
        if let Some(s) = q.since {
            conds.push("s.day >= ?");
            params.push(Val::I64(s / 86_400));
        }
        if let Some(u) = q.until {
            conds.push("s.day < ?");
            params.push(Val::I64(u / 86_400));
        }
        if let Some(m) = first {
            month_conds.push("s.month >= ?");
            month_params.push(Val::I64(m));
        }
        if let Some(m) = last {
            month_conds.push("s.month < ?");
            month_params.push(Val::I64(m));
        }
        let w = conds.join(" AND ");
        let mw = month_conds.join(" AND ");
        let m = sum("s.messages");
        self.source_detail_of(
            ip,
            &DetailQueries {
                days: format!(
                    "SELECT s.day, s.policy_domain, s.messages, s.dmarc_pass, \
                     s.spf_aligned_pass, s.dkim_aligned_pass, s.reports \
                     FROM aggregate_source_days s WHERE {w} ORDER BY 1, 2"
                ),
                days_params: params.clone(),
                auth: &|table, col| {
                    format!(
                        "SELECT s.domain, NULLIF(s.{col}, ''), s.result, {m} \
                         FROM aggregate_source_{table} s WHERE {mw} \
                         GROUP BY s.domain, NULLIF(s.{col}, ''), s.result ORDER BY 4 DESC, 1, 2, 3"
                    )
                },
                header_from: format!(
                    "SELECT s.header_from, {m}, {p} FROM aggregate_source_sums s WHERE {mw} \
                     GROUP BY s.header_from ORDER BY 2 DESC, 1",
                    p = sum(
                        "CASE WHEN s.dkim_aligned = 'pass' OR s.spf_aligned = 'pass' \
                         THEN s.messages ELSE 0 END"
                    ),
                ),
                reporters: format!(
                    "SELECT s.org_name, {m} FROM aggregate_source_reporters s WHERE {mw} \
                     GROUP BY s.org_name ORDER BY 2 DESC, 1"
                ),
                params: month_params,
            },
        )
    }

    /// [`Store::source_detail`] from the report rows alone (a check of the kept sums).
    pub fn source_detail_from_rows(
        &mut self,
        ip: &str,
        q: &ListQuery,
    ) -> Result<SourceDetail, StoreError> {
        let domain = q.domain();
        let (w, mut params) = q.filter(&domain, "r.policy_domain", "r.org_name", MID);
        params.insert(0, Val::Text(ip));
        let from = "FROM aggregate_records x JOIN aggregate_reports r ON r.id = x.report";
        let m = sum("x.message_count");
        let p = sum(
            "CASE WHEN x.dkim_aligned = 'pass' OR x.spf_aligned = 'pass' \
             THEN x.message_count ELSE 0 END",
        );
        self.source_detail_of(
            ip,
            &DetailQueries {
                days: format!(
                    "SELECT {MID} / 86400, r.policy_domain, {m}, {p}, {s}, {d}, \
                     COUNT(DISTINCT r.id) {from} WHERE x.source_ip = ? AND {w} \
                     GROUP BY 1, 2 ORDER BY 1, 2",
                    s = sum("CASE WHEN x.spf_aligned = 'pass' THEN x.message_count ELSE 0 END"),
                    d = sum("CASE WHEN x.dkim_aligned = 'pass' THEN x.message_count ELSE 0 END"),
                ),
                days_params: params.clone(),
                auth: &|table, col| {
                    format!(
                        "SELECT a.domain, NULLIF(a.{col}, ''), a.result, {m} {from} \
                         JOIN aggregate_{table} a ON a.report = x.report AND a.row_no = x.row_no \
                         WHERE x.source_ip = ? AND {w} \
                         GROUP BY a.domain, NULLIF(a.{col}, ''), a.result ORDER BY 4 DESC, 1, 2, 3"
                    )
                },
                header_from: format!(
                    "SELECT x.header_from, {m}, {p} {from} WHERE x.source_ip = ? AND {w} \
                     GROUP BY x.header_from ORDER BY 2 DESC, 1"
                ),
                reporters: format!(
                    "SELECT r.org_name, {m} {from} WHERE x.source_ip = ? AND {w} \
                     GROUP BY r.org_name ORDER BY 2 DESC, 1"
                ),
                params,
            },
        )
    }

    /// Runs the queries of a [`SourceDetail`] (from the sums or from the rows: the same
    /// columns) and assembles it with the cached reverse DNS of `ip`.
    fn source_detail_of(
        &mut self,
        ip: &str,
        d: &DetailQueries<'_, '_>,
    ) -> Result<SourceDetail, StoreError> {
        let mut days = Vec::new();
        self.conn.for_each(&d.days, &d.days_params, |cells| {
            let row = Row::new(cells, "source days");
            days.push(SourceDay {
                day: day_label(row.int(0)?),
                policy_domain: row.text(1)?,
                messages: row.int(2)?,
                dmarc_pass: row.int(3)?,
                spf_aligned_pass: row.int(4)?,
                dkim_aligned_pass: row.int(5)?,
                reports: row.int(6)?,
            });
            Ok(())
        })?;
        let mut auth = |table: &str, col: &str| -> Result<Vec<SourceAuth>, StoreError> {
            let mut out = Vec::new();
            self.conn
                .for_each(&(d.auth)(table, col), &d.params, |cells| {
                    let row = Row::new(cells, "source results");
                    out.push(SourceAuth {
                        domain: row.text(0)?,
                        detail: row.opt_text(1)?,
                        result: row.text(2)?,
                        messages: row.int(3)?,
                    });
                    Ok(())
                })?;
            Ok(out)
        };
        let dkim = auth("dkim", "selector")?;
        let spf = auth("spf", "scope")?;
        let mut header_from = Vec::new();
        self.conn.for_each(&d.header_from, &d.params, |cells| {
            let row = Row::new(cells, "source from domains");
            header_from.push((row.text(0)?, row.int(1)?, row.int(2)?));
            Ok(())
        })?;
        let mut reporters = Vec::new();
        self.conn.for_each(&d.reporters, &d.params, |cells| {
            let row = Row::new(cells, "source reporters");
            reporters.push((row.text(0)?, row.int(1)?));
            Ok(())
        })?;
        let cached = self.cached_rdns(ip)?;
        Ok(SourceDetail {
            ip: ip.to_string(),
            rdns: cached.as_ref().and_then(|c| c.name.clone()),
            rdns_confirmed: cached.and_then(|c| c.confirmed),
            days,
            dkim,
            spf,
            header_from,
            reporters,
        })
    }

    /// Stored failure reports, newest arrival first.
    pub fn failure_reports(
        &mut self,
        q: &ListQuery,
    ) -> Result<Vec<FailureReportEntry>, StoreError> {
        let domain = q.domain();
        let (w, mut params) = q.filter(&domain, "r.reported_domain", "r.reporter", "r.arrival_ts");
        params.push(Val::I64(q.limit()));
        params.push(Val::I64(q.offset as i64));
        let sql = format!(
            "SELECT r.id, r.reporter, r.reported_domain, r.arrival_ts, r.feedback_type, \
             r.source_ip, r.original_mail_from, r.original_rcpt_to, r.auth_failure, \
             r.delivery_result, r.identity_alignment, r.incidents, r.authentication_results, \
             r.source, r.ingested_at FROM failure_reports r WHERE {w} \
             ORDER BY r.arrival_ts DESC, r.id DESC LIMIT ? OFFSET ?"
        );
        let mut out = Vec::new();
        self.conn.for_each(&sql, &params, |cells| {
            let row = Row::new(cells, "failure report list");
            out.push(FailureReportEntry {
                id: row.int(0)?,
                reporter: row.text(1)?,
                reported_domain: row.text(2)?,
                arrival: row.opt_int(3)?,
                feedback_type: row.opt_text(4)?,
                source_ip: row.opt_text(5)?,
                original_mail_from: row.opt_text(6)?,
                original_rcpt_to: row.text(7)?,
                auth_failure: row.opt_text(8)?,
                delivery_result: row.opt_text(9)?,
                identity_alignment: row.opt_text(10)?,
                incidents: row.opt_int(11)?,
                authentication_results: row.text(12)?,
                source: row.text(13)?,
                ingested_at: row.int(14)?,
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// SMTP TLS failures by policy domain, MX and result type, most failed sessions first.
    pub fn tls_failures(&mut self, q: &ListQuery) -> Result<Vec<TlsFailure>, StoreError> {
        let domain = q.domain();
        let (w, params) = q.filter(
            &domain,
            "COALESCE(p.policy_domain, '')",
            "r.organization_name",
            MID,
        );
        let sql = format!(
            "SELECT COALESCE(p.policy_domain, ''), COALESCE(f.receiving_mx_hostname, ''), \
             f.result_type, {n}, COUNT(DISTINCT r.id), \
             MIN(COALESCE(f.failure_reason_code, f.additional_information)) \
             FROM tls_failures f JOIN tls_policies p ON p.report = f.report AND p.seq = f.policy_seq \
             JOIN tls_reports r ON r.id = f.report WHERE {w} GROUP BY 1, 2, 3 \
             ORDER BY 4 DESC, 1, 2, 3 LIMIT {MAX_PAGE}",
            n = sum("f.failed_sessions"),
        );
        let mut out = Vec::new();
        self.conn.for_each(&sql, &params, |cells| {
            let row = Row::new(cells, "TLS failures");
            out.push(TlsFailure {
                policy_domain: row.text(0)?,
                mx: row.text(1)?,
                result_type: row.text(2)?,
                failed_sessions: row.int(3)?,
                reports: row.int(4)?,
                detail: row.opt_text(5)?,
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// SMTP TLS sessions by policy domain, policy type and MX pattern.
    pub fn tls_sessions(&mut self, q: &ListQuery) -> Result<Vec<TlsPolicySessions>, StoreError> {
        let domain = q.domain();
        let (w, params) = q.filter(
            &domain,
            "COALESCE(p.policy_domain, '')",
            "r.organization_name",
            MID,
        );
        let sql = format!(
            "SELECT COALESCE(p.policy_domain, ''), p.policy_type, p.mx_host, {ok}, {bad}, \
             COUNT(DISTINCT r.id) FROM tls_policies p JOIN tls_reports r ON r.id = p.report \
             WHERE {w} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT {MAX_PAGE}",
            ok = sum("p.successful_sessions"),
            bad = sum("p.failed_sessions"),
        );
        let mut out = Vec::new();
        self.conn.for_each(&sql, &params, |cells| {
            let row = Row::new(cells, "TLS sessions");
            out.push(TlsPolicySessions {
                policy_domain: row.text(0)?,
                policy_type: row.text(1)?,
                mx_host: row.text(2)?,
                successful_sessions: row.int(3)?,
                failed_sessions: row.int(4)?,
                reports: row.int(5)?,
            });
            Ok(())
        })?;
        Ok(out)
    }
}

/// The queries behind a [`SourceDetail`]: its days (with their parameters), the DKIM or
/// SPF results of a table (`dkim` or `spf`, its detail column), the From domains and the
/// reporters (these three with `params`).
struct DetailQueries<'q, 'v> {
    days: String,
    days_params: Vec<Val<'v>>,
    auth: &'q dyn Fn(&str, &str) -> String,
    header_from: String,
    reporters: String,
    params: Vec<Val<'v>>,
}

fn sum(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")
}

fn report_entry(row: &Row<'_>) -> Result<AggregateReportEntry, StoreError> {
    Ok(AggregateReportEntry {
        id: row.int(0)?,
        org_name: row.text(1)?,
        email: row.text(2)?,
        report_id: row.text(3)?,
        policy_domain: row.text(4)?,
        begin: row.int(5)?,
        end: row.int(6)?,
        policy_p: row.opt_text(7)?,
        policy_sp: row.opt_text(8)?,
        policy_pct: row.opt_int(9)?,
        policy_testing: row.opt_int(10)?,
        record_count: row.int(11)?,
        message_count: row.int(12)?,
        source: row.text(13)?,
        source_part: row.text(14)?,
        ingested_at: row.int(15)?,
    })
}
