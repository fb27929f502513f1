//! `corral import-haproxy` on every HAProxy configuration of the seeds
//! (tests/import/*.cfg, the seeds' own text): the YAML is byte for byte the
//! reviewed golden file, the report on stderr is the expected one, the exit
//! status says whether the conversion is complete, and the YAML passes
//! `corral check`. Then the converted seed configurations run, with the
//! seeds' servers stood in for on loopback, and behave as the write-ups
//! describe.
//!
//! `CORRAL_BLESS=1 cargo test --release --test import_haproxy` rewrites the
//! goldens (`NAME.yaml`, `NAME.report`) from the current output; review
//! the diff before committing it.

mod common;
use common::http::*;
use common::*;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import")
}

/// Each seed configuration and the exit status its conversion must have.
/// 0: complete. 3: written, with directives corral cannot express (the
/// write-ups' placeholders, `chroot`/`user`/`daemon`, a lost section header).
const CASES: &[(&str, i32)] = &[
    ("seed-001-a", 3),
    ("seed-001-b", 3),
    ("seed-002", 3),
    ("seed-003-a", 3),
    ("seed-003-b", 0),
    ("seed-004", 0),
];

/// Runs the importer on `tests/import/NAME.cfg` (the path as given, so the
/// report names it the same way everywhere).
fn import(name: &str) -> (i32, String, String) {
    let (status, out, err) = run_cmd(&["import-haproxy", &format!("tests/import/{name}.cfg")]);
    (status.code().expect("exited"), out, err)
}

/// What the seeds' labs resolve that this machine does not: their host
/// names (the LXD containers' /etc/hosts, Docker Compose's service names)
/// and their error files. Only these are replaced before `corral check`.
fn stand_ins(name: &str, yaml: &str) -> String {
    let errors = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed-002-errors/");
    match name {
        "seed-002" => yaml
            .replace("address: site1.testdomain.com:80", "address: 127.0.0.1:80")
            .replace("address: site2.testdomain.com:80", "address: 127.0.0.1:80")
            .replace("address: web2.testdomain.com:80", "address: 127.0.0.1:80")
            .replace("/etc/haproxy/errors/", errors.to_str().unwrap()),
        "seed-004" => (1..=4).fold(yaml.to_string(), |y, i| {
            y.replace(
                &format!("address: server{i}:8000"),
                "address: 127.0.0.1:8000",
            )
        }),
        _ => yaml.to_string(),
    }
}

