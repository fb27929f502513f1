//! An HTTP/1.1 client connection, request after request:
//!
//! 1. downstream: read and check the request head (`timeout http-request`,
//!    `timeout http-keep-alive` between requests);
//! 2. frontend rules, routing (`use_backend`), backend rules;
//! 3. upstream: an idle pooled server connection or a new one (balance,
//!    queue, connect, retries);
//! 4. the request head (one write) and body (streamed, never buffered
//!    whole);
//! 5. the response head (1xx handled, `101` switches to a tunnel), response
//!    rules, the response head to the client (one write) and its body;
//! 6. one httplog line; the server connection back to the pool when it
//!    can be reused; the next request or close.
//!
//! Steps 3 to 6 are `proxy()`'s phases, each its own method: `send_request`,
//! `read_final_head`, `switch_protocols` or `respond`, `recycle`. A phase
//! that fails returns a `Stop` (a typed termination state and what the
//! client is sent), answered in one place.

use crate::balance::backend::Lease;
use crate::config::{ConnMode, ForwardFor, Frontend, HttpFrontend};
use crate::io::conn::{Conn, Deadline, IoFail, until};
use crate::io::relay;
use crate::io::stream::Stream;
use crate::model::errors;
use crate::observe::log::HttpLog;
use crate::observe::termination::{Cause, Phase, Termination};
use crate::proxy::http::body::{BodyCopy, BodyFail};
use crate::proxy::http::chunked::Chunked;
use crate::proxy::http::context::ReqCtx;
use crate::proxy::http::head::{Framing, Head, HeadError, Parsed, idempotent};
use crate::proxy::http::rules::{self, Env, Outcome, Reply};
use crate::proxy::upstream::persist::{self, Sticky};
use crate::proxy::upstream::{self, ConnectReport};
use crate::rules::http::Rule;
use crate::stick::Tracks;
use crate::worker::Worker;
use crate::worker::guard::ConnGuard;
use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// How long a request with `Expect: 100-continue` waits for the server's
/// interim answer before its body is sent anyway (as curl does).
const EXPECT_WAIT: Duration = Duration::from_secs(1);

/// How long, after a final answer that came before the whole request body,
/// the rest of that body is read and dropped before the connection closes
/// (so the close does not reset the answer away, RFC 9112 §9.6).
const LINGER: Duration = Duration::from_secs(2);

/// How long a keep-alive connection may wait for its next request inside
/// its request-processing future; after that the future is freed and the
/// connection waits in its small task (hundreds of bytes instead of
/// kilobytes). Busy connections, whose next request comes within
/// microseconds, never go idle.
const PARK_AFTER: Duration = Duration::from_millis(100);

/// About what a session frees when its connection goes idle (its boxed
/// future, its heads).
const PARKED_FREES: usize = 6 << 10;

/// The first bytes of a request that woke an idle connection.
struct Resume {
    first: [u8; 64],
    len: usize,
    /// Requests served so far (0: the first is still to come).
    served: u32,
    /// Known after the first session (saves a system call).
    local: Option<SocketAddr>,
    /// When the connection was accepted: the first request's deadline.
    accepted: Instant,
}

/// A keep-alive connection between two requests.
struct Idle {
    stream: Stream,
    local: SocketAddr,
    served: u32,
    /// When it is closed if no request comes.
    deadline: Instant,
}

/// Serves a client connection of frontend `fe` in http mode: the
/// connection's own task, small and allocated once at accept. While
/// requests flow it runs the request-processing future, boxed (one box per
/// busy period, however many requests it serves); while the connection
/// idles it holds only the socket and waits for the next request's first
/// bytes, so thousands of idle connections stay cheap.
///
/// (A plain function returning an `async move` block, not an `async fn`:
/// an `async fn` keeps its arguments twice in its state.)
pub(crate) fn serve(
    w: Rc<Worker>,
    fe: usize,
    stream: Stream,
    peer: SocketAddr,
    guard: ConnGuard,
) -> impl std::future::Future<Output = ()> {
    let mut stream = Some(stream);
    let mut resume = Resume {
        first: [0; 64],
        len: 0,
        served: 0,
        local: None,
        accepted: Instant::now(),
    };
    // Every value lives in the block's captures (no copies in locals held
    // across an await), which keeps the idle state small.
    async move {
        let _guard = &guard;
        loop {
            let busy = {
                let Some(s) = stream.take() else { return };
                Box::pin(session(&w, fe, s, peer, &resume, &guard.tracks, guard.sess))
            };
            let Some(Idle {
                stream: s,
                local,
                served,
                deadline,
            }) = busy.await
            else {
                return;
            };
            w.bufs.note_freed(PARKED_FREES);
            resume.served = served;
            resume.local = Some(local);
            let s = stream.insert(s);
            let got = until(
                Deadline::At(deadline),
                futures_lite::AsyncReadExt::read(s, &mut resume.first),
            )
            .await;
            resume.len = match got {
                Ok(Ok(len)) if len > 0 => len,
                // Before a first request, its time running out is answered
                // (408) by a session that finds its deadline passed.
                Err(IoFail::Timeout) if served == 0 => 0,
                // Otherwise the keep-alive time ran out or the client left:
                // the connection closes here, silently.
                _ => return,
            };
        }
    }
}

/// One busy period of a connection: requests until it goes idle (then
/// `Some`) or closes (`None`).
async fn session(
    w: &Rc<Worker>,
    fe: usize,
    stream: Stream,
    peer: SocketAddr,
    resume: &Resume,
    tracks: &RefCell<Tracks>,
    sess: u32,
) -> Option<Idle> {
    let local = match resume.local {
        Some(l) => l,
        None => {
            let _ = stream.tcp().set_nodelay(true);
            stream.tcp().local_addr().unwrap_or(peer)
        }
    };
    let cfg = &w.config.frontends[fe];
    let http = cfg.http.as_ref()?;
    let client = Conn::with_data(stream, w.bufs.take(), &resume.first[..resume.len]);
    let s = Session {
        w,
        fe,
        cfg,
        http,
        client,
        peer,
        local,
        req: Head::default(),
        res: Head::default(),
        out: Vec::new(),
        scratch: Vec::new(),
        uid: Vec::with_capacity(32),
        captured_req: vec![Vec::new(); http.capture_request.len()],
        captured_res: vec![Vec::new(); http.capture_response.len()],
        served: resume.served,
        accepted: resume.accepted,
        logging: !w.frontends[fe].log.is_empty() || w.stats_wanted,
        received_before: Cell::new(0),
        tracks,
        sess,
        stick_on: !w.config.tables.is_empty(),
    };
    s.run().await
}

struct Session<'w> {
    w: &'w Worker,
    fe: usize,
    cfg: &'w Frontend,
    http: &'w HttpFrontend,
    client: Conn,
    peer: SocketAddr,
    local: SocketAddr,
    /// The current request and response heads (reused).
    req: Head,
    res: Head,
    /// Heads being written out.
    out: Vec<u8>,
    /// Rendered rule values.
    scratch: Vec<u8>,
    /// The current request's unique id.
    uid: Vec<u8>,
    captured_req: Vec<Vec<u8>>,
    captured_res: Vec<Vec<u8>>,
    /// Requests served on this connection.
    served: u32,
    accepted: Instant,
    /// The frontend logs: only then are the log's timings (date, head,
    /// response) read from the clock.
    logging: bool,
    /// Stick counters the connection tracks.
    tracks: &'w RefCell<Tracks>,
    /// Bytes received from the client before the current request.
    received_before: Cell<u64>,
    /// The connection's slot in the worker's open connections.
    sess: u32,
    /// The configuration has stick tables (else no stick work at all).
    stick_on: bool,
}

