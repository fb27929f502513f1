//! `defaults`, `frontend`, `backend` and `listen` sections. A `listen`
//! becomes a frontend and a backend of the same name: the frontend gets
//! what HAProxy applies to clients (binds, rules, routing, client
//! timeouts, stats), the backend what it applies to servers, and the
//! frontend sends to it by default.

use super::bind;
use super::builder::Map;
use super::lexer::Line;
use super::sections::{Kind, Section};
use super::server::{self, HttpCheck};
use super::yaml::Node;
use super::{Converter, trailing};
use crate::acl::AclSet;
use crate::rules::stick::TableRefs;

const FE_OPTIONS: &[&str] = &["tcplog", "httplog", "dontlognull", "httpslog"];
const BE_OPTIONS: &[&str] = &["redispatch", "allbackups"];
const BOTH_OPTIONS: &[&str] = &[
    "forwardfor",
    "http-server-close",
    "httpclose",
    "http-keep-alive",
];
const FE_TIMEOUTS: &[&str] = &["client", "http-request", "http-keep-alive"];
const BE_TIMEOUTS: &[&str] = &["connect", "server", "queue", "check", "tunnel"];

/// Directives HAProxy removed in 2.1 (and what replaced them).
fn removed(kw: &str) -> Option<&'static str> {
    Some(match kw {
        "reqadd" | "reqrep" | "reqirep" | "reqdel" | "reqidel" | "reqdeny" | "reqideny"
        | "reqallow" | "reqiallow" | "reqpass" | "reqipass" | "reqtarpit" | "reqitarpit"
        | "block" => {
            "removed in HAProxy 2.1: write it as an `http-request` rule (`add-header`, `replace-header`, `del-header`, `deny`...), which corral converts"
        }
        "rspadd" | "rsprep" | "rspirep" | "rspdel" | "rspidel" | "rspdeny" | "rspideny" => {
            "removed in HAProxy 2.1: write it as an `http-response` rule, which corral converts"
        }
        _ => return None,
    })
}

