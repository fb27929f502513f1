//! The text handshake that opens every peers connection.
//!
//! The connecting side sends three lines (the "hello"):
//!
//! ```text
//! HAProxyS 2.1\n
//! <name of the peer it wants to reach>\n
//! <its own peer name> <pid> <relative pid>\n
//! ```
//!
//! and the accepting side answers one status line, `200\n` on success. Both
//! sides then switch to binary messages. HAProxy accepts `\r\n` line ends and
//! checks the lines in order: protocol name (501), version (502), that the
//! second line is its own name (503), that the first word of the third line
//! is a peer of its `peers` section (504).

use std::fmt;

/// First word of the hello.
pub const PROTOCOL_NAME: &str = "HAProxyS";
/// Major version: HAProxy rejects any other with [`Status::BadVersion`].
pub const VERSION_MAJOR: u32 = 2;
/// Minor version this codec speaks. 2.1 added the timed updates; HAProxy
/// accepts minor versions up to its own and speaks 2.0 (no timed updates)
/// to a peer announcing 2.0.
pub const VERSION_MINOR: u32 = 1;
/// Default longest hello line, newline included. HAProxy's own limit is its
/// buffer size (16 KiB); peer names are short identifiers.
pub const DEFAULT_MAX_HELLO_LINE: usize = 1024;
/// Longest status line, newline included.
const MAX_STATUS_LINE: usize = 16;

/// The result of parsing a growing buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse<T> {
    /// Not enough bytes yet; call again with more (from the same start).
    Incomplete,
    /// Parsed; `consumed` bytes of the buffer belong to it (what follows is
    /// the next protocol element).
    Done {
        /// What was parsed.
        value: T,
        /// How many bytes of the buffer it took.
        consumed: usize,
    },
}

/// The three hello lines (the connector's `pid` words are informational).
pub fn hello(remote: &str, local: &str, pid: u32, relative_pid: u32) -> Vec<u8> {
    hello_with_version(
        VERSION_MAJOR,
        VERSION_MINOR,
        remote,
        local,
        pid,
        relative_pid,
    )
}

/// [`hello`] announcing another version (2.0 asks for the downgraded
/// protocol; tests use others to provoke [`Status::BadVersion`]).
/// `remote` and `local` must not contain spaces or line ends.
pub fn hello_with_version(
    major: u32,
    minor: u32,
    remote: &str,
    local: &str,
    pid: u32,
    relative_pid: u32,
) -> Vec<u8> {
    format!("{PROTOCOL_NAME} {major}.{minor}\n{remote}\n{local} {pid} {relative_pid}\n")
        .into_bytes()
}

/// A parsed hello, as the accepting side sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Announced version (major, minor); the parser only returns supported
    /// ones (major 2, minor <= 1). Minor 0 means: send no timed updates.
    pub version: (u32, u32),
    /// The name the connector thinks we have (second line). It must be our
    /// own peer name, else answer [`Status::BadHost`].
    pub remote_name: String,
    /// The connector's own peer name (first word of the third line). It
    /// must be a peer of our section, else answer [`Status::UnknownPeer`].
    pub peer_name: String,
    /// The connector's process id (diagnostics only).
    pub pid: u32,
    /// The connector's relative process id (always 1 in HAProxy 2.x).
    pub relative_pid: u32,
}

impl Hello {
    /// The status to answer, checking names in HAProxy's order (503 before
    /// 504). [`Status::TryAgain`] (a connection to that peer already exists
    /// and is kept) is the caller's decision.
    pub fn check(&self, local_name: &str, is_known_peer: impl Fn(&str) -> bool) -> Status {
        if self.remote_name != local_name {
            Status::BadHost
        } else if !is_known_peer(&self.peer_name) {
            Status::UnknownPeer
        } else {
            Status::Success
        }
    }
}

