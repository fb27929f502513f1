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

/// A running `haproxy -db` with a configuration of the test's; killed
/// when dropped.
pub struct Running {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free at the time of the call (for HAProxy's bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts HAProxy with `cfg` and waits (up to 10 s) until `ready`
/// accepts connections. None (with the reason printed) if it does not.
pub fn start(cfg: &str, ready: std::net::SocketAddr) -> Option<Running> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = std::process::Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let running = Running { child, _dir: dir };
    let up = super::eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect_timeout(&ready, Duration::from_millis(200)).is_ok()
    });
    if !up {
        println!("haproxy did not start listening on {ready}");
        return None;
    }
    Some(running)
}
