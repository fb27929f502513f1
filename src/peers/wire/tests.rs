//! Byte-exact messages derived from HAProxy 2.6's peers.c, round trips,
//! malformed input and a bounded random-input run.

use std::net::Ipv4Addr;

use super::*;

fn app_def() -> TableDef {
    // backend app: stick-table type ip expire 1h, `stick on` adds
    // server_id and server_key.
    TableDef::new(1, "app", KeyType::Ipv4, 3_600_000)
        .with(DataType::ServerId)
        .with(DataType::ServerKey)
}

fn counters_def() -> TableDef {
    TableDef::new(2, "counters", KeyType::String { key_size: 33 }, 600_000)
        .with(DataType::ServerId)
        .with(DataType::Gpc0)
        .with_period(DataType::ConnRate, 10_000)
        .with(DataType::BytesInCnt)
        .with_array(DataType::Gpt, 3)
        .with_array_period(DataType::GpcRate, 2, 60_000)
}

fn ip_update(id: u32, incremental: bool, last: u8, server: &str) -> Update {
    Update {
        table_id: 1,
        update_id: id,
        incremental,
        expire_ms: None,
        key: Key::Ipv4(Ipv4Addr::new(127, 0, 0, last)),
        values: vec![
            (DataType::ServerId, Value::SInt(2)),
            (DataType::ServerKey, Value::Dict(Some(server.into()))),
        ],
        skipped_types: 0,
    }
}

fn counters_update() -> Update {
    let freq = |age_ms, curr_ctr, prev_ctr| {
        Value::Freq(FreqCtr {
            age_ms,
            curr_ctr,
            prev_ctr,
        })
    };
    Update {
        table_id: 2,
        update_id: 0xFFFF_FFFF,
        incremental: false,
        expire_ms: Some(599_000),
        key: Key::String(b"alice".to_vec()),
        values: vec![
            (DataType::ServerId, Value::SInt(-3)),
            (DataType::Gpc0, Value::UInt(7)),
            (DataType::ConnRate, freq(1234, 5, 0)),
            (DataType::BytesInCnt, Value::ULongLong(123_456_789_012)),
            (
                DataType::Gpt,
                Value::Array(vec![Value::UInt(9), Value::UInt(0), Value::UInt(u32::MAX)]),
            ),
            (
                DataType::GpcRate,
                Value::Array(vec![freq(0, 1, 2), freq(59_999, 300, 40)]),
            ),
        ],
        skipped_types: 0,
    }
}

/// Decodes exactly one message from `bytes`, checking every prefix is
/// incomplete first (on a clone, so state is not disturbed).
fn decode_one(d: &mut Decoder, bytes: &[u8]) -> Message {
    for cut in 0..bytes.len() {
        assert_eq!(
            d.clone().decode(&bytes[..cut]),
            Ok(Decoded::Incomplete),
            "prefix of {cut} bytes of {bytes:02x?}"
        );
    }
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0x00, 0x04]);
    match d.decode(&longer) {
        Ok(Decoded::Message { msg, consumed }) => {
            assert_eq!(consumed, bytes.len());
            msg
        }
        other => panic!("{other:?} for {bytes:02x?}"),
    }
}

#[test]
fn control_and_error_messages_are_two_bytes() {
    let mut e = Encoder::new();
    let mut d = Decoder::new();
    for (msg, bytes) in [
        (Message::ResyncRequest, [0u8, 0]),
        (Message::ResyncFinished, [0, 1]),
        (Message::ResyncPartial, [0, 2]),
        (Message::ResyncConfirm, [0, 3]),
        (Message::Heartbeat, [0, 4]),
        (Message::ProtocolError, [1, 0]),
        (Message::SizeLimitError, [1, 1]),
    ] {
        assert_eq!(e.encode_to_vec(&msg).unwrap(), bytes);
        assert_eq!(decode_one(&mut d, &bytes), msg);
    }
}

#[test]
fn app_definition_bytes() {
    let bytes = [
        0x0A, 0x82, 0x0F, // class 10, define, 15 bytes
        0x01, // table id 1
        0x03, b'a', b'p', b'p', // name
        0x04, // key type: ipv4 (network code 4)
        0x04, // key size 4
        0xF1, 0xF1, 0xFE, 0x00, // data types: bits 0 and 19 = 0x80001
        // expiry 3600000 ms; no parameters (no counters, no arrays)
        0xF0, 0xD9, 0xDC, 0x0C,
    ];
    let mut e = Encoder::new();
    assert_eq!(e.encode_to_vec(&Message::Define(app_def())).unwrap(), bytes);
    let mut d = Decoder::new();
    assert_eq!(decode_one(&mut d, &bytes), Message::Define(app_def()));
    assert_eq!(d.current_table(), Some(&app_def()));
}

