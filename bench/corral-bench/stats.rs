//! What a load thread counts: completed requests, bytes, a latency
//! histogram and errors by kind. Each thread owns one `Stats` (no sharing
//! while the run lasts); the main thread merges them at the end.

use hdrhistogram::Histogram;
use std::time::Duration;

/// Lowest latency the histograms track, in microseconds.
pub(crate) const LOWEST_US: u64 = 1;
/// Highest latency the histograms track, in microseconds (60 s); longer
/// ones are recorded as 60 s.
pub(crate) const HIGHEST_US: u64 = 60_000_000;
/// Significant decimal digits kept by the histograms.
pub(crate) const SIGFIG: u8 = 3;

/// Why a request did not complete (or completed with a bad status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The connection could not be made (refused, unreachable, timed out).
    Connect,
    /// Reading the response failed (reset...).
    Read,
    /// Writing the request failed.
    Write,
    /// The request took longer than `--timeout`.
    Timeout,
    /// The response's status was not 2xx or 3xx.
    Status,
    /// The server closed the connection before a complete response.
    Closed,
    /// The response was malformed.
    Parse,
    /// The TLS handshake failed (an alert, a reset or a close during it).
    Tls,
}

impl ErrorKind {
    /// Every kind, in reporting order.
    pub(crate) const ALL: [ErrorKind; 8] = [
        ErrorKind::Connect,
        ErrorKind::Read,
        ErrorKind::Write,
        ErrorKind::Timeout,
        ErrorKind::Status,
        ErrorKind::Closed,
        ErrorKind::Parse,
        ErrorKind::Tls,
    ];

    /// The kind's name in reports and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Read => "read",
            ErrorKind::Write => "write",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status => "status",
            ErrorKind::Closed => "closed",
            ErrorKind::Parse => "parse",
            ErrorKind::Tls => "tls",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A new, empty latency histogram (µs, 1 µs .. 60 s, 3 digits).
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// One thread's counts.
#[derive(Clone)]
pub(crate) struct Stats {
    /// Latency of each completed request, in microseconds (bulk mode: the
    /// completion time of each connection's transfer).
    pub hist: Histogram<u64>,
    /// Requests completed successfully.
    pub requests: u64,
    /// Bytes received in completed responses (bulk mode: all bytes echoed
    /// back, complete transfers or not).
    pub bytes: u64,
    /// Errors, indexed by `ErrorKind as usize`.
    pub errors: [u64; ErrorKind::ALL.len()],
    /// TLS handshakes completed.
    pub handshakes: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            hist: new_histogram(),
            requests: 0,
            bytes: 0,
            errors: [0; ErrorKind::ALL.len()],
            handshakes: 0,
        }
    }
}

impl Stats {
    /// Counts a completed request that took `latency` and brought `bytes`.
    pub(crate) fn record(&mut self, latency: Duration, bytes: u64) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.hist.saturating_record(us.clamp(LOWEST_US, HIGHEST_US));
        self.requests += 1;
        self.bytes += bytes;
    }

    /// Counts one error.
    pub(crate) fn error(&mut self, kind: ErrorKind) {
        self.errors[kind.index()] += 1;
    }

    /// Errors of one kind.
    pub(crate) fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()]
    }

    /// All errors.
    pub(crate) fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Forgets everything (end of the warm-up).
    pub(crate) fn reset(&mut self) {
        self.hist.reset();
        self.requests = 0;
        self.bytes = 0;
        self.errors = [0; ErrorKind::ALL.len()];
        self.handshakes = 0;
    }

    /// Adds another thread's counts to these.
    pub(crate) fn merge(&mut self, other: &Stats) {
        self.hist
            .add(&other.hist)
            .expect("histograms with the same bounds add");
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.handshakes += other.handshakes;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_merge_reset() {
        let mut a = Stats::default();
        a.record(Duration::from_micros(100), 10);
        a.record(Duration::from_secs(3600), 10);
        a.record(Duration::ZERO, 1);
        a.error(ErrorKind::Timeout);
        let mut b = Stats::default();
        b.record(Duration::from_millis(2), 5);
        b.error(ErrorKind::Timeout);
        b.error(ErrorKind::Parse);
        a.merge(&b);
        assert_eq!(a.requests, 4);
        assert_eq!(a.bytes, 26);
        assert_eq!(a.hist.len(), 4);
        assert_eq!(a.hist.min(), 1);
        assert!(a.hist.max() >= HIGHEST_US && a.hist.max() < HIGHEST_US + HIGHEST_US / 1000);
        assert_eq!(a.errors_of(ErrorKind::Timeout), 2);
        assert_eq!(a.errors_total(), 3);
        a.reset();
        assert_eq!((a.requests, a.hist.len(), a.errors_total()), (0, 0, 0));
    }
}
