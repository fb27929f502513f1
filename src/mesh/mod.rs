//! Messages that cross cores. Workers share no state; what one worker
//! learns that others need (a server's health) travels as a message over
//! glommio's channel mesh and is applied by each receiver to its own copy.
//!
//! A message can ask to be acknowledged: the sender then knows when every
//! other worker has applied it (a health change is only logged once it is
//! true on every worker).
//!
//! [`Mesh`] is a worker's end: its senders, which mesh peer is which
//! worker, acknowledgements, and the answers to requests it sent. What a
//! received message does is not decided here: the generation installs a
//! handler (`process::generation::dispatch`), so this layer knows the
//! messages' shapes and none of the modules that act on them.

pub(crate) mod replies;

use crate::base::local_sync::WaitQueue;
use crate::config::StickTable;
use crate::observe::snapshot::Snapshot;
use crate::observe::worker_snapshot::WorkerSnapshot;
use crate::stick::{Key, StickMsg, Store};
use glommio::channels::channel_mesh::Senders;
use replies::Replies;
use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What the generation does with a message that reached this worker:
/// called with the sender's mesh index and the message.
pub(crate) type Handler = Box<dyn Fn(usize, MeshMsg) -> Pin<Box<dyn Future<Output = ()>>>>;

/// How long a broadcast waits for the other workers to acknowledge it.
const ACK_WAIT: Duration = Duration::from_secs(1);

/// One worker's end of the mesh.
pub(crate) struct Mesh {
    /// This worker's id and the number of workers.
    worker: usize,
    workers: usize,
    /// Senders to the other workers (None with a single worker).
    senders: Option<Senders<MeshMsg>>,
    /// This worker's index in the mesh. glommio numbers peers in the
    /// order they joined, which is not the worker id.
    id: usize,
    /// Mesh index of each worker id (learned from `Hello`s at start).
    of: Vec<usize>,
    /// Broadcasts waiting for acknowledgements: (seq, acks still missing).
    acks: RefCell<Vec<(u64, usize)>>,
    acked: WaitQueue,
    next_seq: Cell<u64>,
    /// Applies a message on this worker (set once by the generation).
    handler: OnceCell<Handler>,
    /// Answers to this worker's `StatsRequest`s.
    pub stats: Replies<Snapshot>,
    /// Answers to this worker's `SnapshotRequest`s.
    pub snapshots: Replies<WorkerSnapshot>,
}

/// The answers a request to every other worker got.
pub(crate) struct Gathered<T> {
    pub answers: Vec<T>,
    /// The first worker the request could not be sent to.
    pub unreachable: Option<usize>,
    /// Workers that were asked and did not answer in time.
    pub missing: usize,
}

impl Mesh {
    pub(crate) fn new(
        worker: usize,
        workers: usize,
        senders: Option<Senders<MeshMsg>>,
        of: Vec<usize>,
    ) -> Mesh {
        Mesh {
            worker,
            workers,
            id: senders.as_ref().map_or(0, |m| m.peer_id()),
            senders,
            of,
            acks: RefCell::new(Vec::new()),
            acked: WaitQueue::default(),
            next_seq: Cell::new(1),
            handler: OnceCell::new(),
            stats: Replies::default(),
            snapshots: Replies::default(),
        }
    }

    /// Installs what applies messages on this worker (once, at start).
    pub(crate) fn set_handler(&self, handler: Handler) {
        let _ = self.handler.set(handler);
    }

    /// This worker's own mesh index (what [`Handler`] gets for a message
    /// this worker applies to itself).
    pub(crate) fn own_index(&self) -> usize {
        self.id
    }

    /// Applies `msg` on this worker.
    async fn apply_here(&self, msg: MeshMsg) {
        if let Some(h) = self.handler.get() {
            h(self.id, msg).await;
        }
    }

