//! A connection's receive buffer: allocated once per connection (or once
//! per load task), filled by large reads, consumed from the front.
//!
//! Large reads matter with glommio: after a read that does not fill the
//! buffer, its stream arms an io_uring readiness poll before the next read,
//! so each read should take everything that is there.

use futures_lite::io::{AsyncRead, AsyncReadExt};
use std::io;

/// Bytes read from a stream and not yet used.
pub(crate) struct RxBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl RxBuf {
    /// An empty buffer of `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> RxBuf {
        RxBuf {
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The unused bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// How many unused bytes there are.
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when no unused byte is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Marks `n` bytes from the front as used.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Forgets all unused bytes (a new connection).
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// True when unused bytes fill the whole buffer (nothing more can be
    /// read until some are consumed).
    pub(crate) fn is_full(&self) -> bool {
        self.len() == self.buf.len()
    }

    /// Reads once from `stream`, after the unused bytes. Ok(0) is the end
    /// of the stream (or a full buffer: check `is_full` first).
    pub(crate) async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<usize> {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_resets_when_empty() {
        let mut b = RxBuf::new(8);
        b.buf[..5].copy_from_slice(b"hello");
        b.end = 5;
        b.consume(2);
        assert_eq!(b.data(), b"llo");
        b.consume(10);
        assert!(b.is_empty());
        assert_eq!((b.start, b.end), (0, 0));
    }
}
