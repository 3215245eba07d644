//! Domain names as the zone-file resolver keeps them: lower-cased wire form.
//!
//! A [`Name`] holds the labels of an absolute name as length-prefixed octets without the
//! final root label, lower-cased (ASCII only, RFC 4343), so that equality is the DNS's
//! case-insensitive equality and a label may hold any octet, a dot included
//! (`a\.b.example.` is two labels, `a.b` and `example`).

use std::fmt;

/// The longest label, in octets (RFC 1035 §2.3.4).
pub(crate) const MAX_LABEL: usize = 63;
/// The longest name, in octets of wire form including the root label (RFC 1035 §2.3.4).
pub(crate) const MAX_NAME: usize = 255;

/// An absolute domain name in lower-cased wire form (root label omitted).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Name {
    wire: Vec<u8>,
}

impl Name {
    /// The root name.
    pub(crate) fn root() -> Name {
        Name::default()
    }

    /// Builds a name from labels (already unescaped), checking the RFC 1035 limits.
    pub(crate) fn from_labels<I, L>(labels: I) -> Result<Name, String>
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let mut wire = Vec::new();
        for label in labels {
            let label = label.as_ref();
            if label.is_empty() {
                return Err("empty label (two dots in a row, or a leading dot)".into());
            }
            if label.len() > MAX_LABEL {
                return Err(format!(
                    "label of {} octets is longer than {MAX_LABEL}",
                    label.len()
                ));
            }
            // `label.len() <= 63`, so the cast cannot truncate.
            wire.push(label.len() as u8);
            wire.extend(label.iter().map(u8::to_ascii_lowercase));
        }
        Name::from_wire_checked(wire)
    }

    fn from_wire_checked(wire: Vec<u8>) -> Result<Name, String> {
        // +1 for the root label.
        if wire.len() + 1 > MAX_NAME {
            return Err(format!(
                "name of {} octets is longer than {MAX_NAME}",
                wire.len() + 1
            ));
        }
        Ok(Name { wire })
    }

    /// `self` followed by `origin` (for relative names).
    pub(crate) fn append(&self, origin: &Name) -> Result<Name, String> {
        let mut wire = self.wire.clone();
        wire.extend_from_slice(&origin.wire);
        Name::from_wire_checked(wire)
    }

    /// The labels, leftmost first.
    pub(crate) fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.wire }
    }

    /// The name without its leftmost label, or `None` for the root.
    pub(crate) fn parent(&self) -> Option<Name> {
        let len = usize::from(*self.wire.first()?);
        let rest = self.wire.get(1 + len..).unwrap_or_default();
        Some(Name {
            wire: rest.to_vec(),
        })
    }

    /// The name with `label` prepended (used to build `*.<closest encloser>`).
    pub(crate) fn child(&self, label: &[u8]) -> Result<Name, String> {
        Name::from_labels(std::iter::once(label).chain(self.labels()))
    }

    /// Decodes an uncompressed wire-form name (RFC 3597 §4: names in generic RDATA are
    /// never compressed) at the start of `data`; returns the name and the octets used.
    pub(crate) fn from_uncompressed_wire(data: &[u8]) -> Result<(Name, usize), String> {
        let mut labels: Vec<&[u8]> = Vec::new();
        let mut pos = 0;
        loop {
            let len = usize::from(
                *data
                    .get(pos)
                    .ok_or("the name in the RDATA is not terminated by a root label")?,
            );
            pos += 1;
            if len == 0 {
                break;
            }
            if len > MAX_LABEL {
                return Err(format!(
                    "label length octet {len} in the RDATA is not a plain label (compression is not allowed here)"
                ));
            }
            let label = data
                .get(pos..pos + len)
                .ok_or("a label in the RDATA runs past its end")?;
            labels.push(label);
            pos += len;
        }
        Ok((Name::from_labels(labels)?, pos))
    }
}

/// Iterator over the labels of a [`Name`].
#[derive(Debug, Clone)]
pub(crate) struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let len = usize::from(len);
        let label = tail.get(..len)?;
        self.rest = tail.get(len..).unwrap_or_default();
        Some(label)
    }
}

