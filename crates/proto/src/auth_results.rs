//! Authentication-Results (RFC 8601): building the header field.
//!
//! Each verifier (SPF, DKIM, DMARC, ARC) turns its verdict into a [`MethodResult`]; the
//! receiver collects them under its authserv-id in an [`AuthenticationResults`] and renders
//! the field. Values are quoted exactly when RFC 8601 §2.2 requires it: a `value` is an RFC
//! 2045 token or a quoted-string, and a property value may also be a bare
//! `[local-part "@"] domain-name`.
//!
//! The fields are [`Text`] (`Cow<'a, str>`): method names, result words and property names
//! are literals and values borrow from the verdicts they describe, so rendering the field
//! for a message allocates little more than the output string.

use std::borrow::Cow;
use std::fmt;

/// Text that is usually borrowed (a literal, or a value of the verdict it describes).
pub type Text<'a> = Cow<'a, str>;

/// One property of a result, such as `smtp.mailfrom=example.com` or `header.d=example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property<'a> {
    /// The property type: `smtp`, `header`, `body` or `policy`.
    pub ptype: Text<'a>,
    /// The property within that type: `mailfrom`, `helo`, `d`, `s`, `from`, `dmarc`, ...
    pub property: Text<'a>,
    /// The value, unquoted; quoting is done when rendering.
    pub value: Text<'a>,
}

/// The outcome of one authentication method, one `resinfo` of RFC 8601.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult<'a> {
    /// The method name: `spf`, `dkim`, `dmarc`, `arc`, ...
    pub method: Text<'a>,
    /// The result keyword as the method's RFC names it (`pass`, `fail`, `temperror`, ...).
    pub result: Text<'a>,
    /// An optional comment shown after the result, for people: `(key too small)`.
    pub comment: Option<Text<'a>>,
    /// The optional `reason=` text.
    pub reason: Option<Text<'a>>,
    /// The properties, in the order to render them (up to four kept inline: results carry
    /// one to four).
    pub properties: Vec<Property<'a>>,
}

impl<'a> MethodResult<'a> {
    /// A result with no comment, reason or properties.
    pub fn new(method: impl Into<Text<'a>>, result: impl Into<Text<'a>>) -> Self {
        MethodResult {
            method: method.into(),
            result: result.into(),
            comment: None,
            reason: None,
            properties: Vec::new(),
        }
    }

    /// Adds a property (builder style).
    pub fn with_property(
        mut self,
        ptype: impl Into<Text<'a>>,
        property: impl Into<Text<'a>>,
        value: impl Into<Text<'a>>,
    ) -> Self {
        if self.properties.capacity() == 0 {
            self.properties.reserve_exact(4);
        }
        self.properties.push(Property {
            ptype: ptype.into(),
            property: property.into(),
            value: value.into(),
        });
        self
    }

    /// Sets the `reason=` text (builder style).
    pub fn with_reason(mut self, reason: impl Into<Text<'a>>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the comment (builder style).
    pub fn with_comment(mut self, comment: impl Into<Text<'a>>) -> Self {
        self.comment = Some(comment.into());
        self
    }
}

impl MethodResult<'_> {
    /// Writes this result, part by part, into `sink`.
    pub fn write_to<'b>(&'b self, sink: &mut impl ResultSink<'b>) {
        sink.result(&self.method, &self.result);
        if let Some(c) = &self.comment {
            sink.comment(Cow::Borrowed(c));
        }
        if let Some(r) = &self.reason {
            sink.reason(Cow::Borrowed(r));
        }
        for p in &self.properties {
            sink.property(&p.ptype, &p.property, Cow::Borrowed(&p.value));
        }
    }

    /// Appends the rendered `resinfo` to `out`.
    fn render_into(&self, out: &mut String) {
        self.write_to(&mut Resinfo(out));
    }
}

impl fmt::Display for MethodResult<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(64);
        self.render_into(&mut out);
        f.write_str(&out)
    }
}

