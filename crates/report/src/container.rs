//! Unpacking: what kind of bytes an input is (by magic bytes, never by declared type), and
//! walking gzip, zip, email and mbox containers down to the reports inside, under [`Limits`].

use std::io::Read;

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::error::{LimitKind, ReportError, SourcePath};
use crate::limits::Limits;
use crate::{Parsed, ParsedReport, aggregate, failure, tls};

/// What a byte string looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// gzip (`1f 8b`).
    Gzip,
    /// zip (`PK\x03\x04`, or `PK\x05\x06` for an empty archive).
    Zip,
    /// XML (first non-blank byte `<`).
    Xml,
    /// JSON object (first non-blank byte `{`).
    Json,
    /// An mbox file (starts with a `From ` line).
    Mbox,
    /// An email message (starts with a header field).
    Email,
    /// None of these.
    Unknown,
}

/// Text in UTF-16 with a byte-order mark (`FF FE` little-endian, `FE FF` big-endian),
/// decoded (an unpaired surrogate or an odd last byte becomes U+FFFD); `None` without one.
pub(crate) fn decode_utf16(data: &[u8]) -> Option<String> {
    let little = match data.get(..2) {
        Some([0xff, 0xfe]) => true,
        Some([0xfe, 0xff]) => false,
        _ => return None,
    };
    let body = data.get(2..).unwrap_or_default();
    let units = body.chunks(2).map(|c| match c {
        [a, b] if little => u16::from_le_bytes([*a, *b]),
        [a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0xfffd,
    });
    Some(
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

/// Classifies bytes by their content.
pub fn sniff(data: &[u8]) -> Format {
    if data.starts_with(&[0x1f, 0x8b]) {
        return Format::Gzip;
    }
    if data.starts_with(&[0xff, 0xfe]) || data.starts_with(&[0xfe, 0xff]) {
        // UTF-16 with a byte-order mark: XML when its first character that is not blank
        // is '<' (looked at in the first few hundred bytes only).
        let head = data.get(..data.len().min(512)).unwrap_or(data);
        if decode_utf16(head).is_some_and(|t| t.trim_start().starts_with('<')) {
            return Format::Xml;
        }
    }
    if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        return Format::Zip;
    }
    let t = skip_blank(data);
    match t.first() {
        Some(b'<') => return Format::Xml,
        Some(b'{') => return Format::Json,
        _ => {}
    }
    if data.starts_with(b"From ") {
        return Format::Mbox;
    }
    if looks_like_header(t) {
        return Format::Email;
    }
    Format::Unknown
}

fn skip_blank(data: &[u8]) -> &[u8] {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data.get(start..).unwrap_or(&[])
}

/// A first line of the form `Field-Name: value` (RFC 5322 §2.2).
fn looks_like_header(data: &[u8]) -> bool {
    let line_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let line = &data[..line_end.min(998)];
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    colon > 0
        && line[..colon]
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b':')
}

/// State of one walk over one input.
pub(crate) struct Walk<'l> {
    limits: &'l Limits,
    /// Bytes produced by decompression so far, over all levels.
    decompressed: u64,
    pub(crate) out: Vec<Result<Parsed, ReportError>>,
}

impl std::fmt::Debug for Walk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("decompressed", &self.decompressed)
            .field("results", &self.out.len())
            .finish()
    }
}

/// Whether bytes found inside a message part are worth trying as a report.
fn part_is_candidate(data: &[u8]) -> bool {
    match sniff(data) {
        Format::Gzip | Format::Zip => true,
        Format::Xml => {
            let t = skip_blank(data);
            let head = &t[..t.len().min(512)];
            let head = String::from_utf8_lossy(head).to_ascii_lowercase();
            head.starts_with("<?xml") && !head.contains("<html") || head.contains("feedback")
        }
        Format::Json => {
            let head = &data[..data.len().min(4096)];
            String::from_utf8_lossy(head).contains("organization-name")
        }
        _ => false,
    }
}

