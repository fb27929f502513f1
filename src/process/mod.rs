//! Processes: the master (keeps the listening sockets, starts, reloads and
//! stops generations), a generation (one process of workers serving one
//! configuration), the channel between them and its messages, and the
//! start-up checks. The top of the runtime: it wires the layers below
//! together.

pub(crate) mod channel;
pub(crate) mod generation;
pub(crate) mod groups;
pub(crate) mod master;
pub(crate) mod message;
pub(crate) mod startup;
