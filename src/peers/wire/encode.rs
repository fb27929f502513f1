//! The stateful encoder of one connection's outgoing binary messages, the
//! mirror of [`Decoder`](super::Decoder).

use std::collections::HashMap;
use std::fmt;

use super::decode::{DEFAULT_MAX_MESSAGE_LEN, DICT_CACHE_SIZE, MAX_ARRAY_LEN};
use super::types::code::*;
use super::types::{DataType, Key, KeyType, Message, StdType, TableDef, Update, Value};
use super::varint::encode_varint;

/// A message the encoder refuses; nothing was written and the encoder is
/// unchanged.
#[allow(
    missing_docs,
    reason = "the fields are what the variant names; `Display` words each case"
)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    EmptyTableName,
    /// A definition storing types this codec does not know (ids 25+): it
    /// could not encode their values.
    UnknownDataTypes(u64),
    /// A definition without the parameters a stored type needs (array
    /// element count, counter period), or an array without expiry (the
    /// parameters follow the expiry).
    MissingParams(DataType),
    BadArrayLen {
        data_type: DataType,
        nb_elem: u32,
    },
    /// A switch to a table this encoder never defined.
    UnknownTable(u32),
    /// An update before any definition or switch.
    NoCurrentTable,
    /// An update for another table than the current one.
    NotCurrentTable {
        current: u32,
        update: u32,
    },
    /// The key variant does not match the table's key type.
    KeyMismatch,
    /// A string or binary key longer than the table allows.
    KeyTooLong {
        len: usize,
        max: u32,
    },
    /// A stored type without value in the update.
    MissingValue(DataType),
    /// A value for a type the table does not store, or out of order.
    UnexpectedValue(DataType),
    /// A value whose variant (or array length) does not fit its type.
    ValueMismatch(DataType),
    /// `incremental` set but the id is not the previous one of this table
    /// plus one (`expected` is `None` before the first update).
    NotIncremental {
        expected: Option<u32>,
        got: u32,
    },
    /// The payload exceeds the encoder's limit (the peer would answer a
    /// size-limit error).
    TooLarge {
        len: usize,
        max: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EncodeError::*;
        match self {
            EmptyTableName => write!(f, "table definition with an empty name"),
            UnknownDataTypes(bits) => write!(f, "unknown data types {bits:#x}"),
            MissingParams(dt) => write!(f, "no parameters for data type {}", dt.name()),
            BadArrayLen { data_type, nb_elem } => {
                write!(f, "array type {} with {nb_elem} elements", data_type.name())
            }
            UnknownTable(id) => write!(f, "switch to table {id}, never defined"),
            NoCurrentTable => write!(f, "update before any table definition or switch"),
            NotCurrentTable { current, update } => {
                write!(
                    f,
                    "update for table {update} while table {current} is current"
                )
            }
            KeyMismatch => write!(f, "key does not match the table's key type"),
            KeyTooLong { len, max } => write!(f, "key of {len} bytes, at most {max} allowed"),
            MissingValue(dt) => write!(f, "no value for stored type {}", dt.name()),
            UnexpectedValue(dt) => write!(f, "unexpected or misplaced value for {}", dt.name()),
            ValueMismatch(dt) => write!(f, "value does not fit type {}", dt.name()),
            NotIncremental { expected, got } => {
                write!(f, "incremental update {got}, next id is {expected:?}")
            }
            TooLarge { len, max } => write!(f, "payload of {len} bytes exceeds {max}"),
        }
    }
}

impl std::error::Error for EncodeError {}

#[derive(Clone, Debug)]
struct SentTable {
    def: TableDef,
    /// Last update id sent for it, for incremental updates.
    last_update_id: Option<u32>,
}

