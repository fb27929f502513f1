//! The worker pool: one glommio executor per worker, each pinned to its
//! own core, each with its own listeners (SO_REUSEPORT), connections and
//! state; a channel mesh between them for what must cross cores.
//!
//! The main thread only starts workers, waits for them to be ready, and
//! turns signals into a stop request written to each worker's control
//! socket. It never touches a connection.

pub mod mesh;
pub mod ring_setup;
pub mod startup;
pub mod worker;

use crate::config::Config;
use crate::listener;
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::net::UnixStream;
use glommio::timer::Timer;
use glommio::{LocalExecutorBuilder, Placement};
use mesh::MeshMsg;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::io::Write;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use worker::Worker;

/// How long workers may take to bind and join the mesh.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What workers tell the main thread.
enum Event {
    Ready,
    Failed(usize, String),
    Exited(usize),
}

/// Runs the proxy until SIGTERM or SIGINT, then drains and returns.
/// An error is a one-line explanation of why it could not start (or why a
/// worker died).
pub fn run(mut config: Config) -> Result<(), String> {
    // Signals first, so a stop request during start-up is not lost.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    startup::check_io_uring(config.global.io_memory)?;
    crate::peers::node::check(&config)?;
    startup::fit_nofile(&mut config);
    let reservations = startup::reserve_binds(&mut config)?;
    let config = Arc::new(config);
    let n = config.global.workers;
    let cores = startup::cores();
    if n > cores.len().max(1) {
        crate::warning!(
            "global.workers is {n} but this process may use {} cores: several workers will share a core",
            cores.len()
        );
    }

    // `steer: source`: the listening sockets are made here, in worker
    // order, with the BPF program that sends each client to the worker
    // owning its address (socket k of each group is worker k's).
    let mut prebound: Vec<Vec<socket2::Socket>> = (0..n).map(|_| Vec::new()).collect();
    if config.global.steer && n > 1 {
        for fe in &config.frontends {
            for (i, b) in fe.binds.iter().enumerate() {
                let backlog = fe.maxconn.min(65_535) as i32;
                let group = crate::steer::bind_group(b.addr, n, backlog).map_err(|e| {
                    format!(
                        "frontends.{}.bind[{i}] `{}` with global.steer: {e}",
                        fe.name, b.text
                    )
                })?;
                for (w, sock) in group.into_iter().enumerate() {
                    prebound[w].push(sock);
                }
            }
        }
    }
    let mut prebound = prebound.into_iter();

    let (events_tx, events) = mpsc::channel::<Event>();
    let mesh: Option<MeshBuilder<MeshMsg, Full>> =
        (n > 1).then(|| MeshBuilder::full(n, mesh::CHANNEL_CAPACITY));
    let mut controls = Vec::with_capacity(n);
    let mut cert_senders = Vec::with_capacity(n);
    let mut threads = Vec::with_capacity(n);
    for i in 0..n {
        let (main_end, worker_end) =
            StdUnixStream::pair().map_err(|e| format!("cannot create a control socket: {e}"))?;
        controls.push(main_end);
        let (certs_tx, certs_rx) = mpsc::channel::<CertUpdate>();
        cert_senders.push(certs_tx);
        let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
        let (config, mesh, tx) = (config.clone(), mesh.clone(), events_tx.clone());
        let socks = prebound.next().unwrap_or_default();
        let thread = std::thread::Builder::new()
            .name(format!("corral-w{i}"))
            .spawn(move || worker_thread(i, core, config, mesh, (worker_end, certs_rx), tx, socks))
            .map_err(|e| format!("cannot start worker thread {i}: {e}"))?;
        threads.push(thread);
    }
    drop(events_tx);

    // Wait until every worker listens.
    let mut ready = 0;
    while ready < n {
        match events.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Event::Ready) => ready += 1,
            Ok(Event::Failed(_, msg)) => return Err(msg),
            Ok(Event::Exited(i)) => return Err(format!("worker {i} exited during start-up")),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("a worker stopped during start-up (see the message above)".into());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("workers did not start within {STARTUP_TIMEOUT:?}"));
            }
        }
    }
    drop(reservations);
    for f in &config.frontends {
        for b in &f.binds {
            crate::notice!(
                "frontend {} ({}) listening on {}",
                f.name,
                f.mode.name(),
                b.addr
            );
        }
    }
    let pinned = if cores.is_empty() {
        "unpinned".to_string()
    } else {
        let list: Vec<String> = (0..n).map(|i| cores[i % cores.len()].to_string()).collect();
        format!("on cores {}", list.join(","))
    };
    crate::notice!(
        "corral {} ready: {n} worker{} {pinned}",
        env!("CARGO_PKG_VERSION"),
        if n == 1 { "" } else { "s" }
    );

    // Serve until told to stop; then wait for the workers to drain.
    let mut stopping = false;
    let mut exited = 0;
    while exited < n {
        let mut stop_signal = None;
        for sig in signals.pending() {
            if sig == SIGHUP {
                if !stopping {
                    reload_certificates(&config, &cert_senders, &mut controls);
                }
            } else {
                stop_signal = Some(sig);
            }
        }
        if !stopping && let Some(sig) = stop_signal {
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            crate::notice!(
                "{name} received: no longer accepting; open connections have up to {} to finish",
                crate::config::units::format_duration(config.global.hard_stop_after)
            );
            stopping = true;
            for c in &mut controls {
                let _ = c.write_all(b"S");
            }
        }
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Exited(i)) => {
                exited += 1;
                if !stopping {
                    return Err(format!("worker {i} stopped unexpectedly"));
                }
            }
            Ok(Event::Failed(i, msg)) => return Err(format!("worker {i}: {msg}")),
            Ok(Event::Ready) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for t in threads {
        let _ = t.join();
    }
    crate::notice!("stopped");
    Ok(())
}

