//! HTTP/1.x message heads: parsing (with `httparse`), the RFC 9112 checks
//! `httparse` leaves to us, message framing, header edits, and writing a
//! head back out.
//!
//! A `Head` owns a copy of the raw head bytes and refers to its parts by
//! offsets, so the connection's read buffer is free for the body. Edits
//! never touch the raw bytes: removed headers are flagged, new names and
//! values live in `extra`. Every `Vec` is reused from one message to the
//! next, so a warmed-up connection parses without allocating.

use crate::base::tchar::is_tchar;
use std::ops::Range;

/// Most header fields in one head (HAProxy's `tune.http.maxhdr` is 101).
pub(crate) const MAX_HEADERS: usize = 101;

/// Where a piece of text lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// In the raw head bytes.
    Raw(u32, u32),
    /// In `extra` (written by an edit).
    Extra(u32, u32),
}

impl Slot {
    fn range(self) -> Range<usize> {
        match self {
            Slot::Raw(s, l) | Slot::Extra(s, l) => s as usize..(s + l) as usize,
        }
    }
}

/// One header field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: Slot,
    pub value: Slot,
    /// Deleted by an edit or as hop-by-hop.
    pub removed: bool,
}

/// How the body of a message is delimited (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Framing {
    /// No body.
    #[default]
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the server closes (responses only).
    UntilClose,
}

/// Why a head was refused. The status is what the client sees (400-class
/// for requests; every response problem becomes 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Malformed: 400 for a request, 502 for a response.
    Invalid(&'static str),
    /// Too many header fields, or a head larger than the buffer: 431.
    TooLarge,
    /// A method or feature corral does not handle (CONNECT): 501.
    NotImplemented(&'static str),
}

/// What the `Connection` header (and the version) say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConnectionOpts {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
    /// Other tokens: the names of hop-by-hop fields of the sender's.
    pub named: bool,
}

/// A parsed request or response head.
#[derive(Debug, Default)]
pub(crate) struct Head {
    /// The raw head, from the first byte to the blank line included.
    pub raw: Vec<u8>,
    /// Bytes written by edits.
    pub extra: Vec<u8>,
    pub fields: Vec<Field>,
    /// Request: method and target. Response: unused.
    pub method: Slot,
    pub target: Slot,
    /// Response: status code and reason.
    pub status: u16,
    pub reason: Slot,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub framing: Framing,
    pub conn: ConnectionOpts,
    /// `Expect: 100-continue` (requests).
    pub expect_continue: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot::Raw(0, 0)
    }
}

/// Result of trying to parse a head out of received bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A complete head of this many bytes.
    Complete(usize),
    /// More bytes are needed.
    Partial,
}

impl Head {
    pub(crate) fn get(&self, slot: Slot) -> &[u8] {
        match slot {
            Slot::Raw(..) => &self.raw[slot.range()],
            Slot::Extra(..) => &self.extra[slot.range()],
        }
    }

    pub(crate) fn method(&self) -> &[u8] {
        self.get(self.method)
    }

    pub(crate) fn target(&self) -> &[u8] {
        self.get(self.target)
    }

    pub(crate) fn reason(&self) -> &[u8] {
        self.get(self.reason)
    }

    /// The path part of the target (without the query), also for an
    /// absolute-form target.
    pub(crate) fn path(&self) -> &[u8] {
        let t = self.target();
        let t = strip_authority(t);
        match t.iter().position(|&b| b == b'?') {
            Some(q) => &t[..q],
            None => t,
        }
    }

    /// The query without its `?`, if any.
    pub(crate) fn query(&self) -> Option<&[u8]> {
        let t = self.target();
        t.iter().position(|&b| b == b'?').map(|q| &t[q + 1..])
    }