impl<'l> Walk<'l> {
    pub(crate) fn new(limits: &'l Limits) -> Walk<'l> {
        Walk {
            limits,
            decompressed: 0,
            out: Vec::new(),
        }
    }

    fn fail(&mut self, e: ReportError) {
        self.out.push(Err(e));
    }

    fn push(&mut self, path: &SourcePath, report: ParsedReport) {
        self.out.push(Ok(Parsed {
            source: path.clone(),
            report,
        }));
    }

    /// Walks any input.
    pub(crate) fn any(&mut self, data: &[u8], path: &SourcePath) {
        if data.len() as u64 > self.limits.max_input_size {
            return self.fail(ReportError::Limit {
                path: path.clone(),
                kind: LimitKind::InputSize,
                detail: format!(
                    "{} bytes > {} bytes",
                    data.len(),
                    self.limits.max_input_size
                ),
            });
        }
        if path.depth() > self.limits.max_nesting {
            return self.fail(ReportError::Limit {
                path: path.clone(),
                kind: LimitKind::Nesting,
                detail: format!(
                    "containers nested more than {} deep",
                    self.limits.max_nesting
                ),
            });
        }
        match sniff(data) {
            Format::Gzip => self.gzip(data, path),
            Format::Zip => self.zip(data, path),
            Format::Xml => match aggregate::parse::parse_xml(data, self.limits, path) {
                Ok(r) => self.push(path, ParsedReport::Aggregate(r)),
                Err(e) => self.fail(e),
            },
            Format::Json => match tls::parse_json(data, path) {
                Ok(r) => self.push(path, ParsedReport::SmtpTls(r)),
                Err(e) => self.fail(e),
            },
            Format::Mbox => self.mbox(data, path),
            Format::Email => self.message(data, path),
            Format::Unknown => {
                let detail = if data.is_empty() {
                    "empty input".to_string()
                } else {
                    let head: String = data
                        .iter()
                        .take(16)
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    format!(
                        "not XML, JSON, gzip, zip, an email message or an mbox (starts with {head})"
                    )
                };
                self.fail(ReportError::UnknownFormat {
                    path: path.clone(),
                    detail,
                })
            }
        }
    }

    /// Reads a decompressor to its end under the size and ratio limits.
    fn inflate(
        &mut self,
        r: impl Read,
        compressed: u64,
        path: &SourcePath,
        format: &'static str,
    ) -> Result<Vec<u8>, ReportError> {
        let mut out = Vec::with_capacity((compressed as usize).saturating_mul(8).min(1 << 24));
        self.inflate_into(&mut out, r, compressed, path, format)?;
        Ok(out)
    }

    /// [`Walk::inflate`], appending to `out`: the ratio limit applies to all of `out` (the
    /// members of a multi-member gzip file together).
    fn inflate_into(
        &mut self,
        out: &mut Vec<u8>,
        mut r: impl Read,
        compressed: u64,
        path: &SourcePath,
        format: &'static str,
    ) -> Result<(), ReportError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf).map_err(|e| ReportError::Decompress {
                path: path.clone(),
                format,
                detail: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(buf.get(..n).unwrap_or(&[]));
            self.decompressed += n as u64;
            if self.decompressed > self.limits.max_decompressed_size {
                return Err(ReportError::Limit {
                    path: path.clone(),
                    kind: LimitKind::DecompressedSize,
                    detail: format!(
                        "more than {} bytes decompressed",
                        self.limits.max_decompressed_size
                    ),
                });
            }
            let len = out.len() as u64;
            if len > (1 << 20) && len / compressed.max(1) > self.limits.max_compression_ratio {
                return Err(ReportError::Limit {
                    path: path.clone(),
                    kind: LimitKind::CompressionRatio,
                    detail: format!(
                        "{format} expands {compressed} bytes to more than {len} (ratio over {}:1)",
                        self.limits.max_compression_ratio
                    ),
                });
            }
        }
        Ok(())
    }

