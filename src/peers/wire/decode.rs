//! The stateful decoder of one connection's incoming binary messages.

use std::collections::HashMap;
use std::fmt;

use super::types::code::*;
use super::types::{
    DataType, FreqCtr, Key, KeyType, Message, StdType, TableDef, TypeParams, Update, Value,
};
use super::varint::{VarintError, decode_varint};

/// Default largest payload accepted: HAProxy's default buffer size
/// (`tune.bufsize`, 16 KiB), which is also its own limit. Answer a larger
/// one with [`Message::SizeLimitError`] (see [`DecodeError::reply`]).
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 16 * 1024;
/// The payload length is a varint of at most 5 bytes (HAProxy reads the
/// header into 7 bytes: class, type, length).
pub const MAX_LENGTH_VARINT_LEN: usize = 5;
/// Distinct table ids a peer may define on one connection (bounds memory;
/// HAProxy peers share a handful of tables).
pub const MAX_TABLES: usize = 1024;
/// Largest array element count (HAProxy's `STKTABLE_MAX_DT_ARRAY_SIZE`).
pub const MAX_ARRAY_LEN: u32 = 100;
/// Entries of the dictionary cache of each direction
/// (`PEER_STKT_CACHE_MAX_ENTRIES`); ids on the wire are 1..=128.
pub const DICT_CACHE_SIZE: usize = 128;

/// What [`Decoder::decode`] found at the start of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The message has not fully arrived: call again with more bytes.
    Incomplete,
    /// A message, taking the first `consumed` bytes of the buffer.
    Message {
        /// The message.
        msg: Message,
        /// How many bytes of the buffer it took.
        consumed: usize,
    },
}

/// Malformed input. The connection cannot go on: send [`DecodeError::reply`]
/// and close (as HAProxy does).
#[allow(
    missing_docs,
    reason = "the fields are what the variant names; `Display` words each case"
)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Class 255 (reserved).
    ReservedClass,
    UnknownClass(u8),
    /// A type the class does not have (HAProxy 2.6 skips those; this codec
    /// speaks exactly 2.1 and rejects them).
    UnknownType {
        class: u8,
        kind: u8,
    },
    /// The payload length varint is longer than 5 bytes.
    BadLength,
    /// The payload is longer than the decoder's limit.
    TooLarge {
        len: u64,
        max: usize,
    },
    /// The payload ends inside `field`.
    Truncated {
        field: &'static str,
    },
    /// `field` is a varint longer than 10 bytes or beyond `u64`.
    BadVarint {
        field: &'static str,
    },
    /// `field` does not fit its type (table ids and expiries are 32-bit).
    OutOfRange {
        field: &'static str,
        value: u64,
    },
    EmptyTableName,
    NotUtf8 {
        field: &'static str,
    },
    /// Unknown key type code, or a key size that does not fit the type.
    BadKeyType {
        code: u64,
        key_size: u64,
    },
    /// A definition's parameters name another type than the next stored
    /// one that takes parameters.
    ParamMismatch {
        expected: DataType,
        found: u64,
    },
    /// An array type in a definition without parameters.
    MissingParams(DataType),
    /// Array element count 0 or above [`MAX_ARRAY_LEN`].
    BadArrayLen {
        data_type: DataType,
        nb_elem: u64,
    },
    /// More than [`MAX_TABLES`] table ids.
    TooManyTables,
    /// An update before any definition or switch.
    NoCurrentTable,
    /// A switch to an id no definition announced.
    UnknownTable(u32),
    /// A string key longer than the table's key size allows.
    KeyTooLong {
        len: u64,
        max: u32,
    },
    /// A dictionary cache id 0 or above [`DICT_CACHE_SIZE`].
    BadDictId(u64),
    /// Bytes left after the last field of `field`.
    TrailingBytes {
        field: &'static str,
        extra: usize,
    },
}

