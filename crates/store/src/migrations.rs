//! Numbered schema migrations, the same text for SQLite and PostgreSQL.
//!
//! Applied in order, each in its own transaction, and recorded in `schema_migrations`; a
//! database whose recorded version is newer than this program knows is refused rather than
//! written to. Never edit a released migration: add the next number.

use crate::StoreError;
use crate::backend::{Conn, Dialect, Val, dialect_sql};

/// `(version, name, SQL)`. `{id}`, `{blob}` and `{without_rowid}` are the dialect tokens
/// of [`dialect_sql`].
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "reports, records, auth results, failure and TLS reports, rejected inputs, rDNS cache",
        r#"
CREATE TABLE aggregate_reports (
    id {id},
    org_name TEXT NOT NULL,
    report_id TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    begin_ts BIGINT NOT NULL,
    end_ts BIGINT NOT NULL,
    email TEXT NOT NULL,
    extra_contact_info TEXT,
    version TEXT,
    generator TEXT,
    errors TEXT NOT NULL,
    policy_p TEXT,
    policy_sp TEXT,
    policy_np TEXT,
    policy_adkim TEXT,
    policy_aspf TEXT,
    policy_pct BIGINT,
    policy_fo TEXT,
    policy_testing BIGINT,
    discovery_method TEXT,
    extensions TEXT NOT NULL,
    warnings TEXT NOT NULL,
    record_count BIGINT NOT NULL,
    message_count BIGINT NOT NULL,
    source TEXT NOT NULL,
    source_part TEXT NOT NULL,
    ingested_at BIGINT NOT NULL,
    UNIQUE (org_name, report_id, policy_domain, begin_ts, end_ts)
);
CREATE INDEX aggregate_reports_domain ON aggregate_reports (policy_domain, begin_ts);

CREATE TABLE aggregate_records (
    report BIGINT NOT NULL REFERENCES aggregate_reports (id) ON DELETE CASCADE,
    row_no BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    message_count BIGINT NOT NULL,
    disposition TEXT,
    dkim_aligned TEXT,
    spf_aligned TEXT,
    header_from TEXT NOT NULL,
    envelope_from TEXT,
    envelope_to TEXT,
    extensions TEXT,
    PRIMARY KEY (report, row_no)
) {without_rowid};

CREATE TABLE aggregate_reasons (
    report BIGINT NOT NULL,
    row_no BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    reason_type TEXT NOT NULL,
    comment TEXT,
    PRIMARY KEY (report, row_no, seq),
    FOREIGN KEY (report, row_no) REFERENCES aggregate_records (report, row_no) ON DELETE CASCADE
) {without_rowid};

CREATE TABLE aggregate_dkim (
    report BIGINT NOT NULL,
    row_no BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    domain TEXT NOT NULL,
    selector TEXT,
    result TEXT NOT NULL,
    human_result TEXT,
    PRIMARY KEY (report, row_no, seq),
    FOREIGN KEY (report, row_no) REFERENCES aggregate_records (report, row_no) ON DELETE CASCADE
) {without_rowid};

CREATE TABLE aggregate_spf (
    report BIGINT NOT NULL,
    row_no BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    domain TEXT NOT NULL,
    scope TEXT,
    result TEXT NOT NULL,
    human_result TEXT,
    PRIMARY KEY (report, row_no, seq),
    FOREIGN KEY (report, row_no) REFERENCES aggregate_records (report, row_no) ON DELETE CASCADE
) {without_rowid};

CREATE TABLE failure_reports (
    id {id},
    reporter TEXT NOT NULL,
    report_key TEXT NOT NULL,
    reported_domain TEXT NOT NULL,
    arrival_ts BIGINT,
    feedback_type TEXT,
    arrival_date TEXT,
    source_ip TEXT,
    source_port BIGINT,
    reporting_mta TEXT,
    user_agent TEXT,
    original_mail_from TEXT,
    original_rcpt_to TEXT NOT NULL,
    auth_failure TEXT,
    delivery_result TEXT,
    identity_alignment TEXT,
    incidents BIGINT,
    authentication_results TEXT NOT NULL,
    report TEXT NOT NULL,
    warnings TEXT NOT NULL,
    source TEXT NOT NULL,
    source_part TEXT NOT NULL,
    ingested_at BIGINT NOT NULL,
    UNIQUE (reporter, report_key, reported_domain)
);
CREATE INDEX failure_reports_domain ON failure_reports (reported_domain, arrival_ts);