#[test]
fn every_seed_configuration_converts_to_its_golden_yaml_and_passes_check() {
    let bless = std::env::var_os("CORRAL_BLESS").is_some();
    let mut failures = Vec::new();
    for (name, want_status) in CASES {
        let (status, yaml, report) = import(name);
        let golden_yaml = dir().join(format!("{name}.yaml"));
        let golden_report = dir().join(format!("{name}.report"));
        if bless {
            std::fs::write(&golden_yaml, &yaml).unwrap();
            std::fs::write(&golden_report, &report).unwrap();
        }
        let want_yaml = std::fs::read_to_string(&golden_yaml).unwrap_or_else(|e| {
            panic!("{}: {e} (bless with CORRAL_BLESS=1)", golden_yaml.display())
        });
        let want_report = std::fs::read_to_string(&golden_report).unwrap();
        if yaml != want_yaml {
            failures.push(format!(
                "{name}: YAML differs from {}:\n{yaml}",
                golden_yaml.display()
            ));
        }
        if report != want_report {
            failures.push(format!(
                "{name}: report differs from {}:\n{report}",
                golden_report.display()
            ));
        }
        if status != *want_status {
            failures.push(format!(
                "{name}: exit status {status}, expected {want_status}\n{report}"
            ));
        }
        // The report's last line says the same as the status.
        let complete = report.ends_with(": converted completely\n");
        assert_eq!(complete, status == 0, "{name}: {report}");
        // Each unconverted directive is reported once on stderr and noted
        // once in the YAML, with its line.
        let reported: Vec<&str> = report
            .lines()
            .filter(|l| l.contains(": not converted: "))
            .collect();
        assert_eq!(
            reported.len(),
            yaml.matches("# NOT CONVERTED (line ").count(),
            "{name}"
        );

        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("corral.yaml");
        std::fs::write(&path, stand_ins(name, &yaml)).unwrap();
        let (ok, out, err) = run_cmd(&["check", "-c", path.to_str().unwrap()]);
        if !ok.success() {
            failures.push(format!(
                "{name}: corral check failed:\n{out}{err}\n---\n{yaml}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn unreadable_and_unparsable_files_exit_1_and_write_nothing() {
    let (status, out, err) = run_cmd(&["import-haproxy", "tests/import/no-such-file.cfg"]);
    assert_eq!(status.code(), Some(1));
    assert!(out.is_empty());
    assert!(
        err.starts_with("tests/import/no-such-file.cfg: cannot read it: "),
        "{err}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("haproxy.cfg");
    std::fs::write(&bad, "global\n  maxconn 10\n  log \"/dev/log local0\n").unwrap();
    let (status, out, err) = run_cmd(&["import-haproxy", bad.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(out.is_empty());
    assert!(
        err.starts_with(&format!(
            "{}:3: the double quote opened at column 7 is never closed",
            bad.display()
        )),
        "{err}"
    );

    std::fs::write(&bad, b"global\n  maxconn \xff\n").unwrap();
    let (status, _, err) = run_cmd(&["import-haproxy", bad.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains(":2: not UTF-8"), "{err}");
}

/// The converted YAML of a seed, with its servers moved onto loopback test
/// servers and its binds onto free loopback ports.
fn converted(name: &str, servers: &[(&str, String)], bind: &str) -> String {
    let (status, yaml, report) = import(name);
    assert!(status == 0 || status == 3, "{report}");
    let mut yaml = yaml.replace(&format!("\"{bind}\""), "\"127.0.0.1:0\"");
    for (from, to) in servers {
        let from = format!("address: {from}");
        assert!(yaml.contains(&from), "{from} not in\n{yaml}");
        yaml = yaml.replace(&from, &format!("address: {to}"));
    }
    yaml
}

fn named(name: &'static str) -> HttpServer {
    HttpServer::start(Arc::new(move |_| Reply::text(200, name)))
}

fn from(addr: std::net::SocketAddr, src: &str, path: &str) -> Response {
    let s = connect_from(src.parse::<IpAddr>().unwrap(), addr).unwrap();
    Client::from(s).get(path, "app")
}

#[test]
fn seed_004_converted_routes_light_heavy_admin_and_the_rest() {
    let s = [
        named("server1"),
        named("server2"),
        named("server3"),
        named("server4"),
    ];
    let stand: Vec<(&str, String)> = [
        "server1:8000",
        "server2:8000",
        "server3:8000",
        "server4:8000",
    ]
    .into_iter()
    .zip(s.iter().map(|x| x.addr().to_string()))
    .collect();
    let corral = Corral::start(&converted("seed-004", &stand, "*:80"));
    let addr = corral.addr("clients");

    // /lightwork: round robin over server1 and server2.
    let mut c = Client::connect(addr);
    let light: Vec<String> = (0..4).map(|_| c.get("/lightwork", "app").text()).collect();
    let mut sorted = light.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["server1", "server1", "server2", "server2"],
        "{light:?}"
    );
    assert_ne!(light[0], light[1], "alternates: {light:?}");

    // /heavywork: `balance source`, each client address stays on one of
    // server3/server4, and the clients spread over both.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in 1..=16 {
        let src = format!("127.0.9.{i}");
        let first = from(addr, &src, "/heavywork").text();
        assert!(first == "server3" || first == "server4", "{first}");
        for _ in 0..3 {
            assert_eq!(
                from(addr, &src, "/x/heavywork").text(),
                first,
                "{src} moved"
            );
        }
        *seen.entry(first).or_default() += 1;
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // /admin: denied at the edge (`path -i -m beg`), never reaching a server.
    let before: usize = s.iter().map(|x| x.count()).sum();
    for path in ["/admin", "/ADMIN/users"] {
        assert_eq!(get(addr, path, "app").status, 403, "{path}");
    }
    assert_eq!(s.iter().map(|x| x.count()).sum::<usize>(), before);

    // Anything else: all four servers in turn.
    let mut c = Client::connect(addr);
    let mut rest: Vec<String> = (0..4).map(|_| c.get("/", "app").text()).collect();
    rest.sort();
    assert_eq!(rest, ["server1", "server2", "server3", "server4"]);
}

#[test]
fn seed_002_converted_routes_by_host_with_both_sites_in_each_round_robin() {
    let (site1, site2) = (named("SITE1"), named("SITE2"));
    let errors = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed-002-errors/");
    // The write-up's own typo (`web2.testdomain.com` in subdomain1) stays:
    // in its lab that name is the second container too.
    let stand = [
        ("site1.testdomain.com:80", site1.addr().to_string()),
        ("site2.testdomain.com:80", site2.addr().to_string()),
        ("web2.testdomain.com:80", site2.addr().to_string()),
    ];
    let yaml = converted("seed-002", &stand, "*:80")
        .replace("/etc/haproxy/errors/", errors.to_str().unwrap())
        // This machine may have no syslog socket: the logs go to stdout.
        .replace("- /dev/log local0", "- stdout")
        .replace("- /dev/log local1 notice", "- stderr")
        // The runtime API socket goes to the test's directory.
        .replace("/run/haproxy/admin.sock", "./admin.sock");
    let corral = Corral::start(&yaml);
    let addr = corral.addr("http_frontend");

    for host in ["site1.testdomain.com", "SITE2.testdomain.com"] {
        let mut browser = Client::from(connect_from("127.0.8.1".parse().unwrap(), addr).unwrap());
        let pages: Vec<String> = (0..4).map(|_| browser.get("/", host).text()).collect();
        let other = if pages[0] == "SITE1" {
            "SITE2"
        } else {
            "SITE1"
        };
        assert_eq!(
            pages,
            [pages[0].as_str(), other, &pages[0], other],
            "{host}"
        );
    }
    for rec in site1.recorded().iter().chain(site2.recorded().iter()) {
        assert_eq!(
            rec.header("x-client-ip"),
            Some("127.0.8.1"),
            "{:?}",
            rec.headers
        );
        assert_eq!(rec.header("x-forwarded-for"), Some("127.0.8.1"));
    }
    // No backend for another Host: the seed's 503 errorfile, as written.
    let mut c = connect(addr);
    std::io::Write::write_all(&mut c, b"GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n").unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut c, &mut got).unwrap();
    assert_eq!(got, std::fs::read(errors.join("503.http")).unwrap());
}

#[test]
fn seed_003_converted_sends_static_paths_to_the_static_server() {
    let (st, dy) = (named("static"), named("dynamic"));
    let stand = [
        ("127.0.0.1:5001", st.addr().to_string()),
        ("127.0.0.1:5002", dy.addr().to_string()),
    ];
    let yaml = converted("seed-003-b", &stand, "*:80");
    let corral = Corral::start(&yaml);
    let addr = corral.addr("http_front");
    assert_eq!(get(addr, "/static/logo.png", "fitguru").text(), "static");
    assert_eq!(get(addr, "/", "fitguru").text(), "dynamic");
    assert_eq!(get(addr, "/api/data", "fitguru").text(), "dynamic");
    let hits: Vec<String> = st.recorded().iter().map(|r| r.target.clone()).collect();
    assert_eq!(hits, ["/static/logo.png"]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP server that writes its name and closes.
fn tcp_named(name: &'static str) -> Server {
    Server::start(Arc::new(move |mut s: std::net::TcpStream| {
        let _ = std::io::Write::write_all(&mut s, name.as_bytes());
    }))
}

fn tcp_name(addr: std::net::SocketAddr, src: &str) -> String {
    let mut s = connect_from(src.parse::<IpAddr>().unwrap(), addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).unwrap();
    out
}

#[test]
fn seed_001_filled_in_keeps_each_client_on_its_server_and_serves_the_stats_page() {
    // The write-up's placeholders filled in as its reader would: two
    // servers (checked on their own port, as `check port 80` does), two
    // peers of which this node is lb1.
    let (s1, s2) = (tcp_named("server1"), tcp_named("server2"));
    let cfg = std::fs::read_to_string(dir().join("seed-001-b.cfg")).unwrap();
    let fill = |cfg: String, n: usize, addr: std::net::SocketAddr| {
        cfg.replace(
            &format!("<backend server name{n}> <IP of backend server{n}>:80 check port 80"),
            &format!("server{n} {addr} check port {}", addr.port()),
        )
        .replace(
            &format!("<name of peer {n}> <IP of peer {n}>:1024"),
            &format!("lb{n} 127.0.0.1:{}", free_port()),
        )
    };
    let cfg = fill(fill(cfg, 1, s1.addr), 2, s2.addr);
    let tmp = tempfile::tempdir().unwrap();
    let cfg_path = tmp.path().join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let (status, yaml, report) = run_cmd(&["import-haproxy", cfg_path.to_str().unwrap()]);
    // What is left unconverted is the process setup only (chroot, pidfile,
    // user, group, daemon, stats timeout).
    assert_eq!(status.code(), Some(3), "{report}");
    assert_eq!(report.matches(": not converted: ").count(), 6, "{report}");
    assert!(yaml.contains("peers: hapeers"), "{yaml}");
    let sock = tmp.path().join("admin.sock");
    let yaml = yaml
        .replace("\"*:80\"", "\"127.0.0.1:0\"")
        .replace("\"*:8080\"", "\"127.0.0.1:0\"")
        .replace("ipv4@127.0.0.1:9999", "./api.sock")
        .replace("/var/run/haproxy.sock", sock.to_str().unwrap());
    let corral = Corral::try_start_with(&yaml, |cmd| {
        cmd.arg("--peer-name").arg("lb1");
    })
    .unwrap_or_else(|e| panic!("{e}\n---\n{yaml}"));
    let addr = corral.addr("haproxy_frontend");

    // `balance source` plus `stick on src`: each client address stays on
    // one server, and the clients spread over both.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in 1..=16 {
        let src = format!("127.0.9.{i}");
        let first = tcp_name(addr, &src);
        assert!(first == "server1" || first == "server2", "{first:?}");
        for _ in 0..3 {
            assert_eq!(tcp_name(addr, &src), first, "{src} moved");
        }
        *seen.entry(first).or_default() += 1;
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // The stick table remembers every client, with its server. Entries
    // reach the table's owner over the cross-core channel, so the API is
    // asked again (bounded) until all have arrived.
    let deadline = std::time::Instant::now() + WAIT;
    let table = loop {
        let (_, table, err) = run_cmd(&[
            "ctl",
            "--socket",
            sock.to_str().unwrap(),
            "show",
            "table",
            "haproxy_backend",
        ]);
        if table.contains("used:16") || std::time::Instant::now() > deadline {
            break format!("{table}{err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(table.contains("used:16"), "{table}");
    assert_eq!(table.matches("server_id=").count(), 16, "{table}");

    // The dashboard of the `stats` frontend, at the seed's /stats.
    let page = get(corral.addr("stats"), "/stats", "lb");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("haproxy_backend"));
}
