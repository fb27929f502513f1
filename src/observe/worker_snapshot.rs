//! The numbers the runtime API shows (`show info`, `show stat`, `show
//! sess`): one [`WorkerSnapshot`] per worker, sent over the mesh and summed
//! by the API. A counter added to a worker's state is read in
//! `control::runtime_api::snapshot::collect`, carried in [`Counters`],
//! summed by [`WorkerSnapshot::add`] and printed by `show stat`, which
//! leaves a field empty while its counter is `None`.

use crate::observe::sessions::SessionInfo;

/// Counters of one frontend, backend or server on one worker (or summed
/// over all). `None`: not counted (yet); `show stat` leaves it empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
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
pub(crate) struct WorkerSnapshot {
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
    pub(crate) fn add(&mut self, o: WorkerSnapshot) {
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
