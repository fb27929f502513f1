//! Logging: operational messages (with a level, to stderr and to the
//! `global.log` syslog targets whose level takes them) and one line
//! per connection in HAProxy's `tcplog`/`httplog` formats, to stdout,
//! stderr, a file or a syslog socket (unix datagram or UDP).
//!
//! Connection lines are formatted by the connection task into a
//! per-worker buffer per target; nothing is formatted for a frontend that
//! logs nowhere. A flusher task writes them out every `FLUSH_EVERY`,
//! adding the syslog header there (one per flush, not per line). Nothing
//! waits on a target: sockets and pipes are written without blocking, what
//! a target does not take stays buffered, and a buffer that reaches
//! `MAX_BUFFERED` drops further lines and counts them; drops are reported
//! at most once a second per target and worker, and in total at stop.

use crate::config::{LogDest, LogFormat, LogTarget};
use crate::observe::termination::Termination;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Notice,
    Warning,
    Alert,
}

impl Level {
    /// The syslog severity HAProxy sends it at.
    fn severity(self) -> u8 {
        match self {
            Level::Notice => 5,
            Level::Warning => 4,
            Level::Alert => 1,
        }
    }
}

/// Reports what validation of `config` found valid but likely not meant,
/// as warnings (validation itself prints nothing).
pub(crate) fn config_warnings(config: &crate::config::Config) {
    for w in &config.warnings {
        crate::warning!("{w}");
    }
}

/// Writes an operational message to stderr, `[LEVEL] (pid) : message`,
/// and to each syslog target of [`send_ops_to`] whose level takes it.
pub(crate) fn ops(level: Level, args: fmt::Arguments) {
    let tag = match level {
        Level::Notice => "NOTICE",
        Level::Warning => "WARNING",
        Level::Alert => "ALERT",
    };
    let line = format!("[{tag}] ({}) : {args}\n", std::process::id());
    // One write per line keeps lines from different workers whole.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(targets) = OPS_TARGETS.get() {
        let message = &line[line.find(" : ").map_or(0, |i| i + 3)..];
        for t in targets {
            t.send(level, message);
        }
    }
}

/// The syslog targets that receive operational messages in this process:
/// the `global.log` sockets (unix datagram, UDP), as HAProxy sends its
/// alerts and notices to its `log` lines. Set once, at start-up; each
/// generation is a process of its own, so a reload's new targets apply to
/// the new generation's messages.
static OPS_TARGETS: OnceLock<Vec<OpsTarget>> = OnceLock::new();

/// One syslog target for operational messages.
struct OpsTarget {
    target: LogTarget,
    /// Non-blocking: a target that does not take a message loses it.
    socket: socket2::Socket,
    to: socket2::SockAddr,
    host: String,
}

impl OpsTarget {
    fn send(&self, level: Level, message: &str) {
        let t = &self.target;
        if level.severity() > t.level {
            return;
        }
        let severity = level.severity().max(t.min_level);
        let mut out = Vec::with_capacity(message.len() + 64);
        write_header(
            &mut out,
            t,
            &self.host,
            std::process::id(),
            SystemTime::now(),
            severity,
        );
        let (header, body) = framed(&out, message.as_bytes(), t.max_len);
        let mut datagram = header.to_vec();
        datagram.extend_from_slice(body);
        if !datagram.ends_with(b"\n") {
            datagram.push(b'\n');
        }
        let _ = self.socket.send_to(&datagram, &self.to);
    }
}

/// Sends this process's operational messages from now on to the syslog
/// sockets among `targets` (the first call wins). A target that cannot be
/// set up is said on stderr and left out.
pub(crate) fn send_ops_to(targets: &[LogTarget]) {
    let host = hostname();
    let mut list = Vec::new();
    for t in targets {
        let made = match &t.dest {
            LogDest::Unix(path) => socket2::SockAddr::unix(path).and_then(|to| {
                Ok((
                    socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::DGRAM, None)?,
                    to,
                ))
            }),
            LogDest::Udp(addr) => socket2::Socket::new(
                socket2::Domain::for_address(*addr),
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )
            .map(|s| (s, socket2::SockAddr::from(*addr))),
            _ => continue,
        };
        match made.and_then(|(socket, to)| socket.set_nonblocking(true).map(|()| (socket, to))) {
            Ok((socket, to)) => list.push(OpsTarget {
                target: t.clone(),
                socket,
                to,
                host: host.clone(),
            }),
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "[WARNING] ({}) : global.log {}: operational messages not sent there: {e}",
                    std::process::id(),
                    t.dest
                );
            }
        }
    }
    let _ = OPS_TARGETS.set(list);
}

