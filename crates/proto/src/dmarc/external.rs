//! External report destination verification (RFC 9990 §4, RFC 7489 §7.1): a report for
//! Policy Domain P may go to a destination in another domain D only if D publishes a TXT
//! record starting with `v=DMARC1` at `P._report._dmarc.D`.

use super::DomainName;
use super::record::{ReportUri, starts_with_version};
use crate::dns::{DnsError, Lookup};

/// The outcome for one reporting URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalCheck {
    /// The destination is within the Policy Domain's Organizational Domain (or the Policy
    /// Domain itself): no check needed.
    SameOrganization,
    /// The destination domain published the authorisation record.
    Authorized,
    /// No authorisation record: reports must not be sent there.
    NotAuthorized,
    /// The URI has no domain to check (not `mailto:`, or an unusable address).
    NoDomain,
    /// DNS failed temporarily; try again later.
    TempError(String),
}

impl ExternalCheck {
    /// True when reports may be sent to the URI.
    pub fn may_send(&self) -> bool {
        matches!(
            self,
            ExternalCheck::SameOrganization | ExternalCheck::Authorized
        )
    }
}

/// Checks whether `dest_domain` accepts reports about `policy_domain`: queries TXT at
/// `<policy_domain>._report._dmarc.<dest_domain>` and looks for an RR starting with
/// `v=DMARC1`. `same_org` says whether the destination is inside the Policy Domain's
/// Organizational Domain, which needs no check.
pub async fn verify_external_destination<L: Lookup>(
    lookup: &L,
    policy_domain: &DomainName,
    dest_domain: &DomainName,
    same_org: bool,
) -> ExternalCheck {
    if same_org || dest_domain.is_within(policy_domain) {
        return ExternalCheck::SameOrganization;
    }
    let name = format!("{policy_domain}._report._dmarc.{dest_domain}");
    match lookup.txt(&name).await {
        Ok(rrs) if rrs.iter().any(|rr| starts_with_version(rr)) => ExternalCheck::Authorized,
        Ok(_) | Err(DnsError::NxDomain | DnsError::NoData) => ExternalCheck::NotAuthorized,
        Err(DnsError::Temporary(why)) => ExternalCheck::TempError(why),
    }
}

/// Checks each `mailto:` URI of a `rua` or `ruf` list for the Policy Domain `policy_domain`
/// whose Organizational Domain is `org_domain`. Destinations inside `org_domain` need no
/// check (RFC 9990 §4).
pub async fn verify_external_destinations<L: Lookup>(
    lookup: &L,
    policy_domain: &DomainName,
    org_domain: &DomainName,
    uris: &[ReportUri],
) -> Vec<(ReportUri, ExternalCheck)> {
    let mut out = Vec::with_capacity(uris.len());
    for uri in uris {
        let check = match uri.mailto_domain().and_then(|d| DomainName::new(&d).ok()) {
            None => ExternalCheck::NoDomain,
            Some(dest) => {
                let same = dest.is_within(org_domain);
                verify_external_destination(lookup, policy_domain, &dest, same).await
            }
        };
        out.push((uri.clone(), check));
    }
    out
}