/// Where a verifier writes one `resinfo`, in this order: [`result`](Self::result), then at
/// most one [`comment`](Self::comment), at most one [`reason`](Self::reason), then the
/// [`property`](Self::property) calls in rendering order.
///
/// Each verifier writes its result once, through this trait: a [`MethodResult`] collects
/// the parts as values, a [`HeaderWriter`] renders them straight into the field (the
/// receiver's path: nothing is built only to be formatted).
pub trait ResultSink<'a> {
    /// The method name and its result keyword.
    fn result(&mut self, method: &'a str, result: &'a str);
    /// A comment for people, shown after the result.
    fn comment(&mut self, text: Text<'a>);
    /// The `reason=` text.
    fn reason(&mut self, text: Text<'a>);
    /// A `ptype.property=value` property.
    fn property(&mut self, ptype: &'a str, property: &'a str, value: Text<'a>);
}

impl<'a> ResultSink<'a> for MethodResult<'a> {
    fn result(&mut self, method: &'a str, result: &'a str) {
        self.method = Cow::Borrowed(method);
        self.result = Cow::Borrowed(result);
    }
    fn comment(&mut self, text: Text<'a>) {
        self.comment = Some(text);
    }
    fn reason(&mut self, text: Text<'a>) {
        self.reason = Some(text);
    }
    fn property(&mut self, ptype: &'a str, property: &'a str, value: Text<'a>) {
        if self.properties.capacity() == 0 {
            self.properties.reserve_exact(4);
        }
        self.properties.push(Property {
            ptype: Cow::Borrowed(ptype),
            property: Cow::Borrowed(property),
            value,
        });
    }
}

impl<'a> MethodResult<'a> {
    /// Collects what `write` writes into a sink.
    pub fn collect(write: impl FnOnce(&mut MethodResult<'a>)) -> Self {
        let mut m = MethodResult::new("", "");
        write(&mut m);
        m
    }
}

/// A field collects results: each [`ResultSink::result`] call starts a new one.
impl<'a> ResultSink<'a> for AuthenticationResults<'a> {
    fn result(&mut self, method: &'a str, result: &'a str) {
        self.results.push(MethodResult::new(method, result));
    }
    fn comment(&mut self, text: Text<'a>) {
        if let Some(last) = self.results.last_mut() {
            last.comment(text);
        }
    }
    fn reason(&mut self, text: Text<'a>) {
        if let Some(last) = self.results.last_mut() {
            last.reason(text);
        }
    }
    fn property(&mut self, ptype: &'a str, property: &'a str, value: Text<'a>) {
        if let Some(last) = self.results.last_mut() {
            last.property(ptype, property, value);
        }
    }
}

/// Renders one `resinfo` into a string: the one place the text of a result is written.
struct Resinfo<'o>(&'o mut String);

impl<'a> ResultSink<'a> for Resinfo<'_> {
    fn result(&mut self, method: &'a str, result: &'a str) {
        self.0.push_str(method);
        self.0.push('=');
        self.0.push_str(result);
    }
    fn comment(&mut self, text: Text<'a>) {
        self.0.push(' ');
        push_comment(self.0, &text);
    }
    fn reason(&mut self, text: Text<'a>) {
        self.0.push_str(" reason=");
        push_value(self.0, &text);
    }
    fn property(&mut self, ptype: &'a str, property: &'a str, value: Text<'a>) {
        let out = &mut *self.0;
        out.push(' ');
        out.push_str(ptype);
        out.push('.');
        out.push_str(property);
        out.push('=');
        push_pvalue(out, &value);
    }
}

/// Renders an Authentication-Results field straight from the verifiers' [`ResultSink`]
/// calls; [`AuthenticationResults`] renders through it too.
#[derive(Debug)]
pub struct HeaderWriter {
    out: String,
    sep: &'static str,
    results: usize,
    /// Whether this is the whole field (name and final CRLF) or only its value.
    field: bool,
}

impl HeaderWriter {
    /// Starts the field `Authentication-Results: <authserv-id>` (results folded onto
    /// their own lines, as [`AuthenticationResults::to_header`]); `capacity` is a hint.
    pub fn header(authserv_id: &str, capacity: usize) -> Self {
        HeaderWriter::start(authserv_id, "\r\n\t", true, capacity)
    }

    fn start(authserv_id: &str, sep: &'static str, field: bool, capacity: usize) -> Self {
        const NAME: &str = "Authentication-Results: ";
        let mut out = String::with_capacity(NAME.len() + authserv_id.len() + capacity + 8);
        if field {
            out.push_str(NAME);
        }
        push_value(&mut out, authserv_id);
        HeaderWriter {
            out,
            sep,
            results: 0,
            field,
        }
    }

