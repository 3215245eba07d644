//! Authentication-Results (RFC 8601): building the header field.
//!
//! Each verifier (SPF, DKIM, DMARC, ARC) turns its verdict into a [`MethodResult`]; the
//! receiver collects them under its authserv-id in an [`AuthenticationResults`] and renders
//! the field. Values are quoted exactly when RFC 8601 §2.2 requires it: a `value` is an RFC
//! 2045 token or a quoted-string, and a property value may also be a bare
//! `[local-part "@"] domain-name`.

use std::fmt::{self, Write as _};

/// One property of a result, such as `smtp.mailfrom=example.com` or `header.d=example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The property type: `smtp`, `header`, `body` or `policy`.
    pub ptype: String,
    /// The property within that type: `mailfrom`, `helo`, `d`, `s`, `from`, `dmarc`, ...
    pub property: String,
    /// The value, unquoted; quoting is done when rendering.
    pub value: String,
}

/// The outcome of one authentication method, one `resinfo` of RFC 8601.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// The method name: `spf`, `dkim`, `dmarc`, `arc`, ...
    pub method: String,
    /// The result keyword as the method's RFC names it (`pass`, `fail`, `temperror`, ...).
    pub result: String,
    /// An optional comment shown after the result, for people: `(key too small)`.
    pub comment: Option<String>,
    /// The optional `reason=` text.
    pub reason: Option<String>,
    /// The properties, in the order to render them.
    pub properties: Vec<Property>,
}

impl MethodResult {
    /// A result with no comment, reason or properties.
    pub fn new(method: impl Into<String>, result: impl Into<String>) -> Self {
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
        ptype: impl Into<String>,
        property: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.properties.push(Property {
            ptype: ptype.into(),
            property: property.into(),
            value: value.into(),
        });
        self
    }

    /// Sets the `reason=` text (builder style).
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the comment (builder style).
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }
}

impl fmt::Display for MethodResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.method, self.result)?;
        if let Some(c) = &self.comment {
            f.write_str(" ")?;
            write_comment(f, c)?;
        }
        if let Some(r) = &self.reason {
            f.write_str(" reason=")?;
            write_value(f, r)?;
        }
        for p in &self.properties {
            write!(f, " {}.{}=", p.ptype, p.property)?;
            write_pvalue(f, &p.value)?;
        }
        Ok(())
    }
}

/// A whole Authentication-Results field: the authserv-id and its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationResults {
    /// The authserv-id naming the receiving administrative domain's verifier.
    pub authserv_id: String,
    /// The results, in order. Empty renders as `; none`.
    pub results: Vec<MethodResult>,
}

impl AuthenticationResults {
    /// An empty field for `authserv_id`.
    pub fn new(authserv_id: impl Into<String>) -> Self {
        AuthenticationResults {
            authserv_id: authserv_id.into(),
            results: Vec::new(),
        }
    }

    /// Appends a result (builder style).
    pub fn with(mut self, result: MethodResult) -> Self {
        self.results.push(result);
        self
    }

    /// The field value folded for a message header: each result on its own line,
    /// continued with CRLF and a tab. Without the field name and without the final CRLF.
    pub fn to_folded(&self) -> String {
        self.render("\r\n\t")
    }

    /// The whole header field, `Authentication-Results: ...` with the final CRLF.
    pub fn to_header(&self) -> String {
        format!("Authentication-Results: {}\r\n", self.to_folded())
    }

    fn render(&self, sep: &str) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = write_value(&mut out, &self.authserv_id);
        if self.results.is_empty() {
            out.push_str("; none");
        }
        for r in &self.results {
            out.push(';');
            out.push_str(sep);
            let _ = write!(out, "{r}");
        }
        out
    }
}

impl fmt::Display for AuthenticationResults {
    /// The field value on one line (without the field name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(" "))
    }
}

/// True for an RFC 2045 token: one or more US-ASCII printable characters other than the
/// tspecials `()<>@,;:\"/[]?=`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')'
                        | b'<'
                        | b'>'
                        | b'@'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'/'
                        | b'['
                        | b']'
                        | b'?'
                        | b'='
                )
        })
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(is_atext))
}

fn is_domain_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b >= 0x80)
        })
}

/// True when `s` can stand unquoted as an RFC 8601 `pvalue`: a token, or
/// `[local-part "@"] domain-name`.
pub fn is_bare_pvalue(s: &str) -> bool {
    if is_token(s) {
        return true;
    }
    match s.rsplit_once('@') {
        Some((local, domain)) => (local.is_empty() || is_dot_atom(local)) && is_domain_name(domain),
        None => false,
    }
}

fn write_value(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    if is_token(s) {
        out.write_str(s)
    } else {
        write_quoted(out, s)
    }
}

fn write_pvalue(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    if is_bare_pvalue(s) {
        out.write_str(s)
    } else {
        write_quoted(out, s)
    }
}

fn write_quoted(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            // Line breaks and other controls cannot appear in a header field value.
            c if c.is_control() => out.write_char(' ')?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

fn write_comment(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('(')?;
    for c in s.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            c if c.is_control() => out.write_char(' ')?,
            c => out.write_char(c)?,
        }
    }
    out.write_char(')')
}

#[cfg(test)]
mod tests {
    use super::*;

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
