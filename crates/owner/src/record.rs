//! Records to publish: a DMARC record (RFC 9989 §4.7) and an SPF record (RFC 7208 §12),
//! built from settings and checked by the protocol core's own parsers before they are
//! handed out, with the name to publish them at and a zone-file line.
//!
//! ```
//! use dmarc_owner::record::{DmarcRecordSpec, SpfRecordSpec};
//! let r = DmarcRecordSpec {
//!     p: "quarantine".into(),
//!     rua: vec!["mailto:dmarc@example.com".into()],
//!     ..DmarcRecordSpec::default()
//! }
//! .build("example.com")
//! .unwrap();
//! assert_eq!(r.name, "_dmarc.example.com");
//! assert_eq!(r.value, "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com");
//!
//! let s = SpfRecordSpec { include: vec!["_spf.google.com".into()], ..SpfRecordSpec::default() }
//!     .build("example.com")
//!     .unwrap();
//! assert_eq!(s.value, "v=spf1 include:_spf.google.com -all");
//! ```

use std::fmt::Write as _;

use dmarc_proto::dmarc::{DomainName, Record as DmarcRecord};
use dmarc_proto::spf::{Mechanism, Record as SpfRecord};
use serde::Serialize;

use crate::OwnerError;

/// A record ready to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishRecord {
    /// The owner name, without final dot.
    pub name: String,
    /// The record type (`TXT`).
    pub rtype: &'static str,
    /// The value, as one string (DNS providers' web forms take this).
    pub value: String,
    /// The entry for an RFC 1035 zone file, split into strings of at most 255 bytes.
    pub zone_line: String,
    /// Remarks for the publisher.
    pub notes: Vec<String>,
}

impl PublishRecord {
    fn new(name: String, value: String, notes: Vec<String>) -> PublishRecord {
        let zone_line = format!("{name}. 3600 IN TXT {}", zone_strings(&value));
        PublishRecord {
            name,
            rtype: "TXT",
            value,
            zone_line,
            notes,
        }
    }
}

/// The value as quoted character-strings of at most 255 bytes (RFC 1035 §3.3.14), split at
/// byte boundaries (receivers join them with no separator, RFC 7208 §3.3).
pub fn zone_strings(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(255).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        for &b in chunk {
            match b {
                b'"' | b'\\' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x20..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('"');
    }
    out
}

/// Settings of a DMARC record. Empty fields are left out (their defaults apply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmarcRecordSpec {
    /// `p`: `none`, `quarantine` or `reject`.
    pub p: String,
    /// `sp`.
    pub sp: Option<String>,
    /// `np`.
    pub np: Option<String>,
    /// `adkim`: `r` or `s`.
    pub adkim: Option<String>,
    /// `aspf`: `r` or `s`.
    pub aspf: Option<String>,
    /// `rua` URIs.
    pub rua: Vec<String>,
    /// `ruf` URIs.
    pub ruf: Vec<String>,
    /// `fo`: `0`, `1`, `d`, `s`, joined with `:`.
    pub fo: Option<String>,
    /// `t=y`.
    pub testing: bool,
    /// `psd`: `y`, `n` or `u`.
    pub psd: Option<String>,
}