/// Why a proxy directive has no counterpart, for the common ones.
fn reason(kw: &str) -> String {
    match kw {
        "cookie" => "corral has no cookie persistence (a stick table on `src` or a header keeps clients on a server)".into(),
        "compression" => "corral does not compress responses".into(),
        "hash-type" => "corral's `source` hashing is its own consistent hash; it has no other hash types".into(),
        "http-reuse" => "corral always reuses idle server connections when the server side is keep-alive (`pool-max-conn`)".into(),
        "monitor-uri" | "monitor" => "corral has no monitor URI: use an `http-request return status 200 if { path /health }` rule".into(),
        "fullconn" => "corral has no dynamic maxconn (`minconn`/`fullconn`)".into(),
        "description" | "id" => "corral names sections by their key and numbers them in file order".into(),
        "disabled" | "enabled" => "corral has no disabled sections: leave the section out".into(),
        "http-check" => "corral's HTTP check expects a status or status range only".into(),
        "tcp-check" | "external-check" => "corral's checks are TCP connect or HTTP".into(),
        "server-template" => "corral has no server templates: write each server".into(),
        "use-server" | "force-persist" | "ignore-persist" | "persist" => "corral picks servers only by balancing and stick tables".into(),
        "http-after-response" | "http-error" => "corral has no such rules; `http-response` rules and `errorfiles` are converted".into(),
        "filter" => "corral has no filters".into(),
        "retry-on" => "corral retries failed connects only (`retries`)".into(),
        "email-alert" => "corral sends no e-mail".into(),
        "tcp-response" => "corral has no `tcp-response` rules".into(),
        "declare" => "corral has no declared captures: use `capture request header`".into(),
        "errorloc" | "errorloc302" | "errorloc303" => "corral serves error files, not redirects: use `errorfile`".into(),
        "errorfiles" => "corral has no `http-errors` sections: write each `errorfile`".into(),
        "source" => "corral does not choose the source address of server connections".into(),
        "rate-limit" => "corral has no session rate limit: track `conn_rate` in a stick table and reject".into(),
        "load-server-state-from-file" => "corral keeps no server-state file".into(),
        "max-keep-alive-queue" | "max-session-srv-conns" => "corral has no such keep-alive tuning".into(),
        "dispatch" | "transparent" => "corral needs servers listed with `server`".into(),
        _ => format!("corral has no equivalent of `{kw}` here"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

/// The parts of a section being converted.
struct Parts {
    role: Role,
    fe: Option<Map>,
    be: Option<Map>,
    fe_acls: AclSet,
    /// Whether the section is http (own `mode`, else the defaults', else tcp).
    http: bool,
    default_server: Vec<String>,
    httpchk: Option<HttpCheck>,
    tls: bind::Tls,
    servers: usize,
    table_index: Option<usize>,
}

impl Parts {
    /// The map for the client side (frontend part, or defaults).
    fn front(&mut self) -> Option<&mut Map> {
        self.fe.as_mut()
    }
    fn back(&mut self) -> Option<&mut Map> {
        self.be.as_mut()
    }
    /// Where a line of a side that is missing leaves its note.
    fn any(&mut self) -> &mut Map {
        match (&mut self.fe, &mut self.be) {
            (Some(m), _) | (None, Some(m)) => m,
            (None, None) => unreachable!("a section has at least one part"),
        }
    }
}

pub(super) fn defaults(c: &mut Converter, s: &Section) -> Map {
    let (fe, _) = convert(c, s, Role::Defaults);
    fe.expect("defaults map")
}

pub(super) fn proxy(c: &mut Converter, s: &Section) -> (Option<Map>, Option<Map>) {
    let role = match s.kind {
        Kind::Frontend => Role::Frontend,
        Kind::Backend => Role::Backend,
        _ => Role::Listen,
    };
    convert(c, s, role)
}

fn convert(c: &mut Converter, s: &Section, role: Role) -> (Option<Map>, Option<Map>) {
    let own_mode = s
        .body
        .iter()
        .rfind(|l| l.word(0) == "mode")
        .map(|l| l.word(1).to_string());
    let mode = own_mode.or_else(|| c.defaults_mode.clone());
    let mut p = Parts {
        role,
        fe: matches!(role, Role::Defaults | Role::Frontend | Role::Listen).then(Map::default),
        be: matches!(role, Role::Backend | Role::Listen).then(Map::default),
        fe_acls: AclSet::new(),
        http: mode.as_deref() == Some("http"),
        default_server: if role == Role::Defaults {
            Vec::new()
        } else {
            c.defaults_server.clone()
        },
        httpchk: if role == Role::Defaults {
            None
        } else {
            c.defaults_httpchk.clone()
        },
        tls: bind::Tls::default(),
        servers: 0,
        table_index: c.tables.iter().position(|t| *t == s.name).filter(|_| {
            role != Role::Defaults && s.body.iter().any(|l| l.word(0) == "stick-table")
        }),
    };
    // The health check applies to every server of the section, wherever
    // `option httpchk` is written in it.
    for l in &s.body {
        if l.word(0) == "option" && l.word(1) == "httpchk" {
            match server::httpchk(&l.texts()[2..]) {
                Ok(h) => {
                    let expect = p.httpchk.as_ref().and_then(|h| h.expect.clone());
                    p.httpchk = Some(HttpCheck { expect, ..h });
                }
                Err(_) => p.httpchk = None,
            }
        }
        if l.word(0) == "http-check"
            && l.word(1) == "expect"
            && l.word(2) == "status"
            && l.words.len() == 4
        {
            let mut h = p.httpchk.clone().unwrap_or_default();
            h.expect = Some(l.word(3).to_string());
            p.httpchk = Some(h);
        }
    }
    if role == Role::Defaults {
        c.defaults_httpchk = p.httpchk.clone();
    }
    let mut backend_acls = AclSet::new();
    for l in &s.body {
        if l.words.is_empty() {
            let text = l.comment.as_deref().unwrap_or("");
            // A comment goes to the part that the next directive lands in;
            // in a listen that is usually the frontend.
            match (&mut p.fe, &mut p.be) {
                (Some(m), _) => m.comment(text),
                (None, Some(m)) => m.comment(text),
                _ => {}
            }
            continue;
        }
        line(c, &mut p, &mut backend_acls, l);
    }
    // A listen's frontend sends to its own servers.
    if role == Role::Listen && p.servers > 0 {
        let fe = p.fe.as_mut().unwrap();
        if !fe.has("default_backend") {
            fe.set(
                "default_backend",
                Node::str(&s.name),
                Some(" this listen's own servers".into()),
            );
        }
    }
    if let Some(fe) = p.fe.as_mut()
        && fe.has("stats")
        && fe.get_in("stats", "uri").is_none()
    {
        // HAProxy's default page address is `/haproxy?stats`; corral
        // matches the path, so `/haproxy?stats` still opens the page.
        fe.put(
            "stats",
            "uri",
            Node::str("/haproxy"),
            Some(" HAProxy's default /haproxy?stats: corral matches the path".into()),
        );
    }
    let tls = std::mem::take(&mut p.tls);
    if let Some(n) = tls.ssl_line.filter(|_| tls.certs.is_empty()) {
        // HAProxy refuses `ssl` without a certificate too.
        let l = s
            .body
            .iter()
            .find(|l| l.number == n)
            .expect("the bind line");
        let fe = p.fe.as_mut().unwrap();
        c.skip_part(
            fe,
            l,
            "`ssl` without `crt`: corral needs the certificates in `tls.certs` (add them, or drop `ssl` from the bind in the YAML)",
        );
    }
    if !tls.certs.is_empty() {
        let fe = p.fe.as_mut().unwrap();
        fe.put(
            "tls",
            "certs",
            Node::FlowSeq(tls.certs.iter().map(|c| Node::str(c)).collect()),
            None,
        );
        if let Some(v) = tls.min.or(c.bind_min_ver.clone()) {
            fe.put("tls", "min_version", Node::str(&v), None);
        }
        if let Some(v) = tls.max {
            fe.put("tls", "max_version", Node::str(&v), None);
        }
        if !tls.alpn.is_empty() {
            fe.put(
                "tls",
                "alpn",
                Node::FlowSeq(tls.alpn.iter().map(|a| Node::str(a)).collect()),
                None,
            );
        }
        if tls.no_tickets || c.bind_no_tickets {
            fe.put("tls", "tls-tickets", Node::bool(false), None);
        }
    }
    let be = match role {
        // A listen without servers (a stats page...) is a frontend only.
        Role::Listen if p.servers == 0 => {
            if let Some(be) = p.be.take() {
                let items = be.finish();
                if items
                    .iter()
                    .any(|i| matches!(i, super::yaml::Item::Entry { .. }))
                {
                    // Settings for servers it does not have: keep them visible.
                    let fe = p.fe.as_mut().unwrap();
                    fe.note(" (server-side settings of this listen, which has no servers, are left out)".into());
                }
                None
            } else {
                None
            }
        }
        _ => p.be,
    };
    (p.fe, be)
}

fn refs<'a>(c: &'a Converter, p: &Parts) -> TableRefs<'a> {
    TableRefs {
        names: &c.tables,
        own: p.table_index,
    }
}

fn line(c: &mut Converter, p: &mut Parts, backend_acls: &mut AclSet, l: &Line) {
    if let Some(var) = &l.env {
        return c.skip(p.any(), l, super::env_reason(var));
    }
    let kw = l.word(0);
    let t = trailing(l);
    let role = p.role;
    let defaults = role == Role::Defaults;
    let has_fe = p.fe.is_some() && !defaults;
    let has_be = p.be.is_some();
    match kw {
        "mode" => match l.word(1) {
            "tcp" | "http" if l.words.len() == 2 => {
                let v = Node::str(l.word(1));
                if let Some(m) = p.front() {
                    m.set("mode", v.clone(), t.clone());
                }
                if let Some(m) = p.back() {
                    m.set("mode", v, if has_fe { None } else { t });
                }
            }
            _ => c.skip(p.any(), l, "corral's modes are `tcp` and `http`"),
        },
        "bind" if has_fe => {
            match bind::convert(l, &mut p.tls) {
                Ok((addrs, dropped)) => {
                    let fe = p.fe.as_mut().unwrap();
                    let n = addrs.len();
                    for (i, a) in addrs.into_iter().enumerate() {
                        fe.push("bind", Node::str(&a), if i + 1 == n { t.clone() } else { None });
                    }
                    if !dropped.is_empty() {
                        c.skip_part(fe, l, dropped.join(", "));
                    }
                }
                Err(e) => c.skip(p.any(), l, e),
            }
        }
        "maxconn" if (has_fe || defaults) && l.words.len() == 2 => {
            p.front().unwrap().set("maxconn", Node::plain(l.word(1)), t)
        }
        "default_backend" if has_fe && l.words.len() == 2 => {
            p.front().unwrap().set("default_backend", Node::str(l.word(1)), t)
        }
        "use_backend" if has_fe => {
            let text = l.rest(1);
            let (name, cond) = crate::acl::split_condition(text);
            let ok = match cond {
                _ if name.contains("%[") => Err(
                    "a backend name computed per request: corral's `use_backend` names a backend".to_string(),
                ),
                _ if name.split_whitespace().count() != 1 => {
                    Err("expected `use_backend NAME [if|unless CONDITION]` (corral has no dynamic backend names)".to_string())
                }
                Some((cond, _)) => crate::acl::Condition::parse(cond, &p.fe_acls)
                    .map(|_| ())
                    .map_err(|e| format!("corral cannot read the condition: {}", e.message)),
                None => Ok(()),
            };
            match ok {
                Ok(()) => p.fe.as_mut().unwrap().push("use_backend", Node::str(text), t),
                Err(e) => c.skip(p.any(), l, e),
            }
        }
        "acl" if !defaults => {
            let name = l.word(1);
            let def = l.rest(2);
            // A listen's ACLs serve its frontend rules (and its stick rules).
            let (set, map) = if has_fe {
                (&mut p.fe_acls, p.fe.as_mut().unwrap())
            } else {
                (&mut *backend_acls, p.be.as_mut().unwrap())
            };
            if let Err(e) = set.define(name, def) {
                return c.skip(map, l, format!("corral cannot read this ACL: {}", e.message));
            }
            if role == Role::Listen {
                backend_acls.define(name, def).ok();
            }
            let map = if has_fe { p.fe.as_mut().unwrap() } else { p.be.as_mut().unwrap() };
            // Several definitions of one name OR together: a list.
            match map.get_in("acl", name) {
                Some(Node::FlowSeq(v)) => v.push(Node::str(def)),
                Some(existing) => {
                    let first = existing.clone();
                    *existing = Node::FlowSeq(vec![first, Node::str(def)]);
                }
                None => map.put("acl", name, Node::str(def), t),
            }
        }
        "http-request" | "http-response" | "redirect" if !defaults => {
            let (key, text) = if kw == "redirect" {
                ("http-request", l.rest(0))
            } else {
                (kw, l.rest(1))
            };
            let side = if key == "http-request" {
                crate::rules::http::Side::Request
            } else {
                crate::rules::http::Side::Response
            };
            if !p.http {
                return c.skip(p.any(), l, "needs `mode http` (HAProxy ignores it in a tcp section too)");
            }
            let acls = if has_fe { &p.fe_acls } else { &*backend_acls };
            let parsed = crate::rules::http::parse_with(text, acls, side, &refs(c, p));
            let map = if has_fe { p.fe.as_mut().unwrap() } else { p.be.as_mut().unwrap() };
            match parsed {
                Ok(_) => map.push(key, Node::str(text), t),
                Err(e) => c.skip(map, l, format!("corral cannot do this rule: {}", e.message)),
            }
        }
        "tcp-request" if has_fe => {
            let text = l.rest(1);
            if p.http && l.word(1) == "inspect-delay" {
                return c.skip(p.any(), l, "in http mode corral waits for the request head by `timeout http-request`; an inspect-delay applies to tcp frontends");
            }
            match crate::rules::tcp::parse(text, &p.fe_acls, &refs(c, p)) {
                Ok(_) => p.fe.as_mut().unwrap().push("tcp-request", Node::str(text), t),
                Err((_, msg)) => c.skip(p.any(), l, format!("corral cannot do this rule: {msg}")),
            }
        }
        "timeout" | "contimeout" | "clitimeout" | "srvtimeout" => {
            let (name, value) = match kw {
                "contimeout" => ("connect", l.word(1)),
                "clitimeout" => ("client", l.word(1)),
                "srvtimeout" => ("server", l.word(1)),
                _ => (l.word(1), l.word(2)),
            };
            let n = if kw == "timeout" { 3 } else { 2 };
            if l.words.len() != n {
                return c.skip(p.any(), l, "expected `timeout NAME VALUE`");
            }
            let fe_side = FE_TIMEOUTS.contains(&name);
            let be_side = BE_TIMEOUTS.contains(&name);
            if !fe_side && !be_side {
                return c.skip(p.any(), l, format!("corral has no `timeout {name}`"));
            }
            let target = if defaults {
                p.front()
            } else if fe_side {
                if has_fe { p.front() } else { None }
            } else {
                p.back()
            };
            match target {
                Some(m) => m.put("timeout", name, Node::plain(value), t),
                None => {
                    let side = if fe_side { "clients" } else { "servers" };
                    let place = if fe_side { "backend" } else { "frontend" };
                    c.skip(p.any(), l, format!("applies to {side}: HAProxy ignores it in a {place} too"))
                }
            }
        }
        "option" => option(c, p, l, l.word(1), &l.texts()[2..]),
        "no" if l.word(1) == "option" => c.skip(
            p.any(),
            l,
            "corral cannot turn off here an option set in `defaults`: remove it from `defaults` and set it where it is wanted",
        ),
        "balance" if has_be || defaults => match l.word(1) {
            "roundrobin" | "leastconn" | "source" | "first" if l.words.len() == 2 => {
                let m = if defaults { p.front() } else { p.back() };
                m.unwrap().set("balance", Node::str(l.word(1)), t)
            }
            "static-rr" => c.skip(p.any(), l, "corral's `roundrobin` (smooth, weighted) is the nearest; `static-rr` differs only when weights change at run time: write `balance roundrobin` if that is fine"),
            other => c.skip(p.any(), l, format!("corral balances by roundrobin, leastconn, source or first, not `{}`", if other.is_empty() { "nothing" } else { l.rest(1) })),
        },
        "retries" if (has_be || defaults) && l.words.len() == 2 => {
            let m = if defaults { p.front() } else { p.back() };
            m.unwrap().set("retries", Node::plain(l.word(1)), t)
        }
        "default-server" if has_be || defaults => {
            let words: Vec<String> = l.texts()[1..].iter().map(|s| s.to_string()).collect();
            if defaults {
                c.defaults_server.extend(words);
            } else {
                p.default_server.extend(words);
            }
            p.any().note(format!(" {}: applied to each server below", l.directive()));
        }
        "server" if has_be => match server::convert(l, &p.default_server, p.httpchk.as_ref()) {
            Ok(srv) => {
                p.servers += 1;
                let be = p.be.as_mut().unwrap();
                be.put("servers", &srv.name, srv.node, t);
                if !srv.dropped.is_empty() {
                    c.skip_part(be, l, srv.dropped.join(", "));
                }
            }
            Err(e) => {
                let be = p.be.as_mut().unwrap();
                c.skip(be, l, e)
            }
        },
        "stick-table" if !defaults => stick_table(c, p, l),
        "stick" if has_be => {
            let text = l.rest(1);
            if l.word(1) == "store-response" {
                return c.skip(p.any(), l, "corral's stick rules are `on`, `match` and `store-request`");
            }
            let acls = if role == Role::Backend { &*backend_acls } else { &p.fe_acls };
            match crate::rules::stick::parse_rule(text, acls, &refs(c, p)) {
                Ok(_) => p.be.as_mut().unwrap().push("stick", Node::str(text), t),
                Err((_, msg)) => c.skip(p.any(), l, format!("corral cannot do this rule: {msg}")),
            }
        }
        "errorfile" if l.words.len() == 3 => {
            let ok = l
                .word(1)
                .parse::<u16>()
                .is_ok_and(|s| crate::model::errors::STATUSES.contains(&s));
            if !ok {
                return c.skip(p.any(), l, format!("corral makes no `{}` responses of its own", l.word(1)));
            }
            let m = if has_fe || defaults { p.front() } else { p.back() };
            m.unwrap().put("errorfiles", l.word(1), Node::str(l.word(2)), t)
        }
        "stats" if has_fe => stats(c, p, l),
        "http-check"
            if (has_be || defaults)
                && l.word(1) == "expect"
                && l.word(2) == "status"
                && l.words.len() == 4 =>
        {
            p.any().note(format!(
                " {}: in each checked server's `check.http.expect`",
                l.directive()
            ))
        }
        "log" if l.word(1) == "global" && l.words.len() == 2 => {
            p.any().note(format!(" {}: corral's default (the `global.log` targets)", l.directive()))
        }
        "log" if has_fe => match crate::config::parse_log_target(l.rest(1)) {
            Ok(_) => p.fe.as_mut().unwrap().push("log", Node::str(l.rest(1)), t),
            Err(e) => c.skip(p.any(), l, format!("corral cannot send logs there: {e}")),
        },
        "no" if l.word(1) == "log" => c.skip(
            p.any(),
            l,
            "corral cannot turn logging off for one section while `global.log` is set: leave `log` out of `global` and set it per frontend",
        ),
        "log" => c.skip(
            p.any(),
            l,
            "corral logs per frontend (or `global.log`): set `log` there",
        ),
        "capture" if has_fe && matches!(l.word(1), "request" | "response") && l.word(2) == "header" => {
            if !p.http {
                return c.skip(p.any(), l, "needs `mode http`");
            }
            p.fe.as_mut().unwrap().push("capture", Node::str(l.rest(1)), t)
        }
        "unique-id-format" | "unique-id-header" if has_fe && l.words.len() == 2 => {
            p.fe.as_mut().unwrap().set(kw, Node::str(l.word(1)), t)
        }
        kw => {
            if let Some(why) = removed(kw) {
                return c.skip(p.any(), l, why);
            }
            let known = [
                "bind", "maxconn", "default_backend", "use_backend", "acl", "http-request",
                "http-response", "redirect", "tcp-request", "balance", "retries",
                "default-server", "server", "stick-table", "stick", "stats", "log", "capture",
                "unique-id-format", "unique-id-header", "errorfile",
            ];
            let why = if known.contains(&kw) {
                let place = match role {
                    Role::Defaults => "corral's `defaults` has no such key: write it in each frontend or backend",
                    Role::Frontend => "it belongs to a backend (HAProxy refuses or ignores it in a frontend)",
                    Role::Backend => "it belongs to a frontend (HAProxy refuses or ignores it in a backend)",
                    Role::Listen => "not in this form",
                };
                if kw == "stats" && role == Role::Backend {
                    "corral serves the stats page from a frontend: move the `stats` lines to one (with `mode http`)".to_string()
                } else {
                    format!("`{kw}` here: {place}")
                }
            } else {
                reason(kw)
            };
            c.skip(p.any(), l, why)
        }
    }
}

fn option(c: &mut Converter, p: &mut Parts, l: &Line, name: &str, args: &[&str]) {
    let t = trailing(l);
    let role = p.role;
    if name == "httpchk" {
        // Read before the servers (see `convert`); here only its note.
        return match server::httpchk(args) {
            Ok(_) => p.any().note(format!(
                " {}: in each checked server's `check.http`",
                l.directive()
            )),
            Err(e) => c.skip(p.any(), l, e),
        };
    }
    let fe_only = FE_OPTIONS.contains(&name);
    let be_only = BE_OPTIONS.contains(&name);
    let both = BOTH_OPTIONS.contains(&name);
    if !(fe_only || be_only || both) {
        let why = match name {
            "tcpka" | "clitcpka" | "srvtcpka" => "corral sets no TCP keep-alive",
            "log-health-checks" => "corral logs every check state change, always",
            "abortonclose" => "corral has no `abortonclose`",
            "ssl-hello-chk" | "mysql-check" | "pgsql-check" | "redis-check" | "smtpchk"
            | "ldap-check" | "tcp-check" => "corral's checks are TCP connect or HTTP",
            "http-buffer-request" => "corral streams request bodies",
            "logasap" => "corral logs when a connection ends",
            "splice-auto" | "splice-request" | "splice-response" => {
                "corral relays with io_uring; it has no splice option"
            }
            "persist" | "prefer-last-server" => {
                "corral picks servers only by balancing and stick tables"
            }
            "originalto" => "corral adds no X-Original-To header",
            _ => "corral has no such option",
        };
        return c.skip(p.any(), l, why);
    }
    if !args.is_empty() && name != "forwardfor" {
        return c.skip(
            p.any(),
            l,
            format!("corral's `option {name}` takes no arguments"),
        );
    }
    let text = l.rest(1);
    match role {
        Role::Defaults => p.front().unwrap().push("option", Node::str(text), t),
        Role::Frontend if be_only => c.skip(
            p.any(),
            l,
            "applies to backends: HAProxy ignores it in a frontend too",
        ),
        Role::Frontend => p.front().unwrap().push("option", Node::str(text), t),
        Role::Backend if fe_only => c.skip(
            p.any(),
            l,
            "applies to frontends: HAProxy ignores it in a backend too",
        ),
        Role::Backend => p.back().unwrap().push("option", Node::str(text), t),
        Role::Listen => {
            if fe_only || both {
                p.front()
                    .unwrap()
                    .push("option", Node::str(text), t.clone());
            }
            if be_only || both {
                p.back().unwrap().push(
                    "option",
                    Node::str(text),
                    if fe_only || both { None } else { t },
                );
            }
        }
    }
}

/// `stick-table type ip size 20k expire 8h peers NAME store a,b`.
fn stick_table(c: &mut Converter, p: &mut Parts, l: &Line) {
    let w = l.texts();
    let mut fields: Vec<(String, Node)> = Vec::new();
    let mut dropped = Vec::new();
    let mut i = 1;
    while i < w.len() {
        let k = w[i];
        let v = w.get(i + 1).copied().unwrap_or("");
        match k {
            "type" => {
                if !["ip", "ipv6", "integer", "string"].contains(&v) {
                    return c.skip(
                        p.any(),
                        l,
                        format!(
                            "corral's tables are keyed by ip, ipv6, integer or string, not `{v}`"
                        ),
                    );
                }
                fields.push(("type".into(), Node::str(v)));
            }
            "len" | "size" | "expire" => fields.push((k.into(), Node::plain(v))),
            "peers" => {
                if c.peers_ok.iter().any(|n| n == v) {
                    fields.push(("peers".into(), Node::str(v)));
                } else {
                    dropped.push(format!("`peers {v}` (no usable peers section `{v}` in this file: the table is not shared)"));
                }
            }
            "store" => fields.push((
                "store".into(),
                Node::FlowSeq(split_store(v).iter().map(|s| Node::str(s)).collect()),
            )),
            "nopurge" => {
                dropped.push(
                    "`nopurge` (corral always evicts the least recently used entry when full)"
                        .into(),
                );
                i += 1;
                continue;
            }
            "recv-only" => {
                dropped.push("`recv-only` (corral's peers both send and receive)".into());
                i += 1;
                continue;
            }
            other => dropped.push(format!(
                "`{other} {v}` (corral's tables have no such setting)"
            )),
        }
        i += 2;
    }
    let t = trailing(l);
    let m = match (&mut p.be, &mut p.fe) {
        (Some(m), _) | (None, Some(m)) => m,
        (None, None) => unreachable!("a section has at least one part"),
    };
    m.set("stick-table", Node::FlowMap(fields), t);
    if !dropped.is_empty() {
        c.skip_part(m, l, dropped.join(", "));
    }
}

/// `http_req_rate(10s),conn_cur` split at the commas outside parentheses.
fn split_store(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in v.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn stats(c: &mut Converter, p: &mut Parts, l: &Line) {
    let t = trailing(l);
    if !p.http {
        return c.skip(
            p.any(),
            l,
            "corral's stats page needs `mode http` (HAProxy's does too)",
        );
    }
    let w = l.texts();
    let fe = p.fe.as_mut().unwrap();
    match (w.get(1).copied().unwrap_or(""), w.len()) {
        // The block itself; its `uri` is HAProxy's default unless a
        // `stats uri` line says otherwise (see `convert`).
        ("enable", 2) => fe.open("stats", t),
        ("uri", 3) => match w[2].split_once('?') {
            // HAProxy matches the start of the whole URI, corral the path.
            Some((path, _)) if path.starts_with('/') => fe.put(
                "stats",
                "uri",
                Node::str(path),
                Some(format!(
                    " HAProxy: {}; corral matches the path, so {} still opens the page",
                    w[2], w[2]
                )),
            ),
            _ => fe.put("stats", "uri", Node::str(w[2]), t),
        },
        ("refresh", 3) => fe.put("stats", "refresh", Node::plain(w[2]), t),
        ("hide-version", 2) => fe.put("stats", "hide-version", Node::bool(true), t),
        ("auth", 3) => match fe.get_in("stats", "auth") {
            Some(Node::FlowSeq(v)) => v.push(Node::str(w[2])),
            _ => fe.put("stats", "auth", Node::FlowSeq(vec![Node::str(w[2])]), t),
        },
        ("admin", 4) if w[2] == "if" && w[3] == "TRUE" => fe.put("stats", "admin", Node::bool(true), t),
        ("admin", _) => c.skip(fe, l, "corral's stats admin is on or off (`admin: true` with `auth`), with no condition other than `if TRUE`"),
        ("realm", _) => c.skip(fe, l, "corral's stats page uses a fixed realm"),
        ("show-legends" | "show-node" | "show-desc" | "show-modules", _) => {
            c.skip(fe, l, "corral's stats page has no such display option")
        }
        ("scope", _) => c.skip(fe, l, "corral's stats page always shows every section"),
        _ => c.skip(fe, l, "corral's stats page has no such setting"),
    }
}
