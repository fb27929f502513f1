//! Copying a message body from one connection to another, as its framing
//! delimits it, never holding more than one buffer of it.
//!
//! The same state machine serves both ways of moving bytes: bytes already
//! buffered can be appended to the outgoing head (so a small response goes
//! out in one write), and the rest is streamed as it arrives. Every byte
//! passes through the framing check first (chunked bodies are validated
//! as they go), so what is written is always a valid prefix of the body.

use crate::io::conn::{Conn, Deadline, IoFail, write_all};
use crate::proxy::http::chunked::Chunked;
use crate::proxy::http::head::Framing;
use futures_lite::io::AsyncWrite;
use std::time::Duration;

/// How many body bytes `forward_until` writes between two questions to
/// its `pause` (a request body checks whether the server has answered).
pub(crate) const PAUSE_CHECK: u64 = 64 << 10;

/// Why a body could not be copied.
pub(crate) enum BodyFail {
    /// The sending side timed out, closed early or failed.
    Src(IoFail),
    /// The body was not validly chunked.
    Invalid,
    /// The receiving side failed.
    Dst(IoFail),
}

enum State {
    Done,
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

/// The copy of one body in progress.
pub(crate) struct BodyCopy {
    state: State,
    /// Send chunk data without its chunk framing (to an HTTP/1.0 client).
    dechunk: bool,
    /// Body bytes written so far.
    pub written: u64,
}

impl BodyCopy {
    pub(crate) fn new(framing: Framing, dechunk: bool) -> BodyCopy {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunked::default()),
            Framing::UntilClose => State::UntilClose,
        };
        BodyCopy {
            state,
            dechunk,
            written: 0,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Looks at the next bytes of `data`: returns how many are consumed and
    /// how many of those (from the start) are to be written out.
    fn step(&mut self, data: &[u8]) -> Result<(usize, usize), BodyFail> {
        match &mut self.state {
            State::Done => Ok((0, 0)),
            State::Length(left) => {
                let take = (data.len() as u64).min(*left) as usize;
                *left -= take as u64;
                if *left == 0 {
                    self.state = State::Done;
                }
                Ok((take, take))
            }
            State::Chunked(parser) => {
                let (consumed, emit) = if self.dechunk && parser.data_left() > 0 {
                    let take = (data.len() as u64).min(parser.data_left()) as usize;
                    parser.feed(&data[..take]).map_err(|_| BodyFail::Invalid)?;
                    (take, take)
                } else if self.dechunk {
                    (parser.feed_framing(data).map_err(|_| BodyFail::Invalid)?, 0)
                } else {
                    let n = parser.feed(data).map_err(|_| BodyFail::Invalid)?;
                    (n, n)
                };
                if parser.is_done() {
                    self.state = State::Done;
                }
                Ok((consumed, emit))
            }
            State::UntilClose => Ok((data.len(), data.len())),
        }
    }

    /// Moves the body bytes already buffered in `src` to the end of `out`.
    pub(crate) fn take_buffered(
        &mut self,
        src: &mut Conn,
        out: &mut Vec<u8>,
    ) -> Result<(), BodyFail> {
        while !self.is_done() && !src.data().is_empty() {
            let (consumed, emit) = self.step(src.data())?;
            out.extend_from_slice(&src.data()[..emit]);
            self.written += emit as u64;
            src.consume(consumed);
            if consumed == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Streams the rest of the body from `src` to `dst`. Each wait is
    /// bounded by the side's inactivity timeout.
    pub(crate) async fn forward<W: AsyncWrite + Unpin>(
        &mut self,
        src: &mut Conn,
        dst: &mut W,
        src_idle: Duration,
        dst_idle: Duration,
    ) -> Result<(), BodyFail> {
        self.forward_until(src, dst, src_idle, dst_idle, || false)
            .await
            .map(|_| ())
    }

    /// Like `forward`, but asks `pause` after every [`PAUSE_CHECK`] bytes
    /// written whether to stop there, between two writes (the copy can go
    /// on later from where it stopped): `Ok(true)` when the body is done,
    /// `Ok(false)` when paused.
    pub(crate) async fn forward_until<W: AsyncWrite + Unpin>(
        &mut self,
        src: &mut Conn,
        dst: &mut W,
        src_idle: Duration,
        dst_idle: Duration,
        mut pause: impl FnMut() -> bool,
    ) -> Result<bool, BodyFail> {
        let mut unchecked = 0u64;
        while !self.is_done() {
            if unchecked >= PAUSE_CHECK {
                unchecked = 0;
                if pause() {
                    return Ok(false);
                }
            }
            if src.data().is_empty() {
                let until_close = matches!(self.state, State::UntilClose);
                match src.fill(Deadline::After(src_idle)).await {
                    Ok(0) if until_close => self.state = State::Done,
                    Ok(0) => {
                        return Err(BodyFail::Src(IoFail::Error(
                            std::io::ErrorKind::UnexpectedEof.into(),
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(BodyFail::Src(e)),
                }
                continue;
            }
            let (consumed, emit) = self.step(src.data())?;
            if emit > 0 {
                write_all(dst, &src.data()[..emit], Deadline::After(dst_idle))
                    .await
                    .map_err(BodyFail::Dst)?;
                self.written += emit as u64;
                unchecked += emit as u64;
            }
            src.consume(consumed);
        }
        Ok(true)
    }
}
