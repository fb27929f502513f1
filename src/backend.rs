//! A backend as one worker sees it: its servers' health, this worker's
//! connections to each, and the queue of connections waiting for a slot.
//!
//! Everything here is worker-local (`Cell`s behind an `Rc`): health states
//! arrive from the checking worker over the cross-core mesh, and limits
//! (`maxconn`) are split into per-worker shares, so nothing is shared or
//! locked on the connection path.

use crate::config::{Backend, Server};
use crate::hash;
use crate::local_sync::WaitQueue;
use crate::stream::Stream;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Idle connections younger than this are reused without a liveness peek:
/// servers close idle keep-alive connections after seconds, not
/// milliseconds, and a busy pool reuses within microseconds.
const TRUST_IDLE_FOR: Duration = Duration::from_millis(100);

/// An idle keep-alive connection to a server, kept for the next request.
pub struct IdleConn {
    pub stream: Stream,
    pub since: Instant,
}

/// One server, from this worker's point of view.
pub struct ServerState {
    /// Last known health (servers start UP, as in HAProxy).
    pub up: Cell<bool>,
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
}

impl ServerState {
    pub fn has_slot(&self) -> bool {
        self.conns.get() < self.slots
    }

    /// Takes the most recent idle connection that is still open and fresh.
    ///
    /// A connection idle for a moment only is taken as it is; one idle
    /// longer is first checked with a non-blocking peek (the server may
    /// have closed it). A dead one that slips through costs a bodyless
    /// idempotent request nothing: it is sent again on a new connection.
    pub fn take_idle(&self) -> Option<Stream> {
        let mut idle = self.idle.borrow_mut();
        while let Some(c) = idle.pop() {
            let age = c.since.elapsed();
            if age >= self.idle_for {
                continue;
            }
            if age < TRUST_IDLE_FOR || crate::http::conn::Conn::idle_and_open(&c.stream) {
                return Some(c.stream);
            }
        }
        None
    }

    /// Keeps a connection for reuse, if there is room.
    pub fn give_idle(&self, stream: Stream) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < self.idle_max {
            idle.push(IdleConn {
                stream,
                since: Instant::now(),
            });
        }
    }

    /// Closes idle connections kept longer than `pool-purge-delay`.
    pub fn purge_idle(&self) {
        let idle_for = self.idle_for;
        self.idle
            .borrow_mut()
            .retain(|c| c.since.elapsed() < idle_for);
    }
}

/// One backend, from this worker's point of view.
pub struct BackendState {
    pub servers: Vec<ServerState>,
    /// Connections this worker has open through this backend.
    pub conns: Cell<u32>,
    /// Connections waiting for a free server slot.
    pub queue: WaitQueue,
    /// How many are waiting.
    pub queued: Cell<u32>,
    /// `leastconn` tie-breaker: the server picked last.
    pub last_pick: Cell<usize>,
}

impl BackendState {
    pub fn new(cfg: &Backend, worker: usize, workers: usize) -> Rc<BackendState> {
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
        })
    }

    /// Takes a slot on `server`; the slot is given back when the lease drops.
    pub fn lease(self: &Rc<Self>, server: usize) -> Lease {
        let s = &self.servers[server];
        s.conns.set(s.conns.get() + 1);
        s.total.set(s.total.get() + 1);
        Lease {
            backend: self.clone(),
            server,
        }
    }

    /// Records a health change seen by this worker and lets queued
    /// connections look again.
    pub fn set_up(&self, server: usize, up: bool) {
        self.servers[server].up.set(up);
        self.queue.wake_all();
    }

    /// Normal and backup servers that are up.
    pub fn usable_counts(&self, cfg: &Backend) -> (usize, usize) {
        let mut counts = (0, 0);
        for (s, st) in cfg.servers.iter().zip(&self.servers) {
            if st.up.get() {
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
        }
    }
}

/// Splits a process-wide limit into per-worker shares that add up to it;
/// every worker gets at least one (so a limit smaller than the number of
/// workers can be exceeded by at most `workers - limit`).
pub fn worker_share(limit: u32, worker: usize, workers: usize) -> u32 {
    let workers = workers.max(1) as u32;
    let base = limit / workers;
    let extra = u32::from((worker as u32) < limit % workers);
    (base + extra).max(1)
}

/// A connection slot on a server, held while the connection is open.
pub struct Lease {
    backend: Rc<BackendState>,
    server: usize,
}

impl Lease {
    pub fn server(&self) -> usize {
        self.server
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let s = &self.backend.servers[self.server];
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
