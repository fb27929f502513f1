//! Log-format templates: literal text with `%[fetch]` samples and `%xx`
//! variables, for set-header values, redirect locations and return bodies.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::fetch::{Fetch, Iter};
use super::value::write_val;
use super::{Context, ParseError};

/// A `%` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    /// `%ci`: client address.
    ClientIp,
    /// `%cp`: client port.
    ClientPort,
    /// `%fi`: frontend (destination) address.
    FrontendIp,
    /// `%fp`: frontend (destination) port.
    FrontendPort,
    /// `%ID`: the request's unique id.
    UniqueId,
    /// `%pid`: the process id (read once, at parse time).
    Pid(u32),
    /// `%Ts`: the current time in Unix seconds.
    Ts,
}

const VARS: &str = "%ci, %cp, %fi, %fp, %ID, %pid, %Ts";

#[derive(Debug, Clone)]
enum Node {
    Text(Vec<u8>),
    Sample { fetch: Fetch, quote: bool },
    Var { var: Var, quote: bool },
}

/// A log-format string: literal text with `%[fetch,conv...]` samples,
/// `%ci %cp %fi %fp %ID %pid %Ts %%`, optional `%{+Q}` quoting flag before a
/// sample. Used for set-header values, redirect locations, return bodies.
#[derive(Debug, Clone)]
pub(crate) struct LogFormat {
    nodes: Vec<Node>,
}

impl LogFormat {
    /// Parses `text`. `%%` is a literal `%`; any other `%` must start a
    /// variable, `%[fetch]` or a `%{+Q}` flag; errors give the offset of
    /// the offending `%` (or of the bad part inside `%[...]`).
    pub(crate) fn parse(text: &str) -> Result<LogFormat, ParseError> {
        let b = text.as_bytes();
        let mut nodes = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            let start = i;
            i += 1;
            if b.get(i) == Some(&b'%') {
                lit.push(b'%');
                i += 1;
                continue;
            }
            let mut quote = false;
            if b.get(i) == Some(&b'{') {
                let Some(len) = text[i..].find('}') else {
                    return Err(ParseError::new(
                        start,
                        &text[start..],
                        format!(
                            "unterminated `{}`; expected `}}` after the flags",
                            &text[start..]
                        ),
                    ));
                };
                quote = parse_flags(&text[i + 1..i + len], i + 1)?;
                i += len + 1;
            }
            let node = if b.get(i) == Some(&b'[') {
                let Some(close) = find_bracket(b, i + 1) else {
                    return Err(ParseError::new(
                        start,
                        &text[start..],
                        format!(
                            "unterminated `{}`; expected `]` after the fetch",
                            &text[start..]
                        ),
                    ));
                };
                let expr = &text[i + 1..close];
                if expr.trim().is_empty() {
                    return Err(ParseError::new(
                        start,
                        &text[start..=close],
                        "empty `%[]`; expected a fetch such as `%[hdr(host)]`",
                    ));
                }
                let fetch = Fetch::parse(expr).map_err(|e| e.shifted(i + 1))?;
                i = close + 1;
                Node::Sample { fetch, quote }
            } else {
                let len = b[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .count();
                let name = &text[i..i + len];
                let var = match name {
                    "ci" => Var::ClientIp,
                    "cp" => Var::ClientPort,
                    "fi" => Var::FrontendIp,
                    "fp" => Var::FrontendPort,
                    "ID" => Var::UniqueId,
                    "pid" => Var::Pid(std::process::id()),
                    "Ts" => Var::Ts,
                    "" => {
                        let next = text[i..].chars().next();
                        let token = &text[start..i + next.map_or(0, char::len_utf8)];
                        return Err(ParseError::new(
                            start,
                            token,
                            format!(
                                "`{token}`: `%` must start a variable ({VARS}), `%[fetch]`, or be doubled as `%%` for a literal percent sign"
                            ),
                        ));
                    }
                    _ => {
                        let token = &text[start..i + len];
                        return Err(ParseError::new(
                            start,
                            token,
                            format!(
                                "unknown log-format variable `{token}`; supported: {VARS}, %[fetch] and %%"
                            ),
                        ));
                    }
                };
                i += len;
                Node::Var { var, quote }
            };
            if !lit.is_empty() {
                nodes.push(Node::Text(std::mem::take(&mut lit)));
            }
            nodes.push(node);
        }
        if !lit.is_empty() {
            nodes.push(Node::Text(lit));
        }
        Ok(LogFormat { nodes })
    }

