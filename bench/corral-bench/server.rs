//! `corral-bench serve`: the static backend. One executor per thread, each
//! with its own SO_REUSEPORT listener on the same address (the kernel
//! spreads connections over them), serving HTTP (see `server_http`),
//! fixed-size TCP answers, or echo, until SIGTERM or SIGINT.
//!
//! All listening sockets are bound by the main thread before any worker
//! starts, so a bad address fails at once and port 0 resolves to one port
//! shared by every thread. Counts are per thread (Cells) and reported to
//! the main thread once, when it asks at shutdown.

use crate::cli::{ServeArgs, ServeMode};
use crate::executors;
use crate::server_http::{self, HttpResponses};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream, UnixStream};
use glommio::timer::Timer;
use signal_hook::consts::{SIGINT, SIGTERM};
use socket2::{Domain, Protocol, Socket, Type};
use std::cell::Cell;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// Listen backlog of each thread's socket.
const BACKLOG: i32 = 4096;
/// How long threads may take to start, or to report at shutdown.
const WAIT: Duration = Duration::from_secs(30);
/// Receive buffer of a tcp or echo connection.
const STREAM_BUFFER: usize = 64 << 10;

/// One thread's counts.
#[derive(Default)]
pub(crate) struct ServerStats {
    /// Requests answered (http: parsed heads; tcp: request-size units).
    pub requests: Cell<u64>,
    /// Connections accepted.
    pub connections: Cell<u64>,
    /// Bytes read from clients.
    pub bytes: Cell<u64>,
}

/// What every connection is served, built once.
#[derive(Clone)]
enum Served {
    Http(HttpResponses),
    Tcp {
        request_size: u64,
        response: Vec<u8>,
    },
    Echo,
}

/// What server threads tell the main thread.
enum Msg {
    Ready,
    Failed(String),
    Counts(u64, u64, u64),
}

/// Runs the server until SIGTERM or SIGINT.
pub(crate) fn command(args: &ServeArgs) -> Result<(), String> {
    if args.threads == 0 {
        return Err("--threads 0: expected at least 1 thread".into());
    }
    let cpus = match &args.cpus {
        Some(list) => executors::check_cpus(&list.0)?,
        None => Vec::new(),
    };
    let addr = args
        .listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            format!(
                "--listen `{}`: expected host:port, such as 127.0.0.1:8080 (port 0 picks one)",
                args.listen
            )
        })?;
    executors::prepare_process()?;
    let served = match args.mode {
        ServeMode::Http { body_size, status } => {
            if body_size > 1 << 30 {
                return Err(format!("--body-size {body_size}: expected at most 1g"));
            }
            Served::Http(HttpResponses::new(status, body_size as usize))
        }
        ServeMode::Tcp {
            request_size,
            response_size,
        } => {
            if response_size > 1 << 30 {
                return Err(format!(
                    "--response-size {response_size}: expected at most 1g"
                ));
            }
            Served::Tcp {
                request_size,
                response: vec![b'y'; response_size as usize],
            }
        }
        ServeMode::Echo => Served::Echo,
    };
    let served = Arc::new(served);

    let first = bind(addr).map_err(|e| listen_error(&e, &args.listen))?;
    let local = first
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or("cannot read the address the listener got")?;
    let mut sockets = vec![first];
    for _ in 1..args.threads {
        sockets.push(bind(local).map_err(|e| listen_error(&e, &args.listen))?);
    }
    // Before any thread starts, so no signal is missed.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    let (tx, rx) = mpsc::channel::<Msg>();
    let mut controls = Vec::new();
    for (t, socket) in sockets.into_iter().enumerate() {
        let (ours, theirs) =
            StdUnixStream::pair().map_err(|e| format!("cannot create a control socket: {e}"))?;
        controls.push(ours);
        let cpu = (!cpus.is_empty()).then(|| cpus[t % cpus.len()]);
        let (tx, served) = (tx.clone(), served.clone());
        std::thread::Builder::new()
            .name(format!("corral-bench-serve-{t}"))
            .spawn(move || {
                let ex = match executors::build("corral-bench-serve", t, cpu) {
                    Ok(ex) => ex,
                    Err(m) => {
                        let _ = tx.send(Msg::Failed(m));
                        return;
                    }
                };
                ex.run(thread_main(socket, theirs, (*served).clone(), tx));
            })
            .map_err(|e| format!("cannot start thread {t}: {e}"))?;
    }
    for _ in 0..args.threads {
        match rx.recv_timeout(WAIT) {
            Ok(Msg::Ready) => {}
            Ok(Msg::Failed(m)) => return Err(m),
            _ => return Err("the server threads did not start".into()),
        }
    }
    eprintln!("listening on {local}");

    let _ = signals.forever().next();
    use std::io::Write;
    for mut c in &controls {
        let _ = c.write_all(b"s");
    }
    let (mut requests, mut connections, mut bytes) = (0, 0, 0);
    for _ in 0..args.threads {
        if let Ok(Msg::Counts(r, c, b)) = rx.recv_timeout(WAIT) {
            requests += r;
            connections += c;
            bytes += b;
        }
    }
    if args.stats {
        eprintln!("served {requests} requests on {connections} connections ({bytes} bytes read)");
    }
    Ok(())
}

