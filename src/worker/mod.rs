//! One worker's state: what a glommio executor pinned to a core owns for
//! its connections (frontends, its view of every backend, stick tables,
//! log buffers, relay buffers, counters), its [`Lifecycle`] flags, and its
//! end of the [`Mesh`]. It lives in an `Rc` and `Cell`s: no other thread
//! can see it.
//!
//! This is the data path's context: the layers above (`proxy`, `health`,
//! `peers`, `control`) read it; nothing here calls them. Messages from
//! other workers are applied by the generation's dispatcher, not here.

pub(crate) mod guard;

use crate::balance::backend::{BackendState, worker_share};
use crate::base::local_sync::Flag;
use crate::config::Config;
use crate::io::bufpool::BufPool;
use crate::mesh::{Mesh, MeshMsg};
use crate::observe::log::{SinkSet, Sinks};
use glommio::channels::channel_mesh::Senders;
use glommio::sync::{Gate, Semaphore};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

/// Per-worker state of a frontend.
pub(crate) struct FrontendState {
    /// Connections open on this frontend in this worker.
    pub conns: Cell<u32>,
    /// This worker's share of the frontend's `maxconn`.
    pub slots: Rc<Semaphore>,
    /// Where its connection logs go.
    pub log: SinkSet,
    /// Its TLS handshakes (a frontend with `tls:`).
    pub tls: Option<crate::tls::accept::Acceptor>,
    /// Traffic counters (stats page, `/metrics`).
    pub stats: crate::observe::counters::Counters,
}

/// Everything a worker owns.
pub(crate) struct Worker {
    /// 0-based index of this worker.
    pub id: usize,
    /// How many workers the process runs.
    pub workers: usize,
    /// The configuration, shared read-only by all workers.
    pub config: Arc<Config>,
    pub frontends: Vec<FrontendState>,
    pub backends: Vec<Rc<BackendState>>,
    /// This worker's own TLS client settings for each server with `tls:`
    /// (`[backend][server]`), so their resumption stores are not shared.
    pub tls_out: Vec<Vec<Option<Arc<rustls::ClientConfig>>>>,
    /// This worker's share of `global.maxconn`.
    pub global_slots: Rc<Semaphore>,
    /// Client connections open on this worker.
    pub conns: Cell<u32>,
    /// Connection-log buffers.
    pub logs: Sinks,
    /// Warnings about clients' bad TLS hellos, at most a few a second.
    pub hello_warnings: crate::observe::log::Throttle,
    /// Relay buffers, reused across connections.
    pub bufs: BufPool,
    /// This worker's stick tables (replicas of every table; the owner of
    /// the keys that hash to this worker).
    pub stick: crate::stick::Store,
    /// Client connections open on this worker, for `show sess`.
    pub sessions: crate::observe::sessions::Sessions,
    /// Requests this worker has started (for default unique ids).
    requests: Cell<u64>,
    /// When the process started (unix seconds), part of unique ids.
    pub started_unix: u64,
    /// The worker's coarse clock, moved on by its flusher: rates and
    /// inactivity timeouts read it without a system call.
    pub clock: crate::base::clock::Coarse,
    /// Some frontend serves a stats page: requests are timed for it.
    pub stats_wanted: bool,
    /// Worker 0's samples for the charts.
    pub stats_sampler: crate::observe::snapshot::Sampler,
    /// Accepting, stopping, retiring.
    pub life: Lifecycle,
    /// This worker's end of the channels to the other workers.
    pub mesh: Mesh,
}

/// Where a worker is in its life: set by the generation, obeyed by the
/// accept loops and the background tasks.
pub(crate) struct Lifecycle {
    /// Set once every listening socket listens: accepting may begin.
    pub go: Flag,
    /// Set when the worker must stop accepting.
    pub stopping: Flag,
    /// The stop is a retirement: a newer generation serves (and worker 0
    /// hands it the state).
    pub retiring: Cell<bool>,
    /// Every connection task passes through this gate, so stopping can
    /// wait for open connections to finish.
    pub gate: Gate,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            go: Flag::default(),
            stopping: Flag::default(),
            retiring: Cell::new(false),
            gate: Gate::new(),
        }
    }
}

