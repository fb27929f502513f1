//! Bad configurations: each is rejected by `corral check` (and `corral
//! run`) with the file, line, column and key path of the problem, and
//! says what was expected.

mod common;
use common::*;

const FE: &str = "frontends:\n  fe: { bind: \"127.0.0.1:0\", default_backend: be }\n";
const BE: &str = "backends:\n  be:\n    servers:\n      s1: { address: \"127.0.0.1:9\" }\n";

struct Case {
    name: &'static str,
    yaml: String,
    /// `line:col`
    at: &'static str,
    path: &'static str,
    /// A fragment the message must contain.
    says: &'static str,
}

fn case(
    name: &'static str,
    yaml: impl Into<String>,
    at: &'static str,
    path: &'static str,
    says: &'static str,
) -> Case {
    Case {
        name,
        yaml: yaml.into(),
        at,
        path,
        says,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "misspelt section",
            format!("frontend:\n  x: 1\n{FE}{BE}"),
            "1:1",
            "frontend",
            "unknown field `frontend`",
        ),
        case(
            "unknown global key",
            format!("global:\n  wrokers: 2\n{FE}{BE}"),
            "2:3",
            "global.wrokers",
            "expected one of `workers`",
        ),
        case(
            "zero workers",
            format!("global:\n  workers: 0\n{FE}{BE}"),
            "2:12",
            "global.workers",
            "out of range",
        ),
        case(
            "workers not a number",
            format!("global:\n  workers: many\n{FE}{BE}"),
            "2:12",
            "global.workers",
            "`auto` or a number",
        ),
        case(
            "bad duration unit",
            format!("defaults:\n  timeout: {{ connect: 5x }}\n{FE}{BE}"),
            "2:23",
            "defaults.timeout.connect",
            "unknown duration unit `x`",
        ),
        case(
            "unknown timeout",
            format!("defaults:\n  timeout: {{ conect: 5s }}\n{FE}{BE}"),
            "2:14",
            "defaults.timeout.conect",
            "unknown field `conect`",
        ),
        case(
            "missing bind",
            format!("frontends:\n  fe: {{ default_backend: be }}\n{BE}"),
            "2:3",
            "frontends.fe",
            "missing `bind`",
        ),
        case(
            "bind without port",
            format!("frontends:\n  fe: {{ bind: \"localhost\", default_backend: be }}\n{BE}"),
            "2:15",
            "frontends.fe.bind",
            "has no port",
        ),
        case(
            "bind port too large",
            format!(
                "frontends:\n  fe:\n    bind: [\"127.0.0.1:1\", \"127.0.0.1:70000\"]\n    default_backend: be\n{BE}"
            ),
            "3:27",
            "frontends.fe.bind[1]",
            "is not a port",
        ),
        case(
            "duplicate bind",
            format!(
                "frontends:\n  a: {{ bind: \"0.0.0.0:8081\", default_backend: be }}\n  b: {{ bind: \"127.0.0.1:8081\", default_backend: be }}\n{BE}"
            ),
            "3:14",
            "frontends.b.bind[0]",
            "already bound by frontends.a.bind[0]",
        ),
        case(
            "dangling backend",
            format!("frontends:\n  fe: {{ bind: \":1\", default_backend: db }}\n{BE}"),
            "2:38",
            "frontends.fe.default_backend",
            "no backend named `db` (defined backends: be)",
        ),
        case(
            "server without port",
            format!(
                "{FE}backends:\n  be:\n    servers:\n      db2: {{ address: \"10.0.0.12\" }}\n"
            ),
            "6:23",
            "backends.be.servers.db2.address",
            "has no port",
        ),
        case(
            "unresolvable server",
            format!(
                "{FE}backends:\n  be:\n    servers:\n      db2: {{ address: \"db2.nonexistent.invalid:3306\" }}\n"
            ),
            "6:23",
            "backends.be.servers.db2.address",
            "cannot resolve host `db2.nonexistent.invalid`",
        ),
        case(
            "weight out of range",
            format!(
                "{FE}backends:\n  be:\n    servers:\n      s: {{ address: \"127.0.0.1:1\", weight: 300 }}\n"
            ),
            "6:44",
            "backends.be.servers.s.weight",
            "from 0 to 256",
        ),
        case(
            "unknown balance",
            format!(
                "{FE}backends:\n  be:\n    balance: random\n    servers:\n      s: {{ address: \"127.0.0.1:1\" }}\n"
            ),
            "5:14",
            "backends.be.balance",
            "expected one of: roundrobin, leastconn, source, first",
        ),
        case(
            "unknown mode",
            format!("defaults:\n  mode: udp\n{FE}{BE}"),
            "2:9",
            "defaults.mode",
            "expected one of: tcp, http",
        ),
        case(
            "check port zero",
            format!(
                "{FE}backends:\n  be:\n    servers:\n      s: {{ address: \"127.0.0.1:1\", check: {{ port: 0 }} }}\n"
            ),
            "6:51",
            "backends.be.servers.s.check.port",
            "out of range",
        ),
        case(
            "unknown check key",
            format!(
                "{FE}backends:\n  be:\n    servers:\n      s: {{ address: \"127.0.0.1:1\", check: {{ interval: 2s }} }}\n"
            ),
            "6:45",
            "backends.be.servers.s.check.interval",
            "valid keys: port, inter, rise, fall, http",
        ),
        case(
            "bad expect status",
            format!(
                "{FE}backends:\n  be:\n    servers:\n      s:\n        address: \"127.0.0.1:1\"\n        check: {{ http: {{ path: /health, expect: \"99\" }} }}\n"
            ),
            "8:49",
            "backends.be.servers.s.check.http.expect",
            "is not a status",
        ),
        case(
            "duplicate server",
            format!(
                "{FE}backends:\n  be:\n    servers:\n      s: {{ address: \"127.0.0.1:1\" }}\n      s: {{ address: \"127.0.0.1:2\" }}\n"
            ),
            "7:7",
            "backends.be.servers.s",
            "defined twice",
        ),
        case(
            "unknown option",
            format!("defaults:\n  option: [tcplog, tcplogg]\n{FE}{BE}"),
            "2:20",
            "defaults.option[1]",
            "unknown option `tcplogg`",
        ),
        case(
            "frontend option on a backend",
            format!(
                "{FE}backends:\n  be:\n    option: tcplog\n    servers:\n      s: {{ address: \"127.0.0.1:1\" }}\n"
            ),
            "5:13",
            "backends.be.option",
            "does not apply to a backend",
        ),
        case(
            "client timeout on a backend",
            format!(
                "{FE}backends:\n  be:\n    timeout: {{ client: 5s }}\n    servers:\n      s: {{ address: \"127.0.0.1:1\" }}\n"
            ),
            "5:16",
            "backends.be.timeout.client",
            "set it in a frontend or in defaults",
        ),
        case(
            "yaml syntax",
            format!("frontends:\n  fe: {{ bind: [\"127.0.0.1:0\", default_backend: be }}\n{BE}"),
            "2:51",
            "frontends.fe.bind",
            "did not find expected",
        ),
        case(
            "servers as a list",
            format!("{FE}backends:\n  be:\n    servers: [ s1 ]\n"),
            "5:14",
            "backends.be.servers",
            "expected a map",
        ),
        case(
            "negative maxconn",
            format!("global:\n  maxconn: -5\n{FE}{BE}"),
            "2:12",
            "global.maxconn",
            "is not valid",
        ),
        case(
            "no frontends",
            BE.to_string(),
            "",
            "frontends",
            "no frontends",
        ),
        case(
            "unknown stick-table data type",
            format!(
                "{FE}backends:\n  be:\n    stick-table: {{ size: 1k, store: [ conn_cur, http_req_rat(10s) ] }}\n    servers:\n      s1: {{ address: \"127.0.0.1:9\" }}\n"
            ),
            "5:49",
            "backends.be.stick-table.store[1]",
            "unknown data type `http_req_rat`",
        ),
        case(
            "rate without a period",
            format!(
                "{FE}backends:\n  be:\n    stick-table: {{ size: 1k, store: http_req_rate }}\n    servers:\n      s1: {{ address: \"127.0.0.1:9\" }}\n"
            ),
            "5:37",
            "backends.be.stick-table.store",
            "needs a period",
        ),
        case(
            "stick rule without a table",
            format!(
                "{FE}backends:\n  be:\n    stick: [ \"on src\" ]\n    servers:\n      s1: {{ address: \"127.0.0.1:9\" }}\n"
            ),
            "5:21",
            "backends.be.stick[0]",
            "needs a stick table",
        ),
        case(
            "stick-table peers section missing",
            format!(
                "{FE}backends:\n  be:\n    stick-table: {{ size: 1k, peers: mypeers }}\n    servers:\n      s1: {{ address: \"127.0.0.1:9\" }}\n"
            ),
            "5:37",
            "backends.be.stick-table.peers",
            "no peers section named `mypeers`",
        ),
        case(
            "misspelt tcp-request action",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\n    tcp-request: [ \"connection rejekt\" ]\n{BE}"
            ),
            "5:32",
            "frontends.fe.tcp-request[0]",
            "unknown tcp-request action `rejekt`",
        ),
        case(
            "counter fetch misspelt",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\n    tcp-request: [ \"connection reject if {{ sc0_conn_kur gt 1 }}\" ]\n{BE}"
            ),
            "5:44",
            "frontends.fe.tcp-request[0]",
            "sc0_conn_kur",
        ),
        case(
            "counter fetch names an unknown table",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\n    stick-table: {{ size: 1k, store: conn_cur }}\n    tcp-request: [ \"connection reject if {{ sc_conn_cur(0,nope) gt 1 }}\" ]\n{BE}"
            ),
            "6:58",
            "frontends.fe.tcp-request[0]",
            "no stick table named `nope`",
        ),
        case(
            "bad inspect-delay",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\n    tcp-request: [ \"inspect-delay 5x\", \"content accept\" ]\n{BE}"
            ),
            "5:35",
            "frontends.fe.tcp-request[0]",
            "unknown duration unit `x`",
        ),
        case(
            "inspect-delay written twice",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\n    tcp-request: [ \"inspect-delay 5s\", \"inspect-delay 6s\" ]\n{BE}"
            ),
            "5:40",
            "frontends.fe.tcp-request[1]",
            "`inspect-delay` is already set by frontends.fe.tcp-request[0]",
        ),
        case(
            "inspect-delay in an http frontend",
            "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    mode: http\n    tcp-request: [ \"inspect-delay 5s\" ]\nbackends:\n  be: { mode: http, servers: { s1: { address: \"127.0.0.1:9\" } } }\n",
            "5:20",
            "frontends.fe.tcp-request[0]",
            "applies to mode tcp frontends",
        ),
        case(
            "use_backend names an http backend from a tcp frontend",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    use_backend: [ \"web if {{ src 10.0.0.0/8 }}\" ]\n{BE}  web: {{ mode: http, servers: {{ s1: {{ address: \"127.0.0.1:9\" }} }} }}\n"
            ),
            "4:21",
            "frontends.fe.use_backend[0]",
            "backend `web` is mode http: a tcp frontend can only use tcp backends",
        ),
        case(
            "tcp frontend with neither default_backend nor use_backend",
            format!("frontends:\n  fe: {{ bind: \"127.0.0.1:0\" }}\n{BE}"),
            "2:3",
            "frontends.fe",
            "missing `default_backend`",
        ),
        case(
            "peers local not a peer",
            format!(
                "{FE}{BE}peers:\n  p:\n    local: lb3\n    peer: {{ lb1: \"127.0.0.1:1024\" }}\n"
            ),
            "9:12",
            "peers.p.local",
            "is not one of this section's peers",
        ),
        case(
            "certificate file that does not exist",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\n    tls: {{ certs: [ missing.pem ] }}\n{BE}"
            ),
            "5:21",
            "frontends.fe.tls.certs[0]",
            "missing.pem`: No such file",
        ),
        case(
            "TLS 1.1 as the minimum version",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\n    tls: {{ min_version: \"1.1\", certs: [ missing.pem ] }}\n{BE}"
            ),
            "5:25",
            "frontends.fe.tls.min_version",
            "TLS 1.0 and 1.1 are obsolete",
        ),
        case(
            "tls block without certs",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    default_backend: be\n    tls: {{ crt: a.pem }}\n{BE}"
            ),
            "5:5",
            "frontends.fe.tls",
            "missing `certs`",
        ),
        case(
            "ssl bind without a tls block",
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0 ssl\"\n    default_backend: be\n{BE}"
            ),
            "3:11",
            "frontends.fe.bind",
            "no `tls:` block",
        ),
        case(
            "crt on a bind line",
            format!(
                "frontends:\n  fe:\n    bind: [ \"127.0.0.1:0 ssl crt /x.pem\" ]\n    default_backend: be\n{BE}"
            ),
            "3:13",
            "frontends.fe.bind[0]",
            "`crt` on a bind line",
        ),
        case(
            "unknown ssl-provider",
            format!("global:\n  ssl-provider: openssl\n{FE}{BE}"),
            "2:17",
            "global.ssl-provider",
            "expected one of: aws-lc-rs, ring",
        ),
        case(
            "server verify required without a ca",
            format!(
                "{FE}backends:\n  be:\n    servers:\n      s1: {{ address: \"127.0.0.1:9\", tls: {{ verify: required }} }}\n"
            ),
            "6:37",
            "backends.be.servers.s1.tls",
            "`verify: required` needs `ca`",
        ),
        case(
            "unsupported log target",
            format!("global:\n  log: syslog\n{FE}{BE}"),
            "2:8",
            "global.log",
            "not a log target",
        ),
        case(
            "runtime API on a non-loopback TCP address",
            format!("global:\n  stats-socket: \"0.0.0.0:9999 level admin\"\n{FE}{BE}"),
            "2:17",
            "global.stats-socket",
            "must be on loopback",
        ),
        case(
            "runtime API level misspelt, in a list",
            format!(
                "global:\n  stats-socket:\n    - \"/tmp/corral-a.sock\"\n    - \"/tmp/corral-b.sock level admn\"\n{FE}{BE}"
            ),
            "4:7",
            "global.stats-socket[1]",
            "level `admn` is not one of user, operator, admin",
        ),
        case(
            "runtime API mode on a TCP socket",
            format!("global:\n  stats-socket: \"127.0.0.1:9999 mode 600\"\n{FE}{BE}"),
            "2:17",
            "global.stats-socket",
            "`mode` applies only to a unix socket",
        ),
        case(
            "runtime API unknown option",
            format!("global:\n  stats-socket: \"/tmp/corral.sock timeout 2m\"\n{FE}{BE}"),
            "2:17",
            "global.stats-socket",
            "unknown option `timeout`",
        ),
        case(
            "runtime API mode not octal",
            format!("global:\n  stats-socket: \"/tmp/corral.sock mode 999\"\n{FE}{BE}"),
            "2:17",
            "global.stats-socket",
            "not an octal permission",
        ),
        case(
            "runtime API owner that does not exist",
            format!("global:\n  stats-socket: \"/tmp/corral.sock user no-such-user-x\"\n{FE}{BE}"),
            "2:17",
            "global.stats-socket",
            "no user `no-such-user-x`",
        ),
        case(
            "bad syslog facility",
            format!("global:\n  log: \"127.0.0.1:514 local9\"\n{FE}{BE}"),
            "2:8",
            "global.log",
            "`local9` in `127.0.0.1:514 local9` is not a syslog facility: expected one of kern, user, mail",
        ),
        case(
            "bad syslog level",
            format!("global:\n  log: /dev/log local0 loud\n{FE}{BE}"),
            "2:8",
            "global.log",
            "`loud` in `/dev/log local0 loud` is not a log level: expected one of emerg, alert",
        ),
        case(
            "stream syslog target",
            format!("global:\n  log:\n    - stdout\n    - tcp@127.0.0.1:514 local0\n{FE}{BE}"),
            "4:7",
            "global.log[1]",
            "`tcp@127.0.0.1:514 local0` is not a log target: `tcp@` is a stream socket, and corral sends syslog over datagrams only",
        ),
        case(
            "relative syslog socket path",
            format!(
                "{BE}frontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be, log: \"dev/log local0\" }}\n"
            ),
            "6:56",
            "frontends.fe.log",
            "`dev/log local0` is not a log target: `dev/log` is neither a keyword, an absolute path nor an address; expected `stdout`, `stderr`, `file /path/to/file`, a unix datagram socket such as `/dev/log`",
        ),
    ]
}

