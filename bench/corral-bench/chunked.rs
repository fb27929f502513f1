//! Skipping a chunked body (RFC 9112 section 7.1) without storing it: the
//! client uses it for chunked responses, the server for chunked request
//! bodies. Only framing is checked; the data is counted and dropped.

/// Where the decoder is in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size.
    Size { value: u64, digits: u32 },
    /// After the size: extensions or spaces up to the line's CR.
    Extension { value: u64 },
    /// The CR of the size line was seen; the LF must follow.
    SizeLf { value: u64 },
    /// Chunk data still to skip.
    Data(u64),
    /// The CR after a chunk's data.
    DataCr,
    /// The LF after a chunk's data.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    LineStart,
    /// Inside a trailer field line.
    Trailer,
    /// The LF of a trailer line.
    TrailerLf,
    /// The LF of the final empty line.
    FinalLf,
    /// The body is complete.
    Done,
}

/// A chunked body that is not framed correctly.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChunkError;

/// Skips a chunked body fed to it in pieces.
#[derive(Clone, Debug)]
pub(crate) struct Chunked {
    state: State,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size {
                value: 0,
                digits: 0,
            },
        }
    }
}

impl Chunked {
    /// True once the final empty line has been consumed.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes what it can of `data` and returns how many bytes it took;
    /// it stops at the end of the body (the rest belongs to what follows).
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < data.len() {
            if let State::Data(left) = self.state {
                let take = left.min((data.len() - i) as u64);
                i += take as usize;
                self.state = if take == left {
                    State::DataCr
                } else {
                    State::Data(left - take)
                };
                continue;
            }
            let b = data[i];
            i += 1;
            self.state = match (self.state, b) {
                (State::Size { value, digits }, _) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(ChunkError);
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                    State::Size {
                        value: value * 16 + d,
                        digits: digits + 1,
                    }
                }
                (State::Size { digits: 0, .. }, _) => return Err(ChunkError),
                (State::Size { value, .. } | State::Extension { value }, b'\r') => {
                    State::SizeLf { value }
                }
                (State::Size { value, .. }, b';' | b' ' | b'\t') => State::Extension { value },
                // A size line ended by LF alone is refused: a peer could
                // read it differently.
                (State::Extension { .. }, b'\n') => return Err(ChunkError),
                (State::Extension { value }, _) => State::Extension { value },
                (State::SizeLf { value: 0 }, b'\n') => State::LineStart,
                (State::SizeLf { value }, b'\n') => State::Data(value),
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => State::Size {
                    value: 0,
                    digits: 0,
                },
                (State::LineStart, b'\r') => State::FinalLf,
                (State::LineStart | State::Trailer, b'\n') => return Err(ChunkError),
                (State::Trailer, b'\r') => State::TrailerLf,
                (State::LineStart | State::Trailer, _) => State::Trailer,
                (State::TrailerLf, b'\n') => State::LineStart,
                (State::FinalLf, b'\n') => {
                    self.state = State::Done;
                    return Ok(i);
                }
                (State::Done, _) => return Ok(i - 1),
                _ => return Err(ChunkError),
            };
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&[u8]]) -> Result<(usize, bool), ChunkError> {
        let mut c = Chunked::default();
        let mut total = 0;
        for p in pieces {
            total += c.feed(p)?;
        }
        Ok((total, c.is_done()))
    }

    #[test]
    fn whole_and_split() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\nNEXT";
        assert_eq!(run(&[body]).unwrap(), (body.len() - 4, true));
        // Byte by byte.
        let mut c = Chunked::default();
        let mut used = 0;
        for b in body.iter() {
            used += c.feed(std::slice::from_ref(b)).unwrap();
        }
        assert!(c.is_done());
        assert_eq!(used, body.len() - 4);
    }

    #[test]
    fn trailers_and_errors() {
        assert_eq!(
            run(&[b"0\r\nX-T: 1\r\n\r\n"]).unwrap(),
            (b"0\r\nX-T: 1\r\n\r\n".len(), true)
        );
        assert_eq!(run(&[b"3\r\nab"]).unwrap(), (5, false));
        assert!(run(&[b"zz\r\n"]).is_err());
        assert!(run(&[b"3\r\nabcX"]).is_err());
        assert!(run(&[b"3\nabc"]).is_err());
        assert!(run(&[b"1234567890abcdef0\r\n"]).is_err());
    }
}