    /// The finished field (with the final CRLF when it is the whole field).
    pub fn finish(mut self) -> String {
        if self.results == 0 {
            self.out.push_str("; none");
        }
        if self.field {
            self.out.push_str("\r\n");
        }
        self.out
    }
}

impl<'a> ResultSink<'a> for HeaderWriter {
    fn result(&mut self, method: &'a str, result: &'a str) {
        self.results += 1;
        self.out.push(';');
        self.out.push_str(self.sep);
        Resinfo(&mut self.out).result(method, result);
    }
    fn comment(&mut self, text: Text<'a>) {
        Resinfo(&mut self.out).comment(text);
    }
    fn reason(&mut self, text: Text<'a>) {
        Resinfo(&mut self.out).reason(text);
    }
    fn property(&mut self, ptype: &'a str, property: &'a str, value: Text<'a>) {
        Resinfo(&mut self.out).property(ptype, property, value);
    }
}

/// A whole Authentication-Results field: the authserv-id and its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationResults<'a> {
    /// The authserv-id naming the receiving administrative domain's verifier.
    pub authserv_id: Text<'a>,
    /// The results, in order. Empty renders as `; none`.
    pub results: Vec<MethodResult<'a>>,
}

impl<'a> AuthenticationResults<'a> {
    /// An empty field for `authserv_id`.
    pub fn new(authserv_id: impl Into<Text<'a>>) -> Self {
        AuthenticationResults {
            authserv_id: authserv_id.into(),
            results: Vec::new(),
        }
    }

    /// Appends a result (builder style).
    pub fn with(mut self, result: MethodResult<'a>) -> Self {
        self.results.push(result);
        self
    }

    /// The field value folded for a message header: each result on its own line,
    /// continued with CRLF and a tab. Without the field name and without the final CRLF.
    pub fn to_folded(&self) -> String {
        self.render("\r\n\t", false)
    }

    /// The whole header field, `Authentication-Results: ...` with the final CRLF.
    pub fn to_header(&self) -> String {
        self.render("\r\n\t", true)
    }

    /// An upper bound of the rendered length when nothing needs quoting (values that do
    /// need it grow the string once): the output is allocated once.
    fn estimated_len(&self) -> usize {
        let opt = |t: &Option<Text<'_>>| t.as_ref().map_or(0, |t| t.len() + 10);
        self.authserv_id.len()
            + 8
            + self
                .results
                .iter()
                .map(|r| {
                    r.method.len()
                        + r.result.len()
                        + 4
                        + opt(&r.comment)
                        + opt(&r.reason)
                        + r.properties
                            .iter()
                            .map(|p| p.ptype.len() + p.property.len() + p.value.len() + 5)
                            .sum::<usize>()
                })
                .sum::<usize>()
    }

    fn render(&self, sep: &'static str, field: bool) -> String {
        let mut w = HeaderWriter::start(&self.authserv_id, sep, field, self.estimated_len());
        for r in &self.results {
            r.write_to(&mut w);
        }
        w.finish()
    }
}

impl fmt::Display for AuthenticationResults<'_> {
    /// The field value on one line (without the field name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(" ", false))
    }
}

/// True for an RFC 2045 token: one or more US-ASCII printable characters other than the
/// tspecials `()<>@,;:\"/[]?=`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// `table` with `class` at every byte of `set`.
const fn mark(mut table: [u8; 256], set: &[u8], class: u8) -> [u8; 256] {
    let mut i = 0;
    while i < set.len() {
        table[set[i] as usize] = class;
        i += 1;
    }
    table
}

const TSPECIALS: [u8; 256] = mark([0; 256], b"()<>@,;:\\\"/[]?=", 1);
const ATEXT_SPECIALS: [u8; 256] = mark([0; 256], b"!#$%&'*+-/=?^_`{|}~", 1);

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && TSPECIALS[usize::from(b)] == 0
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || ATEXT_SPECIALS[usize::from(b)] != 0 || b >= 0x80
}

