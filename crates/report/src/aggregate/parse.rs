//! Streaming parser for aggregate report XML.
//!
//! One pass over the document with a small, lenient XML scanner of our own (markup found a
//! word at a time in short spans and with memchr beyond; element names looked up in a
//! compile-time hash table and compared a word at a time; values borrowed from the input;
//! only the strings kept in the report are copied; each record's lists allocated once, at
//! their exact size).
//! Elements are matched by local name, so the RFC 7489 (no namespace), dmarc.org draft
//! (`http://dmarc.org/dmarc-xml/0.1|0.2`) and RFC 9990 (`urn:ietf:params:xml:ns:dmarc-2.0`)
//! forms all take the same path. quick-xml supplies entity unescaping and escaping; its event
//! reader was measured as the floor of the whole budget (validating UTF-8 per event and
//! splitting text at every reference), which is why the scanner is ours: see
//! BENCHMARKS.md.
//!
//! Leniency, and how loss is reported: enum words ignore case; empty elements count as
//! absent; decimal epoch values are truncated; unknown elements are ignored (or kept as
//! extensions where the schema allows any); invalid UTF-8 is replaced (or decoded as Latin-1
//! when the declaration says so); a stray `<` is read as text; mismatched end tags close what
//! they match; a document cut short keeps its complete records. Everything tolerated that
//! changes or drops data leaves a line in [`AggregateReport::warnings`]. A document without
//! `report_metadata`, `policy_published`, a date range or any readable record is an error.
//! The XML element depth and the number of records are bounded by [`Limits`].

use std::borrow::Cow;
use std::net::IpAddr;

use super::{
    ActionDisposition, AggregateReport, Alignment, CompactString, DateRange, DiscoveryMethod,
    Disposition, DkimAuthResult, DkimResult, DmarcResult, Extension, Identifiers, OverrideReason,
    PolicyEvaluated, PolicyOverride, PolicyPublished, Record, ReportMetadata, SmallVec,
    SpfAuthResult, SpfResult, SpfScope,
};
use crate::error::{LimitKind, ReportError, SourcePath};
use crate::limits::Limits;

/// Most warnings kept per report; further ones are counted in a final line.
const MAX_WARNINGS: usize = 100;

/// Parses one aggregate report from XML bytes.
///
/// `path` names the input in errors (use [`SourcePath::default`] for none).
pub fn parse_xml(
    xml: &[u8],
    limits: &Limits,
    path: &SourcePath,
) -> Result<AggregateReport, ReportError> {
    let mut warnings = Warnings::default();
    if let Some(text) = crate::container::decode_utf16(xml) {
        warnings.push(format!(
            "document is UTF-16 ({}, with a byte-order mark); decoded",
            if xml.starts_with(&[0xff, 0xfe]) {
                "little-endian"
            } else {
                "big-endian"
            }
        ));
        let mut p = Parser::new(&text, limits, path, warnings);
        p.run()?;
        return p.finish();
    }
    let xml = strip_bom(xml);
    let text: Cow<'_, str> = match std::str::from_utf8(xml) {
        Ok(s) => Cow::Borrowed(s),
        Err(e) => {
            let valid = e.valid_up_to();
            if declares_single_byte_encoding(xml) {
                warnings.push(format!(
                    "document is not UTF-8 (first invalid byte at offset {valid}); decoded as \
                     ISO-8859-1 as its XML declaration says"
                ));
                Cow::Owned(xml.iter().map(|&b| char::from(b)).collect())
            } else {
                warnings.push(format!(
                    "invalid UTF-8 (first at byte offset {valid}); invalid bytes replaced by U+FFFD"
                ));
                Cow::Owned(String::from_utf8_lossy(xml).into_owned())
            }
        }
    };
    let mut p = Parser::new(&text, limits, path, warnings);
    p.run()?;
    p.finish()
}

fn strip_bom(xml: &[u8]) -> &[u8] {
    xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml)
}

/// Whether the XML declaration names a single-byte encoding (Latin-1 family).
fn declares_single_byte_encoding(xml: &[u8]) -> bool {
    let head = &xml[..xml.len().min(200)];
    let Some(end) = head.windows(2).position(|w| w == b"?>") else {
        return false;
    };
    let decl = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    ["iso-8859-", "latin", "windows-125", "cp125", "us-ascii"]
        .iter()
        .any(|e| decl.contains(e))
}

/// The elements this parser knows, by local name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum El {
    Feedback,
    Version,
    ReportMetadata,
    OrgName,
    Email,
    ExtraContactInfo,
    ReportId,
    DateRange,
    Begin,
    End,
    Error,
    Generator,
    PolicyPublished,
    Domain,
    P,
    Sp,
    Np,
    Adkim,
    Aspf,
    Pct,
    Fo,
    Testing,
    DiscoveryMethod,
    Record,
    Row,
    SourceIp,
    Count,
    PolicyEvaluated,
    Disposition,
    Dkim,
    Spf,
    Reason,
    Type,
    Comment,
    Identifiers,
    HeaderFrom,
    EnvelopeFrom,
    EnvelopeTo,
    AuthResults,
    Selector,
    Result,
    Scope,
    HumanResult,
    Extensions,
    Extension,
    Unknown,
}

/// Hash of an element name for [`NAME_TABLE`]: length, first, middle and last byte
/// (collision-free over the known names; checked when the table is built).
const fn name_slot(name: &[u8]) -> usize {
    let n = name.len();
    if n == 0 {
        return 0;
    }
    (n + name[0] as usize * 12 + name[n / 2] as usize * 11 + name[n - 1] as usize * 6) % 128
}

/// A known element name, also held as (at most three) little-endian words so that it can be
/// compared with the input a word at a time.
#[derive(Clone, Copy)]
struct Name {
    el: El,
    name: &'static [u8],
    words: [u64; 3],
    masks: [u64; 3],
}

impl Name {
    const EMPTY: Name = Name {
        el: El::Unknown,
        name: b"",
        words: [0; 3],
        masks: [0; 3],
    };

    const fn new(el: El, name: &'static [u8]) -> Name {
        let mut words = [0u64; 3];
        let mut masks = [0u64; 3];
        let mut i = 0;
        while i < name.len() {
            words[i / 8] |= (name[i] as u64) << (8 * (i % 8));
            masks[i / 8] |= 0xff << (8 * (i % 8));
            i += 1;
        }
        Name {
            el,
            name,
            words,
            masks,
        }
    }

    /// Whether the input at `start` begins with this name (what follows is not looked at).
    #[inline]
    fn is_at(&self, b: &[u8], start: usize) -> bool {
        let Some(chunk) = b.get(start..start.saturating_add(24)) else {
            // Near the end of the input: byte by byte.
            return b
                .get(start..start.saturating_add(self.name.len()))
                .is_some_and(|n| same(n, self.name));
        };
        let mut diff = 0;
        for (k, w) in chunk.chunks_exact(8).enumerate() {
            let (Ok(w), Some(&want), Some(&mask)) =
                (<[u8; 8]>::try_from(w), self.words.get(k), self.masks.get(k))
            else {
                return false;
            };
            diff |= (u64::from_le_bytes(w) ^ want) & mask;
        }
        diff == 0
    }
}

