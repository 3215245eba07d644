//! The shared message model: an RFC 5322 message split into byte-exact header fields and a
//! body, the way DKIM, ARC and DMARC need to see it.
//!
//! Nothing is decoded or normalised: every [`HeaderField`] borrows the exact bytes it came
//! from, so a signature computed over them can be checked. The splitter is tolerant of mail
//! as it arrives in the wild:
//!
//! * line endings may be CRLF, bare LF, or a mix of both;
//! * a message without the empty line that separates header and body is all header;
//! * 8-bit bytes in header fields are kept as they are;
//! * a line in the header block that is neither a field (`name:`) nor a continuation (an mbox
//!   `From ` separator, garbage) is kept as a [`HeaderField`] whose [`HeaderField::is_malformed`]
//!   is true, so positions stay exact and it never matches a field name.
//!
//! ```
//! use dmarc_proto::message::Message;
//!
//! let msg = Message::parse(b"From: a@example.com\nSubject: hi\n there\n\nbody\n");
//! assert_eq!(msg.headers().len(), 2);
//! assert_eq!(msg.headers()[1].name(), b"Subject");
//! assert_eq!(msg.headers()[1].value(), b" hi\n there");
//! assert_eq!(msg.body(), b"body\n");
//! ```

/// One header field, as it appears in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'a> {
    raw: &'a [u8],
    name_len: usize,
    value_start: usize,
    value_end: usize,
    offset: usize,
    index: usize,
    malformed: bool,
}

impl<'a> HeaderField<'a> {
    /// The field name, exactly as written (before the colon, trailing whitespace included:
    /// `Subject ` in `Subject : x`). Empty for a malformed line.
    pub fn name(&self) -> &'a [u8] {
        self.raw.get(..self.name_len).unwrap_or_default()
    }

    /// The field name without the whitespace that may precede the colon.
    pub fn trimmed_name(&self) -> &'a [u8] {
        trim_end_wsp(self.name())
    }

    /// The field body: everything after the colon, folding line breaks included, up to but
    /// excluding the line ending that closes the field.
    pub fn value(&self) -> &'a [u8] {
        self.raw
            .get(self.value_start..self.value_end)
            .unwrap_or_default()
    }

    /// The whole field, name, colon, value and closing line ending (if there was one).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The field without its closing line ending.
    pub fn raw_without_eol(&self) -> &'a [u8] {
        self.raw.get(..self.value_end).unwrap_or_default()
    }

    /// Whether the field ends with a line ending (false only for the last line of a message
    /// that has no body and no final line break).
    pub fn has_eol(&self) -> bool {
        self.value_end < self.raw.len()
    }

    /// The byte offset of the field in the message.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The position of the field in the header block, counting from 0 at the top.
    pub fn index(&self) -> usize {
        self.index
    }

    /// True for a line that is not a header field (no colon, or an empty name).
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }

    /// Whether the field's name is `name`, compared case-insensitively (RFC 5322 §1.2.2),
    /// ignoring whitespace before the colon.
    pub fn is(&self, name: &str) -> bool {
        !self.malformed && self.trimmed_name().eq_ignore_ascii_case(name.as_bytes())
    }
}

/// Where a field lies in its header block: a [`HeaderField`] without the borrow, for
/// holders of an owned header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldSpan {
    offset: usize,
    len: usize,
    name_len: usize,
    value_start: usize,
    value_end: usize,
    index: usize,
    malformed: bool,
}

impl<'a> HeaderField<'a> {
    /// The field's position, to rebuild it later with [`HeaderField::from_span`].
    pub(crate) fn span(&self) -> FieldSpan {
        FieldSpan {
            offset: self.offset,
            len: self.raw.len(),
            name_len: self.name_len,
            value_start: self.value_start,
            value_end: self.value_end,
            index: self.index,
            malformed: self.malformed,
        }
    }

