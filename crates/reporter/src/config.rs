//! The reporting configuration (TOML; `examples/reports.toml` documents every key).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;

/// Everything `dmarc report send` needs to know that the store and DNS do not say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Who we are, in the reports.
    pub organization: Organization,
    /// Aggregate reports.
    #[serde(default)]
    pub aggregate: AggregateOptions,
    /// Failure reports (off unless `enabled`).
    #[serde(default)]
    pub failure: FailureOptions,
    /// Signing the report messages.
    pub dkim: Option<DkimOptions>,
    /// How messages leave: an SMTP relay or a sendmail command.
    #[serde(default)]
    pub transport: TransportOptions,
    /// Retries, rate limits, suppression, exclusions.
    #[serde(default)]
    pub delivery: DeliveryOptions,
}

/// `[organization]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// `<org_name>`.
    pub name: String,
    /// `<email>`: the contact address in the report, and the From of report messages.
    pub email: String,
    /// `<extra_contact_info>` (a URL or more addresses).
    pub extra_contact_info: Option<String>,
    /// The Mail Receiver's domain: the `Submitter:` of the Subject and the first part of
    /// attachment file names. Default: the domain of `email`.
    pub receiver: Option<String>,
    /// The envelope sender (RFC5321.MailFrom) of report messages, an address whose
    /// bounces come back to us. Default: `email`.
    pub envelope_sender: Option<String>,
}

impl Organization {
    /// The receiver domain (see [`Organization::receiver`]).
    pub fn receiver_domain(&self) -> String {
        match &self.receiver {
            Some(r) => r.trim().trim_end_matches('.').to_ascii_lowercase(),
            None => self
                .email
                .rsplit_once('@')
                .map(|(_, d)| d.trim().trim_end_matches('.').to_ascii_lowercase())
                .unwrap_or_default(),
        }
    }

    /// The envelope sender.
    pub fn envelope_sender(&self) -> &str {
        self.envelope_sender.as_deref().unwrap_or(&self.email)
    }
}

/// The XML format of aggregate reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XmlFormat {
    /// RFC 9990 (the default).
    #[default]
    Rfc9990,
    /// RFC 7489 Appendix C, for report consumers that want the old format.
    Rfc7489,
}

/// `[aggregate]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregateOptions {
    /// `rfc9990` or `rfc7489`.
    pub format: XmlFormat,
    /// Honour a record's `ri=` when it asks for reports more often than daily (periods of
    /// whole hours dividing the UTC day, never under an hour). Default false: one report
    /// per UTC day.
    pub honour_ri: bool,
    /// A period is reported once it ended this many seconds ago (observations flushed late
    /// by a milter still count). Default 900.
    pub close_delay: i64,
    /// `<discovery_method>`: how the receiver found policies, `treewalk` (RFC 9989, the
    /// default) or `psl` (RFC 7489).
    pub discovery_method: String,
    /// Largest report message accepted for sending, bytes (the XML is not split).
    /// Default 10 MiB.
    pub max_message_size: u64,
}

impl Default for AggregateOptions {
    fn default() -> Self {
        AggregateOptions {
            format: XmlFormat::Rfc9990,
            honour_ri: false,
            close_delay: 900,
            discovery_method: "treewalk".to_owned(),
            max_message_size: 10 << 20,
        }
    }
}

/// `[failure]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailureOptions {
    /// Failure reports are made only when true (they carry header fields of other
    /// people's mail).
    pub enabled: bool,
    /// At most this many failure reports per policy domain per hour. Default 10.
    pub per_domain_per_hour: u64,
    /// Redact the local parts of addresses in the copied header fields (RFC 9991 privacy
    /// considerations). Default true.
    pub redact_local_parts: bool,
    /// Header fields copied besides those a failure report needs (trace, authentication,
    /// From, To, Subject, Date, Message-ID ...: `failure::DEFAULT_FIELDS`); `"*"` copies
    /// every field. Default none.
    pub extra_header_fields: Vec<String>,
    /// Write `http`/`https` URIs in the copied fields as `hxxp`/`hxxps` (RFC 9991 §7.3).
    /// Default true.
    pub defang_uris: bool,
    /// A candidate older than this many seconds when a run finds it is dropped, not
    /// reported (failure reports are about fresh failures). Default 1 day.
    pub max_age: i64,
    /// Like incidents are merged into one report (RFC 9991's Denial of Service section: the same failure,
    /// `Auth-Failure`, `Identity-Alignment`, `Delivery-Result`, failed signature and
    /// Author Domain, from the same source IP about the same policy domain): a
    /// candidate waits this many seconds after its arrival, and the report about it
    /// counts in `Incidents` every like one that arrived in that time. Default 0: every
    /// failure is reported on its own, at the next run.
    pub merge_window: i64,
    /// Add `DKIM-Canonicalized-Header` (RFC 6591 §3.2; OPTIONAL in RFC 9991 §4 when a
    /// DKIM signature of an aligned identifier failed): the base64 of the data that
    /// signature covers, as our verifier hashed it, so that the signer can see what
    /// changed. It holds the signed fields as they were, *not redacted*. Default false.
    /// (`DKIM-Canonicalized-Body` is never sent: a candidate does not keep the body.)
    pub dkim_canonicalized_header: bool,
}