/// Why a hello was refused. [`HelloError::status`] gives the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloError {
    /// The first line does not start with `HAProxyS ` (501).
    NotPeersProtocol,
    /// The version is not `<digits>.<digits>` (502).
    MalformedVersion,
    /// Major version other than 2 or minor above 1 (502).
    UnsupportedVersion {
        /// The major version offered.
        major: u32,
        /// The minor version offered.
        minor: u32,
    },
    /// The third line is not `<name> <pid> <relative pid>` (501). HAProxy
    /// only needs the space after the name; this parser also wants the two
    /// numbers, which every HAProxy sends.
    MalformedPeerLine,
    /// A line without newline within the limit (HAProxy closes silently;
    /// answering 501 is as good).
    LineTooLong {
        /// The longest line accepted, newline included.
        limit: usize,
    },
    /// A line that is not UTF-8 (501).
    NotUtf8,
}

impl HelloError {
    /// The status line to send before closing.
    pub fn status(&self) -> Status {
        match self {
            HelloError::MalformedVersion | HelloError::UnsupportedVersion { .. } => {
                Status::BadVersion
            }
            _ => Status::ProtocolError,
        }
    }
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloError::NotPeersProtocol => write!(f, "hello does not start with {PROTOCOL_NAME}"),
            HelloError::MalformedVersion => write!(f, "malformed protocol version"),
            HelloError::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported protocol version {major}.{minor}")
            }
            HelloError::MalformedPeerLine => {
                write!(f, "third hello line is not '<name> <pid> <relative pid>'")
            }
            HelloError::LineTooLong { limit } => write!(f, "hello line longer than {limit} bytes"),
            HelloError::NotUtf8 => write!(f, "hello line is not UTF-8"),
        }
    }
}

impl std::error::Error for HelloError {}

/// Parses the hello at the start of a buffer that grows as bytes arrive.
/// Stateless: call [`HelloParser::parse`] again with the whole buffer. An
/// error is reported as soon as the offending line is complete, like HAProxy
/// does, even if later lines have not arrived.
#[derive(Clone, Copy, Debug)]
pub struct HelloParser {
    max_line: usize,
}

impl Default for HelloParser {
    fn default() -> Self {
        Self::new()
    }
}

impl HelloParser {
    /// Lines up to [`DEFAULT_MAX_HELLO_LINE`] bytes.
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_HELLO_LINE)
    }

    /// Lines up to `max_line` bytes, newline included (at least 2).
    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            max_line: max_line.max(2),
        }
    }

    /// Parses the three hello lines at the start of `buf`.
    pub fn parse(&self, buf: &[u8]) -> Result<Parse<Hello>, HelloError> {
        let mut pos = 0;
        let Some(first) = self.line(buf, &mut pos)? else {
            return Ok(Parse::Incomplete);
        };
        let version = parse_version(first)?;
        let Some(remote_name) = self.line(buf, &mut pos)? else {
            return Ok(Parse::Incomplete);
        };
        let Some(third) = self.line(buf, &mut pos)? else {
            return Ok(Parse::Incomplete);
        };
        let (peer_name, pids) = third.split_once(' ').ok_or(HelloError::MalformedPeerLine)?;
        let mut words = pids.split(' ');
        let (Some(pid), Some(relative_pid), None) = (words.next(), words.next(), words.next())
        else {
            return Err(HelloError::MalformedPeerLine);
        };
        Ok(Parse::Done {
            value: Hello {
                version,
                remote_name: remote_name.to_owned(),
                peer_name: peer_name.to_owned(),
                pid: parse_decimal(pid).ok_or(HelloError::MalformedPeerLine)?,
                relative_pid: parse_decimal(relative_pid).ok_or(HelloError::MalformedPeerLine)?,
            },
            consumed: pos,
        })
    }

    /// The next line from `*pos` without its `\n` (and `\r`), or `None` if
    /// it has not fully arrived.
    fn line<'a>(&self, buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a str>, HelloError> {
        let rest = &buf[*pos..];
        let window = &rest[..rest.len().min(self.max_line)];
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            if rest.len() >= self.max_line {
                return Err(HelloError::LineTooLong {
                    limit: self.max_line,
                });
            }
            return Ok(None);
        };
        *pos += nl + 1;
        let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
        std::str::from_utf8(line)
            .map(Some)
            .map_err(|_| HelloError::NotUtf8)
    }
}

