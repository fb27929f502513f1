//! Logging: operational messages (with a level, to stderr) and one line
//! per connection in HAProxy's `tcplog` format (to stdout, stderr or a
//! file).
//!
//! Connection lines are formatted into a per-worker buffer and written out
//! by a flusher task every `FLUSH_EVERY`; nothing is formatted for a
//! frontend that logs nowhere. A buffer that reaches `MAX_BUFFERED` drops
//! further lines and counts them rather than slowing the proxy.

use crate::config::LogTarget;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often buffered connection logs are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Buffered bytes per target beyond which lines are dropped (and counted).
const MAX_BUFFERED: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Notice,
    Warning,
    Alert,
}

/// Writes an operational message to stderr: `[LEVEL] (pid) : message`.
pub fn ops(level: Level, args: fmt::Arguments) {
    let tag = match level {
        Level::Notice => "NOTICE",
        Level::Warning => "WARNING",
        Level::Alert => "ALERT",
    };
    let line = format!("[{tag}] ({}) : {args}\n", std::process::id());
    // One write per line keeps lines from different workers whole.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

#[macro_export]
macro_rules! notice {
    ($($arg:tt)*) => { $crate::log::ops($crate::log::Level::Notice, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! warning {
    ($($arg:tt)*) => { $crate::log::ops($crate::log::Level::Warning, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! alert {
    ($($arg:tt)*) => { $crate::log::ops($crate::log::Level::Alert, format_args!($($arg)*)) };
}

/// Limits operational messages a client can cause (a bad TLS hello...) to
/// `PER_SECOND` a second per worker, so a flood of bad connections cannot
/// flood stderr; the next message printed says how many were left out.
#[derive(Default)]
pub struct Throttle {
    window: Cell<Option<std::time::Instant>>,
    printed: Cell<u32>,
    suppressed: Cell<u64>,
}

impl Throttle {
    const PER_SECOND: u32 = 10;

    /// `Some(n)`: print now, noting `n` messages left out before it;
    /// `None`: leave this one out.
    pub fn allow(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let fresh = self
            .window
            .get()
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1));
        if fresh {
            self.window.set(Some(now));
            self.printed.set(0);
        }
        if self.printed.get() >= Self::PER_SECOND {
            self.suppressed.set(self.suppressed.get() + 1);
            return None;
        }
        self.printed.set(self.printed.get() + 1);
        Some(self.suppressed.replace(0))
    }
}

/// One connection-log destination of one worker.
struct Sink {
    target: LogTarget,
    /// Kept open for files; stdout and stderr are borrowed.
    _file: Option<OwnedFd>,
    fd: RawFd,
    buf: RefCell<Vec<u8>>,
    dropped: Cell<u64>,
}

/// A worker's connection-log destinations.
pub struct Sinks {
    sinks: Vec<Sink>,
}

/// Which sinks a frontend writes to (indexes into `Sinks`).
pub type SinkSet = Vec<usize>;

impl Sinks {
    /// Opens every distinct target; returns the sinks and, per list of
    /// targets given, the indexes to use.
    pub fn open(targets: &[&[LogTarget]]) -> std::io::Result<(Sinks, Vec<SinkSet>)> {
        let mut sinks: Vec<Sink> = Vec::new();
        let mut sets = Vec::new();
        for list in targets {
            let mut set = Vec::new();
            for t in *list {
                let idx = match sinks.iter().position(|s| s.target == *t) {
                    Some(i) => i,
                    None => {
                        sinks.push(Sink::open(t)?);
                        sinks.len() - 1
                    }
                };
                if !set.contains(&idx) {
                    set.push(idx);
                }
            }
            sets.push(set);
        }
        Ok((Sinks { sinks }, sets))
    }

    /// Appends one line (without its newline) to each sink of `set`.
    pub fn line(&self, set: &SinkSet, write: impl Fn(&mut Vec<u8>)) {
        for &i in set {
            let s = &self.sinks[i];
            let mut buf = s.buf.borrow_mut();
            if buf.len() >= MAX_BUFFERED {
                s.dropped.set(s.dropped.get() + 1);
                continue;
            }
            write(&mut buf);
            buf.push(b'\n');
        }
    }

    /// Writes out everything buffered. Called by the flusher and at exit.
    pub fn flush(&self) {
        for s in &self.sinks {
            let mut buf = s.buf.borrow_mut();
            if !buf.is_empty() {
                write_all_fd(s.fd, &buf);
                buf.clear();
            }
            let dropped = s.dropped.replace(0);
            if dropped > 0 {
                crate::warning!(
                    "{dropped} connection log lines dropped: the log target is too slow"
                );
            }
        }
    }
}

impl Sink {
    fn open(t: &LogTarget) -> std::io::Result<Sink> {
        let (file, fd) = match t {
            LogTarget::Stdout => (None, 1),
            LogTarget::Stderr => (None, 2),
            LogTarget::File(path) => {
                use std::os::unix::fs::OpenOptionsExt;
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o640)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("log file {}: {e}", path.display()))
                    })?;
                let fd = f.as_raw_fd();
                (Some(OwnedFd::from(f)), fd)
            }
        };
        Ok(Sink {
            target: t.clone(),
            _file: file,
            fd,
            buf: RefCell::new(Vec::with_capacity(16 << 10)),
            dropped: Cell::new(0),
        })
    }
}

fn write_all_fd(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: `fd` is open for the life of the sink; `data` is valid.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

/// Everything a `tcplog` line says about one connection.
pub struct TcpLog<'a> {
    pub client: SocketAddr,
    pub accepted: SystemTime,
    pub frontend: &'a str,
    pub backend: &'a str,
    /// None: no server was reached (`<NOSRV>`).
    pub server: Option<&'a str>,
    /// Time waiting in queues (Tw), None if the connection never got there.
    pub queue: Option<Duration>,
    /// Time to connect to the server (Tc), None if it never connected.
    pub connect: Option<Duration>,
    /// Total time the connection was open (Tt).
    pub total: Duration,
    /// Bytes sent to the client.
    pub bytes_out: u64,
    /// Termination state, two characters as in HAProxy (`--`, `SC`, `cD`...).
    pub termination: [u8; 2],
    /// Connections open on this worker, on the frontend, the backend and
    /// the server when the connection was logged, and retries it took.
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srvconn: u32,
    pub retries: u32,
    /// Connections queued on the server and backend.
    pub srv_queue: u32,
    pub be_queue: u32,
    /// The client connection is TLS that corral terminated (`%ft` then
    /// ends with `~`, as HAProxy marks SSL frontends).
    pub tls: bool,
}

impl TcpLog<'_> {
    /// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`
    pub fn write(&self, out: &mut Vec<u8>) {
        let ms = |d: Option<Duration>| d.map_or(-1, |d| d.as_millis() as i64);
        write_ip(out, &self.client);
        let _ = write!(out, ":{} [", self.client.port());
        write_date(out, self.accepted);
        let _ = write!(
            out,
            "] {}{} {}/{} {}/{}/{} {} {}{} {}/{}/{}/{}/{} {}/{}",
            self.frontend,
            if self.tls { "~" } else { "" },
            self.backend,
            self.server.unwrap_or("<NOSRV>"),
            ms(self.queue),
            ms(self.connect),
            self.total.as_millis(),
            self.bytes_out,
            self.termination[0] as char,
            self.termination[1] as char,
            self.actconn,
            self.feconn,
            self.beconn,
            self.srvconn,
            self.retries,
            self.srv_queue,
            self.be_queue,
        );
    }
}

