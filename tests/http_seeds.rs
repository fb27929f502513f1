//! The layer-7 scenarios of seeds 002, 003 and 004, driven end to end from
//! the configurations in examples/ (only addresses are changed to the test
//! servers', and one timeout where the test needs a short one).

mod common;
use common::http::*;
use common::*;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A server that answers with its name and records what it got.
fn named(name: &'static str) -> HttpServer {
    HttpServer::start(Arc::new(move |_| Reply::text(200, name)))
}

fn from(addr: std::net::SocketAddr, src: &str, path: &str, host: &str) -> Response {
    let s = connect_from(src.parse::<IpAddr>().unwrap(), addr).unwrap();
    let mut c = Client::from(s);
    c.get(path, host)
}

#[test]
fn seed_002_host_routing_alternates_sites_and_passes_the_client_ip() {
    let (site1, site2) = (named("SITE1"), named("SITE2"));
    let errors = format!("{}/examples/seed-002-errors/", env!("CARGO_MANIFEST_DIR"));
    let yaml = example("seed-002-lxd-host-routing.yaml")
        .replace("192.168.1.150:80", &site1.addr().to_string())
        .replace("192.168.1.101:80", &site2.addr().to_string())
        .replace("\"*:80\"", "\"127.0.0.1:0\"")
        .replace("seed-002-errors/", &errors);
    let corral = Corral::start(&yaml);
    let addr = corral.addr("http_frontend");

    // As a browser does: one keep-alive connection, the page reloaded.
    // Round robin is per request (and per worker), so the page switches
    // each time.
    for host in ["site1.testdomain.com", "SITE2.testdomain.com:80"] {
        let mut browser = Client::from(connect_from("127.0.8.1".parse().unwrap(), addr).unwrap());
        let pages: Vec<String> = (0..4).map(|_| browser.get("/", host).text()).collect();
        let first = &pages[0];
        let other = if first == "SITE1" { "SITE2" } else { "SITE1" };
        assert_eq!(
            pages,
            [first.as_str(), other, first, other],
            "{host}: both sites in each other's round robin"
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
    // http-server-close: every request reached its server on a connection
    // of its own (none was kept for reuse).
    for site in [&site1, &site2] {
        let conns: Vec<usize> = site.recorded().iter().map(|r| r.conn).collect();
        let mut distinct = conns.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), conns.len(), "{conns:?}");
    }

    // No backend for an unknown Host: the seed's own 503 page, byte for
    // byte as the file is written (LF line endings and all).
    let mut c = connect(addr);
    std::io::Write::write_all(&mut c, b"GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n").unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut c, &mut got).unwrap();
    let file = std::fs::read(format!("{errors}503.http")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&file)
    );
}

#[test]
fn seed_003_static_paths_go_to_the_static_server() {
    let (static1, dynamic1) = (named("static"), named("dynamic"));
    let yaml = example("seed-003-l7-static-dynamic.yaml")
        .replace("127.0.0.1:5001", &static1.addr().to_string())
        .replace("127.0.0.1:5002", &dynamic1.addr().to_string())
        .replace("\"*:80\"", "\"127.0.0.1:0\"");
    let corral = Corral::start(&yaml);
    let addr = corral.addr("http_front");
    assert_eq!(get(addr, "/static/logo.png", "fitguru").text(), "static");
    assert_eq!(get(addr, "/static", "fitguru").text(), "static");
    assert_eq!(get(addr, "/", "fitguru").text(), "dynamic");
    assert_eq!(get(addr, "/api/data", "fitguru").text(), "dynamic");
    assert_eq!(
        get(addr, "/staticfile", "fitguru").text(),
        "static",
        "path_beg is a prefix match"
    );
    assert_eq!(
        static1
            .recorded()
            .iter()
            .map(|r| r.target.as_str())
            .collect::<Vec<_>>(),
        ["/static/logo.png", "/static", "/staticfile"]
    );
}

fn seed_004(servers: &[HttpServer; 4], tweak: impl Fn(String) -> String) -> Corral {
    let mut yaml =
        example("seed-004-docker-light-heavy.yaml").replace("\"*:8000\"", "\"127.0.0.1:0\"");
    for (i, s) in servers.iter().enumerate() {
        yaml = yaml.replace(&format!("127.0.0.1:800{}", i + 1), &s.addr().to_string());
    }
    Corral::start(&tweak(yaml))
}

#[test]
fn seed_004_light_heavy_admin_and_the_rest() {
    let servers = [
        named("server1"),
        named("server2"),
        named("server3"),
        named("server4"),
    ];
    let corral = seed_004(&servers, |y| y);
    let addr = corral.addr("clients");

    let mut c = Client::connect(addr);
    let light: Vec<String> = (0..4).map(|_| c.get("/lightwork", "app").text()).collect();
    assert_eq!(
        light.iter().filter(|n| *n == "server1").count(),
        2,
        "{light:?}"
    );
    assert_eq!(
        light.iter().filter(|n| *n == "server2").count(),
        2,
        "{light:?}"
    );

    // heavy: every client IP sticks to one of server3/server4.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in 1..=20 {
        let src = format!("127.0.9.{i}");
        let first = from(addr, &src, "/heavywork", "app").text();
        for _ in 0..4 {
            assert_eq!(
                from(addr, &src, "/x/HEAVYWORK", "app").text(),
                first,
                "{src} moved"
            );
        }
        assert!(first == "server3" || first == "server4");
        *seen.entry(first).or_default() += 1;
    }
    assert_eq!(
        seen.len(),
        2,
        "clients spread over both heavy servers: {seen:?}"
    );

    for path in ["/admin", "/admin/settings", "/ADMIN"] {
        let r = get(addr, path, "app");
        assert_eq!(r.status, 403, "{path}");
    }
    let before: usize = servers.iter().map(|s| s.count()).sum();
    let mut c = Client::connect(addr);
    let all: Vec<String> = (0..4).map(|_| c.get("/", "app").text()).collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["server1", "server2", "server3", "server4"],
        "{all:?}"
    );
    let after: usize = servers.iter().map(|s| s.count()).sum();
    assert_eq!(
        after - before,
        4,
        "the denied requests never reached a server"
    );
}

#[test]
fn seed_004_each_backend_keeps_its_own_server_timeout() {
    let slow = || {
        HttpServer::start(Arc::new(|_| {
            let mut r = Reply::text(200, "done");
            r.delay = Duration::from_millis(700);
            r
        }))
    };
    let servers = [slow(), slow(), slow(), slow()];
    // The light backend's 10s becomes 300ms; the heavy one keeps 120s.
    let corral = seed_004(&servers, |y| {
        y.replacen(
            "timeout: { connect: 10s, server: 10s }",
            "timeout: { connect: 10s, server: 300ms }",
            1,
        )
    });
    let addr = corral.addr("clients");
    assert_eq!(get(addr, "/lightwork", "app").status, 504);
    let r = get(addr, "/heavywork", "app");
    assert_eq!((r.status, r.text().as_str()), (200, "done"));
}
