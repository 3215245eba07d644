//! The DNS records last seen per domain (migration 9), for the alert rule on a DMARC, SPF
//! or DKIM record changing or breaking (`dmarc-web`'s `[alerts.dns_records]`).
//!
//! One row per domain, kind (`dmarc`, `spf`, `dkim`) and DNS name: the text last answered
//! (none when nothing is published), whether it was broken and why, when that text was
//! first and last seen, the text before the last change, and the temporary lookup
//! failures in a row since the last answer. The rule decides; this only keeps what it saw.

use serde::Serialize;

use crate::backend::{Row, Val};
use crate::{Store, StoreError};

/// The middle of a report period (as the summary computes it).
const MID: &str = "(r.begin_ts / 2 + r.end_ts / 2)";

/// What was last seen at one DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecordSeen {
    /// The domain the record is for (lower-case, no trailing dot).
    pub domain: String,
    /// `dmarc`, `spf` or `dkim`.
    pub kind: String,
    /// The DNS name asked (`_dmarc.example.com`, `example.com`,
    /// `s1._domainkey.example.com`).
    pub name: String,
    /// The record last answered; `None` when none was published.
    pub record: Option<String>,
    /// `ok`, `broken`, or `unknown` (no answer yet: every lookup failed temporarily).
    pub status: String,
    /// Why it was broken, one problem a line (empty when it was not).
    pub problems: String,
    /// When this text was first seen (Unix time).
    pub first_seen: i64,
    /// When it was last answered.
    pub last_seen: i64,
    /// The text before the last change (`None` when there was none, or no record).
    pub previous: Option<String>,
    /// When it last changed.
    pub changed_at: Option<i64>,
    /// Temporary lookup failures in a row since the last answer.
    pub failures: i64,
    /// When the first of them happened.
    pub failed_since: Option<i64>,
}

impl Store {
    /// What was last seen for `domain`, by kind and name.
    pub fn dns_records_seen(&mut self, domain: &str) -> Result<Vec<DnsRecordSeen>, StoreError> {
        let mut out = Vec::new();
        self.conn.for_each(
            "SELECT domain, kind, name, record, status, problems, first_seen, last_seen, \
             previous, changed_at, failures, failed_since FROM dns_records WHERE domain = ? \
             ORDER BY kind, name LIMIT 10000",
            &[Val::Text(domain)],
            |cells| {
                let row = Row::new(cells, "DNS records seen");
                out.push(DnsRecordSeen {
                    domain: row.text(0)?,
                    kind: row.text(1)?,
                    name: row.text(2)?,
                    record: row.opt_text(3)?,
                    status: row.text(4)?,
                    problems: row.text(5)?,
                    first_seen: row.int(6)?,
                    last_seen: row.int(7)?,
                    previous: row.opt_text(8)?,
                    changed_at: row.opt_int(9)?,
                    failures: row.int(10)?,
                    failed_since: row.opt_int(11)?,
                });
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Records `rows` (replacing what was kept for each domain, kind and name), in one
    /// transaction.
    pub fn save_dns_records(&mut self, rows: &[DnsRecordSeen]) -> Result<(), StoreError> {
        self.conn.begin()?;
        let result = (|| {
            for r in rows {
                self.conn.exec(
                    "INSERT INTO dns_records (domain, kind, name, record, status, problems, \
                     first_seen, last_seen, previous, changed_at, failures, failed_since) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (domain, kind, name) DO UPDATE SET record = excluded.record, \
                     status = excluded.status, problems = excluded.problems, \
                     first_seen = excluded.first_seen, last_seen = excluded.last_seen, \
                     previous = excluded.previous, changed_at = excluded.changed_at, \
                     failures = excluded.failures, failed_since = excluded.failed_since",
                    &[
                        Val::Text(&r.domain),
                        Val::Text(&r.kind),
                        Val::Text(&r.name),
                        r.record.as_deref().into(),
                        Val::Text(&r.status),
                        Val::Text(&r.problems),
                        Val::I64(r.first_seen),
                        Val::I64(r.last_seen),
                        r.previous.as_deref().into(),
                        r.changed_at.into(),
                        Val::I64(r.failures),
                        r.failed_since.into(),
                    ],
                )?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.conn.commit(),
            Err(e) => {
                self.conn.rollback();
                Err(e)
            }
        }
    }

    /// The policy domains (lower-case, no trailing dot) of aggregate reports whose period's
    /// middle is in `[since, until)`, most messages first, at most `limit`.
    pub fn report_domains(
        &mut self,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT RTRIM(LOWER(r.policy_domain), '.'), CAST(SUM(s.messages) AS BIGINT) \
             FROM aggregate_reports r JOIN aggregate_report_sums s ON s.report = r.id \
             WHERE {MID} >= ? AND {MID} < ? GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {limit}"
        );
        let mut out = Vec::new();
        self.conn
            .for_each(&sql, &[Val::I64(since), Val::I64(until)], |cells| {
                let row = Row::new(cells, "report domains");
                out.push(row.text(0)?);
                Ok(())
            })?;
        Ok(out)
    }
}
