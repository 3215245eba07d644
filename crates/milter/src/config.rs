//! The milter's configuration: one TOML-backed struct, [`MilterConfig`], whose every field
//! has a default (`examples/milter.toml` lists them all), overridable from the command
//! line; then [`MilterConfig::validate`] turns it into [`Settings`], with every value
//! checked and parsed, or says what is wrong and where.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dmarc_proto::name::{self, DomainName, NameRules};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::codec::SmtpReply;
use crate::filter::HeaderField;
use crate::listen::ListenAddr;
use crate::server::ServerSettings;
use crate::session::SessionLimits;

/// The largest configuration file read.
const MAX_CONFIG_FILE: u64 = 1 << 20;

/// The configuration as written in the file. See `examples/milter.toml` for every
/// option with its default and meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MilterConfig {
    /// Where to listen (Postfix's or Sendmail's spelling). Default `inet:127.0.0.1:8893`.
    pub listen: Vec<ListenAddr>,
    /// The authserv-id of the Authentication-Results field; empty: this host's name.
    pub authserv_id: String,
    /// `enforce` (reject and quarantine as the domain owner asks) or `monitor` (never
    /// reject, quarantine or tempfail; only add Authentication-Results). Default
    /// `enforce`.
    pub mode: Mode,
    /// `rfc9989` (DNS tree walk) or `rfc7489` (Public Suffix List, `pct`). Default
    /// `rfc9989`.
    pub spec: SpecChoice,
    /// Text of the `550 5.7.1` reply for `p=reject`; `{domain}` is the Author Domain.
    pub reject_text: String,
    /// `p=quarantine`: `hold` (the MTA's quarantine, Postfix's hold queue), `header`
    /// (add `quarantine_header` for the delivery agent) or `accept`. Default `header`.
    pub quarantine: QuarantineChoice,
    /// The field added with `quarantine = "header"`.
    pub quarantine_header: String,
    /// The reason given with `quarantine = "hold"`; `{domain}` is the Author Domain.
    pub hold_reason: String,
    /// A temporary DNS failure while evaluating DMARC: `accept` or `tempfail` (`451
    /// 4.7.5`). Default `accept`.
    pub dns_failure: DnsFailureChoice,
    /// Text of the `451 4.7.5` reply; `{domain}` is the Author Domain.
    pub tempfail_text: String,
    /// A message without exactly one From field with exactly one address: `evaluate`
    /// (every Author Domain evaluated, the strictest verdict; several From fields or an
    /// unreadable one a DMARC failure of the domains they name; refused when they name
    /// none) or `reject` (`550 5.7.1` at end of header). Default `evaluate`.
    pub bad_from: BadFromChoice,
    /// Text of the reply for `bad_from = "reject"`.
    pub bad_from_text: String,
    /// Also add a Received-SPF field (RFC 7208 §9.1). Default false.
    pub received_spf: bool,
    /// The largest message verified, in bytes (the message is held in memory until its
    /// end). Default 10 MiB.
    pub max_message_size: u64,
    /// A larger message: `accept` (unverified), `tempfail` or `reject`. Default `accept`.
    pub oversize: OversizeChoice,
    /// The longest a message's verification may take, in seconds; then it is treated as
    /// a temporary DNS failure. Default 30.
    pub message_timeout: f64,
    /// The report store the counts of observations are written to: an SQLite file path
    /// (`sqlite:PATH` too) or a `postgres://` URL. Empty: messages are not counted.
    /// Default empty.
    pub db: String,
    /// How the counts of observations are kept and written.
    pub counting: CountingConfig,
    /// Failure-report candidates (RFC 9991).
    pub failure: FailureConfig,
    /// Who and what is not checked.
    pub exempt: ExemptConfig,
    /// ARC (RFC 8617): verification and the trusted sealers.
    pub arc: ArcConfig,
    /// DNS.
    pub dns: DnsConfig,
    /// Connections and limits.
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
}

/// `[exempt]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExemptConfig {
    /// Client networks accepted at connect without any check. Default loopback
    /// (`127.0.0.0/8`, `::1/128`).
    pub client_ips: Vec<String>,
    /// Accept mail from SASL-authenticated clients (`{auth_authen}` set) without checks.
    /// Default true.
    pub authenticated: bool,
    /// Author Domains (the From field's domain) whose mail is accepted without checks.
    /// Default none.
    pub sender_domains: Vec<String>,
    /// Messages whose every recipient is in one of these domains are accepted without
    /// checks. Default none.
    pub recipient_domains: Vec<String>,
    /// Authentication-Results fields from these authserv-ids (upstream hosts inside
    /// the trust boundary that remove forgeries of their own id, RFC 8601 §5) are read;
    /// a message carrying one with a `dmarc` result is not enforced again (only
    /// Authentication-Results is added). Default none.
    pub trusted_authserv_ids: Vec<String>,
}

