//! A pure codec for HAProxy's peers protocol, version 2.1 as HAProxy 2.6
//! speaks it (facts from HAProxy 2.6's `src/peers.c`, `stick_table-t.h`,
//! `stick_table.c`; `doc/peers-v2.0.txt` is older and incomplete). No I/O:
//! bytes in, values out, and back.
//!
//! A connection starts with a text handshake ([`handshake`]: [`hello`],
//! [`HelloParser`], [`Status`]), then both sides exchange binary messages:
//!
//! ```text
//! class (1 byte) | type (1 byte) [| varint payload length | payload]   (payload iff type >= 128)
//! ```
//!
//! * control (class 0): resync request 0, finished 1, partial 2, confirm 3,
//!   heartbeat 4;
//! * error (class 1): protocol error 0, size limit 1;
//! * stick table (class 10): update 0x80, incremental update 0x81,
//!   definition 0x82, switch 0x83, ack 0x84, timed update 0x85, incremental
//!   timed update 0x86.
//!
//! Integers inside payloads are [`varint`]s, except the update id, the
//! timed update's expiry, integer keys and the ack's update id, which are 4
//! bytes big-endian. [`Decoder`] and [`Encoder`] hold the per-connection
//! state (defined tables, current table, last update ids, dictionary
//! cache); use one of each per connection.
//!
//! Pure: no I/O, no worker, no configuration.

pub mod handshake;
pub mod varint;

mod decode;
mod encode;
mod types;

pub use decode::{
    DEFAULT_MAX_MESSAGE_LEN, DICT_CACHE_SIZE, DecodeError, Decoded, Decoder, MAX_ARRAY_LEN,
    MAX_LENGTH_VARINT_LEN, MAX_TABLES,
};
pub use encode::{EncodeError, Encoder};
pub use handshake::{
    Hello, HelloError, HelloParser, Parse, Status, hello, hello_with_version, parse_status,
};
pub use types::{
    DataType, FreqCtr, Key, KeyType, Message, StdType, TableDef, TypeParams, Update, Value, code,
};

#[cfg(test)]
mod tests;
