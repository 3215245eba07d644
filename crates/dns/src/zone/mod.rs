//! [`ZoneFile`]: answers DNS questions from an RFC 1035 master file, with no network.
//!
//! Made for tests, benchmarks, reproducing a verdict offline and checking a zone before it
//! is published: the answers are those an authoritative server loaded with the same file
//! would give, under the [`Lookup`] contract.
//!
//! # What the file may contain
//!
//! The master-file format of RFC 1035 §5.1, with the usual extensions:
//!
//! * entries: `<owner> [<TTL>] [<class>] <type> <RDATA>`, TTL and class in either order and
//!   both optional; an owner left blank (the line starts with a space or tab) is the previous
//!   owner; `@` is the current origin; names not ending in `.` are relative to the origin;
//! * `$ORIGIN <name>`, `$TTL <ttl>` (RFC 2308 §4), and `$INCLUDE <file> [<origin>]` (only
//!   with [`ZoneFile::load`]; the path is taken relative to the including file's directory
//!   and must stay below it unless [`LoadOptions::include_anywhere`] says otherwise, and
//!   the including file's origin and owner are restored afterwards);
//! * parentheses continuing an entry over several lines, `;` comments, quoted
//!   character-strings (which may span lines), `\X` and `\DDD` escapes (in names too:
//!   `a\.b.example.` is a two-label name whose first label is `a.b`);
//! * TTLs as seconds or with units (`1h30m`, `1d`, `1w`), at most 2^31-1 (RFC 2181 §8);
//! * class `IN` (or `CLASS1`) only;
//! * any data type by mnemonic or as `TYPEnnn`, RDATA in text form or in the generic form
//!   `\# <length> <hex>` (RFC 3597 §5), also for known types.
//!
//! A, AAAA, MX, PTR, CNAME and TXT are served ([`Lookup::cname`] shows the CNAME at a name
//! without following it). TXT character-strings (at most 255 octets
//! each) are joined per record and kept as bytes: non-UTF-8 octets in the file and `\DDD`
//! escapes come through untouched. Records of type SPF (99) are read, so their owner
//! exists, but never served: RFC 7208 §3.1 retired them and the trait has no method for
//! them. NS, SOA, SRV and CAA RDATA is checked; other types are accepted without looking at
//! their RDATA. All make their owner exist.
//!
//! Identical records are kept once (an RRset is a set, RFC 2181 §5). A CNAME beside other
//! data, or two different CNAMEs at one name, is an error (RFC 1034 §3.6.2).
//!
//! # How questions are answered
//!
//! * A name in the file with records of the asked type: those records, in file order.
//! * A name in the file without records of that type: [`DnsError::NoData`]. So is an
//!   *empty non-terminal*, a name with no records but with descendants in the file
//!   (`_domainkey.example.com` when only `sel._domainkey.example.com` is listed), as in real
//!   DNS (RFC 8020).
//! * A name at a CNAME: the CNAME is followed, also across several hops, and the answer is
//!   that of the canonical name. A chain longer than [`MAX_CNAME_CHAIN`] or one that loops
//!   is [`DnsError::Temporary`] with the chain in the reason.
//! * Wildcards (`*.example.com.`) answer for names that do not exist below their parent, as
//!   RFC 4592 §3.3 describes (the closest encloser's `*` child is the source of synthesis).
//! * Any other name: [`DnsError::NxDomain`].
//!
//! Names compare case-insensitively; query names may carry a trailing dot and escapes.
//! Zone cuts and DNAME are not interpreted: NS records below the apex do not delegate, a
//! DNAME does not redirect its subtree.
//!
//! ```
//! use dmarc_dns::ZoneFile;
//! use dmarc_proto::{DnsError, Lookup};
//!
//! let zone = ZoneFile::parse(
//!     "$ORIGIN example.com.\n\
//!      @        IN TXT \"v=spf1 \" \"-all\"\n\
//!      www      IN CNAME @\n\
//!      sel._domainkey IN TXT \"v=DKIM1; p=\"\n",
//!     None,
//! )?;
//! let answer = block_on(zone.txt("WWW.example.com."));
//! assert_eq!(answer, Ok(vec![b"v=spf1 -all".to_vec()]));
//! assert_eq!(block_on(zone.a("example.com")), Err(DnsError::NoData));
//! assert_eq!(block_on(zone.txt("_domainkey.example.com")), Err(DnsError::NoData));
//! assert_eq!(block_on(zone.txt("nope.example.com")), Err(DnsError::NxDomain));
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! # Ok::<(), dmarc_dns::ZoneError>(())
//! ```