/// `[arc]`: ARC chain verification (RFC 8617) and the local policy of trusted sealers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArcConfig {
    /// Verify each message's ARC chain (`arc=` in Authentication-Results, the ARC keys
    /// asked with the DKIM keys). False: nothing of ARC runs. Default true.
    pub enabled: bool,
    /// The ARC sealers (the `d=` of the newest ARC-Seal) trusted as forwarders: a message
    /// failing DMARC whose chain passes, sealed by one of these, whose sealer's
    /// ARC-Authentication-Results shows an SPF or DKIM pass aligned with the From domain,
    /// is accepted (reported with the policy-override reason `trusted_forwarder`).
    /// Default none (no override).
    pub trusted_sealers: Vec<String>,
}

impl Default for ArcConfig {
    fn default() -> Self {
        ArcConfig {
            enabled: true,
            trusted_sealers: Vec::new(),
        }
    }
}

/// `[dns]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Answer every question from this RFC 1035 zone file (tests, trials); empty: ask
    /// name servers.
    pub zone: String,
    /// Recursive name servers (`IP` or `IP:PORT`, IPv6 in brackets with a port); empty:
    /// those of `/etc/resolv.conf`.
    pub nameservers: Vec<String>,
    /// Seconds to wait for one DNS answer. Default 2.
    pub timeout: f64,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Threads that serve the connections and run the checks (the hashing and the RSA
    /// verifications included); 0: one per CPU. Read at start only. Default 1.
    pub workers: usize,
    /// Milter connections served at once. Default 256.
    pub max_connections: usize,
    /// The largest milter frame accepted, in bytes. Default 1048576.
    pub max_frame: usize,
    /// Seconds to wait for the MTA's next command. Default 600.
    pub read_timeout: f64,
    /// Seconds a write to the MTA may take. Default 60.
    pub write_timeout: f64,
    /// Seconds between progress replies while a message is judged. Default 10.
    pub progress_interval: f64,
    /// Seconds the messages in progress may take to finish at shutdown. Default 30.
    pub shutdown_grace: f64,
    /// Permissions of Unix sockets, octal. Default `0660`.
    pub socket_mode: String,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `stderr` or `syslog`. Default `stderr`.
    pub destination: LogDestination,
    /// The syslog facility. Default `mail`.
    pub facility: String,
    /// The syslog socket. Default `/dev/log`.
    pub socket: String,
    /// The syslog tag. Default `dmarc-milter`.
    pub tag: String,
}

/// `[counting]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountingConfig {
    /// Seconds between two writes of the counts to the store. Default 5.
    pub flush_interval: f64,
    /// Distinct rows (aggregate-report keys) counted in memory before the counts are
    /// written early. Default 10000.
    pub max_rows: usize,
}

impl Default for CountingConfig {
    fn default() -> Self {
        CountingConfig {
            flush_interval: 5.0,
            max_rows: 10_000,
        }
    }
}

/// `[failure]`: failure-report candidates queued in the store (`db`) for `dmarc report
/// send`, for messages whose policy asks for failure reports (`ruf=`, `fo=`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailureConfig {
    /// Queue candidates (they hold the header fields of the failed messages). Needs
    /// `db`. Default false.
    pub queue: bool,
    /// Candidates held in memory between two writes; more are dropped (and counted in
    /// the log). Default 1000.
    pub max_pending: usize,
}

