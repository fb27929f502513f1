//! A worker's stick tables and how workers keep them in agreement without
//! a lock.
//!
//! Every key has one owner, the worker `Key::owner` names (the same on
//! every worker). The owner is the only writer of the key's committed
//! data. Every worker holds a full read replica of every table, so the
//! connection path reads locally:
//!
//! - a change on the owner (a store, a counted request) is applied at once
//!   and the entry queued for a **commit**, broadcast to every other worker
//!   at the next flush;
//! - a change elsewhere goes into the local entry's `pending` delta (reads
//!   see data + pending at once) and is **folded** into the owner at the
//!   next flush; the owner applies it and commits;
//! - a sticky key seen for the first time on a non-owner is **claimed** from
//!   the owner, which decides (first claim wins) and answers, so two
//!   workers never send one client to two servers.
//!
//! Staleness is bounded: a change made on one worker is in the owner's
//! copy within one flush interval ([`FLUSH_EVERY`]) and in every replica
//! within two (plus the time a worker takes to run its flush task).

use super::key::Key;
use super::table::Table;
use crate::config::StickTable;
use crate::model::table::{Data, Delta, Event};
use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often a worker folds its changes into owners and commits its own.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// The longest a change takes to reach every worker's replica (two flush
/// intervals, plus scheduling slack), as documented and tested.
#[cfg(test)]
pub(crate) const STALENESS_BOUND: Duration = Duration::from_millis(50);

/// How long a claim waits for the owner before using its own choice.
pub(crate) const CLAIM_WAIT: Duration = Duration::from_millis(100);

/// Entries removed per table by one expiry pass (keeps a pass short).
const EXPIRE_BATCH: usize = 4096;

/// Milliseconds on the process clock shared by all workers (so a touch
/// time means the same on every worker). Never 0.
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| Instant::now() - Duration::from_millis(1));
    epoch.elapsed().as_millis() as u64
}

/// What crosses cores about stick tables.
#[derive(Debug, Clone)]
pub(crate) enum StickMsg {
    /// Non-owner → owner: changes to fold in.
    Fold(Vec<(u16, Key, Delta)>),
    /// Owner → every worker: committed entries (data, last touch).
    /// `remote`: learned from a peer node (not pushed back to peers).
    Commit(Vec<Commit>),
    /// Non-owner → owner: stick this key to `server` unless it already
    /// sticks somewhere; answer with `Claimed`.
    Claim {
        table: u16,
        key: Key,
        server: u32,
        ticket: u64,
    },
    /// Owner → claimant: the server the key sticks to.
    Claimed { ticket: u64, server: u32 },
    /// Peer-node input → every worker: entries a peer node sent (owners
    /// take them as the truth, others as replica data). `seq` (when not 0)
    /// asks for an `Ack`, so the sender knows every worker has them.
    Learned {
        items: Vec<(u16, Key, Data, u64)>,
        seq: u64,
    },
}

/// Changes to fold into each owner, indexed by worker: (table, key, delta).
pub(crate) type Folds = Vec<Vec<(u16, Key, Delta)>>;

/// One committed entry.
#[derive(Debug, Clone)]
pub(crate) struct Commit {
    pub table: u16,
    pub key: Key,
    pub data: Data,
    pub touched: u64,
    /// Learned from a peer node: not to be pushed back to peers.
    pub remote: bool,
}

/// A claim waiting for its owner's answer.
struct Claim {
    ticket: u64,
    answer: Cell<Option<u32>>,
}

/// Where this worker stands for each table.
pub(crate) struct Store {
    /// This worker's id and the number of workers (owners are among them).
    pub me: usize,
    pub workers: usize,
    /// One replica per configured table, in `Config::tables` order.
    tables: RefCell<Vec<Table>>,
    /// Entries changed since the last flush: (table, key).
    dirty: RefCell<Vec<(u16, Key)>>,
    /// Claims sent, waiting for answers.
    claims: RefCell<Vec<Claim>>,
    claim_answered: crate::base::local_sync::WaitQueue,
    next_ticket: Cell<u64>,
    /// Entries committed here (or received) that peer nodes must learn,
    /// drained by the peers task when there is one.
    pub to_peers: RefCell<Vec<Commit>>,
    /// Whether any table replicates to peer nodes (else `to_peers` stays
    /// empty).
    peers_wanted: bool,
    /// Key lookups at connection start, and how many were for keys this
    /// worker owns (the owner-hit rate `steer: source` raises).
    pub lookups: Cell<u64>,
    pub owned_lookups: Cell<u64>,
}

