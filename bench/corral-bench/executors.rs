//! Thread-per-core plumbing shared by `run` and `serve`: checking CPU
//! lists, the limits io_uring needs, and building one glommio executor per
//! thread (pinned or not) with a clear message when that fails.

use glommio::{GlommioError, LocalExecutor, LocalExecutorBuilder, Placement};

/// io_uring memory per executor. corral-bench does no file I/O, so the
/// registered-buffer area glommio sizes with this can stay small (and
/// within a default locked-memory limit).
const IO_MEMORY: usize = 256 << 10;

/// glommio refuses to start below this locked-memory limit.
const MIN_MEMLOCK: u64 = 512 << 10;

/// Checks a `--cpus` list against the CPUs this process may run on and
/// returns it.
pub(crate) fn check_cpus(list: &[usize]) -> Result<Vec<usize>, String> {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    for cpu in list {
        if !available.contains(cpu) {
            let avail: Vec<String> = available.iter().map(|c| c.to_string()).collect();
            return Err(format!(
                "--cpus: CPU {cpu} is not available to this process (available: {})",
                avail.join(",")
            ));
        }
    }
    Ok(list.to_vec())
}

/// Checks what glommio would otherwise fail on late (or panic on): the
/// locked-memory limit. Also raises the open-files limit to its maximum,
/// since each connection is a descriptor.
pub(crate) fn prepare_process() -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0 && lim.rlim_cur < MIN_MEMLOCK {
            return Err(memlock_message(lim.rlim_cur));
        }
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    // The link-time ring-flag wrapper lives in corral's library (build.rs
    // wraps liburing's ring creation for every binary of the crate); this
    // reference keeps it linked into corral-bench too.
    std::hint::black_box(corral::ring_counts());
    Ok(())
}

fn memlock_message(have: u64) -> String {
    format!(
        "the locked-memory limit is {have} bytes but io_uring needs at least {MIN_MEMLOCK}: raise it (`ulimit -l unlimited` in a shell, `LimitMEMLOCK=infinity` in a systemd unit, `--ulimit memlock=-1` for docker)"
    )
}

/// Builds the executor of thread `index`, pinned to `cpu` if given. Call
/// it on the thread that will run it.
pub(crate) fn build(name: &str, index: usize, cpu: Option<usize>) -> Result<LocalExecutor, String> {
    let placement = cpu.map_or(Placement::Unbound, Placement::Fixed);
    LocalExecutorBuilder::new(placement)
        .name(&format!("{name}-{index}"))
        .io_memory(IO_MEMORY)
        .make()
        .map_err(|e| executor_error(&e, cpu))
}

fn executor_error(e: &GlommioError<()>, cpu: Option<usize>) -> String {
    let text = e.to_string();
    if text.contains("MemLock") {
        return memlock_message(0);
    }
    match (e, cpu) {
        (GlommioError::IoError(io), _) if io.raw_os_error() == Some(libc::EPERM) => {
            "io_uring is refused on this system: check `sysctl kernel.io_uring_disabled` (0 allows it) and, in a container, the seccomp profile".to_string()
        }
        (GlommioError::IoError(io), _) if io.raw_os_error() == Some(libc::ENOSYS) => {
            "this kernel has no io_uring: corral-bench needs Linux 5.8 or later".to_string()
        }
        (_, Some(cpu)) => format!("cannot start an io_uring executor on CPU {cpu}: {text}"),
        (_, None) => format!("cannot start an io_uring executor: {text}"),
    }
}
