//! The peers codec (`corral::peers::wire`) against a real HAProxy 2.6.
//!
//! Each test starts its own HAProxy with a `peers` section naming itself
//! (`hap1`) and this test (`corral`), a backend `app` with
//! `stick on src`, and a backend `counters` storing counters, frequency
//! counters and arrays. Blocking std sockets; every wait has a deadline;
//! HAProxy is killed when the test ends, pass or fail.
mod common;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use corral::wire::{
    DataType, Decoded, Decoder, Encoder, FreqCtr, Hello, HelloParser, Key, KeyType, Message, Parse,
    Status, TableDef, Update, Value, hello, hello_with_version, parse_status,
};

/// Longest wait for any one step.
const STEP: Duration = Duration::from_secs(10);

macro_rules! require_haproxy {
    ($test:literal) => {
        if !common::haproxy::installed() {
            println!("SKIPPED {}: haproxy not installed", $test);
            return;
        }
    };
}

fn deadline() -> Instant {
    Instant::now() + STEP
}

/// A port nobody listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `fd` is readable or the deadline passes.
fn wait_readable(fd: i32, until: Instant) -> bool {
    for _ in 0..1000 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, 60_000) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n > 0 {
            return true;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            return false;
        }
    }
    false
}

/// A backend server: greets each connection with its name, waits for the
/// client to close (at most 2 s), handles at most 16 connections.
struct Backend {
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    fn start(name: &'static str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming().take(16) {
                let Ok(mut s) = conn else { break };
                if s.write_all(format!("{name}\n").as_bytes()).is_err() {
                    continue;
                }
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut sink = [0u8; 256];
                // The stop connection from Drop sends "stop".
                if matches!(s.read(&mut sink), Ok(n) if &sink[..n] == b"stop") {
                    break;
                }
            }
        });
        Backend {
            addr,
            thread: Some(thread),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) {
            let mut greeting = [0u8; 16];
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = s.read(&mut greeting);
            let _ = s.write_all(b"stop");
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A running HAProxy, killed on drop.
struct Haproxy {
    child: Child,
    dir: tempfile::TempDir,
    sock: PathBuf,
    /// HAProxy's own peer port (peer `hap1`).
    peer_addr: SocketAddr,
    /// The TCP frontend in front of backend `app`.
    frontend: SocketAddr,
    _backends: [Backend; 2],
}

impl Haproxy {
    /// Starts HAProxy; the test is peer `corral` at `corral_port`.
    fn start(corral_port: u16) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("admin.sock");
        let backends = [Backend::start("s1"), Backend::start("s2")];
        let peer_port = free_port();
        let fe_port = free_port();
        let cfg = format!(
            "global
    stats socket {sock} level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s

peers hapeers
    peer hap1 127.0.0.1:{peer_port}
    peer corral 127.0.0.1:{corral_port}

backend app
    mode tcp
    balance roundrobin
    stick-table type ip size 1k expire 1h peers hapeers
    stick on src
    server s1 {s1}
    server s2 {s2}

backend counters
    stick-table type string len 32 size 1k expire 10m peers hapeers store server_id,gpc0,conn_rate(10s),bytes_in_cnt,gpt(3),gpc_rate(2,1m)

frontend fe
    bind 127.0.0.1:{fe_port}
    default_backend app
",
            sock = sock.display(),
            s1 = backends[0].addr,
            s2 = backends[1].addr,
        );
        let cfg_path = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = File::create(dir.path().join("haproxy.log")).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .args(["-L", "hap1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut h = Haproxy {
            child,
            dir,
            sock,
            peer_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, peer_port)),
            frontend: SocketAddr::from((Ipv4Addr::LOCALHOST, fe_port)),
            _backends: backends,
        };
        // Ready when the stats socket answers (bounded: 400 x 25 ms).
        let until = deadline();
        for _ in 0..400 {
            if let Ok(Some(status)) = h.child.try_wait() {
                panic!("haproxy exited with {status}:\n{}", h.log());
            }
            if h.try_cli("show info")
                .is_some_and(|r| r.contains("Name: HAProxy"))
            {
                return h;
            }
            if Instant::now() > until {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("haproxy not ready within {STEP:?}:\n{}", h.log());
    }

    /// A TCP client from 127.0.0.`last` through the frontend; returns the
    /// name of the server that greeted it.
    fn client_from(&self, last: u8) -> String {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.bind(&SocketAddr::from(([127, 0, 0, last], 0)).into())
            .unwrap();
        sock.connect_timeout(&self.frontend.into(), STEP).unwrap();
        let mut client: TcpStream = sock.into();
        client.set_read_timeout(Some(STEP)).unwrap();
        let mut greeting = [0u8; 3];
        client.read_exact(&mut greeting).unwrap();
        client.shutdown(Shutdown::Both).unwrap();
        let server = String::from_utf8_lossy(&greeting[..2]).into_owned();
        eprintln!("client from 127.0.0.{last} was served by {server}");
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    fn try_cli(&self, cmd: &str) -> Option<String> {
        common::haproxy::cli(&self.sock, cmd)
    }

    fn cli(&self, cmd: &str) -> String {
        self.try_cli(cmd)
            .unwrap_or_else(|| panic!("stats socket: {cmd}"))
    }

    /// Runs `cmd` until `ok` holds (bounded: 200 x 50 ms), sending a
    /// heartbeat on `peer` meanwhile so HAProxy keeps the session.
    fn cli_until(
        &self,
        cmd: &str,
        mut peer: Option<&mut PeerConn>,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let until = deadline();
        let mut last = String::new();
        for _ in 0..200 {
            last = self.cli(cmd);
            if ok(&last) {
                return last;
            }
            if Instant::now() > until {
                break;
            }
            if let Some(p) = peer.as_deref_mut() {
                p.send(&[Message::Heartbeat]);
                p.drain(Duration::from_millis(50));
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "`{cmd}` never matched; last answer:\n{last}\nhaproxy log:\n{}",
            self.log()
        );
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One peers connection: a socket, a receive buffer, the codec state.
struct PeerConn {
    s: TcpStream,
    buf: Vec<u8>,
    dec: Decoder,
    enc: Encoder,
    /// Every message received, in order.
    seen: Vec<Message>,
}

enum Fill {
    Data,
    Eof,
    Timeout,
}

impl PeerConn {
    fn new(s: TcpStream) -> PeerConn {
        PeerConn {
            s,
            buf: Vec::new(),
            dec: Decoder::new(),
            enc: Encoder::new(),
            seen: Vec::new(),
        }
    }

    fn fill(&mut self, until: Instant) -> Fill {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Fill::Timeout;
        }
        self.s.set_read_timeout(Some(left)).unwrap();
        let mut tmp = [0u8; 4096];
        match self.s.read(&mut tmp) {
            Ok(0) => Fill::Eof,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Fill::Data
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Fill::Timeout
            }
            Err(_) => Fill::Eof,
        }
    }

    fn read_hello(&mut self) -> Hello {
        let until = deadline();
        for _ in 0..100 {
            match HelloParser::new().parse(&self.buf) {
                Ok(Parse::Done { value, consumed }) => {
                    self.buf.drain(..consumed);
                    return value;
                }
                Ok(Parse::Incomplete) => {}
                Err(e) => panic!("bad hello from haproxy: {e}"),
            }
            if !matches!(self.fill(until), Fill::Data) {
                break;
            }
        }
        panic!("no hello; got {:?}", String::from_utf8_lossy(&self.buf));
    }

    /// The status line, or `None` if HAProxy closed before sending one.
    fn read_status(&mut self) -> Option<Status> {
        let until = deadline();
        for _ in 0..100 {
            match parse_status(&self.buf) {
                Ok(Parse::Done { value, consumed }) => {
                    self.buf.drain(..consumed);
                    return Some(value);
                }
                Ok(Parse::Incomplete) => {}
                Err(e) => panic!("{e}: {:?}", String::from_utf8_lossy(&self.buf)),
            }
            if !matches!(self.fill(until), Fill::Data) {
                return None;
            }
        }
        None
    }

    /// The next message before `until`, `None` on close or timeout.
    fn recv(&mut self, until: Instant) -> Option<Message> {
        for _ in 0..10_000 {
            match self.dec.decode(&self.buf) {
                Ok(Decoded::Message { msg, consumed }) => {
                    self.buf.drain(..consumed);
                    if msg != Message::Heartbeat {
                        eprintln!("<- {msg:?}");
                    }
                    self.seen.push(msg.clone());
                    return Some(msg);
                }
                Ok(Decoded::Incomplete) => {}
                Err(e) => panic!("haproxy sent something the decoder rejects: {e}"),
            }
            if !matches!(self.fill(until), Fill::Data) {
                return None;
            }
        }
        None
    }

    /// Receives until a message satisfies `pred`.
    fn expect(&mut self, what: &str, mut pred: impl FnMut(&Message) -> bool) -> Message {
        let until = deadline();
        for _ in 0..10_000 {
            match self.recv(until) {
                Some(m) if pred(&m) => return m,
                Some(_) => {}
                None => break,
            }
        }
        panic!(
            "waiting for {what}: closed or timed out; received {:#?}",
            self.seen
        );
    }

    /// Reads whatever arrives during `d`.
    fn drain(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while self.recv(until).is_some() {}
    }

    fn send(&mut self, msgs: &[Message]) {
        let mut out = Vec::new();
        for m in msgs {
            if *m != Message::Heartbeat {
                eprintln!("-> {m:?}");
            }
            self.enc.encode(m, &mut out).unwrap();
        }
        self.s.write_all(&out).unwrap();
    }
}

/// Accepts HAProxy's connection to peer `corral`, checks its hello and
/// answers 200.
fn accept_haproxy(listener: &TcpListener, h: &Haproxy) -> PeerConn {
    if !wait_readable(listener.as_raw_fd(), deadline()) {
        panic!("haproxy never connected to peer corral:\n{}", h.log());
    }
    let (s, _) = listener.accept().unwrap();
    let mut p = PeerConn::new(s);
    let hello = p.read_hello();
    eprintln!("hello from haproxy: {hello:?}");
    assert_eq!(hello.version, (2, 1));
    assert_eq!(hello.remote_name, "corral");
    assert_eq!(hello.peer_name, "hap1");
    assert_eq!(hello.check("corral", |n| n == "hap1"), Status::Success);
    p.s.write_all(&Status::Success.line()).unwrap();
    p
}

/// Connects to HAProxy's peer port, sends `hello_bytes`, returns the status.
fn connect_to_haproxy(h: &Haproxy, hello_bytes: &[u8]) -> (PeerConn, Option<Status>) {
    let s = TcpStream::connect_timeout(&h.peer_addr, STEP).unwrap();
    let mut p = PeerConn::new(s);
    p.s.write_all(hello_bytes).unwrap();
    let status = p.read_status();
    (p, status)
}

fn find_def<'a>(defs: &'a [TableDef], name: &str) -> &'a TableDef {
    defs.iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no definition of {name} in {defs:#?}"))
}

fn check_haproxy_definitions(defs: &[TableDef]) {
    let app = find_def(defs, "app");
    assert_eq!(app.key_type, KeyType::Ipv4);
    assert_eq!(
        app.data_types,
        DataType::ServerId.bit() | DataType::ServerKey.bit()
    );
    assert_eq!(app.expire_ms, Some(3_600_000));
    assert!(app.params.is_empty());
    let counters = find_def(defs, "counters");
    let expected = TableDef::new(
        counters.id,
        "counters",
        KeyType::String { key_size: 33 },
        600_000,
    )
    .with(DataType::ServerId)
    .with(DataType::Gpc0)
    .with_period(DataType::ConnRate, 10_000)
    .with(DataType::BytesInCnt)
    .with_array(DataType::Gpt, 3)
    .with_array_period(DataType::GpcRate, 2, 60_000);
    assert_eq!(counters, &expected);
}

fn definitions(msgs: &[Message]) -> Vec<TableDef> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Define(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn freq(age_ms: u32, curr_ctr: u32, prev_ctr: u32) -> Value {
    Value::Freq(FreqCtr {
        age_ms,
        curr_ctr,
        prev_ctr,
    })
}

/// What `stick on src` stores for a client served by `server`.
fn server_values(server: &str) -> Vec<(DataType, Value)> {
    let id = if server == "s1" { 1 } else { 2 };
    vec![
        (DataType::ServerId, Value::SInt(id)),
        (DataType::ServerKey, Value::Dict(Some(server.to_owned()))),
    ]
}

fn app_def() -> TableDef {
    TableDef::new(1, "app", KeyType::Ipv4, 3_600_000)
        .with(DataType::ServerId)
        .with(DataType::ServerKey)
}

fn app_update(id: u32, incremental: bool, last: u8, sid: i32, server: &str) -> Message {
    Message::Update(Update {
        table_id: 1,
        update_id: id,
        incremental,
        expire_ms: None,
        key: Key::Ipv4(Ipv4Addr::new(127, 0, 0, last)),
        values: vec![
            (DataType::ServerId, Value::SInt(sid)),
            (DataType::ServerKey, Value::Dict(Some(server.into()))),
        ],
        skipped_types: 0,
    })
}

/// Test 1: HAProxy connects to us; we learn its definitions, then teach
/// it entries of both tables and read them back through the stats socket.
#[test]
fn haproxy_connects_and_learns_our_updates() {
    require_haproxy!("haproxy_connects_and_learns_our_updates");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let h = Haproxy::start(listener.local_addr().unwrap().port());
    let mut p = accept_haproxy(&listener, &h);

    // A fresh HAProxy asks its first connected remote peer for a resync.
    let first = p.expect("resync request or heartbeat", |m| {
        matches!(m, Message::ResyncRequest | Message::Heartbeat)
    });
    eprintln!("haproxy's first message: {first:?}");

    // Ask for its content: it defines each table, then ends the (empty)
    // resync with "partial" since it is still learning from us.
    p.send(&[Message::ResyncRequest]);
    let end = p.expect("end of haproxy's resync", |m| {
        matches!(m, Message::ResyncFinished | Message::ResyncPartial)
    });
    eprintln!("haproxy ended its resync with {end:?}");
    p.send(&[Message::ResyncConfirm]);
    check_haproxy_definitions(&definitions(&p.seen));

    // Teach it: two app entries (the second incremental, its server name by
    // dictionary id), one timed counters entry, then end its resync.
    let counters = TableDef::new(2, "counters", KeyType::String { key_size: 33 }, 600_000)
        .with(DataType::ServerId)
        .with(DataType::Gpc0)
        .with_period(DataType::ConnRate, 10_000)
        .with(DataType::BytesInCnt)
        .with_array(DataType::Gpt, 3)
        .with_array_period(DataType::GpcRate, 2, 60_000);
    let alice = Message::Update(Update {
        table_id: 2,
        update_id: 40,
        incremental: false,
        expire_ms: Some(599_000),
        key: Key::String(b"alice".to_vec()),
        values: vec![
            (DataType::ServerId, Value::SInt(-3)),
            (DataType::Gpc0, Value::UInt(7)),
            (DataType::ConnRate, freq(0, 5, 0)),
            (DataType::BytesInCnt, Value::ULongLong(123_456_789_012)),
            (
                DataType::Gpt,
                Value::Array(vec![Value::UInt(9), Value::UInt(0), Value::UInt(u32::MAX)]),
            ),
            (
                DataType::GpcRate,
                Value::Array(vec![freq(0, 4, 0), freq(0, 0, 0)]),
            ),
        ],
        skipped_types: 0,
    });
    p.send(&[
        Message::Define(app_def()),
        app_update(1, false, 77, 2, "s2"),
        app_update(2, true, 78, 1, "s1"),
        Message::Define(counters),
        alice,
        Message::ResyncFinished,
    ]);
    // It acks our ids, per table, and confirms the end of our resync.
    p.expect("ack of app update 2", |m| {
        *m == Message::Ack {
            table_id: 1,
            update_id: 2,
        }
    });
    p.expect("resync confirm", |m| *m == Message::ResyncConfirm);

    let app = h.cli_until("show table app", Some(&mut p), |t| {
        t.contains("key=127.0.0.77") && t.contains("key=127.0.0.78")
    });
    eprintln!("{app}");
    let line = |table: &str, key: &str| -> String {
        table
            .lines()
            .find(|l| l.contains(&format!("key={key} ")))
            .unwrap_or_else(|| panic!("no {key} in {table}"))
            .to_owned()
    };
    let l77 = line(&app, "127.0.0.77");
    assert!(
        l77.contains(" server_id=2 ") && l77.ends_with(" server_key=s2"),
        "{l77}"
    );
    let l78 = line(&app, "127.0.0.78");
    assert!(
        l78.contains(" server_id=1 ") && l78.ends_with(" server_key=s1"),
        "{l78}"
    );

    let counters = h.cli_until("show table counters", Some(&mut p), |t| {
        t.contains("key=alice")
    });
    eprintln!("{counters}");
    let alice = line(&counters, "alice");
    for field in [
        " server_id=-3 ",
        " gpc0=7 ",
        " conn_rate(10000)=5 ",
        " bytes_in_cnt=123456789012 ",
        " gpt0=9 gpt1=0 gpt2=4294967295 ",
        " gpc0_rate(60000)=4 gpc1_rate(60000)=0",
    ] {
        assert!(alice.contains(field), "{field:?} not in {alice}");
    }
    // The timed update's expiry (599 s) replaced the table's 600 s.
    let exp: u64 = alice
        .split(" exp=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exp in {alice}"));
    assert!((580_000..=599_000).contains(&exp), "exp={exp}");

    // HAProxy's receive-side view: our dictionary entries and the last
    // update id per table (incremental ids included).
    let peers = h.cli("show peers dict");
    let rx_cache_starts_with_ours = peers.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.starts_with(&["0", "->", "s2", "1", "->", "s1"])
    });
    assert!(rx_cache_starts_with_ours, "{peers}");
    assert!(peers.contains("last_get=2 "), "{peers}");
    assert!(peers.contains("last_get=40 "), "{peers}");

    // What `stick on` needs: server_id alone is enough (a definition may
    // announce fewer types than HAProxy's table stores), and server_key,
    // when present, wins over server_id. Two clients per source: round
    // robin alone would alternate.
    let only_id = TableDef::new(3, "app", KeyType::Ipv4, 3_600_000).with(DataType::ServerId);
    p.send(&[
        Message::Define(only_id),
        Message::Update(Update {
            table_id: 3,
            update_id: 1,
            incremental: false,
            expire_ms: None,
            key: Key::Ipv4(Ipv4Addr::new(127, 0, 0, 79)),
            values: vec![(DataType::ServerId, Value::SInt(2))],
            skipped_types: 0,
        }),
        Message::Define(app_def()),
        app_update(3, false, 80, 1, "s2"),
    ]);
    let app = h.cli_until("show table app", Some(&mut p), |t| {
        t.contains("key=127.0.0.79 ") && t.contains("key=127.0.0.80 ")
    });
    assert!(
        line(&app, "127.0.0.79").ends_with(" server_id=2 server_key=-"),
        "{app}"
    );
    for (source, server) in [
        (77, "s2"),
        (78, "s1"),
        (79, "s2"),
        (80, "s2"),
        (77, "s2"),
        (78, "s1"),
        (79, "s2"),
        (80, "s2"),
    ] {
        assert_eq!(
            h.client_from(source),
            server,
            "client from 127.0.0.{source}"
        );
    }
}