impl Store {
    pub(crate) fn new(me: usize, workers: usize, defs: &[StickTable], peers_wanted: bool) -> Store {
        Store {
            me,
            workers,
            tables: RefCell::new(
                defs.iter()
                    .map(|d| Table::new(d.size, d.expire.as_millis() as u64))
                    .collect(),
            ),
            dirty: RefCell::new(Vec::new()),
            claims: RefCell::new(Vec::new()),
            claim_answered: Default::default(),
            next_ticket: Cell::new(1),
            to_peers: RefCell::new(Vec::new()),
            peers_wanted,
            lookups: Cell::new(0),
            owned_lookups: Cell::new(0),
        }
    }

    pub(crate) fn owns(&self, key: &Key) -> bool {
        key.owner(self.workers) == self.me
    }

    /// Counts a lookup at connection start (for the owner-hit rate).
    pub(crate) fn note_lookup(&self, key: &Key) {
        self.lookups.set(self.lookups.get() + 1);
        if self.owns(key) {
            self.owned_lookups.set(self.owned_lookups.get() + 1);
        }
    }

    /// Reads data type `t` of `key` (committed data plus local changes).
    pub(crate) fn read(
        &self,
        defs: &[StickTable],
        table: usize,
        key: &Key,
        t: super::DataType,
    ) -> Option<u64> {
        let now = now_ms();
        let tables = self.tables.borrow();
        let s = tables.get(table)?.get(key, now)?;
        defs[table].layout.read(t, &s.data, &s.pending, now)
    }

    /// The server `key` sticks to (1-based id), touching the entry.
    pub(crate) fn server_of(&self, defs: &[StickTable], table: usize, key: &Key) -> Option<u32> {
        let now = now_ms();
        let id = {
            let tables = self.tables.borrow();
            let s = tables.get(table)?.get(key, now)?;
            s.pending.server_id.unwrap_or(s.data.server_id)
        };
        if id == 0 {
            return None;
        }
        self.change(defs, table, key, |d| d.touched = true);
        Some(id)
    }

    /// Applies a change to `key`: directly on the owner, as a pending
    /// delta elsewhere, and queues the entry for the next flush. A change
    /// that leaves `touched` set creates the entry if needed and counts as
    /// a use (expiry refreshed, moved to the front of the LRU order); one
    /// that clears it (the end of a tracking, bytes counted at close)
    /// applies only to an existing entry and leaves its age alone.
    pub(crate) fn change(
        &self,
        defs: &[StickTable],
        table: usize,
        key: &Key,
        f: impl FnOnce(&mut Delta),
    ) {
        let mut delta = Delta {
            touched: true,
            ..Delta::default()
        };
        f(&mut delta);
        let now = now_ms();
        let owner = self.owns(key);
        let mut tables = self.tables.borrow_mut();
        let Some(t) = tables.get_mut(table) else {
            return;
        };
        let i = if delta.touched {
            t.upsert(key, now).0
        } else {
            match t.find(key, now) {
                Some(i) => i,
                None => return,
            }
        };
        let s = t.slot_mut(i);
        if owner {
            defs[table].layout.apply(&mut s.data, &delta, now);
            s.remote = false;
        } else {
            merge(&mut s.pending, &delta);
        }
        if !s.dirty {
            s.dirty = true;
            self.dirty.borrow_mut().push((table as u16, key.clone()));
        }
    }

    /// Like `change`, but only if the entry still exists (ending a
    /// tracking must not recreate an entry that expired meanwhile).
    pub(crate) fn change_existing(
        &self,
        defs: &[StickTable],
        table: usize,
        key: &Key,
        f: impl FnOnce(&mut Delta),
    ) {
        let exists = self
            .tables
            .borrow()
            .get(table)
            .is_some_and(|t| t.find(key, now_ms()).is_some());
        if exists {
            self.change(defs, table, key, f);
        }
    }

