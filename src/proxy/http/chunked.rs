//! An incremental checker for the chunked transfer coding (RFC 9112 §7.1).
//!
//! It reads bytes as they arrive and says how many of them form a valid
//! prefix of a chunked body; those bytes are forwarded verbatim. Anything
//! a peer could read differently (a size with junk, a bare LF, a chunk not
//! followed by CRLF, an overlong size, a malformed extension or trailer)
//! is an error, so corral and the next hop always agree where the body ends.

/// Longest chunk-size line (size and extensions) accepted.
const MAX_LINE: usize = 4096;
/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 16 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    SizeBws,
    ExtPreName,
    ExtName,
    ExtPostName,
    ExtPreValue,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    ExtPostValue,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkError(pub &'static str);

#[derive(Debug, Clone)]
pub(crate) struct Chunked {
    state: State,
    /// Chunk size being read, then bytes of chunk data left.
    size: u64,
    digits: u8,
    line: usize,
    trailers: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size,
            size: 0,
            digits: 0,
            line: 0,
            trailers: 0,
        }
    }
}

impl Chunked {
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes of chunk data still expected in the current chunk (lets the
    /// caller copy data in bulk).
    pub(crate) fn data_left(&self) -> u64 {
        if self.state == State::Data {
            self.size
        } else {
            0
        }
    }

    /// Checks `input`; returns how many bytes are valid (and may be
    /// forwarded). Stops at the end of the body: bytes after it are not
    /// consumed.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let n = (self.size.min((input.len() - i) as u64)) as usize;
                i += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok(i)
    }

    /// Like `feed`, but stops where chunk data begins: the caller then
    /// takes up to `data_left()` bytes itself (to send data without the
    /// chunk framing) and passes them to `feed`.
    pub(crate) fn feed_framing(&mut self, input: &[u8]) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done && self.state != State::Data {
            self.step(input[i])?;
            i += 1;
        }
        Ok(i)
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        use State::*;
        let in_size_line = matches!(
            self.state,
            Size | SizeBws
                | ExtPreName
                | ExtName
                | ExtPostName
                | ExtPreValue
                | ExtToken
                | ExtQuoted
                | ExtQuotedEscape
                | ExtPostValue
        );
        if in_size_line {
            self.line += 1;
            if self.line > MAX_LINE {
                return Err(ChunkError("chunk-size line too long"));
            }
        }
        let ws = b == b' ' || b == b'\t';
        self.state = match self.state {
            Size => {
                if let Some(d) = hex(b) {
                    if self.digits == 16 {
                        return Err(ChunkError("chunk size too large"));
                    }
                    self.size = (self.size << 4) | u64::from(d);
                    self.digits += 1;
                    Size
                } else if self.digits == 0 {
                    return Err(ChunkError("chunk size missing"));
                } else if b == b'\r' {
                    SizeLf
                } else if b == b';' {
                    ExtPreName
                } else if ws {
                    SizeBws
                } else {
                    return Err(ChunkError("invalid chunk size"));
                }
            }
            // Whitespace after the size is only allowed before an extension.
            SizeBws => match b {
                b' ' | b'\t' => SizeBws,
                b';' => ExtPreName,
                _ => return Err(ChunkError("invalid chunk size")),
            },
            ExtPreName => match b {
                b' ' | b'\t' => ExtPreName,
                _ if crate::base::tchar::is_tchar(b) => ExtName,
                _ => return Err(ChunkError("invalid chunk extension")),
            },
            ExtName => match b {
                _ if crate::base::tchar::is_tchar(b) => ExtName,
                b' ' | b'\t' => ExtPostName,
                b'=' => ExtPreValue,
                b';' => ExtPreName,
                b'\r' => SizeLf,
                _ => return Err(ChunkError("invalid chunk extension")),
            },
            ExtPostName => match b {
                b' ' | b'\t' => ExtPostName,
                b'=' => ExtPreValue,
                b';' => ExtPreName,
                b'\r' => SizeLf,
                _ => return Err(ChunkError("invalid chunk extension")),
            },
            ExtPreValue => match b {
                b' ' | b'\t' => ExtPreValue,
                b'"' => ExtQuoted,
                _ if crate::base::tchar::is_tchar(b) => ExtToken,
                _ => return Err(ChunkError("invalid chunk extension value")),
            },
            ExtToken => match b {
                _ if crate::base::tchar::is_tchar(b) => ExtToken,
                b' ' | b'\t' => ExtPostValue,
                b';' => ExtPreName,
                b'\r' => SizeLf,
                _ => return Err(ChunkError("invalid chunk extension value")),
            },
            ExtQuoted => match b {
                b'"' => ExtPostValue,
                b'\\' => ExtQuotedEscape,
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => ExtQuoted,
                _ => return Err(ChunkError("invalid quoted chunk extension")),
            },
            ExtQuotedEscape => match b {
                b'\t' | b' '..=0x7e | 0x80..=0xff => ExtQuoted,
                _ => return Err(ChunkError("invalid quoted chunk extension")),
            },
            ExtPostValue => match b {
                b' ' | b'\t' => ExtPostValue,
                b';' => ExtPreName,
                b'\r' => SizeLf,
                _ => return Err(ChunkError("invalid chunk extension")),
            },
            SizeLf => {
                if b != b'\n' {
                    return Err(ChunkError("chunk-size line not ended by CRLF"));
                }
                self.line = 0;
                self.digits = 0;
                if self.size == 0 { TrailerStart } else { Data }
            }
            Data => unreachable!("data is consumed in bulk"),
            DataCr => {
                if b != b'\r' {
                    return Err(ChunkError("chunk data not followed by CRLF"));
                }
                DataLf
            }
            DataLf => {
                if b != b'\n' {
                    return Err(ChunkError("chunk data not followed by CRLF"));
                }
                self.size = 0;
                Size
            }
            TrailerStart => {
                self.count_trailer()?;
                match b {
                    b'\r' => FinalLf,
                    _ if crate::base::tchar::is_tchar(b) => TrailerName,
                    _ => return Err(ChunkError("invalid trailer field")),
                }
            }
            TrailerName => {
                self.count_trailer()?;
                match b {
                    _ if crate::base::tchar::is_tchar(b) => TrailerName,
                    b':' => TrailerValue,
                    _ => return Err(ChunkError("invalid trailer field name")),
                }
            }
            TrailerValue => {
                self.count_trailer()?;
                match b {
                    b'\r' => TrailerLf,
                    b'\t' | b' '..=0x7e | 0x80..=0xff => TrailerValue,
                    _ => return Err(ChunkError("invalid trailer field value")),
                }
            }
            TrailerLf => {
                if b != b'\n' {
                    return Err(ChunkError("trailer field not ended by CRLF"));
                }
                TrailerStart
            }
            FinalLf => {
                if b != b'\n' {
                    return Err(ChunkError("chunked body not ended by CRLF"));
                }
                Done
            }
            Done => Done,
        };
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailers += 1;
        if self.trailers > MAX_TRAILERS {
            return Err(ChunkError("trailer section too large"));
        }
        Ok(())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(body: &[u8]) -> Result<usize, ChunkError> {
        let mut c = Chunked::default();
        let n = c.feed(body)?;
        assert!(c.is_done(), "not done after {n} of {}", body.len());
        Ok(n)
    }

