//! Connection logs: HAProxy's tcplog line, to a file, and `dontlognull`;
//! syslog over UDP and unix datagram sockets with real receivers; a stuck
//! receiver costs dropped (and reported) lines, never proxy speed.

mod common;
use common::*;
use std::io::{BufRead, BufReader};

#[test]
fn tcplog_lines_go_to_a_file_and_dontlognull_drops_empty_connections() {
    let server = name_server("s1");
    let silent = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conn.log");
    let yaml = format!(
        "global: {{ workers: 2, log: \"file {}\" }}\ndefaults:\n  option: [dontlognull]\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\n  quiet: {{ bind: \"127.0.0.1:0\", default_backend: be, log: [] }}\n  empty: {{ bind: \"127.0.0.1:0\", default_backend: mute }}\nbackends:\n  be:\n    servers:\n      s1: {{ address: \"{}\" }}\n  mute:\n    servers:\n      m: {{ address: \"{}\" }}\n",
        file.display(),
        server.addr,
        silent.addr
    );
    let corral = Corral::start(&yaml);
    // A connection that carries data is logged...
    assert_eq!(
        name_via(corral.addr("fe"), "127.0.6.1".parse().unwrap()).unwrap(),
        "s1"
    );
    // ...one on a frontend that logs nowhere is not...
    assert_eq!(
        name_via(corral.addr("quiet"), "127.0.6.2".parse().unwrap()).unwrap(),
        "s1"
    );
    // ...and with dontlognull, one that carried nothing is not either.
    {
        let s = connect_from("127.0.6.3".parse().unwrap(), corral.addr("empty")).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        assert_eq!(std::io::Read::read_to_end(&mut &s, &mut rest).unwrap(), 0);
    }
    let read = |f: &std::path::Path| std::fs::read_to_string(f).unwrap_or_default();
    assert!(eventually(WAIT, || read(&file).contains("127.0.6.1:")));
    let status = corral.stop();
    assert!(status.success());
    let text = read(&file);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let fields: Vec<&str> = lines[0].split(' ').collect();
    // ip:port [date] frontend backend/server Tw/Tc/Tt bytes state counters queues
    assert_eq!(fields.len(), 9, "{}", lines[0]);
    assert!(fields[0].starts_with("127.0.6.1:"));
    assert!(
        fields[1].starts_with('[') && fields[1].ends_with(']') && fields[1].len() == 26,
        "{}",
        fields[1]
    );
    assert_eq!(fields[2], "fe");
    assert_eq!(fields[3], "be/s1");
    assert_eq!(fields[4].split('/').count(), 3);
    assert_eq!(fields[5], "3", "bytes sent to the client: \"s1\\n\"");
    assert_eq!(fields[6], "--");
    assert_eq!(fields[7].split('/').count(), 5);
    assert_eq!(fields[8], "0/0");
}

#[test]
fn a_connection_with_no_server_is_logged_with_its_reason() {
    // Nothing listens at the server address: every attempt is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let yaml = format!(
        "global: {{ workers: 1, log: stdout }}\ndefaults:\n  retries: 2\n  timeout: {{ connect: 200ms }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    servers:\n      gone: {{ address: \"{addr}\" }}\n"
    );
    let corral = Corral::start(&yaml);
    let s = connect(corral.addr("fe"));
    let mut line = String::new();
    assert_eq!(
        BufReader::new(&s).read_line(&mut line).unwrap(),
        0,
        "closed"
    );
    let log = corral.stdout.wait_for(" fe be/", WAIT).expect("log line");
    assert!(
        log.contains(" fe be/<NOSRV> ") && log.contains(" SC ") && log.contains("/2 0/0"),
        "{log}"
    );
}

// ---- syslog ----------------------------------------------------------------

/// This machine's name, as corral puts it in syslog headers.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    assert_eq!(
        // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
        unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) },
        0
    );
    let len = buf.iter().position(|&b| b == 0).unwrap();
    String::from_utf8(buf[..len].to_vec()).unwrap()
}

