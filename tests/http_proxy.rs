//! HTTP mode end to end: keep-alive, pooling, bodies in every framing,
//! errors, 100-continue, WebSocket.

mod common;
use common::http::*;
use common::*;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn one_backend(server: &HttpServer, extra_fe: &str, extra_be: &str, timeouts: &str) -> String {
    format!(
        "global: {{ workers: 1, log: stdout }}\ndefaults:\n  mode: http\n  timeout: {timeouts}\nfrontends:\n  web:\n    bind: \"127.0.0.1:0\"\n    default_backend: app\n{extra_fe}backends:\n  app:\n{extra_be}    servers:\n      s1: {{ address: \"{}\" }}\n",
        server.addr()
    )
}

const T: &str = "{ connect: 1s, client: 10s, server: 10s }";

#[test]
fn a_thousand_requests_on_one_client_connection_use_one_server_connection() {
    let server = HttpServer::named("s1");
    let corral = Corral::start(&one_backend(&server, "", "", T));
    let mut c = Client::connect(corral.addr("web"));
    for i in 0..1000 {
        let r = c.get(&format!("/r{i}"), "example.com");
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.text(), "hello from s1\n");
    }
    assert_eq!(server.count(), 1000);
    assert_eq!(server.server.accepted(), 1, "one pooled server connection");
    assert!(server.recorded().iter().all(|r| r.conn == 0));
}

#[test]
fn a_pooled_connection_the_server_closed_is_replaced_without_a_client_error() {
    // The server closes its side after every second response, without
    // saying so: the pooled connection is dead when corral next wants it.
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = HttpServer::start(Arc::new(move |_| {
        let k = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut r = Reply::text(200, "ok");
        r.close = false;
        if k % 2 == 1 {
            r.body = Body::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec());
        }
        r
    }));
    let corral = Corral::start(&one_backend(&server, "", "", T));
    let mut c = Client::connect(corral.addr("web"));
    for i in 0..40 {
        let r = c.get("/x", "example.com");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "request {i}");
    }
    assert!(
        server.server.accepted() >= 20,
        "{} server connections",
        server.server.accepted()
    );
}

#[test]
fn keep_alive_and_close_semantics() {
    let server = HttpServer::named("s1");
    let corral = Corral::start(&one_backend(&server, "", "", T));
    // HTTP/1.0 without keep-alive: closed after the response.
    let mut c = Client::connect(corral.addr("web"));
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());
    // HTTP/1.0 with keep-alive: kept.
    let mut c = Client::connect(corral.addr("web"));
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response(false).unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = c.response(false).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());
}

#[test]
fn hop_by_hop_headers_do_not_cross() {
    let server = HttpServer::start(Arc::new(|_| {
        let mut r = Reply::text(200, "x");
        r.headers.push(("Keep-Alive".into(), "timeout=5".into()));
        r.headers
            .push(("Connection".into(), "X-Server-Secret".into()));
        r.headers.push(("X-Server-Secret".into(), "s".into()));
        r
    }));
    let corral = Corral::start(&one_backend(&server, "", "", T));
    let mut c = Client::connect(corral.addr("web"));
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\n");
    let r = c.response(false).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.header("keep-alive").is_none() && r.header("x-server-secret").is_none(),
        "{}",
        r.raw_head
    );
    let rec = &server.recorded()[0];
    for h in [
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "connection",
    ] {
        assert!(
            rec.header(h).is_none(),
            "{h} reached the server: {:?}",
            rec.headers
        );
    }
    assert_eq!(rec.header("x-kept"), Some("yes"));
}

