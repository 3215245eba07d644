//! Reports out: the reports this receiver made (aggregate and failure), one delivery row per
//! destination with its state, and the health of each destination address.
//!
//! The delivery rows are the send log that makes sending safe to repeat: a report is made
//! once per (kind, policy domain, period) and its bytes are kept, so a resumed run sends
//! exactly what the first run would have sent; a destination's row moves `pending` ->
//! `sending` -> `sent` (or `deferred` with a next attempt, or `failed` for good), and is
//! never sent to again once it has left `pending`/`deferred`. A run that dies between
//! handing a message to the relay and recording `sent` leaves `sending`; the next run
//! defers it and sends it again, with the same Message-ID and report id, so that a
//! duplicate is recognisable (a report lost is worse than one recognised twice). Destinations that were not used at all (not authorised, too large,
//! excluded) are rows too, with status `skipped` and the reason.

use crate::backend::{Cell, Row, Val};
use dmarc_receiver::failure::FailureCandidate;

use crate::{Store, StoreError};

/// A report this receiver made, with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingReport {
    /// The row id.
    pub id: i64,
    /// `aggregate` or `failure`.
    pub kind: String,
    /// The policy domain reported on.
    pub policy_domain: String,
    /// The period, Unix seconds, `[begin, end]` as the report's `date_range` says.
    pub begin: i64,
    /// End of the period.
    pub end: i64,
    /// The report id (RFC 9990 Report-ID).
    pub report_id: String,
    /// The attachment's file name.
    pub filename: String,
    /// The attachment's media type (`application/gzip`, `message/feedback-report` ...).
    pub media_type: String,
    /// The attachment (the gzip of the XML for an aggregate report).
    pub content: Vec<u8>,
    /// Rows in the report.
    pub record_count: u64,
    /// Messages counted in the report.
    pub message_count: u64,
    /// When it was made.
    pub created_at: i64,
}

/// The state of one destination of one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// To be sent.
    Pending,
    /// Handed to the transport; the outcome is not recorded yet.
    Sending,
    /// Accepted by the relay (or the sendmail command).
    Sent,
    /// A temporary failure; tried again at `next_attempt`.
    Deferred,
    /// A permanent failure, or too many temporary ones: never tried again.
    Failed,
    /// Not used (not authorised, too large, excluded, not a mailto URI ...).
    Skipped,
    /// A run stopped while sending: maybe delivered (rows of earlier versions; now such
    /// a delivery is deferred and sent again, see
    /// [`Store::retry_interrupted_deliveries`]).
    Unknown,
}

impl DeliveryStatus {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Deferred => "deferred",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
            DeliveryStatus::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => DeliveryStatus::Pending,
            "sending" => DeliveryStatus::Sending,
            "sent" => DeliveryStatus::Sent,
            "deferred" => DeliveryStatus::Deferred,
            "failed" => DeliveryStatus::Failed,
            "skipped" => DeliveryStatus::Skipped,
            "unknown" => DeliveryStatus::Unknown,
            other => {
                return Err(StoreError::Data(format!(
                    "report_deliveries.status: unknown status {other:?}"
                )));
            }
        })
    }

    /// True when the destination may still be sent to.
    pub fn is_open(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Deferred)
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One destination of one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The report's row id.
    pub report: i64,
    /// The destination URI as published (`mailto:dmarc@example.com!10m`).
    pub destination: String,
    /// The mail address reports go to (empty for a URI without one).
    pub address: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Why, for a person (the relay's answer, the reason for a skip ...).
    pub detail: String,
    /// Attempts made.
    pub attempts: u64,
    /// When a deferred delivery is tried again.
    pub next_attempt: Option<i64>,
    /// When the row last changed.
    pub updated_at: i64,
    /// When it was sent.
    pub sent_at: Option<i64>,
    /// The Message-ID of the message sent.
    pub message_id: Option<String>,
}

/// A failure-report candidate as queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedCandidate {
    /// The row id.
    pub id: i64,
    /// What the receiver kept.
    pub candidate: FailureCandidate,
    /// `queued`, `reported`, `dropped`.
    pub status: String,
    /// Why, for a person (why it was dropped, which report).
    pub detail: String,
    /// The failure report made from it.
    pub report: Option<i64>,
    /// When it was queued.
    pub queued_at: i64,
}

