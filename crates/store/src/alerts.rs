//! Alert state (migration 6) and the facts the alert rules of `dmarc-web` weigh.
//!
//! An alert is a condition named by its rule and subject (`new_source` /
//! `example.com 192.0.2.1`). [`Store::update_alerts`] records which conditions hold now: a
//! condition that starts to hold is *fired* (to be delivered once), one that holds still
//! stays active without a new delivery, and an active one that no longer holds is
//! *cleared*; it fires again only after it has cleared.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backend::{Row, Val};
use crate::{Store, StoreError};

/// The middle of a report period (as the summary computes it).
const MID: &str = "(r.begin_ts / 2 + r.end_ts / 2)";

/// One condition an alert rule found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// The rule (`new_source`, `pass_rate_drop` ...).
    pub rule: String,
    /// What it is about, stable while the condition holds (`example.com 192.0.2.1`).
    pub subject: String,
    /// For a person.
    pub detail: String,
}

/// A condition as the store remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertState {
    /// The rule.
    pub rule: String,
    /// The subject.
    pub subject: String,
    /// The latest detail.
    pub detail: String,
    /// True while the condition holds.
    pub active: bool,
    /// When it last started to hold (Unix time).
    pub fired_at: i64,
    /// When it was last seen holding.
    pub last_seen: i64,
    /// When it last stopped holding.
    pub cleared_at: Option<i64>,
    /// When its firing was delivered, and how (`webhook: 200; email: sent`).
    pub delivered_at: Option<i64>,
    /// What delivery said.
    pub delivery: String,
}

/// What [`Store::update_alerts`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertChanges {
    /// Conditions that started to hold: deliver them.
    pub fired: Vec<Condition>,
    /// Conditions that no longer hold.
    pub cleared: Vec<Condition>,
    /// Conditions that still hold (already delivered).
    pub ongoing: Vec<Condition>,
}

/// One source's messages in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceVolume {
    /// The policy domain.
    pub domain: String,
    /// The source address.
    pub ip: String,
    /// Messages.
    pub messages: i64,
    /// Of which passing DMARC.
    pub dmarc_pass: i64,
}

/// A [`SourceVolume`] from a row of domain, address, messages and DMARC passes.
fn volume(row: &Row<'_>) -> Result<SourceVolume, StoreError> {
    Ok(SourceVolume {
        domain: row.text(0)?,
        ip: row.text(1)?,
        messages: row.int(2)?,
        dmarc_pass: row.int(3)?,
    })
}

