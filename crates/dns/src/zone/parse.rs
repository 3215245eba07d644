//! Turns the entries of a master file into records (RFC 1035 §5.1, RFC 2308 §4 for `$TTL`,
//! RFC 3597 §5 for `TYPEnnn` and `\#` generic RDATA).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use dmarc_proto::MxRecord;

use super::ZoneError;
use super::lexer::{Entry, Lexer, Token};
use super::name::{Name, parse_presentation, unescape_at};
use super::rtype;

/// How deeply `$INCLUDE` may nest (a file including itself stops here).
const MAX_INCLUDE_DEPTH: usize = 8;
/// The largest zone file read, in bytes.
pub(crate) const MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;
/// The largest TTL (RFC 2181 §8).
const MAX_TTL: u64 = 0x7fff_ffff;

/// The records at one name.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) a: Vec<Ipv4Addr>,
    pub(crate) aaaa: Vec<Ipv6Addr>,
    pub(crate) mx: Vec<MxRecord>,
    pub(crate) txt: Vec<Vec<u8>>,
    pub(crate) ptr: Vec<String>,
    pub(crate) cname: Option<Name>,
    /// NS targets (kept for `ZoneFile::node`, not served through the `Lookup` trait).
    pub(crate) ns: Vec<String>,
    /// The SOA record (likewise).
    pub(crate) soa: Option<super::Soa>,
    /// Every type present, served or not.
    pub(crate) types: BTreeSet<u16>,
}

/// The parsed contents of a zone: nodes by name, and every name that exists (owners and
/// their ancestors, so that empty non-terminals exist too).
#[derive(Debug, Default)]
pub(crate) struct Records {
    pub(crate) nodes: HashMap<Name, Node>,
    pub(crate) existing: HashSet<Name>,
    pub(crate) record_count: usize,
}

/// RDATA the resolver serves, decoded.
enum Rdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx(u16, Name),
    Ptr(Name),
    Cname(Name),
    Txt(Vec<u8>),
    Ns(Name),
    Soa(super::Soa),
    /// A type that makes its owner exist but is not served (SPF, NS, SOA, CAA, ...).
    Other,
}

/// Types allowed beside a CNAME (RFC 2181 §10.1, RFC 4035 §2.5).
fn may_accompany_cname(code: u16) -> bool {
    matches!(code, 24 | 25 | 30 | 46 | 47)
}

/// `dir`, or `.` when it is empty (a zone file named without a directory).
fn dir_or_cwd(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

/// Parses master files into a [`Records`].
pub(crate) struct Parser<'r> {
    records: &'r mut Records,
    file: String,
    dir: Option<PathBuf>,
    origin: Option<Name>,
    last_owner: Option<Name>,
    depth: usize,
    /// `$INCLUDE` may name any file, not only those below the including file's directory.
    include_anywhere: bool,
}

impl<'r> Parser<'r> {
    pub(crate) fn new(
        records: &'r mut Records,
        file: String,
        dir: Option<PathBuf>,
        origin: Option<Name>,
        include_anywhere: bool,
    ) -> Self {
        Parser {
            records,
            file,
            dir,
            origin,
            last_owner: None,
            depth: 0,
            include_anywhere,
        }
    }

    fn err(&self, line: usize, reason: impl Into<String>) -> ZoneError {
        ZoneError::at(&self.file, line, reason.into())
    }

