//! Listening sockets and the per-worker accept loop.
//!
//! Every worker binds its own socket for every frontend address with
//! SO_REUSEPORT; the kernel spreads new connections over them. A worker
//! takes a slot of its share of `global.maxconn` and of the frontend's
//! `maxconn` *before* accepting, so beyond the limit connections wait in
//! the kernel's backlog instead of being refused.

use crate::config::Mode;
use crate::engine::worker::Worker;
use crate::stream::Stream;
use crate::{http, tcp};
use glommio::net::{TcpListener, TcpStream};
use glommio::timer::Timer;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

/// Binds a SO_REUSEPORT listening socket for this worker.
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(65_535) as i32)?;
    // SAFETY: a freshly bound, listening socket whose ownership moves to
    // the glommio listener.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// Accepts connections for frontend `fe` until the worker stops; with
/// `tls`, each connection's first step is a TLS handshake.
pub async fn accept_loop(w: Rc<Worker>, fe: usize, tls: bool, listener: TcpListener) {
    let fst = &w.frontends[fe];
    loop {
        // Slots first: at the limit, stop accepting.
        let slots = futures_lite::future::or(
            async {
                let g = w.global_slots.acquire_static_permit(1).await.ok()?;
                let f = fst.slots.acquire_static_permit(1).await.ok()?;
                Some((g, f))
            },
            async {
                w.stopping.wait().await;
                None
            },
        )
        .await;
        let Some(permits) = slots else { break };
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            w.stopping.wait().await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
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
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        // The gate pass is taken by hand: glommio's `Gate::spawn` wraps the
        // connection's future in another that holds it twice, doubling the
        // memory of every connection (8 KB instead of 4 for an HTTP one).
        let Ok(pass) = w.gate.enter() else {
            break; // the gate is closing: the worker is stopping
        };
        let guard = ConnGuard::new(w.clone(), fe, peer, pass, permits);
        if !w.config.frontends[fe].tcp_rules.is_empty() {
            let local = stream.local_addr().unwrap_or(peer);
            if !crate::tcp_rules::run(&w, fe, &guard.tracks, peer, local) {
                continue; // rejected: the stream and the guard drop here
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
                glommio::spawn_local(http::session::serve(w.clone(), fe, stream, peer, guard))
                    .detach();
            }
        }
    }
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
    match acceptor.accept(tcp, timeout).await {
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
