//! Statistics: per-worker counters, and the views built from them on
//! request (the stats page and its `;csv`/`;json` forms, Prometheus
//! `/metrics`).
//!
//! Counting is plain `Cell` arithmetic in the connection's own worker.
//! A view asks every worker for a [`Snapshot`] over the mesh
//! (`StatsRequest` → `Stats`), adds them up and renders; the proxying path
//! never waits for it. Worker 0 also samples the totals every
//! [`SAMPLE_EVERY`] for the page's charts.
//!
//! Must not touch: the data path (the HTTP session calls in here to serve
//! the page, never the other way round).

pub(crate) mod page;
pub(crate) mod prometheus;

pub(crate) use crate::observe::snapshot::{BackendRows, History, Info, Row, Snapshot};

use crate::mesh::MeshMsg;
use crate::worker::Worker;
use std::time::Duration;

/// How often worker 0 samples request rates and response times.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How many samples the charts show (5 minutes).
pub(crate) const HISTORY: usize = 60;
/// How long a view waits for the other workers' snapshots.
const GATHER_WAIT: Duration = Duration::from_millis(500);

/// This worker's own numbers.
pub(crate) fn local(w: &Worker) -> Snapshot {
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
pub(crate) async fn collect(w: &Worker) -> Snapshot {
    let mut total = local(w);
    if w.workers > 1 {
        let got = w
            .mesh
            .ask_all(
                &w.mesh.stats,
                |id| MeshMsg::StatsRequest { id },
                GATHER_WAIT,
            )
            .await;
        for s in &got.answers {
            merge(&mut total, s);
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

/// This worker's numbers as another worker's view asks for them (with the
/// chart history on worker 0, which samples).
pub(crate) fn local_with_history(w: &Worker) -> Snapshot {
    let mut snap = local(w);
    if w.id == 0 {
        snap.history = history(w);
    }
    snap
}

/// The chart series from worker 0's samples (its own counters plus the
/// other workers', gathered at each sample).
pub(crate) fn history(w: &Worker) -> History {
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
pub(crate) fn spawn_sampler(w: &std::rc::Rc<Worker>) {
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
        while !w.life.stopping.is_set() {
            futures_lite::future::or(glommio::timer::Timer::new(SAMPLE_EVERY), async {
                w.life.stopping.wait().await;
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
