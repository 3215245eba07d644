//! The MX area: where the domain receives mail (RFC 5321 §5.1), the null MX of RFC 7505,
//! and each host's addresses.

use dmarc_proto::dmarc::DomainName;
use dmarc_proto::{DnsError, Lookup};
use serde::Serialize;

use crate::{Code, Finding};

/// One MX host.
#[derive(Debug, Clone, Serialize)]
pub struct MxHost {
    /// The preference.
    pub preference: u16,
    /// The host name; `"."` for the null MX.
    pub exchange: String,
    /// Its IPv4 and IPv6 addresses.
    pub addresses: Vec<String>,
}

/// Checks the MX records of `domain`, appending findings.
pub async fn check<L: Lookup>(
    lookup: &L,
    domain: &DomainName,
    findings: &mut Vec<Finding>,
) -> Vec<MxHost> {
    let name = domain.to_string();
    let mut mxs = match lookup.mx(&name).await {
        Ok(m) => m,
        Err(DnsError::Temporary(why)) => {
            findings.push(Finding::at(
                Code::MxDnsError,
                &name,
                format!("the MX lookup failed ({why})"),
            ));
            return Vec::new();
        }
        Err(_) => {
            findings.push(Finding::at(
                Code::MxMissing,
                &name,
                format!("{name} has no MX record: mail to it goes to its address, if any (RFC 5321 §5.1), and report addresses here fail; publish MX records, or a null MX (\"0 .\", RFC 7505) if it receives no mail"),
            ));
            return Vec::new();
        }
    };
    mxs.sort_by_key(|m| m.preference);
    let null = mxs.iter().any(|m| m.exchange.is_empty());
    if null && mxs.len() > 1 {
        findings.push(Finding::at(
            Code::MxNullMixed,
            &name,
            "a null MX (\".\") is published beside other MX records; RFC 7505 §3 says a null MX must be the only one: remove it or the others".to_string(),
        ));
    } else if null {
        findings.push(Finding::at(
            Code::MxNull,
            &name,
            format!("{name} publishes a null MX: it receives no mail (RFC 7505); make sure it also sends none (v=spf1 -all, p=reject)"),
        ));
    }
    let hosts: Vec<_> = mxs.iter().filter(|m| !m.exchange.is_empty()).collect();
    let answers = futures_util::future::join_all(hosts.iter().map(|m| async move {
        futures_util::join!(
            lookup.a(&m.exchange),
            lookup.aaaa(&m.exchange),
            lookup.cname(&m.exchange)
        )
    }))
    .await;
    // Reverse DNS of every address (receivers and reputation systems expect it).
    let addrs: Vec<std::net::IpAddr> = answers
        .iter()
        .flat_map(|(a, aaaa, _)| {
            a.iter()
                .flatten()
                .map(|x| std::net::IpAddr::V4(*x))
                .chain(aaaa.iter().flatten().map(|x| std::net::IpAddr::V6(*x)))
                .collect::<Vec<_>>()
        })
        .collect();
    let ptrs = futures_util::future::join_all(addrs.iter().map(|ip| lookup.ptr(*ip))).await;
    for (ip, ptr) in addrs.iter().zip(ptrs) {
        if let Err(e) = ptr
            && e.is_void()
        {
            findings.push(Finding::at(
                Code::MxHostNoPtr,
                &name,
                format!("MX address {ip} has no reverse DNS (PTR) record; many senders and reputation systems expect one: ask its provider to publish a PTR naming the MX host"),
            ));
        }
    }
    let mut out = Vec::new();
    if null && mxs.len() == 1 {
        out.push(MxHost {
            preference: mxs[0].preference,
            exchange: ".".into(),
            addresses: Vec::new(),
        });
    }
    for (m, (a, aaaa, cname)) in hosts.iter().zip(answers) {
        if m.exchange.parse::<std::net::IpAddr>().is_ok() {
            findings.push(Finding::at(
                Code::MxIpLiteral,
                &name,
                format!("MX {} is an IP address; an MX names a host (RFC 5321 §5.1): publish an A record for a host name and point the MX at it", m.exchange),
            ));
        }
        let mut addresses: Vec<String> = a.iter().flatten().map(ToString::to_string).collect();
        addresses.extend(aaaa.iter().flatten().map(ToString::to_string));
        if addresses.is_empty()
            && !matches!(a, Err(DnsError::Temporary(_)))
            && !matches!(aaaa, Err(DnsError::Temporary(_)))
        {
            findings.push(Finding::at(
                Code::MxHostNoAddress,
                &name,
                format!("MX host {} has no A or AAAA record: mail cannot be delivered to it; fix the host's records or the MX", m.exchange),
            ));
        }
        if let Ok(targets) = cname
            && let Some(t) = targets.first()
        {
            findings.push(Finding::at(
                Code::MxHostCname,
                &name,
                format!("MX host {} is a CNAME to {t}; an MX must name a host, not an alias (RFC 2181 §10.3): point the MX at {t}", m.exchange),
            ));
        }
        out.push(MxHost {
            preference: m.preference,
            exchange: m.exchange.clone(),
            addresses,
        });
    }
    out
}
