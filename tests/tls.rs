//! TLS termination: certificates chosen by SNI, the default certificate,
//! old protocol versions refused, resumption, `ssl_fc*` fetches, seed
//! 002's HTTPS redirect, TLS in tcp mode, TLS to servers with health
//! checks, and certificate reload under load.

mod common;

use common::http::HttpServer;
use common::tls::{self, Pki};
use common::{Corral, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Certificates of three sites in one directory, default first by name.
struct Sites {
    pki: Pki,
    dir: tempfile::TempDir,
    default: tls::Leaf,
    api: tls::Leaf,
    wild: tls::Leaf,
}

fn sites() -> Sites {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let default = pki.leaf(&["default.test"], false);
    let api = pki.leaf(&["api.example.com"], true);
    let wild = pki.leaf(&["*.example.org"], false);
    default.write(&dir.path().join("00-default.pem"));
    api.write(&dir.path().join("10-api.pem"));
    // A key beside its certificate (`<file>.key`) works too.
    std::fs::write(dir.path().join("20-wild.pem"), &wild.cert_pem).unwrap();
    std::fs::write(dir.path().join("20-wild.pem.key"), &wild.key_pem).unwrap();
    Sites {
        pki,
        dir,
        default,
        api,
        wild,
    }
}

fn https_yaml(certs: &Path, backend: std::net::SocketAddr, extra_global: &str) -> String {
    format!(
        r#"
global: {{ workers: 2, log: stdout {extra_global} }}
defaults: {{ mode: http, timeout: {{ connect: 2s, client: 10s, server: 10s }} }}
frontends:
  https:
    bind: ["127.0.0.1:0"]
    tls: {{ certs: ["{}"], alpn: [http/1.1] }}
    http-request:
      - set-header X-Forwarded-Proto https if {{ ssl_fc }}
      - set-header X-Tls "%[ssl_fc_sni] %[ssl_fc_protocol] %[ssl_fc_cipher] %[ssl_fc_alpn] %[ssl_fc_is_resumed]"
    default_backend: app
backends:
  app:
    servers: {{ a: {{ address: "{backend}" }} }}
"#,
        certs.display()
    )
}

#[test]
fn sni_picks_each_sites_certificate_and_no_sni_gets_the_default() {
    let s = sites();
    let app = HttpServer::named("app");
    let corral = Corral::start(&https_yaml(s.dir.path(), app.addr(), ""));
    let addr = corral.addr("https");
    let client = s.pki.client();
    for (sni, want) in [
        ("api.example.com", &s.api.der),
        ("API.Example.COM", &s.api.der),
        ("www.example.org", &s.wild.der),
        ("shop.example.org", &s.wild.der),
        ("default.test", &s.default.der),
    ] {
        let mut t = tls::connect(&client, addr, Some(sni)).unwrap_or_else(|e| panic!("{sni}: {e}"));
        assert_eq!(&tls::peer_cert(&t), want, "certificate for SNI {sni}");
        let a = tls::get(&mut t, "/", sni).unwrap();
        assert_eq!(a.status, 200, "{sni}");
        assert_eq!(a.body, "hello from app\n");
    }
    // No SNI, or a name nobody covers: the default certificate.
    let anything = tls::client_trusting_anything();
    let t = tls::connect(&anything, addr, None).unwrap();
    assert_eq!(tls::peer_cert(&t), s.default.der);
    let t = tls::connect(&anything, addr, Some("nobody.invalid")).unwrap();
    assert_eq!(tls::peer_cert(&t), s.default.der);
    // A client checking names refuses that default for another name.
    assert!(tls::connect(&client, addr, Some("nobody.invalid")).is_err());

    // The fetches reached the server.
    let seen = app.recorded();
    let r = seen
        .iter()
        .find(|r| {
            r.header("x-tls")
                .is_some_and(|v| v.starts_with("api.example.com"))
        })
        .unwrap();
    assert_eq!(r.header("x-forwarded-proto"), Some("https"));
    let tls_fields = r.header("x-tls").unwrap();
    assert!(
        tls_fields == "api.example.com TLSv1.3 TLS_AES_256_GCM_SHA384 http/1.1 0"
            || tls_fields == "api.example.com TLSv1.3 TLS_AES_128_GCM_SHA256 http/1.1 0",
        "{tls_fields}"
    );
}

/// A TLS 1.x ClientHello (no supported_versions extension) offering only
/// `version`.
fn legacy_hello(version: u8) -> Vec<u8> {
    let mut body = vec![3, version];
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 4, 0xc0, 0x13, 0x00, 0x2f]); // ciphers
    body.extend_from_slice(&[1, 0]); // no compression
    // Extensions: signature_algorithms, supported_groups, ec_point_formats
    // (what a real TLS 1.0/1.1 client of today sends).
    let ext: &[u8] = &[
        0x00, 0x0d, 0, 8, 0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, //
        0x00, 0x0a, 0, 4, 0, 2, 0x00, 0x17, //
        0x00, 0x0b, 0, 2, 1, 0,
    ];
    body.extend_from_slice(&[0, ext.len() as u8]);
    body.extend_from_slice(ext);
    let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

