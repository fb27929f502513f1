//! Open-loop scheduling: each connection's requests fall due on a fixed
//! timeline, whatever the server does.
//!
//! With `--rate R` over `C` connections, connection `g` is due at
//! `start + g/R + k*C/R` for k = 0, 1, 2...: each connection sends R/C
//! requests a second, and together they interleave on one evenly spaced
//! timeline. Latency is measured from the due time, not from when the
//! request could actually be sent, so a server that stalls is charged for
//! every request that should have gone out meanwhile (the correction for
//! coordinated omission that wrk2 made popular). A connection that falls
//! behind sends as soon as it can; its due times do not move.

use glommio::timer::Timer;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The due times of one connection.
pub(crate) struct Pacer {
    start: Instant,
    offset_s: f64,
    interval_s: f64,
    next: u64,
}

impl Pacer {
    /// The timeline of connection `global` of `connections`, at `rate`
    /// requests per second in total, starting at `start`.
    pub(crate) fn new(start: Instant, global: usize, connections: usize, rate: f64) -> Pacer {
        Pacer {
            start,
            offset_s: global as f64 / rate,
            interval_s: connections as f64 / rate,
            next: 0,
        }
    }

    /// The next due time (computed from the start each time, so rounding
    /// never accumulates).
    pub(crate) fn next_due(&mut self) -> Instant {
        let at = self.offset_s + self.next as f64 * self.interval_s;
        self.next += 1;
        self.start + Duration::from_secs_f64(at)
    }
}

/// Longest single sleep, so a stop request is seen soon even at low rates.
const SLICE: Duration = Duration::from_millis(50);

/// Sleeps until `at`; returns false early if `stop` is set.
pub(crate) async fn sleep_until(at: Instant, stop: &Cell<bool>) -> bool {
    loop {
        if stop.get() {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        Timer::new((at - now).min(SLICE)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_interleave_evenly() {
        let start = Instant::now();
        let mut all = Vec::new();
        for g in 0..4 {
            let mut p = Pacer::new(start, g, 4, 1000.0);
            for _ in 0..10 {
                all.push(p.next_due() - start);
            }
        }
        all.sort();
        for (i, d) in all.iter().enumerate() {
            let want = Duration::from_micros(1000 * i as u64);
            let diff = d.abs_diff(want);
            assert!(diff < Duration::from_micros(1), "{i}: {d:?}");
        }
    }
}
