//! corral-bench end to end: the real binary's load modes against its own
//! `serve` backends (and a few test servers) on loopback, its error
//! counting, open-loop pacing and coordinated-omission correction, and its
//! JSON, .hgrm and plot outputs. Every run is bounded in time; servers are
//! awaited through their `listening on` line.

mod common;

use base64::Engine;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_corral-bench");
/// Upper bound of any wait in these tests.
const WAIT: Duration = Duration::from_secs(30);

// ---- helpers ---------------------------------------------------------------

/// A `corral-bench serve` process.
struct Serve {
    child: Option<Child>,
    addr: SocketAddr,
    lines: Receiver<String>,
}

impl Serve {
    /// Starts `serve --listen 127.0.0.1:0 --stats ARGS...` and waits for
    /// its `listening on` line.
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(BENCH)
            .args(["serve", "--listen", "127.0.0.1:0", "--stats"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn corral-bench serve");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        break a.trim().parse().expect("an address");
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("serve {args:?} did not become ready: {seen:?}");
                }
            }
        };
        Serve {
            child: Some(child),
            addr,
            lines,
        }
    }

    fn target(&self) -> String {
        self.addr.to_string()
    }

    /// SIGTERM, then (served requests, accepted connections, bytes read)
    /// from its `--stats` line.
    fn stop(mut self) -> (u64, u64, u64) {
        let mut child = self.child.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break s;
            }
            assert!(Instant::now() < deadline, "serve did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "serve exited with {status}");
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            rest.push(line);
        }
        let line = rest
            .iter()
            .find(|l| l.starts_with("served "))
            .unwrap_or_else(|| panic!("no stats line in {rest:?}"));
        // "served N requests on M connections (B bytes read)"
        let words: Vec<&str> = line.split(' ').collect();
        let n = |i: usize| -> u64 { words[i].trim_start_matches('(').parse().unwrap() };
        (n(1), n(4), n(6))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs corral-bench with `args` to completion (bounded).
fn bench(args: &[&str]) -> (ExitStatus, String, String) {
    let child = Command::new(BENCH)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(Ok(out)) => (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        _ => {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("corral-bench {args:?} did not finish within {WAIT:?}");
        }
    }
}