#[test]
fn tls_1_0_and_1_1_are_refused() {
    let s = sites();
    let app = HttpServer::named("app");
    let corral = Corral::start(&https_yaml(s.dir.path(), app.addr(), ""));
    let addr = corral.addr("https");
    for minor in [1u8, 2] {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.write_all(&legacy_hello(minor)).unwrap();
        let mut answer = [0u8; 7];
        c.read_exact(&mut answer).unwrap();
        // An alert record (21), fatal (2): no ServerHello. (rustls
        // answers handshake_failure (40) where OpenSSL says
        // protocol_version (70).)
        assert_eq!(answer[0], 21, "TLS 1.{}: {answer:?}", minor - 1);
        assert_eq!(answer[5], 2, "TLS 1.{}: {answer:?}", minor - 1);
        assert!(
            [40, 70].contains(&answer[6]),
            "TLS 1.{}: {answer:?}",
            minor - 1
        );
    }
    // The failures are logged with the reason.
    let logged = corral.stdout.wait_for("https: SSL handshake failure", WAIT);
    assert!(
        logged.is_some_and(|l| l.contains("Tls12NotOffered")),
        "{}",
        corral.stdout.text()
    );
    if which("openssl") {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-tls1_1",
                "-cipher",
                "DEFAULT@SECLEVEL=0",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "openssl -tls1_1 connected:\n{text}");
        assert!(
            text.contains("alert handshake failure")
                || text.contains("alert protocol version")
                || text.contains("no protocols available"),
            "{text}"
        );
    } else {
        println!("SKIPPED tls_1_0_and_1_1_are_refused (openssl part): openssl not installed");
    }
}