mod lexer;
mod name;
mod parse;
mod rtype;

use std::fmt;
use std::future::{Future, ready};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use dmarc_proto::dns::{DnsResult, reverse_name};
use dmarc_proto::{DnsError, Lookup, MxRecord};

use self::name::{Name, parse_presentation};
use self::parse::{Node, Parser, Records, read_limited};

/// The longest CNAME chain followed (the number of CNAME records in it).
pub const MAX_CNAME_CHAIN: usize = 16;

/// A resolver answering from an RFC 1035 master file. See the [module documentation](self).
pub struct ZoneFile {
    source: String,
    records: Records,
    queries: AtomicU64,
}

impl fmt::Debug for ZoneFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZoneFile")
            .field("source", &self.source)
            .field("names", &self.records.nodes.len())
            .field("records", &self.records.record_count)
            .field("queries", &self.query_count())
            .finish()
    }
}

impl ZoneFile {
    /// Parses master-file text. `default_origin` is the origin in effect before any
    /// `$ORIGIN` (without it, relative names before an `$ORIGIN` are an error).
    /// `$INCLUDE` is an error here; use [`ZoneFile::load`].
    pub fn parse(text: &str, default_origin: Option<&str>) -> Result<ZoneFile, ZoneError> {
        ZoneFile::parse_bytes(text.as_bytes(), default_origin)
    }

    /// Like [`ZoneFile::parse`], from bytes: character-strings may hold any octets.
    pub fn parse_bytes(bytes: &[u8], default_origin: Option<&str>) -> Result<ZoneFile, ZoneError> {
        ZoneFile::build("<zone text>", bytes, None, default_origin, false)
    }

    /// Reads and parses the master file at `path`, with no default origin.
    pub fn load(path: &Path) -> Result<ZoneFile, ZoneError> {
        ZoneFile::load_with_origin(path, None)
    }

    /// Reads and parses the master file at `path`, with `default_origin` in effect before any
    /// `$ORIGIN`.
    pub fn load_with_origin(
        path: &Path,
        default_origin: Option<&str>,
    ) -> Result<ZoneFile, ZoneError> {
        ZoneFile::load_with(
            path,
            &LoadOptions {
                default_origin,
                ..LoadOptions::default()
            },
        )
    }

    /// Reads and parses the master file at `path` with these options.
    pub fn load_with(path: &Path, options: &LoadOptions<'_>) -> Result<ZoneFile, ZoneError> {
        let shown = path.display().to_string();
        let bytes = read_limited(path).map_err(|e| ZoneError::io(&shown, e))?;
        let dir = path
            .parent()
            .map_or_else(std::path::PathBuf::new, Path::to_path_buf);
        ZoneFile::build(
            &shown,
            &bytes,
            Some(dir),
            options.default_origin,
            options.include_anywhere,
        )
    }

    fn build(
        source: &str,
        bytes: &[u8],
        dir: Option<std::path::PathBuf>,
        default_origin: Option<&str>,
        include_anywhere: bool,
    ) -> Result<ZoneFile, ZoneError> {
        let origin = match default_origin {
            None => None,
            Some(text) => Some(
                parse_presentation(text.as_bytes())
                    .map(|(name, _)| name)
                    .map_err(|e| ZoneError::at(source, 0, format!("default origin: {e}")))?,
            ),
        };
        let mut records = Records::default();
        Parser::new(
            &mut records,
            source.to_string(),
            dir,
            origin,
            include_anywhere,
        )
        .parse(bytes)?;
        Ok(ZoneFile {
            source: source.to_string(),
            records,
            queries: AtomicU64::new(0),
        })
    }

    /// The number of questions answered so far (every call of a [`Lookup`] method counts
    /// once, whatever the answer).
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// The number of distinct owner names holding records.
    pub fn name_count(&self) -> usize {
        self.records.nodes.len()
    }

    /// The number of records read (duplicates included).
    pub fn record_count(&self) -> usize {
        self.records.record_count
    }

