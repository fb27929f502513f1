//! One load connection in the request/response modes (http, http-close,
//! tcp): pace (open loop) or not (closed loop), (re)connect, run one
//! exchange at a time, and count its latency or its error.
//!
//! Failures never end the connection's task: a failed connect is counted
//! and retried after a short pause, a failed exchange is counted and the
//! connection reopened, until the run is over.
//!
//! With --tls, the TLS handshake follows the connect, under the same
//! timeout as a request; a failed handshake counts as a `tls` error and is
//! retried like a failed connect, after the same pause. In http-close mode
//! every request pays a full handshake, and its latency includes it.

use crate::cli::LoadMode;
use crate::pacing::{Pacer, sleep_until};
use crate::plan::{Plan, Target};
use crate::rxbuf::RxBuf;
use crate::stats::ErrorKind;
use crate::worker::Ctx;
use crate::{http_client, tcp_client, tls};
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use glommio::net::TcpStream;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Pause after a failed connect before the next try.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);
/// Receive buffer of a load connection.
const RX_BUFFER: usize = 64 << 10;

/// A completed exchange.
pub(crate) struct Done {
    /// Bytes of the response.
    pub bytes: u64,
    /// Whether the connection can carry the next request.
    pub keep_alive: bool,
    /// Whether the status was 2xx or 3xx (always true outside HTTP).
    pub status_ok: bool,
}

/// Opens a connection with the run's timeout on the connect itself.
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ErrorKind> {
    let stream = TcpStream::connect_timeout(addr, timeout)
        .await
        .map_err(|_| ErrorKind::Connect)?;
    // Requests are written whole; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A load connection: plain TCP, or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One exchange of the run's mode on `stream`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    plan: &Plan,
    target: &Target,
    stream: &mut S,
    rx: &mut RxBuf,
) -> Result<Done, ErrorKind> {
    match plan.mode {
        LoadMode::Tcp => {
            tcp_client::exchange(stream, rx, &target.request, plan.response_size).await
        }
        mode => {
            let close = mode == LoadMode::HttpClose;
            http_client::exchange(stream, rx, &target.request, plan.head, close).await
        }
    }
}

/// Runs connection `global` (slot `slot` of this thread) until the run
/// stops.
pub(crate) async fn run(ctx: Rc<Ctx>, slot: usize, global: usize) {
    let plan = ctx.plan.clone();
    let target = &plan.targets[global % plan.targets.len()];
    let watch = &ctx.slots[slot];
    let mut pacer = plan
        .rate
        .map(|r| Pacer::new(ctx.start, global, plan.connections, r));
    let mut rx = RxBuf::new(RX_BUFFER);
    let mut stream: Option<Stream> = None;
    // Open loop: the due time of the request being sent; it stays the same
    // across failed connects, so waiting for a connection counts as latency.
    let mut due: Option<Instant> = None;
    let per_request = plan.mode == LoadMode::HttpClose;

    while !ctx.stop.get() {
        if let Some(p) = pacer.as_mut() {
            let at = *due.get_or_insert_with(|| p.next_due());
            if !sleep_until(at, &ctx.stop).await {
                break;
            }
        }
        let before_connect = Instant::now();
        if stream.is_none() {
            let opened = match connect(target.addr, plan.timeout).await {
                Ok(s) => {
                    watch.set_fd(s.as_raw_fd());
                    match (&plan.tls, &target.server_name) {
                        (Some(t), Some(name)) => {
                            watch.arm(Instant::now() + plan.timeout);
                            let r = tls::handshake(t, name, s).await;
                            watch.disarm();
                            if watch.take_expired() {
                                Err(ErrorKind::Timeout)
                            } else {
                                r.map(Stream::Tls)
                            }
                        }
                        _ => Ok(Stream::Plain(s)),
                    }
                }
                Err(kind) => Err(kind),
            };
            match opened {
                Ok(s) => {
                    if let (Stream::Tls(t), false) = (&s, ctx.stop.get()) {
                        ctx.stats.borrow_mut().handshakes += 1;
                        let mut n = ctx.negotiated.borrow_mut();
                        if n.is_none() {
                            *n = Some(tls::negotiated(t));
                        }
                    }
                    stream = Some(s);
                    rx.clear();
                }
                Err(kind) => {
                    watch.set_fd(-1);
                    if ctx.stop.get() {
                        break;
                    }
                    ctx.stats.borrow_mut().error(kind);
                    let pause_end = Instant::now() + RECONNECT_PAUSE;
                    if !sleep_until(pause_end, &ctx.stop).await {
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        let sent = Instant::now();
        let began = match due {
            Some(d) => d,
            None if per_request => before_connect,
            None => sent,
        };
        watch.arm(sent + plan.timeout);
        let result = match s {
            Stream::Plain(s) => exchange(&plan, target, s, &mut rx).await,
            Stream::Tls(s) => exchange(&plan, target, &mut **s, &mut rx).await,
        };
        let end = Instant::now();
        watch.disarm();
        if ctx.stop.get() {
            // Cut by the end of the run: neither a result nor an error.
            break;
        }
        due = None;
        let expired = watch.take_expired();
        let reuse = match result {
            Ok(done) if !expired => {
                let mut stats = ctx.stats.borrow_mut();
                if done.status_ok {
                    stats.record(end - began, done.bytes);
                } else {
                    stats.error(ErrorKind::Status);
                }
                done.keep_alive && !per_request
            }
            Ok(_) => {
                ctx.stats.borrow_mut().error(ErrorKind::Timeout);
                false
            }
            Err(kind) => {
                let kind = if expired { ErrorKind::Timeout } else { kind };
                ctx.stats.borrow_mut().error(kind);
                false
            }
        };
        if !reuse {
            watch.set_fd(-1);
            stream = None;
        }
    }
    watch.set_fd(-1);
}
