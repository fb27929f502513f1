//! Running `tcp-request` rules (parsed by `rules::tcp`) on a connection,
//! and holding its first bytes for `tcp-request content` rules.
//!
//! Without an inspect-delay, content rules run right after the connection
//! rules, as HAProxy runs them when no delay is set. With one (tcp
//! frontends), [`inspect`] holds the client's first bytes until they make
//! a complete TLS ClientHello, are known not to be TLS, fill the buffer,
//! end, or the delay passes; then the content rules and `use_backend` run
//! once over what arrived (`req.len`, `req.ssl_sni`...). Unlike HAProxy,
//! which re-evaluates the rules on every new chunk, corral waits for one of
//! those events first: its fetches only read the hello, so re-evaluating
//! earlier could only find less.

use crate::acl::{self, Payload};
use crate::base::client_hello::{Hello, HelloParser, Parsed};
use crate::observe::termination::{self, Cause, Termination};
use crate::rules::tcp::{Phase, TcpAction};
use crate::worker::Worker;
use futures_lite::io::AsyncReadExt;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Runs frontend `fe`'s `tcp-request` rules on a new connection from
/// `src`: the connection rules, and the content rules too when the
/// frontend has no inspect-delay (else [`inspect`] runs them later). False
/// when a rule rejects it.
pub(crate) fn run(
    w: &Worker,
    fe: usize,
    tracks: &RefCell<crate::stick::Tracks>,
    src: SocketAddr,
    dst: SocketAddr,
) -> bool {
    let cfg = &w.config.frontends[fe];
    let ctx = ConnCtx {
        src,
        dst,
        stick: Some(env(w, fe, tracks)),
        payload: None,
        tls: None,
    };
    run_phase(w, fe, Phase::Connection, &ctx)
        && (cfg.inspect_delay.is_some() || run_phase(w, fe, Phase::Content, &ctx))
}

/// Runs the rules of one phase in order; false when one rejects.
fn run_phase(w: &Worker, fe: usize, phase: Phase, ctx: &ConnCtx) -> bool {
    let rules = w.config.frontends[fe].tcp_rules.iter();
    for rule in rules.filter(|r| r.phase == phase) {
        if rule.cond.as_ref().is_some_and(|c| !c.eval(ctx)) {
            continue;
        }
        match &rule.action {
            TcpAction::Accept => break,
            TcpAction::Reject => return false,
            TcpAction::Stick(a) => {
                if let Some(env) = &ctx.stick {
                    env.act(a, ctx, true);
                }
            }
        }
    }
    true
}

/// The stick tables as frontend `fe`'s rules see them.
fn env<'a>(
    w: &'a Worker,
    fe: usize,
    tracks: &'a RefCell<crate::stick::Tracks>,
) -> crate::stick::Env<'a> {
    crate::stick::Env {
        store: &w.stick,
        defs: &w.config.tables,
        tracks,
        own: w.config.frontends[fe].table,
    }
}

/// The backend for a connection of frontend `fe` that content inspection
/// did not hold: the first `use_backend` whose condition holds on its
/// addresses and counters, else `default_backend`.
pub(crate) fn route(
    w: &Worker,
    fe: usize,
    tracks: &RefCell<crate::stick::Tracks>,
    (src, dst): (SocketAddr, SocketAddr),
    tls: Option<&rustls::ServerConnection>,
) -> Option<usize> {
    let cfg = &w.config.frontends[fe];
    if cfg.use_backend.is_empty() {
        return cfg.default_backend;
    }
    let ctx = ConnCtx {
        src,
        dst,
        stick: Some(env(w, fe, tracks)),
        payload: None,
        tls,
    };
    cfg.route(&ctx)
}

/// A connection content inspection let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Passed {
    /// None: no `use_backend` matched and there is no `default_backend`.
    pub backend: Option<usize>,
    /// The first `held` bytes of the buffer were read from the client;
    /// they go to the server first.
    pub held: usize,
}

/// Why content inspection closed a connection (`held`: bytes it had read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A content rule rejected it.
    Reject { held: usize },
    /// It began as a TLS handshake but is malformed or too large.
    BadHello { held: usize, reason: &'static str },
    /// The client reset the connection (or reading failed) meanwhile.
    Aborted { held: usize },
}

impl Refused {
    pub(crate) fn held(self) -> usize {
        match self {
            Refused::Reject { held }
            | Refused::BadHello { held, .. }
            | Refused::Aborted { held } => held,
        }
    }

    /// HAProxy's termination state: `PR` (refused by the proxy while the
    /// request came in), `CR` (the client gave up meanwhile).
    pub(crate) fn termination(self) -> Termination {
        match self {
            Refused::Reject { .. } | Refused::BadHello { .. } => {
                Termination::new(Cause::Proxy, termination::Phase::Request)
            }
            Refused::Aborted { .. } => Termination::new(Cause::Client, termination::Phase::Request),
        }
    }
}

