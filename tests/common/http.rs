//! HTTP pieces of the harness: a recording keep-alive HTTP/1.1 server
//! whose answers a test chooses, and a small raw client.

use super::{Server, WAIT};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server received it.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub minor: u8,
    pub headers: Vec<(String, String)>,
    /// The head exactly as received.
    pub raw_head: Vec<u8>,
    pub body_len: u64,
    /// FNV-1a of the body.
    pub body_sum: u64,
    /// The first 64 KiB of the body.
    pub body: Vec<u8>,
    /// Which accepted connection carried it (0-based).
    pub conn: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// How the server answers a request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Close the connection after this response.
    pub close: bool,
    /// Wait this long before answering.
    pub delay: Duration,
}

#[derive(Debug, Clone)]
pub enum Body {
    /// With Content-Length.
    Bytes(Vec<u8>),
    /// `Transfer-Encoding: chunked`, these chunks, optional trailers.
    Chunks(Vec<Vec<u8>>, Vec<(String, String)>),
    /// `len` pseudo-random bytes (seed 7), chunked or with Content-Length.
    Generated { len: u64, chunked: bool },
    /// No framing header: the body ends when the server closes.
    UntilClose(Vec<u8>),
    /// `101 Switching Protocols`, then echo every byte back.
    UpgradeEcho,
    /// Raw bytes written as the whole response (for broken servers).
    Raw(Vec<u8>),
}

impl Reply {
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: Body::Bytes(body.as_bytes().to_vec()),
            close: false,
            delay: Duration::ZERO,
        }
    }

    pub fn with(body: Body) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body,
            close: false,
            delay: Duration::ZERO,
        }
    }
}

pub type Respond = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A recording HTTP/1.1 server.
pub struct HttpServer {
    pub server: Server,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    /// Every byte received, on every connection.
    pub bytes_received: Arc<Mutex<u64>>,
}

impl HttpServer {
    pub fn start(respond: Respond) -> HttpServer {
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let bytes: Arc<Mutex<u64>> = Arc::default();
        let conns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (r, b) = (requests.clone(), bytes.clone());
        let server = Server::start(Arc::new(move |s: TcpStream| {
            let id = conns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            serve(s, id, &respond, &r, &b);
        }));
        HttpServer {
            server,
            requests,
            bytes_received: bytes,
        }
    }

