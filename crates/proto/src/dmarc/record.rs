//! The DMARC Policy Record (§4.7, §4.8): parsing a TXT record into a [`Record`], with
//! diagnostics, and choosing the record out of the TXT RRset at a `_dmarc` name.
//!
//! ```text
//! dmarc-record  = dmarc-version *(dmarc-sep dmarc-tag) [dmarc-sep]
//! dmarc-version = "v" equals %s"DMARC1" ; case sensitive
//! dmarc-sep     = *WSP ";" *WSP
//! equals        = *WSP "=" *WSP
//! dmarc-tag     = 1*ALPHA equals 1*dmarc-value
//! ```
//!
//! The parser follows the receiver's rules: unknown tags are ignored (§4.7), a syntax error
//! in the remainder of the record is discarded in favour of the default (§4.8), and a
//! missing or invalid `p`, or an invalid `sp` or `np`, makes the record act as `p=none` when
//! `rua` holds at least one valid URI and makes it unusable otherwise (§4.10.1). Everything
//! that was wrong is reported as a [`Diagnostic`]: [`Severity::Error`] for what a publisher
//! must fix, [`Severity::Warning`] for what a receiver ignores. A record parsed for RFC 7489
//! also knows `pct`, `rf` and `ri`; one parsed for RFC 9989 still reads them (reports show
//! them) but lists them as ignored; an RFC 7489 parse likewise keeps `np`, `psd` and `t`
//! but lists them as ignored, and the RFC 7489 evaluation does not use them.

use std::fmt;
use std::sync::Arc;

use super::{AlignmentMode, Policy, Spec};
use std::borrow::Cow;

use crate::tag_list::{Strictness, Tag, TagList};

/// Largest TXT RRset size looked at, in bytes; DMARC records are a few hundred bytes.
const MAX_RECORD_LEN: usize = 8192;
/// At most this many report URIs per tag are kept.
const MAX_URIS: usize = 32;

/// A usable DMARC Policy Record, after defaults and the §4.10.1 fallback were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `p`: the policy for the domain itself. `none` when the record fell back to `p=none`
    /// (§4.10.1).
    pub p: Policy,
    /// `sp`, if published (and valid): the policy for existing subdomains.
    pub sp: Option<Policy>,
    /// `np` (RFC 9989), if published (and valid): the policy for non-existent subdomains.
    /// A record parsed for RFC 7489 keeps it for display, lists it as ignored, and the
    /// RFC 7489 evaluation does not use it (likewise `psd` and `t`).
    pub np: Option<Policy>,
    /// `adkim`, default relaxed.
    pub adkim: AlignmentMode,
    /// `aspf`, default relaxed.
    pub aspf: AlignmentMode,
    /// `fo`: failure reporting options, in the order published; `[Zero]` by default.
    pub fo: Vec<FailureOption>,
    /// `rua`: aggregate report destinations that parsed as URIs.
    pub rua: Vec<ReportUri>,
    /// `ruf`: failure report destinations that parsed as URIs.
    pub ruf: Vec<ReportUri>,
    /// `psd` (RFC 9989), default [`Psd::Unknown`].
    pub psd: Psd,
    /// `t=y` (RFC 9989): the owner is testing; the applied policy is one step milder.
    pub testing: bool,
    /// `pct` (RFC 7489 only; read in both modes), 0 to 100.
    pub pct: Option<u8>,
    /// `rf` (RFC 7489 only; read in both modes): failure report formats, lower-case.
    pub rf: Option<Vec<String>>,
    /// `ri` (RFC 7489 only; read in both modes): the requested aggregate interval, seconds.
    pub ri: Option<u32>,
    /// True when the record acts as `p=none` because of the §4.10.1 fallback.
    pub fell_back_to_none: bool,
}

impl Record {
    /// Parses one TXT record (character-strings already joined) under RFC 9989 rules.
    pub fn parse(txt: &[u8]) -> Result<ParsedRecord, RecordError> {
        Self::parse_for(txt, Spec::Rfc9989)
    }

    /// Parses one TXT record under the rules of `spec`.
    pub fn parse_for(txt: &[u8], spec: Spec) -> Result<ParsedRecord, RecordError> {
        parse_record(txt, spec)
    }

    /// The policy for the domain itself (`p`).
    pub fn policy(&self) -> Policy {
        self.p
    }