/// What one request's log line says.
struct Txn {
    start: Instant,
    date: SystemTime,
    head: Option<Duration>,
    backend: Option<usize>,
    report: ConnectReport,
    /// A server connection was used (the server name is logged).
    server_used: bool,
    response: Option<Duration>,
    status: u16,
    bytes_out: u64,
    termination: Termination,
    parsed: bool,
    /// The request is counted in its backend's connections until logged.
    counted: Option<Rc<crate::balance::backend::BackendState>>,
    /// The server slot, held until logged (so the log counts it).
    lease: Option<Lease>,
}

impl Drop for Txn {
    fn drop(&mut self) {
        if let Some(b) = self.counted.take() {
            b.conns.set(b.conns.get() - 1);
        }
    }
}

impl Txn {
    /// `start` is replaced once the request begins; until then, the
    /// connection's accept time stands in (no clock read per request).
    fn new(start: Instant) -> Txn {
        Txn {
            start,
            date: SystemTime::UNIX_EPOCH,
            head: None,
            backend: None,
            report: ConnectReport::default(),
            server_used: false,
            response: None,
            status: 0,
            bytes_out: 0,
            termination: Termination::NORMAL,
            parsed: false,
            counted: None,
            lease: None,
        }
    }
}

/// The outcome of reading a request head.
enum Got {
    Request,
    /// The client went away (or stayed idle); `log` when it had begun a
    /// request.
    Closed {
        log: bool,
    },
    /// Refused with this status.
    Refused(u16, Termination),
    /// Idle for `PARK_AFTER` between requests: hand the connection to a
    /// small idle task until its keep-alive deadline.
    Park(Instant),
}

/// What follows a request.
enum Next {
    KeepAlive,
    Close,
    /// A protocol switch (WebSocket): relay bytes both ways.
    Tunnel(Conn, Lease, Duration),
}

/// How sending a request body ended.
enum Upload {
    /// The body was sent (or failed on one side).
    Sent(Result<(), BodyFail>),
    /// A final response head (in `res`, consumed) came first.
    Answered,
    /// The server closed, failed, or sent what is not a response head
    /// before the body was sent: what it sent is read next.
    ServerStopped,
    /// The server's answer in the middle of the body could not be read.
    Failed(ResFail),
    /// Passing an interim answer on, the client was gone.
    ClientGone,
}

/// Why no usable response head arrived.
enum ResFail {
    Timeout,
    /// Closed before a complete head; `nothing` when not a byte came.
    Closed {
        nothing: bool,
    },
    Invalid,
}

impl ResFail {
    /// How an exchange ends when no usable response head came: 504 `sH`,
    /// 502 `SH` or 502 `PH`.
    fn stop(self) -> Stop {
        match self {
            ResFail::Timeout => {
                Stop::error(504, Termination::new(Cause::ServerTimeout, Phase::Headers))
            }
            ResFail::Closed { .. } => {
                Stop::error(502, Termination::new(Cause::Server, Phase::Headers))
            }
            ResFail::Invalid => Stop::error(502, Termination::new(Cause::Proxy, Phase::Headers)),
        }
    }
}

/// `PR`: refused by the proxy while the request came in.
const PROXY_REQUEST: Termination = Termination::new(Cause::Proxy, Phase::Request);

/// `LR`: answered by corral itself (a rule, the stats page).
const LOCAL_REPLY: Termination = Termination::new(Cause::Local, Phase::Request);

/// A request being proxied to backend `b`: what is decided once, before
/// the first attempt on a server connection.
struct Exchange {
    b: usize,
    mode: ConnMode,
    /// The client asks for a protocol switch (`Upgrade`).
    upgrade: bool,
    head_request: bool,
    has_body: bool,
    /// A request without a body whose pooled connection turns out dead
    /// is sent again on a new connection: the server never saw it, or,
    /// for an idempotent method, seeing it twice is harmless.
    resendable: bool,
    /// An idle pooled connection is tried first.
    reuse: bool,
    /// The request body's copy to the server.
    upload: BodyCopy,
    sticky: Sticky,
}

/// How sending the request (phase 1) ended.
enum Sending {
    Sent(Sent),
    /// The pooled connection taken failed the head write (the server
    /// had closed it): the request goes again on a new one.
    Retry,
    /// It failed; `held` is the slot of the server connection, closed
    /// already, given back once the failure is answered.
    Failed(Stop, Option<Lease>),
}

/// A request sent to a server.
struct Sent {
    server: Conn,
    lease: Lease,
    /// The connection came from the idle pool.
    reused: bool,
    /// When the request head went out: the response head is due within
    /// `timeout server` of it.
    at: Instant,
    /// A response head is already in `res`, read while the body went out.
    have_head: bool,
    /// The body was not (wholly) sent: the server answered first or
    /// stopped reading.
    body_skipped: bool,
}

/// How sending the request body went.
#[derive(Default)]
struct BodySent {
    have_head: bool,
    skipped: bool,
}

/// What reading the final response head (phase 2) found.
enum FinalHead {
    /// It is in `res`.
    Read,
    /// The pooled connection was closed by the server before a byte came:
    /// the request goes again on a new one.
    PoolClosed,
}

/// A response sent to the client (phase 4).
struct Responded {
    /// How its body went.
    body: Result<(), Termination>,
    /// The client connection closes after it.
    client_close: bool,
}

/// Why an exchange ends early: its termination state and what the client
/// is sent.
struct Stop {
    termination: Termination,
    answer: Answer,
}

enum Answer {
    /// Nothing: the client is gone, or the response has begun.
    None,
    /// The error page for this status.
    Error(u16),
    /// What a response rule decided.
    Rule(Reply),
}

impl Stop {
    fn close(termination: Termination) -> Stop {
        Stop {
            termination,
            answer: Answer::None,
        }
    }

    fn error(status: u16, termination: Termination) -> Stop {
        Stop {
            termination,
            answer: Answer::Error(status),
        }
    }
}