/// A SO_REUSEPORT listening socket on `addr`.
fn bind(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s)
}

fn listen_error(e: &io::Error, text: &str) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => {
            format!("--listen `{text}`: the address is already in use by another process")
        }
        Some(libc::EADDRNOTAVAIL) => format!("--listen `{text}`: not an address of this host"),
        Some(libc::EACCES) => {
            format!("--listen `{text}`: ports below 1024 need CAP_NET_BIND_SERVICE")
        }
        _ => format!("--listen `{text}`: cannot listen: {e}"),
    }
}

/// A server thread: accept until the main thread asks for the counts.
async fn thread_main(
    socket: Socket,
    control: StdUnixStream,
    served: Served,
    tx: mpsc::Sender<Msg>,
) {
    // SAFETY: the descriptor is ours, open, and changes owner here.
    let listener = unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) };
    // SAFETY: as for the listener.
    let mut control = unsafe { UnixStream::from_raw_fd(control.into_raw_fd()) };
    let stats = Rc::new(ServerStats::default());
    glommio::spawn_local(accept_loop(listener, Rc::new(served), stats.clone())).detach();
    let _ = tx.send(Msg::Ready);
    let mut b = [0u8; 1];
    // A byte or the end of the stream: either way, time to report.
    let _ = control.read(&mut b).await;
    let _ = tx.send(Msg::Counts(
        stats.requests.get(),
        stats.connections.get(),
        stats.bytes.get(),
    ));
}

async fn accept_loop(listener: TcpListener, served: Rc<Served>, stats: Rc<ServerStats>) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                let e = io::Error::from(e);
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) {
                    // Out of descriptors or memory: let connections close.
                    Timer::new(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        stats.connections.set(stats.connections.get() + 1);
        let (served, stats) = (served.clone(), stats.clone());
        glommio::spawn_local(async move {
            match &*served {
                Served::Http(r) => server_http::handle(stream, r, &stats).await,
                Served::Tcp {
                    request_size,
                    response,
                } => tcp(stream, *request_size, response, &stats).await,
                Served::Echo => echo(stream, &stats).await,
            }
        })
        .detach();
    }
}

/// Answers `response` after every `request_size` bytes read.
async fn tcp(mut stream: TcpStream, request_size: u64, response: &[u8], stats: &ServerStats) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; STREAM_BUFFER];
    let mut partial = 0u64;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n as u64,
        };
        stats.bytes.set(stats.bytes.get() + n);
        partial += n;
        let due = partial / request_size;
        partial %= request_size;
        for _ in 0..due {
            if stream.write_all(response).await.is_err() {
                return;
            }
        }
        stats.requests.set(stats.requests.get() + due);
    }
}

/// Writes back every byte read; closes its sending side at the end.
async fn echo(mut stream: TcpStream, stats: &ServerStats) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; STREAM_BUFFER];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        stats.bytes.set(stats.bytes.get() + n as u64);
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = stream.shutdown(Shutdown::Write).await;
}