    /// Sends `msg` to mesh peer `peer` (an answer to what it sent; not to
    /// this worker itself).
    pub(crate) async fn reply(&self, peer: usize, msg: MeshMsg) {
        if peer != self.id
            && let Some(mesh) = &self.senders
        {
            let _ = mesh.send_to(peer, msg).await;
        }
    }

    /// Acknowledges message `seq` to mesh peer `peer` (not to itself).
    pub(crate) async fn ack(&self, peer: usize, seq: u64) {
        self.reply(peer, MeshMsg::Ack { seq }).await;
    }

    /// Counts an acknowledgement of broadcast `seq`.
    pub(crate) fn acked(&self, seq: u64) {
        let mut acks = self.acks.borrow_mut();
        if let Some(entry) = acks.iter_mut().find(|(s, _)| *s == seq) {
            entry.1 = entry.1.saturating_sub(1);
        }
        drop(acks);
        self.acked.wake_all();
    }

    /// Sends `msg` to worker `worker` (applied here, not through the mesh,
    /// when it is this one). Returns false when it cannot be delivered.
    pub(crate) async fn send_to_worker(&self, worker: usize, msg: MeshMsg) -> bool {
        if worker == self.worker {
            self.apply_here(msg).await;
            return true;
        }
        let (Some(mesh), Some(&peer)) = (&self.senders, self.of.get(worker)) else {
            return false;
        };
        mesh.send_to(peer, msg).await.is_ok()
    }

    /// A new sequence number for a message that wants acknowledgements.
    pub(crate) fn seq(&self) -> u64 {
        let s = self.next_seq.get();
        self.next_seq.set(s + 1);
        s
    }

    /// [`Mesh::broadcast`] of the message `msg` builds around a fresh
    /// sequence number.
    pub(crate) async fn broadcast_new(&self, msg: impl FnOnce(u64) -> MeshMsg) -> bool {
        let seq = self.seq();
        self.broadcast(msg(seq), seq).await
    }

