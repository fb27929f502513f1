//! Messages that cross cores. Workers share no state; what one worker
//! learns that others need (a server's health) travels as a message over
//! glommio's channel mesh and is applied by each receiver to its own copy.
//!
//! A message can ask to be acknowledged: the sender then knows when every
//! other worker has applied it (a health change is only logged once it is
//! true on every worker).

/// A message from one worker to another.
#[derive(Debug, Clone)]
pub enum MeshMsg {
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
        snapshot: Box<crate::control::stats::Snapshot>,
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
        snapshot: Box<crate::control::runtime_api::snapshot::WorkerSnapshot>,
    },
}

/// Each channel of the mesh holds this many messages. Health changes are
/// rare; stick-table changes travel in one batch per flush interval, and
/// claims (one per new sticky client on a non-owner) are small; the size
/// absorbs a burst without a sender waiting on a slow peer for long.
pub const CHANNEL_CAPACITY: usize = 1024;
