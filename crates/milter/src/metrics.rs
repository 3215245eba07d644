//! Counters of the daemon in the Prometheus text exposition format (version 0.0.4), and
//! the small HTTP listener that serves them at `/metrics`.
//!
//! * `dmarc_milter_messages_total{dmarc,action}`: messages judged, by DMARC result and
//!   what was done; exempt messages have `dmarc="exempt"`, unverified ones (too large)
//!   `dmarc="unverified"`.
//! * `dmarc_milter_exempt_total{reason}`: exemptions (client network, authenticated, ...).
//! * `dmarc_milter_message_seconds`: a histogram of the time from MAIL FROM to the verdict.
//! * `dmarc_milter_dns_queries_total{type,result}`: DNS questions by record type and
//!   answer (`answer`, `nxdomain`, `nodata`, `temperror`: the failures).
//! * `dmarc_milter_connections` (open), `dmarc_milter_connections_total`,
//!   `dmarc_milter_connection_errors_total{kind}`.
//! * `dmarc_milter_reloads_total{result}`.
//! * `dmarc_milter_flush_lag_seconds`: at the last write of the counts of observations,
//!   the age of the oldest count written (or, when the write failed, kept); absent until
//!   the first write.
//! * `dmarc_milter_flushes_total{result}`, `dmarc_milter_observations_written_total`
//!   (messages), `dmarc_milter_observations_pending_rows` and
//!   `dmarc_milter_observations_pending_messages`: the counting of observations.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use dmarc_proto::dns::{DnsError, DnsResult, Lookup, MxRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

const QTYPES: [&str; 5] = ["A", "AAAA", "MX", "TXT", "PTR"];
const DNS_RESULTS: [&str; 4] = ["answer", "nxdomain", "nodata", "temperror"];

/// Every counter of the daemon. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    messages: Mutex<BTreeMap<(String, &'static str), u64>>,
    exempt: Mutex<BTreeMap<&'static str, u64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    dns: [[AtomicU64; DNS_RESULTS.len()]; QTYPES.len()],
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    connection_errors: Mutex<BTreeMap<&'static str, u64>>,
    reloads: Mutex<BTreeMap<&'static str, u64>>,
    flush_lag: Mutex<Option<f64>>,
    flushes: Mutex<BTreeMap<&'static str, u64>>,
    observations_written: AtomicU64,
    pending_rows: AtomicU64,
    pending_messages: AtomicU64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_insert(0) += 1;
    }
}

