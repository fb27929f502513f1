//! Converters: the `,lower`-style transformations after a fetch.

use super::value::{SType, Scratch, Val};
use super::{ParseError, Sample};

/// One converter of a fetch expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    /// `lower`: ASCII lowercase.
    Lower,
    /// `upper`: ASCII uppercase.
    Upper,
    /// `length`: the string's length in bytes, as an integer.
    Length,
}

/// The converter names, for messages.
const NAMES: &str = "lower, upper, length";

impl Conv {
    /// Parses converter `name` (with `has_args` telling whether parentheses
    /// with arguments followed it) found at `offset`, applied to a sample of
    /// type `input`.
    pub(crate) fn parse(
        name: &str,
        has_args: bool,
        offset: usize,
        input: SType,
        fetch: &str,
    ) -> Result<Conv, ParseError> {
        let conv = match name {
            "lower" => Conv::Lower,
            "upper" => Conv::Upper,
            "length" => Conv::Length,
            "" => {
                return Err(ParseError::new(
                    offset,
                    name,
                    format!("expected a converter name after `,` ({NAMES})"),
                ));
            }
            _ => {
                return Err(ParseError::new(
                    offset,
                    name,
                    format!("unknown converter `{name}`; expected one of {NAMES}"),
                ));
            }
        };
        if has_args {
            return Err(ParseError::new(
                offset,
                name,
                format!("converter `{name}` takes no arguments"),
            ));
        }
        if input != SType::Str {
            return Err(ParseError::new(
                offset,
                name,
                format!(
                    "converter `{name}` needs a string, but `{fetch}` gives {}",
                    input.describe()
                ),
            ));
        }
        Ok(conv)
    }

    /// The type the converter produces.
    pub(crate) fn output(self) -> SType {
        match self {
            Conv::Lower | Conv::Upper => SType::Str,
            Conv::Length => SType::Int,
        }
    }
}

fn changes(conv: Conv, s: &[u8]) -> bool {
    match conv {
        Conv::Lower => s.iter().any(u8::is_ascii_uppercase),
        Conv::Upper => s.iter().any(u8::is_ascii_lowercase),
        Conv::Length => true,
    }
}

fn transform(conv: Conv, s: &mut [u8]) {
    match conv {
        Conv::Lower => s.make_ascii_lowercase(),
        Conv::Upper => s.make_ascii_uppercase(),
        Conv::Length => {}
    }
}

/// Applies `convs` to `v` and calls `f` with the result. A transformed
/// string lives in a stack buffer (heap only beyond 256 bytes); a string
/// the converters leave unchanged is passed through without a copy.
pub(crate) fn apply<R>(convs: &[Conv], v: Val<'_>, f: impl FnOnce(Val<'_>) -> R) -> R {
    let mut scratch = Scratch::<256>::new();
    let mut in_scratch = false;
    let mut cur = v;
    for &conv in convs {
        match (conv, cur) {
            (Conv::Length, Val::Str(s)) => {
                let len = if in_scratch {
                    scratch.as_slice().len()
                } else {
                    s.len()
                };
                cur = Val::Int(len as i64);
                in_scratch = false;
            }
            (_, Val::Str(s)) => {
                if in_scratch {
                    transform(conv, scratch.as_mut_slice());
                } else if changes(conv, s) {
                    scratch.push_slice(s);
                    transform(conv, scratch.as_mut_slice());
                    in_scratch = true;
                }
            }
            // Parsing only accepts converters on strings.
            _ => {}
        }
    }
    if in_scratch {
        f(Val::Str(scratch.as_slice()))
    } else {
        f(cur)
    }
}

/// Applies `convs` to an owned-or-borrowed sample (for `Fetch::eval`),
/// copying a borrowed string only when a converter changes it.
pub(crate) fn apply_sample<'c>(convs: &[Conv], mut s: Sample<'c>) -> Sample<'c> {
    for &conv in convs {
        s = match (conv, s) {
            (Conv::Length, Sample::Str(v)) => Sample::Int(v.len() as i64),
            (_, Sample::Str(mut v)) => {
                if changes(conv, &v) {
                    transform(conv, v.to_mut());
                }
                Sample::Str(v)
            }
            (_, other) => other,
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn run(convs: &[Conv], v: Val<'_>) -> String {
        apply(convs, v, |v| match v {
            Val::Str(s) => format!("s:{}", String::from_utf8_lossy(s)),
            Val::Int(i) => format!("i:{i}"),
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn lower_upper_length() {
        assert_eq!(run(&[Conv::Lower], Val::Str(b"AbC")), "s:abc");
        assert_eq!(run(&[Conv::Upper], Val::Str(b"AbC")), "s:ABC");
        assert_eq!(run(&[Conv::Length], Val::Str(b"AbC")), "i:3");
        assert_eq!(run(&[Conv::Lower, Conv::Upper], Val::Str(b"AbC")), "s:ABC");
        assert_eq!(run(&[Conv::Upper, Conv::Length], Val::Str(b"AbC")), "i:3");
        assert_eq!(run(&[], Val::Str(b"AbC")), "s:AbC");
        let long = "X".repeat(1000);
        assert_eq!(
            run(&[Conv::Lower], Val::Str(long.as_bytes())),
            format!("s:{}", "x".repeat(1000))
        );
    }

    #[test]
    fn unchanged_strings_are_not_copied() {
        let input = b"abc";
        apply(&[Conv::Lower], Val::Str(input), |v| {
            let Val::Str(s) = v else { panic!() };
            assert_eq!(s.as_ptr(), input.as_ptr());
        });
        let s = apply_sample(&[Conv::Lower], Sample::Str(Cow::Borrowed(b"abc")));
        assert!(matches!(s, Sample::Str(Cow::Borrowed(_))));
        let s = apply_sample(&[Conv::Lower], Sample::Str(Cow::Borrowed(b"aBc")));
        assert_eq!(s, Sample::Str(Cow::Owned(b"abc".to_vec())));
        let s = apply_sample(
            &[Conv::Upper, Conv::Length],
            Sample::Str(Cow::Borrowed(b"aBc")),
        );
        assert_eq!(s, Sample::Int(3));
    }

    #[test]
    fn parse_errors() {
        let e = Conv::parse("lowr", false, 7, SType::Str, "path").unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (7, "lowr"));
        assert!(e.message.contains("unknown converter `lowr`"));
        let e = Conv::parse("lower", true, 3, SType::Str, "path").unwrap_err();
        assert!(e.message.contains("takes no arguments"));
        let e = Conv::parse("lower", false, 4, SType::Ip, "src").unwrap_err();
        assert_eq!(
            e.message,
            "converter `lower` needs a string, but `src` gives an address"
        );
        let e = Conv::parse("", false, 5, SType::Str, "path").unwrap_err();
        assert!(e.message.contains("expected a converter name"));
    }
}