/// Everything an `httplog` line says about one request.
pub struct HttpLog<'a> {
    pub client: SocketAddr,
    /// When the request started (its first byte, or the accept).
    pub date: SystemTime,
    pub frontend: &'a str,
    /// None: no backend was chosen (`<NOSRV>` server too).
    pub backend: Option<&'a str>,
    pub server: Option<&'a str>,
    /// TR: time to receive the whole request head.
    pub head: Option<Duration>,
    /// Tw, Tc: queue and connect times.
    pub queue: Option<Duration>,
    pub connect: Option<Duration>,
    /// Tr: server response time (request sent to response head).
    pub response: Option<Duration>,
    /// Ta: the request's total active time.
    pub total: Duration,
    /// ST: status sent to the client (0 if none).
    pub status: u16,
    /// B: bytes sent to the client.
    pub bytes_out: u64,
    /// Termination state: cause and state, as in HAProxy (`--`, `PR`, `sH`...).
    pub termination: [u8; 2],
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srvconn: u32,
    pub retries: u32,
    pub srv_queue: u32,
    pub be_queue: u32,
    /// Captured request and response header values (`{a|b}` when some
    /// captures are configured).
    pub captured_request: Option<&'a [Vec<u8>]>,
    pub captured_response: Option<&'a [Vec<u8>]>,
    /// The request line, or None for a request that could not be parsed.
    pub request_line: Option<(&'a [u8], &'a [u8], u8)>,
    /// The client connection's TLS session (`%ft` gets a `~`).
    pub tls: Option<&'a rustls::ServerConnection>,
    /// `option httpslog`: HAProxy's TLS fields after the request line.
    pub httpslog: bool,
}