    /// Parses a whole file's bytes.
    pub(crate) fn parse(&mut self, src: &[u8]) -> Result<(), ZoneError> {
        let mut lexer = Lexer::new(src);
        loop {
            let entry = match lexer.next_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => return Ok(()),
                Err((line, reason)) => return Err(self.err(line, reason)),
            };
            self.entry(&entry)?;
        }
    }

    fn entry(&mut self, entry: &Entry) -> Result<(), ZoneError> {
        let line = entry.line;
        let first = entry
            .tokens
            .first()
            .ok_or_else(|| self.err(line, "empty entry"))?;
        if !entry.blank_owner && !first.quoted && first.text.first() == Some(&b'$') {
            return self.directive(entry);
        }
        let (owner, rest) = if entry.blank_owner {
            let owner = self.last_owner.clone().ok_or_else(|| {
                self.err(
                    line,
                    "the line starts with a blank (\"same owner as before\") but no owner name came before",
                )
            })?;
            (owner, entry.tokens.as_slice())
        } else {
            let owner = self.name(first, line)?;
            (owner, entry.tokens.get(1..).unwrap_or_default())
        };
        self.last_owner = Some(owner.clone());
        self.record(owner, rest, line)
    }

    fn directive(&mut self, entry: &Entry) -> Result<(), ZoneError> {
        let line = entry.line;
        let (first, args) = entry
            .tokens
            .split_first()
            .ok_or_else(|| self.err(line, "empty entry"))?;
        if first.is("$ORIGIN") {
            let [name] = args else {
                return Err(self.err(line, "$ORIGIN takes exactly one domain name"));
            };
            let origin = self.name(name, line)?;
            self.origin = Some(origin);
            Ok(())
        } else if first.is("$TTL") {
            let [ttl] = args else {
                return Err(self.err(line, "$TTL takes exactly one TTL value"));
            };
            parse_ttl(ttl).map_err(|e| self.err(line, e))?;
            Ok(())
        } else if first.is("$INCLUDE") {
            self.include(args, line)
        } else {
            Err(self.err(
                line,
                format!(
                    "unknown directive {} (only $ORIGIN, $TTL and $INCLUDE are understood)",
                    first.show()
                ),
            ))
        }
    }

    fn include(&mut self, args: &[Token], line: usize) -> Result<(), ZoneError> {
        let (file, origin) = match args {
            [file] => (file, None),
            [file, origin] => (file, Some(self.name(origin, line)?)),
            _ => {
                return Err(self.err(line, "$INCLUDE takes a file name and an optional origin"));
            }
        };
        let Some(dir) = self.dir.clone() else {
            return Err(self.err(
                line,
                "$INCLUDE needs a file system location: load the zone with ZoneFile::load",
            ));
        };
        if self.depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(self.err(
                line,
                format!("$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"),
            ));
        }
        let rel = decode_string(&file.text).map_err(|e| self.err(line, e))?;
        let rel = String::from_utf8(rel)
            .map_err(|_| self.err(line, "$INCLUDE file name is not UTF-8"))?;
        let path = dir.join(&rel);
        if !self.include_anywhere {
            // Below the including file's directory, symbolic links and `..` resolved: a
            // zone file must not make the loader read (and quote in an error) any file
            // the process can read.
            let inside = match (path.canonicalize(), dir_or_cwd(&dir).canonicalize()) {
                (Ok(p), Ok(d)) => p.starts_with(&d),
                (Err(e), _) | (_, Err(e)) => {
                    return Err(ZoneError::io(&path.display().to_string(), e)
                        .with_context(&self.file, line));
                }
            };
            if !inside {
                return Err(self.err(
                    line,
                    format!(
                        "$INCLUDE {} is outside {} (the including file's directory); \
                         including files elsewhere must be allowed explicitly",
                        file.show(),
                        dir_or_cwd(&dir).display()
                    ),
                ));
            }
        }
        let bytes = read_limited(&path).map_err(|e| {
            ZoneError::io(&path.display().to_string(), e).with_context(&self.file, line)
        })?;
        let mut child = Parser {
            records: &mut *self.records,
            file: path.display().to_string(),
            dir: Some(path.parent().map_or_else(PathBuf::new, Path::to_path_buf)),
            origin: origin.or_else(|| self.origin.clone()),
            last_owner: None,
            depth: self.depth + 1,
            include_anywhere: self.include_anywhere,
        };
        // Origin and owner of this file are unchanged by the include (RFC 1035 §5.1; the
        // owner as BIND does).
        child.parse(&bytes)
    }

    /// Parses a name token at `line`.
    fn name(&self, token: &Token, line: usize) -> Result<Name, ZoneError> {
        self.name_in(token).map_err(|e| self.err(line, e))
    }

    /// Parses a name token: `@` is the origin, relative names get the origin appended.
    fn name_in(&self, token: &Token) -> Result<Name, String> {
        if token.quoted {
            return Err(format!("a domain name cannot be quoted: {}", token.show()));
        }
        if token.text == b"@" {
            return self.origin.clone().ok_or_else(|| {
                "'@' used but no origin is set ($ORIGIN or a default origin)".into()
            });
        }
        let (name, absolute) = parse_presentation(&token.text)?;
        if absolute {
            return Ok(name);
        }
        let origin = self.origin.as_ref().ok_or_else(|| {
            format!(
                "relative name {} but no origin is set ($ORIGIN or a default origin); end it with '.' to make it absolute",
                token.show()
            )
        })?;
        name.append(origin)
    }

    fn record(&mut self, owner: Name, tokens: &[Token], line: usize) -> Result<(), ZoneError> {
        // [<TTL>] [<class>] <type> <RDATA> or [<class>] [<TTL>] <type> <RDATA>.
        let mut i = 0;
        let mut seen_ttl = false;
        let mut seen_class = false;
        let type_token = loop {
            let token = tokens
                .get(i)
                .ok_or_else(|| self.err(line, "the record has no type"))?;
            i += 1;
            if token.quoted {
                return Err(self.err(
                    line,
                    format!("expected a TTL, class or type, found {}", token.show()),
                ));
            }
            if !seen_ttl && token.text.first().is_some_and(u8::is_ascii_digit) {
                parse_ttl(token).map_err(|e| self.err(line, e))?;
                seen_ttl = true;
            } else if !seen_class && is_class(token) {
                if !(token.is("IN") || token.is("CLASS1")) {
                    return Err(self.err(
                        line,
                        format!("class {} is not supported: only IN", token.show()),
                    ));
                }
                seen_class = true;
            } else {
                break token;
            }
        };
        let code = rtype::parse(&type_token.text).map_err(|e| self.err(line, e))?;
        let rdata_tokens = tokens.get(i..).unwrap_or_default();
        let type_name = rtype::name(code);
        let rdata = self
            .rdata(code, rdata_tokens)
            .map_err(|e| self.err(line, format!("{type_name} record: {e}")))?;
        self.add(owner, code, rdata, line)
    }

    fn rdata(&self, code: u16, tokens: &[Token]) -> Result<Rdata, String> {
        if let Some(first) = tokens.first()
            && first.is(r"\#")
        {
            let wire = generic_rdata(tokens.get(1..).unwrap_or_default())?;
            return decode_wire(code, &wire);
        }
        match code {
            rtype::A => {
                let [t] = tokens else {
                    return Err("expected one IPv4 address".into());
                };
                Ok(Rdata::A(parse_addr(t)?))
            }
            rtype::AAAA => {
                let [t] = tokens else {
                    return Err("expected one IPv6 address".into());
                };
                Ok(Rdata::Aaaa(parse_addr(t)?))
            }
            rtype::MX => {
                let [pref, exchange] = tokens else {
                    return Err("expected a preference and an exchange name".into());
                };
                let pref = parse_num::<u16>(pref, "preference")?;
                Ok(Rdata::Mx(pref, self.name_in(exchange)?))
            }
            rtype::PTR | rtype::CNAME | rtype::NS | rtype::DNAME => {
                let [target] = tokens else {
                    return Err("expected one domain name".into());
                };
                let target = self.name_in(target)?;
                Ok(match code {
                    rtype::PTR => Rdata::Ptr(target),
                    rtype::CNAME => Rdata::Cname(target),
                    rtype::NS => Rdata::Ns(target),
                    _ => Rdata::Other,
                })
            }
            rtype::TXT | rtype::SPF => {
                if tokens.is_empty() {
                    return Err("expected at least one character-string".into());
                }
                let mut joined = Vec::new();
                for t in tokens {
                    joined.extend(character_string(t)?);
                }
                Ok(if code == rtype::TXT {
                    Rdata::Txt(joined)
                } else {
                    Rdata::Other
                })
            }
            rtype::SOA => {
                let [mname, rname, serial, refresh, retry, expire, minimum] = tokens else {
                    return Err(format!(
                        "expected 7 fields (mname rname serial refresh retry expire minimum), found {}",
                        tokens.len()
                    ));
                };
                let mname = self.name_in(mname)?.to_string();
                let rname = self.name_in(rname)?.to_string();
                let serial = parse_num::<u32>(serial, "serial")?;
                let mut times = [0u32; 4];
                for (slot, t) in times.iter_mut().zip([refresh, retry, expire, minimum]) {
                    *slot = parse_ttl(t)?;
                }
                let [refresh, retry, expire, minimum] = times;
                Ok(Rdata::Soa(super::Soa {
                    mname,
                    rname,
                    serial,
                    refresh,
                    retry,
                    expire,
                    minimum,
                }))
            }
            rtype::SRV => {
                let [prio, weight, port, target] = tokens else {
                    return Err("expected priority, weight, port and target".into());
                };
                parse_num::<u16>(prio, "priority")?;
                parse_num::<u16>(weight, "weight")?;
                parse_num::<u16>(port, "port")?;
                self.name_in(target)?;
                Ok(Rdata::Other)
            }
            rtype::CAA => {
                let [flags, tag, value] = tokens else {
                    return Err("expected flags, tag and value (RFC 8659 §4.1.1)".into());
                };
                parse_num::<u8>(flags, "flags")?;
                if tag.quoted
                    || tag.text.is_empty()
                    || !tag.text.iter().all(u8::is_ascii_alphanumeric)
                    || tag.text.len() > 255
                {
                    return Err(format!(
                        "tag {} must be 1 to 255 letters and digits",
                        tag.show()
                    ));
                }
                decode_string(&value.text)?;
                Ok(Rdata::Other)
            }
            // Other types make their owner exist; their RDATA is not interpreted.
            _ => Ok(Rdata::Other),
        }
    }

    fn add(&mut self, owner: Name, code: u16, rdata: Rdata, line: usize) -> Result<(), ZoneError> {
        let shown_owner = owner.to_string();
        let mut ancestor = owner.parent();
        while let Some(a) = ancestor {
            if !self.records.existing.insert(a.clone()) {
                break; // its ancestors are in already
            }
            ancestor = a.parent();
        }
        self.records.existing.insert(owner.clone());
        let node = self.records.nodes.entry(owner).or_default();
        if code == rtype::CNAME {
            if let Some(other) = node
                .types
                .iter()
                .find(|&&t| t != rtype::CNAME && !may_accompany_cname(t))
            {
                return Err(ZoneError::at(
                    &self.file,
                    line,
                    format!(
                        "CNAME at {shown_owner}, which already has {} data (a CNAME must be alone, RFC 1034 §3.6.2)",
                        rtype::name(*other)
                    ),
                ));
            }
        } else if node.cname.is_some() && !may_accompany_cname(code) {
            return Err(ZoneError::at(
                &self.file,
                line,
                format!(
                    "{} record at {shown_owner}, which is a CNAME (a CNAME must be alone, RFC 1034 §3.6.2)",
                    rtype::name(code)
                ),
            ));
        }
        node.types.insert(code);
        self.records.record_count += 1;
        match rdata {
            Rdata::A(a) => push_unique(&mut node.a, a),
            Rdata::Aaaa(a) => push_unique(&mut node.aaaa, a),
            Rdata::Mx(preference, exchange) => push_unique(
                &mut node.mx,
                MxRecord {
                    preference,
                    exchange: exchange.to_string(),
                },
            ),
            Rdata::Ptr(target) => push_unique(&mut node.ptr, target.to_string()),
            Rdata::Txt(data) => push_unique(&mut node.txt, data),
            Rdata::Ns(target) => push_unique(&mut node.ns, target.to_string()),
            Rdata::Soa(soa) => node.soa = Some(soa),
            Rdata::Cname(target) => match &node.cname {
                Some(existing) if *existing != target => {
                    return Err(ZoneError::at(
                        &self.file,
                        line,
                        format!(
                            "second CNAME at {shown_owner} ({existing} and {target}); a name has at most one"
                        ),
                    ));
                }
                _ => node.cname = Some(target),
            },
            Rdata::Other => {}
        }
        Ok(())
    }
}