/// Every known local name in its [`name_slot`]; empty slots hold [`Name::EMPTY`].
static NAME_TABLE: [Name; 128] = {
    const NAMES: [(El, &[u8]); 46] = [
        (El::Feedback, b"feedback"),
        (El::Version, b"version"),
        (El::ReportMetadata, b"report_metadata"),
        (El::OrgName, b"org_name"),
        (El::Email, b"email"),
        (El::ExtraContactInfo, b"extra_contact_info"),
        (El::ReportId, b"report_id"),
        (El::DateRange, b"date_range"),
        (El::Begin, b"begin"),
        (El::End, b"end"),
        (El::Error, b"error"),
        (El::Generator, b"generator"),
        (El::PolicyPublished, b"policy_published"),
        (El::Domain, b"domain"),
        (El::P, b"p"),
        (El::Sp, b"sp"),
        (El::Np, b"np"),
        (El::Adkim, b"adkim"),
        (El::Aspf, b"aspf"),
        (El::Pct, b"pct"),
        (El::Fo, b"fo"),
        (El::Testing, b"testing"),
        (El::DiscoveryMethod, b"discovery_method"),
        (El::Record, b"record"),
        (El::Row, b"row"),
        (El::SourceIp, b"source_ip"),
        (El::Count, b"count"),
        (El::PolicyEvaluated, b"policy_evaluated"),
        (El::Disposition, b"disposition"),
        (El::Dkim, b"dkim"),
        (El::Spf, b"spf"),
        (El::Reason, b"reason"),
        (El::Type, b"type"),
        (El::Comment, b"comment"),
        (El::Identifiers, b"identifiers"),
        // The early drafts' name for <identifiers>.
        (El::Identifiers, b"identities"),
        (El::HeaderFrom, b"header_from"),
        (El::EnvelopeFrom, b"envelope_from"),
        (El::EnvelopeTo, b"envelope_to"),
        (El::AuthResults, b"auth_results"),
        (El::Selector, b"selector"),
        (El::Result, b"result"),
        (El::Scope, b"scope"),
        (El::HumanResult, b"human_result"),
        (El::Extensions, b"extensions"),
        (El::Extension, b"extension"),
    ];
    let mut table = [Name::EMPTY; 128];
    let mut i = 0;
    while i < NAMES.len() {
        let (el, name) = NAMES[i];
        let slot = name_slot(name);
        // A collision stops the build: change the hash in `name_slot`.
        assert!(
            matches!(table[slot].el, El::Unknown),
            "element name hash collision"
        );
        assert!(name.len() <= 24, "element name longer than three words");
        table[slot] = Name::new(el, name);
        i += 1;
    }
    table
};

/// The [`NAME_TABLE`] entry of each element (by `El as usize`), for its end tag.
static NAME_OF_EL: [Name; El::Unknown as usize + 1] = {
    let mut by_el = [Name::EMPTY; El::Unknown as usize + 1];
    let mut slot = 0;
    while slot < NAME_TABLE.len() {
        let name = NAME_TABLE[slot];
        // The canonical name (not the draft alias `identities`) is the one written back.
        if !matches!(name.el, El::Unknown) && name.name.len() == el_name(name.el).len() {
            by_el[name.el as usize] = name;
        }
        slot += 1;
    }
    by_el
};

impl El {
    fn from_local(name: &[u8]) -> El {
        // One table slot per known name; confirm the whole name.
        if let Some(known) = NAME_TABLE.get(name_slot(name))
            && same(known.name, name)
        {
            return known.el;
        }
        if name.len() <= 32 && name.iter().any(u8::is_ascii_uppercase) {
            // Rare path: element names written in another case.
            return El::from_local(&name.to_ascii_lowercase());
        }
        El::Unknown
    }

    /// Elements whose text content is ignored.
    fn is_container(self) -> bool {
        matches!(
            self,
            El::Feedback
                | El::ReportMetadata
                | El::DateRange
                | El::PolicyPublished
                | El::Record
                | El::Row
                | El::PolicyEvaluated
                | El::Reason
                | El::Identifiers
                | El::AuthResults
        )
    }
}

/// One open element.
#[derive(Debug)]
struct Frame<'a> {
    el: El,
    /// The element's text when it is one borrowed piece (the usual case).
    single: Option<&'a str>,
    /// How many text pieces were seen.
    pieces: u32,
    /// Where this element's text starts in the shared text buffer (several pieces).
    text_start: usize,
    /// Byte offset just after the start tag.
    content_start: usize,
    /// Byte offset of the start tag.
    tag_start: usize,
    /// For extension elements: (name, definition) from the attributes or the local name.
    ext: Option<Box<(String, Option<String>)>>,
}

/// Collected warnings, capped.
#[derive(Debug, Default)]
struct Warnings {
    list: Vec<String>,
    dropped: usize,
}

impl Warnings {
    fn push(&mut self, w: String) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(w);
        } else {
            self.dropped += 1;
        }
    }

    fn into_vec(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.list
                .push(format!("{} further warnings not shown", self.dropped));
        }
        self.list
    }
}

/// Fields of the record being read.
///
/// The auth results and override reasons are collected in scratch lists kept from record to
/// record; [`Parser::finish_record`] moves them into lists allocated once at their exact
/// size (most records carry one to three of each, so growing a fresh list per record would
/// cost a reallocation and leave unused capacity behind in every record).
#[derive(Debug, Default)]
struct RecordBuilder {
    /// The address, or the text that is not one.
    source_ip: Option<Result<IpAddr, String>>,
    count: Option<u64>,
    count_raw: Option<String>,
    policy_evaluated: PolicyEvaluated,
    header_from: Option<CompactString>,
    envelope_from: Option<CompactString>,
    envelope_to: Option<CompactString>,
    reasons: Vec<OverrideReason>,
    dkim: Vec<DkimAuthResult>,
    spf: Vec<SpfAuthResult>,
    extensions: Vec<Extension>,
}

impl RecordBuilder {
    /// Clears the builder for the next record, keeping the scratch lists' capacity.
    fn reset(&mut self) {
        let mut reasons = std::mem::take(&mut self.reasons);
        let mut dkim = std::mem::take(&mut self.dkim);
        let mut spf = std::mem::take(&mut self.spf);
        reasons.clear();
        dkim.clear();
        spf.clear();
        *self = RecordBuilder {
            reasons,
            dkim,
            spf,
            ..RecordBuilder::default()
        };
    }
}

/// The items of a scratch list as a [`SmallVec`] holding one inline: no allocation for
/// none or one, a list of exactly their number for more.
fn inline_one<T>(scratch: &mut Vec<T>) -> SmallVec<[T; 1]> {
    if scratch.len() > 1 {
        return SmallVec::from_vec(exact(scratch));
    }
    let mut out = SmallVec::new();
    if let Some(item) = scratch.pop() {
        out.push(item);
    }
    out
}

/// The items of a scratch list, moved into a list of exactly their number (none allocated
/// for none); the scratch list keeps its capacity.
fn exact<T>(scratch: &mut Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(scratch.len());
    out.append(scratch);
    out
}

/// Fields of an auth result (`dkim` or `spf`) or a `reason` being read.
#[derive(Debug, Default)]
struct Sub<'a> {
    domain: Option<Cow<'a, str>>,
    selector: Option<Cow<'a, str>>,
    result: Option<Cow<'a, str>>,
    scope: Option<Cow<'a, str>>,
    human_result: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    comment: Option<Cow<'a, str>>,
}

