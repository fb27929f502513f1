//! Small building blocks that know nothing of corral's configuration or
//! runtime: hashes that must agree across workers, the coarse clock,
//! worker-local wake-ups, units, the TLS ClientHello reader and the names
//! of TLS values. Imports nothing from the crate.

pub mod client_hello;
pub mod clock;
pub mod hash;
pub mod local_sync;
pub mod tchar;
#[cfg(test)]
pub mod test_rng;
pub mod tls_names;
pub mod units;
