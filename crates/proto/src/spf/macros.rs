//! Macro strings (§7): parsing and expansion.
//!
//! ```text
//! macro-string     = *( macro-expand / macro-literal )
//! macro-expand     = ( "%{" macro-letter transformers *delimiter "}" )
//!                    / "%%" / "%_" / "%-"
//! macro-literal    = %x21-24 / %x26-7E
//! macro-letter     = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"
//! transformers     = *DIGIT [ "r" ]
//! delimiter        = "." / "-" / "+" / "," / "/" / "_" / "="
//! explain-string   = *( macro-string / SP )
//! ```

use std::fmt;
use std::net::IpAddr;

/// Where a macro string appears; decides which letters and characters are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacroContext {
    /// A `domain-spec` of a mechanism or of `redirect=`/`exp=`: `c`, `r` and `t` are not
    /// allowed (§7.2), nor are spaces.
    DomainSpec,
    /// The value of an unknown modifier: any macro letter, no spaces.
    ModifierValue,
    /// An explanation string fetched through `exp=` (§6.2): every letter, and spaces.
    Explanation,
}

/// A macro letter (§7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacroLetter {
    /// `s`: the sender, `local-part@domain`.
    Sender,
    /// `l`: the local part of the sender.
    LocalPart,
    /// `o`: the domain of the sender.
    SenderDomain,
    /// `d`: the current domain (changes with `include` and `redirect`).
    Domain,
    /// `i`: the client IP, dotted quad or 32 dot-separated nibbles.
    Ip,
    /// `p`: the validated domain name of the client IP (discouraged, §7.3).
    ValidatedName,
    /// `v`: `in-addr` for IPv4, `ip6` for IPv6.
    IpVersion,
    /// `h`: the HELO/EHLO name.
    Helo,
    /// `c`: the client IP in its readable form (explanations only).
    ClientIp,
    /// `r`: the receiving host's name (explanations only).
    Receiver,
    /// `t`: the current time in seconds since the epoch (explanations only).
    Timestamp,
}

impl MacroLetter {
    fn from_byte(b: u8) -> Option<MacroLetter> {
        Some(match b.to_ascii_lowercase() {
            b's' => MacroLetter::Sender,
            b'l' => MacroLetter::LocalPart,
            b'o' => MacroLetter::SenderDomain,
            b'd' => MacroLetter::Domain,
            b'i' => MacroLetter::Ip,
            b'p' => MacroLetter::ValidatedName,
            b'v' => MacroLetter::IpVersion,
            b'h' => MacroLetter::Helo,
            b'c' => MacroLetter::ClientIp,
            b'r' => MacroLetter::Receiver,
            b't' => MacroLetter::Timestamp,
            _ => return None,
        })
    }

    /// The lower-case letter.
    pub fn as_char(self) -> char {
        match self {
            MacroLetter::Sender => 's',
            MacroLetter::LocalPart => 'l',
            MacroLetter::SenderDomain => 'o',
            MacroLetter::Domain => 'd',
            MacroLetter::Ip => 'i',
            MacroLetter::ValidatedName => 'p',
            MacroLetter::IpVersion => 'v',
            MacroLetter::Helo => 'h',
            MacroLetter::ClientIp => 'c',
            MacroLetter::Receiver => 'r',
            MacroLetter::Timestamp => 't',
        }
    }

    /// True for the letters allowed only in explanation strings (§7.2).
    pub fn is_explanation_only(self) -> bool {
        matches!(
            self,
            MacroLetter::ClientIp | MacroLetter::Receiver | MacroLetter::Timestamp
        )
    }
}

/// One piece of a macro string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacroPart {
    /// Literal text, with `%%`, `%_` and `%-` already replaced (by `%`, a space and `%20`).
    Literal(String),
    /// A `%{...}` expansion.
    Macro {
        /// The letter.
        letter: MacroLetter,
        /// Upper-case letter: URL-escape the value (§7.3).
        url_escape: bool,
        /// Keep only this many right-hand parts (never 0).
        keep: Option<u32>,
        /// Reverse the parts before keeping.
        reverse: bool,
        /// The delimiters to split on; empty means `.`.
        delimiters: String,
    },
}

/// The longest expansion [`MacroString::expand`] produces, in octets: far beyond any
/// domain name (253) or SMTP reply line, and small enough to be harmless.
pub const MAX_EXPANSION: usize = 8192;

/// A parsed macro string; displays as the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroString {
    parts: Vec<MacroPart>,
    source: String,
    /// True when the string ended with `%%`, `%_` or `%-` (these count as a `macro-expand`
    /// for the `domain-end` rule of §7.1).
    ends_with_escape: bool,
}

/// A syntax error in a macro string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroError {
    /// Byte offset in the macro string.
    pub offset: usize,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for MacroError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.offset)
    }
}

