//! A connection with its read buffer, and I/O bounded by deadlines.
//!
//! HTTP code never uses glommio's per-stream read timeouts: a read that
//! loses a race (waiting on the client and the server at once) is dropped,
//! and a dropped glommio read can leave its stream timer armed (see
//! NOTES-glommio). Instead each wait races its own timer, created only if
//! the operation actually has to wait.

use crate::io::bufpool::BufPool;
use crate::io::stream::Stream;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::timer::Timer;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Why an I/O operation did not complete.
#[derive(Debug)]
pub(crate) enum IoFail {
    /// The deadline passed.
    Timeout,
    /// The peer reset the connection or another error occurred.
    Error(io::Error),
}

/// When an operation must have completed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Deadline {
    /// At a fixed time (the whole request head by `timeout http-request`).
    At(Instant),
    /// This long after the operation first has to wait (inactivity
    /// timeouts). Most operations complete at once and never read the
    /// clock or arm a timer.
    After(Duration),
}

/// Runs `fut` until `deadline`.
pub(crate) async fn until<T>(
    deadline: Deadline,
    fut: impl Future<Output = T>,
) -> Result<T, IoFail> {
    let mut fut = pin!(fut);
    let mut timer: Option<Timer> = None;
    std::future::poll_fn(|cx: &mut Context<'_>| {
        // A timer that fired ends the operation without polling it again:
        // glommio's write tries a `send` on every poll, and the few bytes
        // a full socket buffer still takes would count as progress (an
        // inactivity timeout would fire at twice its value).
        if let Some(t) = timer.as_mut()
            && Pin::new(t).poll(cx).is_ready()
        {
            return Poll::Ready(Err(IoFail::Timeout));
        }
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let wait = match deadline {
            Deadline::At(at) => at.saturating_duration_since(Instant::now()),
            Deadline::After(d) => d,
        };
        let t = timer.get_or_insert_with(|| Timer::new(wait));
        match Pin::new(t).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(IoFail::Timeout)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Writes all of `data` to `stream` (and flushes it) by `deadline`.
///
/// With `Deadline::After`, the limit counts from the last progress: each
/// write that moves bytes starts it again, so a slow reader that keeps
/// reading is never cut off, and one that stops is cut off that long
/// after its last byte (not that long after the first wait).
pub(crate) async fn write_all<W: AsyncWriteExt + Unpin>(
    stream: &mut W,
    mut data: &[u8],
    deadline: Deadline,
) -> Result<(), IoFail> {
    while !data.is_empty() {
        match until(deadline, stream.write(data)).await? {
            Ok(0) => return Err(IoFail::Error(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => data = &data[n..],
            Err(e) => return Err(IoFail::Error(e)),
        }
    }
    // Over TLS, records may wait in the session: send them now.
    until(deadline, stream.flush())
        .await?
        .map_err(IoFail::Error)
}

/// A connection's read buffer while its stream is elsewhere
/// ([`Conn::split`]).
pub(crate) struct ReadSide {
    pub buf: Box<[u8]>,
    pub start: usize,
    pub end: usize,
    pub received: u64,
}

impl ReadSide {
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes from `stream` (no deadline: the caller races it).
    /// Ok(0) is end of stream; a full buffer is an error.
    pub(crate) async fn fill_from<R: AsyncReadExt + Unpin>(
        &mut self,
        stream: &mut R,
    ) -> io::Result<usize> {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(io::Error::other("buffer full"));
        }
        let n = stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        self.received += n as u64;
        Ok(n)
    }
}

/// A stream and the bytes read from it but not yet used.
pub(crate) struct Conn {
    pub stream: Stream,
    /// The read buffer; empty (no allocation) while an idle connection
    /// waits, so idle keep-alive connections hold no buffer.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes read from the stream in total.
    pub received: u64,
}

impl Conn {
    /// A connection whose first bytes were already read (by the task that
    /// watched it while it was parked).
    pub(crate) fn with_data(stream: Stream, mut buf: Box<[u8]>, first: &[u8]) -> Conn {
        buf[..first.len()].copy_from_slice(first);
        Conn {
            stream,
            buf,
            start: 0,
            end: first.len(),
            received: first.len() as u64,
        }
    }

    pub(crate) fn new(stream: Stream, buf: Box<[u8]>) -> Conn {
        Conn {
            stream,
            buf,
            start: 0,
            end: 0,
            received: 0,
        }
    }

    /// Unused bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// True when the buffer holds as much unused data as it can.
    pub(crate) fn is_full(&self) -> bool {
        !self.buf.is_empty() && self.end - self.start == self.buf.len()
    }

    /// Gives up the read buffer while nothing unread is in it (between
    /// requests). `fill_with` takes one again when bytes arrive.
    pub(crate) fn release(&mut self) -> Option<Box<[u8]>> {
        (self.start == self.end && !self.buf.is_empty()).then(|| {
            self.start = 0;
            self.end = 0;
            std::mem::take(&mut self.buf)
        })
    }

    /// Like `fill`, but first takes a buffer from `pool` if the connection
    /// gave its own up: the wait itself uses a small read on the stack,
    /// so a connection that stays idle never holds a pooled buffer.
    pub(crate) async fn fill_with(
        &mut self,
        pool: &BufPool,
        deadline: Deadline,
    ) -> Result<usize, IoFail> {
        if !self.buf.is_empty() {
            return self.fill(deadline).await;
        }
        let mut first = [0u8; 512];
        let n = until(deadline, self.stream.read(&mut first))
            .await?
            .map_err(IoFail::Error)?;
        if n == 0 {
            return Ok(0);
        }
        self.buf = pool.take();
        self.buf[..n].copy_from_slice(&first[..n]);
        self.start = 0;
        self.end = n;
        self.received += n as u64;
        Ok(n)
    }

    /// Reads more bytes (after the unused ones). Ok(0) is end of stream.
    pub(crate) async fn fill(&mut self, deadline: Deadline) -> Result<usize, IoFail> {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(IoFail::Error(io::Error::other("buffer full")));
        }
        let (stream, room) = (&mut self.stream, &mut self.buf[self.end..]);
        let n = until(deadline, stream.read(room))
            .await?
            .map_err(IoFail::Error)?;
        self.end += n;
        self.received += n as u64;
        Ok(n)
    }

    /// Writes all of `data`.
    pub(crate) async fn write_all(
        &mut self,
        data: &[u8],
        deadline: Deadline,
    ) -> Result<(), IoFail> {
        write_all(&mut self.stream, data, deadline).await
    }

    /// Gives back the stream, the buffer, and the unused bytes' range.
    pub(crate) fn into_parts(self) -> (Stream, Box<[u8]>, std::ops::Range<usize>) {
        (self.stream, self.buf, self.start..self.end)
    }

    /// Its read side apart from its stream, while the stream is used
    /// elsewhere (written and read by two futures at once); `rejoin`
    /// puts the two together again.
    pub(crate) fn split(self) -> (Stream, ReadSide) {
        let side = ReadSide {
            buf: self.buf,
            start: self.start,
            end: self.end,
            received: self.received,
        };
        (self.stream, side)
    }

    pub(crate) fn rejoin(stream: Stream, side: ReadSide) -> Conn {
        Conn {
            stream,
            buf: side.buf,
            start: side.start,
            end: side.end,
            received: side.received,
        }
    }

    /// Whether an idle connection is still usable: nothing to read and no
    /// end of stream pending (one non-blocking peek).
    pub(crate) fn idle_and_open(stream: &Stream) -> bool {
        use std::os::fd::AsRawFd;
        let mut b = [0u8; 1];
        // SAFETY: a one-byte peek into a local buffer.
        let n = unsafe {
            libc::recv(
                stream.tcp().as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }
}