/// Test 2: a client goes through HAProxy from 127.0.0.9; HAProxy pushes
/// the new entry to us, we decode it and ack it.
#[test]
fn haproxy_pushes_a_learned_entry_and_takes_our_ack() {
    require_haproxy!("haproxy_pushes_a_learned_entry_and_takes_our_ack");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let h = Haproxy::start(listener.local_addr().unwrap().port());
    let mut p = accept_haproxy(&listener, &h);
    p.expect("resync request", |m| *m == Message::ResyncRequest);
    p.send(&[Message::ResyncFinished]);
    p.expect("resync confirm", |m| *m == Message::ResyncConfirm);

    // A client from 127.0.0.9 through the frontend: the server greets it
    // with its name.
    let server = h.client_from(9);

    let Message::Update(u) = p.expect(
        "update for 127.0.0.9",
        |m| matches!(m, Message::Update(u) if u.key == Key::Ipv4(Ipv4Addr::new(127, 0, 0, 9))),
    ) else {
        unreachable!()
    };
    let def = p.dec.table(u.table_id).unwrap().clone();
    assert_eq!(def.name, "app");
    // Live updates are not timed; the first after a definition has its id.
    assert_eq!((u.incremental, u.expire_ms), (false, None));
    assert_eq!(u.values, server_values(&server));

    // HAProxy records acks as the table's "update" cursor for us
    // (`show peers`: "last_acked=.. last_pushed=.. last_get=..
    // teaching_origin=.. update=N", one line per shared table).
    let cursors = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.contains("last_acked="))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("update=")))
            .map(str::to_owned)
            .collect()
    };
    let before = cursors(&h.cli("show peers hapeers"));
    let want = format!("update={}", u.update_id);
    assert!(!before.contains(&want), "{before:?}");
    p.send(&[Message::Ack {
        table_id: u.table_id,
        update_id: u.update_id,
    }]);
    h.cli_until("show peers hapeers", Some(&mut p), |out| {
        cursors(out).contains(&want)
    });

    // Heartbeats both ways: HAProxy sends one after 3 s without sending
    // (we answer with ours) and counts the ones it receives.
    let until = Instant::now() + STEP;
    let mut got = false;
    for _ in 0..100 {
        match p.recv(until) {
            Some(Message::Heartbeat) => {
                got = true;
                break;
            }
            Some(_) => p.send(&[Message::Heartbeat]),
            None => break,
        }
    }
    assert!(got, "no heartbeat from haproxy; received {:#?}", p.seen);
    p.send(&[Message::Heartbeat]);
    h.cli_until("show peers hapeers", Some(&mut p), |out| {
        out.split_whitespace()
            .any(|w| w.strip_prefix("rx_hbt=").is_some_and(|n| n != "0"))
    });
}