/// Adds `item` unless an identical record is there already (an RRset is a set, RFC 2181 §5).
fn push_unique<T: PartialEq>(v: &mut Vec<T>, item: T) {
    if !v.contains(&item) {
        v.push(item);
    }
}

/// Reads a file, refusing ones larger than [`MAX_FILE_SIZE`].
pub(crate) fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_SIZE} bytes"),
        ));
    }
    Ok(bytes)
}

fn is_class(token: &Token) -> bool {
    ["IN", "CH", "CHAOS", "HS", "HESIOD", "CS", "NONE", "ANY"]
        .iter()
        .any(|c| token.is(c))
        || rtype::strip_prefix_ignore_case(&token.text, b"CLASS")
            .is_some_and(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit))
}

/// A TTL: decimal seconds, or BIND's unit form (`1h30m`, `2d`, `1w`), at most 2^31-1.
fn parse_ttl(token: &Token) -> Result<u32, String> {
    let bad = || {
        format!(
            "invalid TTL {} (seconds, or a number with a unit s, m, h, d, w such as 1h30m)",
            token.show()
        )
    };
    if token.quoted || token.text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut current: Option<u64> = None;
    let mut used_unit = false;
    for &b in &token.text {
        if b.is_ascii_digit() {
            let v = current.unwrap_or(0) * 10 + u64::from(b - b'0');
            if v > MAX_TTL {
                return Err(format!(
                    "TTL {} is larger than {MAX_TTL} (RFC 2181 §8)",
                    token.show()
                ));
            }
            current = Some(v);
        } else {
            let mult = match b.to_ascii_lowercase() {
                b's' => 1,
                b'm' => 60,
                b'h' => 3600,
                b'd' => 86_400,
                b'w' => 604_800,
                _ => return Err(bad()),
            };
            total += current.take().ok_or_else(bad)? * mult;
            used_unit = true;
        }
        if total > MAX_TTL {
            return Err(format!(
                "TTL {} is larger than {MAX_TTL} (RFC 2181 §8)",
                token.show()
            ));
        }
    }
    if let Some(rest) = current {
        if used_unit {
            return Err(bad()); // "1h30": a number without unit after units
        }
        total += rest;
    }
    u32::try_from(total).map_err(|_| bad())
}