#[test]
fn bodies_in_every_framing_reach_both_ways() {
    let server = HttpServer::start(Arc::new(|req| match req.target.as_str() {
        "/chunks" => Reply::with(Body::Chunks(
            vec![b"hello ".to_vec(), b"world".to_vec()],
            vec![("X-Trailer".into(), "t".into())],
        )),
        "/close" => Reply::with(Body::UntilClose(b"until close".to_vec())),
        "/nocontent" => {
            let mut r = Reply::text(204, "");
            r.body = Body::Bytes(Vec::new());
            r
        }
        _ => Reply::text(200, &format!("got {} bytes", req.body_len)),
    }));
    let corral = Corral::start(&one_backend(&server, "", "", T));
    let addr = corral.addr("web");
    let mut c = Client::connect(addr);
    c.send(b"POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
    assert_eq!(c.response(false).unwrap().text(), "got 11 bytes");
    c.send(b"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n");
    assert_eq!(c.response(false).unwrap().text(), "got 11 bytes");
    assert_eq!(server.recorded()[1].body, b"hello world");
    let r = c.get("/chunks", "a");
    assert_eq!(r.text(), "hello world");
    assert!(
        r.headers
            .iter()
            .any(|(n, v)| n == "trailer" && v == "X-Trailer: t"),
        "trailers passed: {:?}",
        r.headers
    );
    c.send(b"HEAD /len HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response(true).unwrap();
    assert_eq!((r.status, r.header("content-length")), (200, Some("11")));
    let r = c.get("/nocontent", "a");
    assert_eq!(r.status, 204);
    // Still in sync after HEAD and 204:
    assert_eq!(c.get("/x", "a").text(), "got 0 bytes");
    // A read-until-close response ends the client connection too.
    let r = c.get("/close", "a");
    assert_eq!(r.text(), "until close");
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn an_http10_client_gets_a_chunked_response_unchunked() {
    let server = HttpServer::start(Arc::new(|_| {
        Reply::with(Body::Chunks(vec![b"ab".to_vec(), b"cd".to_vec()], vec![]))
    }));
    let corral = Corral::start(&one_backend(&server, "", "", T));
    let r = raw(corral.addr("web"), b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(r.text(), "abcd");
    assert!(r.header("transfer-encoding").is_none());
}

#[test]
fn failures_map_to_haproxy_statuses() {
    // 503: no server can be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let yaml = format!(
        "global: {{ workers: 1 }}\ndefaults:\n  mode: http\n  retries: 1\n  timeout: {{ connect: 200ms, client: 5s, server: 300ms }}\nfrontends:\n  web: {{ bind: \"127.0.0.1:0\", default_backend: app }}\nbackends:\n  app:\n    servers:\n      gone: {{ address: \"{dead}\" }}\n"
    );
    let corral = Corral::start(&yaml);
    let r = get(corral.addr("web"), "/", "a");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("503 Service Unavailable"));
    drop(corral);

    // 504: the server is too slow; 502: it answers garbage or closes early.
    let server = HttpServer::start(Arc::new(|req| match req.target.as_str() {
        "/slow" => {
            let mut r = Reply::text(200, "late");
            r.delay = Duration::from_millis(1500);
            r
        }
        "/garbage" => Reply::with(Body::Raw(b"HTTP/1.1 2OO OK\r\n\r\n".to_vec())),
        "/cut" => Reply::with(Body::Raw(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec())),
        "/both" => Reply::with(Body::Raw(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok"
                .to_vec(),
        )),
        _ => Reply::text(200, "ok"),
    }));
    let corral = Corral::start(&one_backend(
        &server,
        "",
        "",
        "{ connect: 1s, client: 5s, server: 400ms }",
    ));
    let addr = corral.addr("web");
    let started = Instant::now();
    assert_eq!(get(addr, "/slow", "a").status, 504);
    assert!(started.elapsed() < Duration::from_millis(1400));
    assert_eq!(get(addr, "/garbage", "a").status, 502);
    assert_eq!(get(addr, "/cut", "a").status, 502);
    assert_eq!(get(addr, "/both", "a").status, 502);
    assert_eq!(get(addr, "/fine", "a").status, 200);
}

#[test]
fn expect_100_continue_goes_through() {
    let server = HttpServer::start(Arc::new(|req| {
        Reply::text(200, &format!("got {} bytes", req.body_len))
    }));
    let corral = Corral::start(&one_backend(&server, "", "", T));
    let mut c = Client::connect(corral.addr("web"));
    c.send(b"PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.response(false).unwrap();
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    let r = c.response(false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "got 5 bytes"));
}

#[test]
fn websocket_echo_through_the_proxy() {
    let server = HttpServer::start(Arc::new(|req| {
        if req
            .header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        {
            Reply::with(Body::UpgradeEcho)
        } else {
            Reply::text(400, "not a websocket")
        }
    }));
    let corral = Corral::start(&one_backend(&server, "", "", T));
    let mut c = Client::connect(corral.addr("web"));
    c.send(b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let r = c.response(true).unwrap();
    assert_eq!(r.status, 101);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    let rec = &server.recorded()[0];
    assert_eq!(rec.header("upgrade"), Some("websocket"));
    assert!(rec.header("sec-websocket-key").is_some());
    // A masked text frame "hi" and its echo, byte for byte, then more.
    let frame = [0x81u8, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    for _ in 0..3 {
        c.stream.write_all(&frame).unwrap();
        let mut back = [0u8; 8];
        c.stream.read_exact(&mut back).unwrap();
        assert_eq!(back, frame);
    }
}