    /// The field at `span` of `block` (the bytes the span was taken from).
    pub(crate) fn from_span(block: &'a [u8], span: FieldSpan) -> HeaderField<'a> {
        HeaderField {
            raw: block
                .get(span.offset..span.offset + span.len)
                .unwrap_or_default(),
            name_len: span.name_len,
            value_start: span.value_start,
            value_end: span.value_end,
            offset: span.offset,
            index: span.index,
            malformed: span.malformed,
        }
    }
}

/// A message split into header fields and body. Borrows the message bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    raw: &'a [u8],
    headers: Vec<HeaderField<'a>>,
    body_offset: usize,
    has_separator: bool,
}

impl<'a> Message<'a> {
    /// Splits `raw` into header fields and body. Never fails: see the
    /// [module documentation](self) for how unusual input is read.
    pub fn parse(raw: &'a [u8]) -> Message<'a> {
        let (headers, header_end, has_separator) = split_header_block(raw);
        Message {
            raw,
            headers,
            body_offset: header_end,
            has_separator,
        }
    }

    /// The message bytes as given.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The header fields, top to bottom.
    pub fn headers(&self) -> &[HeaderField<'a>] {
        &self.headers
    }

    /// The header block as it appears in the message, up to (not including) the empty line.
    pub fn header_block(&self) -> &'a [u8] {
        self.headers
            .last()
            .map(|h| self.raw.get(..h.offset + h.raw.len()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// The body: everything after the empty line that ends the header block (empty when there
    /// is none).
    pub fn body(&self) -> &'a [u8] {
        self.raw.get(self.body_offset..).unwrap_or_default()
    }

    /// The offset of the body in the message.
    pub fn body_offset(&self) -> usize {
        self.body_offset
    }

    /// Whether an empty line separated the header block from a body.
    pub fn has_separator(&self) -> bool {
        self.has_separator
    }

    /// The fields named `name` (case-insensitive), top to bottom.
    pub fn fields<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s HeaderField<'a>> + 's {
        self.headers.iter().filter(move |h| h.is(name))
    }
}

/// A header block held in its own buffer, with its fields found once: what a receiver that
/// collects the header fields itself (a milter) hands to the DKIM and ARC verifiers
/// ([`crate::dkim::Verifier::start_owned`], [`crate::arc::ArcVerifier::start_owned`]) after
/// reading what it needs from [`fields`](Self::fields). Cloning copies the bytes, not the
/// work of splitting them.
#[derive(Debug, Clone, Default)]
pub struct OwnedHeader {
    block: Vec<u8>,
    spans: Vec<FieldSpan>,
}

impl OwnedHeader {
    /// Splits `block` into its fields (as [`parse_header_block`]).
    pub fn parse(block: Vec<u8>) -> Self {
        let spans = parse_header_block(&block)
            .iter()
            .map(HeaderField::span)
            .collect();
        OwnedHeader { block, spans }
    }

    /// The fields, in order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = HeaderField<'_>> + '_ {
        self.spans
            .iter()
            .map(|s| HeaderField::from_span(&self.block, *s))
    }

    /// The header block's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.block
    }

    /// The bytes and the fields' spans.
    pub(crate) fn into_parts(self) -> (Vec<u8>, Vec<FieldSpan>) {
        (self.block, self.spans)
    }
}

/// Splits only the header block of a message (for a streaming consumer that receives the
/// header block on its own). Returns the fields; bytes after an empty line are ignored.
pub fn parse_header_block(block: &[u8]) -> Vec<HeaderField<'_>> {
    split_header_block(block).0
}

