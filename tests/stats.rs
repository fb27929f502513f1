//! The stats page (in a real browser), its `;csv`/`;json` forms and
//! Prometheus `/metrics`: numbers added up over every worker.

mod common;

use common::http::{HttpServer, get};
use common::{Corral, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// An app frontend over two servers (`down` never listens: its check
/// fails) and a stats frontend.
fn start(extra_stats: &str, dir: &std::path::Path) -> (Corral, HttpServer) {
    let app = HttpServer::named("web1");
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(dir.join("stats.pass"), "s3cret\n").unwrap();
    let yaml = format!(
        r#"
global: {{ workers: 2 }}
defaults: {{ mode: http, timeout: {{ connect: 1s, client: 10s, server: 10s, check: 500ms }} }}
frontends:
  app:
    bind: ["127.0.0.1:0"]
    http-request:
      - deny if {{ path_beg /admin }}
    default_backend: web
  stats:
    bind: ["127.0.0.1:0"]
    stats: {{ uri: /stats, refresh: 1s, prometheus: true {extra_stats} }}
backends:
  web:
    servers:
      web1: {{ address: "{}", check: {{ inter: 200ms, rise: 1, fall: 1 }} }}
      web2: {{ address: "{down}", check: {{ inter: 200ms, rise: 1, fall: 1 }} }}
"#,
        app.addr()
    )
    .replace("PASSFILE", &dir.join("stats.pass").display().to_string());
    let corral = Corral::start(&yaml);
    assert!(
        corral
            .stderr
            .wait_for("Server web/web2 is DOWN", WAIT)
            .is_some(),
        "{}",
        corral.stderr.text()
    );
    (corral, app)
}

/// Sends `n` requests, each on a new connection (so both workers see
/// some), and `denied` requests to /admin.
fn traffic(corral: &Corral, n: usize, denied: usize) {
    let addr = corral.addr("app");
    for _ in 0..n {
        assert_eq!(get(addr, "/", "x").status, 200);
    }
    for _ in 0..denied {
        assert_eq!(get(addr, "/admin", "x").status, 403);
    }
}

fn fetch(corral: &Corral, path: &str, auth: Option<&str>) -> (u16, String) {
    request(corral, "GET", path, auth, "")
}

#[test]
fn json_and_csv_add_up_every_workers_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (corral, app) = start("", dir.path());
    traffic(&corral, 40, 3);
    let (status, body) = fetch(&corral, "/stats;json", None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["info"]["workers"], 2);
    let fe = &v["frontends"][0];
    assert_eq!(fe["name"], "app");
    assert_eq!(fe["requests"], 43);
    assert_eq!(fe["responses"][1], 40, "2xx");
    assert_eq!(fe["responses"][3], 3, "4xx");
    assert_eq!(fe["denied"], 3);
    assert_eq!(fe["total"], 43, "one connection per request");
    let be = &v["backends"][0];
    assert_eq!(be["name"], "web");
    assert_eq!(be["total"], 40);
    assert_eq!(be["servers"][0]["name"], "web1");
    assert_eq!(be["servers"][0]["total"], 40);
    assert_eq!(be["servers"][0]["status"], "UP");
    assert_eq!(be["servers"][0]["check"], "L4OK");
    assert_eq!(be["servers"][1]["status"], "DOWN");
    assert_eq!(be["servers"][1]["check"], "L4CON");
    assert!(
        be["servers"][0]["bytes_out"].as_u64().unwrap() >= 40 * "hello from web1\n".len() as u64
    );
    assert_eq!(app.count(), 40);

    let (status, csv) = fetch(&corral, "/stats;csv", None);
    assert_eq!(status, 200);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let find = |px: &str, sv: &str| {
        rows.iter()
            .find(|r| r[0] == px && r[1] == sv)
            .unwrap()
            .clone()
    };
    let fe = find("app", "FRONTEND");
    assert_eq!(fe.len(), header.len());
    assert_eq!(fe[col("req_tot")], "43");
    assert_eq!(fe[col("dreq")], "3");
    assert_eq!(fe[col("hrsp_2xx")], "40");
    assert_eq!(find("web", "web1")[col("status")], "UP");
    assert_eq!(find("web", "web2")[col("status")], "DOWN");
    assert_eq!(find("web", "web2")[col("check_status")], "L4CON");
    assert_eq!(find("web", "BACKEND")[col("stot")], "40");
    assert_eq!(find("web", "BACKEND")[col("type")], "1");
}

