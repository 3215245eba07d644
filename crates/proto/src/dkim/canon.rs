//! Canonicalisation (§3.4): `simple` and `relaxed`, for header fields and for the body.
//!
//! Line endings: a line ends at LF, with or without a CR before it. Bare LF is read as
//! CRLF (mail arrives from files and pipes with LF endings; every mature verifier does the
//! same); a CR that is not followed by LF is an ordinary byte.
//!
//! The body canonicaliser is a streaming state machine that writes its output to a
//! [`BodySink`] in as few, as large, slices of the input as possible: runs of input that the
//! canonicalisation leaves unchanged go to the sink without being copied.

use super::Canon;

/// Where a body canonicaliser writes its output.
pub trait BodySink {
    /// Receives the next piece of canonical body.
    fn write(&mut self, data: &[u8]);
}

impl BodySink for Vec<u8> {
    fn write(&mut self, data: &[u8]) {
        self.extend_from_slice(data);
    }
}

const CRLFS: &[u8; 64] = b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";

/// Streaming body canonicalisation (§3.4.3 simple, §3.4.4 relaxed).
///
/// Feed the body in chunks of any size with [`BodyCanonicalizer::update`], then call
/// [`BodyCanonicalizer::finish`]. The output does not depend on where the chunks are cut.
#[derive(Debug, Clone)]
pub struct BodyCanonicalizer {
    canon: Canon,
    /// Line endings seen since the last content byte, not yet written.
    pending_eols: u64,
    /// Relaxed: whitespace seen since the last content byte on the current line.
    pending_wsp: bool,
    /// The previous chunk ended with CR: a CRLF may be split across chunks.
    cr_pending: bool,
    any_content: bool,
    /// Canonical bytes written so far.
    written: u64,
}

impl BodyCanonicalizer {
    /// A canonicaliser for `canon`.
    pub fn new(canon: Canon) -> Self {
        BodyCanonicalizer {
            canon,
            pending_eols: 0,
            pending_wsp: false,
            cr_pending: false,
            any_content: false,
            written: 0,
        }
    }

    /// The number of canonical bytes written so far (the canonical body length once
    /// [`finish`](Self::finish) has been called).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Canonicalises the next chunk of the body.
    pub fn update<S: BodySink + ?Sized>(&mut self, data: &[u8], sink: &mut S) {
        match self.canon {
            Canon::Simple => self.run::<false, S>(data, sink),
            Canon::Relaxed => self.run::<true, S>(data, sink),
        }
    }

    /// Ends the body, writing what canonicalisation adds at its end.
    pub fn finish<S: BodySink + ?Sized>(&mut self, sink: &mut S) {
        if self.cr_pending {
            self.cr_pending = false;
            self.content_static(b"\r", sink);
        }
        if self.any_content {
            self.out(b"\r\n", sink);
        } else if self.canon == Canon::Simple {
            // §3.4.3: an empty body is a single CRLF.
            self.out(b"\r\n", sink);
        }
        self.pending_eols = 0;
        self.pending_wsp = false;
    }

    fn out<S: BodySink + ?Sized>(&mut self, data: &[u8], sink: &mut S) {
        self.written += data.len() as u64;
        sink.write(data);
    }

    /// Writes the canonical form of the pending gap (line endings, then one space).
    fn flush_gap<S: BodySink + ?Sized>(&mut self, sink: &mut S) {
        while self.pending_eols > 0 {
            let n = self.pending_eols.min((CRLFS.len() / 2) as u64);
            self.pending_eols -= n;
            self.out(CRLFS.get(..(n as usize) * 2).unwrap_or_default(), sink);
        }
        if self.pending_wsp {
            self.pending_wsp = false;
            self.out(b" ", sink);
        }
    }

    fn content_static<S: BodySink + ?Sized>(&mut self, data: &[u8], sink: &mut S) {
        self.flush_gap(sink);
        self.out(data, sink);
        self.any_content = true;
    }