/// Logs an operational message at `notice` level (stderr and the
/// `global.log` targets), `format!`-style.
#[macro_export]
macro_rules! notice {
    ($($arg:tt)*) => { $crate::observe::log::ops($crate::observe::log::Level::Notice, format_args!($($arg)*)) };
}
/// Logs an operational message at `warning` level, `format!`-style.
#[macro_export]
macro_rules! warning {
    ($($arg:tt)*) => { $crate::observe::log::ops($crate::observe::log::Level::Warning, format_args!($($arg)*)) };
}
/// Logs an operational message at `alert` level, `format!`-style.
#[macro_export]
macro_rules! alert {
    ($($arg:tt)*) => { $crate::observe::log::ops($crate::observe::log::Level::Alert, format_args!($($arg)*)) };
}

/// Limits operational messages a client can cause (a bad TLS hello...) to
/// `PER_SECOND` a second per worker, so a flood of bad connections cannot
/// flood stderr; the next message printed says how many were left out.
#[derive(Default)]
pub(crate) struct Throttle {
    window: Cell<Option<std::time::Instant>>,
    printed: Cell<u32>,
    suppressed: Cell<u64>,
}

impl Throttle {
    const PER_SECOND: u32 = 10;

    /// `Some(n)`: print now, noting `n` messages left out before it;
    /// `None`: leave this one out.
    pub(crate) fn allow(&self) -> Option<u64> {
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
    out: Out,
    /// Keeps files, reopened streams and sockets open.
    _owned: Option<OwnedFd>,
    /// Lines waiting to go out, each ending in `\n`.
    lines: RefCell<Vec<u8>>,
    /// Stream targets: bytes framed (header, line, newline) and not yet
    /// written, the rest of a write the target did not take.
    pending: RefCell<Vec<u8>>,
    /// The syslog header of the current flush.
    header: RefCell<Vec<u8>>,
    host: Rc<str>,
    pid: u32,
    /// Lines dropped since the last warning, and in all.
    dropped: Cell<u64>,
    dropped_total: Cell<u64>,
    /// The error behind the drops since the last warning (None: the
    /// target was too slow).
    error: Cell<Option<i32>>,
    /// When drops were last reported.
    warned: Cell<Option<Instant>>,
    /// A quick retry is scheduled.
    retrying: Cell<bool>,
}

/// How a sink's bytes leave the worker; no way blocks it.
enum Out {
    /// A byte stream: `chunk` bytes at most per call, cut after a line,
    /// so that a pipe shared by workers gets whole lines (a write of at
    /// most PIPE_BUF bytes to a pipe is atomic).
    Stream {
        fd: RawFd,
        how: WriteBy,
        chunk: usize,
    },
    /// A syslog socket: one datagram per line, sent with `sendmmsg`.
    Datagram { fd: RawFd, to: socket2::SockAddr },
}

#[derive(Clone, Copy)]
enum WriteBy {
    /// `write(2)`: a regular file (where a write is quick), or a pipe or
    /// terminal opened non-blocking for this worker alone.
    Plain,
    /// `send(2)` with `MSG_DONTWAIT`: a stream socket (stdout under
    /// systemd), whose flags are shared with whoever gave it to us.
    Socket,
    /// A pipe or terminal that could not be reopened non-blocking: a
    /// write only when `poll` says there is room, PIPE_BUF at most.
    Polled,
}

/// What a flush left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flushed {
    /// Nothing.
    All,
    /// Lines the target took none of (a stuck receiver): they wait for
    /// the next round.
    Stuck,
    /// Lines, after the target took some: worth trying again soon.
    Backlog,
}

/// How often buffered connection logs are written out.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Buffered bytes per target beyond which lines are dropped (and counted).
const MAX_BUFFERED: usize = 1 << 20;
/// A target that took lines and then pushed back (a syslog socket whose
/// queue is short) is tried again this soon, not a whole round later.
const RETRY_EVERY: Duration = Duration::from_millis(1);
/// At stop, how long lines still buffered may take to go out.
const CLOSE_WAIT: Duration = Duration::from_millis(250);
/// Drops are reported at most this often per target and worker.
const WARN_EVERY: Duration = Duration::from_secs(1);
/// Datagrams per `sendmmsg`.
const BATCH: usize = 64;
/// The tag of syslog headers.
const TAG: &str = "corral";

