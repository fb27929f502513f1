//! Relay buffers of `tune.bufsize` bytes, reused across a worker's
//! connections.

use std::cell::{Cell, RefCell};

/// Relay buffers of `tune.bufsize` bytes, kept for reuse so a new
/// connection does not allocate once the worker has warmed up.
pub(crate) struct BufPool {
    size: usize,
    free: RefCell<Vec<Box<[u8]>>>,
    /// Bytes given back to the allocator since the last trim (buffers
    /// beyond the pool, parked sessions): see `Worker::trim_memory`.
    pub(crate) freed: Cell<usize>,
}

/// Free buffers kept at most; beyond, returned buffers are released.
const POOL_KEEP: usize = 128;

impl BufPool {
    pub(crate) fn new(size: usize) -> BufPool {
        BufPool {
            size,
            free: RefCell::new(Vec::new()),
            freed: Cell::new(0),
        }
    }

    pub(crate) fn take(&self) -> Box<[u8]> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0u8; self.size].into_boxed_slice())
    }

    pub(crate) fn give(&self, buf: Box<[u8]>) {
        if buf.len() != self.size {
            return; // an empty (released) buffer, or not one of ours
        }
        let mut free = self.free.borrow_mut();
        if free.len() < POOL_KEEP {
            free.push(buf);
        } else {
            self.note_freed(self.size);
        }
    }

    /// Counts memory handed back to the allocator.
    pub(crate) fn note_freed(&self, bytes: usize) {
        self.freed.set(self.freed.get() + bytes);
    }
}