struct Parser<'a> {
    src: &'a str,
    limits: &'a Limits,
    path: &'a SourcePath,
    warnings: Warnings,
    stack: Vec<Frame<'a>>,
    /// How many open elements are extensions being captured whole.
    ext_depth: usize,
    text: String,
    /// Cursor for turning byte offsets into line numbers (warnings come in order).
    line_cursor: (usize, u64),

    saw_root: bool,
    /// A root element other than `<feedback>`: its name and offset. Its content is skipped
    /// until a `<feedback>` element turns up inside it (a real reporter wraps the report
    /// in an element it never closes).
    outer: Option<(String, usize)>,
    /// Elements skipped before `<feedback>` (the outer root and its content).
    skipped: usize,
    saw_metadata: bool,
    saw_policy: bool,
    version: Option<String>,
    metadata: ReportMetadata,
    begin: Option<i64>,
    /// Why a `<begin>` or `<end>` present could not be read.
    bad_dates: Vec<String>,
    end: Option<i64>,
    policy: PolicyPublished,
    records: Vec<Record>,
    record_no: usize,
    record: RecordBuilder,
    sub: Sub<'a>,
    extensions: Vec<Extension>,
    unknown_seen: Vec<String>,
    /// The first XML error that stopped reading: (offset, message).
    fatal: Option<(usize, String)>,
}

impl std::fmt::Debug for Parser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parser")
            .field("depth", &self.stack.len())
            .finish()
    }
}