    /// Live (not removed) fields with their name and value.
    pub(crate) fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .filter(|f| !f.removed)
            .map(|f| (self.get(f.name), self.get(f.value)))
    }

    /// Values of the live header `name` (case-insensitive), in order.
    pub(crate) fn values<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub(crate) fn has(&self, name: &[u8]) -> bool {
        self.values(name).next().is_some()
    }

    fn clear(&mut self) {
        self.raw.clear();
        self.extra.clear();
        self.fields.clear();
        self.method = Slot::default();
        self.target = Slot::default();
        self.reason = Slot::default();
        self.status = 0;
        self.minor = 1;
        self.framing = Framing::None;
        self.conn = ConnectionOpts::default();
        self.expect_continue = false;
    }

    // ---- parsing ----------------------------------------------------------

    /// Parses a request head from `buf`. On `Complete(n)` the first `n`
    /// bytes were the head and `self` describes it.
    pub(crate) fn parse_request(&mut self, buf: &[u8]) -> Result<Parsed, HeadError> {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut storage);
        let len = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(httparse::Error::Version) => {
                return Err(HeadError::Invalid("unsupported HTTP version"));
            }
            Err(httparse::Error::Token) => return Err(HeadError::Invalid("invalid method")),
            Err(httparse::Error::HeaderName) => {
                return Err(HeadError::Invalid("invalid header name"));
            }
            Err(httparse::Error::HeaderValue) => {
                return Err(HeadError::Invalid("invalid header value"));
            }
            Err(_) => return Err(HeadError::Invalid("malformed request line")),
        };
        self.clear();
        self.raw.extend_from_slice(&buf[..len]);
        check_line_endings(&self.raw)?;
        let base = buf.as_ptr() as usize;
        let at = |s: &[u8]| Slot::Raw((s.as_ptr() as usize - base) as u32, s.len() as u32);
        let method = req.method.unwrap_or("");
        let target = req.path.unwrap_or("");
        self.method = at(method.as_bytes());
        self.target = at(target.as_bytes());
        self.minor = req.version.unwrap_or(1);
        for h in req.headers.iter() {
            self.fields.push(Field {
                name: at(h.name.as_bytes()),
                value: at(h.value),
                removed: false,
            });
        }
        check_target(method.as_bytes(), target.as_bytes())?;
        self.read_connection();
        self.remove_named_by_connection();
        self.request_semantics()?;
        Ok(Parsed::Complete(len))
    }

    /// Parses a response head. `request_method` decides whether a body can
    /// follow (HEAD).
    pub(crate) fn parse_response(
        &mut self,
        buf: &[u8],
        head_request: bool,
    ) -> Result<Parsed, HeadError> {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut storage);
        let len = match res.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Invalid("malformed response head")),
        };
        self.clear();
        self.raw.extend_from_slice(&buf[..len]);
        check_line_endings(&self.raw)?;
        let base = buf.as_ptr() as usize;
        let at = |s: &[u8]| Slot::Raw((s.as_ptr() as usize - base) as u32, s.len() as u32);
        self.status = res.code.unwrap_or(0);
        if !(100..=599).contains(&self.status) {
            return Err(HeadError::Invalid("invalid status code"));
        }
        let reason = res.reason.unwrap_or("");
        self.reason = if reason.is_empty() {
            Slot::Raw(0, 0)
        } else {
            at(reason.as_bytes())
        };
        self.minor = res.version.unwrap_or(1);
        for h in res.headers.iter() {
            self.fields.push(Field {
                name: at(h.name.as_bytes()),
                value: at(h.value),
                removed: false,
            });
        }
        self.read_connection();
        self.remove_named_by_connection();
        self.response_semantics(head_request)?;
        Ok(Parsed::Complete(len))
    }

    /// Reads the `Connection` header into `conn` (after the version's
    /// default).
    fn read_connection(&mut self) {
        let mut opts = ConnectionOpts::default();
        for v in self.values(b"connection") {
            for token in v.split(|&b| b == b',') {
                let t = trim(token);
                if t.eq_ignore_ascii_case(b"close") {
                    opts.close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    opts.keep_alive = true;
                } else if t.eq_ignore_ascii_case(b"upgrade") {
                    opts.upgrade = true;
                } else if !t.is_empty() {
                    opts.named = true;
                }
            }
        }
        self.conn = opts;
    }

    /// Whether the peer wants this connection closed after the message.
    pub(crate) fn wants_close(&self) -> bool {
        self.conn.close || (self.minor == 0 && !self.conn.keep_alive)
    }

    fn request_semantics(&mut self) -> Result<(), HeadError> {
        let hosts = self.values(b"host").count();
        if hosts > 1 {
            return Err(HeadError::Invalid("several Host headers"));
        }
        if hosts == 0 && self.minor == 1 {
            return Err(HeadError::Invalid("HTTP/1.1 request without Host"));
        }
        if let Some(h) = self.values(b"host").next()
            && !valid_host(h)
        {
            return Err(HeadError::Invalid("invalid Host header"));
        }
        self.absolute_form()?;
        self.framing = self.body_framing(true)?;
        // A body on GET or HEAD has no meaning (RFC 9110 §9.3.1); servers
        // that ignore it would read it as the next request.
        if self.framing != Framing::None && matches!(self.method(), b"GET" | b"HEAD") {
            return Err(HeadError::Invalid("GET or HEAD request with a body"));
        }
        let expect = self
            .values(b"expect")
            .any(|v| trim(v).eq_ignore_ascii_case(b"100-continue"));
        self.expect_continue = expect;
        Ok(())
    }

    /// An absolute-form target (`GET http://a.example/x HTTP/1.1`): its
    /// authority is the request's host (RFC 9112 §3.2.2), and the server
    /// may read either, so the two must agree, or rules and fetches that
    /// look at Host would judge a request the server routes elsewhere.
    /// As HAProxy does, a Host that names another host (compared without
    /// case, a port equal to the scheme's default as no port) is refused
    /// with 400; so are an authority with user information or none at
    /// all. An HTTP/1.0 request without Host gets one from the target.
    fn absolute_form(&mut self) -> Result<(), HeadError> {
        let Some((https, authority)) = split_absolute(self.target()) else {
            return Ok(());
        };
        if authority.contains(&b'@') {
            return Err(HeadError::Invalid("user information in the request target"));
        }
        if !valid_host(authority) {
            return Err(HeadError::Invalid(
                "invalid authority in the request target",
            ));
        }
        let missing = match self.values(b"host").next() {
            Some(host) if same_authority(https, authority, trim(host)) => None,
            Some(_) => {
                return Err(HeadError::Invalid(
                    "the Host header differs from the request target's authority",
                ));
            }
            // Rare (HTTP/1.0 and absolute-form): the copy does not matter.
            None => Some(authority.to_vec()),
        };
        if let Some(authority) = missing {
            self.add(b"Host", &authority);
        }
        Ok(())
    }

    fn response_semantics(&mut self, head_request: bool) -> Result<(), HeadError> {
        let framing = self.body_framing(false)?;
        self.framing =
            if head_request || self.status < 200 || self.status == 204 || self.status == 304 {
                Framing::None
            } else {
                framing
            };
        Ok(())
    }

    /// Content-Length and Transfer-Encoding, checked so that corral and
    /// the next hop can never disagree on where the body ends, then
    /// rewritten in their one plain form: a single Content-Length value,
    /// and Transfer-Encoding as its coding names only (`chunked;x` is
    /// forwarded as `chunked`).
    fn body_framing(&mut self, request: bool) -> Result<Framing, HeadError> {
        for f in &self.fields {
            let name = self.get(f.name);
            if looks_like(name, b"contentlength") && !name.eq_ignore_ascii_case(b"content-length")
                || looks_like(name, b"transferencoding")
                    && !name.eq_ignore_ascii_case(b"transfer-encoding")
            {
                return Err(HeadError::Invalid(
                    "a header name that resembles Content-Length or Transfer-Encoding",
                ));
            }
        }
        let mut te: Option<Vec<u8>> = None;
        let mut chunked_last = false;
        let mut chunked_count = 0;
        for v in self.values(b"transfer-encoding") {
            let list = te.get_or_insert_with(Vec::new);
            for coding in v.split(|&b| b == b',') {
                let (name, params) = match coding.iter().position(|&b| b == b';') {
                    Some(i) => (trim(&coding[..i]), Some(&coding[i + 1..])),
                    None => (trim(coding), None),
                };
                if name.is_empty() && params.is_none() {
                    continue;
                }
                if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                    return Err(HeadError::Invalid("invalid Transfer-Encoding"));
                }
                if let Some(p) = params
                    && !valid_params(p)
                {
                    return Err(HeadError::Invalid("invalid Transfer-Encoding parameter"));
                }
                chunked_last = name.eq_ignore_ascii_case(b"chunked");
                if chunked_last {
                    chunked_count += 1;
                }
                if !list.is_empty() {
                    list.extend_from_slice(b", ");
                }
                list.extend(name.iter().map(u8::to_ascii_lowercase));
            }
        }
        let mut length: Option<u64> = None;
        let mut cl_fields = 0;
        let mut cl_list = false;
        for v in self.values(b"content-length") {
            cl_fields += 1;
            for part in v.split(|&b| b == b',') {
                cl_list |= part.len() < v.len();
                let n =
                    parse_length(trim(part)).ok_or(HeadError::Invalid("invalid Content-Length"))?;
                match length {
                    Some(prev) if prev != n => {
                        return Err(HeadError::Invalid("conflicting Content-Length values"));
                    }
                    _ => length = Some(n),
                }
            }
        }
        if let Some(list) = te {
            if cl_fields > 0 {
                return Err(HeadError::Invalid(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if self.minor == 0 {
                return Err(HeadError::Invalid(
                    "Transfer-Encoding in an HTTP/1.0 message",
                ));
            }
            if !chunked_last || chunked_count != 1 {
                return Err(HeadError::Invalid(
                    "Transfer-Encoding does not end with chunked exactly once",
                ));
            }
            self.set(b"Transfer-Encoding", &list);
            return Ok(Framing::Chunked);
        }
        if let Some(n) = length
            && (cl_fields > 1 || cl_list)
        {
            // Rare (a repeated value): the allocation does not matter.
            self.set(b"Content-Length", n.to_string().as_bytes());
        }
        Ok(match length {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            None if request => Framing::None,
            None => Framing::UntilClose,
        })
    }

    // ---- edits ------------------------------------------------------------

    fn push_extra(&mut self, bytes: &[u8]) -> Slot {
        let start = self.extra.len() as u32;
        self.extra.extend_from_slice(bytes);
        Slot::Extra(start, bytes.len() as u32)
    }

    /// Removes every field named `name`.
    pub(crate) fn remove(&mut self, name: &[u8]) {
        for i in 0..self.fields.len() {
            let f = self.fields[i];
            if !f.removed && self.get(f.name).eq_ignore_ascii_case(name) {
                self.fields[i].removed = true;
            }
        }
    }

    /// Appends a field.
    pub(crate) fn add(&mut self, name: &[u8], value: &[u8]) {
        let name = self.push_extra(name);
        let value = self.push_extra(value);
        self.fields.push(Field {
            name,
            value,
            removed: false,
        });
    }

    /// Replaces every field named `name` with one field.
    pub(crate) fn set(&mut self, name: &[u8], value: &[u8]) {
        self.remove(name);
        self.add(name, value);
    }

    /// Replaces the value of field `index`.
    pub(crate) fn set_value(&mut self, index: usize, value: &[u8]) {
        let slot = self.push_extra(value);
        self.fields[index].value = slot;
    }

    /// Replaces the request target.
    pub(crate) fn set_target(&mut self, target: &[u8]) {
        self.target = self.push_extra(target);
    }

    /// Removes the fields the sender's `Connection` header names as its
    /// own hop-by-hop fields (RFC 9110 §7.6.1). Done when the head is
    /// parsed, so it touches only what the peer sent: a field corral adds
    /// later (rules, `option forwardfor`, `unique-id-header`) is never
    /// removed by a peer's token, and rules and fetches see the head as the
    /// next hop will. The fields corral manages itself (Connection,
    /// Keep-Alive, Proxy-Connection, TE, Upgrade) stay visible to rules
    /// and go in [`Head::strip_hop_by_hop`]; framing fields and Host are
    /// never removed by a token.
    fn remove_named_by_connection(&mut self) {
        if !self.conn.named {
            return;
        }
        let parsed = self.fields.len();
        for i in 0..parsed {
            let f = self.fields[i];
            if f.removed || !self.get(f.name).eq_ignore_ascii_case(b"connection") {
                continue;
            }
            let value = f.value.range();
            let mut at = value.start;
            while at < value.end {
                let end = self.raw[at..value.end]
                    .iter()
                    .position(|&b| b == b',')
                    .map_or(value.end, |p| at + p);
                let token = trim(&self.raw[at..end]);
                at = end + 1;
                if token.is_empty() || kept_token(token) {
                    continue;
                }
                for j in 0..parsed {
                    let g = self.fields[j];
                    if !g.removed && self.raw[g.name.range()].eq_ignore_ascii_case(token) {
                        self.fields[j].removed = true;
                    }
                }
            }
        }
    }

    /// Removes the hop-by-hop fields corral manages itself before a head
    /// is forwarded: Connection, Keep-Alive, Proxy-Connection, TE and
    /// Upgrade (Trailer stays: it describes the message). `keep_upgrade`
    /// keeps Upgrade for a protocol switch. (The fields a Connection
    /// header names went when the head was parsed.)
    pub(crate) fn strip_hop_by_hop(&mut self, keep_upgrade: bool) {
        self.remove(b"connection");
        self.remove(b"keep-alive");
        self.remove(b"proxy-connection");
        self.remove(b"te");
        if !keep_upgrade {
            self.remove(b"upgrade");
        }
    }

    // ---- writing ----------------------------------------------------------

    /// Writes the request head for the server: the request line in the
    /// client's version (an HTTP/1.0 request may have no Host, and a server
    /// must refuse an HTTP/1.1 one without; HAProxy forwards 1.0 as 1.0
    /// too), live fields, then `connection` (if any), then the blank line.
    pub(crate) fn write_request(&self, out: &mut Vec<u8>, connection: Option<&[u8]>) {
        out.extend_from_slice(self.method());
        out.push(b' ');
        out.extend_from_slice(self.target());
        out.extend_from_slice(if self.minor == 0 {
            b" HTTP/1.0\r\n"
        } else {
            b" HTTP/1.1\r\n"
        });
        self.write_fields(out, connection);
    }

    /// Writes the response head for the client, always as HTTP/1.1.
    pub(crate) fn write_response(&self, out: &mut Vec<u8>, connection: Option<&[u8]>) {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_status(out, self.status);
        out.push(b' ');
        if self.reason().is_empty() {
            out.extend_from_slice(crate::model::errors::reason(self.status).as_bytes());
        } else {
            out.extend_from_slice(self.reason());
        }
        out.extend_from_slice(b"\r\n");
        self.write_fields(out, connection);
    }

    fn write_fields(&self, out: &mut Vec<u8>, connection: Option<&[u8]>) {
        for (name, value) in self.headers() {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(c) = connection {
            out.extend_from_slice(b"Connection: ");
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn push_status(out: &mut Vec<u8>, status: u16) {
    out.push(b'0' + (status / 100) as u8);
    out.push(b'0' + (status / 10 % 10) as u8);
    out.push(b'0' + (status % 10) as u8);
}

/// Every line ends in CRLF; no bare CR, bare LF or NUL anywhere.
fn check_line_endings(raw: &[u8]) -> Result<(), HeadError> {
    let mut prev = 0u8;
    for (i, &b) in raw.iter().enumerate() {
        match b {
            0 => return Err(HeadError::Invalid("NUL byte in the head")),
            b'\n' if prev != b'\r' => return Err(HeadError::Invalid("bare LF in the head")),
            b'\r' if raw.get(i + 1) != Some(&b'\n') => {
                return Err(HeadError::Invalid("bare CR in the head"));
            }
            _ => {}
        }
        prev = b;
    }
    Ok(())
}

/// Request targets in the four forms of RFC 9112 §3.2, each only with the
/// method it belongs to, and only characters allowed in a URI.
fn check_target(method: &[u8], target: &[u8]) -> Result<(), HeadError> {
    if target.is_empty() {
        return Err(HeadError::Invalid("empty request target"));
    }
    if method == b"CONNECT" {
        return Err(HeadError::NotImplemented("CONNECT"));
    }
    if target == b"*" {
        return if method == b"OPTIONS" {
            Ok(())
        } else {
            Err(HeadError::Invalid("asterisk target outside OPTIONS"))
        };
    }
    let origin = target[0] == b'/';
    let absolute = {
        let lower_starts =
            |p: &[u8]| target.len() > p.len() && target[..p.len()].eq_ignore_ascii_case(p);
        lower_starts(b"http://") || lower_starts(b"https://")
    };
    if !origin && !absolute {
        return Err(HeadError::Invalid("invalid request target"));
    }
    if origin && target.starts_with(b"//") {
        // Not invalid per se, but a path like //host confuses some servers
        // into reading an authority; HAProxy accepts it, so do we.
    }
    if !target.iter().all(|&b| is_uri_char(b)) {
        return Err(HeadError::Invalid(
            "invalid character in the request target",
        ));
    }
    Ok(())
}

/// Bytes corral passes in a request target: visible ASCII and bytes
/// above 0x7F (raw UTF-8). None of them can move a message boundary;
/// space, controls and DEL are refused. (HAProxy also passes `<>"{}|\^`;
/// raw non-ASCII is passed as AWS's desync corpus rates it compliant.)
fn is_uri_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Connection tokens that never remove a field at parse time: the
/// connection options, the hop-by-hop fields corral removes itself when it
/// forwards, and the fields that frame the message or name its host.
fn kept_token(t: &[u8]) -> bool {
    [
        &b"close"[..],
        b"keep-alive",
        b"upgrade",
        b"connection",
        b"proxy-connection",
        b"te",
        b"transfer-encoding",
        b"content-length",
        b"host",
    ]
    .iter()
    .any(|k| t.eq_ignore_ascii_case(k))
}

/// A Host value: a reg-name, IPv4 or bracketed IPv6, with an optional port.
fn valid_host(v: &[u8]) -> bool {
    let v = trim(v);
    if v.is_empty() {
        return false;
    }
    let (host, port) = if v[0] == b'[' {
        match v.iter().position(|&b| b == b']') {
            Some(end) => (&v[..=end], &v[end + 1..]),
            None => return false,
        }
    } else {
        match v.iter().position(|&b| b == b':') {
            Some(c) => (&v[..c], &v[c..]),
            None => (v, &v[v.len()..]),
        }
    };
    let host_ok = if host.first() == Some(&b'[') {
        host.iter()
            .all(|&b| b.is_ascii_hexdigit() || b"[]:.".contains(&b))
    } else {
        host.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b))
    };
    let port_ok = port.is_empty()
        || (port[0] == b':' && port.len() <= 6 && port[1..].iter().all(u8::is_ascii_digit));
    host_ok && port_ok
}

/// Whether a field name, lower-cased with everything but letters and
/// digits dropped, is `target` (`Transfer_Encoding`, `Content--Length`).
fn looks_like(name: &[u8], target: &[u8]) -> bool {
    let mut t = target.iter();
    for &b in name {
        if b.is_ascii_alphanumeric() && t.next() != Some(&b.to_ascii_lowercase()) {
            return false;
        }
    }
    t.next().is_none()
}

/// `;name=value` parameters of a transfer coding: tokens, `=`, quoted
/// strings, optional whitespace.
fn valid_params(p: &[u8]) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for &b in p {
        if quoted {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                (false, 0..=0x08 | 0x0a..=0x1f | 0x7f) => return false,
                _ => {}
            }
        } else if b == b'"' {
            quoted = true;
        } else if !(is_tchar(b) || b"=; \t".contains(&b)) {
            return false;
        }
    }
    !quoted
}

/// A Content-Length value: 1 to 18 digits (no sign, no spaces inside).
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// An absolute-form target's scheme (`true` for https) and authority.
fn split_absolute(t: &[u8]) -> Option<(bool, &[u8])> {
    let starts = |p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
    let (https, rest) = if starts(b"http://") {
        (false, &t[7..])
    } else if starts(b"https://") {
        (true, &t[8..])
    } else {
        return None;
    };
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?' || b == b'#')
        .unwrap_or(rest.len());
    Some((https, &rest[..end]))
}

/// Whether two authorities name the same host and port: the host without
/// case, a missing or empty port as the scheme's default.
fn same_authority(https: bool, a: &[u8], b: &[u8]) -> bool {
    let default: &[u8] = if https { b"443" } else { b"80" };
    let split = |v: &[u8]| -> (usize, usize) {
        // The host ends at the colon after a bracketed IPv6 address, or at
        // the first colon of anything else (as `valid_host` reads it).
        let from = if v.first() == Some(&b'[') {
            v.iter().position(|&b| b == b']').unwrap_or(0)
        } else {
            0
        };
        match v[from..].iter().position(|&b| b == b':') {
            Some(c) => (from + c, from + c + 1),
            None => (v.len(), v.len()),
        }
    };
    let (ah, ap) = split(a);
    let (bh, bp) = split(b);
    let (pa, pb) = (&a[ap..], &b[bp..]);
    let (pa, pb) = (
        if pa.is_empty() { default } else { pa },
        if pb.is_empty() { default } else { pb },
    );
    a[..ah].eq_ignore_ascii_case(&b[..bh]) && pa == pb
}

/// Removes `scheme://authority` from an absolute-form target.
fn strip_authority(t: &[u8]) -> &[u8] {
    if t.first() == Some(&b'/') {
        return t;
    }
    match t.windows(3).position(|w| w == b"://") {
        Some(i) => {
            let rest = &t[i + 3..];
            match rest.iter().position(|&b| b == b'/' || b == b'?') {
                Some(p) => &rest[p..],
                None => b"/",
            }
        }
        None => t,
    }
}

/// Whether a method is idempotent (RFC 9110 §9.2.2): such a request can
/// be sent again if its connection failed before an answer.
pub(crate) fn idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"PUT" | b"DELETE" | b"OPTIONS" | b"TRACE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Result<Head, HeadError> {
        let mut h = Head::default();
        match h.parse_request(text.as_bytes())? {
            Parsed::Complete(n) => {
                assert_eq!(n, text.len());
                Ok(h)
            }
            Parsed::Partial => panic!("partial: {text:?}"),
        }
    }

    fn res(text: &str, head: bool) -> Result<Head, HeadError> {
        let mut h = Head::default();
        match h.parse_response(text.as_bytes(), head)? {
            Parsed::Complete(_) => Ok(h),
            Parsed::Partial => panic!("partial"),
        }
    }

    #[test]
    fn a_plain_get() {
        let h = req("GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\n\r\n").unwrap();
        assert_eq!(h.method(), b"GET");
        assert_eq!(h.path(), b"/a/b");
        assert_eq!(h.query(), Some(&b"x=1"[..]));
        assert_eq!(h.framing, Framing::None);
        assert_eq!(h.values(b"x-a").collect::<Vec<_>>(), vec![b"1"]);
        assert!(!h.wants_close());
    }

    #[test]
    fn framing_rules() {
        let cl = req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(cl.framing, Framing::Length(5));
        let same =
            req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n")
                .unwrap();
        assert_eq!(same.framing, Framing::Length(5));
        let ch =
            req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap();
        assert_eq!(ch.framing, Framing::Chunked);
        for bad in [
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
        ] {
            assert!(matches!(req(bad), Err(HeadError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn line_endings_and_bytes() {
        for bad in [
            "GET / HTTP/1.1\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: b\0c\r\n\r\n",
            "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET a HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /\x7fx HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent--Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            "HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        ] {
            let mut h = Head::default();
            let r = h.parse_request(bad.as_bytes());
            assert!(
                matches!(r, Err(HeadError::Invalid(_))),
                "{bad:?} gave {r:?}"
            );
        }
        // HTTP/0.9 has no version: never a complete HTTP/1 request.
        let mut h = Head::default();
        assert!(h.parse_request(b"GET /\r\n\r\n").is_err());
        assert!(req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").is_ok());
        assert!(
            req("GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap()
                .path()
                == b"/b"
        );
        assert!(req("GET / HTTP/1.0\r\n\r\n").is_ok(), "1.0 needs no Host");
        assert!(matches!(
            req("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
            Err(HeadError::NotImplemented(_))
        ));
    }

    #[test]
    fn response_framing() {
        assert_eq!(
            res("HTTP/1.1 200 OK\r\n\r\n", false).unwrap().framing,
            Framing::UntilClose
        );
        assert_eq!(
            res("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true)
                .unwrap()
                .framing,
            Framing::None
        );
        assert_eq!(
            res(
                "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
                false
            )
            .unwrap()
            .framing,
            Framing::None
        );
        assert_eq!(
            res("HTTP/1.1 304 Not Modified\r\n\r\n", false)
                .unwrap()
                .framing,
            Framing::None
        );
        assert_eq!(
            res(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            )
            .unwrap()
            .framing,
            Framing::Chunked
        );
        assert!(
            res(
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            )
            .is_err()
        );
        assert!(res("HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n", false).is_err());
    }

    #[test]
    fn hop_by_hop_and_rewrite() {
        let mut h = req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Keep: k\r\n\r\n").unwrap();
        assert!(h.wants_close());
        h.strip_hop_by_hop(false);
        h.set(b"X-Client-IP", b"10.0.0.1");
        h.set_target(b"/new?q");
        let mut out = Vec::new();
        h.write_request(&mut out, Some(b"keep-alive"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /new?q HTTP/1.1\r\nHost: a\r\nX-Keep: k\r\nX-Client-IP: 10.0.0.1\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn connection_tokens_remove_only_what_the_peer_sent() {
        let mut h = req("GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Client-IP, X-Forwarded-For, keep-alive\r\nX-Client-IP: 6.6.6.6\r\nUpgrade: h2c\r\n\r\n").unwrap();
        // Parsed: the client's own X-Client-IP is gone, Connection and
        // Upgrade stay visible to rules until the head is forwarded.
        assert!(!h.has(b"x-client-ip"));
        assert!(h.has(b"connection") && h.has(b"upgrade"));
        h.set(b"X-Client-IP", b"10.0.0.1");
        h.add(b"X-Forwarded-For", b"10.0.0.1");
        h.strip_hop_by_hop(false);
        let mut out = Vec::new();
        h.write_request(&mut out, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Client-IP: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
        );
        // A server's token cannot remove what response rules add either.
        let mut r = res(
            "HTTP/1.1 200 OK\r\nConnection: Strict-Transport-Security\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        r.add(b"Strict-Transport-Security", b"max-age=1");
        r.strip_hop_by_hop(false);
        assert!(r.has(b"strict-transport-security"));
    }

    #[test]
    fn absolute_form_and_host_must_agree() {
        for ok in [
            "GET http://admin.test/id.txt HTTP/1.1\r\nHost: admin.test\r\n\r\n",
            "GET http://ADMIN.test:80/ HTTP/1.1\r\nHost: admin.TEST\r\n\r\n",
            "GET http://admin.test/ HTTP/1.1\r\nHost: admin.test:80\r\n\r\n",
            "GET https://admin.test:443/ HTTP/1.1\r\nHost: admin.test\r\n\r\n",
            "GET http://admin.test:8080?q HTTP/1.1\r\nHost: admin.test:8080\r\n\r\n",
            "GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]\r\n\r\n",
        ] {
            assert!(req(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "GET http://admin.test/id.txt HTTP/1.1\r\nHost: public.test\r\n\r\n",
            "GET http://ADMIN.test:80/ HTTP/1.1\r\nHost: public.test\r\n\r\n",
            "GET http://admin.test:8080/ HTTP/1.1\r\nHost: admin.test\r\n\r\n",
            "GET https://admin.test/ HTTP/1.1\r\nHost: admin.test:80\r\n\r\n",
            "GET http://public.test@admin.test/ HTTP/1.1\r\nHost: public.test\r\n\r\n",
            "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET http://admin.test/ HTTP/1.0\r\nHost: public.test\r\n\r\n",
        ] {
            assert!(matches!(req(bad), Err(HeadError::Invalid(_))), "{bad:?}");
        }
        // HTTP/1.0 without Host: the target's authority becomes the Host.
        let h = req("GET http://admin.test/x HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(h.values(b"host").next(), Some(&b"admin.test"[..]));
    }

    #[test]
    fn an_http_1_0_request_goes_out_as_1_0() {
        let h = req("GET /x HTTP/1.0\r\n\r\n").unwrap();
        let mut out = Vec::new();
        h.write_request(&mut out, Some(b"keep-alive"));
        assert_eq!(out, b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    }

    #[test]
    fn a_connection_token_cannot_remove_framing() {
        let mut h = req(
            "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap();
        h.strip_hop_by_hop(false);
        assert!(h.has(b"content-length"));
    }

    #[test]
    fn partial_and_too_large() {
        let mut h = Head::default();
        assert_eq!(
            h.parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap(),
            Parsed::Partial
        );
        let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..MAX_HEADERS {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(h.parse_request(many.as_bytes()), Err(HeadError::TooLarge));
    }
}