/// `corral-bench run --json ARGS...`, which must succeed.
fn run_json(args: &[&str]) -> Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let (status, out, err) = bench(&all);
    assert!(status.success(), "run {args:?} failed: {err}\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {v}"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

fn err(v: &Value, kind: &str) -> u64 {
    v["errors"][kind]
        .as_u64()
        .unwrap_or_else(|| panic!("no error count {kind} in {v}"))
}

fn lat(v: &Value, key: &str) -> u64 {
    v["latency_us"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no latency {key} in {v}"))
}

/// The length of the response `serve http` gives to a plain GET.
fn response_len(addr: SocketAddr) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    // The close form carries one header more than the keep-alive form.
    all.len() - "Connection: close\r\n".len()
}

// ---- load modes --------------------------------------------------------------

#[test]
fn http_mode_counts_agree_with_the_server() {
    let server = Serve::start(&["--threads", "2", "--cpus", "0", "http"]);
    let one = response_len(server.addr) as u64;
    let target = server.target();
    let r = run_json(&["-c", "4", "-d", "1s", "--warmup", "0", &target]);
    let requests = u(&r, "requests");
    assert!(requests > 100, "{r}");
    assert_eq!(u(&r, "errors_total"), 0, "{r}");
    assert_eq!(u(&r, "bytes"), requests * one, "{r}");
    let (served, conns, _) = server.stop();
    // The response probe above, and at most one request in flight per
    // connection when the run ended.
    assert!(
        served > requests && served <= requests + 1 + 4,
        "client {requests}, server {served}"
    );
    assert_eq!(conns, 4 + 1);
}

#[test]
fn http_close_mode_opens_a_connection_per_request() {
    let server = Serve::start(&["http"]);
    let target = server.target();
    let r = run_json(&[
        "--mode",
        "http-close",
        "-c",
        "2",
        "-d",
        "1s",
        "--warmup",
        "0",
        &target,
    ]);
    let requests = u(&r, "requests");
    assert!(requests > 10, "{r}");
    assert_eq!(u(&r, "errors_total"), 0, "{r}");
    let (served, conns, _) = server.stop();
    assert!(
        served >= requests && served <= requests + 2,
        "{requests} vs {served}"
    );
    assert!(
        conns >= requests && conns <= requests + 2,
        "{requests} vs {conns}"
    );
}

#[test]
fn tcp_mode_reads_whole_responses() {
    let server = Serve::start(&["tcp", "--request-size", "100", "--response-size", "3000"]);
    let target = server.target();
    let r = run_json(&[
        "--mode",
        "tcp",
        "--request-size",
        "100",
        "--response-size",
        "3000",
        "-c",
        "3",
        "-d",
        "1s",
        "--warmup",
        "0",
        &target,
    ]);
    let requests = u(&r, "requests");
    assert!(requests > 100, "{r}");
    assert_eq!(u(&r, "errors_total"), 0, "{r}");
    assert_eq!(u(&r, "bytes"), requests * 3000, "{r}");
    let (served, _, read) = server.stop();
    assert!(
        served >= requests && served <= requests + 3,
        "{requests} vs {served}"
    );
    assert_eq!(read, served * 100);
}

#[test]
fn bulk_mode_round_trips_every_byte() {
    let server = Serve::start(&["echo"]);
    let target = server.target();
    let r = run_json(&[
        "--mode",
        "bulk",
        "--bulk-bytes",
        "16m",
        "-c",
        "2",
        "-d",
        "20s",
        &target,
    ]);
    assert_eq!(r["mode"], "bulk");
    assert_eq!(u(&r, "requests"), 2, "{r}");
    assert_eq!(u(&r, "bytes"), 32 << 20, "{r}");
    assert_eq!(u(&r, "errors_total"), 0, "{r}");
    assert!(f(&r, "gbit_s") > 0.0, "{r}");
    // The run ends when the transfers do, not at --duration.
    assert!(f(&r, "duration_s") < 20.0, "{r}");
    let expect = (32u64 << 20) as f64 * 8.0 / f(&r, "duration_s") / 1e9;
    assert!((f(&r, "gbit_s") - expect).abs() / expect < 0.02, "{r}");
    let (_, conns, read) = server.stop();
    assert_eq!((conns, read), (2, 32 << 20));
}

/// A server answering each request head with `response`; then it closes
/// the connection if `close`, resets it if `reset` (no response at all).
fn canned_server(response: &'static [u8], close: bool, reset: bool) -> common::Server {
    common::Server::start(Arc::new(move |mut s: TcpStream| {
        let _ = s.set_read_timeout(Some(WAIT));
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        loop {
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            got.drain(..end);
            if reset {
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                return;
            }
            if s.write_all(response).is_err() || close {
                return;
            }
        }
    }))
}

#[test]
fn http_mode_reads_chunked_and_close_delimited_bodies() {
    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n3\r\n!!\n\r\n0\r\nT: 1\r\n\r\n";
    let server = canned_server(CHUNKED, false, false);
    let target = server.addr.to_string();
    let r = run_json(&["-c", "2", "-d", "500ms", "--warmup", "0", &target]);
    assert!(u(&r, "requests") > 10, "{r}");
    assert_eq!(u(&r, "errors_total"), 0, "{r}");
    assert_eq!(u(&r, "bytes"), u(&r, "requests") * CHUNKED.len() as u64);
    // Kept alive: two connections did all the work.
    assert_eq!(server.accepted(), 2);

    const UNTIL_CLOSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until the end";
    let server = canned_server(UNTIL_CLOSE, true, false);
    let target = server.addr.to_string();
    let r = run_json(&["-c", "2", "-d", "500ms", "--warmup", "0", &target]);
    let requests = u(&r, "requests");
    assert!(requests > 10, "{r}");
    assert_eq!(u(&r, "errors_total"), 0, "{r}");
    assert_eq!(u(&r, "bytes"), requests * UNTIL_CLOSE.len() as u64);
    assert!(
        server.accepted() as u64 >= requests,
        "one connection per response"
    );
}

#[test]
fn broken_responses_are_counted_by_kind() {
    let cases: [(&[u8], bool, bool, &str); 3] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
            true,
            false,
            "closed",
        ),
        (b"SMTP ready\r\n\r\n", false, false, "parse"),
        (b"", false, true, "read"),
    ];
    for (response, close, reset, kind) in cases {
        let server = canned_server(response, close, reset);
        let target = server.addr.to_string();
        let r = run_json(&["-c", "2", "-d", "500ms", "--warmup", "0", &target]);
        // At least one per connection; each connection is reopened and
        // fails again (thousands of times on a quiet machine).
        assert!(err(&r, kind) >= 2, "{kind}: {r}");
        assert_eq!(u(&r, "errors_total"), err(&r, kind), "{kind}: {r}");
        assert_eq!(u(&r, "requests"), 0, "{kind}: {r}");
    }
}

