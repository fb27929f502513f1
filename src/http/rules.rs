//! `http-request` and `http-response` rules: HAProxy's actions, each with
//! an optional `if`/`unless` condition, parsed once at load and applied in
//! order to every message.
//!
//! Request actions: `allow`, `deny [status N] [content-type T] [string S |
//! lf-string F]`, `return [status N] [content-type T] [string S |
//! lf-string F]`, `redirect location|prefix|scheme V [code N]
//! [drop-query] [append-slash]`, `set-header`, `add-header`, `del-header`,
//! `replace-header NAME REGEX REPLACEMENT`, `set-path`, `set-query`.
//! Response actions: `allow`, `deny` (502 by default), `return`,
//! `set-header`, `add-header`, `del-header`, `replace-header`.

use crate::acl::{self, AclSet, Condition, LogFormat};
use crate::http::context::ReqCtx;
use crate::http::head::Head;
use std::net::SocketAddr;

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub action: Action,
    pub cond: Option<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    Location,
    Prefix,
    Scheme,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Stop evaluating rules; let the message through.
    Allow,
    /// Refuse with `status` (an error page unless a body is given).
    Deny {
        status: u16,
        content_type: Option<String>,
        body: Option<LogFormat>,
    },
    /// Answer directly.
    Return {
        status: u16,
        content_type: Option<String>,
        body: Option<LogFormat>,
    },
    Redirect {
        kind: RedirectKind,
        value: LogFormat,
        code: u16,
        drop_query: bool,
        append_slash: bool,
    },
    SetHeader {
        name: String,
        value: LogFormat,
    },
    AddHeader {
        name: String,
        value: LogFormat,
    },
    DelHeader {
        name: String,
    },
    ReplaceHeader {
        name: String,
        regex: regex::bytes::Regex,
        with: String,
    },
    SetPath(LogFormat),
    SetQuery(LogFormat),
    /// `track-scN`, `sc-inc-gpc0` (request rules).
    Stick(crate::stick::rules::StickAction),
}

/// A problem in a rule: the byte offset in the rule text and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub offset: usize,
    pub message: String,
}

impl From<acl::ParseError> for RuleError {
    fn from(e: acl::ParseError) -> Self {
        RuleError {
            offset: e.offset,
            message: e.message,
        }
    }
}

const REQUEST_ACTIONS: &str = "allow, deny, return, redirect, set-header, add-header, del-header, replace-header, set-path, set-query, track-sc0, track-sc1, track-sc2, sc-inc-gpc0";
const RESPONSE_ACTIONS: &str =
    "allow, deny, return, set-header, add-header, del-header, replace-header";

/// Parses one rule line (no stick tables to refer to).
pub fn parse(line: &str, acls: &AclSet, side: Side) -> Result<Rule, RuleError> {
    parse_with(line, acls, side, &crate::stick::rules::TableRefs::NONE)
}

/// Parses one rule line; `tables` resolves `track-scN ... table NAME`.
pub fn parse_with(
    line: &str,
    acls: &AclSet,
    side: Side,
    tables: &crate::stick::rules::TableRefs,
) -> Result<Rule, RuleError> {
    let (action_text, cond_text) = acl::split_condition(line);
    let cond = match cond_text {
        Some((text, at)) => Some(Condition::parse(text, acls).map_err(|e| RuleError {
            offset: at + e.offset,
            message: e.message,
        })?),
        None => None,
    };
    let action_at = line.len() - line.trim_start().len();
    let words = acl::split_words(action_text).map_err(|e| RuleError {
        offset: action_at + e.offset,
        message: e.message,
    })?;
    let words: Vec<(String, usize)> = words.into_iter().map(|(w, o)| (w, o + action_at)).collect();
    if side == Side::Request
        && let Some(a) =
            crate::stick::rules::parse_action(&words, action_text.trim_end().len(), tables)
                .map_err(|(offset, message)| RuleError { offset, message })?
    {
        return Ok(Rule {
            action: Action::Stick(a),
            cond,
        });
    }
    let action = parse_action(&words, side, line.len())?;
    Ok(Rule { action, cond })
}