/// True when `s` is one or more non-empty parts separated by single dots, every byte of
/// the parts `ok`: a dot-atom with [`is_atext`], a domain name with [`is_label_byte`]. One
/// pass, no splitting (this runs for every property of every header field written).
fn dot_separated(s: &[u8], ok: fn(u8) -> bool) -> bool {
    // At the start, as after a dot, an empty part is not allowed.
    let mut after_dot = true;
    for &b in s {
        if b == b'.' {
            if after_dot {
                return false;
            }
            after_dot = true;
        } else if ok(b) {
            after_dot = false;
        } else {
            return false;
        }
    }
    !after_dot
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b >= 0x80
}

/// True when `s` can stand unquoted as an RFC 8601 `pvalue`: a token, or
/// `[local-part "@"] domain-name`.
pub fn is_bare_pvalue(s: &str) -> bool {
    if is_token(s) {
        return true;
    }
    let b = s.as_bytes();
    let Some(at) = b.iter().rposition(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = b.split_at(at);
    let domain = domain.get(1..).unwrap_or_default();
    (local.is_empty() || dot_separated(local, is_atext)) && dot_separated(domain, is_label_byte)
}

/// Appends an RFC 8601 `value` to `out`: `s` itself when it is a token, else a
/// quoted-string.
pub fn push_value(out: &mut String, s: &str) {
    if is_token(s) {
        out.push_str(s);
    } else {
        push_quoted(out, s);
    }
}

fn push_pvalue(out: &mut String, s: &str) {
    if is_bare_pvalue(s) {
        out.push_str(s);
    } else {
        push_quoted(out, s);
    }
}

/// Appends `s` between `open` and `close`, a backslash before each byte marked `ESCAPE` in
/// `table` (all ASCII), control characters (C0, DEL and C1; line breaks included, which
/// cannot appear in a header field value) as spaces. Runs of ordinary characters are copied
/// as slices; the scan is over bytes with one table lookup each, since everything it looks
/// for is ASCII or the two-byte UTF-8 form of a C1 control (lead byte `0xC2`).
fn push_escaped(out: &mut String, s: &str, open: char, close: char, table: &[u8; 256]) {
    out.reserve(s.len() + 2);
    out.push(open);
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while let Some(off) = bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| table[usize::from(b)] != 0))
    {
        i += off;
        let b = bytes.get(i).copied().unwrap_or_default();
        let width = match table[usize::from(b)] {
            ESCAPE => 1,
            CONTROL => 1,
            // 0xC2: a C1 control only when followed by 0x80..=0x9F.
            _ if bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) => 2,
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        if table[usize::from(b)] == ESCAPE {
            out.push('\\');
            out.push(char::from(b));
        } else {
            out.push(' ');
        }
        i += width;
        start = i;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push(close);
}

const ESCAPE: u8 = 1;
const CONTROL: u8 = 2;
const MAYBE_C1: u8 = 3;

/// The byte classes for [`push_escaped`]: `escaped` bytes, C0 controls and DEL, and the
/// lead byte of a possible C1 control.
const fn escape_table(escaped: &[u8]) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = CONTROL;
        b += 1;
    }
    t[0x7f] = CONTROL;
    t[0xc2] = MAYBE_C1;
    mark(t, escaped, ESCAPE)
}

const QUOTED_ESCAPES: [u8; 256] = escape_table(b"\"\\");
const COMMENT_ESCAPES: [u8; 256] = escape_table(b"()\\");

fn push_quoted(out: &mut String, s: &str) {
    push_escaped(out, s, '"', '"', &QUOTED_ESCAPES);
}

