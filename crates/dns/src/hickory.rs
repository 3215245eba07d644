//! [`HickoryLookup`]: asks real name servers, through hickory-resolver on Tokio.
//!
//! This is the adapter a mail server runs with. It sends each question to recursive name
//! servers (those of `/etc/resolv.conf`, or ones given explicitly, e.g. with
//! `--nameserver 127.0.0.1`) and keeps the [`Lookup`] contract:
//!
//! * **Names are absolute.** Every name is made fully qualified before asking: no search
//!   list, no `domain`, and `ndots` never applies. `/etc/hosts` is not consulted.
//! * **Answers are classified precisely.** NXDOMAIN is [`DnsError::NxDomain`]; NOERROR
//!   without records of the type is [`DnsError::NoData`]; everything else (time-out,
//!   SERVFAIL, REFUSED, a network error, a malformed response, a CNAME chain the resolver
//!   gave up on with an error) is [`DnsError::Temporary`] with a reason naming the question,
//!   e.g. `TXT example.com: the name server answered SERVFAIL`.
//! * **CNAMEs are followed**; the records of the canonical name are returned. A chain that
//!   ends at a name that does not exist is NXDOMAIN; one that loops or is longer than
//!   [`MAX_CNAME_CHAIN`] is a temporary error naming the chain (hickory alone would report
//!   NODATA there: see `HickoryLookup::resolve`).
//! * **TXT** character-strings of each record are joined, bytes untouched; **MX** and
//!   **PTR** names are lower-cased without trailing dot, a null MX (`.`, RFC 7505) gives the
//!   exchange `""`.
//! * **Caching honours TTLs**, for positive answers and for NXDOMAIN/NODATA (RFC 2308: the
//!   negative TTL is the smaller of the SOA record's TTL and its MINIMUM field). A negative
//!   answer without SOA, which gives no TTL, is kept for
//!   [`ResolverOptions::negative_ttl_without_soa`] (RFC 2308 §5 advises caching servers
//!   not to keep those at all, lest two servers loop a negative answer between them
//!   forever; this resolver answers no one else, so a short, bounded time is safe, and a
//!   name that a broken or minimal server denies without SOA, such as an SMTP client's
//!   HELO name asked at every message, is not asked again each time). Failures are never
//!   cached. TTLs are capped by [`ResolverOptions::max_positive_ttl`] and
//!   [`ResolverOptions::max_negative_ttl`].
//! * **Time is bounded.** Each attempt waits at most [`ResolverOptions::timeout`]; a question
//!   is tried [`ResolverOptions::attempts`] times; and whatever hickory does, the answer (or a
//!   temporary error) comes within [`ResolverOptions::deadline`].
//!
//! [`HickoryLookup::stats`] counts the questions asked, how many were answered without
//! sending anything (from the cache), and the DNS requests actually sent.
//!
//! The futures must be polled inside a Tokio runtime (hickory spawns its socket tasks on
//! it); outside one, every question fails with a temporary error instead of panicking.
//!
//! RFC 6761 special-use names are answered by hickory without asking: `localhost` has the
//! loopback addresses, names under `invalid` do not exist.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dmarc_proto::dns::{DnsResult, reverse_name};
use dmarc_proto::{DnsError, Lookup, MxRecord};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup as HickoryAnswer;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::DnsHandle;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::{DnsRequest, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{ConnectionProvider, PoolContext, Resolver};

use crate::QType;
use crate::zone::MAX_CNAME_CHAIN;

/// How the resolver behaves. Every field states its default.
///
/// The defaults fit inside the time a mail server gives a milter or policy service for one
/// step: Postfix waits 30 s per milter command (`milter_command_timeout`), Sendmail 10 s to
/// read a reply (`T=R:10s`). SPF alone may need a dozen dependent lookups (RFC 7208 §4.6.4
/// suggests allowing at least 20 s for a whole check), and most answers come from the cache
/// of the recursive server in milliseconds, so one slow or dead server must not eat the
/// budget: 2 s per attempt and 2 attempts bound a question to about 4 s, with a hard deadline
/// of 5 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverOptions {
    /// How long to wait for one response from one name server. Default: 2 s.
    pub timeout: Duration,
    /// How many times a question is sent before giving up on time-outs and network errors
    /// (NXDOMAIN, NODATA and other responses are not retried). Like `attempts:` in
    /// resolv.conf, this counts the first try; 0 is taken as 1. Default: 2.
    pub attempts: usize,
    /// The longest one question may take, retries, name server fail-over and CNAME hops
    /// included; past it the answer is a temporary error. Default: 5 s.
    pub deadline: Duration,
    /// How many responses the cache holds (positive and negative); 0 disables caching.
    /// Default: 8192.
    pub cache_size: usize,
    /// The longest a positive answer stays cached, whatever its TTL. Default: 1 day.
    pub max_positive_ttl: Duration,
    /// The longest an NXDOMAIN or NODATA answer stays cached, whatever its SOA says
    /// (RFC 2308 §5 advises one to three hours). Default: 1 hour.
    pub max_negative_ttl: Duration,
    /// How long an NXDOMAIN or NODATA answer that came without SOA record (so without a
    /// negative TTL) is kept; at most [`ResolverOptions::max_negative_ttl`]; zero: not
    /// kept (RFC 2308 §5's advice to caching servers). Default: 60 s.
    pub negative_ttl_without_soa: Duration,
    /// Retry over TCP when a UDP exchange fails (truncated answers always go to TCP).
    /// Default: true.
    pub try_tcp_on_error: bool,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            timeout: Duration::from_secs(2),
            attempts: 2,
            deadline: Duration::from_secs(5),
            cache_size: 8192,
            max_positive_ttl: Duration::from_secs(86_400),
            max_negative_ttl: Duration::from_secs(3600),
            negative_ttl_without_soa: Duration::from_secs(60),
            try_tcp_on_error: true,
        }
    }
}

