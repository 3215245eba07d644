//! Splits a master file into entries (RFC 1035 §5.1).
//!
//! An entry is one line, or several when parentheses are open; tokens are separated by
//! spaces and tabs; `;` starts a comment that runs to the end of the line; `"..."` is a
//! quoted character-string, which may contain delimiters and line breaks. A backslash keeps
//! the next byte from being special (so `\;`, `\"`, `\(` and `\ ` are ordinary); escapes are
//! left in the token text and decoded later, because their meaning depends on where the
//! token is used (a `\.` in a name is a dot inside a label).

/// One token, escapes not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The raw bytes (without the quotes of a quoted token).
    pub(crate) text: Vec<u8>,
    /// Whether it was written as a quoted string.
    pub(crate) quoted: bool,
}

impl Token {
    /// True when this is the unquoted token `text` (ASCII case-insensitive).
    pub(crate) fn is(&self, text: &str) -> bool {
        !self.quoted && self.text.eq_ignore_ascii_case(text.as_bytes())
    }

    /// The token as text for error messages, at most [`MAX_QUOTED`] bytes of it.
    pub(crate) fn show(&self) -> String {
        let t = quote(&self.text);
        if self.quoted { format!("\"{t}\"") } else { t }
    }
}

/// The most bytes of the offending text an error message repeats: enough to find the
/// place, not enough to echo a whole file (an `$INCLUDE` of a file that is not a zone) or
/// a 20 MB label.
pub(crate) const MAX_QUOTED: usize = 40;

/// `text` for an error message: its first [`MAX_QUOTED`] bytes (as UTF-8, lossily), and
/// when it is longer, how long it is.
pub(crate) fn quote(text: &[u8]) -> String {
    match text.get(..MAX_QUOTED) {
        Some(head) if text.len() > MAX_QUOTED => {
            format!(
                "{}... ({} bytes)",
                String::from_utf8_lossy(head).trim_end_matches('\u{fffd}'),
                text.len()
            )
        }
        _ => String::from_utf8_lossy(text).into_owned(),
    }
}

/// One entry: the tokens of a logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The line the entry starts on (1-based).
    pub(crate) line: usize,
    /// Whether the line began with a space or tab (no owner name: RFC 1035 §5.1 `<blank><rr>`).
    pub(crate) blank_owner: bool,
    /// The tokens, at least one.
    pub(crate) tokens: Vec<Token>,
}

/// A lexing error: the line and what is wrong.
pub(crate) type LexError = (usize, String);

/// Iterates over the entries of a master file.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a [u8]) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// The next entry, `Ok(None)` at the end of the input.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, LexError> {
        let mut tokens = Vec::new();
        let mut blank_owner = matches!(self.peek(), Some(b' ' | b'\t'));
        let mut entry_line = self.line;
        let mut open_paren_line: Option<usize> = None;
        let mut depth = 0usize;
        loop {
            let Some(b) = self.peek() else {
                if depth > 0 {
                    return Err((
                        open_paren_line.unwrap_or(self.line),
                        "'(' is never closed".into(),
                    ));
                }
                return Ok((!tokens.is_empty()).then_some(Entry {
                    line: entry_line,
                    blank_owner,
                    tokens,
                }));
            };
            match b {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b';' => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.pos += 1;
                    }
                }
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    if depth == 0 {
                        if !tokens.is_empty() {
                            return Ok(Some(Entry {
                                line: entry_line,
                                blank_owner,
                                tokens,
                            }));
                        }
                        // An empty line: the next one starts afresh.
                        blank_owner = matches!(self.peek(), Some(b' ' | b'\t'));
                        entry_line = self.line;
                    }
                }
                b'(' => {
                    if depth == 0 {
                        open_paren_line = Some(self.line);
                    }
                    depth += 1;
                    self.pos += 1;
                }
                b')' => {
                    if depth == 0 {
                        return Err((self.line, "')' without a matching '('".into()));
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                b'"' => {
                    if tokens.is_empty() {
                        entry_line = self.line;
                    }
                    tokens.push(self.quoted()?);
                }
                _ => {
                    if tokens.is_empty() {
                        entry_line = self.line;
                    }
                    tokens.push(self.unquoted()?);
                }
            }
        }
    }

    fn quoted(&mut self) -> Result<Token, LexError> {
        let start_line = self.line;
        self.pos += 1; // opening quote
        let mut text = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err((start_line, "quoted string is never closed".into()));
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(Token { text, quoted: true }),
                b'\\' => {
                    let Some(next) = self.peek() else {
                        return Err((start_line, "quoted string is never closed".into()));
                    };
                    self.pos += 1;
                    if next == b'\n' {
                        self.line += 1;
                    }
                    text.push(b'\\');
                    text.push(next);
                }
                b'\n' => {
                    self.line += 1;
                    text.push(b);
                }
                _ => text.push(b),
            }
        }
    }

    fn unquoted(&mut self) -> Result<Token, LexError> {
        let mut text = Vec::new();
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"' => break,
                b'\\' => {
                    self.pos += 1;
                    let Some(next) = self.peek() else {
                        return Err((
                            self.line,
                            "a backslash at the end of the file escapes nothing".into(),
                        ));
                    };
                    if next == b'\n' {
                        self.line += 1;
                    }
                    text.push(b'\\');
                    text.push(next);
                    self.pos += 1;
                }
                _ => {
                    text.push(b);
                    self.pos += 1;
                }
            }
        }
        Ok(Token {
            text,
            quoted: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(src: &str) -> Vec<Entry> {
        let mut lx = Lexer::new(src.as_bytes());
        let mut out = Vec::new();
        while let Some(e) = lx.next_entry().unwrap() {
            out.push(e);
        }
        out
    }

    fn texts(e: &Entry) -> Vec<String> {
        e.tokens.iter().map(Token::show).collect()
    }

    #[test]
    fn lines_comments_parens() {
        let es = entries(
            "; header\n\na IN TXT \"x;y\" ; c\n  MX ( 10 ; pref\n  mx.example. )\n\n$TTL 5",
        );
        assert_eq!(es.len(), 3);
        assert_eq!(texts(&es[0]), ["a", "IN", "TXT", "\"x;y\""]);
        assert_eq!(es[0].line, 3);
        assert!(!es[0].blank_owner);
        assert_eq!(texts(&es[1]), ["MX", "10", "mx.example."]);
        assert!(es[1].blank_owner);
        assert_eq!(es[1].line, 4);
        assert_eq!(texts(&es[2]), ["$TTL", "5"]);
        assert_eq!(es[2].line, 7);
    }

    #[test]
    fn escapes_are_kept_raw() {
        let es = entries(r#"a\ b\;c "q\"r" x"#);
        assert_eq!(es[0].tokens[0].text, br"a\ b\;c");
        assert_eq!(es[0].tokens[1].text, br#"q\"r"#);
        assert_eq!(es[0].tokens.len(), 3);
    }

    #[test]
    fn errors() {
        assert_eq!(Lexer::new(b"a (\nb").next_entry().unwrap_err().0, 1);
        assert_eq!(Lexer::new(b"\na )").next_entry().unwrap_err().0, 2);
        assert_eq!(Lexer::new(b"a \"bc\n").next_entry().unwrap_err().0, 1);
        assert!(Lexer::new(b"a\\").next_entry().is_err());
    }

    #[test]
    fn quoted_string_spans_lines() {
        let es = entries("a TXT \"x\ny\"\nb A 1.2.3.4\n");
        assert_eq!(es[0].tokens[2].text, b"x\ny");
        assert_eq!(es[1].line, 3);
    }
}
