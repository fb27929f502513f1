//! Stick tables shared between nodes over HAProxy's peers protocol: two
//! corral nodes, and corral beside a real HAProxy 2.6 (skipped by name
//! when haproxy is not installed; `.ci/run` installs it).

mod common;
use common::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ip(c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, c, d))
}

fn node_config(
    fe_port: u16,
    a: &Server,
    b: &Server,
    peers: &[(&str, u16)],
    section: &str,
) -> String {
    let list: Vec<String> = peers
        .iter()
        .map(|(n, p)| format!("{n}: \"127.0.0.1:{p}\""))
        .collect();
    format!(
        "global: {{ workers: 2 }}
frontends:
  fe: {{ bind: \"127.0.0.1:{fe_port}\", default_backend: app }}
backends:
  app:
    balance: roundrobin
    stick-table: {{ type: ip, size: 20k, expire: 8h, peers: {section} }}
    stick: [ \"on src\" ]
    servers:
      a: {{ address: \"{}\" }}
      b: {{ address: \"{}\" }}
peers:
  {section}:
    peer: {{ {} }}
",
        a.addr,
        b.addr,
        list.join(", ")
    )
}

fn start_node(yaml: &str, name: &str) -> Corral {
    let name = name.to_string();
    Corral::try_start_with(yaml, move |cmd| {
        cmd.arg("--peer-name").arg(name);
    })
    .unwrap_or_else(|e| panic!("node did not start:\n{e}"))
}

#[test]
fn two_corral_nodes_share_stickiness_and_a_restarted_node_learns_the_table_back() {
    let (a, b) = (name_server("a"), name_server("b"));
    let (p1, p2) = (free_port(), free_port());
    let peers = [("n1", p1), ("n2", p2)];
    let cfg1 = node_config(0, &a, &b, &peers, "lbs");
    let node1 = start_node(&cfg1, "n1");
    let via1 = node1.addr("fe");
    // Ten clients through node 1: round robin gives both servers.
    let mut stuck = HashMap::new();
    for d in 1..=10 {
        stuck.insert(d, name_via(via1, ip(5, d)).unwrap());
    }
    assert!(stuck.values().any(|s| s == "b") && stuck.values().any(|s| s == "a"));
    // Node 1's workers commit their entries to worker 0, which speaks to
    // peers, within the staleness bound (50 ms, `stick/store.rs`); there
    // is no signal for it short of a runtime API, so wait out the bound.
    std::thread::sleep(Duration::from_millis(150));

    // Node 2 starts, asks node 1 for everything, and sends every client
    // to the server node 1 chose.
    let cfg2 = node_config(0, &a, &b, &peers, "lbs");
    let mut node2 = start_node(&cfg2, "n2");
    let line = node2
        .stderr
        .wait_for("full resync from peer `n1` done", WAIT)
        .unwrap_or_else(|| panic!("node 2 never resynced:\n{}", node2.stderr.text()));
    assert!(line.contains("entries learned"), "{line}");
    let via2 = node2.addr("fe");
    for (d, server) in &stuck {
        for _ in 0..3 {
            assert_eq!(
                &name_via(via2, ip(5, *d)).unwrap(),
                server,
                "client 127.0.5.{d} via node 2"
            );
        }
    }

    // Node 2 restarted learns the table back from node 1.
    node2.signal(libc::SIGTERM);
    assert!(node2.wait_exit(WAIT).is_some_and(|s| s.success()));
    let node2 = start_node(&cfg2, "n2");
    let line = node2
        .stderr
        .wait_for("full resync from peer `n1` done", WAIT)
        .unwrap_or_else(|| panic!("restarted node 2 never resynced:\n{}", node2.stderr.text()));
    assert!(line.contains("entries learned"), "{line}");
    let via2 = node2.addr("fe");
    for (d, server) in &stuck {
        assert_eq!(
            &name_via(via2, ip(5, *d)).unwrap(),
            server,
            "client 127.0.5.{d} after the restart"
        );
    }
    // Node 1 logged the peer sessions.
    assert!(
        node1.stderr.text().contains("peers.lbs"),
        "{}",
        node1.stderr.text()
    );
}

#[test]
fn a_peer_connection_from_an_unlisted_name_is_refused() {
    let (a, b) = (name_server("a"), name_server("b"));
    let (p1, p2) = (free_port(), free_port());
    let node = start_node(
        &node_config(0, &a, &b, &[("n1", p1), ("n2", p2)], "lbs"),
        "n1",
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p1)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"HAProxyS 2.1\nn1\nmallory 1 1\n").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert_eq!(
        answer, "504\n",
        "an unknown peer gets 504 and the connection closes"
    );
    // Garbage instead of a hello: refused and logged, the node keeps running.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p1)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("501"), "{answer:?}");
    assert!(
        node.stderr.wait_for("bad hello", WAIT).is_some(),
        "{}",
        node.stderr.text()
    );
    // A listed peer that sends a malformed frame after its hello: answered
    // with a protocol error, closed and logged; the node keeps serving.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p1)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"HAProxyS 2.1\nn1\nn2 1 1\n").unwrap();
    let mut status = [0u8; 4];
    s.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"200\n");
    // Class 10, type 0x80 (update) with a length far beyond any limit.
    s.write_all(&[10, 0x80, 0xff, 0xff, 0xff, 0xff, 0x0f])
        .unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        rest.windows(2).any(|w| w == [1, 0] || w == [1, 1]),
        "no error message before the close: {rest:?}"
    );
    assert!(
        node.stderr
            .wait_for("malformed message from the peer", WAIT)
            .is_some(),
        "{}",
        node.stderr.text()
    );
    assert_eq!(name_via(node.addr("fe"), ip(5, 99)).unwrap().len(), 1);
}

// ---- interop with HAProxy 2.6 -------------------------------------------

struct Haproxy {
    child: Child,
    sock: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    fn cli(&self, cmd: &str) -> Option<String> {
        common::haproxy::cli(&self.sock, cmd)
    }
}

fn start_haproxy(fe_port: u16, a: &Server, b: &Server, hap: u16, corral: u16) -> Haproxy {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let cfg = format!(
        "global
    stats socket {} level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
peers hapeers
    peer hap1 127.0.0.1:{hap}
    peer corral 127.0.0.1:{corral}
frontend fe
    bind 127.0.0.1:{fe_port}
    default_backend app
backend app
    balance roundrobin
    stick-table type ip size 20k expire 8h peers hapeers
    stick on src
    server a {}
    server b {}
",
        sock.display(),
        a.addr,
        b.addr
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("haproxy")
        .args(["-db", "-L", "hap1", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let h = Haproxy {
        child,
        sock,
        _dir: dir,
    };
    assert!(
        eventually(WAIT, || h
            .cli("show info")
            .is_some_and(|i| i.contains("Pid:"))),
        "haproxy's stats socket never answered"
    );
    h
}

#[test]
fn corral_and_haproxy_2_6_learn_each_others_entries() {
    if !common::haproxy::installed() {
        println!("SKIPPED corral_and_haproxy_2_6_learn_each_others_entries: haproxy not installed");
        return;
    }
    let (a, b) = (name_server("a"), name_server("b"));
    let (hap_port, corral_port, hap_fe) = (free_port(), free_port(), free_port());
    let h = start_haproxy(hap_fe, &a, &b, hap_port, corral_port);
    let via_hap: SocketAddr = format!("127.0.0.1:{hap_fe}").parse().unwrap();
    assert!(eventually(WAIT, || name_via(via_hap, ip(6, 200)).is_ok()));
    // Entries HAProxy learns...
    let mut on_hap = HashMap::new();
    for d in 1..=6 {
        on_hap.insert(d, name_via(via_hap, ip(6, d)).unwrap());
    }
    // ...corral learns when it joins (a full resync), and follows them.
    let cfg = node_config(
        0,
        &a,
        &b,
        &[("hap1", hap_port), ("corral", corral_port)],
        "hapeers",
    );
    let node = start_node(&cfg, "corral");
    let line = node
        .stderr
        .wait_for("full resync from peer `hap1` done", WAIT)
        .unwrap_or_else(|| panic!("no resync from haproxy:\n{}", node.stderr.text()));
    assert!(!line.contains(" 0 entries"), "{line}");
    let via_corral = node.addr("fe");
    for (d, server) in &on_hap {
        assert_eq!(
            &name_via(via_corral, ip(6, *d)).unwrap(),
            server,
            "client 127.0.6.{d}: HAProxy's entry not followed by corral"
        );
    }
    // Entries corral makes while connected reach HAProxy's table.
    let mut on_corral = HashMap::new();
    for d in 11..=16 {
        on_corral.insert(d, name_via(via_corral, ip(6, d)).unwrap());
    }
    let deadline = Instant::now() + WAIT;
    let table = loop {
        let t = h.cli("show table app").unwrap_or_default();
        if on_corral
            .keys()
            .all(|d| t.contains(&format!("key=127.0.6.{d} ")))
        {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy never learned corral's entries:\n{t}\ncorral:\n{}",
            node.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for (d, server) in &on_corral {
        let line = table
            .lines()
            .find(|l| l.contains(&format!("key=127.0.6.{d} ")))
            .unwrap();
        let id = if server == "a" { 1 } else { 2 };
        assert!(
            line.contains(&format!("server_id={id}")),
            "{line} (corral sent it to {server})"
        );
    }
    // And HAProxy sends those clients where corral did.
    for (d, server) in &on_corral {
        assert_eq!(&name_via(via_hap, ip(6, *d)).unwrap(), server);
    }
}
