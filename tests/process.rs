//! The process as a user meets it: `corral demo`, stopping on SIGTERM,
//! and the one-line messages for start-up failures (io_uring refused or
//! missing, locked memory too small, address in use, privileged port).

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

fn http_get(addr: std::net::SocketAddr, host: &str) -> String {
    let mut s = connect(addr);
    write!(
        s,
        "GET /hello HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn demo_answers_on_8080_and_alternates_between_backends() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("demo");
    let demo = Corral::spawn(cmd, dir).expect("corral demo starts");
    let addr = demo.addr("demo");
    assert_eq!(addr.to_string(), "127.0.0.1:8080");
    let mut firsts = Vec::new();
    for _ in 0..6 {
        let resp = http_get(addr, "demo.test");
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        let body = resp.split("\r\n\r\n").nth(1).unwrap();
        assert!(body.contains("Host: demo.test"), "headers echoed: {body}");
        firsts.push(body.lines().next().unwrap().to_string());
    }
    assert_eq!(
        firsts,
        [
            "hello from backend 1",
            "hello from backend 2",
            "hello from backend 1",
            "hello from backend 2",
            "hello from backend 1",
            "hello from backend 2"
        ]
    );
    // Layer 7: the proxy passes the client address on and denies /admin.
    let resp = http_get(addr, "demo.test");
    assert!(resp.contains("X-Forwarded-For: 127.0.0.1"), "{resp}");
    assert!(resp.contains("X-Served-Through: corral"), "{resp}");
    let denied = {
        let mut s = connect(addr);
        write!(
            s,
            "GET /admin HTTP/1.1\r\nHost: demo.test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(denied.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{denied}");
    // It tells a newcomer what to try.
    assert!(
        demo.stdout
            .wait_for("curl http://127.0.0.1:8080/", WAIT)
            .is_some()
    );
}

#[test]
fn version_is_printed() {
    let (status, out, _) = run_cmd(&["--version"]);
    assert!(status.success());
    assert_eq!(out.trim(), format!("corral {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn demo_config_is_a_valid_config() {
    let (status, yaml, _) = run_cmd(&["demo", "--print-config"]);
    assert!(status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.yaml");
    std::fs::write(&path, yaml).unwrap();
    let (status, out, err) = run_cmd(&["check", "-c", path.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    assert!(
        out.contains("frontend demo (http) on 127.0.0.1:8080 -> demo_servers"),
        "{out}"
    );
}

fn echo_config(workers: usize, hard_stop: &str) -> (common::Server, String) {
    let server = echo_server();
    let yaml = format!(
        "global: {{ workers: {workers}, hard-stop-after: {hard_stop} }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    servers:\n      s: {{ address: \"{}\" }}\n",
        server.addr
    );
    (server, yaml)
}

fn roundtrip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn sigterm_stops_accepting_lets_open_connections_finish_and_exits_0() {
    let (_server, yaml) = echo_config(2, "10s");
    let mut corral = Corral::start(&yaml);
    let addr = corral.addr("fe");
    let mut open = connect(addr);
    roundtrip(&mut open, b"before");

    corral.signal(libc::SIGTERM);
    corral
        .stderr
        .wait_for("SIGTERM received", WAIT)
        .expect("stop noticed");
    assert!(
        eventually(WAIT, || TcpStream::connect(addr).is_err()),
        "still accepting after SIGTERM"
    );
    // The open connection keeps working until its client is done.
    roundtrip(&mut open, b"during the drain");
    assert!(
        corral.wait_exit(Duration::from_millis(300)).is_none(),
        "exited with a connection open"
    );
    drop(open);
    let status = corral.wait_exit(WAIT).expect("exits once drained");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn hard_stop_after_closes_what_is_still_open() {
    let (_server, yaml) = echo_config(1, "400ms");
    let mut corral = Corral::start(&yaml);
    let mut open = connect(corral.addr("fe"));
    roundtrip(&mut open, b"x");
    let stopped = Instant::now();
    corral.signal(libc::SIGINT);
    let status = corral.wait_exit(WAIT).expect("exits after hard-stop-after");
    assert_eq!(status.code(), Some(0));
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let mut rest = Vec::new();
    assert!(matches!(open.read_to_end(&mut rest), Ok(0) | Err(_)));
}

/// Start-up must fail with exactly one clear line and no panic.
fn assert_clean_failure(err: &str, needles: &[&str]) {
    assert!(err.contains("exited with exit status: 1"), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing `{n}` in:\n{err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert_eq!(err.matches("[ALERT]").count(), 1, "{err}");
}

#[test]
fn locked_memory_too_small_says_what_to_change() {
    let (_server, yaml) = echo_config(1, "1s");
    // SAFETY: the hook runs in the forked child before exec and only
    // calls setrlimit, which is async-signal-safe.
    let err = Corral::try_start_with(&yaml, |cmd| unsafe {
        cmd.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &zero) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    })
    .err()
    .expect("must not start");
    assert_clean_failure(
        &err,
        &[
            "locked-memory limit",
            "ulimit -l",
            "LimitMEMLOCK",
            "global.io-memory",
        ],
    );
}

/// A seccomp filter that answers io_uring_setup with `errno`.
fn deny_io_uring(cmd: &mut Command, errno: i32) {
    const NR_IO_URING_SETUP: u32 = 425; // the same on every architecture
    // SAFETY: the hook runs in the forked child before exec and only calls
    // prctl, which is async-signal-safe; the filter outlives the call.
    unsafe {
        cmd.pre_exec(move || {
            let ret_errno = 0x0005_0000u32 | (errno as u32 & 0xffff);
            let filter = [
                // A = seccomp_data.nr
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 0,
                },
                // if A == io_uring_setup: next, else skip one
                libc::sock_filter {
                    code: 0x15,
                    jt: 0,
                    jf: 1,
                    k: NR_IO_URING_SETUP,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: ret_errno,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x7fff_0000,
                },
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut _,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, 2, &prog as *const _ as usize, 0, 0) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn io_uring_refused_says_where_to_look() {
    let (_server, yaml) = echo_config(1, "1s");
    let err = Corral::try_start_with(&yaml, |cmd| deny_io_uring(cmd, libc::EPERM))
        .err()
        .expect("must not start");
    assert_clean_failure(
        &err,
        &["io_uring is refused", "kernel.io_uring_disabled", "seccomp"],
    );
}

#[test]
fn io_uring_missing_names_the_kernel_needed() {
    let (_server, yaml) = echo_config(1, "1s");
    let err = Corral::try_start_with(&yaml, |cmd| deny_io_uring(cmd, libc::ENOSYS))
        .err()
        .expect("must not start");
    assert_clean_failure(&err, &["no io_uring", "Linux 5.8"]);
}

#[test]
fn address_in_use_is_reported_even_against_a_reuseport_listener() {
    // A plain listener, and one with SO_REUSEPORT (as another corral or an
    // HAProxy would hold): corral must refuse both, not share the port.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let shared = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    shared.set_reuse_port(true).unwrap();
    shared
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    shared.listen(16).unwrap();
    let shared_port = shared.local_addr().unwrap().as_socket().unwrap().port();
    for port in [plain.local_addr().unwrap().port(), shared_port] {
        let yaml = format!(
            "frontends:\n  web: {{ bind: \"127.0.0.1:{port}\", default_backend: be }}\nbackends:\n  be:\n    servers:\n      s: {{ address: \"127.0.0.1:9\" }}\n"
        );
        let err = Corral::try_start(&yaml).err().expect("must not start");
        assert_clean_failure(&err, &["frontends.web.bind[0]", "is already in use"]);
    }
}

#[test]
fn privileged_port_without_the_capability_says_how_to_grant_it() {
    let start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    if start <= 1 {
        eprintln!(
            "SKIPPED privileged_port_without_the_capability: every port is unprivileged here (net.ipv4.ip_unprivileged_port_start = {start})"
        );
        return;
    }
    let port = start.min(1024) - 1;
    let yaml = format!(
        "frontends:\n  web: {{ bind: \"127.0.0.1:{port}\", default_backend: be }}\nbackends:\n  be:\n    servers:\n      s: {{ address: \"127.0.0.1:9\" }}\n"
    );
    // SAFETY: the hook runs in the forked child before exec and only
    // calls prctl, which is async-signal-safe.
    let err = Corral::try_start_with(&yaml, |cmd| unsafe {
        cmd.pre_exec(|| {
            // Drop the capability from the bounding set: even root then
            // execs without it.
            const CAP_NET_BIND_SERVICE: libc::c_ulong = 10;
            if libc::prctl(libc::PR_CAPBSET_DROP, CAP_NET_BIND_SERVICE, 0, 0, 0) != 0
                && *libc::__errno_location() != libc::EPERM
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    })
    .err()
    .expect("must not start");
    assert_clean_failure(
        &err,
        &["CAP_NET_BIND_SERVICE", "setcap", "AmbientCapabilities"],
    );
}
