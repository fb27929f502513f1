//! HAProxy word splitting and the split of an action line at its condition.

use super::ParseError;

/// One word of a line, unquoted and unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The word's value after quote removal and escape processing.
    pub text: String,
    /// Byte offset where the word starts (its first quote, if quoted).
    pub offset: usize,
    /// True when the value is spelled exactly as in the source (no quotes,
    /// no escapes). Only such words can be keywords (`if`, `{`, `||`, `-i`),
    /// so quoting is the way to use a keyword as a pattern.
    pub raw: bool,
}

/// The characters that separate words.
const SPACES: [char; 4] = [' ', '\t', '\r', '\n'];

fn is_space(b: u8) -> bool {
    // Spaces and tabs separate words as in HAProxy; CR/LF too, because
    // YAML block scalars may fold a long rule over several lines.
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Walks `text` one word at a time.
pub(crate) struct Lexer<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> Lexer<'t> {
    pub(crate) fn new(text: &'t str) -> Lexer<'t> {
        Lexer { text, pos: 0 }
    }

    /// The next word, `None` at the end, or an error for an unterminated
    /// quote or a bad escape (after which the lexer is at the end).
    pub(crate) fn next_word(&mut self) -> Option<Result<Word, ParseError>> {
        let b = self.text.as_bytes();
        while self.pos < b.len() && is_space(b[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let start = self.pos;
        let result = self.read_word(start);
        if result.is_err() {
            self.pos = b.len();
        }
        Some(result)
    }

    fn read_word(&mut self, start: usize) -> Result<Word, ParseError> {
        let text = self.text;
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut raw = true;
        let mut i = start;
        while i < b.len() && !is_space(b[i]) {
            match b[i] {
                b'\'' => {
                    // Single quotes are strong: no escapes inside.
                    raw = false;
                    let Some(len) = b[i + 1..].iter().position(|&c| c == b'\'') else {
                        return Err(ParseError::new(
                            i,
                            &text[start..],
                            format!(
                                "unterminated single quote in `{}`; expected a closing `'`",
                                &text[start..]
                            ),
                        ));
                    };
                    out.extend_from_slice(&b[i + 1..i + 1 + len]);
                    i += len + 2;
                }
                b'"' => {
                    raw = false;
                    let quote = i;
                    i += 1;
                    loop {
                        match b.get(i) {
                            None => {
                                return Err(ParseError::new(
                                    quote,
                                    &text[start..],
                                    format!(
                                        "unterminated double quote in `{}`; expected a closing `\"`",
                                        &text[start..]
                                    ),
                                ));
                            }
                            Some(b'"') => {
                                i += 1;
                                break;
                            }
                            Some(b'\\') => i = escape(text, i, &mut out, &mut raw)?,
                            Some(&c) => {
                                out.push(c);
                                i += 1;
                            }
                        }
                    }
                }
                b'\\' => i = escape(text, i, &mut out, &mut raw)?,
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        self.pos = i;
        let text = String::from_utf8(out).map_err(|_| {
            ParseError::new(
                start,
                &self.text[start..i],
                format!(
                    "`{}` decodes to bytes that are not UTF-8; expected text",
                    &self.text[start..i]
                ),
            )
        })?;
        Ok(Word {
            text,
            offset: start,
            raw,
        })
    }
}

/// Handles the backslash at `text[i]`, appending its meaning to `out`, and
/// returns the index after the escape. Like HAProxy, only `\\`, `\ `, `\#`,
/// `\$`, `\'`, `\"`, `\r`, `\n`, `\t` and `\xHH` are escapes; any other
/// backslash is kept with the character after it, so regexes such as
/// `^/a\.b$` need no doubling.
fn escape(text: &str, i: usize, out: &mut Vec<u8>, raw: &mut bool) -> Result<usize, ParseError> {
    let b = text.as_bytes();
    let Some(&next) = b.get(i + 1) else {
        out.push(b'\\');
        return Ok(i + 1);
    };
    let decoded = match next {
        b'\\' | b' ' | b'#' | b'$' | b'\'' | b'"' => next,
        b'r' => b'\r',
        b'n' => b'\n',
        b't' => b'\t',
        b'x' => {
            let hex = b.get(i + 2..i + 4).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(h, 16).ok()
            });
            let Some(byte) = hex else {
                let end = (i + 4).min(b.len());
                let token = text.get(i..end).unwrap_or(&text[i..]);
                return Err(ParseError::new(
                    i,
                    token,
                    format!("invalid escape `{token}`; expected `\\x` and two hex digits"),
                ));
            };
            *raw = false;
            out.push(byte);
            return Ok(i + 4);
        }
        _ => {
            out.push(b'\\');
            return Ok(i + 1);
        }
    };
    *raw = false;
    out.push(decoded);
    Ok(i + 2)
}

/// Splits `text` into words, failing on the first bad one.
pub(crate) fn lex(text: &str) -> Result<Vec<Word>, ParseError> {
    let mut lexer = Lexer::new(text);
    let mut words = Vec::new();
    while let Some(word) = lexer.next_word() {
        words.push(word?);
    }
    Ok(words)
}

/// HAProxy-style word splitting: words separated by spaces/tabs, with
/// 'single' and "double" quotes and backslash escapes. Returns each word
/// (unquoted/unescaped) with the byte offset where it starts in `text`.
/// An unterminated quote is an error.
///
/// Single quotes take their content literally; inside double quotes and
/// outside quotes, `\\ \  \# \$ \' \" \r \n \t \xHH` are escapes and any
/// other backslash is kept as written. `#` does not start a comment (the
/// text comes from YAML, which has its own comments). Line breaks separate
/// words like spaces.
pub(crate) fn split_words(text: &str) -> Result<Vec<(String, usize)>, ParseError> {
    Ok(lex(text)?.into_iter().map(|w| (w.text, w.offset)).collect())
}

/// Splits an action line such as `deny status 403 if { path_beg /admin } !lan`
/// at the first top-level word `if` or `unless` (outside quotes and braces).
/// Returns (action part trimmed, Some((condition text, byte offset of the
/// condition in `line`))) or (line, None).
///
/// The condition text starts with the `if`/`unless` keyword (as
/// [`Condition::parse`](super::Condition::parse) expects) and has its
/// trailing spaces trimmed. A line with an unterminated quote is only
/// searched up to that quote; the error surfaces when the parts are parsed.
pub(crate) fn split_condition(line: &str) -> (&str, Option<(&str, usize)>) {
    let mut lexer = Lexer::new(line);
    let mut depth = 0usize;
    while let Some(Ok(word)) = lexer.next_word() {
        if !word.raw {
            continue;
        }
        match word.text.as_str() {
            t if t.trim_start_matches('!') == "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            "if" | "unless" if depth == 0 => {
                let action = line[..word.offset].trim_matches(SPACES);
                let cond = line[word.offset..].trim_end_matches(SPACES);
                return (action, Some((cond, word.offset)));
            }
            _ => {}
        }
    }
    (line, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(String, usize)> {
        split_words(text).unwrap()
    }

    fn w(s: &str, o: usize) -> (String, usize) {
        (s.to_string(), o)
    }

    #[test]
    fn splits_on_spaces_and_tabs() {
        assert_eq!(
            words("path_beg  /a\t/b "),
            vec![w("path_beg", 0), w("/a", 10), w("/b", 13)]
        );
        assert_eq!(words(""), vec![]);
        assert_eq!(words("   \t "), vec![]);
        assert_eq!(words("a\nb"), vec![w("a", 0), w("b", 2)]);
    }

    #[test]
    fn quotes_group_and_are_removed() {
        assert_eq!(
            words(r#"a "b c" 'd e'"#),
            vec![w("a", 0), w("b c", 2), w("d e", 8)]
        );
        assert_eq!(words(r#"x"y z"w"#), vec![w("xy zw", 0)]);
        assert_eq!(words(r#""" ''"#), vec![w("", 0), w("", 3)]);
        assert_eq!(words(r#"'a"b' "c'd""#), vec![w("a\"b", 0), w("c'd", 6)]);
    }

    #[test]
    fn escapes() {
        assert_eq!(words(r"a\ b"), vec![w("a b", 0)]);
        assert_eq!(
            words(r#"\"q\" \\ \# \$"#),
            vec![w("\"q\"", 0), w("\\", 6), w("#", 9), w("$", 12)]
        );
        assert_eq!(words(r#""a\"b""#), vec![w("a\"b", 0)]);
        assert_eq!(words(r"\x41\t"), vec![w("A\t", 0)]);
        assert_eq!(words(r"x\ny\r"), vec![w("x\ny\r", 0)]);
        // Unknown escapes are kept, so regexes need no doubling.
        assert_eq!(words(r"^/a\.b\d$"), vec![w(r"^/a\.b\d$", 0)]);
        // No escapes in single quotes.
        assert_eq!(words(r"'a\ b\n'"), vec![w(r"a\ b\n", 0)]);
        // A trailing backslash is kept.
        assert_eq!(words(r"a\"), vec![w("a\\", 0)]);
    }

    #[test]
    fn raw_flag() {
        let ws = lex(r#"if "if" i\f {"#).unwrap();
        let raw: Vec<bool> = ws.iter().map(|w| w.raw).collect();
        assert_eq!(raw, vec![true, false, true, true]);
        let ws = lex(r"a\ b").unwrap();
        assert!(!ws[0].raw);
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        let e = split_words(r#"a "b c"#).unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (2, "\"b c"));
        assert!(
            e.message.contains("unterminated double quote"),
            "{}",
            e.message
        );

        let e = split_words("ab x'yz").unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (4, "x'yz"));
        assert!(e.message.contains("closing `'`"), "{}", e.message);

        // An escaped quote does not terminate.
        let e = split_words(r#""abc\""#).unwrap_err();
        assert_eq!(e.offset, 0);
    }

    #[test]
    fn bad_hex_escape_is_an_error() {
        let e = split_words(r"ab \xZZ").unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (3, r"\xZZ"));
        assert!(e.message.contains("two hex digits"));
        let e = split_words(r"\x4").unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (0, r"\x4"));
        let e = split_words(r"\xff").unwrap_err();
        assert!(e.message.contains("not UTF-8"), "{}", e.message);
    }

    #[test]
    fn split_condition_basic() {
        let line = "deny status 403 if { path_beg /admin } !lan";
        let (action, cond) = split_condition(line);
        assert_eq!(action, "deny status 403");
        let (text, off) = cond.unwrap();
        assert_eq!(text, "if { path_beg /admin } !lan");
        assert_eq!(off, 16);
        assert_eq!(&line[off..], text);

        let (action, cond) = split_condition("use_backend b unless is_static  ");
        assert_eq!(action, "use_backend b");
        assert_eq!(cond, Some(("unless is_static", 14)));
    }

    #[test]
    fn split_condition_without_condition() {
        assert_eq!(
            split_condition("deny status 403"),
            ("deny status 403", None)
        );
        assert_eq!(split_condition(""), ("", None));
        // Words merely containing `if` do not split.
        assert_eq!(
            split_condition("set-header X-if iffy"),
            ("set-header X-if iffy", None)
        );
    }

    #[test]
    fn split_condition_ignores_quotes_and_braces() {
        let (action, cond) = split_condition(r#"return content "a if b" if TRUE"#);
        assert_eq!(action, r#"return content "a if b""#);
        assert_eq!(cond, Some(("if TRUE", 24)));

        let (action, cond) = split_condition("return content 'unless' unless FALSE");
        assert_eq!(action, "return content 'unless'");
        assert_eq!(cond.unwrap().1, 24);

        // An `if` inside braces (a pattern) is not the split point; the
        // braces belong to a condition, so the first top-level `if` wins.
        let line = "deny { hdr(x) if } if { path /x }";
        let (action, cond) = split_condition(line);
        assert_eq!(action, "deny { hdr(x) if }");
        assert_eq!(cond, Some(("if { path /x }", 19)));

        // An escaped `if` is not a keyword.
        assert_eq!(split_condition(r"deny \if"), (r"deny \if", None));
        // Unterminated quote: no split after it.
        assert_eq!(
            split_condition(r#"deny "x if y"#),
            (r#"deny "x if y"#, None)
        );
    }

    #[test]
    fn split_condition_at_start() {
        assert_eq!(split_condition("if TRUE"), ("", Some(("if TRUE", 0))));
    }
}
