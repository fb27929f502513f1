//! One ACL definition: `criterion [flags] [operator] [patterns...]`.

use super::fetch::{self, Fetch, Iter};
use super::matcher::{Builder, IntOp, METHOD_NAMES, Matcher, Method};
use super::words::Word;
use super::{Context, ParseError};

/// A fetch with its match method and patterns.
#[derive(Debug, Clone)]
pub(crate) struct AclExpr {
    fetch: Fetch,
    matcher: Matcher,
}

/// A named or anonymous ACL: definitions ORed together.
#[derive(Debug, Clone, Default)]
pub(crate) struct Acl {
    exprs: Vec<AclExpr>,
}

impl Acl {
    pub(crate) fn single(expr: AclExpr) -> Acl {
        Acl { exprs: vec![expr] }
    }

    /// ORs another definition in.
    pub(crate) fn push(&mut self, expr: AclExpr) {
        self.exprs.push(expr);
    }

    pub(crate) fn eval(&self, ctx: &dyn Context) -> bool {
        self.exprs.iter().any(|e| e.eval(ctx))
    }
}

/// A pattern file given with `-f`: its word and its patterns with their
/// line numbers.
struct PatternFile<'w> {
    word: &'w Word,
    lines: Vec<(usize, String)>,
}

fn read_pattern_file(word: &Word) -> Result<PatternFile<'_>, ParseError> {
    let content = std::fs::read_to_string(&word.text).map_err(|e| {
        ParseError::new(
            word.offset,
            &word.text,
            format!("cannot read pattern file `{}`: {e}", word.text),
        )
    })?;
    let lines = content
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| (n, line.to_string()))
        .collect();
    Ok(PatternFile { word, lines })
}