    /// The policy for existing subdomains: `sp`, else `p`.
    pub fn subdomain_policy(&self) -> Policy {
        self.sp.unwrap_or(self.p)
    }

    /// The policy for non-existent subdomains: `np`, else `sp`, else `p` (§4.7).
    pub fn nonexistent_policy(&self) -> Policy {
        self.np.or(self.sp).unwrap_or(self.p)
    }

    /// Renders the record as a canonical TXT value (`v=DMARC1; p=...; ...`), for display
    /// and for tests. Only tags that differ from their defaults are written; parsing the
    /// text again gives the same record (sizes are written in bytes).
    pub fn to_txt(&self) -> String {
        use fmt::Write as _;
        let mut s = format!("v=DMARC1; p={}", self.p);
        if let Some(sp) = self.sp {
            let _ = write!(s, "; sp={sp}");
        }
        if let Some(np) = self.np {
            let _ = write!(s, "; np={np}");
        }
        if self.adkim == AlignmentMode::Strict {
            s.push_str("; adkim=s");
        }
        if self.aspf == AlignmentMode::Strict {
            s.push_str("; aspf=s");
        }
        if self.psd != Psd::Unknown {
            let _ = write!(s, "; psd={}", self.psd.as_str());
        }
        if self.testing {
            s.push_str("; t=y");
        }
        if let Some(pct) = self.pct {
            let _ = write!(s, "; pct={pct}");
        }
        if let Some(rf) = &self.rf {
            let _ = write!(s, "; rf={}", rf.join(":"));
        }
        if let Some(ri) = self.ri {
            let _ = write!(s, "; ri={ri}");
        }
        for (tag, uris) in [("rua", &self.rua), ("ruf", &self.ruf)] {
            if !uris.is_empty() {
                let list: Vec<String> = uris
                    .iter()
                    .map(|u| match u.max_size {
                        Some(size) => format!("{}!{size}", u.uri),
                        None => u.uri.clone(),
                    })
                    .collect();
                let _ = write!(s, "; {tag}={}", list.join(","));
            }
        }
        if self.fo != [FailureOption::Zero] {
            let list: Vec<&str> = self.fo.iter().map(|f| f.as_str()).collect();
            let _ = write!(s, "; fo={}", list.join(":"));
        }
        s
    }
}

/// A record together with what the parser noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRecord {
    /// The usable record, shared: evaluations hand it out without copying.
    pub record: Arc<Record>,
    /// Everything that was wrong or ignored, in the order found.
    pub diagnostics: Vec<Diagnostic>,
    /// Names (lower-case) of tags that were ignored: unknown ones and those the chosen
    /// specification does not have.
    pub ignored_tags: Vec<String>,
}

impl ParsedRecord {
    /// True when nothing of severity [`Severity::Error`] was found: the record is as a
    /// publisher should write it (warnings aside).
    pub fn is_clean(&self) -> bool {
        !self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Why a TXT record gave no usable DMARC record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// What kind of failure.
    pub kind: RecordErrorKind,
    /// The diagnostics gathered before giving up.
    pub diagnostics: Vec<Diagnostic>,
    /// The `psd` tag of the record, if it got that far: the tree walk (§4.10) stops at a
    /// DMARC record with `psd=y` or `psd=n` even when its policy is unusable.
    pub psd: Psd,
}

/// The kinds of [`RecordError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordErrorKind {
    /// The record does not start with `v=DMARC1` (§4.7: the entire record is ignored).
    NotDmarc,
    /// The record has no valid `p` (or has an invalid `sp`/`np`) and no valid `rua` URI, so
    /// no DMARC processing applies (§4.10.1).
    NoUsablePolicy,
    /// The record is longer than this implementation reads.
    TooLong,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RecordErrorKind::NotDmarc => f.write_str("not a DMARC record (it must start with v=DMARC1)"),
            RecordErrorKind::NoUsablePolicy => f.write_str(
                "the record has no valid p (or an invalid sp/np) and no valid rua URI, so DMARC does not apply (RFC 9989 §4.10.1)",
            ),
            RecordErrorKind::TooLong => write!(f, "the record is longer than {MAX_RECORD_LEN} bytes"),
        }?;
        if let Some(d) = self
            .diagnostics
            .iter()
            .find(|d| d.severity == Severity::Error)
        {
            write!(f, "; {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RecordError {}

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing, changes nothing (an ignored tag).
    Info,
    /// Tolerated by receivers, but not what the specification says.
    Warning,
    /// Not valid; a receiver falls back to a default or ignores the part.
    Error,
}

/// One thing the record parser noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// The tag concerned (lower-case), if any.
    pub tag: Option<String>,
    /// Byte offset in the record.
    pub offset: usize,
    /// What was wrong, for a person.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Info => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{sev} at byte {}: {}", self.offset, self.message)
    }
}