impl<'a> Parser<'a> {
    fn new(
        src: &'a str,
        limits: &'a Limits,
        path: &'a SourcePath,
        warnings: Warnings,
    ) -> Parser<'a> {
        Parser {
            src,
            limits,
            path,
            warnings,
            stack: Vec::with_capacity(16),
            ext_depth: 0,
            text: String::with_capacity(256),
            line_cursor: (0, 1),
            saw_root: false,
            outer: None,
            skipped: 0,
            saw_metadata: false,
            saw_policy: false,
            version: None,
            metadata: ReportMetadata::default(),
            begin: None,
            bad_dates: Vec::new(),
            end: None,
            policy: PolicyPublished::default(),
            records: Vec::new(),
            record_no: 0,
            record: RecordBuilder::default(),
            sub: Sub::default(),
            extensions: Vec::new(),
            unknown_seen: Vec::new(),
            fatal: None,
        }
    }

    /// 1-based line of a byte offset; offsets must be asked in increasing order for speed.
    fn line_of(&mut self, offset: usize) -> u64 {
        let bytes = self.src.as_bytes();
        let offset = offset.min(bytes.len());
        let (mut at, mut line) = self.line_cursor;
        if offset < at {
            at = 0;
            line = 1;
        }
        line += bytes
            .get(at..offset)
            .map_or(0, |s| s.iter().filter(|&&b| b == b'\n').count() as u64);
        self.line_cursor = (offset, line);
        line
    }

    fn warn_at(&mut self, offset: usize, msg: impl std::fmt::Display) {
        let line = self.line_of(offset);
        self.warnings.push(format!("line {line}: {msg}"));
    }

    fn run(&mut self) -> Result<(), ReportError> {
        let src = self.src;
        let b = src.as_bytes();
        // Size the record list once: a large report has tens of thousands.
        let expected = memchr::memmem::find_iter(b, b"<record")
            .count()
            .min(self.limits.max_records)
            .min(src.len() / 64 + 1);
        self.records.reserve_exact(expected);
        let mut i = 0usize;
        while i < b.len() {
            // Text up to the next markup.
            let lt = find_byte(b, i, b'<');
            let text_end = lt.unwrap_or(b.len());
            if text_end > i && self.wants_text() {
                self.text_piece(i, text_end);
            }
            let Some(lt) = lt else { break };
            match b.get(lt + 1).copied() {
                Some(b'/') => {
                    // Fast path: `</name>` closing the innermost known element.
                    if let Some(top) = self.stack.last()
                        && let Some(name) = NAME_OF_EL.get(top.el as usize)
                        && top.el != El::Unknown
                    {
                        let at = lt + 2;
                        let after = at + name.name.len();
                        if name.is_at(b, at) && b.get(after) == Some(&b'>') {
                            self.close_top(lt);
                            i = after + 1;
                            continue;
                        }
                    }
                    let Some(gt) = find_byte(b, lt, b'>') else {
                        self.fatal = Some((lt, "end tag not closed".to_string()));
                        break;
                    };
                    let name = trim_ascii(&b[lt + 2..gt]);
                    self.end_tag(local_part(name), lt);
                    i = gt + 1;
                }
                Some(b'?') => match memchr::memmem::find(&b[lt..], b"?>") {
                    Some(p) => i = lt + p + 2,
                    None => {
                        self.fatal = Some((lt, "processing instruction not closed".to_string()));
                        break;
                    }
                },
                Some(b'!') => {
                    let rest = &b[lt..];
                    let (close, skip): (&[u8], usize) = if rest.starts_with(b"<!--") {
                        (b"-->", 4)
                    } else if rest.starts_with(b"<![CDATA[") {
                        (b"]]>", 9)
                    } else if rest.iter().take_while(|&&c| c != b'>').any(|&c| c == b'[') {
                        (b"]>", 2) // a DOCTYPE with an internal subset
                    } else {
                        (b">", 2)
                    };
                    let Some(p) = memchr::memmem::find(&rest[skip..], close) else {
                        self.fatal =
                            Some((lt, "comment, CDATA or declaration not closed".to_string()));
                        break;
                    };
                    let body_end = lt + skip + p;
                    if skip == 9 && self.wants_text() {
                        let raw = src.get(lt + 9..body_end).unwrap_or("");
                        self.push_text(Cow::Borrowed(raw));
                    }
                    i = body_end + close.len();
                }
                Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':' || c >= 0x80 => {
                    // Fastest path: `<name>` with a known name, which holds no prefix,
                    // attribute, white space or `/`.
                    let name_end = b
                        .get(lt + 1..b.len().min(lt + 40))
                        .and_then(|t| position_short(t, b'>'))
                        .map(|p| lt + 1 + p);
                    if let Some(gt) = name_end {
                        let name = &b[lt + 1..gt];
                        let el = match NAME_TABLE.get(name_slot(name)) {
                            Some(known)
                                if known.name.len() == name.len() && known.is_at(b, lt + 1) =>
                            {
                                known.el
                            }
                            _ => El::from_local(name),
                        };
                        if el != El::Unknown {
                            self.open_el(el, name, "", lt, gt + 1)?;
                            i = gt + 1;
                            continue;
                        }
                    }
                    // Fast path: `<name>` without attributes, found in one pass.
                    let simple = b
                        .get(lt + 1..b.len().min(lt + 40))
                        .and_then(|t| {
                            t.iter().position(|&x| {
                                matches!(x, b'>' | b'/' | b'"' | b'\'' | b'<' | b'=')
                                    || x.is_ascii_whitespace()
                            })
                        })
                        .map(|p| lt + 1 + p)
                        .filter(|&p| b[p] == b'>');
                    if let Some(gt) = simple {
                        self.open(local_part(&b[lt + 1..gt]), "", lt, gt + 1)?;
                        i = gt + 1;
                        continue;
                    }
                    let Some(gt) = find_tag_end(b, lt + 1) else {
                        self.fatal = Some((lt, "start tag not closed".to_string()));
                        break;
                    };
                    let empty = gt > lt + 1 && b[gt - 1] == b'/';
                    let inner_end = if empty { gt - 1 } else { gt };
                    let tag = &b[lt + 1..inner_end];
                    let name_len = tag
                        .iter()
                        .position(|&c| c.is_ascii_whitespace() || c == b'/')
                        .unwrap_or(tag.len());
                    let attrs = src.get(lt + 1 + name_len..inner_end).unwrap_or("");
                    self.open(local_part(&tag[..name_len]), attrs, lt, gt + 1)?;
                    if empty {
                        self.close_top(gt + 1);
                    }
                    i = gt + 1;
                }
                _ => {
                    // A '<' that starts no markup: keep it as text (XML would reject it).
                    self.warn_at(lt, "'<' that starts no tag read as text");
                    if self.wants_text() {
                        self.push_text(Cow::Borrowed("<"));
                    }
                    i = lt + 1;
                }
            }
        }
        let end = self.src.len();
        if let Some((at, msg)) = self.fatal.clone() {
            let lost = end.saturating_sub(at);
            self.warn_at(
                at,
                format!("XML not well-formed: {msg}; the last {lost} bytes could not be read"),
            );
        } else if self.stack.len() > 1 {
            let open: Vec<&str> = self.stack.iter().map(|f| el_name(f.el)).collect();
            self.warn_at(end, format!("document ends inside <{}>", open.join("> <")));
        }
        // A record left open is incomplete: drop it rather than keep part of it.
        if let Some(i) = self.stack.iter().position(|f| f.el == El::Record) {
            let n = self.record_no;
            self.warnings
                .push(format!("record #{n} was cut off and dropped"));
            while self.stack.len() > i {
                if let Some(f) = self.stack.pop()
                    && f.ext.is_some()
                {
                    self.ext_depth = self.ext_depth.saturating_sub(1);
                }
            }
        }
        // Close whatever else is still open so complete data is kept.
        while self.stack.len() > 1 {
            self.close_top(end);
        }
        Ok(())
    }

    /// Adds the source text `start..end` (trimmed, references resolved) to the innermost
    /// element.
    fn text_piece(&mut self, start: usize, end: usize) {
        // XML white space is ASCII (XML 1.0 §2.3).
        let raw = self.src.get(start..end).unwrap_or("").trim_ascii();
        if raw.is_empty() {
            return;
        }
        if position_short(raw.as_bytes(), b'&').is_some() {
            let owned = self.unescape(raw, start);
            self.push_text(Cow::Owned(owned));
        } else if let Some(top) = self.stack.last_mut()
            && top.pieces == 0
        {
            // The usual case: the element's whole text in one borrowed piece.
            top.single = Some(raw);
            top.pieces = 1;
        } else {
            self.push_text(Cow::Borrowed(raw));
        }
    }

    /// Resolves entity and character references, keeping unknown ones as written.
    fn unescape(&mut self, raw: &str, at: usize) -> String {
        match quick_xml::escape::unescape(raw) {
            Ok(s) => s.into_owned(),
            Err(e) => {
                self.warn_at(at, format!("bad reference in text ({e}); kept as written"));
                // Resolve what can be resolved, piece by piece.
                let mut out = String::with_capacity(raw.len());
                let mut rest = raw;
                while let Some(i) = rest.find('&') {
                    out.push_str(&rest[..i]);
                    let tail = &rest[i..];
                    match tail.find(';').filter(|&j| j <= 12) {
                        Some(j) => {
                            let piece = &tail[..=j];
                            match quick_xml::escape::unescape(piece) {
                                Ok(u) => out.push_str(&u),
                                Err(_) => out.push_str(piece),
                            }
                            rest = &tail[j + 1..];
                        }
                        None => {
                            out.push('&');
                            rest = &tail[1..];
                        }
                    }
                }
                out.push_str(rest);
                out
            }
        }
    }

    /// Whether the innermost open element keeps its text.
    fn wants_text(&self) -> bool {
        self.stack.last().is_some_and(|f| !f.el.is_container())
    }

    fn push_text(&mut self, s: Cow<'a, str>) {
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        match (&top.single, s) {
            (None, Cow::Borrowed(b)) if top.pieces == 0 => top.single = Some(b),
            (_, s) => {
                if let Some(prev) = top.single.take() {
                    self.text.push_str(prev);
                }
                self.text.push_str(&s);
            }
        }
        top.pieces = top.pieces.saturating_add(1);
    }

    fn open(
        &mut self,
        local: &[u8],
        attrs: &str,
        before: usize,
        after: usize,
    ) -> Result<(), ReportError> {
        self.open_el(El::from_local(local), local, attrs, before, after)
    }

    /// [`Parser::open`] with the element already looked up.
    fn open_el(
        &mut self,
        el: El,
        local: &[u8],
        attrs: &str,
        before: usize,
        after: usize,
    ) -> Result<(), ReportError> {
        let depth = self.stack.len();
        if depth >= self.limits.max_xml_depth {
            let line = self.line_of(before);
            return Err(ReportError::Limit {
                path: self.path.clone(),
                kind: LimitKind::XmlDepth,
                detail: format!(
                    "element nesting deeper than {} at line {line}, byte {before}",
                    self.limits.max_xml_depth
                ),
            });
        }
        if depth == 0 {
            if self.saw_root {
                self.warn_at(before, "content after the root element ignored");
            } else if el != El::Feedback {
                // Not the root we want: skip it, and everything until a <feedback>.
                if self.outer.is_none() {
                    self.outer = Some((String::from_utf8_lossy(local).into_owned(), before));
                }
                self.skipped += 1;
                return Ok(());
            } else if let Some((outer, at)) = self.outer.clone() {
                let line = self.line_of(at);
                let msg = format!(
                    "the root element is <{outer}> (line {line}), not <feedback>: the <feedback> \
                     element inside it was read, and {} element(s) of <{outer}> before it skipped",
                    self.skipped
                );
                self.warn_at(before, msg);
            }
            self.saw_root = true;
        }
        let parent = self.stack.last().map(|f| f.el);
        let grand = depth
            .checked_sub(2)
            .and_then(|i| self.stack.get(i))
            .map(|f| f.el);
        let ext = if is_extension_child(parent, grand, el) {
            let mut name = None;
            let mut definition = None;
            for (key, value) in attributes(attrs) {
                let value = quick_xml::escape::unescape(value)
                    .map(|v| v.trim().to_string())
                    .unwrap_or_else(|_| value.trim().to_string());
                match local_part(key.as_bytes()) {
                    b"name" => name = Some(value),
                    b"definition" => definition = Some(value),
                    _ => {}
                }
            }
            let name = name.unwrap_or_else(|| String::from_utf8_lossy(local).into_owned());
            Some(Box::new((name, definition)))
        } else {
            None
        };
        if el == El::Record && parent == Some(El::Feedback) {
            self.record_no += 1;
            if self.records.len() >= self.limits.max_records {
                return Err(ReportError::Limit {
                    path: self.path.clone(),
                    kind: LimitKind::Records,
                    detail: format!("more than {} records", self.limits.max_records),
                });
            }
            self.record.reset();
        }
        if matches!(el, El::Dkim | El::Spf | El::Reason) {
            self.sub = Sub::default();
        }
        if el == El::Unknown
            && ext.is_none()
            && self.ext_depth == 0
            && self.unknown_seen.len() < 32
            && !self.unknown_seen.iter().any(|n| n.as_bytes() == local)
        {
            let name = String::from_utf8_lossy(local).into_owned();
            let parent_name = parent.map_or("document", el_name);
            self.warn_at(
                before,
                format!("unknown element <{name}> in <{parent_name}> ignored"),
            );
            self.unknown_seen.push(name);
        }
        if ext.is_some() {
            self.ext_depth += 1;
        }
        self.stack.push(Frame {
            el,
            single: None,
            pieces: 0,
            text_start: self.text.len(),
            content_start: after,
            tag_start: before,
            ext,
        });
        Ok(())
    }

    fn end_tag(&mut self, local: &[u8], before: usize) {
        // Fast path: the end tag of the innermost known element.
        if let Some(top) = self.stack.last()
            && top.el != El::Unknown
            && same(el_name(top.el).as_bytes(), local)
        {
            return self.close_top(before);
        }
        let el = El::from_local(local);
        // The matching open element, searched from the top.
        let found = self.stack.iter().rposition(|f| f.el == el);
        match found {
            Some(i) if i + 1 == self.stack.len() => self.close_top(before),
            Some(i) => {
                let unclosed: Vec<&str> = self
                    .stack
                    .iter()
                    .skip(i + 1)
                    .map(|f| el_name(f.el))
                    .collect();
                self.warn_at(
                    before,
                    format!(
                        "</{}> closes unclosed <{}>",
                        String::from_utf8_lossy(local),
                        unclosed.join("> <")
                    ),
                );
                while self.stack.len() > i {
                    self.close_top(before);
                }
            }
            // The end of an element skipped while looking for <feedback>.
            None if !self.saw_root && self.outer.is_some() => {}
            None => {
                self.warn_at(
                    before,
                    format!(
                        "stray end tag </{}> ignored",
                        String::from_utf8_lossy(local)
                    ),
                );
            }
        }
    }

    /// Closes the innermost open element; `end_tag_start` is where its end tag begins.
    fn close_top(&mut self, end_tag_start: usize) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let parent = self.stack.last().map(|f| f.el);
        if let Some(ext) = frame.ext {
            self.ext_depth = self.ext_depth.saturating_sub(1);
            let (name, definition) = *ext;
            let content = self
                .src
                .get(frame.content_start..end_tag_start.max(frame.content_start))
                .unwrap_or("")
                .trim()
                .to_string();
            let ext = Extension {
                name,
                definition,
                content,
            };
            if self.stack.iter().any(|f| f.el == El::Record) {
                self.record.extensions.push(ext);
            } else {
                self.extensions.push(ext);
            }
            self.text.truncate(frame.text_start);
            return;
        }
        let value: Option<Cow<'a, str>> = match (frame.single, frame.pieces) {
            (_, 0) => None,
            (Some(b), 1) => Some(Cow::Borrowed(b.trim_ascii())),
            _ => Some(Cow::Owned(
                self.text
                    .get(frame.text_start..)
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            )),
        };
        self.text.truncate(frame.text_start);
        let value = value.filter(|v| !v.is_empty());
        let Some(parent) = parent else {
            return;
        };
        if self.ext_depth > 0 {
            return;
        }
        self.apply(parent, frame.el, value, frame.tag_start);
    }

    fn apply(&mut self, parent: El, el: El, value: Option<Cow<'a, str>>, at: usize) {
        match (parent, el) {
            (El::Feedback, El::Version) => self.version = value.map(Cow::into_owned),
            (El::Feedback, El::ReportMetadata) => self.saw_metadata = true,
            (El::Feedback, El::PolicyPublished) => self.saw_policy = true,
            (El::Feedback, El::Record) => self.finish_record(at),
            (El::ReportMetadata, El::OrgName) => {
                self.metadata.org_name = value.map(Cow::into_owned).unwrap_or_default()
            }
            (El::ReportMetadata, El::Email) => {
                self.metadata.email = value.map(Cow::into_owned).unwrap_or_default()
            }
            (El::ReportMetadata, El::ExtraContactInfo) => {
                self.metadata.extra_contact_info = value.map(Cow::into_owned)
            }
            (El::ReportMetadata, El::ReportId) => {
                self.metadata.report_id = value.map(Cow::into_owned).unwrap_or_default()
            }
            (El::ReportMetadata, El::Error) => {
                if let Some(v) = value {
                    self.metadata.errors.push(v.into_owned());
                }
            }
            (El::ReportMetadata, El::Generator) => {
                self.metadata.generator = value.map(Cow::into_owned)
            }
            (El::DateRange, El::Begin) => self.begin = self.epoch(value.as_deref(), "begin", at),
            (El::DateRange, El::End) => self.end = self.epoch(value.as_deref(), "end", at),
            (El::PolicyPublished, El::Domain) => {
                self.policy.domain = value.map(Cow::into_owned).unwrap_or_default()
            }
            (El::PolicyPublished, El::P) => {
                self.policy.p = self.word(value.as_deref(), "p", at, Disposition::parse)
            }
            (El::PolicyPublished, El::Sp) => {
                self.policy.sp = self.word(value.as_deref(), "sp", at, Disposition::parse)
            }
            (El::PolicyPublished, El::Np) => {
                self.policy.np = self.word(value.as_deref(), "np", at, Disposition::parse)
            }
            (El::PolicyPublished, El::Adkim) => {
                self.policy.adkim = self.word(value.as_deref(), "adkim", at, Alignment::parse)
            }
            (El::PolicyPublished, El::Aspf) => {
                self.policy.aspf = self.word(value.as_deref(), "aspf", at, Alignment::parse)
            }
            (El::PolicyPublished, El::Pct) => {
                self.policy.pct = value.and_then(|v| {
                    let n = parse_decimal_int(&v).filter(|n| (0..=100).contains(n));
                    if n.is_none() {
                        self.warn_at(at, format!("<pct> value {v:?} is not 0..100; ignored"));
                    }
                    n.and_then(|n| u8::try_from(n).ok())
                })
            }
            (El::PolicyPublished, El::Fo) => self.policy.fo = value.map(Cow::into_owned),
            (El::PolicyPublished, El::Testing) => {
                self.policy.testing = value.and_then(|v| match v.to_ascii_lowercase().as_str() {
                    "y" | "yes" | "true" | "1" => Some(true),
                    "n" | "no" | "false" | "0" => Some(false),
                    _ => {
                        self.warn_at(at, format!("<testing> value {v:?} is not y or n; ignored"));
                        None
                    }
                })
            }
            (El::PolicyPublished, El::DiscoveryMethod) => {
                self.policy.discovery_method = self.word(
                    value.as_deref(),
                    "discovery_method",
                    at,
                    DiscoveryMethod::parse,
                )
            }
            (El::Row, El::SourceIp) => {
                self.record.source_ip = value.map(|v| parse_ip(&v).ok_or_else(|| v.into_owned()))
            }
            (El::Row, El::Count) => {
                self.record.count = value.as_deref().and_then(parse_count);
                if self.record.count.is_none() {
                    self.record.count_raw = value.map(Cow::into_owned);
                }
            }
            (El::PolicyEvaluated, El::Disposition) => {
                self.record.policy_evaluated.disposition = self.word(
                    value.as_deref(),
                    "disposition",
                    at,
                    ActionDisposition::parse,
                )
            }
            (El::PolicyEvaluated, El::Dkim) => {
                self.record.policy_evaluated.dkim = self.word(
                    value.as_deref(),
                    "policy_evaluated dkim",
                    at,
                    DmarcResult::parse,
                )
            }
            (El::PolicyEvaluated, El::Spf) => {
                self.record.policy_evaluated.spf = self.word(
                    value.as_deref(),
                    "policy_evaluated spf",
                    at,
                    DmarcResult::parse,
                )
            }
            (El::PolicyEvaluated, El::Reason) => self.finish_reason(at),
            (El::Reason, El::Type) => self.sub.kind = value,
            (El::Reason, El::Comment) => self.sub.comment = value,
            (El::Identifiers, El::HeaderFrom) => self.record.header_from = value.map(compact),
            (El::Identifiers, El::EnvelopeFrom) => self.record.envelope_from = value.map(compact),
            (El::Identifiers, El::EnvelopeTo) => self.record.envelope_to = value.map(compact),
            (El::AuthResults, El::Dkim) => self.finish_dkim(at),
            (El::AuthResults, El::Spf) => self.finish_spf(at),
            (El::Dkim | El::Spf, El::Domain) => self.sub.domain = value,
            (El::Dkim, El::Selector) => self.sub.selector = value,
            (El::Dkim | El::Spf, El::Result) => self.sub.result = value,
            (El::Dkim | El::Spf, El::HumanResult) => self.sub.human_result = value,
            (El::Spf, El::Scope) => self.sub.scope = value,
            _ => {}
        }
    }

    fn word<T: WordEnum>(
        &mut self,
        value: Option<&str>,
        what: &str,
        at: usize,
        parse: fn(&str) -> T,
    ) -> Option<T> {
        let v = value?;
        let w = parse(v);
        if !w.known() {
            self.warn_at(at, format!("unknown <{what}> value {v:?} kept as written"));
        }
        Some(w)
    }

    fn epoch(&mut self, value: Option<&str>, what: &str, at: usize) -> Option<i64> {
        let v = value?;
        let n = parse_decimal_int(v);
        match n {
            Some(n) => {
                if v.contains(['.', 'e', 'E'])
                    && v.split_once('.')
                        .is_none_or(|(_, frac)| frac.bytes().any(|b| b != b'0'))
                {
                    self.warn_at(
                        at,
                        format!("<{what}> {v:?} has a fraction; truncated to {n}"),
                    );
                }
                Some(n)
            }
            None => {
                let shown = crate::words::quote(v);
                let problem = if is_integer(v) {
                    "is out of range for a time in seconds"
                } else {
                    "is not a number of seconds"
                };
                let msg = format!("<{what}> {shown} {problem}");
                self.bad_dates.push(msg.clone());
                self.warn_at(at, msg);
                None
            }
        }
    }

    fn finish_reason(&mut self, at: usize) {
        let sub = std::mem::take(&mut self.sub);
        match sub.kind {
            Some(kind) => {
                let k = PolicyOverride::parse(&kind);
                if kind.trim().eq_ignore_ascii_case("sampled_out") {
                    self.warn_at(
                        at,
                        "reason type sampled_out (RFC 7489, removed in RFC 9990) read as other",
                    );
                } else if !k.is_known() {
                    self.warn_at(at, format!("unknown reason type {kind:?} kept as written"));
                }
                self.record.reasons.push(OverrideReason {
                    kind: k,
                    comment: sub.comment.map(compact),
                });
            }
            None => {
                if let Some(c) = sub.comment {
                    self.warn_at(at, "reason without <type> read as other");
                    self.record.reasons.push(OverrideReason {
                        kind: PolicyOverride::Other,
                        comment: Some(compact(c)),
                    });
                }
                // An empty <reason> (or one with an empty <type>) carries nothing.
            }
        }
    }

    fn finish_dkim(&mut self, at: usize) {
        let sub = std::mem::take(&mut self.sub);
        if sub.domain.is_none() && sub.result.is_none() && sub.selector.is_none() {
            return; // an empty <dkim/> placeholder
        }
        let Some(result) = sub.result else {
            self.warn_at(
                at,
                format!(
                    "record #{}: DKIM result for {:?} has no <result>; dropped",
                    self.record_no,
                    sub.domain.unwrap_or_default()
                ),
            );
            return;
        };
        let r = DkimResult::parse(&result);
        if !r.is_known() {
            self.warn_at(
                at,
                format!("unknown DKIM result {result:?} kept as written"),
            );
        }
        self.record.dkim.push(DkimAuthResult {
            domain: sub.domain.map(compact).unwrap_or_default(),
            selector: sub.selector.map(compact),
            result: r,
            human_result: sub.human_result.map(compact),
        });
    }

    fn finish_spf(&mut self, at: usize) {
        let sub = std::mem::take(&mut self.sub);
        if sub.domain.is_none() && sub.result.is_none() {
            return;
        }
        let Some(result) = sub.result else {
            self.warn_at(
                at,
                format!(
                    "record #{}: SPF result for {:?} has no <result>; dropped",
                    self.record_no,
                    sub.domain.unwrap_or_default()
                ),
            );
            return;
        };
        let r = SpfResult::parse(&result);
        if !r.is_known() {
            self.warn_at(at, format!("unknown SPF result {result:?} kept as written"));
        }
        let scope = sub.scope.map(|s| {
            let sc = SpfScope::parse(&s);
            if !sc.is_known() {
                self.warn_at(at, format!("unknown SPF scope {s:?} kept as written"));
            }
            sc
        });
        self.record.spf.push(SpfAuthResult {
            domain: sub.domain.map(compact).unwrap_or_default(),
            scope,
            result: r,
            human_result: sub.human_result.map(compact),
        });
    }

    fn finish_record(&mut self, at: usize) {
        let b = &mut self.record;
        let (source_ip, count, count_raw) = (b.source_ip.take(), b.count, b.count_raw.take());
        let n = self.record_no;
        let ip = match source_ip {
            Some(Ok(ip)) => ip,
            other => {
                let what = match other {
                    Some(Err(raw)) => format!("source_ip {raw:?} is not an IP address"),
                    _ => "no <source_ip>".to_string(),
                };
                let count = match (count, count_raw) {
                    (Some(c), _) => c.to_string(),
                    (None, Some(raw)) => raw,
                    (None, None) => "?".to_string(),
                };
                self.warn_at(
                    at,
                    format!("record #{n}: {what}; record dropped (count {count})"),
                );
                return;
            }
        };
        let Some(count) = count else {
            let what = match count_raw {
                Some(raw) => {
                    let problem = if raw.trim().starts_with('-') && is_integer(&raw) {
                        "is negative"
                    } else if is_integer(&raw) {
                        "is out of range (at most 18446744073709551615)"
                    } else {
                        "is not a number"
                    };
                    format!("count {} {problem}", crate::words::quote(&raw))
                }
                None => "no <count>".to_string(),
            };
            self.warn_at(
                at,
                format!("record #{n} (source {ip}): {what}; record dropped"),
            );
            return;
        };
        let header_from = match self.record.header_from.take() {
            Some(h) => h,
            None => {
                self.warn_at(at, format!("record #{n} (source {ip}): no <header_from>"));
                CompactString::default()
            }
        };
        if self.record.policy_evaluated.disposition.is_none() {
            self.warn_at(at, format!("record #{n} (source {ip}): no <disposition>"));
        }
        let b = &mut self.record;
        let mut policy_evaluated = std::mem::take(&mut b.policy_evaluated);
        policy_evaluated.reasons = exact(&mut b.reasons);
        self.records.push(Record {
            source_ip: ip,
            count,
            policy_evaluated,
            identifiers: Identifiers {
                header_from,
                envelope_from: b.envelope_from.take(),
                envelope_to: b.envelope_to.take(),
            },
            auth_results: super::AuthResults {
                dkim: exact(&mut b.dkim),
                spf: inline_one(&mut b.spf),
            },
            extensions: std::mem::take(&mut b.extensions),
        });
    }

    fn finish(mut self) -> Result<AggregateReport, ReportError> {
        if !self.saw_root
            && let Some((outer, at)) = self.outer.take()
        {
            let line = self.line_of(at);
            return Err(ReportError::Xml {
                path: self.path.clone(),
                line,
                offset: at as u64,
                detail: format!(
                    "root element is <{outer}>, not <feedback>, and no <feedback> is inside it"
                ),
            });
        }
        let mut missing: Vec<String> = Vec::new();
        if !self.saw_root {
            missing.push("no <feedback> element".into());
        } else {
            if !self.saw_metadata {
                missing.push("no <report_metadata>".into());
            }
            if !self.saw_policy {
                missing.push("no <policy_published>".into());
            }
            if self.begin.is_none() || self.end.is_none() {
                if self.bad_dates.is_empty() {
                    missing.push("no <date_range> <begin> and <end>".to_string());
                } else {
                    missing.push(format!(
                        "an unreadable <date_range>: {}",
                        self.bad_dates.join(", ")
                    ));
                }
            }
            if self.records.is_empty() {
                missing.push("no readable <record>".into());
            }
        }
        if !missing.is_empty() {
            let mut detail = missing.join(", ");
            if self.record_no > self.records.len() {
                detail.push_str(&format!(
                    " ({} record(s) present but unreadable",
                    self.record_no - self.records.len()
                ));
                if let Some(w) = self.warnings.list.iter().find(|w| w.contains("record #")) {
                    detail.push_str(", e.g. ");
                    detail.push_str(w);
                }
                detail.push(')');
            }
            if let Some((at, msg)) = self.fatal.take() {
                let line = self.line_of(at);
                return Err(ReportError::Xml {
                    path: self.path.clone(),
                    line,
                    offset: at as u64,
                    detail: format!("{msg}; {detail}"),
                });
            }
            return Err(ReportError::Incomplete {
                path: self.path.clone(),
                detail,
            });
        }
        if self.metadata.org_name.is_empty() {
            self.warnings.push("no <org_name>".to_string());
        }
        if self.metadata.report_id.is_empty() {
            self.warnings.push("no <report_id>".to_string());
        }
        if self.policy.domain.is_empty() {
            self.warnings
                .push("no <policy_published><domain>".to_string());
        }
        self.metadata.date_range = DateRange {
            begin: self.begin.unwrap_or_default(),
            end: self.end.unwrap_or_default(),
        };
        let DateRange { begin, end } = self.metadata.date_range;
        if begin > end {
            self.warnings.push(format!(
                "the <date_range> begins ({begin}) after it ends ({end})"
            ));
        }
        if begin.max(end) > LATEST_PLAUSIBLE_DATE {
            self.warnings.push(format!(
                "the <date_range> ({begin} to {end}) reaches past 2100-01-01: a wrong clock or a \
                 wrong unit (milliseconds?) at the reporter"
            ));
        }
        Ok(AggregateReport {
            version: self.version,
            metadata: self.metadata,
            policy_published: self.policy,
            records: self.records,
            extensions: self.extensions,
            warnings: self.warnings.into_vec(),
        })
    }
}