/// What is known of a destination address across reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationHealth {
    /// The address.
    pub address: String,
    /// Failed deliveries (bounces) in a row.
    pub consecutive_failures: u64,
    /// No report goes there before this time.
    pub suppressed_until: Option<i64>,
    /// The last failure, or why it is suppressed.
    pub reason: String,
}

fn bad(col: &str, what: &str) -> StoreError {
    StoreError::Data(format!("{col}: {what}"))
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const REPORT_COLS: &str = "id, kind, policy_domain, begin_ts, end_ts, report_id, filename, \
                           media_type, content, record_count, message_count, created_at";

fn decode_report(cells: Vec<Cell>) -> Result<OutgoingReport, StoreError> {
    let r = Row::new(&cells, "outgoing_reports");
    Ok(OutgoingReport {
        id: r.int(0)?,
        kind: r.text(1)?,
        policy_domain: r.text(2)?,
        begin: r.int(3)?,
        end: r.int(4)?,
        report_id: r.text(5)?,
        filename: r.text(6)?,
        media_type: r.text(7)?,
        content: r.bytes(8)?,
        record_count: r.count(9)?,
        message_count: r.count(10)?,
        created_at: r.int(11)?,
    })
}

const DELIVERY_COLS: &str = "report, destination, address, status, detail, attempts, \
                             next_attempt, updated_at, sent_at, message_id";

fn decode_delivery(cells: Vec<Cell>) -> Result<Delivery, StoreError> {
    let r = Row::new(&cells, "report_deliveries");
    Ok(Delivery {
        report: r.int(0)?,
        destination: r.text(1)?,
        address: r.text(2)?,
        status: DeliveryStatus::parse(r.str(3)?)?,
        detail: r.text(4)?,
        attempts: r.count(5)?,
        next_attempt: r.opt_int(6)?,
        updated_at: r.int(7)?,
        sent_at: r.opt_int(8)?,
        message_id: r.opt_text(9)?,
    })
}

const CANDIDATE_COLS: &str = "id, candidate, status, detail, report, queued_at";

fn decode_candidate(cells: Vec<Cell>) -> Result<QueuedCandidate, StoreError> {
    let r = Row::new(&cells, "failure_candidates");
    let candidate = serde_json::from_str(r.str(1)?)
        .map_err(|e| bad("failure_candidates.candidate", &e.to_string()))?;
    Ok(QueuedCandidate {
        id: r.int(0)?,
        candidate,
        status: r.text(2)?,
        detail: r.text(3)?,
        report: r.opt_int(4)?,
        queued_at: r.int(5)?,
    })
}

impl Store {
    /// The (policy domain, observation period start) pairs with observations in periods
    /// starting before `before`, ordered; messages without a policy domain are left out.
    pub fn observed_periods(&mut self, before: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self.conn.query(
            "SELECT DISTINCT policy_domain, period_start FROM observations \
             WHERE period_start < ? AND policy_domain <> '' ORDER BY policy_domain, period_start",
            &[Val::I64(before)],
        )?;
        rows.into_iter()
            .map(|cells| {
                let r = Row::new(&cells, "observed periods");
                Ok((r.text(0)?, r.int(1)?))
            })
            .collect()
    }

    /// The report of `kind` made for this policy domain and period, if one was.
    pub fn outgoing_report(
        &mut self,
        kind: &str,
        policy_domain: &str,
        begin: i64,
        end: i64,
    ) -> Result<Option<OutgoingReport>, StoreError> {
        let mut rows = self.conn.query(
            &format!(
                "SELECT {REPORT_COLS} FROM outgoing_reports \
                 WHERE kind = ? AND policy_domain = ? AND begin_ts = ? AND end_ts = ?"
            ),
            &[
                Val::Text(kind),
                Val::Text(policy_domain),
                Val::I64(begin),
                Val::I64(end),
            ],
        )?;
        rows.pop().map(decode_report).transpose()
    }

    /// Keeps a report made now; when one of the same kind, policy domain and period exists
    /// already (another run made it first), that one is returned and `report` is dropped.
    /// `report.id` is ignored; `report.created_at` is kept (the run's now: failure reports
    /// are rate-limited by it).
    pub fn save_outgoing_report(
        &mut self,
        report: &OutgoingReport,
    ) -> Result<OutgoingReport, StoreError> {
        self.conn.exec(
            "INSERT INTO outgoing_reports (kind, policy_domain, begin_ts, end_ts, report_id, \
             filename, media_type, content, record_count, message_count, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (kind, policy_domain, begin_ts, end_ts) DO NOTHING",
            &[
                Val::Text(&report.kind),
                Val::Text(&report.policy_domain),
                Val::I64(report.begin),
                Val::I64(report.end),
                Val::Text(&report.report_id),
                Val::Text(&report.filename),
                Val::Text(&report.media_type),
                Val::Bytes(&report.content),
                Val::I64(clamp(report.record_count)),
                Val::I64(clamp(report.message_count)),
                Val::I64(report.created_at),
            ],
        )?;
        self.outgoing_report(
            &report.kind,
            &report.policy_domain,
            report.begin,
            report.end,
        )?
        .ok_or_else(|| bad("outgoing_reports", "the report just saved is not there"))
    }

    /// Reports of `kind` that have a destination still open (pending, or deferred and due
    /// at `now`), oldest first.
    pub fn reports_with_open_deliveries(
        &mut self,
        kind: &str,
        now: i64,
    ) -> Result<Vec<OutgoingReport>, StoreError> {
        let rows = self.conn.query(
            &format!(
                "SELECT {REPORT_COLS} FROM outgoing_reports WHERE kind = ? AND id IN \
                 (SELECT report FROM report_deliveries WHERE status = 'pending' \
                  OR (status = 'deferred' AND (next_attempt IS NULL OR next_attempt <= ?))) \
                 ORDER BY begin_ts, policy_domain"
            ),
            &[Val::Text(kind), Val::I64(now)],
        )?;
        rows.into_iter().map(decode_report).collect()
    }

    /// The reports of `kind` whose period overlaps `[begin, end)`, by period and domain.
    pub fn outgoing_reports(
        &mut self,
        kind: &str,
        begin: i64,
        end: i64,
    ) -> Result<Vec<OutgoingReport>, StoreError> {
        let rows = self.conn.query(
            &format!(
                "SELECT {REPORT_COLS} FROM outgoing_reports WHERE kind = ? AND begin_ts < ? \
                 AND end_ts >= ? ORDER BY begin_ts, policy_domain"
            ),
            &[Val::Text(kind), Val::I64(end), Val::I64(begin)],
        )?;
        rows.into_iter().map(decode_report).collect()
    }

    /// The destinations of a report, in the order they were recorded.
    pub fn deliveries(&mut self, report: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows = self.conn.query(
            &format!(
                "SELECT {DELIVERY_COLS} FROM report_deliveries WHERE report = ? \
                 ORDER BY destination"
            ),
            &[Val::I64(report)],
        )?;
        rows.into_iter().map(decode_delivery).collect()
    }

    /// The delivery whose message had this Message-ID (angle brackets included), if one
    /// was sent.
    pub fn delivery_by_message_id(
        &mut self,
        message_id: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        let rows = self.conn.query(
            &format!(
                "SELECT {DELIVERY_COLS} FROM report_deliveries WHERE message_id = ? \
                 ORDER BY report LIMIT 1"
            ),
            &[Val::Text(message_id.trim())],
        )?;
        rows.into_iter().next().map(decode_delivery).transpose()
    }

    /// Records a destination of a report, unless it is recorded already (a resumed run
    /// keeps what the first run decided). Returns true when the row is new.
    pub fn add_delivery(&mut self, d: &Delivery) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            &format!(
                "INSERT INTO report_deliveries ({DELIVERY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (report, destination) DO NOTHING"
            ),
            &[
                Val::I64(d.report),
                Val::Text(&d.destination),
                Val::Text(&d.address),
                Val::Text(d.status.as_str()),
                Val::Text(&d.detail),
                Val::I64(clamp(d.attempts)),
                d.next_attempt.into(),
                Val::I64(d.updated_at),
                d.sent_at.into(),
                d.message_id.as_deref().into(),
            ],
        )?;
        Ok(n > 0)
    }

    /// Moves a destination from an open state (pending or deferred) to `sending`, counting
    /// the attempt. Returns false when it is not open any more (another run took it):
    /// the caller must then not send.
    pub fn claim_delivery(
        &mut self,
        report: i64,
        destination: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            "UPDATE report_deliveries SET status = 'sending', attempts = attempts + 1, \
             updated_at = ? WHERE report = ? AND destination = ? \
             AND status IN ('pending', 'deferred')",
            &[Val::I64(now), Val::I64(report), Val::Text(destination)],
        )?;
        Ok(n > 0)
    }

    /// Records the outcome of a destination: its new status, why, and (deferred) when to
    /// try again or (sent) the Message-ID.
    #[allow(clippy::too_many_arguments)] // one UPDATE's columns, each named at the call
    pub fn finish_delivery(
        &mut self,
        report: i64,
        destination: &str,
        status: DeliveryStatus,
        detail: &str,
        next_attempt: Option<i64>,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let sent_at = (status == DeliveryStatus::Sent).then_some(now);
        self.conn.exec(
            "UPDATE report_deliveries SET status = ?, detail = ?, next_attempt = ?, \
             updated_at = ?, sent_at = COALESCE(?, sent_at), \
             message_id = COALESCE(?, message_id) WHERE report = ? AND destination = ?",
            &[
                Val::Text(status.as_str()),
                Val::Text(detail),
                next_attempt.into(),
                Val::I64(now),
                sent_at.into(),
                message_id.into(),
                Val::I64(report),
                Val::Text(destination),
            ],
        )?;
        Ok(())
    }

    /// Takes back every delivery a stopped run left `sending` (or an earlier version left
    /// `unknown`): deferred to `retry_at`, to be sent again. The message may have been
    /// delivered; sent again it has the same Message-ID and report id (both derive from
    /// the report and the destination), so the receiver recognises the duplicate (RFC 9990
    /// §3: a report sent again keeps its identifiers). Returns how many.
    pub fn retry_interrupted_deliveries(
        &mut self,
        now: i64,
        retry_at: i64,
    ) -> Result<u64, StoreError> {
        self.conn.exec(
            "UPDATE report_deliveries SET status = 'deferred', updated_at = ?, \
             next_attempt = ?, detail = 'a run stopped while handing this report to the \
             transport (it may have been delivered): sent again with the same Message-ID \
             and report id' WHERE status IN ('sending', 'unknown')",
            &[Val::I64(now), Val::I64(retry_at)],
        )
    }

    /// Messages sent to `address` since `since` (for the per-destination rate limit).
    pub fn sent_to_since(&mut self, address: &str, since: i64) -> Result<u64, StoreError> {
        let n = self
            .conn
            .query_one(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM report_deliveries \
                 WHERE address = ? AND status = 'sent' AND sent_at >= ?",
                &[Val::Text(address), Val::I64(since)],
            )?
            .map_or(0, |c| c.i64());
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// What is known of a destination address.
    pub fn destination_health(
        &mut self,
        address: &str,
    ) -> Result<Option<DestinationHealth>, StoreError> {
        let mut rows = self.conn.query(
            "SELECT address, consecutive_failures, suppressed_until, reason \
             FROM report_destinations WHERE address = ?",
            &[Val::Text(address)],
        )?;
        let Some(cells) = rows.pop() else {
            return Ok(None);
        };
        let r = Row::new(&cells, "report_destinations");
        Ok(Some(DestinationHealth {
            address: r.text(0)?,
            consecutive_failures: r.count(1)?,
            suppressed_until: r.opt_int(2)?,
            reason: r.text(3)?,
        }))
    }

    /// Records a delivery outcome for an address: a success clears its failures; a
    /// permanent failure (a bounce) counts one more, and when `bounces_to_suppress` are
    /// reached in a row the address is suppressed until `now + suppress_for`. Returns the
    /// new health.
    pub fn record_destination_outcome(
        &mut self,
        address: &str,
        delivered: bool,
        reason: &str,
        bounces_to_suppress: u64,
        suppress_for: i64,
        now: i64,
    ) -> Result<DestinationHealth, StoreError> {
        let prev = self.destination_health(address)?;
        let failures = if delivered {
            0
        } else {
            prev.as_ref().map_or(0, |h| h.consecutive_failures) + 1
        };
        let suppressed_until =
            if !delivered && bounces_to_suppress > 0 && failures >= bounces_to_suppress {
                Some(now.saturating_add(suppress_for))
            } else if delivered {
                None
            } else {
                prev.as_ref().and_then(|h| h.suppressed_until)
            };
        let reason = if delivered { "" } else { reason };
        self.conn.exec(
            "INSERT INTO report_destinations (address, consecutive_failures, suppressed_until, \
             reason, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET \
             consecutive_failures = excluded.consecutive_failures, \
             suppressed_until = excluded.suppressed_until, reason = excluded.reason, \
             updated_at = excluded.updated_at",
            &[
                Val::Text(address),
                Val::I64(clamp(failures)),
                suppressed_until.into(),
                Val::Text(reason),
                Val::I64(now),
            ],
        )?;
        Ok(DestinationHealth {
            address: address.to_owned(),
            consecutive_failures: failures,
            suppressed_until,
            reason: reason.to_owned(),
        })
    }

    /// Queues failure-report candidates (one transaction). Returns how many.
    pub fn queue_failure_candidates(
        &mut self,
        candidates: &[FailureCandidate],
    ) -> Result<u64, StoreError> {
        if candidates.is_empty() {
            return Ok(0);
        }
        let now = crate::now();
        self.conn.begin()?;
        let res = (|| {
            for c in candidates {
                let json = serde_json::to_string(c)
                    .map_err(|e| bad("failure_candidates.candidate", &e.to_string()))?;
                self.conn.exec(
                    "INSERT INTO failure_candidates (policy_domain, arrival_ts, source_ip, \
                     candidate, status, detail, report, queued_at) \
                     VALUES (?, ?, ?, ?, 'queued', '', NULL, ?)",
                    &[
                        Val::Text(&c.policy_domain),
                        Val::I64(c.arrival),
                        Val::Text(&c.source_ip.to_string()),
                        Val::Text(&json),
                        Val::I64(now),
                    ],
                )?;
            }
            Ok::<_, StoreError>(candidates.len() as u64)
        })();
        match res {
            Ok(n) => {
                self.conn.commit()?;
                Ok(n)
            }
            Err(e) => {
                self.conn.rollback();
                Err(e)
            }
        }
    }

    /// Candidates in `status` (`queued` for those waiting), oldest arrival first, at
    /// most `limit`.
    pub fn failure_candidates(
        &mut self,
        status: &str,
        limit: u64,
    ) -> Result<Vec<QueuedCandidate>, StoreError> {
        let rows = self.conn.query(
            &format!(
                "SELECT {CANDIDATE_COLS} FROM failure_candidates \
                 WHERE status = ? ORDER BY arrival_ts, id LIMIT ?"
            ),
            &[Val::Text(status), Val::I64(clamp(limit))],
        )?;
        rows.into_iter().map(decode_candidate).collect()
    }

    /// The candidate a failure report was made from.
    pub fn failure_candidate_of_report(
        &mut self,
        report: i64,
    ) -> Result<Option<QueuedCandidate>, StoreError> {
        let rows = self.conn.query(
            &format!(
                "SELECT {CANDIDATE_COLS} FROM failure_candidates \
                 WHERE report = ? ORDER BY id LIMIT 1"
            ),
            &[Val::I64(report)],
        )?;
        rows.into_iter().next().map(decode_candidate).transpose()
    }

    /// Records what became of a candidate: `reported` (with its report), `merged` (a like
    /// incident counted in another candidate's report, given) or `dropped` (rate limit,
    /// report mail, no destination ...), and why.
    pub fn finish_failure_candidate(
        &mut self,
        id: i64,
        status: &str,
        detail: &str,
        report: Option<i64>,
    ) -> Result<(), StoreError> {
        self.conn.exec(
            "UPDATE failure_candidates SET status = ?, detail = ?, report = ? WHERE id = ?",
            &[
                Val::Text(status),
                Val::Text(detail),
                report.into(),
                Val::I64(id),
            ],
        )?;
        Ok(())
    }

    /// Reports of `kind` about `policy_domain` made since `since` (the per-domain rate
    /// limit of failure reports).
    pub fn reports_made_since(
        &mut self,
        kind: &str,
        policy_domain: &str,
        since: i64,
    ) -> Result<u64, StoreError> {
        let n = self
            .conn
            .query_one(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM outgoing_reports \
                 WHERE kind = ? AND policy_domain = ? AND created_at >= ?",
                &[Val::Text(kind), Val::Text(policy_domain), Val::I64(since)],
            )?
            .map_or(0, |c| c.i64());
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
