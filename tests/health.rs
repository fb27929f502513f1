//! Health checks end to end: DOWN within inter × fall + 1 s, no client
//! failures meanwhile, recovery after `rise`, HTTP checks, one checker
//! per server, and the state reaching every worker.

mod common;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn two_servers(a: &common::Server, b: &common::Server, check: &str, extra_global: &str) -> String {
    format!(
        "global: {{ workers: 2, log: stdout{extra_global} }}\ndefaults:\n  timeout: {{ connect: 1s, client: 10s, server: 10s }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    servers:\n      a: {{ address: \"{}\", check: {check} }}\n      b: {{ address: \"{}\", check: {check} }}\n",
        a.addr, b.addr
    )
}

#[test]
fn killed_server_goes_down_in_time_clients_see_no_failure_and_it_returns_after_rise() {
    let a = name_server("a");
    let mut b = name_server("b");
    let (inter, fall, rise) = (300u64, 3u64, 2u64);
    let check = format!("{{ inter: {inter}ms, fall: {fall}, rise: {rise} }}");
    let corral = Corral::start(&two_servers(&a, &b, &check, ""));
    let proxy = corral.addr("fe");

    // A client keeps connecting through the whole outage.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, failures, served) = (stop.clone(), failures.clone(), served.clone());
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            for _ in 0..100_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match name_via(proxy, "127.0.0.1".parse().unwrap()) {
                    Ok(_) => served.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        errors.push(e);
                        failures.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
            errors
        })
    };

    let killed = Instant::now();
    b.stop();
    let down = corral.stderr.wait_for("Server be/b is DOWN", WAIT);
    let took = killed.elapsed();
    assert!(down.is_some(), "b never DOWN:\n{}", corral.stderr.text());
    let bound = Duration::from_millis(inter * fall) + Duration::from_secs(1);
    assert!(took <= bound, "DOWN after {took:?}, bound {bound:?}");

    // DOWN: no connection is even attempted to b any more (no retries).
    let stop_client_at = served.load(Ordering::SeqCst);
    assert!(eventually(WAIT, || served.load(Ordering::SeqCst) > stop_client_at));
    stop.store(true, Ordering::SeqCst);
    let errors = client.join().unwrap();
    // These connections come from their own address, to find their lines.
    for _ in 0..20 {
        assert_eq!(name_via(proxy, "127.0.5.1".parse().unwrap()).unwrap(), "a");
    }
    assert!(eventually(WAIT, || corral.stdout.count("127.0.5.1:") >= 20));
    for line in corral
        .stdout
        .lines()
        .iter()
        .filter(|l| l.starts_with("127.0.5.1:"))
    {
        assert!(
            line.contains(" fe be/a ") && line.split_whitespace().nth(7).unwrap().ends_with("/0"),
            "{line}"
        );
    }

    let restarted = Instant::now();
    b.resume();
    assert!(corral.stderr.wait_for("Server be/b is UP", WAIT).is_some());
    let back = restarted.elapsed();
    assert!(
        back <= Duration::from_millis(inter * rise) + Duration::from_secs(1),
        "UP after {back:?}"
    );
    assert!(
        eventually(WAIT, || tally(proxy, 4).contains_key("b")),
        "b takes traffic again"
    );
    assert!(served.load(Ordering::SeqCst) > 10);
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "client-visible failures: {errors:?}"
    );
}

#[test]
fn down_state_reaches_every_worker() {
    // After b is DOWN, connections on both workers go straight to a: no
    // log line shows a retry (the last counter of %ac/%fc/%bc/%sc/%rc).
    let a = name_server("a");
    let mut b = name_server("b");
    let corral = Corral::start(&two_servers(
        &a,
        &b,
        "{ inter: 100ms, fall: 2, rise: 1 }",
        "",
    ));
    b.stop();
    corral
        .stderr
        .wait_for("Server be/b is DOWN", WAIT)
        .expect("b DOWN");
    let proxy = corral.addr("fe");
    // Different source addresses spread connections over both workers.
    for i in 1..=40 {
        let name = name_via(proxy, format!("127.0.2.{i}").parse().unwrap());
        assert_eq!(
            name.as_deref(),
            Ok("a"),
            "{}\n{}",
            corral.stderr.text(),
            corral.stdout.text()
        );
    }
    assert!(eventually(WAIT, || corral.stdout.count("127.0.2.") >= 40));
    let lines: Vec<String> = corral
        .stdout
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("127.0.2."))
        .collect();
    for l in &lines {
        assert!(l.contains(" fe be/a "), "{l}");
        let counters = l.split_whitespace().nth(7).unwrap();
        assert!(
            counters.ends_with("/0"),
            "a retry happened: {l}\n{}",
            corral.stderr.text()
        );
    }
}

#[test]
fn each_server_is_checked_by_one_worker_only() {
    let a = silent_server();
    let b = silent_server();
    let corral = Corral::start(&two_servers(&a, &b, "{ inter: 100ms }", ""));
    let started = Instant::now();
    let base = a.accepted();
    // Over ~2 s, one checker makes ~20 checks; two would make ~40.
    assert!(eventually(WAIT, || started.elapsed() >= Duration::from_secs(2)));
    let checks = a.accepted() - base;
    assert!(
        (12..=26).contains(&checks),
        "{checks} checks in 2 s at inter 100ms"
    );
    drop(corral);
}

#[test]
fn http_check_follows_the_status() {
    let status = Arc::new(AtomicUsize::new(200));
    let a = http_status_server(status.clone());
    let b = name_server("b");
    let yaml = format!(
        "global: {{ workers: 1 }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    servers:\n      a: {{ address: \"{}\", check: {{ inter: 100ms, fall: 2, rise: 2, http: {{ method: GET, path: /health, expect: \"200-299\" }} }} }}\n      b: {{ address: \"{}\" }}\n",
        a.addr, b.addr
    );
    let corral = Corral::start(&yaml);
    status.store(503, Ordering::SeqCst);
    let line = corral
        .stderr
        .wait_for("Server be/a is DOWN", WAIT)
        .expect("a DOWN on 503");
    assert!(line.contains("Layer7 wrong status (503)"), "{line}");
    status.store(204, Ordering::SeqCst);
    corral
        .stderr
        .wait_for("Server be/a is UP", WAIT)
        .expect("a UP on 204");
}

#[test]
fn check_port_checks_another_port_than_the_traffic() {
    // Server a takes traffic on one port and is checked on another port
    // of the same address. Closing only the check port takes it out.
    let mut probe = silent_server();
    let traffic = Server::start_on(
        std::net::SocketAddr::new(probe.addr.ip(), 0),
        Arc::new(|mut s: std::net::TcpStream| {
            use std::io::Write;
            let _ = s.write_all(b"a\n");
        }),
    );
    let other = name_server("b");
    let yaml = format!(
        "global: {{ workers: 1 }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    servers:\n      a: {{ address: \"{}\", check: {{ port: {}, inter: 100ms, fall: 2, rise: 1 }} }}\n      b: {{ address: \"{}\" }}\n",
        traffic.addr,
        probe.addr.port(),
        other.addr
    );
    let corral = Corral::start(&yaml);
    let proxy = corral.addr("fe");
    assert!(tally(proxy, 4).contains_key("a"));
    probe.stop();
    corral
        .stderr
        .wait_for("Server be/a is DOWN", WAIT)
        .expect("a DOWN when its check port closes");
    assert_eq!(tally(proxy, 6).get("b"), Some(&6));
}