/// Whether an element is an extension to capture whole: a child of `<extensions>` /
/// `<extension>` directly under `<feedback>` or `<record>`, or an unknown element directly
/// under `<record>` (the schema's `xs:any`).
fn is_extension_child(parent: Option<El>, grand: Option<El>, el: El) -> bool {
    match (grand, parent) {
        (Some(El::Feedback | El::Record), Some(El::Extensions | El::Extension)) => true,
        (_, Some(El::Record)) => el == El::Unknown,
        _ => false,
    }
}

trait WordEnum {
    fn known(&self) -> bool;
}

macro_rules! impl_word_enum {
    ($($t:ty),*) => { $( impl WordEnum for $t { fn known(&self) -> bool { self.is_known() } } )* };
}
impl_word_enum!(
    Disposition,
    ActionDisposition,
    Alignment,
    DiscoveryMethod,
    DmarcResult
);

const fn el_name(el: El) -> &'static str {
    match el {
        El::Feedback => "feedback",
        El::Version => "version",
        El::ReportMetadata => "report_metadata",
        El::OrgName => "org_name",
        El::Email => "email",
        El::ExtraContactInfo => "extra_contact_info",
        El::ReportId => "report_id",
        El::DateRange => "date_range",
        El::Begin => "begin",
        El::End => "end",
        El::Error => "error",
        El::Generator => "generator",
        El::PolicyPublished => "policy_published",
        El::Domain => "domain",
        El::P => "p",
        El::Sp => "sp",
        El::Np => "np",
        El::Adkim => "adkim",
        El::Aspf => "aspf",
        El::Pct => "pct",
        El::Fo => "fo",
        El::Testing => "testing",
        El::DiscoveryMethod => "discovery_method",
        El::Record => "record",
        El::Row => "row",
        El::SourceIp => "source_ip",
        El::Count => "count",
        El::PolicyEvaluated => "policy_evaluated",
        El::Disposition => "disposition",
        El::Dkim => "dkim",
        El::Spf => "spf",
        El::Reason => "reason",
        El::Type => "type",
        El::Comment => "comment",
        El::Identifiers => "identifiers",
        El::HeaderFrom => "header_from",
        El::EnvelopeFrom => "envelope_from",
        El::EnvelopeTo => "envelope_to",
        El::AuthResults => "auth_results",
        El::Selector => "selector",
        El::Result => "result",
        El::Scope => "scope",
        El::HumanResult => "human_result",
        El::Extensions => "extensions",
        El::Extension => "extension",
        El::Unknown => "(unknown)",
    }
}