// ---- errors --------------------------------------------------------------------

#[test]
fn a_closed_port_gives_connect_errors_and_a_normal_exit() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = format!("127.0.0.1:{port}");
    let began = Instant::now();
    let r = run_json(&["-c", "3", "-d", "1s", "--warmup", "0", &target]);
    assert!(began.elapsed() < Duration::from_secs(10));
    assert!(err(&r, "connect") > 3, "{r}");
    assert_eq!(u(&r, "errors_total"), err(&r, "connect"), "{r}");
    assert_eq!(u(&r, "requests"), 0, "{r}");
}

#[test]
fn status_500_is_counted_as_status_errors() {
    let server = Serve::start(&["http", "--status", "500"]);
    let target = server.target();
    let r = run_json(&["-c", "2", "-d", "1s", "--warmup", "0", &target]);
    let status = err(&r, "status");
    assert!(status > 10, "{r}");
    assert_eq!(u(&r, "errors_total"), status, "{r}");
    assert_eq!(u(&r, "requests"), 0, "{r}");
    let (served, _, _) = server.stop();
    // Every request sent got a 500; at most one per connection was cut.
    assert!(
        served >= status && served <= status + 2,
        "{status} vs {served}"
    );
}

#[test]
fn a_silent_server_gives_timeouts_and_reopened_connections() {
    let server = common::silent_server();
    let target = server.addr.to_string();
    let began = Instant::now();
    let r = run_json(&[
        "-c",
        "2",
        "-d",
        "1s",
        "--warmup",
        "0",
        "--timeout",
        "200ms",
        &target,
    ]);
    assert!(began.elapsed() < Duration::from_secs(10));
    let timeouts = err(&r, "timeout");
    assert!((4..=12).contains(&timeouts), "{r}");
    assert_eq!(u(&r, "errors_total"), timeouts, "{r}");
    assert!(server.accepted() as u64 >= timeouts, "connections reopened");
}

// ---- open loop ---------------------------------------------------------------

#[test]
fn open_loop_achieves_the_asked_rate() {
    let server = Serve::start(&["http"]);
    let target = server.target();
    let r = run_json(&[
        "--rate", "2000", "-c", "10", "-d", "3s", "--warmup", "0", &target,
    ]);
    let achieved = f(&r, "achieved_rate");
    assert!(
        (achieved - 2000.0).abs() <= 100.0,
        "achieved {achieved}: {r}"
    );
    assert_eq!(f(&r, "rate"), 2000.0);
    let requests = u(&r, "requests") as f64;
    assert!((requests - 6000.0).abs() <= 300.0, "{r}");
    assert_eq!(u(&r, "errors_total"), 0, "{r}");
}

