//! Worker-local wake-ups: no atomics, no locks. A worker's tasks all run on
//! one thread, so a `Cell` and a list of wakers are all that is needed.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Tasks wait here until something they care about may have changed (a
/// server slot freed, a server came up). Every waiter is woken, in arrival
/// order; each re-checks its own condition.
#[derive(Default)]
pub(crate) struct WaitQueue {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl WaitQueue {
    /// Resolves at the next `wake_all` after this call.
    pub(crate) fn wait(&self) -> Wait<'_> {
        Wait {
            queue: self,
            generation: self.generation.get(),
        }
    }

    pub(crate) fn wake_all(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    #[cfg(test)]
    pub(crate) fn has_waiters(&self) -> bool {
        !self.waiters.borrow().is_empty()
    }
}

pub(crate) struct Wait<'a> {
    queue: &'a WaitQueue,
    generation: u64,
}

impl Future for Wait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.queue.generation.get() != self.generation {
            return Poll::Ready(());
        }
        let mut waiters = self.queue.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// A one-way switch (e.g. "stop accepting") that tasks can await.
#[derive(Default)]
pub(crate) struct Flag {
    set: Cell<bool>,
    queue: WaitQueue,
}

impl Flag {
    pub(crate) fn set(&self) {
        if !self.set.replace(true) {
            self.queue.wake_all();
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.get()
    }

    pub(crate) async fn wait(&self) {
        while !self.set.get() {
            self.queue.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_wake_after_wake_all_only() {
        glommio::LocalExecutor::default().run(async {
            let q = std::rc::Rc::new(WaitQueue::default());
            let woke = std::rc::Rc::new(Cell::new(0));
            let mut tasks = Vec::new();
            for _ in 0..3 {
                let (q, woke) = (q.clone(), woke.clone());
                tasks.push(glommio::spawn_local(async move {
                    q.wait().await;
                    woke.set(woke.get() + 1);
                }));
            }
            glommio::yield_if_needed().await;
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            assert_eq!(woke.get(), 0);
            assert!(q.has_waiters());
            q.wake_all();
            for t in tasks {
                t.await;
            }
            assert_eq!(woke.get(), 3);
        });
    }

    #[test]
    fn flag_wakes_every_waiter_once() {
        glommio::LocalExecutor::default().run(async {
            let f = std::rc::Rc::new(Flag::default());
            let f2 = f.clone();
            let t = glommio::spawn_local(async move { f2.wait().await });
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            assert!(!f.is_set());
            f.set();
            t.await;
            assert!(f.is_set());
        });
    }
}
