//! HAProxy's line rules: one directive per line (HAProxy has no line
//! continuation), words split on blanks, `#` starts a comment unless it is
//! quoted or escaped, `\` escapes the next character outside single
//! quotes, `"..."` groups words and still honours escapes, `'...'` groups
//! words literally. Quotes may open in the middle of a word (`a"b c"` is
//! the one word `ab c`).

/// One word of a line: its text once quotes and escapes are resolved, and
/// where it sits in the line as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// One line of the file.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// 1-based.
    pub number: usize,
    pub raw: String,
    pub words: Vec<Word>,
    /// The comment's text after `#`, trailing blanks removed.
    pub comment: Option<String>,
    /// The first environment variable HAProxy would expand in this line
    /// (`$NAME` or `${NAME}` outside single quotes).
    pub env: Option<String>,
}

impl Line {
    /// The directive as written (from its first word to its last, comment
    /// and surrounding blanks left out).
    pub(crate) fn directive(&self) -> &str {
        match (self.words.first(), self.words.last()) {
            (Some(a), Some(b)) => &self.raw[a.start..b.end],
            _ => "",
        }
    }

    /// The line as written from word `i` to the last word: conditions and
    /// rules are passed on in their original spelling, quotes included.
    pub(crate) fn rest(&self, i: usize) -> &str {
        match (self.words.get(i), self.words.last()) {
            (Some(a), Some(b)) => &self.raw[a.start..b.end],
            _ => "",
        }
    }

    pub(crate) fn word(&self, i: usize) -> &str {
        self.words.get(i).map(|w| w.text.as_str()).unwrap_or("")
    }

    pub(crate) fn texts(&self) -> Vec<&str> {
        self.words.iter().map(|w| w.text.as_str()).collect()
    }
}

/// A line HAProxy itself would refuse to read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LexError {
    pub line: usize,
    pub message: String,
}

/// Splits a whole file into lines.
pub(crate) fn lex(text: &str) -> Result<Vec<Line>, LexError> {
    text.lines()
        .enumerate()
        .map(|(i, raw)| lex_line(i + 1, raw))
        .collect()
}