/// A keep-alive HTTP server (thread per connection) that stalls every
/// connection for 200 ms, once, 1.5 s after its first request.
fn stalling_server() -> common::Server {
    http_test_server(Some(Duration::from_millis(1500)))
}

/// A keep-alive HTTP server (thread per connection) answering "ok"; with
/// `stall_after`, it stalls every connection for 200 ms, once, that long
/// after its first request.
fn http_test_server(stall_after: Option<Duration>) -> common::Server {
    struct Clock {
        first: Option<Instant>,
        stall_until: Option<Instant>,
    }
    let clock = Arc::new(Mutex::new(Clock {
        first: None,
        stall_until: None,
    }));
    let stalled = Arc::new(AtomicBool::new(false));
    common::Server::start(Arc::new(move |mut s: TcpStream| {
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(WAIT));
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        loop {
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            got.drain(..end);
            let wait = {
                let mut c = clock.lock().unwrap();
                let now = Instant::now();
                let first = *c.first.get_or_insert(now);
                let due = stall_after.is_some_and(|d| now - first >= d);
                if due && !stalled.swap(true, Ordering::SeqCst) {
                    c.stall_until = Some(now + Duration::from_millis(200));
                }
                c.stall_until.and_then(|u| u.checked_duration_since(now))
            };
            if let Some(w) = wait {
                std::thread::sleep(w);
            }
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                .is_err()
            {
                return;
            }
        }
    }))
}

#[test]
fn open_loop_latency_counts_from_due_times() {
    // Open loop: every request due during the 200 ms stall waits for it.
    let server = stalling_server();
    let target = server.addr.to_string();
    let open = run_json(&[
        "--rate", "2000", "-c", "4", "-d", "3s", "--warmup", "0", &target,
    ]);
    assert!(
        lat(&open, "p999") >= 150_000,
        "open-loop p99.9 should show the 200 ms stall: {}",
        open["latency_us"]
    );
    assert!(lat(&open, "max") >= 150_000);
    drop(server);

    // Closed loop, same stall: each connection sees it once, so it hides
    // in the tail (the naive measure).
    let server = stalling_server();
    let target = server.addr.to_string();
    let closed = run_json(&["-c", "4", "-d", "3s", "--warmup", "0", &target]);
    assert!(lat(&closed, "max") >= 150_000, "{}", closed["latency_us"]);
    assert!(
        lat(&closed, "p99") < 150_000,
        "closed loop hides the stall: {}",
        closed["latency_us"]
    );
}