#[test]
fn metrics_parse_with_a_real_prometheus_parser() {
    let dir = tempfile::tempdir().unwrap();
    let (corral, _app) = start("", dir.path());
    traffic(&corral, 25, 2);
    let (status, body) = fetch(&corral, "/metrics", None);
    assert_eq!(status, 200);
    // The format's rules, line by line: every sample's family has a TYPE
    // before it, names and labels are well-formed, no series twice.
    let name_re = regex::Regex::new(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
    let sample_re = regex::Regex::new(r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$"#).unwrap();
    let mut typed = std::collections::HashSet::new();
    let mut series = std::collections::HashSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            let name = w.next().unwrap();
            assert!(name_re.is_match(name), "{line}");
            assert!(["counter", "gauge"].contains(&w.next().unwrap()), "{line}");
            assert!(typed.insert(name.to_string()), "TYPE twice: {line}");
        } else if line.starts_with("# HELP ") {
        } else {
            assert!(sample_re.is_match(line), "bad sample line: {line}");
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(typed.contains(name), "no TYPE before {line}");
            let key = line.rsplit_once(' ').unwrap().0;
            assert!(series.insert(key.to_string()), "series twice: {line}");
        }
    }
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |metric: &str, labels: &[(&str, &str)]| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {metric} {labels:?}"));
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{metric}: not a number"),
        }
    };
    assert_eq!(
        value(
            "corral_backend_http_responses_total",
            &[("backend", "web"), ("code", "2xx")]
        ),
        25.0
    );
    assert_eq!(
        value(
            "corral_frontend_http_responses_total",
            &[("frontend", "app"), ("code", "4xx")]
        ),
        2.0
    );
    assert_eq!(
        value(
            "corral_frontend_requests_denied_total",
            &[("frontend", "app")]
        ),
        2.0
    );
    assert_eq!(
        value(
            "corral_server_sessions_total",
            &[("backend", "web"), ("server", "web1")]
        ),
        25.0
    );
    assert_eq!(
        value(
            "corral_server_status",
            &[("server", "web2"), ("state", "DOWN")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "corral_server_status",
            &[("server", "web1"), ("state", "UP")]
        ),
        1.0
    );
    assert_eq!(value("corral_backend_status", &[("backend", "web")]), 1.0);
}

