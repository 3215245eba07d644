//! `AnyLookup`, `DelayLookup`, `CountingLookup`, `SystemClock`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dmarc_dns::{AnyLookup, CountingLookup, DelayLookup, QType, SystemClock, ZoneFile};
use dmarc_proto::{Clock, DnsError, Lookup};

fn zone() -> ZoneFile {
    ZoneFile::parse(
        "$ORIGIN example.com.\n@ TXT \"v=spf1 -all\"\n@ A 192.0.2.1\n\
         1.2.0.192.in-addr.arpa. PTR host.example.com.\n",
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn any_lookup_forwards() {
    let any = AnyLookup::from(zone());
    assert_eq!(
        any.txt("example.com").await,
        Ok(vec![b"v=spf1 -all".to_vec()])
    );
    assert_eq!(any.a("example.com").await.unwrap().len(), 1);
    assert_eq!(any.aaaa("example.com").await, Err(DnsError::NoData));
    assert_eq!(any.mx("nope.example.com").await, Err(DnsError::NxDomain));
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(any.ptr(ip).await, Ok(vec!["host.example.com".to_string()]));
    let AnyLookup::Zone(z) = &any else {
        panic!("not a zone")
    };
    assert_eq!(z.query_count(), 5);
}

#[tokio::test]
async fn counting_records_questions_in_order() {
    let counting = CountingLookup::new(zone());
    let _ = counting.txt("example.com").await;
    let _ = counting.a("Example.com.").await;
    let _ = counting.mx("nope.example.com").await;
    let _ = counting.aaaa("example.com").await;
    let _ = counting.ptr("192.0.2.1".parse().unwrap()).await;
    assert_eq!(counting.count(), 5);
    assert_eq!(
        counting.questions(),
        [
            (QType::Txt, "example.com".to_string()),
            (QType::A, "Example.com.".to_string()),
            (QType::Mx, "nope.example.com".to_string()),
            (QType::Aaaa, "example.com".to_string()),
            (QType::Ptr, "1.2.0.192.in-addr.arpa".to_string()),
        ]
    );
    assert_eq!(counting.inner().query_count(), 5);
    counting.reset();
    assert_eq!(counting.count(), 0);
    assert_eq!(QType::Aaaa.to_string(), "AAAA");
}

#[tokio::test(start_paused = true)]
async fn delay_adds_latency_per_answer_and_overlaps_when_concurrent() {
    let slow = DelayLookup::new(zone(), Duration::from_millis(100));
    let start = tokio::time::Instant::now();
    let _ = slow.txt("example.com").await;
    let _ = slow.a("example.com").await;
    assert_eq!(start.elapsed(), Duration::from_millis(200));

    let start = tokio::time::Instant::now();
    let (t, a, m) = tokio::join!(
        slow.txt("example.com"),
        slow.a("example.com"),
        slow.mx("example.com")
    );
    assert!(t.is_ok() && a.is_ok());
    assert_eq!(m, Err(DnsError::NoData));
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(slow.inner().query_count(), 5);
}

#[tokio::test]
async fn delay_really_sleeps() {
    let slow = DelayLookup::new(CountingLookup::new(zone()), Duration::from_millis(30));
    let start = Instant::now();
    let _ = slow.ptr("192.0.2.1".parse().unwrap()).await;
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(slow.inner().count(), 1);
}

#[test]
fn system_clock_moves_forward() {
    let a = SystemClock.now();
    std::thread::sleep(Duration::from_millis(5));
    let b = SystemClock.now();
    assert!(b > a);
    assert!(SystemClock.unix_seconds() > 1_700_000_000);
}