/// Encodes one connection's outgoing binary messages. It remembers the
/// definitions sent (updates are encoded with the current one), the last
/// update id per table and the dictionary cache (the peer's decoder keeps
/// the same cache, so a string is sent once and then referred to by id).
#[derive(Clone, Debug)]
pub struct Encoder {
    max_len: usize,
    tables: HashMap<u32, SentTable>,
    current: Option<u32>,
    dict: Vec<Option<String>>,
    /// Next dictionary slot to fill (round robin, like HAProxy).
    dict_next: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// Payloads up to [`DEFAULT_MAX_MESSAGE_LEN`].
    pub fn new() -> Self {
        Self::with_max_message_len(DEFAULT_MAX_MESSAGE_LEN)
    }

    /// Payloads up to `max_len` bytes.
    pub fn with_max_message_len(max_len: usize) -> Self {
        Encoder {
            max_len,
            tables: HashMap::new(),
            current: None,
            dict: vec![None; DICT_CACHE_SIZE],
            dict_next: 0,
        }
    }

    /// The table updates are currently encoded for.
    pub fn current_table(&self) -> Option<&TableDef> {
        self.current
            .and_then(|id| self.tables.get(&id))
            .map(|t| &t.def)
    }

    /// Whether an update of `table_id` with `update_id` may be sent as
    /// incremental (it follows the last one sent for that table).
    pub fn can_be_incremental(&self, table_id: u32, update_id: u32) -> bool {
        self.tables
            .get(&table_id)
            .and_then(|t| t.last_update_id)
            .is_some_and(|last| last.wrapping_add(1) == update_id)
    }

    /// Appends `msg` to `out`.
    pub fn encode(&mut self, msg: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let simple = |out: &mut Vec<u8>, class, kind| {
            out.extend_from_slice(&[class, kind]);
            Ok(())
        };
        match msg {
            Message::ResyncRequest => simple(out, CLASS_CONTROL, CONTROL_RESYNC_REQUEST),
            Message::ResyncFinished => simple(out, CLASS_CONTROL, CONTROL_RESYNC_FINISHED),
            Message::ResyncPartial => simple(out, CLASS_CONTROL, CONTROL_RESYNC_PARTIAL),
            Message::ResyncConfirm => simple(out, CLASS_CONTROL, CONTROL_RESYNC_CONFIRM),
            Message::Heartbeat => simple(out, CLASS_CONTROL, CONTROL_HEARTBEAT),
            Message::ProtocolError => simple(out, CLASS_ERROR, ERROR_PROTOCOL),
            Message::SizeLimitError => simple(out, CLASS_ERROR, ERROR_SIZE_LIMIT),
            Message::Define(def) => {
                let payload = define_payload(def)?;
                self.frame(STKT_DEFINE, &payload, out)?;
                let last_update_id = self
                    .tables
                    .get(&def.id)
                    .filter(|t| t.def.name == def.name)
                    .and_then(|t| t.last_update_id);
                self.tables.insert(
                    def.id,
                    SentTable {
                        def: def.clone(),
                        last_update_id,
                    },
                );
                self.current = Some(def.id);
                Ok(())
            }
            Message::Switch { table_id } => {
                if !self.tables.contains_key(table_id) {
                    return Err(EncodeError::UnknownTable(*table_id));
                }
                let mut payload = Vec::new();
                encode_varint(u64::from(*table_id), &mut payload);
                self.frame(STKT_SWITCH, &payload, out)?;
                self.current = Some(*table_id);
                Ok(())
            }
            Message::Ack {
                table_id,
                update_id,
            } => {
                let mut payload = Vec::new();
                encode_varint(u64::from(*table_id), &mut payload);
                payload.extend_from_slice(&update_id.to_be_bytes());
                self.frame(STKT_ACK, &payload, out)
            }
            Message::Update(u) => self.update(u, out),
        }
    }

