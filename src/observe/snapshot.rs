//! The numbers the statistics views show (stats page, CSV, JSON,
//! Prometheus): one [`Snapshot`] per worker, sent over the mesh and summed
//! by the view, and worker 0's samples for the charts.

use crate::observe::counters::Counters;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::VecDeque;

/// One row's numbers (a frontend, backend or server), summed over workers.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Row {
    pub name: String,
    /// Current sessions [scur].
    pub cur: u64,
    pub max: u64,
    pub total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub requests: u64,
    /// Responses by class: 1xx..5xx, other.
    pub responses: [u64; 6],
    pub denied: u64,
    pub bad_requests: u64,
    pub connect_errors: u64,
    pub response_errors: u64,
    pub retries: u64,
    pub redispatches: u64,
    pub queue_cur: u64,
    pub queue_max: u64,
    /// Sessions per second over the last 10 s.
    pub rate: f64,
    /// Average response time (ms), 0 when none was timed.
    pub response_ms: u64,
    #[serde(skip)]
    pub(crate) response_sum: u64,
    #[serde(skip)]
    pub(crate) responses_timed: u64,
    /// Servers: `UP`, `DOWN`, `no check` (as HAProxy's status column);
    /// frontends `OPEN`; backends `UP` while a server is.
    pub status: String,
    /// Servers: the last check's result (`L4OK`, `L7STS`...).
    pub check: String,
    pub weight: u64,
    pub backup: bool,
    /// Seconds since the status last changed, and total seconds DOWN.
    pub last_change_s: u64,
    pub downtime_s: u64,
}

impl Row {
    pub(crate) fn from_counters(name: &str, c: &Counters, cur: u64, now_s: u32) -> Row {
        Row {
            name: name.to_string(),
            cur,
            max: c.max.get().into(),
            total: c.total.get(),
            bytes_in: c.bytes_in.get(),
            bytes_out: c.bytes_out.get(),
            requests: c.requests.get(),
            responses: std::array::from_fn(|i| c.responses[i].get()),
            denied: c.denied.get(),
            bad_requests: c.bad_requests.get(),
            connect_errors: c.connect_errors.get(),
            response_errors: c.response_errors.get(),
            retries: c.retries.get(),
            redispatches: c.redispatches.get(),
            queue_max: c.queue_max.get().into(),
            rate: c.rate.sum(now_s) as f64 / (crate::observe::counters::WINDOW - 1) as f64,
            response_sum: c.response_ms.get(),
            responses_timed: c.responses_timed.get(),
            ..Row::default()
        }
    }

    /// Adds another worker's numbers. Maxima add up too: each worker's
    /// peak is its own, so the sum bounds the process's peak from above.
    pub(crate) fn add(&mut self, o: &Row) {
        self.cur += o.cur;
        self.max += o.max;
        self.total += o.total;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.requests += o.requests;
        for (a, b) in self.responses.iter_mut().zip(o.responses) {
            *a += b;
        }
        self.denied += o.denied;
        self.bad_requests += o.bad_requests;
        self.connect_errors += o.connect_errors;
        self.response_errors += o.response_errors;
        self.retries += o.retries;
        self.redispatches += o.redispatches;
        self.queue_cur += o.queue_cur;
        self.queue_max += o.queue_max;
        self.rate += o.rate;
        self.response_sum += o.response_sum;
        self.responses_timed += o.responses_timed;
        if self.check.is_empty() || self.check == "INI" {
            self.check.clone_from(&o.check);
        }
    }

    pub(crate) fn finish(&mut self) {
        self.response_ms = self
            .response_sum
            .checked_div(self.responses_timed)
            .unwrap_or(0);
    }
}

/// A backend's row and its servers' rows.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct BackendRows {
    #[serde(flatten)]
    pub row: Row,
    pub mode: &'static str,
    pub servers: Vec<Row>,
}

/// Process-wide facts.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Info {
    pub version: &'static str,
    pub pid: u32,
    pub workers: usize,
    pub uptime_s: u64,
    /// Client connections open now, all workers.
    pub conns: u64,
}

/// Totals sampled every [`SAMPLE_EVERY`] by worker 0.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct History {
    pub every_s: u64,
    /// Per backend: requests (or sessions) per second, oldest first.
    pub rate: Vec<Vec<f64>>,
    /// Per backend: average response time (ms) over each interval.
    pub response_ms: Vec<Vec<u64>>,
}

/// Everything a view shows.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Snapshot {
    pub info: Info,
    pub frontends: Vec<Row>,
    pub backends: Vec<BackendRows>,
    pub history: History,
}

/// What worker 0 keeps for the charts: per backend, (sessions total,
/// response ms sum, responses timed) at each sample.
#[derive(Default)]
pub(crate) struct Sampler {
    pub(crate) samples: RefCell<VecDeque<Vec<(u64, u64, u64)>>>,
}
