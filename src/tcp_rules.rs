//! `tcp-request` rules: decisions on a connection before any data is read
//! (`tcp-request connection accept|reject|track-scN|sc-inc-gpc0 [if|unless
//! cond]`), and their evaluation context.
//!
//! `tcp-request content` rules are accepted with the same actions; until
//! payload inspection exists (`inspect-delay`, TLS hello parsing) they run
//! right after the connection rules, as HAProxy runs them when no delay is
//! set.

use crate::acl::{self, AclSet, Condition};
use crate::stick::rules::{Problem, RuleParts, StickAction, TableRefs, parse_action};
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connection,
    Content,
}

#[derive(Debug, Clone)]
pub enum TcpAction {
    /// Stop evaluating rules of this phase; keep the connection.
    Accept,
    /// Close the connection at once (nothing is logged, as HAProxy's
    /// `tcp-request connection reject`).
    Reject,
    Stick(StickAction),
}

#[derive(Debug, Clone)]
pub struct TcpRule {
    pub phase: Phase,
    pub action: TcpAction,
    pub cond: Option<Condition>,
}

/// Parses `connection|content <action> [if|unless <condition>]`.
pub fn parse(line: &str, acls: &AclSet, tables: &TableRefs) -> Result<TcpRule, Problem> {
    let RuleParts { words, end, cond } = RuleParts::split(line, acls)?;
    let Some((phase_word, phase_at)) = words.first() else {
        return Err((0, "expected `connection` or `content` and an action, e.g. `connection reject if { src 10.0.0.0/8 }`".into()));
    };
    let phase = match phase_word.as_str() {
        "connection" => Phase::Connection,
        "content" => Phase::Content,
        "inspect-delay" | "session" => {
            return Err((
                *phase_at,
                format!(
                    "`tcp-request {phase_word}` is not supported yet (supported: connection, content)"
                ),
            ));
        }
        other => {
            return Err((
                *phase_at,
                format!("unknown tcp-request phase `{other}` (expected connection or content)"),
            ));
        }
    };
    let rest = &words[1..];
    let Some((name, name_at)) = rest.first() else {
        return Err((
            end,
            format!("`{phase_word}` needs an action: accept, reject, track-sc0/1/2, sc-inc-gpc0"),
        ));
    };
    let action = match name.as_str() {
        "accept" | "reject" => {
            if let Some((extra, at)) = rest.get(1) {
                return Err((
                    *at,
                    format!(
                        "unexpected `{extra}` after `{name}` (a condition starts with `if` or `unless`)"
                    ),
                ));
            }
            if name == "accept" {
                TcpAction::Accept
            } else {
                TcpAction::Reject
            }
        }
        _ => match parse_action(rest, end, tables)? {
            Some(a) => TcpAction::Stick(a),
            None => {
                return Err((
                    *name_at,
                    format!(
                        "unknown tcp-request action `{name}` (valid: accept, reject, track-sc0, track-sc1, track-sc2, sc-inc-gpc0)"
                    ),
                ));
            }
        },
    };
    Ok(TcpRule {
        phase,
        action,
        cond,
    })
}

/// Runs frontend `fe`'s `tcp-request` rules on a new connection from
/// `src`; false when a rule rejects it.
pub fn run(
    w: &crate::engine::worker::Worker,
    fe: usize,
    tracks: &std::cell::RefCell<crate::stick::Tracks>,
    src: SocketAddr,
    dst: SocketAddr,
) -> bool {
    let cfg = &w.config.frontends[fe];
    let env = crate::stick::Env {
        store: &w.stick,
        defs: &w.config.tables,
        tracks,
        own: cfg.table,
    };
    let ctx = ConnCtx {
        src,
        dst,
        stick: Some(env),
        tls: None,
    };
    for phase in [Phase::Connection, Phase::Content] {
        for rule in cfg.tcp_rules.iter().filter(|r| r.phase == phase) {
            if rule.cond.as_ref().is_some_and(|c| !c.eval(&ctx)) {
                continue;
            }
            match &rule.action {
                TcpAction::Accept => break,
                TcpAction::Reject => return false,
                TcpAction::Stick(a) => env.act(a, &ctx, true),
            }
        }
    }
    true
}

/// A connection as ACL fetches see it before any request: addresses and
/// stick counters; request fetches find nothing.
pub struct ConnCtx<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub stick: Option<crate::stick::Env<'a>>,
    /// The client connection's TLS session, when corral terminated it.
    pub tls: Option<&'a rustls::ServerConnection>,
}

impl acl::Context for ConnCtx<'_> {
    fn src(&self) -> SocketAddr {
        self.src
    }
    fn dst(&self) -> SocketAddr {
        self.dst
    }
    fn method(&self) -> &[u8] {
        b""
    }
    fn url(&self) -> &[u8] {
        b""
    }
    fn path(&self) -> &[u8] {
        b""
    }
    fn query(&self) -> Option<&[u8]> {
        None
    }
    fn version(&self) -> &[u8] {
        b""
    }
    fn req_header(&self, _: &[u8], _: &mut dyn FnMut(&[u8])) {}
    fn res_header(&self, _: &[u8], _: &mut dyn FnMut(&[u8])) {}
    fn status(&self) -> Option<u16> {
        None
    }
    fn unique_id(&self) -> &[u8] {
        b""
    }
    fn stick_counter(&self, q: &crate::stick::Query) -> Option<u64> {
        self.stick.as_ref()?.read(q, self.src.ip())
    }
    fn tls(&self) -> Option<&rustls::ServerConnection> {
        self.tls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_errors_point_at_the_word() {
        let names = vec!["web".to_string()];
        let refs = TableRefs {
            names: &names,
            own: Some(0),
        };
        let acls = AclSet::new();
        let r = parse("connection reject if { sc0_conn_cur gt 20 }", &acls, &refs).unwrap();
        assert!(matches!(r.action, TcpAction::Reject));
        assert_eq!(r.phase, Phase::Connection);
        let r = parse("connection track-sc0 src", &acls, &refs).unwrap();
        assert!(matches!(
            r.action,
            TcpAction::Stick(StickAction::Track { .. })
        ));
        let r = parse("content accept", &acls, &refs).unwrap();
        assert!(matches!(r.action, TcpAction::Accept));
        let e = parse("connection rejekt", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 11);
        assert!(e.1.contains("rejekt"));
        let e = parse("conection reject", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 0);
        let e = parse("inspect-delay 5s", &acls, &refs).unwrap_err();
        assert!(e.1.contains("not supported yet"));
        let e = parse("connection reject if { sc0_conn_kur gt 1 }", &acls, &refs).unwrap_err();
        assert!(e.1.contains("sc0_conn_kur"), "{}", e.1);
    }
}