impl Default for FailureConfig {
    fn default() -> Self {
        FailureConfig {
            queue: false,
            max_pending: 1000,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `HOST:PORT` of an HTTP listener serving `/metrics` in the Prometheus text
    /// format; empty: off. Default off.
    pub listen: String,
}

macro_rules! choice {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// The word used in the configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice! {
    /// Enforce the policy or only observe.
    Mode {
        /// Reject and quarantine as the domain owner asks.
        Enforce = "enforce",
        /// Never refuse or hold; add Authentication-Results only.
        Monitor = "monitor",
    }
}

choice! {
    /// The DMARC specification.
    SpecChoice {
        /// RFC 9989.
        Rfc9989 = "rfc9989",
        /// RFC 7489.
        Rfc7489 = "rfc7489",
    }
}

choice! {
    /// What `p=quarantine` does.
    QuarantineChoice {
        /// The MTA's quarantine (Postfix: the hold queue).
        Hold = "hold",
        /// A header field for the delivery agent.
        Header = "header",
        /// Deliver normally.
        Accept = "accept",
    }
}

choice! {
    /// What a temporary DNS failure does.
    DnsFailureChoice {
        /// Deliver, with `dmarc=temperror`.
        Accept = "accept",
        /// Answer 451 4.7.5.
        TempFail = "tempfail",
    }
}

choice! {
    /// What a bad From field does.
    BadFromChoice {
        /// Evaluate what can be found.
        Evaluate = "evaluate",
        /// Refuse the message.
        Reject = "reject",
    }
}

choice! {
    /// What a message over the size limit gets.
    OversizeChoice {
        /// Delivered, unverified.
        Accept = "accept",
        /// 452 4.3.4.
        TempFail = "tempfail",
        /// 552 5.3.4.
        Reject = "reject",
    }
}

choice! {
    /// Where log lines go.
    LogDestination {
        /// Standard error (the journal, under systemd).
        Stderr = "stderr",
        /// The syslog socket.
        Syslog = "syslog",
    }
}

impl Default for MilterConfig {
    fn default() -> Self {
        MilterConfig {
            listen: vec![ListenAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 8893,
            }],
            authserv_id: String::new(),
            mode: Mode::Enforce,
            spec: SpecChoice::Rfc9989,
            reject_text: "Rejected by DMARC policy for {domain}".into(),
            quarantine: QuarantineChoice::Header,
            quarantine_header: "X-Spam-Flag: YES".into(),
            hold_reason: "DMARC policy of {domain} asks for quarantine".into(),
            dns_failure: DnsFailureChoice::Accept,
            tempfail_text: "Temporary failure evaluating the DMARC policy of {domain}; try again later".into(),
            bad_from: BadFromChoice::Evaluate,
            bad_from_text: "Message must have exactly one From field with exactly one address (RFC 5322 section 3.6)".into(),
            received_spf: false,
            max_message_size: 10 * 1024 * 1024,
            oversize: OversizeChoice::Accept,
            message_timeout: 30.0,
            db: String::new(),
            counting: CountingConfig::default(),
            failure: FailureConfig::default(),
            exempt: ExemptConfig::default(),
            arc: ArcConfig::default(),
            dns: DnsConfig::default(),
            server: ServerConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for ExemptConfig {
    fn default() -> Self {
        ExemptConfig {
            client_ips: vec!["127.0.0.0/8".into(), "::1/128".into()],
            authenticated: true,
            sender_domains: Vec::new(),
            recipient_domains: Vec::new(),
            trusted_authserv_ids: Vec::new(),
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            zone: String::new(),
            nameservers: Vec::new(),
            timeout: 2.0,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let s = ServerSettings::default();
        ServerConfig {
            workers: 1,
            max_connections: s.max_connections,
            max_frame: s.max_frame,
            read_timeout: s.read_timeout.as_secs_f64(),
            write_timeout: s.write_timeout.as_secs_f64(),
            progress_interval: s.progress_interval.as_secs_f64(),
            shutdown_grace: s.shutdown_grace.as_secs_f64(),
            socket_mode: format!("{:04o}", s.socket_mode),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            destination: LogDestination::Stderr,
            facility: "mail".into(),
            socket: "/dev/log".into(),
            tag: "dmarc-milter".into(),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than 1 MiB.
    TooLarge(PathBuf),
    /// The TOML is malformed or has an unknown option or a wrong type.
    Parse {
        /// Where the text came from (the file, or "the command line").
        origin: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// An option given on the command line is not `KEY=VALUE`.
    Override(String),
    /// A value is not acceptable.
    Invalid {
        /// The option (`exempt.client_ips`).
        option: &'static str,
        /// Why.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, .. } => write!(f, "cannot read {}", path.display()),
            ConfigError::TooLarge(p) => write!(f, "{} is larger than 1 MiB", p.display()),
            ConfigError::Parse { origin, message } => write!(f, "{origin}: {}", message.trim_end()),
            ConfigError::Override(o) => {
                write!(
                    f,
                    "option {o:?} is not KEY=VALUE (for example exempt.authenticated=false)"
                )
            }
            ConfigError::Invalid { option, message } => write!(f, "{option}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One command-line setting: a dotted key (`dns.timeout`) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    key: String,
    value: toml::Value,
}

impl Override {
    /// A setting from `KEY=VALUE`: VALUE is read as a TOML value (`false`, `5`,
    /// `["a", "b"]`, `"text"`), or else taken as a string.
    pub fn parse(arg: &str) -> Result<Override, ConfigError> {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| ConfigError::Override(arg.to_owned()))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError::Override(arg.to_owned()));
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_owned()));
        Ok(Override {
            key: key.to_owned(),
            value,
        })
    }

    /// A setting with a value already typed.
    pub fn new(key: &str, value: impl Into<toml::Value>) -> Override {
        Override {
            key: key.to_owned(),
            value: value.into(),
        }
    }

    fn apply(&self, table: &mut toml::Table) -> Result<(), ConfigError> {
        let mut parts: Vec<&str> = self.key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut t = table;
        for p in parts {
            let entry = t
                .entry(p.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            t = entry.as_table_mut().ok_or_else(|| ConfigError::Invalid {
                option: "command line",
                message: format!("{} is not a table", self.key),
            })?;
        }
        t.insert(last.to_owned(), self.value.clone());
        Ok(())
    }
}

impl MilterConfig {
    /// Reads `path` (when given; otherwise starts from the defaults) and applies the
    /// command-line settings over it.
    pub fn load(path: Option<&Path>, overrides: &[Override]) -> Result<MilterConfig, ConfigError> {
        let (mut table, origin) = match path {
            Some(p) => {
                let text = read_bounded(p)?;
                let parse_error = |e: toml::de::Error| ConfigError::Parse {
                    origin: p.display().to_string(),
                    message: e.to_string(),
                };
                // The file alone first, so that an error in it comes with its line.
                toml::from_str::<MilterConfig>(&text).map_err(parse_error)?;
                let table: toml::Table = toml::from_str(&text).map_err(parse_error)?;
                (table, p.display().to_string())
            }
            None => (toml::Table::new(), "the defaults".to_owned()),
        };
        for o in overrides {
            o.apply(&mut table)?;
        }
        let origin = if overrides.is_empty() {
            origin
        } else {
            format!("{origin} with the command-line options")
        };
        MilterConfig::deserialize(table).map_err(|e| ConfigError::Parse {
            origin,
            message: e.to_string(),
        })
    }

    /// Checks every value and builds the settings the daemon runs with. `hostname` is
    /// the authserv-id when none is configured.
    pub fn validate(&self, hostname: &str) -> Result<Settings, ConfigError> {
        let invalid =
            |option: &'static str, message: String| ConfigError::Invalid { option, message };
        if self.listen.is_empty() {
            return Err(invalid("listen", "at least one address is needed".into()));
        }
        let authserv_id = if self.authserv_id.trim().is_empty() {
            hostname.trim().to_owned()
        } else {
            self.authserv_id.trim().to_owned()
        };
        if authserv_id.is_empty()
            || !authserv_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(invalid(
                "authserv_id",
                format!("{authserv_id:?} is not a host or domain name"),
            ));
        }
        let reply = |option: &'static str, code: u16, enhanced: &str, text: &str| {
            let sample = text.replace("{domain}", "example.org");
            SmtpReply::new(code, Some(enhanced), &sample)
                .map(|_| ReplyTemplate {
                    code,
                    enhanced: enhanced.to_owned(),
                    text: text.to_owned(),
                })
                .map_err(|e| invalid(option, e.to_string()))
        };
        let reject = reply("reject_text", 550, "5.7.1", &self.reject_text)?;
        let tempfail = reply("tempfail_text", 451, "4.7.5", &self.tempfail_text)?;
        let bad_from = reply("bad_from_text", 550, "5.7.1", &self.bad_from_text)?;
        let quarantine_header = {
            let (name, value) = self.quarantine_header.split_once(':').ok_or_else(|| {
                invalid(
                    "quarantine_header",
                    format!("{:?} is not \"Name: value\"", self.quarantine_header),
                )
            })?;
            HeaderField::new(name.trim(), value.trim())
                .map_err(|e| invalid("quarantine_header", e.to_string()))?
        };
        if self.hold_reason.chars().any(char::is_control) || self.hold_reason.trim().is_empty() {
            return Err(invalid(
                "hold_reason",
                "must be a non-empty line of text".into(),
            ));
        }
        if self.max_message_size < 1024 {
            return Err(invalid(
                "max_message_size",
                format!(
                    "{} bytes is too small (at least 1024)",
                    self.max_message_size
                ),
            ));
        }
        let seconds = |option: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(invalid(
                    option,
                    format!("{v}: expected seconds greater than 0 and at most 86400"),
                ))
            }
        };
        let message_timeout = seconds("message_timeout", self.message_timeout)?;
        let client_ips = self
            .exempt
            .client_ips
            .iter()
            .map(|s| parse_net(s).map_err(|m| invalid("exempt.client_ips", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let domains = |option: &'static str, list: &[String]| {
            list.iter()
                .map(|d| {
                    // Normalised as the Author and MAIL FROM domains they are compared
                    // with (lower case, A-labels).
                    DomainName::new(d.trim().trim_end_matches('.'))
                        .map(|name| name.to_string())
                        .map_err(|e| invalid(option, format!("{d:?} is not a domain name: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let sender_domains = domains("exempt.sender_domains", &self.exempt.sender_domains)?;
        let recipient_domains =
            domains("exempt.recipient_domains", &self.exempt.recipient_domains)?;
        let arc = self.arc.validate()?;
        let dns_timeout = seconds("dns.timeout", self.dns.timeout)?;
        if !self.dns.zone.is_empty() && !self.dns.nameservers.is_empty() {
            return Err(invalid(
                "dns.zone",
                "a zone file and name servers exclude each other".into(),
            ));
        }
        let socket_mode = u32::from_str_radix(self.server.socket_mode.trim(), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                invalid(
                    "server.socket_mode",
                    format!(
                        "{:?} is not an octal mode such as 0660",
                        self.server.socket_mode
                    ),
                )
            })?;
        if self.server.workers > 1024 {
            return Err(invalid(
                "server.workers",
                "must be at most 1024 (0: one per CPU)".into(),
            ));
        }
        let workers = match self.server.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        };
        if self.server.max_connections == 0 {
            return Err(invalid(
                "server.max_connections",
                "must be at least 1".into(),
            ));
        }
        if self.server.max_frame < 65_536 + 1 {
            return Err(invalid(
                "server.max_frame",
                "must be more than 65536 (Postfix sends body chunks of 65535 bytes)".into(),
            ));
        }
        let server = ServerSettings {
            max_connections: self.server.max_connections,
            max_frame: self.server.max_frame,
            read_timeout: seconds("server.read_timeout", self.server.read_timeout)?,
            write_timeout: seconds("server.write_timeout", self.server.write_timeout)?,
            progress_interval: seconds("server.progress_interval", self.server.progress_interval)?,
            shutdown_grace: seconds("server.shutdown_grace", self.server.shutdown_grace)?,
            socket_mode,
            limits: SessionLimits::default(),
        };
        let facility = syslog_facility(&self.log.facility).ok_or_else(|| {
            invalid(
                "log.facility",
                format!(
                    "{:?} is not a syslog facility (mail, daemon, local0 ... local7, ...)",
                    self.log.facility
                ),
            )
        })?;
        if self.counting.max_rows == 0 {
            return Err(invalid("counting.max_rows", "must be at least 1".into()));
        }
        let counting = CountingSettings {
            flush_interval: seconds("counting.flush_interval", self.counting.flush_interval)?,
            max_rows: self.counting.max_rows,
        };
        let db = self.db.trim();
        if !db.is_empty() {
            dmarc_store::Location::parse(db).map_err(|e| invalid("db", e.to_string()))?;
        }
        if self.failure.queue && db.is_empty() {
            return Err(invalid(
                "failure.queue",
                "needs db: the candidates are queued in the store".into(),
            ));
        }
        if self.failure.max_pending == 0 {
            return Err(invalid("failure.max_pending", "must be at least 1".into()));
        }
        let metrics_listen = if self.metrics.listen.trim().is_empty() {
            None
        } else {
            Some(self.metrics.listen.trim().to_owned())
        };
        Ok(Settings {
            listen: self.listen.clone(),
            policy: Policy {
                authserv_id,
                mode: self.mode,
                spec: self.spec,
                reject,
                quarantine: self.quarantine,
                quarantine_header,
                hold_reason: self.hold_reason.clone(),
                dns_failure: self.dns_failure,
                tempfail,
                bad_from: self.bad_from,
                bad_from_reply: bad_from,
                received_spf: self.received_spf,
                max_message_size: self.max_message_size,
                oversize: self.oversize,
                message_timeout,
                exempt: Exemptions {
                    client_ips,
                    authenticated: self.exempt.authenticated,
                    sender_domains,
                    recipient_domains,
                    trusted_authserv_ids: self.exempt.trusted_authserv_ids.clone(),
                },
                arc,
            },
            dns: DnsSettings {
                zone: (!self.dns.zone.is_empty()).then(|| PathBuf::from(&self.dns.zone)),
                nameservers: self.dns.nameservers.clone(),
                timeout: dns_timeout,
            },
            server,
            workers,
            log: LogSettings {
                destination: self.log.destination,
                facility,
                socket: PathBuf::from(&self.log.socket),
                tag: self.log.tag.clone(),
            },
            metrics_listen,
            db: (!db.is_empty()).then(|| db.to_owned()),
            counting,
            failure: self.failure.clone(),
        })
    }
}

impl ArcConfig {
    /// The validated `[arc]`: every sealer a domain name (lower case, no trailing dot),
    /// and no trusted sealer with ARC turned off (the override needs the chain verified).
    fn validate(&self) -> Result<ArcPolicy, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            option: "arc.trusted_sealers",
            message,
        };
        let mut trusted_sealers: Vec<String> = Vec::new();
        for d in &self.trusted_sealers {
            let sealer = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if let Err(fault) = name::check(&sealer, NameRules::DKIM) {
                return Err(invalid(format!(
                    "{d:?} is not a domain name ({fault}; the d= of an ARC-Seal, such as \
                     lists.example.org)"
                )));
            }
            if !trusted_sealers.contains(&sealer) {
                trusted_sealers.push(sealer);
            }
        }
        if !self.enabled && !trusted_sealers.is_empty() {
            return Err(invalid(
                "trusted sealers need ARC verification: set arc.enabled = true, or empty the list"
                    .into(),
            ));
        }
        Ok(ArcPolicy {
            enabled: self.enabled,
            trusted_sealers,
        })
    }
}

fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_FILE + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(ConfigError::TooLarge(path.to_owned()));
    }
    Ok(text)
}

/// `192.0.2.0/24`, `2001:db8::/32`, or one address.
fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not an address or network (192.0.2.0/24, 2001:db8::/32)"))
}

/// The syslog facility number for a name.
fn syslog_facility(name: &str) -> Option<u8> {
    const NAMES: [&str; 24] = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name.trim()))
        .and_then(|i| u8::try_from(i).ok())
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen.
    pub listen: Vec<ListenAddr>,
    /// What to do with messages.
    pub policy: Policy,
    /// DNS.
    pub dns: DnsSettings,
    /// The server.
    pub server: ServerSettings,
    /// Threads of the runtime (`server.workers`, 0 resolved to the number of CPUs).
    pub workers: usize,
    /// Logging.
    pub log: LogSettings,
    /// The metrics listener, when on.
    pub metrics_listen: Option<String>,
    /// The report store the counts go to; `None`: not counted.
    pub db: Option<String>,
    /// How the counts are kept and written.
    pub counting: CountingSettings,
    /// Failure-report candidates.
    pub failure: FailureConfig,
}

/// `[counting]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountingSettings {
    /// Between two writes of the counts.
    pub flush_interval: Duration,
    /// Distinct rows before an early write.
    pub max_rows: usize,
}

/// What the milter does with messages (the validated part of [`MilterConfig`] the
/// handler reads).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Our authserv-id.
    pub authserv_id: String,
    /// Enforce or monitor.
    pub mode: Mode,
    /// RFC 9989 or RFC 7489.
    pub spec: SpecChoice,
    /// The reply for `p=reject`.
    pub reject: ReplyTemplate,
    /// What `p=quarantine` does.
    pub quarantine: QuarantineChoice,
    /// The field for `quarantine = "header"`.
    pub quarantine_header: HeaderField,
    /// The reason for `quarantine = "hold"`.
    pub hold_reason: String,
    /// Temporary DNS failures.
    pub dns_failure: DnsFailureChoice,
    /// The reply for a temporary failure.
    pub tempfail: ReplyTemplate,
    /// A bad From field.
    pub bad_from: BadFromChoice,
    /// The reply for a bad From field.
    pub bad_from_reply: ReplyTemplate,
    /// Add Received-SPF.
    pub received_spf: bool,
    /// The largest message verified.
    pub max_message_size: u64,
    /// What a larger one gets.
    pub oversize: OversizeChoice,
    /// The longest a verification may take.
    pub message_timeout: Duration,
    /// Exemptions.
    pub exempt: Exemptions,
    /// ARC.
    pub arc: ArcPolicy,
}

