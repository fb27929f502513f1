//! A connection's bytes: the stream type (plain TCP or TLS), reads and
//! writes bounded by deadlines, the per-worker buffer pool, copying both
//! ways between two streams, and the io_uring ring set-up. Knows nothing
//! of HTTP, rules or backends.

pub mod bufpool;
pub mod conn;
pub mod relay;
pub mod ring_setup;
pub mod stream;
