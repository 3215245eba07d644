//! The DKIM area: key records (RFC 6376 §3.6.1) at the selectors given, those seen in
//! aggregate reports, and a short list of common ones, parsed by the protocol core.

use dmarc_proto::dkim::{HashAlgorithm, KeyType, PublicKey, parse_key_record};
use dmarc_proto::dmarc::DomainName;
use dmarc_proto::{DnsError, Lookup};
use serde::Serialize;

use crate::{Code, Finding};

/// Selectors tried when none is given: the defaults of common signers and services.
pub const COMMON_SELECTORS: &[&str] = &[
    "default",
    "dkim",
    "mail",
    "selector1",
    "selector2",
    "google",
    "k1",
    "k2",
    "s1",
    "s2",
    "smtp",
    "mx",
    "email",
    "key1",
];

/// Where a selector to check came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectorSource {
    /// Named by the user.
    Given,
    /// Seen in stored aggregate reports for the domain.
    Reports,
    /// A common selector name, tried in case.
    Common,
    /// Named for the sender setup check.
    Sender,
}

/// One selector's key.
#[derive(Debug, Clone, Serialize)]
pub struct DkimKey {
    /// The selector.
    pub selector: String,
    /// `<selector>._domainkey.<domain>`.
    pub name: String,
    /// Where the selector came from.
    pub source: SelectorSource,
    /// True when a key record is there.
    pub found: bool,
    /// The CNAME target, when the name is an alias (keys delegated to a service).
    pub cname: Option<String>,
    /// The record as published.
    pub record: Option<String>,
    /// `rsa` or `ed25519`.
    pub key_type: Option<&'static str>,
    /// RSA modulus size.
    pub key_bits: Option<usize>,
    /// `p=` empty.
    pub revoked: bool,
    /// `t=y`.
    pub testing: bool,
    /// `h=`, when restricted.
    pub hashes: Option<Vec<&'static str>>,
    /// What is wrong with it, if anything.
    pub error: Option<String>,
}

/// Checks each selector of `selectors`, appending findings. Common selectors that have no
/// key are dropped from the result; when none of them has one (and no other selector was
/// given), one info finding says so.
pub async fn check<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    selectors: &[(String, SelectorSource)],
    findings: &mut Vec<Finding>,
) -> Vec<DkimKey> {
    let keys = futures_util::future::join_all(
        selectors
            .iter()
            .map(|(s, src)| key(lookup, domain, s, *src)),
    )
    .await;
    let mut out = Vec::new();
    for (key, mut fs) in keys {
        if key.source == SelectorSource::Common && !key.found && key.cname.is_none() {
            continue;
        }
        findings.append(&mut fs);
        out.push(key);
    }
    if out.iter().all(|k| !k.found) && selectors.iter().all(|(_, s)| *s == SelectorSource::Common) {
        findings.push(Finding::at(
            Code::DkimNoSelectorFound,
            format!("_domainkey.{domain}"),
            format!("none of the common selectors ({}) has a key; DNS cannot list selectors, so name yours with --selector (a signed message shows it in s=)", COMMON_SELECTORS.join(", ")),
        ));
    }
    out
}