/// The validated `[arc]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcPolicy {
    /// Verify ARC chains.
    pub enabled: bool,
    /// Trusted sealers, lower case, without a trailing dot, each once.
    pub trusted_sealers: Vec<String>,
}

/// The validated `[exempt]`.
#[derive(Debug, Clone)]
pub struct Exemptions {
    /// Client networks.
    pub client_ips: Vec<IpNet>,
    /// SASL-authenticated clients.
    pub authenticated: bool,
    /// Author Domains, lower case.
    pub sender_domains: Vec<String>,
    /// Recipient domains, lower case.
    pub recipient_domains: Vec<String>,
    /// Trusted upstream authserv-ids.
    pub trusted_authserv_ids: Vec<String>,
}

impl Exemptions {
    /// True when `ip` is in an exempt network.
    pub fn client(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address counts as the IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.client_ips.iter().any(|n| n.contains(&ip))
    }
}

/// An SMTP reply with `{domain}` to fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTemplate {
    code: u16,
    enhanced: String,
    text: String,
}

impl ReplyTemplate {
    /// The reply for `domain`. Falls back to the text without the domain should the
    /// domain make it invalid (it cannot: Author Domains are A-labels).
    pub fn render(&self, domain: &str) -> SmtpReply {
        let text = self.text.replace("{domain}", domain);
        SmtpReply::new(self.code, Some(&self.enhanced), &text)
            .or_else(|_| {
                SmtpReply::new(
                    self.code,
                    Some(&self.enhanced),
                    &self.text.replace("{domain}", "the sender's domain"),
                )
            })
            .unwrap_or_else(|_| fallback_reply(self.code))
    }
}

