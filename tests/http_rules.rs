//! Conditions and rules end to end: ACL matching on paths, headers and
//! addresses, every request action, response rules, forwardfor, captures,
//! unique ids, the httplog line, and condition errors in the config.

mod common;
use common::http::*;
use common::*;
use std::sync::Arc;

/// A server that answers with the request's target and the headers it got.
fn mirror() -> HttpServer {
    HttpServer::start(Arc::new(|req| {
        let mut text = format!("{} {}\n", req.method, req.target);
        for (n, v) in &req.headers {
            text.push_str(&format!("{n}: {v}\n"));
        }
        let mut r = Reply::text(200, &text);
        r.headers.push(("Server".into(), "mirror/1.0".into()));
        r.headers.push(("X-Internal".into(), "secret".into()));
        r
    }))
}

fn config(server: &HttpServer, frontend: &str) -> String {
    format!(
        "global: {{ workers: 1, log: stdout }}\ndefaults:\n  mode: http\n  timeout: {{ connect: 1s, client: 5s, server: 5s }}\nfrontends:\n  web:\n    bind: \"127.0.0.1:0\"\n    default_backend: app\n{frontend}backends:\n  app:\n    servers:\n      s1: {{ address: \"{}\" }}\n",
        server.addr()
    )
}

#[test]
fn request_actions_rewrite_what_the_server_sees() {
    let server = mirror();
    let corral = Corral::start(&config(
        &server,
        "    acl:\n      lan: src 127.0.0.0/8\n      api: path_beg /api/\n    http-request:\n      - set-header X-Client-IP %[src]\n      - add-header X-Seen yes if lan\n      - del-header X-Remove-Me\n      - replace-header X-Version ^v(\\d+)$ version-\\1\n      - set-path /v2%[path] if api\n      - set-query debug=1 if { path_end .json }\n      - return status 200 content-type text/plain string pong if { path /ping }\n      - redirect prefix https://new.example.com code 301 if { hdr(host) -i old.example.com }\n      - redirect scheme https if { path_beg /secure }\n      - deny status 429 if { hdr_cnt(x-flood) gt 1 }\n",
    ));
    let addr = corral.addr("web");
    let mut c = Client::connect(addr);
    c.send(b"GET /api/users?x=1 HTTP/1.1\r\nHost: a\r\nX-Remove-Me: 1\r\nX-Version: v3\r\n\r\n");
    let text = c.response(false).unwrap().text();
    assert!(text.starts_with("GET /v2/api/users?x=1\n"), "{text}");
    assert!(text.contains("X-Client-IP: 127.0.0.1\n"), "{text}");
    assert!(text.contains("X-Seen: yes\n"), "{text}");
    assert!(text.contains("X-Version: version-3\n"), "{text}");
    assert!(!text.contains("X-Remove-Me"), "{text}");

    let text = c.get("/data.json?old=1", "a").text();
    assert!(text.starts_with("GET /data.json?debug=1\n"), "{text}");

    let r = c.get("/ping", "a");
    assert_eq!(
        (r.status, r.text().as_str(), r.header("content-type")),
        (200, "pong", Some("text/plain"))
    );

    let r = c.get("/page?q=2", "old.example.com");
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("https://new.example.com/page?q=2"))
    );

    let r = c.get("/secure/x", "shop.example.com:8080");
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("https://shop.example.com/secure/x"))
    );

    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Flood: 1, 2\r\n\r\n");
    assert_eq!(c.response(false).unwrap().status, 429);
    assert!(c.closed(), "a denied request closes the connection");
    // The replies from rules never reached the server.
    assert_eq!(server.count(), 2);
}

#[test]
fn response_rules_and_captures_and_the_httplog_line() {
    let server = mirror();
    let corral = Corral::start(&config(
        &server,
        "    capture: [ \"request header Host len 8\", \"response header Server len 20\" ]\n    http-response:\n      - del-header X-Internal\n      - set-header X-Frame-Options DENY\n      - deny if { status 404 }\n    unique-id-format: \"%ci-%[req.hdr(x-trace)]\"\n    unique-id-header: X-Request-ID\n",
    ));
    let addr = corral.addr("web");
    let mut c = Client::connect(addr);
    c.send(b"GET /hello HTTP/1.1\r\nHost: a-very-long-host.example\r\nX-Trace: t42\r\n\r\n");
    let r = c.response(false).unwrap();
    assert_eq!(r.header("x-internal"), None);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(
        r.text().contains("X-Request-ID: 127.0.0.1-t42\n"),
        "{}",
        r.text()
    );
    let line = corral
        .stdout
        .wait_for("\"GET /hello HTTP/1.1\"", WAIT)
        .expect("httplog line");
    // ip:port [date] web app/s1 TR/Tw/Tc/Tr/Ta 200 bytes - - ---- counters queues {host} {server} "request"
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[2], "web");
    assert_eq!(fields[3], "app/s1");
    assert_eq!(fields[4].split('/').count(), 5);
    assert_eq!(fields[5], "200");
    assert_eq!(&fields[7..10], ["-", "-", "----"]);
    assert!(
        line.contains(" {a-very-l} {mirror/1.0} \"GET /hello HTTP/1.1\""),
        "{line}"
    );
}

#[test]
fn forwardfor_except_and_errorfiles_per_section() {
    let server = mirror();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("503.http");
    std::fs::write(
        &file,
        "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy",
    )
    .unwrap();
    let yaml = format!(
        "global: {{ workers: 1 }}\ndefaults:\n  mode: http\nfrontends:\n  web:\n    bind: \"127.0.0.1:0\"\n    option: [\"forwardfor except 127.0.0.2\"]\n    errorfiles: {{ 503: {} }}\n    acl:\n      empty: path_beg /empty\n    use_backend:\n      - nobody if empty\n    default_backend: app\nbackends:\n  app:\n    servers:\n      s1: {{ address: \"{}\" }}\n  nobody:\n    servers: {{}}\n",
        file.display(),
        server.addr()
    );
    let corral = Corral::start(&yaml);
    let addr = corral.addr("web");
    let a = Client::from(connect_from("127.0.0.1".parse().unwrap(), addr).unwrap())
        .get("/", "a")
        .text();
    assert!(a.contains("X-Forwarded-For: 127.0.0.1\n"), "{a}");
    let b = Client::from(connect_from("127.0.0.2".parse().unwrap(), addr).unwrap())
        .get("/", "a")
        .text();
    assert!(!b.contains("X-Forwarded-For"), "excepted network: {b}");
    let r = get(addr, "/empty", "a");
    assert_eq!((r.status, r.text().as_str()), (503, "busy"));
}

#[test]
fn a_bad_condition_is_a_config_error_at_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "defaults:\n  mode: http\nfrontends:\n  web:\n    bind: \"127.0.0.1:0\"\n    http-request:\n      - deny if { path_beg -q /admin }\n    default_backend: app\nbackends:\n  app:\n    servers: {}\n",
    )
    .unwrap();
    let (status, _, stderr) = run_cmd(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    let first = stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "{}:7:28: frontends.web.http-request[0]: ",
            path.display()
        )),
        "{first}"
    );
    assert!(first.contains("-q"), "names the offending token: {first}");
}