fn compact(v: Cow<'_, str>) -> CompactString {
    CompactString::from(&*v)
}

/// Parses an integer written in decimal, tolerating a fraction (`"1337270400.0"`) or an
/// exponent form (`"1.3372704E9"`), which are truncated.
pub(crate) fn parse_decimal_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    let mut i = 0;
    while let Some(&d) = digits.get(i) {
        if !d.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
        i += 1;
    }
    if i == digits.len() {
        return Some(if neg { -n } else { n });
    }
    // A fraction or exponent: fall back to a float, bounded to the i64 range.
    let f: f64 = s.parse().ok()?;
    if !f.is_finite() || f.abs() >= 9.2e18 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    Some(f.trunc() as i64)
}

/// 2100-01-01 00:00:00 UTC: a report dated later is implausible (a wrong clock, or
/// milliseconds for seconds).
const LATEST_PLAUSIBLE_DATE: i64 = 4_102_444_800;

/// Whether `s` is written as an integer (optional sign, decimal digits), whatever its size.
fn is_integer(s: &str) -> bool {
    let t = s.trim();
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a message count: a decimal `u64`, or (leniently) a decimal with a zero fraction.
pub(crate) fn parse_count(s: &str) -> Option<u64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    parse_decimal_int(s).and_then(|n| u64::try_from(n).ok())
}

