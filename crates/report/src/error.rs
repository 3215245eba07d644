//! The one error type of this crate.

use std::fmt;

/// Where in a nested input something was found: the chain of containers, outermost first,
/// e.g. `message.eml > attachment report.zip > google.com!x.xml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SourcePath(pub Vec<String>);

impl SourcePath {
    /// A path with a single root element (typically a file name).
    pub fn root(name: impl Into<String>) -> Self {
        SourcePath(vec![name.into()])
    }

    /// This path with one more step appended.
    pub fn join(&self, step: impl Into<String>) -> Self {
        let mut v = self.0.clone();
        v.push(step.into());
        SourcePath(v)
    }

    /// Number of steps (containers) in this path.
    pub fn depth(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for SourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<input>");
        }
        f.write_str(&self.0.join(" > "))
    }
}

/// Which hard limit of [`crate::Limits`] an input went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LimitKind {
    /// [`crate::Limits::max_decompressed_size`].
    DecompressedSize,
    /// [`crate::Limits::max_compression_ratio`].
    CompressionRatio,
    /// [`crate::Limits::max_entries`].
    Entries,
    /// [`crate::Limits::max_nesting`].
    Nesting,
    /// [`crate::Limits::max_xml_depth`].
    XmlDepth,
    /// [`crate::Limits::max_records`].
    Records,
    /// [`crate::Limits::max_input_size`].
    InputSize,
}

impl LimitKind {
    /// The name of the [`crate::Limits`] field.
    pub fn field(self) -> &'static str {
        match self {
            LimitKind::DecompressedSize => "max_decompressed_size",
            LimitKind::CompressionRatio => "max_compression_ratio",
            LimitKind::Entries => "max_entries",
            LimitKind::Nesting => "max_nesting",
            LimitKind::XmlDepth => "max_xml_depth",
            LimitKind::Records => "max_records",
            LimitKind::InputSize => "max_input_size",
        }
    }
}

/// Why an input (or one report inside it) could not be read.
///
/// Every variant carries the [`SourcePath`] of the part it concerns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A hard limit was exceeded (a zip bomb, absurd nesting ...).
    #[error("{path}: limit {} exceeded: {detail}", kind.field())]
    Limit {
        /// Where.
        path: SourcePath,
        /// Which limit.
        kind: LimitKind,
        /// What was seen, e.g. "ratio 1032:1 > 100:1".
        detail: String,
    },
    /// The bytes are not any report format or container this crate knows.
    #[error("{path}: not a report: {detail}")]
    UnknownFormat {
        /// Where.
        path: SourcePath,
        /// What the content looked like.
        detail: String,
    },
    /// A gzip or zip container could not be decompressed.
    #[error("{path}: cannot decompress {format}: {detail}")]
    Decompress {
        /// Where.
        path: SourcePath,
        /// "gzip" or "zip".
        format: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// An email message contained no report.
    #[error("{path}: email message contains no report: {detail}")]
    NoReportInMessage {
        /// Where.
        path: SourcePath,
        /// What the message contained.
        detail: String,
    },
    /// An aggregate report's XML could not be read (or was too damaged to be useful).
    #[error("{path}: aggregate report at line {line}, byte {offset}: {detail}")]
    Xml {
        /// Where.
        path: SourcePath,
        /// 1-based line of the problem.
        line: u64,
        /// 0-based byte offset of the problem within the XML document.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// An aggregate report lacks an element without which it is meaningless.
    #[error("{path}: aggregate report: {detail}")]
    Incomplete {
        /// Where.
        path: SourcePath,
        /// What is missing.
        detail: String,
    },
    /// A failure report (ARF) could not be read.
    #[error("{path}: failure report: {detail}")]
    Failure {
        /// Where.
        path: SourcePath,
        /// What was wrong.
        detail: String,
    },
    /// An SMTP TLS report's JSON could not be read.
    #[error("{path}: SMTP TLS report: {detail}")]
    Tls {
        /// Where.
        path: SourcePath,
        /// What was wrong (serde_json's message includes line and column).
        detail: String,
    },
}

impl ReportError {
    /// The container path of the part this error concerns.
    pub fn path(&self) -> &SourcePath {
        match self {
            ReportError::Limit { path, .. }
            | ReportError::UnknownFormat { path, .. }
            | ReportError::Decompress { path, .. }
            | ReportError::NoReportInMessage { path, .. }
            | ReportError::Xml { path, .. }
            | ReportError::Incomplete { path, .. }
            | ReportError::Failure { path, .. }
            | ReportError::Tls { path, .. } => path,
        }
    }
}