/// The `psd` tag (§4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Psd {
    /// `psd=y`: the domain is a Public Suffix Domain.
    Yes,
    /// `psd=n`: the domain is an Organizational Domain.
    No,
    /// `psd=u` or absent: unknown, let the tree walk decide.
    #[default]
    Unknown,
}

impl Psd {
    /// The tag value: `y`, `n` or `u`.
    pub fn as_str(self) -> &'static str {
        match self {
            Psd::Yes => "y",
            Psd::No => "n",
            Psd::Unknown => "u",
        }
    }
}

/// One `fo` option (§4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureOption {
    /// `0`: report when all mechanisms fail to produce an aligned pass.
    Zero,
    /// `1`: report when any mechanism fails to produce an aligned pass.
    One,
    /// `d`: report DKIM signature failures.
    Dkim,
    /// `s`: report SPF failures.
    Spf,
}

impl FailureOption {
    /// The tag value: `0`, `1`, `d` or `s`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureOption::Zero => "0",
            FailureOption::One => "1",
            FailureOption::Dkim => "d",
            FailureOption::Spf => "s",
        }
    }
}

/// One reporting URI of `rua` or `ruf` (§4.6, §4.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportUri {
    /// The URI as published, without any `!size` suffix.
    pub uri: String,
    /// The scheme, lower-case (`mailto`, `https`, ...).
    pub scheme: String,
    /// For `mailto:` URIs, the percent-decoded address (case kept), without `?headers`.
    pub address: Option<String>,
    /// The obsolete `!size` limit in bytes (`k`, `m`, `g`, `t` are powers of 2^10); not used
    /// to choose the destination.
    pub max_size: Option<u64>,
}

impl ReportUri {
    /// The domain of a `mailto:` address, lower-case, if there is one.
    pub fn mailto_domain(&self) -> Option<String> {
        let addr = self.address.as_deref()?;
        let (_, domain) = addr.rsplit_once('@')?;
        let domain = domain.trim().trim_end_matches('.');
        (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
    }
}

impl fmt::Display for ReportUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

/// What the TXT RRset at one `_dmarc` name holds (§4.10 steps 2 and 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordSet {
    /// No RR starts with `v=DMARC1`.
    NoRecord,
    /// More than one RR starts with `v=DMARC1`: all are discarded.
    Multiple(usize),
    /// Exactly one DMARC record, but it gives no usable policy.
    Unusable(RecordError),
    /// Exactly one usable DMARC record.
    Found(ParsedRecord),
}

/// Picks the DMARC record out of the TXT RRs at one `_dmarc` name: RRs that do not start
/// with `v=DMARC1` are ignored; several DMARC RRs mean none.
pub fn select_record(rrs: &[Vec<u8>], spec: Spec) -> RecordSet {
    let mut dmarc = rrs.iter().filter(|rr| starts_with_version(rr));
    let Some(first) = dmarc.next() else {
        return RecordSet::NoRecord;
    };
    let more = dmarc.count();
    if more > 0 {
        return RecordSet::Multiple(more + 1);
    }
    match Record::parse_for(first, spec) {
        Ok(parsed) => RecordSet::Found(parsed),
        Err(e) => RecordSet::Unusable(e),
    }
}

/// True if `txt` starts with the DMARC version tag: optional whitespace, `v` (either case),
/// `=` with optional whitespace around it, exactly `DMARC1`, then the end, whitespace or `;`.
pub fn starts_with_version(txt: &[u8]) -> bool {
    let s = skip_wsp(txt);
    let Some((&first, rest)) = s.split_first() else {
        return false;
    };
    if !first.eq_ignore_ascii_case(&b'v') {
        return false;
    }
    let rest = skip_wsp(rest);
    let Some(rest) = rest.strip_prefix(b"=") else {
        return false;
    };
    let Some(rest) = skip_wsp(rest).strip_prefix(b"DMARC1") else {
        return false;
    };
    let rest = skip_wsp(rest);
    rest.is_empty() || rest[0] == b';'
}