#[test]
fn every_bad_config_names_file_line_column_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.yaml"));
        std::fs::write(&path, &c.yaml).unwrap();
        let file = path.to_str().unwrap();
        let (status, stdout, stderr) = run_cmd(&["check", "-c", file]);
        let first = stderr.lines().next().unwrap_or("");
        let prefix = if c.at.is_empty() {
            format!("{file}: {}: ", c.path)
        } else {
            format!("{file}:{}: {}: ", c.at, c.path)
        };
        if status.code() != Some(1)
            || !first.starts_with(&prefix)
            || !first.contains(c.says)
            || !stdout.is_empty()
        {
            failures.push(format!(
                "{}: exit {:?}\n  want prefix: {prefix}\n  and: {}\n  got: {first}",
                c.name,
                status.code(),
                c.says
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_errors_are_reported_at_once_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.yaml");
    std::fs::write(
        &path,
        "global: { workers: 0 }\nfrontends:\n  fe: { bind: \"nope\", default_backend: missing }\nbackends:\n  be:\n    servers:\n      s: { address: \"127.0.0.1\" }\n",
    )
    .unwrap();
    let (status, _, stderr) = run_cmd(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    assert!(lines[0].contains(":1:20: global.workers:"), "{stderr}");
    assert!(lines[1].contains(":3:15: frontends.fe.bind:"), "{stderr}");
    assert!(
        lines[2].contains(":3:40: frontends.fe.default_backend:"),
        "{stderr}"
    );
    assert!(
        lines[3].contains(":7:21: backends.be.servers.s.address:"),
        "{stderr}"
    );
    assert!(
        lines[4].ends_with("4 errors found; nothing was started"),
        "{stderr}"
    );
}

#[test]
fn run_refuses_a_bad_config_and_never_listens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        &path,
        format!("frontends:\n  fe: {{ bind: \"127.0.0.1:{port}\", default_backend: be }}\nbackends:\n  be:\n    balance: nope\n    servers: {{}}\n"),
    )
    .unwrap();
    let (status, _, stderr) = run_cmd(&["run", "-c", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("backends.be.balance"), "{stderr}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn check_prints_a_summary_of_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.yaml");
    std::fs::write(
        &path,
        "global: { workers: 2, maxconn: 50000 }\ndefaults:\n  mode: tcp\n  retries: 3\n  timeout: { connect: 5s, client: 50s, server: 50s, queue: 30s, check: 2s }\nfrontends:\n  db_front:\n    bind: [\"127.0.0.1:3306\"]\n    maxconn: 20000\n    default_backend: db\nbackends:\n  db:\n    balance: source\n    servers:\n      db1: { address: 10.0.0.11:3306, weight: 1, maxconn: 5000, check: true }\n      db2: { address: \"localhost:3306\", check: { port: 3307, inter: 2s, rise: 2, fall: 3 } }\n      spare: { address: 10.0.0.13:3306, backup: true }\n",
    )
    .unwrap();
    let (status, stdout, stderr) = run_cmd(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("configuration is valid"), "{stdout}");
    assert!(
        stdout.contains("frontend db_front (tcp) on 127.0.0.1:3306 -> db"),
        "{stdout}"
    );
    assert!(
        stdout.contains("backend db (tcp, balance source, retries 3): 3 servers"),
        "{stdout}"
    );
    assert!(stdout.contains("db2 localhost:3306 (127.0.0.1:3306) weight 1 check tcp on 127.0.0.1:3307 every 2s rise 2 fall 3"), "{stdout}");
    assert!(
        stdout.contains("spare 10.0.0.13:3306 (10.0.0.13:3306) weight 1 backup"),
        "{stdout}"
    );
    assert!(stdout.lines().count() <= 24, "one screen");
}