/// A worker's connection-log destinations.
pub(crate) struct Sinks {
    worker: usize,
    sinks: Vec<Rc<Sink>>,
}

/// Which sinks a frontend writes to (indexes into `Sinks`).
pub(crate) type SinkSet = Vec<usize>;

impl Sinks {
    /// Opens every distinct target (for worker `worker`); returns the
    /// sinks and, per list of targets given, the indexes to use. A target
    /// whose level lets no connection log through is left out.
    pub(crate) fn open(
        worker: usize,
        targets: &[&[LogTarget]],
    ) -> std::io::Result<(Sinks, Vec<SinkSet>)> {
        let host: Rc<str> = hostname().into();
        let mut sinks: Vec<Rc<Sink>> = Vec::new();
        let mut sets = Vec::new();
        for list in targets {
            let mut set = Vec::new();
            for t in list.iter().filter(|t| t.takes_connection_logs()) {
                let idx = match sinks.iter().position(|s| s.target == *t) {
                    Some(i) => i,
                    None => {
                        sinks.push(Rc::new(Sink::open(t, host.clone())?));
                        sinks.len() - 1
                    }
                };
                if !set.contains(&idx) {
                    set.push(idx);
                }
            }
            sets.push(set);
        }
        Ok((Sinks { worker, sinks }, sets))
    }

    /// Appends one line (without its newline) to each sink of `set`: it is
    /// formatted once, into the first sink with room, and copied to the
    /// others. A sink whose buffer is full counts the line as dropped.
    pub(crate) fn line(&self, set: &SinkSet, write: impl Fn(&mut Vec<u8>)) {
        let mut first: Option<(usize, usize)> = None;
        for &i in set {
            let s = &self.sinks[i];
            let mut lines = s.lines.borrow_mut();
            if lines.len() >= MAX_BUFFERED {
                s.drop_lines(1, None);
                continue;
            }
            match first {
                None => {
                    let start = lines.len();
                    write(&mut lines);
                    lines.push(b'\n');
                    first = Some((i, start));
                }
                Some((j, start)) => {
                    let src = self.sinks[j].lines.borrow();
                    lines.extend_from_slice(&src[start..]);
                }
            }
        }
    }

    /// Writes out what each target takes now (called by the flusher).
    /// A target that took some lines and pushed back gets quick retries;
    /// drops are reported, at most once a second per target.
    pub(crate) fn flush(&self) {
        for s in &self.sinks {
            if s.flush() == Flushed::Backlog && !s.retrying.replace(true) {
                let s = s.clone();
                glommio::spawn_local(async move {
                    loop {
                        glommio::timer::Timer::new(RETRY_EVERY).await;
                        if s.flush() != Flushed::Backlog {
                            break;
                        }
                    }
                    s.retrying.set(false);
                })
                .detach();
            }
            s.report(self.worker, false);
        }
    }

    /// At stop: writes out what is buffered, trying for `CLOSE_WAIT` at
    /// most; what is left is dropped. Reports drops and their total.
    pub(crate) async fn close(&self) {
        let deadline = Instant::now() + CLOSE_WAIT;
        loop {
            let mut left = false;
            for s in &self.sinks {
                left |= s.flush() != Flushed::All;
            }
            if !left || Instant::now() >= deadline {
                break;
            }
            glommio::timer::Timer::new(RETRY_EVERY).await;
        }
        for s in &self.sinks {
            s.discard();
            s.report(self.worker, true);
            let total = s.dropped_total.get();
            if total > 0 {
                crate::warning!(
                    "worker {}: log target {}: {total} lines dropped in all",
                    self.worker,
                    s.target.dest
                );
            }
        }
    }
}

