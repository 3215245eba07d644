//! What the stored aggregate reports say about a domain's DKIM signers, for the DNS check
//! and the DNS-record alert rule.

use std::collections::HashMap;

use crate::backend::{Cell, Val};
use crate::{Store, StoreError, rollup};

impl Store {
    /// The DKIM signing domains and selectors that aggregate reports about `policy_domain`
    /// show, with the number of messages each signed, most messages first. Rows without
    /// a selector are left out.
    pub fn dkim_selectors(
        &mut self,
        policy_domain: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.selectors_in(policy_domain, None, None)
    }

    /// The same, from the reports whose period's middle is in `[since, until)`.
    pub fn dkim_selectors_between(
        &mut self,
        policy_domain: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.selectors_in(policy_domain, Some(since), Some(until))
    }

    /// The whole months and days of the window from the per-source DKIM sums
    /// (`crate::rollup`, whose key starts with the policy domain, stored trimmed and
    /// lower-cased), what is left of a day at its ends from the rows, as the other readers
    /// split a window.
    fn selectors_in(
        &mut self,
        policy_domain: &str,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let domain = policy_domain.trim_end_matches('.').to_ascii_lowercase();
        let split = rollup::plan(since, until, true);
        let mut counts: HashMap<(String, String), i64> = HashMap::new();
        let mut add = |rows: Vec<Vec<Cell>>| {
            for r in rows {
                let text = |i: usize| r.get(i).map(Cell::text).unwrap_or_default();
                *counts.entry((text(0), text(1))).or_default() += r.get(2).map_or(0, Cell::i64);
            }
        };
        for &(since, until) in &split.rows {
            add(self.conn.query(
                "SELECT RTRIM(LOWER(d.domain), '.'), LOWER(d.selector), \
                 CAST(COALESCE(SUM(x.message_count), 0) AS BIGINT) \
                 FROM aggregate_dkim d \
                 JOIN aggregate_records x ON x.report = d.report AND x.row_no = d.row_no \
                 JOIN aggregate_reports r ON r.id = d.report \
                 WHERE RTRIM(LOWER(r.policy_domain), '.') = ? \
                 AND d.selector IS NOT NULL AND d.selector <> '' \
                 AND (r.begin_ts / 2 + r.end_ts / 2) >= ? AND (r.begin_ts / 2 + r.end_ts / 2) < ? \
                 GROUP BY RTRIM(LOWER(d.domain), '.'), LOWER(d.selector)",
                &[
                    Val::Text(&domain),
                    Val::I64(since.unwrap_or(i64::MIN)),
                    Val::I64(until.unwrap_or(i64::MAX)),
                ],
            )?);
        }
        for span in &split.sums {
            let (conds, bounds) = span.conds();
            let mut params = vec![Val::Text(&domain)];
            params.extend(bounds.into_iter().map(Val::I64));
            add(self.conn.query(
                &format!(
                    "SELECT RTRIM(LOWER(s.domain), '.'), LOWER(s.selector), \
                     CAST(COALESCE(SUM(s.messages), 0) AS BIGINT) \
                     FROM {} s WHERE s.policy_domain = ? AND s.selector <> ''{} \
                     GROUP BY RTRIM(LOWER(s.domain), '.'), LOWER(s.selector)",
                    span.table("dkim"),
                    conds
                        .iter()
                        .map(|c| format!(" AND {c}"))
                        .collect::<String>()
                ),
                &params,
            )?);
        }
        let mut out: Vec<(String, String, i64)> =
            counts.into_iter().map(|((d, s), n)| (d, s, n)).collect();
        out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        Ok(out)
    }
}
