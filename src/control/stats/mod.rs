//! Statistics: per-worker counters, and the views built from them on
//! request (the stats page and its `;csv`/`;json` forms, Prometheus
//! `/metrics`).
//!
//! Counting is plain `Cell` arithmetic in the connection's own worker.
//! A view asks every worker for a [`Snapshot`] over the mesh
//! (`StatsRequest` → `Stats`), adds them up and renders; the proxying path
//! never waits for it. Worker 0 also samples the totals every
//! [`SAMPLE_EVERY`] for the page's charts.

pub mod page;
pub mod prometheus;

pub use crate::observe::counters::Counters;

use crate::mesh::MeshMsg;
use crate::worker::Worker;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Duration;

/// How often worker 0 samples request rates and response times.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How many samples the charts show (5 minutes).
pub const HISTORY: usize = 60;
/// How long a view waits for the other workers' snapshots.
const GATHER_WAIT: Duration = Duration::from_millis(500);

/// One row's numbers (a frontend, backend or server), summed over workers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
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
    response_sum: u64,
    #[serde(skip)]
    responses_timed: u64,
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
    fn from_counters(name: &str, c: &Counters, cur: u64, now_s: u32) -> Row {
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
    fn add(&mut self, o: &Row) {
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

    fn finish(&mut self) {
        self.response_ms = self
            .response_sum
            .checked_div(self.responses_timed)
            .unwrap_or(0);
    }
}

/// A backend's row and its servers' rows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackendRows {
    #[serde(flatten)]
    pub row: Row,
    pub mode: &'static str,
    pub servers: Vec<Row>,
}

/// Process-wide facts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Info {
    pub version: &'static str,
    pub pid: u32,
    pub workers: usize,
    pub uptime_s: u64,
    /// Client connections open now, all workers.
    pub conns: u64,
}

/// Totals sampled every [`SAMPLE_EVERY`] by worker 0.
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    pub every_s: u64,
    /// Per backend: requests (or sessions) per second, oldest first.
    pub rate: Vec<Vec<f64>>,
    /// Per backend: average response time (ms) over each interval.
    pub response_ms: Vec<Vec<u64>>,
}

/// Everything a view shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub info: Info,
    pub frontends: Vec<Row>,
    pub backends: Vec<BackendRows>,
    pub history: History,
}

/// What worker 0 keeps for the charts: per backend, (sessions total,
/// response ms sum, responses timed) at each sample.
#[derive(Default)]
pub struct Sampler {
    samples: RefCell<VecDeque<Vec<(u64, u64, u64)>>>,
}

/// Replies to this worker's pending request.
#[derive(Default)]
pub struct Gathering {
    id: Cell<u64>,
    replies: RefCell<Vec<Snapshot>>,
    pub arrived: crate::base::local_sync::WaitQueue,
}

/// This worker's own numbers.
pub fn local(w: &Worker) -> Snapshot {
    let now = w.now_s();
    let cfg = &w.config;
    let frontends = cfg
        .frontends
        .iter()
        .zip(&w.frontends)
        .map(|(f, st)| {
            let mut r = Row::from_counters(&f.name, &st.stats, st.conns.get().into(), now);
            r.status = "OPEN".into();
            r
        })
        .collect();
    let backends = cfg
        .backends
        .iter()
        .zip(&w.backends)
        .map(|(b, st)| {
            let mut row = Row::from_counters(&b.name, &st.stats, st.conns.get().into(), now);
            row.queue_cur = st.queued.get().into();
            let servers = b
                .servers
                .iter()
                .zip(&st.servers)
                .map(|(s, ss)| {
                    let mut r = Row::from_counters(&s.name, &ss.stats, ss.conns.get().into(), now);
                    r.status = match (ss.admin.get(), s.check.is_some(), ss.up.get()) {
                        (crate::balance::backend::AdminState::Maint, _, _) => "MAINT".into(),
                        (crate::balance::backend::AdminState::Drain, _, _) => "DRAIN".into(),
                        (_, false, _) => "no check".into(),
                        (_, true, true) => "UP".into(),
                        (_, true, false) => "DOWN".into(),
                    };
                    r.check = ss.check_status.get().to_string();
                    r.weight = ss.weight.get().into();
                    r.backup = s.backup;
                    r.last_change_s = ss.changed_at.get().elapsed().as_secs();
                    let mut down = ss.downtime.get();
                    if !ss.up.get() {
                        down += ss.changed_at.get().elapsed();
                    }
                    r.downtime_s = down.as_secs();
                    r
                })
                .collect();
            BackendRows {
                row,
                mode: b.mode.name(),
                servers,
            }
        })
        .collect();
    Snapshot {
        info: Info {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            workers: w.workers,
            uptime_s: u64::from(now),
            conns: w.conns.get().into(),
        },
        frontends,
        backends,
        history: History::default(),
    }
}