fn push_comment(out: &mut String, s: &str) {
    push_escaped(out, s, '(', ')', &COMMENT_ESCAPES);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_bare_pvalue` by the grammar's words (split on `@` and `.`), to check the one-pass
    /// version against.
    fn bare_pvalue_by_the_grammar(s: &str) -> bool {
        let parts_ok = |t: &str, ok: fn(u8) -> bool| {
            !t.is_empty() && t.split('.').all(|p| !p.is_empty() && p.bytes().all(ok))
        };
        is_token(s)
            || s.rsplit_once('@').is_some_and(|(l, d)| {
                (l.is_empty() || parts_ok(l, is_atext)) && parts_ok(d, is_label_byte)
            })
    }

    #[test]
    fn bare_pvalues_follow_the_grammar() {
        let cases = [
            "",
            "@",
            ".",
            "a",
            "a.b",
            "alice@example.com",
            "@example.com",
            "alice@",
            "a@b@c.d",
            "al.ice@ex-am_ple.com",
            ".alice@example.com",
            "alice.@example.com",
            "a..b@c.d",
            "alice@example..com",
            "alice@.example.com",
            "alice@example.com.",
            "al ice@x.y",
            "al\"ice@x.y",
            "a+b=c/d",
            "ab/c+d==",
            "x@é.example",
            "é@x.example",
            "a{b}@c.d",
            "a@b!c.d",
            "a@b;c",
            "tab\t@x.y",
            "a@1.2.3.4",
            "-@-",
            "_a@_b",
        ];
        for c in cases {
            assert_eq!(is_bare_pvalue(c), bare_pvalue_by_the_grammar(c), "{c:?}");
        }
    }

    #[test]
    fn renders_and_quotes() {
        let ar = AuthenticationResults::new("mx.example.org")
            .with(MethodResult::new("spf", "pass").with_property(
                "smtp",
                "mailfrom",
                "alice@example.com",
            ))
            .with(
                MethodResult::new("dkim", "fail")
                    .with_reason("body hash mismatch")
                    .with_property("header", "d", "example.com")
                    .with_property("header", "s", "sel")
                    .with_property("header", "b", "ab/c+d=="),
            )
            .with(
                MethodResult::new("dmarc", "pass")
                    .with_comment("p=reject (sp) dis=none")
                    .with_property("header", "from", "example.com"),
            );
        assert_eq!(
            ar.to_string(),
            "mx.example.org; spf=pass smtp.mailfrom=alice@example.com; \
             dkim=fail reason=\"body hash mismatch\" header.d=example.com header.s=sel \
             header.b=\"ab/c+d==\"; dmarc=pass (p=reject \\(sp\\) dis=none) header.from=example.com"
        );
        assert!(
            ar.to_header()
                .starts_with("Authentication-Results: mx.example.org;\r\n\tspf=pass")
        );
    }

    #[test]
    fn escapes_specials_and_blanks_controls_bytewise() {
        let r = MethodResult::new("dmarc", "fail")
            .with_comment("a(b)c\\d\r\ne\u{85}f\u{7f}g é\u{a0}")
            .with_reason("say \"hi\" \\ \u{9f}ok");
        assert_eq!(
            r.to_string(),
            "dmarc=fail (a\\(b\\)c\\\\d  e f g é\u{a0}) reason=\"say \\\"hi\\\" \\\\  ok\""
        );
    }

    #[test]
    fn empty_is_none_and_odd_values_are_quoted() {
        assert_eq!(
            AuthenticationResults::new("a b").to_string(),
            "\"a b\"; none"
        );
        let r = MethodResult::new("spf", "none").with_property("smtp", "mailfrom", "\"q\\x\"@ex");
        assert_eq!(
            r.to_string(),
            "spf=none smtp.mailfrom=\"\\\"q\\\\x\\\"@ex\""
        );
        let r = MethodResult::new("spf", "none").with_property("smtp", "helo", "a\r\nb");
        assert_eq!(r.to_string(), "spf=none smtp.helo=\"a  b\"");
        assert!(is_bare_pvalue("@example.com"));
        assert!(!is_bare_pvalue("a b@example.com"));
    }
}

/// A parsed Authentication-Results field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthenticationResults {
    /// The authserv-id (unquoted).
    pub authserv_id: String,
    /// The `authres-version` after the authserv-id, when present (1 is the only one defined).
    pub version: Option<u32>,
    /// The results in order; empty for `; none`.
    pub results: Vec<ParsedMethodResult>,
}

/// One parsed `resinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMethodResult {
    /// The method, lower-cased (`spf`, `dkim`, ...).
    pub method: String,
    /// The method version when written as `method/1`.
    pub method_version: Option<u32>,
    /// The result keyword, lower-cased.
    pub result: String,
    /// The `reason=` value, unquoted.
    pub reason: Option<String>,
    /// The comments seen after the result, for people.
    pub comments: Vec<String>,
    /// The `ptype.property=value` properties (ptype and property lower-cased).
    pub properties: Vec<Property<'static>>,
    /// Other `name=value` pairs some verifiers emit without a ptype (`action=none`).
    pub extensions: Vec<(String, String)>,
}

impl ParsedMethodResult {
    /// The value of property `ptype.property` (case-insensitive), if present.
    pub fn property(&self, ptype: &str, property: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| {
                p.ptype.eq_ignore_ascii_case(ptype) && p.property.eq_ignore_ascii_case(property)
            })
            .map(|p| &*p.value)
    }
}

