//! `bench/compare` end to end, shortened (one round of one second, small
//! bulk and idle counts): it builds nothing, starts the real backends and
//! proxies, and must print the table and the targets with every figure
//! present and no load-generator errors. The harness is Python and uses
//! fixed ports (19001-19142), so the two runs here take turns.
//!
//! Needs python3 (and taskset); the side-by-side run needs haproxy and
//! nginx, which `.ci/run` installs. Without them each test says it is
//! skipped, by name.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// The harness's ports are fixed: one run at a time.
static PORTS: Mutex<()> = Mutex::new(());

fn have(tool: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

/// Runs the harness on `proxies` and returns (stdout, medians JSON).
fn compare(proxies: &str) -> (String, Value) {
    let _turn = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let root = env!("CARGO_MANIFEST_DIR");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_corral")).parent().unwrap();
    let json = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("timeout")
        .arg("300")
        .arg("python3")
        .arg(format!("{root}/bench/compare"))
        .args(["--no-build", "--bin-dir"])
        .arg(bin_dir)
        .args([
            "--seconds",
            "1",
            "--warmup",
            "1",
            "--rounds",
            "1",
            "--bulk",
            "64m",
            "--idle",
            "300",
        ])
        .args([
            "--scenarios",
            "http-keepalive,http-close,tcp-small,tcp-bulk,idle-rss",
        ])
        .args(["--proxies", proxies, "--json"])
        .arg(json.path())
        .output()
        .expect("run bench/compare");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/compare failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let medians = serde_json::from_str::<Value>(&std::fs::read_to_string(json.path()).unwrap())
        .unwrap()["medians"]
        .clone();
    (stdout, medians)
}

/// Every scenario's figures for `proxy` are there, positive, error-free.
fn check_proxy(stdout: &str, medians: &Value, proxy: &str, with_tcp: bool) {
    for sc in ["http-keepalive", "http-close", "tcp-small"] {
        if sc.starts_with("tcp") && !with_tcp {
            continue;
        }
        let m = &medians[format!("{sc}/{proxy}")];
        assert!(m["rps"].as_f64().unwrap() > 100.0, "{sc}/{proxy}: {m}");
        assert!(
            m["cpu_per_100k"].as_f64().unwrap() > 0.0,
            "{sc}/{proxy}: {m}"
        );
        for p in ["p50", "p99", "p999"] {
            assert!(m[p].as_f64().unwrap() > 0.0, "{sc}/{proxy} {p}: {m}");
        }
        assert_eq!(m["errors"], 0, "{sc}/{proxy}: {m}");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("| {sc}")) && l.contains(&format!("| {proxy} |"))),
            "no {sc} row for {proxy} in:\n{stdout}"
        );
    }
    if with_tcp {
        let bulk = &medians[format!("tcp-bulk/{proxy}")];
        assert!(
            bulk["gbit_s"].as_f64().unwrap() > 0.0,
            "bulk/{proxy}: {bulk}"
        );
        assert_eq!(bulk["errors"], 0, "bulk/{proxy}: {bulk}");
    }
    let idle = &medians[format!("idle-rss/{proxy}")];
    assert!(
        idle["rss_kib"].as_f64().unwrap().is_finite(),
        "idle/{proxy}: {idle}"
    );
    assert!(
        stdout.contains("| target | measured | goal | met |"),
        "{stdout}"
    );
}

#[test]
fn compare_runs_every_scenario_through_corral() {
    if !have("python3") || !have("taskset") {
        println!(
            "SKIPPED compare_runs_every_scenario_through_corral: python3 or taskset not installed"
        );
        return;
    }
    let (stdout, medians) = compare("corral");
    check_proxy(&stdout, &medians, "corral", true);
}

#[test]
fn compare_puts_corral_haproxy_and_nginx_side_by_side() {
    if !have("python3") || !have("taskset") || !have("haproxy") || !have("nginx") {
        println!(
            "SKIPPED compare_puts_corral_haproxy_and_nginx_side_by_side: python3, taskset, haproxy or nginx not installed (.ci/run installs them)"
        );
        return;
    }
    let (stdout, medians) = compare("corral,haproxy,nginx");
    let nginx_stream = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so").exists();
    check_proxy(&stdout, &medians, "corral", true);
    check_proxy(&stdout, &medians, "haproxy", true);
    check_proxy(&stdout, &medians, "nginx", nginx_stream);
    // Ratios to HAProxy appear beside the other proxies' figures.
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| http-keepalive |") && l.contains("| corral |"))
        .unwrap();
    assert!(row.contains("×)"), "no ratio in {row}");
    // The targets table names each target with a yes or no.
    for t in [
        "HTTP keep-alive req/s vs HAProxy",
        "bulk TCP Gbit/s vs HAProxy (splice)",
        "RSS per idle connection vs HAProxy",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {t} |")))
            .unwrap_or_else(|| panic!("no target {t}"));
        assert!(
            line.ends_with("| yes |") || line.ends_with("| no |"),
            "{line}"
        );
    }
}

#[test]
fn compare_runs_the_tls_scenarios() {
    if !have("python3") || !have("taskset") || !have("haproxy") || !have("openssl") {
        println!(
            "SKIPPED compare_runs_the_tls_scenarios: python3, taskset, haproxy or openssl not installed"
        );
        return;
    }
    let _turn = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let root = env!("CARGO_MANIFEST_DIR");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_corral")).parent().unwrap();
    let json = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("timeout")
        .arg("300")
        .arg("python3")
        .arg(format!("{root}/bench/compare"))
        .args(["--no-build", "--bin-dir"])
        .arg(bin_dir)
        .args(["--seconds", "1", "--warmup", "1", "--rounds", "1"])
        .args([
            "--scenarios",
            "tls-handshake-ecdsa,tls-handshake-rsa,tls-keepalive",
        ])
        .args(["--proxies", "corral,haproxy", "--json"])
        .arg(json.path())
        .output()
        .expect("run bench/compare");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/compare failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let medians = serde_json::from_str::<Value>(&std::fs::read_to_string(json.path()).unwrap())
        .unwrap()["medians"]
        .clone();
    // corral runs once per rustls provider, beside HAProxy, in every TLS
    // scenario; all negotiate the same cipher suite, without errors.
    for sc in ["tls-handshake-ecdsa", "tls-handshake-rsa", "tls-keepalive"] {
        let mut suites = Vec::new();
        for (proxy, label) in [
            ("corral", "corral (aws-lc-rs)"),
            ("corral-ring", "corral (ring)"),
            ("haproxy", "haproxy"),
        ] {
            let m = &medians[format!("{sc}/{proxy}")];
            assert!(m["rps"].as_f64().unwrap() > 10.0, "{sc}/{proxy}: {m}");
            assert!(m["cpu_us"].as_f64().unwrap() > 0.0, "{sc}/{proxy}: {m}");
            assert_eq!(m["errors"], 0, "{sc}/{proxy}: {m}");
            suites.push(m["suite"].as_str().unwrap().to_string());
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("| {sc} | {label} |"))),
                "no {sc} row for {label} in:\n{stdout}"
            );
        }
        assert!(suites.iter().all(|s| s == &suites[0]), "{sc}: {suites:?}");
    }
    for t in [
        "TLS handshakes/s vs HAProxy, ECDSA P-256 (aws-lc-rs)",
        "TLS handshakes/s vs HAProxy, RSA 2048 (ring)",
        "TLS keep-alive req/s vs HAProxy (aws-lc-rs)",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("| {t} |"))),
            "no target {t} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("| rustls provider in corral: ring vs aws-lc-rs |"),
        "{stdout}"
    );
}
