//! The master: the long-lived process `corral run` starts (the one
//! systemd tracks). It never touches a connection. It holds the listening
//! sockets, runs *generations* (child processes, each the whole engine:
//! workers, mesh, connections) and replaces one generation by the next on
//! a reload without closing a listening socket:
//!
//! 1. A reload (SIGHUP, SIGUSR2, or `corral reload` on the control
//!    socket) loads and validates the configuration file. Invalid: the
//!    errors are logged (and returned to `corral reload`), the serving
//!    generation goes on.
//! 2. The listening sockets the new configuration needs are found or
//!    created (`groups.rs`); a port that cannot be had fails the reload
//!    the same way.
//! 3. The new generation is started with a channel (`channel.rs`): it
//!    receives the configuration text and every listening socket
//!    (SCM_RIGHTS), starts its workers on them and says `ready` (or
//!    `failed` and why).
//! 4. The previous generation is told to `retire`: it stops accepting,
//!    hands over any connection its pending accepts still produce and its
//!    state (server health, stick tables), and drains its connections up
//!    to `hard-stop-after`. The master closes the sockets of binds the new
//!    configuration dropped.
//!
//! SIGTERM/SIGINT: every generation is told to `quit` (stop accepting and
//! drain), the master closes its sockets and exits once they have exited.
//!
//! Must not touch: connections or the generation's code; it speaks to
//! generations only through `process::channel`.

pub(crate) mod control;
pub(crate) mod notify;

use crate::config::Config;
use crate::process::channel::{self, Channel};
use crate::process::groups::{Groups, Plan};
use control::{Client, Request};
use notify::Notifier;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR2};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a new generation may take to become ready (its engine's own
/// limit is 30 s; this leaves it room to say why it failed).
const START_LIMIT: Duration = Duration::from_secs(40);
/// How long a retiring generation may take to confirm it stopped
/// accepting (it only has to pass the word to its workers).
const RETIRE_LIMIT: Duration = Duration::from_secs(5);

/// What `corral run` was given.
pub(crate) struct Options {
    pub config: PathBuf,
    pub peer_name: Option<String>,
    /// `--control`.
    pub control: Option<PathBuf>,
}

/// What reaches the master's main loop.
enum Ev {
    Signal(i32),
    Control(Client),
    /// A message from generation `n`.
    Gen(u64, String, Vec<OwnedFd>),
    /// Generation `n` closed its channel (it exited).
    GenGone(u64),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Starting,
    Serving,
    Retiring,
}

struct Generation {
    number: u64,
    child: Child,
    chan: Channel,
    phase: Phase,
}

/// A reload waiting for its turn.
struct Wanted {
    /// None: the file in use.
    path: Option<PathBuf>,
    origin: &'static str,
    client: Option<Client>,
}

/// The reload under way: its generation is starting, or serves and the
/// previous ones have yet to confirm they stopped accepting.
struct Pending {
    number: u64,
    /// Taken when the generation serves.
    plan: Option<Plan>,
    /// The generation serves; these retiring ones have not yet said
    /// `retired` (every worker stopped accepting).
    serving: bool,
    waiting: Vec<u64>,
    /// The previous generations, for the messages.
    retiring: Vec<String>,
    path: PathBuf,
    origin: &'static str,
    client: Option<Client>,
    deadline: Instant,
    hard_stop_after: Duration,
    /// When each step of the reload ended, for its `done` line.
    steps: Steps,
}

/// The timeline of one reload.
struct Steps {
    /// The reload was taken from the queue.
    began: Instant,
    /// The file was read and fully validated.
    validated: Instant,
    /// The generation said `ready`.
    ready: Option<Instant>,
}

impl Steps {
    /// `done in 24ms (validate 3ms, start 15ms, retire 6ms)`: the time a
    /// reload took and where it went (start: until the new generation
    /// accepts; retire: until the old ones stopped accepting).
    fn describe(&self) -> String {
        let now = Instant::now();
        let ready = self.ready.unwrap_or(now);
        let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1e3);
        format!(
            "in {} (validate {}, start {}, retire {})",
            ms(now - self.began),
            ms(self.validated - self.began),
            ms(ready - self.validated),
            ms(now - ready)
        )
    }
}

