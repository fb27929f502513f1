//! A generation: the worker pool, one glommio executor per worker, each
//! pinned to its own core, each with its own listeners (SO_REUSEPORT),
//! connections and state; a channel mesh between them for what must
//! cross cores.
//!
//! A generation is a process started by the master (`corral run`, see
//! `master/`), which hands it its configuration and its listening sockets
//! and tells it when to retire; `corral demo` runs one in its own process,
//! without a master. The main thread only starts workers, waits for them to
//! be ready, and relays: stop requests and the previous generation's state
//! to the workers (a per-worker channel and a byte on its control socket),
//! worker 0's state to the master. It never touches a connection.
//!
//! Must not touch: the master's code; it speaks to the master only through
//! `process::channel`.

pub(crate) mod carry;
pub(crate) mod dispatch;

use crate::config::Config;
use crate::mesh::MeshMsg;
use crate::process::channel::{self, Channel};
use crate::process::message::{DecodeError, Message, ToGeneration, ToMaster};
use crate::process::startup;
use crate::proxy::accept::listener;
use crate::worker::Worker;
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::net::UnixStream;
use glommio::timer::Timer;
use glommio::{LocalExecutorBuilder, Placement};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR2};
use socket2::Socket;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// How long workers may take to bind and join the mesh.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What reaches a generation's main thread.
pub(crate) enum Event {
    Ready,
    /// A worker no longer accepts (it was told to stop).
    Stopped,
    Failed(usize, String),
    Exited(usize),
    Signal(i32),
    /// A message from the master (or why its record is not one), with
    /// the descriptors that came with it.
    Master(Result<ToGeneration, DecodeError>, Vec<OwnedFd>),
    MasterGone,
    /// A retiring worker 0's state (see `carry.rs`), for the next
    /// generation.
    State(Vec<u8>),
}

/// What the main thread tells a worker (then it writes a byte on the
/// worker's control socket to wake it).
pub(crate) enum ToWorker {
    /// Start accepting: every listening socket listens.
    Go,
    /// Stop accepting and drain. `retire`: a newer generation serves
    /// (worker 0 hands it the state); otherwise the process is stopping.
    Stop { retire: bool },
    /// The previous generation's state (worker 0).
    State(Vec<u8>),
}

/// The listening sockets of one bind, as a generation receives them.
pub(crate) struct BindSockets {
    pub frontend: usize,
    pub bind: usize,
    /// The group's sockets in the kernel's order, with the master's ids.
    pub socks: Vec<(u64, Socket)>,
    /// Sockets from this index on do not listen yet: the main thread
    /// `listen()`s them, in order, once every worker runs.
    pub fresh_from: usize,
}

/// Who a generation answers to.
pub(crate) enum Supervisor {
    /// No master (`corral demo`): SIGTERM/SIGINT stop it.
    Standalone,
    /// Generation `number` of the master at the other end of `channel`.
    Master { number: u64, channel: Channel },
}

/// One listening socket as a worker gets it.
struct WorkerSocket {
    frontend: usize,
    tls: bool,
    socket: Socket,
}