/// Presentation form without the trailing dot: lower-case, `.` and `\` inside labels and
/// bytes outside printable ASCII escaped (`\.`, `\\`, `\DDD`). The root is `""`.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                match b {
                    b'.' | b'\\' | b'"' | b';' | b'(' | b')' | b'@' | b'$' => {
                        write!(f, "\\{}", char::from(b))?
                    }
                    0x21..=0x7e => write!(f, "{}", char::from(b))?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// Parses a name in presentation form (RFC 1035 §5.1): labels separated by unescaped dots,
/// `\X` meaning the octet X and `\DDD` the octet with decimal value DDD. Returns the name and
/// whether it was absolute (ended with an unescaped dot). `"."` alone is the root.
pub(crate) fn parse_presentation(text: &[u8]) -> Result<(Name, bool), String> {
    if text.is_empty() {
        return Err("empty domain name".into());
    }
    if text == b"." {
        return Ok((Name::root(), true));
    }
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut absolute = false;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        absolute = false;
        match b {
            b'\\' => {
                let (octet, used) = unescape_at(text, i)?;
                label.push(octet);
                i += used;
                continue;
            }
            b'.' => {
                if label.is_empty() {
                    return Err(format!(
                        "empty label in {:?} (two dots in a row, or a leading dot)",
                        super::lexer::quote(text)
                    ));
                }
                labels.push(std::mem::take(&mut label));
                absolute = true;
            }
            _ => label.push(b),
        }
        i += 1;
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let name = Name::from_labels(&labels)
        .map_err(|e| format!("{e} in {:?}", super::lexer::quote(text)))?;
    Ok((name, absolute))
}

/// Decodes the escape starting with the backslash at `text[i]`: `\DDD` (exactly three
/// decimal digits, at most 255) or `\X`. Returns the octet and the bytes consumed.
pub(crate) fn unescape_at(text: &[u8], i: usize) -> Result<(u8, usize), String> {
    let first = *text
        .get(i + 1)
        .ok_or("a backslash at the end of a token escapes nothing")?;
    if !first.is_ascii_digit() {
        return Ok((first, 2));
    }
    let digits = text
        .get(i + 1..i + 4)
        .filter(|d| d.iter().all(u8::is_ascii_digit))
        .ok_or("a \\DDD escape needs exactly three decimal digits")?;
    let value = digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    let octet =
        u8::try_from(value).map_err(|_| format!("the escape \\{value:03} is larger than 255"))?;
    Ok((octet, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_dot_stays_in_label() {
        let (n, abs) = parse_presentation(br"A\.b.Example.").unwrap();
        assert!(abs);
        assert_eq!(n.labels().count(), 2);
        assert_eq!(n.to_string(), r"a\.b.example");
    }

    #[test]
    fn decimal_escapes() {
        let (n, abs) = parse_presentation(br"\065\032b.example").unwrap();
        assert!(!abs);
        assert_eq!(n.labels().next().unwrap(), b"a b");
        assert_eq!(n.to_string(), r"a\032b.example");
        assert!(parse_presentation(br"\256.example").is_err());
        assert!(parse_presentation(br"\06.example").is_err());
        assert!(parse_presentation(br"a\").is_err());
    }

    #[test]
    fn limits() {
        let long = "a".repeat(64);
        assert!(parse_presentation(long.as_bytes()).is_err());
        let name = ["abcdefghi"; 26].join(".");
        assert!(parse_presentation(name.as_bytes()).is_err());
        assert!(parse_presentation(b"a..b").is_err());
        assert!(parse_presentation(b".a").is_err());
        assert_eq!(parse_presentation(b".").unwrap().0, Name::root());
    }

    #[test]
    fn parents() {
        let (n, _) = parse_presentation(b"a.b.c").unwrap();
        assert_eq!(n.parent().unwrap().to_string(), "b.c");
        assert_eq!(Name::root().parent(), None);
    }
}