#[test]
fn counters_definition_lists_parameters_in_type_order() {
    let mut expected = vec![0x0A, 0x82, 0];
    let payload_start = expected.len();
    expected.extend_from_slice(&[0x02, 0x08]);
    expected.extend_from_slice(b"counters");
    expected.extend_from_slice(&[0x06, 0x21]); // string, key size 33
    // bits 0, 2, 5, 13, 22, 24
    expected.extend_from_slice(&[0xF5, 0xF3, 0x82, 0x4F]);
    expected.extend_from_slice(&[0xF0, 0xED, 0xA3, 0x01]); // expiry 600000
    expected.extend_from_slice(&[0x05, 0xF0, 0xE2, 0x03]); // conn_rate: period 10000
    expected.extend_from_slice(&[0x16, 0x03]); // gpt: 3 elements
    expected.extend_from_slice(&[0x18, 0x02, 0xF0, 0x97, 0x1C]); // gpc_rate: 2, period 60000
    expected[2] = (expected.len() - payload_start) as u8;
    let mut e = Encoder::new();
    assert_eq!(
        e.encode_to_vec(&Message::Define(counters_def())).unwrap(),
        expected
    );
    let mut d = Decoder::new();
    assert_eq!(
        decode_one(&mut d, &expected),
        Message::Define(counters_def())
    );
}

#[test]
fn updates_with_dictionary_cache_bytes() {
    let mut e = Encoder::new();
    let mut d = Decoder::new();
    let def = e.encode_to_vec(&Message::Define(app_def())).unwrap();
    decode_one(&mut d, &def);

    // Full update: id, key, server_id 2, server_key "s2" sent with its
    // value (entry length 4: cache id 1, string length 2, "s2").
    let first = [
        0x0A, 0x80, 0x0E, 0x00, 0x00, 0x00, 0x01, 127, 0, 0, 77, 0x02, 0x04, 0x01, 0x02, b's', b'2',
    ];
    let u1 = ip_update(1, false, 77, "s2");
    assert_eq!(
        e.encode_to_vec(&Message::Update(u1.clone())).unwrap(),
        first
    );
    assert_eq!(decode_one(&mut d, &first), Message::Update(u1));

    // Incremental update (id 2 implied), "s2" by cache id only.
    assert!(e.can_be_incremental(1, 2));
    let second = [0x0A, 0x81, 0x07, 127, 0, 0, 78, 0x02, 0x01, 0x01];
    let u2 = ip_update(2, true, 78, "s2");
    assert_eq!(
        e.encode_to_vec(&Message::Update(u2.clone())).unwrap(),
        second
    );
    assert_eq!(decode_one(&mut d, &second), Message::Update(u2));

    // A new string takes the next slot (id 2).
    let u3 = ip_update(3, true, 79, "s1");
    let third = e.encode_to_vec(&Message::Update(u3.clone())).unwrap();
    assert_eq!(&third[7..], [0x02, 0x04, 0x02, 0x02, b's', b'1']);
    assert_eq!(decode_one(&mut d, &third), Message::Update(u3));

    // No entry: length 0.
    let mut u4 = ip_update(10, false, 80, "");
    u4.values[1].1 = Value::Dict(None);
    u4.expire_ms = Some(1000);
    let fourth = e.encode_to_vec(&Message::Update(u4.clone())).unwrap();
    assert_eq!(
        fourth,
        [
            0x0A, 0x85, 0x0E, 0, 0, 0, 10, 0, 0, 0x03, 0xE8, 127, 0, 0, 80, 0x02, 0x00
        ]
    );
    assert_eq!(decode_one(&mut d, &fourth), Message::Update(u4));

    // Incremental timed.
    let mut u5 = ip_update(11, true, 81, "s1");
    u5.expire_ms = Some(5);
    let fifth = e.encode_to_vec(&Message::Update(u5.clone())).unwrap();
    assert_eq!(fifth[..3], [0x0A, 0x86, 0x0B]);
    assert_eq!(decode_one(&mut d, &fifth), Message::Update(u5));
}