fn parse_version(line: &str) -> Result<(u32, u32), HelloError> {
    let version = line
        .strip_prefix(PROTOCOL_NAME)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(HelloError::NotPeersProtocol)?;
    let (major, minor) = version
        .split_once('.')
        .ok_or(HelloError::MalformedVersion)?;
    let major = parse_decimal(major).ok_or(HelloError::MalformedVersion)?;
    let minor = parse_decimal(minor).ok_or(HelloError::MalformedVersion)?;
    if major != VERSION_MAJOR || minor > VERSION_MINOR {
        return Err(HelloError::UnsupportedVersion { major, minor });
    }
    Ok((major, minor))
}

/// ASCII digits only (no sign, no spaces), fitting in a u32.
fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The accepting side's one-line answer to a hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200: handshake done, binary messages follow.
    Success,
    /// 300: try again later (HAProxy: a connection from its own local peer
    /// while one is already established).
    TryAgain,
    /// 501: protocol error (not `HAProxyS`, malformed third line).
    ProtocolError,
    /// 502: unsupported version. A connector receiving it retries with 2.0.
    BadVersion,
    /// 503: the second hello line is not the acceptor's own peer name.
    BadHost,
    /// 504: the connector's name is not a peer of the acceptor's section.
    UnknownPeer,
    /// Any other number (HAProxy's internal 100/110 are never sent).
    Other(u16),
}

impl Status {
    /// The number sent on the status line.
    pub fn code(self) -> u16 {
        match self {
            Status::Success => 200,
            Status::TryAgain => 300,
            Status::ProtocolError => 501,
            Status::BadVersion => 502,
            Status::BadHost => 503,
            Status::UnknownPeer => 504,
            Status::Other(c) => c,
        }
    }

    /// The status a status line's number means.
    pub fn from_code(code: u16) -> Status {
        match code {
            200 => Status::Success,
            300 => Status::TryAgain,
            501 => Status::ProtocolError,
            502 => Status::BadVersion,
            503 => Status::BadHost,
            504 => Status::UnknownPeer,
            c => Status::Other(c),
        }
    }

    /// The status line: the code and `\n`.
    pub fn line(self) -> Vec<u8> {
        format!("{}\n", self.code()).into_bytes()
    }
}

/// A status line that is not a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusError;

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed peers status line")
    }
}

impl std::error::Error for StatusError {}