fn split_header_block(raw: &[u8]) -> (Vec<HeaderField<'_>>, usize, bool) {
    // Most messages have fewer than 48 fields: one allocation, no regrowth.
    let mut headers = Vec::with_capacity(48);
    let mut pos = 0usize;
    // Each iteration reads one logical field: a first line and its continuation lines.
    loop {
        let Some(rest) = raw.get(pos..) else {
            return (headers, raw.len(), false);
        };
        if rest.is_empty() {
            return (headers, raw.len(), false);
        }
        // An empty line ends the header block.
        if rest.starts_with(b"\r\n") {
            return (headers, pos + 2, true);
        }
        if rest.starts_with(b"\n") {
            return (headers, pos + 1, true);
        }
        let start = pos;
        // Find the end of the first line, then swallow continuation lines.
        let mut line_end = next_line(raw, pos);
        while let Some(b' ' | b'\t') = raw.get(line_end.next) {
            line_end = next_line(raw, line_end.next);
        }
        let field_raw = raw.get(start..line_end.next).unwrap_or_default();
        let value_end_abs = line_end.content_end;
        let colon = memchr::memchr(
            b':',
            field_raw.get(..value_end_abs - start).unwrap_or_default(),
        );
        let (name_len, value_start, malformed) = match colon {
            Some(c) if c > 0 && is_plausible_name(field_raw.get(..c).unwrap_or_default()) => {
                (c, c + 1, false)
            }
            _ => (0, 0, true),
        };
        headers.push(HeaderField {
            raw: field_raw,
            name_len,
            value_start,
            value_end: value_end_abs - start,
            offset: start,
            index: headers.len(),
            malformed,
        });
        pos = line_end.next;
    }
}

/// A field name is printable ASCII except the colon (RFC 5322 §3.6.8); whitespace is
/// tolerated only between the name and the colon (obsolete syntax, RFC 5322 §4.5).
fn is_plausible_name(name: &[u8]) -> bool {
    let trimmed = trim_end_wsp(name);
    !trimmed.is_empty() && trimmed.iter().all(|&b| (33..=126).contains(&b))
}

struct LineEnd {
    /// Offset of the first byte of the line terminator (or the end of input).
    content_end: usize,
    /// Offset of the first byte of the next line.
    next: usize,
}

fn next_line(raw: &[u8], from: usize) -> LineEnd {
    let rest = raw.get(from..).unwrap_or_default();
    match memchr::memchr(b'\n', rest) {
        Some(i) => {
            let lf = from + i;
            let content_end = if i > 0 && rest.get(i - 1) == Some(&b'\r') {
                lf - 1
            } else {
                lf
            };
            LineEnd {
                content_end,
                next: lf + 1,
            }
        }
        None => LineEnd {
            content_end: raw.len(),
            next: raw.len(),
        },
    }
}

pub(crate) fn trim_end_wsp(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && matches!(s.get(end - 1), Some(b' ' | b'\t')) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_message() {
        let m = Message::parse(b"A: 1\r\nB:2\r\n\tcont\r\n\r\nbody\r\n");
        assert_eq!(m.headers().len(), 2);
        assert_eq!(m.headers()[0].raw(), b"A: 1\r\n");
        assert_eq!(m.headers()[1].value(), b"2\r\n\tcont");
        assert_eq!(m.headers()[1].offset(), 6);
        assert_eq!(m.body(), b"body\r\n");
        assert!(m.has_separator());
        assert_eq!(m.header_block(), b"A: 1\r\nB:2\r\n\tcont\r\n");
    }

    #[test]
    fn no_separator() {
        let m = Message::parse(b"A: 1\nB: 2");
        assert_eq!(m.headers().len(), 2);
        assert!(!m.headers()[1].has_eol());
        assert_eq!(m.body(), b"");
        assert!(!m.has_separator());
    }

    #[test]
    fn malformed_lines() {
        let m = Message::parse(b"From foo@bar Mon\nX: y\n: nothing\n\n");
        assert!(m.headers()[0].is_malformed());
        assert!(m.headers()[1].is("x"));
        assert!(m.headers()[2].is_malformed());
    }

    #[test]
    fn empty_and_odd() {
        assert!(Message::parse(b"").headers().is_empty());
        let m = Message::parse(b"\r\nbody");
        assert!(m.headers().is_empty());
        assert_eq!(m.body(), b"body");
        let m = Message::parse(b"Subject : x\r\n\r\n");
        assert!(m.headers()[0].is("subject"));
        assert_eq!(m.headers()[0].name(), b"Subject ");
    }
}