impl Sink {
    fn open(t: &LogTarget, host: Rc<str>) -> std::io::Result<Sink> {
        let (out, owned) = match &t.dest {
            LogDest::Stdout => stream_out(1)?,
            LogDest::Stderr => stream_out(2)?,
            LogDest::File(path) => {
                use std::os::unix::fs::OpenOptionsExt;
                // Non-blocking: a FIFO without a reader is an error now
                // rather than a worker stuck opening it.
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o640)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("log file {}: {e}", path.display()))
                    })?;
                let fd = OwnedFd::from(f);
                let out = Out::Stream {
                    fd: fd.as_raw_fd(),
                    how: WriteBy::Plain,
                    chunk: if is_fifo(fd.as_raw_fd()) {
                        PIPE_BUF
                    } else {
                        MAX_BUFFERED
                    },
                };
                (out, Some(fd))
            }
            LogDest::Unix(path) => {
                let to = socket2::SockAddr::unix(path)?;
                datagram_out(socket2::Domain::UNIX, to, None)?
            }
            LogDest::Udp(addr) => datagram_out(
                socket2::Domain::for_address(*addr),
                socket2::SockAddr::from(*addr),
                Some(socket2::Protocol::UDP),
            )?,
        };
        Ok(Sink::new(t, out, owned, host))
    }

    fn new(t: &LogTarget, out: Out, owned: Option<OwnedFd>, host: Rc<str>) -> Sink {
        Sink {
            target: t.clone(),
            out,
            _owned: owned,
            lines: RefCell::new(Vec::with_capacity(16 << 10)),
            pending: RefCell::new(Vec::new()),
            header: RefCell::new(Vec::new()),
            host,
            pid: std::process::id(),
            dropped: Cell::new(0),
            dropped_total: Cell::new(0),
            error: Cell::new(None),
            warned: Cell::new(None),
            retrying: Cell::new(false),
        }
    }

    fn drop_lines(&self, n: u64, error: Option<i32>) {
        self.dropped.set(self.dropped.get() + n);
        self.dropped_total.set(self.dropped_total.get() + n);
        if error.is_some() {
            self.error.set(error);
        }
    }

    /// Writes what the target takes without waiting.
    fn flush(&self) -> Flushed {
        if self.lines.borrow().is_empty() && self.pending.borrow().is_empty() {
            return Flushed::All;
        }
        {
            let mut header = self.header.borrow_mut();
            header.clear();
            write_header(
                &mut header,
                &self.target,
                &self.host,
                self.pid,
                SystemTime::now(),
                self.target.connection_severity(),
            );
        }
        match &self.out {
            Out::Stream { fd, how, chunk } => self.flush_stream(*fd, *how, *chunk),
            Out::Datagram { fd, to } => self.flush_datagrams(*fd, to),
        }
    }

    fn flush_stream(&self, fd: RawFd, how: WriteBy, chunk: usize) -> Flushed {
        let mut pending = self.pending.borrow_mut();
        let mut lines = self.lines.borrow_mut();
        let mut progress = false;
        loop {
            if pending.is_empty() {
                if lines.is_empty() {
                    return Flushed::All;
                }
                if self.target.format == LogFormat::Raw && self.target.max_len.is_none() {
                    std::mem::swap(&mut *pending, &mut *lines);
                } else {
                    let header = self.header.borrow();
                    for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                        let (h, l) = framed(&header, line, self.target.max_len);
                        pending.extend_from_slice(h);
                        pending.extend_from_slice(l);
                        pending.push(b'\n');
                    }
                    lines.clear();
                }
            }
            let mut done = 0;
            while done < pending.len() {
                let rest = &pending[done..];
                let n = if rest.len() <= chunk {
                    rest.len()
                } else {
                    // Cut after the last whole line that fits, if any.
                    rest[..chunk]
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(chunk, |i| i + 1)
                };
                match write_some(fd, how, &rest[..n]) {
                    Ok(0) => break,
                    Ok(n) => {
                        done += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // The target is broken (a closed pipe...): what
                        // waits is lost.
                        let n = count_lines(&pending[done..]) + count_lines(&lines);
                        self.drop_lines(n, e.raw_os_error());
                        pending.clear();
                        lines.clear();
                        return Flushed::All;
                    }
                }
            }
            pending.drain(..done);
            if !pending.is_empty() {
                return if progress {
                    Flushed::Backlog
                } else {
                    Flushed::Stuck
                };
            }
        }
    }

    fn flush_datagrams(&self, fd: RawFd, to: &socket2::SockAddr) -> Flushed {
        const NEWLINE: &[u8] = b"\n";
        let mut lines = self.lines.borrow_mut();
        let header = self.header.borrow();
        let mut sent = 0;
        let mut progress = false;
        while sent < lines.len() {
            // SAFETY: all-zero is a valid iovec (null base, length 0).
            let mut iov: [libc::iovec; 3 * BATCH] = unsafe { std::mem::zeroed() };
            // SAFETY: all-zero is a valid mmsghdr (no name, no iovecs).
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            let mut ends = [0usize; BATCH];
            let mut n = 0;
            let mut at = sent;
            while n < BATCH && at < lines.len() {
                let end = lines[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(lines.len(), |i| at + i);
                let (h, l) = framed(&header, &lines[at..end], self.target.max_len);
                for (k, part) in [h, l, NEWLINE].into_iter().enumerate() {
                    iov[3 * n + k] = libc::iovec {
                        iov_base: part.as_ptr() as *mut libc::c_void,
                        iov_len: part.len(),
                    };
                }
                ends[n] = (end + 1).min(lines.len());
                at = ends[n];
                n += 1;
            }
            let base = iov.as_mut_ptr();
            for (k, msg) in msgs[..n].iter_mut().enumerate() {
                let m = &mut msg.msg_hdr;
                m.msg_name = to.as_ptr() as *mut libc::c_void;
                m.msg_namelen = to.len();
                // SAFETY: 3 * k + 2 < 3 * BATCH, inside `iov`.
                m.msg_iov = unsafe { base.add(3 * k) };
                m.msg_iovlen = 3;
            }
            // SAFETY: `msgs` points into `iov`, `lines`, `header` and `to`,
            // all alive and unmoved for the call; the kernel only reads them.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if r > 0 {
                sent = ends[r as usize - 1];
                progress = true;
                continue;
            }
            if r == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                // The receiver's queue (or ours) is full: the rest waits.
                Some(libc::EAGAIN | libc::ENOBUFS) => break,
                // This one line is too long for the socket.
                Some(libc::EMSGSIZE) => {
                    self.drop_lines(1, Some(libc::EMSGSIZE));
                    sent = ends[0];
                }
                // No receiver (ENOENT, ECONNREFUSED...): every line would
                // fail the same way.
                code => {
                    self.drop_lines(count_lines(&lines[sent..]), code);
                    sent = lines.len();
                }
            }
        }
        lines.drain(..sent);
        if lines.is_empty() {
            Flushed::All
        } else if progress {
            Flushed::Backlog
        } else {
            Flushed::Stuck
        }
    }

    /// Drops (and counts) whatever still waits.
    fn discard(&self) {
        let n = count_lines(&self.pending.borrow()) + count_lines(&self.lines.borrow());
        if n > 0 {
            self.drop_lines(n, None);
        }
        self.pending.borrow_mut().clear();
        self.lines.borrow_mut().clear();
    }

    /// Warns about lines dropped since the last warning, unless one was
    /// printed less than `WARN_EVERY` ago (`now`: regardless).
    fn report(&self, worker: usize, now: bool) {
        let n = self.dropped.get();
        if n == 0 {
            return;
        }
        let t = Instant::now();
        if !now
            && self
                .warned
                .get()
                .is_some_and(|w| t.duration_since(w) < WARN_EVERY)
        {
            return;
        }
        self.warned.set(Some(t));
        self.dropped.set(0);
        let dest = &self.target.dest;
        match self.error.take() {
            None => crate::warning!(
                "worker {worker}: log target {dest}: dropped {n} lines (receiver too slow)"
            ),
            Some(e) => crate::warning!(
                "worker {worker}: log target {dest}: dropped {n} lines (cannot send: {})",
                std::io::Error::from_raw_os_error(e)
            ),
        }
    }
}

