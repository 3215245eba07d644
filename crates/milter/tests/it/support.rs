//! Shared helpers: the DMARC filter over mail-bench's zone, lookups that fail, a recording
//! observer, frame fixtures.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dmarc_dns::ZoneFile;
use dmarc_milter::codec::{Frame, FrameDecoder};
use dmarc_milter::config::{MilterConfig, Override};
use dmarc_milter::handler::{DmarcFilter, LogSink, MessageSink, MetricsSink};
use dmarc_milter::log::Logger;
use dmarc_milter::metrics::{Metered, Metrics};
use dmarc_milter::server::{ConnectionEnd, ConnectionError, ServerObserver};
use dmarc_proto::dns::{DnsError, DnsResult, Lookup, MxRecord};
use dmarc_receiver::FixedDraw;
use dmarc_testkit::corpus;

pub fn mail_bench() -> PathBuf {
    corpus("mail-bench")
}

pub fn zone() -> ZoneFile {
    ZoneFile::load(&mail_bench().join("zone.txt")).expect("mail-bench zone.txt")
}

/// One mail-bench case.
#[derive(Debug, Clone)]
pub struct Case {
    pub file: String,
    pub ip: IpAddr,
    pub helo: String,
    pub mail_from: String,
    pub from_domain: String,
    pub dmarc: String,
    pub policy: String,
    pub spf: String,
    pub dkim: Vec<String>,
}

pub fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(mail_bench().join("cases.jsonl")).expect("cases.jsonl");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            Case {
                file: v["file"].as_str().unwrap().to_owned(),
                ip: v["ip"].as_str().unwrap().parse().unwrap(),
                helo: v["helo"].as_str().unwrap().to_owned(),
                mail_from: v["mail_from"].as_str().unwrap_or("").to_owned(),
                from_domain: v["from_domain"].as_str().unwrap().to_owned(),
                dmarc: v["dmarc"].as_str().unwrap().to_owned(),
                policy: v["policy"].as_str().unwrap().to_owned(),
                spf: v["spf"].as_str().unwrap().to_owned(),
                dkim: v["dkim"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["result"].as_str().unwrap().to_owned())
                    .collect(),
            }
        })
        .collect()
}

pub fn message(case: &Case) -> Vec<u8> {
    std::fs::read(mail_bench().join(&case.file)).expect("message")
}

/// What the tests keep of a filter: its log and metrics.
pub struct Built<L> {
    pub filter: Arc<DmarcFilter<Metered<L>>>,
    pub logger: Arc<Logger>,
    pub metrics: Arc<Metrics>,
}

/// The DMARC filter with the defaults, authserv-id `mx.receiver.example`, and `settings`
/// (`KEY=VALUE`), asking `lookup`.
pub fn filter_with<L: Lookup + Send + Sync + 'static>(lookup: L, settings: &[&str]) -> Built<L> {
    let mut o = vec![Override::new("authserv_id", "mx.receiver.example")];
    o.extend(settings.iter().map(|s| Override::parse(s).unwrap()));
    let s = MilterConfig::load(None, &o)
        .unwrap()
        .validate("mx")
        .unwrap();
    let logger = Arc::new(Logger::memory());
    let metrics = Metrics::new();
    let sinks: Vec<Arc<dyn MessageSink>> = vec![
        Arc::new(LogSink(logger.clone())),
        Arc::new(MetricsSink(metrics.clone())),
    ];
    let filter = DmarcFilter::new(
        s.policy,
        Arc::new(Metered::new(lookup, metrics.clone())),
        Arc::new(FixedDraw(0)),
        sinks,
        metrics.clone(),
    );
    Built {
        filter: Arc::new(filter),
        logger,
        metrics,
    }
}

pub fn filter(settings: &[&str]) -> Built<ZoneFile> {
    filter_with(zone(), settings)
}

/// The DMARC filter with the defaults and authserv-id `mx.receiver.example`, asking the
/// corpus's zone directly, handing each message to `sinks` (the counting tests' counter
/// and failure queue) and counting into `metrics`.
pub fn counted_filter(
    sinks: Vec<Arc<dyn MessageSink>>,
    metrics: &Arc<Metrics>,
) -> Arc<DmarcFilter<ZoneFile>> {
    let o = [Override::new("authserv_id", "mx.receiver.example")];
    let s = MilterConfig::load(None, &o)
        .unwrap()
        .validate("mx")
        .unwrap();
    Arc::new(DmarcFilter::new(
        s.policy,
        Arc::new(zone()),
        Arc::new(FixedDraw(0)),
        sinks,
        metrics.clone(),
    ))
}

