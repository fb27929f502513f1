//! What a message from another worker (or from this worker to itself)
//! does: the one place that knows every mesh message and the module that
//! acts on it. The generation installs [`handler`] on each worker's mesh
//! end and runs [`receive`] for every message its mesh streams deliver.

use crate::mesh::{Handler, MeshMsg};
use crate::worker::Worker;
use std::rc::{Rc, Weak};

/// The handler a worker's mesh end applies its own messages with.
pub(crate) fn handler(w: &Rc<Worker>) -> Handler {
    let weak: Weak<Worker> = Rc::downgrade(w);
    Box::new(move |from, msg| {
        let weak = weak.clone();
        Box::pin(async move {
            if let Some(w) = weak.upgrade() {
                receive(&w, from, msg).await;
            }
        })
    })
}

/// Applies a message from mesh peer `from` (or from this worker itself),
/// acknowledging it when asked.
pub(crate) async fn receive(w: &Worker, from: usize, msg: MeshMsg) {
    let mesh = &w.mesh;
    match msg {
        MeshMsg::ServerState {
            backend,
            server,
            up,
            seq,
        } => {
            if let Some(b) = w.backends.get(backend as usize)
                && (server as usize) < b.servers.len()
            {
                b.set_up(server as usize, up);
            }
            mesh.ack(from, seq).await;
        }
        MeshMsg::ServerAdmin {
            backend,
            server,
            change,
            seq,
        } => {
            if let Some(b) = w.backends.get(backend as usize)
                && (server as usize) < b.servers.len()
            {
                b.set_admin(server as usize, change);
            }
            mesh.ack(from, seq).await;
        }
        MeshMsg::Ack { seq } => mesh.acked(seq),
        MeshMsg::Stick(m) => {
            let ack = match &m {
                crate::stick::StickMsg::Learned { seq, .. } if *seq != 0 => Some(*seq),
                _ => None,
            };
            if let Some(seq) = ack
                && from != mesh.own_index()
            {
                w.stick.receive(&w.config.tables, m);
                mesh.ack(from, seq).await;
                return;
            }
            if let Some(answer) = w.stick.receive(&w.config.tables, m) {
                mesh.reply(from, MeshMsg::Stick(answer)).await;
            }
        }
        MeshMsg::ClearTable { table, keys, seq } => {
            let keys: Option<std::collections::HashSet<crate::stick::Key>> =
                keys.map(|k| k.into_iter().collect());
            w.stick.clear(table as usize, |s| {
                keys.as_ref().is_none_or(|k| k.contains(&s.key))
            });
            mesh.ack(from, seq).await;
        }
        MeshMsg::StatsRequest { id } => {
            let snapshot = Box::new(crate::control::stats::local_with_history(w));
            mesh.reply(from, MeshMsg::Stats { id, snapshot }).await;
        }
        MeshMsg::Stats { id, snapshot } => mesh.stats.deliver(id, *snapshot),
        MeshMsg::SnapshotRequest { ticket, sessions } => {
            let snapshot = Box::new(crate::control::runtime_api::snapshot::collect(w, sessions));
            mesh.reply(from, MeshMsg::Snapshot { ticket, snapshot })
                .await;
        }
        MeshMsg::Snapshot { ticket, snapshot } => mesh.snapshots.deliver(ticket, *snapshot),
        MeshMsg::TlsSession(change) => {
            let size = w
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