fn skip_wsp(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    &s[n..]
}

struct Parser {
    diagnostics: Vec<Diagnostic>,
    ignored: Vec<String>,
}

impl Parser {
    fn diag(&mut self, severity: Severity, tag: Option<&str>, offset: usize, message: String) {
        self.diagnostics.push(Diagnostic {
            severity,
            tag: tag.map(str::to_owned),
            offset,
            message,
        });
    }

    fn ignore(&mut self, tag: &str, offset: usize, why: &str) {
        if !self.ignored.iter().any(|t| t == tag) {
            self.ignored.push(tag.to_owned());
        }
        let severity = Severity::Info;
        self.diag(
            severity,
            Some(tag),
            offset,
            format!("tag {tag:?} ignored: {why}"),
        );
    }
}

/// A tag value that did not parse: the default applies.
enum Value<T> {
    Absent,
    Valid(T),
    Invalid,
}

fn parse_record(txt: &[u8], spec: Spec) -> Result<ParsedRecord, RecordError> {
    let mut p = Parser {
        diagnostics: Vec::new(),
        ignored: Vec::new(),
    };
    if txt.len() > MAX_RECORD_LEN {
        return Err(RecordError {
            kind: RecordErrorKind::TooLong,
            diagnostics: p.diagnostics,
            psd: Psd::Unknown,
        });
    }
    if !starts_with_version(txt) {
        p.diag(
            Severity::Error,
            Some("v"),
            0,
            "the record does not start with v=DMARC1 (the value is case-sensitive)".into(),
        );
        return Err(RecordError {
            kind: RecordErrorKind::NotDmarc,
            diagnostics: p.diagnostics,
            psd: Psd::Unknown,
        });
    }
    if txt.first().is_some_and(|b| matches!(b, b' ' | b'\t')) {
        p.diag(
            Severity::Error,
            Some("v"),
            0,
            "whitespace before v=DMARC1 (the record must begin with the v tag, §4.8)".into(),
        );
    }

    let mut policy: Value<Policy> = Value::Absent;
    let mut sp: Value<Policy> = Value::Absent;
    let mut np: Value<Policy> = Value::Absent;
    let mut adkim = AlignmentMode::Relaxed;
    let mut aspf = AlignmentMode::Relaxed;
    let mut fo = vec![FailureOption::Zero];
    let mut rua: Vec<ReportUri> = Vec::new();
    let mut rua_present = false;
    let mut ruf: Vec<ReportUri> = Vec::new();
    let mut psd = Psd::Unknown;
    let mut testing = false;
    let mut pct = None;
    let mut rf = None;
    let mut ri = None;

    // The whole record as one strict tag-list when it is well-formed (the common case);
    // otherwise each `;`-separated part on its own, so one bad part is reported and
    // skipped (§4.8) instead of sinking the record.
    let tags: Vec<(Tag<'_>, usize)> = match TagList::parse_with(txt, Strictness::Strict) {
        Ok(list) => list.tags().iter().map(|t| (t.clone(), 0)).collect(),
        Err(_) => lenient_tags(txt, &mut p),
    };
    let mut seen: Vec<Cow<'_, str>> = Vec::with_capacity(tags.len());
    for (index, (tag, base)) in tags.iter().enumerate() {
        let name: Cow<'_, str> = if tag.name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(tag.name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(tag.name)
        };
        let offset = base + tag.name_start;
        let value_offset = base + tag.value_range.start;
        if index == 0 {
            // The version tag, checked above.
            seen.push(name);
            continue;
        }
        if seen.contains(&name) {
            p.diag(
                Severity::Error,
                Some(&name),
                offset,
                format!("tag {name:?} appears more than once; the first one is used"),
            );
            continue;
        }
        seen.push(name.clone());
        let Some(value) = tag.value_str().map(str::trim) else {
            p.diag(
                Severity::Error,
                Some(&name),
                value_offset,
                format!("the value of {name:?} is not UTF-8 text; ignored"),
            );
            continue;
        };
        match &*name {
            "v" => p.diag(
                Severity::Error,
                Some("v"),
                offset,
                "v appears again after the first tag; ignored".into(),
            ),
            "p" => policy = policy_value(&mut p, "p", value, value_offset),
            "sp" => sp = policy_value(&mut p, "sp", value, value_offset),
            "np" if spec == Spec::Rfc7489 => {
                p.ignore("np", offset, "not an RFC 7489 tag");
                if let Ok(v) = value.parse::<Policy>() {
                    np = Value::Valid(v);
                }
            }
            "np" => np = policy_value(&mut p, "np", value, value_offset),
            "adkim" => adkim = alignment_value(&mut p, "adkim", value, value_offset),
            "aspf" => aspf = alignment_value(&mut p, "aspf", value, value_offset),
            "fo" => {
                if let Some(v) = fo_value(&mut p, value, value_offset) {
                    fo = v;
                }
            }
            "rua" => {
                rua_present = true;
                rua = uri_list(&mut p, "rua", value, value_offset);
            }
            "ruf" => ruf = uri_list(&mut p, "ruf", value, value_offset),
            "psd" | "t" => {
                let name = &*name;
                let severity = if spec == Spec::Rfc7489 {
                    p.ignore(name, offset, "not an RFC 7489 tag");
                    Severity::Warning
                } else {
                    Severity::Error
                };
                match (name, value.to_ascii_lowercase().as_str()) {
                    ("psd", "y") => psd = Psd::Yes,
                    ("psd", "n") => psd = Psd::No,
                    ("psd", "u") => psd = Psd::Unknown,
                    ("t", "y") => testing = true,
                    ("t", "n") => testing = false,
                    ("psd", _) => p.diag(
                        severity,
                        Some("psd"),
                        value_offset,
                        format!("psd={value:?} is not y, n or u; the default u applies"),
                    ),
                    _ => p.diag(
                        severity,
                        Some("t"),
                        value_offset,
                        format!("t={value:?} is not y or n; the default n applies"),
                    ),
                }
            }
            "pct" | "rf" | "ri" => {
                let severity = if spec == Spec::Rfc7489 {
                    Severity::Error
                } else {
                    p.ignore(&name, offset, "removed by RFC 9989 (Appendix A.6, C.5.2)");
                    Severity::Warning
                };
                match &*name {
                    "pct" => match value.parse::<u8>() {
                        Ok(n) if n <= 100 && value.bytes().all(|b| b.is_ascii_digit()) => {
                            pct = Some(n);
                        }
                        _ => p.diag(
                            severity,
                            Some("pct"),
                            value_offset,
                            format!("pct={value:?} is not an integer from 0 to 100; the default 100 applies"),
                        ),
                    },
                    "ri" => match value.parse::<u32>() {
                        Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => ri = Some(n),
                        _ => p.diag(
                            severity,
                            Some("ri"),
                            value_offset,
                            format!("ri={value:?} is not a number of seconds; the default 86400 applies"),
                        ),
                    },
                    _ => {
                        let formats: Vec<String> = value
                            .split(':')
                            .map(|f| f.trim().to_ascii_lowercase())
                            .collect();
                        if formats.iter().all(|f| f == "afrf" || f == "iodef") {
                            rf = Some(formats);
                        } else {
                            p.diag(
                                severity,
                                Some("rf"),
                                value_offset,
                                format!("rf={value:?} is not a list of known report formats (afrf); the default afrf applies"),
                            );
                        }
                    }
                }
            }
            _ => p.ignore(&name, offset, "unknown tag (§4.7)"),
        }
    }

    // §4.10.1: a missing or invalid p, or an invalid sp or np.
    let p_bad = !matches!(policy, Value::Valid(_));
    let sp_bad = matches!(sp, Value::Invalid);
    let np_bad = matches!(np, Value::Invalid);
    let mut fell_back = false;
    let (p_val, sp_val, np_val) = if p_bad || sp_bad || np_bad {
        if rua.is_empty() {
            let why = if matches!(policy, Value::Absent) {
                "no p tag"
            } else if p_bad {
                "an invalid p"
            } else {
                "an invalid sp or np"
            };
            p.diag(
                Severity::Error,
                Some("p"),
                0,
                format!(
                    "the record has {why} and {}, so DMARC does not apply (§4.10.1)",
                    if rua_present {
                        "no valid rua URI"
                    } else {
                        "no rua tag"
                    }
                ),
            );
            p.diagnostics.sort_by_key(|d| d.offset);
            return Err(RecordError {
                kind: RecordErrorKind::NoUsablePolicy,
                diagnostics: p.diagnostics,
                psd,
            });
        }
        fell_back = true;
        let severity = if matches!(policy, Value::Absent) && !sp_bad && !np_bad {
            // A record with rua and no p is a common, deliberate monitoring record.
            Severity::Warning
        } else {
            Severity::Error
        };
        p.diag(
            severity,
            Some("p"),
            0,
            "no valid p (or an invalid sp/np): the record acts as p=none because rua is valid (§4.10.1)".into(),
        );
        (Policy::None, None, None)
    } else {
        let v = |x: Value<Policy>| match x {
            Value::Valid(v) => Some(v),
            _ => None,
        };
        (v(policy).unwrap_or(Policy::None), v(sp), v(np))
    };
    if !fo.is_empty() && ruf.is_empty() && fo != [FailureOption::Zero] {
        p.diag(
            Severity::Info,
            Some("fo"),
            0,
            "fo has no effect without ruf (§4.7)".into(),
        );
    }

    p.diagnostics.sort_by_key(|d| d.offset);
    Ok(ParsedRecord {
        record: Arc::new(Record {
            p: p_val,
            sp: sp_val,
            np: np_val,
            adkim,
            aspf,
            fo,
            rua,
            ruf,
            psd,
            testing,
            pct,
            rf,
            ri,
            fell_back_to_none: fell_back,
        }),
        diagnostics: p.diagnostics,
        ignored_tags: p.ignored,
    })
}