/// Counts of what a [`HickoryLookup`] did, from [`HickoryLookup::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Questions asked through the [`Lookup`] methods. Once every question has been
    /// answered, `questions == from_network + from_cache` (questions refused before asking,
    /// for an invalid name or outside a Tokio runtime, count in neither).
    pub questions: u64,
    /// Questions for which at least one request went to a name server.
    pub from_network: u64,
    /// Questions answered without sending anything: from the cache (also special-use names
    /// such as `localhost` that hickory answers locally).
    pub from_cache: u64,
    /// DNS requests sent to name servers: retries, CNAME hops and fail-over to another
    /// server included, so it can exceed `from_network`.
    pub requests_sent: u64,
}

/// Why a [`HickoryLookup`] could not be set up, or a `--nameserver` value was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResolverError {
    /// A name server address that is not `IP` or `IP:PORT` (`[IPv6]:PORT`).
    InvalidNameserver {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No name server to ask.
    NoNameservers,
    /// The system resolver configuration could not be read.
    SystemConfig(String),
    /// hickory-resolver refused the configuration.
    Build(String),
}

impl fmt::Display for ResolverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolverError::InvalidNameserver { input, reason } => {
                write!(f, "invalid name server {input:?}: {reason}")
            }
            ResolverError::NoNameservers => f.write_str("no name server configured"),
            ResolverError::SystemConfig(why) => {
                write!(f, "cannot read the system resolver configuration: {why}")
            }
            ResolverError::Build(why) => write!(f, "cannot set up the resolver: {why}"),
        }
    }
}

impl std::error::Error for ResolverError {}