impl<'w> Session<'w> {
    async fn run(mut self) -> Option<Idle> {
        loop {
            let mut txn = Txn::new(self.accepted);
            let first = self.served == 0;
            match self.read_request(first, &mut txn).await {
                Got::Request => {}
                Got::Closed { log } => {
                    if log && !self.cfg.dontlognull {
                        txn.termination = Termination::new(Cause::Client, Phase::Request);
                        self.log(&txn);
                    }
                    break;
                }
                Got::Refused(status, termination) => {
                    txn.termination = termination;
                    self.send_error(status, None, &mut txn).await;
                    self.log(&txn);
                    break;
                }
                Got::Park(deadline) => {
                    let (stream, buf, _) = self.client.into_parts();
                    self.w.bufs.give(buf);
                    return Some(Idle {
                        stream,
                        local: self.local,
                        served: self.served,
                        deadline,
                    });
                }
            }
            self.served += 1;
            let next = self.handle(&mut txn).await;
            self.log(&txn);
            if self.stick_on {
                self.end_request(&txn);
            }
            match next {
                Next::KeepAlive => continue,
                Next::Close => break,
                Next::Tunnel(server, lease, timeout) => {
                    // Boxed: a rare path, kept out of every session's future.
                    Box::pin(self.tunnel(server, lease, timeout)).await;
                    return None;
                }
            }
        }
        let (_, buf, _) = self.client.into_parts();
        self.w.bufs.give(buf);
        None
    }

    // ---- downstream: the request head -----------------------------------

    async fn read_request(&mut self, first: bool, txn: &mut Txn) -> Got {
        let http = self.http;
        // The first request is timed from the accept; later ones may idle
        // for `http-keep-alive`, then have `http-request` once begun.
        let now = Instant::now();
        let mut deadline = if first {
            self.accepted + http.timeout_request
        } else {
            now + http.timeout_keep_alive
        };
        let mut begun = false;
        // A request that does not come soon idles the connection.
        let park_at = self
            .client
            .data()
            .is_empty()
            .then(|| now + PARK_AFTER)
            .filter(|p| *p < deadline);
        loop {
            if !self.client.data().is_empty() {
                if !begun {
                    begun = true;
                    txn.start = Instant::now();
                    if self.logging {
                        txn.date = SystemTime::now();
                    }
                    if !first {
                        deadline = txn.start + http.timeout_request;
                    }
                }
                match self.req.parse_request(self.client.data()) {
                    Ok(Parsed::Complete(n)) => {
                        self.client.consume(n);
                        if self.logging {
                            txn.head = Some(txn.start.elapsed());
                        }
                        txn.parsed = true;
                        return Got::Request;
                    }
                    Ok(Parsed::Partial) => {
                        if self.client.is_full() {
                            let line_done = self.client.data().windows(2).any(|w| w == b"\r\n");
                            return Got::Refused(if line_done { 431 } else { 414 }, PROXY_REQUEST);
                        }
                    }
                    Err(e) => {
                        let status = match e {
                            HeadError::TooLarge => 431,
                            HeadError::Invalid(_) => 400,
                            HeadError::NotImplemented(_) => 501,
                        };
                        return Got::Refused(status, PROXY_REQUEST);
                    }
                }
            }
            // Between requests the connection holds no buffer.
            if let Some(buf) = self.client.release() {
                self.w.bufs.give(buf);
            }
            let wait_until = match park_at {
                Some(p) if !begun => p,
                _ => deadline,
            };
            match self
                .client
                .fill_with(&self.w.bufs, Deadline::At(wait_until))
                .await
            {
                Ok(0) | Err(IoFail::Error(_)) => return Got::Closed { log: begun },
                Ok(_) => {}
                Err(IoFail::Timeout) if !begun && park_at.is_some() => return Got::Park(deadline),
                Err(IoFail::Timeout) => {
                    return if begun || first {
                        Got::Refused(408, Termination::new(Cause::ClientTimeout, Phase::Request))
                    } else {
                        Got::Closed { log: false }
                    };
                }
            }
        }
    }

    // ---- rules and routing ----------------------------------------------

    async fn handle(&mut self, txn: &mut Txn) -> Next {
        self.capture_request();
        self.make_unique_id();
        let http = self.http;
        if let Some(page) = &http.stats
            && let Some(view) = crate::control::stats::page::view(page, self.req.path())
        {
            // Boxed: only stats frontends pay for its state.
            return Box::pin(self.serve_stats(page, view, txn)).await;
        }
        if self.stick_on {
            self.tracks
                .borrow()
                .new_request(&self.w.stick, &self.w.config.tables);
        }
        if let Outcome::Reply(r) = self.apply_rules(&http.request_rules, self.cfg.table, false) {
            return self.reply(r, None, txn).await;
        }
        let Some(b) = self.route() else {
            txn.termination = Termination::new(Cause::Server, Phase::Connect);
            self.send_error(503, None, txn).await;
            return Next::Close;
        };
        txn.backend = Some(b);
        let bhttp = self.w.config.backends[b]
            .http
            .as_ref()
            .expect("http frontends use http backends");
        let own = self.w.config.backends[b].table;
        if let Outcome::Reply(r) = self.apply_rules(&bhttp.request_rules, own, false) {
            return self.reply(r, Some(b), txn).await;
        }
        if let Some(ff) = bhttp.forwardfor.as_ref().or(http.forwardfor.as_ref()) {
            self.forward_for(ff);
        }
        if let Some(h) = &http.unique_id_header {
            self.req.set(h.as_bytes(), &self.uid);
        }
        let bst = self.w.backends[b].clone();
        bst.conns.set(bst.conns.get() + 1);
        txn.counted = Some(bst);
        self.proxy(b, txn).await
    }

    /// The first `use_backend` whose condition holds, else `default_backend`.
    fn route(&self) -> Option<usize> {
        self.cfg.route(&self.ctx(None))
    }

    fn ctx<'a>(&'a self, res: Option<&'a Head>) -> ReqCtx<'a> {
        ReqCtx {
            req: &self.req,
            res,
            src: self.peer,
            dst: self.local,
            tls: self.client.stream.tls_in(),
            unique_id: &self.uid,
            stick: self.stick_env(self.cfg.table),
        }
    }

    /// Applies a list of request rules (or, with `response`, response
    /// rules) to the current heads, `own` being the section's stick table.
    /// (The rules' environment borrows only the fields it reads, so the
    /// rules may change the heads.)
    fn apply_rules(&mut self, list: &[Rule], own: Option<usize>, response: bool) -> Outcome {
        let env = Env {
            src: self.peer,
            dst: self.local,
            tls: self.client.stream.tls_in(),
            unique_id: &self.uid,
            stick: self.stick_env(own),
        };
        if response {
            rules::apply_response(list, &self.req, &mut self.res, &env, &mut self.scratch)
        } else {
            rules::apply_request(list, &mut self.req, &env, &mut self.scratch)
        }
    }