/// The tags of a record that is not a well-formed tag-list: each `;`-separated part is
/// parsed alone, and parts that fail are reported (with their offset) and skipped.
fn lenient_tags<'a>(txt: &'a [u8], p: &mut Parser) -> Vec<(Tag<'a>, usize)> {
    let mut out = Vec::new();
    let mut start = 0usize;
    while start <= txt.len() {
        let end = txt[start..]
            .iter()
            .position(|&b| b == b';')
            .map_or(txt.len(), |i| start + i);
        let segment = &txt[start..end];
        let seg_start = start;
        start = end + 1;
        match TagList::parse_with(segment, Strictness::SkipEmpty) {
            Ok(list) => match list.tags().first() {
                Some(t) => out.push((t.clone(), seg_start)),
                None => {
                    if end < txt.len() && !out.is_empty() {
                        p.diag(
                            Severity::Warning,
                            None,
                            seg_start,
                            "empty tag (';;') skipped".into(),
                        );
                    }
                }
            },
            Err(e) => p.diag(
                Severity::Error,
                None,
                seg_start + e.offset,
                format!("{}; this part is ignored (§4.8)", e.kind_text()),
            ),
        }
    }
    out
}

fn policy_value(p: &mut Parser, tag: &str, value: &str, offset: usize) -> Value<Policy> {
    match value.parse::<Policy>() {
        Ok(v) => Value::Valid(v),
        Err(()) => {
            p.diag(
                Severity::Error,
                Some(tag),
                offset,
                format!("{tag}={value:?} is not none, quarantine or reject"),
            );
            Value::Invalid
        }
    }
}

