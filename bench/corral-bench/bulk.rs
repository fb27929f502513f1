//! Bulk mode: each connection streams `--bulk-bytes` to an echo server as
//! fast as it can while reading the echo back, in one task that polls both
//! directions (no split of the stream, no lock).
//!
//! Throughput is the payload that completed the round trip (bytes echoed
//! back, counted as they arrive, so a transfer cut by `--duration` still
//! counts what came back) over the elapsed time. The latency histogram
//! holds each connection's completion time; a failed transfer is counted
//! by kind and not retried (a retry would restart it from zero).

use crate::connection::connect;
use crate::pacing::sleep_until;
use crate::stats::ErrorKind;
use crate::worker::Ctx;
use futures_lite::io::{AsyncRead, AsyncWrite};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Bytes per write and per read.
const CHUNK: usize = 256 << 10;
/// Reads and writes in a row before yielding to the thread's other tasks.
const BUDGET: u32 = 32;
/// Pause after a failed connect before the next try.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// Runs connection `global`'s transfer (slot `slot` of this thread).
pub(crate) async fn run(ctx: Rc<Ctx>, slot: usize, global: usize) {
    let plan = ctx.plan.clone();
    let target = &plan.targets[global % plan.targets.len()];
    let watch = &ctx.slots[slot];
    let mut stream = loop {
        if ctx.stop.get() {
            return;
        }
        match connect(target.addr, plan.timeout).await {
            Ok(s) => break s,
            Err(kind) => {
                if ctx.stop.get() {
                    return;
                }
                ctx.stats.borrow_mut().error(kind);
                if !sleep_until(Instant::now() + RECONNECT_PAUSE, &ctx.stop).await {
                    return;
                }
            }
        }
    };
    watch.set_fd(stream.as_raw_fd());
    let payload = vec![0x5a_u8; CHUNK];
    let mut buf = vec![0u8; CHUNK];
    let total = plan.bulk_bytes;
    let (mut sent, mut received) = (0u64, 0u64);
    let began = Instant::now();
    watch.arm(began + plan.timeout);
    let result = std::future::poll_fn(|cx| {
        let mut progressed = false;
        let mut budget = BUDGET;
        loop {
            let mut moved = false;
            if sent < total {
                let n = (total - sent).min(CHUNK as u64) as usize;
                match Pin::new(&mut stream).poll_write(cx, &payload[..n]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        return Poll::Ready(Err(ErrorKind::Write));
                    }
                    Poll::Ready(Ok(n)) => {
                        sent += n as u64;
                        moved = true;
                    }
                    Poll::Pending => {}
                }
            }
            match Pin::new(&mut stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(ErrorKind::Closed)),
                Poll::Ready(Err(_)) => return Poll::Ready(Err(ErrorKind::Read)),
                Poll::Ready(Ok(n)) => {
                    received += n as u64;
                    ctx.stats.borrow_mut().bytes += n as u64;
                    moved = true;
                }
                Poll::Pending => {}
            }
            if received >= total {
                return Poll::Ready(Ok(()));
            }
            if !moved {
                break;
            }
            progressed = true;
            budget -= 1;
            if budget == 0 {
                // Let the thread's other connections run; come back soon.
                cx.waker().wake_by_ref();
                break;
            }
        }
        if progressed {
            watch.arm(Instant::now() + plan.timeout);
        }
        Poll::Pending
    })
    .await;
    watch.disarm();
    if ctx.stop.get() {
        return;
    }
    let expired = watch.take_expired();
    let mut stats = ctx.stats.borrow_mut();
    match result {
        Ok(()) if !expired => stats.record(began.elapsed(), 0),
        Ok(()) => stats.error(ErrorKind::Timeout),
        Err(kind) => stats.error(if expired { ErrorKind::Timeout } else { kind }),
    }
    drop(stats);
    watch.set_fd(-1);
}
