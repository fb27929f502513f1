//! Answers to a request sent to every other worker (the statistics views'
//! snapshots, the runtime API's), filed by ticket as they arrive. One
//! mechanism for every "ask all workers, wait a bounded time" exchange.

use crate::base::local_sync::WaitQueue;
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// Requests waiting for answers, by ticket, and the answers so far.
pub(crate) struct Replies<T> {
    next: Cell<u64>,
    waiting: RefCell<Vec<(u64, Vec<T>)>>,
    arrived: WaitQueue,
}

impl<T> Default for Replies<T> {
    fn default() -> Self {
        Replies {
            next: Cell::new(0),
            waiting: RefCell::new(Vec::new()),
            arrived: WaitQueue::default(),
        }
    }
}

impl<T> Replies<T> {
    /// A ticket for a new request, whose answers are kept from now on.
    pub(crate) fn open(&self) -> u64 {
        let ticket = self.next.get() + 1;
        self.next.set(ticket);
        self.waiting.borrow_mut().push((ticket, Vec::new()));
        ticket
    }

    /// Files an answer (one that arrives after its request gave up is
    /// dropped).
    pub(crate) fn deliver(&self, ticket: u64, answer: T) {
        if let Some((_, got)) = self
            .waiting
            .borrow_mut()
            .iter_mut()
            .find(|(t, _)| *t == ticket)
        {
            got.push(answer);
        }
        self.arrived.wake_all();
    }

    /// Waits until `want` answers to `ticket` arrived or `within` passed,
    /// and takes them (the ticket is closed).
    pub(crate) async fn wait(&self, ticket: u64, want: usize, within: Duration) -> Vec<T> {
        let count = || {
            self.waiting
                .borrow()
                .iter()
                .find(|(t, _)| *t == ticket)
                .map_or(0, |(_, got)| got.len())
        };
        futures_lite::future::or(
            async {
                while count() < want {
                    self.arrived.wait().await;
                }
            },
            async {
                glommio::timer::Timer::new(within).await;
            },
        )
        .await;
        let mut waiting = self.waiting.borrow_mut();
        let i = waiting.iter().position(|(t, _)| *t == ticket);
        i.map(|i| waiting.remove(i).1).unwrap_or_default()
    }
}