/// New certificates for some frontends: `(frontend, set)`.
type CertUpdate = Vec<(usize, Arc<crate::tls::certs::CertSet>)>;

/// SIGHUP: reads every TLS frontend's certificates again and hands the new
/// sets to the workers. A frontend whose files cannot be loaded (missing,
/// unreadable, key not matching) keeps its current certificates, and the
/// reason is logged; the others are replaced.
fn reload_certificates(
    config: &Config,
    senders: &[mpsc::Sender<CertUpdate>],
    controls: &mut [StdUnixStream],
) {
    let mut update = Vec::new();
    for (i, fe) in config.frontends.iter().enumerate() {
        let Some(tls) = &fe.tls else { continue };
        match crate::tls::certs::CertSet::load(&tls.certs, &tls.provider) {
            Ok(set) => {
                let names: Vec<String> = set
                    .loaded
                    .iter()
                    .map(|l| format!("{} ({})", l.file.display(), l.names.join(",")))
                    .collect();
                crate::notice!(
                    "SIGHUP: frontend {}: certificates reloaded: {}",
                    fe.name,
                    names.join("; ")
                );
                update.push((i, Arc::new(set)));
            }
            Err(e) => crate::warning!(
                "SIGHUP: frontend {}: certificates NOT reloaded, the current ones stay in use: {e}",
                fe.name
            ),
        }
    }
    if update.is_empty() {
        return;
    }
    for (tx, control) in senders.iter().zip(controls.iter_mut()) {
        if tx.send(update.clone()).is_ok() {
            let _ = control.write_all(b"C");
        }
    }
}

fn worker_thread(
    id: usize,
    core: Option<usize>,
    config: Arc<Config>,
    mesh: Option<MeshBuilder<MeshMsg, Full>>,
    control: (StdUnixStream, mpsc::Receiver<CertUpdate>),
    events: mpsc::Sender<Event>,
    socks: Vec<socket2::Socket>,
) {
    let placement = core.map_or(Placement::Unbound, Placement::Fixed);
    let executor = LocalExecutorBuilder::new(placement)
        .name(&format!("corral-w{id}"))
        .io_memory(config.global.io_memory)
        .make();
    let executor = match executor {
        Ok(ex) => ex,
        Err(e) => {
            let msg = startup::executor_error(&e, config.global.io_memory);
            let _ = events.send(Event::Failed(id, msg));
            return;
        }
    };
    let tx = events.clone();
    executor.run(async move {
        if let Err(msg) = serve(id, config, mesh, control, &tx, socks).await {
            let _ = tx.send(Event::Failed(id, msg));
        }
    });
    let _ = events.send(Event::Exited(id));
}

