//! The server on loopback, asked through the project's hickory adapter and directly.

use std::time::Duration;

use dmarc_dns::{HickoryLookup, ResolverOptions, ZoneFile};
use dmarc_proto::{DnsError, Lookup};
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{Name, RecordType};

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n\
@ IN SOA ns1 hostmaster 9 3600 600 86400 120\n\
@ IN NS ns1\n\
ns1 IN A 127.0.0.1\n\
@ IN MX 10 mx\n\
mx IN A 192.0.2.25\n\
mx IN AAAA 2001:db8::25\n\
alias IN CNAME mx\n\
s1._domainkey IN CNAME key.service.test.\n\
*.wild IN TXT \"wild\"\n\
null IN MX 0 .\n";

fn long_txt() -> String {
    // 600 octets in three strings: the answer needs more than 512 bytes (TCP or EDNS).
    let s = "x".repeat(200);
    format!("big.example.test. IN TXT \"v=spf1 \" \"{s}\" \"{s}\" \"{s}\"\n")
}

#[tokio::test]
async fn answers_nxdomain_nodata_cnames_and_long_txt_over_the_wire() {
    let zone = ZoneFile::parse(&format!("{ZONE}{}", long_txt()), None).unwrap();
    let running = zone_server::serve(zone, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let r = HickoryLookup::with_nameservers(
        &[running.addr],
        ResolverOptions {
            timeout: Duration::from_secs(2),
            ..ResolverOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        r.a("mx.example.test").await.unwrap(),
        ["192.0.2.25".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(
        r.a("alias.example.test").await.unwrap().len(),
        1,
        "CNAME followed"
    );
    assert_eq!(
        r.cname("alias.example.test").await.unwrap(),
        ["mx.example.test"]
    );
    assert_eq!(
        r.cname("s1._domainkey.example.test").await.unwrap(),
        ["key.service.test"]
    );
    assert_eq!(
        r.txt("a.wild.example.test").await.unwrap(),
        [b"wild".to_vec()]
    );
    assert_eq!(r.txt("nope.example.test").await, Err(DnsError::NxDomain));
    assert_eq!(r.txt("mx.example.test").await, Err(DnsError::NoData));
    assert_eq!(
        r.txt("_domainkey.example.test").await,
        Err(DnsError::NoData),
        "empty non-terminal"
    );
    let big = r.txt("big.example.test").await.unwrap();
    assert_eq!(big[0].len(), 7 + 600);
    assert_eq!(r.mx("null.example.test").await.unwrap()[0].exchange, "");
    assert!(running.answered() >= 9);
    running.shutdown().await.unwrap();
}

#[test]
fn ns_soa_and_negative_answers_carry_the_soa() {
    let zone = ZoneFile::parse(ZONE, None).unwrap();
    let h = zone_server::ZoneHandler::new(std::sync::Arc::new(zone));
    let name = |s: &str| Name::from_ascii(s).unwrap();
    let (code, answers, _) = h.answer(&name("example.test."), RecordType::NS);
    assert_eq!(code, ResponseCode::NoError);
    assert_eq!(answers.len(), 1);
    let (_, answers, _) = h.answer(&name("example.test."), RecordType::SOA);
    assert_eq!(answers.len(), 1);
    let (code, answers, authority) = h.answer(&name("nope.example.test."), RecordType::A);
    assert_eq!(
        (code, answers.len(), authority.len()),
        (ResponseCode::NXDomain, 0, 1)
    );
    let (code, answers, authority) = h.answer(&name("mx.example.test."), RecordType::TXT);
    assert_eq!(
        (code, answers.len(), authority.len()),
        (ResponseCode::NoError, 0, 1)
    );
    let (code, answers, _) = h.answer(&name("alias.example.test."), RecordType::AAAA);
    assert_eq!(
        (code, answers.len()),
        (ResponseCode::NoError, 2),
        "the CNAME and the target's AAAA"
    );
}
