//! The TLS ClientHello, read without decrypting anything: what TLS
//! passthrough routes on (`req.ssl_sni`, `req.ssl_alpn`, `req.ssl_ver`,
//! `req.ssl_hello_type`).
//!
//! [`HelloParser`] is incremental: it is fed every byte read from the
//! client so far, each call continuing where the last one stopped, and
//! copies the handshake message out of its TLS records into a scratch
//! buffer (a ClientHello may be split over several records, and each
//! record over several TCP segments). The client's bytes themselves are
//! never changed: they are forwarded to the server as they came.
//!
//! Lengths are checked strictly (RFC 8446 §4.1.2, RFC 6066 §3, RFC 7301
//! §3.1): a field that overruns its container, a container whose contents
//! do not fill it exactly, a duplicated extension or a ClientHello that
//! does not end its record make the hello [`Parsed::Malformed`]. A hello
//! that cannot fit the limit (the frontend's `tune.bufsize`, as in
//! HAProxy) is [`Parsed::TooLarge`]. No input makes the parser panic.
//!
//! Imports nothing from the crate.

/// TLS record content type of handshake records.
const HANDSHAKE: u8 = 0x16;
/// Handshake message type of a ClientHello.
pub(crate) const CLIENT_HELLO: u8 = 1;
/// The largest record fragment TLS allows (2^14).
const MAX_FRAGMENT: usize = 1 << 14;
/// Record header: type, version (2), length (2).
const RECORD_HEADER: usize = 5;
/// Handshake header: type, length (3).
const HANDSHAKE_HEADER: usize = 4;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// What the bytes read so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A TLS handshake so far; more bytes are needed.
    NeedMore,
    /// The first bytes cannot start a TLS handshake record (`GET /`, SSH,
    /// an SSLv2 hello...).
    NotTls,
    /// A complete first handshake message.
    Hello(Hello),
    /// It started as a TLS handshake but breaks the format; says where.
    Malformed(&'static str),
    /// The hello is (or would be) larger than the limit.
    TooLarge,
}

/// The first handshake message, normally a ClientHello. Names and
/// protocols are kept as positions in the reassembled message (see
/// [`Hello::sni`]), so the value is small and copied freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    /// The handshake message type: 1 for a ClientHello (`req.ssl_hello_type`).
    pub hello_type: u8,
    /// The version in the first record's header (0x0301 for TLS 1.0...).
    pub record_version: u16,
    /// The ClientHello's `legacy_version` (0x0303 from TLS 1.2 and 1.3
    /// clients alike); 0 for another message type.
    pub legacy_version: u16,
    /// The highest version offered in `supported_versions` (GREASE values
    /// aside), else `legacy_version`.
    pub max_version: u16,
    /// The `host_name` of the server_name extension: start..end in the message.
    sni: Option<(u32, u32)>,
    /// The ALPN protocol name list (without its length): start..end.
    alpn: Option<(u32, u32)>,
}

impl Hello {
    /// The server name the client asked for, as sent (not lowercased).
    /// `msg` is the reassembled message the parser wrote.
    pub(crate) fn sni<'m>(&self, msg: &'m [u8]) -> Option<&'m [u8]> {
        let (start, end) = self.sni?;
        msg.get(start as usize..end as usize)
    }

    /// The ALPN protocol names, in the client's order of preference.
    pub(crate) fn alpn<'m>(&self, msg: &'m [u8]) -> Alpn<'m> {
        let list = self
            .alpn
            .and_then(|(start, end)| msg.get(start as usize..end as usize))
            .unwrap_or(&[]);
        Alpn(list)
    }
}

/// The protocol names of an ALPN extension (already checked well formed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Alpn<'m>(&'m [u8]);

impl<'m> Iterator for Alpn<'m> {
    type Item = &'m [u8];

    fn next(&mut self) -> Option<&'m [u8]> {
        let (&len, rest) = self.0.split_first()?;
        let len = usize::from(len);
        let name = rest.get(..len)?;
        self.0 = &rest[len..];
        Some(name)
    }
}

/// Reassembles and parses the first handshake message from a client's
/// bytes. Feed it the whole buffer each time more bytes arrived; a result
/// other than `NeedMore` is final and returned again by later calls.
#[derive(Debug, Clone)]
pub(crate) struct HelloParser {
    limit: usize,
    /// Client bytes consumed: record headers and fragments copied.
    pos: usize,
    /// Bytes of the current record not consumed yet (0: a header is next).
    record_left: usize,
    /// The version in the first record's header.
    record_version: u16,
    /// Handshake bytes copied into the message buffer.
    have: usize,
    /// The message's full length (header included), once known.
    total: Option<usize>,
    done: Option<Parsed>,
}