#[test]
fn an_interrupted_run_reports_what_it_measured() {
    let server = http_test_server(None);
    let target = server.addr.to_string();
    let child = Command::new(BENCH)
        .args([
            "run", "--json", "-c", "2", "-d", "60s", "--warmup", "0", &target,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // Connected means the signal handlers are in place (installed first).
    assert!(common::eventually(WAIT, || server.accepted() >= 2));
    let began = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(began.elapsed() < Duration::from_secs(10));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(f(&r, "duration_s") < 10.0, "{r}");
    assert!(u(&r, "requests") > 0, "{r}");
}

// ---- outputs -------------------------------------------------------------------

#[test]
fn json_and_hgrm_outputs_are_consistent() {
    let server = Serve::start(&["http"]);
    let target = server.target();
    let dir = tempfile::tempdir().unwrap();
    let hgrm = dir.path().join("run.hgrm");
    let r = run_json(&[
        "-t",
        "2",
        "--cpus",
        "0-1",
        "-c",
        "3",
        "-d",
        "1s",
        "--warmup",
        "300ms",
        "--label",
        "mine",
        "--hgrm",
        hgrm.to_str().unwrap(),
        &target,
    ]);
    assert_eq!(r["mode"], "http");
    assert_eq!(r["target"], target.as_str());
    assert_eq!(r["label"], "mine");
    assert_eq!((u(&r, "connections"), u(&r, "threads")), (3, 2));
    assert!(r["achieved_rate"].is_null() && r["gbit_s"].is_null());
    let requests = u(&r, "requests");
    let duration = f(&r, "duration_s");
    assert!((0.9..1.5).contains(&duration), "{r}");
    let rps = f(&r, "rps");
    assert!((rps - requests as f64 / duration).abs() / rps < 0.01, "{r}");
    let keys = ["p50", "p90", "p99", "p999", "p9999", "max"];
    for pair in keys.windows(2) {
        assert!(lat(&r, pair[0]) <= lat(&r, pair[1]), "{}", r["latency_us"]);
    }
    let mean = r["latency_us"]["mean"].as_f64().unwrap();
    assert!(mean > 0.0 && mean <= lat(&r, "max") as f64);
    // The histogram decodes and holds every measured request.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(r["histogram"].as_str().unwrap())
        .unwrap();
    let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap();
    assert_eq!(h.len(), requests);
    assert_eq!(h.max(), lat(&r, "max"));
    // The warm-up's requests were served but not reported.
    let (served, _, _) = server.stop();
    assert!(
        served > requests + 50,
        "{served} served, {requests} reported"
    );

    let text = std::fs::read_to_string(&hgrm).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    );
    let footer = &lines[lines.len() - 3..];
    assert!(footer[0].starts_with("#[Mean    =") && footer[0].contains("StdDeviation"));
    assert!(footer[1].starts_with("#[Max     =") && footer[1].ends_with(&format!("{requests}]")));
    assert!(footer[2].starts_with("#[Buckets =") && footer[2].contains("SubBuckets"));
    let rows: Vec<Vec<f64>> = lines[2..lines.len() - 3]
        .iter()
        .map(|l| l.split_whitespace().map(|c| c.parse().unwrap()).collect())
        .collect();
    assert!(rows.len() > 10);
    for pair in rows.windows(2) {
        assert!(pair[0][0] <= pair[1][0] && pair[0][1] <= pair[1][1] && pair[0][2] <= pair[1][2]);
    }
    let last = rows.last().unwrap();
    assert_eq!((last[1], last[2] as u64), (1.0, requests));
    // Milliseconds: the last value is the max in µs / 1000.
    assert!((last[0] - lat(&r, "max") as f64 / 1000.0).abs() < 0.001);
}

/// Checks that `text` is one XML element with balanced tags.
fn assert_well_formed(text: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = text.trim();
    assert!(rest.starts_with('<'));
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "tag holds '<': {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else if !tag.starts_with('!') && !tag.starts_with('?') {
            let name: String = tag
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/')
                .collect();
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        let between = &rest[..open];
        assert!(
            !between.contains('&') || between.contains(';'),
            "bare & in {between}"
        );
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1, "one root element");
}