    /// Where the zone came from (a path, or `<zone text>`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Answers one question synchronously: the records `pick` selects at `name`.
    fn answer<T: Clone>(&self, name: &str, pick: impl Fn(&Node) -> &[T]) -> DnsResult<T> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let (qname, _) = parse_presentation(name.as_bytes()).map_err(|e| {
            DnsError::Temporary(format!("cannot ask about the invalid name {name:?}: {e}"))
        })?;
        let node = self.resolve(qname)?;
        let found = pick(node);
        if found.is_empty() {
            Err(DnsError::NoData)
        } else {
            Ok(found.to_vec())
        }
    }

    /// The records at `name` (exactly, or synthesised from a wildcard, RFC 4592), without
    /// following a CNAME: [`DnsError::NxDomain`] when the name does not exist,
    /// [`DnsError::NoData`] for an empty non-terminal, [`DnsError::Temporary`] for a name
    /// that cannot be parsed. For a DNS server answering from the file.
    pub fn node(&self, name: &str) -> Result<ZoneNode<'_>, DnsError> {
        let (qname, _) = parse_presentation(name.as_bytes()).map_err(|e| {
            DnsError::Temporary(format!("cannot ask about the invalid name {name:?}: {e}"))
        })?;
        self.find(&qname).map(|node| ZoneNode { node })
    }

    /// The SOA record governing `name`: that of the closest ancestor (or the name itself)
    /// holding one, with that ancestor's name, for the authority section of negative
    /// answers (RFC 2308 §3).
    pub fn soa_for(&self, name: &str) -> Option<(String, &Soa)> {
        let (mut current, _) = parse_presentation(name.as_bytes()).ok()?;
        loop {
            if let Some(soa) = self
                .records
                .nodes
                .get(&current)
                .and_then(|n| n.soa.as_ref())
            {
                return Some((current.to_string(), soa));
            }
            current = current.parent()?;
        }
    }

    /// The CNAME at `name` itself (through a wildcard too), not followed.
    fn cname_at(&self, name: &str) -> DnsResult<String> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let (qname, _) = parse_presentation(name.as_bytes()).map_err(|e| {
            DnsError::Temporary(format!("cannot ask about the invalid name {name:?}: {e}"))
        })?;
        match &self.find(&qname)?.cname {
            Some(target) => Ok(vec![target.to_string().to_ascii_lowercase()]),
            None => Err(DnsError::NoData),
        }
    }

    /// Finds the node answering for `qname`, following CNAMEs and wildcards.
    fn resolve(&self, qname: Name) -> Result<&Node, DnsError> {
        let mut chain: Vec<Name> = Vec::new();
        let mut current = qname;
        loop {
            let node = self.find(&current)?;
            let Some(target) = &node.cname else {
                return Ok(node);
            };
            chain.push(current);
            let show = |chain: &[Name]| {
                chain
                    .iter()
                    .map(Name::to_string)
                    .chain(std::iter::once(target.to_string()))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            };
            if chain.contains(target) {
                return Err(DnsError::Temporary(format!("CNAME loop: {}", show(&chain))));
            }
            if chain.len() > MAX_CNAME_CHAIN {
                return Err(DnsError::Temporary(format!(
                    "CNAME chain longer than {MAX_CNAME_CHAIN}: {}",
                    show(&chain)
                )));
            }
            current = target.clone();
        }
    }

    /// The node at `name` (exactly or through a wildcard); `NoData` for an empty
    /// non-terminal, `NxDomain` for a name that does not exist.
    fn find(&self, name: &Name) -> Result<&Node, DnsError> {
        if let Some(node) = self.records.nodes.get(name) {
            return Ok(node);
        }
        if self.records.existing.contains(name) {
            return Err(DnsError::NoData);
        }
        // RFC 4592 §3.3.1: the closest encloser is the longest existing ancestor; its `*`
        // child, if any, is the source of synthesis.
        let mut ancestor = name.parent();
        while let Some(candidate) = ancestor {
            if self.records.existing.contains(&candidate) {
                let Ok(wild) = candidate.child(b"*") else {
                    return Err(DnsError::NxDomain);
                };
                return match self.records.nodes.get(&wild) {
                    Some(node) => Ok(node),
                    None if self.records.existing.contains(&wild) => Err(DnsError::NoData),
                    None => Err(DnsError::NxDomain),
                };
            }
            ancestor = candidate.parent();
        }
        Err(DnsError::NxDomain)
    }
}

impl Lookup for ZoneFile {
    fn txt(&self, name: &str) -> impl Future<Output = DnsResult<Vec<u8>>> + Send {
        ready(self.answer(name, |n| &n.txt))
    }