    /// Appends the rendered value to `out` (absent samples render as
    /// nothing, as HAProxy renders them as "-" only in logs: render absent
    /// samples as empty here).
    ///
    /// A `%{+Q}` sample is wrapped in double quotes, also when absent (`""`,
    /// as HAProxy does); its content is not escaped.
    pub(crate) fn render(&self, ctx: &dyn Context, out: &mut Vec<u8>) {
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.extend_from_slice(t),
                Node::Sample { fetch, quote } => {
                    if *quote {
                        out.push(b'"');
                    }
                    fetch.each(ctx, Iter::Sample, &mut |v| {
                        write_val(v, out);
                        true
                    });
                    if *quote {
                        out.push(b'"');
                    }
                }
                Node::Var { var, quote } => {
                    if *quote {
                        out.push(b'"');
                    }
                    // Writing to a Vec cannot fail.
                    let _ = match var {
                        Var::ClientIp => write!(out, "{}", ctx.src().ip()),
                        Var::ClientPort => write!(out, "{}", ctx.src().port()),
                        Var::FrontendIp => write!(out, "{}", ctx.dst().ip()),
                        Var::FrontendPort => write!(out, "{}", ctx.dst().port()),
                        Var::UniqueId => out.write_all(ctx.unique_id()),
                        Var::Pid(pid) => write!(out, "{pid}"),
                        Var::Ts => write!(out, "{}", unix_seconds()),
                    };
                    if *quote {
                        out.push(b'"');
                    }
                }
            }
        }
    }

    /// True when the format is only literal text (no samples), so the
    /// caller can skip rendering per request.
    pub(crate) fn is_literal(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }

    /// The text of a literal format (with `%%` already turned into `%`);
    /// `None` when the format has samples or variables.
    #[cfg(test)]
    pub(crate) fn as_literal(&self) -> Option<&[u8]> {
        match self.nodes.as_slice() {
            [] => Some(b""),
            [Node::Text(t)] => Some(t),
            _ => None,
        }
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Parses the flags of `%{...}` (found at `base`): `+Q` turns quoting on,
/// `-Q` off. Returns whether to quote.
fn parse_flags(flags: &str, base: usize) -> Result<bool, ParseError> {
    let mut quote = false;
    let b = flags.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let flag = flags.get(i..i + 2).unwrap_or(&flags[i..]);
        match flag {
            "+Q" => quote = true,
            "-Q" => quote = false,
            _ => {
                return Err(ParseError::new(
                    base + i,
                    flag,
                    format!("unsupported log-format flag `{flag}`; expected +Q"),
                ));
            }
        }
        i += 2;
    }
    Ok(quote)
}