/// Why an Authentication-Results field could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What was expected or found.
    pub message: String,
    /// Byte offset in the field value.
    pub offset: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Parses the value of an Authentication-Results field (everything after the colon).
///
/// Strict where meaning is at stake (the authserv-id, method and result keywords), lenient
/// where real verifiers are sloppy: comments anywhere, missing spaces after `;`, `name=value`
/// pairs without a ptype (kept as extensions), a trailing `;`.
pub fn parse(value: &str) -> Result<ParsedAuthenticationResults, ParseError> {
    let mut p = ArParser {
        s: value.as_bytes(),
        pos: 0,
        comments: Vec::new(),
    };
    p.skip_cfws()?;
    let authserv_id = p
        .value()?
        .ok_or_else(|| p.error("expected the authserv-id"))?;
    p.skip_cfws()?;
    let mut version = None;
    if p.peek().is_some_and(|b| b.is_ascii_digit()) {
        version = Some(p.number()?);
        p.skip_cfws()?;
    }
    let mut results = Vec::new();
    loop {
        p.skip_cfws()?;
        match p.peek() {
            None => break,
            Some(b';') => p.pos += 1,
            Some(_) => return Err(p.error("expected ';'")),
        }
        p.skip_cfws()?;
        if p.peek().is_none() {
            break; // A trailing ';'.
        }
        let start = p.pos;
        let method = p
            .keyword()
            .ok_or_else(|| p.error("expected a method name"))?;
        p.skip_cfws()?;
        let mut method_version = None;
        if p.peek() == Some(b'/') {
            p.pos += 1;
            p.skip_cfws()?;
            method_version = Some(p.number()?);
            p.skip_cfws()?;
        }
        if p.peek() != Some(b'=') {
            if method.eq_ignore_ascii_case("none") && results.is_empty() {
                p.skip_cfws()?;
                continue; // "; none": no results.
            }
            p.pos = start;
            return Err(p.error("expected '=' after the method name"));
        }
        p.pos += 1;
        p.skip_cfws()?;
        let Some(result) = p.keyword() else {
            return Err(p.error("expected a result keyword"));
        };
        let result = result.to_ascii_lowercase();
        p.comments.clear();
        p.skip_cfws()?;
        let mut r = ParsedMethodResult {
            method: method.to_ascii_lowercase(),
            method_version,
            result,
            reason: None,
            comments: Vec::new(),
            properties: Vec::new(),
            extensions: Vec::new(),
        };
        while let Some(b) = p.peek() {
            if b == b';' {
                break;
            }
            let name_start = p.pos;
            let Some(name) = p.keyword() else {
                return Err(p.error("expected a property or ';'"));
            };
            p.skip_cfws()?;
            let mut property = None;
            if p.peek() == Some(b'.') {
                p.pos += 1;
                p.skip_cfws()?;
                let Some(prop) = p.keyword() else {
                    return Err(p.error("expected a property name after '.'"));
                };
                property = Some(prop);
                p.skip_cfws()?;
            }
            if p.peek() != Some(b'=') {
                p.pos = name_start;
                return Err(p.error("expected '=' in a property"));
            }
            p.pos += 1;
            p.skip_cfws()?;
            let v = p.pvalue()?;
            match property {
                Some(prop) => r.properties.push(Property {
                    ptype: name.to_ascii_lowercase().into(),
                    property: prop.to_ascii_lowercase().into(),
                    value: v.into(),
                }),
                None if name.eq_ignore_ascii_case("reason") => r.reason = Some(v),
                None => r.extensions.push((name.to_ascii_lowercase(), v)),
            }
            p.skip_cfws()?;
        }
        r.comments = std::mem::take(&mut p.comments);
        results.push(r);
    }
    Ok(ParsedAuthenticationResults {
        authserv_id,
        version,
        results,
    })
}

