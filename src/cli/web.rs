//! `corral web` and `corral probe`: the two small tools the deployment
//! files and labs in `deploy/` need, so one binary (and one image) plays
//! every role.
//!
//! - `corral web --bind ADDR --name NAME`: a standalone HTTP server (the
//!   `corral demo` backend) that answers every request with 200, a body
//!   starting `hello from NAME` and an `X-Served-By: NAME` header, so round
//!   robin and affinity are visible from the client.
//! - `corral probe ADDR[/PATH]`: a tiny HTTP client for container health
//!   checks and labs: one connection per request (optionally from a given
//!   source address), one line per answer (`200 web1`), and when a
//!   connection fails, the reason in words (refused: nothing listening; no
//!   route; timed out: dropped on the way).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `corral web`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct WebArgs {
    /// Where to listen (`ip:port`; `0.0.0.0:8000`, `[::]:80`).
    #[arg(short, long, default_value = "0.0.0.0:8000")]
    pub bind: String,
    /// The name in the answers (body and `X-Served-By`); default: the host name.
    #[arg(short, long)]
    pub name: Option<String>,
}

/// `corral probe`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct ProbeArgs {
    /// `ip:port` or `host:port`, optionally followed by a path
    /// (`127.0.0.1:8000/health`); the path defaults to `/`.
    pub target: String,
    /// Connect from this source address.
    #[arg(short, long)]
    pub source: Option<IpAddr>,
    /// How many requests, one connection each.
    #[arg(short, long, default_value_t = 1)]
    pub count: u32,
    /// Seconds allowed for each request (connect and answer).
    #[arg(short, long, default_value_t = 3.0)]
    pub timeout: f64,
    /// Only open the connection (for `mode: tcp` frontends): success is a
    /// completed TCP handshake.
    #[arg(long)]
    pub tcp: bool,
    /// The `Host` header; default: the target's host part.
    #[arg(long)]
    pub host: Option<String>,
}

/// Runs `corral web` until SIGTERM or SIGINT.
pub(crate) fn web(args: &WebArgs) -> ExitCode {
    let name = args.name.clone().unwrap_or_else(host_name);
    let listener = match std::net::TcpListener::bind(&args.bind) {
        Ok(l) => l,
        Err(e) => {
            crate::alert!("corral web: cannot listen on {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| args.bind.clone());
    // As PID 1 in a container a process gets no default signal actions:
    // exit on SIGTERM/SIGINT explicitly. Shut the listener down first: the
    // kernel releases an io_uring instance (and the socket its pending
    // accept holds) only some time after the process exits, and until then
    // connections would be accepted and reset instead of refused.
    let listen_fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(mut signals) => {
            let _ = std::thread::Builder::new()
                .name("corral-web-signals".into())
                .spawn(move || {
                    if signals.forever().next().is_some() {
                        // SAFETY: the descriptor stays open (owned by the
                        // executor) until the process exits.
                        unsafe { libc::shutdown(listen_fd, libc::SHUT_RDWR) };
                        std::process::exit(0);
                    }
                });
        }
        Err(e) => crate::warning!("corral web: no signal handling: {e}"),
    }
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(64 << 10)
        .make();
    let ex = match ex {
        Ok(ex) => ex,
        Err(e) => {
            crate::alert!(
                "corral web: cannot start an io_uring executor: {e} (io_uring allowed? `ulimit -l`?)"
            );
            return ExitCode::FAILURE;
        }
    };
    println!("corral web: {name} listening on {local}");
    ex.run(async move {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let _ = listener.set_nonblocking(true);
        // SAFETY: the std listener's descriptor moves into glommio, once.
        let l = unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) };
        crate::cli::demo::serve_backend(l, name.into()).await;
    });
    ExitCode::SUCCESS
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "corral-web".to_string())
}