/// A request to the stats frontend with a method, optional auth and
/// extra header lines: (status, body).
fn request(
    corral: &Corral,
    method: &str,
    path: &str,
    auth: Option<&str>,
    extra: &str,
) -> (u16, String) {
    use base64::Engine;
    let mut s = TcpStream::connect(corral.addr("stats")).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let auth = auth.map_or(String::new(), |a| {
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(a)
        )
    });
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n{auth}{extra}\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Server `name`'s status in the `;json` view.
fn server_status(corral: &Corral, name: &str) -> String {
    let (status, body) = fetch(corral, "/stats;json", Some("admin:s3cret"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["backends"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .map(|s| s["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no server {name} in {body}"))
}

#[test]
fn admin_buttons_set_a_servers_state_on_every_worker_and_only_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (corral, _app) = start(
        r#", auth: [ "admin:{{ file PASSFILE }}" ], admin: true"#,
        dir.path(),
    );
    let press = |q: &str| {
        request(
            &corral,
            "POST",
            &format!("/stats;admin?{q}"),
            Some("admin:s3cret"),
            "X-Corral-Admin: 1\r\n",
        )
    };
    assert_eq!(server_status(&corral, "web1"), "UP");

    // What the buttons send: web1 into maintenance, then drain, then back.
    let before = corral.stderr.len();
    let (status, body) = press("b=web&s=web1&action=maint");
    assert_eq!((status, body.as_str()), (200, "web/web1 is now maint\n"));
    assert!(
        corral
            .stderr
            .wait_for_from(
                before,
                "Server web/web1 is going DOWN for maintenance (stats page)",
                WAIT
            )
            .is_some()
    );
    assert_eq!(server_status(&corral, "web1"), "MAINT");
    // Every worker took it: with web1 in maintenance and web2 down, every
    // new connection (spread over both workers) finds no server.
    let app = corral.addr("app");
    for _ in 0..10 {
        assert_eq!(common::http::get(app, "/", "x").status, 503);
    }
    assert_eq!(press("b=web&s=web1&action=drain").0, 200);
    assert_eq!(server_status(&corral, "web1"), "DRAIN");
    assert_eq!(press("b=web&s=web1&action=ready").0, 200);
    assert_eq!(server_status(&corral, "web1"), "UP");
    for _ in 0..10 {
        assert_eq!(common::http::get(app, "/", "x").status, 200);
    }

    // And only as asked: each refusal leaves web1 as it is.
    let (status, body) = press("b=web&s=nope&action=maint");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("No such server"), "{body}");
    let (status, body) = press("b=web&s=web1&action=explode");
    assert_eq!(status, 400);
    assert!(body.contains("unknown action `explode`"), "{body}");
    let q = "/stats;admin?b=web&s=web1&action=maint";
    let (status, body) = request(&corral, "POST", q, Some("admin:s3cret"), "");
    assert_eq!(status, 403, "no X-Corral-Admin header: {body}");
    assert_eq!(
        request(
            &corral,
            "GET",
            q,
            Some("admin:s3cret"),
            "X-Corral-Admin: 1\r\n"
        )
        .0,
        405
    );
    assert_eq!(
        request(
            &corral,
            "POST",
            q,
            Some("admin:wrong"),
            "X-Corral-Admin: 1\r\n"
        )
        .0,
        401
    );
    assert_eq!(
        request(&corral, "POST", q, None, "X-Corral-Admin: 1\r\n").0,
        401
    );
    assert_eq!(server_status(&corral, "web1"), "UP");
}

#[test]
fn without_admin_the_page_has_no_buttons_and_no_admin_path() {
    let dir = tempfile::tempdir().unwrap();
    let (corral, _app) = start(r#", auth: [ "admin:{{ file PASSFILE }}" ]"#, dir.path());
    let (status, html) = fetch(&corral, "/stats", Some("admin:s3cret"));
    assert_eq!(status, 200);
    assert!(html.contains("const ADMIN_URI = null;"), "{html}");
    let q = "/stats;admin?b=web&s=web1&action=maint";
    let (status, _) = request(
        &corral,
        "POST",
        q,
        Some("admin:s3cret"),
        "X-Corral-Admin: 1\r\n",
    );
    assert_ne!(status, 200);
    assert_eq!(server_status(&corral, "web1"), "UP");
}

#[test]
fn the_page_asks_for_a_password_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let (corral, _app) = start(r#", auth: [ "admin:{{ file PASSFILE }}" ]"#, dir.path());
    assert_eq!(fetch(&corral, "/stats", None).0, 401);
    assert_eq!(fetch(&corral, "/metrics", Some("admin:wrong")).0, 401);
    assert_eq!(fetch(&corral, "/stats;json", Some("admin:s3cret")).0, 200);
    // Other paths on a stats-only frontend are not the page.
    assert_eq!(fetch(&corral, "/other", Some("admin:s3cret")).0, 503);
}

#[test]
fn the_dashboard_renders_in_headless_chromium_with_a_down_server_shown_down() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        println!(
            "SKIPPED the_dashboard_renders_in_headless_chromium_with_a_down_server_shown_down: chromium not installed"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (corral, _app) = start(
        r#", auth: [ "admin:{{ file PASSFILE }}" ], admin: true"#,
        dir.path(),
    );
    traffic(&corral, 10, 1);
    // The browser sends the credentials of the URL as Basic auth.
    let url = format!("http://admin:s3cret@{}/stats", corral.addr("stats"));
    let profile = dir.path().join("profile");
    let base = |extra: &[&str]| {
        let mut c = Command::new(chromium);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=3000", "--timeout=20000"])
        .args(extra)
        .arg(&url);
        c
    };
    let started = Instant::now();
    let out = base(&["--dump-dom"]).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<table class=\"frontend\" id=\"fe-app\">"),
        "no frontend table in:\n{dom}"
    );
    assert!(
        dom.contains("<table class=\"backend\" id=\"be-web\">"),
        "{dom}"
    );
    assert!(
        dom.contains("<tr class=\"server up\" data-name=\"web1\">"),
        "web1 not shown up:\n{dom}"
    );
    assert!(
        dom.contains("<tr class=\"server down\" data-name=\"web2\">"),
        "web2 not shown down:\n{dom}"
    );
    assert!(dom.contains("<td class=\"status\">DOWN</td>"), "{dom}");
    // admin: true: each server row has its three buttons.
    for server in ["web1", "web2"] {
        for (action, label) in [("ready", "Ready"), ("drain", "Drain"), ("maint", "Maint")] {
            let button = format!(
                "<button type=\"button\" data-action=\"{action}\" data-server=\"web/{server}\">{label}</button>"
            );
            assert!(dom.contains(&button), "no {button} in:\n{dom}");
        }
    }
    assert!(
        !dom.contains("http://") || dom.matches("http://").count() <= 2,
        "no external references"
    );
    // A screenshot, kept as a test artifact.
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("stats-page.png");
    let _ = std::fs::remove_file(&png);
    let out = base(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1400,900",
    ])
    .output()
    .unwrap();
    let meta = std::fs::metadata(&png)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(meta.len() > 10_000, "screenshot too small");
    println!("screenshot: {}", png.display());
}
