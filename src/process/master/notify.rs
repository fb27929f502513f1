//! systemd's readiness protocol (`Type=notify`), without libsystemd: one
//! unix datagram of `KEY=value` lines to the socket named by
//! `$NOTIFY_SOCKET` (a path, or an abstract name written `@name`).
//!
//! The master sends `READY=1` once the first generation serves,
//! `RELOADING=1` (with `MONOTONIC_USEC`, as systemd 253+ wants) when a
//! reload begins and `READY=1` again when it ends, whatever its outcome,
//! and `STOPPING=1` on SIGTERM/SIGINT. `STATUS=` says which generation
//! serves. The master's pid never changes, so `MAINPID=` is not needed.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where notifications go; `None` when not run by systemd (or by a test
/// standing in for it).
pub(crate) struct Notifier {
    target: Option<SocketAddr>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`. The variable is removed from the
    /// environment afterwards, so generations (children) do not inherit
    /// it: only the main pid may notify.
    pub(crate) fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|v| {
            let s = v.to_string_lossy().into_owned();
            let addr = if let Some(name) = s.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
            } else {
                SocketAddr::from_pathname(&s)
            };
            match addr {
                Ok(a) => Some(a),
                Err(e) => {
                    crate::warning!(
                        "NOTIFY_SOCKET `{s}` is not usable ({e}): systemd will not be notified"
                    );
                    None
                }
            }
        });
        // SAFETY: called by the master's main thread before it starts any
        // other thread.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        Notifier { target }
    }

    /// Sends `lines` (`KEY=value`, one per line) as one datagram. A
    /// failure is reported once as a warning; serving goes on.
    pub(crate) fn send(&self, lines: &str) {
        let Some(target) = &self.target else { return };
        let sent = UnixDatagram::unbound().and_then(|s| s.send_to_addr(lines.as_bytes(), target));
        if let Err(e) = sent {
            crate::warning!("cannot notify systemd ({}): {e}", lines.replace('\n', " "));
        }
    }

    pub(crate) fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub(crate) fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
            monotonic_usec()
        ));
    }

    pub(crate) fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping: draining connections");
    }
}

/// CLOCK_MONOTONIC in microseconds.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}