impl HelloParser {
    /// A parser for a hello of at most `limit` bytes of records.
    pub(crate) fn new(limit: usize) -> HelloParser {
        HelloParser {
            limit,
            pos: 0,
            record_left: 0,
            record_version: 0,
            have: 0,
            total: None,
            done: None,
        }
    }

    /// Continues with `raw`, every byte read from the client so far (the
    /// bytes of earlier calls unchanged in front). The handshake message is
    /// assembled into `msg`, which must stay the same buffer between calls;
    /// positions in a [`Hello`] refer to it.
    pub(crate) fn feed(&mut self, raw: &[u8], msg: &mut [u8]) -> Parsed {
        if let Some(done) = self.done {
            return done;
        }
        let result = self.step(raw, msg);
        if result != Parsed::NeedMore {
            self.done = Some(result);
        }
        result
    }

    fn step(&mut self, raw: &[u8], msg: &mut [u8]) -> Parsed {
        // The first bytes decide whether this is TLS at all.
        match raw {
            [] => return Parsed::NeedMore,
            [t, ..] if *t != HANDSHAKE => return Parsed::NotTls,
            [_, major, ..] if *major != 3 => return Parsed::NotTls,
            _ => {}
        }
        let cap = self.limit.min(msg.len());
        if cap < RECORD_HEADER + HANDSHAKE_HEADER {
            return Parsed::TooLarge;
        }
        loop {
            if self.record_left == 0 {
                let Some(header) = raw.get(self.pos..self.pos + RECORD_HEADER) else {
                    break;
                };
                if header[0] != HANDSHAKE {
                    return Parsed::Malformed("a non-handshake record inside the hello");
                }
                if header[1] != 3 || header[2] > 4 {
                    return Parsed::Malformed("record version is not TLS (3.0 to 3.4)");
                }
                let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
                if len == 0 {
                    return Parsed::Malformed("empty handshake record");
                }
                if len > MAX_FRAGMENT {
                    return Parsed::Malformed("record longer than 16384 bytes");
                }
                if self.pos == 0 {
                    self.record_version = u16::from_be_bytes([header[1], header[2]]);
                }
                self.pos += RECORD_HEADER;
                self.record_left = len;
            }
            let available = raw.len().saturating_sub(self.pos).min(self.record_left);
            if available == 0 {
                break;
            }
            let wanted = match self.total {
                Some(total) => total - self.have,
                None => HANDSHAKE_HEADER - self.have,
            };
            let n = available.min(wanted);
            msg[self.have..self.have + n].copy_from_slice(&raw[self.pos..self.pos + n]);
            self.have += n;
            self.pos += n;
            self.record_left -= n;
            if self.total.is_none() && self.have == HANDSHAKE_HEADER {
                let len = u32::from_be_bytes([0, msg[1], msg[2], msg[3]]) as usize;
                let total = HANDSHAKE_HEADER + len;
                // The message and at least one record header must fit.
                if total + RECORD_HEADER > cap {
                    return Parsed::TooLarge;
                }
                self.total = Some(total);
            }
            if self.total == Some(self.have) {
                let message = &msg[..self.have];
                if message[0] != CLIENT_HELLO {
                    return Parsed::Hello(Hello {
                        hello_type: message[0],
                        record_version: self.record_version,
                        legacy_version: 0,
                        max_version: 0,
                        sni: None,
                        alpn: None,
                    });
                }
                // A ClientHello may be followed by a key change (0-RTT):
                // it must end with its record (RFC 8446 §5.1).
                if self.record_left != 0 {
                    return Parsed::Malformed("bytes after the ClientHello in its record");
                }
                return match client_hello(message, self.record_version) {
                    Ok(hello) => Parsed::Hello(hello),
                    Err(reason) => Parsed::Malformed(reason),
                };
            }
        }
        if raw.len() >= self.limit {
            // The buffer is full and the hello still incomplete.
            return Parsed::TooLarge;
        }
        Parsed::NeedMore
    }
}

