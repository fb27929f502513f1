//! Numbers that live on every worker, gathered for the runtime API.
//!
//! The API runs on worker 0. For `show info`, `show stat` and `show sess`
//! it asks every other worker for a [`WorkerSnapshot`]
//! (`MeshMsg::SnapshotRequest`); each worker builds one with [`collect`]
//! in its mesh task, between its own connection tasks, and sends it back
//! (`MeshMsg::Snapshot`). Nothing on the connection path waits for the
//! API: a worker's counters are plain `Cell`s it reads in one pass.
//!
//! The traffic numbers come from the worker's `observe::counters` (the
//! stats page gathers its own, richer `observe::snapshot::Snapshot` through
//! the same `Mesh::ask_all`; the two payloads stay apart because the views
//! print different fields). The payload types live in
//! `observe::worker_snapshot`.

pub(crate) use crate::observe::worker_snapshot::{Counters, WorkerSnapshot};

use crate::mesh::MeshMsg;
use crate::worker::Worker;
use std::time::Duration;

/// How long the API waits for every worker's snapshot.
pub(crate) const GATHER_WAIT: Duration = Duration::from_secs(1);

/// This worker's snapshot (with its open connections when `sessions`).
pub(crate) fn collect(w: &Worker, sessions: bool) -> WorkerSnapshot {
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

/// Every worker's snapshot, summed. Errs when a worker does not answer
/// within [`GATHER_WAIT`].
pub(crate) async fn gather(w: &Worker, sessions: bool) -> Result<WorkerSnapshot, String> {
    let mut total = collect(w, sessions);
    let request = |ticket| MeshMsg::SnapshotRequest { ticket, sessions };
    let got = w
        .mesh
        .ask_all(&w.mesh.snapshots, request, GATHER_WAIT)
        .await;
    if let Some(other) = got.unreachable {
        return Err(format!("worker {other} cannot be reached"));
    }
    if got.missing > 0 {
        return Err(format!(
            "{} of {} workers did not answer within {GATHER_WAIT:?}",
            got.missing, w.workers
        ));
    }
    for s in got.answers {
        total.add(s);
    }
    total.sessions.sort_by_key(|s| (s.worker, s.id));
    Ok(total)
}