fn alignment_value(p: &mut Parser, tag: &str, value: &str, offset: usize) -> AlignmentMode {
    match value.to_ascii_lowercase().as_str() {
        "r" => AlignmentMode::Relaxed,
        "s" => AlignmentMode::Strict,
        _ => {
            p.diag(
                Severity::Error,
                Some(tag),
                offset,
                format!("{tag}={value:?} is not r or s; the default r applies"),
            );
            AlignmentMode::Relaxed
        }
    }
}

fn fo_value(p: &mut Parser, value: &str, offset: usize) -> Option<Vec<FailureOption>> {
    let mut out = Vec::new();
    for part in value.split(':') {
        let opt = match part.trim().to_ascii_lowercase().as_str() {
            "0" => FailureOption::Zero,
            "1" => FailureOption::One,
            "d" => FailureOption::Dkim,
            "s" => FailureOption::Spf,
            _ => {
                p.diag(
                    Severity::Error,
                    Some("fo"),
                    offset,
                    format!(
                        "fo={value:?}: {:?} is not 0, 1, d or s; the default 0 applies",
                        part.trim()
                    ),
                );
                return None;
            }
        };
        if out.contains(&opt) {
            p.diag(
                Severity::Warning,
                Some("fo"),
                offset,
                format!("fo={value:?} repeats {:?}", opt.as_str()),
            );
            continue;
        }
        out.push(opt);
    }
    if out.contains(&FailureOption::Zero) && out.contains(&FailureOption::One) {
        p.diag(
            Severity::Error,
            Some("fo"),
            offset,
            format!("fo={value:?}: 0 and 1 are mutually exclusive"),
        );
    }
    Some(out)
}