    /// A gzip file: every member, decompressed one after the other into one text (RFC 1952
    /// §2.2: a gzip file is a series of members; `zcat` reads them all), under one set of
    /// limits. What follows the last member and is not a gzip member (padding, junk) is
    /// ignored with a warning. (`flate2::bufread::MultiGzDecoder` reads members the same
    /// way but refuses trailing junk.)
    fn gzip(&mut self, data: &[u8], path: &SourcePath) {
        let mut out = Vec::with_capacity(data.len().saturating_mul(8).min(1 << 24));
        let mut rest = data;
        let mut inner_name = None;
        let mut members = 0usize;
        loop {
            let mut dec = flate2::bufread::GzDecoder::new(rest);
            if members == 0 {
                inner_name = dec
                    .header()
                    .and_then(|h| h.filename())
                    .map(|f| String::from_utf8_lossy(f).into_owned());
            }
            if let Err(e) = self.inflate_into(&mut out, &mut dec, data.len() as u64, path, "gzip") {
                return self.fail(e);
            }
            members += 1;
            rest = dec.into_inner();
            if !rest.starts_with(&[0x1f, 0x8b]) {
                break;
            }
        }
        let trailing = rest.len();
        let name = inner_name
            .or_else(|| {
                path.0
                    .last()
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|n| n.strip_suffix(".gz"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "gunzipped".to_string());
        let child = path.join(name);
        let first = self.out.len();
        self.any(&out, &child);
        if trailing > 0 {
            let w = format!(
                "{trailing} bytes after the last gzip member (of {members}) were ignored ({child})"
            );
            for r in self.out.iter_mut().skip(first).flatten() {
                r.report.warnings_mut().push(w.clone());
            }
        }
    }

    fn zip(&mut self, data: &[u8], path: &SourcePath) {
        let mut archive = match zip::ZipArchive::new(std::io::Cursor::new(data)) {
            Ok(a) => a,
            Err(e) => {
                return self.fail(ReportError::Decompress {
                    path: path.clone(),
                    format: "zip",
                    detail: e.to_string(),
                });
            }
        };
        if archive.len() > self.limits.max_entries {
            return self.fail(ReportError::Limit {
                path: path.clone(),
                kind: LimitKind::Entries,
                detail: format!(
                    "zip archive has {} entries > {}",
                    archive.len(),
                    self.limits.max_entries
                ),
            });
        }
        let mut any = false;
        for i in 0..archive.len() {
            let (name, bytes) = {
                let entry = match archive.by_index(i) {
                    Ok(e) => e,
                    Err(e) => {
                        self.fail(ReportError::Decompress {
                            path: path.join(format!("entry {}", i + 1)),
                            format: "zip",
                            detail: e.to_string(),
                        });
                        continue;
                    }
                };
                let name = match entry.name() {
                    Ok(n) => n.into_owned(),
                    Err(_) => format!("entry {}", i + 1),
                };
                if entry.is_dir() || name.starts_with("__MACOSX/") {
                    continue;
                }
                any = true;
                let child = path.join(name.clone());
                let compressed = entry.compressed_size();
                match self.inflate(entry, compressed, &child, "zip") {
                    Ok(b) => (name, b),
                    Err(e) => {
                        self.fail(e);
                        continue;
                    }
                }
            };
            self.any(&bytes, &path.join(name));
        }
        if !any {
            self.fail(ReportError::Decompress {
                path: path.clone(),
                format: "zip",
                detail: "archive has no file entries".to_string(),
            });
        }
    }

    fn mbox(&mut self, data: &[u8], path: &SourcePath) {
        let messages = split_mbox(data);
        if messages.len() > self.limits.max_entries {
            return self.fail(ReportError::Limit {
                path: path.clone(),
                kind: LimitKind::Entries,
                detail: format!(
                    "mbox has {} messages > {}",
                    messages.len(),
                    self.limits.max_entries
                ),
            });
        }
        for (i, m) in messages.iter().enumerate() {
            self.message(m, &path.join(format!("message {}", i + 1)));
        }
    }

    /// Walks one email message.
    pub(crate) fn message(&mut self, data: &[u8], path: &SourcePath) {
        if path.depth() > self.limits.max_nesting {
            return self.fail(ReportError::Limit {
                path: path.clone(),
                kind: LimitKind::Nesting,
                detail: format!(
                    "containers nested more than {} deep",
                    self.limits.max_nesting
                ),
            });
        }
        let Some(msg) = MessageParser::default().parse(data) else {
            return self.fail(ReportError::UnknownFormat {
                path: path.clone(),
                detail: "not a readable email message".to_string(),
            });
        };
        if msg.parts.len() > self.limits.max_entries {
            return self.fail(ReportError::Limit {
                path: path.clone(),
                kind: LimitKind::Entries,
                detail: format!(
                    "message has {} MIME parts > {}",
                    msg.parts.len(),
                    self.limits.max_entries
                ),
            });
        }
        if let Some(f) = failure::from_message(&msg) {
            return self.push(path, ParsedReport::Failure(f));
        }
        let first = self.out.len();
        let mut seen = Vec::new();
        for (i, part) in msg.parts.iter().enumerate() {
            let ctype = part
                .content_type()
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase()
                })
                .unwrap_or_else(|| "text/plain".to_string());
            let label = match part.attachment_name() {
                Some(n) => format!("attachment {n}"),
                None => format!("part {} ({ctype})", i + 1),
            };
            match &part.body {
                PartType::Multipart(_) => continue,
                PartType::Message(inner) => {
                    seen.push(ctype);
                    let raw = inner.raw_message();
                    self.message(raw, &path.join(label));
                    continue;
                }
                _ => {}
            }
            let bytes = part.contents();
            seen.push(ctype);
            if part_is_candidate(bytes) {
                self.any(bytes, &path.join(label));
            }
        }
        if self.out.len() > first {
            return;
        }
        if let Some(f) = failure::from_plain_text(&msg) {
            return self.push(path, ParsedReport::Failure(f));
        }
        seen.dedup();
        self.fail(ReportError::NoReportInMessage {
            path: path.clone(),
            detail: format!(
                "no feedback report, report attachment or inline report among its parts ({})",
                seen.join(", ")
            ),
        });
    }
}

/// Splits an mbox into messages at `From ` lines that start the file or follow a blank line,
/// undoing `>From ` quoting (mboxrd).
pub fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = Vec::new();
    let mut prev_blank = true;
    let mut i = 0;
    while i < data.len() {
        let end = data[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| i + p + 1);
        let line = &data[i..end];
        if prev_blank && line.starts_with(b"From ") {
            starts.push(i);
        }
        prev_blank = line == b"\n" || line == b"\r\n";
        i = end;
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(data.len());
        let chunk = &data[s..e];
        // Drop the From_ line itself.
        let body_start = chunk
            .iter()
            .position(|&b| b == b'\n')
            .map_or(chunk.len(), |p| p + 1);
        let mut msg = Vec::with_capacity(chunk.len());
        let mut j = body_start;
        while j < chunk.len() {
            let end = chunk[j..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(chunk.len(), |p| j + p + 1);
            let line = &chunk[j..end];
            let gt = line.iter().take_while(|&&b| b == b'>').count();
            if gt > 0 && line[gt..].starts_with(b"From ") {
                msg.extend_from_slice(&line[1..]);
            } else {
                msg.extend_from_slice(line);
            }
            j = end;
        }
        out.push(msg);
    }
    out
}
