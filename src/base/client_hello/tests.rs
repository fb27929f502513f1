//! ClientHellos from rustls and built by hand, fed whole, byte by byte and
//! over several records; malformed and oversized ones; a bounded run of
//! truncated, mutated and random input.

use super::*;

const LIMIT: usize = 16 << 10;

/// A ClientHello handshake message (header included).
struct Build {
    version: u16,
    sid: Vec<u8>,
    suites: Vec<u8>,
    methods: Vec<u8>,
    /// (type, data) in order; `None` writes no extension block at all.
    extensions: Option<Vec<(u16, Vec<u8>)>>,
}

impl Build {
    fn new() -> Build {
        Build {
            version: 0x0303,
            sid: vec![7; 32],
            suites: vec![0x13, 0x01, 0x13, 0x02],
            methods: vec![0],
            extensions: Some(Vec::new()),
        }
    }

    fn ext(mut self, kind: u16, data: Vec<u8>) -> Build {
        self.extensions
            .get_or_insert_with(Vec::new)
            .push((kind, data));
        self
    }

    fn sni(self, name: &str) -> Build {
        self.ext(0, sni_data(&[(0, name.as_bytes())]))
    }

    fn alpn(self, names: &[&str]) -> Build {
        let mut list = Vec::new();
        for n in names {
            list.push(n.len() as u8);
            list.extend_from_slice(n.as_bytes());
        }
        self.ext(16, with_u16_len(&list))
    }

    fn versions(self, versions: &[u16]) -> Build {
        let mut data = vec![(versions.len() * 2) as u8];
        for v in versions {
            data.extend_from_slice(&v.to_be_bytes());
        }
        self.ext(43, data)
    }

    fn body(&self) -> Vec<u8> {
        let mut b = self.version.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x42; 32]);
        b.push(self.sid.len() as u8);
        b.extend_from_slice(&self.sid);
        b.extend_from_slice(&with_u16_len(&self.suites));
        b.push(self.methods.len() as u8);
        b.extend_from_slice(&self.methods);
        if let Some(exts) = &self.extensions {
            let mut all = Vec::new();
            for (kind, data) in exts {
                all.extend_from_slice(&kind.to_be_bytes());
                all.extend_from_slice(&with_u16_len(data));
            }
            b.extend_from_slice(&with_u16_len(&all));
        }
        b
    }

    fn message(&self) -> Vec<u8> {
        handshake(CLIENT_HELLO, &self.body())
    }

    /// The message in one record.
    fn record(&self) -> Vec<u8> {
        records(&self.message(), &[usize::MAX])
    }
}

