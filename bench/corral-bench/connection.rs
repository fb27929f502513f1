//! One load connection in the request/response modes (http, http-close,
//! tcp): pace (open loop) or not (closed loop), (re)connect, run one
//! exchange at a time, and count its latency or its error.
//!
//! Failures never end the connection's task: a failed connect is counted
//! and retried after a short pause, a failed exchange is counted and the
//! connection reopened, until the run is over.

use crate::cli::LoadMode;
use crate::pacing::{Pacer, sleep_until};
use crate::rxbuf::RxBuf;
use crate::stats::ErrorKind;
use crate::worker::Ctx;
use crate::{http_client, tcp_client};
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
pub struct Done {
    /// Bytes of the response.
    pub bytes: u64,
    /// Whether the connection can carry the next request.
    pub keep_alive: bool,
    /// Whether the status was 2xx or 3xx (always true outside HTTP).
    pub status_ok: bool,
}

/// Opens a connection with the run's timeout on the connect itself.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ErrorKind> {
    let stream = TcpStream::connect_timeout(addr, timeout)
        .await
        .map_err(|_| ErrorKind::Connect)?;
    // Requests are written whole; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Runs connection `global` (slot `slot` of this thread) until the run
/// stops.
pub async fn run(ctx: Rc<Ctx>, slot: usize, global: usize) {
    let plan = ctx.plan.clone();
    let target = &plan.targets[global % plan.targets.len()];
    let watch = &ctx.slots[slot];
    let mut pacer = plan
        .rate
        .map(|r| Pacer::new(ctx.start, global, plan.connections, r));
    let mut rx = RxBuf::new(RX_BUFFER);
    let mut stream: Option<TcpStream> = None;
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
            match connect(target.addr, plan.timeout).await {
                Ok(s) => {
                    watch.set_fd(s.as_raw_fd());
                    stream = Some(s);
                    rx.clear();
                }
                Err(kind) => {
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
        let result = match plan.mode {
            LoadMode::Tcp => {
                tcp_client::exchange(s, &mut rx, &target.request, plan.response_size).await
            }
            _ => http_client::exchange(s, &mut rx, &target.request, plan.head, per_request).await,
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
