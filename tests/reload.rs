//! Hitless reload end to end: an invalid configuration is refused while
//! the running one serves on; twenty reloads (with worker-count changes)
//! under a 5000 requests/s `corral-bench` run lose no request and refuse
//! no connection; a reload to a new server takes the new connections
//! while an old one finishes on the old generation; health and stick
//! tables carry over; systemd hears READY/RELOADING/STOPPING on
//! `NOTIFY_SOCKET`.

mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_corral-bench");

fn tcp_config(workers: usize, servers: &[(&str, SocketAddr)], extra_global: &str) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|(n, a)| format!("      {n}: {{ address: \"{a}\" }}\n"))
        .collect();
    format!(
        "global: {{ workers: {workers}, hard-stop-after: 10s{extra_global} }}\ndefaults:\n  timeout: {{ connect: 1s, client: 20s, server: 20s }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    servers:\n{}",
        list.concat()
    )
}

/// The first line a name server sends, through the proxy.
fn name(proxy: SocketAddr) -> String {
    name_via(proxy, "127.0.0.1".parse().unwrap()).unwrap_or_else(|e| panic!("through {proxy}: {e}"))
}

/// How many lines of stderr contain `needle`.
fn count(c: &Corral, needle: &str) -> usize {
    c.stderr.count(needle)
}

#[test]
fn an_invalid_configuration_is_refused_and_the_running_one_keeps_serving() {
    let a = name_server("a");
    let corral = Corral::start(&tcp_config(2, &[("a", a.addr)], ""));
    let proxy = corral.addr("fe");
    assert_eq!(name(proxy), "a");
    let good = std::fs::read_to_string(corral.config_path()).unwrap();

    // Not valid: `corral reload` says why and sends nothing.
    corral.write_config(&good.replace("servers:", "servers:\n      bad: { adress: \"x\" }"));
    let (status, _, err) = corral.reload();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("corral.yaml:") && err.contains("adress"),
        "{err}"
    );
    assert!(err.contains("reload not requested"), "{err}");
    assert_eq!(count(&corral, "reload ("), 0, "nothing reached the master");
    assert_eq!(name(proxy), "a");

    // The same file by signal: the master logs why and keeps serving.
    let before = corral.stderr.len();
    corral.signal(libc::SIGHUP);
    let failed = corral
        .stderr
        .wait_for_from(before, "reload (SIGHUP) failed", WAIT)
        .expect("the failure is logged");
    assert!(
        failed.contains("[ALERT]") && failed.contains("generation 1"),
        "{failed}"
    );
    assert!(failed.contains("adress"), "{failed}");
    assert_eq!(name(proxy), "a");

    // Valid, but one of its ports is taken: only the master can tell,
    // and `corral reload` reports its answer.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap();
    corral.write_config(&good.replace(
        "bind: \"127.0.0.1:0\"",
        &format!("bind: [\"127.0.0.1:0\", \"{port}\"]"),
    ));
    let before = corral.stderr.len();
    let (status, _, err) = corral.reload();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("frontends.fe.bind[1]") && err.contains("already in use"),
        "{err}"
    );
    assert!(
        err.contains("generation 1") && err.contains("keeps serving"),
        "{err}"
    );
    assert!(
        corral
            .stderr
            .wait_for_from(before, "reload (corral reload) failed", WAIT)
            .is_some()
    );
    assert_eq!(name(proxy), "a");
    assert_eq!(
        count(&corral, "(generation 2)"),
        0,
        "no generation was started"
    );

    // And a good one goes through.
    let b = name_server("b");
    corral.write_config(&tcp_config(2, &[("b", b.addr)], ""));
    let (status, out, err) = corral.reload();
    assert!(status.success(), "{err}");
    assert!(
        out.contains("generation 2") && out.contains("serves"),
        "{out}"
    );
    assert_eq!(name(proxy), "b");
    assert_eq!(corral.stop().code(), Some(0));
}

/// A `corral-bench serve http` backend.
struct Backend {
    child: Child,
    addr: SocketAddr,
}