impl Default for FailureOptions {
    fn default() -> Self {
        FailureOptions {
            enabled: false,
            per_domain_per_hour: 10,
            redact_local_parts: true,
            extra_header_fields: Vec::new(),
            defang_uris: true,
            max_age: 86_400,
            merge_window: 0,
            dkim_canonicalized_header: false,
        }
    }
}

/// `[dkim]`: report messages are signed with the project's signer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimOptions {
    /// `d=`: should align with the From domain (RFC 9990 asks report mail to pass DMARC).
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// The private key, PEM (PKCS#8 RSA or Ed25519, as `dmarc dkim keygen` writes).
    pub key: PathBuf,
}

/// STARTTLS use on the relay connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// STARTTLS, and fail when the relay does not offer it (the default).
    #[default]
    Required,
    /// STARTTLS when offered.
    Opportunistic,
    /// Plain SMTP (a relay on loopback).
    None,
}

/// `[transport]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum TransportOptions {
    /// An SMTP relay.
    Smtp {
        /// Host name (also the TLS name).
        host: String,
        /// Port. Default 587.
        #[serde(default = "default_port")]
        port: u16,
        /// STARTTLS: `required` (default), `opportunistic` or `none`.
        #[serde(default)]
        starttls: StartTls,
        /// A PEM file of CA certificates trusted for the relay's certificate besides the
        /// system's (a relay with a certificate from a private CA).
        ca_file: Option<PathBuf>,
        /// SMTP AUTH user name.
        username: Option<String>,
        /// A file holding the SMTP AUTH password (first line).
        password_file: Option<PathBuf>,
        /// Seconds to wait for the relay. Default 60.
        #[serde(default = "default_timeout")]
        timeout: u64,
    },
    /// A local sendmail-compatible command (`sendmail -i -f SENDER -- RCPT`).
    Sendmail {
        /// The command. Default `/usr/sbin/sendmail`.
        #[serde(default = "default_sendmail")]
        command: PathBuf,
    },
}

fn default_port() -> u16 {
    587
}
fn default_timeout() -> u64 {
    60
}
fn default_sendmail() -> PathBuf {
    PathBuf::from("/usr/sbin/sendmail")
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions::Sendmail {
            command: default_sendmail(),
        }
    }
}

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryOptions {
    /// Attempts before a temporarily failing destination fails for good. Default 8.
    pub max_attempts: u64,
    /// The first retry waits this long, seconds; each next one twice as long. Default 900.
    pub retry_after: i64,
    /// Longest wait between retries, seconds. Default 6 hours.
    pub max_retry_after: i64,
    /// At most this many report messages to one destination address per hour; more are
    /// deferred. Default 20.
    pub per_destination_per_hour: u64,
    /// Permanent failures (bounces) in a row that suppress a destination. Default 3.
    pub bounces_to_suppress: u64,
    /// How long a bouncing destination is suppressed, seconds. Default 7 days.
    pub suppress_for: i64,
    /// Destination domains never sent to (and their subdomains).
    pub exclude_domains: Vec<String>,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            max_attempts: 8,
            retry_after: 900,
            max_retry_after: 6 * 3600,
            per_destination_per_hour: 20,
            bounces_to_suppress: 3,
            suppress_for: 7 * 86_400,
            exclude_domains: Vec::new(),
        }
    }
}

