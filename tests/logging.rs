//! Connection logs: HAProxy's tcplog line, to a file, and `dontlognull`.

mod common;
use common::*;
use std::io::{BufRead, BufReader};

#[test]
fn tcplog_lines_go_to_a_file_and_dontlognull_drops_empty_connections() {
    let server = name_server("s1");
    let silent = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conn.log");
    let yaml = format!(
        "global: {{ workers: 2, log: \"file {}\" }}\ndefaults:\n  option: [dontlognull]\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\n  quiet: {{ bind: \"127.0.0.1:0\", default_backend: be, log: [] }}\n  empty: {{ bind: \"127.0.0.1:0\", default_backend: mute }}\nbackends:\n  be:\n    servers:\n      s1: {{ address: \"{}\" }}\n  mute:\n    servers:\n      m: {{ address: \"{}\" }}\n",
        file.display(),
        server.addr,
        silent.addr
    );
    let corral = Corral::start(&yaml);
    // A connection that carries data is logged...
    assert_eq!(
        name_via(corral.addr("fe"), "127.0.6.1".parse().unwrap()).unwrap(),
        "s1"
    );
    // ...one on a frontend that logs nowhere is not...
    assert_eq!(
        name_via(corral.addr("quiet"), "127.0.6.2".parse().unwrap()).unwrap(),
        "s1"
    );
    // ...and with dontlognull, one that carried nothing is not either.
    {
        let s = connect_from("127.0.6.3".parse().unwrap(), corral.addr("empty")).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        assert_eq!(std::io::Read::read_to_end(&mut &s, &mut rest).unwrap(), 0);
    }
    let read = |f: &std::path::Path| std::fs::read_to_string(f).unwrap_or_default();
    assert!(eventually(WAIT, || read(&file).contains("127.0.6.1:")));
    let status = corral.stop();
    assert!(status.success());
    let text = read(&file);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let fields: Vec<&str> = lines[0].split(' ').collect();
    // ip:port [date] frontend backend/server Tw/Tc/Tt bytes state counters queues
    assert_eq!(fields.len(), 9, "{}", lines[0]);
    assert!(fields[0].starts_with("127.0.6.1:"));
    assert!(
        fields[1].starts_with('[') && fields[1].ends_with(']') && fields[1].len() == 26,
        "{}",
        fields[1]
    );
    assert_eq!(fields[2], "fe");
    assert_eq!(fields[3], "be/s1");
    assert_eq!(fields[4].split('/').count(), 3);
    assert_eq!(fields[5], "3", "bytes sent to the client: \"s1\\n\"");
    assert_eq!(fields[6], "--");
    assert_eq!(fields[7].split('/').count(), 5);
    assert_eq!(fields[8], "0/0");
}

#[test]
fn a_connection_with_no_server_is_logged_with_its_reason() {
    // Nothing listens at the server address: every attempt is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let yaml = format!(
        "global: {{ workers: 1, log: stdout }}\ndefaults:\n  retries: 2\n  timeout: {{ connect: 200ms }}\nfrontends:\n  fe: {{ bind: \"127.0.0.1:0\", default_backend: be }}\nbackends:\n  be:\n    servers:\n      gone: {{ address: \"{addr}\" }}\n"
    );
    let corral = Corral::start(&yaml);
    let s = connect(corral.addr("fe"));
    let mut line = String::new();
    assert_eq!(
        BufReader::new(&s).read_line(&mut line).unwrap(),
        0,
        "closed"
    );
    let log = corral.stdout.wait_for(" fe be/", WAIT).expect("log line");
    assert!(
        log.contains(" fe be/<NOSRV> ") && log.contains(" SC ") && log.contains("/2 0/0"),
        "{log}"
    );
}
