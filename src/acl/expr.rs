//! `if` / `unless` conditions: ACL terms, negation, AND and OR.

use super::fetch;
use super::rule::{Acl, AclExpr};
use super::set::AclSet;
use super::words::{Word, lex};
use super::{Context, ParseError};

/// One term of a condition: an ACL, possibly negated.
#[derive(Debug, Clone)]
struct Term {
    negated: bool,
    acl: Acl,
}

/// A parsed `if ...` / `unless ...` condition.
///
/// Terms written side by side are ANDed, `||` (or `or`) separates
/// alternatives, and AND binds tighter: `if a b || c` is `(a and b) or c`.
/// Named ACLs are copied in at parse time, so defining more ACLs later does
/// not change a parsed condition.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    /// `unless`: the result is negated.
    negated: bool,
    /// Alternatives (ORed), each a list of terms (ANDed).
    groups: Vec<Vec<Term>>,
}

impl Condition {
    /// Parses text starting with the word `if` or `unless`, e.g.
    /// "if { path_beg -i /admin } !lan", "unless is_static || { src 127.0.0.1 }".
    /// Named ACLs are resolved in `acls` (and the predefined ones); an unknown
    /// name is an error at its offset.
    ///
    /// Braces of an anonymous ACL are separate words, as in HAProxy; `!` may
    /// be a word of its own or stuck to the name or to `{`.
    pub(crate) fn parse(text: &str, acls: &AclSet) -> Result<Condition, ParseError> {
        let words = lex(text)?;
        let Some(first) = words.first() else {
            return Err(ParseError::new(
                0,
                "",
                "expected `if` or `unless` and a condition",
            ));
        };
        let negated = match (first.raw, first.text.as_str()) {
            (true, "if") => false,
            (true, "unless") => true,
            _ => {
                return Err(ParseError::new(
                    first.offset,
                    &first.text,
                    format!("expected `if` or `unless`, found `{}`", first.text),
                ));
            }
        };

        let mut groups: Vec<Vec<Term>> = vec![Vec::new()];
        let mut last_or: Option<&Word> = None;
        // The last `!` seen, while it still waits for its term.
        let mut bang: Option<(usize, bool)> = None;
        let mut i = 1;
        while let Some(w) = words.get(i) {
            i += 1;
            if w.raw && (w.text == "||" || w.text == "or") {
                if let Some((offset, _)) = bang {
                    return Err(bang_without_term(offset));
                }
                if groups.last().is_some_and(Vec::is_empty) {
                    return Err(ParseError::new(
                        w.offset,
                        &w.text,
                        format!("`{}` needs a condition on its left", w.text),
                    ));
                }
                groups.push(Vec::new());
                last_or = Some(w);
                continue;
            }

            let mut name = w.text.as_str();
            let mut offset = w.offset;
            if w.raw {
                while let Some(rest) = name.strip_prefix('!') {
                    let negated = bang.is_some_and(|(_, n)| n);
                    bang = Some((offset, !negated));
                    name = rest;
                    offset += 1;
                }
                if name.is_empty() {
                    continue;
                }
            }
            let negated = bang.take().is_some_and(|(_, n)| n);

            let acl = if w.raw && name == "{" {
                let close = words[i..]
                    .iter()
                    .position(|w| w.raw && w.text == "}")
                    .map(|p| i + p);
                let Some(close) = close else {
                    let hint = match words.last() {
                        Some(l) if l.raw && l.text.len() > 1 && l.text.ends_with('}') => {
                            format!("; `}}` must be a separate word (found `{}`)", l.text)
                        }
                        _ => String::new(),
                    };
                    return Err(ParseError::new(
                        offset,
                        "{",
                        format!("missing `}}` to close the `{{` opened here{hint}"),
                    ));
                };
                let inner = &words[i..close];
                if inner.is_empty() {
                    let end = &words[close];
                    return Err(ParseError::new(
                        end.offset,
                        "}",
                        "empty `{ }`; expected a fetch such as `path_beg /x` inside",
                    ));
                }
                i = close + 1;
                Acl::single(AclExpr::parse(inner)?)
            } else if w.raw && name == "}" {
                return Err(ParseError::new(
                    offset,
                    "}",
                    "unexpected `}` without an opening `{`",
                ));
            } else if w.raw && name.starts_with('{') {
                return Err(ParseError::new(
                    offset,
                    name,
                    format!("`{{` must be a separate word: write `{{ {}`", &name[1..]),
                ));
            } else {
                acls.resolve(name)
                    .ok_or_else(|| unknown_acl(name, offset))?
            };
            groups
                .last_mut()
                .expect("groups starts non-empty")
                .push(Term { negated, acl });
        }

        if let Some((offset, _)) = bang {
            return Err(bang_without_term(offset));
        }
        if groups.last().is_some_and(Vec::is_empty) {
            return Err(match last_or {
                Some(or) => ParseError::new(
                    or.offset,
                    &or.text,
                    format!("`{}` needs a condition on its right", or.text),
                ),
                None => ParseError::new(
                    first.offset,
                    &first.text,
                    format!(
                        "`{}` needs a condition after it, e.g. `{} {{ path_beg /admin }}`",
                        first.text, first.text
                    ),
                ),
            });
        }
        Ok(Condition { negated, groups })
    }