impl DmarcRecordSpec {
    /// Builds the record for `domain` and checks it with the record parser: any
    /// diagnostic of error or warning level, or an ignored tag, is refused.
    pub fn build(&self, domain: &str) -> Result<PublishRecord, OwnerError> {
        let domain = DomainName::new(domain)?;
        let mut v = format!("v=DMARC1; p={}", self.p.trim().to_ascii_lowercase());
        for (tag, value) in [
            ("sp", &self.sp),
            ("np", &self.np),
            ("adkim", &self.adkim),
            ("aspf", &self.aspf),
            ("psd", &self.psd),
        ] {
            if let Some(x) = value {
                let _ = write!(v, "; {tag}={}", x.trim().to_ascii_lowercase());
            }
        }
        if self.testing {
            v.push_str("; t=y");
        }
        for (tag, uris) in [("rua", &self.rua), ("ruf", &self.ruf)] {
            if !uris.is_empty() {
                let list: Vec<String> = uris.iter().map(|u| uri(u)).collect();
                let _ = write!(v, "; {tag}={}", list.join(","));
            }
        }
        if let Some(fo) = &self.fo {
            let _ = write!(v, "; fo={}", fo.trim().to_ascii_lowercase());
        }
        let parsed = DmarcRecord::parse(v.as_bytes())
            .map_err(|e| OwnerError::Record(format!("not a valid DMARC record ({e}): {v}")))?;
        if let Some(d) = parsed
            .diagnostics
            .iter()
            .find(|d| d.severity >= dmarc_proto::dmarc::Severity::Warning)
        {
            return Err(OwnerError::Record(format!("{}: {v}", d.message)));
        }
        if !parsed.ignored_tags.is_empty() {
            return Err(OwnerError::Record(format!(
                "{} would be ignored by receivers: {v}",
                parsed.ignored_tags.join(", ")
            )));
        }
        if parsed.record.fell_back_to_none {
            return Err(OwnerError::Record(format!(
                "p is not none, quarantine or reject: {v}"
            )));
        }
        let rec = &parsed.record;
        let mut notes = Vec::new();
        if rec.p == dmarc_proto::dmarc::Policy::None {
            notes.push("p=none only monitors: move to quarantine, then reject, once the reports show your mail aligns".into());
        }
        if rec.rua.is_empty() {
            notes.push("without rua you receive no aggregate reports".into());
        }
        for u in rec.rua.iter().chain(&rec.ruf) {
            if let Some(d) = u.mailto_domain()
                && let Ok(dest) = DomainName::new(&d)
                && !dest.is_within(&domain)
            {
                notes.push(format!(
                    "{d} is outside {domain}: it must publish \"v=DMARC1\" at {domain}._report._dmarc.{d} (RFC 9990 §4) or receivers will not send reports there"
                ));
            }
        }
        Ok(PublishRecord::new(domain.dmarc_name(), v, notes))
    }
}

/// A `mailto:` URI for a bare address.
fn uri(u: &str) -> String {
    let u = u.trim();
    if u.contains(':') {
        u.to_string()
    } else {
        format!("mailto:{u}")
    }
}

/// Settings of an SPF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfRecordSpec {
    /// `ip4:` networks.
    pub ip4: Vec<String>,
    /// `ip6:` networks.
    pub ip6: Vec<String>,
    /// `include:` domains.
    pub include: Vec<String>,
    /// `a` (true) for the domain's own addresses.
    pub a: bool,
    /// `mx` (true) for the domain's MX hosts.
    pub mx: bool,
    /// `a:` other hosts.
    pub a_hosts: Vec<String>,
    /// The qualifier of `all`: `-` (fail), `~` (softfail), `?` or `+`. Default `-`.
    pub all: char,
    /// `redirect=` instead of `all`.
    pub redirect: Option<String>,
}

impl Default for SpfRecordSpec {
    fn default() -> Self {
        SpfRecordSpec {
            ip4: Vec::new(),
            ip6: Vec::new(),
            include: Vec::new(),
            a: false,
            mx: false,
            a_hosts: Vec::new(),
            all: '-',
            redirect: None,
        }
    }
}

