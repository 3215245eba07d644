//! The evaluation trace: every record, term and DNS query, so a person can see why.

use std::fmt::{self, Write as _};

use serde::Serialize;

use super::SpfResult;

/// The whole evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// Initial processing (§4.3): what was checked before any DNS query.
    pub notes: Vec<String>,
    /// The evaluation of the checked domain's record, with includes and redirects nested.
    pub record: Option<RecordTrace>,
    /// The queries made to build the explanation (§6.2), which count towards no limit.
    pub explanation_queries: Vec<QueryTrace>,
}

/// The evaluation of one domain's record (the checked domain, an include or a redirect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordTrace {
    /// The domain.
    pub domain: String,
    /// The selected record as published, if one was found.
    pub record: Option<String>,
    /// The TXT query for the record (§4.4).
    pub queries: Vec<QueryTrace>,
    /// The terms evaluated, in order; terms after the deciding one are not listed.
    pub terms: Vec<TermTrace>,
    /// The result of this record.
    pub result: SpfResult,
    /// Why, for a person.
    pub reason: String,
}

/// What a term did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TermOutcome {
    /// The mechanism matched; its qualifier gives the result.
    Match,
    /// The mechanism did not match; evaluation continues.
    NoMatch,
    /// The redirect was followed; its result is the result.
    Redirected,
    /// The term ended the evaluation with temperror.
    TempError,
    /// The term ended the evaluation with permerror.
    PermError,
}

impl TermOutcome {
    fn as_str(self) -> &'static str {
        match self {
            TermOutcome::Match => "match",
            TermOutcome::NoMatch => "no match",
            TermOutcome::Redirected => "redirected",
            TermOutcome::TempError => "temperror",
            TermOutcome::PermError => "permerror",
        }
    }
}

/// One evaluated term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermTrace {
    /// The term, e.g. `~include:_spf.example.com` or `redirect=_spf.example.net`.
    pub term: String,
    /// The target domain after macro expansion, for terms that have one.
    pub target: Option<String>,
    /// What happened.
    pub outcome: TermOutcome,
    /// Details for a person.
    pub detail: String,
    /// The DNS-querying-term counter after this term.
    pub lookups: u32,
    /// The void-lookup counter after this term.
    pub void_lookups: u32,
    /// The DNS queries this term made (those of a nested record are in `nested`).
    pub queries: Vec<QueryTrace>,
    /// The nested evaluation of an `include` or `redirect`.
    pub nested: Option<Box<RecordTrace>>,
}

/// The class of a DNS answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerClass {
    /// Records came back.
    Records,
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no records of the type.
    NoData,
    /// A temporary failure (time-out, SERVFAIL, ...), or the time budget was exhausted.
    TempError,
}

/// One DNS question and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryTrace {
    /// `TXT`, `A`, `AAAA`, `MX` or `PTR`.
    pub qtype: &'static str,
    /// The name asked (for PTR, the reverse name).
    pub name: String,
    /// The answer class.
    pub answer: AnswerClass,
    /// The records, as text (TXT data with non-printable bytes escaped as `\DDD`).
    pub records: Vec<String>,
    /// True when the answer came from this evaluation's memory, not from DNS.
    pub cached: bool,
    /// The error text for a temporary failure.
    pub error: Option<String>,
    /// A remark, such as for an answer asked together with others but not needed.
    pub note: Option<String>,
}

impl Trace {
    /// The trace as an indented tree for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for n in &self.notes {
            let _ = writeln!(out, "{n}");
        }
        if let Some(r) = &self.record {
            write_record(&mut out, r, 0);
        }
        if !self.explanation_queries.is_empty() {
            let _ = writeln!(out, "explanation (counts towards no limit):");
            for q in &self.explanation_queries {
                let _ = writeln!(out, "  {q}");
            }
        }
        out
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Display for QueryTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> ", self.qtype, self.name)?;
        match self.answer {
            AnswerClass::Records => {
                for (i, r) in self.records.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if self.qtype == "TXT" {
                        write!(f, "\"{r}\"")?;
                    } else {
                        f.write_str(r)?;
                    }
                }
            }
            AnswerClass::NxDomain => f.write_str("NXDOMAIN")?,
            AnswerClass::NoData => f.write_str("no records (NODATA)")?,
            AnswerClass::TempError => write!(
                f,
                "temporary error: {}",
                self.error.as_deref().unwrap_or("unknown")
            )?,
        }
        if self.cached {
            f.write_str(" (answered from memory)")?;
        }
        if let Some(n) = &self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_record(out: &mut String, r: &RecordTrace, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "{}:", r.domain);
    for q in &r.queries {
        indent(out, depth + 1);
        let _ = writeln!(out, "{q}");
    }
    if let Some(rec) = &r.record {
        indent(out, depth + 1);
        let _ = writeln!(out, "record: {rec}");
    }
    for t in &r.terms {
        indent(out, depth + 1);
        let _ = write!(out, "{}", t.term);
        if let Some(target) = &t.target {
            let _ = write!(out, " [{target}]");
        }
        let _ = write!(out, " => {}", t.outcome.as_str());
        if !t.detail.is_empty() {
            let _ = write!(out, ": {}", t.detail);
        }
        let _ = writeln!(out, "  (lookups {}, void {})", t.lookups, t.void_lookups);
        for q in &t.queries {
            indent(out, depth + 2);
            let _ = writeln!(out, "{q}");
        }
        if let Some(n) = &t.nested {
            write_record(out, n, depth + 2);
        }
    }
    indent(out, depth + 1);
    let _ = writeln!(out, "=> {} ({})", r.result, r.reason);
}

/// TXT data as text: printable ASCII as is, other bytes as `\DDD` and `"`/`\` escaped.
pub(crate) fn escape_txt(data: &[u8]) -> String {
    let plain = |b: u8| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\';
    let mut s = String::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        let run = rest.iter().position(|&b| !plain(b)).unwrap_or(rest.len());
        // The run is printable ASCII, hence UTF-8.
        s.push_str(std::str::from_utf8(&rest[..run]).unwrap_or_default());
        let Some((&b, tail)) = rest[run..].split_first() else {
            break;
        };
        if b == b'"' || b == b'\\' {
            s.push('\\');
            s.push(char::from(b));
        } else {
            let _ = write!(s, "\\{b:03}");
        }
        rest = tail;
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn txt_escapes() {
        assert_eq!(super::escape_txt(b"v=spf1 -all"), "v=spf1 -all");
        assert_eq!(
            super::escape_txt(b"a\"b\\c\x00\xff\r"),
            "a\\\"b\\\\c\\000\\255\\013"
        );
    }
}
