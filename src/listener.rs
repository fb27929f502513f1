//! Listening sockets and the per-worker accept loop.
//!
//! Every frontend address has one SO_REUSEPORT socket per worker, made by
//! the master (`master/groups.rs`); the kernel spreads new connections
//! over them. A worker takes a slot of its share of `global.maxconn` and
//! of the frontend's `maxconn` *before* accepting, so beyond the limit
//! connections wait in the kernel's backlog instead of being refused.

use crate::config::Mode;
use crate::engine::worker::Worker;
use crate::stream::Stream;
use crate::{http, tcp};
use glommio::net::{TcpListener, TcpStream};
use glommio::timer::Timer;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

/// Accepts connections for frontend `fe` on listening socket `socket`
/// (the master's id for it) from the moment the worker is told to go
/// until it stops; with `tls`, each connection's first step is a TLS
/// handshake.
///
/// A retiring worker (a newer generation serves) does not drop the accept
/// it has pending when it stops: glommio submits an io_uring accept, and
/// dropping it only asks the kernel to cancel it, so a connection that
/// arrives meanwhile is accepted into a result nobody reads and is lost.
/// The pending accept is kept instead until it produces a connection,
/// which goes to the next generation over the master (`hand_off`), or
/// until the worker abandons it (`ACCEPT_LINGER` after the stop and once
/// its connections are done, or at once when the process stops for
/// good).
pub async fn accept_loop(w: Rc<Worker>, fe: usize, tls: bool, socket: u64, listener: TcpListener) {
    if !started(&w).await {
        return;
    }
    loop {
        // Slots first: at the limit, stop accepting.
        let slots = slots(&w, fe).await;
        let Some(permits) = slots else { break };
        let mut pending = std::pin::pin!(listener.accept());
        let accepted = futures_lite::future::or(async { Some(pending.as_mut().await) }, async {
            w.stopping.wait().await;
            None
        })
        .await;
        let stream = match accepted {
            None => {
                if w.retiring.get() {
                    let late = futures_lite::future::or(async { Some(pending.await) }, async {
                        w.abandon.wait().await;
                        None
                    })
                    .await;
                    if let Some(Ok(s)) = late {
                        hand_off(&w, socket, s);
                    }
                }
                break;
            }
            // Accepted as the stop came: a newer generation takes it.
            Some(Ok(s)) if w.stopping.is_set() && w.retiring.get() => {
                hand_off(&w, socket, s);
                break;
            }
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                let e = io::Error::from(e);
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    crate::warning!(
                        "frontend {}: out of file descriptors ({e}); pausing accepts for 100ms (raise LimitNOFILE/ulimit -n or lower maxconn)",
                        w.config.frontends[fe].name
                    );
                    Timer::new(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        if let Err(stream) = start(&w, fe, tls, stream, permits) {
            // Accepted as the worker began to stop.
            if w.retiring.get() {
                hand_off(&w, socket, stream);
            }
            break;
        }
    }
}

/// A connection accepted by another generation on one of this worker's
/// sockets (see `accept_loop`): served like one accepted here, once the
/// worker has a slot for it. If this worker is itself retiring by then,
/// the connection moves on to the next generation.
pub async fn adopt(w: Rc<Worker>, fe: usize, tls: bool, socket: u64, fd: std::os::fd::OwnedFd) {
    // SAFETY: a connected TCP socket whose ownership moves to glommio.
    let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
    let slots = slots(&w, fe).await;
    let refused = match slots {
        Some(permits) => start(&w, fe, tls, stream, permits).err(),
        None => Some(stream),
    };
    if let Some(stream) = refused
        && w.retiring.get()
    {
        hand_off(&w, socket, stream);
    }
}

/// How often a generation sweeps its listening sockets while an older
/// generation may still have accepts waiting on them (see `sweep`).
pub const SWEEP_EVERY: Duration = Duration::from_millis(5);
/// How long the sweeping goes on after the master said that no older
/// generation is left: the kernel tears an exited process's io_uring
/// down in a work queue, after the process is gone.
pub const SWEEP_GRACE: Duration = Duration::from_secs(3);
/// The most connections one sweep of one socket takes.
const SWEEP_BATCH: usize = 64;

/// Takes the connections that wait on a listening socket although an
/// accept is pending on it, in a generation started by a reload.
///
/// The sockets are shared with the older generations, and glommio's
/// accept is an io_uring accept, which waits on the socket as an
/// *exclusive* waiter: the kernel wakes only the first waiter for each
/// new connection. An older generation's waiter that is being cancelled,
/// or that belongs to a process that has exited but whose ring the
/// kernel has not torn down yet, can take that wake-up and then accept
/// nothing: the connection stays queued and this generation's accept,
/// waiting behind it, is never woken. Under load the next connection
/// wakes it (and the queue is drained); a lone client waits until its
/// own timeout (seen in `tests/reload.rs` as a 15 s stall).
///
/// So until `SWEEP_GRACE` after the master said no older generation is
/// left, every `SWEEP_EVERY` this task takes what waits on the socket
/// with a non-blocking `accept4` (no wake-up needed), each connection as
/// the accept loop would, slots permitting. A lost wake-up then costs a
/// client at most `SWEEP_EVERY`. Outside reloads nothing sweeps.
pub async fn sweep(w: Rc<Worker>, fe: usize, tls: bool, fd: std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    if !started(&w).await {
        return;
    }
    loop {
        if let Some(since) = w.alone_since.get()
            && since.elapsed() > SWEEP_GRACE
        {
            return;
        }
        let stopped = futures_lite::future::or(
            async {
                Timer::new(SWEEP_EVERY).await;
                false
            },
            async {
                w.stopping.wait().await;
                true
            },
        )
        .await;
        if stopped {
            return;
        }
        for _ in 0..SWEEP_BATCH {
            let Some(permits) = try_slots(&w, fe) else {
                break;
            };
            // SAFETY: accept4 on a listening socket this task owns a
            // descriptor of; the result is checked.
            let conn = unsafe {
                libc::accept4(
                    fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if conn < 0 {
                break; // EAGAIN: nothing waits (or an error the accept loop sees too)
            }
            // SAFETY: a connected TCP socket whose ownership moves to glommio.
            let stream = unsafe { TcpStream::from_raw_fd(conn) };
            if start(&w, fe, tls, stream, permits).is_err() {
                return; // the worker began to stop (the stream closed)
            }
        }
    }
}

/// Waits until the worker is told to go; false if it stops first.
async fn started(w: &Worker) -> bool {
    futures_lite::future::or(
        async {
            w.go.wait().await;
            true
        },
        async {
            w.stopping.wait().await;
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
/// both have one; `None` when the worker stops first.
async fn slots(
    w: &Worker,
    fe: usize,
) -> Option<(glommio::sync::StaticPermit, glommio::sync::StaticPermit)> {
    futures_lite::future::or(
        async {
            let g = w.global_slots.acquire_static_permit(1).await.ok()?;
            let f = w.frontends[fe].slots.acquire_static_permit(1).await.ok()?;
            Some((g, f))
        },
        async {
            w.stopping.wait().await;
            None
        },
    )
    .await
}

/// Sends a connection a retiring worker accepted to the next generation
/// (the main thread passes it to the master). Its descriptor is
/// duplicated, then glommio's stream closes its own (it does not shut the
/// connection down).
fn hand_off(w: &Worker, socket: u64, stream: TcpStream) {
    use std::os::fd::AsRawFd;
    // SAFETY: dup of a descriptor we own; the result is checked.
    let fd = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    drop(stream);
    if fd >= 0 {
        // SAFETY: a new descriptor nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let _ = w.events.send(crate::engine::Event::Handoff(socket, fd));
    }
}

/// Starts serving an accepted connection. When the worker is stopping
/// (its gate is closing) the connection is given back.
fn start(
    w: &Rc<Worker>,
    fe: usize,
    tls: bool,
    stream: TcpStream,
    permits: (glommio::sync::StaticPermit, glommio::sync::StaticPermit),
) -> Result<(), TcpStream> {
    let Ok(peer) = stream.peer_addr() else {
        return Ok(()); // already gone
    };
    // The gate pass is taken by hand: glommio's `Gate::spawn` wraps the
    // connection's future in another that holds it twice, doubling the
    // memory of every connection (8 KB instead of 4 for an HTTP one).
    let Ok(pass) = w.gate.enter() else {
        return Err(stream); // the gate is closing: the worker is stopping
    };
    let guard = ConnGuard::new(w.clone(), fe, peer, pass, permits);
    if !w.config.frontends[fe].tcp_rules.is_empty() {
        let local = stream.local_addr().unwrap_or(peer);
        if !crate::tcp_rules::run(w, fe, &guard.tracks, peer, local) {
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
                tcp::session(worker, fe, stream, peer, &guard.tracks, guard.sess).await;
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
        .accept(tcp, timeout, || w.share_tls_sessions())
        .await
    {
        Ok(s) => Some(s),
        Err(reason) => {
            let fst = &w.frontends[fe];
            w.logs.line(&fst.log, |out| {
                crate::log::write_client(out, &peer);
                out.extend_from_slice(b" [");
                crate::log::write_date(out, date);
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

/// What an open client connection holds for its whole life, whichever
/// task serves it at the moment: its slots in the worker's and the
/// frontend's `maxconn` shares, its pass through the worker's gate (so a
/// stop waits for it), and its place in the connection counts.
pub struct ConnGuard {
    w: Rc<Worker>,
    fe: usize,
    /// Stick counters the connection tracks (`track-scN`); ended when it
    /// closes.
    pub tracks: std::cell::RefCell<crate::stick::Tracks>,
    /// Its slot in the worker's open connections (`show sess`).
    pub sess: u32,
    _pass: glommio::sync::Pass,
    _permits: (glommio::sync::StaticPermit, glommio::sync::StaticPermit),
}

impl ConnGuard {
    fn new(
        w: Rc<Worker>,
        fe: usize,
        peer: SocketAddr,
        pass: glommio::sync::Pass,
        permits: (glommio::sync::StaticPermit, glommio::sync::StaticPermit),
    ) -> ConnGuard {
        let fst = &w.frontends[fe];
        w.conns.set(w.conns.get() + 1);
        fst.conns.set(fst.conns.get() + 1);
        fst.stats.session(fst.conns.get(), w.now_s());
        let sess = w.sessions.open(fe, peer);
        ConnGuard {
            w,
            fe,
            tracks: Default::default(),
            sess,
            _pass: pass,
            _permits: permits,
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let tracks = self.tracks.get_mut();
        if !tracks.is_empty() {
            tracks.end(&self.w.stick, &self.w.config.tables, true);
        }
        self.w.sessions.close(self.sess);
        let fst = &self.w.frontends[self.fe];
        fst.conns.set(fst.conns.get() - 1);
        self.w.conns.set(self.w.conns.get() - 1);
    }
}