    /// Counts `n` events of `ev` on `key` (if it still exists); `touch`:
    /// as a use of the entry.
    pub(crate) fn count(
        &self,
        defs: &[StickTable],
        table: usize,
        key: &Key,
        ev: Event,
        n: u64,
        touch: bool,
    ) {
        if n > 0 {
            self.change_existing(defs, table, key, |d| {
                d.events[ev as usize] += n;
                d.touched = touch;
            });
        }
    }

    /// On the owner: sticks `key` to `server` unless it already sticks to
    /// a server; returns the server it sticks to.
    pub(crate) fn claim_local(
        &self,
        defs: &[StickTable],
        table: usize,
        key: &Key,
        server: u32,
    ) -> u32 {
        let current = {
            let tables = self.tables.borrow();
            tables
                .get(table)
                .and_then(|t| t.get(key, now_ms()))
                .map_or(0, |s| s.data.server_id)
        };
        let chosen = if current != 0 { current } else { server };
        self.change(defs, table, key, |d| d.server_id = Some(chosen));
        chosen
    }

    /// Records in the local replica the server the owner decided for
    /// `key` (not a change of this worker's: nothing to fold).
    pub(crate) fn set_replica_server(&self, table: usize, key: &Key, server: u32) {
        let mut tables = self.tables.borrow_mut();
        if let Some(t) = tables.get_mut(table) {
            let (i, _) = t.upsert(key, now_ms());
            t.slot_mut(i).data.server_id = server;
        }
    }

    /// A new claim ticket, registered to receive its answer.
    pub(crate) fn new_claim(&self) -> u64 {
        let t = self.next_ticket.get();
        self.next_ticket.set(t + 1);
        self.claims.borrow_mut().push(Claim {
            ticket: t,
            answer: Cell::new(None),
        });
        t
    }

    /// Waits up to `CLAIM_WAIT` for the answer to `ticket`.
    pub(crate) async fn await_claim(&self, ticket: u64) -> Option<u32> {
        let answer = || {
            self.claims
                .borrow()
                .iter()
                .find(|c| c.ticket == ticket)
                .and_then(|c| c.answer.get())
        };
        let got = futures_lite::future::or(
            async {
                loop {
                    if let Some(a) = answer() {
                        return Some(a);
                    }
                    self.claim_answered.wait().await;
                }
            },
            async {
                glommio::timer::Timer::new(CLAIM_WAIT).await;
                None
            },
        )
        .await;
        self.claims.borrow_mut().retain(|c| c.ticket != ticket);
        got
    }

    /// Applies a message from another worker; returns the answer to send
    /// back to `from`, if any.
    pub(crate) fn receive(&self, defs: &[StickTable], msg: StickMsg) -> Option<StickMsg> {
        match msg {
            StickMsg::Fold(items) => {
                let now = now_ms();
                let mut tables = self.tables.borrow_mut();
                for (table, key, delta) in items {
                    let Some(t) = tables.get_mut(table as usize) else {
                        continue;
                    };
                    let i = if delta.touched {
                        t.upsert(&key, now).0
                    } else {
                        match t.find(&key, now) {
                            Some(i) => i,
                            None => continue,
                        }
                    };
                    let s = t.slot_mut(i);
                    defs[table as usize].layout.apply(&mut s.data, &delta, now);
                    s.remote = false;
                    if !s.dirty {
                        s.dirty = true;
                        self.dirty.borrow_mut().push((table, key));
                    }
                }
                None
            }
            StickMsg::Commit(items) => {
                let mut tables = self.tables.borrow_mut();
                for c in items {
                    let Some(t) = tables.get_mut(c.table as usize) else {
                        continue;
                    };
                    let (i, _) = t.upsert(&c.key, c.touched);
                    t.touch(i, c.touched);
                    t.slot_mut(i).data = c.data;
                    if self.peers_wanted && !c.remote {
                        self.to_peers.borrow_mut().push(c);
                    }
                }
                None
            }
            StickMsg::Claim {
                table,
                key,
                server,
                ticket,
            } => {
                let server = self.claim_local(defs, table as usize, &key, server);
                Some(StickMsg::Claimed { ticket, server })
            }
            StickMsg::Claimed { ticket, server } => {
                if let Some(c) = self.claims.borrow().iter().find(|c| c.ticket == ticket) {
                    c.answer.set(Some(server));
                }
                self.claim_answered.wake_all();
                None
            }
            StickMsg::Learned { items, .. } => {
                self.learn(defs, items);
                None
            }
        }
    }

