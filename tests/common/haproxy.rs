//! What tests that run beside HAProxy share: whether it is installed, and
//! its stats socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Whether `haproxy` is on PATH. Tests that need it print
/// `SKIPPED <test name>: haproxy not installed` and return without it.
pub fn installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("haproxy").is_file()))
}

/// Sends one command to an HAProxy stats socket and returns the answer;
/// None if the socket does not answer within 5 s.
pub fn cli(sock: &Path, cmd: &str) -> Option<String> {
    let mut s = UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("{cmd}\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