/// Runs the proxy without a master: binds every address, serves until
/// SIGTERM or SIGINT, then drains and returns (`corral demo`).
pub(crate) fn run_standalone(mut config: Config) -> Result<(), String> {
    let mut groups = crate::process::groups::Groups::default();
    let plan = groups.plan(&mut config)?;
    let mut binds = Vec::new();
    for b in groups.sockets(&plan) {
        let socks = b
            .socks
            .iter()
            .map(|s| {
                s.socket
                    .try_clone()
                    .map(|c| (s.id, c))
                    .map_err(|e| format!("cannot duplicate a listening socket: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        binds.push(BindSockets {
            frontend: b.frontend,
            bind: b.bind,
            socks,
            fresh_from: 0,
        });
    }
    drop(groups);
    run(config, binds, Supervisor::Standalone)
}

/// `corral generation`: reads the configuration and the listening sockets
/// the master sends on the inherited channel `fd`, then runs. Start-up
/// failures go back to the master, which reports them.
pub(crate) fn generation(fd: i32, number: u64, peer_name: Option<String>) -> Result<(), String> {
    // SAFETY: the master passes the descriptor of our end of the channel,
    // which nothing else in this process uses.
    let channel = unsafe { Channel::from_inherited(fd) }
        .map_err(|e| format!("corral generation must be started by `corral run`: {e}"))?;
    let received = receive_handover(&channel);
    let (config, binds) = match received {
        Ok(x) => x,
        Err(reason) => {
            let _ = channel.send(&ToMaster::Failed { reason }, &[], false);
            return Err(String::new());
        }
    };
    let mut config = config;
    if let Some(name) = peer_name {
        for p in &mut config.peers {
            p.local = Some(name.clone());
        }
    }
    run(config, binds, Supervisor::Master { number, channel })
}

/// The handover's messages: `Config` (with a memfd), `Sockets` (with the
/// sockets), `Start`.
fn receive_handover(channel: &Channel) -> Result<(Config, Vec<BindSockets>), String> {
    let mut config = None;
    let mut binds: Vec<BindSockets> = Vec::new();
    loop {
        let (msg, fds) = channel
            .recv::<ToGeneration>()
            .map_err(|e| format!("reading the handover: {e}"))?
            .ok_or("the master closed the channel during the handover")?;
        match msg {
            Ok(ToGeneration::Config { path }) => {
                let fd = fds
                    .into_iter()
                    .next()
                    .ok_or("no configuration in the handover")?;
                let bytes =
                    channel::read_all(fd).map_err(|e| format!("reading the configuration: {e}"))?;
                let text =
                    String::from_utf8(bytes).map_err(|_| "the configuration is not UTF-8")?;
                config = Some(Config::parse(&path, &text).map_err(|errors| errors.to_string())?);
            }
            Ok(ToGeneration::Sockets {
                frontend,
                bind,
                fresh_from,
                first: _,
                ids,
            }) => {
                if ids.len() != fds.len() {
                    return Err("a handover message lost its sockets".into());
                }
                let socks = ids.into_iter().zip(fds.into_iter().map(|fd| {
                    // SAFETY: a listening socket the master handed over.
                    unsafe { Socket::from_raw_fd(fd.into_raw_fd()) }
                }));
                match binds
                    .iter_mut()
                    .find(|b| b.frontend == frontend && b.bind == bind)
                {
                    Some(b) => b.socks.extend(socks),
                    None => binds.push(BindSockets {
                        frontend,
                        bind,
                        socks: socks.collect(),
                        fresh_from,
                    }),
                }
            }
            Ok(ToGeneration::Start) => break,
            Ok(other) => {
                return Err(format!("an unexpected handover message `{}`", other.tag()));
            }
            Err(DecodeError::UnknownTag(word)) => {
                return Err(format!("an unexpected handover message `{word}`"));
            }
            Err(e) => return Err(format!("a malformed handover message: {e}")),
        }
    }
    let mut config = config.ok_or("the handover had no configuration")?;
    // Every bind must have its sockets; port 0 is the port they have.
    for (f, fe) in config.frontends.iter_mut().enumerate() {
        for (i, b) in fe.binds.iter_mut().enumerate() {
            let got = binds
                .iter()
                .find(|s| s.frontend == f && s.bind == i)
                .ok_or_else(|| {
                    format!("frontends.{}.bind[{i}]: no socket was handed over", fe.name)
                })?;
            let first = got.socks.first().ok_or("an empty socket group")?;
            if let Some(addr) = first.1.local_addr().ok().and_then(|a| a.as_socket()) {
                b.addr = addr;
            }
        }
    }
    Ok((config, binds))
}

/// Runs a generation until it is stopped, then drains and returns. An
/// error is a one-line explanation of why it could not start (or why a
/// worker died); with a master, start-up errors are sent to it instead
/// and the error returned is empty.
pub(crate) fn run(
    mut config: Config,
    binds: Vec<BindSockets>,
    sup: Supervisor,
) -> Result<(), String> {
    let (events_tx, events) = mpsc::channel::<Event>();
    let (number, master) = match sup {
        Supervisor::Standalone => (0, None),
        Supervisor::Master { number, channel } => (number, Some(channel)),
    };
    let started = start(&mut config, binds, &events_tx, &events, number);
    let mut pool = match started {
        Ok(p) => p,
        Err(msg) => {
            return match &master {
                Some(ch) => {
                    let _ = ch.send(&ToMaster::Failed { reason: msg }, &[], false);
                    Err(String::new())
                }
                None => Err(msg),
            };
        }
    };
    let config = pool.config.clone();
    let n = config.global.workers;

    // Start accepting, and say so.
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
    let cores = startup::cores();
    let pinned = if cores.is_empty() {
        "unpinned".to_string()
    } else {
        let list: Vec<String> = (0..n).map(|i| cores[i % cores.len()].to_string()).collect();
        format!("on cores {}", list.join(","))
    };
    let which = if number > 0 {
        format!(" (generation {number})")
    } else {
        String::new()
    };
    crate::notice!(
        "corral {} ready: {n} worker{} {pinned}{which}",
        env!("CARGO_PKG_VERSION"),
        if n == 1 { "" } else { "s" }
    );
    if let Some(ch) = &master {
        if ch.send(&ToMaster::Ready, &[], false).is_err() {
            // The master is gone: nobody wants this generation.
            pool.tell_all(|| ToWorker::Stop { retire: false });
        }
        // Its messages from now on.
        match ch.try_clone() {
            Ok(reader) => {
                let tx = events_tx.clone();
                let _ = std::thread::Builder::new()
                    .name("corral-master".into())
                    .spawn(move || {
                        while let Ok(Some((msg, fds))) = reader.recv::<ToGeneration>() {
                            if tx.send(Event::Master(msg, fds)).is_err() {
                                return;
                            }
                        }
                        let _ = tx.send(Event::MasterGone);
                    });
            }
            Err(e) => return Err(format!("cannot read the master's channel: {e}")),
        }
    }
    drop(events_tx);

    // Serve until told to stop; then wait for the workers to drain.
    let mut stopping = false;
    let mut retiring = false;
    let (mut exited, mut stopped) = (0, 0);
    while exited < n {
        let Ok(ev) = events.recv() else { break };
        match ev {
            // With a master, SIGINT (a terminal's Ctrl-C reaches the whole
            // process group) is the master's to handle: it tells every
            // generation to quit. SIGTERM sent to a generation stops it.
            Event::Signal(sig) if sig == SIGTERM || (sig == SIGINT && master.is_none()) => {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                if master.is_none() {
                    crate::notice!(
                        "{name} received: no longer accepting; open connections have up to {} to finish",
                        crate::base::units::format_duration(config.global.hard_stop_after)
                    );
                }
                if !stopping {
                    stopping = true;
                    pool.tell_all(|| ToWorker::Stop { retire: false });
                }
            }
            Event::Signal(sig) => {
                // SIGHUP/SIGUSR2 reload through the master.
                if master.is_none() && sig != SIGINT {
                    crate::warning!(
                        "reload signal ignored: this corral runs without a configuration file to reload (use `corral run`)"
                    );
                }
            }
            Event::Master(msg, fds) => match msg {
                Ok(m @ (ToGeneration::Retire | ToGeneration::Quit)) => {
                    let retire = m == ToGeneration::Retire;
                    if retire && !stopping {
                        crate::notice!(
                            "generation {number}: a newer generation serves: no longer accepting; open connections have up to {} to finish",
                            crate::base::units::format_duration(config.global.hard_stop_after)
                        );
                    }
                    // A quit after a retire still matters: it ends the
                    // pending accepts at once.
                    stopping = true;
                    retiring |= retire;
                    pool.tell_all(|| ToWorker::Stop { retire });
                }
                Ok(ToGeneration::State) => {
                    if let Some(bytes) = fds
                        .into_iter()
                        .next()
                        .and_then(|fd| channel::read_all(fd).ok())
                    {
                        pool.tell(0, ToWorker::State(bytes));
                    }
                }
                // The handover's messages come before this point.
                Ok(other) => crate::warning!(
                    "generation {number}: unknown message `{}` from the master",
                    other.tag()
                ),
                Err(DecodeError::UnknownTag(word)) => {
                    crate::warning!("generation {number}: unknown message `{word}` from the master")
                }
                Err(e) => {
                    crate::warning!("generation {number}: a malformed message from the master: {e}")
                }
            },
            Event::MasterGone => {
                if !stopping {
                    crate::warning!("generation {number}: the master is gone: stopping");
                    stopping = true;
                }
                pool.tell_all(|| ToWorker::Stop { retire: false });
            }
            Event::State(bytes) => {
                if let Some(ch) = &master {
                    match channel::memfd("corral-state", &bytes) {
                        Ok(fd) => {
                            let _ = ch.send(&ToMaster::State, &[fd.as_raw_fd()], false);
                        }
                        Err(e) => {
                            crate::warning!("generation {number}: cannot hand its state over: {e}")
                        }
                    }
                }
            }
            Event::Stopped => {
                stopped += 1;
                // Every worker stopped accepting: the master may tell
                // whoever asked for the reload that it is done.
                if stopped == n
                    && retiring
                    && let Some(ch) = &master
                {
                    let _ = ch.send(&ToMaster::Retired, &[], false);
                }
            }
            Event::Exited(i) => {
                exited += 1;
                if !stopping {
                    return Err(format!("worker {i} stopped unexpectedly"));
                }
            }
            Event::Failed(i, msg) => return Err(format!("worker {i}: {msg}")),
            Event::Ready => {}
        }
    }
    for t in pool.threads.drain(..) {
        let _ = t.join();
    }
    if number > 0 {
        crate::notice!("generation {number} stopped");
    } else {
        crate::notice!("stopped");
    }
    Ok(())
}

/// The running workers, as the main thread sees them.
struct Pool {
    config: Arc<Config>,
    controls: Vec<StdUnixStream>,
    senders: Vec<mpsc::Sender<ToWorker>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    fn tell(&mut self, w: usize, msg: ToWorker) {
        if self.senders[w].send(msg).is_ok() {
            let _ = self.controls[w].write_all(b"M");
        }
    }

    fn tell_all(&mut self, msg: impl Fn() -> ToWorker) {
        for w in 0..self.senders.len() {
            self.tell(w, msg());
        }
    }
}

/// Start-up: checks, workers, mesh, listening; returns once every worker
/// accepts.
fn start(
    config: &mut Config,
    binds: Vec<BindSockets>,
    events_tx: &mpsc::Sender<Event>,
    events: &mpsc::Receiver<Event>,
    number: u64,
) -> Result<Pool, String> {
    // Signals first, so a stop request during start-up is not lost.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR2])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    {
        let tx = events_tx.clone();
        std::thread::Builder::new()
            .name("corral-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if tx.send(Event::Signal(sig)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    }
    startup::check_io_uring(config.global.io_memory)?;
    crate::peers::node::check(config)?;
    // A later generation takes the runtime API's sockets over from the
    // one it replaces.
    config.generation = number;
    crate::observe::log::send_ops_to(&config.global.log);
    startup::fit_nofile(config);
    let config = Arc::new(config.clone());
    let n = config.global.workers;
    let cores = startup::cores();
    if n > cores.len().max(1) && number <= 1 {
        crate::warning!(
            "global.workers is {n} but this process may use {} cores: several workers will share a core",
            cores.len()
        );
    }

    // Socket k of a group is accepted by worker k mod n; the main thread
    // keeps a copy of each group to `listen()` the fresh ones in order.
    let mut per_worker: Vec<Vec<WorkerSocket>> = (0..n).map(|_| Vec::new()).collect();
    let mut groups = Vec::new();
    for b in binds {
        let fe = &config.frontends[b.frontend];
        let tls = fe.binds[b.bind].tls;
        let mut copies = Vec::new();
        for (k, (_id, socket)) in b.socks.into_iter().enumerate() {
            copies.push(
                socket
                    .try_clone()
                    .map_err(|e| format!("cannot duplicate a listening socket: {e}"))?,
            );
            per_worker[k % n].push(WorkerSocket {
                frontend: b.frontend,
                tls,
                socket,
            });
        }
        groups.push((b.frontend, b.bind, b.fresh_from, copies));
    }

    let mesh: Option<MeshBuilder<MeshMsg, Full>> =
        (n > 1).then(|| MeshBuilder::full(n, crate::mesh::CHANNEL_CAPACITY));
    let mut pool = Pool {
        config: config.clone(),
        controls: Vec::with_capacity(n),
        senders: Vec::with_capacity(n),
        threads: Vec::with_capacity(n),
    };
    for (i, socks) in per_worker.into_iter().enumerate() {
        let (main_end, worker_end) =
            StdUnixStream::pair().map_err(|e| format!("cannot create a control socket: {e}"))?;
        pool.controls.push(main_end);
        let (tx, rx) = mpsc::channel::<ToWorker>();
        pool.senders.push(tx);
        let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
        let (config, mesh, tx) = (config.clone(), mesh.clone(), events_tx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("corral-w{i}"))
            .spawn(move || worker_thread(i, core, config, mesh, (worker_end, rx), tx, socks))
            .map_err(|e| format!("cannot start worker thread {i}: {e}"))?;
        pool.threads.push(thread);
    }

    // Wait until every worker runs.
    let mut ready = 0;
    while ready < n {
        match events.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Event::Ready) => ready += 1,
            Ok(Event::Failed(_, msg)) => return Err(msg),
            Ok(Event::Exited(i)) => return Err(format!("worker {i} exited during start-up")),
            Ok(Event::Signal(sig)) if sig == SIGTERM || (sig == SIGINT && number == 0) => {
                return Err("stopped during start-up".into());
            }
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("a worker stopped during start-up (see the message above)".into());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("workers did not start within {STARTUP_TIMEOUT:?}"));
            }
        }
    }

    // Listen: the fresh sockets in their group's order (the order steering
    // relies on), the steering program for this worker count, the
    // backlog for this configuration.
    for (f, i, fresh_from, socks) in &groups {
        let fe = &config.frontends[*f];
        let path = format!("frontends.{}.bind[{i}]", fe.name);
        let text = &fe.binds[*i].text;
        let backlog = fe.maxconn.min(65_535) as i32;
        let steer = config.global.steer && n > 1;
        for (k, s) in socks.iter().enumerate() {
            s.listen(backlog)
                .map_err(|e| startup::bind_error(&e, &path, text))?;
            if k == 0 && *fresh_from == 0 && steer {
                crate::proxy::accept::steer::attach(s.as_raw_fd(), n as u32)
                    .map_err(|e| format!("{path} `{text}` with global.steer: {e}"))?;
            }
        }
        if steer && *fresh_from > 0 {
            crate::proxy::accept::steer::attach(socks[0].as_raw_fd(), n as u32)
                .map_err(|e| format!("{path} `{text}` with global.steer: {e}"))?;
        } else if !steer && *fresh_from > 0 {
            // A previous configuration may have steered this group.
            crate::proxy::accept::steer::detach(socks[0].as_raw_fd());
        }
    }
    drop(groups);
    pool.tell_all(|| ToWorker::Go);
    Ok(pool)
}

