//! Large bodies stream through HTTP mode with bounded proxy memory: a
//! 64 MiB chunked upload and a 64 MiB chunked download, each verified by
//! checksum, while corral's resident memory grows by less than 16 MiB.

mod common;
use common::http::*;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;

const SIZE: u64 = 64 << 20;

/// (VmRSS, VmHWM) of a process, in KiB.
fn memory(pid: i32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn config(server: &HttpServer) -> String {
    format!(
        "global: {{ workers: 1 }}\ndefaults:\n  mode: http\n  timeout: {{ connect: 1s, client: 20s, server: 20s }}\nfrontends:\n  web: {{ bind: \"127.0.0.1:0\", default_backend: app }}\nbackends:\n  app:\n    servers:\n      s1: {{ address: \"{}\" }}\n",
        server.addr()
    )
}

/// Warms corral up with a few small requests so its pools exist before
/// the baseline is taken.
fn warm(addr: std::net::SocketAddr) {
    let mut c = Client::connect(addr);
    for _ in 0..5 {
        assert_eq!(c.get("/warm", "a").status, 200);
    }
}

#[test]
fn a_64_mib_chunked_upload_streams_with_bounded_memory() {
    let server = HttpServer::start(Arc::new(|req| {
        Reply::text(200, &format!("{} {:x}", req.body_len, req.body_sum))
    }));
    let corral = Corral::start(&config(&server));
    let addr = corral.addr("web");
    warm(addr);
    let (baseline, _) = memory(corral.serving_pid());

    let stream = connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        writer
            .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        let mut state = 11u64;
        let mut sum = FNV_START;
        let mut buf = vec![0u8; 100_000];
        let mut left = SIZE;
        while left > 0 {
            let n = (buf.len() as u64).min(left) as usize;
            generate(&mut state, &mut buf[..n]);
            fnv(&mut sum, &buf[..n]);
            writer.write_all(format!("{n:x}\r\n").as_bytes()).unwrap();
            writer.write_all(&buf[..n]).unwrap();
            writer.write_all(b"\r\n").unwrap();
            left -= n as u64;
        }
        writer.write_all(b"0\r\n\r\n").unwrap();
        sum
    });
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let sent_sum = sender.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut rest = String::new();
    loop {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        if l == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; format!("{SIZE} {sent_sum:x}").len()];
    reader.read_exact(&mut body).unwrap();
    rest.push_str(&String::from_utf8_lossy(&body));
    assert_eq!(
        rest,
        format!("{SIZE} {sent_sum:x}"),
        "the server got every byte, in order"
    );
    let (_, peak) = memory(corral.serving_pid());
    let growth = peak.saturating_sub(baseline);
    assert!(growth < 16 * 1024, "RSS grew by {growth} KiB");
}

#[test]
fn a_64_mib_chunked_download_streams_with_bounded_memory() {
    let server = HttpServer::start(Arc::new(|req| {
        if req.target == "/big" {
            Reply::with(Body::Generated {
                len: SIZE,
                chunked: true,
            })
        } else {
            Reply::text(200, "ok")
        }
    }));
    let corral = Corral::start(&config(&server));
    let addr = corral.addr("web");
    warm(addr);
    let (baseline, _) = memory(corral.serving_pid());

    // The expected bytes, generated the way the server does.
    let mut expected = FNV_START;
    let mut state = 7u64;
    let mut buf = vec![0u8; 256 << 10];
    let mut left = SIZE;
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        generate(&mut state, &mut buf[..n]);
        fnv(&mut expected, &buf[..n]);
        left -= n as u64;
    }

    let mut c = Client::connect(addr);
    c.send(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body.len() as u64, SIZE);
    let mut got = FNV_START;
    fnv(&mut got, &r.body);
    assert_eq!(got, expected, "checksum differs");
    let (_, peak) = memory(corral.serving_pid());
    let growth = peak.saturating_sub(baseline);
    assert!(growth < 16 * 1024, "RSS grew by {growth} KiB");
    // The connection is still usable.
    assert_eq!(c.get("/after", "a").text(), "ok");
}