/// The words of an action and a cursor over them.
struct Words<'w> {
    words: &'w [(String, usize)],
    next: usize,
    end: usize,
}

impl<'w> Words<'w> {
    fn take(&mut self, what: &str) -> Result<(&'w str, usize), RuleError> {
        match self.words.get(self.next) {
            Some((w, at)) => {
                self.next += 1;
                Ok((w.as_str(), *at))
            }
            None => Err(RuleError {
                offset: self.end,
                message: format!("missing {what}"),
            }),
        }
    }

    fn peek(&self) -> Option<&'w (String, usize)> {
        self.words.get(self.next)
    }
}

fn parse_action(words: &[(String, usize)], side: Side, end: usize) -> Result<Action, RuleError> {
    let mut w = Words {
        words,
        next: 0,
        end,
    };
    let (name, at) = w.take("an action")?;
    let valid = match side {
        Side::Request => REQUEST_ACTIONS,
        Side::Response => RESPONSE_ACTIONS,
    };
    let request_only = matches!(name, "redirect" | "set-path" | "set-query");
    if side == Side::Response && request_only {
        return Err(RuleError {
            offset: at,
            message: format!("`{name}` is an http-request action (http-response allows: {valid})"),
        });
    }
    let action = match name {
        "allow" => Action::Allow,
        "deny" | "return" => {
            let default = match (name, side) {
                ("deny", Side::Request) => 403,
                ("deny", Side::Response) => 502,
                _ => 200,
            };
            let (status, content_type, body) = reply_options(&mut w, default)?;
            if name == "deny" {
                Action::Deny {
                    status,
                    content_type,
                    body,
                }
            } else {
                Action::Return {
                    status,
                    content_type,
                    body,
                }
            }
        }
        "redirect" => {
            let (kind_word, kind_at) = w.take("`location`, `prefix` or `scheme`")?;
            let kind = match kind_word {
                "location" => RedirectKind::Location,
                "prefix" => RedirectKind::Prefix,
                "scheme" => RedirectKind::Scheme,
                other => {
                    return Err(RuleError {
                        offset: kind_at,
                        message: format!(
                            "`{other}` is not a redirect type (expected location, prefix or scheme)"
                        ),
                    });
                }
            };
            let (v, v_at) = w.take("the redirect target")?;
            let value = log_format(v, v_at)?;
            let mut code = 302;
            let (mut drop_query, mut append_slash) = (false, false);
            while let Some((opt, opt_at)) = w.peek() {
                w.next += 1;
                match opt.as_str() {
                    "code" => {
                        let (c, c_at) = w.take("a redirect code")?;
                        code = match c.parse::<u16>() {
                            Ok(n @ (301 | 302 | 303 | 307 | 308)) => n,
                            _ => {
                                return Err(RuleError {
                                    offset: c_at,
                                    message: format!(
                                        "`{c}` is not a redirect code (expected 301, 302, 303, 307 or 308)"
                                    ),
                                });
                            }
                        };
                    }
                    "drop-query" => drop_query = true,
                    "append-slash" => append_slash = true,
                    other => {
                        return Err(RuleError {
                            offset: *opt_at,
                            message: format!(
                                "unknown redirect option `{other}` (expected code, drop-query, append-slash)"
                            ),
                        });
                    }
                }
            }
            Action::Redirect {
                kind,
                value,
                code,
                drop_query,
                append_slash,
            }
        }
        "set-header" | "add-header" => {
            let (hname, h_at) = w.take("a header name")?;
            header_name(hname, h_at)?;
            let (v, v_at) = w.take("a header value")?;
            let value = log_format(v, v_at)?;
            if name == "set-header" {
                Action::SetHeader {
                    name: hname.to_string(),
                    value,
                }
            } else {
                Action::AddHeader {
                    name: hname.to_string(),
                    value,
                }
            }
        }
        "del-header" => {
            let (hname, h_at) = w.take("a header name")?;
            header_name(hname, h_at)?;
            Action::DelHeader {
                name: hname.to_string(),
            }
        }
        "replace-header" => {
            let (hname, h_at) = w.take("a header name")?;
            header_name(hname, h_at)?;
            let (re, re_at) = w.take("a regular expression")?;
            let regex =
                regex::bytes::Regex::new(&format!("^(?:{re})$")).map_err(|e| RuleError {
                    offset: re_at,
                    message: format!("invalid regular expression: {e}"),
                })?;
            let (with, _) = w.take("a replacement")?;
            Action::ReplaceHeader {
                name: hname.to_string(),
                regex,
                with: backrefs(with),
            }
        }
        "set-path" | "set-query" => {
            let (v, v_at) = w.take("a value")?;
            let value = log_format(v, v_at)?;
            if name == "set-path" {
                Action::SetPath(value)
            } else {
                Action::SetQuery(value)
            }
        }
        other => {
            return Err(RuleError {
                offset: at,
                message: format!("unknown action `{other}` (valid here: {valid})"),
            });
        }
    };
    if let Some((extra, extra_at)) = w.peek() {
        return Err(RuleError {
            offset: *extra_at,
            message: format!(
                "unexpected `{extra}` after the action (a condition starts with `if` or `unless`)"
            ),
        });
    }
    Ok(action)
}