impl AclExpr {
    /// Parses an ACL from its words (at least one: the criterion). Errors
    /// point at the offending word.
    pub(crate) fn parse(words: &[Word]) -> Result<AclExpr, ParseError> {
        let Some(crit) = words.first() else {
            return Err(ParseError::new(
                0,
                "",
                "expected a fetch such as `path_beg` or `src` followed by patterns",
            ));
        };
        let (fetch, derived) = fetch::parse_expr(&crit.text, crit.offset, true)?;

        let mut icase = false;
        let mut explicit: Option<(Method, &Word)> = None;
        let mut files = Vec::new();
        let mut i = 1;
        while let Some(w) = words.get(i) {
            // Only unquoted words are flags: quoting lets a pattern start
            // with `-` (as does `--`).
            if !w.raw || !w.text.starts_with('-') || w.text == "-" {
                break;
            }
            match w.text.as_str() {
                "--" => {
                    i += 1;
                    break;
                }
                "-i" => icase = true,
                // HAProxy's "no DNS resolution": patterns are never resolved here.
                "-n" => {}
                "-m" => {
                    let arg = words.get(i + 1).ok_or_else(|| {
                        ParseError::new(
                            w.offset,
                            &w.text,
                            format!("flag `-m` needs a match method: {METHOD_NAMES}"),
                        )
                    })?;
                    let method = Method::from_name(&arg.text).ok_or_else(|| {
                        ParseError::new(
                            arg.offset,
                            &arg.text,
                            format!(
                                "unknown match method `{}`; expected one of {METHOD_NAMES}",
                                arg.text
                            ),
                        )
                    })?;
                    explicit = Some((method, arg));
                    i += 1;
                }
                "-f" => {
                    let arg = words.get(i + 1).ok_or_else(|| {
                        ParseError::new(w.offset, &w.text, "flag `-f` needs a pattern file name")
                    })?;
                    files.push(read_pattern_file(arg)?);
                    i += 1;
                }
                other => {
                    return Err(ParseError::new(
                        w.offset,
                        other,
                        format!(
                            "unknown flag `{other}`; expected -i, -m <method>, -f <file>, -n or `--` (write `-- {other}` to use it as a pattern)"
                        ),
                    ));
                }
            }
            i += 1;
        }
        let patterns = &words[i..];

        let ty = fetch.out_type();
        let method = explicit
            .map(|(m, _)| m)
            .or(derived)
            .unwrap_or_else(|| Method::default_for(ty));
        if !method.accepts(ty) {
            let (offset, token) = match explicit {
                Some((_, w)) => (w.offset, w.text.as_str()),
                None => (crit.offset, crit.text.as_str()),
            };
            return Err(ParseError::new(
                offset,
                token,
                format!(
                    "match method `{}` cannot test `{}`, which gives {}",
                    method.name(),
                    crit.text,
                    ty.describe()
                ),
            ));
        }

        if method.takes_patterns() {
            if patterns.is_empty() && files.is_empty() {
                return Err(ParseError::new(
                    crit.offset,
                    &crit.text,
                    format!(
                        "`{}` needs at least one pattern (or `-m found` to test presence)",
                        crit.text
                    ),
                ));
            }
        } else if let Some(p) = patterns.first() {
            let why = if explicit.is_some() {
                format!("`-m {}` takes no patterns", method.name())
            } else {
                format!("boolean fetch `{}` takes no patterns", crit.text)
            };
            return Err(ParseError::new(
                p.offset,
                &p.text,
                format!("{why}, found `{}`", p.text),
            ));
        } else if let Some(f) = files.first() {
            return Err(ParseError::new(
                f.word.offset,
                &f.word.text,
                format!(
                    "`-m {}` takes no patterns, so no pattern file",
                    method.name()
                ),
            ));
        }

        let mut builder = Builder::new(method, icase);
        if fetch.dotted_version() && method == Method::Int {
            builder = builder.dotted();
        }
        // As in HAProxy, an operator applies to every value after it, up to
        // the next operator: `gt 5 10` is `gt 5` or `gt 10`.
        let mut op: Option<(IntOp, &Word)> = None;
        let mut values_since_op = 0;
        for p in patterns {
            let new_op = (method.takes_operators() && p.raw)
                .then(|| IntOp::from_word(&p.text))
                .flatten();
            if let Some(new_op) = new_op {
                if let (Some((_, prev)), 0) = (op, values_since_op) {
                    return Err(operator_without_value(prev));
                }
                op = Some((new_op, p));
                values_since_op = 0;
                continue;
            }
            builder
                .add(&p.text, op.map(|(o, _)| o))
                .map_err(|m| ParseError::new(p.offset, &p.text, m))?;
            values_since_op += 1;
        }
        if let (Some((_, prev)), 0) = (op, values_since_op) {
            return Err(operator_without_value(prev));
        }
        for file in &files {
            for (line, pattern) in &file.lines {
                builder.add(pattern, None).map_err(|m| {
                    ParseError::new(
                        file.word.offset,
                        &file.word.text,
                        format!("pattern file `{}` line {line}: {m}", file.word.text),
                    )
                })?;
            }
        }
        Ok(AclExpr {
            fetch,
            matcher: builder.finish(),
        })
    }

    /// Whether any value of the fetch matches.
    pub(crate) fn eval(&self, ctx: &dyn Context) -> bool {
        self.fetch
            .each(ctx, Iter::All, &mut |v| self.matcher.matches(v))
    }
}

