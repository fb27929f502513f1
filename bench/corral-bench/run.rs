//! `corral-bench run`: start one executor thread per `--threads`, give
//! them a common start time, collect each thread's counts once at the end,
//! merge them and print the report (and the .hgrm file and plot if asked).

use crate::cli::RunArgs;
use crate::plan::Plan;
use crate::report::Summary;
use crate::stats::Stats;
use crate::worker::{self, ThreadResult};
use crate::{executors, hgrm, plot};
use signal_hook::consts::{SIGINT, SIGTERM};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long threads may take to build their executors.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Slack past the planned end before a silent thread is an error.
const END_SLACK: Duration = Duration::from_secs(10);

/// What load threads tell the main thread.
enum Msg {
    Ready,
    Failed(String),
    Done(Box<ThreadResult>),
}

/// Runs the load described by `args` and reports it.
pub(crate) fn command(args: &RunArgs) -> Result<(), String> {
    let plan = Arc::new(Plan::from_args(args)?);
    if let Some(path) = &args.plot {
        plot::check_out(path, "--plot")?;
    }
    executors::prepare_process()?;
    // Ctrl-C (or SIGTERM) ends the run early; the results so far are
    // reported as usual.
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone())
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    }
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut go = Vec::new();
    for t in 0..plan.threads {
        let (go_tx, go_rx) = mpsc::channel::<Instant>();
        go.push(go_tx);
        let (tx, plan, interrupted) = (tx.clone(), plan.clone(), interrupted.clone());
        std::thread::Builder::new()
            .name(format!("corral-bench-{t}"))
            .spawn(move || {
                let ex = match executors::build("corral-bench", t, plan.cpu_of(t)) {
                    Ok(ex) => ex,
                    Err(m) => {
                        let _ = tx.send(Msg::Failed(m));
                        return;
                    }
                };
                let _ = tx.send(Msg::Ready);
                let Ok(start) = go_rx.recv() else { return };
                let result = ex.run(worker::run(plan, t, start, interrupted));
                let _ = tx.send(Msg::Done(Box::new(result)));
            })
            .map_err(|e| format!("cannot start thread {t}: {e}"))?;
    }
    for _ in 0..plan.threads {
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Msg::Ready) => {}
            Ok(Msg::Failed(m)) => return Err(m),
            _ => return Err("the load threads did not start".into()),
        }
    }
    // One start for all threads: the open-loop timelines line up.
    let start = Instant::now();
    for g in go {
        let _ = g.send(start);
    }
    let deadline = start + plan.warmup + plan.duration + plan.timeout + END_SLACK;
    let mut stats = Stats::default();
    let mut elapsed = Duration::ZERO;
    let mut negotiated = None;
    for _ in 0..plan.threads {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Done(r)) => {
                stats.merge(&r.stats);
                elapsed = elapsed.max(r.elapsed);
                negotiated = negotiated.or(r.negotiated);
            }
            _ => return Err("a load thread did not report its results in time".into()),
        }
    }
    let summary = Summary {
        plan: &plan,
        stats,
        elapsed,
        negotiated,
    };
    let text = if args.json {
        format!("{}\n", summary.to_json())
    } else {
        summary.human()
    };
    // A closed stdout (piped into `head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if let Some(path) = &args.hgrm {
        std::fs::write(path, hgrm::render(&summary.stats.hist))
            .map_err(|e| format!("--hgrm {}: cannot write it: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let label = plan
            .label
            .clone()
            .unwrap_or_else(|| format!("{} @ {}", plan.mode.name(), plan.target_text()));
        let curve = plot::Curve::new(label, &summary.stats.hist);
        plot::write(path, &[curve], "Latency by percentile").map_err(|e| format!("--plot {e}"))?;
    }
    Ok(())
}
