//! A worker's coarse clock: milliseconds since the worker started, moved
//! on by the worker's flusher every `log::FLUSH_EVERY` (50 ms). Reading it
//! is a `Cell` load, not a system call, so the data path can stamp every
//! read and write with it; only a timer that fires reads the real clock.

use std::cell::Cell;
use std::time::{Duration, Instant};

pub(crate) struct Coarse {
    started: Instant,
    ms: Cell<u64>,
}

impl Default for Coarse {
    fn default() -> Coarse {
        Coarse {
            started: Instant::now(),
            ms: Cell::new(0),
        }
    }
}

impl Coarse {
    /// Milliseconds since the start, as of the last `tick` (at most one
    /// tick behind the real clock, and never ahead of it).
    pub(crate) fn now_ms(&self) -> u64 {
        self.ms.get()
    }

    /// Reads the real clock and moves the coarse one on to it.
    pub(crate) fn tick(&self) -> u64 {
        let ms = self.started.elapsed().as_millis() as u64;
        self.ms.set(ms);
        ms
    }

    /// When an inactivity timer of `timeout` fires and the last byte
    /// moved at `last_ms` (coarse): how long is left before the connection
    /// has really been idle for `timeout`, or None when it has been.
    /// Reads the real clock (once per fired timer, never per byte).
    pub(crate) fn left(&self, last_ms: u64, timeout: Duration) -> Option<Duration> {
        let idle = Duration::from_millis(self.tick().saturating_sub(last_ms));
        // Within a millisecond counts as reached: the stamp is coarse.
        timeout
            .checked_sub(idle)
            .filter(|left| *left > Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_counts_from_the_last_activity() {
        let c = Coarse::default();
        let t = Duration::from_secs(2);
        let now = c.tick();
        assert!(c.left(now, t).unwrap() > Duration::from_millis(1900));
        // Activity long ago (or none since the timer was armed): idle.
        let c2 = Coarse {
            started: Instant::now() - Duration::from_secs(5),
            ms: Cell::new(0),
        };
        assert_eq!(c2.left(0, t), None);
        let left = c2.left(4_000, t).unwrap();
        assert!(left <= Duration::from_secs(1) && left > Duration::from_millis(900));
    }
}