impl DecodeError {
    /// The error message to send before closing: size limit for
    /// [`DecodeError::TooLarge`], protocol error otherwise.
    pub fn reply(&self) -> Message {
        match self {
            DecodeError::TooLarge { .. } => Message::SizeLimitError,
            _ => Message::ProtocolError,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError::*;
        match self {
            ReservedClass => write!(f, "reserved message class 255"),
            UnknownClass(c) => write!(f, "unknown message class {c}"),
            UnknownType { class, kind } => {
                write!(f, "unknown message type {kind} in class {class}")
            }
            BadLength => write!(f, "message length encoded on more than 5 bytes"),
            TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the {max}-byte limit")
            }
            Truncated { field } => write!(f, "message ends inside {field}"),
            BadVarint { field } => write!(f, "{field}: varint too long or beyond 64 bits"),
            OutOfRange { field, value } => write!(f, "{field} {value} out of range"),
            EmptyTableName => write!(f, "table definition with an empty name"),
            NotUtf8 { field } => write!(f, "{field} is not UTF-8"),
            BadKeyType { code, key_size } => write!(f, "key type {code} with key size {key_size}"),
            ParamMismatch { expected, found } => {
                write!(
                    f,
                    "parameters of data type {found} where {} was expected",
                    expected.name()
                )
            }
            MissingParams(dt) => write!(f, "no parameters for array type {}", dt.name()),
            BadArrayLen { data_type, nb_elem } => {
                write!(f, "array type {} with {nb_elem} elements", data_type.name())
            }
            TooManyTables => write!(f, "more than {MAX_TABLES} tables defined"),
            NoCurrentTable => write!(f, "update before any table definition or switch"),
            UnknownTable(id) => write!(f, "switch to undefined table {id}"),
            KeyTooLong { len, max } => {
                write!(f, "string key of {len} bytes, at most {max} allowed")
            }
            BadDictId(id) => write!(f, "dictionary cache id {id} out of 1..={DICT_CACHE_SIZE}"),
            TrailingBytes { field, extra } => write!(f, "{extra} unexpected bytes after {field}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads fields from one message's payload.
pub(super) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        match decode_varint(&self.buf[self.pos..]) {
            Ok((v, used)) => {
                self.pos += used;
                Ok(v)
            }
            Err(VarintError::Truncated) => Err(DecodeError::Truncated { field }),
            Err(_) => Err(DecodeError::BadVarint { field }),
        }
    }

    fn varint_u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let v = self.varint(field)?;
        u32::try_from(v).map_err(|_| DecodeError::OutOfRange { field, value: v })
    }

    fn bytes(&mut self, n: u64, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() as u64 {
            return Err(DecodeError::Truncated { field });
        }
        let out = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(out)
    }

    fn u32_be(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.bytes(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn utf8(&mut self, n: u64, field: &'static str) -> Result<String, DecodeError> {
        let b = self.bytes(n, field)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::NotUtf8 { field })
    }
}

/// A table the remote defined on this connection.
#[derive(Clone, Debug)]
struct RemoteTable {
    def: TableDef,
    /// Last update id seen for it (incremental updates add one). Starts at
    /// 0, like HAProxy's per-connection cursor.
    last_update_id: u32,
}

/// Decodes one connection's incoming binary messages (after the
/// handshake). It remembers the remote's table definitions by id, the
/// current table (updates belong to it) and the dictionary cache.
///
/// Integers wider than their field are truncated to the low bits, as
/// HAProxy does (a negative `server_id` travels sign-extended to 64 bits).
/// After an error the decoder is unchanged, but the stream cannot be
/// resynchronised: reply and close.
#[derive(Clone, Debug)]
pub struct Decoder {
    max_len: usize,
    tables: HashMap<u32, RemoteTable>,
    current: Option<u32>,
    dict: Vec<Option<String>>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// Payloads up to [`DEFAULT_MAX_MESSAGE_LEN`].
    pub fn new() -> Self {
        Self::with_max_message_len(DEFAULT_MAX_MESSAGE_LEN)
    }

    /// Payloads up to `max_len` bytes.
    pub fn with_max_message_len(max_len: usize) -> Self {
        Decoder {
            max_len,
            tables: HashMap::new(),
            current: None,
            dict: vec![None; DICT_CACHE_SIZE],
        }
    }

    /// The remote's definition of table `id`.
    pub fn table(&self, id: u32) -> Option<&TableDef> {
        self.tables.get(&id).map(|t| &t.def)
    }

    /// The table updates currently belong to.
    pub fn current_table(&self) -> Option<&TableDef> {
        self.current.and_then(|id| self.table(id))
    }

    /// Decodes the message at the start of `buf`. Never reads past the
    /// message: the caller drops `consumed` bytes and calls again.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Decoded, DecodeError> {
        let [class, kind, ..] = *buf else {
            return Ok(Decoded::Incomplete);
        };
        let simple = |msg| Ok(Decoded::Message { msg, consumed: 2 });
        let unknown = Err(DecodeError::UnknownType { class, kind });
        match class {
            CLASS_CONTROL => {
                return match kind {
                    CONTROL_RESYNC_REQUEST => simple(Message::ResyncRequest),
                    CONTROL_RESYNC_FINISHED => simple(Message::ResyncFinished),
                    CONTROL_RESYNC_PARTIAL => simple(Message::ResyncPartial),
                    CONTROL_RESYNC_CONFIRM => simple(Message::ResyncConfirm),
                    CONTROL_HEARTBEAT => simple(Message::Heartbeat),
                    _ => unknown,
                };
            }
            CLASS_ERROR => {
                return match kind {
                    ERROR_PROTOCOL => simple(Message::ProtocolError),
                    ERROR_SIZE_LIMIT => simple(Message::SizeLimitError),
                    _ => unknown,
                };
            }
            CLASS_STICK_TABLE => {
                if !(STKT_UPDATE..=STKT_INCREMENTAL_TIMED_UPDATE).contains(&kind) {
                    return unknown;
                }
            }
            CLASS_RESERVED => return Err(DecodeError::ReservedClass),
            _ => return Err(DecodeError::UnknownClass(class)),
        }

        let (len, used) = match decode_varint(&buf[2..]) {
            Ok((_, used)) if used > MAX_LENGTH_VARINT_LEN => return Err(DecodeError::BadLength),
            Ok(v) => v,
            Err(VarintError::Truncated) if buf.len() - 2 < MAX_LENGTH_VARINT_LEN => {
                return Ok(Decoded::Incomplete);
            }
            Err(_) => return Err(DecodeError::BadLength),
        };
        if len > self.max_len as u64 {
            return Err(DecodeError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        let start = 2 + used;
        let end = start + len as usize;
        let Some(payload) = buf.get(start..end) else {
            return Ok(Decoded::Incomplete);
        };
        let msg = match kind {
            STKT_DEFINE => Message::Define(self.define(payload)?),
            STKT_SWITCH => {
                let table_id = Cursor::new(payload).varint_u32("switch table id")?;
                if !self.tables.contains_key(&table_id) {
                    return Err(DecodeError::UnknownTable(table_id));
                }
                self.current = Some(table_id);
                Message::Switch { table_id }
            }
            STKT_ACK => {
                let mut c = Cursor::new(payload);
                let table_id = c.varint_u32("ack table id")?;
                let update_id = c.u32_be("ack update id")?;
                Message::Ack {
                    table_id,
                    update_id,
                }
            }
            _ => Message::Update(self.update(kind, payload)?),
        };
        Ok(Decoded::Message { msg, consumed: end })
    }

    fn define(&mut self, payload: &[u8]) -> Result<TableDef, DecodeError> {
        let def = parse_define(payload)?;
        if !self.tables.contains_key(&def.id) && self.tables.len() >= MAX_TABLES {
            return Err(DecodeError::TooManyTables);
        }
        let last_update_id = self.tables.get(&def.id).map_or(0, |t| t.last_update_id);
        self.current = Some(def.id);
        self.tables.insert(
            def.id,
            RemoteTable {
                def: def.clone(),
                last_update_id,
            },
        );
        Ok(def)
    }

    fn update(&mut self, kind: u8, payload: &[u8]) -> Result<Update, DecodeError> {
        let table_id = self.current.ok_or(DecodeError::NoCurrentTable)?;
        let table = &self.tables[&table_id];
        let def = &table.def;
        let incremental = matches!(
            kind,
            STKT_INCREMENTAL_UPDATE | STKT_INCREMENTAL_TIMED_UPDATE
        );
        let timed = matches!(kind, STKT_TIMED_UPDATE | STKT_INCREMENTAL_TIMED_UPDATE);

        let mut c = Cursor::new(payload);
        let update_id = if incremental {
            table.last_update_id.wrapping_add(1)
        } else {
            c.u32_be("update id")?
        };
        let expire_ms = if timed {
            Some(c.u32_be("update expiry")?)
        } else {
            None
        };
        let key = parse_key(&mut c, def.key_type)?;

        // Dictionary entries this update defines, applied once it is whole.
        let mut new_dict: Vec<(usize, String)> = Vec::new();
        let mut values = Vec::new();
        let mut skipped_types = 0;
        for id in 0..64u8 {
            if def.data_types & (1u64 << id) == 0 {
                continue;
            }
            let Some(dt) = DataType::from_id(u64::from(id)) else {
                // Unknown types are all above the known ones: nothing after
                // this can be decoded, and nothing before was lost.
                skipped_types = def.data_types & !((1u64 << id) - 1);
                break;
            };
            let value = if dt.is_array() {
                let n = def.nb_elem(dt);
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(&mut c, dt.std_type(), &mut new_dict)?);
                }
                Value::Array(items)
            } else {
                self.value(&mut c, dt.std_type(), &mut new_dict)?
            };
            values.push((dt, value));
        }
        if skipped_types == 0 && !c.is_empty() {
            return Err(DecodeError::TrailingBytes {
                field: "update",
                extra: c.remaining(),
            });
        }

        for (slot, s) in new_dict {
            self.dict[slot] = Some(s);
        }
        if let Some(t) = self.tables.get_mut(&table_id) {
            t.last_update_id = update_id;
        }
        Ok(Update {
            table_id,
            update_id,
            incremental,
            expire_ms,
            key,
            values,
            skipped_types,
        })
    }

    fn value(
        &self,
        c: &mut Cursor<'_>,
        std: StdType,
        new_dict: &mut Vec<(usize, String)>,
    ) -> Result<Value, DecodeError> {
        Ok(match std {
            StdType::SInt => Value::SInt(c.varint("signed value")? as u32 as i32),
            StdType::UInt => Value::UInt(c.varint("unsigned value")? as u32),
            StdType::ULongLong => Value::ULongLong(c.varint("64-bit value")?),
            StdType::Freq => Value::Freq(FreqCtr {
                age_ms: c.varint("frequency counter age")? as u32,
                curr_ctr: c.varint("frequency counter current")? as u32,
                prev_ctr: c.varint("frequency counter previous")? as u32,
            }),
            StdType::Dict => Value::Dict(self.dict_value(c, new_dict)?),
        })
    }

    /// `varint len` then, in those `len` bytes, `varint id` (1-based) and,
    /// when the sender fills that cache entry, `varint size` + the string.
    /// Length 0: no value.
    fn dict_value(
        &self,
        c: &mut Cursor<'_>,
        new_dict: &mut Vec<(usize, String)>,
    ) -> Result<Option<String>, DecodeError> {
        const FIELD: &str = "dictionary entry";
        let len = c.varint(FIELD)?;
        if len == 0 {
            return Ok(None);
        }
        let mut entry = Cursor::new(c.bytes(len, FIELD)?);
        let id = entry.varint("dictionary id")?;
        if id == 0 || id > DICT_CACHE_SIZE as u64 {
            return Err(DecodeError::BadDictId(id));
        }
        let slot = id as usize - 1;
        if entry.is_empty() {
            let pending = new_dict.iter().rev().find(|(s, _)| *s == slot);
            return Ok(pending
                .map(|(_, v)| v.clone())
                .or_else(|| self.dict[slot].clone()));
        }
        let size = entry.varint("dictionary value length")?;
        let value = entry.utf8(size, "dictionary value")?;
        if !entry.is_empty() {
            return Err(DecodeError::TrailingBytes {
                field: FIELD,
                extra: entry.remaining(),
            });
        }
        new_dict.push((slot, value.clone()));
        Ok(Some(value))
    }
}

fn parse_key(c: &mut Cursor<'_>, key_type: KeyType) -> Result<Key, DecodeError> {
    Ok(match key_type {
        KeyType::Integer => Key::Integer(c.u32_be("integer key")?),
        KeyType::Ipv4 => {
            let b = c.bytes(4, "ipv4 key")?;
            Key::Ipv4([b[0], b[1], b[2], b[3]].into())
        }
        KeyType::Ipv6 => {
            let b: [u8; 16] = c.bytes(16, "ipv6 key")?.try_into().unwrap_or([0; 16]);
            Key::Ipv6(b.into())
        }
        KeyType::String { key_size } => {
            let len = c.varint("string key length")?;
            let max = key_size.saturating_sub(1);
            if len > u64::from(max) {
                return Err(DecodeError::KeyTooLong { len, max });
            }
            Key::String(c.bytes(len, "string key")?.to_vec())
        }
        KeyType::Binary { key_size } => {
            Key::Binary(c.bytes(u64::from(key_size), "binary key")?.to_vec())
        }
    })
}

/// The definition payload: id, name (varint length + bytes), key type code,
/// key size, data types bitfield, then (2.x) expiry in ms and, for each
/// stored type taking parameters in id order: its id again, the element
/// count for arrays, the period for frequency counters.
fn parse_define(payload: &[u8]) -> Result<TableDef, DecodeError> {
    let mut c = Cursor::new(payload);
    let id = c.varint_u32("table id")?;
    let name_len = c.varint("table name length")?;
    if name_len == 0 {
        return Err(DecodeError::EmptyTableName);
    }
    let name = c.utf8(name_len, "table name")?;
    let code = c.varint("key type")?;
    let key_size = c.varint("key size")?;
    let key_type =
        KeyType::from_wire(code, key_size).ok_or(DecodeError::BadKeyType { code, key_size })?;
    let data_types = c.varint("data types")?;
    let mut def = TableDef {
        id,
        name,
        key_type,
        data_types,
        expire_ms: None,
        params: Default::default(),
    };
    if c.is_empty() {
        // An old-style definition: fine unless an array needs its size.
        if let Some(dt) = def.stored().find(|dt| dt.is_array()) {
            return Err(DecodeError::MissingParams(dt));
        }
        return Ok(def);
    }
    def.expire_ms = Some(c.varint_u32("table expiry")?);
    let with_params: Vec<DataType> = def.stored().filter(|dt| dt.has_params()).collect();
    for dt in with_params {
        let found = c.varint("data type parameters")?;
        if found != u64::from(dt.id()) {
            return Err(DecodeError::ParamMismatch {
                expected: dt,
                found,
            });
        }
        let mut p = TypeParams::default();
        if dt.is_array() {
            let n = c.varint("array size")?;
            if n == 0 || n > u64::from(MAX_ARRAY_LEN) {
                return Err(DecodeError::BadArrayLen {
                    data_type: dt,
                    nb_elem: n,
                });
            }
            p.nb_elem = Some(n as u32);
        }
        if dt.std_type() == StdType::Freq {
            p.period_ms = Some(c.varint_u32("counter period")?);
        }
        def.params.insert(dt.id(), p);
    }
    // Anything after belongs to types this codec does not know (HAProxy
    // 2.6 ignores it too).
    Ok(def)
}