    /// Applies `msg` here, sends it to every other worker, and waits (up
    /// to `ACK_WAIT`) until each has applied it. Returns false if some
    /// worker did not acknowledge in time.
    pub(crate) async fn broadcast(&self, msg: MeshMsg, seq: u64) -> bool {
        self.apply_here(msg.clone()).await;
        let Some(mesh) = &self.senders else {
            return true;
        };
        let peers = mesh.nr_consumers() - 1;
        self.acks.borrow_mut().push((seq, peers));
        for peer in 0..mesh.nr_consumers() {
            if peer != self.id {
                // A peer that has exited no longer needs to know.
                if mesh.send_to(peer, msg.clone()).await.is_err() {
                    self.acked(seq);
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

    /// Sends `request(ticket)` to every other worker and waits up to
    /// `within` for their answers, which arrive in `replies` (filed by the
    /// handler with [`Replies::deliver`]).
    pub(crate) async fn ask_all<T>(
        &self,
        replies: &Replies<T>,
        request: impl Fn(u64) -> MeshMsg,
        within: Duration,
    ) -> Gathered<T> {
        let ticket = replies.open();
        let mut unreachable = None;
        let mut asked = 0;
        for other in (0..self.workers).filter(|&o| o != self.worker) {
            if self.send_to_worker(other, request(ticket)).await {
                asked += 1;
            } else {
                unreachable.get_or_insert(other);
            }
        }
        let answers = replies.wait(ticket, asked, within).await;
        Gathered {
            missing: asked - answers.len(),
            answers,
            unreachable,
        }
    }

    /// Sends the TLS sessions this worker's handshakes stored or took to
    /// every other worker (called after each step of a handshake, so a
    /// session is on its way before the client can come back). Never
    /// waits: a change that does not fit in a full channel is dropped
    /// (that session then resumes only here).
    pub(crate) fn share_tls_sessions(&self) {
        let Some(mesh) = &self.senders else { return };
        for change in crate::tls::tickets::take_outbox() {
            for peer in 0..mesh.nr_consumers() {
                if peer != self.id {
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
    pub(crate) async fn stick_claim(
        &self,
        stick: &Store,
        defs: &[StickTable],
        table: usize,
        key: &Key,
        candidate: u32,
    ) -> u32 {
        let owner = key.owner(self.workers);
        if owner == self.worker || self.senders.is_none() {
            return stick.claim_local(defs, table, key, candidate);
        }
        let ticket = stick.new_claim();
        let msg = MeshMsg::Stick(StickMsg::Claim {
            table: table as u16,
            key: key.clone(),
            server: candidate,
            ticket,
        });
        if self.send_to_worker(owner, msg).await
            && let Some(server) = stick.await_claim(ticket).await
        {
            stick.set_replica_server(table, key, server);
            return server;
        }
        stick.change(defs, table, key, |d| d.server_id = Some(candidate));
        candidate
    }

    /// Sends this worker's stick-table changes: folds to their owners,
    /// commits to every other worker.
    pub(crate) async fn flush_stick(&self, stick: &Store, defs: &[StickTable]) {
        let (folds, commits) = stick.flush(defs);
        for (owner, items) in folds.into_iter().enumerate() {
            if !items.is_empty() && owner != self.worker {
                self.send_to_worker(owner, MeshMsg::Stick(StickMsg::Fold(items)))
                    .await;
            }
        }
        if commits.is_empty() {
            return;
        }
        let Some(mesh) = &self.senders else { return };
        for peer in 0..mesh.nr_consumers() {
            if peer != self.id {
                let msg = MeshMsg::Stick(StickMsg::Commit(commits.clone()));
                let _ = mesh.send_to(peer, msg).await;
            }
        }
    }
}

/// A message from one worker to another.
#[derive(Debug, Clone)]
pub(crate) enum MeshMsg {
    /// The first message on every channel: the sender's worker id (glommio
    /// numbers mesh peers by join order, not by worker id).
    Hello { worker: usize },
    /// The checking worker changed a server's health; `seq` is echoed
    /// back in an `Ack`.
    ServerState {
        backend: u32,
        server: u32,
        up: bool,
        seq: u64,
    },
    /// The receiver applied the message numbered `seq`.
    Ack { seq: u64 },
    /// Stick-table replication (see `stick/store.rs`).
    Stick(crate::stick::StickMsg),
    /// A view (stats page, `/metrics`) wants this worker's numbers.
    StatsRequest { id: u64 },
    /// The answer to `StatsRequest { id }`.
    Stats {
        id: u64,
        snapshot: Box<crate::observe::snapshot::Snapshot>,
    },
    /// The runtime API changed a server's administrative state, weight or
    /// address; acknowledged like `ServerState`.
    ServerAdmin {
        backend: u32,
        server: u32,
        change: crate::balance::backend::AdminChange,
        seq: u64,
    },
    /// The runtime API cleared a stick table: every entry not in use, or
    /// these keys (those not in use); acknowledged.
    ClearTable {
        table: u16,
        keys: Option<Vec<crate::stick::Key>>,
        seq: u64,
    },
    /// The runtime API asks for this worker's numbers (and, with
    /// `sessions`, its open connections); answered with `Snapshot`.
    SnapshotRequest { ticket: u64, sessions: bool },
    /// A TLS session stored or taken by the sender's handshake, for the
    /// receiver's copy of the session cache.
    TlsSession(Box<crate::tls::tickets::SharedSession>),
    /// One worker's answer to `SnapshotRequest`.
    Snapshot {
        ticket: u64,
        snapshot: Box<crate::observe::worker_snapshot::WorkerSnapshot>,
    },
}

/// Each channel of the mesh holds this many messages. Health changes are
/// rare; stick-table changes travel in one batch per flush interval, and
/// claims (one per new sticky client on a non-owner) are small; the size
/// absorbs a burst without a sender waiting on a slow peer for long.
pub(crate) const CHANNEL_CAPACITY: usize = 1024;