/// The bytes a pipe takes atomically.
const PIPE_BUF: usize = libc::PIPE_BUF;

/// stdout or stderr, written without ever blocking the worker.
fn stream_out(fd: RawFd) -> std::io::Result<(Out, Option<OwnedFd>)> {
    // SAFETY: all-zero is a valid `stat` (plain integers).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat only writes `st`, which is valid; `fd` is 1 or 2.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let out = |fd, how, chunk| Out::Stream { fd, how, chunk };
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => (out(fd, WriteBy::Socket, 64 << 10), None),
        kind @ (libc::S_IFIFO | libc::S_IFCHR) => {
            let chunk = if kind == libc::S_IFIFO {
                PIPE_BUF
            } else {
                64 << 10
            };
            // O_NONBLOCK on fd 1 itself would be shared with the process
            // that gave it (a shell's terminal): open a description of our
            // own instead.
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(format!("/proc/self/fd/{fd}"))
            {
                Ok(f) => {
                    let own = OwnedFd::from(f);
                    (out(own.as_raw_fd(), WriteBy::Plain, chunk), Some(own))
                }
                Err(_) => (out(fd, WriteBy::Polled, PIPE_BUF), None),
            }
        }
        _ => (out(fd, WriteBy::Plain, MAX_BUFFERED), None),
    })
}

fn is_fifo(fd: RawFd) -> bool {
    // SAFETY: all-zero is a valid `stat` (plain integers).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat only writes `st`, which is valid for the call.
    unsafe { libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO }
}