#[test]
fn sessions_resume_on_every_worker_over_tls_1_3_and_1_2() {
    let s = sites();
    let app = HttpServer::named("app");
    let corral = Corral::start(&https_yaml(s.dir.path(), app.addr(), ""));
    let addr = corral.addr("https");
    for (label, client) in [
        ("TLS 1.3", s.pki.client_versions(&[&rustls::version::TLS13])),
        ("TLS 1.2", s.pki.client_versions(&[&rustls::version::TLS12])),
    ] {
        let first = tls::connect(&client, addr, Some("api.example.com")).unwrap();
        assert_eq!(
            first.conn.handshake_kind(),
            Some(rustls::HandshakeKind::Full),
            "{label}"
        );
        let mut first = first;
        // TLS 1.3 tickets arrive after the handshake: read a response.
        tls::get(&mut first, "/", "api.example.com").unwrap();
        // Two workers: the connections land on both, and each resumes.
        let mut resumed = 0;
        for _ in 0..10 {
            let mut t = tls::connect(&client, addr, Some("api.example.com")).unwrap();
            let a = tls::get(&mut t, "/", "api.example.com").unwrap();
            assert_eq!(a.status, 200);
            if t.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                resumed += 1;
            }
        }
        assert_eq!(resumed, 10, "{label}: every later connection resumes");
    }
    if which("openssl") {
        let sess = s.dir.path().join("sess.pem");
        let ca = s.dir.path().join("ca.pem");
        std::fs::write(&ca, s.pki.ca_pem()).unwrap();
        let run = |extra: &[&str]| {
            let mut args = vec![
                "s_client",
                "-connect",
                &*Box::leak(addr.to_string().into_boxed_str()),
                "-servername",
                "api.example.com",
                "-CAfile",
                ca.to_str().unwrap(),
            ];
            args.extend_from_slice(extra);
            let out = Command::new("openssl")
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        let first = run(&["-sess_out", sess.to_str().unwrap(), "-tls1_2"]);
        assert!(first.contains("New, TLSv1.2"), "{first}");
        let second = run(&["-sess_in", sess.to_str().unwrap(), "-tls1_2"]);
        assert!(
            second.contains("Reused, TLSv1.2"),
            "openssl did not resume:\n{second}"
        );
    } else {
        println!("SKIPPED sessions_resume (openssl part): openssl not installed");
    }
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

#[test]
fn curl_reaches_the_backend_through_tls_with_the_right_certificate() {
    if !which("curl") {
        println!(
            "SKIPPED curl_reaches_the_backend_through_tls_with_the_right_certificate: curl not installed"
        );
        return;
    }
    let s = sites();
    let app = HttpServer::named("app");
    let corral = Corral::start(&https_yaml(s.dir.path(), app.addr(), ""));
    let port = corral.addr("https").port();
    let ca = s.dir.path().join("ca.pem");
    std::fs::write(&ca, s.pki.ca_pem()).unwrap();
    let curl = |host: &str, extra: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert", ca.to_str().unwrap()])
            .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
            .arg(format!("https://{host}:{port}/"))
            .args(extra)
            .output()
            .unwrap()
    };
    for host in ["api.example.com", "www.example.org"] {
        let out = curl(host, &["-w", "%{http_code} %{ssl_verify_result}"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text, "hello from app\n200 0", "{host}");
    }
    // TLS 1.1 is refused to curl too.
    let out = curl("api.example.com", &["--tlsv1.1", "--tls-max", "1.1"]);
    assert!(!out.status.success(), "curl --tls-max 1.1 succeeded");
}

#[test]
fn seed_002_http_is_redirected_to_https_and_https_reaches_the_backends_marked() {
    let s = sites();
    let site1 = HttpServer::named("site1");
    let site2 = HttpServer::named("site2");
    let yaml = format!(
        r#"
global: {{ log: stdout }}
defaults:
  mode: http
  option: [httplog, forwardfor, http-server-close]
  timeout: {{ connect: 5000, client: 50000, server: 50000 }}
frontends:
  http_frontend:
    bind: ["127.0.0.1:0", "127.0.0.1:0 ssl"]
    tls: {{ certs: ["{}"] }}
    acl:
      web_host1: hdr(host) -i site1.example.org
    use_backend:
      - subdomain1 if web_host1
backends:
  subdomain1:
    balance: roundrobin
    http-request:
      - redirect scheme https code 301 if !{{ ssl_fc }}
      - set-header X-Forwarded-Proto https if {{ ssl_fc }}
      - set-header X-Client-IP %[src]
    servers:
      site1: {{ address: "{}" }}
      site2: {{ address: "{}" }}
"#,
        s.dir.path().display(),
        site1.addr(),
        site2.addr()
    );
    let corral = Corral::start(&yaml);
    let plain = corral.listening["http_frontend"][0];
    let secure = corral.listening["http_frontend"][1];
    let r = common::http::get(plain, "/page?x=1", "site1.example.org");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("https://site1.example.org/page?x=1")
    );
    assert_eq!(
        site1.count() + site2.count(),
        0,
        "a redirected request reaches no server"
    );
    let client = s.pki.client();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let mut t = tls::connect(&client, secure, Some("site1.example.org")).unwrap();
        let a = tls::get(&mut t, "/page", "site1.example.org").unwrap();
        assert_eq!(a.status, 200);
        bodies.push(a.body);
    }
    assert!(bodies.contains(&"hello from site1\n".to_string()));
    assert!(
        bodies.contains(&"hello from site2\n".to_string()),
        "round robin over both"
    );
    for r in site1.recorded().iter().chain(site2.recorded().iter()) {
        assert_eq!(r.header("x-forwarded-proto"), Some("https"));
        assert_eq!(r.header("x-client-ip"), Some("127.0.0.1"));
    }
    // httplog marks the TLS frontend with `~`.
    let line = corral.stdout.wait_for("http_frontend~ subdomain1/", WAIT);
    let line = line.or_else(|| corral.stderr.wait_for("http_frontend~ subdomain1/", WAIT));
    assert!(line.is_some(), "no httplog line with `http_frontend~`");
}