impl Backend {
    fn start() -> Backend {
        let mut child = Command::new(BENCH)
            .args(["serve", "--listen", "127.0.0.1:0", "http"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn corral-bench serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(a) = l.strip_prefix("listening on ") {
                        break a.trim().parse().unwrap();
                    }
                }
                _ => panic!("corral-bench serve did not start"),
            }
        };
        Backend { child, addr }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_config(workers: usize, backend: SocketAddr, tag: usize) -> String {
    format!(
        "global: {{ workers: {workers}, hard-stop-after: 5s, maxconn: 4000 }}\ndefaults:\n  mode: http\n  timeout: {{ connect: 1s, client: 10s, server: 10s }}\nfrontends:\n  web:\n    bind: \"127.0.0.1:0\"\n    default_backend: app\n    http-request: [ \"set-header X-Generation {tag}\" ]\nbackends:\n  app:\n    servers:\n      s1: {{ address: \"{backend}\" }}\n"
    )
}

#[test]
fn twenty_reloads_under_5000_requests_per_second_lose_no_request_and_refuse_no_connection() {
    let backend = Backend::start();
    let corral = Corral::start(&http_config(2, backend.addr, 0));
    let target = corral.addr("web").to_string();

    // A connection per request (http-close, 5000/s): every request needs
    // an accept, so the listening sockets are exercised all the way
    // through. Beside it, keep-alive connections (1000/s): a retiring
    // generation closes each after its current response.
    let run_for = Duration::from_secs(12);
    let bench = |mode: &str, rate: &str, conns: &str| {
        let child = Command::new(BENCH)
            .args([
                "run",
                "--json",
                "--mode",
                mode,
                "--rate",
                rate,
                "-c",
                conns,
                "-d",
                &format!("{}s", run_for.as_secs()),
                "--warmup",
                "0",
                "--timeout",
                "3s",
                &target,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn corral-bench run");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        rx
    };
    let close_run = bench("http-close", "5000", "64");
    let keep_alive_run = bench("http", "1000", "16");
    let began = Instant::now();

    // Twenty reloads spread over the run (each waits for its generation
    // to serve); the worker count changes 2 → 3 → 2 ... so listening
    // groups grow and are shared by fewer workers.
    let mut took = Vec::new();
    for i in 1..=20 {
        let workers = 2 + i % 2;
        corral.write_config(&http_config(workers, backend.addr, i));
        let t = Instant::now();
        let (status, out, err) = corral.reload();
        took.push(t.elapsed());
        assert!(status.success(), "reload {i}: {err}{out}");
        // `reload (corral reload) done in 24ms (validate .., start ..,
        // retire ..): generation ...`: where the time went.
        if let Some(steps) = out.split("done ").nth(1).and_then(|r| r.split(": ").next()) {
            eprintln!("reload {i}: {steps}");
        }
        assert!(
            out.contains(&format!("generation {} ", i + 1)),
            "reload {i}: {out}"
        );
        // Spread: ~8 s of reloads in a 12 s run.
        let due = Duration::from_millis(400 * i as u64);
        if let Some(wait) = due.checked_sub(began.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let reloads_done = began.elapsed();
    assert!(
        reloads_done < run_for,
        "the reloads outlasted the run ({reloads_done:?})"
    );

    let result = |rx: mpsc::Receiver<std::io::Result<std::process::Output>>| -> Value {
        let out = rx
            .recv_timeout(run_for + WAIT)
            .expect("corral-bench finished")
            .expect("corral-bench ran");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    let mean_reload = took.iter().sum::<Duration>() / took.len() as u32;
    let slowest = took.iter().max().unwrap();
    for (r, rate) in [
        (result(close_run), 5000.0),
        (result(keep_alive_run), 1000.0),
    ] {
        let errors = r["errors_total"].as_u64().unwrap();
        let refused = r["errors"]["connect"].as_u64().unwrap();
        let requests = r["requests"].as_u64().unwrap();
        let achieved = r["achieved_rate"].as_f64().unwrap();
        eprintln!(
            "reload test, {}: {requests} requests at {achieved:.0}/s, {errors} errors ({refused} connect), p99 {} us, max {} us; 20 reloads, each {mean_reload:?} on average (slowest {slowest:?})",
            r["mode"], r["latency_us"]["p99"], r["latency_us"]["max"]
        );
        assert_eq!(
            errors, 0,
            "failed requests during the reloads ({}): {}",
            r["mode"], r["errors"]
        );
        assert_eq!(refused, 0);
        // A reload may not make a client wait: the worst request of the
        // run stays far below a SYN retransmission (1 s) or a lost
        // wake-up (until the client's timeout).
        let max = r["latency_us"]["max"].as_u64().unwrap();
        assert!(
            max < 250_000,
            "a request waited {max} us during the reloads ({})",
            r["mode"]
        );
        assert!(
            (achieved - rate).abs() < rate * 0.05,
            "the load was not sustained: {achieved}/s of {rate}"
        );
        assert!(
            requests as f64 >= 0.95 * rate * run_for.as_secs_f64(),
            "{requests}"
        );
    }
    assert_eq!(count(&corral, "reload (corral reload) done"), 20);
    assert_eq!(corral.stop().code(), Some(0));
}

/// A lone client right after a reload: no connection may wait on a
/// listening socket because an older generation's accept (an exclusive
/// io_uring waiter, cancelled or in an exited process) took its wake-up
/// and accepted nothing. With io_uring accepts, such a client waited for
/// its whole timeout; workers now wait with a poll, which every
/// generation's waiter sees (`listener::accept_loop`).
#[test]
fn lone_clients_right_after_each_reload_are_answered_at_once() {
    let a = name_server("a");
    let corral = Corral::start(&tcp_config(2, &[("a", a.addr)], ""));
    let proxy = corral.addr("fe");
    let mut worst = Duration::ZERO;
    for number in 2..=9u8 {
        let before = corral.stderr.len();
        let (status, out, err) = corral.reload();
        assert!(
            status.success(),
            "reload to generation {number}: {err}{out}"
        );
        // The moments after the old generation exits are when its ring
        // may still hold a waiter; connect then, one client at a time.
        corral
            .stderr
            .wait_for_from(before, &format!("generation {} stopped", number - 1), WAIT)
            .expect("the old generation stops");
        for i in 0..16u8 {
            let src = IpAddr::V4(Ipv4Addr::new(127, 0, 30 + number, 1 + i));
            let t = Instant::now();
            let s = connect_from(src, proxy).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap_or_else(|e| {
                panic!("generation {number}, client {src}: no answer in 3s ({e})")
            });
            assert_eq!(line, "a\n", "client {src}");
            worst = worst.max(t.elapsed());
        }
    }
    eprintln!("lone clients after 8 reloads: slowest answer {worst:?}");
    assert!(
        worst < Duration::from_millis(250),
        "a client waited {worst:?}"
    );
    assert_eq!(corral.stop().code(), Some(0));
}

/// Sends `name\n`, then echoes what it reads, until the client closes.
fn naming_echo_server(name: &str) -> Server {
    let line = format!("{name}\n");
    Server::start(Arc::new(move |mut s: TcpStream| {
        let _ = s.set_read_timeout(Some(WAIT));
        if s.write_all(line.as_bytes()).is_err() {
            return;
        }
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }))
}

#[test]
fn a_reload_to_a_new_server_serves_new_connections_while_an_old_one_finishes() {
    let old = naming_echo_server("old");
    let new = naming_echo_server("new");
    let corral = Corral::start(&tcp_config(2, &[("s", old.addr)], ""));
    let proxy = corral.addr("fe");

    // A long-lived connection through generation 1.
    let mut long = connect(proxy);
    let mut reader = BufReader::new(long.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "old\n");

    corral.write_config(&tcp_config(2, &[("s", new.addr)], ""));
    let (status, _, err) = corral.reload();
    assert!(status.success(), "{err}");

    // Every new connection, from many clients, reaches the new server.
    for i in 0..40 {
        let src = IpAddr::V4(Ipv4Addr::new(127, 0, 9, 1 + i));
        assert_eq!(name_via(proxy, src).unwrap(), "new", "client {src}");
    }
    // The old connection still works, through the old generation, which
    // waits for it.
    for msg in ["still there?\n", "yes\n"] {
        long.write_all(msg.as_bytes()).unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, msg);
    }
    assert_eq!(count(&corral, "generation 1 stopped"), 0);
    drop(reader);
    drop(long);
    assert!(
        corral
            .stderr
            .wait_for("generation 1 stopped", WAIT)
            .is_some(),
        "the old generation exits once its connection ends:\n{}",
        corral.stderr.text()
    );
    assert_eq!(name(proxy), "new");
    assert_eq!(corral.stop().code(), Some(0));
}

#[test]
fn a_down_server_stays_down_and_stick_tables_carry_over_a_reload() {
    let a = name_server("a");
    let mut b = name_server("b");
    let c = name_server("c");
    // b is checked (slowly back: rise 50); the table sticks clients to a
    // server by source address.
    let (aa, ba, ca) = (a.addr, b.addr, c.addr);
    let yaml = |tag: &str| {
        format!(
            "global: {{ workers: 2, hard-stop-after: 5s }}\ndefaults:\n  timeout: {{ connect: 1s, client: 10s, server: 10s }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    balance: roundrobin\n    stick-table: {{ type: ip, size: 1k, expire: 1h }}\n    stick: [ \"on src\" ]\n    servers:\n      a: {{ address: \"{}\" }}\n      b: {{ address: \"{}\", check: {{ inter: 100ms, fall: 1, rise: 50 }} }}\n      c: {{ address: \"{}\" }}\n# {tag}\n",
            aa, ba, ca
        )
    };
    let corral = Corral::start(&yaml("one"));
    let proxy = corral.addr("fe");
    let client = |i: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 8, i));
    // Twelve clients, spread by round robin over a, b, c.
    let mut stuck = Vec::new();
    for i in 1..=12 {
        stuck.push(name_via(proxy, client(i)).unwrap());
    }
    assert!(
        stuck.iter().any(|s| s == "a") && stuck.iter().any(|s| s == "c"),
        "{stuck:?}"
    );

    // b goes DOWN; then a reload.
    b.stop();
    assert!(
        corral
            .stderr
            .wait_for("Server be/b is DOWN", WAIT)
            .is_some()
    );
    corral.write_config(&yaml("two"));
    let (status, _, err) = corral.reload();
    assert!(status.success(), "{err}");
    let carried = corral
        .stderr
        .wait_for("carried over from the previous generation", WAIT)
        .expect("the state is carried over");
    assert!(carried.contains("1 server state(s) (1 down)"), "{carried}");
    assert!(carried.contains("12 stick-table entries"), "{carried}");

    // b comes back, but the new generation knows it DOWN (rise 50 at
    // 100 ms): nobody is sent there. Clients of a and c stay where they
    // were.
    b.resume();
    for (i, was) in stuck.iter().enumerate() {
        let now = name_via(proxy, client(i as u8 + 1)).unwrap();
        if was == "b" {
            assert_ne!(now, "b", "client {} sent to a DOWN server", i + 1);
        } else {
            assert_eq!(&now, was, "client {} moved", i + 1);
        }
    }
    assert_eq!(corral.stop().code(), Some(0));
}

/// Receives one notification (bounded).
fn notification(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn systemd_hears_ready_reloading_and_stopping_on_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let a = name_server("a");
    let corral = Corral::try_start_with(&tcp_config(1, &[("a", a.addr)], ""), |cmd| {
        cmd.env("NOTIFY_SOCKET", &path);
    })
    .unwrap();
    let ready = notification(&sock);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(ready.contains("STATUS=generation 1 serving"), "{ready}");

    let (status, _, err) = corral.reload();
    assert!(status.success(), "{err}");
    let reloading = notification(&sock);
    assert!(reloading.lines().any(|l| l == "RELOADING=1"), "{reloading}");
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .expect("MONOTONIC_USEC with RELOADING=1");
    assert!(usec.parse::<u64>().unwrap() > 0);
    let ready = notification(&sock);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(ready.contains("generation 2 serving"), "{ready}");

    // A reload that fails still ends with READY=1 (the old one serves).
    corral.write_config("frontends: {}\n");
    corral.signal(libc::SIGUSR2);
    assert!(notification(&sock).contains("RELOADING=1"));
    let after = notification(&sock);
    assert!(
        after.contains("READY=1") && after.contains("reload failed"),
        "{after}"
    );

    corral.signal(libc::SIGTERM);
    let stopping = notification(&sock);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    // Only the master notifies: nothing else arrives.
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 256];
    assert!(sock.recv(&mut buf).is_err(), "an unexpected notification");
}

#[test]
fn steering_holds_across_reloads_that_change_the_worker_count() {
    let (a, b) = (name_server("a"), name_server("b"));
    let yaml = |workers: usize| {
        format!(
            "global: {{ workers: {workers}, steer: source, hard-stop-after: 5s }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    balance: roundrobin\n    stick-table: {{ type: ip, size: 10k, expire: 1h }}\n    stick: [ \"on src\" ]\n    servers:\n      a: {{ address: \"{}\" }}\n      b: {{ address: \"{}\" }}\n",
            a.addr, b.addr
        )
    };
    let corral = Corral::start(&yaml(2));
    let proxy = corral.addr("fe");
    let round = || {
        for i in 0..120usize {
            let src = IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                7 + (i / 250) as u8,
                1 + (i % 250) as u8,
            ));
            name_via(proxy, src).unwrap_or_else(|e| panic!("client {src}: {e}"));
        }
    };
    round();
    // 2 → 3 workers (the groups grow), then back to 2 (worker 0 also
    // accepts on socket 2; the program sends nothing there).
    for workers in [3, 2] {
        corral.write_config(&yaml(workers));
        let (status, _, err) = corral.reload();
        assert!(status.success(), "{err}");
        round();
    }
    let stderr = corral.stderr.clone();
    assert_eq!(corral.stop().code(), Some(0));
    stderr.finish();
    let lines: Vec<String> = stderr
        .lines()
        .into_iter()
        .filter(|l| l.contains("stick-table key lookups"))
        .collect();
    // Three generations, 2 + 3 + 2 workers, each looking up only keys it
    // owns: every client was accepted by its owner.
    assert_eq!(lines.len(), 7, "{lines:?}");
    for l in &lines {
        assert!(l.ends_with("(100.0%)"), "{l}");
    }
}