fn worker_thread(
    id: usize,
    core: Option<usize>,
    config: Arc<Config>,
    mesh: Option<MeshBuilder<MeshMsg, Full>>,
    control: (StdUnixStream, mpsc::Receiver<ToWorker>),
    events: mpsc::Sender<Event>,
    socks: Vec<WorkerSocket>,
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

/// A worker's life: join the mesh, serve, and on a stop request drain its
/// connections.
async fn serve(
    id: usize,
    config: Arc<Config>,
    mesh: Option<MeshBuilder<MeshMsg, Full>>,
    control: (StdUnixStream, mpsc::Receiver<ToWorker>),
    events: &mpsc::Sender<Event>,
    socks: Vec<WorkerSocket>,
) -> Result<(), String> {
    let (control, inbox) = control;
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
    w.mesh.set_handler(dispatch::handler(&w));
    // Worker 0 listens for peer nodes and runtime API clients before the
    // process says it is ready.
    let mut api = Vec::new();
    if id == 0 {
        crate::peers::node::spawn(&w);
        api = crate::control::runtime_api::spawn(&w)?;
    }
    let _ = events.send(Event::Ready);

    for (from, rx) in streams {
        let w = w.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                dispatch::receive(&w, from, msg).await;
            }
        })
        .detach();
    }
    let stick_flusher = (!config.tables.is_empty()).then(|| {
        let w = w.clone();
        glommio::spawn_local(async move {
            let mut rounds = 0u32;
            while !w.life.stopping.is_set() {
                futures_lite::future::or(Timer::new(crate::stick::store::FLUSH_EVERY), async {
                    w.life.stopping.wait().await;
                    std::time::Instant::now()
                })
                .await;
                w.mesh.flush_stick(&w.stick, &w.config.tables).await;
                rounds += 1;
                if rounds.is_multiple_of(100) {
                    w.stick.expire();
                }
            }
        })
    });
    crate::health::spawn_checks(&w);
    crate::control::stats::spawn_sampler(&w);
    let flusher = {
        let w = w.clone();
        glommio::spawn_local(async move {
            while !w.life.stopping.is_set() {
                futures_lite::future::or(Timer::new(crate::observe::log::FLUSH_EVERY), async {
                    w.life.stopping.wait().await;
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
    let accepting: Vec<_> = socks
        .into_iter()
        .map(|s| {
            glommio::spawn_local(listener::accept_loop(
                w.clone(),
                s.frontend,
                s.tls,
                s.socket,
            ))
        })
        .collect();

    // The control loop: messages from the main thread, for the worker's
    // whole life (a quit may follow a retire).
    // SAFETY: the control socket's descriptor moves into the glommio stream.
    let control = unsafe { UnixStream::from_raw_fd(control.into_raw_fd()) };
    let stop_asked = std::rc::Rc::new(crate::base::local_sync::Flag::default());
    let _control = {
        let (w, stop_asked) = (w.clone(), stop_asked.clone());
        glommio::spawn_local(control_loop(w, control, inbox, stop_asked))
    };
    stop_asked.wait().await;

    // Drain. A retiring worker 0 first hands its state to the next
    // generation.
    let retiring = w.life.retiring.get();
    if retiring && id == 0 {
        let _ = events.send(Event::State(carry::dump(&w)));
    }
    w.life.stopping.set();
    let _ = events.send(Event::Stopped);
    let open = w.conns.get();
    let drained = futures_lite::future::or(
        async {
            let _ = w.life.gate.close().await;
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
    for a in accepting {
        a.await;
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

/// Applies the main thread's messages: each byte on the control socket
/// says one is waiting; end of stream means the main thread is gone
/// (stop).
async fn control_loop(
    w: std::rc::Rc<Worker>,
    mut control: UnixStream,
    inbox: mpsc::Receiver<ToWorker>,
    stop_asked: std::rc::Rc<crate::base::local_sync::Flag>,
) {
    let mut byte = [0u8; 64];
    loop {
        let n = futures_lite::AsyncReadExt::read(&mut control, &mut byte)
            .await
            .unwrap_or(0);
        if n == 0 {
            stop_asked.set();
            return;
        }
        while let Ok(msg) = inbox.try_recv() {
            match msg {
                ToWorker::Go => w.life.go.set(),
                ToWorker::Stop { retire } => {
                    if !stop_asked.is_set() {
                        w.life.retiring.set(retire);
                        stop_asked.set();
                    }
                }
                ToWorker::State(bytes) => {
                    let w = w.clone();
                    glommio::spawn_local(async move { carry::load(&w, &bytes).await }).detach();
                }
            }
        }
    }
}
