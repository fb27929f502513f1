//! Backends as one worker sees them (servers' health and administrative
//! state, connection counts, queues, idle server connections) and the
//! algorithms that pick a server. Imports nothing from the data path,
//! the worker or the process.

pub(crate) mod backend;
pub(crate) mod pick;
