//! One-word values (`target = "rancher"`, `pull.policy = "any"`) as enums.
//!
//! The file is deserialized with these keys still as strings and each word is parsed
//! here: a bad word is then one problem among all the others, named by its full key and
//! listing the valid words. (An enum deserialized by serde would end the reading at the
//! first bad word, and inside a tagged enum serde names neither the key nor the choices.)

use super::problem::{Problem, Report};

/// A word that is not one of a key's choices.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{word}` is not {what}; use {choices}")]
pub struct WordError {
    word: String,
    what: &'static str,
    choices: String,
}

impl WordError {
    pub fn new(word: &str, what: &'static str, words: &[&str]) -> Self {
        // Cut: a long value in the wrong key (a pasted token) need not be repeated whole.
        let word = word.chars().take(100).collect();
        Self {
            word,
            what,
            choices: choices(words),
        }
    }
}

/// `` `a` or `b` ``, `` `a`, `b` or `c` ``.
fn choices(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// The enum `raw` names; when it names none, a problem at `key` and `fallback` (loading
/// fails anyway, the fallback only lets the other checks go on).
pub(super) fn parse<T>(raw: &str, key: impl Into<String>, fallback: T, out: &mut Vec<Problem>) -> T
where
    T: std::str::FromStr<Err = WordError>,
{
    raw.parse().unwrap_or_else(|e: WordError| {
        out.bad(key, e.to_string());
        fallback
    })
}

/// An enum of words: `as_str`, `FromStr` (with a [`WordError`] listing the
/// words), `Display`, and serde as the word.
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The word, as the configuration spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::config::WordError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok(Self::$variant),)+
                    _ => Err($crate::config::WordError::new(s, $what, &[$($word),+])),
                }
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
                let word = String::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use words;

#[cfg(test)]
mod tests {
    use super::*;

    words! {
        /// Two words, for the tests.
        pub enum Pair ("a pair word") {
            One = "one",
            Two = "two",
        }
    }

    #[test]
    fn a_bad_word_names_the_choices_and_a_good_one_round_trips() {
        assert_eq!("two".parse::<Pair>(), Ok(Pair::Two));
        assert_eq!(Pair::Two.to_string(), "two");
        assert_eq!(
            "three".parse::<Pair>().unwrap_err().to_string(),
            "`three` is not a pair word; use `one` or `two`"
        );
        let err = serde_json::from_str::<Pair>("\"One\"").unwrap_err();
        assert!(err.to_string().contains("use `one` or `two`"), "{err}");
        assert_eq!(serde_json::to_string(&Pair::One).unwrap(), "\"one\"");
    }

    #[test]
    fn choices_read_as_a_sentence() {
        assert_eq!(choices(&["a"]), "`a`");
        assert_eq!(choices(&["a", "b", "c"]), "`a`, `b` or `c`");
    }

    #[test]
    fn a_bad_word_is_a_problem_and_the_fallback_lets_checks_go_on() {
        let mut out = Vec::new();
        assert_eq!(parse("", "x.pair", Pair::One, &mut out), Pair::One);
        assert_eq!(out[0].key, "x.pair");
        assert_eq!(parse("two", "x.pair", Pair::One, &mut out), Pair::Two);
        assert_eq!(out.len(), 1);
    }
}