/// Parses a name server given as `IP` or `IP:PORT`: `192.0.2.53`, `192.0.2.53:5353`,
/// `2001:db8::53`, `[2001:db8::53]:5353` (or `[2001:db8::53]`). The port defaults to 53.
pub fn parse_nameserver(input: &str) -> Result<SocketAddr, ResolverError> {
    let invalid = |reason: &str| ResolverError::InvalidNameserver {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(invalid("empty"));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| SocketAddr::new(IpAddr::V6(ip), 53))
            .map_err(|_| invalid("not an IPv6 address between the brackets"));
    }
    match text.parse::<SocketAddr>() {
        Ok(addr) if addr.port() == 0 => Err(invalid("port 0")),
        Ok(addr) => Ok(addr),
        Err(_) => {
            let host = text.rsplit_once(':').map_or(text, |(h, _)| h);
            if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
                Err(invalid("the port is not a number from 1 to 65535"))
            } else if host.chars().any(|c| c.is_ascii_alphabetic()) && !host.contains("::") {
                Err(invalid(
                    "a name server is given by IP address, not host name",
                ))
            } else {
                Err(invalid(
                    "expected IP or IP:PORT (IPv6 with a port as [IP]:PORT)",
                ))
            }
        }
    }
}

/// A [`Lookup`] over hickory-resolver. See the [module documentation](self).
///
/// Cheap to clone: clones share the cache and the statistics.
#[derive(Clone)]
pub struct HickoryLookup {
    resolver: Arc<Resolver<CountingProvider>>,
    options: ResolverOptions,
    servers: Arc<[SocketAddr]>,
    counters: Arc<Counters>,
    without_soa: Arc<NegativeCache>,
}

/// The negative answers that came without SOA record (hickory's cache keeps a negative
/// answer only for the TTL its SOA gives): NXDOMAIN or NODATA by question (type and
/// lower-case absolute name), until a deadline. Bounded: when full, the expired entries
/// go, and if none has expired, all of them.
#[derive(Debug)]
struct NegativeCache {
    ttl: Duration,
    capacity: usize,
    entries: std::sync::Mutex<std::collections::HashMap<(RecordType, String), (DnsError, Instant)>>,
}

