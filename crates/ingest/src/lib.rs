//! Report sources: files, directories, mbox files and maildirs, into the store.
//!
//! The unit of work is one input — a file's bytes, one message of an mbox or a maildir,
//! one IMAP message — handed to [`ingest_bytes`] with a [`Source`] saying where it came
//! from. Every report found in it is stored in its own transaction (a duplicate is
//! recognised and not stored twice), and every part that could not be read is kept in
//! the store with its bytes, origin and error: nothing is silently dropped.
//!
//! [`ingest_paths`] walks files and directories (recursively), recognising mbox files by
//! their first line and maildirs by their `cur`/`new`/`tmp` directories. It streams:
//! an mbox is read one message at a time, so memory is bounded by the largest single
//! input, never by the total.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use dmarc_ingest::{Source, ingest_bytes};
//! let mut store = dmarc_store::Store::open_sqlite_memory()?;
//! let limits = dmarc_report::Limits::default();
//! let out = ingest_bytes(&mut store, &Source::file("notes.txt"), b"hello", &limits)?;
//! assert_eq!(out.counts().rejected, 1);
//! assert_eq!(store.rejected()?[0].source, "notes.txt");
//! # Ok(()) }
//! ```
#![warn(clippy::unwrap_used)]
#![warn(missing_docs)]

mod bounded;
pub mod imap;
mod walk;

use std::fmt;
use std::path::PathBuf;

use dmarc_report::{Limits, ReportError};
use dmarc_store::{Origin, Rejection, Store, StoreError, Stored};
use serde::Serialize;

pub use bounded::{ReadError, read_bounded, read_bounded_text};
pub use walk::{IngestProgress, InputKind, PlannedInput, ingest_paths, plan};

/// What kind of place an input came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SourceKind {
    /// A file (any format: XML, JSON, gzip, zip, an email message ...).
    File,
    /// One message of an mbox file.
    Mbox,
    /// One message file of a maildir.
    Maildir,
    /// One message fetched over IMAP.
    Imap,
    /// Standard input.
    Stdin,
}

impl SourceKind {
    /// `file`, `mbox`, `maildir`, `imap` or `stdin`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Mbox => "mbox",
            SourceKind::Maildir => "maildir",
            SourceKind::Imap => "imap",
            SourceKind::Stdin => "stdin",
        }
    }

    /// Whether inputs of this kind are single email messages (parsed as such whatever
    /// their first bytes look like).
    pub fn is_message(self) -> bool {
        matches!(
            self,
            SourceKind::Mbox | SourceKind::Maildir | SourceKind::Imap
        )
    }
}

/// Where one input came from: recorded with every report and rejection found in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The kind of place.
    pub kind: SourceKind,
    /// Where, for a person and for finding it again: a path, `path#message 12` for an
    /// mbox message, an IMAP URL such as `imaps://user@host/INBOX;UIDVALIDITY=7/;UID=42`.
    pub location: String,
    /// The short name at the root of container paths (a file name, `message 12`, `UID 42`).
    pub name: String,
}

impl Source {
    /// A file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Source {
        let path = path.into();
        Source {
            kind: SourceKind::File,
            location: path.display().to_string(),
            name: file_name(&path),
        }
    }

    /// Message number `n` (1-based) of the mbox at `path`.
    pub fn mbox_message(path: impl Into<PathBuf>, n: u64) -> Source {
        let path = path.into();
        Source {
            kind: SourceKind::Mbox,
            location: format!("{}#message {n}", path.display()),
            name: format!("{} message {n}", file_name(&path)),
        }
    }

    /// The maildir message file at `path`.
    pub fn maildir_message(path: impl Into<PathBuf>) -> Source {
        let path = path.into();
        Source {
            kind: SourceKind::Maildir,
            location: path.display().to_string(),
            name: file_name(&path),
        }
    }

    /// One IMAP message: `location` identifies it (an RFC 5092 IMAP URL is best), `name`
    /// is a short label such as `UID 42`.
    pub fn imap(location: impl Into<String>, name: impl Into<String>) -> Source {
        Source {
            kind: SourceKind::Imap,
            location: location.into(),
            name: name.into(),
        }
    }

    /// Standard input.
    pub fn stdin() -> Source {
        Source {
            kind: SourceKind::Stdin,
            location: "-".into(),
            name: "stdin".into(),
        }
    }

    fn origin(&self) -> Origin<'_> {
        Origin {
            kind: self.kind.as_str(),
            location: &self.location,
        }
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// What happened to one report (or unreadable part) of an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ItemOutcome {
    /// A report stored for the first time.
    New {
        /// `aggregate`, `failure` or `smtp_tls`.
        kind: &'static str,
        /// Its id in the store.
        id: i64,
        /// Where in the input (container path).
        part: String,
    },
    /// A report already stored.
    Duplicate {
        /// `aggregate`, `failure` or `smtp_tls`.
        kind: &'static str,
        /// The stored report's id.
        id: i64,
        /// Where in the input.
        part: String,
    },
    /// A part that could not be read, kept in the store.
    Rejected {
        /// The rejected entry's id (see `dmarc report rejected`).
        id: i64,
        /// Where in the input.
        part: String,
        /// The error.
        error: String,
        /// False when the same failure of the same bytes was already recorded.
        first_time: bool,
    },
}

