//! `corral web` and `corral probe` on loopback: the two tools the deploy
//! files and labs rely on (the image's health check, the compose and
//! containerlab web servers, the netns lab's hop checks). Runs without root.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_corral");

struct Web(Child);

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `corral web` on a free loopback port; returns it and its address,
/// read from its `listening on` line (bounded wait).
fn start_web(name: &str) -> (Web, String) {
    let mut child = Command::new(BIN)
        .args(["web", "--bind", "127.0.0.1:0", "--name", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start corral web");
    let out = child.stdout.take().expect("stdout");
    let web = Web(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("corral web prints where it listens");
    let addr = line
        .rsplit(' ')
        .next()
        .expect("address at the end")
        .to_string();
    assert_eq!(line, format!("corral web: {name} listening on {addr}"));
    (web, addr)
}

fn probe(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(BIN)
        .arg("probe")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run corral probe");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn web_answers_with_its_name_and_probe_reports_answers_and_failures() {
    let (mut web, addr) = start_web("alpha");

    // One line per request, each on its own connection, from a chosen source.
    let (code, out) = probe(&[
        "--count",
        "3",
        "--source",
        "127.0.0.2",
        &format!("{addr}/health"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out, "200 alpha\n200 alpha\n200 alpha\n");
    let (code, out) = probe(&["--tcp", &addr]);
    assert_eq!((code, out), (Some(0), format!("connected {addr}\n")));

    // Failures exit 1 and say why.
    let (code, out) = probe(&["--source", "192.0.2.1", &addr]);
    assert_eq!(code, Some(1));
    assert!(out.contains("not an address of this host"), "{out}");
    let (code, out) = probe(&["--timeout", "0", &addr]);
    assert_eq!(code, Some(2), "a zero timeout is refused: {out}");

    // SIGTERM ends it with status 0 (it may be PID 1 in a container).
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(web.0.id() as i32, libc::SIGTERM) }, 0);
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = web.0.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exits 0 on SIGTERM");

    // Nothing listens there any more: refused, named as such.
    let (code, out) = probe(&[&addr]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with(&format!(
            "error connection refused by {addr}: the host answered but nothing is listening"
        )),
        "{out}"
    );
}

/// `deploy/compose/corral.yaml` (seed 004) run for real in front of four
/// `corral web` servers, as in the compose file, with the compose service
/// names and ports replaced by loopback addresses: the routing the compose
/// lab promises.
#[test]
fn compose_configuration_routes_like_seed_004() {
    let servers: Vec<(Web, String)> = (1..=4).map(|i| start_web(&format!("server{i}"))).collect();
    let mut yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/compose/corral.yaml"),
    )
    .expect("read the compose configuration");
    for (i, (_, addr)) in servers.iter().enumerate() {
        yaml = yaml.replace(&format!("\"server{}:8000\"", i + 1), &format!("\"{addr}\""));
    }
    let yaml = yaml
        .replace("[\"*:80\"]", "[\"127.0.0.1:0\"]")
        .replace("[\"*:8404\"]", "[\"127.0.0.1:0\"]");
    assert!(!yaml.contains(":8000\""), "every server address replaced");
    let corral = common::Corral::start(&yaml);
    let front = corral.addr("clients").to_string();

    let names = |source: &str, path: &str, count: usize| -> Vec<String> {
        let n = count.to_string();
        let (code, out) = probe(&["--source", source, "--count", &n, &format!("{front}{path}")]);
        assert_eq!(code, Some(0), "{path}: {out}");
        out.lines()
            .map(|l| l.strip_prefix("200 ").unwrap_or(l).to_string())
            .collect()
    };
    let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    let want = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();

    // Every server is up for its health checks before counting.
    assert!(
        common::eventually(Duration::from_secs(15), || set(&names("127.0.0.1", "/", 8))
            .len()
            == 4),
        "all four servers answer `/`"
    );
    assert_eq!(
        set(&names("127.0.0.1", "/api/lightwork", 8)),
        want(&["server1", "server2"])
    );
    // The heavy pool: each client address stays on one server of 3 and 4,
    // and the addresses are spread over both.
    let mut heavy = std::collections::BTreeSet::new();
    for i in 2..=17 {
        let source = format!("127.0.0.{i}");
        let got = set(&names(&source, "/heavywork", 4));
        assert_eq!(got.len(), 1, "{source} stays on one heavy server: {got:?}");
        heavy.extend(got);
    }
    assert_eq!(heavy, want(&["server3", "server4"]));
    // /admin is denied at the edge, whatever the case.
    let (code, out) = probe(&[&format!("{front}/ADMIN/users")]);
    assert_eq!((code, out.as_str()), (Some(0), "403 -\n"));
}
