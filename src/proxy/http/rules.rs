//! Applying `http-request` and `http-response` rules (parsed by
//! `rules::http`) to a request or a response, in order.

use crate::acl::LogFormat;
use crate::proxy::http::context::ReqCtx;
use crate::proxy::http::head::Head;
use crate::rules::http::{Action, RedirectKind, Rule};
use std::net::SocketAddr;

// ---- applying -------------------------------------------------------------

/// What the rest of the connection needs to know about the request.
pub(crate) struct Env<'a> {
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
pub(crate) enum Reply {
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
pub(crate) enum Outcome {
    /// Go on to the next step (`allow` ends only the current list of
    /// rules, as in HAProxy).
    Continue,
    Reply(Reply),
}

/// Applies request rules to `req`.
pub(crate) fn apply_request(
    rules: &[Rule],
    req: &mut Head,
    env: &Env,
    scratch: &mut Vec<u8>,
) -> Outcome {
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
pub(crate) fn apply_response(
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
                let host = crate::proxy::http::head::trim(host);
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
    use crate::acl::AclSet;
    use crate::rules::http::*;

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