struct Master {
    exe: PathBuf,
    peer_name: Option<String>,
    /// The file the serving generation's configuration came from.
    path: PathBuf,
    groups: Groups,
    gens: Vec<Generation>,
    next_number: u64,
    pending: Option<Pending>,
    queue: VecDeque<Wanted>,
    notifier: Notifier,
    events: mpsc::Sender<Ev>,
    stopping: bool,
    /// The serving configuration's `hard-stop-after` (for messages).
    hard_stop_after: Duration,
}

/// Runs the master until SIGTERM/SIGINT and every generation has exited.
/// `config` is the validated configuration of `opts.config`, whose text is
/// `text`. An error is the one-line reason it could not start.
pub(crate) fn run(opts: Options, config: Config, text: String) -> Result<(), String> {
    // Before any thread starts (it edits the environment).
    let notifier = Notifier::from_env();
    // The master's own messages (reloads) go to the first configuration's
    // syslog targets.
    crate::observe::log::send_ops_to(&config.global.log);
    let signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR2])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find corral's own executable: {e}"))?;
    let socket_path = control::resolve(
        opts.control.as_deref(),
        config.global.control_socket.as_deref(),
    )?;
    let listener = control::listen(&socket_path)?;
    let _remove = RemoveOnDrop(socket_path.clone());

    let (tx, events) = mpsc::channel::<Ev>();
    {
        let tx = tx.clone();
        let mut signals = signals;
        std::thread::Builder::new()
            .name("corral-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if tx.send(Ev::Signal(sig)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    }
    {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("corral-control".into())
            .spawn(move || control::serve(listener, tx, Ev::Control))
            .map_err(|e| format!("cannot start the control thread: {e}"))?;
    }

    let mut m = Master {
        exe,
        peer_name: opts.peer_name,
        path: opts.config.clone(),
        groups: Groups::default(),
        gens: Vec::new(),
        next_number: 1,
        pending: None,
        queue: VecDeque::new(),
        notifier,
        events: tx,
        stopping: false,
        hard_stop_after: Duration::ZERO,
    };

    // The first generation: its failure is the process's.
    m.begin(config, text, opts.config, "start")?;
    while let Some(p) = &m.pending {
        let left = p.deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ev) => {
                if let Some(failure) = m.handle(ev) {
                    m.shut_down_now();
                    return Err(failure);
                }
            }
            Err(_) => {
                m.shut_down_now();
                return Err(format!(
                    "the first generation did not become ready within {START_LIMIT:?}"
                ));
            }
        }
    }
    if !m.stopping {
        crate::notice!(
            "master ready: generation 1 serves {}; control socket {}",
            m.path.display(),
            socket_path.display()
        );
        m.notifier.ready("generation 1 serving");
    }

    // Serve: reloads until told to stop, then wait for the generations.
    loop {
        // A reload that fails at once leaves room for the next one.
        while !m.stopping && m.pending.is_none() && !m.queue.is_empty() {
            m.next_reload();
        }
        if m.stopping && m.gens.is_empty() {
            break;
        }
        let wait = m.pending.as_ref().map_or(Duration::from_secs(3600), |p| {
            p.deadline.saturating_duration_since(Instant::now())
        });
        match events.recv_timeout(wait) {
            Ok(ev) => {
                if let Some(failure) = m.handle(ev) {
                    m.shut_down_now();
                    return Err(failure);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => m.pending_timed_out(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    crate::notice!("stopped");
    Ok(())
}

/// Removes the control socket's file when the master ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Master {
    /// Handles one event. `Some(reason)`: the process must end with this
    /// error (the first generation failed, or the serving one died).
    fn handle(&mut self, ev: Ev) -> Option<String> {
        match ev {
            Ev::Signal(sig) if sig == SIGTERM || sig == SIGINT => self.stop(sig),
            Ev::Signal(sig) => {
                let origin = if sig == SIGHUP { "SIGHUP" } else { "SIGUSR2" };
                if self.stopping {
                    crate::notice!("{origin} ignored: corral is stopping");
                } else if !self
                    .queue
                    .iter()
                    .any(|w| w.client.is_none() && w.path.is_none())
                {
                    self.queue.push_back(Wanted {
                        path: None,
                        origin,
                        client: None,
                    });
                }
            }
            Ev::Control(client) => match &client.request {
                Request::ConfigPath => {
                    let path = self.path.display().to_string();
                    client.answer(true, &path);
                }
                Request::Reload(path) => {
                    if self.stopping {
                        client.answer(false, "corral is stopping: no reload");
                    } else {
                        let path = path.clone();
                        self.queue.push_back(Wanted {
                            path,
                            origin: "corral reload",
                            client: Some(client),
                        });
                    }
                }
            },
            Ev::Gen(n, text, fds) => return self.on_message(n, &text, fds),
            Ev::GenGone(n) => return self.gone(n),
        }
        None
    }

    /// Starts the next queued reload, if any.
    fn next_reload(&mut self) {
        let Some(w) = self.queue.pop_front() else {
            return;
        };
        let path = w.path.unwrap_or_else(|| self.path.clone());
        let began = Instant::now();
        self.notifier.reloading();
        crate::notice!("reload ({}): loading {}", w.origin, path.display());
        let loaded = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read the configuration: {e}", path.display()))
            .and_then(|text| {
                Config::parse(&path, &text)
                    .map(|c| {
                        crate::observe::log::config_warnings(&c);
                        (c, text)
                    })
                    .map_err(|errors| {
                        let n = errors.errors.len();
                        format!(
                            "{errors}\n{}: {n} error{} found",
                            path.display(),
                            if n == 1 { "" } else { "s" }
                        )
                    })
            });
        let result = loaded.and_then(|(config, text)| self.begin(config, text, path, w.origin));
        match result {
            Ok(()) => {
                if let Some(p) = &mut self.pending {
                    p.client = w.client;
                    p.steps.began = began;
                }
            }
            Err(msg) => self.reload_failed(w.origin, &msg, w.client),
        }
    }

    /// Plans the sockets of `config` and starts its generation.
    fn begin(
        &mut self,
        mut config: Config,
        text: String,
        path: PathBuf,
        origin: &'static str,
    ) -> Result<(), String> {
        if let Some(name) = &self.peer_name {
            for p in &mut config.peers {
                p.local = Some(name.clone());
            }
        }
        let validated = Instant::now();
        let plan = self.groups.plan(&mut config)?;
        let number = self.next_number;
        let hard_stop_after = config.global.hard_stop_after;
        match self.spawn(number, &path, &text, &plan) {
            Ok(g) => {
                self.next_number += 1;
                self.gens.push(g);
                self.pending = Some(Pending {
                    number,
                    plan: Some(plan),
                    serving: false,
                    waiting: Vec::new(),
                    retiring: Vec::new(),
                    path,
                    origin,
                    client: None,
                    deadline: Instant::now() + START_LIMIT,
                    hard_stop_after,
                    steps: Steps {
                        began: validated,
                        validated,
                        ready: None,
                    },
                });
                Ok(())
            }
            Err(e) => {
                self.groups.abort(plan);
                Err(e)
            }
        }
    }

    /// Starts generation `number` and hands it its configuration and
    /// listening sockets.
    fn spawn(
        &self,
        number: u64,
        path: &Path,
        text: &str,
        plan: &Plan,
    ) -> Result<Generation, String> {
        let (mine, theirs) =
            Channel::pair().map_err(|e| format!("cannot create a generation channel: {e}"))?;
        let fd = theirs.raw_fd();
        let mut cmd = Command::new(&self.exe);
        cmd.arg("generation")
            .arg("--channel")
            .arg(fd.to_string())
            .arg("--number")
            .arg(number.to_string())
            .stdin(Stdio::null());
        if let Some(name) = &self.peer_name {
            cmd.arg("--peer-name").arg(name);
        }
        // SAFETY: only fcntl, which is async-signal-safe, runs between
        // fork and exec: the channel's end stays open across exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start a generation ({}): {e}", self.exe.display()))?;
        drop(theirs);
        let g = Generation {
            number,
            child,
            chan: mine,
            phase: Phase::Starting,
        };
        let handover = || -> std::io::Result<()> {
            let memfd = channel::memfd("corral-config", text.as_bytes())?;
            g.chan.send(
                &format!("config {}", path.display()),
                &[memfd.as_raw_fd()],
                false,
            )?;
            for b in self.groups.sockets(plan) {
                let fresh_from = b
                    .socks
                    .iter()
                    .position(|s| !s.listening)
                    .unwrap_or(b.socks.len());
                for (chunk_no, chunk) in b.socks.chunks(channel::MAX_FDS).enumerate() {
                    let ids: Vec<String> = chunk.iter().map(|s| s.id.to_string()).collect();
                    g.chan.send(
                        &format!(
                            "sockets {} {} {} {} {}",
                            b.frontend,
                            b.bind,
                            fresh_from,
                            chunk_no * channel::MAX_FDS,
                            ids.join(" ")
                        ),
                        &Groups::fds(chunk),
                        false,
                    )?;
                }
            }
            g.chan.send("start", &[], false)
        };
        // The generation reads all of this before anything else; a failed
        // send means it is already gone (its reader reports why).
        let sent = handover();
        let reader = g
            .chan
            .try_clone()
            .map_err(|e| format!("cannot read a generation channel: {e}"))?;
        let tx = self.events.clone();
        std::thread::Builder::new()
            .name(format!("corral-gen{number}"))
            .spawn(move || {
                while let Ok(Some((text, fds))) = reader.recv() {
                    if tx.send(Ev::Gen(number, text, fds)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Ev::GenGone(number));
            })
            .map_err(|e| format!("cannot start a generation reader thread: {e}"))?;
        if let Err(e) = sent {
            crate::warning!("generation {number}: handover interrupted: {e}");
        }
        Ok(g)
    }

    fn find(&self, n: u64) -> Option<usize> {
        self.gens.iter().position(|g| g.number == n)
    }

    /// The newest generation that serves (where handed-over state goes).
    fn serving(&self) -> Option<&Generation> {
        self.gens.iter().rev().find(|g| g.phase == Phase::Serving)
    }

    fn on_message(&mut self, n: u64, text: &str, fds: Vec<OwnedFd>) -> Option<String> {
        let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
        match word {
            "ready" => self.ready(n),
            "retired" => self.retired(n),
            "failed" => return self.start_failed(n, rest),
            "state" => {
                // A retiring generation hands over its state: to the
                // newest serving generation.
                let Some(to) = self.serving().filter(|g| g.number != n) else {
                    return None; // nobody to take it: the memfd closes here
                };
                let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
                if let Err(e) = to.chan.send(text, &raw, true) {
                    crate::warning!(
                        "generation {n}: cannot hand `{word}` to generation {}: {e}",
                        to.number
                    );
                }
            }
            _ => crate::warning!("generation {n} sent an unknown message `{word}`"),
        }
        None
    }

    /// The pending generation serves: the ones before it retire.
    fn ready(&mut self, n: u64) {
        let Some(p) = self
            .pending
            .as_mut()
            .filter(|p| p.number == n && !p.serving)
        else {
            return;
        };
        p.serving = true;
        p.steps.ready = Some(Instant::now());
        p.deadline = Instant::now() + RETIRE_LIMIT;
        for g in &mut self.gens {
            if g.number == n {
                g.phase = Phase::Serving;
            } else if g.phase == Phase::Serving {
                g.phase = Phase::Retiring;
                match g.chan.send("retire", &[], true) {
                    Ok(()) => p.waiting.push(g.number),
                    Err(e) => {
                        crate::warning!("generation {}: cannot tell it to retire: {e}", g.number)
                    }
                }
                p.retiring
                    .push(format!("{} (pid {})", g.number, g.child.id()));
            }
        }
        if let Some(plan) = p.plan.take() {
            for addr in self.groups.commit(plan) {
                crate::notice!("no longer listening on {addr} (not in the new configuration)");
            }
        }
        self.path = p.path.clone();
        self.hard_stop_after = p.hard_stop_after;
        self.maybe_done();
    }

    /// Generation `n` stopped accepting (or exited).
    fn retired(&mut self, n: u64) {
        if let Some(p) = &mut self.pending {
            p.waiting.retain(|&g| g != n);
        }
        self.maybe_done();
    }

    /// The reload is done once its generation serves and the previous
    /// ones no longer accept: from then on every new connection gets the
    /// new configuration, and `corral reload` may say so.
    fn maybe_done(&mut self) {
        let Some(p) = self.pending.take_if(|p| p.serving && p.waiting.is_empty()) else {
            return;
        };
        if p.origin == "start" {
            return;
        }
        let n = p.number;
        let pid = self.find(n).map_or(0, |i| self.gens[i].child.id());
        let drains = if p.retiring.is_empty() {
            String::new()
        } else {
            format!(
                "; generation {} stopped accepting and drains its connections",
                p.retiring.join(", ")
            )
        };
        let msg = format!(
            "reload ({}) done {}: generation {n} (pid {pid}) serves {}{drains}",
            p.origin,
            p.steps.describe(),
            self.path.display()
        );
        crate::notice!("{msg}");
        if let Some(c) = p.client {
            c.answer(true, &msg);
        }
        self.notifier.ready(&format!("generation {n} serving"));
    }

    /// The pending generation reported it cannot start.
    fn start_failed(&mut self, n: u64, why: &str) -> Option<String> {
        let p = self.pending.take_if(|p| p.number == n && !p.serving)?;
        if let Some(plan) = p.plan {
            self.groups.abort(plan);
        }
        if p.origin == "start" {
            return Some(why.to_string());
        }
        self.reload_failed(p.origin, why, p.client);
        None
    }

    fn reload_failed(&mut self, origin: &str, why: &str, client: Option<Client>) {
        let keeps = match self.serving() {
            Some(g) => format!(
                "generation {} (pid {}) keeps serving {}",
                g.number,
                g.child.id(),
                self.path.display()
            ),
            None => "nothing serves".to_string(),
        };
        let mut lines = why.lines();
        crate::alert!(
            "reload ({origin}) failed, {keeps}: {}",
            lines.next().unwrap_or("")
        );
        for l in lines {
            crate::alert!("  {l}");
        }
        if let Some(c) = client {
            c.answer(false, &format!("{why}\nreload failed: {keeps}"));
        }
        self.notifier.ready(&format!("reload failed; {keeps}"));
    }

    fn pending_timed_out(&mut self) {
        let Some(p) = &mut self.pending else { return };
        if Instant::now() < p.deadline {
            return;
        }
        if p.serving {
            crate::warning!(
                "generation(s) {:?} did not confirm within {RETIRE_LIMIT:?} that they stopped accepting",
                p.waiting
            );
            p.waiting.clear();
            self.maybe_done();
            return;
        }
        let n = p.number;
        if let Some(i) = self.find(n) {
            let _ = self.gens[i].child.kill();
        }
        let _ = self.start_failed(
            n,
            &format!("generation {n} did not become ready within {START_LIMIT:?} and was killed"),
        );
    }

    /// Generation `n` exited.
    fn gone(&mut self, n: u64) -> Option<String> {
        let i = self.find(n)?;
        let mut g = self.gens.remove(i);
        let status = g.child.wait().map(|s| s.to_string()).unwrap_or_default();
        match g.phase {
            Phase::Starting => {
                let why = format!("generation {n} exited during start-up ({status})");
                self.start_failed(n, &why)
            }
            Phase::Retiring => {
                if !status.contains("exit status: 0") {
                    crate::warning!("generation {n} (pid {}) ended: {status}", g.child.id());
                }
                self.retired(n);
                None
            }
            Phase::Serving if self.stopping => None,
            Phase::Serving => Some(format!(
                "generation {n} (pid {}) stopped unexpectedly ({status})",
                g.child.id()
            )),
        }
    }

    /// SIGTERM/SIGINT: every generation stops accepting and drains; the
    /// sockets close.
    fn stop(&mut self, sig: i32) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
        crate::notice!(
            "{name} received: no longer accepting; open connections have up to {} to finish",
            crate::base::units::format_duration(self.hard_stop_after)
        );
        self.notifier.stopping();
        for g in &self.gens {
            let _ = g.chan.send("quit", &[], true);
        }
        self.groups.close_all();
        if let Some(c) = self.pending.take().and_then(|p| p.client) {
            c.answer(false, "corral is stopping: the reload was abandoned");
        }
        for w in self.queue.drain(..) {
            if let Some(c) = w.client {
                c.answer(false, "corral is stopping: no reload");
            }
        }
    }

    /// The process is ending on an error: generations are told to quit
    /// and awaited (bounded), so none outlives the master.
    fn shut_down_now(&mut self) {
        for g in &self.gens {
            let _ = g.chan.send("quit", &[], true);
        }
        self.groups.close_all();
        let deadline = Instant::now() + Duration::from_secs(5);
        for g in &mut self.gens {
            loop {
                if matches!(g.child.try_wait(), Ok(Some(_)) | Err(_)) {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = g.child.kill();
                    let _ = g.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.gens.clear();
    }
}
