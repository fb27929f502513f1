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
//!    `failed` and why; the messages are in `message.rs`).
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
use crate::process::message::{DecodeError, ToGeneration, ToMaster};
use control::{Client, Request};
use notify::Notifier;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR2};
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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
    /// A message from generation `n` (or why its record is not one), with
    /// the descriptors that came with it.
    Gen(u64, Result<ToMaster, DecodeError>, Vec<OwnedFd>),
    /// Generation `n` closed its channel (it exited).
    GenGone(u64),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Starting,
    Serving,
    Retiring,
}

/// Why a generation starts, as the reload log lines name it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Origin {
    /// The first generation, when corral starts.
    Start,
    /// A reload, and what asked for it.
    Reload(Trigger),
}

/// What asked for a reload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Trigger {
    Sighup,
    Sigusr2,
    /// `corral reload`, on the control socket.
    Control,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Start => f.write_str("start"),
            Origin::Reload(t) => t.fmt(f),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Sighup => "SIGHUP",
            Trigger::Sigusr2 => "SIGUSR2",
            Trigger::Control => "corral reload",
        })
    }
}

/// How a generation's process ended, from its wait status.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal { signal: i32, core_dumped: bool },
    /// Another wait status (raw): stopped or continued.
    Other(i32),
    /// Waiting for it failed: nothing is known.
    Unknown,
}

impl Exit {
    fn of(status: std::io::Result<ExitStatus>) -> Exit {
        let Ok(status) = status else {
            return Exit::Unknown;
        };
        if let Some(code) = status.code() {
            Exit::Code(code)
        } else if let Some(signal) = status.signal() {
            Exit::Signal {
                signal,
                core_dumped: status.core_dumped(),
            }
        } else {
            Exit::Other(status.into_raw())
        }
    }

