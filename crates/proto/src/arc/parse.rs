//! Parsing of the three ARC header fields (§4.1), with the shared tag-list parser
//! ([`crate::tag_list`], strictly: RFC 6376 §3.2 as §4.1 refers to it) and DKIM's
//! signature checks for the AMS.

use std::ops::Range;

use super::{ChainStatus, FieldKind};
use crate::auth_results::{self, ParsedAuthenticationResults};
use crate::dkim::parse::{Signature, decode_base64, is_domain_name, parse_ams_tags, text};
use crate::dkim::{Algorithm, Problem};
use crate::tag_list::{Tag, TagList};

/// An instance number (§4.2.1): 1 to 50, decimal digits only. Larger numbers are read
/// (up to 2^32) so that "too many sets" can be said.
pub(crate) fn instance(value: &[u8]) -> Result<u32, String> {
    let digits_ok = !value.is_empty() && value.len() <= 9 && value.iter().all(u8::is_ascii_digit);
    if !digits_ok {
        return Err(format!(
            "i={:?} is not an instance number",
            String::from_utf8_lossy(value)
        ));
    }
    let n = value
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    if n == 0 {
        return Err("i=0: instances start at 1".into());
    }
    Ok(n)
}

fn instance_tag(tags: &[Tag<'_>]) -> Result<u32, String> {
    let tag = tags
        .iter()
        .find(|t| t.name == "i")
        .ok_or_else(|| "no i= tag".to_string())?;
    instance(tag.value)
}

/// A parsed `ARC-Message-Signature`: its instance and the checked signature, or why the
/// signature is unusable (the instance still known).
pub(crate) struct AmsField {
    pub instance: u32,
    pub sig: Result<Signature, Problem>,
    pub domain: Option<String>,
}

/// Parses an AMS value. `Err` when not even `i=` can be read.
pub(crate) fn parse_ams(value: &[u8]) -> Result<AmsField, String> {
    let list = TagList::parse(value).map_err(|e| format!("malformed tag list: {e}"))?;
    let tags = list.tags();
    let instance = instance_tag(tags)?;
    let (sig, domain) = match parse_ams_tags(value, tags) {
        Ok(sig) => {
            let d = sig.info.domain.clone();
            if sig.algorithm == Algorithm::RsaSha1 {
                (Err(Problem::Sha1NotAllowed), d)
            } else {
                (Ok(sig), d)
            }
        }
        Err(e) => (Err(e.problem), e.info.domain),
    };
    Ok(AmsField {
        instance,
        sig,
        domain,
    })
}

/// A checked `ARC-Seal` (§4.1.3).
#[derive(Debug, Clone)]
pub(crate) struct SealCore {
    pub algorithm: Algorithm,
    pub signature: Vec<u8>,
    pub cv: ChainStatus,
    pub domain: String,
    pub selector: String,
    /// The raw `b=` value, surrounding whitespace included, within the field value.
    pub b_range: Range<usize>,
}

impl SealCore {
    /// The DNS name of the key (§4.1.3, as RFC 6376 §3.6.2.1).
    pub fn key_name(&self) -> String {
        format!(
            "{}._domainkey.{}",
            self.selector.to_ascii_lowercase(),
            self.domain.to_ascii_lowercase()
        )
    }
}

/// A parsed seal: its instance, what could be read, and the checked seal or why it is
/// unusable.
pub(crate) struct SealField {
    pub instance: u32,
    pub domain: Option<String>,
    pub selector: Option<String>,
    pub cv: Option<ChainStatus>,
    pub seal: Result<SealCore, Problem>,
}

/// Parses an ARC-Seal value. `Err` when not even `i=` can be read.
pub(crate) fn parse_seal(value: &[u8]) -> Result<SealField, String> {
    let list = TagList::parse(value).map_err(|e| format!("malformed tag list: {e}"))?;
    let tags = list.tags();
    let instance = instance_tag(tags)?;
    let get = |n: &str| tags.iter().find(|t| t.name == n);
    let domain = get("d").map(|t| text(t.value));
    let selector = get("s").map(|t| text(t.value));
    let cv = get("cv")
        .and_then(|t| t.value_str())
        .and_then(ChainStatus::parse);
    let seal = seal_core(value, tags);
    Ok(SealField {
        instance,
        domain,
        selector,
        cv,
        seal,
    })
}

fn seal_core(value: &[u8], tags: &[Tag<'_>]) -> Result<SealCore, Problem> {
    let get = |n: &str| tags.iter().find(|t| t.name == n);
    let req = |n: &'static str| get(n).ok_or(Problem::MissingTag(n));
    let a = req("a")?.value;
    let algorithm = Algorithm::parse(&text(a)).ok_or_else(|| Problem::UnknownAlgorithm(text(a)))?;
    if algorithm == Algorithm::RsaSha1 {
        return Err(Problem::Sha1NotAllowed);
    }
    let b_tag = req("b")?;
    let signature = decode_base64(b_tag.value).map_err(|e| Problem::BadTagValue("b", e))?;
    if signature.is_empty() {
        return Err(Problem::BadTagValue("b", "empty".into()));
    }
    let cv_text = text(req("cv")?.value);
    let cv = ChainStatus::parse(&cv_text).ok_or_else(|| {
        Problem::BadTagValue("cv", format!("{cv_text:?} is not none, pass or fail"))
    })?;
    let d = text(req("d")?.value);
    if !is_domain_name(&d) {
        return Err(Problem::InvalidDomain(d));
    }
    let s = text(req("s")?.value);
    if !is_domain_name(&s) {
        return Err(Problem::InvalidSelector(s));
    }
    if let Some(t) = get("t") {
        let v = t.value;
        if v.is_empty() || v.len() > 12 || !v.iter().all(u8::is_ascii_digit) {
            return Err(Problem::BadTagValue(
                "t",
                format!("not a number: {:?}", text(v)),
            ));
        }
    }
    if get("h").is_some() {
        return Err(Problem::BadTagValue(
            "h",
            "an ARC-Seal has no h= tag (§4.1.3)".into(),
        ));
    }
    Ok(SealCore {
        algorithm,
        signature,
        cv,
        domain: d,
        selector: s,
        b_range: b_tag.raw_value_range(value),
    })
}

/// A parsed `ARC-Authentication-Results` field (§4.1.1): `i=N;` and then an
/// Authentication-Results payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AarField {
    /// The instance number.
    pub instance: u32,
    /// The payload (authserv-id and results), or why it could not be parsed.
    pub results: Result<ParsedAuthenticationResults, String>,
}

/// Parses the value of an `ARC-Authentication-Results` field. `Err` when it does not start
/// with a usable `i=N;` (which §4.1.1 requires, before the authserv-id).
pub fn parse_aar(value: &[u8]) -> Result<AarField, String> {
    let s = String::from_utf8_lossy(value);
    let rest = s.trim_start_matches([' ', '\t', '\r', '\n']);
    let Some(rest) = rest.strip_prefix("i") else {
        return Err("does not start with i=".into());
    };
    let rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
    let Some(rest) = rest.strip_prefix('=') else {
        return Err("does not start with i=".into());
    };
    let rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (num, rest) = rest.split_at(digits);
    let instance = instance(num.as_bytes())?;
    let rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
    let Some(payload) = rest.strip_prefix(';') else {
        return Err(format!("i={instance} is not followed by ';'"));
    };
    let results = auth_results::parse(payload).map_err(|e| e.to_string());
    Ok(AarField { instance, results })
}

/// Which ARC field a header field is, if any.
pub(crate) fn field_kind(name: &[u8]) -> Option<FieldKind> {
    // The three names differ in length: one comparison each.
    match name.len() {
        8 if name.eq_ignore_ascii_case(b"ARC-Seal") => Some(FieldKind::Seal),
        21 if name.eq_ignore_ascii_case(b"ARC-Message-Signature") => {
            Some(FieldKind::MessageSignature)
        }
        26 if name.eq_ignore_ascii_case(b"ARC-Authentication-Results") => {
            Some(FieldKind::AuthenticationResults)
        }
        _ => None,
    }
}
