//! Writing: one report per transaction, duplicates detected by key, rejected inputs kept.

use dmarc_report::aggregate::AggregateReport;
use dmarc_report::{FailureReport, Parsed, ParsedReport, ReportError, TlsReport};

use crate::backend::Val;
use crate::{Origin, Store, StoreError, now};

/// What [`Store::store_report`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The report was new and is now stored under this id (of its kind's table).
    New {
        /// `aggregate`, `failure` or `smtp_tls`.
        kind: &'static str,
        /// Its row id.
        id: i64,
    },
    /// A report with the same duplicate key was already stored (under this id); nothing
    /// was written.
    Duplicate {
        /// `aggregate`, `failure` or `smtp_tls`.
        kind: &'static str,
        /// The stored report's id.
        id: i64,
    },
}

impl Stored {
    /// True when the report was new.
    pub fn is_new(&self) -> bool {
        matches!(self, Stored::New { .. })
    }

    /// The id of the stored report.
    pub fn id(&self) -> i64 {
        match self {
            Stored::New { id, .. } | Stored::Duplicate { id, .. } => *id,
        }
    }

    /// `aggregate`, `failure` or `smtp_tls`.
    pub fn kind(&self) -> &'static str {
        match self {
            Stored::New { kind, .. } | Stored::Duplicate { kind, .. } => kind,
        }
    }
}

/// An input (or one part of it) that could not be read as a report.
#[derive(Debug, Clone, Copy)]
pub struct Rejection<'a> {
    /// Where the input came from.
    pub origin: Origin<'a>,
    /// Which part of the input failed (the container path), `""` for the whole input.
    pub part: &'a str,
    /// A short, stable class of the error (see [`error_kind`]).
    pub error_kind: &'a str,
    /// The error, for a person.
    pub error: &'a str,
    /// The original bytes of the input, kept so it can be read again later; `None` when
    /// they could not be kept (e.g. a file over the size limit).
    pub input: Option<&'a [u8]>,
}

/// The short, stable class of a parse error: `limit`, `unknown_format`, `decompress`,
/// `no_report`, `xml`, `incomplete`, `failure_report`, `tls_report` (or `other`).
pub fn error_kind(e: &ReportError) -> &'static str {
    match e {
        ReportError::Limit { .. } => "limit",
        ReportError::UnknownFormat { .. } => "unknown_format",
        ReportError::Decompress { .. } => "decompress",
        ReportError::NoReportInMessage { .. } => "no_report",
        ReportError::Xml { .. } => "xml",
        ReportError::Incomplete { .. } => "incomplete",
        ReportError::Failure { .. } => "failure_report",
        ReportError::Tls { .. } => "tls_report",
        _ => "other",
    }
}

/// Lower-case hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut s = String::with_capacity(64);
    for b in d.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Data(format!("cannot encode JSON: {e}")))
}

fn word<T: std::fmt::Display>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(|w| w.to_string())
}

