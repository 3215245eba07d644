//! Well-known email services: what each publishes and expects, so that mail sent through
//! it can pass DMARC, and how to recognise it from an SPF include, a reverse-DNS name or a
//! DKIM signing domain.
//!
//! The data is `data/services.toml` in this crate, embedded at build time and parsed once
//! ([`Catalogue::builtin`]); every entry names its source. Patterns are lower-case DNS
//! names in which `*` stands for any run of characters (`*.dkim.amazonses.com`).
//!
//! ```
//! use dmarc_owner::services::{Catalogue, MailFrom};
//! let catalogue = Catalogue::builtin();
//! let ses = catalogue.get("ses").unwrap();
//! assert_eq!(ses.name, "Amazon SES");
//! assert_eq!(ses.mail_from, MailFrom::CustomSubdomain);
//! let by_include = catalogue.by_spf_include("amazonses.com").unwrap();
//! assert_eq!(by_include.id, "amazon-ses");
//! assert_eq!(catalogue.by_ptr_name("a8-30.smtp-out.amazonses.com").unwrap().id, "amazon-ses");
//! assert_eq!(catalogue.by_dkim_domain("sendgrid.net").unwrap().id, "sendgrid");
//! ```

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::OwnerError;

const BUILTIN: &str = include_str!("../data/services.toml");

/// Where a service's SMTP MAIL FROM (Return-Path) domain is, which decides whether SPF can
/// align with the From domain (RFC 9989 §3.2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailFrom {
    /// The sender's own domain (the From domain): SPF at that domain must include the
    /// service.
    AuthorDomain,
    /// A subdomain of the sender's domain set up for the service: SPF aligns under relaxed
    /// `aspf` only.
    CustomSubdomain,
    /// The service's own domain: SPF never aligns; only DKIM can.
    ServiceDomain,
}

/// How a service's DKIM keys are published under the sender's domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimRecords {
    /// CNAMEs at `<selector>._domainkey.<domain>` to keys the service publishes (and
    /// rotates).
    Cname,
    /// A TXT key record the owner publishes.
    Txt,
}

/// One service of the catalogue. Every field is as in `data/services.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The stable identifier used on the command line.
    pub id: String,
    /// What people call it.
    pub name: String,
    /// Other names accepted for [`Catalogue::get`].
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The documentation the entry was taken from.
    pub source: String,
    /// Domains its SPF record is included as (patterns).
    #[serde(default)]
    pub spf_includes: Vec<String>,
    /// Where its MAIL FROM domain is.
    pub mail_from: MailFrom,
    /// The label the service suggests for a custom MAIL FROM subdomain (a pattern).
    #[serde(default)]
    pub mail_from_label: Option<String>,
    /// MX hosts a custom MAIL FROM subdomain needs (patterns).
    #[serde(default)]
    pub mail_from_mx: Vec<String>,
    /// Targets a custom MAIL FROM subdomain is a CNAME to (patterns).
    #[serde(default)]
    pub mail_from_cname: Vec<String>,
    /// Its DKIM selectors (patterns).
    #[serde(default)]
    pub dkim_selectors: Vec<String>,
    /// How its DKIM keys are published.
    pub dkim_records: DkimRecords,
    /// Where its DKIM CNAMEs point (patterns).
    #[serde(default)]
    pub dkim_cname_targets: Vec<String>,
    /// The `d=` domains it signs with by default (not aligned with yours).
    #[serde(default)]
    pub dkim_domains: Vec<String>,
    /// Reverse-DNS suffixes of its sending hosts.
    #[serde(default)]
    pub ptr_suffixes: Vec<String>,
    /// One sentence for people.
    #[serde(default)]
    pub notes: String,
}

impl Service {
    /// True when `include` (an SPF include target) is one of this service's.
    pub fn spf_include_matches(&self, include: &str) -> bool {
        any_matches(&self.spf_includes, include)
    }

    /// True when `target` is where one of this service's DKIM CNAMEs points.
    pub fn dkim_cname_matches(&self, target: &str) -> bool {
        any_matches(&self.dkim_cname_targets, target)
    }