fn parse_num<T: std::str::FromStr>(token: &Token, what: &str) -> Result<T, String> {
    std::str::from_utf8(&token.text)
        .ok()
        .filter(|s| !token.quoted && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("invalid {what} {}", token.show()))
}

fn parse_addr<T: std::str::FromStr>(token: &Token) -> Result<T, String> {
    std::str::from_utf8(&token.text)
        .ok()
        .filter(|_| !token.quoted)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("invalid address {}", token.show()))
}

/// Decodes `\X` and `\DDD` escapes.
fn decode_string(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b == b'\\' {
            let (octet, used) = unescape_at(text, i)?;
            out.push(octet);
            i += used;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// One character-string (RFC 1035 §3.3): at most 255 octets once escapes are decoded.
fn character_string(token: &Token) -> Result<Vec<u8>, String> {
    let bytes = decode_string(&token.text)?;
    if bytes.len() > 255 {
        return Err(format!(
            "a character-string holds at most 255 octets, this one has {} (split it into several quoted strings)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// RFC 3597 §5: `\# <length> <hex>...`, the hex possibly split into several tokens.
fn generic_rdata(tokens: &[Token]) -> Result<Vec<u8>, String> {
    let (len, hex) = tokens
        .split_first()
        .ok_or("generic RDATA \\# needs a length")?;
    let len = parse_num::<u16>(len, "generic RDATA length")?;
    let mut digits = Vec::new();
    for t in hex {
        if t.quoted {
            return Err(format!(
                "generic RDATA must be hexadecimal, found {}",
                t.show()
            ));
        }
        digits.extend_from_slice(&t.text);
    }
    if digits.len() % 2 != 0 {
        return Err("generic RDATA has an odd number of hex digits".into());
    }
    let mut wire = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            pair.first().copied().and_then(hex),
            pair.get(1).copied().and_then(hex),
        ) {
            (Some(h), Some(l)) => wire.push((h * 16 + l) as u8),
            _ => {
                return Err(format!(
                    "invalid hex {:?} in generic RDATA",
                    super::lexer::quote(pair)
                ));
            }
        }
    }
    if wire.len() != usize::from(len) {
        return Err(format!(
            "generic RDATA says {len} octets but has {}",
            wire.len()
        ));
    }
    Ok(wire)
}

/// Decodes the wire RDATA of a served type given in generic form.
fn decode_wire(code: u16, wire: &[u8]) -> Result<Rdata, String> {
    let exact_name = |data: &[u8]| -> Result<Name, String> {
        let (name, used) = Name::from_uncompressed_wire(data)?;
        if used != data.len() {
            return Err("octets left over after the name in the RDATA".into());
        }
        Ok(name)
    };
    match code {
        rtype::A => <[u8; 4]>::try_from(wire)
            .map(|o| Rdata::A(Ipv4Addr::from(o)))
            .map_err(|_| format!("A RDATA is 4 octets, not {}", wire.len())),
        rtype::AAAA => <[u8; 16]>::try_from(wire)
            .map(|o| Rdata::Aaaa(Ipv6Addr::from(o)))
            .map_err(|_| format!("AAAA RDATA is 16 octets, not {}", wire.len())),
        rtype::MX => {
            let (pref, rest) = wire
                .split_first_chunk::<2>()
                .ok_or("MX RDATA is shorter than its preference")?;
            Ok(Rdata::Mx(u16::from_be_bytes(*pref), exact_name(rest)?))
        }
        rtype::PTR => Ok(Rdata::Ptr(exact_name(wire)?)),
        rtype::CNAME => Ok(Rdata::Cname(exact_name(wire)?)),
        rtype::TXT | rtype::SPF => {
            if wire.is_empty() {
                return Err("TXT RDATA holds at least one character-string".into());
            }
            let mut joined = Vec::with_capacity(wire.len());
            let mut rest = wire;
            while let Some((&len, tail)) = rest.split_first() {
                let s = tail
                    .get(..usize::from(len))
                    .ok_or("a character-string runs past the end of the RDATA")?;
                joined.extend_from_slice(s);
                rest = tail.get(usize::from(len)..).unwrap_or_default();
            }
            Ok(if code == rtype::TXT {
                Rdata::Txt(joined)
            } else {
                Rdata::Other
            })
        }
        rtype::NS | rtype::DNAME => exact_name(wire).map(|_| Rdata::Other),
        _ => Ok(Rdata::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> Token {
        Token {
            text: s.as_bytes().to_vec(),
            quoted: false,
        }
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl(&tok("300")).unwrap(), 300);
        assert_eq!(parse_ttl(&tok("1h30m")).unwrap(), 5400);
        assert_eq!(parse_ttl(&tok("1W")).unwrap(), 604_800);
        assert_eq!(parse_ttl(&tok("2147483647")).unwrap(), 2_147_483_647);
        assert!(parse_ttl(&tok("2147483648")).is_err());
        assert!(parse_ttl(&tok("99999999999999999999999")).is_err());
        assert!(parse_ttl(&tok("1h30")).is_err());
        assert!(parse_ttl(&tok("h")).is_err());
        assert!(parse_ttl(&tok("1x")).is_err());
    }

    #[test]
    fn generic() {
        assert_eq!(
            generic_rdata(&[tok("4"), tok("c0000201")]).unwrap(),
            [192, 0, 2, 1]
        );
        assert_eq!(
            generic_rdata(&[tok("2"), tok("c0"), tok("00")]).unwrap(),
            [192, 0]
        );
        assert_eq!(generic_rdata(&[tok("0")]).unwrap(), Vec::<u8>::new());
        assert!(generic_rdata(&[tok("3"), tok("c00002")]).is_ok());
        assert!(generic_rdata(&[tok("4"), tok("c00002")]).is_err());
        assert!(generic_rdata(&[tok("1"), tok("c")]).is_err());
        assert!(generic_rdata(&[tok("1"), tok("zz")]).is_err());
        assert!(generic_rdata(&[]).is_err());
    }
}