type ReplyOptions = (u16, Option<String>, Option<LogFormat>);

fn reply_options(w: &mut Words, default: u16) -> Result<ReplyOptions, RuleError> {
    let (mut status, mut content_type, mut body) = (default, None, None);
    while let Some((opt, opt_at)) = w.peek() {
        w.next += 1;
        match opt.as_str() {
            "status" | "deny_status" => {
                let (s, s_at) = w.take("a status")?;
                status = match s.parse::<u16>() {
                    Ok(n) if (200..=599).contains(&n) => n,
                    _ => {
                        return Err(RuleError {
                            offset: s_at,
                            message: format!("`{s}` is not a status from 200 to 599"),
                        });
                    }
                };
            }
            "content-type" => content_type = Some(w.take("a content type")?.0.to_string()),
            "string" => {
                let (s, _) = w.take("a string")?;
                body = Some(log_format(&s.replace('%', "%%"), 0)?);
            }
            "lf-string" => {
                let (s, s_at) = w.take("a log-format string")?;
                body = Some(log_format(s, s_at)?);
            }
            other => {
                return Err(RuleError {
                    offset: *opt_at,
                    message: format!(
                        "unknown option `{other}` (expected status, content-type, string, lf-string)"
                    ),
                });
            }
        }
    }
    Ok((status, content_type, body))
}

fn log_format(text: &str, at: usize) -> Result<LogFormat, RuleError> {
    LogFormat::parse(text).map_err(|e| RuleError {
        offset: at + e.offset,
        message: e.message,
    })
}

fn header_name(name: &str, at: usize) -> Result<(), RuleError> {
    if name.is_empty() || !name.bytes().all(crate::http::head::is_tchar) {
        return Err(RuleError {
            offset: at,
            message: format!("`{name}` is not a valid header name"),
        });
    }
    Ok(())
}

/// HAProxy writes back-references as `\1`; the regex crate as `${1}`.
fn backrefs(with: &str) -> String {
    let mut out = String::with_capacity(with.len());
    let mut chars = with.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                out.push_str(&format!("${{{d}}}"));
                chars.next();
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

// ---- applying -------------------------------------------------------------

/// What the rest of the connection needs to know about the request.
pub struct Env<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// The client connection's TLS session, when it arrived over TLS.
    pub tls: Option<&'a rustls::ServerConnection>,
    pub unique_id: &'a [u8],
    /// Stick tables and the connection's tracked counters.
    pub stick: Option<crate::stick::Env<'a>>,
}

/// A response the rules decided to send instead of proxying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An error page for this status (errorfile or built-in).
    Error(u16),
    /// A generated response.
    Generated {
        status: u16,
        content_type: Option<Vec<u8>>,
        location: Option<Vec<u8>>,
        body: Vec<u8>,
    },
}

/// What a list of rules decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Go on to the next step (`allow` ends only the current list of
    /// rules, as in HAProxy).
    Continue,
    Reply(Reply),
}

