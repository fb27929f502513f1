//! Accepting connections: the per-worker listening sockets, the kernel's
//! steering of clients to workers (`global.steer: source`) and the accept
//! loop that hands each connection to a TCP or an HTTP session.

pub(crate) mod listener;
pub(crate) mod steer;
