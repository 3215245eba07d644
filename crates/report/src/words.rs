//! Enumerated words as they appear in reports: case-insensitive on input, with a catch-all
//! variant so an unknown word is kept rather than lost.

/// Defines an enum of report words with a trailing `Unknown(String)` variant.
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
            Unknown(String),
        }

        impl $name {
            /// Parses a word, ignoring ASCII case and surrounding whitespace.
            pub fn parse(word: &str) -> Self {
                let w = word.trim();
                $(
                    if w.eq_ignore_ascii_case($word) $(|| w.eq_ignore_ascii_case($alias))* {
                        return $name::$variant;
                    }
                )+
                $name::Unknown(w.to_ascii_lowercase())
            }

            /// The canonical word.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $word, )+
                    $name::Unknown(s) => s,
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
