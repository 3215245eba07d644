//! Where each message's outcome goes once it is decided: the log line, the metrics, and
//! the counter of observations ([`crate::counter`]). The handler hands every sink one
//! [`MessageRecord`] per message.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dmarc_receiver::{Action, Observation, Verdicts};

use crate::log::Logger;
use crate::metrics::Metrics;

/// Why a message was not verified, or not enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exemption {
    /// The SMTP client is SASL-authenticated (`{auth_authen}`).
    Authenticated,
    /// The Author Domain is listed in `exempt.sender_domains`.
    SenderDomain,
    /// Every recipient is in `exempt.recipient_domains`.
    RecipientDomains,
    /// The MTA gave no client IP address (a local submission).
    NoClientAddress,
    /// The client is in `exempt.client_ips` (counted at connect; no message is seen).
    ClientAddress,
}

impl Exemption {
    /// The word used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Exemption::Authenticated => "authenticated",
            Exemption::SenderDomain => "sender_domain",
            Exemption::RecipientDomains => "recipient_domains",
            Exemption::NoClientAddress => "no_client_address",
            Exemption::ClientAddress => "client_address",
        }
    }
}

/// One message's outcome, as every sink receives it.
#[derive(Debug)]
pub struct MessageRecord<'a> {
    /// The MTA's queue id (macro `i`), when it gave one.
    pub queue_id: Option<&'a str>,
    /// The client's IP address.
    pub client_ip: Option<IpAddr>,
    /// The client's host name as the MTA gave it.
    pub client_name: &'a str,
    /// HELO/EHLO.
    pub helo: &'a str,
    /// MAIL FROM (empty for the null reverse-path).
    pub mail_from: &'a str,
    /// The recipients (at most the first 100).
    pub recipients: &'a [String],
    /// The Author Domain, when one was found.
    pub from_domain: Option<&'a str>,
    /// The verdicts, when the message was verified.
    pub verdicts: Option<&'a Verdicts>,
    /// What was done.
    pub action: Action,
    /// Why the message was accepted without checks, when it was.
    pub exemption: Option<Exemption>,
    /// Why the action differs from the verdict's, or why there is no verdict (for a
    /// person): "monitor mode", "message larger than ...".
    pub note: Option<String>,
    /// From MAIL FROM to the decision.
    pub elapsed: Duration,
    /// The aggregate-report row, when the message was verified (what the counter of
    /// observations counts).
    pub observation: Option<&'a Observation>,
    /// The header fields as received (empty when the message was given up on before
    /// its header, or grew past `max_message_size`).
    pub header: &'a [u8],
}

/// Receives each message's outcome. Sinks must not block: the log writes a line, the
/// metrics count; the counter of observations adds to its in-memory table.
pub trait MessageSink: Send + Sync {
    /// One message was decided.
    fn record(&self, record: &MessageRecord<'_>);
}

/// The log line: `QUEUEID: client=NAME[IP], helo=..., mail_from=<...>,
/// header_from=..., spf=..., dkim=..., arc=..., dmarc=..., policy=..., action=...,
/// time=...ms` (`arc=` when ARC is on; `override=trusted_forwarder sealer=...` when a
/// trusted ARC sealer's word turned a DMARC failure into accept).
#[derive(Debug)]
pub struct LogSink(pub Arc<Logger>);

impl MessageSink for LogSink {
    fn record(&self, r: &MessageRecord<'_>) {
        self.0.info(&log_line(r));
    }
}

/// The log line for a record (see [`LogSink`]).
pub fn log_line(r: &MessageRecord<'_>) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "{}: client={}[{}], helo={}, mail_from=<{}>",
        r.queue_id.unwrap_or("NOQUEUE"),
        // Postfix names a client without a name "[192.0.2.1]": log unknown[192.0.2.1].
        if r.client_name.is_empty() || r.client_name.starts_with('[') {
            "unknown"
        } else {
            r.client_name
        },
        r.client_ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
        r.helo,
        r.mail_from
    );
    if let Some(d) = r.from_domain {
        let _ = write!(s, ", header_from={d}");
    }
    if let Some(v) = r.verdicts {
        let _ = write!(s, ", spf={}", v.spf.result);
        if let Some(h) = &v.helo_spf {
            let _ = write!(s, ", spf_helo={}", h.result);
        }
        if v.dkim.is_empty() {
            s.push_str(", dkim=none");
        } else {
            s.push_str(", dkim=");
            for (i, sig) in v.dkim.iter().enumerate() {
                if i > 0 {
                    s.push('+');
                }
                let _ = write!(
                    s,
                    "{}:{}",
                    sig.result.as_str(),
                    sig.info.domain.as_deref().unwrap_or("?")
                );
            }
        }
        if let Some(arc) = &v.arc {
            let _ = write!(s, ", arc={}", arc.status);
        }
        let _ = write!(s, ", dmarc={}", v.dmarc.result);
        if let Some(p) = v.dmarc.disposition() {
            let _ = write!(s, ", policy={}", p.as_str());
        }
        if let Some(Ok(o)) = &v.trusted_forwarder {
            let _ = write!(s, ", override={} sealer={}", o.kind, o.sealer);
        }
    }
    let _ = write!(s, ", action={}", r.action);
    if let Some(e) = r.exemption {
        let _ = write!(s, ", exempt={}", e.as_str());
    }
    if let Some(n) = &r.note {
        let _ = write!(s, ", note=\"{n}\"");
    }
    let _ = write!(s, ", time={}ms", r.elapsed.as_millis());
    s
}

/// Counts messages by DMARC result and action, and their latency.
#[derive(Debug)]
pub struct MetricsSink(pub Arc<Metrics>);

impl MessageSink for MetricsSink {
    fn record(&self, r: &MessageRecord<'_>) {
        let dmarc = match (r.verdicts, r.exemption) {
            (Some(v), _) => v.dmarc.result.as_str(),
            (None, Some(_)) => "exempt",
            (None, None) => "unverified",
        };
        if let Some(e) = r.exemption {
            self.0.exempt(e.as_str());
        }
        self.0.message(dmarc, r.action.as_str(), r.elapsed);
    }
}
