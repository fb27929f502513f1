//! What must hold before workers start, and the one clear message for each
//! way it can fail: io_uring missing or refused, locked memory too small,
//! an address already in use, a privileged port without the capability
//! (the master binds, `master/groups.rs`; the messages are here).

use crate::config::Config;
use glommio::GlommioError;
use std::io;

/// The message for a listening address that cannot be bound.
pub(crate) fn bind_error(e: &io::Error, path: &str, text: &str) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => format!(
            "{path}: `{text}` is already in use by another process: stop it (`ss -ltnp` shows which), or change this address"
        ),
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "{path}: binding `{text}` needs the CAP_NET_BIND_SERVICE capability (ports below 1024): run as root, `setcap cap_net_bind_service=+ep` the binary, set `AmbientCapabilities=CAP_NET_BIND_SERVICE` in the systemd unit, or use a port from 1024 up"
        ),
        Some(libc::EADDRNOTAVAIL) => format!(
            "{path}: `{text}` is not an address of this host: use one of its addresses, or `0.0.0.0`/`*` for all of them"
        ),
        _ => format!("{path}: cannot listen on `{text}`: {e}"),
    }
}

/// glommio refuses to start below this locked-memory limit.
const MIN_MEMLOCK: u64 = 512 * 1024;

/// Checks, before any executor exists, what glommio would otherwise fail
/// on (or panic on): the locked-memory limit and a usable io_uring.
pub(crate) fn check_io_uring(io_memory: usize) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit on a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0 && lim.rlim_cur < MIN_MEMLOCK
    {
        return Err(memlock_message(lim.rlim_cur, io_memory));
    }
    // io_uring_setup, then the probe glommio registers at start-up.
    let mut params = [0u8; 120]; // struct io_uring_params
    // SAFETY: the kernel writes at most sizeof(io_uring_params) into params.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(io_uring_message(&io::Error::last_os_error(), io_memory));
    }
    const IORING_REGISTER_PROBE: u32 = 8;
    let mut probe = vec![0u8; 16 + 256 * 8];
    // SAFETY: probe holds room for 256 io_uring_probe_op entries.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            fd as i32,
            IORING_REGISTER_PROBE,
            probe.as_mut_ptr(),
            256u32,
        )
    };
    let err = io::Error::last_os_error();
    // SAFETY: closing the ring we just opened.
    unsafe { libc::close(fd as i32) };
    if ret < 0 {
        return Err(match err.raw_os_error() {
            Some(libc::EINVAL) => "this kernel's io_uring is too old (no operation probe): corral needs Linux 5.8 or later (6.x recommended)".to_string(),
            _ => io_uring_message(&err, io_memory),
        });
    }
    Ok(())
}

fn memlock_message(have: u64, io_memory: usize) -> String {
    format!(
        "the locked-memory limit is {have} bytes but io_uring needs at least {MIN_MEMLOCK}: raise it (`ulimit -l unlimited` in a shell, `LimitMEMLOCK=infinity` in the systemd unit, `--ulimit memlock=-1` for docker) or lower `global.io-memory` (now {} KiB)",
        io_memory / 1024
    )
}

fn io_uring_message(e: &io::Error, io_memory: usize) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has no io_uring: corral needs Linux 5.8 or later (6.x recommended)".to_string(),
        Some(libc::EPERM) | Some(libc::EACCES) => "io_uring is refused on this system: check `sysctl kernel.io_uring_disabled` (0 allows it) and, in a container, the seccomp profile (Docker: `--security-opt seccomp=unconfined`, or a profile that allows io_uring_setup, io_uring_enter and io_uring_register)".to_string(),
        Some(libc::ENOMEM) => format!(
            "io_uring could not allocate its rings: raise the locked-memory limit (`ulimit -l`, `LimitMEMLOCK=`) or lower `global.io-memory` (now {} KiB)",
            io_memory / 1024
        ),
        _ => format!("cannot start an io_uring executor: {e}"),
    }
}

/// The message for an executor that could not be created although the
/// checks above passed (a limit changed meanwhile, or a new failure).
pub(crate) fn executor_error(e: &GlommioError<()>, io_memory: usize) -> String {
    match e {
        GlommioError::ReactorError(glommio::ReactorErrorKind::MemLockLimit(have, _)) => {
            memlock_message(*have, io_memory)
        }
        GlommioError::IoError(io) | GlommioError::EnhancedIoError { source: io, .. } => {
            // glommio turns its memlock error into an opaque io::Error.
            if io.to_string().starts_with("MemLockLimit(") {
                memlock_message(0, io_memory)
            } else {
                io_uring_message(io, io_memory)
            }
        }
        other => format!("cannot start an io_uring executor: {other}"),
    }
}

