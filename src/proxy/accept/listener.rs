//! Listening sockets and the per-worker accept loop.
//!
//! Every frontend address has one SO_REUSEPORT socket per worker, made by
//! the master (`master/groups.rs`); the kernel spreads new connections
//! over them. A worker waits until a socket has a connection, then takes
//! what waits, each connection with a slot of its share of
//! `global.maxconn` and of the frontend's `maxconn`: at the limit it stops
//! taking, so connections wait in the kernel's backlog instead of being
//! refused, and an idle socket holds no slot.

use crate::config::Mode;
use crate::io::stream::Stream;
use crate::proxy::{http, tcp};
use crate::worker::Worker;
use crate::worker::guard::ConnGuard;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use socket2::Socket;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

/// How long accepting pauses after an error that a retry cannot fix at
/// once (out of file descriptors or memory).
const ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections for frontend `fe` on listening socket `socket`
/// from the moment the worker is told to go until it stops; with `tls`,
/// each connection's first step is a TLS handshake.
///
/// The wait is for readiness (a one-shot io_uring poll, see `readable`),
/// the accept a non-blocking `accept4`. An io_uring accept would be one
/// system call fewer per wake-up but is wrong for sockets that several
/// generations share during a reload:
/// - it waits as an *exclusive* waiter: the kernel wakes one accept per
///   new connection, and an older generation's accept that is being
///   cancelled (or that belongs to a process whose ring the kernel has not
///   torn down yet) can take the wake-up and accept nothing, leaving the
///   connection queued with this generation's accept asleep behind it;
/// - cancelling it races with its completion: a connection it accepted
///   meanwhile lands in a result nobody reads and is reset when the
///   process exits (`tests/reload.rs` lost 1 request in 60 000 that way).
///
/// Poll waiters are not exclusive (every generation polling a socket is
/// woken) and a cancelled poll takes nothing, so a retiring worker simply
/// stops waiting: whatever is queued is accepted by the serving
/// generation, and no connection is ever accepted by a generation that
/// will not serve it.
pub(crate) async fn accept_loop(w: Rc<Worker>, fe: usize, tls: bool, socket: Socket) {
    if !started(&w).await {
        return;
    }
    let fd = socket.as_raw_fd();
    if let Err(e) = socket.set_nonblocking(true) {
        crate::warning!(
            "frontend {}: cannot make a listening socket non-blocking ({e}): not accepting on it",
            w.config.frontends[fe].name
        );
        return;
    }
    loop {
        let ready = futures_lite::future::or(
            async {
                readable(fd).await;
                true
            },
            async {
                w.life.stopping.wait().await;
                false
            },
        )
        .await;
        if !ready {
            return;
        }
        // Take what waits, a slot for each connection.
        loop {
            let permits = match try_slots(&w, fe) {
                Some(p) => p,
                None => match slots(&w, fe).await {
                    Some(p) => p,
                    None => return,
                },
            };
            // Checked with no wait between it and `start`: a stopping
            // worker accepts nothing, so nothing it accepts is lost.
            if w.life.stopping.is_set() {
                return;
            }
            match accept(fd) {
                Ok((stream, peer)) => {
                    if start(&w, fe, tls, stream, peer, permits).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => match e.raw_os_error() {
                    // The connection failed before it was accepted.
                    Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::EINTR) => {}
                    Some(libc::EMFILE | libc::ENFILE) => {
                        crate::warning!(
                            "frontend {}: out of file descriptors ({e}); pausing accepts for 100ms (raise LimitNOFILE/ulimit -n or lower maxconn)",
                            w.config.frontends[fe].name
                        );
                        Timer::new(ERROR_PAUSE).await;
                        break;
                    }
                    _ => {
                        crate::warning!(
                            "frontend {}: accept failed ({e}); pausing accepts for 100ms",
                            w.config.frontends[fe].name
                        );
                        Timer::new(ERROR_PAUSE).await;
                        break;
                    }
                },
            }
            glommio::yield_if_needed().await;
        }
    }
}

/// Waits until listening socket `fd` has a connection to accept (or an
/// error to report). glommio has no public readiness wait, but a stream
/// it wraps around a descriptor arms a one-shot io_uring poll for
/// readability at once and a read waits for that poll: so the wait is a
/// stream around a duplicate of the socket (closing a duplicate leaves
/// the socket alone), read into an empty buffer. The read itself fails
/// (a listening socket has no data): only its waking matters.
async fn readable(fd: RawFd) {
    // SAFETY: dup of a descriptor the caller owns; the result is checked.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        // Out of descriptors: accept would fail too; try again later.
        Timer::new(ERROR_PAUSE).await;
        return;
    }
    // SAFETY: a new descriptor nothing else owns moves into the stream.
    let mut probe = unsafe { TcpStream::from_raw_fd(dup) };
    let _ = futures_lite::AsyncReadExt::read(&mut probe, &mut []).await;
}