    /// It exited with code 0.
    fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

/// As the standard library writes an `ExitStatus` (`exit status: 1`,
/// `signal: 9 (SIGKILL)`); nothing when the status is unknown.
impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = match *self {
            Exit::Code(code) => (code & 0xff) << 8,
            Exit::Signal {
                signal,
                core_dumped,
            } => signal | if core_dumped { 0x80 } else { 0 },
            Exit::Other(raw) => raw,
            Exit::Unknown => return Ok(()),
        };
        ExitStatus::from_raw(raw).fmt(f)
    }
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
    origin: Trigger,
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
    origin: Origin,
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
    m.begin(config, text, opts.config, Origin::Start)?;
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
                let origin = if sig == SIGHUP {
                    Trigger::Sighup
                } else {
                    Trigger::Sigusr2
                };
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
                            origin: Trigger::Control,
                            client: Some(client),
                        });
                    }
                }
            },
            Ev::Gen(n, msg, fds) => return self.on_message(n, msg, fds),
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
        let result = loaded
            .and_then(|(config, text)| self.begin(config, text, path, Origin::Reload(w.origin)));
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
        origin: Origin,
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
            let config = ToGeneration::Config {
                path: path.to_path_buf(),
            };
            g.chan.send(&config, &[memfd.as_raw_fd()], false)?;
            for b in self.groups.sockets(plan) {
                let fresh_from = b
                    .socks
                    .iter()
                    .position(|s| !s.listening)
                    .unwrap_or(b.socks.len());
                for (chunk_no, chunk) in b.socks.chunks(channel::MAX_FDS).enumerate() {
                    let sockets = ToGeneration::Sockets {
                        frontend: b.frontend,
                        bind: b.bind,
                        fresh_from,
                        first: chunk_no * channel::MAX_FDS,
                        ids: chunk.iter().map(|s| s.id).collect(),
                    };
                    g.chan.send(&sockets, &Groups::fds(chunk), false)?;
                }
            }
            g.chan.send(&ToGeneration::Start, &[], false)
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
                while let Ok(Some((msg, fds))) = reader.recv::<ToMaster>() {
                    if tx.send(Ev::Gen(number, msg, fds)).is_err() {
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

    fn on_message(
        &mut self,
        n: u64,
        msg: Result<ToMaster, DecodeError>,
        fds: Vec<OwnedFd>,
    ) -> Option<String> {
        match msg {
            Ok(ToMaster::Ready) => self.ready(n),
            Ok(ToMaster::Retired) => self.retired(n),
            Ok(ToMaster::Failed { reason }) => return self.start_failed(n, &reason),
            Ok(ToMaster::State) => {
                // A retiring generation hands over its state: to the
                // newest serving generation.
                let Some(to) = self.serving().filter(|g| g.number != n) else {
                    return None; // nobody to take it: the memfd closes here
                };
                let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
                if let Err(e) = to.chan.send(&ToGeneration::State, &raw, true) {
                    crate::warning!(
                        "generation {n}: cannot hand `state` to generation {}: {e}",
                        to.number
                    );
                }
            }
            Err(DecodeError::UnknownTag(word)) => {
                crate::warning!("generation {n} sent an unknown message `{word}`")
            }
            Err(e) => crate::warning!("generation {n} sent a malformed message: {e}"),
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
                match g.chan.send(&ToGeneration::Retire, &[], true) {
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
        if p.origin == Origin::Start {
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
        let Origin::Reload(origin) = p.origin else {
            return Some(why.to_string());
        };
        self.reload_failed(origin, why, p.client);
        None
    }

    fn reload_failed(&mut self, origin: Trigger, why: &str, client: Option<Client>) {
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
        let status = Exit::of(g.child.wait());
        match g.phase {
            Phase::Starting => {
                let why = format!("generation {n} exited during start-up ({status})");
                self.start_failed(n, &why)
            }
            Phase::Retiring => {
                if !status.success() {
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
            let _ = g.chan.send(&ToGeneration::Quit, &[], true);
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
            let _ = g.chan.send(&ToGeneration::Quit, &[], true);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_is_read_from_the_wait_status() {
        let exit = |raw| Exit::of(Ok(ExitStatus::from_raw(raw)));
        assert_eq!(exit(0), Exit::Code(0));
        assert!(exit(0).success());
        assert_eq!(exit(3 << 8), Exit::Code(3));
        assert!(!exit(3 << 8).success());
        assert_eq!(
            exit(libc::SIGKILL),
            Exit::Signal {
                signal: libc::SIGKILL,
                core_dumped: false
            }
        );
        assert!(!exit(libc::SIGKILL).success());
        assert_eq!(
            exit(libc::SIGSEGV | 0x80),
            Exit::Signal {
                signal: libc::SIGSEGV,
                core_dumped: true
            }
        );
        // Stopped by SIGSTOP: neither an exit nor a termination.
        assert_eq!(exit(0x137f), Exit::Other(0x137f));
        let failed = Exit::of(Err(std::io::Error::other("no child")));
        assert_eq!(failed, Exit::Unknown);
        assert!(!failed.success());
    }

    #[test]
    fn exit_is_written_as_the_standard_library_writes_a_status() {
        for raw in [
            0,
            1 << 8,
            255 << 8,
            libc::SIGKILL,
            libc::SIGSEGV | 0x80,
            0x137f,
        ] {
            let status = ExitStatus::from_raw(raw);
            assert_eq!(Exit::of(Ok(status)).to_string(), status.to_string());
        }
        assert_eq!(Exit::Code(0).to_string(), "exit status: 0");
        assert_eq!(
            Exit::Signal {
                signal: libc::SIGKILL,
                core_dumped: false
            }
            .to_string(),
            "signal: 9 (SIGKILL)"
        );
        // As before: a failed wait shows as nothing.
        assert_eq!(Exit::Unknown.to_string(), "");
    }

    #[test]
    fn exit_of_a_real_process() {
        let code = Command::new("sh").args(["-c", "exit 7"]).status();
        assert_eq!(Exit::of(code), Exit::Code(7));
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        child.kill().unwrap();
        let killed = Exit::of(child.wait());
        assert_eq!(
            killed,
            Exit::Signal {
                signal: libc::SIGKILL,
                core_dumped: false
            }
        );
    }

    #[test]
    fn origins_are_named_as_in_the_messages() {
        assert_eq!(Origin::Start.to_string(), "start");
        assert_eq!(Origin::Reload(Trigger::Sighup).to_string(), "SIGHUP");
        assert_eq!(Origin::Reload(Trigger::Sigusr2).to_string(), "SIGUSR2");
        assert_eq!(
            Origin::Reload(Trigger::Control).to_string(),
            "corral reload"
        );
    }
}