#[test]
fn plot_draws_one_line_per_run_with_a_legend() {
    let server = Serve::start(&["http"]);
    let target = server.target();
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for c in ["1", "4"] {
        let mut all = vec!["run", "--json", "-c", c, "-d", "300ms", "--warmup", "0"];
        let single = dir.path().join(format!("single-{c}.svg"));
        all.extend_from_slice(&["--plot", single.to_str().unwrap(), &target]);
        let (status, out, e) = bench(&all);
        assert!(status.success(), "{e}");
        let path = dir.path().join(format!("c{c}.json"));
        std::fs::write(&path, out).unwrap();
        runs.push(path);
        // --plot on run: one run, one line.
        let svg = std::fs::read_to_string(&single).unwrap();
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 1);
    }
    let a = runs[0].to_str().unwrap();
    let b = runs[1].to_str().unwrap();
    let svg_path = dir.path().join("both.svg");
    let (status, _, e) = bench(&[
        "plot",
        "--out",
        svg_path.to_str().unwrap(),
        a,
        b,
        "--label",
        "one conn",
        "--label",
        "four <conns> & more",
    ]);
    assert!(status.success(), "{e}");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
    assert_well_formed(&svg);
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert!(svg.contains(">one conn<"));
    assert!(svg.contains(">four &lt;conns&gt; &amp; more<"));
    for tick in ["50%", "90%", "99%", "Latency (ms)"] {
        assert!(svg.contains(tick), "no {tick}");
    }
    assert!(
        !svg.contains("href") && !svg.contains("@import"),
        "no external resources"
    );

    // The HTML variant holds the same drawing; labels default to file names.
    let html_path = dir.path().join("both.html");
    let (status, _, e) = bench(&["plot", "--out", html_path.to_str().unwrap(), a, b]);
    assert!(status.success(), "{e}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<polyline").count(), 2);
    assert!(html.contains(">c1<") && html.contains(">c4<"));
    assert_well_formed(html.trim_start_matches("<!DOCTYPE html>"));
}

// ---- arguments and the backend -------------------------------------------------

#[test]
fn bad_arguments_name_the_flag_and_the_value() {
    let cases: [(&[&str], &[&str]); 12] = [
        (
            &["run", "--cpus", "999", "127.0.0.1:1"],
            &["--cpus", "999", "not available"],
        ),
        (&["run", "-d", "10x", "127.0.0.1:1"], &["--duration", "10x"]),
        (
            &["run", "-c", "1", "-t", "2", "127.0.0.1:1"],
            &["--connections 1", "--threads 2"],
        ),
        (
            &["run", "--mode", "tcp", "--request-size", "0", "127.0.0.1:1"],
            &["--request-size", "0"],
        ),
        (
            &["run", "http://127.0.0.1:1"],
            &["TARGET", "http://127.0.0.1:1"],
        ),
        (&["run", "--rate", "abc", "127.0.0.1:1"], &["--rate", "abc"]),
        (
            &["run", "-H", "nocolon", "127.0.0.1:1"],
            &["--header", "nocolon"],
        ),
        (
            &["run", "--sni", "a.test", "127.0.0.1:1"],
            &["--sni", "--tls"],
        ),
        (
            &["run", "--tls", "--mode", "bulk", "127.0.0.1:1"],
            &["--tls", "bulk"],
        ),
        (
            &["run", "--tls", "--tls-version", "1.1", "127.0.0.1:1"],
            &["--tls-version", "1.1"],
        ),
        (
            &["serve", "--listen", "nonsense", "http"],
            &["--listen", "nonsense"],
        ),
        (
            &["plot", "--out", "x.png", "a.json"],
            &["--out", "x.png", ".svg"],
        ),
    ];
    for (args, needles) in cases {
        let (status, _, e) = bench(args);
        assert!(!status.success(), "{args:?} should fail");
        for n in needles {
            assert!(e.contains(n), "{args:?}: {n:?} not in {e}");
        }
    }
}