impl std::error::Error for MacroError {}

/// The values macros expand to.
#[derive(Debug, Clone, Copy)]
pub struct MacroValues<'a> {
    /// `s`.
    pub sender: &'a str,
    /// `l`.
    pub local_part: &'a str,
    /// `o`.
    pub sender_domain: &'a str,
    /// `d`.
    pub domain: &'a str,
    /// `i`, `c`, `v` (already un-mapped: an IPv4-mapped IPv6 address is IPv4 here).
    pub ip: IpAddr,
    /// `h`.
    pub helo: &'a str,
    /// `r`.
    pub receiver: &'a str,
    /// `t`.
    pub now: u64,
    /// `p`; `None` expands to `unknown`.
    pub validated_name: Option<&'a str>,
}

impl MacroString {
    /// Parses `s` for the given context.
    pub fn parse(s: &str, ctx: MacroContext) -> Result<MacroString, MacroError> {
        let b = s.as_bytes();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut ends_with_escape = false;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            ends_with_escape = false;
            if c == b'%' {
                let Some(&next) = b.get(i + 1) else {
                    return Err(err(
                        i,
                        "'%' at the end of the string (write %% for a percent sign)",
                    ));
                };
                match next {
                    b'%' => {
                        lit.push('%');
                        i += 2;
                        ends_with_escape = true;
                    }
                    b'_' => {
                        lit.push(' ');
                        i += 2;
                        ends_with_escape = true;
                    }
                    b'-' => {
                        lit.push_str("%20");
                        i += 2;
                        ends_with_escape = true;
                    }
                    b'{' => {
                        let start = i;
                        let close = b[i + 2..]
                            .iter()
                            .position(|&x| x == b'}')
                            .map(|p| p + i + 2)
                            .ok_or_else(|| err(start, "'%{' without a closing '}'"))?;
                        let body = &b[i + 2..close];
                        let part = parse_expand(body, start, ctx)?;
                        if !lit.is_empty() {
                            parts.push(MacroPart::Literal(std::mem::take(&mut lit)));
                        }
                        parts.push(part);
                        i = close + 1;
                    }
                    other => {
                        return Err(err(
                            i,
                            &format!(
                                "'%' followed by {:?}: only %{{...}}, %%, %_ and %- are macros",
                                char::from(other)
                            ),
                        ));
                    }
                }
            } else if c == b' ' && ctx == MacroContext::Explanation {
                lit.push(' ');
                i += 1;
            } else if (0x21..=0x7e).contains(&c) {
                lit.push(char::from(c));
                i += 1;
            } else {
                return Err(err(
                    i,
                    &format!("character {} is not allowed here", show_byte(c)),
                ));
            }
        }
        if !lit.is_empty() {
            parts.push(MacroPart::Literal(lit));
        }
        Ok(MacroString {
            parts,
            source: s.to_owned(),
            ends_with_escape,
        })
    }

    /// The pieces.
    pub fn parts(&self) -> &[MacroPart] {
        &self.parts
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the string contains no macro at all.
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, MacroPart::Literal(_)))
    }

    /// The expansion of a string without macros, without copying it: `None` when the
    /// string has a macro. (A single literal is never cut by [`MacroString::expand`].)
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [MacroPart::Literal(t)] => Some(t),
            _ => None,
        }
    }

    /// True when expanding needs the validated name of the client (`%{p}`).
    pub fn needs_validated_name(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                MacroPart::Macro {
                    letter: MacroLetter::ValidatedName,
                    ..
                }
            )
        })
    }

    /// Checks the `domain-end` rule of §7.1: the string ends with a macro, or with
    /// `"." toplabel ["."]`.
    pub(crate) fn check_domain_end(&self) -> Result<(), String> {
        if self.ends_with_escape {
            return Ok(());
        }
        match self.parts.last() {
            None => Err("the domain is empty".into()),
            Some(MacroPart::Macro { .. }) => Ok(()),
            Some(MacroPart::Literal(text)) => {
                let t = text.strip_suffix('.').unwrap_or(text);
                match t.rsplit_once('.') {
                    None => Err(format!(
                        "{:?} is not a domain name: it needs at least two labels",
                        self.source
                    )),
                    Some((_, top)) if is_toplabel(top) => Ok(()),
                    Some((_, top)) => {
                        let why = if !top.is_empty() && top.bytes().all(|c| c.is_ascii_digit()) {
                            " (an all-numeric top label: an IP address belongs in ip4:, not a:)"
                        } else {
                            ""
                        };
                        Err(format!(
                            "{:?} does not end in a valid top-level label ({top:?}){why}",
                            self.source
                        ))
                    }
                }
            }
        }
    }

    /// Expands the string (§7.3). `for_domain` is informational; truncation to 253 octets
    /// is done by the caller.
    ///
    /// The output is cut at [`MAX_EXPANSION`] octets, so a hostile string of many macros
    /// with long values cannot make it grow without bound.
    pub fn expand(&self, v: &MacroValues<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if out.len() >= MAX_EXPANSION {
                let mut cut = MAX_EXPANSION;
                while !out.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.truncate(cut);
                break;
            }
            match part {
                MacroPart::Literal(t) => out.push_str(t),
                MacroPart::Macro {
                    letter,
                    url_escape,
                    keep,
                    reverse,
                    delimiters,
                } => {
                    let value = letter_value(*letter, v);
                    let transformed = transform(&value, *keep, *reverse, delimiters);
                    if *url_escape {
                        url_escape_into(&transformed, &mut out);
                    } else {
                        out.push_str(&transformed);
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for MacroString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn err(offset: usize, message: &str) -> MacroError {
    MacroError {
        offset,
        message: message.to_owned(),
    }
}

/// Shows a byte for an error message: printable ASCII as itself, others in hex.
pub(crate) fn show_byte(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("'{}'", char::from(c))
    } else {
        format!("0x{c:02X}")
    }
}

fn parse_expand(body: &[u8], offset: usize, ctx: MacroContext) -> Result<MacroPart, MacroError> {
    let Some((&first, rest)) = body.split_first() else {
        return Err(err(offset, "empty macro '%{}'"));
    };
    let letter = MacroLetter::from_byte(first).ok_or_else(|| {
        err(
            offset + 2,
            &format!(
                "unknown macro letter {} (allowed: s l o d i p h v, and c r t in explanations)",
                show_byte(first)
            ),
        )
    })?;
    if ctx == MacroContext::DomainSpec && letter.is_explanation_only() {
        return Err(err(
            offset + 2,
            &format!(
                "macro %{{{}}} is only allowed in explanation text, not in a domain (§7.2)",
                char::from(first)
            ),
        ));
    }
    let mut i = 0;
    let mut digits_len = 0;
    let mut keep: u32 = 0;
    while let Some(d) = rest.get(i).filter(|d| d.is_ascii_digit()) {
        keep = keep.saturating_mul(10).saturating_add(u32::from(d - b'0'));
        i += 1;
        digits_len += 1;
    }
    if digits_len > 0 && keep == 0 {
        return Err(err(
            offset,
            "a macro digit transformer must not be zero (§7.3)",
        ));
    }
    let mut reverse = false;
    if matches!(rest.get(i), Some(b'r' | b'R')) {
        reverse = true;
        i += 1;
    }
    let mut delimiters = String::new();
    for &d in rest.get(i..).unwrap_or_default() {
        if b".-+,/_=".contains(&d) {
            delimiters.push(char::from(d));
        } else {
            return Err(err(
                offset,
                &format!(
                    "invalid character {} in macro (expected digits, 'r', or delimiters . - + , / _ =)",
                    show_byte(d)
                ),
            ));
        }
    }
    Ok(MacroPart::Macro {
        letter,
        url_escape: first.is_ascii_uppercase(),
        keep: (digits_len > 0).then_some(keep),
        reverse,
        delimiters,
    })
}

/// `toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )`
pub(crate) fn is_toplabel(s: &str) -> bool {
    let b = s.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && b.iter().any(|c| c.is_ascii_alphabetic() || *c == b'-')
}

fn letter_value(letter: MacroLetter, v: &MacroValues<'_>) -> String {
    match letter {
        MacroLetter::Sender => v.sender.to_owned(),
        MacroLetter::LocalPart => v.local_part.to_owned(),
        MacroLetter::SenderDomain => v.sender_domain.to_owned(),
        MacroLetter::Domain => v.domain.to_owned(),
        MacroLetter::Ip => dotted_ip(v.ip),
        MacroLetter::ValidatedName => v.validated_name.unwrap_or("unknown").to_owned(),
        MacroLetter::IpVersion => match v.ip {
            IpAddr::V4(_) => "in-addr".to_owned(),
            IpAddr::V6(_) => "ip6".to_owned(),
        },
        MacroLetter::Helo => v.helo.to_owned(),
        MacroLetter::ClientIp => v.ip.to_string(),
        MacroLetter::Receiver => v.receiver.to_owned(),
        MacroLetter::Timestamp => v.now.to_string(),
    }
}

/// `%{i}`: dotted quad for IPv4, 32 dot-separated nibbles for IPv6 (§7.3).
///
/// Nibbles are upper-case hex, as pyspf and the openspf test suite expect in explanations;
/// DNS compares names case-insensitively, so queries are unaffected.
pub(crate) fn dotted_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(63);
            for byte in v6.octets() {
                for nibble in [byte >> 4, byte & 0x0f] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push(
                        char::from_digit(u32::from(nibble), 16)
                            .unwrap_or('0')
                            .to_ascii_uppercase(),
                    );
                }
            }
            s
        }
    }
}