fn uri_list(p: &mut Parser, tag: &str, value: &str, value_offset: usize) -> Vec<ReportUri> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    for raw in value.split(',') {
        let item = raw.trim();
        let offset = value_offset + pos + (raw.len() - raw.trim_start().len());
        pos += raw.len() + 1;
        if item.is_empty() {
            p.diag(
                Severity::Warning,
                Some(tag),
                offset,
                format!("empty element in the {tag} list"),
            );
            continue;
        }
        match parse_report_uri(item) {
            Ok(uri) => {
                if out.len() >= MAX_URIS {
                    p.diag(
                        Severity::Warning,
                        Some(tag),
                        offset,
                        format!("more than {MAX_URIS} URIs in {tag}; the rest are ignored"),
                    );
                    break;
                }
                if uri.scheme == "mailto" && uri.mailto_domain().is_none() {
                    p.diag(
                        Severity::Warning,
                        Some(tag),
                        offset,
                        format!("{item:?} has no usable mail address"),
                    );
                }
                out.push(uri);
            }
            Err(why) => p.diag(
                Severity::Error,
                Some(tag),
                offset,
                format!("{item:?} in {tag} is not a valid URI ({why}); ignored"),
            ),
        }
    }
    out
}

/// Parses one element of a `rua`/`ruf` list: a URI with an optional obsolete `!size`.
pub fn parse_report_uri(item: &str) -> Result<ReportUri, String> {
    let item = item.trim();
    let (uri, max_size) = match item.rsplit_once('!') {
        Some((uri, size)) => (uri.trim(), Some(parse_size(size.trim())?)),
        None => (item, None),
    };
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("no scheme".into());
    };
    let scheme_ok = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(format!("invalid scheme {scheme:?}"));
    }
    if rest.is_empty() {
        return Err("nothing after the scheme".into());
    }
    if let Some(b) = rest.bytes().find(|b| !is_uri_char(*b)) {
        return Err(format!("character {:?} must be percent-encoded", b as char));
    }
    let scheme = scheme.to_ascii_lowercase();
    let address = if scheme == "mailto" {
        let addr = rest.split('?').next().unwrap_or_default();
        Some(percent_decode(addr))
    } else {
        None
    };
    Ok(ReportUri {
        uri: uri.to_owned(),
        scheme,
        address,
        max_size,
    })
}

fn is_uri_char(b: u8) -> bool {
    // RFC 3986 unreserved / reserved / "%"; "," and "!" are excluded by §4.8.
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b':'
                | b'/'
                | b'?'
                | b'#'
                | b'['
                | b']'
                | b'@'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b'='
                | b'%'
        )
}

