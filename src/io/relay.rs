//! Copying bytes both ways between a client and a server until both sides
//! are finished.
//!
//! - Half-close is honoured: end-of-stream from one side is passed on as a
//!   FIN (shutdown of writes) to the other, and the opposite direction
//!   keeps flowing until it ends too.
//! - Timeouts are inactivity timeouts. A read from the client gives up
//!   after `timeout client` and a read from the server after `timeout
//!   server`, but only when no byte moved in *either* direction for that
//!   long: a long download does not time out because the client is quiet.
//!   A write that cannot progress for the receiving side's timeout ends
//!   the connection too. Every read and write stamps the connection with
//!   the worker's coarse clock (no system call); when a stream's timer
//!   fires and bytes moved since it was armed, it is armed again for just
//!   what is left of the timeout after the last one, so a timeout fires
//!   its value after the last byte moved (within the coarse clock's tick),
//!   not up to twice that.
//! - An error on either side ends both directions at once.
//!
//! Both directions run in the connection's own task; each stream sits in a
//! `RefCell` that is borrowed only inside a single poll, never across an
//! await.

use crate::base::clock::Coarse;
use crate::io::stream::Stream;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

/// Which end of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelayEnd {
    /// Both directions reached end-of-stream.
    Done,
    /// A side stayed silent for its timeout.
    Timeout(Side),
    /// A side reset the connection or failed.
    Abort(Side),
}

/// What a relay did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayOutcome {
    pub end: RelayEnd,
    /// Bytes read from the client and written to the server.
    pub client_to_server: u64,
    /// Bytes read from the server and written to the client.
    pub server_to_client: u64,
}

/// The two inactivity timeouts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub client: Duration,
    pub server: Duration,
}

/// When a byte last moved either way, on the worker's coarse clock.
struct Activity<'c> {
    clock: &'c Coarse,
    last_ms: Cell<u64>,
}

impl Activity<'_> {
    fn touch(&self) {
        self.last_ms.set(self.clock.now_ms());
    }

    /// A stream's timer of `timeout` fired: Ok if bytes moved since and
    /// the stream's timer is now armed for the rest, else the timeout.
    fn rearm(&self, stream: &RefCell<Stream>, timeout: Duration, read: bool) -> Result<(), ()> {
        let left = self.clock.left(self.last_ms.get(), timeout).ok_or(())?;
        set_timeout(stream, left, read);
        Ok(())
    }
}

fn set_timeout(stream: &RefCell<Stream>, t: Duration, read: bool) {
    let s = stream.borrow();
    let _ = if read {
        s.tcp().set_read_timeout(Some(t))
    } else {
        s.tcp().set_write_timeout(Some(t))
    };
}

/// Relays until both directions end or one fails. `bufs` are the two
/// copy buffers (client→server, server→client); `clock` is the worker's.
pub(crate) async fn relay(
    client: &RefCell<Stream>,
    server: &RefCell<Stream>,
    timeouts: Timeouts,
    bufs: (&mut [u8], &mut [u8]),
    clock: &Coarse,
) -> RelayOutcome {
    for (stream, t) in [(client, timeouts.client), (server, timeouts.server)] {
        let s = stream.borrow();
        let _ = s.tcp().set_read_timeout(Some(t));
        let _ = s.tcp().set_write_timeout(Some(t));
    }
    let activity = Activity {
        clock,
        last_ms: Cell::new(clock.now_ms()),
    };
    let up_bytes = Cell::new(0u64);
    let down_bytes = Cell::new(0u64);
    let (tc, ts) = (timeouts.client, timeouts.server);
    let up = pump(
        Side::Client,
        (client, tc),
        (server, ts),
        bufs.0,
        &up_bytes,
        &activity,
    );
    let down = pump(
        Side::Server,
        (server, ts),
        (client, tc),
        bufs.1,
        &down_bytes,
        &activity,
    );
    let end = both_or_first_error(up, down).await;
    RelayOutcome {
        end,
        client_to_server: up_bytes.get(),
        server_to_client: down_bytes.get(),
    }
}

/// Copies `from` → `to` until end-of-stream (then shuts down `to`'s
/// writes) or an error. Each stream comes with its side's timeout, which
/// its read and write timers were set to.
async fn pump(
    from_side: Side,
    (from, from_timeout): (&RefCell<Stream>, Duration),
    (to, to_timeout): (&RefCell<Stream>, Duration),
    buf: &mut [u8],
    bytes: &Cell<u64>,
    activity: &Activity<'_>,
) -> Result<(), RelayEnd> {
    let to_side = match from_side {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    };
    // Whether a timer was armed for less than the full timeout.
    let (mut read_short, mut write_short) = (false, false);
    loop {
        let n = match Borrowed(from).read(buf).await {
            Ok(0) => {
                shutdown_writes(to).await;
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                // Silent for as long as the timer ran; the connection is
                // idle only if no byte moved the other way meanwhile.
                activity
                    .rearm(from, from_timeout, true)
                    .map_err(|()| RelayEnd::Timeout(from_side))?;
                read_short = true;
                continue;
            }
            Err(_) => return Err(RelayEnd::Abort(from_side)),
        };
        activity.touch();
        if read_short {
            set_timeout(from, from_timeout, true);
            read_short = false;
        }
        let mut done = 0;
        // Over TLS, records may wait in the session: flushed after.
        let mut flushed = false;
        while !flushed {
            let r = if done < n {
                Borrowed(to).write(&buf[done..n]).await
            } else {
                Borrowed(to).flush().await.map(|()| 0)
            };
            match r {
                Ok(0) if done < n => return Err(RelayEnd::Abort(to_side)),
                Ok(k) => {
                    done += k;
                    flushed = done == n && k == 0;
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    activity
                        .rearm(to, to_timeout, false)
                        .map_err(|()| RelayEnd::Timeout(to_side))?;
                    write_short = true;
                }
                Err(_) => return Err(RelayEnd::Abort(to_side)),
            }
        }
        if write_short {
            set_timeout(to, to_timeout, false);
            write_short = false;
        }
        bytes.set(bytes.get() + n as u64);
    }
}

/// Sends a FIN (after a TLS close_notify): the peer sees end-of-stream,
/// its own sending continues. The stream is borrowed one poll at a time,
/// so the other direction keeps reading meanwhile.
pub(crate) async fn shutdown_writes(stream: &RefCell<Stream>) {
    let _ = Borrowed(stream).close().await;
}

/// Waits for both directions; the first error ends the relay at once.
async fn both_or_first_error(
    a: impl Future<Output = Result<(), RelayEnd>>,
    b: impl Future<Output = Result<(), RelayEnd>>,
) -> RelayEnd {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut a_done, mut b_done) = (false, false);
    std::future::poll_fn(|cx| {
        for (fut, done) in [
            (a.as_mut() as Pin<&mut dyn Future<Output = _>>, &mut a_done),
            (b.as_mut() as Pin<&mut dyn Future<Output = _>>, &mut b_done),
        ] {
            if !*done && let Poll::Ready(r) = fut.poll(cx) {
                if let Err(end) = r {
                    return Poll::Ready(end);
                }
                *done = true;
            }
        }
        if a_done && b_done {
            Poll::Ready(RelayEnd::Done)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Reads and writes a stream that lives in a `RefCell`, borrowing it only
/// for the length of one poll.
pub(crate) struct Borrowed<'a>(pub &'a RefCell<Stream>);

impl AsyncRead for Borrowed<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Borrowed<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}