fn transform(value: &str, keep: Option<u32>, reverse: bool, delimiters: &str) -> String {
    if keep.is_none() && !reverse && delimiters.is_empty() {
        return value.to_owned();
    }
    let delims: &str = if delimiters.is_empty() {
        "."
    } else {
        delimiters
    };
    let mut parts: Vec<&str> = value.split(|c| delims.contains(c)).collect();
    if reverse {
        parts.reverse();
    }
    if let Some(n) = keep {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n < parts.len() {
            parts.drain(..parts.len() - n);
        }
    }
    parts.join(".")
}

fn url_escape_into(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(ip: &str) -> MacroValues<'static> {
        MacroValues {
            sender: "strong-bad@email.example.com",
            local_part: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: ip.parse().unwrap(),
            helo: "mx.example.org",
            receiver: "mx.example.net",
            now: 1_700_000_000,
            validated_name: None,
        }
    }

    fn exp(s: &str, ip: &str) -> String {
        MacroString::parse(s, MacroContext::Explanation)
            .unwrap()
            .expand(&values(ip))
    }

    /// The examples of RFC 7208 §7.4.
    #[test]
    fn rfc_examples() {
        let ip4 = "192.0.2.3";
        assert_eq!(exp("%{s}", ip4), "strong-bad@email.example.com");
        assert_eq!(exp("%{o}", ip4), "email.example.com");
        assert_eq!(exp("%{d}", ip4), "email.example.com");
        assert_eq!(exp("%{d4}", ip4), "email.example.com");
        assert_eq!(exp("%{d3}", ip4), "email.example.com");
        assert_eq!(exp("%{d2}", ip4), "example.com");
        assert_eq!(exp("%{d1}", ip4), "com");
        assert_eq!(exp("%{dr}", ip4), "com.example.email");
        assert_eq!(exp("%{d2r}", ip4), "example.email");
        assert_eq!(exp("%{l}", ip4), "strong-bad");
        assert_eq!(exp("%{l-}", ip4), "strong.bad");
        assert_eq!(exp("%{lr}", ip4), "strong-bad");
        assert_eq!(exp("%{lr-}", ip4), "bad.strong");
        assert_eq!(exp("%{l1r-}", ip4), "strong");
        assert_eq!(
            exp("%{ir}.%{v}._spf.%{d2}", ip4),
            "3.2.0.192.in-addr._spf.example.com"
        );
        assert_eq!(
            exp("%{lr-}.lp._spf.%{d2}", ip4),
            "bad.strong.lp._spf.example.com"
        );
        assert_eq!(
            exp("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01").to_ascii_lowercase(),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
        assert_eq!(
            exp("%{c} at %{t} by %{r}", "2001:db8::cb01"),
            "2001:db8::cb01 at 1700000000 by mx.example.net"
        );
        assert_eq!(exp("%%%_%-", ip4), "% %20");
        assert_eq!(exp("%{S}", ip4), "strong-bad%40email.example.com");
    }

    #[test]
    fn expansion_is_bounded() {
        let many = "%{s}".repeat(10_000);
        let m = MacroString::parse(&many, MacroContext::DomainSpec).unwrap();
        let long_sender = format!("{}@example.com", "x".repeat(5000));
        let v = MacroValues {
            sender: &long_sender,
            ..values("192.0.2.1")
        };
        let out = m.expand(&v);
        assert!(out.len() <= MAX_EXPANSION, "{}", out.len());
    }

    #[test]
    fn syntax_errors() {
        for bad in ["%", "%x", "%{", "%{x}", "%{d0}", "%{d2q}", "a b"] {
            assert!(
                MacroString::parse(bad, MacroContext::DomainSpec).is_err(),
                "{bad:?} should not parse"
            );
        }
        assert!(MacroString::parse("%{r}.example.com", MacroContext::DomainSpec).is_err());
        assert!(MacroString::parse("%{r}.example.com", MacroContext::ModifierValue).is_ok());
        assert!(MacroString::parse("%{d999999999999}", MacroContext::DomainSpec).is_ok());
    }

    #[test]
    fn domain_end() {
        let ok = |s: &str| {
            MacroString::parse(s, MacroContext::DomainSpec)
                .unwrap()
                .check_domain_end()
        };
        assert!(ok("example.com").is_ok());
        assert!(ok("example.com.").is_ok());
        assert!(ok("%{d}").is_ok());
        assert!(ok("foo.example.xn--zckzah").is_ok());
        assert!(ok("museum").is_err());
        assert!(ok("museum.").is_err());
        assert!(ok("abc.123").is_err());
        assert!(ok("example.-com").is_err());
        assert!(ok("example.com:8080").is_err());
        assert!(ok("foo:bar/baz.example.com").is_ok());
    }
}
