//! The end-to-end harness: start the real `corral` binary on a config,
//! wait for its readiness line, and stand up real servers on loopback.
//! Every wait is bounded; a test that cannot get what it waits for fails
//! with what corral printed.

// Each test crate compiles this harness and uses its own part of it.
#![allow(dead_code, unreachable_pub)]

pub mod haproxy;
pub mod http;
pub mod tls;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_corral");
/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(15);

/// Lines a child process printed, shared with the reader thread.
#[derive(Clone, Default)]
pub struct Output(
    Arc<(Mutex<Vec<String>>, Condvar)>,
    Arc<Mutex<Option<JoinHandle<()>>>>,
);

impl Output {
    fn capture(stream: impl Read + Send + 'static) -> Output {
        let out = Output::default();
        let o = out.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let (lines, cv) = &*o.0;
                lines.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        *out.1.lock().unwrap() = Some(reader);
        out
    }

    /// Waits until the writer closed its end (the process exited).
    pub fn finish(&self) {
        if let Some(t) = self.1.lock().unwrap().take() {
            let _ = t.join();
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits for a line containing `needle` after the first `skip` lines.
    pub fn wait_for_from(&self, skip: usize, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lines, cv) = &*self.0;
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(l) = guard.iter().skip(skip).find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            guard = cv.wait_timeout(guard, left).unwrap().0;
        }
    }

    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.wait_for_from(0, needle, timeout)
    }

    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    pub fn len(&self) -> usize {
        self.0.0.lock().unwrap().len()
    }
}

/// A running corral process.
pub struct Corral {
    child: Option<Child>,
    pub stdout: Output,
    pub stderr: Output,
    /// Listening addresses by frontend name, from the readiness lines.
    pub listening: HashMap<String, Vec<SocketAddr>>,
    pub dir: tempfile::TempDir,
}

impl Corral {
    /// Starts `corral run` on `yaml` and waits until it is ready.
    pub fn start(yaml: &str) -> Corral {
        match Corral::try_start(yaml) {
            Ok(c) => c,
            Err(e) => panic!("corral did not start:\n{e}"),
        }
    }

    /// Starts `corral run`; Err holds everything it printed if it did not
    /// become ready.
    pub fn try_start(yaml: &str) -> Result<Corral, String> {
        Corral::try_start_with(yaml, |_| {})
    }

    /// Like `try_start`, with a chance to adjust the command (limits,
    /// capabilities) before it runs.
    pub fn try_start_with(yaml: &str, adjust: impl FnOnce(&mut Command)) -> Result<Corral, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corral.yaml");
        std::fs::write(&path, yaml).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg("-c")
            .arg(&path)
            .arg("--control")
            .arg(dir.path().join("control.sock"));
        adjust(&mut cmd);
        Corral::spawn(cmd, dir)
    }

    /// Starts an arbitrary corral command that prints readiness lines.
    pub fn spawn(mut cmd: Command, dir: tempfile::TempDir) -> Result<Corral, String> {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn corral");
        let stdout = Output::capture(child.stdout.take().unwrap());
        let stderr = Output::capture(child.stderr.take().unwrap());
        let deadline = Instant::now() + WAIT;
        loop {
            if stderr
                .wait_for(" ready: ", Duration::from_millis(50))
                .is_some()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                stderr.finish();
                stdout.finish();
                return Err(format!(
                    "exited with {status}\nstderr:\n{}\nstdout:\n{}",
                    stderr.text(),
                    stdout.text()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!(
                    "not ready within {WAIT:?}\nstderr:\n{}",
                    stderr.text()
                ));
            }
        }
        let mut listening: HashMap<String, Vec<SocketAddr>> = HashMap::new();
        for line in stderr.lines() {
            // "frontend NAME (MODE) listening on ADDR"
            if let Some(rest) = line.split(": frontend ").nth(1) {
                let name = rest.split(' ').next().unwrap().to_string();
                if let Some(addr) = rest.split("listening on ").nth(1) {
                    listening
                        .entry(name)
                        .or_default()
                        .push(addr.trim().parse().unwrap());
                }
            }
        }
        Ok(Corral {
            child: Some(child),
            stdout,
            stderr,
            listening,
            dir,
        })
    }

    /// The (first) address frontend `name` listens on.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listening
            .get(name)
            .and_then(|v| v.first().copied())
            .unwrap_or_else(|| {
                panic!(
                    "frontend {name} not listening; stderr:\n{}",
                    self.stderr.text()
                )
            })
    }

    /// The pid of the process `corral run` started: the master (signals
    /// go there).
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// The pid of the generation that said it was ready last (the
    /// process that holds the connections), from its `[NOTICE] (pid)`
    /// prefix.
    pub fn serving_pid(&self) -> i32 {
        let line = self
            .stderr
            .lines()
            .into_iter()
            .rev()
            .find(|l| l.contains(" ready: ") && l.contains(" worker"))
            .expect("a readiness line");
        line.split('(')
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {line}"))
    }

    /// The configuration file `corral run` was started with.
    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("corral.yaml")
    }

    /// Its control socket (`--control`).
    pub fn control_path(&self) -> std::path::PathBuf {
        self.dir.path().join("control.sock")
    }

    /// Replaces the configuration file (then `reload` or SIGHUP).
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(self.config_path(), yaml).unwrap();
    }

    /// `corral reload -c FILE --control SOCKET`: (status, stdout, stderr).
    pub fn reload(&self) -> (ExitStatus, String, String) {
        run_cmd(&[
            "reload",
            "-c",
            self.config_path().to_str().unwrap(),
            "--control",
            self.control_path().to_str().unwrap(),
        ])
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let status = self
            .wait_exit(WAIT)
            .expect("corral did not exit after SIGTERM");
        self.child = None;
        status
    }
}

