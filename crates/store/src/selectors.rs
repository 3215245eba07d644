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
        let domain = policy_domain.trim_end_matches('.').to_ascii_lowercase();
        // From the per-source DKIM sums (`crate::rollup`), whose key starts with the policy
        // domain (stored trimmed and lower-cased): the rows of every report are not read.
        let rows = self.conn.query(
            "SELECT RTRIM(LOWER(s.domain), '.'), LOWER(s.selector), \
             CAST(COALESCE(SUM(s.messages), 0) AS BIGINT) \
             FROM aggregate_source_dkim s WHERE s.policy_domain = ? AND s.selector <> '' \
             GROUP BY RTRIM(LOWER(s.domain), '.'), LOWER(s.selector) \
             ORDER BY 3 DESC, 1, 2",
            &[Val::Text(&domain)],
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