/// The authserv-id of an Authentication-Results field value, or `None` when the field is
/// too broken to tell. Cheap: used to remove fields that claim to be ours (RFC 8601 §5).
pub fn authserv_id(value: &str) -> Option<String> {
    let mut p = ArParser {
        s: value.as_bytes(),
        pos: 0,
        comments: Vec::new(),
    };
    p.skip_cfws().ok()?;
    p.value().ok().flatten()
}

/// Splits an Authentication-Results field value into its authserv-id and its results, each
/// `resinfo` exactly as written (comments and folding kept, surrounding whitespace
/// removed), for copying results into an ARC-Authentication-Results field. `; none` gives
/// no results. `None` when the authserv-id cannot be read.
pub fn split_resinfo(value: &str) -> Option<(String, Vec<String>)> {
    let mut p = ArParser {
        s: value.as_bytes(),
        pos: 0,
        comments: Vec::new(),
    };
    p.skip_cfws().ok()?;
    let id = p.value().ok().flatten()?;
    p.skip_cfws().ok()?;
    if p.peek().is_some_and(|b| b.is_ascii_digit()) {
        p.number().ok()?;
        p.skip_cfws().ok()?;
    }
    let rest = value.get(p.pos..)?;
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0usize, false, false, 0usize);
    let push = |piece: &str, out: &mut Vec<String>| {
        let piece = piece.trim_matches([' ', '\t', '\r', '\n']);
        if !piece.is_empty() && !piece.eq_ignore_ascii_case("none") {
            out.push(piece.to_string());
        }
    };
    for (i, c) in rest.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ';' if !quoted && depth == 0 => {
                push(rest.get(start..i).unwrap_or_default(), &mut out);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(rest.get(start..).unwrap_or_default(), &mut out);
    Some((id, out))
}

/// True when a field with this value claims to come from `authserv_id` (compared without
/// regard to case, as domain names are). A receiver deletes such fields from incoming mail
/// before adding its own (RFC 8601 §5), and trusts only the ids it names.
pub fn claims_authserv_id(value: &str, authserv_id: &str) -> bool {
    self::authserv_id(value).is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
}

struct ArParser<'a> {
    s: &'a [u8],
    pos: usize,
    comments: Vec<String>,
}

