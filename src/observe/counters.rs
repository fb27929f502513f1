//! Per-worker traffic counters of a frontend, a backend or a server: plain
//! `Cell`s bumped by the connection that did the work, read only when
//! someone asks (the stats page, `/metrics`, `show stat`).

use std::cell::Cell;

/// Events per second over the last [`WINDOW`] seconds, from one bucket
/// per second. The worker's coarse clock (`Worker::now_s`) says which.
pub(crate) const WINDOW: usize = 10;

#[derive(Default)]
pub(crate) struct Rate {
    buckets: [Cell<u32>; WINDOW],
    /// The second the newest bucket counts.
    at: Cell<u32>,
}

impl Rate {
    pub(crate) fn hit(&self, now_s: u32) {
        self.roll(now_s);
        let b = &self.buckets[now_s as usize % WINDOW];
        b.set(b.get().saturating_add(1));
    }

    /// Clears the buckets of the seconds between the last event and now.
    fn roll(&self, now_s: u32) {
        let at = self.at.get();
        if now_s == at {
            return;
        }
        let gap = now_s.wrapping_sub(at).min(WINDOW as u32);
        for i in 1..=gap {
            self.buckets[(at.wrapping_add(i)) as usize % WINDOW].set(0);
        }
        self.at.set(now_s);
    }

    /// Events in the last `WINDOW` whole seconds (the current one left
    /// out: it is still filling).
    pub(crate) fn sum(&self, now_s: u32) -> u64 {
        self.roll(now_s);
        (1..=WINDOW as u32 - 1)
            .map(|back| u64::from(self.buckets[now_s.wrapping_sub(back) as usize % WINDOW].get()))
            .sum()
    }
}

/// One stats row's counters on one worker (HAProxy's `show stat` columns
/// in brackets).
#[derive(Default)]
pub(crate) struct Counters {
    /// Highest concurrent sessions seen [smax].
    pub max: Cell<u32>,
    /// Sessions (connections, or requests on a backend/server in http
    /// mode) [stot].
    pub total: Cell<u64>,
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    /// HTTP requests [req_tot].
    pub requests: Cell<u64>,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx, other [hrsp_*].
    pub responses: [Cell<u64>; 6],
    /// Requests denied by rules [dreq].
    pub denied: Cell<u64>,
    /// Bad requests [ereq].
    pub bad_requests: Cell<u64>,
    /// Failed connections to servers [econ].
    pub connect_errors: Cell<u64>,
    /// Responses that failed (server reset, timeout, bad response) [eresp].
    pub response_errors: Cell<u64>,
    /// [wretr], [wredis].
    pub retries: Cell<u64>,
    pub redispatches: Cell<u64>,
    /// Longest queue seen [qmax].
    pub queue_max: Cell<u32>,
    /// Sessions per second [rate].
    pub rate: Rate,
    /// Sum of response times (ms) and how many, for the average [rtime].
    pub response_ms: Cell<u64>,
    pub responses_timed: Cell<u64>,
}

impl Counters {
    /// A new session; `cur` is the concurrent count including it.
    pub(crate) fn session(&self, cur: u32, now_s: u32) {
        self.total.set(self.total.get() + 1);
        if cur > self.max.get() {
            self.max.set(cur);
        }
        self.rate.hit(now_s);
    }

    pub(crate) fn bytes(&self, bytes_in: u64, bytes_out: u64) {
        self.bytes_in.set(self.bytes_in.get() + bytes_in);
        self.bytes_out.set(self.bytes_out.get() + bytes_out);
    }

    /// A response sent with `status` (0: none was).
    pub(crate) fn response(&self, status: u16) {
        let class = match status {
            100..=599 => (status / 100 - 1) as usize,
            _ => 5,
        };
        let c = &self.responses[class];
        c.set(c.get() + 1);
    }

    pub(crate) fn response_time(&self, ms: u64) {
        self.response_ms.set(self.response_ms.get() + ms);
        self.responses_timed.set(self.responses_timed.get() + 1);
    }

    pub(crate) fn bump(c: &Cell<u64>) {
        c.set(c.get() + 1);
    }

    pub(crate) fn queued(&self, now: u32) {
        if now > self.queue_max.get() {
            self.queue_max.set(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_counts_the_last_whole_seconds() {
        let r = Rate::default();
        for _ in 0..5 {
            r.hit(100);
        }
        r.hit(101);
        assert_eq!(r.sum(101), 5, "the current second is still filling");
        assert_eq!(r.sum(102), 6);
        assert_eq!(r.sum(109), 6);
        assert_eq!(r.sum(110), 1, "second 100 left the window");
        assert_eq!(r.sum(200), 0);
        r.hit(200);
        assert_eq!(r.sum(201), 1);
    }

    #[test]
    fn responses_by_class() {
        let c = Counters::default();
        for s in [200, 204, 301, 404, 503, 0, 999] {
            c.response(s);
        }
        let got: Vec<u64> = c.responses.iter().map(Cell::get).collect();
        assert_eq!(got, [0, 2, 1, 1, 1, 2]);
    }
}