/// Reads from `s` until `done` holds for what was read (bounded).
fn read_until(s: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&String::from_utf8_lossy(&got)) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e}; got {:?}", String::from_utf8_lossy(&got)),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn serve_http_handles_pipelining_bodies_and_connection_close() {
    let server = Serve::start(&["http"]);
    let hello = |t: &str| t.matches("hello world!\n").count();

    // Two pipelined requests, one with a body, on a kept connection.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let t = read_until(&mut s, |t| hello(t) == 2);
    assert_eq!(hello(&t), 2, "{t}");
    assert!(!t.contains("Connection: close"));
    // A chunked body, then a request asking to close.
    s.write_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let t = read_until(&mut s, |_| false);
    assert_eq!(hello(&t), 2, "{t}");
    assert!(t.contains("Connection: close"), "{t}");

    // HTTP/1.0 closes unless asked to keep the connection.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let t = read_until(&mut s, |_| false);
    assert!(
        t.starts_with("HTTP/1.1 200 OK\r\n") && hello(&t) == 1,
        "{t}"
    );
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let t = read_until(&mut s, |t| t.ends_with("\r\n\r\n"));
    assert!(
        t.contains("Connection: keep-alive") && t.contains("Content-Length: 13"),
        "{t}"
    );
    assert_eq!(hello(&t), 0, "HEAD has no body");

    // A malformed request gets a 400 and a close.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"\x01\x02\x03 nonsense\r\n\r\n").unwrap();
    let t = read_until(&mut s, |_| false);
    assert!(t.starts_with("HTTP/1.1 400"), "{t}");
    let (served, _, _) = server.stop();
    assert_eq!(served, 6);

    let sized = Serve::start(&["http", "--body-size", "100"]);
    let mut s = TcpStream::connect(sized.addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let t = read_until(&mut s, |_| false);
    assert!(t.contains("Content-Length: 100\r\n"), "{t}");
    assert_eq!(t.split("\r\n\r\n").nth(1).unwrap().len(), 100);
}

// ---- TLS -----------------------------------------------------------------------

/// What the TLS test server saw.
#[derive(Default)]
struct TlsSeen {
    /// Handshakes completed, full and resumed.
    full: usize,
    resumed: usize,
    /// Requests answered.
    requests: usize,
    /// Every key-exchange group list offered, and every SNI (None: none).
    groups: Vec<Vec<rustls::NamedGroup>>,
    sni: Vec<Option<String>>,
}