impl NegativeCache {
    fn new(ttl: Duration, capacity: usize) -> Self {
        NegativeCache {
            ttl,
            capacity,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn key(rtype: RecordType, fqdn: &Name) -> (RecordType, String) {
        (rtype, fqdn.to_lowercase().to_ascii())
    }

    fn get(&self, rtype: RecordType, fqdn: &Name) -> Option<DnsError> {
        if self.ttl.is_zero() || self.capacity == 0 {
            return None;
        }
        let key = Self::key(rtype, fqdn);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key) {
            Some((error, until)) if Instant::now() < *until => Some(error.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    fn put(&self, rtype: RecordType, fqdn: &Name, error: DnsError) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(Self::key(rtype, fqdn), (error, now + self.ttl));
    }

    fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl fmt::Debug for HickoryLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HickoryLookup")
            .field("servers", &self.servers)
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish()
    }
}

#[derive(Debug, Default)]
struct Counters {
    questions: AtomicU64,
    from_network: AtomicU64,
    from_cache: AtomicU64,
    requests_sent: AtomicU64,
}

impl HickoryLookup {
    /// A resolver asking the name servers of the system configuration (`/etc/resolv.conf`
    /// on Unix). Only the name servers are taken from it: its `search`, `domain`, `ndots`,
    /// `timeout` and `attempts` do not apply (names are absolute, `options` rules).
    pub fn system(options: ResolverOptions) -> Result<HickoryLookup, ResolverError> {
        let (config, _) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| ResolverError::SystemConfig(e.to_string()))?;
        let servers = config.name_servers().to_vec();
        HickoryLookup::build(servers, options)
    }

    /// A resolver asking the given name servers (over UDP, and TCP for truncated answers),
    /// in the order given.
    pub fn with_nameservers(
        servers: &[SocketAddr],
        options: ResolverOptions,
    ) -> Result<HickoryLookup, ResolverError> {
        let configs = servers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        HickoryLookup::build(configs, options)
    }

    fn build(
        servers: Vec<NameServerConfig>,
        options: ResolverOptions,
    ) -> Result<HickoryLookup, ResolverError> {
        if servers.is_empty() {
            return Err(ResolverError::NoNameservers);
        }
        let shown: Arc<[SocketAddr]> = servers
            .iter()
            .flat_map(|s| s.connections.first().map(|c| SocketAddr::new(s.ip, c.port)))
            .collect();
        let counters = Arc::new(Counters::default());
        let provider = CountingProvider {
            inner: TokioRuntimeProvider::default(),
            counters: Arc::clone(&counters),
        };
        let mut opts = ResolverOpts::default();
        opts.timeout = options.timeout;
        // hickory counts retries after the first try.
        opts.attempts = options.attempts.max(1) - 1;
        opts.cache_size = options.cache_size as u64;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        opts.edns0 = true;
        opts.preserve_intermediates = false;
        opts.try_tcp_on_error = options.try_tcp_on_error;
        opts.positive_max_ttl = Some(options.max_positive_ttl);
        opts.negative_max_ttl = Some(options.max_negative_ttl);
        let resolver =
            Resolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
                .with_options(opts)
                .build()
                .map_err(|e| ResolverError::Build(e.to_string()))?;
        let without_soa = Arc::new(NegativeCache::new(
            options
                .negative_ttl_without_soa
                .min(options.max_negative_ttl),
            options.cache_size,
        ));
        Ok(HickoryLookup {
            resolver: Arc::new(resolver),
            options,
            servers: shown,
            counters,
            without_soa,
        })
    }

    /// What this resolver has done so far (shared by clones).
    pub fn stats(&self) -> LookupStats {
        LookupStats {
            questions: self.counters.questions.load(Ordering::Relaxed),
            from_network: self.counters.from_network.load(Ordering::Relaxed),
            from_cache: self.counters.from_cache.load(Ordering::Relaxed),
            requests_sent: self.counters.requests_sent.load(Ordering::Relaxed),
        }
    }

    /// The name servers asked (address and port of each).
    pub fn nameservers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// The options in effect.
    pub fn options(&self) -> &ResolverOptions {
        &self.options
    }

    /// Empties the cache.
    pub fn clear_cache(&self) {
        self.resolver.clear_cache();
        self.without_soa.clear();
    }

    /// Asks one question and converts the answer with `pick`.
    async fn ask<T>(
        &self,
        qtype: QType,
        name: &str,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> DnsResult<T> {
        self.counters.questions.fetch_add(1, Ordering::Relaxed);
        let what = format!("{qtype} {}", name.strip_suffix('.').unwrap_or(name));
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(DnsError::Temporary(format!(
                "{what}: the resolver must run inside a Tokio runtime"
            )));
        }
        let mut fqdn = Name::from_ascii(name).map_err(|e| {
            DnsError::Temporary(format!("{what}: cannot ask about an invalid name: {e}"))
        })?;
        fqdn.set_fqdn(true);
        let rtype = match qtype {
            QType::A => RecordType::A,
            QType::Aaaa => RecordType::AAAA,
            QType::Mx => RecordType::MX,
            QType::Txt => RecordType::TXT,
            QType::Ptr => RecordType::PTR,
            QType::Cname => RecordType::CNAME,
        };
        if let Some(negative) = self.without_soa.get(rtype, &fqdn) {
            self.counters.from_cache.fetch_add(1, Ordering::Relaxed);
            return Err(negative);
        }
        let work = self.resolve(&what, fqdn, rtype);
        let (result, sent) = REQUESTS_SENT
            .scope(Cell::new(false), async {
                let result = tokio::time::timeout(self.options.deadline, work).await;
                (result, REQUESTS_SENT.with(Cell::get))
            })
            .await;
        if sent {
            self.counters.from_network.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.from_cache.fetch_add(1, Ordering::Relaxed);
        }
        let answer = match result {
            Err(_elapsed) => {
                return Err(DnsError::Temporary(format!(
                    "{what}: no answer within {:?}",
                    self.options.deadline
                )));
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(answer)) => answer,
        };
        let found = records(&answer, rtype).filter_map(pick).collect::<Vec<_>>();
        if found.is_empty() {
            Err(DnsError::NoData)
        } else {
            Ok(found)
        }
    }

    /// Asks hickory, and checks a NODATA that may hide a CNAME loop or a chain hickory gave
    /// up on.
    ///
    /// hickory follows CNAMEs itself, but when a chain loops or needs more hops than it is
    /// willing to make it reports NOERROR with no records, which would read as NODATA (a void
    /// lookup to SPF). A genuine NODATA names the asked name and carries the zone's SOA
    /// (RFC 2308 §2.2); when either is missing, the chain is walked here with CNAME queries
    /// (cached like any other): a loop or a chain longer than [`MAX_CNAME_CHAIN`] is a
    /// temporary error, and a chain that ends is asked again at its last name.
    ///
    /// A negative outcome whose first answer had no SOA record is kept in the
    /// [`NegativeCache`] (hickory keeps it for no time).
    async fn resolve(
        &self,
        what: &str,
        fqdn: Name,
        rtype: RecordType,
    ) -> Result<HickoryAnswer, DnsError> {
        let error = match self.resolver.lookup(fqdn.clone(), rtype).await {
            Ok(answer) => return Ok(answer),
            Err(error) => error,
        };
        let without_soa = matches!(
            &error,
            NetError::Dns(HickoryDnsError::NoRecordsFound(no)) if no.negative_ttl.is_none()
        );
        let result = self.resolve_negative(what, &fqdn, rtype, error).await;
        if without_soa && let Err(e @ (DnsError::NxDomain | DnsError::NoData)) = &result {
            self.without_soa.put(rtype, &fqdn, e.clone());
        }
        result
    }

    /// [`HickoryLookup::resolve`] after hickory's `error`.
    async fn resolve_negative(
        &self,
        what: &str,
        fqdn: &Name,
        rtype: RecordType,
        error: NetError,
    ) -> Result<HickoryAnswer, DnsError> {
        let fqdn = fqdn.clone();
        let suspicious = matches!(
            &error,
            NetError::Dns(HickoryDnsError::NoRecordsFound(no))
                if no.response_code == ResponseCode::NoError
                    && (no.soa.is_none() || *no.query.name() != fqdn)
        );
        let error = self.classify(what, error);
        if !suspicious || error != DnsError::NoData {
            return Err(error);
        }
        match self.cname_chain_end(what, fqdn).await? {
            None => Err(DnsError::NoData),
            Some(last) => self
                .resolver
                .lookup(last, rtype)
                .await
                .map_err(|e| self.classify(what, e)),
        }
    }

    /// Walks the CNAME chain starting at `start`: `None` when `start` is no alias, else the
    /// last name of the chain; an error for a loop or an overlong chain.
    async fn cname_chain_end(&self, what: &str, start: Name) -> Result<Option<Name>, DnsError> {
        let mut chain = vec![start.clone()];
        let mut current = start;
        loop {
            let next = match self
                .resolver
                .lookup(current.clone(), RecordType::CNAME)
                .await
            {
                Ok(answer) => answer.answers().iter().find_map(|r| match &r.data {
                    RData::CNAME(target) if r.name == current => Some(target.0.clone()),
                    _ => None,
                }),
                Err(e) => match self.classify(what, e) {
                    DnsError::NoData | DnsError::NxDomain => None,
                    temporary => return Err(temporary),
                },
            };
            let Some(next) = next else {
                return Ok((chain.len() > 1).then_some(current));
            };
            let looped = chain.contains(&next);
            chain.push(next.clone());
            let shown = || chain.iter().map(name_text).collect::<Vec<_>>().join(" -> ");
            if looped {
                return Err(DnsError::Temporary(format!(
                    "{what}: CNAME loop: {}",
                    shown()
                )));
            }
            if chain.len() > MAX_CNAME_CHAIN + 1 {
                return Err(DnsError::Temporary(format!(
                    "{what}: CNAME chain longer than {MAX_CNAME_CHAIN}: {}",
                    shown()
                )));
            }
            current = next;
        }
    }

    /// Maps a hickory error to the three kinds of the contract.
    fn classify(&self, what: &str, error: NetError) -> DnsError {
        match error {
            NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => match no.response_code {
                ResponseCode::NXDomain => DnsError::NxDomain,
                ResponseCode::NoError => DnsError::NoData,
                code => DnsError::Temporary(format!(
                    "{what}: the name server answered {}",
                    rcode_name(code)
                )),
            },
            NetError::Dns(HickoryDnsError::ResponseCode(code)) => DnsError::Temporary(format!(
                "{what}: the name server answered {}",
                rcode_name(code)
            )),
            NetError::Timeout => DnsError::Temporary(format!(
                "{what}: no response within {:?} (tried {} time(s))",
                self.options.timeout,
                self.options.attempts.max(1)
            )),
            NetError::NoConnections => DnsError::Temporary(format!(
                "{what}: no name server could be reached ({})",
                self.servers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            NetError::Io(e) => DnsError::Temporary(format!("{what}: network error: {e}")),
            other => DnsError::Temporary(format!("{what}: {other}")),
        }
    }
}

/// The records of the asked type in an answer (CNAMEs of the chain left out).
fn records(answer: &HickoryAnswer, rtype: RecordType) -> impl Iterator<Item = &RData> {
    answer
        .answers()
        .iter()
        .filter(move |r| r.record_type() == rtype)
        .map(|r| &r.data)
}

/// `SERVFAIL (Server Failure)`, `REFUSED (Query Refused)`, ...
fn rcode_name(code: ResponseCode) -> String {
    let mnemonic = match u16::from(code) {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        n => return format!("RCODE {n} ({code})"),
    };
    format!("{mnemonic} ({code})")
}

/// A returned name: lower-case, no trailing dot, `""` for the root.
fn name_text(name: &Name) -> String {
    let mut text = name.to_lowercase().to_ascii();
    if text.ends_with('.') && !text.ends_with("\\.") || text == "." {
        text.pop();
    }
    text
}

impl Lookup for HickoryLookup {
    fn txt(&self, name: &str) -> impl Future<Output = DnsResult<Vec<u8>>> + Send {
        self.ask(QType::Txt, name, |r| match r {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect(),
            ),
            _ => None,
        })
    }

    fn a(&self, name: &str) -> impl Future<Output = DnsResult<Ipv4Addr>> + Send {
        self.ask(QType::A, name, |r| match r {
            RData::A(a) => Some(a.0),
            _ => None,
        })
    }

    fn aaaa(&self, name: &str) -> impl Future<Output = DnsResult<Ipv6Addr>> + Send {
        self.ask(QType::Aaaa, name, |r| match r {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
    }

    fn mx(&self, name: &str) -> impl Future<Output = DnsResult<MxRecord>> + Send {
        self.ask(QType::Mx, name, |r| match r {
            RData::MX(mx) => Some(MxRecord {
                preference: mx.preference,
                exchange: name_text(&mx.exchange),
            }),
            _ => None,
        })
    }

    fn ptr(&self, ip: IpAddr) -> impl Future<Output = DnsResult<String>> + Send {
        let name = reverse_name(ip);
        async move {
            self.ask(QType::Ptr, &name, |r| match r {
                RData::PTR(ptr) => Some(name_text(&ptr.0)),
                _ => None,
            })
            .await
        }
    }

    /// The CNAME record at `name` itself. The answer's first CNAME is the one owned by the
    /// asked name (a resolver returns the chain in order).
    async fn cname(&self, name: &str) -> DnsResult<String> {
        self.ask(QType::Cname, name, |r| match r {
            RData::CNAME(target) => Some(name_text(&target.0)),
            _ => None,
        })
        .await
        .map(|mut targets| {
            targets.truncate(1);
            targets
        })
    }
}

tokio::task_local! {
    /// Set when a request is sent on behalf of the question being answered in this task.
    static REQUESTS_SENT: Cell<bool>;
}

/// hickory's Tokio connection provider, with every request sent counted.
#[derive(Clone)]
struct CountingProvider {
    inner: TokioRuntimeProvider,
    counters: Arc<Counters>,
}

impl ConnectionProvider for CountingProvider {
    type Conn = CountingConn<<TokioRuntimeProvider as ConnectionProvider>::Conn>;
    type FutureConn = Pin<Box<dyn Future<Output = Result<Self::Conn, NetError>> + Send>>;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        let connecting = self.inner.new_connection(ip, config, cx)?;
        let counters = Arc::clone(&self.counters);
        Ok(Box::pin(async move {
            Ok(CountingConn {
                inner: connecting.await?,
                counters,
            })
        }))
    }

    fn runtime_provider(&self) -> &Self::RuntimeProvider {
        &self.inner
    }
}

/// A connection to one name server that counts the requests sent through it.
#[derive(Clone)]
struct CountingConn<C> {
    inner: C,
    counters: Arc<Counters>,
}

impl<C: DnsHandle> DnsHandle for CountingConn<C> {
    type Response = C::Response;
    type Runtime = C::Runtime;

    fn is_verifying_dnssec(&self) -> bool {
        self.inner.is_verifying_dnssec()
    }

    fn is_using_edns(&self) -> bool {
        self.inner.is_using_edns()
    }

    fn send(&self, request: DnsRequest) -> Self::Response {
        self.counters.requests_sent.fetch_add(1, Ordering::Relaxed);
        // Outside a question's task (not expected) this is simply not attributed.
        let _ = REQUESTS_SENT.try_with(|sent| sent.set(true));
        self.inner.send(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_syntax() {
        let ok = |s: &str| parse_nameserver(s).unwrap().to_string();
        assert_eq!(ok("192.0.2.53"), "192.0.2.53:53");
        assert_eq!(ok(" 192.0.2.53:5353 "), "192.0.2.53:5353");
        assert_eq!(ok("::1"), "[::1]:53");
        assert_eq!(ok("2001:db8::53"), "[2001:db8::53]:53");
        assert_eq!(ok("[::1]:5353"), "[::1]:5353");
        assert_eq!(ok("[::1]"), "[::1]:53");
        for bad in [
            "",
            "dns.example",
            "dns.example:53",
            "192.0.2.53:",
            "192.0.2.53:0",
            "192.0.2.53:65536",
            "192.0.2.300",
            "[::1]:x",
            "[::1",
            "::1:53:",
            "[192.0.2.1]:53",
        ] {
            let e = parse_nameserver(bad).unwrap_err();
            assert!(e.to_string().contains("invalid name server"), "{bad}: {e}");
        }
        assert!(
            parse_nameserver("dns.example")
                .unwrap_err()
                .to_string()
                .contains("IP address, not host name")
        );
    }

    #[test]
    fn returned_names() {
        let n = |s: &str| name_text(&Name::from_ascii(s).unwrap());
        assert_eq!(n("MX1.Example.COM."), "mx1.example.com");
        assert_eq!(n("."), "");
        assert_eq!(n("a.b"), "a.b");
    }

    #[test]
    fn rcodes() {
        assert_eq!(
            rcode_name(ResponseCode::ServFail),
            "SERVFAIL (Server Failure)"
        );
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED (Query Refused)");
    }

    #[test]
    fn defaults_fit_milter_timeouts() {
        let o = ResolverOptions::default();
        assert!(o.timeout * o.attempts as u32 <= o.deadline);
        assert!(o.deadline < Duration::from_secs(10));
    }
}