fn parse_size(s: &str) -> Result<u64, String> {
    let digits_end = s.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, unit) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!("size {s:?} has no digits"));
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("size {digits} is too large"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {s} is too large"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

trait KindText {
    fn kind_text(&self) -> String;
}

impl KindText for crate::tag_list::TagListError {
    fn kind_text(&self) -> String {
        // The Display form ends with " at byte N" relative to the segment; drop it.
        let s = self.to_string();
        match s.rfind(" at byte ") {
            Some(i) => s[..i].to_owned(),
            None => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_and_defaults() {
        let r = Record::parse(b"v=DMARC1; p=reject").unwrap();
        assert!(r.is_clean());
        assert_eq!(r.record.p, Policy::Reject);
        assert_eq!(r.record.subdomain_policy(), Policy::Reject);
        assert_eq!(r.record.nonexistent_policy(), Policy::Reject);
        assert_eq!(r.record.adkim, AlignmentMode::Relaxed);
        assert_eq!(r.record.fo, vec![FailureOption::Zero]);
        assert_eq!(r.record.to_txt(), "v=DMARC1; p=reject");
    }

    #[test]
    fn renders_and_parses_back() {
        let txt = "V=DMARC1; p=quarantine; sp=reject; np=none; adkim=s; psd=n; t=y; pct=50; \
                   rf=afrf; ri=3600; rua=mailto:a@example.com!1k,https://r.example/x; \
                   ruf=mailto:f@example.com; fo=1:d";
        let r = Record::parse(txt.as_bytes()).unwrap().record;
        let again = Record::parse(r.to_txt().as_bytes()).unwrap().record;
        assert_eq!(again, r);
        assert_eq!(r.rua[0].max_size, Some(1024));
    }

    #[test]
    fn version_rules() {
        assert!(starts_with_version(b"v=DMARC1"));
        assert!(starts_with_version(b"V = DMARC1 ;p=none"));
        assert!(!starts_with_version(b"v=DMARC1x; p=none"));
        assert!(!starts_with_version(b"v=dmarc1; p=none"));
        assert!(!starts_with_version(b"p=none; v=DMARC1"));
        assert!(!starts_with_version(b""));
        let e = Record::parse(b"p=reject; v=DMARC1").unwrap_err();
        assert_eq!(e.kind, RecordErrorKind::NotDmarc);
    }

    #[test]
    fn fallback_to_none_with_rua() {
        let r = Record::parse(b"v=DMARC1; p=bogus; rua=mailto:a@example.com").unwrap();
        assert!(r.record.fell_back_to_none);
        assert_eq!(r.record.p, Policy::None);
        assert!(!r.is_clean());
        let e = Record::parse(b"v=DMARC1; p=bogus").unwrap_err();
        assert_eq!(e.kind, RecordErrorKind::NoUsablePolicy);
        let e = Record::parse(b"v=DMARC1; p=reject; sp=x; rua=bad").unwrap_err();
        assert_eq!(e.kind, RecordErrorKind::NoUsablePolicy);
        assert!(e.to_string().contains("rua"));
    }

    #[test]
    fn uris_and_sizes() {
        let r = Record::parse(
            b"v=DMARC1; p=none; rua=mailto:a@example.com!10m, mailto:b%40x@example.net ! 2G,https://r.example/x; ruf=nope",
        )
        .unwrap();
        let rua = &r.record.rua;
        assert_eq!(rua.len(), 3);
        assert_eq!(rua[0].max_size, Some(10 << 20));
        assert_eq!(rua[0].address.as_deref(), Some("a@example.com"));
        assert_eq!(rua[1].address.as_deref(), Some("b@x@example.net"));
        assert_eq!(rua[1].max_size, Some(2 << 30));
        assert_eq!(rua[2].scheme, "https");
        assert!(r.record.ruf.is_empty());
        assert!(!r.is_clean());
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert!(parse_size("99999999999999t").is_err());
    }

    #[test]
    fn diagnostics_point_at_the_problem() {
        let txt = b"v=DMARC1; p=none; rua=mailto:a@x.example, bad;; foo=1";
        let r = Record::parse(txt).unwrap();
        let offsets: Vec<usize> = r.diagnostics.iter().map(|d| d.offset).collect();
        assert_eq!(offsets, [42, 46, 48]);
        assert_eq!(&txt[42..45], b"bad");
        assert_eq!(r.ignored_tags, ["foo"]);
    }

    #[test]
    fn syntax_errors_are_skipped() {
        let r = Record::parse(b"v=DMARC1; p=none; reject; adkim=q; p=reject").unwrap();
        assert_eq!(r.record.p, Policy::None);
        assert_eq!(
            r.diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count(),
            3
        );
        let r =
            Record::parse_for(b"v=DMARC1; p=none; np=reject; t=y; pct=20", Spec::Rfc7489).unwrap();
        assert_eq!(r.record.np, Some(Policy::Reject));
        assert!(r.is_clean());
        assert_eq!(r.record.pct, Some(20));
        assert_eq!(r.ignored_tags, vec!["np", "t"]);
    }

    #[test]
    fn selecting_from_an_rrset() {
        let rrs = vec![b"v=spf1 -all".to_vec(), b"v=DMARC1; p=none".to_vec()];
        assert!(matches!(
            select_record(&rrs, Spec::Rfc9989),
            RecordSet::Found(_)
        ));
        let rrs = vec![b"v=DMARC1; p=none".to_vec(), b"v=DMARC1; p=reject".to_vec()];
        assert_eq!(select_record(&rrs, Spec::Rfc9989), RecordSet::Multiple(2));
        assert_eq!(select_record(&[], Spec::Rfc9989), RecordSet::NoRecord);
    }
}