/// A non-blocking `accept4` on listening socket `fd`: the connection and
/// the client's address (no `getpeername` needed).
fn accept(fd: RawFd) -> io::Result<(TcpStream, SocketAddr)> {
    // SAFETY: an all-zero sockaddr_storage is valid; accept4 fills at
    // most `len` bytes of it and the result is checked.
    let (conn, addr) = unsafe {
        socket2::SockAddr::init(|storage, len| {
            let conn = libc::accept4(
                fd,
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if conn < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(conn)
            }
        })?
    };
    // SAFETY: a connected TCP socket whose ownership moves to glommio.
    let stream = unsafe { TcpStream::from_raw_fd(conn) };
    let peer = addr
        .as_socket()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
    Ok((stream, peer))
}

/// Waits until the worker is told to go; false if it stops first.
async fn started(w: &Worker) -> bool {
    futures_lite::future::or(
        async {
            w.life.go.wait().await;
            true
        },
        async {
            w.life.stopping.wait().await;
            false
        },
    )
    .await
}

/// Slots in the worker's and frontend `fe`'s `maxconn` shares, if both
/// have one free now.
fn try_slots(
    w: &Worker,
    fe: usize,
) -> Option<(glommio::sync::StaticPermit, glommio::sync::StaticPermit)> {
    let g = w.global_slots.try_acquire_static_permit(1).ok()?;
    let f = w.frontends[fe].slots.try_acquire_static_permit(1).ok()?;
    Some((g, f))
}

/// A slot in the worker's and in frontend `fe`'s `maxconn` shares, once
/// both have one; `None` when the worker stops first. The frontend's
/// slot comes first: holding it while waiting for the worker's keeps only
/// this frontend waiting, while the other order would keep a global slot
/// from every other frontend.
async fn slots(
    w: &Worker,
    fe: usize,
) -> Option<(glommio::sync::StaticPermit, glommio::sync::StaticPermit)> {
    futures_lite::future::or(
        async {
            let f = w.frontends[fe].slots.acquire_static_permit(1).await.ok()?;
            let g = w.global_slots.acquire_static_permit(1).await.ok()?;
            Some((g, f))
        },
        async {
            w.life.stopping.wait().await;
            None
        },
    )
    .await
}

/// Starts serving an accepted connection from `peer`. When the worker is
/// stopping (its gate is closing) the connection is given back.
fn start(
    w: &Rc<Worker>,
    fe: usize,
    tls: bool,
    stream: TcpStream,
    peer: SocketAddr,
    permits: (glommio::sync::StaticPermit, glommio::sync::StaticPermit),
) -> Result<(), TcpStream> {
    // The gate pass is taken by hand: glommio's `Gate::spawn` wraps the
    // connection's future in another that holds it twice, doubling the
    // memory of every connection (8 KB instead of 4 for an HTTP one).
    let Ok(pass) = w.life.gate.enter() else {
        return Err(stream); // the gate is closing: the worker is stopping
    };
    let guard = ConnGuard::new(w.clone(), fe, peer, pass, permits);
    if !w.config.frontends[fe].tcp_rules.is_empty() {
        let local = stream.local_addr().unwrap_or(peer);
        if !crate::proxy::tcp::rules::run(w, fe, &guard.tracks, peer, local) {
            return Ok(()); // rejected: the stream and the guard drop here
        }
    }
    match w.config.frontends[fe].mode {
        Mode::Tcp => {
            let worker = w.clone();
            glommio::spawn_local(async move {
                let stream = if tls {
                    match handshake(&worker, fe, stream, peer).await {
                        Some(s) => s,
                        None => return,
                    }
                } else {
                    Stream::Plain(stream)
                };
                tcp::session::session(worker, fe, stream, peer, &guard.tracks, guard.sess).await;
                drop(guard);
            })
            .detach();
        }
        Mode::Http if tls => {
            let worker = w.clone();
            glommio::spawn_local(async move {
                if let Some(s) = handshake(&worker, fe, stream, peer).await {
                    http::session::serve(worker, fe, s, peer, guard).await;
                }
            })
            .detach();
        }
        Mode::Http => {
            let stream = Stream::Plain(stream);
            glommio::spawn_local(http::session::serve(w.clone(), fe, stream, peer, guard)).detach();
        }
    }
    Ok(())
}

/// The TLS handshake of a new connection on worker `w`'s frontend `fe`,
/// within the frontend's request timeout (http) or client timeout (tcp).
/// A failure is logged as HAProxy does (`fe/bind: SSL handshake failure`)
/// with the reason, and the connection closes.
async fn handshake(w: &Worker, fe: usize, tcp: TcpStream, peer: SocketAddr) -> Option<Stream> {
    let fcfg = &w.config.frontends[fe];
    let acceptor = w.frontends[fe].tls.as_ref()?;
    let timeout = fcfg
        .http
        .as_ref()
        .map_or(fcfg.timeout_client, |h| h.timeout_request);
    let date = std::time::SystemTime::now();
    match acceptor
        .accept(tcp, timeout, || w.mesh.share_tls_sessions())
        .await
    {
        Ok(s) => Some(s),
        Err(reason) => {
            let fst = &w.frontends[fe];
            w.logs.line(&fst.log, |out| {
                crate::observe::log::write_client(out, &peer);
                out.extend_from_slice(b" [");
                crate::observe::log::write_date(out, date);
                out.extend_from_slice(b"] ");
                out.extend_from_slice(fcfg.name.as_bytes());
                out.extend_from_slice(b": SSL handshake failure (");
                out.extend_from_slice(reason.as_bytes());
                out.push(b')');
            });
            None
        }
    }
}