CREATE TABLE tls_reports (
    id {id},
    organization_name TEXT NOT NULL,
    report_id TEXT NOT NULL,
    policy_domains TEXT NOT NULL,
    begin_ts BIGINT NOT NULL,
    end_ts BIGINT NOT NULL,
    start_datetime TEXT NOT NULL,
    end_datetime TEXT NOT NULL,
    contact_info TEXT,
    warnings TEXT NOT NULL,
    source TEXT NOT NULL,
    source_part TEXT NOT NULL,
    ingested_at BIGINT NOT NULL,
    UNIQUE (organization_name, report_id, policy_domains, begin_ts, end_ts)
);

CREATE TABLE tls_policies (
    report BIGINT NOT NULL REFERENCES tls_reports (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    policy_type TEXT NOT NULL,
    policy_domain TEXT,
    policy_string TEXT NOT NULL,
    mx_host TEXT NOT NULL,
    successful_sessions BIGINT NOT NULL,
    failed_sessions BIGINT NOT NULL,
    PRIMARY KEY (report, seq)
) {without_rowid};

CREATE TABLE tls_failures (
    report BIGINT NOT NULL,
    policy_seq BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    result_type TEXT NOT NULL,
    sending_mta_ip TEXT,
    receiving_mx_hostname TEXT,
    receiving_mx_helo TEXT,
    receiving_ip TEXT,
    failed_sessions BIGINT NOT NULL,
    additional_information TEXT,
    failure_reason_code TEXT,
    PRIMARY KEY (report, policy_seq, seq),
    FOREIGN KEY (report, policy_seq) REFERENCES tls_policies (report, seq) ON DELETE CASCADE
) {without_rowid};

CREATE TABLE rejected_inputs (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    content {blob}
);

CREATE TABLE rejected (
    id {id},
    source TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    part TEXT NOT NULL,
    error_kind TEXT NOT NULL,
    error TEXT NOT NULL,
    input_digest TEXT NOT NULL REFERENCES rejected_inputs (digest),
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    times_seen BIGINT NOT NULL,
    UNIQUE (input_digest, part, error)
);

CREATE TABLE rdns (
    ip TEXT PRIMARY KEY,
    name TEXT,
    status TEXT NOT NULL,
    looked_up_at BIGINT NOT NULL
);
"#,
    ),
    (
        2,
        "observations: messages seen by this receiver, counted under the aggregate-report key",
        r#"
CREATE TABLE observations (
    period_start BIGINT NOT NULL,
    key_digest TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    header_from TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    envelope_to TEXT NOT NULL,
    dmarc TEXT NOT NULL,
    disposition TEXT NOT NULL,
    dkim_aligned TEXT NOT NULL,
    spf_aligned TEXT NOT NULL,
    spf_results TEXT NOT NULL,
    dkim_results TEXT NOT NULL,
    overrides TEXT NOT NULL,
    policy_published TEXT NOT NULL,
    message_count BIGINT NOT NULL,
    PRIMARY KEY (period_start, key_digest)
);
CREATE INDEX observations_domain ON observations (policy_domain, period_start);
"#,
    ),
    (
        3,
        "forward confirmation of cached reverse-DNS names; source and reporter read indexes",
        r#"
ALTER TABLE rdns ADD COLUMN confirmed BIGINT;
CREATE INDEX aggregate_reports_org ON aggregate_reports (org_name, begin_ts);
"#,
    ),
    (
        4,
        "reports out: generated reports, one delivery row per destination, destination health",
        r#"
CREATE TABLE outgoing_reports (
    id {id},
    kind TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    begin_ts BIGINT NOT NULL,
    end_ts BIGINT NOT NULL,
    report_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    media_type TEXT NOT NULL,
    content {blob} NOT NULL,
    record_count BIGINT NOT NULL,
    message_count BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, policy_domain, begin_ts, end_ts)
);

