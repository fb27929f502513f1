//! One load thread's life on its executor: start its connections, run the
//! warm-up and the measured period, enforce timeouts, and hand its counts
//! back once, at the end.
//!
//! Timeouts are enforced by one watchdog task per thread instead of a timer
//! raced against every read: a read future that loses such a race and is
//! dropped can leave glommio's stream timer armed (NOTES-glommio), and a
//! timer per request costs more than the request on a fast server. Each
//! connection publishes its socket and its deadline in a `Slot`; the
//! watchdog, when a deadline passes, marks the slot expired and shuts the
//! socket down, which ends the pending read or write at once. The same
//! shutdown ends every connection when the run is over.

use crate::cli::LoadMode;
use crate::plan::Plan;
use crate::stats::Stats;
use crate::tls::Negotiated;
use crate::{bulk, connection};
use glommio::timer::Timer;
use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A connection's state as the watchdog sees it.
pub(crate) struct Slot {
    fd: Cell<RawFd>,
    deadline: Cell<Option<Instant>>,
    expired: Cell<bool>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            fd: Cell::new(-1),
            deadline: Cell::new(None),
            expired: Cell::new(false),
        }
    }

    /// The connection's socket is now `fd` (-1: none).
    pub(crate) fn set_fd(&self, fd: RawFd) {
        self.fd.set(fd);
    }

    /// Starts (or extends) the time allowed for the current operation.
    pub(crate) fn arm(&self, deadline: Instant) {
        self.deadline.set(Some(deadline));
    }

    /// The current operation is over.
    pub(crate) fn disarm(&self) {
        self.deadline.set(None);
    }

    /// Whether the watchdog expired the operation; clears the mark.
    pub(crate) fn take_expired(&self) -> bool {
        self.expired.replace(false)
    }

    fn shutdown(&self) {
        let fd = self.fd.get();
        if fd >= 0 {
            // SAFETY: fd is the live socket of this slot's connection (the
            // connection clears it before closing); shutdown only ends I/O.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }
}

/// What a thread's tasks share (all on one thread: Cells, no locks).
pub(crate) struct Ctx {
    /// The run's plan.
    pub plan: Arc<Plan>,
    /// The start of the timeline (warm-up included), common to all threads.
    pub start: Instant,
    /// Set when the run is over: tasks stop and count nothing more.
    pub stop: Cell<bool>,
    /// One per connection of this thread.
    pub slots: Vec<Slot>,
    /// This thread's counts.
    pub stats: RefCell<Stats>,
    /// With --tls: what the first completed handshake negotiated.
    pub negotiated: RefCell<Option<Negotiated>>,
}

/// What a thread reports at the end.
pub(crate) struct ThreadResult {
    /// Counts of the measured period.
    pub stats: Stats,
    /// How long the measured period lasted on this thread.
    pub elapsed: Duration,
    /// With --tls: what the first completed handshake negotiated.
    pub negotiated: Option<Negotiated>,
}

/// Runs thread `index`'s share of the load; `start` is the common start of
/// the timeline. `interrupted` (set on SIGINT/SIGTERM) ends the run early;
/// only this controller reads it, a few times a second, never the
/// connections.
pub(crate) async fn run(
    plan: Arc<Plan>,
    index: usize,
    start: Instant,
    interrupted: Arc<AtomicBool>,
) -> ThreadResult {
    let (first, count) = plan.share(index);
    let ctx = Rc::new(Ctx {
        plan: plan.clone(),
        start,
        stop: Cell::new(false),
        slots: (0..count).map(|_| Slot::new()).collect(),
        stats: RefCell::new(Stats::default()),
        negotiated: RefCell::new(None),
    });
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let c = ctx.clone();
        let task = if plan.mode == LoadMode::Bulk {
            glommio::spawn_local(bulk::run(c, i, first + i)).detach()
        } else {
            glommio::spawn_local(connection::run(c, i, first + i)).detach()
        };
        tasks.push(task);
    }
    glommio::spawn_local(watchdog(ctx.clone())).detach();

    let measure_from = start + plan.warmup;
    if !plan.warmup.is_zero() {
        sleep_to(measure_from, &interrupted).await;
        ctx.stats.borrow_mut().reset();
    }
    let began = Instant::now();
    let end = measure_from + plan.duration;
    // Connection tasks only finish by themselves in bulk mode (each has
    // one transfer to make); otherwise the end of the period ends the run.
    futures_lite::future::or(sleep_to(end, &interrupted), async {
        for t in tasks {
            t.await;
        }
    })
    .await;
    let elapsed = began.elapsed();
    // Taken before anything else runs: requests still in flight are not
    // counted, whatever happens to them next.
    let stats = ctx.stats.replace(Stats::default());
    ctx.stop.set(true);
    for slot in &ctx.slots {
        slot.shutdown();
    }
    ThreadResult {
        stats,
        elapsed,
        negotiated: ctx.negotiated.take(),
    }
}

/// Sleeps until `at`, or until `interrupted` is seen set.
async fn sleep_to(at: Instant, interrupted: &AtomicBool) {
    const CHECK: Duration = Duration::from_millis(100);
    loop {
        let now = Instant::now();
        if at <= now || interrupted.load(Ordering::Relaxed) {
            return;
        }
        Timer::new((at - now).min(CHECK)).await;
    }
}

/// Expires operations past their deadline, until the run stops.
async fn watchdog(ctx: Rc<Ctx>) {
    // A tenth of the timeout: a request is declared timed out between 1x
    // and 1.1x --timeout after it was sent.
    let tick = (ctx.plan.timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
    while !ctx.stop.get() {
        Timer::new(tick).await;
        let now = Instant::now();
        for slot in &ctx.slots {
            if slot.deadline.get().is_some_and(|d| d <= now) {
                slot.deadline.set(None);
                slot.expired.set(true);
                slot.shutdown();
            }
        }
    }
}