/// The index of the `]` ending a `%[` whose content starts at `from`,
/// skipping brackets inside parenthesised arguments.
fn find_bracket(b: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate().skip(from) {
        match c {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b']' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::mock::MockContext;

    fn render(fmt: &str, ctx: &MockContext) -> String {
        let lf = LogFormat::parse(fmt).unwrap_or_else(|e| panic!("{fmt}: {e}"));
        let mut out = b"prefix:".to_vec();
        lf.render(ctx, &mut out);
        let out = String::from_utf8(out).unwrap();
        out.strip_prefix("prefix:")
            .expect("render appends")
            .to_string()
    }

    fn err(fmt: &str) -> ParseError {
        match LogFormat::parse(fmt) {
            Ok(_) => panic!("`{fmt}` parsed"),
            Err(e) => e,
        }
    }

    fn ctx() -> MockContext {
        MockContext::get("/a/b?id=7")
            .src("192.0.2.10:51000")
            .dst("[2001:db8::1]:443")
            .header("Host", "Example.com:8080")
            .header("X-Multi", "a, b")
            .header("X-Multi", "c")
    }

    #[test]
    fn literal_text() {
        let lf = LogFormat::parse("plain text, 100%% sure").unwrap();
        assert!(lf.is_literal());
        assert_eq!(lf.as_literal(), Some(&b"plain text, 100% sure"[..]));
        assert_eq!(
            render("plain text, 100%% sure", &ctx()),
            "plain text, 100% sure"
        );
        let empty = LogFormat::parse("").unwrap();
        assert!(empty.is_literal());
        assert_eq!(empty.as_literal(), Some(&b""[..]));
        assert_eq!(render("", &ctx()), "");
        assert_eq!(render("%%%%", &ctx()), "%%");
        assert_eq!(render("é ü %%", &ctx()), "é ü %");
    }

    #[test]
    fn variables() {
        let c = ctx();
        assert_eq!(render("%ci:%cp", &c), "192.0.2.10:51000");
        assert_eq!(render("%fi %fp", &c), "2001:db8::1 443");
        assert_eq!(render("id=%ID", &c), "id=uid-1");
        assert_eq!(render("%pid", &c), std::process::id().to_string());
        let ts: u64 = render("%Ts", &c).parse().unwrap();
        let now = unix_seconds();
        assert!(now >= ts && now - ts < 5);
        assert_eq!(render("%{+Q}ci", &c), "\"192.0.2.10\"");
        assert!(!LogFormat::parse("%ci").unwrap().is_literal());
        assert_eq!(LogFormat::parse("x%ci").unwrap().as_literal(), None);
    }

    #[test]
    fn samples() {
        let c = ctx();
        assert_eq!(
            render("https://%[hdr(host)]%[path]", &c),
            "https://Example.com:8080/a/b"
        );
        assert_eq!(render("%[hdr(host),lower]", &c), "example.com:8080");
        // Headers render their last value; fhdr its last line whole.
        assert_eq!(render("%[hdr(x-multi)]", &c), "c");
        assert_eq!(render("%[req.hdr(x-multi,1)]", &c), "a");
        assert_eq!(render("%[req.fhdr(x-multi,1)]", &c), "a, b");
        assert_eq!(render("%[url_param(id)]", &c), "7");
        assert_eq!(render("%[src]:%[src_port]", &c), "192.0.2.10:51000");
        assert_eq!(render("%[ssl_fc]", &c), "0");
        assert_eq!(render("%[hdr_cnt(x-multi)]", &c), "3");
        assert_eq!(render("%[base]", &c), "Example.com/a/b");
        assert_eq!(render("%[path,length]", &c), "4");
    }

    #[test]
    fn absent_samples_render_empty() {
        let c = ctx();
        assert_eq!(render("[%[hdr(absent)]]", &c), "[]");
        assert_eq!(render("[%[query]]", &MockContext::get("/")), "[]");
        assert_eq!(render("[%[status]]", &c), "[]");
        assert_eq!(render("[%[url_param(nope)]]", &c), "[]");
    }

    #[test]
    fn quoting_flag() {
        let c = ctx();
        assert_eq!(render("%{+Q}[path]", &c), "\"/a/b\"");
        assert_eq!(render("x=%{+Q}[hdr(absent)]", &c), "x=\"\"");
        assert_eq!(render("%{-Q}[path]", &c), "/a/b");
        assert_eq!(render("%{+Q-Q}[path]", &c), "/a/b");
    }

    #[test]
    fn brackets_inside_arguments() {
        let c = MockContext::get("/").header("a]b", "v");
        assert_eq!(render("%[hdr(a]b)]", &c), "v");
    }

    #[test]
    fn errors() {
        let e = err("x %q y");
        assert_eq!((e.offset, e.token.as_str()), (2, "%q"));
        assert!(
            e.message
                .starts_with("unknown log-format variable `%q`; supported: %ci")
        );
        let e = err("%cidr");
        assert_eq!((e.offset, e.token.as_str()), (0, "%cidr"));
        let e = err("100%");
        assert_eq!((e.offset, e.token.as_str()), (3, "%"));
        assert!(e.message.contains("`%%`"));
        let e = err("a % b");
        assert_eq!((e.offset, e.token.as_str()), (2, "% "));
        let e = err("a %é");
        assert_eq!((e.offset, e.token.as_str()), (2, "%é"));
        let e = err("ab %[path");
        assert_eq!((e.offset, e.token.as_str()), (3, "%[path"));
        assert!(e.message.contains("unterminated `%[path`; expected `]`"));
        let e = err("ab %{+Q[path]");
        assert_eq!((e.offset, e.token.as_str()), (3, "%{+Q[path]"));
        let e = err("%{+X}[path]");
        assert_eq!((e.offset, e.token.as_str()), (2, "+X"));
        assert!(e.message.contains("expected +Q"));
        let e = err("%{+Q}");
        assert_eq!((e.offset, e.token.as_str()), (0, "%{+Q}"));
        let e = err("x %[]");
        assert_eq!((e.offset, e.token.as_str()), (2, "%[]"));
        assert!(e.message.contains("empty `%[]`"));
    }

    #[test]
    fn fetch_errors_point_into_the_format() {
        let text = "id=%[hdr(x),lowr]";
        let e = err(text);
        assert_eq!((e.offset, e.token.as_str()), (12, "lowr"));
        assert_eq!(&text[e.offset..e.offset + 4], "lowr");
        let text = "a %[ pth ]";
        let e = err(text);
        assert_eq!((e.offset, e.token.as_str()), (5, "pth"));
        assert!(e.message.contains("did you mean `path`"));
    }
}