CREATE TABLE report_deliveries (
    report BIGINT NOT NULL REFERENCES outgoing_reports (id) ON DELETE CASCADE,
    destination TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt BIGINT,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT,
    message_id TEXT,
    PRIMARY KEY (report, destination)
);
CREATE INDEX report_deliveries_address ON report_deliveries (address, sent_at);
CREATE INDEX report_deliveries_status ON report_deliveries (status, next_attempt);

CREATE TABLE report_destinations (
    address TEXT PRIMARY KEY,
    consecutive_failures BIGINT NOT NULL,
    suppressed_until BIGINT,
    reason TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
"#,
    ),
    (
        5,
        "failure-report candidates queued by the receiver (milter, verify --record)",
        r#"
CREATE TABLE failure_candidates (
    id {id},
    policy_domain TEXT NOT NULL,
    arrival_ts BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    candidate TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    report BIGINT,
    queued_at BIGINT NOT NULL
);
CREATE INDEX failure_candidates_status ON failure_candidates (status, policy_domain, arrival_ts);
"#,
    ),
    (
        6,
        "alert state: each condition an alert rule found, fired once until it clears; \
         report rows by source address, and per-report sums (the dashboard's pages)",
        r#"
CREATE TABLE alert_state (
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    active BIGINT NOT NULL,
    fired_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    cleared_at BIGINT,
    delivered_at BIGINT,
    delivery TEXT NOT NULL,
    PRIMARY KEY (rule, subject)
);
CREATE INDEX aggregate_records_source ON aggregate_records (source_ip);
CREATE TABLE aggregate_report_sums (
    report BIGINT PRIMARY KEY REFERENCES aggregate_reports (id) ON DELETE CASCADE,
    messages BIGINT NOT NULL,
    dmarc_pass BIGINT NOT NULL,
    spf_aligned_pass BIGINT NOT NULL,
    dkim_aligned_pass BIGINT NOT NULL,
    disposition_none BIGINT NOT NULL,
    disposition_quarantine BIGINT NOT NULL,
    disposition_reject BIGINT NOT NULL,
    disposition_pass BIGINT NOT NULL
);
INSERT INTO aggregate_report_sums (report, messages, dmarc_pass, spf_aligned_pass,
    dkim_aligned_pass, disposition_none, disposition_quarantine, disposition_reject,
    disposition_pass)
SELECT report, SUM(message_count),
    SUM(CASE WHEN dkim_aligned = 'pass' OR spf_aligned = 'pass' THEN message_count ELSE 0 END),
    SUM(CASE WHEN spf_aligned = 'pass' THEN message_count ELSE 0 END),
    SUM(CASE WHEN dkim_aligned = 'pass' THEN message_count ELSE 0 END),
    SUM(CASE WHEN disposition = 'none' THEN message_count ELSE 0 END),
    SUM(CASE WHEN disposition = 'quarantine' THEN message_count ELSE 0 END),
    SUM(CASE WHEN disposition = 'reject' THEN message_count ELSE 0 END),
    SUM(CASE WHEN disposition = 'pass' THEN message_count ELSE 0 END)
FROM aggregate_records GROUP BY report;
"#,
    ),
    (
        7,
        "per-source sums per policy domain and month, and per source and day, kept at \
         ingest (crate::rollup), filled from the stored reports",
        r#"
CREATE TABLE aggregate_source_sums (
    policy_domain TEXT NOT NULL,
    month BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    header_from TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    disposition TEXT NOT NULL,
    dkim_aligned TEXT NOT NULL,
    spf_aligned TEXT NOT NULL,
    policy_p TEXT NOT NULL,
    policy_sp TEXT NOT NULL,
    messages BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, month, source_ip, header_from, envelope_from, disposition,
        dkim_aligned, spf_aligned, policy_p, policy_sp)
) {without_rowid};
CREATE TABLE aggregate_source_reporters (
    policy_domain TEXT NOT NULL,
    month BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    org_name TEXT NOT NULL,
    messages BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, month, source_ip, org_name)
) {without_rowid};
CREATE INDEX aggregate_source_sums_ip ON aggregate_source_sums (source_ip, month);
CREATE INDEX aggregate_source_reporters_ip ON aggregate_source_reporters (source_ip, month);
CREATE TABLE aggregate_source_dkim (
    policy_domain TEXT NOT NULL,
    month BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    result TEXT NOT NULL,
    header_from TEXT NOT NULL,
    messages BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, month, source_ip, domain, selector, result, header_from)
) {without_rowid};
CREATE INDEX aggregate_source_dkim_ip ON aggregate_source_dkim (source_ip, month);
CREATE TABLE aggregate_source_spf (
    policy_domain TEXT NOT NULL,
    month BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    domain TEXT NOT NULL,
    scope TEXT NOT NULL,
    result TEXT NOT NULL,
    messages BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, month, source_ip, domain, scope, result)
) {without_rowid};
CREATE INDEX aggregate_source_spf_ip ON aggregate_source_spf (source_ip, month);
CREATE TABLE aggregate_source_reasons (
    policy_domain TEXT NOT NULL,
    month BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    reason_type TEXT NOT NULL,
    messages BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, month, source_ip, reason_type)
) {without_rowid};
CREATE TABLE aggregate_source_days (
    source_ip TEXT NOT NULL,
    day BIGINT NOT NULL,
    policy_domain TEXT NOT NULL,
    messages BIGINT NOT NULL,
    dmarc_pass BIGINT NOT NULL,
    spf_aligned_pass BIGINT NOT NULL,
    dkim_aligned_pass BIGINT NOT NULL,
    reports BIGINT NOT NULL,
    PRIMARY KEY (source_ip, day, policy_domain)
) {without_rowid};
"#,
    ),
    (
        8,
        "the per-source, per-day sums by day (the alert rules' windows of whole days)",
        r#"
CREATE INDEX aggregate_source_days_day ON aggregate_source_days (day);
"#,
    ),
    (
        9,
        "the DNS records (DMARC, SPF, DKIM) last seen per domain, for the alert rule on \
         records changing or breaking (crate::dns_records)",
        r#"
CREATE TABLE dns_records (
    domain TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    record TEXT,
    status TEXT NOT NULL,
    problems TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    previous TEXT,
    changed_at BIGINT,
    failures BIGINT NOT NULL,
    failed_since BIGINT,
    PRIMARY KEY (domain, kind, name)
);
"#,
    ),
    (
        10,
        "the per-source sums of migration 7 per UTC day as well (crate::rollup), for the \
         partial months at a window's ends, filled from the stored reports",
        r#"
CREATE TABLE aggregate_daily_sums (
    policy_domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    header_from TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    disposition TEXT NOT NULL,
    dkim_aligned TEXT NOT NULL,
    spf_aligned TEXT NOT NULL,
    policy_p TEXT NOT NULL,
    policy_sp TEXT NOT NULL,
    messages BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, day, source_ip, header_from, envelope_from, disposition,
        dkim_aligned, spf_aligned, policy_p, policy_sp)
) {without_rowid};
CREATE TABLE aggregate_daily_reporters (
    policy_domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    org_name TEXT NOT NULL,
    messages BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, day, source_ip, org_name)
) {without_rowid};
CREATE INDEX aggregate_daily_sums_ip ON aggregate_daily_sums (source_ip, day);
CREATE INDEX aggregate_daily_reporters_ip ON aggregate_daily_reporters (source_ip, day);
CREATE TABLE aggregate_daily_dkim (
    policy_domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    result TEXT NOT NULL,
    header_from TEXT NOT NULL,
    messages BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, day, source_ip, domain, selector, result, header_from)
) {without_rowid};
CREATE TABLE aggregate_daily_spf (
    policy_domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    domain TEXT NOT NULL,
    scope TEXT NOT NULL,
    result TEXT NOT NULL,
    messages BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, day, source_ip, domain, scope, result)
) {without_rowid};
CREATE TABLE aggregate_daily_reasons (
    policy_domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    reason_type TEXT NOT NULL,
    messages BIGINT NOT NULL,
    PRIMARY KEY (policy_domain, day, source_ip, reason_type)
) {without_rowid};
"#,
    ),
];