/// Applies request rules to `req`.
pub fn apply_request(rules: &[Rule], req: &mut Head, env: &Env, scratch: &mut Vec<u8>) -> Outcome {
    for rule in rules {
        let ctx = ReqCtx {
            req,
            res: None,
            src: env.src,
            dst: env.dst,
            tls: env.tls,
            unique_id: env.unique_id,
            stick: env.stick,
        };
        if let Some(c) = &rule.cond
            && !c.eval(&ctx)
        {
            continue;
        }
        match &rule.action {
            Action::Allow => return Outcome::Continue,
            Action::Deny {
                status,
                content_type,
                body,
            }
            | Action::Return {
                status,
                content_type,
                body,
            } => {
                return Outcome::Reply(reply(*status, content_type, body, &ctx));
            }
            Action::Redirect {
                kind,
                value,
                code,
                drop_query,
                append_slash,
            } => {
                let location = redirect_location(*kind, value, *drop_query, *append_slash, &ctx);
                return Outcome::Reply(Reply::Generated {
                    status: *code,
                    content_type: None,
                    location: Some(location),
                    body: Vec::new(),
                });
            }
            Action::Stick(a) => {
                if let Some(st) = &env.stick {
                    st.act(a, &ctx, false);
                }
            }
            action => {
                scratch.clear();
                render_value(action, &ctx, scratch);
                edit(action, req, scratch);
            }
        }
    }
    Outcome::Continue
}

/// Applies response rules to `res` (the request is visible read-only).
pub fn apply_response(
    rules: &[Rule],
    req: &Head,
    res: &mut Head,
    env: &Env,
    scratch: &mut Vec<u8>,
) -> Outcome {
    for rule in rules {
        let ctx = ReqCtx {
            req,
            res: Some(res),
            src: env.src,
            dst: env.dst,
            tls: env.tls,
            unique_id: env.unique_id,
            stick: env.stick,
        };
        if let Some(c) = &rule.cond
            && !c.eval(&ctx)
        {
            continue;
        }
        match &rule.action {
            Action::Allow => return Outcome::Continue,
            Action::Deny {
                status,
                content_type,
                body,
            }
            | Action::Return {
                status,
                content_type,
                body,
            } => {
                return Outcome::Reply(reply(*status, content_type, body, &ctx));
            }
            Action::Redirect { .. }
            | Action::SetPath(_)
            | Action::SetQuery(_)
            | Action::Stick(_) => {}
            action => {
                scratch.clear();
                render_value(action, &ctx, scratch);
                edit(action, res, scratch);
            }
        }
    }
    Outcome::Continue
}

fn reply(
    status: u16,
    content_type: &Option<String>,
    body: &Option<LogFormat>,
    ctx: &ReqCtx,
) -> Reply {
    match body {
        None if status >= 400 => Reply::Error(status),
        _ => {
            let mut b = Vec::new();
            if let Some(f) = body {
                f.render(ctx, &mut b);
            }
            Reply::Generated {
                status,
                content_type: content_type.as_ref().map(|t| t.as_bytes().to_vec()),
                location: None,
                body: b,
            }
        }
    }
}

fn redirect_location(
    kind: RedirectKind,
    value: &LogFormat,
    drop_query: bool,
    append_slash: bool,
    ctx: &ReqCtx,
) -> Vec<u8> {
    let mut loc = Vec::new();
    value.render(ctx, &mut loc);
    let path = ctx.req.path();
    let query = ctx.req.query();
    match kind {
        RedirectKind::Location => {}
        RedirectKind::Prefix => {
            if loc.last() == Some(&b'/') && path.first() == Some(&b'/') {
                loc.pop();
            }
            loc.extend_from_slice(path);
            if append_slash && loc.last() != Some(&b'/') {
                loc.push(b'/');
            }
            if let (Some(q), false) = (query, drop_query) {
                loc.push(b'?');
                loc.extend_from_slice(q);
            }
        }
        RedirectKind::Scheme => {
            // scheme://host/path?query, with the Host's port dropped (the
            // port of the old scheme is wrong for the new one).
            loc.extend_from_slice(b"://");
            if let Some(host) = ctx.req.values(b"host").next() {
                let host = crate::http::head::trim(host);
                let end = if host.first() == Some(&b'[') {
                    host.iter()
                        .position(|&b| b == b']')
                        .map_or(host.len(), |e| e + 1)
                } else {
                    host.iter().position(|&b| b == b':').unwrap_or(host.len())
                };
                loc.extend_from_slice(&host[..end]);
            }
            loc.extend_from_slice(path);
            if let (Some(q), false) = (query, drop_query) {
                loc.push(b'?');
                loc.extend_from_slice(q);
            }
        }
    }
    loc
}