    /// Stick tables as rules see them, `own` being the section's table.
    fn stick_env(&self, own: Option<usize>) -> Option<crate::stick::Env<'w>> {
        self.stick_on.then(|| crate::stick::Env {
            store: &self.w.stick,
            defs: &self.w.config.tables,
            tracks: self.tracks,
            own,
        })
    }

    /// The end of a request for its tracked counters: errors and bytes
    /// counted, request-level tracking ended.
    fn end_request(&self, txn: &Txn) {
        let mut tracks = self.tracks.borrow_mut();
        if tracks.is_empty() {
            return;
        }
        let (store, defs) = (&self.w.stick, &self.w.config.tables[..]);
        if (400..500).contains(&txn.status) {
            tracks.count(store, defs, crate::model::table::Event::HttpErr, 1);
        }
        tracks.count(
            store,
            defs,
            crate::model::table::Event::BytesOut,
            txn.bytes_out,
        );
        tracks.end(store, defs, false);
    }

    fn forward_for(&mut self, ff: &ForwardFor) {
        let ip = canonical(self.peer.ip());
        if let Some((net, bits)) = ff.except
            && in_network(ip, net, bits)
        {
            return;
        }
        if ff.if_none && self.req.has(ff.header.as_bytes()) {
            return;
        }
        self.scratch.clear();
        let _ = write!(self.scratch, "{ip}");
        let value = std::mem::take(&mut self.scratch);
        self.req.add(ff.header.as_bytes(), &value);
        self.scratch = value;
    }

    fn make_unique_id(&mut self) {
        self.uid.clear();
        match &self.http.unique_id_format {
            Some(f) => {
                let mut uid = std::mem::take(&mut self.uid);
                f.render(&self.ctx(None), &mut uid);
                self.uid = uid;
            }
            None => {
                let n = self.w.next_request_id();
                let _ = write!(self.uid, "{:x}-{:x}-{n:x}", self.w.started_unix, self.w.id);
            }
        }
    }

    fn capture_request(&mut self) {
        for (slot, c) in self.captured_req.iter_mut().zip(&self.http.capture_request) {
            slot.clear();
            if let Some(v) = self.req.values(c.name.as_bytes()).last() {
                slot.extend_from_slice(&v[..v.len().min(c.len)]);
            }
        }
    }

    fn capture_response(&mut self) {
        for (slot, c) in self
            .captured_res
            .iter_mut()
            .zip(&self.http.capture_response)
        {
            slot.clear();
            if let Some(v) = self.res.values(c.name.as_bytes()).last() {
                slot.extend_from_slice(&v[..v.len().min(c.len)]);
            }
        }
    }

    /// Answers a request from the rules (deny, return, redirect).
    /// The stats page, its `;csv`/`;json` forms or `/metrics`: every
    /// worker's numbers gathered over the mesh, rendered here.
    async fn serve_stats(
        &mut self,
        page: &crate::config::StatsPage,
        view: crate::control::stats::page::View,
        txn: &mut Txn,
    ) -> Next {
        use crate::control::stats::page::{self, View};
        txn.termination = LOCAL_REPLY;
        let close = self.local_reply_closes();
        self.out.clear();
        if !page::authorized(page, self.req.values(b"authorization").next()) {
            page::response(
                &mut self.out,
                401,
                "text/plain",
                "WWW-Authenticate: Basic realm=\"corral statistics\"\r\n",
                b"401 Unauthorized\n",
                close,
            );
            txn.status = 401;
        } else if view == View::Admin {
            let (status, body) = self.stats_admin().await;
            page::response(
                &mut self.out,
                status,
                "text/plain; charset=utf-8",
                "",
                body.as_bytes(),
                close,
            );
            txn.status = status;
        } else {
            let snap = crate::control::stats::collect(self.w).await;
            let (ctype, body) = match view {
                View::Html => ("text/html; charset=utf-8", page::html(&snap, page)),
                View::Csv => ("text/plain; charset=utf-8", page::csv(&snap)),
                View::Json => (
                    "application/json",
                    serde_json::to_string(&snap).unwrap_or_default(),
                ),
                // (Admin is answered above.)
                View::Metrics | View::Admin => (
                    "text/plain; version=0.0.4; charset=utf-8",
                    crate::control::stats::prometheus::render(&snap),
                ),
            };
            page::response(&mut self.out, 200, ctype, "", body.as_bytes(), close);
            txn.status = 200;
        }
        self.send_out(txn, close).await
    }

    /// An admin button of the stats page (already authorized): a POST
    /// with the `X-Corral-Admin` header naming a server and a state. The
    /// status and text to answer.
    async fn stats_admin(&self) -> (u16, String) {
        if self.req.method() != b"POST" {
            return (405, "admin actions are POST requests\n".into());
        }
        if !self.req.has(b"x-corral-admin") {
            return (
                403,
                "admin actions need the X-Corral-Admin header (the page's buttons send it)\n"
                    .into(),
            );
        }
        match crate::control::stats::page::admin_request(self.req.query()) {
            Err(e) => (400, format!("{e}\n")),
            Ok((server, state)) => {
                match crate::control::runtime_api::set_state_from_page(self.w, &server, state).await
                {
                    Ok(text) if text.is_empty() => {
                        (200, format!("{server} is now {}\n", state.name()))
                    }
                    Ok(text) => (200, text),
                    Err(e) => (400, format!("{server}: {e}")),
                }
            }
        }
    }

    /// Whether a response corral makes itself closes the connection: an
    /// unread request body cannot be left on it.
    fn local_reply_closes(&self) -> bool {
        self.req.wants_close()
            || self.w.life.stopping.is_set()
            || self.req.framing != Framing::None
            || self.http.conn_mode == ConnMode::Close
    }

    /// Writes the response built in `out` and accounts for it.
    async fn send_out(&mut self, txn: &mut Txn, close: bool) -> Next {
        let deadline = Deadline::After(self.cfg.timeout_client);
        if self.client.write_all(&self.out, deadline).await.is_err() {
            txn.termination = Termination::new(Cause::Client, Phase::Data);
            return Next::Close;
        }
        txn.bytes_out += self.out.len() as u64;
        if close { Next::Close } else { Next::KeepAlive }
    }

    async fn reply(&mut self, r: Reply, backend: Option<usize>, txn: &mut Txn) -> Next {
        match r {
            Reply::Error(status) => {
                txn.termination = PROXY_REQUEST;
                self.send_error(status, backend, txn).await;
                Next::Close
            }
            Reply::Generated {
                status,
                content_type,
                location,
                body,
            } => {
                txn.termination = LOCAL_REPLY;
                let close = self.local_reply_closes();
                self.out.clear();
                errors::generated(
                    &mut self.out,
                    status,
                    content_type.as_deref(),
                    location.as_deref(),
                    &body,
                    close,
                );
                txn.status = status;
                self.send_out(txn, close).await
            }
        }
    }

    /// Sends an error page (backend errorfile, frontend errorfile or the
    /// built-in page); the connection is closed afterwards.
    async fn send_error(&mut self, status: u16, backend: Option<usize>, txn: &mut Txn) {
        let from_backend = backend
            .and_then(|b| self.w.config.backends[b].http.as_ref())
            .and_then(|h| h.errors.get(status));
        let page: std::borrow::Cow<[u8]> =
            match from_backend.or_else(|| self.http.errors.get(status)) {
                Some(p) => std::borrow::Cow::Borrowed(&p[..]),
                None => std::borrow::Cow::Owned(errors::builtin(status)),
            };
        txn.status = status;
        let deadline = Deadline::After(self.cfg.timeout_client);
        if self.client.write_all(&page, deadline).await.is_ok() {
            txn.bytes_out += page.len() as u64;
        }
    }

    // ---- upstream -------------------------------------------------------

    /// Proxies the request to backend `b`, phase after phase: send request,
    /// read final head, then switch protocols (a 101) or respond, and
    /// recycle. A phase that fails returns a `Stop`, answered here.
    async fn proxy(&mut self, b: usize, txn: &mut Txn) -> Next {
        let mut x = match self.prepare_request(b).await {
            Ok(x) => x,
            Err(stop) => return self.stop(stop, b, None, txn).await,
        };
        let mut sent = loop {
            let mut sent = match self.send_request(&mut x, txn).await {
                Sending::Sent(sent) => sent,
                Sending::Retry => continue,
                Sending::Failed(stop, held) => return self.stop(stop, b, held, txn).await,
            };
            match self.read_final_head(&x, &mut sent, txn).await {
                Ok(FinalHead::Read) => break sent,
                Ok(FinalHead::PoolClosed) => {
                    // (Its slot is given back before the next connect.)
                    self.release(sent.server);
                    x.reuse = false;
                }
                Err(stop) => return self.abort(sent, stop, b, txn).await,
            }
        };
        if self.res.status == 101 {
            return match self.switch_protocols(&x, txn).await {
                Ok(timeout) => Next::Tunnel(sent.server, sent.lease, timeout),
                Err(stop) => self.abort(sent, stop, b, txn).await,
            };
        }
        match self.respond(&x, &mut sent, txn).await {
            Ok(responded) => self.recycle(&x, sent, responded, txn).await,
            Err(stop) => self.abort(sent, stop, b, txn).await,
        }
    }

    /// Before the first attempt (part of sending the request): the request
    /// head for the server, written once into `out` (every attempt sends
    /// it), and what the attempts share.
    async fn prepare_request(&mut self, b: usize) -> Result<Exchange, Stop> {
        let w = self.w;
        let bcfg = &w.config.backends[b];
        let bhttp = bcfg.http.as_ref().expect("http backend");
        let mode = self.http.conn_mode.max(bhttp.conn_mode);
        let upgrade = self.req.conn.upgrade && self.req.has(b"upgrade");
        self.req.strip_hop_by_hop(upgrade);
        self.out.clear();
        let to_server: Option<&[u8]> = if upgrade {
            Some(b"upgrade")
        } else if mode == ConnMode::KeepAlive {
            // An HTTP/1.0 request goes out as 1.0: it asks to be kept.
            (self.req.minor == 0).then_some(b"keep-alive")
        } else {
            Some(b"close")
        };
        self.req.write_request(&mut self.out, to_server);
        let head_request = self.req.method() == b"HEAD";
        let has_body = self.req.framing != Framing::None;
        // Whatever of a chunked body has already arrived is checked before
        // any server sees the request.
        if self.req.framing == Framing::Chunked
            && Chunked::default().feed(self.client.data()).is_err()
        {
            return Err(Stop::error(400, PROXY_REQUEST));
        }
        let resendable = !has_body && idempotent(self.req.method());
        let upload = BodyCopy::new(self.req.framing, false);
        let sticky = if bcfg.stick.is_empty() {
            Sticky::default()
        } else {
            // Boxed: only backends with stick rules pay for its state.
            Box::pin(persist::before_connect(w, b, &self.ctx(None))).await
        };
        Ok(Exchange {
            b,
            mode,
            upgrade,
            head_request,
            has_body,
            resendable,
            reuse: mode == ConnMode::KeepAlive,
            upload,
            sticky,
        })
    }

    /// Phase 1, send request: a server connection (an idle pooled one
    /// while `x.reuse`, else a new one: balance, queue, connect, retries),
    /// the request head on it, then the body.
    async fn send_request(&mut self, x: &mut Exchange, txn: &mut Txn) -> Sending {
        let w = self.w;
        let b = x.b;
        let timeout_server = w.config.backends[b].timeout_server;
        let connected = upstream::connect(
            w,
            b,
            self.peer.ip(),
            &mut txn.report,
            x.reuse,
            x.sticky.prefer,
            &|f, out| f.render(&self.ctx(None), out),
        )
        .await;
        let up = match connected {
            Ok(u) => {
                persist::after_connect(w, &mut x.sticky, u.lease.server());
                w.sessions.route(self.sess, b, u.lease.server());
                u
            }
            Err(f) => return Sending::Failed(Stop::error(503, f.termination()), None),
        };
        txn.server_used = true;
        let mut server = Conn::new(up.stream, w.bufs.take());
        if server
            .write_all(&self.out, Deadline::After(timeout_server))
            .await
            .is_err()
        {
            self.release(server);
            if up.reused {
                x.reuse = false;
                return Sending::Retry;
            }
            let stop = Stop::error(502, Termination::new(Cause::Server, Phase::Headers));
            return Sending::Failed(stop, Some(up.lease));
        }
        let at = Instant::now();
        let (server, body) = if x.has_body {
            self.send_body(x, server).await
        } else {
            (server, Ok(BodySent::default()))
        };
        match body {
            Ok(body) => Sending::Sent(Sent {
                server,
                lease: up.lease,
                reused: up.reused,
                at,
                have_head: body.have_head,
                body_skipped: body.skipped,
            }),
            Err(stop) => {
                self.release(server);
                Sending::Failed(stop, Some(up.lease))
            }
        }
    }

    /// The request body (phase 1), after the server's go-ahead if it was
    /// asked for, while the server is watched for an early final answer.
    async fn send_body(
        &mut self,
        x: &mut Exchange,
        mut server: Conn,
    ) -> (Conn, Result<BodySent, Stop>) {
        let timeout_server = self.w.config.backends[x.b].timeout_server;
        let mut sent = BodySent::default();
        if self.req.expect_continue && self.client.data().is_empty() {
            let wait = Deadline::After(EXPECT_WAIT.min(timeout_server));
            match self.read_response(&mut server, wait, x.head_request).await {
                Ok(()) if self.res.status == 100 => {
                    // A final answer right behind the 100 (in the same
                    // read): the body is not wanted after all, and the
                    // client is not told to send it.
                    if self.final_buffered(&mut server, x.head_request) {
                        sent.have_head = true;
                        sent.skipped = true;
                    } else {
                        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
                        let timeout = self.cfg.timeout_client;
                        if let Err(stop) = to_client(&mut self.client, interim, timeout).await {
                            return (server, Err(stop));
                        }
                    }
                }
                Ok(()) => {
                    // A final (or other interim) answer before the body:
                    // the body will not be read.
                    sent.have_head = true;
                    sent.skipped = self.res.status >= 200;
                }
                Err(ResFail::Timeout) => {}
                Err(fail) => return (server, Err(fail.stop())),
            }
        }
        if sent.skipped {
            return (server, Ok(sent));
        }
        let (server, early) = self
            .upload(&mut x.upload, server, x.head_request, timeout_server)
            .await;
        let sent = match early {
            Upload::Sent(Ok(())) => Ok(sent),
            Upload::Sent(Err(BodyFail::Invalid)) => Err(Stop::error(
                400,
                Termination::new(Cause::Proxy, Phase::Data),
            )),
            Upload::Sent(Err(BodyFail::Src(e))) => Err(Stop::close(Termination::new(
                if matches!(e, IoFail::Timeout) {
                    Cause::ClientTimeout
                } else {
                    Cause::Client
                },
                Phase::Data,
            ))),
            Upload::Sent(Err(BodyFail::Dst(_))) | Upload::ServerStopped => {
                // The server stopped reading or closed: it may have
                // answered early (413, 401...); that answer is read next.
                sent.skipped = true;
                Ok(sent)
            }
            Upload::Answered => {
                // A final answer before the whole body: the rest is not
                // sent, the answer goes to the client now.
                sent.have_head = true;
                sent.skipped = true;
                Ok(sent)
            }
            Upload::Failed(fail) => Err(fail.stop()),
            Upload::ClientGone => Err(Stop::close(Termination::new(Cause::Client, Phase::Headers))),
        };
        (server, sent)
    }

    /// Phase 2, read final head: the server's response head into `res`
    /// (within `timeout server` of the request head going out); interim
    /// answers on the way are passed on (a 100 only to a client that asked
    /// for one) or dropped.
    async fn read_final_head(
        &mut self,
        x: &Exchange,
        sent: &mut Sent,
        txn: &mut Txn,
    ) -> Result<FinalHead, Stop> {
        let timeout_server = self.w.config.backends[x.b].timeout_server;
        let deadline = Deadline::At(sent.at + timeout_server);
        loop {
            if !sent.have_head {
                match self
                    .read_response(&mut sent.server, deadline, x.head_request)
                    .await
                {
                    Ok(()) => {}
                    // A pooled connection the server had closed.
                    Err(ResFail::Closed { nothing: true }) if sent.reused && x.resendable => {
                        return Ok(FinalHead::PoolClosed);
                    }
                    Err(fail) => return Err(fail.stop()),
                }
            }
            sent.have_head = false;
            let status = self.res.status;
            if (100..200).contains(&status) && status != 101 {
                if status != 100 || self.req.expect_continue {
                    self.pass_head(false).await?;
                }
                continue;
            }
            if self.logging {
                txn.response = Some(sent.at.elapsed());
            }
            return Ok(FinalHead::Read);
        }
    }

    /// Phase 3, switch protocols: a 101 answers only a request that asked
    /// for an upgrade; its head goes to the client, then (after the log)
    /// the tunnel relays bytes both ways, idle for at most the timeout
    /// returned (`timeout tunnel`).
    async fn switch_protocols(&mut self, x: &Exchange, txn: &mut Txn) -> Result<Duration, Stop> {
        if !x.upgrade {
            return Err(Stop::error(
                502,
                Termination::new(Cause::Proxy, Phase::Headers),
            ));
        }
        txn.status = 101;
        self.pass_head(true).await?;
        txn.bytes_out += self.out.len() as u64;
        let bhttp = self.w.config.backends[x.b].http.as_ref();
        Ok(bhttp.expect("http backend").timeout_tunnel)
    }

    /// Phase 4, respond: the response rules (the backend's, then the
    /// frontend's), then the response head to the client and its body.
    async fn respond(
        &mut self,
        x: &Exchange,
        sent: &mut Sent,
        txn: &mut Txn,
    ) -> Result<Responded, Stop> {
        let bcfg = &self.w.config.backends[x.b];
        let bhttp = bcfg.http.as_ref().expect("http backend");
        for list in [&bhttp.response_rules, &self.http.response_rules] {
            if let Outcome::Reply(r) = self.apply_rules(list, self.cfg.table, true) {
                return Err(Stop {
                    termination: Termination::new(Cause::Proxy, Phase::Headers),
                    answer: Answer::Rule(r),
                });
            }
        }
        self.capture_response();

        let framing = self.res.framing;
        let dechunk = framing == Framing::Chunked && self.req.minor == 0;
        // A stopping worker (reload or stop) closes each keep-alive
        // connection after its current response: the client's next
        // request opens a new connection, which the serving generation
        // accepts.
        let client_close = self.req.wants_close()
            || self.w.life.stopping.is_set()
            || x.mode == ConnMode::Close
            || framing == Framing::UntilClose
            || sent.body_skipped
            || dechunk;
        self.res.strip_hop_by_hop(false);
        if dechunk {
            // An HTTP/1.0 client cannot read chunks: send the data plain
            // and end it by closing.
            self.res.remove(b"transfer-encoding");
        }
        self.out.clear();
        let to_client_conn: Option<&[u8]> = if client_close {
            Some(b"close")
        } else if self.req.minor == 0 {
            Some(b"keep-alive")
        } else {
            None
        };
        self.res.write_response(&mut self.out, to_client_conn);
        let head_len = self.out.len() as u64;
        // The body bytes already read go out with the head, in one write.
        let mut body = BodyCopy::new(framing, dechunk);
        if body.take_buffered(&mut sent.server, &mut self.out).is_err() {
            // Not validly chunked, and nothing sent yet: a clean 502.
            return Err(Stop::error(
                502,
                Termination::new(Cause::Server, Phase::Headers),
            ));
        }
        txn.status = self.res.status;
        to_client(&mut self.client, &self.out, self.cfg.timeout_client).await?;
        txn.bytes_out += head_len;
        let result = body
            .forward(
                &mut sent.server,
                &mut self.client.stream,
                bcfg.timeout_server,
                self.cfg.timeout_client,
            )
            .await;
        txn.bytes_out += body.written;
        let body = result.map_err(|e| match e {
            BodyFail::Src(IoFail::Timeout) => Termination::new(Cause::ServerTimeout, Phase::Data),
            BodyFail::Src(_) | BodyFail::Invalid => Termination::new(Cause::Server, Phase::Data),
            BodyFail::Dst(IoFail::Timeout) => Termination::new(Cause::ClientTimeout, Phase::Data),
            BodyFail::Dst(_) => Termination::new(Cause::Client, Phase::Data),
        });
        Ok(Responded { body, client_close })
    }

    /// Phase 5, recycle: the server connection back to the pool when it
    /// can serve another request, else closed; what is left of a request
    /// body the server did not want drained; keep-alive or close.
    async fn recycle(&mut self, x: &Exchange, sent: Sent, r: Responded, txn: &mut Txn) -> Next {
        let w = self.w;
        let bcfg = &w.config.backends[x.b];
        if let Err(t) = r.body {
            txn.termination = t;
        }
        let body_ok = r.body.is_ok();
        let Sent {
            server,
            lease,
            body_skipped,
            ..
        } = sent;
        let reusable = body_ok
            && x.mode == ConnMode::KeepAlive
            && !self.res.wants_close()
            && self.res.framing != Framing::UntilClose
            && !body_skipped
            && server.data().is_empty();
        let server_index = lease.server();
        // (A stream not pooled closes when this returns, after the linger.)
        let (stream, buf, _) = server.into_parts();
        w.bufs.give(buf);
        let poolable = bcfg.servers[server_index]
            .tls
            .as_ref()
            .is_none_or(|t| t.sni_fixed);
        if reusable && poolable {
            w.backends[x.b].servers[server_index].give_idle(stream, lease.addr_gen());
        }
        txn.lease = Some(lease);
        if body_skipped && !x.upload.is_done() {
            self.linger().await;
        }
        if body_ok && !r.client_close {
            Next::KeepAlive
        } else {
            Next::Close
        }
    }

    /// Ends an exchange that failed with a server connection open: the
    /// connection closes at once, its slot is given back only once the
    /// failure is answered.
    async fn abort(&mut self, sent: Sent, stop: Stop, b: usize, txn: &mut Txn) -> Next {
        self.release(sent.server);
        self.stop(stop, b, Some(sent.lease), txn).await
    }

    /// Ends an exchange early: the client answered as `stop` says, then
    /// `held` (the slot of a server connection already closed) given
    /// back; the client connection closes.
    async fn stop(&mut self, stop: Stop, b: usize, held: Option<Lease>, txn: &mut Txn) -> Next {
        match stop.answer {
            Answer::None => {}
            Answer::Error(status) => self.send_error(status, Some(b), txn).await,
            // (Whatever the reply says, the connection closes.)
            Answer::Rule(r) => drop(self.reply(r, Some(b), txn).await),
        }
        txn.termination = stop.termination;
        drop(held);
        Next::Close
    }

    /// Writes the response head in `res` to the client as it is: an
    /// interim answer, or with `upgrade` the 101 of a protocol switch
    /// (its Upgrade header kept, `Connection: upgrade`).
    async fn pass_head(&mut self, upgrade: bool) -> Result<(), Stop> {
        self.res.strip_hop_by_hop(upgrade);
        self.out.clear();
        let connection: Option<&[u8]> = if upgrade { Some(b"upgrade") } else { None };
        self.res.write_response(&mut self.out, connection);
        to_client(&mut self.client, &self.out, self.cfg.timeout_client).await
    }

    /// Sends the request body to `server` while watching it for an early
    /// answer: a final response head that arrives first ends the upload at
    /// once (a server refusing a 100 MB upload with 413 is not sent the
    /// rest of it). Interim answers that come meanwhile go to the client
    /// (not 100: the client is already sending).
    ///
    /// Two ways of noticing the server, because the body copy may never
    /// wait (a fast client and a server that reads everything): while the
    /// copy waits, a second future reads the server (both borrow the
    /// server's stream one poll at a time); and every `PAUSE_CHECK` bytes
    /// the copy peeks at a plain server socket (one non-blocking system
    /// call) and, when something came, stops between two writes so the
    /// head is read. A body sent within the first poll (every small one)
    /// costs neither. (Over TLS to the server a readable socket may only
    /// hold a session ticket, so only the first way is used there.)
    async fn upload(
        &mut self,
        body: &mut BodyCopy,
        mut server: Conn,
        head_request: bool,
        server_idle: Duration,
    ) -> (Conn, Upload) {
        use std::os::fd::AsRawFd;
        use std::task::Poll;
        let client_idle = self.cfg.timeout_client;
        loop {
            self.out.clear();
            let plain = !server.stream.is_tls();
            let fd = server.stream.tcp().as_raw_fd();
            let (stream, mut side) = server.split();
            let cell = RefCell::new(stream);
            let outcome = {
                let mut to_server = relay::Borrowed(&cell);
                let pause = || plain && readable(fd);
                let send = body.forward_until(
                    &mut self.client,
                    &mut to_server,
                    client_idle,
                    server_idle,
                    pause,
                );
                let watch =
                    watch_answer(&cell, &mut side, &mut self.res, &mut self.out, head_request);
                let (mut send, mut watch) = (std::pin::pin!(send), std::pin::pin!(watch));
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = send.as_mut().poll(cx) {
                        return Poll::Ready(match r {
                            Ok(true) => Some(Upload::Sent(Ok(()))),
                            Ok(false) => None,
                            Err(e) => Some(Upload::Sent(Err(e))),
                        });
                    }
                    match watch.as_mut().poll(cx) {
                        Poll::Ready(true) => Poll::Ready(Some(Upload::Answered)),
                        Poll::Ready(false) => Poll::Ready(Some(Upload::ServerStopped)),
                        Poll::Pending => Poll::Pending,
                    }
                })
                .await
            };
            server = Conn::rejoin(cell.into_inner(), side);
            if !self.out.is_empty()
                && self
                    .client
                    .write_all(&self.out, Deadline::After(client_idle))
                    .await
                    .is_err()
            {
                return (server, Upload::ClientGone);
            }
            if let Some(outcome) = outcome {
                return (server, outcome);
            }
            // Paused: the server sent something in the middle of the body.
            match self
                .read_response(&mut server, Deadline::After(server_idle), head_request)
                .await
            {
                Ok(()) if (100..200).contains(&self.res.status) && self.res.status != 101 => {
                    if self.res.status != 100 && self.pass_head(false).await.is_err() {
                        return (server, Upload::ClientGone);
                    }
                }
                Ok(()) => return (server, Upload::Answered),
                Err(fail) => return (server, Upload::Failed(fail)),
            }
        }
    }

    /// Whether a final response head is already buffered behind a 100
    /// (then it is in `self.res`, consumed). A head that is not final, or
    /// not complete, stays buffered for the next read.
    fn final_buffered(&mut self, server: &mut Conn, head_request: bool) -> bool {
        if server.data().is_empty() {
            return false;
        }
        match self.res.parse_response(server.data(), head_request) {
            Ok(Parsed::Complete(n)) if self.res.status >= 200 => {
                server.consume(n);
                true
            }
            _ => false,
        }
    }

    /// After a final answer sent before the whole request body arrived:
    /// the write side is shut (the client sees the end of the answer), and
    /// what the client still sends is read and dropped for up to `LINGER`,
    /// so that closing with unread bytes does not reset the connection
    /// before the client has read the answer (RFC 9112 §9.6).
    async fn linger(&mut self) {
        use futures_lite::io::AsyncWriteExt;
        let deadline = Deadline::At(Instant::now() + LINGER);
        if until(deadline, self.client.stream.close()).await.is_err() {
            return;
        }
        loop {
            let n = self.client.data().len();
            self.client.consume(n);
            match self.client.fill(deadline).await {
                Ok(n) if n > 0 => {}
                _ => return,
            }
        }
    }

    /// Reads a response head into `self.res`.
    async fn read_response(
        &mut self,
        server: &mut Conn,
        deadline: Deadline,
        head_request: bool,
    ) -> Result<(), ResFail> {
        loop {
            if !server.data().is_empty() {
                match self.res.parse_response(server.data(), head_request) {
                    Ok(Parsed::Complete(n)) => {
                        server.consume(n);
                        return Ok(());
                    }
                    Ok(Parsed::Partial) if server.is_full() => return Err(ResFail::Invalid),
                    Ok(Parsed::Partial) => {}
                    Err(_) => return Err(ResFail::Invalid),
                }
            }
            let before = server.received;
            match server.fill(deadline).await {
                Ok(0) | Err(IoFail::Error(_)) => {
                    return Err(ResFail::Closed {
                        nothing: before == 0,
                    });
                }
                Ok(_) => {}
                Err(IoFail::Timeout) => return Err(ResFail::Timeout),
            }
        }
    }

    /// Gives back a server connection's buffer; the connection closes.
    fn release(&self, server: Conn) {
        let (_, buf, _) = server.into_parts();
        self.w.bufs.give(buf);
    }

    // ---- after a protocol switch -----------------------------------------

    async fn tunnel(self, server: Conn, lease: Lease, timeout: Duration) {
        let (cstream, mut cbuf, crange) = self.client.into_parts();
        let (sstream, mut sbuf, srange) = server.into_parts();
        let client = RefCell::new(cstream);
        let server = RefCell::new(sstream);
        // Bytes that arrived with the heads go first.
        let early_ok = {
            use futures_lite::io::AsyncWriteExt;
            let a = relay::Borrowed(&server).write_all(&cbuf[crange]).await;
            let b = relay::Borrowed(&client).write_all(&sbuf[srange]).await;
            a.is_ok() && b.is_ok()
        };
        if early_ok {
            let timeouts = relay::Timeouts {
                client: timeout,
                server: timeout,
            };
            relay::relay(
                &client,
                &server,
                timeouts,
                (&mut cbuf, &mut sbuf),
                &self.w.clock,
            )
            .await;
        }
        self.w.bufs.give(cbuf);
        self.w.bufs.give(sbuf);
        drop(lease);
    }

    // ---- log ----------------------------------------------------------------

    /// Adds a finished request to the frontend's, backend's and server's
    /// counters.
    fn count(&self, txn: &Txn) {
        use crate::observe::counters::Counters;
        let w = self.w;
        let now = w.now_s();
        let fe = &w.frontends[self.fe].stats;
        let bytes_in = self.client.received - self.received_before.get();
        self.received_before.set(self.client.received);
        fe.bytes(bytes_in, txn.bytes_out);
        if txn.status != 0 {
            fe.response(txn.status);
        }
        if txn.parsed {
            Counters::bump(&fe.requests);
        } else if txn.status == 400 {
            Counters::bump(&fe.bad_requests);
        }
        if txn.termination == PROXY_REQUEST && txn.parsed {
            Counters::bump(&fe.denied);
        }
        let Some(b) = txn.backend else { return };
        let bst = &w.backends[b];
        let be = &bst.stats;
        be.session(bst.conns.get(), now);
        be.bytes(bytes_in, txn.bytes_out);
        Counters::bump(&be.requests);
        if txn.status != 0 {
            be.response(txn.status);
        }
        be.retries
            .set(be.retries.get() + u64::from(txn.report.retries));
        be.queued(bst.queued.get());
        let server_side = txn.termination.server_side();
        let Some(s) = txn.report.server else {
            if server_side {
                Counters::bump(&be.connect_errors);
            }
            return;
        };
        let ss = &bst.servers[s];
        if !txn.server_used {
            if server_side {
                Counters::bump(&be.connect_errors);
                Counters::bump(&ss.stats.connect_errors);
            }
            return;
        }
        let srv = &ss.stats;
        srv.session(ss.conns.get(), now);
        srv.bytes(bytes_in, txn.bytes_out);
        Counters::bump(&srv.requests);
        if txn.status != 0 {
            srv.response(txn.status);
        }
        if server_side {
            Counters::bump(&be.response_errors);
            Counters::bump(&srv.response_errors);
        }
        if let Some(r) = txn.response {
            let ms = r.as_millis() as u64;
            be.response_time(ms);
            srv.response_time(ms);
        }
    }

    fn log(&self, txn: &Txn) {
        self.count(txn);
        let w = self.w;
        let fst = &w.frontends[self.fe];
        if fst.log.is_empty() {
            return;
        }
        let backend = txn.backend.map(|b| &w.config.backends[b]);
        let server = if txn.server_used {
            txn.report.server
        } else {
            None
        };
        let bst = txn.backend.map(|b| &w.backends[b]);
        let rec = HttpLog {
            client: self.peer,
            // No request had begun (a 408 on a silent connection): now.
            date: if txn.date == SystemTime::UNIX_EPOCH {
                SystemTime::now()
            } else {
                txn.date
            },
            frontend: &self.cfg.name,
            backend: backend.map(|b| b.name.as_str()),
            server: server.zip(backend).map(|(s, b)| b.servers[s].name.as_str()),
            head: txn.head,
            queue: txn.report.queue,
            connect: txn.report.connect,
            response: txn.response,
            total: txn.start.elapsed(),
            status: txn.status,
            bytes_out: txn.bytes_out,
            termination: txn.termination,
            actconn: w.conns.get(),
            feconn: fst.conns.get(),
            beconn: bst.map_or(0, |b| b.conns.get()),
            srvconn: server.zip(bst).map_or(0, |(s, b)| b.servers[s].conns.get()),
            retries: txn.report.retries,
            srv_queue: 0,
            be_queue: bst.map_or(0, |b| b.queued.get()),
            captured_request: (!self.captured_req.is_empty()).then_some(&self.captured_req[..]),
            captured_response: (!self.captured_res.is_empty()).then_some(&self.captured_res[..]),
            request_line: txn
                .parsed
                .then(|| (self.req.method(), self.req.target(), self.req.minor)),
            tls: self.client.stream.tls_in(),
            httpslog: self.cfg.httpslog,
        };
        w.logs.line(&fst.log, |out| rec.write(out));
    }
}