impl HttpLog<'_> {
    /// `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc
    /// %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`, HAProxy's httplog.
    pub fn write(&self, out: &mut Vec<u8>) {
        let ms = |d: Option<Duration>| d.map_or(-1, |d| d.as_millis() as i64);
        write_ip(out, &self.client);
        let _ = write!(out, ":{} [", self.client.port());
        write_date(out, self.date);
        let _ = write!(
            out,
            "] {}{} {}/{} {}/{}/{}/{}/{} {} {} - - {}{}-- {}/{}/{}/{}/{} {}/{} ",
            self.frontend,
            if self.tls.is_some() { "~" } else { "" },
            self.backend.unwrap_or(self.frontend),
            self.server.unwrap_or("<NOSRV>"),
            ms(self.head),
            ms(self.queue),
            ms(self.connect),
            ms(self.response),
            self.total.as_millis(),
            if self.status == 0 {
                -1
            } else {
                i64::from(self.status)
            },
            self.bytes_out,
            self.termination[0] as char,
            self.termination[1] as char,
            self.actconn,
            self.feconn,
            self.beconn,
            self.srvconn,
            self.retries,
            self.srv_queue,
            self.be_queue,
        );
        for captured in [self.captured_request, self.captured_response]
            .into_iter()
            .flatten()
        {
            out.push(b'{');
            for (i, v) in captured.iter().enumerate() {
                if i > 0 {
                    out.push(b'|');
                }
                out.extend(v.iter().map(|&b| {
                    if b == b'|' || b == b'}' || b < b' ' {
                        b'_'
                    } else {
                        b
                    }
                }));
            }
            out.extend_from_slice(b"} ");
        }
        out.push(b'"');
        match self.request_line {
            Some((method, target, minor)) => {
                out.extend_from_slice(method);
                out.push(b' ');
                out.extend(target.iter().map(|&b| if b == b'"' { b'_' } else { b }));
                let _ = write!(out, " HTTP/1.{minor}");
            }
            None => out.extend_from_slice(b"<BADREQ>"),
        }
        out.push(b'"');
        if self.httpslog {
            write_tls_fields(out, self.tls);
        }
    }
}

/// httpslog's `%[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err]/%[ssl_c_ca_err]/
/// %[ssl_fc_is_resumed] %[ssl_fc_sni]/%sslv/%sslc`. Errors are always 0:
/// a connection whose handshake failed never carries a request.
fn write_tls_fields(out: &mut Vec<u8>, tls: Option<&rustls::ServerConnection>) {
    let resumed = tls.is_some_and(|s| s.handshake_kind() == Some(rustls::HandshakeKind::Resumed));
    let _ = write!(out, " 0/0/0/0/{} ", u8::from(resumed));
    let sni = tls.and_then(|s| s.server_name()).unwrap_or("-");
    let version = tls
        .and_then(|s| s.protocol_version())
        .map_or("-", crate::tls::names::protocol);
    let cipher = tls
        .and_then(|s| s.negotiated_cipher_suite())
        .map_or("-", |c| crate::tls::names::cipher(c.suite()));
    let _ = write!(out, "{sni}/{version}/{cipher}");
}

/// The client address as HAProxy prints it (IPv4-mapped IPv6 as IPv4).
fn write_ip(out: &mut Vec<u8>, a: &SocketAddr) {
    let _ = match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => write!(out, "{v4}"),
            None => write!(out, "{}", v6.ip()),
        },
        SocketAddr::V4(v4) => write!(out, "{}", v4.ip()),
    };
}

