//! Stick tables end to end, through the real binary with real clients on
//! loopback source addresses: `stick on src` persistence across workers,
//! expiry, LRU eviction, `conn_cur` limits across workers (within the
//! documented staleness bound) and HTTP request-rate limiting.

mod common;
use common::http::Client;
use common::*;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// The replication bound documented in `stick/store.rs`
/// (`STALENESS_BOUND`), plus margin for a loaded test machine.
const SETTLE: Duration = Duration::from_millis(150);

fn client_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + (i / 250) as u8,
        1 + (i % 250) as u8,
    ))
}

/// Whether a connection from `src` is refused by a `tcp-request` rule:
/// accepted then closed before the name server's line comes through.
fn rejected(proxy: std::net::SocketAddr, src: IpAddr) -> bool {
    name_via(proxy, src).is_err()
}

#[test]
fn stick_on_src_keeps_200_clients_on_their_server_across_20_connections_with_two_workers() {
    let (a, b, c) = (name_server("a"), name_server("b"), name_server("c"));
    let corral = Corral::start(&format!(
        "global: {{ workers: 2 }}
frontends:
  fe: {{ bind: \"127.0.0.1:0\", default_backend: app }}
backends:
  app:
    balance: roundrobin
    stick-table: {{ type: ip, size: 20k, expire: 8h }}
    stick: [ \"on src\" ]
    servers:
      a: {{ address: \"{}\" }}
      b: {{ address: \"{}\" }}
      c: {{ address: \"{}\" }}
",
        a.addr, b.addr, c.addr
    ));
    let proxy = corral.addr("fe");
    // Four threads of 50 clients; each round connects every client once,
    // so round robin moves on between a client's connections.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut seen: HashMap<usize, Vec<String>> = HashMap::new();
                for _round in 0..20 {
                    for i in (t * 50)..(t * 50 + 50) {
                        let name = name_via(proxy, client_ip(i))
                            .unwrap_or_else(|e| panic!("client {}: {e}", client_ip(i)));
                        seen.entry(i).or_default().push(name);
                    }
                }
                seen
            })
        })
        .collect();
    let mut per_server: HashMap<String, usize> = HashMap::new();
    for t in threads {
        for (i, names) in t.join().unwrap() {
            assert_eq!(names.len(), 20);
            let distinct: HashSet<&String> = names.iter().collect();
            assert_eq!(
                distinct.len(),
                1,
                "client {} moved between servers: {names:?}",
                client_ip(i)
            );
            *per_server.entry(names[0].clone()).or_insert(0) += 1;
        }
    }
    // It is the table that holds clients: round robin spread them.
    assert_eq!(per_server.len(), 3, "{per_server:?}");
    for (s, n) in &per_server {
        assert!(
            *n >= 40,
            "server {s} got only {n} of 200 clients: {per_server:?}"
        );
    }
}

#[test]
fn a_client_stuck_to_a_server_that_goes_down_is_rewritten_on_the_new_choice() {
    let (a, mut b) = (name_server("a"), name_server("b"));
    let corral = Corral::start(&format!(
        "global: {{ workers: 1 }}
defaults: {{ timeout: {{ connect: 500ms }}, retries: 1 }}
frontends:
  fe: {{ bind: \"127.0.0.1:0\", default_backend: app }}
backends:
  app:
    stick-table: {{ type: ip, size: 1k, expire: 1h }}
    stick: [ \"on src\" ]
    servers:
      a: {{ address: \"{}\", check: {{ inter: 100ms, fall: 1, rise: 1 }} }}
      b: {{ address: \"{}\", check: {{ inter: 100ms, fall: 1, rise: 1 }} }}
",
        a.addr, b.addr
    ));
    let proxy = corral.addr("fe");
    let src1 = client_ip(1);
    let src2 = client_ip(2);
    assert_eq!(name_via(proxy, src1).unwrap(), "a");
    assert_eq!(name_via(proxy, src2).unwrap(), "b");
    b.stop();
    assert!(
        corral
            .stderr
            .wait_for("Server app/b is DOWN", WAIT)
            .is_some(),
        "b never went down:\n{}",
        corral.stderr.text()
    );
    assert_eq!(name_via(proxy, src2).unwrap(), "a");
    b.resume();
    assert!(
        corral.stderr.wait_for("Server app/b is UP", WAIT).is_some(),
        "b never came back:\n{}",
        corral.stderr.text()
    );
    // The entry was rewritten: the client stays on a.
    for _ in 0..5 {
        assert_eq!(name_via(proxy, src2).unwrap(), "a");
    }
}

/// One worker; each client may open `limit` connections while its entry
/// lives in a table of `size` entries that expire after `expire`.
fn counting(size: &str, expire: &str, limit: u32, a: &Server) -> String {
    format!(
        "global: {{ workers: 1 }}
frontends:
  fe:
    bind: \"127.0.0.1:0\"
    default_backend: app
    stick-table: {{ type: ip, size: {size}, expire: {expire}, store: [ conn_cnt ] }}
    tcp-request:
      - connection track-sc0 src
      - connection reject if {{ sc0_conn_cnt gt {limit} }}
backends:
  app: {{ servers: {{ a: {{ address: \"{}\" }} }} }}
",
        a.addr
    )
}

#[test]
fn entries_expire_from_their_last_use() {
    let a = name_server("a");
    let corral = Corral::start(&counting("1k", "1s", 3, &a));
    let proxy = corral.addr("fe");
    let src = client_ip(7);
    for i in 0..3 {
        assert!(!rejected(proxy, src), "connection {i} was refused");
    }
    let t0 = Instant::now();
    assert!(rejected(proxy, src), "the 4th connection was let through");
    // 0.6 s after that last use the entry is still there (each attempt
    // counts and touches it again).
    std::thread::sleep(Duration::from_millis(600).saturating_sub(t0.elapsed()));
    let t1 = Instant::now();
    assert!(rejected(proxy, src), "the entry expired early");
    // Past `expire` without any use: gone, and the client starts over.
    std::thread::sleep(Duration::from_millis(1300).saturating_sub(t1.elapsed()));
    assert!(!rejected(proxy, src), "the entry did not expire");
    // Another client was never affected.
    assert!(!rejected(proxy, client_ip(8)));
}

#[test]
fn a_full_table_evicts_the_least_recently_used_entry() {
    let a = name_server("a");
    let corral = Corral::start(&counting("3", "1h", 1, &a));
    let proxy = corral.addr("fe");
    let (c1, c2, c3, c4) = (client_ip(1), client_ip(2), client_ip(3), client_ip(4));
    // Each client gets one connection while it is in the table.
    for c in [c1, c2, c3] {
        assert!(!rejected(proxy, c));
    }
    // c1 is used again (refused, but touched): c2 is now the oldest.
    assert!(rejected(proxy, c1));
    // c4 fills the table: c2 makes room.
    assert!(!rejected(proxy, c4));
    // c2 was evicted: it starts over (and evicts c3, now the oldest).
    assert!(!rejected(proxy, c2), "c2 was not the one evicted");
    // c1 and c4 are still there.
    assert!(rejected(proxy, c1), "c1 was evicted although recently used");
    assert!(rejected(proxy, c4));
    assert!(!rejected(proxy, c3), "c3 should have been evicted by c2");
}

/// Opens a held connection from `src` through an echo backend; None if
/// the proxy refused it.
fn held(proxy: std::net::SocketAddr, src: IpAddr) -> Option<std::net::TcpStream> {
    let mut s = connect_from(src, proxy).ok()?;
    s.write_all(b"ping").ok()?;
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).ok()?;
    (&buf == b"ping").then_some(s)
}

#[test]
fn conn_cur_limit_holds_across_both_workers_within_the_staleness_bound() {
    let echo = echo_server();
    let corral = Corral::start(&format!(
        "global: {{ workers: 2 }}
frontends:
  fe:
    bind: \"127.0.0.1:0\"
    default_backend: app
    stick-table: {{ type: ip, size: 100k, expire: 30s, store: [ conn_cur ] }}
    tcp-request:
      - connection track-sc0 src
      - connection reject if {{ sc0_conn_cur gt 20 }}
backends:
  app: {{ servers: {{ e: {{ address: \"{}\" }} }} }}
",
        echo.addr
    ));
    let proxy = corral.addr("fe");
    let src = client_ip(60);
    // 20 connections, one at a time, each given time to be counted.
    let mut open = Vec::new();
    for i in 0..20 {
        open.push(held(proxy, src).unwrap_or_else(|| panic!("connection {i} refused")));
        std::thread::sleep(SETTLE / 5);
    }
    std::thread::sleep(SETTLE);
    // Both workers now count 20: every further connection is refused,
    // whichever worker accepts it (the kernel spreads them over both).
    for i in 0..10 {
        assert!(
            held(proxy, src).is_none(),
            "connection {} over the limit was let through",
            21 + i
        );
    }
    // Another client is untouched.
    assert!(held(proxy, client_ip(61)).is_some());
    // Closing 10 frees 10 places on both workers.
    open.truncate(10);
    std::thread::sleep(SETTLE);
    let mut again = Vec::new();
    for i in 0..10 {
        again.push(
            held(proxy, src).unwrap_or_else(|| panic!("connection {i} after closing refused")),
        );
        std::thread::sleep(SETTLE / 5);
    }
    std::thread::sleep(SETTLE);
    assert!(held(proxy, src).is_none());
}

#[test]
fn a_flooding_client_is_denied_at_its_rate_and_others_are_untouched() {
    let web = common::http::HttpServer::named("web");
    let corral = Corral::start(&format!(
        "global: {{ workers: 2 }}
defaults: {{ mode: http }}
frontends:
  web:
    bind: \"127.0.0.1:0\"
    default_backend: app
    stick-table: {{ type: ip, size: 100k, expire: 30s, store: [ \"http_req_rate(10s)\", conn_cur ] }}
    http-request:
      - track-sc0 src
      - deny status 429 if {{ sc_http_req_rate(0) gt 100 }}
backends:
  app: {{ servers: {{ w: {{ address: \"{}\" }} }} }}
",
        web.addr()
    ));
    let proxy = corral.addr("web");
    let flood = client_ip(90);
    let calm = client_ip(91);
    // A calm client alongside, 2 requests a second.
    let calm_thread = std::thread::spawn(move || {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let mut c = Client::from(connect_from(calm, proxy).unwrap());
            statuses.push(c.get("/", "x").status);
            std::thread::sleep(Duration::from_millis(500));
        }
        statuses
    });
    // The flood: 300 requests a second for 1.5 s, a new connection every
    // 10 requests (so both workers see them).
    let start = Instant::now();
    let (mut ok, mut denied, mut first_denied) = (0usize, 0usize, None);
    let mut client = None;
    for n in 0..450usize {
        let due = start + Duration::from_micros(n as u64 * 3333);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if n % 10 == 0 {
            client = Some(Client::from(connect_from(flood, proxy).unwrap()));
        }
        let c = client.as_mut().unwrap();
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.response(false).expect("a response");
        match r.status {
            200 => ok += 1,
            429 => {
                denied += 1;
                first_denied.get_or_insert(n);
                // A denial closes the connection.
                client = Some(Client::from(connect_from(flood, proxy).unwrap()));
            }
            s => panic!("unexpected status {s}"),
        }
    }
    let calm_statuses = calm_thread.join().unwrap();
    assert!(
        (90..=110).contains(&ok),
        "{ok} requests let through (denied {denied}, first denial at request {first_denied:?}): expected 100 ± 10%"
    );
    assert_eq!(ok + denied, 450);
    assert_eq!(calm_statuses, vec![200; 4], "the calm client was affected");
}

/// Runs 100 clients × 3 connections through a 2-worker `stick on src`
/// backend and returns (lookups, lookups on the owner) from the workers'
/// stop report.
fn owner_hits(steer: bool) -> (u64, u64) {
    let (a, b) = (name_server("a"), name_server("b"));
    let mut corral = Corral::start(&format!(
        "global: {{ workers: 2, steer: {} }}
frontends:
  fe: {{ bind: \"127.0.0.1:0\", default_backend: app }}
backends:
  app:
    stick-table: {{ type: ip, size: 1k, expire: 1h }}
    stick: [ \"on src\" ]
    servers:
      a: {{ address: \"{}\" }}
      b: {{ address: \"{}\" }}
",
        if steer { "source" } else { "none" },
        a.addr,
        b.addr
    ));
    let proxy = corral.addr("fe");
    for _ in 0..3 {
        for i in 0..100 {
            name_via(proxy, client_ip(200 + i)).unwrap();
        }
    }
    corral.signal(libc::SIGTERM);
    let status = corral.wait_exit(WAIT).expect("corral did not stop");
    assert!(status.success());
    corral.stderr.finish();
    let (mut lookups, mut owned) = (0, 0);
    for line in corral.stderr.lines() {
        if let Some(rest) = line.split("worker ").nth(1)
            && line.contains("stick-table key lookups")
        {
            let nums: Vec<u64> = rest
                .split(|c: char| !c.is_ascii_digit())
                .filter(|w| !w.is_empty())
                .filter_map(|w| w.parse().ok())
                .collect();
            // worker id, lookups, owned, percentage...
            lookups += nums[1];
            owned += nums[2];
        }
    }
    (lookups, owned)
}

#[test]
fn steer_source_lands_every_client_on_the_worker_owning_its_key() {
    let (lookups, owned) = owner_hits(true);
    assert_eq!(lookups, 300, "one lookup per connection");
    assert_eq!(owned, 300, "with steering every lookup is on the owner");
    let (lookups, owned) = owner_hits(false);
    assert_eq!(lookups, 300);
    assert!(
        owned < 250,
        "without steering the kernel spreads connections: {owned} of 300 on the owner"
    );
}

#[test]
fn http_stick_on_a_header_keeps_each_user_on_one_server() {
    let (a, b) = (
        common::http::HttpServer::named("a"),
        common::http::HttpServer::named("b"),
    );
    let corral = Corral::start(&format!(
        "global: {{ workers: 2 }}
defaults: {{ mode: http }}
frontends:
  web: {{ bind: \"127.0.0.1:0\", default_backend: app }}
backends:
  app:
    balance: roundrobin
    stick-table: {{ type: string, len: 16, size: 1k, expire: 1h }}
    stick: [ \"on hdr(x-user)\" ]
    servers:
      a: {{ address: \"{}\" }}
      b: {{ address: \"{}\" }}
",
        a.addr(),
        b.addr()
    ));
    let proxy = corral.addr("web");
    let served_by = |user: Option<&str>| -> String {
        let mut c = Client::connect(proxy);
        let user = user.map(|u| format!("X-User: {u}\r\n")).unwrap_or_default();
        c.send(format!("GET / HTTP/1.1\r\nHost: x\r\n{user}Connection: close\r\n\r\n").as_bytes());
        let r = c.response(false).expect("a response");
        assert_eq!(r.status, 200);
        r.text()
    };
    let mut first: HashMap<String, String> = HashMap::new();
    for round in 0..5 {
        for u in ["alice", "bob", "carol", "dave"] {
            let got = served_by(Some(u));
            let want = first.entry(u.to_string()).or_insert_with(|| got.clone());
            assert_eq!(&got, want, "{u} moved in round {round}");
        }
    }
    let servers: HashSet<&String> = first.values().collect();
    assert_eq!(servers.len(), 2, "round robin spread the users: {first:?}");
    // Requests without the header are not stuck: round robin alternates.
    let anon: HashSet<String> = (0..4).map(|_| served_by(None)).collect();
    assert_eq!(anon.len(), 2, "{anon:?}");
}
