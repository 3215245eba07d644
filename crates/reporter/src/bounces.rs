//! Bounces of report mail: delivery status notifications (RFC 3464, `multipart/report;
//! report-type=delivery-status`) that come back to the envelope sender, read so that a
//! destination that keeps bouncing is suppressed (`[delivery] bounces_to_suppress`,
//! `suppress_for`) and the delivery row says it bounced.
//!
//! A bounce is matched to the report message it is about by the Message-ID of the
//! returned header fields (ours derive from the report and the destination, and are
//! recorded when sent); without one, by the final recipient's address, when a delivery
//! went to it. Only permanent failures (`Action: failed`, a `5.x.x` status) count; delays
//! and successes are ignored; anything else (not a DSN, not about our reports) is said and
//! left alone.

use mail_parser::{MessageParser, MimeHeaders, PartType};

use dmarc_store::{DeliveryStatus, Store};

use crate::Error;
use crate::config::DeliveryOptions;

/// One failed recipient of a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// `Final-Recipient` (the address, without the `rfc822;` type).
    pub recipient: String,
    /// `Status` (`5.1.1`).
    pub status: String,
    /// `Diagnostic-Code`, when given.
    pub diagnostic: Option<String>,
    /// The Message-ID of the returned message, when its header fields came back.
    pub message_id: Option<String>,
}

fn fields(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
            }
            continue;
        }
        let Some(g) = groups.last_mut() else { continue };
        if line.starts_with([' ', '\t']) {
            if let Some(last) = g.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            g.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

fn message_id_of(header: &str) -> Option<String> {
    fields(header)
        .into_iter()
        .next()?
        .into_iter()
        .find(|(n, _)| n == "message-id")
        .map(|(_, v)| v)
}

/// The permanent failures a DSN reports; `None` when the message is not a DSN.
pub fn parse_dsn(raw: &[u8]) -> Option<Vec<Bounce>> {
    let msg = MessageParser::default().parse(raw)?;
    let mut status: Option<String> = None;
    let mut returned: Option<String> = None;
    for part in &msg.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let ty = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase()
        );
        match ty.as_str() {
            "message/delivery-status" | "message/global-delivery-status" if status.is_none() => {
                status = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            "text/rfc822-headers" | "message/rfc822-headers" if returned.is_none() => {
                returned = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            "message/rfc822" | "message/global" if returned.is_none() => {
                if let PartType::Message(m) = &part.body {
                    returned = m.message_id().map(|id| format!("<{id}>"));
                    continue;
                }
            }
            _ => {}
        }
    }
    let status = status?;
    let message_id = returned.and_then(|r| {
        if r.starts_with('<') && !r.contains('\n') {
            Some(r)
        } else {
            message_id_of(&r)
        }
    });
    let mut out = Vec::new();
    // The first group is per message; each next one is a recipient.
    for g in fields(&status).into_iter().skip(1) {
        let get = |name: &str| g.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let action = get("action").unwrap_or_default().to_ascii_lowercase();
        let st = get("status").unwrap_or_default();
        if action != "failed" || !st.trim().starts_with('5') {
            continue;
        }
        let Some(recipient) = get("final-recipient").or_else(|| get("original-recipient")) else {
            continue;
        };
        let recipient = recipient
            .split_once(';')
            .map_or(recipient.as_str(), |(_, a)| a)
            .trim()
            .trim_matches(['<', '>'])
            .to_owned();
        out.push(Bounce {
            recipient,
            status: st.trim().to_owned(),
            diagnostic: get("diagnostic-code"),
            message_id: message_id.clone(),
        });
    }
    Some(out)
}

/// What reading one bounce did, for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A delivery of ours bounced: recorded, and the address's health.
    Recorded {
        /// The address.
        address: String,
        /// Bounces in a row now.
        consecutive: u64,
        /// Suppressed until, when it now is.
        suppressed_until: Option<i64>,
    },
    /// Not about a report we sent.
    NotOurs(String),
}

/// Records each bounce of `raw` against the delivery it is about. `None`: not a DSN.
pub fn apply(
    store: &mut Store,
    raw: &[u8],
    options: &DeliveryOptions,
    now: i64,
) -> Result<Option<Vec<Applied>>, Error> {
    let Some(bounces) = parse_dsn(raw) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for b in bounces {
        let delivery = match &b.message_id {
            Some(mid) => store.delivery_by_message_id(mid)?,
            None => None,
        }
        .filter(|d| d.address.eq_ignore_ascii_case(&b.recipient) || b.message_id.is_some());
        let Some(d) = delivery else {
            out.push(Applied::NotOurs(format!(
                "{} ({}): no report message of ours{}",
                b.recipient,
                b.status,
                b.message_id
                    .as_deref()
                    .map(|m| format!(" has Message-ID {m}"))
                    .unwrap_or_else(|| " is named (the bounce returns no Message-ID)".into())
            )));
            continue;
        };
        let why = format!(
            "bounced: {}{}",
            b.status,
            b.diagnostic
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        );
        if d.status == DeliveryStatus::Failed && d.detail == why {
            // The same bounce read again: counted once.
            continue;
        }
        store.finish_delivery(
            d.report,
            &d.destination,
            DeliveryStatus::Failed,
            &why,
            None,
            None,
            now,
        )?;
        let h = store.record_destination_outcome(
            &d.address,
            false,
            &why,
            options.bounces_to_suppress,
            options.suppress_for,
            now,
        )?;
        out.push(Applied::Recorded {
            address: d.address,
            consecutive: h.consecutive_failures,
            suppressed_until: h.suppressed_until,
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@relay.example\r\n\
To: bounces@receiver.example\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--b\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; relay.example\r\n\
Arrival-Date: Wed, 2 Dec 2026 10:00:00 +0000\r\n\
\r\n\
Final-Recipient: rfc822; ruf@brand.example\r\n\
Original-Recipient: rfc822;ruf@brand.example\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <ruf@brand.example>: Recipient address\r\n\
\x20rejected: User unknown\r\n\
\r\n\
Final-Recipient: rfc822; slow@brand.example\r\n\
Action: delayed\r\n\
Status: 4.4.1\r\n\
--b\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: \"Test\" <dmarc@receiver.example>\r\n\
Message-ID: <abc.def@receiver.example>\r\n\
Subject: x\r\n\
--b--\r\n";

    #[test]
    fn permanent_failures_with_the_returned_message_id() {
        let b = parse_dsn(DSN.as_bytes()).expect("a DSN");
        assert_eq!(b.len(), 1, "the delay is not a bounce: {b:?}");
        assert_eq!(b[0].recipient, "ruf@brand.example");
        assert_eq!(b[0].status, "5.1.1");
        assert_eq!(
            b[0].message_id.as_deref(),
            Some("<abc.def@receiver.example>")
        );
        assert!(
            b[0].diagnostic
                .as_deref()
                .unwrap()
                .ends_with("rejected: User unknown")
        );
    }

    #[test]
    fn other_mail_is_not_a_dsn() {
        assert_eq!(
            parse_dsn(b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n"),
            None
        );
    }
}