/// A non-blocking datagram socket that receives nothing.
fn datagram_out(
    domain: socket2::Domain,
    to: socket2::SockAddr,
    protocol: Option<socket2::Protocol>,
) -> std::io::Result<(Out, Option<OwnedFd>)> {
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, protocol)?;
    s.set_nonblocking(true)?;
    // Nothing is read from it: keep its receive queue small.
    let _ = s.set_recv_buffer_size(1);
    // SAFETY: the descriptor moves out of the socket into the OwnedFd.
    let fd = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(s)) };
    Ok((
        Out::Datagram {
            fd: fd.as_raw_fd(),
            to,
        },
        Some(fd),
    ))
}

fn write_some(fd: RawFd, how: WriteBy, data: &[u8]) -> std::io::Result<usize> {
    let n = match how {
        // SAFETY: `fd` is open for the life of the sink; `data` is valid.
        WriteBy::Plain => unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) },
        // SAFETY: as above; MSG_DONTWAIT never blocks the worker.
        WriteBy::Socket => unsafe {
            libc::send(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        },
        WriteBy::Polled => {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd, no wait.
            if unsafe { libc::poll(&mut p, 1, 0) } != 1 || p.revents & libc::POLLOUT == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let len = data.len().min(PIPE_BUF);
            // SAFETY: as above.
            unsafe { libc::write(fd, data.as_ptr().cast(), len) }
        }
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// The header and line of one message cut to `max_len` bytes with its
/// newline (HAProxy's `len`).
fn framed<'a>(header: &'a [u8], line: &'a [u8], max_len: Option<usize>) -> (&'a [u8], &'a [u8]) {
    let Some(max) = max_len else {
        return (header, line);
    };
    let budget = max.saturating_sub(1);
    let h = header.len().min(budget);
    let l = line.len().min(budget - h);
    (&header[..h], &line[..l])
}

/// The syslog header of `t`'s format for a message sent at `now` with
/// syslog `severity`.
fn write_header(
    out: &mut Vec<u8>,
    t: &LogTarget,
    host: &str,
    pid: u32,
    now: SystemTime,
    severity: u8,
) {
    let pri = u32::from(t.facility) * 8 + u32::from(severity);
    match t.format {
        LogFormat::Raw => {}
        LogFormat::Rfc3164 => {
            let _ = write!(out, "<{pri}>");
            write_date_3164(out, now);
            let _ = write!(out, " {host} {TAG}[{pid}]: ");
        }
        LogFormat::Local => {
            let _ = write!(out, "<{pri}>");
            write_date_3164(out, now);
            let _ = write!(out, " {TAG}[{pid}]: ");
        }
        LogFormat::Rfc5424 => {
            let _ = write!(out, "<{pri}>1 ");
            write_date_iso(out, now);
            let _ = write!(out, " {host} {TAG} {pid} - - ");
        }
        LogFormat::Priority => {
            let _ = write!(out, "<{pri}>");
        }
        LogFormat::Short => {
            let _ = write!(out, "<{severity}>");
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A time broken down in UTC (every date corral writes is UTC).
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    min: u64,
    sec: u64,
    ms: u32,
}

impl Utc {
    fn of(t: SystemTime) -> Utc {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            min: rem % 3600 / 60,
            sec: rem % 60,
            ms: since.subsec_millis(),
        }
    }

    fn month_name(&self) -> &'static str {
        MONTHS[(self.month - 1) as usize]
    }
}

/// `Nov 22 00:16:25`, `Nov  2 00:16:25` (RFC 3164).
fn write_date_3164(out: &mut Vec<u8>, t: SystemTime) {
    let u = Utc::of(t);
    let (d, h, mi, s) = (u.day, u.hour, u.min, u.sec);
    let _ = write!(out, "{} {d:>2} {h:02}:{mi:02}:{s:02}", u.month_name());
}

/// `2026-11-22T00:16:25.401Z` (RFC 5424).
fn write_date_iso(out: &mut Vec<u8>, t: SystemTime) {
    let Utc {
        year: y,
        month: m,
        day: d,
        hour: h,
        min: mi,
        sec: s,
        ms,
    } = Utc::of(t);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
}

/// This machine's name, for syslog headers.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(h) if ok && !h.is_empty() && !h.contains(' ') => h.to_string(),
        _ => "localhost".to_string(),
    }
}