#[test]
fn counters_update_round_trips_with_negative_sint() {
    let mut e = Encoder::new();
    let mut d = Decoder::new();
    decode_one(
        &mut d,
        &e.encode_to_vec(&Message::Define(counters_def())).unwrap(),
    );
    let u = counters_update();
    let bytes = e.encode_to_vec(&Message::Update(u.clone())).unwrap();
    let mut expected_payload = vec![0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x09, 0x23, 0xD8, 0x05];
    expected_payload.extend_from_slice(b"alice");
    // server_id -3: sign-extended to 64 bits, 10 bytes.
    expected_payload
        .extend_from_slice(&[0xFD, 0xF0, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0x0E]);
    assert_eq!(bytes[..3], [0x0A, 0x85, bytes.len() as u8 - 3]);
    assert_eq!(bytes[3..3 + expected_payload.len()], expected_payload);
    assert_eq!(decode_one(&mut d, &bytes), Message::Update(u));
}

#[test]
fn ack_and_switch_bytes() {
    let mut e = Encoder::new();
    let mut d = Decoder::new();
    let ack = Message::Ack {
        table_id: 1,
        update_id: 7,
    };
    let bytes = [0x0A, 0x84, 0x05, 0x01, 0x00, 0x00, 0x00, 0x07];
    assert_eq!(e.encode_to_vec(&ack).unwrap(), bytes);
    assert_eq!(decode_one(&mut d, &bytes), ack);

    // A switch needs a definition first, on both sides.
    let switch = Message::Switch { table_id: 1 };
    assert_eq!(e.encode_to_vec(&switch), Err(EncodeError::UnknownTable(1)));
    assert_eq!(
        d.decode(&[0x0A, 0x83, 0x01, 0x01]),
        Err(DecodeError::UnknownTable(1))
    );
    decode_one(
        &mut d,
        &e.encode_to_vec(&Message::Define(app_def())).unwrap(),
    );
    decode_one(
        &mut d,
        &e.encode_to_vec(&Message::Define(counters_def())).unwrap(),
    );
    assert_eq!(d.current_table().map(|t| t.id), Some(2));
    assert_eq!(e.encode_to_vec(&switch).unwrap(), [0x0A, 0x83, 0x01, 0x01]);
    assert_eq!(decode_one(&mut d, &[0x0A, 0x83, 0x01, 0x01]), switch);
    assert_eq!(d.current_table().map(|t| t.id), Some(1));
}

#[test]
fn incremental_ids_follow_each_table() {
    let mut d = Decoder::new();
    let mut e = Encoder::new();
    decode_one(
        &mut d,
        &e.encode_to_vec(&Message::Define(app_def())).unwrap(),
    );
    // Before any full update the decoder starts from 0, like HAProxy.
    let msg = decode_one(&mut d, &[0x0A, 0x81, 0x06, 127, 0, 0, 1, 0x05, 0x00]);
    let Message::Update(u) = msg else { panic!() };
    assert_eq!((u.update_id, u.incremental), (1, true));
    // The encoder refuses an incremental update it cannot vouch for.
    assert_eq!(
        e.encode_to_vec(&Message::Update(ip_update(1, true, 1, "x"))),
        Err(EncodeError::NotIncremental {
            expected: None,
            got: 1
        })
    );
    e.encode_to_vec(&Message::Update(ip_update(u32::MAX, false, 1, "x")))
        .unwrap();
    assert!(e.can_be_incremental(1, 0), "ids wrap");
}