    fn run<const RELAXED: bool, S: BodySink + ?Sized>(&mut self, mut data: &[u8], sink: &mut S) {
        if data.is_empty() {
            return;
        }
        if self.cr_pending {
            self.cr_pending = false;
            if let Some((b'\n', rest)) = data.split_first() {
                self.pending_eols += 1;
                self.pending_wsp = false;
                data = rest;
            } else {
                self.content_static(b"\r", sink);
            }
        }
        // A verbatim region data[span..committed_end] that will be written as is; the gap
        // after it (line endings and whitespace) is described by the pending state, and
        // `gap_verbatim` says whether the input bytes of the gap equal its canonical form.
        let mut span: Option<usize> = None;
        let mut committed_end = 0usize;
        let mut gap_verbatim = false;
        let mut i = 0usize;
        let len = data.len();
        let mut irregular = Irregular::default();
        loop {
            // Inside a verbatim region, the input up to the next spot that
            // canonicalisation would change is its own canonical form: jump to the last
            // content byte before that spot. (The search starts one byte back, so that a
            // pattern straddling `i` is seen.)
            if gap_verbatim && span.is_some() {
                let p = irregular.next::<RELAXED>(data, i.saturating_sub(1));
                let mut q = p;
                while q > i
                    && data.get(q - 1).is_some_and(|b| {
                        matches!(b, b'\r' | b'\n') || RELAXED && matches!(b, b' ' | b'\t')
                    })
                {
                    q -= 1;
                }
                if q > i {
                    committed_end = q;
                    i = q;
                    self.pending_eols = 0;
                    self.pending_wsp = false;
                    self.any_content = true;
                }
            }
            let rest = data.get(i..).unwrap_or_default();
            let hit = if RELAXED {
                memchr::memchr3(b' ', b'\t', b'\n', rest)
            } else {
                memchr::memchr(b'\n', rest)
            };
            let (content_end, next) = match hit {
                Some(k) => (i + k, Some(i + k)),
                None => (len, None),
            };
            // Content run data[i..content_end], minus a CR that belongs to a line ending.
            let mut c_end = content_end;
            let at_lf = next.is_some_and(|p| data.get(p) == Some(&b'\n'));
            let mut crlf = false;
            if at_lf && c_end > i && data.get(c_end - 1) == Some(&b'\r') {
                c_end -= 1;
                crlf = true;
            } else if next.is_none() && c_end > i && data.get(c_end - 1) == Some(&b'\r') {
                // A CR at the very end: decided by the next chunk.
                c_end -= 1;
                self.cr_pending = true;
            }
            if c_end > i {
                match span {
                    Some(_) if gap_verbatim => {}
                    _ => {
                        if let Some(s) = span {
                            self.out(data.get(s..committed_end).unwrap_or_default(), sink);
                        }
                        self.flush_gap(sink);
                        span = Some(i);
                    }
                }
                committed_end = c_end;
                self.pending_eols = 0;
                self.pending_wsp = false;
                self.any_content = true;
                gap_verbatim = true;
            }
            let Some(p) = next else { break };
            match data.get(p) {
                Some(b'\n') => {
                    // The line ending closes the line: trailing whitespace goes away.
                    self.pending_eols += 1;
                    if !crlf || self.pending_wsp {
                        // Bare LF (the canonical form has a CR the input lacks), or
                        // trailing whitespace that goes away.
                        gap_verbatim = false;
                    }
                    self.pending_wsp = false;
                    i = p + 1;
                }
                _ => {
                    // Relaxed: a run of WSP.
                    let mut q = p;
                    while matches!(data.get(q), Some(b' ' | b'\t')) {
                        q += 1;
                    }
                    if q - p != 1 || data.get(p) != Some(&b' ') || self.pending_wsp {
                        gap_verbatim = false;
                    }
                    self.pending_wsp = true;
                    i = q;
                }
            }
            if i >= len {
                break;
            }
        }
        if let Some(s) = span {
            self.out(data.get(s..committed_end).unwrap_or_default(), sink);
        }
    }
}

/// Whether `body` followed by one CRLF is already its own canonical form (the body minus its
/// trailing CRLFs is given, so empty lines at the end are not looked at): no bare LF, and
/// for relaxed no tab, no run of spaces and no space at the end of a line. A quick scan,
/// much cheaper than canonicalising.
pub(crate) fn is_canonical(canon: Canon, body: &[u8]) -> bool {
    let no_bare_lf =
        memchr::memchr_iter(b'\n', body).all(|p| p > 0 && body.get(p - 1) == Some(&b'\r'));
    match canon {
        Canon::Simple => no_bare_lf,
        Canon::Relaxed => {
            no_bare_lf
                && memchr::memchr(b'\t', body).is_none()
                && memchr::memmem::find(body, b"  ").is_none()
                && memchr::memmem::find(body, b" \r\n").is_none()
                && !matches!(body.last(), Some(b' ' | b'\t'))
        }
    }
}

