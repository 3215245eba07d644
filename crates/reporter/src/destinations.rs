//! Where a report goes: the `rua` (or `ruf`) URIs of the policy record as published at
//! sending time, each checked (RFC 9990 §4 external destinations, exclusions, the `!size`
//! limit of RFC 7489 records, mailto only).

use std::sync::Arc;

use dmarc_proto::dmarc::record::{Record, RecordSet, ReportUri, select_record};
use dmarc_proto::dmarc::{DomainName, Spec, organizational_domain};
use dmarc_proto::dmarc::{ExternalCheck, ReportKind, verify_external_destination};
use dmarc_proto::dns::{DnsError, Lookup};

use crate::config::DeliveryOptions;

/// The policy record at sending time.
#[derive(Debug, Clone)]
pub enum Published {
    /// A usable record.
    Record(Arc<Record>),
    /// None now (or none usable): the text says why. Nothing is sent.
    None(String),
    /// DNS failed temporarily: try the report later.
    TempError(String),
}

/// Looks up the DMARC record of `policy_domain` (`_dmarc.<policy_domain>` TXT).
pub async fn published_record<L: Lookup>(lookup: &L, policy_domain: &str) -> Published {
    let name = format!("_dmarc.{policy_domain}");
    let rrs = match lookup.txt(&name).await {
        Ok(rrs) => rrs,
        Err(DnsError::NxDomain | DnsError::NoData) => {
            return Published::None(format!("no DMARC record at {name} now"));
        }
        Err(DnsError::Temporary(why)) => return Published::TempError(format!("{name}: {why}")),
    };
    match select_record(&rrs, Spec::Rfc9989) {
        RecordSet::Found(p) => Published::Record(p.record),
        RecordSet::NoRecord => Published::None(format!("no DMARC record at {name} now")),
        RecordSet::Multiple(n) => {
            Published::None(format!("{name} has {n} DMARC records; none applies"))
        }
        RecordSet::Unusable(e) => Published::None(format!("the DMARC record at {name}: {e}")),
    }
}

/// The decision for one URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send to this address (after an RFC 9990 §4 override, the override's address).
    Send {
        /// The mail address.
        address: String,
        /// The size limit of the URI, bytes.
        max_size: Option<u64>,
        /// What the check found, for the log (`same organisation`, `authorised by ...`).
        note: String,
    },
    /// Do not send: why.
    Skip(String),
    /// The check could not be made now (DNS): try later.
    Later(String),
}

/// One destination: the URI as published and the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The URI as published (with its `!size`).
    pub uri: String,
    /// What to do.
    pub decision: Decision,
}

fn with_size(u: &ReportUri) -> String {
    match u.max_size {
        Some(n) => format!("{}!{n}", u.uri),
        None => u.uri.clone(),
    }
}

/// Checks each URI of `uris` for a report of `kind` about `policy_domain`.
pub async fn check<L: Lookup>(
    lookup: &L,
    policy_domain: &str,
    uris: &[ReportUri],
    kind: ReportKind,
    options: &DeliveryOptions,
) -> Vec<Destination> {
    let mut out: Vec<Destination> = Vec::new();
    let Ok(pd) = DomainName::new(policy_domain) else {
        return uris
            .iter()
            .map(|u| Destination {
                uri: with_size(u),
                decision: Decision::Skip(format!("{policy_domain:?} is not a domain name")),
            })
            .collect();
    };
    // The Organizational Domain as RFC 9989 §4.10.2 finds it (the DNS tree walk), the same
    // rule the DMARC evaluation uses.
    let org = match organizational_domain(lookup, &pd).await {
        Ok(org) => org,
        Err(e) => {
            return uris
                .iter()
                .map(|u| Destination {
                    uri: with_size(u),
                    decision: Decision::Later(format!(
                        "the Organizational Domain of {pd} could not be found: {e}"
                    )),
                })
                .collect();
        }
    };
    for u in uris {
        let uri = with_size(u);
        if out.iter().any(|d| d.uri == uri) {
            continue;
        }
        let decision = decide(lookup, &pd, &org, u, kind, options).await;
        out.push(Destination { uri, decision });
    }
    out
}

async fn decide<L: Lookup>(
    lookup: &L,
    pd: &DomainName,
    org: &DomainName,
    u: &ReportUri,
    kind: ReportKind,
    options: &DeliveryOptions,
) -> Decision {
    if u.scheme != "mailto" {
        return Decision::Skip(format!(
            "{}: only mailto: destinations are supported, not {}:",
            u.uri, u.scheme
        ));
    }
    let (Some(address), Some(host)) = (u.address.clone(), u.mailto_domain()) else {
        return Decision::Skip(format!("{}: no mail address in the URI", u.uri));
    };
    if !crate::config::is_address(&address) {
        return Decision::Skip(format!("{}: {address:?} is not a usable address", u.uri));
    }
    if options.is_excluded(&host) {
        return Decision::Skip(format!("{host} is excluded by delivery.exclude_domains"));
    }
    let Ok(dest) = DomainName::new(&host) else {
        return Decision::Skip(format!("{}: {host:?} is not a domain name", u.uri));
    };
    let same_org = match organizational_domain(lookup, &dest).await {
        Ok(dest_org) => dest_org == *org,
        Err(e) => {
            return Decision::Later(format!(
                "the Organizational Domain of {dest} could not be found: {e}"
            ));
        }
    };
    match verify_external_destination(lookup, pd, &dest, same_org, kind).await {
        ExternalCheck::SameOrganization => Decision::Send {
            address,
            max_size: u.max_size,
            note: format!("{host} is in {org}, no authorisation needed"),
        },
        ExternalCheck::Authorized { overrides } => {
            let name = format!("{pd}._report._dmarc.{dest}");
            match overrides.first() {
                Some(o) if o.address.is_some() => Decision::Send {
                    address: o.address.clone().unwrap_or_default(),
                    max_size: o.max_size.or(u.max_size),
                    note: format!("authorised by {name}, which names {}", o.uri),
                },
                _ => Decision::Send {
                    address,
                    max_size: u.max_size,
                    note: format!("authorised by {name}"),
                },
            }
        }
        ExternalCheck::NotAuthorized => Decision::Skip(format!(
            "not authorised: no v=DMARC1 record at {pd}._report._dmarc.{dest}"
        )),
        ExternalCheck::OverrideElsewhere(other) => Decision::Skip(format!(
            "not authorised: {pd}._report._dmarc.{dest} names {other} on another host"
        )),
        ExternalCheck::NameTooLong => Decision::Skip(format!(
            "not authorised: {pd}._report._dmarc.{dest} is longer than DNS allows"
        )),
        ExternalCheck::NoDomain => Decision::Skip(format!("{}: no destination host", u.uri)),
        ExternalCheck::TempError(why) => Decision::Later(format!(
            "the authorisation of {dest} could not be checked: {why}"
        )),
    }
}
