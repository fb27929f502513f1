//! HAProxy's peers protocol (stick-table replication between load
//! balancers): `wire` is the byte-level codec, as HAProxy 2.6 speaks it
//! (protocol version 2.1); `node` runs this node's sessions.
//!
//! Must not touch: sessions; `node` reads and writes the worker's stick
//! tables and broadcasts what it learns over the mesh.
pub(crate) mod node;
pub mod wire;
