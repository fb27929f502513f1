//! The data path, in the order a connection takes it: `accept` (listening
//! sockets, steering, the accept loop), then `tcp` (layer-4 sessions and
//! `tcp-request` rules) or `http` (HTTP/1.1 sessions, heads, bodies, rules,
//! the stats applet hand-off), then `upstream` (persistence, picking and
//! connecting to a server, the idle pool). Calls down only.

pub(crate) mod accept;
pub(crate) mod http;
pub(crate) mod tcp;
pub(crate) mod upstream;
