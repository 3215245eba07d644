//! Enumerated words as they appear in reports: case-insensitive on input, with a catch-all
//! variant so an unknown word is kept rather than lost.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// A word this crate does not know, kept as written (lowercased, trimmed): the payload of
/// the `Unknown` variant of every report word enum ([`Disposition`], [`DkimResult`] ...).
///
/// It is one pointer wide, so each word enum (and an `Option` of one) takes 16 bytes instead
/// of 24 — a large aggregate report holds several per record. Read it as a `str` (it derefs
/// to one); build one with `"word".into()`.
///
/// [`Disposition`]: crate::aggregate::Disposition
/// [`DkimResult`]: crate::aggregate::DkimResult
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnknownWord(Box<Box<str>>);

impl UnknownWord {
    /// The word.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for UnknownWord {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for UnknownWord {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for UnknownWord {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for UnknownWord {
    fn from(s: &str) -> Self {
        UnknownWord(Box::new(s.into()))
    }
}

impl From<String> for UnknownWord {
    fn from(s: String) -> Self {
        UnknownWord(Box::new(s.into_boxed_str()))
    }
}

impl From<UnknownWord> for String {
    fn from(w: UnknownWord) -> String {
        (*w.0).into()
    }
}

impl PartialEq<str> for UnknownWord {
    fn eq(&self, other: &str) -> bool {
        **self.0 == *other
    }
}

impl PartialEq<&str> for UnknownWord {
    fn eq(&self, other: &&str) -> bool {
        **self.0 == **other
    }
}

impl PartialEq<String> for UnknownWord {
    fn eq(&self, other: &String) -> bool {
        **self.0 == **other
    }
}

impl fmt::Debug for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.0, f)
    }
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Defines an enum of report words with a trailing `Unknown(UnknownWord)` variant.
///
/// Parsing ignores ASCII case and surrounding whitespace; serde uses the canonical word.
macro_rules! word_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A word this crate does not know, kept as written (lowercased, trimmed).
            Unknown($crate::UnknownWord),
        }

        impl $name {
            /// Parses a word, ignoring ASCII case and surrounding whitespace.
            pub fn parse(word: &str) -> Self {
                // Words as reports write them have nothing to trim: skip the Unicode-aware
                // trim when both ends are visible ASCII.
                let b = word.as_bytes();
                let w = if b.first().is_some_and(u8::is_ascii_graphic)
                    && b.last().is_some_and(u8::is_ascii_graphic)
                {
                    word
                } else {
                    word.trim()
                };
                $(
                    if w.eq_ignore_ascii_case($word) $(|| w.eq_ignore_ascii_case($alias))* {
                        return $name::$variant;
                    }
                )+
                $name::Unknown($crate::UnknownWord::from(w.to_ascii_lowercase()))
            }

            /// The canonical word.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $word, )+
                    $name::Unknown(s) => s.as_str(),
                }
            }

            /// Whether this is a word the specifications define.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

pub(crate) use word_enum;

/// `text` quoted for a warning or error (`"..."`), at most 40 characters of it, with its
/// length when it is longer.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!(
            "{:?}... ({} bytes)",
            text.get(..cut).unwrap_or_default(),
            text.len()
        ),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::aggregate::{Disposition, DkimResult, SpfScope};

    use super::UnknownWord;

    #[test]
    fn unknown_words_keep_the_word_and_stay_small() {
        assert_eq!(DkimResult::parse("pass"), DkimResult::Pass);
        assert_eq!(DkimResult::parse(" PASS\n"), DkimResult::Pass);
        assert_eq!(DkimResult::parse("\u{a0}Pass\u{2003}"), DkimResult::Pass);
        assert_eq!(DkimResult::parse(""), DkimResult::Unknown("".into()));
        let d = Disposition::parse("  Bounce ");
        assert_eq!(d, Disposition::Unknown("bounce".into()));
        assert_eq!(d.as_str(), "bounce");
        assert!(!d.is_known());
        let Disposition::Unknown(w) = &d else {
            panic!("{d:?}")
        };
        assert_eq!(*w, "bounce");
        assert_eq!(w.len(), 6); // derefs to str
        assert_eq!(format!("{d:?}"), "Unknown(\"bounce\")");
        assert_eq!(String::from(UnknownWord::from("x")), "x");
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"bounce\"");
        let back: Disposition = serde_json::from_str("\"bounce\"").unwrap();
        assert_eq!(back, d);
        // One pointer plus the tag: a record holds several of these.
        if cfg!(target_pointer_width = "64") {
            assert_eq!(std::mem::size_of::<Option<DkimResult>>(), 16);
            assert_eq!(std::mem::size_of::<Option<SpfScope>>(), 16);
        }
    }
}