    /// Entries a peer node sent replace the local data (HAProxy's peers
    /// apply the sender's values), keeping the later touch. The owner
    /// commits them (so later changes build on them); other workers take
    /// them as replica data.
    pub(crate) fn learn(&self, _defs: &[StickTable], items: Vec<(u16, Key, Data, u64)>) {
        let mut tables = self.tables.borrow_mut();
        for (table, key, data, touched) in items {
            let Some(t) = tables.get_mut(table as usize) else {
                continue;
            };
            let (i, _) = t.upsert(&key, touched);
            t.touch(i, touched);
            let s = t.slot_mut(i);
            // Connections tracking the entry here are ours to count.
            let conn_cur = s.data.conn_cur;
            s.data = data;
            s.data.conn_cur = conn_cur.max(data.conn_cur);
            s.remote = true;
            if !s.dirty && key.owner(self.workers) == self.me {
                s.dirty = true;
                self.dirty.borrow_mut().push((table, key));
            }
        }
    }

    /// Empties the dirty list: returns the folds for each owner (indexed by
    /// worker) and the commits to broadcast. Folded deltas are applied to
    /// the local copy too, so this worker keeps seeing its own changes
    /// until the owner's commit arrives.
    pub(crate) fn flush(&self, defs: &[StickTable]) -> (Folds, Vec<Commit>) {
        let mut folds: Folds = vec![Vec::new(); self.workers];
        let mut commits = Vec::new();
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        if dirty.is_empty() {
            return (folds, commits);
        }
        let now = now_ms();
        let mut tables = self.tables.borrow_mut();
        for (table, key) in dirty {
            let Some(t) = tables.get_mut(table as usize) else {
                continue;
            };
            let Some(i) = t.find(&key, now) else { continue };
            let s = t.slot_mut(i);
            s.dirty = false;
            let owner = key.owner(self.workers);
            if owner == self.me {
                let c = Commit {
                    table,
                    key,
                    data: s.data,
                    touched: s.touched,
                    remote: s.remote,
                };
                if self.peers_wanted && !c.remote {
                    self.to_peers.borrow_mut().push(c.clone());
                }
                commits.push(c);
            } else if !s.pending.is_empty() {
                let delta = std::mem::take(&mut s.pending);
                defs[table as usize].layout.apply(&mut s.data, &delta, now);
                folds[owner].push((table, key, delta));
            }
        }
        (folds, commits)
    }

    /// Removes expired entries from every table.
    pub(crate) fn expire(&self) {
        let now = now_ms();
        for t in self.tables.borrow_mut().iter_mut() {
            t.expire(now, EXPIRE_BATCH, |_| {});
        }
    }

    /// Calls `f` with every live entry of `table` (most recent first).
    pub(crate) fn each(&self, table: usize, mut f: impl FnMut(&Key, &Data, u64)) {
        let now = now_ms();
        if let Some(t) = self.tables.borrow().get(table) {
            for s in t.iter() {
                if s.touched + t.expire_ms() > now {
                    f(&s.key, &s.data, s.touched);
                }
            }
        }
    }

    /// Calls `f` with every live entry of `table` (most recent first) and
    /// the milliseconds left before it expires.
    pub(crate) fn each_slot(&self, table: usize, mut f: impl FnMut(&super::table::Slot, u64)) {
        let now = now_ms();
        if let Some(t) = self.tables.borrow().get(table) {
            for s in t.iter() {
                let end = s.touched + t.expire_ms();
                if end > now {
                    f(s, end - now);
                }
            }
        }
    }