impl Drop for Corral {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a corral command to completion (bounded) and returns its status,
/// stdout and stderr.
pub fn run_cmd(args: &[&str]) -> (ExitStatus, String, String) {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(Ok(out)) => (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        _ => {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("corral {args:?} did not finish within {WAIT:?}");
        }
    }
}

// ---- servers -------------------------------------------------------------

/// What a test server does with each connection.
pub type Handler = Arc<dyn Fn(TcpStream) + Send + Sync>;

/// A TCP server on loopback that can be stopped (its port then refuses
/// connections) and started again on the same port.
pub struct Server {
    pub addr: SocketAddr,
    handler: Handler,
    running: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts on a loopback address of its own (127.0.3.x, 127.0.4.x...):
    /// no ephemeral socket of a client or of corral ever sits there, so the
    /// port is always free again for `resume`.
    pub fn start(handler: Handler) -> Server {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let ip = format!("127.0.{}.{}", 3 + n / 250, 1 + n % 250);
        Server::start_on(format!("{ip}:0").parse().unwrap(), handler)
    }

    pub fn start_on(addr: SocketAddr, handler: Handler) -> Server {
        let mut s = Server {
            addr,
            handler,
            running: Arc::new(AtomicBool::new(false)),
            accepted: Arc::new(AtomicUsize::new(0)),
            thread: None,
        };
        s.resume();
        s
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Starts listening again (on the same port).
    pub fn resume(&mut self) {
        let listener = bind_retrying(self.addr);
        self.addr = listener.local_addr().unwrap();
        self.running.store(true, Ordering::SeqCst);
        let (running, handler, accepted) = (
            self.running.clone(),
            self.handler.clone(),
            self.accepted.clone(),
        );
        self.thread = Some(std::thread::spawn(move || {
            for conn in listener.incoming() {
                if !running.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                let h = handler.clone();
                std::thread::spawn(move || h(conn));
            }
        }));
    }

    /// Closes the listening socket: new connections are refused.
    pub fn stop(&mut self) {
        if !self.running.swap(false, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop so it sees the flag and drops the socket.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind_retrying(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + WAIT;
    loop {
        match TcpListener::bind(addr) {
            Ok(l) => return l,
            Err(e) if Instant::now() > deadline => panic!("bind {addr}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Writes `name\n` to each connection, then waits for the client to close.
pub fn name_server(name: &str) -> Server {
    let line = format!("{name}\n");
    Server::start(Arc::new(move |mut s: TcpStream| {
        let _ = s.write_all(line.as_bytes());
        let _ = s.set_read_timeout(Some(WAIT));
        let mut sink = [0u8; 256];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    }))
}

/// Echoes everything back; passes end-of-stream on as a FIN.
pub fn echo_server() -> Server {
    Server::start(Arc::new(|mut s: TcpStream| {
        let _ = s.set_read_timeout(Some(WAIT));
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = s.shutdown(Shutdown::Write);
    }))
}

/// Accepts and holds each connection open, silent, until the client
/// closes (or `WAIT` passes).
pub fn silent_server() -> Server {
    Server::start(Arc::new(|mut s: TcpStream| {
        let _ = s.set_read_timeout(Some(WAIT));
        let mut buf = [0u8; 256];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    }))
}

/// A minimal HTTP server answering every request with `status` and
/// closing; `status` can be changed while it runs.
pub fn http_status_server(status: Arc<AtomicUsize>) -> Server {
    Server::start(Arc::new(move |mut s: TcpStream| {
        let _ = s.set_read_timeout(Some(WAIT));
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let code = status.load(Ordering::SeqCst);
        let _ = write!(
            s,
            "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }))
}

// ---- clients -------------------------------------------------------------

/// Connects to `dst` from the local address `src` (any 127.x.y.z works on
/// Linux loopback), with bounded timeouts.
pub fn connect_from(src: IpAddr, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&SocketAddr::new(src, 0).into())?;
    sock.connect_timeout(&dst.into(), WAIT)?;
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(WAIT))?;
    s.set_write_timeout(Some(WAIT))?;
    Ok(s)
}

pub fn connect(dst: SocketAddr) -> TcpStream {
    connect_from("127.0.0.1".parse().unwrap(), dst).expect("connect")
}

/// Connects through the proxy and reads the first line a name server sends.
pub fn name_via(proxy: SocketAddr, src: IpAddr) -> Result<String, String> {
    let s = connect_from(src, proxy).map_err(|e| format!("connect: {e}"))?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .map_err(|e| format!("read: {e}"))?;
    if line.is_empty() {
        return Err("closed without a reply".into());
    }
    Ok(line.trim_end().to_string())
}

/// Counts replies per server name over `n` connections from 127.0.0.1.
pub fn tally(proxy: SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in 0..n {
        let name = name_via(proxy, "127.0.0.1".parse().unwrap())
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

/// Polls `cond` every 20ms until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
