//! The lab that runs anywhere, end to end: `deploy/netns-lab.sh up` builds
//! seed 000's topology in network namespaces (a client with several source
//! addresses, a routing host, corral, three web servers, all addressed in
//! 198.18.0.0/15 inside namespaces only) and this test checks, through the
//! real binary: every hop, round robin, source affinity across the client's
//! addresses, the hop diagnosis (forwarding off, nothing listening) and
//! failover when a web server stops. The lab is torn down even when a check
//! fails (a guard runs `down` on drop).
//!
//! Needs root and network namespaces (`.ci/run` runs as root); elsewhere it
//! prints `SKIPPED <test>: <why>` and returns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_corral");
const LB: &str = "198.18.16.2";
const SERVERS: usize = 3;
const SOURCES: usize = 4;
/// Upper bound for one script or probe command.
const COMMAND_WAIT: Duration = Duration::from_secs(60);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/netns-lab.sh")
}

struct Outcome {
    ok: bool,
    text: String,
}

/// Runs a command with its output in temporary files (so a background child
/// that keeps a descriptor cannot hold us), killed after `COMMAND_WAIT`.
fn run(cmd: &mut Command) -> Outcome {
    let out = tempfile::tempfile().expect("temp file");
    let err = out.try_clone().expect("temp file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("temp file"))
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if started.elapsed() > COMMAND_WAIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::io::{Read, Seek};
    let mut out = out;
    let mut text = String::new();
    out.rewind().expect("rewind");
    out.read_to_string(&mut text).expect("read output");
    match status {
        Some(s) => Outcome {
            ok: s.success(),
            text,
        },
        None => Outcome {
            ok: false,
            text: format!("{text}\n(killed after {COMMAND_WAIT:?})"),
        },
    }
}

struct Lab {
    prefix: String,
}

impl Lab {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("bash");
        c.arg(script())
            .args(args)
            .env("CORRAL_BIN", BIN)
            .env("LAB_PREFIX", &self.prefix)
            .env("LAB_SERVERS", SERVERS.to_string())
            .env("LAB_SOURCES", SOURCES.to_string());
        c
    }

    fn script(&self, args: &[&str]) -> Outcome {
        run(&mut self.cmd(args))
    }

    /// `corral probe ARGS` run in the client's namespace: one
    /// `(status, server)` per request, or the error line.
    fn probe(&self, args: &[&str]) -> Vec<Result<(u16, String), String>> {
        let mut full = vec!["exec", "client", BIN, "probe", "--timeout", "2"];
        full.extend_from_slice(args);
        let out = self.script(&full);
        out.text
            .lines()
            .map(|l| {
                let mut w = l.splitn(2, ' ');
                match (w.next().and_then(|c| c.parse::<u16>().ok()), w.next()) {
                    (Some(code), Some(by)) => Ok((code, by.to_string())),
                    _ => Err(l.to_string()),
                }
            })
            .collect()
    }

    /// The servers that answered `count` requests from `source` to `port`,
    /// in order; panics on any failed request.
    fn servers(&self, source: &str, port: u16, count: usize) -> Vec<String> {
        let target = format!("{LB}:{port}/");
        let n = count.to_string();
        let answers = self.probe(&["--source", source, "--count", &n, &target]);
        assert_eq!(answers.len(), count, "one answer per request: {answers:?}");
        answers
            .into_iter()
            .map(|a| match a {
                Ok((200, by)) => by,
                other => panic!("request from {source} to {target}: {other:?}"),
            })
            .collect()
    }

    fn namespaces(&self) -> Vec<String> {
        let out = run(Command::new("ip").args(["netns", "list"]));
        out.text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{}-", self.prefix)))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.script(&["down"]);
        if !out.ok {
            eprintln!("netns lab teardown: {}", out.text);
        }
    }
}

fn source(i: usize) -> String {
    format!("198.18.0.{}", 10 + i)
}

/// Why this machine cannot run the lab, if it cannot.
fn unavailable(prefix: &str) -> Option<String> {
    if !Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return Some("iproute2 (`ip`) not installed".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root to create network namespaces".into());
    }
    let probe = format!("{prefix}-probe");
    let add = run(Command::new("ip").args(["netns", "add", &probe]));
    if !add.ok {
        return Some(format!(
            "`ip netns add` is not permitted here: {}",
            add.text.trim()
        ));
    }
    // Namespaces alone are not enough: the lab also needs veth pairs and
    // per-namespace sysctls (a container may have /proc/sys read-only).
    let veth = run(Command::new("ip").args([
        "-n", &probe, "link", "add", "a0", "type", "veth", "peer", "name", "b0",
    ]));
    let sysctl = run(Command::new("ip").args([
        "netns",
        "exec",
        &probe,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]));
    let _ = run(Command::new("ip").args(["netns", "del", &probe]));
    if !veth.ok {
        return Some(format!("cannot create veth pairs: {}", veth.text.trim()));
    }
    if !sysctl.ok {
        return Some(format!(
            "cannot set sysctls in a network namespace: {}",
            sysctl.text.trim()
        ));
    }
    None
}

