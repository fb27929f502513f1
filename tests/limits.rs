//! Connection limits and inactivity timeouts, each beside HAProxy 2.6 with
//! the same configuration where it is installed (`.ci/run` installs it):
//! a small `maxconn` must not starve a frontend, `maxconn` left unwritten
//! is fitted to the descriptor limit as HAProxy fits it, and inactivity
//! timeouts fire their value after the last byte moved, within
//! max(10%, 100 ms).

mod common;

use common::{Corral, Server, WAIT, haproxy};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An HTTP server answering every request `200`, then closing.
fn ok_server() -> Server {
    common::http_status_server(Arc::new(std::sync::atomic::AtomicUsize::new(200)))
}

/// One request on a new connection: the status code, or 0 when there was
/// no answer within 3 s.
fn status_of(proxy: SocketAddr) -> u16 {
    let Ok(mut s) = TcpStream::connect_timeout(&proxy, Duration::from_secs(3)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return 0;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    std::str::from_utf8(&out)
        .ok()
        .and_then(|t| t.get(9..12))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn statuses(proxy: SocketAddr, n: usize) -> Vec<u16> {
    (0..n).map(|_| status_of(proxy)).collect()
}

/// corral's YAML: two workers, an http frontend and a tcp one (idle),
/// `global` and `web` extra settings as given.
fn two_frontends(global: &str, web: &str, backend: SocketAddr) -> String {
    format!(
        "global: {{ workers: 2{global} }}\ndefaults:\n  timeout: {{ connect: 1s, client: 5s, server: 5s }}\nfrontends:\n  web:\n    mode: http\n    bind: \"127.0.0.1:0\"\n    default_backend: app\n{web}  db:\n    mode: tcp\n    bind: \"127.0.0.1:0\"\n    default_backend: raw\nbackends:\n  app:\n    mode: http\n    servers:\n      s1: {{ address: \"{backend}\" }}\n  raw:\n    mode: tcp\n    servers:\n      s1: {{ address: \"{backend}\" }}\n"
    )
}

/// HAProxy's equivalent of `two_frontends`, on fixed ports.
fn haproxy_two_frontends(global: &str, web: &str, backend: SocketAddr) -> (String, SocketAddr) {
    let web_addr: SocketAddr = format!("127.0.0.1:{}", haproxy::free_port())
        .parse()
        .unwrap();
    let db_port = haproxy::free_port();
    (
        format!(
            "global\n    nbthread 2\n{global}defaults\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nfrontend web\n    mode http\n    bind {web_addr}\n{web}    default_backend app\nfrontend db\n    mode tcp\n    bind 127.0.0.1:{db_port}\n    default_backend raw\nbackend app\n    mode http\n    server s1 {backend}\nbackend raw\n    mode tcp\n    server s1 {backend}\n"
        ),
        web_addr,
    )
}

#[test]
fn six_sequential_requests_are_answered_under_maxconn_2_with_two_frontends() {
    let backend = ok_server();
    if haproxy::installed() {
        let (cfg, addr) = haproxy_two_frontends("    maxconn 2\n", "", backend.addr);
        if let Some(_h) = haproxy::start(&cfg, addr) {
            println!("HAProxy 2.6, maxconn 2: {:?}", statuses(addr, 6));
        }
    } else {
        println!("HAProxy not installed: corral alone");
    }
    let corral = Corral::start(&two_frontends(", maxconn: 2", "", backend.addr));
    let got = statuses(corral.addr("web"), 6);
    println!("corral, maxconn 2: {got:?}");
    assert_eq!(got, vec![200; 6]);
    assert_eq!(corral.stop().code(), Some(0));
}

/// A frontend whose `maxconn` gives each worker one slot serves request
/// after request while the worker's other listeners sit idle (three more
/// frontends): an idle listener holds no slot.
#[test]
fn a_frontend_with_one_slot_per_worker_serves_while_the_others_sit_idle() {
    let backend = ok_server();
    let mut yaml = two_frontends(", maxconn: 4", "    maxconn: 2\n", backend.addr);
    for extra in ["idle1", "idle2"] {
        yaml = yaml.replace(
            "backends:\n",
            &format!("  {extra}:\n    mode: tcp\n    bind: \"127.0.0.1:0\"\n    default_backend: raw\nbackends:\n"),
        );
    }
    let corral = Corral::start(&yaml);
    let got = statuses(corral.addr("web"), 12);
    assert_eq!(got, vec![200; 12]);
    assert_eq!(corral.stop().code(), Some(0));
}

/// Runs `cmd` with the open-files limit at `n` (soft and hard).
fn with_nofile(cmd: &mut std::process::Command, n: u64) {
    // SAFETY: setrlimit only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The `Maxconn:` field of a `show info` answer.
fn maxconn_of(info: &str) -> u32 {
    info.lines()
        .find_map(|l| l.strip_prefix("Maxconn: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Maxconn in {info:?}"))
}

/// HAProxy's fitted maxconn under `nofile` descriptors, with the test's
/// two frontends and a stats socket; None without HAProxy.
fn haproxy_maxconn(nofile: u64, backend: SocketAddr) -> Option<u32> {
    if !haproxy::installed() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ha.sock");
    let (cfg, addr) = haproxy_two_frontends(
        &format!("    stats socket {} level admin\n", sock.display()),
        "",
        backend,
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let mut cmd = std::process::Command::new("haproxy");
    cmd.args(["-db", "-f"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    with_nofile(&mut cmd, nofile);
    let mut child = cmd.spawn().ok()?;
    let up = common::eventually(Duration::from_secs(10), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
    let got = up.then(|| haproxy::cli(&sock, "show info").map(|i| maxconn_of(&i)));
    let _ = child.kill();
    let _ = child.wait();
    got.flatten()
}

#[test]
fn maxconn_is_fitted_to_the_descriptor_limit_as_haproxy_fits_it() {
    let backend = ok_server();
    for nofile in [1024u64, 256] {
        let ha = haproxy_maxconn(nofile, backend.addr);
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("api.sock");
        let yaml = two_frontends(
            &format!(", stats-socket: \"{} level admin\"", sock.display()),
            "",
            backend.addr,
        );
        let corral = Corral::try_start_with(&yaml, |cmd| with_nofile(cmd, nofile))
            .unwrap_or_else(|e| panic!("corral did not start at nofile {nofile}:\n{e}"));
        let ours = maxconn_of(&haproxy::cli(&sock, "show info").expect("show info answered"));
        println!("nofile {nofile}: corral Maxconn {ours}, HAProxy {ha:?}");
        let expected = ha.unwrap_or(if nofile == 1024 { 498 } else { 114 });
        let ratio = f64::from(ours) / f64::from(expected);
        assert!(
            (0.8..=1.2).contains(&ratio),
            "nofile {nofile}: corral fits {ours}, HAProxy {expected}"
        );
        assert!(
            corral
                .stderr
                .wait_for("global.maxconn fitted to", WAIT)
                .is_some(),
            "the fitting is said: {}",
            corral.stderr.text()
        );
        assert_eq!(statuses(corral.addr("web"), 6), vec![200; 6]);
        assert_eq!(corral.stop().code(), Some(0));
    }
}

/// HAProxy 2.6 with one `listen` section in `mode`, the given client and
/// server timeouts, and `backend` as its server; None without HAProxy.
fn haproxy_listen(
    mode: &str,
    client: &str,
    server: &str,
    backend: SocketAddr,
) -> Option<(haproxy::Running, SocketAddr)> {
    if !haproxy::installed() {
        return None;
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", haproxy::free_port())
        .parse()
        .unwrap();
    let cfg = format!(
        "defaults\n    mode {mode}\n    timeout connect 1s\n    timeout client {client}\n    timeout server {server}\nlisten fe\n    bind {addr}\n    server s1 {backend}\n"
    );
    haproxy::start(&cfg, addr).map(|h| (h, addr))
}

/// corral's equivalent of `haproxy_listen`: frontend `fe`.
fn corral_listen(mode: &str, client: &str, server: &str, backend: SocketAddr) -> Corral {
    Corral::start(&format!(
        "defaults:\n  mode: {mode}\n  timeout: {{ connect: 1s, client: {client}, server: {server} }}\nfrontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\nbackends:\n  be:\n    servers:\n      s1: {{ address: \"{backend}\" }}\n"
    ))
}

/// The bound every inactivity timeout must hold.
fn within(measured: Duration, timeout: Duration) -> bool {
    let slack = (timeout / 10).max(Duration::from_millis(100));
    measured + slack >= timeout && measured <= timeout + slack
}

/// tcp mode, `timeout server 2s`, a server that accepts and never
/// answers; the client's last byte at `last`: how long after it the
/// proxy at `proxy` closes the client connection.
fn tcp_close_after_last_byte(proxy: SocketAddr, last: Duration) -> Duration {
    let mut c = TcpStream::connect_timeout(&proxy, WAIT).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let began = Instant::now();
    c.write_all(b"a").unwrap();
    std::thread::sleep(last.saturating_sub(began.elapsed()));
    c.write_all(b"b").unwrap();
    let sent = Instant::now();
    let mut buf = [0u8; 64];
    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
    sent.elapsed()
}

#[test]
fn a_tcp_server_timeout_fires_its_value_after_the_last_byte() {
    let silent = common::silent_server();
    let timeout = Duration::from_secs(2);
    let lasts = [300u64, 1500, 1900].map(Duration::from_millis);
    if let Some((_h, addr)) = haproxy_listen("tcp", "30s", "2s", silent.addr) {
        let got: Vec<_> = lasts
            .iter()
            .map(|&l| tcp_close_after_last_byte(addr, l))
            .collect();
        println!("HAProxy 2.6: closed {got:?} after the last byte");
    }
    let corral = corral_listen("tcp", "30s", "2s", silent.addr);
    let (tx, rx) = mpsc::channel();
    let proxy = corral.addr("fe");
    // The three connections at once: the test takes ~4 s, not ~10.
    for last in lasts {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((last, tcp_close_after_last_byte(proxy, last)));
        });
    }
    for _ in lasts {
        let (last, after) = rx.recv_timeout(WAIT).expect("the connection ended");
        println!("corral: last byte at {last:?}, closed {after:?} after it");
        assert!(
            within(after, timeout),
            "last byte at {last:?}: closed {after:?} after it"
        );
    }
    assert_eq!(corral.stop().code(), Some(0));
}

/// An HTTP server sending a 256 MiB body as fast as it can; the time its
/// writes failed (the proxy closed the connection) goes to `failed`.
fn endless_server(failed: mpsc::Sender<Instant>) -> Server {
    Server::start(Arc::new(move |mut s: TcpStream| {
        let _ = s.set_read_timeout(Some(WAIT));
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let len = 256u64 << 20;
        let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
        let _ = s.set_write_timeout(Some(Duration::from_secs(30)));
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < len {
            if s.write_all(&chunk).is_err() {
                let _ = failed.send(Instant::now());
                return;
            }
            sent += chunk.len() as u64;
        }
    }))
}

/// http mode, `timeout client 5s`: the client reads 9 MiB of a large
/// response, then stops reading. Returns how long after it stopped the
/// proxy at `proxy` closed the server connection.
fn http_close_after_stall(proxy: SocketAddr, failed: &mpsc::Receiver<Instant>) -> Duration {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // A small receive buffer: the proxy's writes stall soon after ours.
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.connect(&proxy.into()).unwrap();
    let mut c: TcpStream = socket.into();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut read = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    while read < 9 << 20 {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => panic!("the response ended after {read} bytes"),
            Ok(n) => read += n,
        }
    }
    let stalled = Instant::now();
    let at = failed
        .recv_timeout(Duration::from_secs(30))
        .expect("the proxy closed the server connection");
    let _ = c.shutdown(Shutdown::Both);
    at.duration_since(stalled)
}

#[test]
fn an_http_client_timeout_fires_its_value_after_the_client_stops_reading() {
    let (tx, failed) = mpsc::channel();
    let server = endless_server(tx);
    let timeout = Duration::from_secs(5);
    if let Some((_h, addr)) = haproxy_listen("http", "5s", "30s", server.addr) {
        println!(
            "HAProxy 2.6: server connection closed {:?} after the client stopped reading",
            http_close_after_stall(addr, &failed)
        );
    }
    let corral = corral_listen("http", "5s", "30s", server.addr);
    let after = http_close_after_stall(corral.addr("fe"), &failed);
    println!("corral: server connection closed {after:?} after the client stopped reading");
    assert!(within(after, timeout), "closed {after:?} after the stall");
    assert_eq!(corral.stop().code(), Some(0));
}