/// A UDP syslog receiver on loopback.
fn udp_receiver() -> std::net::UdpSocket {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Reads `n` datagrams (each wait bounded by the socket's read timeout).
fn datagrams(recv: impl Fn(&mut [u8]) -> std::io::Result<usize>, n: usize) -> Vec<String> {
    let mut buf = vec![0u8; 65536];
    (0..n)
        .map(|i| {
            let len = recv(&mut buf).unwrap_or_else(|e| panic!("datagram {i} of {n}: {e}"));
            String::from_utf8(buf[..len].to_vec()).unwrap()
        })
        .collect()
}

/// The next `n` datagrams that start with `prefix` (a `<PRI>`: connection
/// logs), setting aside the others (operational messages also reach the
/// global targets) in `others`; at most 200 datagrams are read.
fn datagrams_with(
    recv: impl Fn(&mut [u8]) -> std::io::Result<usize>,
    n: usize,
    prefix: &str,
    others: &mut Vec<String>,
) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..200 {
        if got.len() == n {
            break;
        }
        let d = datagrams(&recv, 1).remove(0);
        if d.starts_with(prefix) {
            got.push(d);
        } else {
            others.push(d);
        }
    }
    assert_eq!(
        got.len(),
        n,
        "not enough {prefix} datagrams; others: {others:?}"
    );
    got
}

/// A unix datagram syslog receiver at `dir/name` (reads wait up to
/// `WAIT`), and its path as a config string.
fn unix_receiver(dir: &std::path::Path, name: &str) -> (std::os::unix::net::UnixDatagram, String) {
    let path = dir.join(name);
    let s = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    (s, path.display().to_string())
}

/// After corral stopped: nothing more is queued for `s`.
fn nothing_more(s: &std::os::unix::net::UnixDatagram) -> bool {
    s.set_nonblocking(true).unwrap();
    matches!(s.recv(&mut [0u8; 64]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[test]
fn syslog_over_udp_in_rfc3164_and_rfc5424_from_http_and_tcp_frontends() {
    let web = common::http::HttpServer::named("w1");
    let names = name_server("s1");
    let rfc3164 = udp_receiver();
    let rfc5424 = udp_receiver();
    let yaml = format!(
        "global:\n  workers: 1\n  log:\n    - \"{} local0\"\n    - \"udp@{} format rfc5424 local0 info\"\nfrontends:\n  web: {{ bind: \"127.0.0.1:0\", mode: http, default_backend: app }}\n  raw: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  app:\n    mode: http\n    servers:\n      w1: {{ address: \"{}\" }}\n  be:\n    servers:\n      s1: {{ address: \"{}\" }}\n",
        rfc3164.local_addr().unwrap(),
        rfc5424.local_addr().unwrap(),
        web.addr(),
        names.addr,
    );
    let corral = Corral::start(&yaml);
    let host = hostname();
    let pid = corral.serving_pid();
    // One HTTP request, then (once it is logged) one TCP connection, so the
    // lines arrive in that order.
    let r = common::http::get(corral.addr("web"), "/hello", "example.com");
    assert_eq!(r.status, 200);
    // Operational messages reach these global targets too (notice, 133).
    let (mut ops3164, mut ops5424) = (Vec::new(), Vec::new());
    let first3164 = datagrams_with(|b| rfc3164.recv(b), 1, "<134>", &mut ops3164);
    let first5424 = datagrams_with(|b| rfc5424.recv(b), 1, "<134>", &mut ops5424);
    assert_eq!(
        name_via(corral.addr("raw"), "127.0.6.9".parse().unwrap()).unwrap(),
        "s1"
    );
    let got3164 = [
        first3164,
        datagrams_with(|b| rfc3164.recv(b), 1, "<134>", &mut ops3164),
    ]
    .concat();
    let got5424 = [
        first5424,
        datagrams_with(|b| rfc5424.recv(b), 1, "<134>", &mut ops5424),
    ]
    .concat();
    // The generation's readiness notice, in each target's format.
    assert!(
        ops3164.iter().any(|d| d.starts_with("<133>")
            && d.contains(&format!(" {host} corral[{pid}]: corral "))
            && d.contains(" ready: 1 worker")),
        "{ops3164:?}"
    );
    assert!(
        ops5424.iter().any(|d| d.starts_with("<133>1 ")
            && d.contains(&format!(" {host} corral {pid} - - corral "))
            && d.contains(" ready: 1 worker")),
        "{ops5424:?}"
    );

    // RFC 3164: <PRI>Mmm dd hh:mm:ss host tag[pid]: line, one per datagram;
    // local0.info is 16 * 8 + 6 = 134.
    let re3164 = regex::Regex::new(&format!(
        r"^<134>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d\d:\d\d:\d\d {} corral\[{pid}\]: (?P<line>.*)\n$",
        regex::escape(&host)
    ))
    .unwrap();
    // RFC 5424: <PRI>1 timestamp host app procid msgid structured-data line.
    let re5424 = regex::Regex::new(&format!(
        r"^<134>1 \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {} corral {pid} - - (?P<line>.*)\n$",
        regex::escape(&host)
    ))
    .unwrap();
    for (got, re) in [(&got3164, &re3164), (&got5424, &re5424)] {
        let lines: Vec<&str> = got
            .iter()
            .map(|d| {
                re.captures(d)
                    .unwrap_or_else(|| panic!("not the expected syslog header: {d:?}"))
                    .name("line")
                    .unwrap()
                    .as_str()
            })
            .collect();
        assert!(
            lines[0].starts_with("127.0.0.1:")
                && lines[0].contains(" web app/w1 ")
                && lines[0].ends_with(" \"GET /hello HTTP/1.1\""),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("127.0.6.9:") && lines[1].contains(" raw be/s1 "),
            "{}",
            lines[1]
        );
    }
    assert!(corral.stop().success());
}

#[test]
fn operational_messages_reach_the_global_syslog_targets_whose_level_takes_them() {
    let names = name_server("s1");
    let gone = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bind = |name: &str| unix_receiver(dir.path(), name);
    let (notices, notices_path) = bind("notice.sock");
    let (alerts, alerts_path) = bind("alert.sock");
    // Seed 002's `log /dev/log local1 notice`, and a target that takes
    // alerts only.
    let yaml = format!(
        "global:\n  workers: 2\n  log: [\"{notices_path} local1 notice\", \"{alerts_path} local2 alert\"]\ndefaults:\n  timeout: {{ connect: 1s, client: 5s, server: 5s, check: 300ms }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    servers:\n      s1: {{ address: \"{}\" }}\n      s2: {{ address: \"{gone}\", check: {{ inter: 100ms, fall: 1 }} }}\n",
        names.addr
    );
    let corral = Corral::start(&yaml);
    assert!(
        corral
            .stderr
            .wait_for("Server be/s2 is DOWN", WAIT)
            .is_some()
    );
    let pid = corral.serving_pid();
    // local1: notice 17 * 8 + 5 = 141, warning 140. Read until both came.
    let mut got = Vec::new();
    for _ in 0..50 {
        let has = |pri: &str, text: &str| {
            got.iter()
                .any(|d: &String| d.starts_with(pri) && d.contains(text))
        };
        if has("<141>", " ready: 2 workers") && has("<140>", "Server be/s2 is DOWN") {
            break;
        }
        got.extend(datagrams(|b| notices.recv(b), 1));
    }
    let ready = got
        .iter()
        .find(|d| d.contains(" ready: 2 workers"))
        .unwrap_or_else(|| panic!("no readiness notice in {got:?}"));
    assert!(
        ready.starts_with("<141>") && ready.contains(&format!(" corral[{pid}]: corral ")),
        "{ready}"
    );
    let down = got
        .iter()
        .find(|d| d.contains("Server be/s2 is DOWN"))
        .unwrap_or_else(|| panic!("no DOWN warning in {got:?}"));
    assert!(
        down.starts_with("<140>")
            && down.contains(&format!(" corral[{pid}]: Server be/s2 is DOWN")),
        "{down}"
    );
    // Connection logs are info: not for a notice target.
    assert_eq!(
        name_via(corral.addr("fe"), "127.0.6.11".parse().unwrap()).unwrap(),
        "s1"
    );
    assert!(corral.stop().success());
    let mut rest = Vec::new();
    notices.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..200 {
        match notices.recv(&mut buf) {
            Ok(n) => rest.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    assert!(
        rest.iter().all(|d| !d.contains("127.0.6.11:")),
        "a connection log reached the notice target: {rest:?}"
    );
    assert!(
        nothing_more(&alerts),
        "the alert target got a notice or a warning"
    );
}

#[test]
fn syslog_to_unix_datagram_sockets_with_their_facility_and_levels() {
    let names = name_server("s1");
    let dir = tempfile::tempdir().unwrap();
    let bind = |name: &str| unix_receiver(dir.path(), name);
    let (local3, local3_path) = bind("local3.sock");
    let (debug, debug_path) = bind("debug.sock");
    let (quiet, quiet_path) = bind("quiet.sock");
    let yaml = format!(
        "global: {{ workers: 2 }}\nfrontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\n    log: [\"{local3_path} local3\", \"uxdg@{debug_path} format local local7 debug debug\", \"{quiet_path} local3 notice\"]\nbackends:\n  be:\n    servers:\n      s1: {{ address: \"{}\" }}\n",
        names.addr
    );
    let corral = Corral::start(&yaml);
    // A target whose level keeps connection logs out is pointed out.
    assert!(
        corral.stderr.text().contains("frontends.fe.log[2]: `"),
        "{}",
        corral.stderr.text()
    );
    assert!(
        corral
            .stderr
            .text()
            .contains("so this target receives none")
    );
    let pid = corral.serving_pid();
    assert_eq!(
        name_via(corral.addr("fe"), "127.0.6.10".parse().unwrap()).unwrap(),
        "s1"
    );
    // local3.info = 19 * 8 + 6.
    let got = datagrams(|b| local3.recv(b), 1);
    assert!(
        got[0].starts_with("<158>")
            && got[0].contains(&format!(" corral[{pid}]: 127.0.6.10:"))
            && got[0].contains(" fe be/s1 ")
            && got[0].ends_with(" 0/0\n"),
        "{got:?}"
    );
    // local7, info raised to the minimum level debug: 23 * 8 + 7; the
    // `local` format has no host name.
    let got = datagrams(|b| debug.recv(b), 1);
    let re = regex::Regex::new(&format!(
        r"^<191>[A-Z][a-z][a-z] [ 123]\d \d\d:\d\d:\d\d corral\[{pid}\]: 127\.0\.6\.10:\d+ \["
    ))
    .unwrap();
    assert!(re.is_match(&got[0]), "{got:?}");
    assert!(corral.stop().success());
    assert!(nothing_more(&local3));
    assert!(
        nothing_more(&quiet),
        "the notice target got a connection log"
    );
}

/// `requests` keep-alive HTTP requests over `conns` connections with a
/// long target (long log lines); returns how long they all took.
fn http_load(addr: std::net::SocketAddr, conns: usize, requests: usize) -> std::time::Duration {
    let path = format!("/{}", "p".repeat(1000));
    let started = std::time::Instant::now();
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut c = common::http::Client::connect(addr);
                for i in 0..requests / conns {
                    let r = c.get(&path, "example.com");
                    assert_eq!(r.status, 200, "request {i}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    started.elapsed()
}

#[test]
fn a_stuck_syslog_receiver_costs_dropped_lines_not_proxy_speed() {
    const CONNS: usize = 4;
    const REQUESTS: usize = 3000;
    let web = common::http::HttpServer::named("w1");
    let dir = tempfile::tempdir().unwrap();
    let config = |sock: &std::path::Path| {
        format!(
            "global: {{ workers: 1, log: \"{} local0\" }}\ndefaults:\n  mode: http\nfrontends:\n  web: {{ bind: \"127.0.0.1:0\", default_backend: app }}\nbackends:\n  app:\n    servers:\n      w1: {{ address: \"{}\" }}\n",
            sock.display(),
            web.addr()
        )
    };

    // The same load with a receiver that reads everything...
    let live_path = dir.path().join("live.sock");
    let live = std::os::unix::net::UnixDatagram::bind(&live_path).unwrap();
    live.set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            let mut n = 0usize;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if live.recv(&mut buf).is_ok() {
                    n += 1;
                }
            }
            n
        })
    };
    let corral = Corral::start(&config(&live_path));
    let live_time = http_load(corral.addr("web"), CONNS, REQUESTS);
    assert!(corral.stop().success());
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let received = reader.join().unwrap();
    assert!(received > 0, "the live receiver got no line");

    // ...and with one that never reads: its queue fills at once.
    let stuck_path = dir.path().join("stuck.sock");
    let _stuck = std::os::unix::net::UnixDatagram::bind(&stuck_path).unwrap();
    let corral = Corral::start(&config(&stuck_path));
    let stuck_time = http_load(corral.addr("web"), CONNS, REQUESTS);
    // 3000 lines of over 1 KB fill the worker's 1 MiB buffer: drops are
    // reported while corral runs, not only at stop.
    let warning = format!("worker 0: log target {}: dropped ", stuck_path.display());
    let line = corral
        .stderr
        .wait_for(&warning, WAIT)
        .unwrap_or_else(|| panic!("no drop warning:\n{}", corral.stderr.text()));
    let count: u64 = line
        .split(&warning)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        count > 0 && line.ends_with(" lines (receiver too slow)"),
        "{line}"
    );
    let stderr = corral.stderr.clone();
    assert!(corral.stop().success());
    stderr.finish();
    let total_line = stderr
        .lines()
        .into_iter()
        .find(|l| {
            l.contains(&format!("log target {}: ", stuck_path.display()))
                && l.ends_with(" lines dropped in all")
        })
        .unwrap_or_else(|| panic!("no total at stop:\n{}", stderr.text()));
    let total: u64 = total_line
        .rsplit(": ")
        .next()
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{total_line}"));
    // Every line was either queued to the receiver or dropped and counted.
    assert!(total >= count && total <= REQUESTS as u64, "{total_line}");

    assert!(
        stuck_time <= live_time * 2 + std::time::Duration::from_secs(1),
        "{REQUESTS} requests took {stuck_time:?} with a stuck log receiver, {live_time:?} with a live one"
    );
}