/// Raises the open-files limit to what `maxconn` needs and, when the hard
/// limit is too low for it, fits a `maxconn` left at its default to the
/// limit, as HAProxy does (a written one is kept, with a warning).
///
/// A connection costs two descriptors (client and server); the rest of
/// the limit is kept for what the process holds besides connections
/// (`reserved_fds`). The soft limit is raised to the hard one (or to what
/// is needed, if less) first. Never fitted below one connection per
/// frontend on every worker.
pub(crate) fn fit_nofile(config: &mut Config) {
    let reserved = reserved_fds(config, open_fds());
    let need = u64::from(config.global.maxconn) * 2 + reserved;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    let limit = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur >= need {
            return;
        }
        let new = libc::rlimit {
            rlim_cur: need.min(lim.rlim_max),
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &new) == 0 {
            new.rlim_cur
        } else {
            lim.rlim_cur
        }
    };
    if limit >= need {
        return;
    }
    let floor = (config.frontends.len().max(1) * config.global.workers.max(1)) as u64;
    let fits = fitted_maxconn(limit, reserved, floor);
    let old = config.global.maxconn;
    if config.global.maxconn_written {
        crate::warning!(
            "global.maxconn {old} needs about {need} file descriptors but the limit is {limit}: connections beyond about {fits} will fail; raise `ulimit -n` / `LimitNOFILE=` or lower global.maxconn",
        );
        return;
    }
    let fits = fits.min(config.global.maxconn);
    if u64::from(fits) * 2 + reserved > limit {
        crate::warning!(
            "global.maxconn fitted to {fits} (one connection per frontend on each worker), but the open-files limit {limit} is too low even for that ({reserved} descriptors are kept for listeners, workers, logs and checks); raise `ulimit -n` / `LimitNOFILE=`",
        );
    } else {
        crate::warning!(
            "global.maxconn fitted to {fits} for the open-files limit {limit} (2 descriptors a connection, {reserved} kept for listeners, workers, logs and checks); raise `ulimit -n` / `LimitNOFILE=` or write global.maxconn to change it",
        );
    }
    config.global.maxconn = fits;
    // A frontend's maxconn left to the global one follows it.
    for f in &mut config.frontends {
        if f.maxconn == old {
            f.maxconn = fits;
        }
    }
}

/// The `maxconn` that fits `limit` descriptors when `reserved` are kept
/// for other uses: two a connection, at least `floor`.
pub(crate) fn fitted_maxconn(limit: u64, reserved: u64, floor: u64) -> u32 {
    (limit.saturating_sub(reserved) / 2)
        .max(floor)
        .min(u64::from(u32::MAX)) as u32
}

/// Descriptors the process needs besides its connections' two each:
/// those open now (standard streams, listening sockets and their copies,
/// runtime API and control sockets), and those opened later: each
/// worker's io_uring rings, eventfds and log sockets, one accepted
/// connection per listening socket that may wait for a slot, a socket per
/// health-checked server while its check runs, the peers' connections,
/// and a spare for runtime API clients and reload hand-overs.
pub(crate) fn reserved_fds(config: &Config, open_now: u64) -> u64 {
    /// io_uring rings (3), eventfds and mesh wake-ups of one worker.
    const PER_WORKER: u64 = 8;
    /// Runtime API clients, connections handed over at a reload, files.
    const SPARE: u64 = 16;
    let workers = config.global.workers.max(1) as u64;
    let logs = (config.global.log.len()
        + config.frontends.iter().map(|f| f.log.len()).sum::<usize>()) as u64;
    let listening = config
        .frontends
        .iter()
        .map(|f| f.binds.len() as u64)
        .sum::<u64>()
        * workers;
    let checks = config
        .backends
        .iter()
        .flat_map(|b| &b.servers)
        .filter(|s| s.check.is_some())
        .count() as u64;
    let peers = config
        .peers
        .iter()
        .map(|p| p.peers.len() as u64)
        .sum::<u64>()
        * 2;
    open_now + workers * (PER_WORKER + logs) + listening + checks + peers + SPARE
}

/// How many descriptors the process has open (0 if it cannot tell).
fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1) as u64)
}

/// The cores workers are pinned to, in order (worker i on cores[i % len]).
pub(crate) fn cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxconn_fits_like_haproxy() {
        // HAProxy 2.6 fits 497 at 1024 descriptors and 113 at 256 with
        // two threads, two frontends and a stats socket.
        let reserved = 54;
        assert_eq!(fitted_maxconn(1024, reserved, 4), 485);
        assert_eq!(fitted_maxconn(256, reserved, 4), 101);
        // Never below one connection per frontend on each worker.
        assert_eq!(fitted_maxconn(40, reserved, 4), 4);
    }

    #[test]
    fn memlock_message_says_what_to_change() {
        let e = GlommioError::ReactorError(glommio::ReactorErrorKind::MemLockLimit(0, 524288));
        let m = executor_error(&e, 1 << 20);
        assert!(m.contains("ulimit -l"), "{m}");
        let wrapped = GlommioError::IoError(io::Error::other("MemLockLimit(0/524288)"));
        assert!(executor_error(&wrapped, 1 << 20).contains("LimitMEMLOCK"));
        assert!(m.contains("LimitMEMLOCK"), "{m}");
        assert!(m.contains("global.io-memory"), "{m}");
    }

    #[test]
    fn io_uring_refused_and_missing() {
        let refused = executor_error(
            &GlommioError::IoError(io::Error::from_raw_os_error(libc::EPERM)),
            1 << 20,
        );
        assert!(
            refused.contains("io_uring_disabled") && refused.contains("seccomp"),
            "{refused}"
        );
        let missing = executor_error(
            &GlommioError::IoError(io::Error::from_raw_os_error(libc::ENOSYS)),
            1 << 20,
        );
        assert!(missing.contains("5.8"), "{missing}");
    }

    #[test]
    fn bind_messages() {
        let in_use = bind_error(
            &io::Error::from_raw_os_error(libc::EADDRINUSE),
            "frontends.f.bind[0]",
            "*:80",
        );
        assert!(
            in_use.starts_with("frontends.f.bind[0]: `*:80` is already in use"),
            "{in_use}"
        );
        let priv_port = bind_error(&io::Error::from_raw_os_error(libc::EACCES), "p", "*:80");
        assert!(priv_port.contains("CAP_NET_BIND_SERVICE"), "{priv_port}");
    }
}