fn lex_line(number: usize, raw: &str) -> Result<Line, LexError> {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let b = raw.as_bytes();
    let mut words = Vec::new();
    let mut comment = None;
    let mut env = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' || b[i] == b'\t' {
            i += 1;
            continue;
        }
        if b[i] == b'#' {
            comment = Some(raw[i + 1..].trim_end().to_string());
            break;
        }
        let start = i;
        let mut text = String::new();
        let mut quote: Option<u8> = None;
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(q) if c == q => {
                    quote = None;
                    i += 1;
                }
                Some(b'\'') => {
                    let ch = raw[i..].chars().next().unwrap_or(' ');
                    text.push(ch);
                    i += ch.len_utf8();
                }
                _ if c == b'\\' => {
                    let Some(&next) = b.get(i + 1) else {
                        // A final backslash escapes nothing: kept as written.
                        text.push('\\');
                        i += 1;
                        continue;
                    };
                    match next {
                        b'r' => text.push('\r'),
                        b'n' => text.push('\n'),
                        b't' => text.push('\t'),
                        b'x' => match u8::from_str_radix(raw.get(i + 2..i + 4).unwrap_or(""), 16) {
                            Ok(v) => {
                                text.push(v as char);
                                i += 4;
                                continue;
                            }
                            Err(_) => {
                                return Err(LexError {
                                    line: number,
                                    message: format!(
                                        "`\\x` must be followed by two hexadecimal digits (column {})",
                                        i + 1
                                    ),
                                });
                            }
                        },
                        _ => {
                            let ch = raw[i + 1..].chars().next().unwrap_or(' ');
                            text.push(ch);
                            i += 1 + ch.len_utf8();
                            continue;
                        }
                    }
                    i += 2;
                }
                _ if c == b'$' && env.is_none() => {
                    let name: String = raw[i + 1..]
                        .trim_start_matches('{')
                        .chars()
                        .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                        .collect();
                    if name.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_') {
                        env = Some(name);
                    }
                    text.push('$');
                    i += 1;
                }
                Some(_) => {
                    let ch = raw[i..].chars().next().unwrap_or(' ');
                    text.push(ch);
                    i += ch.len_utf8();
                }
                None if c == b'"' || c == b'\'' => {
                    quote = Some(c);
                    i += 1;
                }
                None if c == b' ' || c == b'\t' || c == b'#' => break,
                None => {
                    let ch = raw[i..].chars().next().unwrap_or(' ');
                    text.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        if let Some(q) = quote {
            return Err(LexError {
                line: number,
                message: format!(
                    "the {} quote opened at column {} is never closed (HAProxy has no line continuation)",
                    if q == b'"' { "double" } else { "single" },
                    start + 1
                ),
            });
        }
        words.push(Word {
            text,
            start,
            end: i,
        });
    }
    Ok(Line {
        number,
        raw: raw.to_string(),
        words,
        comment,
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        lex_line(1, line)
            .unwrap()
            .words
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn blanks_split_words_and_comments_end_the_line() {
        let l = lex_line(7, "  bind *:80\t  # listen here").unwrap();
        assert_eq!(l.texts(), ["bind", "*:80"]);
        assert_eq!(l.comment.as_deref(), Some(" listen here"));
        assert_eq!(l.directive(), "bind *:80");
        assert_eq!(l.number, 7);
        let l = lex_line(1, "frontend stats                  #name").unwrap();
        assert_eq!(l.comment.as_deref(), Some("name"));
        let l = lex_line(1, "# only a comment").unwrap();
        assert!(l.words.is_empty());
        assert_eq!(l.comment.as_deref(), Some(" only a comment"));
        assert!(lex_line(1, "   ").unwrap().words.is_empty());
    }

    #[test]
    fn a_hash_inside_a_word_starts_a_comment_too() {
        // HAProxy cuts at an unquoted, unescaped `#` wherever it is.
        assert_eq!(words("acl a path_beg /x#y"), ["acl", "a", "path_beg", "/x"]);
    }

    #[test]
    fn quotes_group_words_and_may_open_mid_word() {
        assert_eq!(
            words(r#"http-request return string "hello world" if TRUE"#),
            [
                "http-request",
                "return",
                "string",
                "hello world",
                "if",
                "TRUE"
            ]
        );
        assert_eq!(words(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(words("x 'a # b' y"), ["x", "a # b", "y"]);
        assert_eq!(words(r#"x "a # b""#), ["x", "a # b"]);
        assert_eq!(words(r#"x """#), ["x", ""]);
    }

    #[test]
    fn backslash_escapes_outside_single_quotes_only() {
        assert_eq!(
            words(r"reqadd X-Forwarded-Proto:\ https"),
            ["reqadd", "X-Forwarded-Proto: https"]
        );
        assert_eq!(words(r"a\#b c"), ["a#b", "c"]);
        assert_eq!(words(r#""a\"b""#), [r#"a"b"#]);
        assert_eq!(words(r"'a\ b'"), [r"a\ b"]);
        assert_eq!(words(r"a\\b"), [r"a\b"]);
        assert_eq!(words(r"\x41\t"), ["A\t"]);
        assert_eq!(words(r"end\"), [r"end\"]);
    }

    #[test]
    fn rest_keeps_the_original_spelling() {
        let l = lex_line(1, r#"  use_backend b if { hdr(host) -i "a b" }  # c"#).unwrap();
        assert_eq!(l.rest(1), r#"b if { hdr(host) -i "a b" }"#);
        assert_eq!(l.rest(9), "");
    }

    #[test]
    fn unclosed_quotes_are_errors_naming_the_line_and_column() {
        let e = lex("global\n  log \"/dev/log local0\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("column 7"), "{}", e.message);
        assert!(lex_line(1, r"x \xZZ").is_err());
    }

    #[test]
    fn environment_variables_are_noticed_outside_single_quotes() {
        assert_eq!(
            lex_line(1, "bind \"$ADDR:80\"").unwrap().env.as_deref(),
            Some("ADDR")
        );
        assert_eq!(
            lex_line(1, "bind ${ADDR}:80").unwrap().env.as_deref(),
            Some("ADDR")
        );
        assert_eq!(lex_line(1, "x '$ADDR'").unwrap().env, None);
        assert_eq!(lex_line(1, "acl a path_reg ^/api$").unwrap().env, None);
    }

    #[test]
    fn carriage_returns_of_crlf_files_are_not_part_of_words() {
        let lines = lex("global\r\n  maxconn 10\r\n").unwrap();
        assert_eq!(lines[1].texts(), ["maxconn", "10"]);
    }
}