    /// [`Encoder::encode`] into a new vector.
    pub fn encode_to_vec(&mut self, msg: &Message) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(msg, &mut out)?;
        Ok(out)
    }

    fn frame(&self, kind: u8, payload: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if payload.len() > self.max_len {
            return Err(EncodeError::TooLarge {
                len: payload.len(),
                max: self.max_len,
            });
        }
        out.extend_from_slice(&[CLASS_STICK_TABLE, kind]);
        encode_varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
        Ok(())
    }

    fn update(&mut self, u: &Update, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let current = self.current.ok_or(EncodeError::NoCurrentTable)?;
        if u.table_id != current {
            return Err(EncodeError::NotCurrentTable {
                current,
                update: u.table_id,
            });
        }
        let table = &self.tables[&current];
        if u.incremental && !self.can_be_incremental(current, u.update_id) {
            return Err(EncodeError::NotIncremental {
                expected: table.last_update_id.map(|l| l.wrapping_add(1)),
                got: u.update_id,
            });
        }
        let def = &table.def;
        let mut p = Vec::new();
        if !u.incremental {
            p.extend_from_slice(&u.update_id.to_be_bytes());
        }
        if let Some(expire) = u.expire_ms {
            p.extend_from_slice(&expire.to_be_bytes());
        }
        encode_key(&u.key, def.key_type, &mut p)?;

        // Dictionary slots this update fills, applied once it is whole.
        let mut dict = DictTx {
            cache: &self.dict,
            next: self.dict_next,
            new: Vec::new(),
        };
        let mut values = u.values.iter();
        for dt in def.stored() {
            let Some((vdt, v)) = values.next() else {
                return Err(EncodeError::MissingValue(dt));
            };
            if *vdt != dt {
                return Err(if *vdt < dt || !def.has(*vdt) {
                    EncodeError::UnexpectedValue(*vdt)
                } else {
                    EncodeError::MissingValue(dt)
                });
            }
            if !v.fits(dt, def.nb_elem(dt)) {
                return Err(EncodeError::ValueMismatch(dt));
            }
            match v {
                Value::Array(items) => {
                    for item in items {
                        encode_value(item, &mut dict, &mut p);
                    }
                }
                v => encode_value(v, &mut dict, &mut p),
            }
        }
        if let Some((vdt, _)) = values.next() {
            return Err(EncodeError::UnexpectedValue(*vdt));
        }

        let kind = match (u.incremental, u.expire_ms.is_some()) {
            (false, false) => STKT_UPDATE,
            (true, false) => STKT_INCREMENTAL_UPDATE,
            (false, true) => STKT_TIMED_UPDATE,
            (true, true) => STKT_INCREMENTAL_TIMED_UPDATE,
        };
        let (new, next) = (dict.new, dict.next);
        self.frame(kind, &p, out)?;
        for (slot, s) in new {
            self.dict[slot] = Some(s);
        }
        self.dict_next = next;
        if let Some(t) = self.tables.get_mut(&current) {
            t.last_update_id = Some(u.update_id);
        }
        Ok(())
    }
}

/// The dictionary cache during one update: the committed slots plus the
/// ones this update fills.
struct DictTx<'a> {
    cache: &'a [Option<String>],
    next: usize,
    new: Vec<(usize, String)>,
}

impl DictTx<'_> {
    /// The slot holding `s`, and whether it must be sent (first use).
    fn slot(&mut self, s: &str) -> (usize, bool) {
        if let Some((slot, _)) = self.new.iter().rev().find(|(_, v)| v == s) {
            return (*slot, false);
        }
        let overwritten = |slot: usize| self.new.iter().any(|(n, _)| *n == slot);
        if let Some(slot) = self
            .cache
            .iter()
            .position(|v| v.as_deref() == Some(s))
            .filter(|&slot| !overwritten(slot))
        {
            return (slot, false);
        }
        let slot = self.next;
        self.next = (self.next + 1) % DICT_CACHE_SIZE;
        self.new.push((slot, s.to_owned()));
        (slot, true)
    }
}