#[test]
fn tcp_mode_terminates_tls_in_front_of_any_service() {
    let s = sites();
    let echo = common::echo_server();
    let yaml = format!(
        r#"
global: {{ log: stdout }}
frontends:
  tls_echo:
    bind: ["127.0.0.1:0"]
    mode: tcp
    option: [tcplog]
    tls: {{ certs: ["{}"] }}
    default_backend: echo
backends:
  echo:
    mode: tcp
    servers: {{ e: {{ address: "{}" }} }}
"#,
        s.dir.path().display(),
        echo.addr
    );
    let corral = Corral::start(&yaml);
    let client = s.pki.client();
    let mut t = tls::connect(&client, corral.addr("tls_echo"), Some("api.example.com")).unwrap();
    assert_eq!(tls::peer_cert(&t), s.api.der);
    for i in 0..20 {
        let msg = format!("message {i} through TLS\n");
        t.write_all(msg.as_bytes()).unwrap();
        t.flush().unwrap();
        let mut back = vec![0u8; msg.len()];
        t.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    t.conn.send_close_notify();
    t.flush().unwrap();
    let mut rest = Vec::new();
    let _ = t.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert!(
        corral.stdout.wait_for("tls_echo~ echo/e", WAIT).is_some(),
        "tcplog marks TLS: {}",
        corral.stdout.text()
    );
}

#[test]
fn servers_over_tls_are_verified_checked_and_given_the_clients_sni() {
    let s = sites();
    let backend_leaf = s.pki.leaf(&["api.example.com", "backend.internal"], false);
    let b1 = tls::https_server("b1", &backend_leaf);
    let cas = tempfile::tempdir().unwrap();
    let ca = cas.path().join("ca.pem");
    std::fs::write(&ca, s.pki.ca_pem()).unwrap();
    // Another CA: verification against it fails.
    let other = Pki::new();
    let other_ca = cas.path().join("other-ca.pem");
    std::fs::write(&other_ca, other.ca_pem()).unwrap();
    // A plain server where TLS is expected: its health check fails.
    let plain = HttpServer::named("plain");
    let yaml = format!(
        r#"
global: {{ log: stdout }}
defaults: {{ mode: http, timeout: {{ connect: 2s, client: 10s, server: 10s, check: 1s }} }}
frontends:
  https:
    bind: ["127.0.0.1:0"]
    tls: {{ certs: ["{certs}"] }}
    use_backend:
      - wrong_ca if {{ path_beg /wrong }}
      - unverified if {{ path_beg /none }}
      - fixed if {{ path_beg /fixed }}
    default_backend: verified
backends:
  verified:
    servers:
      b1: {{ address: "{b1}", check: {{ inter: 200ms, rise: 1, fall: 1 }}, tls: {{ verify: required, ca: "{ca}", sni: "%[ssl_fc_sni]" }} }}
  fixed:
    servers:
      b1: {{ address: "{b1}", tls: {{ verify: required, ca: "{ca}", sni: backend.internal }} }}
  wrong_ca:
    servers:
      b1: {{ address: "{b1}", tls: {{ verify: required, ca: "{other}", sni: backend.internal }} }}
  unverified:
    servers:
      b1: {{ address: "{b1}", tls: {{ verify: none }} }}
  plainchecked:
    servers:
      p: {{ address: "{plain}", check: {{ inter: 200ms, rise: 1, fall: 1 }}, tls: {{ verify: none }} }}
"#,
        certs = s.dir.path().display(),
        b1 = b1.addr,
        ca = ca.display(),
        other = other_ca.display(),
        plain = plain.addr()
    );
    let corral = Corral::start(&yaml);
    let addr = corral.addr("https");
    let client = s.pki.client();
    let ask = |path: &str| {
        let mut t = tls::connect(&client, addr, Some("api.example.com")).unwrap();
        tls::get(&mut t, path, "api.example.com").unwrap()
    };
    let a = ask("/");
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "hello from b1 sni=api.example.com\n")
    );
    let a = ask("/fixed");
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "hello from b1 sni=backend.internal\n")
    );
    let a = ask("/none");
    assert_eq!((a.status, a.body.as_str()), (200, "hello from b1 sni=-\n"));
    let a = ask("/wrong");
    assert_eq!(
        a.status, 503,
        "a server whose certificate does not verify is not used"
    );
    // Health checks over TLS: b1 stays up, the plain server goes down.
    assert!(
        corral
            .stderr
            .wait_for("Server plainchecked/p is DOWN", WAIT)
            .is_some(),
        "{}",
        corral.stderr.text()
    );
    assert_eq!(
        corral.stderr.count("Server verified/b1 is DOWN"),
        0,
        "{}",
        corral.stderr.text()
    );
    assert_eq!(
        plain.count(),
        0,
        "a TLS check sends no HTTP to a plain server"
    );
}

