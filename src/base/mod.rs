//! Small building blocks that know nothing of corral's configuration or
//! runtime: hashes that must agree across workers, the coarse clock,
//! worker-local wake-ups, units, the TLS ClientHello reader and the names
//! of TLS values. Imports nothing from the crate.

pub(crate) mod client_hello;
pub(crate) mod clock;
pub(crate) mod hash;
pub(crate) mod local_sync;
pub(crate) mod tchar;
#[cfg(test)]
pub(crate) mod test_rng;
pub(crate) mod tls_names;
pub(crate) mod units;