#[test]
fn encoder_validates_updates_against_the_definition() {
    let mut e = Encoder::new();
    let mut u = ip_update(1, false, 1, "s");
    assert_eq!(
        e.encode_to_vec(&Message::Update(u.clone())),
        Err(EncodeError::NoCurrentTable)
    );
    e.encode_to_vec(&Message::Define(app_def())).unwrap();
    u.table_id = 2;
    assert_eq!(
        e.encode_to_vec(&Message::Update(u.clone())),
        Err(EncodeError::NotCurrentTable {
            current: 1,
            update: 2
        })
    );
    u.table_id = 1;
    u.key = Key::Integer(1);
    assert_eq!(
        e.encode_to_vec(&Message::Update(u.clone())),
        Err(EncodeError::KeyMismatch)
    );
    u.key = Key::Ipv4(Ipv4Addr::LOCALHOST);
    u.values.pop();
    assert_eq!(
        e.encode_to_vec(&Message::Update(u.clone())),
        Err(EncodeError::MissingValue(DataType::ServerKey))
    );
    u.values.push((DataType::Gpc0, Value::UInt(1)));
    assert_eq!(
        e.encode_to_vec(&Message::Update(u.clone())),
        Err(EncodeError::UnexpectedValue(DataType::Gpc0))
    );
    u.values[1] = (DataType::ServerKey, Value::UInt(1));
    assert_eq!(
        e.encode_to_vec(&Message::Update(u.clone())),
        Err(EncodeError::ValueMismatch(DataType::ServerKey))
    );
    // Fails after the dictionary value was encoded...
    u.values[1] = (DataType::ServerKey, Value::Dict(Some("s".into())));
    u.values.push((DataType::Gpc0, Value::UInt(1)));
    assert_eq!(
        e.encode_to_vec(&Message::Update(u.clone())),
        Err(EncodeError::UnexpectedValue(DataType::Gpc0))
    );
    // ... yet the dictionary is untouched: the next use of "s" still
    // carries the string, in slot 1.
    let ok = e
        .encode_to_vec(&Message::Update(ip_update(1, false, 1, "s")))
        .unwrap();
    assert_eq!(&ok[ok.len() - 4..], [0x03, 0x01, 0x01, b's']);

    let missing_period = TableDef::new(3, "t", KeyType::Ipv4, 1).with(DataType::ConnRate);
    assert_eq!(
        e.encode_to_vec(&Message::Define(missing_period)),
        Err(EncodeError::MissingParams(DataType::ConnRate))
    );
    let too_big = TableDef::new(3, "t", KeyType::Ipv4, 1).with_array(DataType::Gpc, 101);
    assert!(matches!(
        e.encode_to_vec(&Message::Define(too_big)),
        Err(EncodeError::BadArrayLen { .. })
    ));
    let mut unknown = app_def();
    unknown.data_types |= 1 << 25;
    assert_eq!(
        e.encode_to_vec(&Message::Define(unknown)),
        Err(EncodeError::UnknownDataTypes(1 << 25))
    );
    let mut small = Encoder::with_max_message_len(8);
    assert!(matches!(
        small.encode_to_vec(&Message::Define(counters_def())),
        Err(EncodeError::TooLarge { .. })
    ));
}

#[test]
fn keys_of_every_type_round_trip() {
    let cases = [
        (
            KeyType::Integer,
            Key::Integer(0xDEAD_BEEF),
            vec![0xDE, 0xAD, 0xBE, 0xEF],
        ),
        (
            KeyType::Ipv6,
            Key::Ipv6("2001:db8::1".parse().unwrap()),
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
                .to_vec(),
        ),
        (
            KeyType::String { key_size: 4 },
            Key::String(b"abc".to_vec()),
            b"\x03abc".to_vec(),
        ),
        (
            KeyType::Binary { key_size: 4 },
            Key::Binary(vec![1, 2, 3, 4]),
            vec![1, 2, 3, 4],
        ),
    ];
    for (kt, key, wire) in cases {
        let def = TableDef::new(9, "k", kt, 0).with(DataType::Gpc0);
        let mut e = Encoder::new();
        let mut d = Decoder::new();
        decode_one(&mut d, &e.encode_to_vec(&Message::Define(def)).unwrap());
        let u = Update {
            table_id: 9,
            update_id: 5,
            incremental: false,
            expire_ms: None,
            key,
            values: vec![(DataType::Gpc0, Value::UInt(250))],
            skipped_types: 0,
        };
        let bytes = e.encode_to_vec(&Message::Update(u.clone())).unwrap();
        assert_eq!(bytes[7..7 + wire.len()], wire, "{kt:?}");
        assert_eq!(bytes[7 + wire.len()..], [0xFA, 0x00], "{kt:?}");
        assert_eq!(decode_one(&mut d, &bytes), Message::Update(u));
    }
    // Binary keys are zero-padded, string keys bounded by key size - 1.
    let mut e = Encoder::new();
    let def = TableDef::new(9, "k", KeyType::Binary { key_size: 4 }, 0);
    e.encode_to_vec(&Message::Define(def)).unwrap();
    let mut u = Update {
        table_id: 9,
        update_id: 5,
        incremental: false,
        expire_ms: None,
        key: Key::Binary(vec![7]),
        values: vec![],
        skipped_types: 0,
    };
    let bytes = e.encode_to_vec(&Message::Update(u.clone())).unwrap();
    assert_eq!(bytes[7..], [7, 0, 0, 0]);
    e.encode_to_vec(&Message::Define(TableDef::new(
        9,
        "k",
        KeyType::String { key_size: 4 },
        0,
    )))
    .unwrap();
    u.key = Key::String(b"abcd".to_vec());
    assert_eq!(
        e.encode_to_vec(&Message::Update(u)),
        Err(EncodeError::KeyTooLong { len: 4, max: 3 })
    );
}