    /// Removes the entries of `table` that `remove` selects (all of them
    /// for the runtime API's `clear table`, one key, or a data filter),
    /// except those in use (a connection tracks them: `conn_cur` > 0),
    /// as HAProxy does. Returns (removed, kept because in use).
    pub(crate) fn clear(
        &self,
        table: usize,
        mut remove: impl FnMut(&super::table::Slot) -> bool,
    ) -> (usize, usize) {
        let mut tables = self.tables.borrow_mut();
        let Some(t) = tables.get_mut(table) else {
            return (0, 0);
        };
        let mut doomed = Vec::new();
        let mut in_use = 0;
        for s in t.iter() {
            if remove(s) {
                if i64::from(s.data.conn_cur) + i64::from(s.pending.conn_cur) > 0 {
                    in_use += 1;
                } else {
                    doomed.push(s.key.clone());
                }
            }
        }
        for k in &doomed {
            t.remove(k);
        }
        (doomed.len(), in_use)
    }

    /// Entries held in `table`.
    pub(crate) fn len(&self, table: usize) -> usize {
        self.tables.borrow().get(table).map_or(0, Table::len)
    }
}

/// Adds `add` to the pending delta `into`.
fn merge(into: &mut Delta, add: &Delta) {
    for (a, b) in into.events.iter_mut().zip(add.events) {
        *a = a.saturating_add(b);
    }
    into.conn_cur += add.conn_cur;
    if add.server_id.is_some() {
        into.server_id = add.server_id;
    }
    into.touched |= add.touched;
}

/// A connection's tracked entries: `track-sc0/1/2`.
#[derive(Debug, Default)]
pub(crate) struct Tracks {
    /// Allocated at the first `track-scN`: every connection carries a
    /// `Tracks`, and most never track anything.
    slots: Option<Box<[Option<Tracked>; 3]>>,
}

/// One tracked entry.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub table: usize,
    pub key: Key,
    /// Tracked by a `tcp-request connection` rule: lasts as long as the
    /// connection. Otherwise (`http-request`), until the request ends.
    pub conn_level: bool,
}

impl Tracks {
    pub(crate) fn get(&self, sc: usize) -> Option<&Tracked> {
        self.slots.as_ref()?.get(sc)?.as_ref()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots
            .as_ref()
            .is_none_or(|s| s.iter().all(Option::is_none))
    }

    /// Starts tracking `key` in slot `sc` unless the slot is taken (the
    /// first `track-scN` that runs wins, as in HAProxy). A connection-level
    /// tracking counts a connection and a session; a request-level one
    /// counts a request. Both count in `conn_cur` until they end.
    pub(crate) fn track(
        &mut self,
        store: &Store,
        defs: &[StickTable],
        sc: usize,
        table: usize,
        key: Key,
        conn_level: bool,
    ) {
        let slots = self.slots.get_or_insert_with(Default::default);
        if sc >= slots.len() || slots[sc].is_some() {
            return;
        }
        store.note_lookup(&key);
        store.change(defs, table, &key, |d| {
            d.conn_cur += 1;
            if conn_level {
                d.events[Event::Conn as usize] += 1;
                d.events[Event::Sess as usize] += 1;
            } else {
                d.events[Event::HttpReq as usize] += 1;
            }
        });
        slots[sc] = Some(Tracked {
            table,
            key,
            conn_level,
        });
    }

    /// Counts `n` of `ev` on every tracked entry (at the end of a request
    /// or connection: not a new use of the entries).
    pub(crate) fn count(&self, store: &Store, defs: &[StickTable], ev: Event, n: u64) {
        for t in self.slots.iter().flat_map(|s| s.iter()).flatten() {
            store.count(defs, t.table, &t.key, ev, n, false);
        }
    }

    /// A new request on the connection: counted on connection-level
    /// entries (request-level ones count when they are tracked).
    pub(crate) fn new_request(&self, store: &Store, defs: &[StickTable]) {
        for t in self
            .slots
            .iter()
            .flat_map(|s| s.iter())
            .flatten()
            .filter(|t| t.conn_level)
        {
            store.count(defs, t.table, &t.key, Event::HttpReq, 1, true);
        }
    }

