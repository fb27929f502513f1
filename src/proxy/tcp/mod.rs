//! TCP (layer 4) mode: a connection's session from first byte to log line,
//! and the `tcp-request` rules run on it.

pub(crate) mod rules;
pub(crate) mod session;
