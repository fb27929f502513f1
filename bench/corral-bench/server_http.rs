//! The built-in HTTP backend: keep-alive HTTP/1.1 answering every request
//! with one fixed response, built once at start-up.
//!
//! Requests are parsed with httparse; pipelined requests already buffered
//! are answered together with one write. `Connection: close` and HTTP/1.0
//! (without `Connection: keep-alive`) get a response saying close, then
//! the connection is closed. Request bodies (Content-Length or chunked)
//! are read and dropped. Nothing is allocated per request.

use crate::chunked::Chunked;
use crate::rxbuf::RxBuf;
use crate::server::ServerStats;
use futures_lite::io::AsyncWriteExt;
use glommio::net::TcpStream;
use std::net::Shutdown;

/// Receive buffer per connection (requests are small; large enough for
/// several pipelined ones).
const RX_BUFFER: usize = 16 << 10;
/// Most request headers accepted.
const MAX_HEADERS: usize = 64;
/// What the default body says.
const HELLO: &[u8] = b"hello world!\n";

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const HEAD_TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A ready-made response: its bytes and where its head ends (HEAD
/// requests get the head only).
#[derive(Clone)]
struct Response {
    bytes: Vec<u8>,
    head_len: usize,
}

impl Response {
    fn new(status: u16, connection: Option<&str>, body: &[u8]) -> Response {
        let mut bytes = format!(
            "HTTP/1.1 {status} {}\r\nServer: corral-bench\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
            reason(status),
            body.len()
        )
        .into_bytes();
        if let Some(c) = connection {
            bytes.extend_from_slice(format!("Connection: {c}\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        let head_len = bytes.len();
        bytes.extend_from_slice(body);
        Response { bytes, head_len }
    }

    fn for_method(&self, head: bool) -> &[u8] {
        if head {
            &self.bytes[..self.head_len]
        } else {
            &self.bytes
        }
    }
}

/// The three forms of the configured response.
#[derive(Clone)]
pub(crate) struct HttpResponses {
    /// HTTP/1.1, connection kept.
    keep: Response,
    /// HTTP/1.0 client that asked for keep-alive.
    keep_10: Response,
    /// The connection closes after this response.
    close: Response,
}

impl HttpResponses {
    /// Responses with `status` and a body of `body_size` bytes ("hello
    /// world!\n" repeated and cut to size).
    pub(crate) fn new(status: u16, body_size: usize) -> HttpResponses {
        let body: Vec<u8> = HELLO.iter().copied().cycle().take(body_size).collect();
        HttpResponses {
            keep: Response::new(status, None, &body),
            keep_10: Response::new(status, Some("keep-alive"), &body),
            close: Response::new(status, Some("close"), &body),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// The body that follows a request head.
enum Body {
    None,
    Length(u64),
    Chunked(Chunked),
}

/// What the server needs from a request head.
struct Request {
    len: usize,
    head: bool,
    close: bool,
    http10: bool,
    expect_continue: bool,
    body: Body,
}

/// Parses a request head at the start of `data`: Ok(None) when more bytes
/// are needed, Err when it is malformed.
fn parse_request(data: &[u8]) -> Result<Option<Request>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(data) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let http10 = req.version == Some(0);
    let mut close = http10;
    let mut expect_continue = false;
    let mut body = Body::None;
    let mut length: Option<u64> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| ())?.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let n = v.parse().map_err(|_| ())?;
            if length.is_some_and(|l| l != n) {
                return Err(());
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                // The body's end could not be found.
                return Err(());
            }
            body = Body::Chunked(Chunked::default());
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    close = false;
                }
            }
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
    }
    if matches!(body, Body::Chunked(_)) {
        if length.is_some() {
            // Both framings at once: refused, as a proxy would.
            return Err(());
        }
    } else if let Some(n) = length.filter(|n| *n > 0) {
        body = Body::Length(n);
    }
    Ok(Some(Request {
        len,
        head: req.method == Some("HEAD"),
        close,
        http10,
        expect_continue,
        body,
    }))
}

/// Serves one connection until the client closes it (or asks to).
pub(crate) async fn handle(mut stream: TcpStream, responses: &HttpResponses, stats: &ServerStats) {
    let _ = stream.set_nodelay(true);
    let mut rx = RxBuf::new(RX_BUFFER);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut body = Body::None;
    loop {
        let mut closing = false;
        // Answer every complete request already buffered.
        loop {
            match &mut body {
                Body::None => {}
                Body::Length(left) => {
                    let take = (*left).min(rx.len() as u64);
                    rx.consume(take as usize);
                    *left -= take;
                    if *left > 0 {
                        break;
                    }
                    body = Body::None;
                }
                Body::Chunked(c) => match c.feed(rx.data()) {
                    Ok(used) => {
                        rx.consume(used);
                        if !c.is_done() {
                            break;
                        }
                        body = Body::None;
                    }
                    Err(_) => {
                        out.extend_from_slice(BAD_REQUEST);
                        closing = true;
                        break;
                    }
                },
            }
            if rx.is_empty() {
                break;
            }
            match parse_request(rx.data()) {
                Ok(Some(req)) => {
                    rx.consume(req.len);
                    stats.requests.set(stats.requests.get() + 1);
                    let has_body = !matches!(req.body, Body::None);
                    if req.expect_continue && has_body && !req.http10 {
                        out.extend_from_slice(CONTINUE);
                    }
                    let r = if req.close {
                        &responses.close
                    } else if req.http10 {
                        &responses.keep_10
                    } else {
                        &responses.keep
                    };
                    // Answered at once; the body is dropped as it comes.
                    out.extend_from_slice(r.for_method(req.head));
                    body = req.body;
                    if req.close {
                        closing = true;
                        break;
                    }
                }
                Ok(None) => {
                    if rx.is_full() {
                        out.extend_from_slice(HEAD_TOO_LARGE);
                        closing = true;
                    }
                    break;
                }
                Err(()) => {
                    out.extend_from_slice(BAD_REQUEST);
                    closing = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if closing {
            break;
        }
        match rx.fill(&mut stream).await {
            Ok(0) | Err(_) => return,
            Ok(n) => stats.bytes.set(stats.bytes.get() + n as u64),
        }
    }
    // Our side first: the client reads the response, then the end.
    let _ = stream.shutdown(Shutdown::Write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let r = parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.close && !r.http10 && !r.head && matches!(r.body, Body::None));
        let r = parse_request(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(r.close && r.http10);
        let r = parse_request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.close);
        let r = parse_request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.close && matches!(r.body, Body::Length(5)));
        let r = parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(matches!(r.body, Body::Chunked(_)));
        assert!(parse_request(b"GET / HTTP/1.1\r\nHost").unwrap().is_none());
        assert!(parse_request(b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").is_err());
        assert!(parse_request(b"\x01\x02 nonsense\r\n\r\n").is_err());
    }

    #[test]
    fn responses() {
        let r = HttpResponses::new(200, 13);
        let text = String::from_utf8(r.keep.bytes.clone()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.ends_with("Content-Length: 13\r\n\r\nhello world!\n"));
        assert_eq!(r.keep.for_method(true).len(), text.len() - 13);
        let big = HttpResponses::new(500, 30);
        assert!(
            big.close
                .bytes
                .ends_with(b"\r\n\r\nhello world!\nhello world!\nhell")
        );
    }
}