/// Renders the value an editing action needs into `out`.
fn render_value(action: &Action, ctx: &ReqCtx, out: &mut Vec<u8>) {
    match action {
        Action::SetHeader { value, .. } | Action::AddHeader { value, .. } => value.render(ctx, out),
        Action::SetPath(f) | Action::SetQuery(f) => f.render(ctx, out),
        _ => {}
    }
}

/// Applies an editing action; `value` is its rendered value.
fn edit(action: &Action, head: &mut Head, value: &[u8]) {
    match action {
        Action::SetHeader { name, .. } => head.set(name.as_bytes(), value),
        Action::AddHeader { name, .. } => head.add(name.as_bytes(), value),
        Action::DelHeader { name } => head.remove(name.as_bytes()),
        Action::ReplaceHeader { name, regex, with } => {
            for i in 0..head.fields.len() {
                let f = head.fields[i];
                if f.removed || !head.get(f.name).eq_ignore_ascii_case(name.as_bytes()) {
                    continue;
                }
                let old = head.get(f.value);
                if regex.is_match(old) {
                    let new = regex.replace(old, with.as_bytes()).into_owned();
                    head.set_value(i, &new);
                }
            }
        }
        Action::SetPath(_) => {
            let mut target = value.to_vec();
            if let Some(q) = head.query() {
                target.push(b'?');
                target.extend_from_slice(q);
            }
            head.set_target(&target);
        }
        Action::SetQuery(_) => {
            let mut target = head.path().to_vec();
            if !value.is_empty() {
                target.push(b'?');
                target.extend_from_slice(value);
            }
            head.set_target(&target);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_req(line: &str) -> Result<Rule, RuleError> {
        parse(line, &AclSet::new(), Side::Request)
    }

    #[test]
    fn actions_parse() {
        assert!(matches!(
            parse_req("deny").unwrap().action,
            Action::Deny { status: 403, .. }
        ));
        assert!(matches!(
            parse_req("deny status 429").unwrap().action,
            Action::Deny { status: 429, .. }
        ));
        assert!(matches!(
            parse_req("redirect scheme https code 301").unwrap().action,
            Action::Redirect {
                kind: RedirectKind::Scheme,
                code: 301,
                ..
            }
        ));
        assert!(matches!(
            parse_req("set-header X-Client-IP %[src]").unwrap().action,
            Action::SetHeader { .. }
        ));
        assert!(matches!(
            parse_req("del-header X-Secret").unwrap().action,
            Action::DelHeader { .. }
        ));
        assert!(matches!(
            parse_req("return status 200 content-type text/plain string ok")
                .unwrap()
                .action,
            Action::Return { status: 200, .. }
        ));
        assert!(matches!(
            parse(r"deny", &AclSet::new(), Side::Response)
                .unwrap()
                .action,
            Action::Deny { status: 502, .. }
        ));
    }

    #[test]
    fn errors_point_at_the_word() {
        let e = parse_req("sett-header X y").unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(
            e.message.contains("unknown action `sett-header`"),
            "{}",
            e.message
        );
        let e = parse_req("redirect scheme https code 999").unwrap_err();
        assert_eq!(e.offset, 27);
        let e = parse_req("set-header X").unwrap_err();
        assert!(e.message.contains("missing a header value"));
        let e = parse_req("deny status 403 extra").unwrap_err();
        assert_eq!(e.offset, 16);
        let e = parse("redirect location /x", &AclSet::new(), Side::Response).unwrap_err();
        assert!(e.message.contains("http-request action"));
    }

    #[test]
    fn backreferences_are_translated() {
        assert_eq!(backrefs(r"\1-x-\2"), "${1}-x-${2}");
        assert_eq!(backrefs("$5"), "$$5");
    }
}