#[test]
fn certificates_reload_on_sighup_under_load_without_a_failed_request() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.pem");
    let old = pki.leaf(&["reload.test"], false);
    let new = pki.leaf(&["reload.test"], true);
    old.write(&file);
    let app = HttpServer::named("app");
    let corral = Corral::start(&https_yaml(&file, app.addr(), ""));
    let addr = corral.addr("https");
    // Resumed sessions keep the certificate of their first handshake.
    let client = pki.client_full_handshakes();

    // Load: four threads, a new TLS connection per request, until told.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, saw_new) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let new_der = Arc::new(new.der.clone());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed, saw_new, client, new_der) = (
                stop.clone(),
                ok.clone(),
                failed.clone(),
                saw_new.clone(),
                client.clone(),
                new_der.clone(),
            );
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let result =
                        tls::connect(&client, addr, Some("reload.test")).and_then(|mut t| {
                            let cert = tls::peer_cert(&t);
                            tls::get(&mut t, "/", "reload.test").map(|a| (a, cert))
                        });
                    match result {
                        Ok((a, cert)) if a.status == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if cert == *new_der {
                                saw_new.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();
    let wait_for = |n: &AtomicUsize, at_least: usize| {
        let deadline = Instant::now() + WAIT;
        while n.load(Ordering::SeqCst) < at_least && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        n.load(Ordering::SeqCst) >= at_least
    };
    assert!(wait_for(&ok, 50), "no load flowing");
    assert_eq!(saw_new.load(Ordering::SeqCst), 0);

    // A broken file first: the configuration is not valid any more, so
    // the reload fails, says why, and the current generation (with the
    // current certificate) serves on.
    std::fs::write(&file, format!("{}{}", new.cert_pem, old.key_pem)).unwrap();
    let before = corral.stderr.len();
    corral.signal(libc::SIGHUP);
    let refused = corral
        .stderr
        .wait_for_from(before, "reload (SIGHUP) failed", WAIT)
        .expect("the refused reload is logged");
    assert!(
        refused.contains("the private key does not belong to the certificate"),
        "{refused}"
    );
    let ok_then = ok.load(Ordering::SeqCst);
    assert!(wait_for(&ok, ok_then + 50));
    assert_eq!(
        saw_new.load(Ordering::SeqCst),
        0,
        "a mismatched key never replaces the certificate"
    );

    // Then the real one: a new generation serves it.
    new.write(&file);
    let before = corral.stderr.len();
    corral.signal(libc::SIGHUP);
    assert!(
        corral
            .stderr
            .wait_for_from(before, "reload (SIGHUP) done", WAIT)
            .is_some()
    );
    assert!(
        wait_for(&saw_new, 50),
        "the new certificate is served after the reload"
    );
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed requests during reloads ({} ok)",
        ok.load(Ordering::SeqCst)
    );
}