fn fallback_reply(code: u16) -> SmtpReply {
    let (c, e, t) = if code >= 500 {
        (550, "5.7.1", "rejected")
    } else {
        (451, "4.7.5", "try again later")
    };
    SmtpReply::new(c, Some(e), t).unwrap_or_else(|_| fallback_reply(code))
}

/// The validated `[dns]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsSettings {
    /// A zone file to answer from.
    pub zone: Option<PathBuf>,
    /// Name servers to ask.
    pub nameservers: Vec<String>,
    /// Time per answer.
    pub timeout: Duration,
}

/// The validated `[log]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// Where.
    pub destination: LogDestination,
    /// Syslog facility number.
    pub facility: u8,
    /// Syslog socket.
    pub socket: PathBuf,
    /// Syslog tag.
    pub tag: String,
}

/// The names of the options, dotted (`exempt.client_ips`), in the order of the
/// defaults' TOML: what the example file must document.
pub fn option_names() -> Vec<String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => walk(&name, inner, out),
                _ => out.push(name),
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(toml::Value::Table(t)) = toml::Value::try_from(MilterConfig::default()) {
        walk("", &t, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let s = MilterConfig::default().validate("mx.example.org").unwrap();
        assert_eq!(s.policy.authserv_id, "mx.example.org");
        assert!(s.policy.exempt.client("127.0.0.1".parse().unwrap()));
        assert!(s.policy.exempt.client("::1".parse().unwrap()));
        assert!(s.policy.exempt.client("::ffff:127.0.0.2".parse().unwrap()));
        assert!(!s.policy.exempt.client("192.0.2.1".parse().unwrap()));
        assert_eq!(
            s.policy.reject.render("example.org").to_wire(),
            "550 5.7.1 Rejected by DMARC policy for example.org"
        );
        assert_eq!(s.server.socket_mode, 0o660);
    }

    #[test]
    fn failure_queue_needs_the_store() {
        let load = |o: &[&str]| {
            let o: Vec<Override> = o.iter().map(|x| Override::parse(x).unwrap()).collect();
            MilterConfig::load(None, &o).unwrap().validate("mx")
        };
        let e = load(&["failure.queue=true"]).unwrap_err().to_string();
        assert!(
            e.starts_with("failure.queue:") && e.contains("needs db"),
            "{e}"
        );
        let s = load(&["failure.queue=true", "db=\"/tmp/x.sqlite3\""]).unwrap();
        assert!(s.failure.queue);
        assert_eq!(s.failure.max_pending, 1000);
        assert!(load(&["failure.max_pending=0"]).is_err());
        assert!(
            !MilterConfig::default()
                .validate("mx")
                .unwrap()
                .failure
                .queue
        );
    }

    #[test]
    fn overrides_are_typed_and_dotted() {
        let o = [
            Override::parse("exempt.authenticated=false").unwrap(),
            Override::parse("dns.timeout=0.5").unwrap(),
            Override::parse("mode=monitor").unwrap(),
            Override::parse("listen=[\"unix:/tmp/x.sock\"]").unwrap(),
            Override::new("authserv_id", "mx.test"),
        ];
        let c = MilterConfig::load(None, &o).unwrap();
        assert!(!c.exempt.authenticated);
        assert_eq!(c.dns.timeout, 0.5);
        assert_eq!(c.mode, Mode::Monitor);
        assert_eq!(c.listen, [ListenAddr::Unix("/tmp/x.sock".into())]);
        assert_eq!(c.authserv_id, "mx.test");
        assert!(Override::parse("novalue").is_err());
        assert!(Override::parse("a..b=1").is_err());
    }

    #[test]
    fn unknown_options_and_bad_values_are_named() {
        let e = MilterConfig::load(None, &[Override::parse("exempt.client_ip=[]").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `client_ip`"), "{e}");
        let e = MilterConfig::load(None, &[Override::parse("mode=loud").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `loud`"), "{e}");
        let bad = |key: &str, value: &str| {
            MilterConfig::load(None, &[Override::parse(&format!("{key}={value}")).unwrap()])
                .unwrap()
                .validate("mx")
                .unwrap_err()
                .to_string()
        };
        assert!(bad("exempt.client_ips", "[\"10.0.0.0/33\"]").starts_with("exempt.client_ips:"));
        assert!(bad("reject_text", "\"caf\u{e9}\"").starts_with("reject_text:"));
        assert!(bad("quarantine_header", "\"no colon\"").starts_with("quarantine_header:"));
        assert!(bad("dns.timeout", "0").starts_with("dns.timeout:"));
        assert!(bad("server.socket_mode", "\"999\"").starts_with("server.socket_mode:"));
        assert!(bad("log.facility", "\"mailx\"").starts_with("log.facility:"));
        assert!(bad("authserv_id", "\"a b\"").starts_with("authserv_id:"));
        assert!(bad("listen", "[]").starts_with("listen:"));
        let e = bad("exempt.sender_domains", "[\"a..example\"]");
        assert!(e.starts_with("exempt.sender_domains:"), "{e}");
        assert!(e.contains("empty label"), "{e}");
        let e = bad("arc.trusted_sealers", "[\"lists.exa mple.org\"]");
        assert!(e.starts_with("arc.trusted_sealers:"), "{e}");
        assert!(e.contains("characters other than"), "{e}");
    }

    #[test]
    fn exempt_domains_are_normalised_as_author_domains() {
        let o = [
            Override::parse("exempt.sender_domains=[\"B\u{fc}cher.Example.\"]").unwrap(),
            Override::parse("exempt.recipient_domains=[\"Example.NET\"]").unwrap(),
        ];
        let s = MilterConfig::load(None, &o)
            .unwrap()
            .validate("mx")
            .unwrap();
        assert_eq!(s.policy.exempt.sender_domains, ["xn--bcher-kva.example"]);
        assert_eq!(s.policy.exempt.recipient_domains, ["example.net"]);
    }

    #[test]
    fn workers_default_to_one_and_zero_means_one_per_cpu() {
        let load = |o: &[&str]| {
            let o: Vec<Override> = o.iter().map(|x| Override::parse(x).unwrap()).collect();
            MilterConfig::load(None, &o).unwrap().validate("mx")
        };
        assert_eq!(load(&[]).unwrap().workers, 1);
        assert_eq!(load(&["server.workers=3"]).unwrap().workers, 3);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(load(&["server.workers=0"]).unwrap().workers, cpus);
        let e = load(&["server.workers=5000"]).unwrap_err().to_string();
        assert!(e.starts_with("server.workers:"), "{e}");
    }

    #[test]
    fn option_names_cover_the_tables() {
        let names = option_names();
        assert!(names.contains(&"exempt.client_ips".to_owned()));
        assert!(names.contains(&"server.socket_mode".to_owned()));
        assert!(names.contains(&"listen".to_owned()));
    }
}
