//! The runtime API end to end: a real corral with two workers, real
//! backends on loopback, commands sent over its unix and TCP sockets (as
//! socat would: one line, the answer, the connection closes) and through
//! `corral ctl`.

mod common;
use common::*;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// A corral with sockets at three levels in a directory of its own.
struct Api {
    corral: Corral,
    dir: tempfile::TempDir,
}

impl Api {
    /// Starts corral on `body` (frontends and backends) with `workers: 2`
    /// and `admin.sock` (level admin), `op.sock` (operator, mode 660),
    /// `user.sock` (user) and a loopback TCP socket (operator).
    fn start(body: &str) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let yaml = format!(
            "global:
  workers: 2
  stats-socket:
    - \"{d}/admin.sock level admin\"
    - \"{d}/op.sock mode 660 level operator\"
    - \"{d}/user.sock level user\"
    - \"127.0.0.1:0 level operator\"
defaults:
  timeout: {{ connect: 1s, client: 10s, server: 10s }}
{body}"
        );
        Api {
            corral: Corral::start(&yaml),
            dir,
        }
    }

    fn sock(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// One line on the admin socket; the whole answer.
    fn admin(&self, line: &str) -> String {
        ask(&self.sock("admin.sock"), line)
    }

    /// The TCP socket's address, from the readiness lines.
    fn tcp(&self) -> SocketAddr {
        let line = self
            .corral
            .stderr
            .wait_for("runtime API listening on 127.0.0.1:", WAIT)
            .expect("a TCP runtime API socket");
        let addr = line
            .split("listening on ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        addr.parse().unwrap()
    }

    fn proxy(&self) -> SocketAddr {
        self.corral.addr("fe")
    }
}

/// Sends `line` on a unix socket and reads until the server closes.
fn ask(sock: &Path, line: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn ask_tcp(addr: SocketAddr, line: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `corral ctl --socket SOCK ARGS...`: (exit code, stdout, stderr).
fn ctl(sock: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["ctl", "--socket", sock];
    all.extend_from_slice(args);
    let (status, out, err) = run_cmd(&all);
    (status.code().unwrap_or(-1), out, err)
}

fn two_servers(a: &Server, b: &Server, extra: &str) -> String {
    format!(
        "frontends:
  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}
backends:
  be:
{extra}    servers:
      a: {{ address: \"{}\" }}
      b: {{ address: \"{}\", check: {{ inter: 5s }} }}
",
        a.addr, b.addr
    )
}

/// The rows of `show stat`, by `pxname/svname`, each a map of its fields.
fn stat_rows(csv: &str) -> HashMap<String, HashMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .strip_prefix("# ")
        .unwrap()
        .strip_suffix(',')
        .unwrap()
        .split(',')
        .collect();
    let mut rows = HashMap::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let values: Vec<&str> = l.strip_suffix(',').unwrap().split(',').collect();
        assert_eq!(values.len(), header.len(), "{l}");
        let row: HashMap<String, String> = header
            .iter()
            .zip(&values)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        rows.insert(format!("{}/{}", row["pxname"], row["svname"]), row);
    }
    rows
}

fn client(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 6, i))
}

#[test]
fn show_info_stat_servers_state_sess_and_help_report_every_worker() {
    let (a, b) = (name_server("a"), name_server("b"));
    let api = Api::start(&two_servers(&a, &b, ""));
    let proxy = api.proxy();

    // Six connections held open: the kernel spreads them over both
    // workers, so the totals below can only be right if both answered.
    let mut held = Vec::new();
    for i in 0..6 {
        let s = connect_from(client(10 + i), proxy).unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(&s), &mut line).unwrap();
        assert!(line == "a\n" || line == "b\n", "{line:?}");
        held.push(s);
    }

    let info = api.admin("show info");
    assert!(
        info.ends_with("\n\n"),
        "one empty line ends an answer: {info:?}"
    );
    let fields: HashMap<&str, &str> = info.lines().filter_map(|l| l.split_once(": ")).collect();
    assert_eq!(fields["Name"], "corral");
    assert_eq!(fields["Nbthread"], "2");
    assert_eq!(fields["Nbproc"], "1");
    assert_eq!(fields["Pid"], api.corral.serving_pid().to_string());
    assert_eq!(fields["CurrConns"], "6");
    assert_eq!(fields["CumConns"], "6");
    assert_eq!(fields["Stopping"], "0");
    assert!(fields["Uptime"].starts_with("0d 0h00m"), "{info}");

    // show sess: the six clients, with their frontend, backend and server.
    let sess = api.admin("show sess");
    let lines: Vec<&str> = sess.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 6, "{sess}");
    let mut workers = HashSet::new();
    for s in &held {
        let local = s.local_addr().unwrap();
        let line = lines
            .iter()
            .find(|l| l.contains(&format!(" src={local} ")))
            .unwrap_or_else(|| panic!("{local} not in\n{sess}"));
        assert!(line.starts_with("0x"), "{line}");
        assert!(line.contains(": proto=tcpv4 "), "{line}");
        assert!(line.contains(" fe=fe be=be srv="), "{line}");
        let srv = line
            .split(" srv=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        assert!(srv == "a" || srv == "b", "{line}");
        assert!(line.contains(" age="), "{line}");
        workers.insert(line.split(" tid=").nth(1).unwrap().to_string());
    }
    assert!(workers.iter().all(|w| w == "0" || w == "1"), "{workers:?}");

    // show stat: HAProxy's header, then the frontend, servers and backend.
    let stat = api.admin("show stat");
    assert!(
        stat.starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,"),
        "{stat}"
    );
    let rows = stat_rows(&stat);
    assert_eq!(rows.len(), 4, "{stat}");
    let fe = &rows["fe/FRONTEND"];
    assert_eq!(
        (
            fe["scur"].as_str(),
            fe["stot"].as_str(),
            fe["status"].as_str()
        ),
        ("6", "6", "OPEN")
    );
    assert_eq!(
        (fe["type"].as_str(), fe["iid"].as_str(), fe["pid"].as_str()),
        ("0", "1", "1")
    );
    assert_eq!(fe["mode"], "tcp");
    let sa = &rows["be/a"];
    let sb = &rows["be/b"];
    assert_eq!(sa["status"], "no check");
    assert_eq!(sb["status"], "UP");
    assert_eq!(sb["check_status"], "L4OK");
    for (s, sid, addr) in [(sa, "1", a.addr), (sb, "2", b.addr)] {
        assert_eq!(s["weight"], "1");
        assert_eq!((s["act"].as_str(), s["bck"].as_str()), ("1", "0"));
        assert_eq!(
            (s["type"].as_str(), s["iid"].as_str(), s["sid"].as_str()),
            ("2", "2", sid)
        );
        assert_eq!(s["addr"], addr.to_string());
        assert_eq!(s["scur"], s["stot"], "every connection is still open");
        // TCP bytes are counted when a connection ends; these are open.
        assert_eq!(s["bin"], "0");
    }
    let total: u32 = [sa, sb]
        .iter()
        .map(|s| s["scur"].parse::<u32>().unwrap())
        .sum();
    assert_eq!(total, 6);
    let be = &rows["be/BACKEND"];
    assert_eq!(
        (
            be["scur"].as_str(),
            be["stot"].as_str(),
            be["status"].as_str()
        ),
        ("6", "6", "UP")
    );
    assert_eq!(
        (
            be["weight"].as_str(),
            be["act"].as_str(),
            be["bck"].as_str()
        ),
        ("2", "2", "0")
    );
    assert_eq!(
        (
            be["type"].as_str(),
            be["algo"].as_str(),
            be["qcur"].as_str()
        ),
        ("1", "roundrobin", "0")
    );

    // show servers state: version 1, HAProxy's header, one line a server.
    let state = api.admin("show servers state");
    let lines: Vec<&str> = state.lines().collect();
    assert_eq!(lines[0], "1");
    assert_eq!(
        lines[1],
        "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port"
    );
    let row_a: Vec<&str> = lines[2].split(' ').collect();
    assert_eq!(row_a.len(), 25, "{}", lines[2]);
    assert_eq!(
        &row_a[..9],
        [
            "2",
            "be",
            "1",
            "a",
            &a.addr.ip().to_string(),
            "2",
            "0",
            "1",
            "1"
        ]
    );
    assert_eq!(
        &row_a[10..],
        [
            "1",
            "0",
            "1",
            "0",
            "0",
            "0",
            "0",
            "-",
            &a.addr.port().to_string(),
            "-",
            "0",
            "0",
            "-",
            "-",
            "0"
        ]
    );
    let row_b: Vec<&str> = lines[3].split(' ').collect();
    // A checked server that passes: L4OK (6), PASSED (3), health rise+fall-1, checks enabled (6).
    assert_eq!(&row_b[..4], ["2", "be", "2", "b"]);
    assert_eq!(&row_b[10..14], ["6", "3", "4", "6"]);
    assert_eq!(lines[4], "", "{state}");
    assert_eq!(
        api.admin("show servers state nope"),
        "Can't find backend.\n\n"
    );

    // Several commands on one line: answers in order, each ending with
    // an empty line.
    let two = api.admin("show servers state be; show info");
    let blocks: Vec<&str> = two.split("\n\n").collect();
    assert_eq!(blocks.len(), 3, "{two}");
    assert!(blocks[0].starts_with("1\n# be_id"), "{two}");
    assert!(blocks[1].starts_with("Name: corral\n"), "{two}");

    // help at each level, and HAProxy's answer to a command it does not know.
    let help = ask(&api.sock("user.sock"), "help");
    assert!(
        help.starts_with("The following commands are valid at this level:\n"),
        "{help}"
    );
    assert!(
        help.contains("show info") && help.contains("show table"),
        "{help}"
    );
    assert!(
        !help.contains("disable server") && !help.contains("show sess"),
        "{help}"
    );
    let help = api.admin("help");
    assert!(
        help.contains("disable server") && help.contains("set server"),
        "{help}"
    );
    let unknown = api.admin("frobnicate now");
    assert!(
        unknown.starts_with("Unknown command: 'frobnicate now'\n"),
        "{unknown}"
    );
    assert!(
        unknown.contains("The following commands are valid at this level:"),
        "{unknown}"
    );
    drop(held);
}

#[test]
fn disable_stops_new_connections_to_a_server_and_enable_brings_them_back() {
    let (a, b) = (name_server("a"), name_server("b"));
    let api = Api::start(&two_servers(&a, &b, ""));
    let proxy = api.proxy();
    assert_eq!(
        api.admin("disable server be/b"),
        "\n",
        "no output, as HAProxy"
    );
    let before = b.accepted();
    let counts = tally(proxy, 30);
    assert_eq!(counts.get("a"), Some(&30), "{counts:?}");
    assert_eq!(
        b.accepted(),
        before,
        "b accepted a connection while in maintenance"
    );
    let state = api.admin("show servers state be");
    let row: Vec<&str> = state.lines().nth(3).unwrap().split(' ').collect();
    assert_eq!(
        (row[3], row[5], row[6]),
        ("b", "0", "1"),
        "stopped, forced maintenance"
    );
    assert_eq!(
        stat_rows(&api.admin("show stat"))["be/b"]["status"],
        "MAINT"
    );
    assert!(
        api.corral
            .stderr
            .wait_for("Server be/b is going DOWN for maintenance", WAIT)
            .is_some()
    );

    assert_eq!(api.admin("enable server be/b"), "\n");
    let counts = tally(proxy, 30);
    assert!(counts.get("b").is_some_and(|&n| n >= 10), "{counts:?}");
    assert!(b.accepted() >= before + 10);
    assert_eq!(api.admin("disable server be/zz"), "No such server.\n\n");
    assert_eq!(api.admin("disable server nope/b"), "No such backend.\n\n");
    assert_eq!(
        api.admin("disable server b"),
        "Require 'backend/server'.\n\n"
    );
    // HAProxy's `#id` spellings: backend 2 (after the frontend), server 2.
    assert_eq!(api.admin("set server #2/#2 state maint"), "\n");
    assert_eq!(tally(proxy, 10).get("a"), Some(&10));
}

#[test]
fn drain_keeps_stuck_clients_and_maint_moves_them() {
    let (a, b) = (name_server("a"), name_server("b"));
    let api = Api::start(&two_servers(
        &a,
        &b,
        "    stick-table: { type: ip, size: 1k, expire: 1h }\n    stick: [ \"on src\" ]\n",
    ));
    let proxy = api.proxy();
    // Clients until one sticks to b.
    let stuck = (1..=40)
        .map(client)
        .find(|&ip| name_via(proxy, ip).unwrap() == "b")
        .expect("some client goes to b");
    assert_eq!(api.admin("set server be/b state drain"), "\n");
    for i in 100..130 {
        assert_eq!(
            name_via(proxy, client(i)).unwrap(),
            "a",
            "a new client went to the drained b"
        );
    }
    for _ in 0..10 {
        assert_eq!(
            name_via(proxy, stuck).unwrap(),
            "b",
            "a stuck client lost its server"
        );
    }
    let row = stat_rows(&api.admin("show stat"))["be/b"].clone();
    assert_eq!(row["status"], "DRAIN");
    let state = api.admin("show servers state be");
    let fields: Vec<&str> = state.lines().nth(3).unwrap().split(' ').collect();
    assert_eq!((fields[5], fields[6]), ("2", "8"), "running, forced drain");

    assert_eq!(api.admin("set server be/b state maint"), "\n");
    for _ in 0..5 {
        assert_eq!(
            name_via(proxy, stuck).unwrap(),
            "a",
            "maintenance takes even stuck clients"
        );
    }
    assert_eq!(
        api.admin("set server be/b state sleepy"),
        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
    );
}

#[test]
fn weight_changes_are_honoured_by_the_balancer() {
    let (a, b) = (name_server("a"), name_server("b"));
    let api = Api::start(&two_servers(&a, &b, ""));
    let proxy = api.proxy();
    assert_eq!(api.admin("set server be/b weight 0"), "\n");
    assert_eq!(api.admin("get weight be/b"), "0 (initial 1)\n\n");
    assert_eq!(tally(proxy, 30).get("a"), Some(&30));
    // 3 to 1: each worker's smooth round robin gives b three of every four.
    assert_eq!(api.admin("set weight be/b 300%"), "\n");
    assert_eq!(api.admin("get weight be/b"), "3 (initial 1)\n\n");
    let counts = tally(proxy, 40);
    let (na, nb) = (counts["a"], counts["b"]);
    assert!(nb >= 2 * na && na >= 5, "{counts:?}");
    assert_eq!(stat_rows(&api.admin("show stat"))["be/b"]["weight"], "3");
    assert_eq!(
        api.admin("set server be/b weight 257"),
        "Absolute weight can only be between 0 and 256 inclusive.\n\n"
    );
}

#[test]
fn addr_change_sends_new_connections_to_the_new_address() {
    let (a, c) = (name_server("a"), name_server("c"));
    let api = Api::start(&format!(
        "frontends:
  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}
backends:
  be:
    servers:
      a: {{ address: \"{}\" }}
",
        a.addr
    ));
    let proxy = api.proxy();
    assert_eq!(tally(proxy, 4).get("a"), Some(&4));
    // An operator may not move a server.
    let denied = ask(
        &api.sock("op.sock"),
        &format!(
            "set server be/a addr {} port {}",
            c.addr.ip(),
            c.addr.port()
        ),
    );
    assert_eq!(
        denied,
        "Permission denied: 'set server addr' needs level admin or higher; this socket is level operator\n\n"
    );
    assert_eq!(tally(proxy, 4).get("a"), Some(&4));
    let moved = api.admin(&format!(
        "set server be/a addr {} port {}",
        c.addr.ip(),
        c.addr.port()
    ));
    assert_eq!(
        moved,
        format!(
            "IP changed from '{}' to '{}', port changed from '{}' to '{}' by 'stats socket command'\n\n",
            a.addr.ip(),
            c.addr.ip(),
            a.addr.port(),
            c.addr.port()
        )
    );
    let before = a.accepted();
    assert_eq!(tally(proxy, 20).get("c"), Some(&20));
    assert_eq!(a.accepted(), before, "the old address got a connection");
    let state = api.admin("show servers state");
    let row: Vec<&str> = state.lines().nth(2).unwrap().split(' ').collect();
    assert_eq!(
        (row[4], row[18]),
        (
            c.addr.ip().to_string().as_str(),
            c.addr.port().to_string().as_str()
        )
    );
    assert_eq!(
        api.admin("set server be/a addr nowhere"),
        "Invalid addr 'nowhere'\n\n"
    );
}

#[test]
fn show_and_clear_table() {
    let (a, b) = (name_server("a"), name_server("b"));
    let api = Api::start(&format!(
        "frontends:
  fe:
    bind: \"127.0.0.1:0\"
    default_backend: be
    stick-table: {{ type: ip, size: 100, expire: 1h, store: [ conn_cur, conn_cnt ] }}
    tcp-request: [ \"connection track-sc0 src\" ]
backends:
  be:
    stick-table: {{ type: ip, size: 50, expire: 1h }}
    stick: [ \"on src\" ]
    servers:
      a: {{ address: \"{}\" }}
      b: {{ address: \"{}\" }}
",
        a.addr, b.addr
    ));
    let proxy = api.proxy();
    let mut server_of = HashMap::new();
    for i in 1..=3 {
        server_of.insert(i, name_via(proxy, client(i)).unwrap());
    }
    // Entries reach worker 0's replica within the replication bound.
    assert!(eventually(WAIT, || {
        api.admin("show table")
            .contains("# table: be, type: ip, size:50, used:3")
    }));
    // ... and every client's connection has ended there (closes are
    // replicated like the rest).
    assert!(eventually(WAIT, || {
        let fe = api.admin("show table fe");
        fe.matches("conn_cur=0").count() == 3 && fe.matches("conn_cnt=1").count() == 3
    }));
    let list = api.admin("show table");
    assert_eq!(
        list,
        "# table: be, type: ip, size:50, used:3\n# table: fe, type: ip, size:100, used:3\n\n"
    );
    let be = api.admin("show table be");
    let mut lines = be.lines();
    assert_eq!(lines.next(), Some("# table: be, type: ip, size:50, used:3"));
    for l in lines.take(3) {
        // 0x...: key=127.0.6.N use=0 exp=MS server_id=K
        let (ptr, rest) = l.split_once(": ").unwrap();
        assert!(
            ptr.starts_with("0x") && u64::from_str_radix(&ptr[2..], 16).is_ok(),
            "{l}"
        );
        let f: Vec<&str> = rest.split(' ').collect();
        assert_eq!(f.len(), 4, "{l}");
        let ip: Ipv4Addr = f[0].strip_prefix("key=").unwrap().parse().unwrap();
        assert_eq!(f[1], "use=0");
        let exp: u64 = f[2].strip_prefix("exp=").unwrap().parse().unwrap();
        assert!(exp > 3_500_000 && exp <= 3_600_000, "{l}");
        let id = if server_of[&ip.octets()[3]] == "a" {
            1
        } else {
            2
        };
        assert_eq!(f[3], format!("server_id={id}"), "{l}");
    }
    let fe = api.admin(&format!("show table fe key {}", client(2)));
    let fe_lines: Vec<&str> = fe.lines().collect();
    assert_eq!(fe_lines.len(), 3, "{fe}");
    assert!(
        fe_lines[1].contains(&format!("key={} use=0 exp=", client(2)))
            && fe_lines[1].ends_with(" conn_cnt=1 conn_cur=0"),
        "{fe}"
    );
    let on_a = api.admin("show table be data.server_id eq 1");
    let want_a = server_of.values().filter(|s| *s == "a").count();
    assert_eq!(
        on_a.lines().filter(|l| l.starts_with("0x")).count(),
        want_a,
        "{on_a}"
    );
    assert_eq!(
        api.admin("show table be data.gpc0 gt 1"),
        "Data type not stored in this table\n\n"
    );
    assert_eq!(
        api.admin("show table be data.bogus gt 1"),
        "Unknown data type\n\n"
    );
    assert_eq!(api.admin("show table nope"), "No such table\n\n");
    assert_eq!(api.admin("show table be key not-an-ip"), "Invalid key\n\n");

    // A tracked entry cannot go while its connection is open.
    let open = connect_from(client(9), proxy).unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&open), &mut line).unwrap();
    assert!(eventually(WAIT, || {
        api.admin(&format!("show table fe key {}", client(9)))
            .contains("use=1")
    }));
    assert_eq!(
        api.admin(&format!("clear table fe key {}", client(9))),
        "Entry currently in use, cannot remove\n\n"
    );
    // One key, then everything not in use.
    assert_eq!(
        api.admin(&format!("clear table be key {}", client(1))),
        "\n"
    );
    assert!(
        api.admin("show table")
            .contains("# table: be, type: ip, size:50, used:3")
    );
    assert!(
        !api.admin("show table be")
            .contains(&format!("key={} ", client(1)))
    );
    assert_eq!(api.admin("clear table fe"), "\n");
    let left = api.admin("show table fe");
    assert!(
        left.starts_with("# table: fe, type: ip, size:100, used:1\n"),
        "{left}"
    );
    assert!(left.contains(&format!("key={} use=1", client(9))), "{left}");
    // The other worker's replica lost them too: a cleared client counts
    // from 1 again wherever it lands.
    drop(open);
    assert_eq!(name_via(proxy, client(2)).map(|_| ()), Ok(()));
    assert!(eventually(WAIT, || {
        api.admin(&format!("show table fe key {}", client(2)))
            .contains("conn_cnt=1 conn_cur=0")
    }));
}

#[test]
fn levels_socket_modes_and_tcp() {
    let (a, b) = (name_server("a"), name_server("b"));
    let api = Api::start(&two_servers(&a, &b, ""));
    let mode = |name: &str| {
        std::fs::metadata(api.sock(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("admin.sock"), 0o600, "default mode");
    assert_eq!(mode("op.sock"), 0o660);

    let user = api.sock("user.sock");
    assert_eq!(
        ask(&user, "disable server be/a"),
        "Permission denied: 'disable server' needs level operator or higher; this socket is level user\n\n"
    );
    assert_eq!(
        ask(&user, "show sess"),
        "Permission denied: 'show sess' needs level operator or higher; this socket is level user\n\n"
    );
    assert!(ask(&user, "show info").starts_with("Name: corral\n"));
    assert!(ask(&user, "show stat").starts_with("# pxname,svname,"));
    assert_eq!(tally(api.proxy(), 10).len(), 2, "nothing was disabled");
    let op = api.sock("op.sock");
    assert_eq!(ask(&op, "disable server be/a"), "\n");
    assert_eq!(ask(&op, "clear table nope"), "No such table\n\n");
    assert_eq!(ask(&op, "enable server be/a"), "\n");

    // The TCP socket (operator) speaks the same protocol.
    let tcp = api.tcp();
    assert!(ask_tcp(tcp, "show info").starts_with("Name: corral\n"));
    assert_eq!(
        ask_tcp(tcp, "set server be/a addr 127.0.0.1"),
        "Permission denied: 'set server addr' needs level admin or higher; this socket is level operator\n\n"
    );

    // Interactive mode: `prompt`, then one line at a time, `quit`.
    let mut s = UnixStream::connect(api.sock("admin.sock")).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"prompt\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"\n> ") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed in interactive mode");
        got.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"get weight be/a\n").unwrap();
    got.clear();
    while !got.ends_with(b"\n> ") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&got), "1 (initial 1)\n\n> ");
    s.write_all(b"quit\n").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"\n");
}

#[test]
fn corral_ctl_prints_answers_and_exits_non_zero_on_errors() {
    let (a, b) = (name_server("a"), name_server("b"));
    let api = Api::start(&two_servers(&a, &b, ""));
    let admin = api.sock("admin.sock").display().to_string();

    let (code, out, _) = ctl(&admin, &["show", "info"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Name: corral\n") && !out.ends_with("\n\n"),
        "{out:?}"
    );
    let (code, out, _) = ctl(&admin, &["disable", "server", "be/b"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(tally(api.proxy(), 10).get("a"), Some(&10));
    let (code, out, _) = ctl(&admin, &["enable server be/b; get weight be/b"]);
    assert_eq!((code, out.as_str()), (0, "\n1 (initial 1)\n"));

    let (code, out, _) = ctl(&admin, &["frobnicate"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("Unknown command: 'frobnicate'\n"), "{out}");
    let (code, out, _) = ctl(&admin, &["disable", "server", "be/nope"]);
    assert_eq!((code, out.as_str()), (1, "No such server.\n"));
    let user = api.sock("user.sock").display().to_string();
    let (code, out, _) = ctl(&user, &["disable", "server", "be/a"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("Permission denied"), "{out}");
    // A warning is not an error.
    let (code, out, _) = ctl(
        &admin,
        &[
            "set",
            "server",
            "be/a",
            "addr",
            &a.addr.ip().to_string(),
            "port",
            "1",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("port changed from"), "{out}");

    let tcp = api.tcp().to_string();
    let (code, out, _) = ctl(&tcp, &["show", "servers", "state"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("1\n# be_id"), "{out}");

    let missing = api.dir.path().join("missing.sock").display().to_string();
    let (code, _, err) = ctl(&missing, &["show", "info"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot talk to") && err.contains("missing.sock"),
        "{err}"
    );
}

#[test]
fn the_unix_socket_goes_away_at_stop_and_a_stale_one_is_replaced() {
    let (a, b) = (name_server("a"), name_server("b"));
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    // A stale socket file, nobody listening.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let yaml = format!(
        "global: {{ workers: 2, stats-socket: \"{} level admin\" }}\n{}",
        sock.display(),
        two_servers(&a, &b, "")
    );
    let corral = Corral::start(&yaml);
    assert!(ask(&sock, "show info").starts_with("Name: corral"));
    // A second corral on the same socket is refused with the reason.
    let second = Corral::try_start(&yaml);
    let err = second
        .err()
        .expect("a second corral on a live socket must not start");
    assert!(
        err.contains("another process (another corral?) is listening on"),
        "{err}"
    );
    assert!(corral.stop().success());
    assert!(!sock.exists(), "the socket file stays after stop");
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

#[test]
fn socat_talks_to_both_sockets() {
    if !which("socat") {
        println!("SKIPPED socat_talks_to_both_sockets: socat not installed");
        return;
    }
    let (a, b) = (name_server("a"), name_server("b"));
    let api = Api::start(&two_servers(&a, &b, ""));
    let socat = |target: String, input: &str| {
        let mut child = std::process::Command::new("socat")
            .args(["-t", "5", "stdio", &target])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = rx.recv_timeout(WAIT).expect("socat finished").unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let unix = format!("unix-connect:{}", api.sock("admin.sock").display());
    let out = socat(unix.clone(), "disable server be/b;show servers state be\n");
    assert!(out.starts_with("\n1\n# be_id"), "{out:?}");
    assert_eq!(out.lines().nth(4).unwrap().split(' ').nth(6), Some("1"));
    assert_eq!(tally(api.proxy(), 10).get("a"), Some(&10));
    let out = socat(format!("tcp:{}", api.tcp()), "show info\n");
    assert!(
        out.starts_with("Name: corral\n") && out.ends_with("\n\n"),
        "{out:?}"
    );
}
