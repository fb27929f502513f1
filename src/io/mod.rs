//! A connection's bytes: the stream type (plain TCP or TLS), reads and
//! writes bounded by deadlines, the per-worker buffer pool, copying both
//! ways between two streams, and the io_uring ring set-up. Knows nothing
//! of HTTP, rules or backends.

pub(crate) mod bufpool;
pub(crate) mod conn;
pub(crate) mod relay;
pub(crate) mod ring_setup;
pub(crate) mod stream;