/// Runs `corral probe`: exits 0 when every request got an HTTP status below
/// 500 (or, with `--tcp`, a connection), 1 otherwise, 2 on bad arguments.
pub(crate) fn probe(args: &ProbeArgs) -> ExitCode {
    let (hostport, path) = match args.target.find('/') {
        Some(i) => (&args.target[..i], &args.target[i..]),
        None => (args.target.as_str(), "/"),
    };
    let addr = match hostport.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) | Err(_) => {
            eprintln!(
                "corral probe: `{hostport}` is not an `ip:port` or `host:port` that resolves"
            );
            return ExitCode::from(2);
        }
    };
    if !(args.timeout > 0.0 && args.timeout < 3600.0) {
        eprintln!("corral probe: --timeout must be between 0 and 3600 seconds");
        return ExitCode::from(2);
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let host = args.host.as_deref().unwrap_or(hostport);
    let mut all_ok = true;
    for _ in 0..args.count {
        match probe_once(addr, args.source, path, host, timeout, args.tcp) {
            Ok(line) => println!("{line}"),
            Err(ProbeError::Status(line)) => {
                println!("{line}");
                all_ok = false;
            }
            Err(ProbeError::Io(stage, e)) => {
                println!("error {}", explain(stage, &e, addr, args.source));
                all_ok = false;
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Clone, Copy, Debug)]
enum Stage {
    Bind,
    Connect,
    Exchange,
}

enum ProbeError {
    Status(String),
    Io(Stage, std::io::Error),
}

fn probe_once(
    addr: SocketAddr,
    source: Option<IpAddr>,
    path: &str,
    host: &str,
    timeout: Duration,
    tcp_only: bool,
) -> Result<String, ProbeError> {
    let started = Instant::now();
    let mut stream = connect(addr, source, timeout)?;
    if tcp_only {
        return Ok(format!("connected {addr}"));
    }
    let io = |e| ProbeError::Io(Stage::Exchange, e);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: corral-probe\r\nConnection: close\r\n\r\n"
    );
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream.write_all(request.as_bytes()).map_err(io)?;
    // Read the whole answer (Connection: close), within the time left.
    let mut answer = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(io(std::io::ErrorKind::TimedOut.into()));
        }
        stream.set_read_timeout(Some(left)).map_err(io)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.len() > 1 << 20 {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(io(std::io::ErrorKind::TimedOut.into()));
            }
            Err(e) => {
                // A reset after the whole head arrived still counts.
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
                return Err(io(e));
            }
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&answer) {
        Ok(httparse::Status::Complete(_)) => {
            let code = resp.code.unwrap_or(0);
            let by = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("x-served-by"))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .unwrap_or_else(|| "-".to_string());
            let line = format!("{code} {by}");
            if code < 500 {
                Ok(line)
            } else {
                Err(ProbeError::Status(line))
            }
        }
        _ if answer.is_empty() => Err(ProbeError::Status(
            "error the connection was closed without an answer (a `mode: tcp` frontend with no server up, or not HTTP: try --tcp)"
                .to_string(),
        )),
        _ => Err(ProbeError::Status(
            "error the answer is not HTTP/1.x (try --tcp)".to_string(),
        )),
    }
}

fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, ProbeError> {
    let Some(src) = source else {
        return TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| ProbeError::Io(Stage::Connect, e));
    };
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)
        .map_err(|e| ProbeError::Io(Stage::Bind, e))?;
    socket
        .bind(&SocketAddr::new(src, 0).into())
        .map_err(|e| ProbeError::Io(Stage::Bind, e))?;
    socket
        .connect_timeout(&addr.into(), timeout)
        .map_err(|e| ProbeError::Io(Stage::Connect, e))?;
    Ok(socket.into())
}

/// The failure in words, with what usually causes it.
fn explain(stage: Stage, e: &std::io::Error, addr: SocketAddr, source: Option<IpAddr>) -> String {
    let from = source.map(|s| format!(" from {s}")).unwrap_or_default();
    match (stage, e.raw_os_error()) {
        (Stage::Bind, Some(libc::EADDRNOTAVAIL)) => {
            format!("cannot use source address{from}: it is not an address of this host ({e})")
        }
        (Stage::Bind, _) => format!("cannot bind the source address{from}: {e}"),
        (Stage::Connect, Some(libc::ECONNREFUSED)) => format!(
            "connection refused by {addr}: the host answered but nothing is listening on that port ({e})"
        ),
        (Stage::Connect, Some(libc::ENETUNREACH)) => {
            format!("no route to {addr}{from}: this host has no route to that network ({e})")
        }
        (Stage::Connect, Some(libc::EHOSTUNREACH)) => format!(
            "{addr} unreachable{from}: the host does not answer ARP on its link, or a router on the way has no route ({e})"
        ),
        (Stage::Connect, _) if e.kind() == std::io::ErrorKind::TimedOut => format!(
            "connecting to {addr}{from} timed out: packets are dropped on the way or the answers never come back (forwarding off on a router, rp_filter, missing return route, firewall)"
        ),
        (Stage::Connect, _) => format!("cannot connect to {addr}{from}: {e}"),
        (Stage::Exchange, _) if e.kind() == std::io::ErrorKind::TimedOut => {
            format!("connected to {addr}{from} but no complete answer in time")
        }
        (Stage::Exchange, _) => format!("connected to {addr}{from}, then: {e}"),
    }
}