/// Parses a source address leniently: surrounding brackets, an `IPv6:` prefix and an IPv6
/// zone are tolerated.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    let s = s.trim_start_matches('[').trim_end_matches(']');
    let s = s
        .strip_prefix("IPv6:")
        .or_else(|| s.strip_prefix("ipv6:"))
        .unwrap_or(s);
    let s = s.split('%').next().unwrap_or(s);
    s.parse().ok()
}

/// The first `c` at or after `from`: eight bytes at a time over the first 32 (the usual
/// distance between markup is short), then memchr.
fn find_byte(b: &[u8], from: usize, c: u8) -> Option<usize> {
    let head_end = b.len().min(from.saturating_add(32));
    let head = b.get(from..head_end)?;
    if let Some(p) = position_short(head, c) {
        return Some(from + p);
    }
    memchr::memchr(c, b.get(head_end..)?).map(|p| head_end + p)
}

/// The first `c` in a short slice, a word (eight bytes) at a time: no call, and one
/// branch per word rather than per byte.
#[inline]
fn position_short(s: &[u8], c: u8) -> Option<usize> {
    const LOW: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let splat = LOW.wrapping_mul(u64::from(c));
    let mut words = s.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let Ok(w) = <[u8; 8]>::try_from(w) else {
            break;
        };
        let x = u64::from_le_bytes(w) ^ splat;
        // The lowest byte of x that is zero sets the lowest flagged bit (a borrow can only
        // flag bytes above it).
        let found = x.wrapping_sub(LOW) & !x & HIGH;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&x| x == c)
        .map(|p| at + p)
}