/// Counts of [`ItemOutcome`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Reports stored for the first time.
    pub new: u64,
    /// Reports already stored.
    pub duplicate: u64,
    /// Parts that could not be read (whether or not recorded before).
    pub rejected: u64,
    /// Of the rejected, those recorded for the first time.
    pub rejected_new: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.new += o.new;
        self.duplicate += o.duplicate;
        self.rejected += o.rejected;
        self.rejected_new += o.rejected_new;
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} new, {} duplicate, {} rejected",
            self.new, self.duplicate, self.rejected
        )?;
        if self.rejected > self.rejected_new {
            write!(
                f,
                " ({} already recorded)",
                self.rejected - self.rejected_new
            )?;
        }
        Ok(())
    }
}

/// What [`ingest_bytes`] did with one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// One entry per report or unreadable part found, in input order.
    pub items: Vec<ItemOutcome>,
}

impl IngestOutcome {
    /// The counts of new, duplicate and rejected items.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for i in &self.items {
            match i {
                ItemOutcome::New { .. } => c.new += 1,
                ItemOutcome::Duplicate { .. } => c.duplicate += 1,
                ItemOutcome::Rejected { first_time, .. } => {
                    c.rejected += 1;
                    c.rejected_new += u64::from(*first_time);
                }
            }
        }
        c
    }
}

/// Why ingestion stopped. Unreadable reports are not errors (they are kept as rejected);
/// these are failures of the store itself or of the paths asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The store failed (connection lost, disk full ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A path given to ingest could not be read at all.
    #[error("cannot read {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Ingests one input: parses every report in `bytes` and stores each in its own
/// transaction; keeps every part that could not be read, with `bytes`, as rejected.
///
/// Inputs from message sources ([`SourceKind::is_message`]) are parsed as one email
/// message; others by their content (XML, JSON, gzip, zip, email, mbox).
pub fn ingest_bytes(
    store: &mut Store,
    source: &Source,
    bytes: &[u8],
    limits: &Limits,
) -> Result<IngestOutcome, IngestError> {
    let results = if source.kind.is_message() {
        dmarc_report::parse_message(&source.name, bytes, limits)
    } else {
        dmarc_report::parse_named(&source.name, bytes, limits)
    };
    let mut out = IngestOutcome::default();
    for r in results {
        let item = match r {
            Ok(parsed) => {
                let part = parsed.source.to_string();
                match store.store_report(&parsed, &source.origin())? {
                    Stored::New { kind, id } => ItemOutcome::New { kind, id, part },
                    Stored::Duplicate { kind, id } => ItemOutcome::Duplicate { kind, id, part },
                }
            }
            Err(e) => reject(store, source, &e, Some(bytes))?,
        };
        out.items.push(item);
    }
    Ok(out)
}

/// Records a parse error of `source` as rejected.
pub(crate) fn reject(
    store: &mut Store,
    source: &Source,
    e: &ReportError,
    input: Option<&[u8]>,
) -> Result<ItemOutcome, IngestError> {
    let part = e.path().to_string();
    let error = e.to_string();
    reject_with(
        store,
        source,
        &part,
        dmarc_store::error_kind(e),
        &error,
        input,
    )
}

/// Records a failure to read `source` at all (I/O error, over the size limit ...).
pub(crate) fn reject_with(
    store: &mut Store,
    source: &Source,
    part: &str,
    kind: &str,
    error: &str,
    input: Option<&[u8]>,
) -> Result<ItemOutcome, IngestError> {
    let (id, first_time) = store.store_rejected(&Rejection {
        origin: source.origin(),
        part,
        error_kind: kind,
        error,
        input,
    })?;
    Ok(ItemOutcome::Rejected {
        id,
        part: part.to_string(),
        error: error.to_string(),
        first_time,
    })
}