/// Parses the status line at the start of `buf` (digits, optional `\r`,
/// `\n`; at most 16 bytes).
pub fn parse_status(buf: &[u8]) -> Result<Parse<Status>, StatusError> {
    let window = &buf[..buf.len().min(MAX_STATUS_LINE)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= MAX_STATUS_LINE {
            return Err(StatusError);
        }
        return Ok(Parse::Incomplete);
    };
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let code = std::str::from_utf8(line)
        .ok()
        .and_then(parse_decimal)
        .and_then(|c| u16::try_from(c).ok())
        .ok_or(StatusError)?;
    Ok(Parse::Done {
        value: Status::from_code(code),
        consumed: nl + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (Hello, usize) {
        match HelloParser::new().parse(buf) {
            Ok(Parse::Done { value, consumed }) => (value, consumed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hello_bytes() {
        assert_eq!(
            hello("hap1", "corral", 4242, 1),
            b"HAProxyS 2.1\nhap1\ncorral 4242 1\n"
        );
    }

    #[test]
    fn parses_hello_and_reports_consumed() {
        let mut buf = hello("corral", "hap1", 77, 1);
        let len = buf.len();
        buf.extend_from_slice(&[0x00, 0x04]); // a heartbeat right behind
        let (h, consumed) = done(&buf);
        assert_eq!(consumed, len);
        assert_eq!(
            h,
            Hello {
                version: (2, 1),
                remote_name: "corral".into(),
                peer_name: "hap1".into(),
                pid: 77,
                relative_pid: 1,
            }
        );
        assert_eq!(h.check("corral", |p| p == "hap1"), Status::Success);
        assert_eq!(h.check("other", |p| p == "hap1"), Status::BadHost);
        assert_eq!(h.check("corral", |_| false), Status::UnknownPeer);
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let buf = hello("corral", "hap1", 77, 1);
        for cut in 0..buf.len() {
            assert_eq!(
                HelloParser::new().parse(&buf[..cut]),
                Ok(Parse::Incomplete),
                "{cut}"
            );
        }
    }

    #[test]
    fn accepts_crlf_and_version_2_0() {
        let (h, consumed) = done(b"HAProxyS 2.0\r\ncorral\r\nhap1 1 1\r\n");
        assert_eq!(consumed, 32);
        assert_eq!(h.version, (2, 0));
        assert_eq!(h.remote_name, "corral");
    }

    #[test]
    fn version_errors_map_to_502_and_protocol_errors_to_501() {
        let p = HelloParser::new();
        // Reported as soon as the first line is complete.
        let e = p.parse(b"HAProxyS 2.2\n").unwrap_err();
        assert_eq!(e, HelloError::UnsupportedVersion { major: 2, minor: 2 });
        assert_eq!(e.status(), Status::BadVersion);
        let e = p.parse(b"HAProxyS 3.0\n").unwrap_err();
        assert_eq!(e.status().line(), b"502\n");
        assert_eq!(
            p.parse(b"HAProxyS 2\n").unwrap_err(),
            HelloError::MalformedVersion
        );
        assert_eq!(
            p.parse(b"HAProxyS 2.x\n").unwrap_err(),
            HelloError::MalformedVersion
        );
        let e = p.parse(b"HAProxyX 2.1\n").unwrap_err();
        assert_eq!(e, HelloError::NotPeersProtocol);
        assert_eq!(e.status().line(), b"501\n");
        assert_eq!(
            p.parse(b"GET / HTTP/1.1\r\n").unwrap_err().status(),
            Status::ProtocolError
        );
        let e = p.parse(b"HAProxyS 2.1\nme\nnospace\n").unwrap_err();
        assert_eq!(e, HelloError::MalformedPeerLine);
        assert_eq!(
            p.parse(b"HAProxyS 2.1\nme\npeer x 1\n").unwrap_err(),
            HelloError::MalformedPeerLine
        );
        assert_eq!(
            p.parse(b"HAProxyS 2.1\n\xff\n").unwrap_err(),
            HelloError::NotUtf8
        );
    }

    #[test]
    fn line_limit() {
        let p = HelloParser::with_max_line(16);
        assert_eq!(p.parse(&[b'a'; 15]), Ok(Parse::Incomplete));
        assert_eq!(
            p.parse(&[b'a'; 16]),
            Err(HelloError::LineTooLong { limit: 16 })
        );
        let mut long_name = b"HAProxyS 2.1\n".to_vec();
        long_name.extend([b'n'; 40]);
        assert_eq!(
            p.parse(&long_name),
            Err(HelloError::LineTooLong { limit: 16 })
        );
    }

    #[test]
    fn status_lines() {
        for (s, code) in [
            (Status::Success, 200),
            (Status::TryAgain, 300),
            (Status::ProtocolError, 501),
            (Status::BadVersion, 502),
            (Status::BadHost, 503),
            (Status::UnknownPeer, 504),
        ] {
            assert_eq!(s.code(), code);
            assert_eq!(Status::from_code(code), s);
            let line = s.line();
            assert_eq!(line, format!("{code}\n").as_bytes());
            assert_eq!(
                parse_status(&line),
                Ok(Parse::Done {
                    value: s,
                    consumed: 4
                })
            );
        }
        assert_eq!(parse_status(b"20"), Ok(Parse::Incomplete));
        assert_eq!(
            parse_status(b"200\r\n\x00\x04"),
            Ok(Parse::Done {
                value: Status::Success,
                consumed: 5
            })
        );
        assert_eq!(parse_status(b"abc\n"), Err(StatusError));
        assert_eq!(parse_status(b"\n"), Err(StatusError));
        assert_eq!(parse_status(&[b'1'; 16]), Err(StatusError));
    }
}