impl Metrics {
    /// New, all zero.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// A message was judged: its DMARC result (or `exempt`, `unverified`), the action,
    /// and the time it took.
    pub fn message(&self, dmarc: &str, action: &'static str, elapsed: Duration) {
        bump(&self.messages, (dmarc.to_owned(), action));
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound
                && let Some(b) = self.latency_buckets.get(i)
            {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// An exemption applied.
    pub fn exempt(&self, reason: &'static str) {
        bump(&self.exempt, reason);
    }

    /// A DNS question was answered (or not).
    pub fn dns<T>(&self, qtype: usize, result: &DnsResult<T>) {
        let r = match result {
            Ok(_) => 0,
            Err(DnsError::NxDomain) => 1,
            Err(DnsError::NoData) => 2,
            Err(DnsError::Temporary(_)) => 3,
        };
        if let Some(c) = self.dns.get(qtype).and_then(|row| row.get(r)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection opened.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed, with the kind of error if it failed.
    pub fn connection_closed(&self, error: Option<&'static str>) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
        if let Some(kind) = error {
            bump(&self.connection_errors, kind);
        }
    }

    /// A configuration reload succeeded or failed.
    pub fn reload(&self, ok: bool) {
        bump(&self.reloads, if ok { "ok" } else { "failed" });
    }

    /// The age of the oldest count at the last write of the counts of observations.
    pub fn set_flush_lag(&self, lag: Duration) {
        if let Ok(mut l) = self.flush_lag.lock() {
            *l = Some(lag.as_secs_f64());
        }
    }

    /// A write of the counts succeeded (with the messages written) or failed.
    pub fn flushed(&self, ok: bool, messages: u64) {
        bump(&self.flushes, if ok { "ok" } else { "failed" });
        self.observations_written
            .fetch_add(messages, Ordering::Relaxed);
    }

    /// The counts held in memory: distinct rows and messages.
    pub fn set_pending(&self, rows: usize, messages: u64) {
        self.pending_rows.store(rows as u64, Ordering::Relaxed);
        self.pending_messages.store(messages, Ordering::Relaxed);
    }

    /// The messages counted with this DMARC result and action (for tests and checks).
    pub fn messages_with(&self, dmarc: &str, action: &str) -> u64 {
        self.messages.lock().map_or(0, |m| {
            m.iter()
                .filter(|((d, a), _)| d == dmarc && *a == action)
                .map(|(_, n)| *n)
                .sum()
        })
    }

    /// Everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let header = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
        };
        header(
            &mut o,
            "dmarc_milter_messages_total",
            "counter",
            "Messages judged, by DMARC result and action taken.",
        );
        if let Ok(m) = self.messages.lock() {
            for ((dmarc, action), n) in m.iter() {
                let _ = writeln!(
                    o,
                    "dmarc_milter_messages_total{{dmarc=\"{}\",action=\"{action}\"}} {n}",
                    escape(dmarc)
                );
            }
        }
        header(
            &mut o,
            "dmarc_milter_exempt_total",
            "counter",
            "Connections and messages accepted without checks, by reason.",
        );
        if let Ok(m) = self.exempt.lock() {
            for (reason, n) in m.iter() {
                let _ = writeln!(o, "dmarc_milter_exempt_total{{reason=\"{reason}\"}} {n}");
            }
        }
        header(
            &mut o,
            "dmarc_milter_message_seconds",
            "histogram",
            "Time from MAIL FROM to the verdict.",
        );
        for (bound, count) in BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                o,
                "dmarc_milter_message_seconds_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "dmarc_milter_message_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "dmarc_milter_message_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "dmarc_milter_message_seconds_count {count}");
        header(
            &mut o,
            "dmarc_milter_dns_queries_total",
            "counter",
            "DNS questions by record type and answer (temperror: the failures).",
        );
        for (qtype, row) in QTYPES.iter().zip(&self.dns) {
            for (result, n) in DNS_RESULTS.iter().zip(row) {
                let _ = writeln!(
                    o,
                    "dmarc_milter_dns_queries_total{{type=\"{qtype}\",result=\"{result}\"}} {}",
                    n.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut o,
            "dmarc_milter_connections",
            "gauge",
            "Milter connections open.",
        );
        let _ = writeln!(
            o,
            "dmarc_milter_connections {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        header(
            &mut o,
            "dmarc_milter_connections_total",
            "counter",
            "Milter connections accepted.",
        );
        let _ = writeln!(
            o,
            "dmarc_milter_connections_total {}",
            self.connections_total.load(Ordering::Relaxed)
        );
        header(
            &mut o,
            "dmarc_milter_connection_errors_total",
            "counter",
            "Milter connections closed on an error, by kind.",
        );
        if let Ok(m) = self.connection_errors.lock() {
            for (kind, n) in m.iter() {
                let _ = writeln!(
                    o,
                    "dmarc_milter_connection_errors_total{{kind=\"{kind}\"}} {n}"
                );
            }
        }
        header(
            &mut o,
            "dmarc_milter_reloads_total",
            "counter",
            "Configuration reloads, by result.",
        );
        if let Ok(m) = self.reloads.lock() {
            for (result, n) in m.iter() {
                let _ = writeln!(o, "dmarc_milter_reloads_total{{result=\"{result}\"}} {n}");
            }
        }
        header(
            &mut o,
            "dmarc_milter_flushes_total",
            "counter",
            "Writes of the counts of observations to the store, by result.",
        );
        if let Ok(m) = self.flushes.lock() {
            for (result, n) in m.iter() {
                let _ = writeln!(o, "dmarc_milter_flushes_total{{result=\"{result}\"}} {n}");
            }
        }
        for (name, kind, help, value) in [
            (
                "dmarc_milter_observations_written_total",
                "counter",
                "Messages whose observation was written to the store.",
                &self.observations_written,
            ),
            (
                "dmarc_milter_observations_pending_rows",
                "gauge",
                "Distinct rows of counts held in memory, not yet written.",
                &self.pending_rows,
            ),
            (
                "dmarc_milter_observations_pending_messages",
                "gauge",
                "Messages counted in memory, not yet written.",
                &self.pending_messages,
            ),
        ] {
            header(&mut o, name, kind, help);
            let _ = writeln!(o, "{name} {}", value.load(Ordering::Relaxed));
        }
        if let Ok(Some(lag)) = self.flush_lag.lock().map(|l| *l) {
            header(
                &mut o,
                "dmarc_milter_flush_lag_seconds",
                "gauge",
                "Age of the oldest counts not yet written to the store.",
            );
            let _ = writeln!(o, "dmarc_milter_flush_lag_seconds {lag}");
        }
        o
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A [`Lookup`] that counts every question and answer in [`Metrics`].
#[derive(Debug)]
pub struct Metered<L> {
    inner: L,
    metrics: Arc<Metrics>,
}

impl<L> Metered<L> {
    /// Counts the questions asked of `inner`.
    pub fn new(inner: L, metrics: Arc<Metrics>) -> Self {
        Metered { inner, metrics }
    }

    /// The resolver inside.
    pub fn inner(&self) -> &L {
        &self.inner
    }
}

impl<L: Lookup> Lookup for Metered<L> {
    async fn txt(&self, name: &str) -> DnsResult<Vec<u8>> {
        let r = self.inner.txt(name).await;
        self.metrics.dns(3, &r);
        r
    }
    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        let r = self.inner.a(name).await;
        self.metrics.dns(0, &r);
        r
    }
    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        let r = self.inner.aaaa(name).await;
        self.metrics.dns(1, &r);
        r
    }
    async fn mx(&self, name: &str) -> DnsResult<MxRecord> {
        let r = self.inner.mx(name).await;
        self.metrics.dns(2, &r);
        r
    }
    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        let r = self.inner.ptr(ip).await;
        self.metrics.dns(4, &r);
        r
    }
}

/// Serves `GET /metrics` (and `HEAD`) on `listener` until the task is dropped. A
/// deliberately small HTTP/1.x responder: one request per connection, the request head
/// at most 8 KiB and read within 5 seconds, at most 16 clients at once.
pub async fn serve_http(listener: TcpListener, metrics: Arc<Metrics>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(16));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut head = Vec::with_capacity(512);
            let mut buf = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(buf.get(..n).unwrap_or_default());
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let response = respond(&head, &metrics);
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&response)).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The HTTP response to a request head.
fn respond(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    let line = head
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_owned())
        .unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_family_and_counts() {
        let m = Metrics::default();
        m.message("pass", "accept", Duration::from_millis(3));
        m.message("fail", "reject", Duration::from_millis(40));
        m.exempt("authenticated");
        m.dns::<()>(3, &Ok(vec![()]));
        m.dns::<()>(3, &Err(DnsError::Temporary("timeout".into())));
        m.connection_opened();
        m.connection_closed(Some("codec"));
        let text = m.render();
        for want in [
            "dmarc_milter_messages_total{dmarc=\"pass\",action=\"accept\"} 1",
            "dmarc_milter_messages_total{dmarc=\"fail\",action=\"reject\"} 1",
            "dmarc_milter_exempt_total{reason=\"authenticated\"} 1",
            "dmarc_milter_message_seconds_bucket{le=\"0.005\"} 1",
            "dmarc_milter_message_seconds_bucket{le=\"0.05\"} 2",
            "dmarc_milter_message_seconds_bucket{le=\"+Inf\"} 2",
            "dmarc_milter_message_seconds_count 2",
            "dmarc_milter_dns_queries_total{type=\"TXT\",result=\"answer\"} 1",
            "dmarc_milter_dns_queries_total{type=\"TXT\",result=\"temperror\"} 1",
            "dmarc_milter_connections 0",
            "dmarc_milter_connections_total 1",
            "dmarc_milter_connection_errors_total{kind=\"codec\"} 1",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        assert!(!text.contains("flush_lag"));
        m.set_flush_lag(Duration::from_secs(2));
        assert!(m.render().contains("dmarc_milter_flush_lag_seconds 2"));
    }

    #[test]
    fn http_responses() {
        let m = Metrics::default();
        let ok =
            String::from_utf8(respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &m)).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.contains("dmarc_milter_connections 0"));
        let head = String::from_utf8(respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", &m)).unwrap();
        assert!(head.ends_with("\r\n\r\n"));
        assert!(
            String::from_utf8(respond(b"GET / HTTP/1.1\r\n\r\n", &m))
                .unwrap()
                .contains("404")
        );
        assert!(
            String::from_utf8(respond(b"POST /metrics HTTP/1.1\r\n\r\n", &m))
                .unwrap()
                .contains("405")
        );
        assert!(
            String::from_utf8(respond(b"\xff\xfe", &m))
                .unwrap()
                .contains("405")
        );
    }
}