impl SpfRecordSpec {
    /// Builds the record for `domain` and checks it with the SPF parser; refuses `+all`,
    /// more than 10 DNS-querying terms, and a record longer than 450 bytes (RFC 7208 §3.4).
    pub fn build(&self, domain: &str) -> Result<PublishRecord, OwnerError> {
        let domain = DomainName::new(domain)?;
        let mut v = String::from("v=spf1");
        if self.a {
            v.push_str(" a");
        }
        if self.mx {
            v.push_str(" mx");
        }
        for h in &self.a_hosts {
            let _ = write!(v, " a:{}", h.trim());
        }
        for n in &self.ip4 {
            let _ = write!(v, " ip4:{}", n.trim());
        }
        for n in &self.ip6 {
            let _ = write!(v, " ip6:{}", n.trim());
        }
        for i in &self.include {
            let _ = write!(v, " include:{}", i.trim());
        }
        match &self.redirect {
            Some(r) => {
                let _ = write!(v, " redirect={}", r.trim());
            }
            None => match self.all {
                '-' | '~' | '?' => {
                    let _ = write!(v, " {}all", self.all);
                }
                '+' => {
                    return Err(OwnerError::Record(
                        "+all lets every host pass SPF: use - or ~".into(),
                    ));
                }
                q => {
                    return Err(OwnerError::Record(format!(
                        "{q:?} is not an SPF qualifier (-, ~ or ?)"
                    )));
                }
            },
        }
        let parsed = SpfRecord::parse(v.as_bytes())
            .map_err(|e| OwnerError::Record(format!("not a valid SPF record ({e}): {v}")))?;
        let lookups = parsed
            .directives
            .iter()
            .filter(|d| d.mechanism.queries_dns())
            .count()
            + usize::from(parsed.redirect.is_some());
        if lookups > 10 {
            return Err(OwnerError::Record(format!(
                "{lookups} DNS-querying terms, more than the 10 receivers allow (RFC 7208 §4.6.4): use ip4:/ip6: ranges"
            )));
        }
        if v.len() > 450 {
            return Err(OwnerError::Record(format!(
                "the record is {} bytes; keep it under 450 (RFC 7208 §3.4): move ranges to an included record",
                v.len()
            )));
        }
        let mut notes = Vec::new();
        if parsed
            .directives
            .iter()
            .any(|d| matches!(d.mechanism, Mechanism::Include(_)))
        {
            notes.push(format!(
                "{lookups} of the 10 DNS-querying terms are used here; each include adds its own: check the total with dmarc check {domain} --dns-zone FILE after publishing it in a zone file"
            ));
        }
        if parsed.directives.is_empty() && parsed.redirect.is_none() {
            notes.push("this record says the domain sends no mail".into());
        }
        Ok(PublishRecord::new(domain.to_string(), v, notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmarc_records_are_checked_by_the_parser() {
        let r = DmarcRecordSpec {
            p: "reject".into(),
            sp: Some("quarantine".into()),
            adkim: Some("s".into()),
            rua: vec!["dmarc@reports.example.net".into()],
            ruf: vec!["mailto:f@example.com".into()],
            fo: Some("1".into()),
            ..DmarcRecordSpec::default()
        }
        .build("Example.COM")
        .unwrap();
        assert_eq!(
            r.value,
            "v=DMARC1; p=reject; sp=quarantine; adkim=s; rua=mailto:dmarc@reports.example.net; ruf=mailto:f@example.com; fo=1"
        );
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("example.com._report._dmarc.reports.example.net"))
        );
        assert!(
            r.zone_line
                .starts_with("_dmarc.example.com. 3600 IN TXT \"v=DMARC1;")
        );
        for bad in [
            DmarcRecordSpec {
                p: "block".into(),
                ..DmarcRecordSpec::default()
            },
            DmarcRecordSpec {
                p: "none".into(),
                adkim: Some("x".into()),
                ..DmarcRecordSpec::default()
            },
            DmarcRecordSpec {
                p: "none".into(),
                rua: vec!["not a uri".into()],
                ..DmarcRecordSpec::default()
            },
            DmarcRecordSpec {
                p: "none".into(),
                fo: Some("0:1".into()),
                ..DmarcRecordSpec::default()
            },
        ] {
            assert!(bad.build("example.com").is_err(), "{bad:?}");
        }
        assert!(
            DmarcRecordSpec {
                p: "none".into(),
                ..DmarcRecordSpec::default()
            }
            .build("a..b")
            .is_err()
        );
    }

    #[test]
    fn spf_records_are_checked_by_the_parser() {
        let r = SpfRecordSpec {
            mx: true,
            ip4: vec!["192.0.2.0/24".into()],
            ip6: vec!["2001:db8::/32".into()],
            include: vec!["amazonses.com".into()],
            all: '~',
            ..SpfRecordSpec::default()
        }
        .build("example.com")
        .unwrap();
        assert_eq!(
            r.value,
            "v=spf1 mx ip4:192.0.2.0/24 ip6:2001:db8::/32 include:amazonses.com ~all"
        );
        assert_eq!(r.name, "example.com");
        assert_eq!(
            SpfRecordSpec::default().build("example.com").unwrap().value,
            "v=spf1 -all"
        );
        for bad in [
            SpfRecordSpec {
                ip4: vec!["192.0.2.300".into()],
                ..SpfRecordSpec::default()
            },
            SpfRecordSpec {
                all: '+',
                ..SpfRecordSpec::default()
            },
            SpfRecordSpec {
                include: (0..11).map(|i| format!("i{i}.example")).collect(),
                ..SpfRecordSpec::default()
            },
        ] {
            assert!(bad.build("example.com").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn long_values_are_split_into_strings() {
        let long = "x".repeat(300);
        let z = zone_strings(&long);
        assert_eq!(z, format!("\"{}\" \"{}\"", "x".repeat(255), "x".repeat(45)));
        assert_eq!(zone_strings("a\"b"), "\"a\\\"b\"");
    }
}