#[test]
fn malformed_input_is_named() {
    let mut d = Decoder::new();
    assert_eq!(d.decode(&[0xFF, 0x00]), Err(DecodeError::ReservedClass));
    assert_eq!(d.decode(&[0x02, 0x00]), Err(DecodeError::UnknownClass(2)));
    assert_eq!(
        d.decode(&[0x00, 0x05]),
        Err(DecodeError::UnknownType { class: 0, kind: 5 })
    );
    assert_eq!(
        d.decode(&[0x01, 0x02]),
        Err(DecodeError::UnknownType { class: 1, kind: 2 })
    );
    assert_eq!(
        d.decode(&[0x0A, 0x00]),
        Err(DecodeError::UnknownType { class: 10, kind: 0 })
    );
    assert_eq!(
        d.decode(&[0x0A, 0x87]),
        Err(DecodeError::UnknownType {
            class: 10,
            kind: 0x87
        })
    );
    // Length varint of 6 bytes; 5 bytes of continuation is already enough to tell.
    assert_eq!(
        d.decode(&[0x0A, 0x80, 0xF0, 0x80, 0x80, 0x80, 0x80]),
        Err(DecodeError::BadLength)
    );
    assert_eq!(
        d.decode(&[0x0A, 0x80, 0xF0, 0x80, 0x80, 0x80]),
        Ok(Decoded::Incomplete)
    );
    // 16385 bytes announced: refused before it arrives, answered "size limit".
    let e = d.decode(&[0x0A, 0x80, 0xF1, 0xF1, 0x06]).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooLarge {
            len: 16385,
            max: 16384
        }
    );
    assert_eq!(e.reply(), Message::SizeLimitError);
    assert_eq!(DecodeError::NoCurrentTable.reply(), Message::ProtocolError);
    // Update before any definition.
    assert_eq!(
        d.decode(&[0x0A, 0x80, 0x08, 0, 0, 0, 1, 127, 0, 0, 1]),
        Err(DecodeError::NoCurrentTable)
    );
    // Definitions: empty name, bad key type, key size mismatch, truncation.
    let define = |payload: &[u8]| {
        let mut m = vec![0x0A, 0x82, payload.len() as u8];
        m.extend_from_slice(payload);
        Decoder::new().decode(&m)
    };
    assert_eq!(define(&[1, 0, 4, 4, 0]), Err(DecodeError::EmptyTableName));
    assert_eq!(
        define(&[1, 1, b't', 3, 4, 0]),
        Err(DecodeError::BadKeyType {
            code: 3,
            key_size: 4
        })
    );
    assert_eq!(
        define(&[1, 1, b't', 4, 16, 0]),
        Err(DecodeError::BadKeyType {
            code: 4,
            key_size: 16
        })
    );
    assert_eq!(
        define(&[1, 1, b't', 4]),
        Err(DecodeError::Truncated { field: "key size" })
    );
    assert_eq!(
        define(&[1, 5, b't']),
        Err(DecodeError::Truncated {
            field: "table name"
        })
    );
    assert_eq!(
        define(&[1, 1, 0xFF, 4, 4, 0]),
        Err(DecodeError::NotUtf8 {
            field: "table name"
        })
    );
    // conn_rate (bit 5) with expiry but the parameters of another type.
    assert_eq!(
        define(&[1, 1, b't', 4, 4, 0x20, 0, 6, 1]),
        Err(DecodeError::ParamMismatch {
            expected: DataType::ConnRate,
            found: 6
        })
    );
    // gpc array (bit 23) without expiry, hence without its size.
    assert_eq!(
        define(&[1, 1, b't', 4, 4, 0xF0, 0xF1, 0xFE, 0x1E]),
        Err(DecodeError::MissingParams(DataType::Gpc))
    );
    // Table ids are 32-bit.
    assert!(matches!(
        define(&[0xF0, 0xF1, 0xFE, 0xFE, 0x7E, 1, b't', 4, 4, 0]),
        Err(DecodeError::OutOfRange { .. })
    ));
    // An old-style definition (no expiry) without arrays is fine.
    let Ok(Decoded::Message {
        msg: Message::Define(old),
        ..
    }) = define(&[1, 1, b't', 4, 4, 0x20])
    else {
        panic!()
    };
    assert_eq!((old.expire_ms, old.params.len()), (None, 0));

    // Updates: truncated key, long string key, bad dictionary ids, trailing bytes.
    let mut d = Decoder::new();
    let mut e = Encoder::new();
    decode_one(
        &mut d,
        &e.encode_to_vec(&Message::Define(app_def())).unwrap(),
    );
    assert_eq!(
        d.decode(&[0x0A, 0x80, 0x06, 0, 0, 0, 1, 127, 0]),
        Err(DecodeError::Truncated { field: "ipv4 key" })
    );
    assert_eq!(
        d.decode(&[0x0A, 0x81, 0x07, 127, 0, 0, 1, 0x02, 0x00]),
        Ok(Decoded::Incomplete)
    );
    assert_eq!(
        d.decode(&[0x0A, 0x81, 0x08, 127, 0, 0, 1, 0x02, 0x01, 0x00, 0x00]),
        Err(DecodeError::BadDictId(0))
    );
    assert_eq!(
        d.decode(&[0x0A, 0x81, 0x08, 127, 0, 0, 1, 0x02, 0x02, 0xF0, 0x00]),
        Err(DecodeError::BadDictId(240))
    );
    assert_eq!(
        d.decode(&[0x0A, 0x81, 0x08, 127, 0, 0, 1, 0x02, 0x02, 0x01, 0x05]),
        Err(DecodeError::Truncated {
            field: "dictionary value"
        })
    );
    assert_eq!(
        d.decode(&[0x0A, 0x81, 0x07, 127, 0, 0, 1, 0x02, 0x00, 0x00]),
        Err(DecodeError::TrailingBytes {
            field: "update",
            extra: 1
        })
    );
    // An unfilled cache id decodes as no value (HAProxy ignores it).
    let msg = decode_one(&mut d, &[0x0A, 0x81, 0x07, 127, 0, 0, 1, 0x02, 0x01, 0x7F]);
    let Message::Update(u) = msg else { panic!() };
    assert_eq!(u.values[1].1, Value::Dict(None));
    // The failed updates did not advance the implicit id.
    assert_eq!(u.update_id, 1);

    let mut d = Decoder::new();
    decode_one(
        &mut d,
        &e.encode_to_vec(&Message::Define(counters_def())).unwrap(),
    );
    let mut m = vec![0x0A, 0x81, 0x22, 33];
    m.extend([b'x'; 33]);
    assert_eq!(
        d.decode(&m),
        Err(DecodeError::KeyTooLong { len: 33, max: 32 })
    );
}