    /// Answers `hello from NAME` and echoes nothing else.
    pub fn named(name: &str) -> HttpServer {
        let text = format!("hello from {name}\n");
        HttpServer::start(Arc::new(move |_| Reply::text(200, &text)))
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn received(&self) -> u64 {
        *self.bytes_received.lock().unwrap()
    }
}

/// FNV-1a, for body checksums.
pub fn fnv(sum: &mut u64, data: &[u8]) {
    for &b in data {
        *sum = (*sum ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
}
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Deterministic test bytes (xorshift64*).
pub fn generate(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

struct Counting<'a> {
    inner: &'a TcpStream,
    bytes: &'a Mutex<u64>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (&mut &*self.inner).read(buf)?;
        *self.bytes.lock().unwrap() += n as u64;
        Ok(n)
    }
}

fn serve(
    s: TcpStream,
    conn: usize,
    respond: &Respond,
    log: &Mutex<Vec<Recorded>>,
    bytes: &Mutex<u64>,
) {
    let _ = s.set_read_timeout(Some(WAIT));
    let _ = s.set_nodelay(true);
    let mut reader = BufReader::with_capacity(64 << 10, Counting { inner: &s, bytes });
    let mut writer = &s;
    loop {
        // The head, line by line.
        let mut raw = Vec::new();
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            raw.extend_from_slice(&line);
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            if raw.len() > 1 << 20 {
                return;
            }
        }
        let mut storage = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut storage);
        if !matches!(req.parse(&raw), Ok(httparse::Status::Complete(_))) {
            // Record what arrived so a test can see it, then give up.
            log.lock().unwrap().push(Recorded {
                raw_head: raw,
                conn,
                ..Default::default()
            });
            return;
        }
        let mut rec = Recorded {
            method: req.method.unwrap_or("").into(),
            target: req.path.unwrap_or("").into(),
            minor: req.version.unwrap_or(1),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            raw_head: raw.clone(),
            conn,
            body_sum: FNV_START,
            ..Default::default()
        };
        // The body.
        let chunked = rec
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length: u64 = rec
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let take = |rec: &mut Recorded, data: &[u8]| {
            fnv(&mut rec.body_sum, data);
            rec.body_len += data.len() as u64;
            let room = (64usize << 10).saturating_sub(rec.body.len());
            rec.body.extend_from_slice(&data[..data.len().min(room)]);
        };
        let expect = rec
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expect {
            let _ = writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let mut buf = vec![0u8; 64 << 10];
        if chunked {
            loop {
                let mut size_line = String::new();
                if reader.read_line(&mut size_line).unwrap_or(0) == 0 {
                    return;
                }
                let size =
                    u64::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                        .unwrap_or(0);
                if size == 0 {
                    // Trailers up to the blank line.
                    loop {
                        let mut t = String::new();
                        if reader.read_line(&mut t).unwrap_or(0) == 0 || t == "\r\n" {
                            break;
                        }
                    }
                    break;
                }
                let mut left = size;
                while left > 0 {
                    let n = buf.len().min(left as usize);
                    if reader.read_exact(&mut buf[..n]).is_err() {
                        return;
                    }
                    take(&mut rec, &buf[..n]);
                    left -= n as u64;
                }
                let mut crlf = [0u8; 2];
                if reader.read_exact(&mut crlf).is_err() {
                    return;
                }
            }
        } else {
            let mut left = length;
            while left > 0 {
                let n = buf.len().min(left as usize);
                if reader.read_exact(&mut buf[..n]).is_err() {
                    log.lock().unwrap().push(rec);
                    return;
                }
                take(&mut rec, &buf[..n]);
                left -= n as u64;
            }
        }
        let reply = respond(&rec);
        let close_req = rec
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || rec.minor == 0;
        let head_req = rec.method == "HEAD";
        log.lock().unwrap().push(rec);
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        if write_reply(&mut writer, &reply, head_req, &mut reader).is_err() {
            return;
        }
        if reply.close
            || close_req
            || matches!(
                reply.body,
                Body::UntilClose(_) | Body::UpgradeEcho | Body::Raw(_)
            )
        {
            return;
        }
    }
}

fn write_reply(
    w: &mut &TcpStream,
    r: &Reply,
    head_req: bool,
    reader: &mut impl Read,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", r.status);
    for (n, v) in &r.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if r.close {
        head.push_str("Connection: close\r\n");
    }
    match &r.body {
        Body::Bytes(b) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
            w.write_all(head.as_bytes())?;
            if !head_req {
                w.write_all(b)?;
            }
        }
        Body::Chunks(chunks, trailers) => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            w.write_all(head.as_bytes())?;
            for c in chunks {
                w.write_all(format!("{:x}\r\n", c.len()).as_bytes())?;
                w.write_all(c)?;
                w.write_all(b"\r\n")?;
            }
            w.write_all(b"0\r\n")?;
            for (n, v) in trailers {
                w.write_all(format!("{n}: {v}\r\n").as_bytes())?;
            }
            w.write_all(b"\r\n")?;
        }
        Body::Generated { len, chunked } => {
            if *chunked {
                head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            } else {
                head.push_str(&format!("Content-Length: {len}\r\n\r\n"));
            }
            w.write_all(head.as_bytes())?;
            let mut state = 7u64;
            let mut buf = vec![0u8; 256 << 10];
            let mut left = *len;
            while left > 0 {
                let n = buf.len().min(left as usize);
                generate(&mut state, &mut buf[..n]);
                if *chunked {
                    w.write_all(format!("{n:x}\r\n").as_bytes())?;
                    w.write_all(&buf[..n])?;
                    w.write_all(b"\r\n")?;
                } else {
                    w.write_all(&buf[..n])?;
                }
                left -= n as u64;
            }
            if *chunked {
                w.write_all(b"0\r\n\r\n")?;
            }
        }
        Body::UntilClose(b) => {
            head.push_str("\r\n");
            w.write_all(head.as_bytes())?;
            w.write_all(b)?;
        }
        Body::UpgradeEcho => {
            w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")?;
            let mut buf = [0u8; 4096];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                w.write_all(&buf[..n])?;
            }
        }
        Body::Raw(bytes) => w.write_all(bytes)?,
    }
    Ok(())
}

// ---- a raw client ------------------------------------------------------

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The head as received.
    pub raw_head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive client connection that sends raw requests.
pub struct Client {
    reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from(super::connect(addr))
    }

    pub fn from(stream: TcpStream) -> Client {
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).unwrap();
    }

    /// Sends `GET path` with `Host: host` and reads the response.
    pub fn get(&mut self, path: &str, host: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        self.response(false).expect("a response")
    }

    /// Reads one response (`head`: the request was HEAD). None if the
    /// connection closed first.
    pub fn response(&mut self, head: bool) -> Option<Response> {
        let mut raw = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            raw.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut lines = raw.lines();
        let status_line = lines.next()?;
        let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
            raw_head: raw,
        };
        if head || status == 204 || status == 304 || (100..200).contains(&status) {
            return Some(resp);
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).ok()?;
                let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
                if n == 0 {
                    loop {
                        let mut t = String::new();
                        self.reader.read_line(&mut t).ok()?;
                        if t == "\r\n" || t.is_empty() {
                            break;
                        }
                        resp.headers.push(("trailer".into(), t.trim().into()));
                    }
                    break;
                }
                let mut chunk = vec![0u8; n + 2];
                self.reader.read_exact(&mut chunk).ok()?;
                resp.body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(len) = resp
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            let mut body = vec![0u8; len];
            self.reader.read_exact(&mut body).ok()?;
            resp.body = body;
        } else {
            self.reader.read_to_end(&mut resp.body).ok()?;
        }
        Some(resp)
    }

    /// True when the server closed the connection (reads end of stream).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, path: &str, host: &str) -> Response {
    Client::connect(addr).get(path, host)
}

/// Sends raw bytes on a fresh connection and reads one response.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<Response> {
    let mut c = Client::connect(addr);
    c.send(bytes);
    c.response(false)
}