/// How long a batch's transaction may stay open before the next report commits it.
const BATCH_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Rows written by one multi-row `INSERT` (well under both databases' parameter limits).
const ROWS_PER_INSERT: usize = 256;

const DKIM_INSERT: &str = "INSERT INTO aggregate_dkim (report, row_no, seq, domain, selector, \
                           result, human_result) VALUES ";
const SPF_INSERT: &str = "INSERT INTO aggregate_spf (report, row_no, seq, domain, scope, result, \
                          human_result) VALUES ";
const REASON_INSERT: &str = "INSERT INTO aggregate_reasons (report, row_no, seq, reason_type, \
                             comment) VALUES ";

/// The largest message count stored for one record. No real source sends four billion
/// messages a day to one receiver; capping hostile counts keeps every sum the summary
/// computes inside 64 bits. A capped count is noted in the report's warnings.
pub const MAX_RECORD_COUNT: u64 = 1 << 32;

fn clamp_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A record's message count as stored (capped at [`MAX_RECORD_COUNT`]).
pub(crate) fn stored_count(count: u64) -> i64 {
    clamp_u64(count.min(MAX_RECORD_COUNT))
}

impl Store {
    /// Stores one parsed report in one transaction, unless a report with the same
    /// duplicate key is already stored.
    ///
    /// Duplicate keys: aggregate reports by [`AggregateReport::report_key`] (reporter,
    /// report id, policy domain, period); SMTP TLS reports by organisation, report id,
    /// policy domains and period; failure reports, which carry no id, by reporter,
    /// reported domain and a SHA-256 digest of the report's content (with its arrival
    /// date).
    pub fn store_report(
        &mut self,
        parsed: &Parsed,
        origin: &Origin<'_>,
    ) -> Result<Stored, StoreError> {
        let part = parsed.source.to_string();
        self.conn.begin()?;
        let res = match &parsed.report {
            ParsedReport::Aggregate(a) => self.insert_aggregate(a, origin, &part),
            ParsedReport::Failure(f) => self.insert_failure(f, origin, &part),
            ParsedReport::SmtpTls(t) => self.insert_tls(t, origin, &part),
        };
        let stored = match res {
            Ok(s @ Stored::New { .. }) => s,
            Ok(s @ Stored::Duplicate { .. }) => {
                self.conn.rollback();
                return Ok(s);
            }
            Err(e) => {
                self.conn.rollback();
                return Err(e);
            }
        };
        let ParsedReport::Aggregate(a) = &parsed.report else {
            self.conn.commit()?;
            return Ok(stored);
        };
        if let Some(began) = self.batch {
            // The report's savepoint first: its sums join the batch's once it is kept.
            self.conn.commit()?;
            self.sums.add_aggregate(a);
            if self.sums.rows() >= crate::BATCH_ROWS || began.elapsed() >= BATCH_TIME {
                self.end_batch()?;
                self.begin_batch()?;
            }
        } else {
            self.sums.add_aggregate(a);
            if let Err(e) = self.sums.flush(&mut self.conn) {
                self.conn.rollback();
                return Err(e);
            }
            self.conn.commit()?;
        }
        Ok(stored)
    }

    /// Starts a batch: the reports stored until [`Store::end_batch`] share one transaction,
    /// and their per-source sums are added to the tables once, at its end, instead of once
    /// per report (most of the cost of storing a report of many rows into a big store).
    /// Each report stays atomic within the batch (a savepoint: one that fails leaves
    /// nothing, and the batch goes on). A batch commits by itself once its reports hold
    /// [`BATCH_ROWS`](crate::BATCH_ROWS) rows, so that its memory stays bounded, and after
    /// a report stored five seconds or more after its transaction began, so that other
    /// writers (another ingest, the dashboard's alert state) wait seconds at most;
    /// reports stored in a batch that is never ended (the process dies, the store is
    /// dropped) are not kept, sums and rows alike.
    pub fn begin_batch(&mut self) -> Result<(), StoreError> {
        if self.batch.is_some() {
            return Err(StoreError::Data("a batch is already open".into()));
        }
        self.conn.begin()?;
        self.batch = Some(std::time::Instant::now());
        Ok(())
    }

    /// Ends the batch started by [`Store::begin_batch`]: adds the sums of its reports and
    /// commits. On an error nothing of the batch since its last commit is kept.
    pub fn end_batch(&mut self) -> Result<(), StoreError> {
        if self.batch.take().is_none() {
            return Err(StoreError::Data("no batch is open".into()));
        }
        if let Err(e) = self.sums.flush(&mut self.conn) {
            self.conn.rollback();
            return Err(e);
        }
        self.conn.commit()
    }

    fn insert_aggregate(
        &mut self,
        a: &AggregateReport,
        origin: &Origin<'_>,
        part: &str,
    ) -> Result<Stored, StoreError> {
        let key = a.report_key();
        let m = &a.metadata;
        let p = &a.policy_published;
        let errors = json(&m.errors)?;
        let extensions = json(&a.extensions)?;
        let mut warns = a.warnings.clone();
        for (n, r) in a.records.iter().enumerate() {
            if r.count > MAX_RECORD_COUNT {
                warns.push(format!(
                    "record {}: count {} stored as {MAX_RECORD_COUNT} (the store's cap)",
                    n + 1,
                    r.count
                ));
            }
        }
        let warnings = json(&warns)?;
        let messages = a.records.iter().fold(0u64, |acc, r| {
            acc.saturating_add(r.count.min(MAX_RECORD_COUNT))
        });
        let (pp, sp, np) = (word(&p.p), word(&p.sp), word(&p.np));
        let (adkim, aspf, disc) = (word(&p.adkim), word(&p.aspf), word(&p.discovery_method));
        let id = self.conn.query_one(
            "INSERT INTO aggregate_reports (org_name, report_id, policy_domain, begin_ts, end_ts, \
             email, extra_contact_info, version, generator, errors, policy_p, policy_sp, \
             policy_np, policy_adkim, policy_aspf, policy_pct, policy_fo, policy_testing, \
             discovery_method, extensions, warnings, record_count, message_count, source, \
             source_part, ingested_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (org_name, report_id, policy_domain, begin_ts, end_ts) DO NOTHING \
             RETURNING id",
            &[
                Val::Text(&key.org_name),
                Val::Text(&key.report_id),
                Val::Text(&key.policy_domain),
                Val::I64(key.begin),
                Val::I64(key.end),
                Val::Text(&m.email),
                m.extra_contact_info.as_deref().into(),
                a.version.as_deref().into(),
                m.generator.as_deref().into(),
                Val::Text(&errors),
                pp.as_deref().into(),
                sp.as_deref().into(),
                np.as_deref().into(),
                adkim.as_deref().into(),
                aspf.as_deref().into(),
                p.pct.map(i64::from).into(),
                p.fo.as_deref().into(),
                p.testing.map(i64::from).into(),
                disc.as_deref().into(),
                Val::Text(&extensions),
                Val::Text(&warnings),
                Val::I64(clamp_u64(a.records.len() as u64)),
                Val::I64(clamp_u64(messages)),
                Val::Text(origin.location),
                Val::Text(part),
                Val::I64(now()),
            ],
        )?;
        let Some(id) = id else {
            let existing = self
                .conn
                .query_one(
                    "SELECT id FROM aggregate_reports WHERE org_name = ? AND report_id = ? \
                     AND policy_domain = ? AND begin_ts = ? AND end_ts = ?",
                    &[
                        Val::Text(&key.org_name),
                        Val::Text(&key.report_id),
                        Val::Text(&key.policy_domain),
                        Val::I64(key.begin),
                        Val::I64(key.end),
                    ],
                )?
                .ok_or_else(|| StoreError::Data("duplicate report vanished".into()))?;
            return Ok(Stored::Duplicate {
                kind: "aggregate",
                id: existing.i64(),
            });
        };
        let id = id.i64();
        self.insert_records(id, a)?;
        self.conn.exec(REPORT_SUMS, &[Val::I64(id)])?;
        Ok(Stored::New {
            kind: "aggregate",
            id,
        })
    }

    /// Inserts the records and their results, [`ROWS_PER_INSERT`] rows per statement.
    fn insert_records(&mut self, id: i64, a: &AggregateReport) -> Result<(), StoreError> {
        for (c, chunk) in a.records.chunks(ROWS_PER_INSERT).enumerate() {
            let base = c * ROWS_PER_INSERT;
            let ips: Vec<String> = chunk.iter().map(|r| r.source_ip.to_string()).collect();
            let exts: Vec<Option<String>> = chunk
                .iter()
                .map(|r| {
                    if r.extensions.is_empty() {
                        Ok(None)
                    } else {
                        json(&r.extensions).map(Some)
                    }
                })
                .collect::<Result<_, _>>()?;
            let mut params: Vec<Val<'_>> = Vec::with_capacity(chunk.len() * 11);
            for (k, r) in chunk.iter().enumerate() {
                let pe = &r.policy_evaluated;
                params.extend_from_slice(&[
                    Val::I64(id),
                    Val::I64((base + k) as i64),
                    Val::Text(ips.get(k).map_or("", String::as_str)),
                    Val::I64(stored_count(r.count)),
                    pe.disposition.as_ref().map(|d| d.as_str()).into(),
                    pe.dkim.as_ref().map(|d| d.as_str()).into(),
                    pe.spf.as_ref().map(|d| d.as_str()).into(),
                    Val::Text(&r.identifiers.header_from),
                    r.identifiers.envelope_from.as_deref().into(),
                    r.identifiers.envelope_to.as_deref().into(),
                    exts.get(k).and_then(|e| e.as_deref()).into(),
                ]);
            }
            self.insert_rows(
                "INSERT INTO aggregate_records (report, row_no, source_ip, message_count, \
                 disposition, dkim_aligned, spf_aligned, header_from, envelope_from, \
                 envelope_to, extensions) VALUES ",
                11,
                &params,
            )?;
        }

        let each = || a.records.iter().enumerate();
        self.insert_batched(
            DKIM_INSERT,
            each().flat_map(|(n, r)| {
                r.auth_results.dkim.iter().enumerate().map(move |(k, d)| {
                    [
                        Val::I64(id),
                        Val::I64(n as i64),
                        Val::I64(k as i64),
                        Val::Text(&d.domain),
                        d.selector.as_deref().into(),
                        Val::Text(d.result.as_str()),
                        d.human_result.as_deref().into(),
                    ]
                })
            }),
        )?;
        self.insert_batched(
            SPF_INSERT,
            each().flat_map(|(n, r)| {
                r.auth_results.spf.iter().enumerate().map(move |(k, x)| {
                    [
                        Val::I64(id),
                        Val::I64(n as i64),
                        Val::I64(k as i64),
                        Val::Text(&x.domain),
                        x.scope.as_ref().map(|x| x.as_str()).into(),
                        Val::Text(x.result.as_str()),
                        x.human_result.as_deref().into(),
                    ]
                })
            }),
        )?;
        self.insert_batched(
            REASON_INSERT,
            each().flat_map(|(n, r)| {
                r.policy_evaluated
                    .reasons
                    .iter()
                    .enumerate()
                    .map(move |(k, x)| {
                        [
                            Val::I64(id),
                            Val::I64(n as i64),
                            Val::I64(k as i64),
                            Val::Text(x.kind.as_str()),
                            x.comment.as_deref().into(),
                        ]
                    })
            }),
        )
    }

    /// Inserts `rows` of `W` columns each with multi-row statements of at most
    /// `ROWS_PER_INSERT` rows.
    fn insert_batched<'v, const W: usize>(
        &mut self,
        head: &str,
        rows: impl Iterator<Item = [Val<'v>; W]>,
    ) -> Result<(), StoreError> {
        let mut buf: Vec<Val<'v>> = Vec::with_capacity(ROWS_PER_INSERT * W);
        for row in rows {
            buf.extend(row);
            if buf.len() == ROWS_PER_INSERT * W {
                self.insert_rows(head, W, &buf)?;
                buf.clear();
            }
        }
        self.insert_rows(head, W, &buf)
    }

    /// Runs `head` (an `INSERT ... VALUES ` prefix) with one `(?, ...)` group of `cols`
    /// placeholders per row of `params`.
    fn insert_rows(
        &mut self,
        head: &str,
        cols: usize,
        params: &[Val<'_>],
    ) -> Result<(), StoreError> {
        if params.is_empty() || cols == 0 {
            return Ok(());
        }
        let rows = params.len() / cols;
        let group = format!("({})", vec!["?"; cols].join(", "));
        let mut sql = String::with_capacity(head.len() + rows * (group.len() + 2));
        sql.push_str(head);
        for i in 0..rows {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&group);
        }
        self.conn.exec(&sql, params)?;
        Ok(())
    }

    fn insert_failure(
        &mut self,
        f: &FailureReport,
        origin: &Origin<'_>,
        part: &str,
    ) -> Result<Stored, StoreError> {
        let reporter = f
            .reporting_mta
            .as_deref()
            .or(f.user_agent.as_deref())
            .unwrap_or("")
            .trim()
            .to_string();
        let domain = f
            .reported_domain
            .first()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default();
        let mut content = f.clone();
        content.warnings.clear();
        let report_json = json(&content)?;
        let key = sha256_hex(report_json.as_bytes());
        let rcpt = json(&f.original_rcpt_to)?;
        let ar = json(&f.authentication_results)?;
        let warnings = json(&f.warnings)?;
        let ip = f.source_ip.map(|i| i.to_string());
        let (ft, af, dr) = (
            word(&f.feedback_type),
            word(&f.auth_failure),
            word(&f.delivery_result),
        );
        let id = self.conn.query_one(
            "INSERT INTO failure_reports (reporter, report_key, reported_domain, arrival_ts, \
             feedback_type, arrival_date, source_ip, source_port, reporting_mta, user_agent, \
             original_mail_from, original_rcpt_to, auth_failure, delivery_result, \
             identity_alignment, incidents, authentication_results, report, warnings, source, \
             source_part, ingested_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (reporter, report_key, reported_domain) DO NOTHING RETURNING id",
            &[
                Val::Text(&reporter),
                Val::Text(&key),
                Val::Text(&domain),
                f.arrival_timestamp.into(),
                ft.as_deref().into(),
                f.arrival_date.as_deref().into(),
                ip.as_deref().into(),
                f.source_port.map(i64::from).into(),
                f.reporting_mta.as_deref().into(),
                f.user_agent.as_deref().into(),
                f.original_mail_from.as_deref().into(),
                Val::Text(&rcpt),
                af.as_deref().into(),
                dr.as_deref().into(),
                f.identity_alignment.map(|a| a.as_str()).into(),
                f.incidents.map(clamp_u64).into(),
                Val::Text(&ar),
                Val::Text(&report_json),
                Val::Text(&warnings),
                Val::Text(origin.location),
                Val::Text(part),
                Val::I64(now()),
            ],
        )?;
        match id {
            Some(id) => Ok(Stored::New {
                kind: "failure",
                id: id.i64(),
            }),
            None => {
                let existing = self
                    .conn
                    .query_one(
                        "SELECT id FROM failure_reports WHERE reporter = ? AND report_key = ? \
                         AND reported_domain = ?",
                        &[Val::Text(&reporter), Val::Text(&key), Val::Text(&domain)],
                    )?
                    .ok_or_else(|| StoreError::Data("duplicate report vanished".into()))?;
                Ok(Stored::Duplicate {
                    kind: "failure",
                    id: existing.i64(),
                })
            }
        }
    }

    fn insert_tls(
        &mut self,
        t: &TlsReport,
        origin: &Origin<'_>,
        part: &str,
    ) -> Result<Stored, StoreError> {
        let mut domains: Vec<String> = t
            .policies
            .iter()
            .filter_map(|p| p.policy.policy_domain.as_deref())
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect();
        domains.sort();
        domains.dedup();
        let domains = domains.join(",");
        let org = t.organization_name.trim();
        let rid = t.report_id.trim();
        let begin = t.date_range.begin.unwrap_or(0);
        let end = t.date_range.end.unwrap_or(0);
        let warnings = json(&t.warnings)?;
        let id = self.conn.query_one(
            "INSERT INTO tls_reports (organization_name, report_id, policy_domains, begin_ts, \
             end_ts, start_datetime, end_datetime, contact_info, warnings, source, source_part, \
             ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (organization_name, report_id, policy_domains, begin_ts, end_ts) \
             DO NOTHING RETURNING id",
            &[
                Val::Text(org),
                Val::Text(rid),
                Val::Text(&domains),
                Val::I64(begin),
                Val::I64(end),
                Val::Text(&t.date_range.start_datetime),
                Val::Text(&t.date_range.end_datetime),
                t.contact_info.as_deref().into(),
                Val::Text(&warnings),
                Val::Text(origin.location),
                Val::Text(part),
                Val::I64(now()),
            ],
        )?;
        let Some(id) = id else {
            let existing = self
                .conn
                .query_one(
                    "SELECT id FROM tls_reports WHERE organization_name = ? AND report_id = ? \
                     AND policy_domains = ? AND begin_ts = ? AND end_ts = ?",
                    &[
                        Val::Text(org),
                        Val::Text(rid),
                        Val::Text(&domains),
                        Val::I64(begin),
                        Val::I64(end),
                    ],
                )?
                .ok_or_else(|| StoreError::Data("duplicate report vanished".into()))?;
            return Ok(Stored::Duplicate {
                kind: "smtp_tls",
                id: existing.i64(),
            });
        };
        let id = id.i64();
        for (n, p) in t.policies.iter().enumerate() {
            let ps = json(&p.policy.policy_string)?;
            let mx = json(&p.policy.mx_host)?;
            self.conn.exec(
                "INSERT INTO tls_policies (report, seq, policy_type, policy_domain, \
                 policy_string, mx_host, successful_sessions, failed_sessions) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    Val::I64(id),
                    Val::I64(n as i64),
                    Val::Text(&p.policy.policy_type.to_string()),
                    p.policy.policy_domain.as_deref().into(),
                    Val::Text(&ps),
                    Val::Text(&mx),
                    Val::I64(clamp_u64(
                        p.summary
                            .total_successful_session_count
                            .min(MAX_RECORD_COUNT),
                    )),
                    Val::I64(clamp_u64(
                        p.summary.total_failure_session_count.min(MAX_RECORD_COUNT),
                    )),
                ],
            )?;
            for (k, d) in p.failure_details.iter().enumerate() {
                let sip = d.sending_mta_ip.map(|i| i.to_string());
                let rip = d.receiving_ip.map(|i| i.to_string());
                self.conn.exec(
                    "INSERT INTO tls_failures (report, policy_seq, seq, result_type, \
                     sending_mta_ip, receiving_mx_hostname, receiving_mx_helo, receiving_ip, \
                     failed_sessions, additional_information, failure_reason_code) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &[
                        Val::I64(id),
                        Val::I64(n as i64),
                        Val::I64(k as i64),
                        Val::Text(&d.result_type.to_string()),
                        sip.as_deref().into(),
                        d.receiving_mx_hostname.as_deref().into(),
                        d.receiving_mx_helo.as_deref().into(),
                        rip.as_deref().into(),
                        Val::I64(clamp_u64(d.failed_session_count.min(MAX_RECORD_COUNT))),
                        d.additional_information.as_deref().into(),
                        d.failure_reason_code.as_deref().into(),
                    ],
                )?;
            }
        }
        Ok(Stored::New {
            kind: "smtp_tls",
            id,
        })
    }

    /// Keeps an input (or part of one) that could not be read, with where it came from,
    /// the error and when. The same failure of the same bytes is recorded once (its
    /// `times_seen` counts the repeats). Returns the entry's id and whether it is new.
    pub fn store_rejected(&mut self, r: &Rejection<'_>) -> Result<(i64, bool), StoreError> {
        let (digest, size) = match r.input {
            Some(b) => (sha256_hex(b), clamp_u64(b.len() as u64)),
            // Not kept: identified by what is known of it instead.
            None => (
                format!(
                    "unkept:{}",
                    sha256_hex(
                        format!("{}\n{}\n{}", r.origin.location, r.part, r.error).as_bytes()
                    )
                ),
                0,
            ),
        };
        let t = now();
        self.conn.begin()?;
        let res = (|| {
            self.conn.exec(
                "INSERT INTO rejected_inputs (digest, size, content) VALUES (?, ?, ?) \
                 ON CONFLICT (digest) DO NOTHING",
                &[
                    Val::Text(&digest),
                    Val::I64(size),
                    r.input.map_or(Val::Null, Val::Bytes),
                ],
            )?;
            let id = self.conn.query_one(
                "INSERT INTO rejected (source, source_kind, part, error_kind, error, \
                 input_digest, first_seen, last_seen, times_seen) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) \
                 ON CONFLICT (input_digest, part, error) DO NOTHING RETURNING id",
                &[
                    Val::Text(r.origin.location),
                    Val::Text(r.origin.kind),
                    Val::Text(r.part),
                    Val::Text(r.error_kind),
                    Val::Text(r.error),
                    Val::Text(&digest),
                    Val::I64(t),
                    Val::I64(t),
                ],
            )?;
            if let Some(id) = id {
                return Ok((id.i64(), true));
            }
            self.conn.exec(
                "UPDATE rejected SET last_seen = ?, times_seen = times_seen + 1 \
                 WHERE input_digest = ? AND part = ? AND error = ?",
                &[
                    Val::I64(t),
                    Val::Text(&digest),
                    Val::Text(r.part),
                    Val::Text(r.error),
                ],
            )?;
            let id = self
                .conn
                .query_one(
                    "SELECT id FROM rejected WHERE input_digest = ? AND part = ? AND error = ?",
                    &[Val::Text(&digest), Val::Text(r.part), Val::Text(r.error)],
                )?
                .ok_or_else(|| StoreError::Data("rejected entry vanished".into()))?;
            Ok((id.i64(), false))
        })();
        match res {
            Ok(v) => {
                self.conn.commit()?;
                Ok(v)
            }
            Err(e) => {
                self.conn.rollback();
                Err(e)
            }
        }
    }
}
/// The per-report sums the dashboard reads instead of the rows (migration 6): the
/// summary's counting rules (`pass` exactly; DMARC passes when aligned DKIM or SPF does).
const REPORT_SUMS: &str = "INSERT INTO aggregate_report_sums (report, messages, dmarc_pass, \
     spf_aligned_pass, dkim_aligned_pass, disposition_none, disposition_quarantine, \
     disposition_reject, disposition_pass) \
     SELECT report, SUM(message_count), \
     SUM(CASE WHEN dkim_aligned = 'pass' OR spf_aligned = 'pass' THEN message_count ELSE 0 END), \
     SUM(CASE WHEN spf_aligned = 'pass' THEN message_count ELSE 0 END), \
     SUM(CASE WHEN dkim_aligned = 'pass' THEN message_count ELSE 0 END), \
     SUM(CASE WHEN disposition = 'none' THEN message_count ELSE 0 END), \
     SUM(CASE WHEN disposition = 'quarantine' THEN message_count ELSE 0 END), \
     SUM(CASE WHEN disposition = 'reject' THEN message_count ELSE 0 END), \
     SUM(CASE WHEN disposition = 'pass' THEN message_count ELSE 0 END) \
     FROM aggregate_records WHERE report = ? GROUP BY report";
