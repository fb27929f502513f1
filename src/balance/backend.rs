//! A backend as one worker sees it: its servers' health, this worker's
//! connections to each, and the queue of connections waiting for a slot.
//!
//! Everything here is worker-local (`Cell`s behind an `Rc`): health states
//! arrive from the checking worker over the cross-core mesh, and limits
//! (`maxconn`) are split into per-worker shares, so nothing is shared or
//! locked on the connection path.

use crate::base::hash;
use crate::base::local_sync::WaitQueue;
use crate::config::{Backend, Server};
use crate::io::stream::Stream;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Idle connections younger than this are reused without a liveness peek:
/// servers close idle keep-alive connections after seconds, not
/// milliseconds, and a busy pool reuses within microseconds.
const TRUST_IDLE_FOR: Duration = Duration::from_millis(100);

/// An idle keep-alive connection to a server, kept for the next request.
pub(crate) struct IdleConn {
    pub stream: Stream,
    pub since: Instant,
}

/// A server's administrative state, set on the runtime API (`set server
/// B/S state`, `disable server`, `enable server`) and applied by every
/// worker (`MeshMsg::ServerAdmin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminState {
    /// Normal: takes traffic while it is up.
    Ready,
    /// No new connections from the balancer; clients stuck to it by a
    /// stick table still reach it.
    Drain,
    /// Maintenance: no new connections at all.
    Maint,
}

impl AdminState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }
}

/// A change of a server's administrative settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminChange {
    State(AdminState),
    Weight(u32),
    Addr(SocketAddr),
}

/// One server, from this worker's point of view.
pub(crate) struct ServerState {
    /// Last known health (servers start UP, as in HAProxy).
    pub up: Cell<bool>,
    /// Administrative state (starts `Ready`).
    pub admin: Cell<AdminState>,
    /// Current weight (starts at the configured `weight`).
    pub weight: Cell<u32>,
    /// Where new connections go (starts at the configured address).
    pub addr: Cell<SocketAddr>,
    /// Bumped at each address change: a connection leased under an older
    /// address is not pooled.
    pub addr_gen: Cell<u32>,
    /// The last change of health or administrative state.
    pub last_change: Cell<Instant>,
    /// Connections this worker has open to the server.
    pub conns: Cell<u32>,
    /// This worker's share of the server's `maxconn` (u32::MAX: no limit).
    pub slots: u32,
    /// Connections this worker has made to the server (for logs).
    pub total: Cell<u64>,
    /// Smooth weighted round-robin: the server's current score.
    pub rr_current: Cell<i64>,
    /// Fixed hash of the server's name, for the `source` balance.
    pub name_hash: u64,
    /// Idle keep-alive connections (http mode), most recent last.
    pub idle: RefCell<Vec<IdleConn>>,
    /// Most idle connections kept (`pool-max-conn`).
    pub idle_max: usize,
    /// How long one is kept (`pool-purge-delay`).
    pub idle_for: Duration,
    /// Traffic counters (stats page, `/metrics`).
    pub stats: crate::observe::counters::Counters,
    /// When the health state last changed (UP/DOWN), and the time spent
    /// DOWN before the current state.
    pub changed_at: Cell<Instant>,
    pub downtime: Cell<Duration>,
    /// The last check's result, on the worker that runs its checks.
    pub check_status: Cell<&'static str>,
}

impl ServerState {
    pub(crate) fn has_slot(&self) -> bool {
        self.conns.get() < self.slots
    }

    /// Whether the balancer may give it new connections: up, ready and
    /// with a weight.
    pub(crate) fn balanced(&self) -> bool {
        self.up.get() && self.admin.get() == AdminState::Ready && self.weight.get() > 0
    }

    /// Whether a client stuck to it (stick table) may still reach it: up
    /// and not in maintenance (drained servers and weight 0 keep their
    /// persistent clients, as in HAProxy).
    pub(crate) fn takes_persistent(&self) -> bool {
        self.up.get() && self.admin.get() != AdminState::Maint
    }

    /// Takes the most recent idle connection that is still open and fresh.
    ///
    /// A connection idle for a moment only is taken as it is; one idle
    /// longer is first checked with a non-blocking peek (the server may
    /// have closed it). A dead one that slips through costs a bodyless
    /// idempotent request nothing: it is sent again on a new connection.
    pub(crate) fn take_idle(&self) -> Option<Stream> {
        let mut idle = self.idle.borrow_mut();
        while let Some(c) = idle.pop() {
            let age = c.since.elapsed();
            if age >= self.idle_for {
                continue;
            }
            if age < TRUST_IDLE_FOR || crate::io::conn::Conn::idle_and_open(&c.stream) {
                return Some(c.stream);
            }
        }
        None
    }

    /// Keeps a connection for reuse, if there is room and it goes to the
    /// server's current address (`addr_gen`: the generation its lease was
    /// taken under).
    pub(crate) fn give_idle(&self, stream: Stream, addr_gen: u32) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < self.idle_max && addr_gen == self.addr_gen.get() {
            idle.push(IdleConn {
                stream,
                since: Instant::now(),
            });
        }
    }

    /// Closes idle connections kept longer than `pool-purge-delay`.
    pub(crate) fn purge_idle(&self) {
        let idle_for = self.idle_for;
        self.idle
            .borrow_mut()
            .retain(|c| c.since.elapsed() < idle_for);
    }
}