/// Fetches and examines one key.
pub(crate) async fn key<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    selector: &str,
    source: SelectorSource,
) -> (DkimKey, Vec<Finding>) {
    let name = format!("{selector}._domainkey.{domain}");
    let mut findings = Vec::new();
    let mut key = DkimKey {
        selector: selector.to_string(),
        name: name.clone(),
        source,
        found: false,
        cname: None,
        record: None,
        key_type: None,
        key_bits: None,
        revoked: false,
        testing: false,
        hashes: None,
        error: None,
    };
    let (txt, cname) = futures_util::join!(lookup.txt(&name), lookup.cname(&name));
    key.cname = cname.ok().and_then(|v| v.into_iter().next());
    let rrs = match txt {
        Ok(rrs) => rrs,
        Err(DnsError::Temporary(why)) => {
            findings.push(Finding::at(
                Code::DkimDnsError,
                &name,
                format!("the key lookup failed ({why}); receivers get temperror for signatures with s={selector}"),
            ));
            return (key, findings);
        }
        Err(_) => {
            if let Some(target) = &key.cname {
                findings.push(Finding::at(
                    Code::DkimCnameDangling,
                    &name,
                    format!("{name} is a CNAME to {target}, which has no key: signatures with s={selector} fail; fix the CNAME or have the service publish the key"),
                ));
            } else if source != SelectorSource::Common {
                findings.push(Finding::at(
                    Code::DkimSelectorMissing,
                    &name,
                    format!("no key at {name}: signatures with s={selector} fail (permerror); publish the key or stop signing with this selector"),
                ));
            }
            return (key, findings);
        }
    };
    // A key record is the TXT RR that parses; several RRs are ambiguous, take the first
    // that looks like a key.
    let Some(rr) = rrs
        .iter()
        .find(|r| r.windows(2).any(|w| w.eq_ignore_ascii_case(b"p=")))
        .or(rrs.first())
    else {
        return (key, findings);
    };
    key.found = true;
    key.record = Some(String::from_utf8_lossy(rr).into_owned());
    let record = match parse_key_record(rr) {
        Ok(r) => r,
        Err(e) => {
            key.error = Some(e.to_string());
            findings.push(Finding::at(
                Code::DkimSyntax,
                &name,
                format!("the key record does not parse ({e}); receivers fail every signature with s={selector}: republish it"),
            ));
            return (key, findings);
        }
    };
    key.key_type = Some(record.key_type.as_str());
    key.testing = record.testing;
    key.hashes = record
        .hashes
        .as_ref()
        .map(|h| h.iter().map(|a| a.as_str()).collect());
    if record.is_revoked() {
        key.revoked = true;
        findings.push(Finding::at(
            Code::DkimRevoked,
            &name,
            format!("the key at {name} is revoked (empty p=): signatures with s={selector} fail; that is right for a retired selector, otherwise publish the key"),
        ));
        return (key, findings);
    }
    if record.testing {
        findings.push(Finding::at(
            Code::DkimTesting,
            &name,
            format!("t=y: the domain says it is testing DKIM at {selector}, and some receivers treat failures leniently; remove t=y when done"),
        ));
    }
    if !record.for_email {
        findings.push(Finding::at(
            Code::DkimNotForEmail,
            &name,
            "s= does not include email or *, so the key cannot verify mail: remove s= or set s=email".to_string(),
        ));
    }
    if let Some(h) = &record.hashes
        && !h.is_empty()
        && h.iter().all(|a| *a == HashAlgorithm::Sha1)
    {
        findings.push(Finding::at(
            Code::DkimSha1Only,
            &name,
            "h=sha1 allows only SHA-1, which receivers refuse (RFC 8301 §3.1): remove h= or set h=sha256, and sign with rsa-sha256".to_string(),
        ));
    }
    match PublicKey::parse(record.key_type, &record.public_key) {
        Ok(pk) => {
            key.key_bits = pk.rsa_bits();
            if let Some(bits) = pk.rsa_bits() {
                if bits < 1024 {
                    findings.push(Finding::at(
                        Code::DkimRsaTooSmall,
                        &name,
                        format!("the RSA key has {bits} bits; receivers refuse keys under 1024 (RFC 8301 §3.2): publish a 2048-bit key (dmarc dkim keygen)"),
                    ));
                } else if bits < 2048 {
                    findings.push(Finding::at(
                        Code::DkimRsaWeak,
                        &name,
                        format!("the RSA key has {bits} bits; use 2048 bits (RFC 8301 §3.2 asks signers for at least 2048): rotate to a new selector with dmarc dkim keygen"),
                    ));
                }
            }
        }
        Err(e) => {
            key.error = Some(e.to_string());
            let detail = if record.key_type == KeyType::Rsa {
                "RSA "
            } else {
                "Ed25519 "
            };
            findings.push(Finding::at(
                Code::DkimBadKey,
                &name,
                format!("p= is not a usable {detail}public key ({e}); republish the key"),
            ));
        }
    }
    (key, findings)
}