/// Every worker's numbers added up (workers that do not answer within
/// [`GATHER_WAIT`] are left out), with worker 0's history.
pub async fn collect(w: &Worker) -> Snapshot {
    let mut total = local(w);
    if w.workers > 1 {
        let g = &w.stats_gathering;
        let id = g.id.get() + 1;
        g.id.set(id);
        g.replies.borrow_mut().clear();
        for other in (0..w.workers).filter(|&o| o != w.id) {
            w.send_to_worker(other, MeshMsg::StatsRequest { id }).await;
        }
        let deadline = std::time::Instant::now() + GATHER_WAIT;
        while g.replies.borrow().len() < w.workers - 1 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            futures_lite::future::or(g.arrived.wait(), async {
                glommio::timer::Timer::new(left).await;
            })
            .await;
        }
        for s in g.replies.borrow_mut().drain(..) {
            merge(&mut total, &s);
        }
    }
    for f in &mut total.frontends {
        f.finish();
    }
    for b in &mut total.backends {
        b.row.finish();
        b.servers.iter_mut().for_each(Row::finish);
        if b.row.status.is_empty() {
            let any_up = b.servers.iter().any(|s| s.status != "DOWN");
            b.row.status = if any_up || b.servers.is_empty() {
                "UP"
            } else {
                "DOWN"
            }
            .into();
        }
    }
    total
}

fn merge(total: &mut Snapshot, s: &Snapshot) {
    total.info.conns += s.info.conns;
    for (a, b) in total.frontends.iter_mut().zip(&s.frontends) {
        a.add(b);
    }
    for (a, b) in total.backends.iter_mut().zip(&s.backends) {
        a.row.add(&b.row);
        for (x, y) in a.servers.iter_mut().zip(&b.servers) {
            x.add(y);
        }
    }
    if !s.history.rate.is_empty() {
        total.history = s.history.clone();
    }
}

/// A mesh message for statistics, on the receiving worker.
pub async fn receive(w: &Worker, from_worker: usize, msg: MeshMsg) {
    match msg {
        MeshMsg::StatsRequest { id } => {
            let mut snap = local(w);
            if w.id == 0 {
                snap.history = history(w);
            }
            let reply = MeshMsg::Stats {
                id,
                snapshot: Box::new(snap),
            };
            w.send_to_worker(from_worker, reply).await;
        }
        MeshMsg::Stats { id, snapshot } => {
            let g = &w.stats_gathering;
            if id == g.id.get() {
                g.replies.borrow_mut().push(*snapshot);
                g.arrived.wake_all();
            }
        }
        _ => {}
    }
}

/// The chart series from worker 0's samples (its own counters plus the
/// other workers', gathered at each sample).
pub fn history(w: &Worker) -> History {
    let samples = w.stats_sampler.samples.borrow();
    let every = SAMPLE_EVERY.as_secs_f64();
    let n = w.config.backends.len();
    let mut h = History {
        every_s: SAMPLE_EVERY.as_secs(),
        rate: vec![Vec::new(); n],
        response_ms: vec![Vec::new(); n],
    };
    for pair in samples.iter().collect::<Vec<_>>().windows(2) {
        let series = h.rate.iter_mut().zip(h.response_ms.iter_mut());
        for ((rate, ms), (a, b)) in series.zip(pair[0].iter().zip(pair[1].iter())) {
            let (t0, ms0, c0) = *a;
            let (t1, ms1, c1) = *b;
            rate.push(t1.saturating_sub(t0) as f64 / every);
            ms.push(
                ms1.saturating_sub(ms0)
                    .checked_div(c1.saturating_sub(c0))
                    .unwrap_or(0),
            );
        }
    }
    h
}

/// Worker 0's sampling loop: every [`SAMPLE_EVERY`], the backends' totals.
pub fn spawn_sampler(w: &std::rc::Rc<Worker>) {
    if w.id != 0
        || !w
            .config
            .frontends
            .iter()
            .any(|f| f.http.as_ref().is_some_and(|h| h.stats.is_some()))
    {
        return;
    }
    let w = w.clone();
    glommio::spawn_local(async move {
        while !w.stopping.is_set() {
            futures_lite::future::or(glommio::timer::Timer::new(SAMPLE_EVERY), async {
                w.stopping.wait().await;
                std::time::Instant::now()
            })
            .await;
            let snap = collect(&w).await;
            let sample = snap
                .backends
                .iter()
                .map(|b| (b.row.total, b.row.response_sum, b.row.responses_timed))
                .collect();
            let mut s = w.stats_sampler.samples.borrow_mut();
            s.push_back(sample);
            while s.len() > HISTORY + 1 {
                s.pop_front();
            }
        }
    })
    .detach();
}