fn operator_without_value(op: &Word) -> ParseError {
    ParseError::new(
        op.offset,
        &op.text,
        format!(
            "operator `{}` needs an integer after it, e.g. `{} 5`",
            op.text, op.text
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::mock::MockContext;
    use crate::acl::words::lex;
    use std::io::Write as _;

    fn parse(text: &str) -> Result<AclExpr, ParseError> {
        AclExpr::parse(&lex(text).unwrap())
    }

    fn test(text: &str, ctx: &MockContext) -> bool {
        parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .eval(ctx)
    }

    fn err(text: &str) -> ParseError {
        match parse(text) {
            Ok(_) => panic!("`{text}` parsed"),
            Err(e) => e,
        }
    }

    fn req() -> MockContext {
        MockContext::get("/static/img/logo.PNG?id=42&lang=en&id=43")
            .header("Host", "Site1.Example.com:8080")
            .header("Accept", "text/html, application/json;q=0.9")
            .header("Accept", "*/*")
            .header("User-Agent", "curl/8.0, extra")
            .header("Content-Length", "12")
    }

    #[test]
    fn client_hello_acls() {
        let raw = crate::base::client_hello::tests::rustls_hello(
            "API.example.com",
            &[b"h2", b"http/1.1"],
        );
        let c = MockContext::get("/").payload(&raw);
        assert!(test("req.ssl_hello_type 1", &c));
        assert!(test("req.ssl_sni -i api.example.com", &c));
        assert!(!test("req.ssl_sni api.example.com", &c));
        assert!(test("req.ssl_sni -m end .example.com", &c));
        assert!(test("req_ssl_sni -i -m beg api.", &c));
        assert!(test("req.ssl_ver 3.3", &c));
        assert!(test("req.ssl_ver 3.1:3.3", &c));
        assert!(test("req.ssl_ver 3.1-3.4", &c));
        assert!(test("req.ssl_ver gt 3.2", &c));
        assert!(!test("req.ssl_ver lt 3.3", &c));
        assert!(!test("req.ssl_ver 3.1", &c));
        assert!(!test("req.ssl_ver 3", &c)); // 3.0
        assert!(test("req.ssl_alpn http/1.1", &c)); // any offered protocol
        assert!(!test("req.ssl_alpn h3", &c));
        assert!(test("req.len gt 100", &c));
        assert!(test("req.ssl_sni -m found", &c));
        let none = MockContext::get("/");
        assert!(!test("req.ssl_sni -m found", &none));
        assert!(!test("req.len ge 0", &none));
        let e = err("req.ssl_ver 3.x");
        assert_eq!(e.token, "3.x");
        assert!(e.message.contains("MAJOR.MINOR"), "{}", e.message);
        assert!(err("req.ssl_ver 70000").message.contains("MAJOR.MINOR"));
        let e = err("req.ssl_ver gt 3.1:3.3");
        assert!(e.message.contains("single version"), "{}", e.message);
    }

    #[test]
    fn path_fetches() {
        let c = req();
        assert!(test("path /static/img/logo.PNG", &c));
        assert!(!test("path /static", &c));
        assert!(test("path_beg /static /images", &c));
        assert!(!test("path_beg /images", &c));
        assert!(test("path_end .png .PNG", &c));
        assert!(!test("path_end .png", &c));
        assert!(test("path_end -i .png", &c));
        assert!(test("path_sub img", &c));
        assert!(test(r"path_reg ^/static/.*\.PNG$", &c));
        assert!(!test(r"path_reg ^/static/.*\.png$", &c));
        assert!(test(r"path_reg -i ^/static/.*\.png$", &c));
        assert!(test("path_dir img", &c));
        assert!(test("path_dir /static/img/", &c));
        assert!(!test("path_dir im", &c));
        assert!(test("path_dom logo", &c));
        assert!(test("path_len 20", &c));
        assert!(test("path_len gt 10", &c));
        assert!(!test("path_len lt 10", &c));
    }

    #[test]
    fn url_fetches() {
        let c = req();
        assert!(test("url /static/img/logo.PNG?id=42&lang=en&id=43", &c));
        assert!(test("url_beg /static/", &c));
        assert!(test("url_end id=43", &c));
        assert!(test("url_sub lang=en", &c));
        assert!(test("url_reg [?&]lang=(en|fr)", &c));
        assert!(test("url_dir img", &c));
        assert!(test("url_len 40", &c));
        assert!(test("query id=42&lang=en&id=43", &c));
        assert!(!test("query id=42", &c));
        assert!(test("query -m found", &c));
        assert!(!test("query -m found", &MockContext::get("/x")));
    }

    #[test]
    fn url_param_tests_every_occurrence() {
        let c = req();
        assert!(test("url_param(id) 42", &c));
        // The second occurrence is tested too.
        assert!(test("url_param(id) 43", &c));
        assert!(test("urlp(lang) en", &c));
        assert!(test("urlp_beg(lang) e", &c));
        assert!(test("url_param(id) -m int gt 42", &c));
        assert!(!test("url_param(missing) -m found", &c));
        assert!(test("url_param(id) -m found", &c));
    }

    #[test]
    fn method_is_case_sensitive() {
        let c = req().method("GET");
        assert!(test("method GET", &c));
        assert!(!test("method get", &c));
        assert!(test("method -i get", &c));
        assert!(test("method POST GET", &c));
        assert!(!test("method POST", &c));
    }

    #[test]
    fn base_fetches() {
        let c = req();
        assert!(test("base Site1.Example.com/static/img/logo.PNG", &c));
        assert!(test("base_beg -i site1.example.com/static/", &c));
        assert!(!test("base_beg site1.example.com/static/", &c));
        assert!(test("base_sub m/static", &c));
    }

    #[test]
    fn header_fetches_test_every_value() {
        let c = req();
        assert!(test("hdr(accept) text/html", &c));
        assert!(test("hdr(accept) application/json;q=0.9", &c));
        assert!(test("hdr(accept) */*", &c));
        assert!(!test("hdr(accept) text/html,", &c));
        assert!(test("hdr(ACCEPT) */*", &c));
        assert!(test("hdr_beg(accept) appl", &c));
        assert!(test("hdr_end(accept) q=0.9", &c));
        assert!(test("hdr_sub(user-agent) -i CURL", &c));
        assert!(test("hdr_reg(user-agent) ^curl/[0-9]", &c));
        assert!(test("hdr_len(user-agent) 8", &c));
        assert!(test("hdr_len(user-agent) 5", &c));
        assert!(!test("hdr_len(user-agent) 15", &c));
        assert!(test("hdr_cnt(accept) 3", &c));
        assert!(test("hdr_cnt(accept) ge 2", &c));
        assert!(test("hdr_cnt(absent) eq 0", &c));
        assert!(test("req.hdr_cnt(accept) 3", &c));
        assert!(test("req.hdr(accept) */*", &c));
        assert!(test("req.hdr(user-agent) extra", &c));
        assert!(test("hdr(x) -m found", &c.header("X", "")));
        assert!(!test("hdr(absent) -m found", &req()));
        assert!(test("hdr_val(content-length) gt 10", &req()));
        assert!(test("hdr_dir(accept) html", &req()));
    }

    #[test]
    fn full_header_is_not_split() {
        let c = req();
        assert!(!test("req.fhdr(accept) text/html", &c));
        assert!(test(
            r#"req.fhdr(accept) "text/html, application/json;q=0.9""#,
            &c
        ));
        assert!(test("req.fhdr(accept) */*", &c));
        assert!(test("req.fhdr(user-agent) -m sub curl/8.0,", &c));
        assert!(test("req.fhdr_cnt(accept) 2", &c));
    }

    #[test]
    fn header_occurrence_limits_matching() {
        let c = req();
        assert!(test("req.hdr(accept,1) text/html", &c));
        assert!(!test("req.hdr(accept,1) */*", &c));
        assert!(test("req.hdr(accept,-1) */*", &c));
        assert!(!test("req.hdr(accept,-1) text/html", &c));
        assert!(test("req.fhdr(accept,2) */*", &c));
        assert!(test("hdr_beg(accept,2) app", &c));
        assert!(!test("req.hdr(accept,9) -m found", &c));
    }

    #[test]
    fn host_is_port_insensitive() {
        let c = req();
        assert!(test("hdr(host) -i site1.example.com", &c));
        assert!(!test("hdr(host) site1.example.com", &c));
        assert!(test("req.hdr(Host) -i site1.example.com", &c));
        assert!(test("hdr_end(host) -i .example.com", &c));
        assert!(test("hdr_beg(host) Site1.", &c));
        assert!(test("hdr_dom(host) -i example.com", &c));
        assert!(test("hdr_len(host) 17", &c));
        assert!(test("hdr(host,1) -i site1.example.com", &c));
        let v6 = MockContext::get("/").header("host", "[::1]:8443");
        assert!(test("hdr(host) [::1]", &v6));
        let plain = MockContext::get("/").header("host", "a.example");
        assert!(test("hdr(host) a.example", &plain));
        // Only the Host header.
        let other = MockContext::get("/").header("x-host", "a.example:80");
        assert!(!test("hdr(x-host) a.example", &other));
        assert!(test("hdr(x-host) a.example:80", &other));
    }

    #[test]
    fn version_and_unique_id() {
        let c = req().version("1.0");
        assert!(test("req.ver 1.0", &c));
        assert!(!test("req.ver 1.1", &c));
        assert!(test("req_ver 1.0", &c));
        assert!(test("unique-id uid-1", &c));
    }

    #[test]
    fn address_fetches() {
        let c = MockContext::get("/")
            .src("10.1.2.3:1234")
            .dst("192.168.0.1:443");
        assert!(test("src 10.0.0.0/8 192.168.0.0/16", &c));
        assert!(!test("src 192.168.0.0/16", &c));
        assert!(test("src 10.1.2.3", &c));
        assert!(test("dst 192.168.0.1", &c));
        assert!(test("src_port 1234", &c));
        assert!(test("src_port 1000:2000", &c));
        assert!(test("dst_port 443", &c));
        assert!(test("dst_port -m int 80 443", &c));
        let v6 = MockContext::get("/").src("[2001:db8::1]:1");
        assert!(test("src 2001:db8::/32", &v6));
        assert!(!test("src 10.0.0.0/8", &v6));
        let mapped = MockContext::get("/").src("[::ffff:10.1.2.3]:1");
        assert!(test("src 10.0.0.0/8", &mapped));
        assert!(test(
            "hdr_ip(x-real-ip) 10.0.0.0/8",
            &MockContext::get("/").header("X-Real-IP", "10.9.9.9")
        ));
        assert!(test(
            "hdr(x-real-ip) -m ip 10.0.0.0/8",
            &MockContext::get("/").header("X-Real-IP", "10.9.9.9")
        ));
    }

    #[test]
    fn boolean_and_status_fetches() {
        let plain = MockContext::get("/");
        let tls = MockContext::get("/").ssl();
        assert!(test("ssl_fc", &tls));
        assert!(!test("ssl_fc", &plain));
        assert!(test("ssl_fc -m int 0", &plain));
        assert!(test("always_true", &plain));
        assert!(!test("always_false", &plain));
        assert!(test("always_false -m found", &plain));
        let res = MockContext::get("/")
            .status(404)
            .res_header("Content-Type", "text/html; charset=utf-8");
        assert!(test("status 404", &res));
        assert!(test("status 400:499", &res));
        assert!(!test("status 200", &res));
        assert!(!test("status -m found", &plain));
        assert!(test("res.hdr(content-type) -m beg text/html", &res));
        assert!(test("shdr_beg(content-type) text/", &res));
        assert!(test("res.hdr_cnt(content-type) 1", &res));
        assert!(test(
            "hdr_cnt(x) -m bool",
            &MockContext::get("/").header("x", "1")
        ));
        assert!(!test("hdr_cnt(x) -m bool", &plain));
    }

    #[test]
    fn int_ranges_and_operators() {
        let c = MockContext::get("/").header("x-n", "5");
        for (pats, expected) in [
            ("5", true),
            ("4", false),
            ("1:5", true),
            ("6:9", false),
            ("5:", true),
            (":4", false),
            ("eq 5", true),
            ("ge 5", true),
            ("gt 5", false),
            ("le 5", true),
            ("lt 5", false),
            ("gt 9 lt 6", true),
            ("gt 9 10", false),
            ("1 2 3 5", true),
            ("-- -5", false),
        ] {
            assert_eq!(
                test(&format!("hdr_val(x-n) {pats}"), &c),
                expected,
                "{pats}"
            );
        }
        // An operator applies to every value until the next operator.
        let big = MockContext::get("/").header("x-n", "20");
        assert!(test("hdr_val(x-n) gt 30 15", &big));
        assert!(!test("hdr_val(x-n) lt 3 15", &big));
        let neg = MockContext::get("/").header("x-n", "-5");
        assert!(test("hdr_val(x-n) -- -5", &neg));
        assert!(test("hdr_val(x-n) -- -10:-1", &neg));
        // Without `--`, a negative number reads as a flag.
        assert_eq!(err("hdr_val(x-n) -10:-1").token, "-10:-1");
    }

    #[test]
    fn flags() {
        let c = req();
        assert!(test("path -m beg /static", &c));
        assert!(test("path -i -m end .png", &c));
        assert!(test("path -m end -i .png", &c));
        assert!(test("path -n -m sub img", &c));
        // `-m` overrides the derivative's method.
        assert!(test("path_beg -m sub img", &c));
        assert!(test("path -m reg -i LOGO", &c));
        assert!(test("path -m len 20", &c));
        assert!(test("path -m dir img", &c));
        assert!(test("path -m dom logo", &c));
        assert!(test("path -m found", &c));
        assert!(test("path,lower -m str /static/img/logo.png", &c));
        assert!(test("path,length 20", &c));
        let dash = MockContext::get("/-x");
        assert!(test("path_end -- -x", &dash));
        assert!(test(r#"path_end "-x""#, &dash));
        // After `--`, `-i` is a pattern.
        assert!(!test("path -- -i", &dash));
    }

    #[test]
    fn pattern_files() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "# static prefixes\n\n  /static  \n/images\n#/c\n").unwrap();
        let path = f.path().to_str().unwrap().to_string();
        let c = req();
        assert!(test(&format!("path_beg -f {path}"), &c));
        assert!(test(
            &format!("path_beg -f {path}"),
            &MockContext::get("/images/x")
        ));
        assert!(!test(
            &format!("path_beg -f {path}"),
            &MockContext::get("/c/x")
        ));
        assert!(!test(
            &format!("path_beg -f {path}"),
            &MockContext::get("/#/c")
        ));
        // Files combine with inline patterns and other files.
        assert!(test(
            &format!("path_beg -f {path} /c"),
            &MockContext::get("/c/x")
        ));
        let mut g = tempfile::NamedTempFile::new().unwrap();
        writeln!(g, "/d").unwrap();
        let path2 = g.path().to_str().unwrap();
        assert!(test(
            &format!("path_beg -f {path} -f {path2}"),
            &MockContext::get("/d")
        ));

        let mut nets = tempfile::NamedTempFile::new().unwrap();
        writeln!(nets, "10.0.0.0/8\n::1").unwrap();
        let nets_path = nets.path().to_str().unwrap();
        assert!(test(
            &format!("src -f {nets_path}"),
            &MockContext::get("/").src("10.3.3.3:1")
        ));

        // An empty file is allowed: the ACL never matches.
        let empty = tempfile::NamedTempFile::new().unwrap();
        let empty_path = empty.path().to_str().unwrap();
        assert!(!test(&format!("path_beg -f {empty_path}"), &c));
    }

    #[test]
    fn pattern_file_errors() {
        let text = "path_beg -f /nonexistent/corral/patterns.lst";
        let e = err(text);
        assert_eq!(
            (e.offset, e.token.as_str()),
            (12, "/nonexistent/corral/patterns.lst")
        );
        assert!(
            e.message
                .starts_with("cannot read pattern file `/nonexistent/corral/patterns.lst`")
        );

        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "10.0.0.0/8\nnot-an-ip").unwrap();
        let p = f.path().to_str().unwrap();
        let e = err(&format!("src -f {p}"));
        assert_eq!((e.offset, e.token.as_str()), (7, p));
        assert!(
            e.message.contains("line 2: `not-an-ip` is not an address"),
            "{}",
            e.message
        );

        let e = err("path_beg -f");
        assert_eq!((e.offset, e.token.as_str()), (9, "-f"));
        let e = err(&format!("ssl_fc -f {p}"));
        assert!(e.message.contains("no pattern file"));
    }

    #[test]
    fn flag_errors() {
        let e = err("path_beg -q /x");
        assert_eq!((e.offset, e.token.as_str()), (9, "-q"));
        assert!(
            e.message
                .starts_with("unknown flag `-q`; expected -i, -m <method>")
        );
        let e = err("path -m");
        assert_eq!((e.offset, e.token.as_str()), (5, "-m"));
        assert!(e.message.contains("needs a match method"));
        let e = err("path -m regex x");
        assert_eq!((e.offset, e.token.as_str()), (8, "regex"));
        assert!(
            e.message
                .contains("unknown match method `regex`; expected one of str, beg")
        );
    }

    #[test]
    fn pattern_count_errors() {
        let e = err("path_beg");
        assert_eq!((e.offset, e.token.as_str()), (0, "path_beg"));
        assert_eq!(
            e.message,
            "`path_beg` needs at least one pattern (or `-m found` to test presence)"
        );
        let e = err("  hdr(host) -i");
        assert_eq!((e.offset, e.token.as_str()), (2, "hdr(host)"));
        let e = err("src");
        assert!(e.message.contains("needs at least one pattern"));
        let e = err("path -m found /x");
        assert_eq!((e.offset, e.token.as_str()), (14, "/x"));
        assert_eq!(e.message, "`-m found` takes no patterns, found `/x`");
        let e = err("ssl_fc 1");
        assert_eq!((e.offset, e.token.as_str()), (7, "1"));
        assert_eq!(
            e.message,
            "boolean fetch `ssl_fc` takes no patterns, found `1`"
        );
        let e = err("status gt");
        assert_eq!((e.offset, e.token.as_str()), (7, "gt"));
        assert!(e.message.contains("operator `gt` needs an integer"));
        let e = err("status gt lt 5");
        assert_eq!((e.offset, e.token.as_str()), (7, "gt"));
    }

    #[test]
    fn pattern_value_errors() {
        let e = err("status 2xx");
        assert_eq!((e.offset, e.token.as_str()), (7, "2xx"));
        assert!(e.message.contains("`2xx` is not an integer"));
        let e = err("src 10.0.0.0/8 10.0.0.300");
        assert_eq!((e.offset, e.token.as_str()), (15, "10.0.0.300"));
        let e = err("path_reg ^/(a");
        assert_eq!((e.offset, e.token.as_str()), (9, "^/(a"));
        assert!(e.message.starts_with("invalid regular expression `^/(a`"));
        let e = err("path_len x");
        assert_eq!(e.token, "x");
    }

    #[test]
    fn method_type_errors() {
        let e = err("src -m int 5");
        assert_eq!((e.offset, e.token.as_str()), (7, "int"));
        assert_eq!(
            e.message,
            "match method `int` cannot test `src`, which gives an address"
        );
        let e = err("path -m bool");
        assert!(e.message.contains("cannot test `path`"));
        let e = err("status -m ip 10.0.0.1");
        assert!(e.message.contains("gives an integer"));
        let e = err("path,length -m ip 1.2.3.4");
        assert_eq!(e.token, "ip");
    }

    #[test]
    fn criterion_errors_carry_offsets() {
        let e = err("   pth_beg /x");
        assert_eq!((e.offset, e.token.as_str()), (3, "pth_beg"));
        assert!(
            e.message.contains("did you mean `path_beg`"),
            "{}",
            e.message
        );
        let e = err("hdr_beg(host,x) a");
        assert_eq!((e.offset, e.token.as_str()), (13, "x"));
    }
}