impl ArParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn error(&self, message: &str) -> ParseError {
        ParseError {
            message: message.to_owned(),
            offset: self.pos,
        }
    }

    /// Skips folding white space and (nested) comments, collecting the comments.
    fn skip_cfws(&mut self) -> Result<(), ParseError> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    let start = self.pos;
                    let mut depth = 0usize;
                    let mut text = Vec::new();
                    loop {
                        let Some(c) = self.peek() else {
                            self.pos = start;
                            return Err(self.error("unterminated comment"));
                        };
                        self.pos += 1;
                        match c {
                            b'\\' => {
                                if let Some(n) = self.peek() {
                                    text.push(n);
                                    self.pos += 1;
                                }
                            }
                            b'(' => {
                                if depth > 0 {
                                    text.push(c);
                                }
                                depth += 1;
                            }
                            b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                                text.push(c);
                            }
                            _ => text.push(c),
                        }
                    }
                    self.comments
                        .push(String::from_utf8_lossy(&text).trim().to_owned());
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }

    /// An RFC 8601 Keyword (letters, digits, '-', '_').
    fn keyword(&mut self) -> Option<String> {
        let k = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (!k.is_empty()).then_some(k)
    }

    fn number(&mut self) -> Result<u32, ParseError> {
        let start = self.pos;
        let digits = self.take_while(|b| b.is_ascii_digit());
        digits.parse().map_err(|_| {
            self.pos = start;
            self.error("expected a version number")
        })
    }

    fn quoted(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                self.pos = start;
                return Err(self.error("unterminated quoted-string"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.pos += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// An RFC 2045 value: a quoted-string or a token (non-ASCII accepted for RFC 6532).
    fn value(&mut self) -> Result<Option<String>, ParseError> {
        if self.peek() == Some(b'"') {
            return self.quoted().map(Some);
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| b >= 0x80 || is_token_byte(b)) {
            self.pos += 1;
        }
        let t = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        Ok((!t.is_empty()).then_some(t))
    }

    /// A property value: a value, or `[local-part "@"] domain-name` (the local part may be
    /// quoted).
    fn pvalue(&mut self) -> Result<String, ParseError> {
        let delim = |b: u8| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b'"');
        if self.peek() == Some(b'"') {
            let mut q = self.quoted()?;
            if self.peek() == Some(b'@') {
                q.push_str(&self.take_while(delim));
            }
            return Ok(q);
        }
        Ok(self.take_while(delim))
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parses_real_world_fields() {
        let v = "mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=20230601 header.b=AbCd/123;\r\n       spf=pass (google.com: domain of bounce@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=bounce@example.com;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com";
        let ar = parse(v).unwrap();
        assert_eq!(ar.authserv_id, "mx.google.com");
        assert_eq!(ar.results.len(), 3);
        assert_eq!(ar.results[0].method, "dkim");
        assert_eq!(ar.results[0].property("header", "i"), Some("@example.com"));
        assert_eq!(ar.results[0].property("header", "b"), Some("AbCd/123"));
        assert_eq!(ar.results[1].result, "pass");
        assert!(ar.results[1].comments[0].starts_with("google.com: domain of"));
        assert_eq!(
            ar.results[1].property("smtp", "mailfrom"),
            Some("bounce@example.com")
        );
        assert_eq!(ar.results[2].comments, vec!["p=REJECT sp=REJECT dis=NONE"]);
    }

    #[test]
    fn parses_microsoft_style_and_versions() {
        let v = "spf.protection.outlook.com 1; spf=pass (sender IP is 192.0.2.1)\r\n smtp.mailfrom=example.com; dkim=none (message not signed)\r\n header.d=none;dmarc=none action=none header.from=example.com;compauth=pass\r\n reason=100";
        let ar = parse(v).unwrap();
        assert_eq!(ar.version, Some(1));
        assert_eq!(ar.results.len(), 4);
        assert_eq!(
            ar.results[2].extensions,
            vec![("action".into(), "none".into())]
        );
        assert_eq!(ar.results[3].reason.as_deref(), Some("100"));
    }

    #[test]
    fn none_quoting_and_errors() {
        let ar = parse("example.org; none").unwrap();
        assert!(ar.results.is_empty());
        let ar = parse(
            "\"odd id\"; spf/1=fail reason=\"no \\\"luck\\\"\" smtp.mailfrom=\"a b\"@example.com;",
        )
        .unwrap();
        assert_eq!(ar.authserv_id, "odd id");
        assert_eq!(ar.results[0].method_version, Some(1));
        assert_eq!(ar.results[0].reason.as_deref(), Some("no \"luck\""));
        assert_eq!(
            ar.results[0].property("smtp", "mailfrom"),
            Some("a b@example.com")
        );
        assert!(parse("").is_err());
        assert!(parse("example.org; spf").is_err());
        assert!(parse("example.org; spf=pass (unterminated").is_err());
        assert!(claims_authserv_id(
            " MX.Example.org; spf=pass",
            "mx.example.org"
        ));
        assert!(!claims_authserv_id(
            "other.example; spf=pass",
            "mx.example.org"
        ));
    }

    #[test]
    fn round_trips_what_we_render() {
        let built = AuthenticationResults::new("mx.example.org").with(
            MethodResult::new("dkim", "fail")
                .with_comment("bad (really)")
                .with_reason("body hash mismatch")
                .with_property("header", "d", "example.com")
                .with_property("header", "b", "ab/c+d=="),
        );
        let parsed = parse(&built.to_folded()).unwrap();
        assert_eq!(parsed.authserv_id, "mx.example.org");
        let r = &parsed.results[0];
        assert_eq!(r.reason.as_deref(), Some("body hash mismatch"));
        assert_eq!(r.comments, vec!["bad (really)"]);
        assert_eq!(r.property("header", "b"), Some("ab/c+d=="));
    }

    #[test]
    fn hostile_input_never_panics() {
        for s in [
            "(",
            "a;(",
            "a; b=",
            "a; b=c d",
            "a; b=c d.",
            "a; b=c d.e",
            "\"",
            "a; b/=c",
            "a;;;",
            "a; b=c \"x",
            "ü; spf=pass",
        ] {
            let _ = parse(s);
        }
    }
}