/// `ip:port` of a client, as log lines start.
pub fn write_client(out: &mut Vec<u8>, a: &SocketAddr) {
    write_ip(out, a);
    let _ = write!(out, ":{}", a.port());
}

/// `21/Nov/2026:18:11:05.123` in UTC.
pub fn write_date(out: &mut Vec<u8>, t: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let _ = write!(
        out,
        "{d:02}/{}/{y}:{:02}:{:02}:{:02}.{:03}",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    );
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_ten_a_second_through_and_counts_the_rest() {
        let t = Throttle::default();
        for _ in 0..10 {
            assert_eq!(t.allow(), Some(0));
        }
        assert_eq!(t.allow(), None);
        assert_eq!(t.allow(), None);
        // A new window: the next message carries the count.
        t.window
            .set(Some(std::time::Instant::now() - Duration::from_secs(2)));
        assert_eq!(t.allow(), Some(2));
        assert_eq!(t.allow(), Some(0));
    }

    #[test]
    fn dates_are_haproxy_shaped() {
        let mut out = Vec::new();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_284_665_123);
        write_date(&mut out, t);
        assert_eq!(String::from_utf8(out).unwrap(), "21/Nov/2026:18:11:05.123");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn tcplog_line_byte_exact() {
        let rec = TcpLog {
            client: "127.0.1.7:40000".parse().unwrap(),
            accepted: UNIX_EPOCH + Duration::from_millis(1_795_284_665_123),
            frontend: "db_front",
            backend: "db",
            server: Some("db1"),
            queue: Some(Duration::from_millis(0)),
            connect: Some(Duration::from_millis(2)),
            total: Duration::from_millis(5012),
            bytes_out: 1234,
            termination: *b"--",
            actconn: 3,
            feconn: 2,
            beconn: 2,
            srvconn: 1,
            retries: 0,
            srv_queue: 0,
            be_queue: 0,
            tls: false,
        };
        let mut out = Vec::new();
        rec.write(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "127.0.1.7:40000 [21/Nov/2026:18:11:05.123] db_front db/db1 0/2/5012 1234 -- 3/2/2/1/0 0/0"
        );
    }

    #[test]
    fn httplog_line_byte_exact() {
        let captured = [b"site1.example.com".to_vec()];
        let rec = HttpLog {
            client: "10.1.2.3:5000".parse().unwrap(),
            date: UNIX_EPOCH + Duration::from_millis(1_795_284_665_123),
            frontend: "web",
            backend: Some("static"),
            server: Some("s1"),
            head: Some(Duration::from_millis(1)),
            queue: Some(Duration::ZERO),
            connect: Some(Duration::from_millis(2)),
            response: Some(Duration::from_millis(3)),
            total: Duration::from_millis(7),
            status: 200,
            bytes_out: 512,
            termination: *b"--",
            actconn: 1,
            feconn: 1,
            beconn: 1,
            srvconn: 1,
            retries: 0,
            srv_queue: 0,
            be_queue: 0,
            captured_request: Some(&captured),
            captured_response: None,
            request_line: Some((b"GET", b"/static/app.js", 1)),
            tls: None,
            httpslog: false,
        };
        let mut out = Vec::new();
        rec.write(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "10.1.2.3:5000 [21/Nov/2026:18:11:05.123] web static/s1 1/0/2/3/7 200 512 - - ---- 1/1/1/1/0 0/0 {site1.example.com} \"GET /static/app.js HTTP/1.1\""
        );
    }

    #[test]
    fn no_server_and_unreached_phases() {
        let rec = TcpLog {
            client: "[::ffff:10.0.0.1]:5".parse().unwrap(),
            accepted: UNIX_EPOCH,
            frontend: "f",
            backend: "b",
            server: None,
            queue: None,
            connect: None,
            total: Duration::from_millis(7),
            bytes_out: 0,
            termination: *b"SC",
            actconn: 1,
            feconn: 1,
            beconn: 1,
            srvconn: 0,
            retries: 3,
            srv_queue: 0,
            be_queue: 0,
            tls: false,
        };
        let mut out = Vec::new();
        rec.write(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "10.0.0.1:5 [01/Jan/1970:00:00:00.000] f b/<NOSRV> -1/-1/7 0 SC 1/1/1/0/3 0/0"
        );
    }
}