/// A cursor over a message that reports where it ran out.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], &'static str> {
        let s = self.buf.get(self.pos..self.pos + n).ok_or(what)?;
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, &'static str> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, &'static str> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// Parses a complete ClientHello `msg` (handshake header included).
fn client_hello(msg: &[u8], record_version: u16) -> Result<Hello, &'static str> {
    let mut r = Reader {
        buf: msg,
        pos: HANDSHAKE_HEADER,
    };
    let legacy_version = r.u16("ClientHello shorter than its version")?;
    if legacy_version >> 8 != 3 {
        return Err("ClientHello version is not TLS (3.x)");
    }
    r.take(32, "ClientHello shorter than its random")?;
    let sid = r.u8("ClientHello ends before its session id")?;
    if sid > 32 {
        return Err("session id longer than 32 bytes");
    }
    r.take(usize::from(sid), "session id overruns the ClientHello")?;
    let suites = usize::from(r.u16("ClientHello ends before its cipher suites")?);
    if suites < 2 || !suites.is_multiple_of(2) {
        return Err("cipher suite list empty or of odd length");
    }
    r.take(suites, "cipher suites overrun the ClientHello")?;
    let methods = usize::from(r.u8("ClientHello ends before its compression methods")?);
    if methods == 0 {
        return Err("no compression method");
    }
    r.take(methods, "compression methods overrun the ClientHello")?;
    let mut hello = Hello {
        hello_type: CLIENT_HELLO,
        record_version,
        legacy_version,
        max_version: legacy_version,
        sni: None,
        alpn: None,
    };
    if r.left() == 0 {
        return Ok(hello); // no extensions (SSLv3/TLS 1.0 era clients)
    }
    let extensions = usize::from(r.u16("truncated extensions length")?);
    if extensions != r.left() {
        return Err("extensions length does not match the ClientHello");
    }
    let (mut seen_names, mut seen_versions) = (false, false);
    while r.left() > 0 {
        let kind = r.u16("truncated extension header")?;
        let len = usize::from(r.u16("truncated extension header")?);
        let start = r.pos;
        let data = r.take(len, "extension overruns the extension list")?;
        match kind {
            EXT_SERVER_NAME => {
                if seen_names {
                    return Err("server_name extension sent twice");
                }
                seen_names = true;
                hello.sni = server_name(data, start)?;
            }
            EXT_ALPN => {
                if hello.alpn.is_some() {
                    return Err("ALPN extension sent twice");
                }
                hello.alpn = Some(alpn(data, start)?);
            }
            EXT_SUPPORTED_VERSIONS => {
                if seen_versions {
                    return Err("supported_versions extension sent twice");
                }
                seen_versions = true;
                if let Some(v) = supported_versions(data)? {
                    hello.max_version = v;
                }
            }
            _ => {}
        }
    }
    Ok(hello)
}

/// The host_name in a server_name extension's data (found at `at` in the
/// message): a list of (type, name) entries filling the extension exactly.
fn server_name(data: &[u8], at: usize) -> Result<Option<(u32, u32)>, &'static str> {
    let mut r = Reader { buf: data, pos: 0 };
    let list = usize::from(r.u16("server_name extension without its list")?);
    if list != r.left() || list == 0 {
        return Err("server_name list length does not match its extension");
    }
    let mut host = None;
    while r.left() > 0 {
        let kind = r.u8("truncated server name entry")?;
        let len = usize::from(r.u16("truncated server name entry")?);
        let start = r.pos;
        let name = r.take(len, "server name overruns its list")?;
        if kind != 0 {
            continue; // unknown name types are skipped
        }
        if host.is_some() {
            return Err("two host names in server_name");
        }
        if name.is_empty() || name.len() > 255 {
            return Err("host name empty or longer than 255 bytes");
        }
        if !name.iter().all(|&b| b.is_ascii_graphic()) {
            return Err("host name with bytes other than printable ASCII");
        }
        host = Some(((at + start) as u32, (at + start + len) as u32));
    }
    Ok(host)
}

/// The protocol name list of an ALPN extension (found at `at`): every
/// name non-empty and the names filling the list exactly.
fn alpn(data: &[u8], at: usize) -> Result<(u32, u32), &'static str> {
    let mut r = Reader { buf: data, pos: 0 };
    let list = usize::from(r.u16("ALPN extension without its list")?);
    if list != r.left() || list < 2 {
        return Err("ALPN list length does not match its extension");
    }
    let start = r.pos;
    while r.left() > 0 {
        let len = usize::from(r.u8("truncated ALPN protocol")?);
        if len == 0 {
            return Err("empty ALPN protocol name");
        }
        r.take(len, "ALPN protocol overruns its list")?;
    }
    Ok(((at + start) as u32, (at + data.len()) as u32))
}

/// The highest version in a ClientHello's supported_versions, GREASE
/// values (0x?A?A, RFC 8701) aside.
fn supported_versions(data: &[u8]) -> Result<Option<u16>, &'static str> {
    let mut r = Reader { buf: data, pos: 0 };
    let list = usize::from(r.u8("supported_versions without its list")?);
    if list != r.left() || list < 2 || !list.is_multiple_of(2) {
        return Err("supported_versions length does not match its extension");
    }
    let mut max = None;
    while r.left() > 0 {
        let v = r.u16("truncated supported version")?;
        let grease = v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff;
        if !grease {
            max = max.max(Some(v));
        }
    }
    Ok(max)
}

#[cfg(test)]
pub(crate) mod tests;