#[test]
fn unknown_data_types_are_skipped_without_losing_the_stream() {
    // A newer peer's table storing gpc0 (2) and type 26 (a later
    // addition, a frequency counter: its period follows the expiry).
    let frame = |kind: u8, payload: &[u8]| {
        let mut m = vec![0x0A, kind, payload.len() as u8];
        m.extend_from_slice(payload);
        m
    };
    let mut d = Decoder::new();
    let def = frame(
        0x82,
        &[1, 1, b't', 4, 4, 0xF4, 0xF1, 0xFE, 0xFE, 0x00, 0, 26, 0x05],
    );
    let Message::Define(def) = decode_one(&mut d, &def) else {
        panic!()
    };
    assert_eq!(def.unknown_types(), 1 << 26);
    assert_eq!(def.stored().collect::<Vec<_>>(), [DataType::Gpc0]);
    // gpc0 = 5, then bytes of type 26 this codec cannot read.
    let upd = frame(0x81, &[10, 0, 0, 1, 0x05, 0xAA, 0xBB, 0xCC]);
    let Message::Update(u) = decode_one(&mut d, &upd) else {
        panic!()
    };
    assert_eq!(u.values, [(DataType::Gpc0, Value::UInt(5))]);
    assert_eq!(u.skipped_types, 1 << 26);
}