/// A cheap, partial [`is_canonical`]: true when the first or the last (about) 512 bytes of
/// `body` (given without its trailing CRLFs) show a spot that canonicalisation would change,
/// so that `body` is certainly not canonical. False says nothing. The windows are cut at
/// line ends, so that a cut never looks like a bare LF or trailing whitespace.
pub(crate) fn surely_not_canonical(canon: Canon, body: &[u8]) -> bool {
    const WINDOW: usize = 512;
    if body.len() <= 2 * WINDOW {
        return !is_canonical(canon, body);
    }
    let head = body.get(..WINDOW).unwrap_or_default();
    let head = memchr::memrchr(b'\n', head).and_then(|p| head.get(..=p));
    let tail = body.get(body.len() - WINDOW..).unwrap_or_default();
    let tail = memchr::memchr(b'\n', tail).and_then(|p| tail.get(p + 1..));
    head.is_some_and(|h| !is_canonical(canon, h)) || tail.is_some_and(|t| !is_canonical(canon, t))
}

/// The next places in a chunk where canonicalisation changes the input, by kind, found
/// lazily and remembered (so a search never rescans what it has passed).
#[derive(Default)]
struct Irregular {
    /// Next tab, double space, space before CR, space before LF, bare LF.
    at: [Option<usize>; 5],
}

impl Irregular {
    /// The first position at or after `from` that may need changing (or the chunk length).
    fn next<const RELAXED: bool>(&mut self, data: &[u8], from: usize) -> usize {
        let kinds = if RELAXED { 0..5 } else { 4..5 };
        let mut best = data.len();
        for k in kinds {
            let slot = self.at.get_mut(k);
            let Some(slot) = slot else { continue };
            let stale = slot.is_none_or(|p| p < from);
            if stale {
                let rest = data.get(from..).unwrap_or_default();
                let found = match k {
                    0 => memchr::memchr(b'\t', rest),
                    1 => memchr::memmem::find(rest, b"  "),
                    2 => memchr::memmem::find(rest, b" \r"),
                    3 => memchr::memmem::find(rest, b" \n"),
                    _ => memchr::memchr_iter(b'\n', rest)
                        .find(|&p| p + from == 0 || data.get(p + from - 1) != Some(&b'\r')),
                };
                *slot = Some(found.map_or(data.len(), |p| p + from));
            }
            if let Some(p) = *slot {
                best = best.min(p);
            }
        }
        best
    }
}

/// Canonicalises a whole body in one call (for tests, signing and small bodies).
pub fn canonicalize_body(canon: Canon, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut c = BodyCanonicalizer::new(canon);
    c.update(body, &mut out);
    c.finish(&mut out);
    out
}

/// Appends the canonical form of one header field (`name`, the bytes before the colon, and
/// `value`, the bytes after it without the closing line ending) to `out`, followed by CRLF
/// when `eol` is true (§3.4.1, §3.4.2).
pub fn canonicalize_header(canon: Canon, name: &[u8], value: &[u8], eol: bool, out: &mut Vec<u8>) {
    match canon {
        Canon::Simple => {
            out.extend_from_slice(name);
            out.push(b':');
            push_crlf_normalised(value, out);
        }
        Canon::Relaxed => {
            let name = trim_wsp(name);
            out.extend(name.iter().map(u8::to_ascii_lowercase));
            out.push(b':');
            // Runs of other bytes are copied whole. Line breaks (CRLF, or LF) are deleted
            // (unfolding); whitespace between runs becomes one space, none at either end. A
            // CR not followed by LF is an ordinary byte.
            let mut pending_space = false;
            let mut started = false;
            let mut i = 0;
            while i < value.len() {
                let rest = value.get(i..).unwrap_or_default();
                let run = rest
                    .iter()
                    .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                    .unwrap_or(rest.len());
                let mut end = i + run;
                // A bare CR belongs to the run.
                while value.get(end) == Some(&b'\r') && value.get(end + 1) != Some(&b'\n') {
                    end += 1;
                    end += value
                        .get(end..)
                        .unwrap_or_default()
                        .iter()
                        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                        .unwrap_or(value.len() - end);
                }
                if end > i {
                    if pending_space {
                        out.push(b' ');
                        pending_space = false;
                    }
                    out.extend_from_slice(value.get(i..end).unwrap_or_default());
                    started = true;
                    i = end;
                }
                loop {
                    match value.get(i) {
                        Some(b' ' | b'\t') => pending_space = started,
                        Some(b'\n') => {}
                        Some(b'\r') if value.get(i + 1) == Some(&b'\n') => {}
                        _ => break,
                    }
                    i += 1;
                }
            }
        }
    }
    if eol {
        out.extend_from_slice(b"\r\n");
    }
}