/// Answers `_dmarc.` questions with a temporary failure, everything else from `L`.
pub struct FailDmarc<L>(pub L);

impl<L: Lookup> Lookup for FailDmarc<L> {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        if name.starts_with("_dmarc.") {
            Err(DnsError::Temporary("SERVFAIL (test)".into()))
        } else {
            self.0.txt(name).await
        }
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        self.0.a(name).await
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        self.0.aaaa(name).await
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        self.0.mx(name).await
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        self.0.ptr(ip).await
    }
}

/// Answers from `L` and writes down every question (`TYPE name`), in order.
pub struct Questions<L>(pub L, pub Arc<Mutex<Vec<String>>>);

impl<L> Questions<L> {
    fn note(&self, q: String) {
        self.1.lock().unwrap().push(q);
    }
}

impl<L: Lookup> Lookup for Questions<L> {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        self.note(format!("TXT {name}"));
        self.0.txt(name).await
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        self.note(format!("A {name}"));
        self.0.a(name).await
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        self.note(format!("AAAA {name}"));
        self.0.aaaa(name).await
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        self.note(format!("MX {name}"));
        self.0.mx(name).await
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        self.note(format!("PTR {ip}"));
        self.0.ptr(ip).await
    }
}

/// A name server that never answers.
pub struct Silent;

impl Lookup for Silent {
    async fn txt(&self, _: &str) -> DnsResult<Vec<u8>> {
        std::future::pending().await
    }
    async fn a(&self, _: &str) -> DnsResult<Ipv4Addr> {
        std::future::pending().await
    }
    async fn aaaa(&self, _: &str) -> DnsResult<Ipv6Addr> {
        std::future::pending().await
    }
    async fn mx(&self, _: &str) -> DnsResult<MxRecord> {
        std::future::pending().await
    }
    async fn ptr(&self, _: IpAddr) -> DnsResult<String> {
        std::future::pending().await
    }
}

/// Records what the server reports.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<String>>);

impl Recorder {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until a line containing `needle` was recorded.
    pub async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{needle:?} never reported; got {:?}", self.lines());
    }
}

impl ServerObserver for Recorder {
    fn connection_opened(&self, peer: &str) {
        self.0.lock().unwrap().push(format!("open {peer}"));
    }
    fn connection_closed(&self, peer: &str, end: &Result<ConnectionEnd, ConnectionError>) {
        let what = match end {
            Ok(e) => format!("{e:?}"),
            Err(e) => format!("error {}: {}", e.kind(), dmarc_milter::daemon::chain(e)),
        };
        self.0.lock().unwrap().push(format!("closed {peer} {what}"));
    }
    fn note(&self, peer: &str, note: &str) {
        self.0.lock().unwrap().push(format!("note {peer} {note}"));
    }
}

/// A frame fixture: the frames from the MTA and those from the milter, each in order.
pub struct Recording {
    pub name: String,
    pub from_mta: Vec<Frame>,
    pub from_milter: Vec<Frame>,
}

fn frames(hexes: &[&str]) -> Vec<Frame> {
    let mut d = FrameDecoder::new(1 << 24);
    for h in hexes {
        d.push(&hex(h));
    }
    let mut out = Vec::new();
    while let Some(f) = d.next_frame().expect("fixture frame") {
        out.push(f);
    }
    d.finish().expect("fixture ends between frames");
    out
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

pub fn recordings(dir: &str) -> Vec<Recording> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/frames")
        .join(dir);
    let mut paths: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "frames"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let (mut mta, mut milter) = (Vec::new(), Vec::new());
            for line in text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
            {
                match line.split_once(' ') {
                    Some((">", h)) => mta.push(h),
                    Some(("<", h)) => milter.push(h),
                    _ => panic!("{}: bad line {line:?}", p.display()),
                }
            }
            Recording {
                name: p.file_stem().unwrap().to_string_lossy().into_owned(),
                from_mta: frames(&mta),
                from_milter: frames(&milter),
            }
        })
        .collect()
}
