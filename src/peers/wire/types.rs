//! The values binary messages carry: key types, keys, stick-table data
//! types (with HAProxy 2.6's numbering), data values, table definitions,
//! updates and the message enum.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Message classes and types (first and second header byte), named as in
/// HAProxy's `doc/peers-v2.0.txt` (`PEER_MSG_CLASS_*`, `PEER_MSG_CTRL_*`,
/// `PEER_MSG_ERR_*`, `PEER_MSG_STKT_*`).
#[allow(
    missing_docs,
    reason = "each constant is the protocol document's name for its code"
)]
pub mod code {
    pub const CLASS_CONTROL: u8 = 0;
    pub const CLASS_ERROR: u8 = 1;
    pub const CLASS_STICK_TABLE: u8 = 10;
    /// Reserved: HAProxy answers a protocol error.
    pub const CLASS_RESERVED: u8 = 255;

    pub const CONTROL_RESYNC_REQUEST: u8 = 0;
    pub const CONTROL_RESYNC_FINISHED: u8 = 1;
    pub const CONTROL_RESYNC_PARTIAL: u8 = 2;
    pub const CONTROL_RESYNC_CONFIRM: u8 = 3;
    pub const CONTROL_HEARTBEAT: u8 = 4;

    pub const ERROR_PROTOCOL: u8 = 0;
    pub const ERROR_SIZE_LIMIT: u8 = 1;

    /// Types with this bit set are followed by a varint length and a payload.
    pub const TYPE_HAS_PAYLOAD: u8 = 0x80;
    pub const STKT_UPDATE: u8 = 0x80;
    pub const STKT_INCREMENTAL_UPDATE: u8 = 0x81;
    pub const STKT_DEFINE: u8 = 0x82;
    pub const STKT_SWITCH: u8 = 0x83;
    pub const STKT_ACK: u8 = 0x84;
    pub const STKT_TIMED_UPDATE: u8 = 0x85;
    pub const STKT_INCREMENTAL_TIMED_UPDATE: u8 = 0x86;
}

/// A table's key type as announced in its definition: the network code
/// (which differs from HAProxy's internal sample types) and the key size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `type integer`: code 2, key size 4; keys travel as 4 bytes big-endian.
    Integer,
    /// `type ip`: code 4, key size 4; 4 raw bytes.
    Ipv4,
    /// `type ipv6`: code 5, key size 16; 16 raw bytes.
    Ipv6,
    /// `type string [len N]`: code 6. `key_size` counts the terminating NUL
    /// HAProxy stores (`len 32`, the default, is 33), so keys hold at most
    /// `key_size - 1` bytes; they travel as varint length + bytes.
    String {
        /// Bytes per key, the NUL included.
        key_size: u32,
    },
    /// `type binary [len N]`: code 7, `key_size` raw bytes (zero-padded).
    Binary {
        /// Bytes per key.
        key_size: u32,
    },
}

#[allow(
    missing_docs,
    reason = "the network codes, as documented on the variants above"
)]
impl KeyType {
    pub const CODE_INTEGER: u64 = 2;
    pub const CODE_IPV4: u64 = 4;
    pub const CODE_IPV6: u64 = 5;
    pub const CODE_STRING: u64 = 6;
    pub const CODE_BINARY: u64 = 7;

    /// The network code sent in table definitions.
    pub fn code(self) -> u64 {
        match self {
            KeyType::Integer => Self::CODE_INTEGER,
            KeyType::Ipv4 => Self::CODE_IPV4,
            KeyType::Ipv6 => Self::CODE_IPV6,
            KeyType::String { .. } => Self::CODE_STRING,
            KeyType::Binary { .. } => Self::CODE_BINARY,
        }
    }

    /// The key size sent in table definitions. HAProxy ignores a definition
    /// whose code or key size differs from its own table's.
    pub fn key_size(self) -> u32 {
        match self {
            KeyType::Integer | KeyType::Ipv4 => 4,
            KeyType::Ipv6 => 16,
            KeyType::String { key_size } | KeyType::Binary { key_size } => key_size,
        }
    }

    /// The key type for a definition's code and key size, if consistent
    /// (fixed-size types must have their size; strings and binaries at
    /// least one byte).
    pub fn from_wire(code: u64, key_size: u64) -> Option<KeyType> {
        let kt = match code {
            Self::CODE_INTEGER => KeyType::Integer,
            Self::CODE_IPV4 => KeyType::Ipv4,
            Self::CODE_IPV6 => KeyType::Ipv6,
            Self::CODE_STRING | Self::CODE_BINARY => {
                let key_size = u32::try_from(key_size).ok().filter(|&k| k > 0)?;
                return Some(if code == Self::CODE_STRING {
                    KeyType::String { key_size }
                } else {
                    KeyType::Binary { key_size }
                });
            }
            _ => return None,
        };
        (u64::from(kt.key_size()) == key_size).then_some(kt)
    }
}

