//! What the data path writes and operators read: per-worker traffic
//! counters, the open-connection slots behind `show sess`, connection logs
//! and operational messages with their sinks. Written by the layers above,
//! read by the control plane; imports only the configuration and below.

pub(crate) mod counters;
#[macro_use]
pub(crate) mod log;
pub(crate) mod sessions;
pub(crate) mod snapshot;
pub(crate) mod termination;
pub(crate) mod worker_snapshot;