/// Content inspection of a new connection of tcp frontend `fe`: reads the
/// client's first bytes into `buf` (at most its length) until they hold a
/// complete TLS ClientHello, are known not to be TLS, fill `buf`, end, or
/// `delay` passes; then runs the content rules and `use_backend` once.
/// `msg` (as long as `buf`) receives the reassembled hello.
#[allow(clippy::too_many_arguments)] // the connection, its tables, its buffers
pub(crate) async fn inspect(
    w: &Worker,
    fe: usize,
    client: &mut crate::io::stream::Stream,
    src: SocketAddr,
    dst: SocketAddr,
    tracks: &RefCell<crate::stick::Tracks>,
    delay: Duration,
    (buf, msg): (&mut [u8], &mut [u8]),
) -> Result<Passed, Refused> {
    let deadline = Instant::now() + delay;
    let mut parser = HelloParser::new(buf.len());
    let mut held = 0;
    let mut hello: Option<Hello> = None;
    loop {
        match parser.feed(&buf[..held], msg) {
            Parsed::NeedMore => {}
            Parsed::Hello(h) => {
                hello = Some(h);
                break;
            }
            Parsed::NotTls => break,
            Parsed::Malformed(reason) => return Err(Refused::BadHello { held, reason }),
            Parsed::TooLarge => {
                return Err(Refused::BadHello {
                    held,
                    reason: "ClientHello larger than tune.bufsize",
                });
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || held == buf.len() {
            break;
        }
        // The stream's own timeout, not a timer raced against the read
        // (see NOTES-glommio: a dropped read can leave its timer armed).
        let _ = client
            .tcp()
            .set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match client.read(&mut buf[held..]).await {
            Ok(0) => break, // end of stream: nothing more will come
            Ok(n) => held += n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
            Err(_) => return Err(Refused::Aborted { held }),
        }
    }
    let ctx = ConnCtx {
        src,
        dst,
        stick: Some(env(w, fe, tracks)),
        payload: Some(Payload {
            len: held,
            hello: hello.map(|h| (h, &*msg)),
        }),
        tls: client.tls_in(),
    };
    if !run_phase(w, fe, Phase::Content, &ctx) {
        return Err(Refused::Reject { held });
    }
    Ok(Passed {
        backend: w.config.frontends[fe].route(&ctx),
        held,
    })
}

/// A connection as ACL fetches see it before any request: addresses,
/// stick counters and, during content inspection, the bytes held;
/// request fetches find nothing.
pub(crate) struct ConnCtx<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub stick: Option<crate::stick::Env<'a>>,
    /// What content inspection read (None outside it).
    pub payload: Option<Payload<'a>>,
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
    fn stick_counter(&self, q: &crate::model::table::Query) -> Option<u64> {
        self.stick.as_ref()?.read(q, self.src.ip())
    }
    fn tls(&self) -> Option<&rustls::ServerConnection> {
        self.tls
    }
    fn payload(&self) -> Option<Payload<'_>> {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::AclSet;
    use crate::rules::stick::{StickAction, TableRefs};
    use crate::rules::tcp::*;

    #[test]
    fn rules_parse_and_errors_point_at_the_word() {
        let names = vec!["web".to_string()];
        let refs = TableRefs {
            names: &names,
            own: Some(0),
        };
        let acls = AclSet::new();
        let rule = |line: &str| match parse(line, &acls, &refs) {
            Ok(TcpRequest::Rule(r)) => r,
            other => panic!("{line}: {other:?}"),
        };
        let r = rule("connection reject if { sc0_conn_cur gt 20 }");
        assert!(matches!(r.action, TcpAction::Reject));
        assert_eq!(r.phase, Phase::Connection);
        let r = rule("connection track-sc0 src");
        assert!(matches!(
            r.action,
            TcpAction::Stick(StickAction::Track { .. })
        ));
        let r = rule("content accept if { req.ssl_hello_type 1 }");
        assert!(matches!(r.action, TcpAction::Accept));
        assert_eq!(r.phase, Phase::Content);
        let e = parse("connection rejekt", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 11);
        assert!(e.1.contains("rejekt"));
        let e = parse("conection reject", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 0);
        let e = parse("session accept", &acls, &refs).unwrap_err();
        assert!(e.1.contains("not supported yet"));
        let e = parse("connection reject if { sc0_conn_kur gt 1 }", &acls, &refs).unwrap_err();
        assert!(e.1.contains("sc0_conn_kur"), "{}", e.1);
    }

    #[test]
    fn inspect_delay_takes_one_duration() {
        let refs = TableRefs {
            names: &[],
            own: None,
        };
        let acls = AclSet::new();
        let delay = |line: &str| match parse(line, &acls, &refs) {
            Ok(TcpRequest::InspectDelay(d)) => d,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(delay("inspect-delay 5s"), Duration::from_secs(5));
        assert_eq!(delay("inspect-delay 250"), Duration::from_millis(250));
        let e = parse("inspect-delay 5x", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 14);
        assert!(e.1.contains("unknown duration unit `x`"), "{}", e.1);
        let e = parse("inspect-delay", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 13);
        assert!(e.1.contains("needs a duration"), "{}", e.1);
        let e = parse("inspect-delay 5s 10s", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 17);
        let e = parse("inspect-delay 5s if TRUE", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 17);
        assert!(e.1.contains("takes no condition"), "{}", e.1);
    }
}