/// A TLS HTTP/1.1 server (rustls, thread per connection) with a fresh
/// self-signed ECDSA P-256 certificate, a session cache and TLS 1.3
/// tickets (so a client that resumed would show up), answering "ok" to
/// every request head; after a `Connection: close` request it closes, with
/// a close_notify alert on every other connection and without on the rest.
fn tls_test_server(seen: Arc<Mutex<TlsSeen>>) -> common::Server {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["bench.test".to_string()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let conns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    common::Server::start(Arc::new(move |mut sock: TcpStream| {
        let _ = sock.set_nodelay(true);
        let _ = sock.set_read_timeout(Some(WAIT));
        let n = conns.fetch_add(1, Ordering::SeqCst);
        let mut acceptor = rustls::server::Acceptor::default();
        let accepted = loop {
            match acceptor.read_tls(&mut sock) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            match acceptor.accept() {
                Ok(Some(a)) => break a,
                Ok(None) => {}
                Err(_) => return,
            }
        };
        {
            let hello = accepted.client_hello();
            let mut s = seen.lock().unwrap();
            s.groups
                .push(hello.named_groups().map(<[_]>::to_vec).unwrap_or_default());
            s.sni.push(hello.server_name().map(str::to_string));
        }
        let Ok(conn) = accepted.into_connection(config.clone()) else {
            return;
        };
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        let mut counted = false;
        loop {
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if !counted {
                counted = true;
                let mut s = seen.lock().unwrap();
                match tls.conn.handshake_kind() {
                    Some(rustls::HandshakeKind::Resumed) => s.resumed += 1,
                    _ => s.full += 1,
                }
            }
            let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let close = String::from_utf8_lossy(&got[..end])
                .to_ascii_lowercase()
                .contains("connection: close");
            got.drain(..end);
            let response: &[u8] = if close {
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
            };
            if tls.write_all(response).and_then(|_| tls.flush()).is_err() {
                return;
            }
            seen.lock().unwrap().requests += 1;
            if close {
                if n.is_multiple_of(2) {
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
                return;
            }
        }
    }))
}

fn tls_json(v: &Value, key: &str) -> Value {
    v["tls"][key].clone()
}

#[test]
fn tls_keep_alive_makes_one_full_handshake_per_connection() {
    let seen = Arc::new(Mutex::new(TlsSeen::default()));
    let server = tls_test_server(seen.clone());
    let target = server.addr.to_string();
    let r = run_json(&[
        "--tls",
        "--sni",
        "bench.test",
        "--alpn",
        "http/1.1",
        "-c",
        "4",
        "-d",
        "1s",
        "--warmup",
        "0",
        &target,
    ]);
    assert!(u(&r, "requests") > 100, "{r}");
    assert_eq!(u(&r, "errors_total"), 0, "{r}");
    assert_eq!(tls_json(&r, "handshakes"), 4, "{r}");
    assert_eq!(tls_json(&r, "version"), "1.3", "{r}");
    assert_eq!(tls_json(&r, "provider"), "aws-lc-rs", "{r}");
    let n = &r["tls"]["negotiated"];
    assert_eq!(n["version"], "TLSv1_3", "{r}");
    assert!(
        n["cipher_suite"].as_str().unwrap().starts_with("TLS13_"),
        "{r}"
    );
    // The test server offers no ALPN: none negotiated.
    assert!(n["alpn"].is_null(), "{r}");
    let s = seen.lock().unwrap();
    assert_eq!((s.full, s.resumed), (4, 0));
    assert!(s.requests as u64 >= u(&r, "requests"));
    assert!(
        s.groups.iter().all(|g| g == &[rustls::NamedGroup::X25519]),
        "{:?}",
        s.groups
    );
    assert!(s.sni.iter().all(|n| n.as_deref() == Some("bench.test")));
}

#[test]
fn tls_close_mode_makes_a_full_handshake_per_request() {
    let seen = Arc::new(Mutex::new(TlsSeen::default()));
    let server = tls_test_server(seen.clone());
    let target = server.addr.to_string();
    for (provider, version, negotiated) in
        [("aws-lc-rs", "1.3", "TLSv1_3"), ("ring", "1.2", "TLSv1_2")]
    {
        let before = seen.lock().unwrap().full;
        let r = run_json(&[
            "--mode",
            "http-close",
            "--tls",
            "--tls-version",
            version,
            "--tls-provider",
            provider,
            "-c",
            "2",
            "-d",
            "1s",
            "--warmup",
            "0",
            &target,
        ]);
        let requests = u(&r, "requests");
        assert!(requests > 20, "{r}");
        assert_eq!(u(&r, "errors_total"), 0, "{r}");
        let handshakes = tls_json(&r, "handshakes").as_u64().unwrap();
        // One handshake per request; the last connection of each of the
        // two may have been cut after its handshake.
        assert!(handshakes >= requests && handshakes <= requests + 2, "{r}");
        assert_eq!(r["tls"]["negotiated"]["version"], negotiated, "{r}");
        assert_eq!(tls_json(&r, "provider"), provider, "{r}");
        let s = seen.lock().unwrap();
        assert_eq!(s.resumed, 0, "a connection resumed a session");
        assert!(
            s.full - before >= requests as usize,
            "{} {requests}",
            s.full
        );
        // The target is an IP address and there is no --sni: no SNI.
        assert!(s.sni.iter().all(Option::is_none));
    }
}

#[test]
fn tls_to_a_plain_server_counts_tls_errors() {
    let server = Serve::start(&["http"]);
    let target = server.target();
    let r = run_json(&["--tls", "-c", "2", "-d", "1s", "--warmup", "0", &target]);
    assert_eq!(u(&r, "requests"), 0, "{r}");
    assert!(err(&r, "tls") > 2, "{r}");
    assert_eq!(u(&r, "errors_total"), err(&r, "tls"), "{r}");
    assert_eq!(tls_json(&r, "handshakes"), 0, "{r}");
    // Without --tls the JSON says so.
    let r = run_json(&["-c", "1", "-d", "200ms", "--warmup", "0", &target]);
    assert!(r["tls"].is_null(), "{r}");
}