#[test]
fn netns_lab_hops_round_robin_source_affinity_diagnosis_and_failover() {
    let name = "netns_lab_hops_round_robin_source_affinity_diagnosis_and_failover";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let prefix = format!("cl{}-{}", std::process::id(), nanos % 100_000);
    if let Some(why) = unavailable(&prefix) {
        println!("SKIPPED {name}: {why}");
        return;
    }
    let lab = Lab { prefix };

    // Up: the script returns once the client gets answers through corral.
    let up = lab.script(&["up"]);
    assert!(up.ok, "netns-lab up failed:\n{}", up.text);
    assert_eq!(
        lab.namespaces().len(),
        3 + SERVERS,
        "client, host, lb and each web server have a namespace"
    );

    // Every hop works, and the script says so hop by hop.
    let test = lab.script(&["test"]);
    assert!(test.ok, "netns-lab test failed:\n{}", test.text);
    let ok_lines = test.text.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(
        ok_lines,
        SOURCES + 1 + SERVERS + 1,
        "one ok line per hop plus end to end:\n{}",
        test.text
    );

    // Round robin (port 80, one worker): once every server is up (health
    // checks every 200ms), 3 × SERVERS requests reach each server 3 times.
    let all: BTreeSet<String> = (1..=SERVERS).map(|i| format!("web{i}")).collect();
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        seen = lab.servers(&source(1), 80, SERVERS).into_iter().collect();
        if seen == all {
            break;
        }
    }
    assert_eq!(seen, all, "every web server answers through corral");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in lab.servers(&source(1), 80, 3 * SERVERS) {
        *counts.entry(s).or_default() += 1;
    }
    assert_eq!(
        counts,
        all.iter().map(|s| (s.clone(), 3)).collect(),
        "round robin: each server gets one request in {SERVERS}"
    );

    // Source affinity (port 81, `stick on src`): each client address stays
    // on one server; the addresses are spread over several servers.
    let mut stuck: BTreeMap<String, String> = BTreeMap::new();
    for i in 1..=SOURCES {
        let got = lab.servers(&source(i), 81, 8);
        let distinct: BTreeSet<&String> = got.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "{} sticks to one server: {got:?}",
            source(i)
        );
        stuck.insert(source(i), got[0].clone());
    }
    let used: BTreeSet<&String> = stuck.values().collect();
    assert!(
        used.len() >= 2,
        "{SOURCES} client addresses were spread over servers: {stuck:?}"
    );

    // Diagnosis: forwarding off on the routing host is named on the
    // client -> lb hops, and the lab recovers once it is back on.
    let off = lab.script(&["exec", "host", "sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    assert!(off.ok, "{}", off.text);
    let broken = lab.script(&["test"]);
    let restore = lab.script(&["exec", "host", "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    assert!(restore.ok, "{}", restore.text);
    assert!(
        !broken.ok,
        "test must fail with forwarding off:\n{}",
        broken.text
    );
    assert!(
        broken
            .text
            .contains(&format!("FAIL  client({}) -> lb", source(1)))
            && broken.text.contains("cause: forwarding off: host"),
        "the failing hop and its cause are named:\n{}",
        broken.text
    );
    assert!(
        broken.text.contains("ok    lb -> web1"),
        "the lab-side hops still pass:\n{}",
        broken.text
    );

    // Failover: stop web2; the hop check names it, requests go to the others.
    let stop = lab.script(&["stop-web", "2"]);
    assert!(stop.ok, "{}", stop.text);
    let down = lab.script(&["test"]);
    assert!(!down.ok, "test must fail with web2 stopped:\n{}", down.text);
    assert!(
        down.text.contains("FAIL  lb -> web2")
            && down
                .text
                .contains("cause: nothing listening on port 80 in web2")
            && down.text.contains("ok    client -> corral -> web"),
        "web2's hop fails for want of a listener, the service still answers:\n{}",
        down.text
    );
    // Health checks (inter 200ms, fall 2) take web2 out; from then on,
    // every request is answered by a server that is up.
    let alive: BTreeSet<String> = all.iter().filter(|s| *s != "web2").cloned().collect();
    let mut settled = false;
    for _ in 0..50 {
        let answers = lab.probe(&["--count", "4", &format!("{LB}:80/")]);
        if answers.len() == 4
            && answers
                .iter()
                .all(|a| matches!(a, Ok((200, by)) if by != "web2"))
        {
            settled = true;
            break;
        }
    }
    assert!(settled, "corral stops sending to the stopped web2");
    let after: BTreeSet<String> = lab
        .servers(&source(1), 80, 4 * SERVERS)
        .into_iter()
        .collect();
    assert_eq!(after, alive, "the servers still up share the traffic");
    // Clients stuck to web2 are served elsewhere; the others stay put.
    for (src, server) in &stuck {
        let got = lab.servers(src, 81, 4);
        if server == "web2" {
            assert!(
                got.iter().all(|s| alive.contains(s)),
                "{src} (was on web2) fails over: {got:?}"
            );
        } else {
            assert!(
                got.iter().all(|s| s == server),
                "{src} stays on {server}: {got:?}"
            );
        }
    }

    // Down removes every namespace (the guard's second `down` is a no-op).
    let gone = lab.script(&["down"]);
    assert!(gone.ok, "{}", gone.text);
    assert!(lab.namespaces().is_empty(), "no namespace is left behind");
}
