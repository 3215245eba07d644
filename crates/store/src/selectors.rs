//! What the stored aggregate reports say about a domain's DKIM signers, for the DNS check.

use crate::backend::{Cell, Val};
use crate::{Store, StoreError};

impl Store {
    /// The DKIM signing domains and selectors that aggregate reports about `policy_domain`
    /// show, with the number of messages each signed, most messages first. Rows without
    /// a selector are left out.
    pub fn dkim_selectors(
        &mut self,
        policy_domain: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.dkim_selectors_between(policy_domain, i64::MIN, i64::MAX)
    }

    /// The same, from the reports whose period's middle is in `[since, until)`.
    pub fn dkim_selectors_between(
        &mut self,
        policy_domain: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let domain = policy_domain.trim_end_matches('.').to_ascii_lowercase();
        let rows = self.conn.query(
            "SELECT RTRIM(LOWER(d.domain), '.'), LOWER(d.selector), CAST(COALESCE(SUM(x.message_count), 0) AS BIGINT) \
             FROM aggregate_dkim d \
             JOIN aggregate_records x ON x.report = d.report AND x.row_no = d.row_no \
             JOIN aggregate_reports r ON r.id = d.report \
             WHERE RTRIM(LOWER(r.policy_domain), '.') = ? AND d.selector IS NOT NULL AND d.selector <> '' \
             AND (r.begin_ts / 2 + r.end_ts / 2) >= ? AND (r.begin_ts / 2 + r.end_ts / 2) < ? \
             GROUP BY RTRIM(LOWER(d.domain), '.'), LOWER(d.selector) \
             ORDER BY 3 DESC, 1, 2",
            &[Val::Text(&domain), Val::I64(since), Val::I64(until)],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let text = |i: usize| r.get(i).map(Cell::text).unwrap_or_default();
                (text(0), text(1), r.get(2).map_or(0, Cell::i64))
            })
            .collect())
    }
}