impl Store {
    /// Every alert condition remembered, active ones first, newest first.
    pub fn alert_states(&mut self) -> Result<Vec<AlertState>, StoreError> {
        let mut out = Vec::new();
        self.conn.for_each(
            "SELECT rule, subject, detail, active, fired_at, last_seen, cleared_at, \
             delivered_at, delivery FROM alert_state ORDER BY active DESC, fired_at DESC, \
             rule, subject LIMIT 1000",
            &[],
            |cells| {
                let row = Row::new(cells, "alert states");
                out.push(AlertState {
                    rule: row.text(0)?,
                    subject: row.text(1)?,
                    detail: row.text(2)?,
                    active: row.int(3)? != 0,
                    fired_at: row.int(4)?,
                    last_seen: row.int(5)?,
                    cleared_at: row.opt_int(6)?,
                    delivered_at: row.opt_int(7)?,
                    delivery: row.text(8)?,
                });
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Records that `holding` are the conditions of `rules` that hold at `now` (with
    /// `dry_run`, only says what would change). Conditions of other rules are left alone.
    pub fn update_alerts(
        &mut self,
        rules: &[&str],
        holding: &[Condition],
        now: i64,
        dry_run: bool,
    ) -> Result<AlertChanges, StoreError> {
        let active: Vec<AlertState> = self
            .alert_states()?
            .into_iter()
            .filter(|a| a.active && rules.contains(&a.rule.as_str()))
            .collect();
        let mut changes = AlertChanges::default();
        let is_active = |c: &Condition| {
            active
                .iter()
                .any(|a| a.rule == c.rule && a.subject == c.subject)
        };
        for c in holding {
            if is_active(c) {
                changes.ongoing.push(c.clone());
            } else {
                changes.fired.push(c.clone());
            }
        }
        for a in &active {
            if !holding
                .iter()
                .any(|c| c.rule == a.rule && c.subject == a.subject)
            {
                changes.cleared.push(Condition {
                    rule: a.rule.clone(),
                    subject: a.subject.clone(),
                    detail: a.detail.clone(),
                });
            }
        }
        if dry_run {
            return Ok(changes);
        }
        self.conn.begin()?;
        let result = (|| {
            for c in &changes.fired {
                self.conn.exec(
                    "INSERT INTO alert_state (rule, subject, detail, active, fired_at, \
                     last_seen, cleared_at, delivered_at, delivery) \
                     VALUES (?, ?, ?, 1, ?, ?, NULL, NULL, '') \
                     ON CONFLICT (rule, subject) DO UPDATE SET detail = excluded.detail, \
                     active = 1, fired_at = excluded.fired_at, last_seen = excluded.last_seen, \
                     delivered_at = NULL, delivery = ''",
                    &[
                        Val::Text(&c.rule),
                        Val::Text(&c.subject),
                        Val::Text(&c.detail),
                        Val::I64(now),
                        Val::I64(now),
                    ],
                )?;
            }
            for c in &changes.ongoing {
                self.conn.exec(
                    "UPDATE alert_state SET detail = ?, last_seen = ? WHERE rule = ? AND subject = ?",
                    &[
                        Val::Text(&c.detail),
                        Val::I64(now),
                        Val::Text(&c.rule),
                        Val::Text(&c.subject),
                    ],
                )?;
            }
            for c in &changes.cleared {
                self.conn.exec(
                    "UPDATE alert_state SET active = 0, cleared_at = ? WHERE rule = ? AND subject = ?",
                    &[Val::I64(now), Val::Text(&c.rule), Val::Text(&c.subject)],
                )?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.conn.commit()?,
            Err(e) => {
                self.conn.rollback();
                return Err(e);
            }
        }
        Ok(changes)
    }

    /// Records how a fired condition was delivered.
    pub fn alert_delivered(
        &mut self,
        c: &Condition,
        at: i64,
        delivery: &str,
    ) -> Result<(), StoreError> {
        self.conn.exec(
            "UPDATE alert_state SET delivered_at = ?, delivery = ? WHERE rule = ? AND subject = ?",
            &[
                Val::I64(at),
                Val::Text(delivery),
                Val::Text(&c.rule),
                Val::Text(&c.subject),
            ],
        )?;
        Ok(())
    }

    /// Messages per policy domain and source address in reports whose period's middle is in
    /// `[since, until)`, ordered by domain and address (byte order).
    ///
    /// The whole UTC days of the window are read from the per-source, per-day sums kept at
    /// ingest (`aggregate_source_days`, by its index on the day: migration 8), the partial
    /// days at its ends from the report rows; [`Store::source_volumes_from_rows`] reads the
    /// rows only, with the same result.
    pub fn source_volumes(
        &mut self,
        since: i64,
        until: i64,
    ) -> Result<Vec<SourceVolume>, StoreError> {
        // Day `d` of the sums holds the middles `d * 86400 ..` of the next day (a truncating
        // division: exact for positive times, which every window after 1970 has).
        let (first, last) = (since.div_euclid(86_400) + 1, until.div_euclid(86_400));
        let first = if since.rem_euclid(86_400) == 0 {
            first - 1
        } else {
            first
        };
        if since <= 0 || first >= last {
            return self.source_volumes_from_rows(since, until);
        }
        let mut acc: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        let mut add = |v: SourceVolume| {
            let e = acc.entry((v.domain, v.ip)).or_default();
            e.0 += v.messages;
            e.1 += v.dmarc_pass;
        };
        self.conn.for_each(
            "SELECT s.policy_domain, s.source_ip, CAST(SUM(s.messages) AS BIGINT), \
             CAST(SUM(s.dmarc_pass) AS BIGINT) FROM aggregate_source_days s \
             WHERE s.day >= ? AND s.day < ? GROUP BY 1, 2",
            &[Val::I64(first), Val::I64(last)],
            |cells| {
                add(volume(&Row::new(cells, "source day volumes"))?);
                Ok(())
            },
        )?;
        for (s, u) in [(since, first * 86_400), (last * 86_400, until)] {
            if s < u {
                self.source_volumes_from_rows(s, u)?
                    .into_iter()
                    .for_each(&mut add);
            }
        }
        Ok(acc
            .into_iter()
            .map(|((domain, ip), (messages, dmarc_pass))| SourceVolume {
                domain,
                ip,
                messages,
                dmarc_pass,
            })
            .collect())
    }

    /// [`Store::source_volumes`] from the report rows alone.
    pub fn source_volumes_from_rows(
        &mut self,
        since: i64,
        until: i64,
    ) -> Result<Vec<SourceVolume>, StoreError> {
        let sql = format!(
            "SELECT r.policy_domain, x.source_ip, CAST(SUM(x.message_count) AS BIGINT), \
             CAST(SUM(CASE WHEN x.dkim_aligned = 'pass' OR x.spf_aligned = 'pass' \
             THEN x.message_count ELSE 0 END) AS BIGINT) \
             FROM aggregate_reports r JOIN aggregate_records x ON x.report = r.id \
             WHERE {MID} >= ? AND {MID} < ? GROUP BY 1, 2"
        );
        let mut out = Vec::new();
        self.conn
            .for_each(&sql, &[Val::I64(since), Val::I64(until)], |cells| {
                out.push(volume(&Row::new(cells, "source volumes"))?);
                Ok(())
            })?;
        // In byte order whatever the database's collation.
        out.sort_by(|a, b| (&a.domain, &a.ip).cmp(&(&b.domain, &b.ip)));
        Ok(out)
    }

    /// The end of the latest report period of each reporter (`org_name`) whose reports'
    /// middles fall in `[since, until)`.
    pub fn reporter_last_reports(
        &mut self,
        since: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = format!(
            "SELECT r.org_name, MAX(r.end_ts) FROM aggregate_reports r \
             WHERE {MID} >= ? AND {MID} < ? GROUP BY r.org_name ORDER BY 1"
        );
        let mut out = Vec::new();
        self.conn
            .for_each(&sql, &[Val::I64(since), Val::I64(until)], |cells| {
                let row = Row::new(cells, "reporter last reports");
                out.push((row.text(0)?, row.int(1)?));
                Ok(())
            })?;
        Ok(out)
    }

    /// Failure reports per reported domain arriving in `[since, until)`.
    pub fn failure_report_counts(
        &mut self,
        since: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::new();
        self.conn.for_each(
            "SELECT reported_domain, COUNT(*) FROM failure_reports \
             WHERE COALESCE(arrival_ts, ingested_at) >= ? AND COALESCE(arrival_ts, ingested_at) < ? \
             GROUP BY reported_domain ORDER BY 1",
            &[Val::I64(since), Val::I64(until)],
            |cells| {
                let row = Row::new(cells, "failure report counts");
                out.push((row.text(0)?, row.int(1)?));
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Failed SMTP TLS sessions per policy domain and result type in reports whose
    /// period's middle is in `[since, until)`.
    pub fn tls_failed_sessions(
        &mut self,
        since: i64,
        until: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let sql = format!(
            "SELECT COALESCE(p.policy_domain, ''), f.result_type, \
             CAST(SUM(f.failed_sessions) AS BIGINT) \
             FROM tls_failures f JOIN tls_policies p ON p.report = f.report AND p.seq = f.policy_seq \
             JOIN tls_reports r ON r.id = f.report WHERE {MID} >= ? AND {MID} < ? \
             GROUP BY 1, 2 ORDER BY 1, 2"
        );
        let mut out = Vec::new();
        self.conn
            .for_each(&sql, &[Val::I64(since), Val::I64(until)], |cells| {
                let row = Row::new(cells, "TLS failed sessions");
                out.push((row.text(0)?, row.text(1)?, row.int(2)?));
                Ok(())
            })?;
        Ok(out)
    }
}
