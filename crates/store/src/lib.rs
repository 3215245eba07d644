//! One schema for ingested reports: DMARC aggregate reports with their records and
//! authentication results, failure reports, SMTP TLS reports, and the inputs that could
//! not be read.
//!
//! Two backends, one set of migrations and queries: SQLite, embedded (the default; a file
//! in the user's data directory, see [`default_sqlite_path`]), and PostgreSQL (a
//! `postgres://` URL). Writes are idempotent and atomic per report: [`Store::store_report`]
//! runs in one transaction (or one savepoint of a batch's, [`Store::begin_batch`]) and
//! stores a report whose duplicate key (reporter, report id, domain, period) is already
//! present only once. What could not be parsed is kept with its
//! bytes, origin, error and time by [`Store::store_rejected`] and listed by
//! [`Store::rejected`].
//!
//! ```
//! # fn main() -> Result<(), dmarc_store::StoreError> {
//! let mut store = dmarc_store::Store::open_sqlite_memory()?;
//! let xml = br#"<feedback><report_metadata><org_name>example.net</org_name>
//!   <email>d@example.net</email><report_id>42</report_id>
//!   <date_range><begin>0</begin><end>86399</end></date_range></report_metadata>
//!   <policy_published><domain>example.com</domain><p>reject</p></policy_published>
//!   <record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated>
//!   <disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
//!   <identifiers><header_from>example.com</header_from></identifiers><auth_results/></record>
//!   </feedback>"#;
//! let limits = dmarc_report::Limits::default();
//! for parsed in dmarc_report::parse_named("r.xml", xml, &limits) {
//!     let parsed = parsed.expect("a report");
//!     let origin = dmarc_store::Origin { kind: "file", location: "r.xml" };
//!     assert!(store.store_report(&parsed, &origin)?.is_new());
//!     assert!(!store.store_report(&parsed, &origin)?.is_new()); // a duplicate
//! }
//! let summary = store.summary(&dmarc_store::SummaryQuery::default())?;
//! assert_eq!(summary.domains[0].messages, 3);
//! # Ok(()) }
//! ```
#![warn(clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod alerts;
mod backend;
pub mod browse;
pub mod dns_records;
mod migrations;
pub mod observations;
pub mod outbox;
pub mod rdns;
mod read;
mod rollup;
mod selectors;
pub mod sources;
mod write;

/// Dates and times: the report crate's module, which the store's periods use.
pub use dmarc_report::time;

use std::path::{Path, PathBuf};

pub use backend::Dialect;
pub use observations::{OBSERVATION_PERIOD, ObservationCount, period_of};
pub use outbox::{Delivery, DeliveryStatus, DestinationHealth, OutgoingReport, QueuedCandidate};
pub use read::{
    DomainPeriod, FailingSource, Granularity, RejectedEntry, Reporter, SourceStats, Summary,
    SummaryQuery, TlsDomain, Totals,
};
pub use rollup::BATCH_ROWS;
pub use time::format_utc;
pub use write::{MAX_RECORD_COUNT, Rejection, Stored, error_kind};

use backend::{Conn, Db, Pg};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An SQLite error.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error (connection, query).
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    /// The database file's directory could not be created.
    #[error("cannot create {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database was written by a newer version of this program.
    #[error(
        "the database schema is version {found}, newer than this program knows ({known}); \
         upgrade dmarc"
    )]
    SchemaTooNew {
        /// The version recorded in the database.
        found: i64,
        /// The newest version this program has.
        known: i64,
    },
    /// A migration failed (and was rolled back).
    #[error("schema migration {version} failed: {detail}")]
    Migration {
        /// Its number.
        version: i64,
        /// What went wrong.
        detail: String,
    },
    /// A value could not be stored or read back as expected.
    #[error("{0}")]
    Data(String),
    /// The store location is neither a path, `sqlite:PATH` nor a `postgres://` URL. The
    /// text never repeats what follows the scheme (it may hold a password).
    #[error("{0}")]
    BadLocation(String),
    /// The SQLite database cannot be written by this user, and opening it needs to write.
    #[error(
        "the report store {location} is read-only for this user: SQLite needs write access \
         to the file and to its directory (for the {location}-wal and -shm files beside it), \
         even to read it"
    )]
    ReadOnly {
        /// The database file.
        location: String,
    },
}