#[test]
fn a_certificate_whose_key_is_wrong_or_missing_is_refused_naming_the_file() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let a = pki.leaf(&["a.test"], false);
    let b = pki.leaf(&["b.test"], false);
    let cases = [
        (
            "mismatch.pem",
            format!("{}{}", a.cert_pem, b.key_pem),
            "the private key does not belong to the certificate",
        ),
        ("nokey.pem", a.cert_pem.clone(), "holds no private key, and"),
        (
            "garbage.pem",
            "not a certificate\n".to_string(),
            "holds no certificate",
        ),
    ];
    for (name, pem, says) in cases {
        let cert = dir.path().join(name);
        std::fs::write(&cert, pem).unwrap();
        let yaml = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &yaml,
            format!(
                "frontends:\n  fe:\n    bind: \"127.0.0.1:0\"\n    mode: tcp\n    default_backend: be\n    tls: {{ certs: [ {name} ] }}\nbackends:\n  be: {{ servers: {{ s1: {{ address: \"127.0.0.1:9\" }} }} }}\n"
            ),
        )
        .unwrap();
        let (status, _, stderr) = common::run_cmd(&["check", "-c", yaml.to_str().unwrap()]);
        assert_eq!(status.code(), Some(1), "{name}: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.contains(":6:21: frontends.fe.tls.certs[0]: "),
            "{name}: {first}"
        );
        assert!(
            first.contains(name) && first.contains(says),
            "{name}: {first}"
        );
    }
}

/// `https_yaml` with more keys in the frontend's `tls:` block.
fn https_yaml_tls(certs: &Path, backend: std::net::SocketAddr, tls_extra: &str) -> String {
    https_yaml(certs, backend, "").replace(
        "alpn: [http/1.1] }",
        &format!("alpn: [http/1.1]{tls_extra} }}"),
    )
}

/// How many of openssl's `-reconnect` connections (5 per run, `runs`
/// runs) resumed, and what it printed.
fn openssl_reconnects(
    addr: std::net::SocketAddr,
    ca: &Path,
    extra: &[&str],
    runs: usize,
) -> (usize, usize, String) {
    let (mut reused, mut total, mut text) = (0, 0, String::new());
    for _ in 0..runs {
        let addr = addr.to_string();
        let mut args = vec![
            "s_client",
            "-connect",
            &addr,
            "-servername",
            "api.example.com",
            "-CAfile",
            ca.to_str().unwrap(),
            "-reconnect",
        ];
        args.extend_from_slice(extra);
        let out = Command::new("openssl")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("Reused,") || l.starts_with("New,"))
            .collect();
        // The first connection is new; each reconnect counts.
        total += lines.len().saturating_sub(1);
        reused += lines
            .iter()
            .skip(1)
            .filter(|l| l.starts_with("Reused,"))
            .count();
        text.push_str(&stdout);
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (reused, total, text)
}

/// TLS 1.3 with openssl: `-reconnect` never reads the tickets that come
/// after the handshake, so each of `runs` connections is its own
/// `s_client` that sends a request, reads the answer (and the tickets
/// before it) and saves its session for the next (`-sess_in`/`-sess_out`;
/// a stateful TLS 1.3 ticket resumes once). How many resumed.
fn openssl_tls13_chain(addr: std::net::SocketAddr, ca: &Path, runs: usize) -> (usize, String) {
    use std::io::Write as _;
    let sess = ca.with_file_name("tls13.sess");
    let (mut reused, mut text) = (0, String::new());
    for i in 0..=runs {
        let addr = addr.to_string();
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-connect",
            &addr,
            "-servername",
            "api.example.com",
            "-tls1_3",
            "-ign_eof",
            "-CAfile",
        ])
        .arg(ca)
        .arg("-sess_out")
        .arg(&sess);
        if i > 0 {
            cmd.arg("-sess_in").arg(&sess);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"GET / HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if i > 0 && stdout.lines().any(|l| l.starts_with("Reused, TLSv1.3")) {
            reused += 1;
        }
        text.push_str(&stdout);
    }
    (reused, text)
}