#[test]
fn data_type_table_matches_haproxy_2_6() {
    let names: Vec<_> = DataType::ALL.iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "server_id",
            "gpt0",
            "gpc0",
            "gpc0_rate",
            "conn_cnt",
            "conn_rate",
            "conn_cur",
            "sess_cnt",
            "sess_rate",
            "http_req_cnt",
            "http_req_rate",
            "http_err_cnt",
            "http_err_rate",
            "bytes_in_cnt",
            "bytes_in_rate",
            "bytes_out_cnt",
            "bytes_out_rate",
            "gpc1",
            "gpc1_rate",
            "server_key",
            "http_fail_cnt",
            "http_fail_rate",
            "gpt",
            "gpc",
            "gpc_rate",
        ]
    );
    for (i, dt) in DataType::ALL.iter().enumerate() {
        assert_eq!(dt.id() as usize, i);
        assert_eq!(DataType::from_id(i as u64), Some(*dt));
    }
    assert_eq!(DataType::from_id(25), None);
    assert_eq!(DataType::ServerId.std_type(), StdType::SInt);
    assert_eq!(DataType::BytesOutCnt.std_type(), StdType::ULongLong);
    assert_eq!(DataType::ServerKey.std_type(), StdType::Dict);
    assert!(DataType::ConnCur.is_local());
    assert!(DataType::GpcRate.is_array() && DataType::GpcRate.std_type() == StdType::Freq);
    assert_eq!(KeyType::from_wire(2, 4), Some(KeyType::Integer));
    assert_eq!(
        KeyType::from_wire(6, 33),
        Some(KeyType::String { key_size: 33 })
    );
    assert_eq!(KeyType::from_wire(6, 0), None);
    assert_eq!(KeyType::from_wire(0, 4), None);
}

use crate::base::test_rng::Rng;

#[test]
fn random_and_mutated_input_never_panics() {
    let mut e = Encoder::new();
    let mut stream = Vec::new();
    for msg in [
        Message::Define(app_def()),
        Message::Update(ip_update(1, false, 77, "s2")),
        Message::Update(ip_update(2, true, 78, "s2")),
        Message::Define(counters_def()),
        Message::Update(counters_update()),
        Message::Ack {
            table_id: 1,
            update_id: 9,
        },
        Message::Heartbeat,
    ] {
        e.encode(&msg, &mut stream).unwrap();
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut decoded = 0usize;
    for round in 0..3000 {
        let input: Vec<u8> = match round % 3 {
            // Pure noise, biased towards valid headers now and then.
            0 => {
                let len = (rng.next_u64() % 64) as usize;
                let mut v: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                if rng.next_u64().is_multiple_of(2) && v.len() >= 2 {
                    v[0] = 10;
                    v[1] = 0x80 + (rng.next_u64() % 7) as u8;
                }
                v
            }
            // The valid stream with a few bytes flipped.
            1 => {
                let mut v = stream.clone();
                for _ in 0..1 + rng.next_u64() % 4 {
                    let i = (rng.next_u64() as usize) % v.len();
                    v[i] = rng.next_u64() as u8;
                }
                v
            }
            // The valid stream cut anywhere.
            _ => stream[..(rng.next_u64() as usize) % (stream.len() + 1)].to_vec(),
        };
        let mut d = Decoder::new();
        let mut pos = 0;
        // At most one message per input byte: bounded.
        for _ in 0..=input.len() {
            match d.decode(&input[pos..]) {
                Ok(Decoded::Message { consumed, .. }) => {
                    assert!(consumed > 0 && pos + consumed <= input.len());
                    pos += consumed;
                    decoded += 1;
                }
                Ok(Decoded::Incomplete) | Err(_) => break,
            }
        }
    }
    assert!(
        decoded > 1000,
        "the mutated streams mostly decode: {decoded}"
    );

    // The untouched stream decodes to the end.
    let mut d = Decoder::new();
    let mut pos = 0;
    let mut n = 0;
    while pos < stream.len() {
        let Ok(Decoded::Message { consumed, .. }) = d.decode(&stream[pos..]) else {
            panic!("at {pos}")
        };
        pos += consumed;
        n += 1;
    }
    assert_eq!(n, 7);
}