    fn a(&self, name: &str) -> impl Future<Output = DnsResult<Ipv4Addr>> + Send {
        ready(self.answer(name, |n| &n.a))
    }

    fn aaaa(&self, name: &str) -> impl Future<Output = DnsResult<Ipv6Addr>> + Send {
        ready(self.answer(name, |n| &n.aaaa))
    }

    fn mx(&self, name: &str) -> impl Future<Output = DnsResult<MxRecord>> + Send {
        ready(self.answer(name, |n| &n.mx))
    }

    fn ptr(&self, ip: IpAddr) -> impl Future<Output = DnsResult<String>> + Send {
        ready(self.answer(&reverse_name(ip), |n| &n.ptr))
    }

    fn cname(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send {
        ready(self.cname_at(name))
    }
}

/// The SOA record of a zone apex (RFC 1035 §3.3.13), as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    /// The primary name server, lower-case-insensitive presentation form without final dot.
    pub mname: String,
    /// The responsible mailbox, as a domain name.
    pub rname: String,
    /// The serial number.
    pub serial: u32,
    /// Refresh interval, seconds.
    pub refresh: u32,
    /// Retry interval, seconds.
    pub retry: u32,
    /// Expiry, seconds.
    pub expire: u32,
    /// The negative-caching TTL (RFC 2308 §4), seconds.
    pub minimum: u32,
}

/// The records the file holds at one name, seen without following a CNAME: what an
/// authoritative server loaded with the file answers from (see [`ZoneFile::node`]).
#[derive(Debug, Clone, Copy)]
pub struct ZoneNode<'z> {
    node: &'z Node,
}

impl<'z> ZoneNode<'z> {
    /// A records, in file order.
    pub fn a(&self) -> &'z [Ipv4Addr] {
        &self.node.a
    }
    /// AAAA records.
    pub fn aaaa(&self) -> &'z [Ipv6Addr] {
        &self.node.aaaa
    }
    /// MX records (an exchange of `""` is the null MX).
    pub fn mx(&self) -> &'z [MxRecord] {
        &self.node.mx
    }
    /// TXT records, each with its character-strings joined.
    pub fn txt(&self) -> &'z [Vec<u8>] {
        &self.node.txt
    }
    /// PTR targets.
    pub fn ptr(&self) -> &'z [String] {
        &self.node.ptr
    }
    /// NS targets.
    pub fn ns(&self) -> &'z [String] {
        &self.node.ns
    }
    /// The SOA record, at a zone apex.
    pub fn soa(&self) -> Option<&'z Soa> {
        self.node.soa.as_ref()
    }
    /// The CNAME target, when the name is an alias.
    pub fn cname(&self) -> Option<String> {
        self.node.cname.as_ref().map(ToString::to_string)
    }
}

/// How [`ZoneFile::load_with`] reads a file. Every field states its default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions<'a> {
    /// The origin in effect before any `$ORIGIN`. Default none.
    pub default_origin: Option<&'a str>,
    /// Let `$INCLUDE` name any file. Default false: only files below the including
    /// file's directory (symbolic links and `..` resolved), so that a zone file cannot
    /// make the loader read whatever the process can read.
    pub include_anywhere: bool,
}

/// Why a zone file could not be loaded: where, and what is wrong.
#[derive(Debug)]
pub struct ZoneError {
    file: String,
    line: usize,
    reason: String,
    io: Option<std::io::Error>,
}

impl ZoneError {
    pub(crate) fn at(file: &str, line: usize, reason: String) -> ZoneError {
        ZoneError {
            file: file.to_string(),
            line,
            reason,
            io: None,
        }
    }

    pub(crate) fn io(file: &str, err: std::io::Error) -> ZoneError {
        ZoneError {
            file: file.to_string(),
            line: 0,
            reason: "cannot read the file".into(),
            io: Some(err),
        }
    }

    /// Names the `$INCLUDE` entry that led to a read error.
    pub(crate) fn with_context(mut self, including_file: &str, line: usize) -> ZoneError {
        self.reason = format!("cannot read the file (included from {including_file}:{line})");
        self
    }

    /// The file the error is in (`<zone text>` for [`ZoneFile::parse`]).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line (1-based) the faulty entry starts on; 0 when the error is not about a line
    /// (the file cannot be read, the default origin is invalid).
    pub fn line(&self) -> usize {
        self.line
    }

    /// What is wrong, for a person.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.reason)
        }
    }
}

impl std::error::Error for ZoneError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