/// Everything a `tcplog` line says about one connection.
pub(crate) struct TcpLog<'a> {
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
    pub termination: Termination,
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
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let ms = |d: Option<Duration>| d.map_or(-1, |d| d.as_millis() as i64);
        let ts = self.termination.code();
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
            ts[0] as char,
            ts[1] as char,
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
pub(crate) struct HttpLog<'a> {
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
    pub termination: Termination,
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
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let ms = |d: Option<Duration>| d.map_or(-1, |d| d.as_millis() as i64);
        let ts = self.termination.code();
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
            ts[0] as char,
            ts[1] as char,
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
        .map_or("-", crate::base::tls_names::protocol);
    let cipher = tls
        .and_then(|s| s.negotiated_cipher_suite())
        .map_or("-", |c| crate::base::tls_names::cipher(c.suite()));
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
pub(crate) fn write_client(out: &mut Vec<u8>, a: &SocketAddr) {
    write_ip(out, a);
    let _ = write!(out, ":{}", a.port());
}

/// `21/Nov/2026:18:11:05.123` in UTC (httplog and tcplog).
pub(crate) fn write_date(out: &mut Vec<u8>, t: SystemTime) {
    let u = Utc::of(t);
    let (y, d, h, mi, s, ms) = (u.year, u.day, u.hour, u.min, u.sec, u.ms);
    let _ = write!(
        out,
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02}.{ms:03}",
        u.month_name()
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
    use crate::observe::termination::{Cause, Phase};

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

    fn target(text: &str) -> LogTarget {
        crate::config::parse_log_target(text).unwrap()
    }

    #[test]
    fn syslog_headers_are_byte_exact() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_284_665_123);
        let header = |text: &str, at: SystemTime| {
            let mut out = Vec::new();
            let t = target(text);
            write_header(&mut out, &t, "lb1", 4242, at, t.connection_severity());
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            header("/dev/log local0", t),
            "<134>Nov 21 18:11:05 lb1 corral[4242]: "
        );
        assert_eq!(
            header("/dev/log format local local0", t),
            "<134>Nov 21 18:11:05 corral[4242]: "
        );
        assert_eq!(
            header("127.0.0.1:514 format rfc5424 local3", t),
            "<158>1 2026-11-21T18:11:05.123Z lb1 corral 4242 - - "
        );
        assert_eq!(header("stdout format priority daemon", t), "<30>");
        assert_eq!(header("stdout format short daemon", t), "<6>");
        assert_eq!(header("stdout format short daemon info debug", t), "<7>");
        assert_eq!(header("stdout", t), "");
        // Days under 10 are padded with a space, as RFC 3164 says.
        let nov2 = UNIX_EPOCH + Duration::from_secs(20_759 * 86_400 + 7 * 3600 + 5);
        assert_eq!(
            header("/dev/log kern", nov2),
            "<6>Nov  2 07:00:05 lb1 corral[4242]: "
        );
    }

    #[test]
    fn len_cuts_header_and_line_and_keeps_room_for_the_newline() {
        assert_eq!(framed(b"HDR ", b"line", None), (&b"HDR "[..], &b"line"[..]));
        assert_eq!(
            framed(b"HDR ", b"line", Some(7)),
            (&b"HDR "[..], &b"li"[..])
        );
        assert_eq!(framed(b"HDR ", b"line", Some(3)), (&b"HD"[..], &b""[..]));
    }

    fn one_sink(text: &str) -> (Sinks, SinkSet) {
        let (sinks, mut sets) = Sinks::open(0, &[&[target(text)]]).unwrap();
        (sinks, sets.remove(0))
    }

    fn recv_all(rx: &std::os::unix::net::UnixDatagram) -> Vec<Vec<u8>> {
        rx.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = rx.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    }

    #[test]
    fn a_stuck_datagram_receiver_keeps_lines_buffered_until_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let (sinks, set) = one_sink(&format!("{} local0", path.display()));
        let lines = 2000;
        for i in 0..lines {
            sinks.line(&set, |out| {
                let _ = write!(out, "line {i:05} {}", "x".repeat(100));
            });
        }
        let sink = &sinks.sinks[0];
        // The receiver's queue takes some, then pushes back...
        assert_eq!(sink.flush(), Flushed::Backlog);
        // ...and while nobody reads, nothing more goes and nothing is lost.
        assert_eq!(sink.flush(), Flushed::Stuck);
        assert_eq!(sink.dropped_total.get(), 0);
        let mut got = Vec::new();
        for _ in 0..lines {
            got.extend(recv_all(&rx));
            if sink.flush() == Flushed::All {
                break;
            }
        }
        got.extend(recv_all(&rx));
        assert_eq!(got.len(), lines);
        for (i, d) in got.iter().enumerate() {
            let d = std::str::from_utf8(d).unwrap();
            assert!(d.starts_with("<134>"), "{d}");
            assert!(
                d.ends_with(&format!("]: line {i:05} {}\n", "x".repeat(100))),
                "{d}"
            );
        }
        assert_eq!(sink.dropped_total.get(), 0);
    }

    #[test]
    fn datagrams_without_a_receiver_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody.sock");
        let (sinks, set) = one_sink(&format!("{} local0", path.display()));
        for _ in 0..3 {
            sinks.line(&set, |out| out.extend_from_slice(b"lost"));
        }
        let sink = &sinks.sinks[0];
        assert_eq!(sink.flush(), Flushed::All);
        assert_eq!(sink.dropped_total.get(), 3);
        assert_eq!(sink.error.get(), Some(libc::ENOENT));
    }

    #[test]
    fn len_limits_each_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let (sinks, set) = one_sink(&format!("{} len 80 local0", path.display()));
        sinks.line(&set, |out| out.extend_from_slice(&[b'y'; 300]));
        assert_eq!(sinks.sinks[0].flush(), Flushed::All);
        let got = recv_all(&rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), 80);
        assert!(got[0].ends_with(b"yyy\n"));
    }

    #[test]
    fn a_line_is_formatted_once_for_several_targets_and_dropped_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let a = target(&format!("{}/a.sock local0", dir.path().display()));
        let b = target(&format!("{}/b.sock local1", dir.path().display()));
        let quiet = target(&format!("{}/c.sock local1 notice", dir.path().display()));
        let (sinks, sets) = Sinks::open(0, &[&[a, b, quiet]]).unwrap();
        // The `notice` target takes no connection logs: no sink for it.
        assert_eq!(sets[0], vec![0, 1]);
        let calls = Cell::new(0);
        sinks.line(&sets[0], |out| {
            calls.set(calls.get() + 1);
            out.extend_from_slice(b"hello");
        });
        assert_eq!(calls.get(), 1);
        assert_eq!(&*sinks.sinks[0].lines.borrow(), b"hello\n");
        assert_eq!(&*sinks.sinks[1].lines.borrow(), b"hello\n");
        // Lines are taken while the buffer is under MAX_BUFFERED; one is in.
        let taken = MAX_BUFFERED.div_ceil(6);
        for _ in 1..taken + 5 {
            sinks.line(&sets[0], |out| out.extend_from_slice(b"hello"));
        }
        assert_eq!(sinks.sinks[0].dropped.get(), 5);
        assert_eq!(sinks.sinks[1].dropped.get(), 5);
    }

    #[test]
    fn a_full_pipe_takes_whole_lines_and_the_rest_waits() {
        let mut fds = [0; 2];
        assert_eq!(
            // SAFETY: pipe2 writes two descriptors into `fds`.
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) },
            0
        );
        // SAFETY: both are ours, owned once.
        let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let out = Out::Stream {
            fd: tx.as_raw_fd(),
            how: WriteBy::Plain,
            chunk: PIPE_BUF,
        };
        let sink = Sink::new(&target("stdout"), out, Some(tx), "h".into());
        let line = |i: usize| format!("{i:04} {}\n", "z".repeat(994));
        let lines = 200; // 200 KB, more than a pipe holds
        for i in 0..lines {
            sink.lines
                .borrow_mut()
                .extend_from_slice(line(i).as_bytes());
        }
        assert_eq!(sink.flush(), Flushed::Backlog);
        assert_eq!(sink.flush(), Flushed::Stuck);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        for _ in 0..10_000 {
            // SAFETY: reading into our buffer.
            let n = unsafe { libc::read(rx.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                got.extend_from_slice(&buf[..n as usize]);
                // Whatever the pipe took ends with a whole line.
                assert_eq!(got.len() % 1000, 0);
                continue;
            }
            if sink.flush() == Flushed::All && got.len() == lines * 1000 {
                break;
            }
        }
        assert_eq!(got.len(), lines * 1000);
        let want: String = (0..lines).map(line).collect();
        assert!(got == want.as_bytes());
        // The reader goes away: what waits is dropped, counted, with why.
        drop(rx);
        sink.lines.borrow_mut().extend_from_slice(b"a\nb\n");
        assert_eq!(sink.flush(), Flushed::All);
        assert_eq!(sink.dropped_total.get(), 2);
        assert_eq!(sink.error.get(), Some(libc::EPIPE));
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
            termination: Termination::NORMAL,
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
            termination: Termination::NORMAL,
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
            termination: Termination::new(Cause::Server, Phase::Connect),
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
