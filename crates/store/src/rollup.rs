//! Per-source sums kept at ingest (migration 7): the report rows summed per policy domain,
//! calendar month (UTC, of the report period's middle), source address and everything the
//! readers group by, so that [`crate::Store::summary`] and [`crate::Store::source_facts`]
//! read a few rows per source and month instead of every report row.
//!
//! Each stored report adds its rows to the sums in the transaction that stores it (a
//! refused duplicate adds nothing: its transaction is rolled back); migration 7 fills them
//! for the reports already stored with the same statements. The store never deletes a
//! report, so the sums only grow. A missing value (no disposition, no envelope `MAIL FROM`,
//! no selector ...) is kept as `''` (the key columns cannot be NULL), and the readers take
//! `''` as missing on both paths.
//!
//! The sums answer a query whose `since` and `until` fall on the first of a month (or are
//! absent); the summary reads the rows of the other, partial months of a window.

use crate::StoreError;
use crate::backend::{Conn, Val};
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
/// as the readers read it: the whole months from the sums, the rest from the rows.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Split {
    /// Windows to read from the report rows.
    pub(crate) rows: Vec<(Option<i64>, Option<i64>)>,
    /// Months `first..last` (unbounded where `None`) to read from the sums, if any.
    pub(crate) months: Option<(Option<i64>, Option<i64>)>,
}

/// Splits `since..until` into whole months and the partial months at its ends.
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

/// The statements adding one report's rows (`?` the report id, `?2` its month) to the sums.
const ADD_REPORT: [&str; 5] = [
    "INSERT INTO aggregate_source_sums (policy_domain, month, source_ip, header_from, \
     envelope_from, disposition, dkim_aligned, spf_aligned, policy_p, policy_sp, messages, \
     row_count) \
     SELECT r.policy_domain, CAST(? AS BIGINT), x.source_ip, x.header_from, COALESCE(x.envelope_from, ''), \
     COALESCE(x.disposition, ''), COALESCE(x.dkim_aligned, ''), COALESCE(x.spf_aligned, ''), \
     COALESCE(r.policy_p, ''), COALESCE(r.policy_sp, ''), SUM(x.message_count), COUNT(*) \
     FROM aggregate_records x JOIN aggregate_reports r ON r.id = x.report WHERE x.report = ? \
     GROUP BY r.policy_domain, x.source_ip, x.header_from, COALESCE(x.envelope_from, ''), \
     COALESCE(x.disposition, ''), COALESCE(x.dkim_aligned, ''), COALESCE(x.spf_aligned, ''), \
     COALESCE(r.policy_p, ''), COALESCE(r.policy_sp, '') \
     ON CONFLICT (policy_domain, month, source_ip, header_from, envelope_from, disposition, \
     dkim_aligned, spf_aligned, policy_p, policy_sp) DO UPDATE SET \
     messages = aggregate_source_sums.messages + excluded.messages, \
     row_count = aggregate_source_sums.row_count + excluded.row_count",
    "INSERT INTO aggregate_source_reporters (policy_domain, month, source_ip, org_name, \
     messages, row_count) \
     SELECT r.policy_domain, CAST(? AS BIGINT), x.source_ip, r.org_name, SUM(x.message_count), COUNT(*) \
     FROM aggregate_records x JOIN aggregate_reports r ON r.id = x.report WHERE x.report = ? \
     GROUP BY r.policy_domain, x.source_ip, r.org_name \
     ON CONFLICT (policy_domain, month, source_ip, org_name) DO UPDATE SET \
     messages = aggregate_source_reporters.messages + excluded.messages, \
     row_count = aggregate_source_reporters.row_count + excluded.row_count",
    "INSERT INTO aggregate_source_dkim (policy_domain, month, source_ip, domain, selector, \
     result, header_from, messages) \
     SELECT r.policy_domain, CAST(? AS BIGINT), x.source_ip, d.domain, COALESCE(d.selector, ''), d.result, \
     x.header_from, SUM(x.message_count) \
     FROM aggregate_dkim d JOIN aggregate_records x ON x.report = d.report AND x.row_no = d.row_no \
     JOIN aggregate_reports r ON r.id = x.report WHERE d.report = ? \
     GROUP BY r.policy_domain, x.source_ip, d.domain, COALESCE(d.selector, ''), d.result, \
     x.header_from \
     ON CONFLICT (policy_domain, month, source_ip, domain, selector, result, header_from) \
     DO UPDATE SET messages = aggregate_source_dkim.messages + excluded.messages",
    "INSERT INTO aggregate_source_spf (policy_domain, month, source_ip, domain, scope, result, \
     messages) \
     SELECT r.policy_domain, CAST(? AS BIGINT), x.source_ip, s.domain, COALESCE(s.scope, ''), s.result, \
     SUM(x.message_count) \
     FROM aggregate_spf s JOIN aggregate_records x ON x.report = s.report AND x.row_no = s.row_no \
     JOIN aggregate_reports r ON r.id = x.report WHERE s.report = ? \
     GROUP BY r.policy_domain, x.source_ip, s.domain, COALESCE(s.scope, ''), s.result \
     ON CONFLICT (policy_domain, month, source_ip, domain, scope, result) \
     DO UPDATE SET messages = aggregate_source_spf.messages + excluded.messages",
    "INSERT INTO aggregate_source_reasons (policy_domain, month, source_ip, reason_type, \
     messages) \
     SELECT r.policy_domain, CAST(? AS BIGINT), x.source_ip, a.reason_type, SUM(x.message_count) \
     FROM aggregate_reasons a JOIN aggregate_records x ON x.report = a.report AND x.row_no = a.row_no \
     JOIN aggregate_reports r ON r.id = x.report WHERE a.report = ? \
     GROUP BY r.policy_domain, x.source_ip, a.reason_type \
     ON CONFLICT (policy_domain, month, source_ip, reason_type) \
     DO UPDATE SET messages = aggregate_source_reasons.messages + excluded.messages",
];

