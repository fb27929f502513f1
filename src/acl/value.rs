//! Borrowed sample values and the allocation-free helpers the hot path
//! uses: stack scratch buffers, text forms of numbers and addresses, and
//! the string-to-number/address casts.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::IpAddr;

/// The type a fetch (after its converters) produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SType {
    Str,
    Int,
    Ip,
    Bool,
}

impl SType {
    /// How messages name the type.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            SType::Str => "a string",
            SType::Int => "an integer",
            SType::Ip => "an address",
            SType::Bool => "a boolean",
        }
    }
}

/// A sample value borrowed for the duration of a callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Str(&'a [u8]),
    Int(i64),
    Ip(IpAddr),
    Bool(bool),
}

/// A byte buffer that lives on the stack up to `N` bytes and spills to the
/// heap beyond, so building a short string (a lowercased header value, the
/// `base` of a request) costs no allocation.
pub(crate) struct Scratch<const N: usize> {
    inline: [u8; N],
    len: usize,
    /// Used only once the content outgrows `inline`; `Vec::new` does not
    /// allocate.
    heap: Vec<u8>,
}

impl<const N: usize> Scratch<N> {
    pub(crate) fn new() -> Self {
        Scratch {
            inline: [0; N],
            len: 0,
            heap: Vec::new(),
        }
    }

    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        if self.heap.is_empty() && self.len + data.len() <= N {
            self.inline[self.len..self.len + data.len()].copy_from_slice(data);
            self.len += data.len();
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.extend_from_slice(data);
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        }
    }
}

/// Room for the text of any i64 or IP address (the longest is an IPv6
/// address with an embedded IPv4 tail, 45 bytes).
pub(crate) struct StackText {
    buf: [u8; 48],
    len: usize,
}

impl StackText {
    pub(crate) fn new() -> Self {
        StackText {
            buf: [0; 48],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Calls `f` with the text form of `v`: a string as it is, integers and
/// addresses formatted on the stack, booleans as `1`/`0`.
pub(crate) fn with_bytes<R>(v: Val<'_>, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut text = StackText::new();
    match v {
        Val::Str(s) => return f(s),
        // Both fit in the buffer, so the write cannot fail.
        Val::Int(i) => {
            let _ = write!(text, "{i}");
        }
        Val::Ip(ip) => {
            let _ = write!(text, "{ip}");
        }
        Val::Bool(b) => return f(if b { b"1" } else { b"0" }),
    }
    f(text.as_bytes())
}

/// Appends the text form of `v` to `out`.
pub(crate) fn write_val(v: Val<'_>, out: &mut Vec<u8>) {
    match v {
        Val::Str(s) => out.extend_from_slice(s),
        // Writing to a Vec cannot fail.
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Ip(ip) => {
            let _ = write!(out, "{ip}");
        }
        Val::Bool(b) => out.push(if b { b'1' } else { b'0' }),
    }
}

/// Strips spaces and tabs at both ends.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// Parses a decimal integer with an optional sign, ignoring surrounding
/// spaces; `None` if it is not one (or overflows).
pub(crate) fn str_to_int(s: &[u8]) -> Option<i64> {
    let s = trim(s);
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses an address as found in a header: `1.2.3.4`, `1.2.3.4:80`, `::1`,
/// `[::1]` or `[::1]:80`, ignoring surrounding spaces.
pub(crate) fn str_to_ip(s: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(trim(s)).ok()?;
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    if port.bytes().all(|c| c.is_ascii_digit()) {
        return host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4);
    }
    None
}

/// A Host value without its `:port` suffix: `a.example:8080` → `a.example`,
/// `[::1]:80` → `[::1]`; an unbracketed IPv6 literal is left alone.
pub(crate) fn strip_host_port(host: &[u8]) -> &[u8] {
    let Some(colon) = host.iter().rposition(|&c| c == b':') else {
        return host;
    };
    let before = &host[..colon];
    let port = &host[colon + 1..];
    let port_ok = port.iter().all(u8::is_ascii_digit);
    let host_ok = !before.contains(&b':') || before.ends_with(b"]");
    if port_ok && host_ok { before } else { host }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_stays_inline_then_spills() {
        let mut s = Scratch::<4>::new();
        s.push_slice(b"ab");
        s.push_slice(b"cd");
        assert_eq!(s.as_slice(), b"abcd");
        assert!(s.heap.is_empty());
        s.push_slice(b"e");
        assert_eq!(s.as_slice(), b"abcde");
        s.as_mut_slice()[0] = b'X';
        assert_eq!(s.as_slice(), b"Xbcde");
    }

    #[test]
    fn text_forms() {
        let ip: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .unwrap();
        with_bytes(Val::Ip(ip), |b| {
            assert_eq!(b, b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        });
        with_bytes(Val::Int(i64::MIN), |b| {
            assert_eq!(b, b"-9223372036854775808")
        });
        with_bytes(Val::Bool(true), |b| assert_eq!(b, b"1"));
        with_bytes(Val::Str(b"x"), |b| assert_eq!(b, b"x"));
        let mut out = Vec::new();
        write_val(Val::Int(42), &mut out);
        write_val(Val::Bool(false), &mut out);
        write_val(Val::Ip("::1".parse().unwrap()), &mut out);
        assert_eq!(out, b"420::1");
    }

    #[test]
    fn casts() {
        assert_eq!(str_to_int(b" 12 "), Some(12));
        assert_eq!(str_to_int(b"-3"), Some(-3));
        assert_eq!(str_to_int(b"x"), None);
        assert_eq!(str_to_int(b""), None);
        assert_eq!(str_to_ip(b"10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            str_to_ip(b" 10.0.0.1:80"),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(str_to_ip(b"[::1]:80"), Some("::1".parse().unwrap()));
        assert_eq!(str_to_ip(b"::1"), Some("::1".parse().unwrap()));
        assert_eq!(str_to_ip(b"host"), None);
    }

    #[test]
    fn host_port_stripping() {
        assert_eq!(strip_host_port(b"a.example:8080"), b"a.example");
        assert_eq!(strip_host_port(b"a.example"), b"a.example");
        assert_eq!(strip_host_port(b"a.example:"), b"a.example");
        assert_eq!(strip_host_port(b"[::1]:80"), b"[::1]");
        assert_eq!(strip_host_port(b"::1"), b"::1");
        assert_eq!(strip_host_port(b"a:b"), b"a:b");
        assert_eq!(trim(b"  a b \t"), b"a b");
        assert_eq!(trim(b"   "), b"");
    }
}
