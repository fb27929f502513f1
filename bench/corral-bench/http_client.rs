//! One HTTP/1.1 exchange on a load connection: write the ready-made
//! request with one write, then read the response head (parsed with
//! httparse) and skip its body (Content-Length, chunked, or up to the
//! end of the stream), counting its bytes. Nothing is allocated per
//! request.

use crate::chunked::Chunked;
use crate::connection::Done;
use crate::rxbuf::RxBuf;
use crate::stats::ErrorKind;
use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use std::io;

/// Most response headers accepted.
const MAX_HEADERS: usize = 64;

/// What the client needs from a response head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Bytes of the head, blank line included.
    pub len: usize,
    /// Status code.
    pub code: u16,
    /// The server keeps the connection open after this response.
    pub keep_alive: bool,
    /// The body is chunked.
    pub chunked: bool,
    /// The body's Content-Length, if given.
    pub content_length: Option<u64>,
}

/// Parses a response head at the start of `data`: Ok(None) when more
/// bytes are needed, Err for a malformed head.
pub(crate) fn parse_head(data: &[u8]) -> Result<Option<Head>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(data) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let code = res.code.ok_or(())?;
    let mut keep_alive = res.version == Some(1);
    let mut chunked = false;
    let mut content_length: Option<u64> = None;
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| ())?.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let n: u64 = v.parse().map_err(|_| ())?;
            if content_length.is_some_and(|c| c != n) {
                return Err(());
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked when it is the last coding applied.
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && res.version == Some(0) {
                    keep_alive = true;
                }
            }
        }
    }
    Ok(Some(Head {
        len,
        code,
        keep_alive,
        chunked,
        content_length,
    }))
}

/// How the body of a response ends.
enum Body {
    None,
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

/// Reads more into `rx`: Err(Closed) at the end of the stream.
async fn more<S: AsyncRead + Unpin>(stream: &mut S, rx: &mut RxBuf) -> Result<(), ErrorKind> {
    match rx.fill(stream).await {
        Ok(0) => Err(ErrorKind::Closed),
        Ok(_) => Ok(()),
        Err(_) => Err(ErrorKind::Read),
    }
}

/// Reads once more for a stream whose end is awaited: Ok(true) at the end.
/// Over TLS a peer that closes without a close_notify alert gives an
/// `UnexpectedEof` error, which is an end too here: the response is
/// complete, or delimited by the close.
async fn until_end<S: AsyncRead + Unpin>(
    stream: &mut S,
    rx: &mut RxBuf,
) -> Result<bool, ErrorKind> {
    match rx.fill(stream).await {
        Ok(0) => Ok(true),
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(true),
        Err(_) => Err(ErrorKind::Read),
    }
}

/// Sends `request` and reads one complete response. `head_request`: the
/// method was HEAD. `close_mode`: the request asked the server to close;
/// once the response is complete, the end of the stream is awaited too
/// (so the server, which closes first, keeps the TIME_WAIT).
pub(crate) async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    rx: &mut RxBuf,
    request: &[u8],
    head_request: bool,
    close_mode: bool,
) -> Result<Done, ErrorKind> {
    stream
        .write_all(request)
        .await
        .map_err(|_| ErrorKind::Write)?;
    // Nothing for a TCP stream; over TLS, whatever the write left in the
    // session goes out.
    stream.flush().await.map_err(|_| ErrorKind::Write)?;
    let mut bytes = 0u64;
    let head = loop {
        match parse_head(rx.data()) {
            Ok(Some(h)) => {
                rx.consume(h.len);
                bytes += h.len as u64;
                // Interim responses (100 Continue...) precede the real one;
                // 101 would switch protocols and is final.
                if (100..200).contains(&h.code) && h.code != 101 {
                    continue;
                }
                break h;
            }
            Ok(None) if rx.is_full() => return Err(ErrorKind::Parse),
            Ok(None) => more(stream, rx).await?,
            Err(()) => return Err(ErrorKind::Parse),
        }
    };
    let mut body = if head_request || head.code == 204 || head.code == 304 || head.code == 101 {
        Body::None
    } else if head.chunked {
        Body::Chunked(Chunked::default())
    } else if let Some(n) = head.content_length {
        Body::Length(n)
    } else {
        Body::UntilClose
    };
    loop {
        match &mut body {
            Body::None => break,
            Body::Length(left) => {
                let take = (*left).min(rx.len() as u64);
                rx.consume(take as usize);
                bytes += take;
                *left -= take;
                if *left == 0 {
                    break;
                }
            }
            Body::Chunked(c) => {
                let used = c.feed(rx.data()).map_err(|_| ErrorKind::Parse)?;
                rx.consume(used);
                bytes += used as u64;
                if c.is_done() {
                    break;
                }
            }
            Body::UntilClose => {
                bytes += rx.len() as u64;
                rx.clear();
                if until_end(stream, rx).await? {
                    break;
                }
                continue;
            }
        }
        more(stream, rx).await?;
    }
    let until_close = matches!(body, Body::UntilClose);
    let keep_alive = head.keep_alive && !until_close;
    if close_mode && !until_close {
        // Whatever else the server sends is ignored; its close ends this.
        loop {
            rx.clear();
            if until_end(stream, rx).await? {
                break;
            }
        }
    }
    Ok(Done {
        bytes,
        keep_alive,
        status_ok: (200..400).contains(&head.code),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(
            h,
            Head {
                len: 39,
                code: 200,
                keep_alive: true,
                chunked: false,
                content_length: Some(13)
            }
        );
        let h = parse_head(
            b"HTTP/1.0 500 X\r\nConnection: keep-alive\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(h.keep_alive && h.chunked && h.code == 500);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Len"), Ok(None));
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .is_err()
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