fn encode_value(v: &Value, dict: &mut DictTx<'_>, out: &mut Vec<u8>) {
    match v {
        // Sign-extended, as C converts an int to uint64_t.
        Value::SInt(i) => encode_varint(i64::from(*i) as u64, out),
        Value::UInt(u) => encode_varint(u64::from(*u), out),
        Value::ULongLong(u) => encode_varint(*u, out),
        Value::Freq(f) => {
            encode_varint(u64::from(f.age_ms), out);
            encode_varint(u64::from(f.curr_ctr), out);
            encode_varint(u64::from(f.prev_ctr), out);
        }
        Value::Dict(None) => encode_varint(0, out),
        Value::Dict(Some(s)) => {
            let (slot, send_value) = dict.slot(s);
            let mut entry = Vec::new();
            encode_varint(slot as u64 + 1, &mut entry);
            if send_value {
                encode_varint(s.len() as u64, &mut entry);
                entry.extend_from_slice(s.as_bytes());
            }
            encode_varint(entry.len() as u64, out);
            out.extend_from_slice(&entry);
        }
        Value::Array(items) => {
            for item in items {
                encode_value(item, dict, out);
            }
        }
    }
}

fn encode_key(key: &Key, key_type: KeyType, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match (key, key_type) {
        (Key::Integer(i), KeyType::Integer) => out.extend_from_slice(&i.to_be_bytes()),
        (Key::Ipv4(a), KeyType::Ipv4) => out.extend_from_slice(&a.octets()),
        (Key::Ipv6(a), KeyType::Ipv6) => out.extend_from_slice(&a.octets()),
        (Key::String(s), KeyType::String { key_size }) => {
            let max = key_size.saturating_sub(1);
            if s.len() > max as usize {
                return Err(EncodeError::KeyTooLong { len: s.len(), max });
            }
            encode_varint(s.len() as u64, out);
            out.extend_from_slice(s);
        }
        (Key::Binary(b), KeyType::Binary { key_size }) => {
            if b.len() > key_size as usize {
                return Err(EncodeError::KeyTooLong {
                    len: b.len(),
                    max: key_size,
                });
            }
            out.extend_from_slice(b);
            out.resize(out.len() + key_size as usize - b.len(), 0);
        }
        _ => return Err(EncodeError::KeyMismatch),
    }
    Ok(())
}

fn define_payload(def: &TableDef) -> Result<Vec<u8>, EncodeError> {
    if def.name.is_empty() {
        return Err(EncodeError::EmptyTableName);
    }
    if def.unknown_types() != 0 {
        return Err(EncodeError::UnknownDataTypes(def.unknown_types()));
    }
    let mut p = Vec::new();
    encode_varint(u64::from(def.id), &mut p);
    encode_varint(def.name.len() as u64, &mut p);
    p.extend_from_slice(def.name.as_bytes());
    encode_varint(def.key_type.code(), &mut p);
    encode_varint(u64::from(def.key_type.key_size()), &mut p);
    encode_varint(def.data_types, &mut p);
    let Some(expire) = def.expire_ms else {
        if let Some(dt) = def.stored().find(|dt| dt.is_array()) {
            return Err(EncodeError::MissingParams(dt));
        }
        return Ok(p);
    };
    encode_varint(u64::from(expire), &mut p);
    for dt in def.stored().filter(|dt| dt.has_params()) {
        let params = def.params.get(&dt.id()).copied().unwrap_or_default();
        encode_varint(u64::from(dt.id()), &mut p);
        if dt.is_array() {
            let n = params.nb_elem.ok_or(EncodeError::MissingParams(dt))?;
            if n == 0 || n > MAX_ARRAY_LEN {
                return Err(EncodeError::BadArrayLen {
                    data_type: dt,
                    nb_elem: n,
                });
            }
            encode_varint(u64::from(n), &mut p);
        }
        if dt.std_type() == StdType::Freq {
            let period = params.period_ms.ok_or(EncodeError::MissingParams(dt))?;
            encode_varint(u64::from(period), &mut p);
        }
    }
    Ok(p)
}
