//! How corral's io_uring rings are created: glommio's, with one flag more.
//!
//! glommio 0.9 creates its rings without `IORING_SETUP_COOP_TASKRUN`. Then
//! each completion (every socket readiness event) is delivered by
//! interrupting the worker with an inter-processor interrupt so the kernel
//! can run io_uring's task work, even when the worker is busy and about to
//! enter the kernel anyway. Measured on this project's machine (TCP mode,
//! one worker, same run): 33k requests/s without the flag, 70k with it,
//! CPU per request divided by 2.1 (see BENCHMARKS.md).
//!
//! With the flag, task work waits for the worker's next system call (which
//! comes within microseconds on a busy worker), and a sleeping worker is
//! still woken. glommio does not expose its ring flags, so the linker is
//! told (build.rs: `--wrap=__sys_io_uring_setup`) to route liburing's
//! ring-creation call through `__wrap___sys_io_uring_setup` below.
//! Kernels older than 5.19 refuse the flag; the ring is then created
//! without it.

use std::sync::atomic::{AtomicU32, Ordering};

const IORING_SETUP_IOPOLL: u32 = 1 << 0;
const IORING_SETUP_COOP_TASKRUN: u32 = 1 << 8;
/// Byte offset of `flags` in `struct io_uring_params` (after sq_entries
/// and cq_entries, two u32s).
const FLAGS_OFFSET: usize = 8;

/// Rings created with COOP_TASKRUN, and without it (the kernel refused).
/// Start-up only: never touched on the connection path.
static COOP_RINGS: AtomicU32 = AtomicU32::new(0);
static PLAIN_RINGS: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" {
    /// liburing's own function, reached through the linker's `--wrap`.
    fn __real___sys_io_uring_setup(entries: u32, params: *mut u8) -> i32;
}

/// Called instead of liburing's `__sys_io_uring_setup`.
///
/// # Safety
/// `params` points to a `struct io_uring_params`, as liburing passes it.
#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn __wrap___sys_io_uring_setup(entries: u32, params: *mut u8) -> i32 {
    // SAFETY: liburing hands us a valid, writable io_uring_params.
    unsafe {
        let flags = params.add(FLAGS_OFFSET).cast::<u32>();
        let original = flags.read_unaligned();
        // The storage polling ring (IOPOLL) has no socket traffic.
        if original & IORING_SETUP_IOPOLL == 0 {
            flags.write_unaligned(original | IORING_SETUP_COOP_TASKRUN);
            let fd = __real___sys_io_uring_setup(entries, params);
            if fd >= 0 {
                COOP_RINGS.fetch_add(1, Ordering::Relaxed);
                return fd;
            }
            // EINVAL: a kernel before 5.19. Ask again without the flag.
            flags.write_unaligned(original);
        }
        let fd = __real___sys_io_uring_setup(entries, params);
        if fd >= 0 {
            PLAIN_RINGS.fetch_add(1, Ordering::Relaxed);
        }
        fd
    }
}

/// (rings created with COOP_TASKRUN, rings created without it).
pub fn ring_counts() -> (u32, u32) {
    (
        COOP_RINGS.load(Ordering::Relaxed),
        PLAIN_RINGS.load(Ordering::Relaxed),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn executors_get_coop_taskrun_rings() {
        let before = super::ring_counts();
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(64 << 10)
            .make()
            .expect("an executor");
        ex.run(async {});
        let after = super::ring_counts();
        // The wrapper is linked in: ring creation went through it, and this
        // kernel (6.x) accepts the flag for the non-polling rings.
        assert!(after.0 >= before.0 + 2, "{before:?} -> {after:?}");
    }
}