/// The end (`>`) of a start tag whose name starts at `from`, skipping quoted attribute values.
fn find_tag_end(b: &[u8], from: usize) -> Option<usize> {
    // Short tags without attributes: a plain loop.
    let head_end = b.len().min(from.saturating_add(32));
    for (k, &x) in b.get(from..head_end)?.iter().enumerate() {
        match x {
            b'>' => return Some(from + k),
            b'"' | b'\'' => break,
            _ => {}
        }
    }
    let mut i = from;
    loop {
        let p = i + memchr::memchr3(b'>', b'"', b'\'', b.get(i..)?)?;
        match b[p] {
            b'>' => return Some(p),
            q => {
                // Skip to the closing quote; an unclosed quote runs to the end.
                i = p + 1 + memchr::memchr(q, b.get(p + 1..)?)? + 1;
            }
        }
    }
}

/// Byte equality for short names, inline (a libc `memcmp` call costs more than it saves).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The local part of a qualified name (after the last `:`).
fn local_part(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&c| c == b':') {
        Some(p) => &name[p + 1..],
        None => name,
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// `key="value"` pairs of a start tag's attribute text, leniently (either quote, white
/// space around `=`; junk skipped).
fn attributes(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim();
        let key = key
            .rsplit(|c: char| c.is_ascii_whitespace())
            .next()
            .unwrap_or(key);
        let after = rest[eq + 1..].trim_start();
        let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            // Unquoted value: up to the next white space.
            let end = after
                .find(|c: char| c.is_ascii_whitespace())
                .unwrap_or(after.len());
            out.push((key, &after[..end]));
            rest = &after[end..];
            continue;
        };
        let body = &after[1..];
        let end = body.find(q).unwrap_or(body.len());
        out.push((key, &body[..end]));
        rest = body.get(end + 1..).unwrap_or("");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{El, NAME_OF_EL, el_name, find_byte, position_short};

    #[test]
    fn word_at_a_time_search_matches_a_plain_search() {
        // Every position of the byte, its absence, bytes that differ by the high bit or by
        // one (the borrow cases), and every slice length up to past two words.
        let fill = [b'a', b'<' ^ 0x80, b'<' + 1, b'<' - 1, 0x00, 0xff];
        for len in 0..40 {
            for f in fill {
                let mut v = vec![f; len];
                assert_eq!(position_short(&v, b'<'), None);
                for at in 0..len {
                    v[at] = b'<';
                    let expected = v.iter().position(|&x| x == b'<');
                    assert_eq!(position_short(&v, b'<'), expected, "{v:?}");
                    for from in 0..=len {
                        let plain = v[from..].iter().position(|&x| x == b'<').map(|p| p + from);
                        assert_eq!(find_byte(&v, from, b'<'), plain);
                    }
                }
            }
        }
    }

    #[test]
    fn every_element_name_is_found_in_the_table() {
        let all = [
            El::Feedback,
            El::Version,
            El::ReportMetadata,
            El::OrgName,
            El::Email,
            El::ExtraContactInfo,
            El::ReportId,
            El::DateRange,
            El::Begin,
            El::End,
            El::Error,
            El::Generator,
            El::PolicyPublished,
            El::Domain,
            El::P,
            El::Sp,
            El::Np,
            El::Adkim,
            El::Aspf,
            El::Pct,
            El::Fo,
            El::Testing,
            El::DiscoveryMethod,
            El::Record,
            El::Row,
            El::SourceIp,
            El::Count,
            El::PolicyEvaluated,
            El::Disposition,
            El::Dkim,
            El::Spf,
            El::Reason,
            El::Type,
            El::Comment,
            El::Identifiers,
            El::HeaderFrom,
            El::EnvelopeFrom,
            El::EnvelopeTo,
            El::AuthResults,
            El::Selector,
            El::Result,
            El::Scope,
            El::HumanResult,
            El::Extensions,
            El::Extension,
        ];
        for el in all {
            let name = el_name(el);
            assert_eq!(El::from_local(name.as_bytes()), el, "{name}");
            // The word-at-a-time comparison, with the input long and cut short after the
            // name, and with each byte changed.
            let entry = &NAME_OF_EL[el as usize];
            assert_eq!(entry.el, el);
            for tail in ["", ">", "></x>                              "] {
                let input = format!("</{name}{tail}");
                assert!(entry.is_at(input.as_bytes(), 2), "{input}");
                for k in 0..name.len() {
                    let mut changed = input.clone().into_bytes();
                    changed[2 + k] ^= 0x20;
                    assert!(!entry.is_at(&changed, 2), "{input} {k}");
                }
                assert!(!entry.is_at(&input.as_bytes()[..input.len() - tail.len() - 1], 2));
            }
            let upper = name.to_ascii_uppercase();
            assert_eq!(El::from_local(upper.as_bytes()), el, "{upper}");
        }
        assert_eq!(El::from_local(b"identities"), El::Identifiers);
        for unknown in [
            &b""[..],
            b"x",
            b"records",
            b"policy_publishex",
            b"dkim2",
            b"feedbacK_",
            b"\xff\xfe",
        ] {
            assert_eq!(El::from_local(unknown), El::Unknown, "{unknown:?}");
        }
    }
}
