//! Plain data types the configuration holds and the runtime reads: what a
//! stick-table entry stores and how it is laid out, key types and counter
//! queries, error pages. No behaviour beyond parsing and arithmetic on
//! them; imports only `base`.

pub(crate) mod errors;
pub(crate) mod table;