/// A worker's life: bind, join the mesh, serve, and on a stop request
/// drain its connections.
async fn serve(
    id: usize,
    config: Arc<Config>,
    mesh: Option<MeshBuilder<MeshMsg, Full>>,
    control: (StdUnixStream, mpsc::Receiver<CertUpdate>),
    events: &mpsc::Sender<Event>,
    socks: Vec<socket2::Socket>,
) -> Result<(), String> {
    let (control, cert_updates) = control;
    // Listeners: this worker's own socket for every frontend address
    // (made by the main thread, in order, when steering).
    let mut listeners = Vec::new();
    let mut socks = socks.into_iter();
    for (f, fe) in config.frontends.iter().enumerate() {
        for (i, b) in fe.binds.iter().enumerate() {
            let l = match socks.next() {
                // SAFETY: a listening socket whose ownership moves to glommio.
                Some(s) => unsafe { glommio::net::TcpListener::from_raw_fd(s.into_raw_fd()) },
                None => listener::bind(b.addr, fe.maxconn).map_err(|e| {
                    startup::bind_error(&e, &format!("frontends.{}.bind[{i}]", fe.name), &b.text)
                })?,
            };
            listeners.push((f, b.tls, l));
        }
    }
    // The mesh: wait for every other worker to join.
    let (senders, receivers) = match mesh {
        Some(m) => {
            let (s, r) = m
                .join()
                .await
                .map_err(|e| format!("cannot join the worker mesh: {e}"))?;
            (Some(s), Some(r))
        }
        None => (None, None),
    };
    // Learn which mesh peer is which worker: each sends its id first.
    let mut mesh_of = vec![0; config.global.workers];
    let mut streams = Vec::new();
    if let (Some(s), Some(mut r)) = (&senders, receivers) {
        for peer in 0..s.nr_consumers() {
            if peer != s.peer_id() {
                s.send_to(peer, MeshMsg::Hello { worker: id })
                    .await
                    .map_err(|e| format!("cannot greet the worker mesh: {e}"))?;
            }
        }
        mesh_of[id] = s.peer_id();
        for (from, rx) in r.streams() {
            match rx.recv().await {
                Some(MeshMsg::Hello { worker }) if worker < mesh_of.len() => mesh_of[worker] = from,
                _ => return Err("the worker mesh did not start with a greeting".into()),
            }
            streams.push((from, rx));
        }
    }
    let w = Worker::new(id, config.clone(), senders, mesh_of).map_err(|e| e.to_string())?;
    // Worker 0 listens for peer nodes and runtime API clients before the
    // process says it is ready.
    let mut api = Vec::new();
    if id == 0 {
        crate::peers::node::spawn(&w);
        api = crate::runtime_api::spawn(&w)?;
    }
    let _ = events.send(Event::Ready);

    for (from, rx) in streams {
        let w = w.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                w.receive(from, msg).await;
            }
        })
        .detach();
    }
    let stick_flusher = (!config.tables.is_empty()).then(|| {
        let w = w.clone();
        glommio::spawn_local(async move {
            let mut rounds = 0u32;
            while !w.stopping.is_set() {
                futures_lite::future::or(Timer::new(crate::stick::store::FLUSH_EVERY), async {
                    w.stopping.wait().await;
                    std::time::Instant::now()
                })
                .await;
                w.flush_stick().await;
                rounds += 1;
                if rounds.is_multiple_of(100) {
                    w.stick.expire();
                }
            }
        })
    });
    crate::health::spawn_checks(&w);
    crate::stats::spawn_sampler(&w);
    let flusher = {
        let w = w.clone();
        glommio::spawn_local(async move {
            while !w.stopping.is_set() {
                futures_lite::future::or(Timer::new(crate::log::FLUSH_EVERY), async {
                    w.stopping.wait().await;
                    std::time::Instant::now()
                })
                .await;
                w.logs.flush();
                w.tick();
                w.purge_idle();
                w.trim_memory();
            }
        })
    };
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|(f, tls, l)| glommio::spawn_local(listener::accept_loop(w.clone(), f, tls, l)))
        .collect();

    // Serve until the main thread says stop (or goes away).
    // SAFETY: the control socket's descriptor moves into the glommio stream.
    let mut control = unsafe { UnixStream::from_raw_fd(control.into_raw_fd()) };
    // `C`: new certificates wait in `cert_updates`; anything else (`S`,
    // or the socket closing) means stop.
    let mut byte = [0u8; 1];
    loop {
        let n = futures_lite::AsyncReadExt::read(&mut control, &mut byte)
            .await
            .unwrap_or(0);
        if n == 1 && byte[0] == b'C' {
            while let Ok(update) = cert_updates.try_recv() {
                for (fe, set) in update {
                    if let Some(acceptor) = &w.frontends[fe].tls {
                        acceptor.replace_certs(set);
                    }
                }
            }
            continue;
        }
        break;
    }

    // Drain.
    w.stopping.set();
    for a in accepting {
        a.await;
    }
    let open = w.conns.get();
    let drained = futures_lite::future::or(
        async {
            let _ = w.gate.close().await;
            true
        },
        async {
            Timer::new(config.global.hard_stop_after).await;
            false
        },
    )
    .await;
    if !drained {
        crate::warning!(
            "worker {id}: closing {} connection(s) still open after hard-stop-after (of {open} open at stop)",
            w.conns.get()
        );
    }
    flusher.await;
    for a in api {
        a.await;
    }
    if let Some(f) = stick_flusher {
        f.await;
    }
    let lookups = w.stick.lookups.get();
    if lookups > 0 {
        let owned = w.stick.owned_lookups.get();
        crate::notice!(
            "worker {id}: {lookups} stick-table key lookups, {owned} of them on this worker's own keys ({:.1}%)",
            owned as f64 * 100.0 / lookups as f64
        );
    }
    w.logs.close().await;
    Ok(())
}