/// Where a store is, as [`Store::open`] reads its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL, its scheme in lower case.
    Postgres(String),
}

impl Location {
    /// Reads `target`: a plain path, `sqlite:PATH`, or a `postgres://` or `postgresql://`
    /// URL (schemes in any case). Anything else that looks like a URL (`scheme://...`,
    /// `sqlite://...`) is refused, without repeating its text: a misspelt scheme must not
    /// become a local file named after the URL, password included.
    pub fn parse(target: &str) -> Result<Location, StoreError> {
        let scheme_end = target.find(':');
        let scheme = scheme_end.and_then(|i| target.get(..i)).unwrap_or("");
        let looks_like_scheme = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        let rest = scheme_end
            .and_then(|i| target.get(i + 1..))
            .unwrap_or_default();
        if looks_like_scheme && scheme.eq_ignore_ascii_case("sqlite") {
            if rest.starts_with("//") {
                return Err(StoreError::BadLocation(
                    "a store location \"sqlite://...\" is ambiguous (is sqlite:///x the path /x \
                     or //x?): write sqlite:PATH (sqlite:/var/lib/dmarc/db.sqlite3) or the plain path"
                        .into(),
                ));
            }
            if rest.is_empty() {
                return Err(StoreError::BadLocation(
                    "the store location \"sqlite:\" names no file: write sqlite:PATH".into(),
                ));
            }
            return Ok(Location::Sqlite(PathBuf::from(rest)));
        }
        if looks_like_scheme
            && (scheme.eq_ignore_ascii_case("postgres")
                || scheme.eq_ignore_ascii_case("postgresql"))
            && rest.starts_with("//")
        {
            return Ok(Location::Postgres(format!(
                "{}:{rest}",
                scheme.to_ascii_lowercase()
            )));
        }
        if looks_like_scheme && rest.starts_with("//") {
            let scheme = scheme.get(..32).unwrap_or(scheme);
            return Err(StoreError::BadLocation(format!(
                "unknown store URL scheme \"{scheme}://\": the store is a file path, \
                 sqlite:PATH, or a postgres:// or postgresql:// URL"
            )));
        }
        Ok(Location::Sqlite(PathBuf::from(target)))
    }
}

/// Where a report or rejected input came from, as recorded with it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The kind of source: `file`, `mbox`, `maildir`, `imap` ...
    pub kind: &'a str,
    /// Where, for a person: a path, `path#message 3`, an IMAP URL ...
    pub location: &'a str,
}

/// A connection to the report store.
#[derive(Debug)]
pub struct Store {
    conn: Conn,
    location: String,
    /// The per-source sums of the reports stored in the open transaction, not yet written
    /// (see [`Store::begin_batch`]).
    sums: rollup::Sums,
    /// When the open batch's transaction began (between [`Store::begin_batch`] and
    /// [`Store::end_batch`]).
    batch: Option<std::time::Instant>,
}

/// `$XDG_DATA_HOME/dmarc/dmarc.sqlite3`, else `~/.local/share/dmarc/dmarc.sqlite3`; `None`
/// when neither `XDG_DATA_HOME` nor `HOME` is set.
pub fn default_sqlite_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME") {
        Some(x) if !x.is_empty() && Path::new(&x).is_absolute() => PathBuf::from(x),
        _ => {
            let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
            PathBuf::from(home).join(".local").join("share")
        }
    };
    Some(base.join("dmarc").join("dmarc.sqlite3"))
}

pub(crate) use time::now;

impl Store {
    /// Opens `target` ([`Location::parse`]): a `postgres://` or `postgresql://` URL, or an
    /// SQLite file path, plain or as `sqlite:PATH` (created with its directory if
    /// missing); anything else is refused. Brings the schema up to date.
    pub fn open(target: &str) -> Result<Store, StoreError> {
        match Location::parse(target)? {
            Location::Postgres(url) => Store::open_postgres(&url),
            Location::Sqlite(path) => Store::open_sqlite(&path),
        }
    }

