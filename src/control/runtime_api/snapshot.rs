//! Numbers that live on every worker, gathered for the runtime API.
//!
//! The API runs on worker 0. For `show info`, `show stat` and `show sess`
//! it asks every other worker for a [`WorkerSnapshot`]
//! (`MeshMsg::SnapshotRequest`); each worker builds one with [`collect`]
//! in its mesh task, between its own connection tasks, and sends it back
//! (`MeshMsg::Snapshot`). Nothing on the connection path waits for the
//! API: a worker's counters are plain `Cell`s it reads in one pass.
//!
//! The traffic numbers come from the worker's `stats::Counters` (the
//! stats page gathers its own, richer `stats::Snapshot` the same way;
//! folding the two into one request is left to do). This is the seam for
//! per-worker statistics: a counter added to the
//! worker's state is read in `collect`, carried in [`Counters`], summed by
//! [`WorkerSnapshot::add`] and printed by `show stat`
//! (`runtime_api::show::stat`), which leaves a field empty while its
//! counter is `None`.

use crate::base::local_sync::WaitQueue;
use crate::mesh::MeshMsg;
use crate::observe::sessions::SessionInfo;
use crate::worker::Worker;
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// How long the API waits for every worker's snapshot.
pub const GATHER_WAIT: Duration = Duration::from_secs(1);

/// Counters of one frontend, backend or server on one worker (or summed
/// over all). `None`: not counted (yet); `show stat` leaves it empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Current sessions (connections open).
    pub scur: u64,
    /// Sessions since start.
    pub stot: u64,
    /// Connections waiting in the queue (backends).
    pub qcur: u64,
    /// Bytes in (from clients) and out (to clients).
    pub bin: Option<u64>,
    pub bout: Option<u64>,
    /// HTTP requests since start.
    pub req_tot: Option<u64>,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.scur += o.scur;
        self.stot += o.stot;
        self.qcur += o.qcur;
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        self.bin = sum(self.bin, o.bin);
        self.bout = sum(self.bout, o.bout);
        self.req_tot = sum(self.req_tot, o.req_tot);
    }
}

/// One worker's numbers at one moment.
#[derive(Debug, Clone, Default)]
pub struct WorkerSnapshot {
    /// Workers this snapshot covers (1, or all once summed).
    pub workers: usize,
    /// Client connections open.
    pub conns: u64,
    /// Client connections accepted since start.
    pub accepted: u64,
    /// Per frontend, per backend, per backend and server (config order).
    pub frontends: Vec<Counters>,
    pub backends: Vec<Counters>,
    pub servers: Vec<Vec<Counters>>,
    /// Open connections (asked for by `show sess` only).
    pub sessions: Vec<SessionInfo>,
}

impl WorkerSnapshot {
    /// Adds another worker's snapshot into this one.
    pub fn add(&mut self, o: WorkerSnapshot) {
        self.workers += o.workers;
        self.conns += o.conns;
        self.accepted += o.accepted;
        add_all(&mut self.frontends, &o.frontends);
        add_all(&mut self.backends, &o.backends);
        if self.servers.len() < o.servers.len() {
            self.servers.resize(o.servers.len(), Vec::new());
        }
        for (mine, theirs) in self.servers.iter_mut().zip(&o.servers) {
            add_all(mine, theirs);
        }
        self.sessions.extend(o.sessions);
    }
}

fn add_all(into: &mut Vec<Counters>, from: &[Counters]) {
    if into.len() < from.len() {
        into.resize(from.len(), Counters::default());
    }
    for (a, b) in into.iter_mut().zip(from) {
        a.add(b);
    }
}

