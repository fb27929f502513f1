//! The TCP relay end to end: half-close, inactivity timeouts, queueing
//! under server maxconn, frontend maxconn, and a 256 MiB transfer
//! verified byte for byte.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn one_server(
    server: &common::Server,
    extra_backend: &str,
    timeouts: &str,
    extra_fe: &str,
) -> String {
    format!(
        "global: {{ workers: 1, log: stdout }}\ndefaults:\n  timeout: {timeouts}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be{extra_fe} }}\nbackends:\n  be:\n{extra_backend}    servers:\n      s: {{ address: \"{}\" }}\n",
        server.addr
    )
}

const TIMEOUTS: &str = "{ connect: 1s, client: 10s, server: 10s }";

/// Reads until end-of-stream (bounded by the socket's read timeout).
fn read_to_end(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn half_close_passes_the_fin_and_the_other_direction_keeps_flowing() {
    // The server reads everything until end-of-stream, *then* answers.
    let server = Server::start(Arc::new(|mut s: TcpStream| {
        let _ = s.set_read_timeout(Some(WAIT));
        let mut got = Vec::new();
        if s.read_to_end(&mut got).is_ok() {
            let _ = write!(
                s,
                "got {} bytes: {}",
                got.len(),
                String::from_utf8_lossy(&got)
            );
        }
    }));
    let corral = Corral::start(&one_server(&server, "", TIMEOUTS, ""));
    let mut c = connect(corral.addr("fe"));
    c.write_all(b"hello, half-closed world").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let reply = read_to_end(&mut c).unwrap();
    assert_eq!(reply, b"got 24 bytes: hello, half-closed world");
}

#[test]
fn client_timeout_cuts_a_silent_connection() {
    let server = silent_server();
    let corral = Corral::start(&one_server(
        &server,
        "",
        "{ connect: 1s, client: 300ms, server: 10s }",
        "",
    ));
    let mut c = connect(corral.addr("fe"));
    let started = Instant::now();
    assert_eq!(read_to_end(&mut c).unwrap(), b"");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let line = corral.stdout.wait_for(" fe be/s ", WAIT).expect("log line");
    assert!(line.contains(" cD "), "{line}");
}

#[test]
fn server_timeout_cuts_a_silent_server() {
    let server = silent_server();
    let corral = Corral::start(&one_server(
        &server,
        "",
        "{ connect: 1s, client: 10s, server: 300ms }",
        "",
    ));
    let mut c = connect(corral.addr("fe"));
    c.write_all(b"request").unwrap();
    let started = Instant::now();
    assert_eq!(read_to_end(&mut c).unwrap(), b"");
    assert!(started.elapsed() < Duration::from_secs(2));
    let line = corral.stdout.wait_for(" fe be/s ", WAIT).expect("log line");
    assert!(line.contains(" sD "), "{line}");
}

#[test]
fn traffic_one_way_keeps_a_quiet_client_alive() {
    // The server trickles 12 bytes over ~1.2 s; the client never sends,
    // and its timeout is 300 ms: inactivity, not silence, ends a session.
    let server = Server::start(Arc::new(|mut s: TcpStream| {
        for i in 0..12u8 {
            std::thread::sleep(Duration::from_millis(100));
            if s.write_all(&[b'a' + i]).is_err() {
                return;
            }
        }
    }));
    let corral = Corral::start(&one_server(
        &server,
        "",
        "{ connect: 1s, client: 300ms, server: 5s }",
        "",
    ));
    let mut c = connect(corral.addr("fe"));
    assert_eq!(read_to_end(&mut c).unwrap(), b"abcdefghijkl");
}

#[test]
fn connections_queue_for_a_full_server_and_time_out_in_the_queue() {
    let server = name_server("s");
    let yaml = one_server(&server, "    timeout: { queue: 700ms }\n", TIMEOUTS, "")
        .replace("s: { address:", "s: { maxconn: 1, address:");
    let corral = Corral::start(&yaml);
    let proxy = corral.addr("fe");
    let first = connect(proxy);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&first), &mut line).unwrap();
    assert_eq!(line, "s\n");

    // The second waits in the queue, and is served as soon as the first leaves.
    let mut second = connect(proxy);
    second
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert!(
        second.read(&mut buf).is_err(),
        "served while the server was full"
    );
    drop(first);
    second.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(second.read(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"s\n");

    // A third, with the server still full, gives up after timeout queue.
    let mut third = connect(proxy);
    let started = Instant::now();
    assert_eq!(read_to_end(&mut third).unwrap(), b"");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(650) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let log = corral
        .stdout
        .wait_for(" sQ ", WAIT)
        .expect("a queue-timeout log line");
    assert!(log.contains("be/<NOSRV>") || log.contains("be/s"), "{log}");
    drop(second);
}

#[test]
fn frontend_maxconn_stops_accepting_instead_of_failing() {
    let server = name_server("s");
    let corral = Corral::start(&one_server(&server, "", TIMEOUTS, ", maxconn: 2"));
    let proxy = corral.addr("fe");
    let hold: Vec<TcpStream> = (0..2)
        .map(|_| {
            let s = connect(proxy);
            let mut b = [0u8; 2];
            (&s).read_exact(&mut b).unwrap();
            s
        })
        .collect();
    // The third connection is not refused: it waits in the backlog.
    let mut third = connect(proxy);
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 2];
    assert!(third.read_exact(&mut b).is_err(), "accepted beyond maxconn");
    assert_eq!(server.accepted(), 2);
    drop(hold);
    third.set_read_timeout(Some(WAIT)).unwrap();
    third.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"s\n");
}

/// xorshift64*: a fast, deterministic stream of test bytes.
fn fill(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// FNV-1a over a stream, 64-bit.
#[derive(Clone, Copy)]
struct Fnv(u64);
impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[test]
fn a_256_mib_echo_arrives_byte_for_byte() {
    const TOTAL: usize = 256 << 20;
    let server = echo_server();
    let corral = Corral::start(&one_server(&server, "", TIMEOUTS, ""));
    let c = connect(corral.addr("fe"));
    let mut writer = c.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut sum = Fnv::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut sent = 0;
        while sent < TOTAL {
            let n = buf.len().min(TOTAL - sent);
            fill(&mut state, &mut buf[..n]);
            sum.update(&buf[..n]);
            writer.write_all(&buf[..n]).unwrap();
            sent += n;
        }
        writer.shutdown(Shutdown::Write).unwrap();
        sum.0
    });
    let mut reader = c;
    let mut sum = Fnv::new();
    let mut received = 0usize;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        sum.update(&buf[..n]);
        received += n;
    }
    let sent_sum = sender.join().unwrap();
    assert_eq!(received, TOTAL);
    assert_eq!(sum.0, sent_sum, "checksum differs");
    let line = corral.stdout.wait_for(" fe be/s ", WAIT).expect("log line");
    assert!(line.contains(&format!(" {TOTAL} -- ")), "{line}");
}