    /// Opens (creating if needed) an SQLite database file, in WAL mode.
    pub fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = rusqlite::Connection::open(path)?;
        let location = path.display().to_string();
        Store::init_sqlite(conn, location.clone()).map_err(|e| match e {
            StoreError::Sqlite(ref s)
                if s.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) =>
            {
                StoreError::ReadOnly { location }
            }
            e => e,
        })
    }

    /// Opens a private in-memory SQLite database (for tests and trials).
    pub fn open_sqlite_memory() -> Result<Store, StoreError> {
        let conn = rusqlite::Connection::open_in_memory()?;
        Store::init_sqlite(conn, ":memory:".to_string())
    }

    fn init_sqlite(conn: rusqlite::Connection, location: String) -> Result<Store, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        // WAL: readers never block the writer; NORMAL sync is durable across application
        // crashes and loses at most the last transactions on power loss. Switching a fresh
        // database to WAL needs its exclusive lock, and SQLite answers "database is
        // locked" at once (without the busy handler) when another process holds it while
        // opening the same fresh file: retried within the busy timeout.
        let started = std::time::Instant::now();
        loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                // ":memory:" stays "memory".
                Ok(_) => break,
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && started.elapsed() < std::time::Duration::from_secs(30) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -32000;",
        )?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = Store {
            conn: Db::Sqlite(conn).into(),
            sums: rollup::Sums::new(Dialect::Sqlite),
            batch: None,
            location,
        };
        migrations::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// Connects to PostgreSQL (`postgres://user:password@host:port/database`, without
    /// TLS) and brings the schema up to date.
    pub fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let url = match Location::parse(url)? {
            Location::Postgres(u) => u,
            Location::Sqlite(_) => {
                return Err(StoreError::BadLocation(
                    "not a postgres:// or postgresql:// URL".into(),
                ));
            }
        };
        let url = url.as_str();
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        client.batch_execute("SET client_min_messages = warning")?;
        let mut store = Store {
            conn: Db::Postgres(Box::new(Pg::new(client))).into(),
            sums: rollup::Sums::new(Dialect::Postgres),
            batch: None,
            location: redact_url(url),
        };
        migrations::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// Where this store is, for messages (a path, or a URL without its password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The schema version in use.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_one(
                "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations",
                &[],
            )?
            .map_or(0, |c| c.i64()))
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user@host/db`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    match auth {
        Some(a) => {
            let user = a.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Location, StoreError};
    use std::path::PathBuf;

    #[test]
    fn store_locations_are_paths_sqlite_or_postgres_urls() {
        let sqlite = |p: &str| Ok::<_, String>(Location::Sqlite(PathBuf::from(p)));
        let parse = |t: &str| Location::parse(t).map_err(|e| e.to_string());
        assert_eq!(parse("reports.sqlite3"), sqlite("reports.sqlite3"));
        assert_eq!(parse("/var/lib/dmarc/db"), sqlite("/var/lib/dmarc/db"));
        assert_eq!(parse("./a:b.db"), sqlite("./a:b.db"));
        assert_eq!(parse("sqlite:/var/db.sqlite3"), sqlite("/var/db.sqlite3"));
        assert_eq!(parse("SQLite:rel.db"), sqlite("rel.db"));
        assert_eq!(
            parse("PostgreSQL://u:pw@h/db"),
            Ok(Location::Postgres("postgresql://u:pw@h/db".into()))
        );
        assert_eq!(
            parse("postgres://h/db"),
            Ok(Location::Postgres("postgres://h/db".into()))
        );
    }

    #[test]
    fn misspelt_store_urls_are_refused_without_the_password() {
        for bad in [
            "postgress://user:s3cret@host/db",
            "mysql://user:s3cret@host/db",
            "sqlite:///tmp/s3cret.db",
            "sqlite://s3cret",
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert!(matches!(e, StoreError::BadLocation(_)), "{bad}");
            let text = e.to_string();
            assert!(!text.contains("s3cret"), "{text}");
        }
        assert!(
            Location::parse("postgress://u:p@h/d")
                .unwrap_err()
                .to_string()
                .contains("unknown store URL scheme \"postgress://\"")
        );
        assert!(Location::parse("sqlite:").is_err());
    }

    #[test]
    fn redacts_password() {
        assert_eq!(
            super::redact_url("postgres://u:pw@localhost:5432/db"),
            "postgres://u@localhost:5432/db"
        );
        assert_eq!(
            super::redact_url("postgres://localhost/db"),
            "postgres://localhost/db"
        );
    }
}