/// Writes `bytes` to the client within `timeout`; a client gone meanwhile
/// ends the exchange (`CH`).
async fn to_client(client: &mut Conn, bytes: &[u8], timeout: Duration) -> Result<(), Stop> {
    match client.write_all(bytes, Deadline::After(timeout)).await {
        Ok(()) => Ok(()),
        Err(_) => Err(Stop::close(Termination::new(Cause::Client, Phase::Headers))),
    }
}

/// Whether a socket has bytes (or an end of stream) to read: one
/// non-blocking peek.
fn readable(fd: std::os::fd::RawFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: a one-byte peek into a local buffer.
    let n = unsafe {
        libc::recv(
            fd,
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n >= 0
}

/// Reads from the server while a request body is being sent to it, until
/// a final response head is complete in `res` (then `true`, the head
/// consumed from `side`), or the server closes, fails or sends what is not
/// a response head (`false`). Interim heads are consumed on the way, and
/// all but 100 are written to `interim` for the client.
async fn watch_answer(
    server: &RefCell<Stream>,
    side: &mut crate::io::conn::ReadSide,
    res: &mut Head,
    interim: &mut Vec<u8>,
    head_request: bool,
) -> bool {
    let mut from_server = relay::Borrowed(server);
    loop {
        if !side.data().is_empty() {
            match res.parse_response(side.data(), head_request) {
                Ok(Parsed::Complete(n)) => {
                    side.consume(n);
                    if !(100..200).contains(&res.status) || res.status == 101 {
                        return true;
                    }
                    if res.status != 100 {
                        res.strip_hop_by_hop(false);
                        res.write_response(interim, None);
                    }
                    continue;
                }
                Ok(Parsed::Partial) if side.data().len() < side.buf.len() => {}
                Ok(Parsed::Partial) | Err(_) => return false,
            }
        }
        match side.fill_from(&mut from_server).await {
            Ok(n) if n > 0 => {}
            _ => return false,
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_network(ip("10.1.2.3"), ip("10.0.0.0"), 8));
        assert!(!in_network(ip("11.1.2.3"), ip("10.0.0.0"), 8));
        assert!(in_network(ip("127.0.0.1"), ip("127.0.0.1"), 32));
        assert!(in_network(ip("fe80::1"), ip("fe80::"), 10));
        assert_eq!(canonical(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }
}
