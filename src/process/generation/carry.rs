//! What a retiring generation hands to the next one: the health of its
//! checked servers, what the runtime API changed on its servers
//! (administrative state, weight, address) and its stick tables. Worker 0 holds both in full
//! (server states are replicated to every worker, stick tables to worker 0
//! by their owners), so the retiring worker 0 writes them out ([`dump`])
//! when it stops, the master passes them on (a memfd), and the new
//! worker 0 applies them ([`load`]) through the mesh like any health
//! change or peer update.
//!
//! The dump is text lines, then the tables in the peers protocol:
//!
//! ```text
//! corral-state 1
//! server BACKEND SERVER ADDRESS up|down      (servers with checks)
//! admin BACKEND SERVER ADDRESS WEIGHT ready|drain|maint CUR_WEIGHT CUR_ADDRESS
//!                                            (servers the runtime API changed)
//! tables LENGTH
//! <LENGTH bytes: peers-protocol table definitions and timed updates>
//! ```
//!
//! A server's state carries over when the new configuration has a checked
//! server of the same name in a backend of the same name, at the same
//! address; its checks go on from there (`rise` successes bring a DOWN
//! server back). Runtime API changes carry over the same way, when the
//! server's configured address and weight are unchanged too (an edited
//! server is the configuration's word, as with HAProxy's
//! `load-server-state-from-file`). Stick-table entries carry over to tables of the same name
//! and key type, keeping the data types the new table stores and their
//! remaining lifetime. Sticky server ids are the servers' positions in
//! their backend, as in HAProxy: reordering servers re-points them.

use crate::balance::backend::{AdminChange, AdminState};
use crate::mesh::MeshMsg;
use crate::stick::StickMsg;
use crate::worker::Worker;
use std::rc::Rc;

/// How many stick entries one mesh message carries.
const BATCH: usize = 10_000;

/// Worker 0's state, for the next generation.
pub(crate) fn dump(w: &Worker) -> Vec<u8> {
    let mut out = b"corral-state 1\n".to_vec();
    for (b, backend) in w.config.backends.iter().enumerate() {
        for (s, server) in backend.servers.iter().enumerate() {
            let st = &w.backends[b].servers[s];
            let (admin, weight, addr) = (st.admin.get(), st.weight.get(), st.addr.get());
            if admin != AdminState::Ready || weight != server.weight || addr != server.addr {
                out.extend_from_slice(
                    format!(
                        "admin {} {} {} {} {} {weight} {addr}\n",
                        backend.name,
                        server.name,
                        server.addr,
                        server.weight,
                        admin.name(),
                    )
                    .as_bytes(),
                );
            }
            if server.check.is_none() {
                continue;
            }
            let up = st.up.get();
            out.extend_from_slice(
                format!(
                    "server {} {} {} {}\n",
                    backend.name,
                    server.name,
                    server.addr,
                    if up { "up" } else { "down" }
                )
                .as_bytes(),
            );
        }
    }
    let tables = if w.config.tables.is_empty() {
        Ok(Vec::new())
    } else {
        crate::peers::node::encode_tables(w)
    };
    match tables {
        Ok(t) => {
            out.extend_from_slice(format!("tables {}\n", t.len()).as_bytes());
            out.extend_from_slice(&t);
        }
        Err(e) => crate::warning!("worker {}: stick tables not handed over: {e}", w.id),
    }
    out
}

/// Applies a previous generation's state on worker 0 of this one.
pub(crate) async fn load(w: &Rc<Worker>, bytes: &[u8]) {
    let mut rest = bytes;
    let mut line = || -> Option<&str> {
        let end = rest.iter().position(|&b| b == b'\n')?;
        let l = std::str::from_utf8(&rest[..end]).ok();
        rest = &rest[end + 1..];
        l
    };
    if line() != Some("corral-state 1") {
        crate::warning!(
            "the previous generation's state is in a format this version does not read: not carried over"
        );
        return;
    }
    let (mut servers, mut down, mut tables) = (0usize, 0usize, None);
    let mut changes = Vec::new();
    let (mut admin, mut changed) = (Vec::new(), 0usize);
    while let Some(l) = line() {
        let words: Vec<&str> = l.split(' ').collect();
        match words.as_slice() {
            ["server", backend, server, addr, state] => {
                let up = *state == "up";
                let Some(b) = w.config.backend(backend) else {
                    continue;
                };
                let Some(s) = w.config.backends[b].servers.iter().position(|x| {
                    x.name == *server && x.check.is_some() && x.addr.to_string() == *addr
                }) else {
                    continue;
                };
                servers += 1;
                if !up {
                    down += 1;
                }
                if w.backends[b].servers[s].up.get() != up {
                    changes.push((b, s, up));
                }
            }
            [
                "admin",
                backend,
                server,
                addr,
                weight,
                state,
                cur_weight,
                cur_addr,
            ] => {
                let Some(b) = w.config.backend(backend) else {
                    continue;
                };
                let Some(s) = w.config.backends[b].servers.iter().position(|x| {
                    x.name == *server
                        && x.addr.to_string() == *addr
                        && x.weight.to_string() == *weight
                }) else {
                    continue;
                };
                let state = match *state {
                    "drain" => AdminState::Drain,
                    "maint" => AdminState::Maint,
                    _ => AdminState::Ready,
                };
                changed += 1;
                admin.push((b, s, AdminChange::State(state)));
                if let Ok(n) = cur_weight.parse() {
                    admin.push((b, s, AdminChange::Weight(n)));
                }
                if let Ok(a) = cur_addr.parse() {
                    admin.push((b, s, AdminChange::Addr(a)));
                }
            }
            ["tables", len] => {
                tables = len.parse::<usize>().ok();
                break;
            }
            _ => {}
        }
    }
    for (b, s, change) in admin {
        w.mesh
            .broadcast_new(|seq| MeshMsg::ServerAdmin {
                backend: b as u32,
                server: s as u32,
                change,
                seq,
            })
            .await;
    }
    for (b, s, up) in changes {
        w.mesh
            .broadcast_new(|seq| MeshMsg::ServerState {
                backend: b as u32,
                server: s as u32,
                up,
                seq,
            })
            .await;
    }
    let mut entries = 0;
    if let Some(len) = tables.filter(|&l| l > 0 && l <= rest.len()) {
        match crate::peers::node::decode_tables(&w.config.tables, &rest[..len]) {
            Ok(items) => {
                entries = items.len();
                let mut items = items.into_iter().peekable();
                while items.peek().is_some() {
                    let batch: Vec<_> = items.by_ref().take(BATCH).collect();
                    w.mesh
                        .broadcast_new(|seq| {
                            MeshMsg::Stick(StickMsg::Learned { items: batch, seq })
                        })
                        .await;
                }
            }
            Err(e) => {
                crate::warning!("stick tables of the previous generation not carried over: {e}")
            }
        }
    }
    crate::notice!(
        "carried over from the previous generation: {servers} server state(s) ({down} down), {changed} runtime server change(s), {entries} stick-table entr{}",
        if entries == 1 { "y" } else { "ies" }
    );
}
