//! External report destination verification (RFC 9990 §4, RFC 7489 §7.1): a report about
//! Policy Domain P may go to a destination host D outside P's Organizational Domain only if
//! D publishes a TXT record starting with `v=DMARC1` at `P._report._dmarc.D`. That record
//! may name replacement URIs (`rua=`/`ruf=`) on the same host D; naming another host
//! forbids reports to both.

use super::DomainName;
use super::record::{ReportUri, parse_report_uri, starts_with_version};
use crate::dns::{DnsError, Lookup};
use crate::tag_list::{Strictness, TagList};

/// Which report a destination is for, and so which tag of the confirming record may
/// override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// Aggregate reports (`rua`).
    Aggregate,
    /// Failure reports (`ruf`).
    Failure,
}

impl ReportKind {
    fn tag(self) -> &'static str {
        match self {
            ReportKind::Aggregate => "rua",
            ReportKind::Failure => "ruf",
        }
    }
}

/// The outcome for one reporting URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalCheck {
    /// The destination is at or below the Policy Domain's Organizational Domain: no check
    /// needed.
    SameOrganization,
    /// The destination host published the authorisation record. `overrides` holds the URIs
    /// its record names for this kind of report (all on the same host), to use instead of
    /// the original; empty means keep the original.
    Authorized {
        /// Replacement URIs (RFC 9990 §4 step 9).
        overrides: Vec<ReportUri>,
    },
    /// No authorisation record: reports must not be sent there.
    NotAuthorized,
    /// The authorisation record names a destination on another host: no report may go to
    /// either (RFC 9990 §4).
    OverrideElsewhere(String),
    /// `P._report._dmarc.D` is longer than DNS allows, so authorisation cannot be shown.
    NameTooLong,
    /// The URI has no domain to check (not `mailto:`, or an unusable address).
    NoDomain,
    /// DNS failed temporarily; the check can be repeated later.
    TempError(String),
}

impl ExternalCheck {
    /// True when reports may be sent (to the original URI, or to the overrides).
    pub fn may_send(&self) -> bool {
        matches!(
            self,
            ExternalCheck::SameOrganization | ExternalCheck::Authorized { .. }
        )
    }
}

/// Checks whether `dest_host` accepts `kind` reports about `policy_domain` (RFC 9990 §4):
/// queries TXT at `<policy_domain>._report._dmarc.<dest_host>` and looks for an RR that
/// starts with `v=DMARC1`. `same_org` says the destination is inside the Policy Domain's
/// Organizational Domain, which needs no check.
pub async fn verify_external_destination<L: Lookup>(
    lookup: &L,
    policy_domain: &DomainName,
    dest_host: &DomainName,
    same_org: bool,
    kind: ReportKind,
) -> ExternalCheck {
    if same_org || dest_host.is_within(policy_domain) {
        return ExternalCheck::SameOrganization;
    }
    let name = format!("{policy_domain}._report._dmarc.{dest_host}");
    if name.len() > 253 {
        return ExternalCheck::NameTooLong;
    }
    let rrs = match lookup.txt(&name).await {
        Ok(rrs) => rrs,
        Err(DnsError::NxDomain | DnsError::NoData) => return ExternalCheck::NotAuthorized,
        Err(DnsError::Temporary(why)) => return ExternalCheck::TempError(why),
    };
    let confirming: Vec<&Vec<u8>> = rrs.iter().filter(|rr| starts_with_version(rr)).collect();
    if confirming.is_empty() {
        return ExternalCheck::NotAuthorized;
    }
    let mut overrides = Vec::new();
    for rr in confirming {
        for uri in tag_uris(rr, kind.tag()) {
            let host = uri.mailto_domain().and_then(|d| DomainName::new(&d).ok());
            if host.as_ref() != Some(dest_host) {
                return ExternalCheck::OverrideElsewhere(uri.uri);
            }
            overrides.push(uri);
        }
    }
    ExternalCheck::Authorized { overrides }
}

/// Checks each URI of a `rua` (or `ruf`) list of the Policy Domain `policy_domain`, whose
/// Organizational Domain is `org_domain`. Destinations at or below `org_domain` need no
/// check.
pub async fn verify_external_destinations<L: Lookup>(
    lookup: &L,
    policy_domain: &DomainName,
    org_domain: &DomainName,
    uris: &[ReportUri],
    kind: ReportKind,
) -> Vec<(ReportUri, ExternalCheck)> {
    let mut out = Vec::with_capacity(uris.len());
    for uri in uris {
        let check = match uri.mailto_domain().and_then(|d| DomainName::new(&d).ok()) {
            None => ExternalCheck::NoDomain,
            Some(dest) => {
                let same = dest.is_within(org_domain);
                verify_external_destination(lookup, policy_domain, &dest, same, kind).await
            }
        };
        out.push((uri.clone(), check));
    }
    out
}

/// The URIs of tag `tag` in the confirming record (read by the one tag-list parser, empty
/// tag-specs skipped as in a policy record); malformed URIs are skipped, a record that is not
/// a tag-list has none.
fn tag_uris(rr: &[u8], tag: &str) -> Vec<ReportUri> {
    let Ok(list) = TagList::parse_with(rr, Strictness::SkipEmpty) else {
        return Vec::new();
    };
    let Some(value) = list
        .tags()
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(tag))
        .and_then(|t| t.value_str())
    else {
        return Vec::new();
    };
    value
        .split(',')
        .filter_map(|u| parse_report_uri(u).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_uris_are_read_leniently() {
        let uris = tag_uris(
            b"v=DMARC1; rua=mailto:a@r.example, mailto:b@r.example; ruf=mailto:c@x.example",
            "rua",
        );
        assert_eq!(uris.len(), 2);
        assert!(tag_uris(b"v=DMARC1", "ruf").is_empty());
        assert!(tag_uris(b"\xff", "rua").is_empty());
        // Not a tag-list: no overrides.
        assert!(tag_uris(b"v=DMARC1; rua mailto:a@r.example", "rua").is_empty());
    }
}