/// The step of a migration that SQL alone does not express, run after its SQL in its
/// transaction: migrations 7 and 10 fill the per-source sums with the statements ingest
/// uses.
fn backfill(conn: &mut Conn, version: i64) -> Result<(), StoreError> {
    match version {
        7 => crate::rollup::backfill(conn, crate::rollup::Fill::Months),
        10 => crate::rollup::backfill(conn, crate::rollup::Fill::Daily),
        _ => Ok(()),
    }
}

/// The version recorded in `schema_migrations`, or `None` when the table does not exist
/// (a fresh database). Reads only.
fn recorded_version(conn: &mut Conn) -> Result<Option<i64>, StoreError> {
    let exists = match conn.dialect() {
        Dialect::Sqlite => conn.query_one(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            &[],
        )?,
        Dialect::Postgres => conn.query_one(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'schema_migrations'",
            &[],
        )?,
    }
    .is_some_and(|c| c.i64() > 0);
    if !exists {
        return Ok(None);
    }
    Ok(Some(
        conn.query_one(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations",
            &[],
        )?
        .map_or(0, |c| c.i64()),
    ))
}

/// Brings the schema up to date. Safe against other processes opening the same database
/// at the same moment (two `ingest` runs on a fresh database): every step that writes
/// runs in a transaction holding the database's write lock (SQLite `BEGIN IMMEDIATE`,
/// waiting up to the busy timeout) or a PostgreSQL advisory lock, and looks at the
/// recorded version again once it holds it. A database already up to date is only read
/// (so a read-only one can be opened).
pub(crate) fn migrate(conn: &mut Conn) -> Result<i64, StoreError> {
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    match recorded_version(conn)? {
        Some(v) if v > newest => {
            return Err(StoreError::SchemaTooNew {
                found: v,
                known: newest,
            });
        }
        Some(v) if v == newest => return Ok(newest),
        _ => {}
    }
    let dialect = conn.dialect();
    // One migration per transaction, each under the lock.
    loop {
        conn.begin()?;
        if dialect == Dialect::Postgres
            && let Err(e) = conn.batch("SELECT pg_advisory_xact_lock(7489001)")
        {
            conn.rollback();
            return Err(e);
        }
        let step = (|| {
            conn.batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at BIGINT NOT NULL
                )",
            )?;
            let current = recorded_version(conn)?.unwrap_or(0);
            if current > newest {
                return Err(StoreError::SchemaTooNew {
                    found: current,
                    known: newest,
                });
            }
            let Some(&(version, name, sql)) = MIGRATIONS.iter().find(|m| m.0 > current) else {
                return Ok(None);
            };
            conn.batch(&dialect_sql(sql, dialect))
                .and_then(|()| backfill(conn, version))
                .and_then(|()| {
                    conn.exec(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        &[Val::I64(version), Val::Text(name), Val::I64(crate::now())],
                    )
                })
                .map_err(|e| StoreError::Migration {
                    version,
                    detail: e.to_string(),
                })?;
            Ok(Some(version))
        })();
        match step {
            Ok(applied) => {
                conn.commit()?;
                if applied.is_none() {
                    return Ok(newest);
                }
            }
            Err(e) => {
                conn.rollback();
                return Err(e);
            }
        }
    }
}