/// Test 3: we connect to HAProxy: rejected hellos get their status, a good
/// one 200; after HAProxy learned entries, a new session's resync request
/// gets them all, then "resync finished".
#[test]
fn we_connect_get_statuses_and_a_full_resync() {
    require_haproxy!("we_connect_get_statuses_and_a_full_resync");
    // Nobody listens for peer corral: HAProxy's own connection attempts fail.
    let h = Haproxy::start(free_port());

    let pid = std::process::id();
    for (bytes, want) in [
        (hello("hap1", "stranger", pid, 1), 504),
        (hello("nothap", "corral", pid, 1), 503),
        (hello_with_version(2, 2, "hap1", "corral", pid, 1), 502),
        (hello_with_version(3, 0, "hap1", "corral", pid, 1), 502),
        (b"GET / HTTP/1.0\r\n\r\n".to_vec(), 501),
    ] {
        let (_, status) = connect_to_haproxy(&h, &bytes);
        eprintln!("{:?} -> {status:?}", String::from_utf8_lossy(&bytes));
        assert_eq!(status.map(Status::code), Some(want));
    }

    let (mut p, status) = connect_to_haproxy(&h, &hello("hap1", "corral", pid, 1));
    assert_eq!(status, Some(Status::Success));
    // It learns from us first: tell it we have nothing.
    p.expect("resync request", |m| *m == Message::ResyncRequest);
    p.send(&[Message::ResyncFinished]);
    p.expect("resync confirm", |m| *m == Message::ResyncConfirm);

    // HAProxy learns two entries: one from the CLI, one from a client.
    let set = h.cli(
        "set table counters key alice data.server_id -3 data.gpc0 7 data.conn_rate 5 \
         data.bytes_in_cnt 123456789012 data.gpt 9",
    );
    assert!(set.trim().is_empty(), "set table: {set}");
    let server = h.client_from(9);
    h.cli_until("show table app", Some(&mut p), |t| {
        t.contains("key=127.0.0.9 ")
    });
    drop(p);

    // A new session asks for everything.
    let (mut p, status) = connect_to_haproxy(&h, &hello("hap1", "corral", pid, 1));
    assert_eq!(status, Some(Status::Success));
    p.send(&[Message::ResyncRequest]);
    let end = p.expect("end of resync", |m| {
        matches!(m, Message::ResyncFinished | Message::ResyncPartial)
    });
    assert_eq!(end, Message::ResyncFinished, "haproxy was up to date");
    p.send(&[Message::ResyncConfirm]);
    check_haproxy_definitions(&definitions(&p.seen));

    let timed: Vec<&Update> = p
        .seen
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) if u.expire_ms.is_some() => Some(u),
            _ => None,
        })
        .collect();
    let ip = timed
        .iter()
        .find(|u| u.key == Key::Ipv4(Ipv4Addr::new(127, 0, 0, 9)))
        .unwrap_or_else(|| panic!("no timed update for 127.0.0.9 in {:#?}", p.seen));
    assert!(ip.expire_ms.unwrap() <= 3_600_000);
    assert_eq!(ip.values, server_values(&server));
    let alice = timed
        .iter()
        .find(|u| u.key == Key::String(b"alice".to_vec()))
        .unwrap_or_else(|| panic!("no timed update for alice in {:#?}", p.seen));
    assert!(alice.expire_ms.unwrap() <= 600_000);
    let v = &alice.values;
    assert_eq!(v.len(), 6, "{v:?}");
    assert_eq!(v[0], (DataType::ServerId, Value::SInt(-3)));
    assert_eq!(v[1], (DataType::Gpc0, Value::UInt(7)));
    // The counter's age is the time since the CLI set it.
    let (DataType::ConnRate, Value::Freq(f)) = &v[2] else {
        panic!("{v:?}")
    };
    assert_eq!((f.curr_ctr, f.prev_ctr), (5, 0));
    assert!(f.age_ms < 60_000, "{f:?}");
    assert_eq!(
        v[3],
        (DataType::BytesInCnt, Value::ULongLong(123_456_789_012))
    );
    let gpt = Value::Array(vec![Value::UInt(9), Value::UInt(0), Value::UInt(0)]);
    assert_eq!(v[4], (DataType::Gpt, gpt));
    let (DataType::GpcRate, Value::Array(items)) = &v[5] else {
        panic!("{v:?}")
    };
    assert_eq!(items.len(), 2);
    for item in items {
        assert!(
            matches!(item, Value::Freq(f) if (f.curr_ctr, f.prev_ctr) == (0, 0)),
            "{item:?}"
        );
    }
}