/// A stick-table key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// For [`KeyType::Integer`]: HAProxy 2.6 sends the low 32 bits.
    Integer(u32),
    /// For [`KeyType::Ipv4`].
    Ipv4(Ipv4Addr),
    /// For [`KeyType::Ipv6`].
    Ipv6(Ipv6Addr),
    /// For [`KeyType::String`]: the bytes, without NUL (not necessarily UTF-8).
    String(Vec<u8>),
    /// For [`KeyType::Binary`]: decoded keys are exactly `key_size` bytes;
    /// shorter keys are zero-padded when encoded.
    Binary(Vec<u8>),
}

/// How a data type's value travels ("standard type" in HAProxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdType {
    /// A C `int`, sent as a varint of its sign-extended 64-bit value (so a
    /// negative one takes 10 bytes); the receiver keeps the low 32 bits.
    SInt,
    /// A C `unsigned int`, varint.
    UInt,
    /// An `unsigned long long`, varint.
    ULongLong,
    /// A frequency counter: three varints (age of the current period in ms,
    /// current period count, previous period count).
    Freq,
    /// An entry of a dictionary of strings (server names), sent through a
    /// per-direction cache, see [`Value::Dict`].
    Dict,
}

macro_rules! data_types {
    ($($variant:ident = $id:literal, $name:literal, $std:ident, array: $array:literal, local: $local:literal;)*) => {
        /// Stick-table data types, with HAProxy 2.6's numbers
        /// (`STKTABLE_DT_*` in stick_table-t.h). A table definition's
        /// bitfield has bit `id` set for each stored type, and updates carry
        /// the values in increasing id order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        #[allow(missing_docs, reason = "each variant is HAProxy's data type of that name (see `name`)")]
        pub enum DataType {
            $($variant = $id,)*
        }

        impl DataType {
            /// Every type HAProxy 2.6 knows, in id order.
            pub const ALL: [DataType; 25] = [$(DataType::$variant,)*];

            /// The name in HAProxy's configuration and `show table`.
            pub fn name(self) -> &'static str {
                match self { $(DataType::$variant => $name,)* }
            }

            /// How its values travel.
            pub fn std_type(self) -> StdType {
                match self { $(DataType::$variant => StdType::$std,)* }
            }

            /// An array (gpt/gpc/gpc_rate, 2.5+): the definition gives the
            /// element count, updates carry that many values of the std type.
            pub fn is_array(self) -> bool {
                match self { $(DataType::$variant => $array,)* }
            }

            /// Sent but never applied by a receiving HAProxy (conn_cur).
            pub fn is_local(self) -> bool {
                match self { $(DataType::$variant => $local,)* }
            }
        }
    };
}

data_types! {
    ServerId = 0, "server_id", SInt, array: false, local: false;
    Gpt0 = 1, "gpt0", UInt, array: false, local: false;
    Gpc0 = 2, "gpc0", UInt, array: false, local: false;
    Gpc0Rate = 3, "gpc0_rate", Freq, array: false, local: false;
    ConnCnt = 4, "conn_cnt", UInt, array: false, local: false;
    ConnRate = 5, "conn_rate", Freq, array: false, local: false;
    ConnCur = 6, "conn_cur", UInt, array: false, local: true;
    SessCnt = 7, "sess_cnt", UInt, array: false, local: false;
    SessRate = 8, "sess_rate", Freq, array: false, local: false;
    HttpReqCnt = 9, "http_req_cnt", UInt, array: false, local: false;
    HttpReqRate = 10, "http_req_rate", Freq, array: false, local: false;
    HttpErrCnt = 11, "http_err_cnt", UInt, array: false, local: false;
    HttpErrRate = 12, "http_err_rate", Freq, array: false, local: false;
    BytesInCnt = 13, "bytes_in_cnt", ULongLong, array: false, local: false;
    BytesInRate = 14, "bytes_in_rate", Freq, array: false, local: false;
    BytesOutCnt = 15, "bytes_out_cnt", ULongLong, array: false, local: false;
    BytesOutRate = 16, "bytes_out_rate", Freq, array: false, local: false;
    Gpc1 = 17, "gpc1", UInt, array: false, local: false;
    Gpc1Rate = 18, "gpc1_rate", Freq, array: false, local: false;
    // "server_name" in the configuration is an alias of this one.
    ServerKey = 19, "server_key", Dict, array: false, local: false;
    HttpFailCnt = 20, "http_fail_cnt", UInt, array: false, local: false;
    HttpFailRate = 21, "http_fail_rate", Freq, array: false, local: false;
    Gpt = 22, "gpt", UInt, array: true, local: false;
    Gpc = 23, "gpc", UInt, array: true, local: false;
    GpcRate = 24, "gpc_rate", Freq, array: true, local: false;
}