    /// True when `selector` is one of this service's selector names.
    pub fn dkim_selector_matches(&self, selector: &str) -> bool {
        any_matches(&self.dkim_selectors, selector)
    }

    /// True when `host` is one of the MX hosts a custom MAIL FROM subdomain needs.
    pub fn mail_from_mx_matches(&self, host: &str) -> bool {
        any_matches(&self.mail_from_mx, host)
    }

    /// True when `target` is where a custom MAIL FROM subdomain's CNAME points.
    pub fn mail_from_cname_matches(&self, target: &str) -> bool {
        any_matches(&self.mail_from_cname, target)
    }

    /// True when `name` (a PTR name) ends in one of this service's suffixes.
    pub fn ptr_matches(&self, name: &str) -> bool {
        let name = normalise(name);
        self.ptr_suffixes
            .iter()
            .any(|s| name == *s || name.ends_with(&format!(".{s}")))
    }

    /// True when `d` is one of the domains the service signs with by default, or below one.
    pub fn dkim_domain_matches(&self, d: &str) -> bool {
        let d = normalise(d);
        self.dkim_domains
            .iter()
            .any(|s| d == *s || d.ends_with(&format!(".{s}")))
    }

    /// The SPF `include:` to write for this service (its first include without `*`).
    pub fn spf_include(&self) -> Option<&str> {
        self.spf_includes
            .iter()
            .find(|i| !i.contains('*'))
            .map(String::as_str)
    }
}

/// A well-known forwarder or mailing-list host: it relays mail of others, so SPF fails
/// for what it relays and only the author's DKIM signature can survive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forwarder {
    /// The stable identifier.
    pub id: String,
    /// What people call it.
    pub name: String,
    /// Where its behaviour is documented.
    pub source: String,
    /// Domains it signs relayed mail with, or uses as MAIL FROM (suffixes).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Reverse-DNS suffixes of its relaying hosts.
    #[serde(default)]
    pub ptr_suffixes: Vec<String>,
    /// One sentence for people.
    #[serde(default)]
    pub notes: String,
}

impl Forwarder {
    /// True when `name` (a PTR name, a `d=` or a MAIL FROM domain) is one of its.
    pub fn matches(&self, name: &str) -> bool {
        let name = normalise(name);
        self.domains
            .iter()
            .chain(&self.ptr_suffixes)
            .any(|s| name == *s || name.ends_with(&format!(".{s}")))
    }
}

/// The catalogue of services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalogue {
    services: Vec<Service>,
    forwarders: Vec<Forwarder>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    service: Vec<Service>,
    #[serde(default)]
    forwarder: Vec<Forwarder>,
}

