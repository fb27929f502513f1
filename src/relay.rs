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
//!   the connection too.
//! - An error on either side ends both directions at once.
//!
//! Both directions run in the connection's own task; each stream sits in a
//! `RefCell` that is borrowed only inside a single poll, never across an
//! await.

use crate::stream::Stream;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

/// Which end of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// Both directions reached end-of-stream.
    Done,
    /// A side stayed silent for its timeout.
    Timeout(Side),
    /// A side reset the connection or failed.
    Abort(Side),
}

impl RelayEnd {
    /// The first character of HAProxy's termination state.
    pub fn cause(self) -> u8 {
        match self {
            RelayEnd::Done => b'-',
            RelayEnd::Timeout(Side::Client) => b'c',
            RelayEnd::Timeout(Side::Server) => b's',
            RelayEnd::Abort(Side::Client) => b'C',
            RelayEnd::Abort(Side::Server) => b'S',
        }
    }
}

/// What a relay did.
#[derive(Debug, Clone, Copy)]
pub struct RelayOutcome {
    pub end: RelayEnd,
    /// Bytes read from the client and written to the server.
    pub client_to_server: u64,
    /// Bytes read from the server and written to the client.
    pub server_to_client: u64,
}

/// The two inactivity timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub client: Duration,
    pub server: Duration,
}

/// What each direction has done: counters bumped on every read and every
/// completed write. A read that times out compares the other direction's
/// counter with its value when the read began: unchanged means no byte
/// moved either way for the whole timeout. No clock is read.
#[derive(Default)]
struct Activity {
    up: Cell<u64>,
    down: Cell<u64>,
}

/// Relays until both directions end or one fails. `bufs` are the two
/// copy buffers (client→server, server→client).
pub async fn relay(
    client: &RefCell<Stream>,
    server: &RefCell<Stream>,
    timeouts: Timeouts,
    bufs: (&mut [u8], &mut [u8]),
) -> RelayOutcome {
    for (stream, t) in [(client, timeouts.client), (server, timeouts.server)] {
        let s = stream.borrow();
        let _ = s.tcp().set_read_timeout(Some(t));
        let _ = s.tcp().set_write_timeout(Some(t));
    }
    let activity = Activity::default();
    let up_bytes = Cell::new(0u64);
    let down_bytes = Cell::new(0u64);
    let up = pump(Side::Client, client, server, bufs.0, &up_bytes, &activity);
    let down = pump(Side::Server, server, client, bufs.1, &down_bytes, &activity);
    let end = both_or_first_error(up, down).await;
    RelayOutcome {
        end,
        client_to_server: up_bytes.get(),
        server_to_client: down_bytes.get(),
    }
}

/// Copies `from` → `to` until end-of-stream (then shuts down `to`'s
/// writes) or an error.
async fn pump(
    from_side: Side,
    from: &RefCell<Stream>,
    to: &RefCell<Stream>,
    buf: &mut [u8],
    bytes: &Cell<u64>,
    activity: &Activity,
) -> Result<(), RelayEnd> {
    let to_side = match from_side {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    };
    let (mine, other) = match from_side {
        Side::Client => (&activity.up, &activity.down),
        Side::Server => (&activity.down, &activity.up),
    };
    loop {
        let other_before = other.get();
        let n = match Borrowed(from).read(buf).await {
            Ok(0) => {
                shutdown_writes(to).await;
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                // This side was silent for its whole timeout; the
                // connection is idle only if the other direction was too.
                if other.get() != other_before {
                    continue;
                }
                return Err(RelayEnd::Timeout(from_side));
            }
            Err(_) => return Err(RelayEnd::Abort(from_side)),
        };
        mine.set(mine.get() + 1);
        let mut to_stream = Borrowed(to);
        let written = match to_stream.write_all(&buf[..n]).await {
            // Over TLS, records may wait in the session: send them now.
            Ok(()) => to_stream.flush().await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(RelayEnd::Timeout(to_side));
            }
            Err(_) => return Err(RelayEnd::Abort(to_side)),
        }
        mine.set(mine.get() + 1);
        bytes.set(bytes.get() + n as u64);
    }
}

/// Sends a FIN (after a TLS close_notify): the peer sees end-of-stream,
/// its own sending continues. The stream is borrowed one poll at a time,
/// so the other direction keeps reading meanwhile.
pub async fn shutdown_writes(stream: &RefCell<Stream>) {
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
pub struct Borrowed<'a>(pub &'a RefCell<Stream>);

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
