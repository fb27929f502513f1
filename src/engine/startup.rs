//! What must hold before workers start, and the one clear message for each
//! way it can fail: io_uring missing or refused, locked memory too small,
//! an address already in use, a privileged port without the capability
//! (the master binds, `master/groups.rs`; the messages are here).

use crate::config::Config;
use glommio::GlommioError;
use std::io;

/// The message for a listening address that cannot be bound.
pub fn bind_error(e: &io::Error, path: &str, text: &str) -> String {
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
pub fn check_io_uring(io_memory: usize) -> Result<(), String> {
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
pub fn executor_error(e: &GlommioError<()>, io_memory: usize) -> String {
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

/// Raises the open-files limit to what `maxconn` needs (two descriptors a
/// connection, plus room for listeners, checks and logs). When the limit
/// cannot go that high, a `maxconn` left at its default is lowered to fit
/// (as HAProxy does); a written one is kept, with a warning.
pub fn fit_nofile(config: &mut Config) {
    const SPARE: u64 = 1024;
    let need = u64::from(config.global.maxconn) * 2 + SPARE;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    let hard = unsafe {
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
        libc::setrlimit(libc::RLIMIT_NOFILE, &new);
        lim.rlim_max
    };
    if hard >= need {
        return;
    }
    let fits = (hard.saturating_sub(SPARE) / 2).max(1) as u32;
    if config.global.maxconn_written {
        crate::warning!(
            "global.maxconn {} needs about {need} file descriptors but the limit is {hard}: connections beyond about {fits} will fail; raise `ulimit -n` / `LimitNOFILE=` or lower global.maxconn",
            config.global.maxconn
        );
    } else {
        config.global.maxconn = fits;
    }
}

/// The cores workers are pinned to, in order (worker i on cores[i % len]).
pub fn cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