impl Catalogue {
    /// The catalogue built into this crate (`data/services.toml`), parsed once.
    pub fn builtin() -> &'static Catalogue {
        static BUILT: OnceLock<Catalogue> = OnceLock::new();
        // The embedded file is validated by a test, so parsing cannot fail in a release.
        BUILT.get_or_init(|| {
            Catalogue::parse(BUILTIN).unwrap_or(Catalogue {
                services: Vec::new(),
                forwarders: Vec::new(),
            })
        })
    }

    /// Parses and validates a catalogue in the format of `data/services.toml`.
    pub fn parse(text: &str) -> Result<Catalogue, OwnerError> {
        let file: File =
            toml::from_str(text).map_err(|e| OwnerError::Catalogue(e.message().to_string()))?;
        let catalogue = Catalogue {
            services: file.service,
            forwarders: file.forwarder,
        };
        catalogue.validate()?;
        Ok(catalogue)
    }

    fn validate(&self) -> Result<(), OwnerError> {
        let bad = |id: &str, why: String| OwnerError::Catalogue(format!("service {id:?}: {why}"));
        let mut names: Vec<String> = Vec::new();
        for s in &self.services {
            if s.id.is_empty()
                || !s
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad(
                    &s.id,
                    "the id must be lower-case letters, digits and '-'".into(),
                ));
            }
            if !s.source.starts_with("https://") {
                return Err(bad(
                    &s.id,
                    "source must be an https:// documentation URL".into(),
                ));
            }
            if s.name.trim().is_empty() {
                return Err(bad(&s.id, "name is empty".into()));
            }
            for key in std::iter::once(&s.id).chain(&s.aliases) {
                let key = key.to_ascii_lowercase();
                if names.contains(&key) {
                    return Err(bad(&s.id, format!("{key:?} is used by two services")));
                }
                names.push(key);
            }
            let patterns = s
                .spf_includes
                .iter()
                .chain(&s.mail_from_mx)
                .chain(&s.mail_from_cname)
                .chain(&s.dkim_cname_targets)
                .chain(&s.dkim_domains)
                .chain(&s.ptr_suffixes)
                .chain(&s.dkim_selectors)
                .chain(&s.mail_from_label);
            for p in patterns {
                let ok = !p.is_empty()
                    && p.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'-' | b'.' | b'_' | b'*')
                    })
                    && !p.starts_with('.')
                    && !p.ends_with('.');
                if !ok {
                    return Err(bad(
                        &s.id,
                        format!(
                            "{p:?} is not a lower-case name pattern (letters, digits, '-', '.', '_', '*')"
                        ),
                    ));
                }
            }
            for p in s.dkim_domains.iter().chain(&s.ptr_suffixes) {
                if p.contains('*') {
                    return Err(bad(&s.id, format!("{p:?}: suffixes take no '*'")));
                }
            }
            if s.mail_from == MailFrom::CustomSubdomain && s.mail_from_label.is_none() {
                return Err(bad(
                    &s.id,
                    "a custom-subdomain service needs mail_from_label".into(),
                ));
            }
            if s.dkim_records == DkimRecords::Cname && s.dkim_cname_targets.is_empty() {
                return Err(bad(
                    &s.id,
                    "CNAME DKIM records need dkim_cname_targets".into(),
                ));
            }
            if s.spf_includes.is_empty() {
                return Err(bad(&s.id, "spf_includes is empty".into()));
            }
        }
        for f in &self.forwarders {
            if f.id.is_empty() || names.contains(&f.id) {
                return Err(bad(&f.id, "a forwarder needs an id no service uses".into()));
            }
            names.push(f.id.clone());
            if !f.source.starts_with("https://") {
                return Err(bad(&f.id, "source must be an https:// URL".into()));
            }
            if f.domains.is_empty() && f.ptr_suffixes.is_empty() {
                return Err(bad(
                    &f.id,
                    "a forwarder needs domains or ptr_suffixes".into(),
                ));
            }
            for p in f.domains.iter().chain(&f.ptr_suffixes) {
                let ok = !p.is_empty()
                    && p.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.')
                    })
                    && !p.starts_with('.')
                    && !p.ends_with('.');
                if !ok {
                    return Err(bad(
                        &f.id,
                        format!("{p:?} is not a lower-case domain suffix"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every service, in file order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Every known forwarder, in file order.
    pub fn forwarders(&self) -> &[Forwarder] {
        &self.forwarders
    }

    /// The known forwarder `name` (a PTR name, `d=` or MAIL FROM domain) belongs to.
    pub fn forwarder_by_name(&self, name: &str) -> Option<&Forwarder> {
        self.forwarders.iter().find(|f| f.matches(name))
    }

    /// The service with this id or alias (case-insensitive), or whose name is this.
    pub fn get(&self, key: &str) -> Option<&Service> {
        let key = key.trim();
        self.services.iter().find(|s| {
            s.id.eq_ignore_ascii_case(key)
                || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(key))
                || s.name.eq_ignore_ascii_case(key)
        })
    }

    /// The service an SPF `include:` target belongs to.
    pub fn by_spf_include(&self, include: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.spf_include_matches(include))
    }

    /// The service a reverse-DNS (PTR) name belongs to.
    pub fn by_ptr_name(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.ptr_matches(name))
    }

    /// The service whose default DKIM signing domain `d` is.
    pub fn by_dkim_domain(&self, d: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.dkim_domain_matches(d))
    }

    /// The service a DKIM CNAME target belongs to.
    pub fn by_dkim_cname_target(&self, target: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.dkim_cname_matches(target))
    }
}

fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn any_matches(patterns: &[String], name: &str) -> bool {
    let name = normalise(name);
    patterns.iter().any(|p| glob(p.as_bytes(), name.as_bytes()))
}

/// `*` matches any run of bytes (also empty); everything else matches itself. Iterative
/// with one backtrack point, so linear in practice and never recursive.
pub(crate) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_file_is_valid_and_names_a_source_for_every_service() {
        let c = Catalogue::parse(BUILTIN).expect("data/services.toml");
        assert!(c.services().len() >= 11);
        for id in [
            "amazon-ses",
            "google-workspace",
            "microsoft-365",
            "sendgrid",
            "mailgun",
            "postmark",
            "mailchimp",
            "sparkpost",
            "salesforce",
            "zendesk",
            "hubspot",
        ] {
            let s = c.get(id).unwrap_or_else(|| panic!("{id} missing"));
            assert!(s.source.starts_with("https://"));
        }
        assert_eq!(Catalogue::builtin(), &c);
    }

    #[test]
    fn lookups_by_include_ptr_dkim_and_cname() {
        let c = Catalogue::builtin();
        assert_eq!(c.get("Office365").unwrap().id, "microsoft-365");
        assert_eq!(c.get("Amazon SES").unwrap().id, "amazon-ses");
        assert_eq!(
            c.by_spf_include("_spf.google.com").unwrap().id,
            "google-workspace"
        );
        assert_eq!(
            c.by_spf_include("1234567.spf03.hubspotemail.net")
                .unwrap()
                .id,
            "hubspot"
        );
        assert_eq!(
            c.by_ptr_name("mail-sor-f41.google.com.").unwrap().id,
            "google-workspace"
        );
        assert!(c.by_ptr_name("notgoogle.com").is_none());
        assert_eq!(
            c.by_dkim_cname_target("abcdef123.dkim.amazonses.com")
                .unwrap()
                .id,
            "amazon-ses"
        );
        assert_eq!(
            c.by_dkim_cname_target("s1.domainkey.u123.wl045.sendgrid.net")
                .unwrap()
                .id,
            "sendgrid"
        );
        assert_eq!(c.by_dkim_domain("bounce.mcsv.net").unwrap().id, "mailchimp");
        assert_eq!(
            c.forwarder_by_name("mail-xyz.googlegroups.com").unwrap().id,
            "google-groups"
        );
        assert!(c.forwarder_by_name("example.com").is_none());
        assert!(c.get("nope").is_none());
    }

    #[test]
    fn invalid_catalogues_are_refused_with_the_reason() {
        let base = "[[service]]\nid = \"x\"\nname = \"X\"\nsource = \"https://x.example/\"\n\
                    spf_includes = [\"x.example\"]\nmail_from = \"author-domain\"\ndkim_records = \"txt\"\n";
        assert!(Catalogue::parse(base).is_ok());
        for (bad, why) in [
            (base.replace("https://", "http://"), "source"),
            (base.replace("id = \"x\"", "id = \"X Y\""), "id"),
            (format!("{base}color = 1\n"), "unknown field"),
            (base.replace("\"x.example\"]", "\"X.example\"]"), "pattern"),
            (
                format!("{base}{}", base.replace("name = \"X\"", "name = \"Y\"")),
                "two services",
            ),
            (
                base.replace("author-domain", "custom-subdomain"),
                "mail_from_label",
            ),
        ] {
            let e = Catalogue::parse(&bad).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn glob_patterns() {
        assert!(glob(b"*.dkim.amazonses.com", b"x.dkim.amazonses.com"));
        assert!(!glob(b"*.dkim.amazonses.com", b"dkim.amazonses.com"));
        assert!(glob(b"em*", b"em1234"));
        assert!(glob(b"*", b""));
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(!glob(b"a*b*c", b"axxbyy"));
        assert!(glob(
            b"selector1-*._domainkey.*.onmicrosoft.com",
            b"selector1-example-com._domainkey.contoso.onmicrosoft.com"
        ));
    }
}