impl DataType {
    /// The numeric id (bit number in a definition's bitfield).
    pub fn id(self) -> u8 {
        self as u8
    }

    /// Its bit in a definition's bitfield.
    pub fn bit(self) -> u64 {
        1 << self.id()
    }

    /// The type with id `id`, if HAProxy 2.6 has one.
    pub fn from_id(id: u64) -> Option<DataType> {
        usize::try_from(id)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Whether a definition carries parameters for it: arrays (element
    /// count, plus the period for arrays of counters) and frequency
    /// counters (the period).
    pub fn has_params(self) -> bool {
        self.is_array() || self.std_type() == StdType::Freq
    }
}

/// A frequency counter as it travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FreqCtr {
    /// How long ago the current period started, in ms: HAProxy sends
    /// `now_ms - curr_tick` (32-bit wrapping) and the receiver sets
    /// `curr_tick = now_ms - age` (clearing bit 0, its lock bit). A counter
    /// never touched has tick 0, so its age is the sender's clock value,
    /// some large arbitrary number, with both counts 0.
    pub age_ms: u32,
    /// Events in the current period.
    pub curr_ctr: u32,
    /// Events in the previous period.
    pub prev_ctr: u32,
}

/// One data value of an update. The variant must match the data type's
/// [`StdType`] (arrays: [`Value::Array`] of elements of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// For [`StdType::SInt`].
    SInt(i32),
    /// For [`StdType::UInt`].
    UInt(u32),
    /// For [`StdType::ULongLong`].
    ULongLong(u64),
    /// For [`StdType::Freq`].
    Freq(FreqCtr),
    /// A dictionary string, already resolved through the cache (`None`: no
    /// entry, or a cache id the sender never filled, which HAProxy ignores).
    Dict(Option<String>),
    /// The elements of an array type, as many as the definition announces.
    Array(Vec<Value>),
}

impl Value {
    fn matches(&self, std: StdType) -> bool {
        matches!(
            (self, std),
            (Value::SInt(_), StdType::SInt)
                | (Value::UInt(_), StdType::UInt)
                | (Value::ULongLong(_), StdType::ULongLong)
                | (Value::Freq(_), StdType::Freq)
                | (Value::Dict(_), StdType::Dict)
        )
    }

    /// Whether this value has the shape `dt` needs (`nb_elem` elements for
    /// arrays).
    pub fn fits(&self, dt: DataType, nb_elem: u32) -> bool {
        if dt.is_array() {
            match self {
                Value::Array(items) => {
                    items.len() == nb_elem as usize
                        && items.iter().all(|v| v.matches(dt.std_type()))
                }
                _ => false,
            }
        } else {
            self.matches(dt.std_type())
        }
    }
}

/// Parameters a definition carries for one data type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TypeParams {
    /// Arrays: the number of elements (1..=100 in HAProxy 2.6).
    pub nb_elem: Option<u32>,
    /// Frequency counters (plain or arrays): the period in ms.
    pub period_ms: Option<u32>,
}

/// A table definition (0x82): what the sender's table stores, so that the
/// receiver can match it by name and decode its updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDef {
    /// The sender's id for the table; switch and ack messages refer to it.
    /// HAProxy numbers its tables from 1.
    pub id: u32,
    /// The table name shared by the peers (HAProxy: the name of the proxy
    /// holding the stick-table, or of the `table` line in a peers section).
    pub name: String,
    /// Key type and size; a receiver ignores a definition that differs.
    pub key_type: KeyType,
    /// Bit `id` set for each stored [`DataType`] (bits 25..=63 are types
    /// this codec does not know; updates stop being decoded there).
    pub data_types: u64,
    /// The table's entry lifetime in ms. Definitions from before 2.0's
    /// extension lack it (and then any parameters); HAProxy 2.6 always sends
    /// it, and uses its presence only to know that parameters follow.
    pub expire_ms: Option<u32>,
    /// Parameters of the stored types that have some
    /// ([`DataType::has_params`]), by data type id.
    pub params: BTreeMap<u8, TypeParams>,
}

