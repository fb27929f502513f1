//! Layer-4 balancing end to end: round robin weights, source affinity,
//! backups, leastconn and first, through the real binary.

mod common;
use common::*;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn config(workers: usize, balance: &str, servers: &[(&str, &common::Server, &str)]) -> String {
    let mut s = String::new();
    for (name, srv, extra) in servers {
        s.push_str(&format!(
            "      {name}: {{ address: \"{}\"{extra} }}\n",
            srv.addr
        ));
    }
    format!(
        "global: {{ workers: {workers} }}\ndefaults:\n  timeout: {{ connect: 1s, client: 10s, server: 10s }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    balance: {balance}\n    servers:\n{s}"
    )
}

#[test]
fn roundrobin_weights_1_1_2_split_exactly_with_one_worker() {
    let (a, b, c) = (name_server("a"), name_server("b"), name_server("c"));
    let corral = Corral::start(&config(
        1,
        "roundrobin",
        &[
            ("a", &a, ", weight: 1"),
            ("b", &b, ", weight: 1"),
            ("c", &c, ", weight: 2"),
        ],
    ));
    let counts = tally(corral.addr("fe"), 400);
    assert_eq!(counts.get("a"), Some(&100), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&100), "{counts:?}");
    assert_eq!(counts.get("c"), Some(&200), "{counts:?}");
}

#[test]
fn roundrobin_weights_within_ten_percent_with_two_workers() {
    let (a, b, c) = (name_server("a"), name_server("b"), name_server("c"));
    let corral = Corral::start(&config(
        2,
        "roundrobin",
        &[
            ("a", &a, ", weight: 1"),
            ("b", &b, ", weight: 1"),
            ("c", &c, ", weight: 2"),
        ],
    ));
    let counts = tally(corral.addr("fe"), 400);
    for (name, expected) in [("a", 100.0), ("b", 100.0), ("c", 200.0)] {
        let got = *counts.get(name).unwrap_or(&0) as f64;
        assert!(
            (got - expected).abs() <= expected * 0.10,
            "{name}: {got} not within 10% of {expected}: {counts:?}"
        );
    }
}

fn client_ip(i: usize) -> IpAddr {
    format!("127.0.1.{i}").parse().unwrap()
}

/// Which server each of the 50 clients reaches, checking that all of a
/// client's `per_client` connections agree.
fn affinity(proxy: std::net::SocketAddr, per_client: usize) -> HashMap<usize, String> {
    let mut seen = HashMap::new();
    for i in 1..=50 {
        for k in 0..per_client {
            let name = name_via(proxy, client_ip(i)).unwrap_or_else(|e| panic!("client {i}: {e}"));
            let first = seen.entry(i).or_insert_with(|| name.clone());
            assert_eq!(*first, name, "client 127.0.1.{i} moved on connection {k}");
        }
    }
    seen
}

#[test]
fn source_keeps_each_of_50_clients_on_one_server_and_a_stop_moves_only_its_clients() {
    let a = name_server("a");
    let mut b = name_server("b");
    let c = name_server("c");
    let check = ", check: { inter: 200ms, fall: 2, rise: 1 }";
    let corral = Corral::start(&config(
        2,
        "source",
        &[("a", &a, check), ("b", &b, check), ("c", &c, check)],
    ));
    let proxy = corral.addr("fe");
    let before = affinity(proxy, 10);
    let on_b = before.values().filter(|s| *s == "b").count();
    assert!(
        on_b > 0 && on_b < 50,
        "the hash should spread clients: {on_b} on b"
    );

    b.stop();
    assert!(
        corral
            .stderr
            .wait_for("Server be/b is DOWN", WAIT)
            .is_some(),
        "b never marked DOWN:\n{}",
        corral.stderr.text()
    );
    let after = affinity(proxy, 3);
    for i in 1..=50 {
        if before[&i] == "b" {
            assert_ne!(after[&i], "b");
        } else {
            assert_eq!(
                after[&i], before[&i],
                "client 127.0.1.{i} moved though its server stayed up"
            );
        }
    }
}

#[test]
fn source_is_the_same_across_restarts() {
    let (a, b, c) = (name_server("a"), name_server("b"), name_server("c"));
    let cfg = config(1, "source", &[("a", &a, ""), ("b", &b, ""), ("c", &c, "")]);
    let first = {
        let corral = Corral::start(&cfg);
        affinity(corral.addr("fe"), 1)
    };
    let corral = Corral::start(&cfg);
    assert_eq!(affinity(corral.addr("fe"), 1), first);
}

#[test]
fn backup_serves_only_when_no_normal_server_is_up() {
    let mut a = name_server("a");
    let spare = name_server("spare");
    let check = ", check: { inter: 100ms, fall: 2, rise: 1 }";
    let corral = Corral::start(&config(
        1,
        "roundrobin",
        &[
            ("a", &a, check),
            ("spare", &spare, &format!("{check}, backup: true")),
        ],
    ));
    let proxy = corral.addr("fe");
    assert_eq!(tally(proxy, 10).get("a"), Some(&10));
    a.stop();
    corral
        .stderr
        .wait_for("Server be/a is DOWN", WAIT)
        .expect("a DOWN");
    assert_eq!(tally(proxy, 10).get("spare"), Some(&10));
    a.resume();
    corral
        .stderr
        .wait_for("Server be/a is UP", WAIT)
        .expect("a UP");
    assert_eq!(tally(proxy, 10).get("a"), Some(&10));
}

#[test]
fn first_fills_servers_in_order_and_leastconn_spreads_open_connections() {
    let (a, b) = (name_server("a"), name_server("b"));
    for (balance, expect) in [
        ("first", ["a", "a", "b", "b"]),
        ("leastconn", ["a", "b", "a", "b"]),
    ] {
        let corral = Corral::start(&config(
            1,
            balance,
            &[("a", &a, ", maxconn: 2"), ("b", &b, ", maxconn: 2")],
        ));
        let proxy = corral.addr("fe");
        // Hold each connection open so the counts build up.
        let mut held = Vec::new();
        let mut names = Vec::new();
        for _ in 0..4 {
            let s = connect(proxy);
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(&s), &mut line).unwrap();
            names.push(line.trim().to_string());
            held.push(s);
        }
        let mut sorted = names.clone();
        sorted.sort();
        if balance == "first" {
            assert_eq!(names, expect, "{balance}");
        } else {
            assert_eq!(sorted, ["a", "a", "b", "b"], "{balance}: {names:?}");
        }
    }
}

#[test]
fn a_stopped_server_costs_clients_nothing_while_another_accepts() {
    // No health check here: every refused connect must be retried.
    let a = name_server("a");
    let mut b = name_server("b");
    let corral = Corral::start(&config(2, "roundrobin", &[("a", &a, ""), ("b", &b, "")]));
    b.stop();
    let started = Instant::now();
    let counts = tally(corral.addr("fe"), 40);
    assert_eq!(counts.get("a"), Some(&40), "{counts:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