    #[test]
    fn valid_bodies() {
        assert_eq!(whole(b"0\r\n\r\n").unwrap(), 5);
        assert_eq!(whole(b"5\r\nhello\r\n0\r\n\r\n").unwrap(), 15);
        assert_eq!(whole(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap(), 20);
        assert!(whole(b"5;name=value\r\nhello\r\n0\r\n\r\n").is_ok());
        assert!(whole(b"5 ; a = \"q\\\"x\" ;b\r\nhello\r\n0\r\n\r\n").is_ok());
        assert!(whole(b"0\r\nX-Trailer: v\r\nY: w\r\n\r\n").is_ok());
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let mut c = Chunked::default();
        let n = c.feed(b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1").unwrap();
        assert_eq!(n, 13);
        assert!(c.is_done());
    }

    #[test]
    fn byte_at_a_time_is_the_same() {
        let body = b"5;x=\"y\"\r\nhello\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n";
        let mut c = Chunked::default();
        for &b in body.iter() {
            assert_eq!(c.feed(&[b]).unwrap(), 1);
        }
        assert!(c.is_done());
    }

    #[test]
    fn framing_and_data_separately() {
        let body = b"5\r\nhello\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n";
        let mut c = Chunked::default();
        let mut data = Vec::new();
        let mut at = 0;
        while !c.is_done() {
            if c.data_left() > 0 {
                let take = (c.data_left() as usize).min(body.len() - at);
                data.extend_from_slice(&body[at..at + take]);
                at += c.feed(&body[at..at + take]).unwrap();
            } else {
                at += c.feed_framing(&body[at..]).unwrap();
            }
        }
        assert_eq!(data, b"helloabc");
        assert_eq!(at, body.len());
    }

    #[test]
    fn refusals() {
        for bad in [
            &b"\r\n"[..],
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"5;a=b c\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
            b"10000000000000000\r\n",
            b"0\r\nBad Trailer: x\r\n\r\n",
            b"0\r\nT: a\nb\r\n\r\n",
            b"0\r\n\n",
            b"5\r\nhello\r\n0\r\n\rX",
        ] {
            let mut c = Chunked::default();
            assert!(c.feed(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