/// Copies `data` to `out`, turning bare LF into CRLF.
fn push_crlf_normalised(data: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    for p in memchr::memchr_iter(b'\n', data) {
        if p == 0 || data.get(p - 1) != Some(&b'\r') {
            out.extend_from_slice(data.get(start..p).unwrap_or_default());
            out.extend_from_slice(b"\r\n");
            start = p + 1;
        }
    }
    out.extend_from_slice(data.get(start..).unwrap_or_default());
}

fn trim_wsp(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(start, |p| p + 1);
    s.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(c: Canon, s: &str) -> String {
        String::from_utf8(canonicalize_body(c, s.as_bytes())).unwrap()
    }

    fn chunked(c: Canon, s: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut k = BodyCanonicalizer::new(c);
        for ch in s.chunks(size.max(1)) {
            k.update(ch, &mut out);
        }
        k.finish(&mut out);
        assert_eq!(k.written(), out.len() as u64);
        out
    }

    /// A byte-at-a-time reference implementation, straight from the RFC text.
    fn reference(c: Canon, s: &[u8]) -> Vec<u8> {
        // Split into lines (LF or CRLF endings).
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut cur = Vec::new();
        let mut i = 0;
        let mut last_terminated = true;
        while i < s.len() {
            if s[i] == b'\n' {
                lines.push(std::mem::take(&mut cur));
                last_terminated = true;
            } else if s[i] == b'\r' && s.get(i + 1) == Some(&b'\n') {
                // handled with the LF
            } else {
                cur.push(s[i]);
                last_terminated = false;
            }
            i += 1;
        }
        if !last_terminated {
            lines.push(cur);
        }
        if c == Canon::Relaxed {
            for l in &mut lines {
                let mut o = Vec::new();
                let mut ws = false;
                for &b in l.iter() {
                    if b == b' ' || b == b'\t' {
                        ws = true;
                    } else {
                        if ws {
                            o.push(b' ');
                        }
                        ws = false;
                        o.push(b);
                    }
                }
                *l = o;
            }
        }
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut out = Vec::new();
        for l in &lines {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
        if out.is_empty() && c == Canon::Simple {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn rfc_examples() {
        // §3.4.5
        let b = " C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(body(Canon::Relaxed, b), " C\r\nD E\r\n");
        assert_eq!(body(Canon::Simple, b), " C \r\nD \t E\r\n");
        assert_eq!(body(Canon::Simple, ""), "\r\n");
        assert_eq!(body(Canon::Relaxed, ""), "");
        assert_eq!(body(Canon::Relaxed, " \r\n\t\r\n"), "");
        assert_eq!(body(Canon::Simple, "a\nb\n\n"), "a\r\nb\r\n");
        assert_eq!(body(Canon::Simple, "a\rb"), "a\rb\r\n");
        assert_eq!(body(Canon::Relaxed, "a \r\r\n"), "a \r\r\n");
    }

    #[test]
    fn chunking_and_reference_agree() {
        let samples: &[&[u8]] = &[
            b" C \r\nD \t E\r\n\r\n\r\n",
            b"a\r\n\r\nb  \t\r\n \r\n c\r",
            b"\r\n\r\n\r\nx",
            b"x\n\ny \n\r\n\r\r\n  \t",
            b"   ",
            b"\r",
            b"a\r\rb\r\n\r",
            b"line one\r\nline  two \r\n\r\n\tline\tthree\r\n\r\n",
        ];
        for s in samples {
            for c in [Canon::Simple, Canon::Relaxed] {
                let r = reference(c, s);
                for size in 1..=s.len().max(1) {
                    assert_eq!(
                        chunked(c, s, size),
                        r,
                        "{c:?} {:?} chunk {size}",
                        String::from_utf8_lossy(s)
                    );
                }
            }
        }
    }

    #[test]
    fn headers() {
        let mut out = Vec::new();
        canonicalize_header(
            Canon::Relaxed,
            b"SUBJECT ",
            b"  a \t b\r\n c  ",
            true,
            &mut out,
        );
        assert_eq!(out, b"subject:a b c\r\n");
        out.clear();
        canonicalize_header(Canon::Simple, b"Subject", b" a\n b", true, &mut out);
        assert_eq!(out, b"Subject: a\r\n b\r\n");
        out.clear();
        canonicalize_header(Canon::Relaxed, b"X", b" a\rb \r\n\t\r c\r", true, &mut out);
        assert_eq!(out, b"x:a\rb \r c\r\r\n");
    }

    proptest::proptest! {
        #[test]
        fn prop_is_canonical_is_exact(
            s in proptest::collection::vec(proptest::sample::select(vec![b'a', b' ', b'\t', b'\r', b'\n']), 0..24),
        ) {
            let mut t: &[u8] = &s;
            while let Some(rest) = t.strip_suffix(b"\r\n") {
                t = rest;
            }
            for c in [Canon::Simple, Canon::Relaxed] {
                if is_canonical(c, t) {
                    let mut expect = t.to_vec();
                    if !t.is_empty() || c == Canon::Simple {
                        expect.extend_from_slice(b"\r\n");
                    }
                    proptest::prop_assert_eq!(canonicalize_body(c, &s), expect);
                }
            }
        }

        #[test]
        fn prop_surely_not_canonical_is_sound(
            s in proptest::collection::vec(proptest::sample::select(vec![b'a', b' ', b'\t', b'\r', b'\n']), 0..24),
            pad in 0usize..1200,
        ) {
            // Padding of canonical lines around a random piece puts the piece in, and out
            // of, the windows.
            let mut body = b"ab\r\n".repeat(pad / 4);
            body.extend_from_slice(&s);
            body.extend_from_slice(&b"\r\ncd".repeat(pad / 4));
            let mut t: &[u8] = &body;
            while let Some(rest) = t.strip_suffix(b"\r\n") {
                t = rest;
            }
            for c in [Canon::Simple, Canon::Relaxed] {
                if surely_not_canonical(c, t) {
                    proptest::prop_assert!(!is_canonical(c, t));
                }
            }
        }

        #[test]
        fn prop_relaxed_header_matches_reference(
            v in proptest::collection::vec(proptest::sample::select(vec![b'a', b' ', b'\t', b'\r', b'\n', b'x']), 0..40),
        ) {
            // §3.4.2, byte at a time: unfold (delete CRLF, and bare LF as elsewhere), WSP
            // runs to one SP, none at either end; a bare CR is an ordinary byte.
            let mut unfolded = Vec::new();
            let mut i = 0;
            while let Some(&b) = v.get(i) {
                if b == b'\n' || (b == b'\r' && v.get(i + 1) == Some(&b'\n')) {
                    i += 1;
                    continue;
                }
                unfolded.push(b);
                i += 1;
            }
            let mut expect = b"x:".to_vec();
            let mut space = false;
            for &b in &unfolded {
                if b == b' ' || b == b'\t' {
                    space = expect.len() > 2;
                } else {
                    if space {
                        expect.push(b' ');
                        space = false;
                    }
                    expect.push(b);
                }
            }
            let mut out = Vec::new();
            canonicalize_header(Canon::Relaxed, b"X", &v, false, &mut out);
            proptest::prop_assert_eq!(out, expect);
        }

        #[test]
        fn prop_streaming_matches_reference(
            s in proptest::collection::vec(proptest::sample::select(vec![b'a', b' ', b'\t', b'\r', b'\n', b'x']), 0..64),
            size in 1usize..9,
        ) {
            for c in [Canon::Simple, Canon::Relaxed] {
                let r = reference(c, &s);
                proptest::prop_assert_eq!(chunked(c, &s, size), r.clone());
                // Fixed point.
                proptest::prop_assert_eq!(canonicalize_body(c, &r), r);
            }
        }
    }
}
