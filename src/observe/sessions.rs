//! A worker's open client connections, for the runtime API's `show sess`:
//! a slot per connection, filled at accept and freed at close, with the
//! backend and server it went to once known. Worker-local: the API asks
//! each worker for its list over the mesh; nothing here is shared or
//! waited on by the connection path (a registration is one slot write).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::time::Instant;

/// No backend or server chosen yet.
const NONE: u32 = u32::MAX;

/// One open connection.
#[derive(Debug, Clone)]
struct Slot {
    /// 0: a free slot.
    id: u64,
    frontend: u32,
    client: SocketAddr,
    since: Instant,
    backend: u32,
    server: u32,
}

/// An open connection as `show sess` reports it.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    /// The worker that serves it.
    pub worker: usize,
    /// Per-worker number, from 1 in accept order.
    pub id: u64,
    pub frontend: usize,
    pub client: SocketAddr,
    /// Seconds since the accept.
    pub age_secs: u64,
    /// The backend and server of its last request, once chosen.
    pub backend: Option<usize>,
    pub server: Option<usize>,
}

/// Every open connection of one worker.
pub(crate) struct Sessions {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    next_id: Cell<u64>,
    /// Connections accepted since start, per frontend.
    accepted: Vec<Cell<u64>>,
}

impl Sessions {
    pub(crate) fn new(frontends: usize) -> Sessions {
        Sessions {
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            next_id: Cell::new(1),
            accepted: (0..frontends).map(|_| Cell::new(0)).collect(),
        }
    }

    /// Registers a new connection; returns its slot.
    pub(crate) fn open(&self, frontend: usize, client: SocketAddr) -> u32 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        if let Some(c) = self.accepted.get(frontend) {
            c.set(c.get() + 1);
        }
        let slot = Slot {
            id,
            frontend: frontend as u32,
            client,
            since: Instant::now(),
            backend: NONE,
            server: NONE,
        };
        let mut slots = self.slots.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(i) => {
                slots[i as usize] = slot;
                i
            }
            None => {
                slots.push(slot);
                (slots.len() - 1) as u32
            }
        }
    }

    /// Records the backend and server a connection now uses.
    pub(crate) fn route(&self, slot: u32, backend: usize, server: usize) {
        if let Some(s) = self.slots.borrow_mut().get_mut(slot as usize) {
            s.backend = backend as u32;
            s.server = server as u32;
        }
    }

    /// Frees a connection's slot.
    pub(crate) fn close(&self, slot: u32) {
        if let Some(s) = self.slots.borrow_mut().get_mut(slot as usize) {
            s.id = 0;
            self.free.borrow_mut().push(slot);
        }
    }

    /// Connections accepted on frontend `fe` since start.
    pub(crate) fn accepted(&self, fe: usize) -> u64 {
        self.accepted.get(fe).map_or(0, Cell::get)
    }

    /// Every open connection, oldest first.
    pub(crate) fn list(&self, worker: usize) -> Vec<SessionInfo> {
        let now = Instant::now();
        let mut out: Vec<SessionInfo> = self
            .slots
            .borrow()
            .iter()
            .filter(|s| s.id != 0)
            .map(|s| SessionInfo {
                worker,
                id: s.id,
                frontend: s.frontend as usize,
                client: s.client,
                age_secs: now.saturating_duration_since(s.since).as_secs(),
                backend: (s.backend != NONE).then_some(s.backend as usize),
                server: (s.server != NONE).then_some(s.server as usize),
            })
            .collect();
        out.sort_by_key(|s| s.id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_listed_in_accept_order() {
        let s = Sessions::new(2);
        let a = s.open(0, "127.0.0.1:1000".parse().unwrap());
        let b = s.open(1, "127.0.0.1:1001".parse().unwrap());
        s.route(b, 3, 1);
        assert_eq!(s.list(0).len(), 2);
        s.close(a);
        let c = s.open(0, "127.0.0.1:1002".parse().unwrap());
        assert_eq!(c, a, "a free slot is reused");
        let list = s.list(5);
        let ids: Vec<u64> = list.iter().map(|x| x.id).collect();
        assert_eq!(ids, vec![2, 3]);
        assert_eq!((list[0].backend, list[0].server), (Some(3), Some(1)));
        assert_eq!((list[1].backend, list[1].worker), (None, 5));
        assert_eq!((s.accepted(0), s.accepted(1)), (2, 1));
    }
}