/// This worker's snapshot (with its open connections when `sessions`).
pub fn collect(w: &Worker, sessions: bool) -> WorkerSnapshot {
    let frontends = w
        .frontends
        .iter()
        .enumerate()
        .map(|(i, f)| Counters {
            scur: u64::from(f.conns.get()),
            stot: w.sessions.accepted(i),
            bin: Some(f.stats.bytes_in.get()),
            bout: Some(f.stats.bytes_out.get()),
            req_tot: Some(f.stats.requests.get()),
            ..Counters::default()
        })
        .collect();
    let servers: Vec<Vec<Counters>> = w
        .backends
        .iter()
        .map(|b| {
            b.servers
                .iter()
                .map(|s| Counters {
                    scur: u64::from(s.conns.get()),
                    stot: s.total.get(),
                    bin: Some(s.stats.bytes_in.get()),
                    bout: Some(s.stats.bytes_out.get()),
                    req_tot: Some(s.stats.requests.get()),
                    ..Counters::default()
                })
                .collect()
        })
        .collect();
    let backends = w
        .backends
        .iter()
        .zip(&servers)
        .map(|(b, servers)| Counters {
            scur: u64::from(b.conns.get()),
            stot: servers.iter().map(|s| s.stot).sum(),
            qcur: u64::from(b.queued.get()),
            bin: Some(b.stats.bytes_in.get()),
            bout: Some(b.stats.bytes_out.get()),
            req_tot: Some(b.stats.requests.get()),
        })
        .collect();
    WorkerSnapshot {
        workers: 1,
        conns: u64::from(w.conns.get()),
        accepted: (0..w.frontends.len()).map(|i| w.sessions.accepted(i)).sum(),
        frontends,
        backends,
        servers,
        sessions: if sessions {
            w.sessions.list(w.id)
        } else {
            Vec::new()
        },
    }
}

/// Snapshots asked for and the answers received so far (on worker 0).
#[derive(Default)]
pub struct Pending {
    next: Cell<u64>,
    waiting: RefCell<Vec<(u64, Vec<WorkerSnapshot>)>>,
    arrived: WaitQueue,
}

impl Pending {
    /// Files an answer (one that arrives after its request gave up is
    /// dropped).
    pub fn deliver(&self, ticket: u64, snap: WorkerSnapshot) {
        if let Some((_, got)) = self
            .waiting
            .borrow_mut()
            .iter_mut()
            .find(|(t, _)| *t == ticket)
        {
            got.push(snap);
        }
        self.arrived.wake_all();
    }
}

/// Every worker's snapshot, summed. Errs when a worker does not answer
/// within [`GATHER_WAIT`].
pub async fn gather(w: &Worker, sessions: bool) -> Result<WorkerSnapshot, String> {
    let p = &w.snapshots;
    let ticket = p.next.get() + 1;
    p.next.set(ticket);
    p.waiting.borrow_mut().push((ticket, Vec::new()));
    let mut total = collect(w, sessions);
    for other in (0..w.workers).filter(|&o| o != w.id) {
        let msg = MeshMsg::SnapshotRequest { ticket, sessions };
        if !w.send_to_worker(other, msg).await {
            p.waiting.borrow_mut().retain(|(t, _)| *t != ticket);
            return Err(format!("worker {other} cannot be reached"));
        }
    }
    let count = || {
        p.waiting
            .borrow()
            .iter()
            .find(|(t, _)| *t == ticket)
            .map_or(0, |(_, got)| got.len())
    };
    let all = futures_lite::future::or(
        async {
            while count() + 1 < w.workers {
                p.arrived.wait().await;
            }
            true
        },
        async {
            glommio::timer::Timer::new(GATHER_WAIT).await;
            false
        },
    )
    .await;
    let got = {
        let mut waiting = p.waiting.borrow_mut();
        let i = waiting.iter().position(|(t, _)| *t == ticket);
        i.map(|i| waiting.remove(i).1).unwrap_or_default()
    };
    if !all {
        return Err(format!(
            "{} of {} workers did not answer within {GATHER_WAIT:?}",
            w.workers - 1 - got.len(),
            w.workers
        ));
    }
    for s in got {
        total.add(s);
    }
    total.sessions.sort_by_key(|s| (s.worker, s.id));
    Ok(total)
}