    /// Evaluates the condition for the current request.
    pub(crate) fn eval(&self, ctx: &dyn Context) -> bool {
        let any = self
            .groups
            .iter()
            .any(|group| group.iter().all(|t| t.acl.eval(ctx) != t.negated));
        any != self.negated
    }
}

fn bang_without_term(offset: usize) -> ParseError {
    ParseError::new(
        offset,
        "!",
        "`!` must be followed by an ACL name or `{ ... }`",
    )
}

fn unknown_acl(name: &str, offset: usize) -> ParseError {
    let hint = if name == "and" {
        "; terms written side by side are ANDed, there is no `and`".to_string()
    } else if fetch::is_known_name(name) {
        format!("; to test a fetch here, write an anonymous ACL: `{{ {name} ... }}`")
    } else {
        String::new()
    };
    ParseError::new(offset, name, format!("unknown ACL `{name}`{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::mock::MockContext;

    fn acls() -> AclSet {
        let mut set = AclSet::new();
        set.define("is_static", "path_beg /static /images").unwrap();
        set.define("is_static", "path_end .css .js").unwrap();
        set.define("lan", "src 10.0.0.0/8 192.168.0.0/16").unwrap();
        set.define("site1", "hdr(host) -i site1.example.com")
            .unwrap();
        set.define("a", "hdr(x-a) 1").unwrap();
        set.define("b", "hdr(x-b) 1").unwrap();
        set.define("c", "hdr(x-c) 1").unwrap();
        set
    }

    fn cond(text: &str) -> Condition {
        Condition::parse(text, &acls()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn eval(text: &str, ctx: &MockContext) -> bool {
        cond(text).eval(ctx)
    }

    fn err(text: &str) -> ParseError {
        match Condition::parse(text, &acls()) {
            Ok(_) => panic!("`{text}` parsed"),
            Err(e) => e,
        }
    }

    /// A request with headers x-a/x-b/x-c set to 1 for each true flag.
    fn abc(a: bool, b: bool, c: bool) -> MockContext {
        let mut ctx = MockContext::get("/");
        for (name, on) in [("x-a", a), ("x-b", b), ("x-c", c)] {
            ctx = ctx.header(name, if on { "1" } else { "0" });
        }
        ctx
    }

    #[test]
    fn named_acls_and_redefinition_or() {
        let lan = MockContext::get("/static/x").src("10.0.0.5:1");
        let wan = MockContext::get("/app.js").src("8.8.8.8:1");
        assert!(eval("if is_static", &lan));
        // The second definition of `is_static` is ORed in.
        assert!(eval("if is_static", &wan));
        assert!(!eval("if is_static", &MockContext::get("/app")));
        assert!(eval("if lan", &lan));
        assert!(!eval("if lan", &wan));
        assert!(eval("if is_static lan", &lan));
        assert!(!eval("if is_static lan", &wan));
    }

    #[test]
    fn anonymous_acls() {
        let c = MockContext::get("/admin/x").src("10.0.0.5:1");
        assert!(eval("if { path_beg -i /ADMIN }", &c));
        assert!(!eval("if { path_beg /api }", &c));
        assert!(eval("if { path_beg /admin } { src 10.0.0.0/8 }", &c));
        assert!(eval("if { ssl_fc }", &MockContext::get("/").ssl()));
        assert!(!eval("if { ssl_fc }", &MockContext::get("/")));
        assert!(eval(
            "if { hdr(x) \"}\" }",
            &MockContext::get("/").header("x", "}")
        ));
        assert!(eval("if { path_beg \"{\" }", &MockContext::get("{x")));
    }

    #[test]
    fn negation_forms() {
        let lan = MockContext::get("/admin").src("10.0.0.5:1");
        let wan = MockContext::get("/admin").src("8.8.8.8:1");
        for text in [
            "if { path_beg /admin } !lan",
            "if { path_beg /admin } ! lan",
            "if !{ src 10.0.0.0/8 } { path_beg /admin }",
            "if ! { src 10.0.0.0/8 } { path_beg /admin }",
            "if !!!lan { path_beg /admin }",
            "if ! ! ! lan { path_beg /admin }",
        ] {
            assert!(!eval(text, &lan), "{text}");
            assert!(eval(text, &wan), "{text}");
        }
        assert!(eval("if !!lan", &lan));
        assert!(!eval("if !TRUE", &lan));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // a b || c  ==  (a and b) or c
        for (a, b, c) in [
            (false, false, false),
            (true, false, false),
            (true, true, false),
            (false, false, true),
            (false, true, false),
        ] {
            let ctx = abc(a, b, c);
            assert_eq!(eval("if a b || c", &ctx), (a && b) || c, "{a} {b} {c}");
            assert_eq!(eval("if a b or c", &ctx), (a && b) || c, "{a} {b} {c}");
            assert_eq!(eval("if a || b c", &ctx), a || (b && c), "{a} {b} {c}");
            assert_eq!(
                eval("if !a || !b !c", &ctx),
                !a || (!b && !c),
                "{a} {b} {c}"
            );
            assert_eq!(
                eval("unless a b || c", &ctx),
                !((a && b) || c),
                "{a} {b} {c}"
            );
        }
    }

    #[test]
    fn unless_negates_the_whole_condition() {
        let st = MockContext::get("/static/a").src("127.0.0.1:1");
        assert!(!eval("unless is_static", &st));
        assert!(eval("unless is_static", &MockContext::get("/x")));
        assert!(!eval(
            "unless is_static || { src 127.0.0.1 }",
            &MockContext::get("/x").src("127.0.0.1:1")
        ));
        assert!(eval(
            "unless is_static || { src 127.0.0.1 }",
            &MockContext::get("/x")
        ));
    }

    #[test]
    fn predefined_acls() {
        let get = MockContext::get("/x");
        assert!(eval("if TRUE", &get));
        assert!(!eval("if FALSE", &get));
        assert!(eval("if HTTP", &get));
        assert!(!eval("if LOCALHOST", &get));
        assert!(eval(
            "if LOCALHOST",
            &MockContext::get("/").src("127.1.2.3:1")
        ));
        assert!(eval("if LOCALHOST", &MockContext::get("/").src("[::1]:1")));
        assert!(eval("if HTTP_1.1", &get) && !eval("if HTTP_1.0", &get));
        assert!(eval("if HTTP_1.0", &MockContext::get("/").version("1.0")));
        assert!(eval("if HTTP_2.0", &MockContext::get("/").version("2.0")));
        assert!(eval("if METH_GET", &get));
        assert!(eval("if METH_GET", &MockContext::get("/").method("HEAD")));
        assert!(!eval("if METH_GET", &MockContext::get("/").method("get")));
        for m in [
            "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
        ] {
            let ctx = MockContext::get("/").method(m);
            assert!(eval(&format!("if METH_{m}"), &ctx), "{m}");
            assert!(!eval(&format!("if METH_{m}"), &get), "{m}");
        }
        assert!(eval("if HTTP_URL_SLASH", &get));
        assert!(!eval("if HTTP_URL_SLASH", &MockContext::get("*")));
        assert!(eval("if HTTP_URL_STAR", &MockContext::get("*")));
        assert!(eval("if HTTP_URL_ABS", &MockContext::get("http://h/x")));
        assert!(!eval("if HTTP_URL_ABS", &get));
        assert!(!eval("if HTTP_CONTENT", &get));
        assert!(!eval(
            "if HTTP_CONTENT",
            &MockContext::get("/").header("Content-Length", "0")
        ));
        assert!(eval(
            "if HTTP_CONTENT",
            &MockContext::get("/").header("Content-Length", "10")
        ));
    }

    #[test]
    fn user_acl_shadows_predefined() {
        let mut set = AclSet::new();
        set.define("TRUE", "always_false").unwrap();
        let c = Condition::parse("if TRUE", &set).unwrap();
        assert!(!c.eval(&MockContext::get("/")));
    }

    #[test]
    fn later_definitions_do_not_change_parsed_conditions() {
        let mut set = AclSet::new();
        set.define("x", "path /a").unwrap();
        let c = Condition::parse("if x", &set).unwrap();
        set.define("x", "path /b").unwrap();
        assert!(!c.eval(&MockContext::get("/b")));
        assert!(
            Condition::parse("if x", &set)
                .unwrap()
                .eval(&MockContext::get("/b"))
        );
    }

    #[test]
    fn host_condition_ignores_port() {
        let c = MockContext::get("/").header("Host", "SITE1.example.com:8080");
        assert!(eval("if site1", &c));
        assert!(eval("if { hdr(host) -i site1.example.com }", &c));
    }

    #[test]
    fn error_unknown_flag_in_block() {
        let text = "if { path_beg -q /x }";
        let e = err(text);
        assert_eq!((e.offset, e.token.as_str()), (14, "-q"));
        assert_eq!(&text[e.offset..e.offset + 2], "-q");
    }

    #[test]
    fn error_unknown_acl() {
        let text = "if is_static !nope";
        let e = err(text);
        assert_eq!((e.offset, e.token.as_str()), (14, "nope"));
        assert_eq!(e.message, "unknown ACL `nope`");
        let e = err("if is_static and lan");
        assert_eq!((e.offset, e.token.as_str()), (13, "and"));
        assert!(e.message.contains("there is no `and`"));
        let e = err("if path_beg /x");
        assert_eq!((e.offset, e.token.as_str()), (3, "path_beg"));
        assert!(e.message.contains("`{ path_beg ... }`"), "{}", e.message);
        let e = err("if \"is_static\" \"{\"");
        assert_eq!((e.offset, e.token.as_str()), (15, "{"));
        assert!(e.message.contains("unknown ACL"));
    }

    #[test]
    fn fetch_names_outside_braces_get_a_hint() {
        let e = err("if hdr_beg(host) www.");
        assert_eq!((e.offset, e.token.as_str()), (3, "hdr_beg(host)"));
        assert!(
            e.message.contains("`{ hdr_beg(host) ... }`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn error_unknown_fetch_in_block() {
        let e = err("if { pth_beg /x }");
        assert_eq!((e.offset, e.token.as_str()), (5, "pth_beg"));
        assert!(e.message.contains("unknown fetch `pth_beg`"));
    }

    #[test]
    fn error_braces() {
        let e = err("if { path_beg /x");
        assert_eq!((e.offset, e.token.as_str()), (3, "{"));
        assert!(e.message.starts_with("missing `}`"));
        let e = err("if lan !{ path_beg /x");
        assert_eq!((e.offset, e.token.as_str()), (8, "{"));
        let e = err("if { path_beg /x}");
        assert!(
            e.message.contains("must be a separate word (found `/x}`)"),
            "{}",
            e.message
        );
        let e = err("if {path_beg /x }");
        assert_eq!((e.offset, e.token.as_str()), (3, "{path_beg"));
        assert!(e.message.contains("`{` must be a separate word"));
        let e = err("if lan }");
        assert_eq!((e.offset, e.token.as_str()), (7, "}"));
        assert!(e.message.contains("unexpected `}`"));
        let e = err("if { }");
        assert_eq!((e.offset, e.token.as_str()), (5, "}"));
        assert!(e.message.contains("empty `{ }`"));
        let e = err("if { path_beg }");
        assert_eq!((e.offset, e.token.as_str()), (5, "path_beg"));
        assert!(e.message.contains("needs at least one pattern"));
    }

    #[test]
    fn error_operators_and_keywords() {
        let e = err("if || lan");
        assert_eq!((e.offset, e.token.as_str()), (3, "||"));
        assert!(e.message.contains("needs a condition on its left"));
        let e = err("if lan ||");
        assert_eq!((e.offset, e.token.as_str()), (7, "||"));
        assert!(e.message.contains("needs a condition on its right"));
        let e = err("if lan || || a");
        assert_eq!(e.offset, 10);
        let e = err("if lan or");
        assert_eq!(e.token, "or");
        let e = err("if lan !");
        assert_eq!((e.offset, e.token.as_str()), (7, "!"));
        assert!(e.message.contains("`!` must be followed"));
        let e = err("if ! || lan");
        assert_eq!((e.offset, e.token.as_str()), (3, "!"));
        let e = err("if");
        assert_eq!((e.offset, e.token.as_str()), (0, "if"));
        assert!(e.message.contains("`if` needs a condition"));
        let e = err("  unless  ");
        assert_eq!((e.offset, e.token.as_str()), (2, "unless"));
        let e = err("when lan");
        assert_eq!((e.offset, e.token.as_str()), (0, "when"));
        assert_eq!(e.message, "expected `if` or `unless`, found `when`");
        let e = err("\"if\" lan");
        assert_eq!(e.token, "if");
        let e = err("");
        assert_eq!((e.offset, e.token.as_str()), (0, ""));
        let e = err("if { path \"/x }");
        assert_eq!(e.offset, 10);
        assert!(e.message.contains("unterminated double quote"));
    }

    #[test]
    fn offsets_work_with_split_condition() {
        let line = "deny status 403 if { path_beg -q /admin } !lan";
        let (_, Some((text, base))) = crate::acl::split_condition(line) else {
            panic!()
        };
        let e = Condition::parse(text, &acls()).unwrap_err();
        assert_eq!(
            &line[base + e.offset..base + e.offset + e.token.len()],
            "-q"
        );
    }
}