impl DeliveryOptions {
    /// The wait before attempt `attempts + 1` after `attempts` failed ones.
    pub fn backoff(&self, attempts: u64) -> i64 {
        let shift = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(30);
        self.retry_after
            .saturating_mul(1i64 << shift)
            .min(self.max_retry_after)
            .max(1)
    }

    /// True when `domain` (lower-case) is excluded.
    pub fn is_excluded(&self, domain: &str) -> bool {
        self.exclude_domains.iter().any(|e| {
            let e = e.trim().trim_end_matches('.').to_ascii_lowercase();
            domain == e || domain.ends_with(&format!(".{e}"))
        })
    }
}

impl Config {
    /// A configuration with the defaults and this organisation.
    pub fn new(name: &str, email: &str) -> Config {
        Config {
            organization: Organization {
                name: name.to_owned(),
                email: email.to_owned(),
                extra_contact_info: None,
                receiver: None,
                envelope_sender: None,
            },
            aggregate: AggregateOptions::default(),
            failure: FailureOptions::default(),
            dkim: None,
            transport: TransportOptions::default(),
            delivery: DeliveryOptions::default(),
        }
    }

    /// Parses a TOML configuration.
    pub fn parse(text: &str) -> Result<Config, Error> {
        let c: Config = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        c.check()?;
        Ok(c)
    }

    /// Reads and parses a TOML configuration file.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), Error> {
        let o = &self.organization;
        if o.name.trim().is_empty() {
            return Err(Error::Config("organization.name is empty".into()));
        }
        for (what, addr) in [
            ("organization.email", o.email.as_str()),
            ("organization.envelope_sender", o.envelope_sender()),
        ] {
            if !is_address(addr) {
                return Err(Error::Config(format!(
                    "{what} {addr:?} is not a mail address (local@domain)"
                )));
            }
        }
        if o.receiver_domain().is_empty() {
            return Err(Error::Config("organization.receiver is empty".into()));
        }
        if !matches!(self.aggregate.discovery_method.as_str(), "treewalk" | "psl") {
            return Err(Error::Config(format!(
                "aggregate.discovery_method {:?}: expected \"treewalk\" or \"psl\"",
                self.aggregate.discovery_method
            )));
        }
        if self.failure.max_age <= 0 {
            return Err(Error::Config("failure.max_age must be positive".into()));
        }
        if self.failure.merge_window < 0 || self.failure.merge_window >= self.failure.max_age {
            return Err(Error::Config(
                "failure.merge_window must be at least 0 and less than failure.max_age".into(),
            ));
        }
        if self.aggregate.close_delay < 0 {
            return Err(Error::Config("aggregate.close_delay is negative".into()));
        }
        let d = &self.delivery;
        if d.max_attempts == 0 {
            return Err(Error::Config(
                "delivery.max_attempts must be at least 1".into(),
            ));
        }
        if d.retry_after <= 0 || d.max_retry_after <= 0 || d.suppress_for < 0 {
            return Err(Error::Config(
                "delivery.retry_after and max_retry_after must be positive, suppress_for not negative"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// A plain check that `addr` looks like `local@domain` (no spaces, no angle brackets).
pub(crate) fn is_address(addr: &str) -> bool {
    match addr.rsplit_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !addr
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b"<>\",;".contains(&b) || b < 0x20)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example_and_rejects_mistakes() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/reports.toml"
        ))
        .expect("examples/reports.toml");
        let c = Config::parse(&text).expect("the example parses");
        assert_eq!(c.organization.receiver_domain(), "mx.example.net");
        assert!(matches!(
            c.transport,
            TransportOptions::Smtp { port: 587, .. }
        ));
        assert!(c.delivery.is_excluded("mail.example.invalid"));
        assert!(!c.delivery.is_excluded("example.com"));

        let bad = text.replace(
            "email = \"dmarc-reports@example.net\"",
            "email = \"nobody\"",
        );
        assert!(
            Config::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("not a mail address")
        );
        let bad = format!("{text}\n[surprise]\nx = 1\n");
        assert!(Config::parse(&bad).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let d = DeliveryOptions::default();
        assert_eq!(d.backoff(1), 900);
        assert_eq!(d.backoff(2), 1800);
        assert_eq!(d.backoff(3), 3600);
        assert_eq!(d.backoff(10), 6 * 3600);
    }
}