/// Sends `line` to a runtime API socket (unix path or loopback TCP
/// address) and reads the answer until the server closes.
fn api(sock: &str, line: &str) -> std::io::Result<String> {
    let mut out = String::new();
    if let Ok(addr) = sock.parse::<SocketAddr>() {
        let mut s = TcpStream::connect_timeout(&addr, WAIT)?;
        s.set_read_timeout(Some(WAIT))?;
        s.write_all(format!("{line}\n").as_bytes())?;
        s.read_to_string(&mut out)?;
    } else {
        let mut s = std::os::unix::net::UnixStream::connect(sock)?;
        s.set_read_timeout(Some(WAIT))?;
        s.write_all(format!("{line}\n").as_bytes())?;
        s.read_to_string(&mut out)?;
    }
    Ok(out)
}

/// The `Pid:` line of `show info`: which generation answered.
fn api_pid(sock: &str) -> Option<u32> {
    let info = api(sock, "show info").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid: "))
        .and_then(|p| p.trim().parse().ok())
}

#[test]
fn each_generation_takes_the_runtime_api_over_and_runtime_server_changes_carry_over() {
    let a = name_server("a");
    let b = name_server("b");
    let dir = tempfile::tempdir().unwrap();
    let unix = dir.path().join("admin.sock").display().to_string();
    // A fixed loopback port (a new generation must take the same one over).
    let tcp = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let extra = format!(", stats-socket: [\"{unix} level admin\", \"{tcp} level admin\"]");
    let yaml = tcp_config(2, &[("a", a.addr), ("b", b.addr)], &extra);
    let corral = Corral::start(&yaml);
    let proxy = corral.addr("fe");
    let first = api_pid(&unix).expect("generation 1 answers on the unix socket");
    assert_eq!(api_pid(&tcp), Some(first), "and on the TCP one");

    // The runtime API takes b out and lowers a's weight.
    assert_eq!(api(&unix, "set server be/b state maint").unwrap(), "\n");
    assert_eq!(api(&unix, "set server be/a weight 7").unwrap(), "\n");
    let only_a = |when: &str| {
        for i in 0..20 {
            let src = IpAddr::V4(Ipv4Addr::new(127, 0, 11, 1 + i));
            assert_eq!(name_via(proxy, src).unwrap(), "a", "{when}, client {src}");
        }
    };
    only_a("before any reload");

    let mut pids = vec![first];
    for number in 2..=4 {
        let before = corral.stderr.len();
        let (status, out, err) = corral.reload();
        assert!(
            status.success(),
            "reload to generation {number}: {err}{out}"
        );
        let carried = corral
            .stderr
            .wait_for_from(before, "carried over from the previous generation", WAIT)
            .expect("the new generation says what it carried over");
        assert!(carried.contains("2 runtime server change(s)"), "{carried}");
        // The new generation answers on both sockets (the TCP one once
        // the old generation has let go of it: bounded wait).
        let pid = api_pid(&unix).expect("the unix socket answers after the reload");
        assert!(
            !pids.contains(&pid),
            "generation {number} answers, not an old one"
        );
        assert!(
            eventually(WAIT, || api_pid(&tcp) == Some(pid)),
            "generation {number} takes the TCP socket over:\n{}",
            corral.stderr.text()
        );
        // The old generation, once gone, left the new one's socket file.
        corral
            .stderr
            .wait_for_from(before, &format!("generation {} stopped", number - 1), WAIT)
            .expect("the old generation stops");
        assert_eq!(
            api_pid(&unix),
            Some(pid),
            "the socket file is still the new one's"
        );
        let state = api(&unix, "show servers state be").unwrap();
        let row = |name: &str| {
            state
                .lines()
                .find(|l| l.split(' ').nth(3) == Some(name))
                .unwrap_or_else(|| panic!("no row for {name}:\n{state}"))
                .to_string()
        };
        let field = |name: &str, i: usize| row(name).split(' ').nth(i).unwrap_or("").to_string();
        assert_eq!(field("b", 6), "1", "b still in maintenance:\n{state}");
        assert_eq!(field("a", 7), "7", "a keeps its runtime weight:\n{state}");
        only_a(&format!("after reload {}", number - 1));
        pids.push(pid);
    }
    assert_eq!(corral.stop().code(), Some(0));
    assert!(
        !std::path::Path::new(&unix).exists(),
        "the last generation removes its socket file as it stops"
    );
}