impl Worker {
    pub(crate) fn new(
        id: usize,
        config: Arc<Config>,
        mesh: Option<Senders<MeshMsg>>,
        mesh_of: Vec<usize>,
    ) -> std::io::Result<Rc<Worker>> {
        let workers = config.global.workers;
        let peers_wanted = config.tables.iter().any(|t| t.peers.is_some());
        let targets: Vec<&[crate::config::LogTarget]> =
            config.frontends.iter().map(|f| f.log.as_slice()).collect();
        let (logs, sets) = Sinks::open(id, &targets)?;
        let mut frontends = Vec::with_capacity(config.frontends.len());
        for (i, (f, log)) in config.frontends.iter().zip(sets).enumerate() {
            let tls =
                match &f.tls {
                    None => None,
                    Some(t) => Some(crate::tls::accept::Acceptor::new(t, i, workers).map_err(
                        |e| std::io::Error::other(format!("frontends.{}.tls: {e}", f.name)),
                    )?),
                };
            frontends.push(FrontendState {
                conns: Cell::new(0),
                slots: Rc::new(Semaphore::new(u64::from(worker_share(
                    f.maxconn, id, workers,
                )))),
                log,
                tls,
                stats: Default::default(),
            });
        }
        let tls_out = config
            .backends
            .iter()
            .map(|b| {
                b.servers
                    .iter()
                    .map(|s| {
                        s.tls.as_ref().map(|t| {
                            let mut own = (*t.client).clone();
                            own.resumption = rustls::client::Resumption::in_memory_sessions(64);
                            Arc::new(own)
                        })
                    })
                    .collect()
            })
            .collect();
        let backends = config
            .backends
            .iter()
            .map(|b| BackendState::new(b, id, workers))
            .collect();
        let stats_wanted = config
            .frontends
            .iter()
            .any(|f| f.http.as_ref().is_some_and(|h| h.stats.is_some()));
        let stick = crate::stick::Store::new(id, workers, &config.tables, peers_wanted);
        let sessions = crate::observe::sessions::Sessions::new(config.frontends.len());
        Ok(Rc::new(Worker {
            stick,
            id,
            workers,
            global_slots: Rc::new(Semaphore::new(u64::from(worker_share(
                config.global.maxconn,
                id,
                workers,
            )))),
            bufs: BufPool::new(config.global.bufsize),
            config,
            frontends,
            backends,
            tls_out,
            conns: Cell::new(0),
            logs,
            hello_warnings: Default::default(),

            sessions,
            requests: Cell::new(0),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            clock: Default::default(),
            stats_wanted,
            stats_sampler: Default::default(),
            life: Lifecycle::default(),
            mesh: Mesh::new(id, workers, mesh, mesh_of),
        }))
    }

    /// Whole seconds since the worker started (coarse: see `tick`).
    pub(crate) fn now_s(&self) -> u32 {
        (self.clock.now_ms() / 1000) as u32
    }

    /// Moves the coarse clock on (called by the flusher, every 50 ms).
    pub(crate) fn tick(&self) {
        self.clock.tick();
    }

    /// The next request number of this worker.
    pub(crate) fn next_request_id(&self) -> u64 {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        n
    }

    /// After a burst (thousands of connections that became idle at once),
    /// glibc keeps the freed memory in its heap and the process's resident
    /// size stays at the peak. Once enough has been freed, give the pages
    /// back (`malloc_trim`). Called from the worker's housekeeping task,
    /// never on the connection path.
    pub(crate) fn trim_memory(&self) {
        if self.bufs.freed.get() >= TRIM_AFTER {
            self.bufs.freed.set(0);
            // SAFETY: malloc_trim only releases free heap memory.
            #[cfg(target_env = "gnu")]
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }

    /// Closes idle server connections past their `pool-purge-delay`.
    pub(crate) fn purge_idle(&self) {
        for b in &self.backends {
            for s in &b.servers {
                s.purge_idle();
            }
        }
    }
}

/// Freed memory beyond which a worker asks the allocator to give pages back
/// to the system.
const TRIM_AFTER: usize = 16 << 20;
