//! Small pieces of IMAP syntax (RFC 3501 §9): mailbox-name encoding, flag keywords, UID sets.

use std::fmt::Write as _;

/// Longest mailbox name accepted, in bytes after encoding. Servers commonly allow 255 or so
/// per hierarchy level; this bound only guards against absurd input.
const MAX_MAILBOX_LEN: usize = 1024;

/// Longest keyword accepted (Dovecot and Cyrus allow a few hundred octets).
const MAX_KEYWORD_LEN: usize = 128;

/// Encodes a mailbox name in modified UTF-7 (RFC 3501 §5.1.3), the form IMAP servers
/// expect unless `UTF8=ACCEPT` is enabled, after checking that it can be sent at all.
///
/// Printable US-ASCII other than `&` stands for itself, `&` becomes `&-`, and every run of
/// other characters becomes `&` + modified BASE64 (`,` for `/`, no padding) of its UTF-16BE
/// form + `-`.
pub(crate) fn encode_mailbox(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("mailbox name is empty".to_owned());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "mailbox name {name:?} contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush_utf16(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_utf16(&mut out, &mut pending);
    if out.len() > MAX_MAILBOX_LEN {
        return Err(format!(
            "mailbox name is {} bytes long once encoded; at most {MAX_MAILBOX_LEN} are accepted",
            out.len()
        ));
    }
    Ok(out)
}

fn flush_utf16(out: &mut String, pending: &mut Vec<u16>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextets = match chunk.len() {
            1 => 2,
            2 => 3,
            _ => 4,
        };
        for i in 0..sextets {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            // `index` is below 64 by the mask, so the lookup cannot miss.
            if let Some(&b) = ALPHABET.get(index as usize) {
                out.push(char::from(b));
            }
        }
    }
    out.push('-');
    pending.clear();
}

/// Checks that `keyword` is a valid flag keyword (RFC 3501 §9: `flag-keyword = atom`).
pub(crate) fn check_keyword(keyword: &str) -> Result<(), String> {
    if keyword.is_empty() {
        return Err("keyword is empty".to_owned());
    }
    if keyword.len() > MAX_KEYWORD_LEN {
        return Err(format!(
            "keyword {keyword:?} is longer than {MAX_KEYWORD_LEN} bytes"
        ));
    }
    if keyword.starts_with('\\') {
        return Err(format!(
            "keyword {keyword:?} starts with '\\', which is reserved for system flags"
        ));
    }
    // atom-specials: "(" / ")" / "{" / SP / CTL / "%" / "*" / DQUOTE / "\" / "]"
    if let Some(c) = keyword
        .chars()
        .find(|&c| !c.is_ascii() || c.is_ascii_control() || " (){%*\"\\]".contains(c))
    {
        return Err(format!(
            "keyword {keyword:?} contains {c:?}, which is not allowed in an IMAP atom"
        ));
    }
    Ok(())
}

/// Formats sorted, de-duplicated UIDs as a compact sequence set: `1:3,7,9:10`.
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut iter = uids.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while let Some(&next) = iter.peek() {
            if Some(next) == end.checked_add(1) {
                end = next;
                iter.next();
            } else {
                break;
            }
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}:{end}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_utf7_examples_from_rfc3501() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語"
        assert_eq!(
            encode_mailbox("~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}").unwrap(),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode_mailbox("Tom & Jerry").unwrap(), "Tom &- Jerry");
        assert_eq!(encode_mailbox("INBOX").unwrap(), "INBOX");
        assert_eq!(encode_mailbox("Trait\u{e9}s").unwrap(), "Trait&AOk-s");
        // A character outside the BMP becomes a surrogate pair.
        assert_eq!(encode_mailbox("\u{1f600}").unwrap(), "&2D3eAA-");
    }

    #[test]
    fn mailbox_names_that_cannot_be_sent() {
        assert!(encode_mailbox("").is_err());
        assert!(encode_mailbox("a\r\nb").unwrap_err().contains("U+000D"));
        assert!(encode_mailbox("a\0").is_err());
        assert!(encode_mailbox(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn keywords() {
        assert!(check_keyword("$DmarcProcessed").is_ok());
        assert!(check_keyword("Processed-by_dmarc.1").is_ok());
        for bad in [
            "",
            "a b",
            "a(b",
            "\\Seen",
            "a]",
            "a*",
            "a%",
            "a\"",
            "caf\u{e9}",
            "a\r",
        ] {
            assert!(check_keyword(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
    }
}