/// One backend, from this worker's point of view.
pub(crate) struct BackendState {
    pub servers: Vec<ServerState>,
    /// Connections this worker has open through this backend.
    pub conns: Cell<u32>,
    /// Connections waiting for a free server slot.
    pub queue: WaitQueue,
    /// How many are waiting.
    pub queued: Cell<u32>,
    /// `leastconn` tie-breaker: the server picked last.
    pub last_pick: Cell<usize>,
    /// Traffic counters (stats page, `/metrics`).
    pub stats: crate::observe::counters::Counters,
}

impl BackendState {
    pub(crate) fn new(cfg: &Backend, worker: usize, workers: usize) -> Rc<BackendState> {
        Rc::new(BackendState {
            servers: cfg
                .servers
                .iter()
                .map(|s| ServerState::new(s, worker, workers))
                .collect(),
            conns: Cell::new(0),
            queue: WaitQueue::default(),
            queued: Cell::new(0),
            last_pick: Cell::new(0),
            stats: Default::default(),
        })
    }

    /// Takes a slot on `server`; the slot is given back when the lease drops.
    pub(crate) fn lease(self: &Rc<Self>, server: usize) -> Lease {
        let s = &self.servers[server];
        s.conns.set(s.conns.get() + 1);
        s.total.set(s.total.get() + 1);
        Lease {
            backend: self.clone(),
            server: server as u32,
            addr_gen: s.addr_gen.get(),
        }
    }

    /// Records a health change seen by this worker and lets queued
    /// connections look again.
    pub(crate) fn set_up(&self, server: usize, up: bool) {
        let s = &self.servers[server];
        if s.up.get() != up {
            if !s.up.get() {
                s.downtime
                    .set(s.downtime.get() + s.changed_at.get().elapsed());
            }
            s.changed_at.set(Instant::now());
            s.last_change.set(Instant::now());
        }
        s.up.set(up);
        self.queue.wake_all();
    }

    /// Applies a change of administrative settings. A new address empties
    /// the idle pool: those connections go to the old one.
    pub(crate) fn set_admin(&self, server: usize, change: AdminChange) {
        let s = &self.servers[server];
        match change {
            AdminChange::State(a) => {
                if s.admin.replace(a) != a {
                    s.last_change.set(Instant::now());
                }
            }
            AdminChange::Weight(w) => s.weight.set(w),
            AdminChange::Addr(addr) => {
                if s.addr.replace(addr) != addr {
                    s.addr_gen.set(s.addr_gen.get().wrapping_add(1));
                    s.idle.borrow_mut().clear();
                }
            }
        }
        self.queue.wake_all();
    }

    /// Normal and backup servers that are up and not in maintenance.
    pub(crate) fn usable_counts(&self, cfg: &Backend) -> (usize, usize) {
        let mut counts = (0, 0);
        for (s, st) in cfg.servers.iter().zip(&self.servers) {
            if st.takes_persistent() {
                if s.backup {
                    counts.1 += 1;
                } else {
                    counts.0 += 1;
                }
            }
        }
        counts
    }
}

impl ServerState {
    fn new(cfg: &Server, worker: usize, workers: usize) -> ServerState {
        ServerState {
            up: Cell::new(true),
            admin: Cell::new(AdminState::Ready),
            weight: Cell::new(cfg.weight),
            addr: Cell::new(cfg.addr),
            addr_gen: Cell::new(0),
            last_change: Cell::new(Instant::now()),
            conns: Cell::new(0),
            slots: cfg
                .maxconn
                .map(|m| worker_share(m, worker, workers))
                .unwrap_or(u32::MAX),
            total: Cell::new(0),
            rr_current: Cell::new(0),
            name_hash: hash::hash_bytes(cfg.name.as_bytes()),
            idle: RefCell::new(Vec::new()),
            idle_max: cfg.pool_max_conn,
            idle_for: cfg.pool_purge_delay,
            stats: Default::default(),
            changed_at: Cell::new(Instant::now()),
            downtime: Cell::new(Duration::ZERO),
            check_status: Cell::new(if cfg.check.is_some() { "INI" } else { "" }),
        }
    }
}

/// Splits a process-wide limit into per-worker shares that add up to it;
/// every worker gets at least one (so a limit smaller than the number of
/// workers can be exceeded by at most `workers - limit`).
pub(crate) fn worker_share(limit: u32, worker: usize, workers: usize) -> u32 {
    let workers = workers.max(1) as u32;
    let base = limit / workers;
    let extra = u32::from((worker as u32) < limit % workers);
    (base + extra).max(1)
}

/// A connection slot on a server, held while the connection is open.
pub(crate) struct Lease {
    backend: Rc<BackendState>,
    /// u32 with `addr_gen` beside it: a lease stays two words (it lives in
    /// every connection's future).
    server: u32,
    /// The server's address generation when the slot was taken.
    addr_gen: u32,
}

impl Lease {
    pub(crate) fn server(&self) -> usize {
        self.server as usize
    }

    /// The server's address generation when the slot was taken (see
    /// `ServerState::give_idle`).
    pub(crate) fn addr_gen(&self) -> u32 {
        self.addr_gen
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let s = &self.backend.servers[self.server as usize];
        s.conns.set(s.conns.get() - 1);
        if self.backend.queued.get() > 0 {
            self.backend.queue.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_limit() {
        for (limit, workers) in [(10, 3), (5000, 2), (7, 7), (100, 1)] {
            let total: u32 = (0..workers).map(|w| worker_share(limit, w, workers)).sum();
            assert_eq!(total, limit, "{limit} over {workers}");
        }
        assert_eq!(worker_share(1, 1, 2), 1, "never zero");
    }
}