impl TableDef {
    /// A definition storing nothing yet; add types with the `with*` methods.
    pub fn new(id: u32, name: impl Into<String>, key_type: KeyType, expire_ms: u32) -> Self {
        TableDef {
            id,
            name: name.into(),
            key_type,
            data_types: 0,
            expire_ms: Some(expire_ms),
            params: BTreeMap::new(),
        }
    }

    /// Stores a type without parameters (counters, ids, server_key).
    pub fn with(mut self, dt: DataType) -> Self {
        self.data_types |= dt.bit();
        self
    }

    /// Stores a frequency counter with its period.
    pub fn with_period(mut self, dt: DataType, period_ms: u32) -> Self {
        self.data_types |= dt.bit();
        self.params.entry(dt.id()).or_default().period_ms = Some(period_ms);
        self
    }

    /// Stores an array of `nb_elem` elements.
    pub fn with_array(mut self, dt: DataType, nb_elem: u32) -> Self {
        self.data_types |= dt.bit();
        self.params.entry(dt.id()).or_default().nb_elem = Some(nb_elem);
        self
    }

    /// Stores an array of frequency counters.
    pub fn with_array_period(self, dt: DataType, nb_elem: u32, period_ms: u32) -> Self {
        let mut def = self.with_array(dt, nb_elem);
        def.params.entry(dt.id()).or_default().period_ms = Some(period_ms);
        def
    }

    /// Whether the table stores `dt`.
    pub fn has(&self, dt: DataType) -> bool {
        self.data_types & dt.bit() != 0
    }

    /// The known stored types, in the order updates carry them.
    pub fn stored(&self) -> impl Iterator<Item = DataType> + '_ {
        DataType::ALL.into_iter().filter(|dt| self.has(*dt))
    }

    /// Stored type bits this codec cannot decode (ids 25 and up).
    pub fn unknown_types(&self) -> u64 {
        self.data_types & !((1u64 << DataType::ALL.len()) - 1)
    }

    /// The element count of an array type (0 if not announced).
    pub fn nb_elem(&self, dt: DataType) -> u32 {
        self.params
            .get(&dt.id())
            .and_then(|p| p.nb_elem)
            .unwrap_or(0)
    }
}

/// A stick-table entry update (0x80, 0x81, 0x85, 0x86), for the table
/// last defined or switched to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The sender's id of the table it belongs to.
    pub table_id: u32,
    /// The sender's update counter; acks refer to it so a reconnecting
    /// sender knows where to resume.
    pub update_id: u32,
    /// Sent without id (0x81/0x86): the id is the previous one of the same
    /// table plus one. The encoder refuses it when that does not hold.
    pub incremental: bool,
    /// Timed updates (0x85/0x86, sent during a full resync in 2.1): the
    /// entry's remaining lifetime in ms. Otherwise the receiver applies
    /// its own table's expiry.
    pub expire_ms: Option<u32>,
    /// The entry's key.
    pub key: Key,
    /// One value per stored known type, in increasing type id order.
    pub values: Vec<(DataType, Value)>,
    /// Decoding only: stored type bits (ids 25+) whose values this codec
    /// cannot decode. The update's length is known, so the rest of it was
    /// skipped without losing the stream (HAProxy 2.6 does the same).
    pub skipped_types: u64,
}

/// A binary peers message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// 0/0: "send me everything you have" (full resync).
    ResyncRequest,
    /// 0/1: end of a full resync; the sender considered itself up to date.
    ResyncFinished,
    /// 0/2: end of a full resync; the sender was not up to date itself.
    ResyncPartial,
    /// 0/3: acknowledges ResyncFinished/ResyncPartial; back to live updates.
    ResyncConfirm,
    /// 0/4: keepalive (2.1). HAProxy sends one after 3 s without sending
    /// and closes a connection that sent nothing during 5 s.
    Heartbeat,
    /// 1/0: the sender saw a protocol error and closes.
    ProtocolError,
    /// 1/1: a message exceeded the sender's size limit; it closes.
    SizeLimitError,
    /// 10/0x82: table definition; also makes the table current.
    Define(TableDef),
    /// 10/0x83: makes a defined table current (HAProxy 2.6 never sends it:
    /// it repeats the definition instead, but it understands it).
    Switch {
        /// The id from the table's definition.
        table_id: u32,
    },
    /// 10/0x80, 0x81, 0x85, 0x86: see [`Update`].
    Update(Update),
    /// 10/0x84: the receiver committed the updates of one of the sender's
    /// tables up to `update_id` (`table_id` is the id from the table
    /// owner's definition).
    Ack {
        /// The id from the table owner's definition.
        table_id: u32,
        /// The last update committed.
        update_id: u32,
    },
}