fn with_u16_len(data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

fn sni_data(names: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (kind, name) in names {
        list.push(*kind);
        list.extend_from_slice(&with_u16_len(name));
    }
    with_u16_len(&list)
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    let mut m = vec![kind, len[1], len[2], len[3]];
    m.extend_from_slice(body);
    m
}

/// `msg` cut into handshake records of the given fragment sizes (the last
/// size repeats until the message is used up).
fn records(msg: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = msg;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i.min(sizes.len() - 1)].min(rest.len());
        out.extend_from_slice(&[0x16, 3, 1]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// Parses `raw` in one call.
fn parse(raw: &[u8]) -> (Parsed, Vec<u8>) {
    let mut msg = vec![0u8; LIMIT];
    let parsed = HelloParser::new(LIMIT).feed(raw, &mut msg);
    (parsed, msg)
}

/// Parses `raw` as it would arrive `step` bytes at a time; every call
/// before the last must ask for more.
fn parse_in_steps(raw: &[u8], step: usize) -> (Parsed, Vec<u8>) {
    let mut msg = vec![0u8; LIMIT];
    let mut p = HelloParser::new(LIMIT);
    let mut end = 0;
    loop {
        end = (end + step).min(raw.len());
        let r = p.feed(&raw[..end], &mut msg);
        if end == raw.len() {
            return (r, msg);
        }
        assert_eq!(r, Parsed::NeedMore, "at {end} of {}", raw.len());
    }
}

fn hello(raw: &[u8]) -> (Hello, Vec<u8>) {
    match parse(raw) {
        (Parsed::Hello(h), msg) => (h, msg),
        (other, _) => panic!("expected a hello, got {other:?}"),
    }
}

fn malformed(raw: &[u8]) -> &'static str {
    match parse(raw).0 {
        Parsed::Malformed(why) => why,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

/// A real ClientHello as rustls writes it (also used by the ACL tests).
pub(crate) fn rustls_hello(sni: &str, alpn: &[&[u8]]) -> Vec<u8> {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

#[test]
fn rustls_client_hello_gives_sni_alpn_and_versions() {
    let raw = rustls_hello("api.example.com", &[b"h2", b"http/1.1"]);
    let (h, msg) = hello(&raw);
    assert_eq!(h.hello_type, CLIENT_HELLO);
    assert_eq!(h.record_version >> 8, 3);
    assert_eq!(h.legacy_version, 0x0303);
    assert_eq!(h.max_version, 0x0304);
    assert_eq!(h.sni(&msg), Some(&b"api.example.com"[..]));
    let alpn: Vec<&[u8]> = h.alpn(&msg).collect();
    assert_eq!(alpn, [&b"h2"[..], &b"http/1.1"[..]]);
    // The same bytes a few at a time give the same answer.
    for step in [1, 5, 64] {
        let (p, msg) = parse_in_steps(&raw, step);
        let Parsed::Hello(h2) = p else {
            panic!("step {step}: {p:?}")
        };
        assert_eq!(h2, h);
        assert_eq!(h2.sni(&msg), Some(&b"api.example.com"[..]));
    }
}

#[test]
fn hello_split_over_records_is_reassembled() {
    let b = Build::new()
        .sni("www.example.org")
        .alpn(&["h2"])
        .versions(&[0x3a3a, 0x0304, 0x0303]);
    let msg_bytes = b.message();
    for sizes in [&[1][..], &[3, 200], &[50, 1], &[msg_bytes.len() - 1]] {
        let raw = records(&msg_bytes, sizes);
        for step in [1, 7, raw.len()] {
            let (p, msg) = parse_in_steps(&raw, step);
            let Parsed::Hello(h) = p else {
                panic!("{sizes:?}/{step}: {p:?}")
            };
            assert_eq!(h.sni(&msg), Some(&b"www.example.org"[..]));
            assert_eq!(h.alpn(&msg).collect::<Vec<_>>(), [&b"h2"[..]]);
            // GREASE 0x3a3a is not a version.
            assert_eq!(h.max_version, 0x0304);
        }
    }
}

#[test]
fn a_final_result_is_kept() {
    let raw = Build::new().sni("a.example").record();
    let mut msg = vec![0u8; LIMIT];
    let mut p = HelloParser::new(LIMIT);
    let first = p.feed(&raw, &mut msg);
    assert!(matches!(first, Parsed::Hello(_)));
    let mut more = raw.clone();
    more.extend_from_slice(b"\x17\x03\x03\x00\x05hello");
    assert_eq!(p.feed(&more, &mut msg), first);
}

#[test]
fn hellos_without_extensions_or_names() {
    let mut b = Build::new();
    b.extensions = None;
    b.version = 0x0301;
    let (h, msg) = hello(&b.record());
    assert_eq!((h.legacy_version, h.max_version), (0x0301, 0x0301));
    assert_eq!(h.sni(&msg), None);
    assert_eq!(h.alpn(&msg).count(), 0);
    // An empty extension block, and a name list of another type only.
    let (h, msg) = hello(&Build::new().record());
    assert_eq!(h.sni(&msg), None);
    let b = Build::new().ext(0, sni_data(&[(7, b"x")]));
    let (h, msg) = hello(&b.record());
    assert_eq!(h.sni(&msg), None);
    // Names are kept as sent: -i matching is the ACL's business.
    let (h, msg) = hello(&Build::new().sni("API.Example.COM").record());
    assert_eq!(h.sni(&msg), Some(&b"API.Example.COM"[..]));
}

#[test]
fn another_handshake_message_first_is_reported_with_its_type() {
    let raw = records(&handshake(2, &[0; 40]), &[usize::MAX]);
    let (h, _) = hello(&raw);
    assert_eq!(h.hello_type, 2);
    assert_eq!(h.legacy_version, 0);
}

#[test]
fn bytes_that_are_not_tls() {
    for raw in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x80\x2e\x01\x00\x02", // SSLv2 hello
        b"\x16\x00",             // 0x16, then not version 3
        b"\x17\x03\x03\x00\x10", // application data first
        b"\x00",
    ] {
        assert_eq!(parse(raw).0, Parsed::NotTls, "{raw:?}");
    }
    for raw in [&b""[..], b"\x16", b"\x16\x03", b"\x16\x03\x01\x00"] {
        assert_eq!(parse(raw).0, Parsed::NeedMore, "{raw:?}");
    }
}

#[test]
fn malformed_records() {
    let good = Build::new().sni("a.example").message();
    // Garbage behind a valid record header: what it claims to be is
    // either broken or more than the buffer holds.
    let mut raw = vec![0x16, 3, 1, 0, 60];
    raw.extend((0..60u8).map(|i| i.wrapping_mul(37)));
    assert_eq!(parse(&raw).0, Parsed::TooLarge);
    let mut raw = vec![0x16, 3, 1, 0, 60, 1, 0, 0, 56];
    raw.extend((0..56u8).map(|i| 0xff - i));
    assert_eq!(malformed(&raw), "ClientHello version is not TLS (3.x)");
    assert_eq!(malformed(b"\x16\x03\x01\x00\x00"), "empty handshake record");
    assert_eq!(
        malformed(b"\x16\x03\x01\x40\x01"),
        "record longer than 16384 bytes"
    );
    assert_eq!(
        malformed(b"\x16\x03\x07\x00\x01"),
        "record version is not TLS (3.0 to 3.4)"
    );
    // A second record of another type before the hello is complete.
    let mut raw = records(&good[..10], &[usize::MAX]);
    raw.extend_from_slice(b"\x15\x03\x03\x00\x02\x02\x28");
    assert_eq!(malformed(&raw), "a non-handshake record inside the hello");
    // The hello's record goes on after it.
    let mut long = good.clone();
    long.extend_from_slice(&[0; 3]);
    let mut raw = records(&long, &[usize::MAX]);
    raw.truncate(raw.len() - 3); // the bytes after the hello need not even arrive
    assert_eq!(malformed(&raw), "bytes after the ClientHello in its record");
}

#[test]
fn malformed_client_hellos() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            handshake(1, &[3, 3, 0]),
            "ClientHello shorter than its random",
        ),
        (
            {
                let mut b = Build::new();
                b.version = 0x0200;
                b.message()
            },
            "ClientHello version is not TLS (3.x)",
        ),
        (
            {
                let mut b = Build::new();
                b.sid = vec![0; 33];
                b.message()
            },
            "session id longer than 32 bytes",
        ),
        (
            {
                let mut b = Build::new();
                b.suites = vec![0x13];
                b.message()
            },
            "cipher suite list empty or of odd length",
        ),
        (
            {
                let mut b = Build::new();
                b.methods.clear();
                b.message()
            },
            "no compression method",
        ),
        (
            {
                let mut m = Build::new().sni("a.example").message();
                m.push(0); // one byte beyond the extensions
                let len = (m.len() - 4) as u32;
                m[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
                m
            },
            "extensions length does not match the ClientHello",
        ),
        (
            Build::new().sni("a.example").sni("b.example").message(),
            "server_name extension sent twice",
        ),
        (
            Build::new()
                .ext(0, sni_data(&[(0, b"a.example"), (0, b"b.example")]))
                .message(),
            "two host names in server_name",
        ),
        (
            Build::new().ext(0, sni_data(&[(0, b"")])).message(),
            "host name empty or longer than 255 bytes",
        ),
        (
            Build::new().ext(0, sni_data(&[(0, b"a\0b")])).message(),
            "host name with bytes other than printable ASCII",
        ),
        (
            Build::new().ext(0, vec![0, 9, 0, 0, 1, b'a']).message(),
            "server_name list length does not match its extension",
        ),
        (
            Build::new()
                .ext(16, with_u16_len(&[2, b'h', b'2', 0]))
                .message(),
            "empty ALPN protocol name",
        ),
        (
            Build::new()
                .ext(16, with_u16_len(&[5, b'h', b'2']))
                .message(),
            "ALPN protocol overruns its list",
        ),
        (
            Build::new().alpn(&["h2"]).alpn(&["h2"]).message(),
            "ALPN extension sent twice",
        ),
        (
            Build::new().ext(43, vec![3, 3, 4, 3]).message(),
            "supported_versions length does not match its extension",
        ),
        (
            Build::new()
                .versions(&[0x0304])
                .versions(&[0x0304])
                .message(),
            "supported_versions extension sent twice",
        ),
    ];
    for (msg, why) in cases {
        assert_eq!(malformed(&records(&msg, &[usize::MAX])), why);
        // Reassembled from one-byte records, the same answer.
        assert_eq!(malformed(&records(&msg, &[1])), why);
    }
}

#[test]
fn hellos_over_the_limit_are_too_large() {
    // Declared larger than the buffer: known from the first 9 bytes.
    let raw = [0x16, 3, 1, 0x40, 0, 1, 0, 0x40, 0];
    assert_eq!(parse(&raw).0, Parsed::TooLarge);
    // Within the declared size, but the record headers of one-byte
    // records fill the buffer first.
    let body = Build::new()
        .ext(0xfe00, vec![0; 4000])
        .sni("a.example")
        .message();
    let raw = records(&body, &[1]);
    assert!(raw.len() > LIMIT);
    let mut msg = vec![0u8; LIMIT];
    let mut p = HelloParser::new(LIMIT);
    assert_eq!(p.feed(&raw[..LIMIT - 1], &mut msg), Parsed::NeedMore);
    assert_eq!(p.feed(&raw[..LIMIT], &mut msg), Parsed::TooLarge);
    // A smaller limit (a frontend's tune.bufsize) applies as well.
    let raw = Build::new()
        .ext(0xfe00, vec![0; 2000])
        .sni("a.example")
        .record();
    let mut p = HelloParser::new(1024);
    assert_eq!(p.feed(&raw[..1024], &mut msg), Parsed::TooLarge);
    // A message buffer shorter than a header is never written past.
    assert_eq!(
        HelloParser::new(LIMIT).feed(&raw, &mut [0u8; 3]),
        Parsed::TooLarge
    );
}

use crate::base::test_rng::Rng;

#[test]
fn truncated_mutated_and_random_input_never_panics() {
    let whole = rustls_hello("api.example.com", &[b"h2"]);
    let split = records(
        &Build::new()
            .sni("www.example.org")
            .alpn(&["h2", "http/1.1"])
            .versions(&[0x0304])
            .message(),
        &[13, 40],
    );
    // Every strict prefix of a valid hello asks for more.
    for raw in [&whole, &split] {
        for end in 0..raw.len() {
            assert_eq!(parse(&raw[..end]).0, Parsed::NeedMore, "prefix {end}");
        }
        assert!(matches!(parse(raw).0, Parsed::Hello(_)));
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut hellos, mut malformed) = (0, 0);
    for round in 0..4000 {
        let input: Vec<u8> = match round % 3 {
            // Noise behind a handshake record header now and then.
            0 => {
                let len = (rng.next_u64() % 300) as usize;
                let mut v: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                if rng.next_u64().is_multiple_of(2) && v.len() >= 9 {
                    let body = (len - 5) as u16;
                    v[..3].copy_from_slice(&[0x16, 3, 1]);
                    v[3..5].copy_from_slice(&body.to_be_bytes());
                    v[5] = 1;
                }
                v
            }
            // A valid hello with a few bytes changed.
            1 => {
                let mut v = if rng.next_u64().is_multiple_of(2) {
                    whole.clone()
                } else {
                    split.clone()
                };
                for _ in 0..1 + rng.next_u64() % 4 {
                    let i = (rng.next_u64() as usize) % v.len();
                    v[i] = rng.next_u64() as u8;
                }
                v
            }
            // A valid hello cut anywhere, with noise after the cut.
            _ => {
                let mut v = split[..(rng.next_u64() as usize) % (split.len() + 1)].to_vec();
                v.extend((0..rng.next_u64() % 8).map(|_| rng.next_u64() as u8));
                v
            }
        };
        let step = 1 + (rng.next_u64() % 16) as usize;
        let mut msg = vec![0u8; 2048];
        let mut p = HelloParser::new(2048);
        let mut end = 0;
        let mut last = Parsed::NeedMore;
        while end < input.len() {
            end = (end + step).min(input.len());
            last = p.feed(&input[..end], &mut msg);
        }
        match last {
            Parsed::Hello(h) => {
                hellos += 1;
                // Positions always lie inside the message buffer.
                let _ = h.sni(&msg);
                assert!(h.alpn(&msg).all(|p| !p.is_empty()));
            }
            Parsed::Malformed(_) => malformed += 1,
            _ => {}
        }
    }
    assert!(hellos > 100, "some mutations still parse: {hellos}");
    assert!(malformed > 100, "many are malformed: {malformed}");
}