    /// Ends request-level tracking (at the end of each request), or all
    /// tracking (`all`, when the connection closes).
    pub(crate) fn end(&mut self, store: &Store, defs: &[StickTable], all: bool) {
        for slot in self.slots.iter_mut().flat_map(|s| s.iter_mut()) {
            if slot.as_ref().is_some_and(|t| all || !t.conn_level) {
                let t = slot.take().expect("checked");
                store.change_existing(defs, t.table, &t.key, |d| {
                    d.conn_cur -= 1;
                    d.touched = false;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StickTable;
    use crate::model::table::{DataType, KeyType, Layout};

    fn defs() -> Vec<StickTable> {
        let layout = Layout {
            stored: DataType::ServerId.bit() | DataType::ConnCur.bit() | DataType::HttpReqCnt.bit(),
            ..Layout::default()
        };
        vec![StickTable {
            name: "t".into(),
            key_type: KeyType::Ip,
            size: 100,
            expire: Duration::from_secs(60),
            layout,
            peers: None,
        }]
    }

    /// A key owned by worker `owner` of 3.
    fn key_owned_by(owner: usize) -> Key {
        (0..=255u8)
            .map(|i| Key::V4([10, 0, 0, i]))
            .find(|k| k.owner(3) == owner)
            .unwrap()
    }

    /// Delivers one worker's flush to the others, as the mesh would.
    fn deliver(from: &Store, all: &[&Store], defs: &[StickTable]) {
        let (folds, commits) = from.flush(defs);
        for (owner, items) in folds.into_iter().enumerate() {
            if !items.is_empty() {
                assert!(all[owner].receive(defs, StickMsg::Fold(items)).is_none());
            }
        }
        if !commits.is_empty() {
            for s in all.iter().filter(|s| s.me != from.me) {
                s.receive(defs, StickMsg::Commit(commits.clone()));
            }
        }
    }

    #[test]
    fn a_change_reaches_every_replica_within_two_flushes() {
        let defs = defs();
        let stores: Vec<Store> = (0..3).map(|i| Store::new(i, 3, &defs, false)).collect();
        let all: Vec<&Store> = stores.iter().collect();
        let key = key_owned_by(1);
        let conn_cur = |s: &Store| s.read(&defs, 0, &key, DataType::ConnCur);
        // Worker 0 (not the owner) counts a connection: visible to itself
        // at once, to nobody else yet.
        stores[0].change(&defs, 0, &key, |d| d.conn_cur += 1);
        assert_eq!(conn_cur(&stores[0]), Some(1));
        assert_eq!(conn_cur(&stores[1]), None);
        // First flush interval: folded into the owner.
        deliver(&stores[0], &all, &defs);
        assert_eq!(conn_cur(&stores[1]), Some(1));
        assert_eq!(conn_cur(&stores[2]), None);
        // Worker 0 still sees its own change (applied locally on fold).
        assert_eq!(conn_cur(&stores[0]), Some(1));
        // Second interval: the owner commits to every replica.
        deliver(&stores[1], &all, &defs);
        for s in &stores {
            assert_eq!(conn_cur(s), Some(1), "worker {}", s.me);
        }
        // Changes from two workers add up at the owner.
        stores[0].change(&defs, 0, &key, |d| d.conn_cur += 1);
        stores[2].change(&defs, 0, &key, |d| d.conn_cur += 1);
        deliver(&stores[0], &all, &defs);
        deliver(&stores[2], &all, &defs);
        deliver(&stores[1], &all, &defs);
        for s in &stores {
            assert_eq!(conn_cur(s), Some(3), "worker {}", s.me);
        }
        assert!(STALENESS_BOUND >= FLUSH_EVERY * 2);
    }

    #[test]
    fn the_owner_decides_a_sticky_key_first_claim_wins() {
        let defs = defs();
        let owner = Store::new(1, 3, &defs, false);
        let key = key_owned_by(1);
        let first = owner.receive(
            &defs,
            StickMsg::Claim {
                table: 0,
                key: key.clone(),
                server: 2,
                ticket: 7,
            },
        );
        assert!(matches!(
            first,
            Some(StickMsg::Claimed {
                ticket: 7,
                server: 2
            })
        ));
        let second = owner.receive(
            &defs,
            StickMsg::Claim {
                table: 0,
                key: key.clone(),
                server: 1,
                ticket: 8,
            },
        );
        assert!(matches!(
            second,
            Some(StickMsg::Claimed {
                ticket: 8,
                server: 2
            })
        ));
        assert_eq!(owner.server_of(&defs, 0, &key), Some(2));
    }
}