/// The statement adding one report's rows to the per-source, per-day sums (parameters:
/// the report's day, then its id): each report adds 1 to the reports of each source it
/// lists.
const ADD_DAY: &str = "INSERT INTO aggregate_source_days (source_ip, day, policy_domain, messages, dmarc_pass, \
     spf_aligned_pass, dkim_aligned_pass, reports) \
     SELECT x.source_ip, CAST(? AS BIGINT), \
     r.policy_domain, SUM(x.message_count), \
     SUM(CASE WHEN x.dkim_aligned = 'pass' OR x.spf_aligned = 'pass' THEN x.message_count ELSE 0 END), \
     SUM(CASE WHEN x.spf_aligned = 'pass' THEN x.message_count ELSE 0 END), \
     SUM(CASE WHEN x.dkim_aligned = 'pass' THEN x.message_count ELSE 0 END), 1 \
     FROM aggregate_records x JOIN aggregate_reports r ON r.id = x.report WHERE x.report = ? \
     GROUP BY x.source_ip, r.policy_domain \
     ON CONFLICT (source_ip, day, policy_domain) DO UPDATE SET \
     messages = aggregate_source_days.messages + excluded.messages, \
     dmarc_pass = aggregate_source_days.dmarc_pass + excluded.dmarc_pass, \
     spf_aligned_pass = aggregate_source_days.spf_aligned_pass + excluded.spf_aligned_pass, \
     dkim_aligned_pass = aggregate_source_days.dkim_aligned_pass + excluded.dkim_aligned_pass, \
     reports = aggregate_source_days.reports + excluded.reports";

/// Adds the rows of stored report `report` (period `begin`..`end`) to the sums; run in the
/// transaction that stores it.
pub(crate) fn add_report(
    conn: &mut Conn,
    report: i64,
    begin: i64,
    end: i64,
) -> Result<(), StoreError> {
    let month = month_of(begin, end);
    // The day of the period's middle, as the readers' `(begin / 2 + end / 2) / 86400`.
    let day = (begin / 2 + end / 2) / 86_400;
    for sql in ADD_REPORT {
        conn.exec(sql, &[Val::I64(month), Val::I64(report)])?;
    }
    conn.exec(ADD_DAY, &[Val::I64(day), Val::I64(report)])?;
    Ok(())
}

/// Fills the sums from every stored report (migration 7), in the migration's transaction.
pub(crate) fn backfill(conn: &mut Conn) -> Result<(), StoreError> {
    let reports = conn.query("SELECT id, begin_ts, end_ts FROM aggregate_reports", &[])?;
    for row in reports {
        let c = |i: usize| row.get(i).map_or(0, crate::backend::Cell::i64);
        add_report(conn, c(0), c(1), c(2))?;
    }
    Ok(())
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
}