#[test]
fn session_ids_resume_on_every_worker_without_tickets() {
    let s = sites();
    let app = HttpServer::named("app");
    // (Not in the certificate directory: corral would load it.)
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_dir.path().join("ca.pem");
    std::fs::write(&ca, s.pki.ca_pem()).unwrap();
    // Tickets off: TLS 1.2 resumes by session id, TLS 1.3 by a stateful
    // ticket (a key into the session cache). Two workers: the kernel
    // spreads the connections over both, and each must find the session.
    let corral = Corral::start(&https_yaml_tls(
        s.dir.path(),
        app.addr(),
        ", tls-tickets: false",
    ));
    let addr = corral.addr("https");
    for (label, client) in [
        ("TLS 1.3", s.pki.client_versions(&[&rustls::version::TLS13])),
        ("TLS 1.2", s.pki.client_versions(&[&rustls::version::TLS12])),
    ] {
        let mut first = tls::connect(&client, addr, Some("api.example.com")).unwrap();
        tls::get(&mut first, "/", "api.example.com").unwrap();
        let mut resumed = 0;
        for _ in 0..10 {
            let mut t = tls::connect(&client, addr, Some("api.example.com")).unwrap();
            assert_eq!(
                tls::get(&mut t, "/", "api.example.com").unwrap().status,
                200
            );
            if t.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                resumed += 1;
            }
        }
        println!("rustls client, {label}, tls-tickets: false: resumed {resumed}/10");
        assert_eq!(resumed, 10, "{label}: every later connection resumes");
    }
    if !which("openssl") {
        println!(
            "SKIPPED session_ids_resume_on_every_worker_without_tickets (openssl part): openssl not installed"
        );
        return;
    }
    let (reused, text) = openssl_tls13_chain(addr, &ca, 10);
    println!("openssl -tls1_3 (-sess_in/-sess_out), tls-tickets: false: {reused}/10");
    assert_eq!(reused, 10, "{text}");
    let (reused, total, text) = openssl_reconnects(addr, &ca, &["-tls1_2"], 2);
    println!("openssl -tls1_2 -reconnect, tls-tickets: false: {reused}/{total}");
    assert_eq!((reused, total), (10, 10), "{text}");
    // Tickets on (the default), and a client that refuses them.
    let corral = Corral::start(&https_yaml(s.dir.path(), app.addr(), ""));
    let addr = corral.addr("https");
    let (reused, total, text) = openssl_reconnects(addr, &ca, &["-tls1_2", "-no_ticket"], 2);
    println!("openssl -tls1_2 -no_ticket -reconnect: {reused}/{total}");
    assert_eq!((reused, total), (10, 10), "{text}");
}

#[test]
fn the_server_picks_the_cipher_suite_not_the_client() {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    let s = sites();
    let app = HttpServer::named("app");
    let corral = Corral::start(&https_yaml(s.dir.path(), app.addr(), ""));
    let addr = corral.addr("https");
    // Each client prefers AES-128 and also offers AES-256, which the
    // server ranks first: the server's order wins.
    for (label, suites, version, want) in [
        (
            "TLS 1.3",
            vec![cs::TLS13_AES_128_GCM_SHA256, cs::TLS13_AES_256_GCM_SHA384],
            &rustls::version::TLS13,
            cs::TLS13_AES_256_GCM_SHA384,
        ),
        (
            "TLS 1.2",
            vec![
                cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ],
            &rustls::version::TLS12,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
    ] {
        let client = s.pki.client_suites(suites, &[version]);
        let t = tls::connect(&client, addr, Some("api.example.com")).unwrap();
        assert_eq!(
            t.conn.negotiated_cipher_suite().map(|c| c.suite()),
            Some(want.suite()),
            "{label}"
        );
    }
    if !which("openssl") {
        println!(
            "SKIPPED the_server_picks_the_cipher_suite_not_the_client (openssl part): openssl not installed"
        );
        return;
    }
    let ca = s.dir.path().join("ca.pem");
    std::fs::write(&ca, s.pki.ca_pem()).unwrap();
    for (args, want) in [
        (
            [
                "-tls1_2",
                "-cipher",
                "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
            ],
            "ECDHE-RSA-AES256-GCM-SHA384",
        ),
        (
            [
                "-tls1_3",
                "-ciphersuites",
                "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
            ],
            "TLS_AES_256_GCM_SHA384",
        ),
    ] {
        let a = addr.to_string();
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &a,
                "-servername",
                "api.example.com",
                "-CAfile",
            ])
            .arg(&ca)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Cipher is {want}")),
            "openssl {args:?}: want {want}\n{text}"
        );
    }
}
