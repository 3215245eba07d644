//! [`SharedStr`]: the names an evaluation reports, shared instead of copied.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;
use smallvec::SmallVec;

/// An immutable string that is shared, not copied, when cloned, and that can be a part of
/// another one: the domain of `alice@example.com` is a view into the address. It
/// dereferences to `str`, compares, hashes, displays and serializes as its text, and
/// converts into a `String`.
///
/// [`SpfRequest`](super::SpfRequest) and [`SpfOutput`](super::SpfOutput) hold their names
/// this way, so that the two evaluations of a message (MAIL FROM and HELO) and their
/// outputs share one copy of each name.
#[derive(Clone)]
pub struct SharedStr {
    buf: Arc<str>,
    /// The byte range of `buf` this string is; always on character boundaries.
    start: usize,
    end: usize,
}

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        if self.start == 0 && self.end == self.buf.len() {
            return &self.buf;
        }
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// `sub` as a view into this string when it is a part of it (a slice of
    /// [`SharedStr::as_str`]), else as a copy.
    pub fn slice(&self, sub: &str) -> SharedStr {
        let whole = self.as_str();
        if sub.len() == whole.len() && sub.as_ptr() == whole.as_ptr() {
            return self.clone();
        }
        let base = whole.as_ptr() as usize;
        let at = sub.as_ptr() as usize;
        if at >= base && at + sub.len() <= base + whole.len() {
            let start = self.start + (at - base);
            return SharedStr {
                buf: self.buf.clone(),
                start,
                end: start + sub.len(),
            };
        }
        SharedStr::from(sub)
    }

    /// True when both are views into the same buffer (tests of the sharing).
    #[cfg(test)]
    pub(crate) fn same_buffer(&self, other: &SharedStr) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    /// This string with `prefix` in front, as a view into the same buffer when the buffer
    /// holds `prefix` right before it (no copy), else `None`.
    pub(crate) fn with_prefix(&self, prefix: &str) -> Option<SharedStr> {
        let start = self.start.checked_sub(prefix.len())?;
        (self.buf.get(start..self.start)? == prefix).then(|| SharedStr {
            buf: self.buf.clone(),
            start,
            end: self.end,
        })
    }

    /// The parts joined, in one allocation.
    pub fn concat(parts: &[&str]) -> SharedStr {
        let mut buf: SmallVec<[u8; 256]> = SmallVec::new();
        for p in parts {
            buf.extend_from_slice(p.as_bytes());
        }
        match std::str::from_utf8(&buf) {
            Ok(s) => SharedStr::from(s),
            // The parts are `str`s, so their concatenation is UTF-8.
            Err(_) => SharedStr::from(parts.concat()),
        }
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        SharedStr {
            buf: Arc::from(s),
            start: 0,
            end: s.len(),
        }
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        let end = s.len();
        SharedStr {
            buf: Arc::from(s),
            start: 0,
            end,
        }
    }
}

impl From<&String> for SharedStr {
    fn from(s: &String) -> Self {
        SharedStr::from(s.as_str())
    }
}

impl From<Cow<'_, str>> for SharedStr {
    fn from(s: Cow<'_, str>) -> Self {
        SharedStr::from(&*s)
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl From<&SharedStr> for String {
    fn from(s: &SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl From<SharedStr> for Cow<'static, str> {
    fn from(s: SharedStr) -> Self {
        Cow::Owned(s.into())
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for SharedStr {
    /// As the text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::SharedStr;

    #[test]
    fn views_share_and_copies_do_not() {
        let addr = SharedStr::from("alice@example.com");
        let (_, d) = addr.split_once('@').unwrap();
        let domain = addr.slice(d);
        assert_eq!(domain, "example.com");
        assert!(std::sync::Arc::ptr_eq(&domain.buf, &addr.buf));
        let other = addr.slice("example.com");
        assert_eq!(other, domain);
        assert!(!std::sync::Arc::ptr_eq(&other.buf, &addr.buf));
        let sub = domain.slice(&domain[8..]);
        assert_eq!(sub, "com");
        assert_eq!(
            SharedStr::concat(&["postmaster@", &domain]),
            "postmaster@example.com"
        );
        let long = "x".repeat(300);
        assert_eq!(SharedStr::concat(&[&long, "é"]).len(), 302);
        assert_eq!(String::from(domain.clone()), "example.com");
        assert_eq!(
            format!("{domain} {domain:?}"),
            "example.com \"example.com\""
        );
    }
}
