//! A connection's byte stream, plain TCP or TLS, behind one type.
//!
//! Everything past the handshake (HTTP sessions, the TCP relay, the server
//! pool) reads and writes a [`Stream`]; only the socket-level calls
//! (timeouts, no-delay, addresses, half-close) need the TCP socket under
//! it, which [`Stream::tcp`] gives.
//!
//! A TLS stream is boxed: rustls's connection state is large, and the
//! plain variant, the common case, stays the size of a TCP stream.

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::{client, server};
use glommio::net::TcpStream;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A client or server connection.
pub(crate) enum Stream {
    Plain(TcpStream),
    /// A client connection whose TLS corral terminates.
    TlsIn(Box<server::TlsStream<TcpStream>>),
    /// A connection to a server over TLS (`servers.X.tls`).
    TlsOut(Box<client::TlsStream<TcpStream>>),
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream::Plain(s)
    }
}

impl Stream {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::TlsIn(t) => t.get_ref().0,
            Stream::TlsOut(t) => t.get_ref().0,
        }
    }

    /// The TLS session of a terminated client connection.
    pub(crate) fn tls_in(&self) -> Option<&rustls::ServerConnection> {
        match self {
            Stream::TlsIn(t) => Some(t.get_ref().1),
            _ => None,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }
}

/// A TLS peer that closes its socket without a close_notify alert is
/// treated as a plain end of stream: most HTTP clients and servers do it,
/// and the data before it was authenticated record by record.
fn eof_is_end(r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
    match r {
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(0)),
        other => other,
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::TlsIn(t) => eof_is_end(Pin::new(&mut **t).poll_read(cx, buf)),
            Stream::TlsOut(t) => eof_is_end(Pin::new(&mut **t).poll_read(cx, buf)),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::TlsIn(t) => Pin::new(&mut **t).poll_write(cx, buf),
            Stream::TlsOut(t) => Pin::new(&mut **t).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::TlsIn(t) => Pin::new(&mut **t).poll_flush(cx),
            Stream::TlsOut(t) => Pin::new(&mut **t).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::TlsIn(t) => Pin::new(&mut **t).poll_close(cx),
            Stream::TlsOut(t) => Pin::new(&mut **t).poll_close(cx),
        }
    }
}
