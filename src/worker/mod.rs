//! One worker: a glommio executor pinned to a core, owning its listeners,
//! its connections and its view of every backend. Its state lives in an
//! `Rc` and `Cell`s: no other thread can see it.

pub mod guard;

use crate::balance::backend::{BackendState, worker_share};
use crate::base::local_sync::{Flag, WaitQueue};
use crate::config::Config;
use crate::io::bufpool::BufPool;
use crate::mesh::MeshMsg;
use crate::observe::log::{SinkSet, Sinks};
use glommio::channels::channel_mesh::Senders;
use glommio::sync::{Gate, Semaphore};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

/// Per-worker state of a frontend.
pub struct FrontendState {
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
pub struct Worker {
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
    /// Senders to the other workers (None with a single worker).
    pub mesh: Option<Senders<MeshMsg>>,
    /// This worker's index in the mesh. glommio numbers peers in the
    /// order they joined, which is not the worker id.
    mesh_id: usize,
    /// Mesh index of each worker id (learned from `Hello`s at start).
    mesh_of: Vec<usize>,
    /// This worker's stick tables (replicas of every table; the owner of
    /// the keys that hash to this worker).
    pub stick: crate::stick::Store,
    /// Client connections open on this worker, for `show sess`.
    pub sessions: crate::observe::sessions::Sessions,
    /// Runtime API snapshots waiting for other workers' answers (worker 0).
    pub snapshots: crate::control::runtime_api::snapshot::Pending,
    /// Requests this worker has started (for default unique ids).
    requests: Cell<u64>,
    /// When the process started (unix seconds), part of unique ids.
    pub started_unix: u64,
    /// Broadcasts waiting for acknowledgements: (seq, acks still missing).
    acks: RefCell<Vec<(u64, usize)>>,
    acked: WaitQueue,
    next_seq: Cell<u64>,
    /// The worker's coarse clock, moved on by its flusher: rates and
    /// inactivity timeouts read it without a system call.
    pub clock: crate::base::clock::Coarse,
    /// Some frontend serves a stats page: requests are timed for it.
    pub stats_wanted: bool,
    /// Snapshots other workers sent for this worker's current view.
    pub stats_gathering: crate::control::stats::Gathering,
    /// Worker 0's samples for the charts.
    pub stats_sampler: crate::control::stats::Sampler,
}

/// How long a broadcast waits for the other workers to acknowledge it.
const ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Worker {
    pub fn new(
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
            go: Flag::default(),
            stopping: Flag::default(),
            retiring: Cell::new(false),
            gate: Gate::new(),
            mesh_id: mesh.as_ref().map_or(0, |m| m.peer_id()),
            mesh,
            mesh_of,

            sessions,
            snapshots: Default::default(),
            requests: Cell::new(0),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            acks: RefCell::new(Vec::new()),
            acked: WaitQueue::default(),
            next_seq: Cell::new(1),
            clock: Default::default(),
            stats_wanted,
            stats_gathering: Default::default(),
            stats_sampler: Default::default(),
        }))
    }

    /// Applies a message from mesh peer `from` (or from this worker
    /// itself), acknowledging it when asked.
    pub async fn receive(&self, from: usize, msg: MeshMsg) {
        match msg {
            MeshMsg::ServerState {
                backend,
                server,
                up,
                seq,
            } => {
                if let Some(b) = self.backends.get(backend as usize)
                    && (server as usize) < b.servers.len()
                {
                    b.set_up(server as usize, up);
                }
                if from != self.mesh_id
                    && let Some(mesh) = &self.mesh
                {
                    let _ = mesh.send_to(from, MeshMsg::Ack { seq }).await;
                }
            }
            msg @ (MeshMsg::StatsRequest { .. } | MeshMsg::Stats { .. }) => {
                let worker = self
                    .mesh_of
                    .iter()
                    .position(|&m| m == from)
                    .unwrap_or(self.id);
                crate::control::stats::receive(self, worker, msg).await;
            }
            MeshMsg::Ack { seq } => {
                let mut acks = self.acks.borrow_mut();
                if let Some(entry) = acks.iter_mut().find(|(s, _)| *s == seq) {
                    entry.1 = entry.1.saturating_sub(1);
                }
                drop(acks);
                self.acked.wake_all();
            }
            MeshMsg::Stick(m) => {
                let ack = match &m {
                    crate::stick::StickMsg::Learned { seq, .. } if *seq != 0 => Some(*seq),
                    _ => None,
                };
                if let Some(seq) = ack
                    && from != self.mesh_id
                    && let Some(mesh) = &self.mesh
                {
                    self.stick.receive(&self.config.tables, m);
                    let _ = mesh.send_to(from, MeshMsg::Ack { seq }).await;
                    return;
                }
                if let Some(answer) = self.stick.receive(&self.config.tables, m)
                    && let Some(mesh) = &self.mesh
                {
                    let _ = mesh.send_to(from, MeshMsg::Stick(answer)).await;
                }
            }
            MeshMsg::ServerAdmin {
                backend,
                server,
                change,
                seq,
            } => {
                if let Some(b) = self.backends.get(backend as usize)
                    && (server as usize) < b.servers.len()
                {
                    b.set_admin(server as usize, change);
                }
                self.ack(from, seq).await;
            }
            MeshMsg::ClearTable { table, keys, seq } => {
                let keys: Option<std::collections::HashSet<crate::stick::Key>> =
                    keys.map(|k| k.into_iter().collect());
                self.stick.clear(table as usize, |s| {
                    keys.as_ref().is_none_or(|k| k.contains(&s.key))
                });
                self.ack(from, seq).await;
            }
            MeshMsg::SnapshotRequest { ticket, sessions } => {
                let snapshot = Box::new(crate::control::runtime_api::snapshot::collect(
                    self, sessions,
                ));
                if let Some(mesh) = &self.mesh {
                    let _ = mesh
                        .send_to(from, MeshMsg::Snapshot { ticket, snapshot })
                        .await;
                }
            }
            MeshMsg::Snapshot { ticket, snapshot } => self.snapshots.deliver(ticket, *snapshot),
            MeshMsg::TlsSession(change) => {
                let size = self
                    .config
                    .frontends
                    .get(change.frontend as usize)
                    .and_then(|f| f.tls.as_ref())
                    .map_or(0, |t| t.cache_size);
                crate::tls::tickets::apply_shared(size, *change);
            }
            MeshMsg::Hello { .. } => {}
        }
    }

    /// Acknowledges message `seq` to mesh peer `from` (not to itself).
    async fn ack(&self, from: usize, seq: u64) {
        if from != self.mesh_id
            && let Some(mesh) = &self.mesh
        {
            let _ = mesh.send_to(from, MeshMsg::Ack { seq }).await;
        }
    }

    /// Sends `msg` to worker `worker` (not through the mesh when it is
    /// this one). Returns false when it cannot be delivered.
    /// Whole seconds since the worker started (coarse: see `tick`).
    pub fn now_s(&self) -> u32 {
        (self.clock.now_ms() / 1000) as u32
    }

    /// Moves the coarse clock on (called by the flusher, every 50 ms).
    pub fn tick(&self) {
        self.clock.tick();
    }

    pub async fn send_to_worker(&self, worker: usize, msg: MeshMsg) -> bool {
        if worker == self.id {
            Box::pin(self.receive(self.mesh_id, msg)).await;
            return true;
        }
        let (Some(mesh), Some(&peer)) = (&self.mesh, self.mesh_of.get(worker)) else {
            return false;
        };
        mesh.send_to(peer, msg).await.is_ok()
    }

    /// Sends the TLS sessions this worker's handshakes stored or took to
    /// every other worker (called after each step of a handshake, so a
    /// session is on its way before the client can come back). Never waits: a change that does not fit in a
    /// full channel is dropped (that session then resumes only here).
    pub fn share_tls_sessions(&self) {
        let Some(mesh) = &self.mesh else { return };
        for change in crate::tls::tickets::take_outbox() {
            for peer in 0..mesh.nr_consumers() {
                if peer != self.mesh_id {
                    let _ = mesh.try_send_to(peer, MeshMsg::TlsSession(Box::new(change.clone())));
                }
            }
        }
    }

    /// The server (1-based id) a sticky key goes to, decided by the key's
    /// owner: `candidate` unless the key already sticks elsewhere. On a
    /// non-owner this is one round trip to the owner (only for keys not
    /// yet in the local replica); if the owner does not answer within
    /// `CLAIM_WAIT`, the candidate is used and stored like any write.
    pub async fn stick_claim(&self, table: usize, key: &crate::stick::Key, candidate: u32) -> u32 {
        use crate::stick::StickMsg;
        let defs = &self.config.tables;
        let owner = key.owner(self.workers);
        if owner == self.id || self.mesh.is_none() {
            return self.stick.claim_local(defs, table, key, candidate);
        }
        let ticket = self.stick.new_claim();
        let msg = MeshMsg::Stick(StickMsg::Claim {
            table: table as u16,
            key: key.clone(),
            server: candidate,
            ticket,
        });
        if self.send_to_worker(owner, msg).await
            && let Some(server) = self.stick.await_claim(ticket).await
        {
            self.stick.set_replica_server(table, key, server);
            return server;
        }
        self.stick
            .change(defs, table, key, |d| d.server_id = Some(candidate));
        candidate
    }

    /// Sends this worker's stick-table changes: folds to their owners,
    /// commits to every other worker.
    pub async fn flush_stick(&self) {
        let (folds, commits) = self.stick.flush(&self.config.tables);
        for (owner, items) in folds.into_iter().enumerate() {
            if !items.is_empty() && owner != self.id {
                let msg = MeshMsg::Stick(crate::stick::StickMsg::Fold(items));
                self.send_to_worker(owner, msg).await;
            }
        }
        if commits.is_empty() {
            return;
        }
        let Some(mesh) = &self.mesh else { return };
        for peer in 0..mesh.nr_consumers() {
            if peer != self.mesh_id {
                let msg = MeshMsg::Stick(crate::stick::StickMsg::Commit(commits.clone()));
                let _ = mesh.send_to(peer, msg).await;
            }
        }
    }

    /// The next request number of this worker.
    pub fn next_request_id(&self) -> u64 {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        n
    }

    /// After a burst (thousands of connections that became idle at once),
    /// glibc keeps the freed memory in its heap and the process's resident
    /// size stays at the peak. Once enough has been freed, give the pages
    /// back (`malloc_trim`). Called from the worker's housekeeping task,
    /// never on the connection path.
    pub fn trim_memory(&self) {
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
    pub fn purge_idle(&self) {
        for b in &self.backends {
            for s in &b.servers {
                s.purge_idle();
            }
        }
    }

    /// A new sequence number for a message that wants acknowledgements.
    pub fn seq(&self) -> u64 {
        let s = self.next_seq.get();
        self.next_seq.set(s + 1);
        s
    }

    /// Applies `msg` here, sends it to every other worker, and waits (up
    /// to `ACK_WAIT`) until each has applied it. Returns false if some
    /// worker did not acknowledge in time.
    /// [`Worker::broadcast`] of the message `msg` builds around a fresh
    /// sequence number.
    pub async fn broadcast_new(&self, msg: impl FnOnce(u64) -> MeshMsg) -> bool {
        let seq = self.seq();
        self.broadcast(msg(seq), seq).await
    }

    pub async fn broadcast(&self, msg: MeshMsg, seq: u64) -> bool {
        self.receive(self.mesh_id, msg.clone()).await;
        let Some(mesh) = &self.mesh else { return true };
        let peers = mesh.nr_consumers() - 1;
        self.acks.borrow_mut().push((seq, peers));
        for peer in 0..mesh.nr_consumers() {
            if peer != self.mesh_id {
                // A peer that has exited no longer needs to know.
                if mesh.send_to(peer, msg.clone()).await.is_err() {
                    self.receive(peer, MeshMsg::Ack { seq }).await;
                }
            }
        }
        let missing = || {
            self.acks
                .borrow()
                .iter()
                .find(|(s, _)| *s == seq)
                .map_or(0, |e| e.1)
        };
        let all = futures_lite::future::or(
            async {
                while missing() > 0 {
                    self.acked.wait().await;
                }
                true
            },
            async {
                glommio::timer::Timer::new(ACK_WAIT).await;
                false
            },
        )
        .await;
        self.acks.borrow_mut().retain(|(s, _)| *s != seq);
        all
    }
}

/// Freed memory beyond which a worker asks the allocator to give pages back
/// to the system.
const TRIM_AFTER: usize = 16 << 20;
