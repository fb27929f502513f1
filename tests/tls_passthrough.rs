//! TLS passthrough routed by SNI: corral reads the ClientHello without
//! decrypting it, picks the backend with `use_backend`, and forwards every
//! byte untouched, so each client completes its handshake with the
//! backend's own certificate. Non-TLS, malformed and oversized hellos
//! never reach a server.

mod common;
use common::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A test CA and certificates it signs for one name each.
struct Pki {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A certificate with its private key.
struct Cert {
    der: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "corral test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        Pki {
            ca: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// A certificate for `name` (CN and SAN).
    fn issue(&self, name: &str) -> Cert {
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Cert {
            der: cert.der().clone(),
            key: key.serialize_der(),
        }
    }

    /// A client configuration trusting the CA only.
    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// A TLS server on loopback presenting `cert`: for each connection it
/// completes the handshake, reads one line and answers `NAME: LINE`.
fn tls_server(name: &'static str, cert: &Cert) -> Server {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone()));
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der.clone()], key)
            .unwrap(),
    );
    Server::start(Arc::new(move |s: TcpStream| {
        let _ = s.set_read_timeout(Some(WAIT));
        let _ = s.set_write_timeout(Some(WAIT));
        let conn = rustls::ServerConnection::new(config.clone()).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, s);
        let mut line = String::new();
        if BufReader::new(&mut tls).read_line(&mut line).is_ok() && !line.is_empty() {
            let _ = write!(tls, "{name}: {line}");
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }))
}

fn config(api: &Server, www: &Server, extra_global: &str) -> String {
    format!(
        r#"global: {{ workers: 2, log: stdout{extra_global} }}
defaults:
  timeout: {{ connect: 2s, client: 10s, server: 10s }}
frontends:
  tls_in:
    bind: ["127.0.0.1:0"]
    mode: tcp
    tcp-request:
      - inspect-delay 5s
      - content accept if {{ req.ssl_hello_type 1 }}
      - content reject
    use_backend:
      - api if {{ req.ssl_sni -i api.example.com }}
      - www if {{ req.ssl_sni -m end .example.org }}
    default_backend: www
backends:
  api: {{ mode: tcp, servers: {{ a1: {{ address: "{}" }} }} }}
  www: {{ mode: tcp, servers: {{ w1: {{ address: "{}" }} }} }}
"#,
        api.addr, www.addr
    )
}

/// Everything a test needs: the CA, the two backends and corral.
struct Setup {
    pki: Pki,
    api_cert: CertificateDer<'static>,
    www_cert: CertificateDer<'static>,
    api: Server,
    www: Server,
    corral: Corral,
}

fn setup(extra_global: &str) -> Setup {
    let pki = Pki::new();
    let api_cert = pki.issue("api.example.com");
    let www_cert = pki.issue("www.example.org");
    let api = tls_server("api", &api_cert);
    let www = tls_server("www", &www_cert);
    let corral = Corral::start(&config(&api, &www, extra_global));
    Setup {
        pki,
        api_cert: api_cert.der,
        www_cert: www_cert.der,
        api,
        www,
        corral,
    }
}

/// A TLS client for `sni` whose first bytes have not been sent yet.
fn client_conn(pki: &Pki, sni: &str) -> rustls::ClientConnection {
    let name = ServerName::try_from(sni.to_string()).unwrap();
    rustls::ClientConnection::new(pki.client(), name).unwrap()
}

/// Completes the handshake on `sock` (the hello may already be sent),
/// sends one line and returns the server's certificate and answer.
fn finish(
    conn: rustls::ClientConnection,
    sock: TcpStream,
    line: &str,
) -> Result<(CertificateDer<'static>, String), String> {
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("handshake or write: {e}"))?;
    let cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no peer certificate")?
        .clone()
        .into_owned();
    let mut answer = String::new();
    BufReader::new(&mut tls)
        .read_line(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    Ok((cert, answer.trim_end().to_string()))
}

/// A whole TLS exchange through corral with server name `sni`.
fn exchange(s: &Setup, sni: &str, line: &str) -> Result<(CertificateDer<'static>, String), String> {
    let sock = connect(s.corral.addr("tls_in"));
    finish(client_conn(&s.pki, sni), sock, line)
}

/// The ClientHello `conn` wants to send (as rustls frames it: one record).
fn take_hello(conn: &mut rustls::ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

/// Waits (bounded) until corral closes `sock`; what it read meanwhile.
fn closed_by_corral(sock: &mut TcpStream) -> Vec<u8> {
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + WAIT;
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is a close too (bytes were left unread).
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("corral did not close the connection: {e}"),
        }
        assert!(Instant::now() < deadline, "still open after {WAIT:?}");
    }
}

fn port(sock: &TcpStream) -> u16 {
    sock.local_addr().unwrap().port()
}

#[test]
fn each_server_name_reaches_its_own_backend_and_certificate() {
    let s = setup("");
    let (cert, answer) = exchange(&s, "api.example.com", "one").unwrap();
    assert_eq!(cert, s.api_cert, "the api backend's own certificate");
    assert_eq!(answer, "api: one");
    let (cert, answer) = exchange(&s, "www.example.org", "two").unwrap();
    assert_eq!(cert, s.www_cert, "the www backend's own certificate");
    assert_eq!(answer, "www: two");
    // `-i`: the name's case does not matter.
    let (cert, answer) = exchange(&s, "API.Example.COM", "three").unwrap();
    assert_eq!(cert, s.api_cert);
    assert_eq!(answer, "api: three");
    assert_eq!((s.api.accepted(), s.www.accepted()), (2, 1));
    // Logged as any tcp connection, with the bytes the backend sent.
    let line = s
        .corral
        .stdout
        .wait_for(" tls_in api/a1 ", WAIT)
        .expect("log line");
    assert!(line.contains(" -- "), "{line}");
}

#[test]
fn a_name_no_rule_matches_goes_to_the_default_backend() {
    let s = setup("");
    // The www backend's certificate does not name other.example.net: the
    // client refuses it, which shows where corral sent the connection.
    let err = exchange(&s, "other.example.net", "x").unwrap_err();
    assert!(
        err.contains("NotValidForName") || err.contains("certificate"),
        "{err}"
    );
    assert!(eventually(WAIT, || s.www.accepted() == 1));
    assert_eq!(s.api.accepted(), 0);
}

#[test]
fn a_hello_in_five_byte_writes_still_routes() {
    let s = setup("");
    let mut conn = client_conn(&s.pki, "api.example.com");
    let hello = take_hello(&mut conn);
    let mut sock = connect(s.corral.addr("tls_in"));
    sock.set_nodelay(true).unwrap();
    for piece in hello.chunks(5) {
        sock.write_all(piece).unwrap();
        // Pace the pieces so corral reads them in many reads (there is
        // no signal for "corral has read this"; 1 ms bounds the test).
        std::thread::sleep(Duration::from_millis(1));
    }
    let (cert, answer) = finish(conn, sock, "pieces").unwrap();
    assert_eq!(cert, s.api_cert);
    assert_eq!(answer, "api: pieces");
}

#[test]
fn a_hello_split_over_two_records_still_routes() {
    let s = setup("");
    let mut conn = client_conn(&s.pki, "www.example.org");
    let hello = take_hello(&mut conn);
    // rustls sends the hello in one record: cut its handshake message in
    // two records (TLS allows a message to span records).
    assert_eq!(hello[0], 0x16);
    let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
    assert_eq!(hello.len(), 5 + len, "one record");
    let message = &hello[5..];
    let cut = 30;
    let mut split = Vec::new();
    for part in [&message[..cut], &message[cut..]] {
        split.extend_from_slice(&[0x16, hello[1], hello[2]]);
        split.extend_from_slice(&(part.len() as u16).to_be_bytes());
        split.extend_from_slice(part);
    }
    let mut sock = connect(s.corral.addr("tls_in"));
    sock.write_all(&split).unwrap();
    let (cert, answer) = finish(conn, sock, "records").unwrap();
    assert_eq!(cert, s.www_cert);
    assert_eq!(answer, "www: records");
}

#[test]
fn bytes_that_are_not_tls_are_rejected_before_any_backend() {
    let s = setup("");
    let mut sock = connect(s.corral.addr("tls_in"));
    sock.write_all(b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        .unwrap();
    assert_eq!(closed_by_corral(&mut sock), b"");
    // Rejected by `content reject`, logged as HAProxy does.
    let needle = format!(":{} [", port(&sock));
    let line = s.corral.stdout.wait_for(&needle, WAIT).expect("log line");
    assert!(line.contains(" tls_in tls_in/<NOSRV> "), "{line}");
    assert!(line.contains(" PR "), "{line}");
    assert_eq!((s.api.accepted(), s.www.accepted()), (0, 0));
}

#[test]
fn a_malformed_hello_is_closed_logged_and_never_forwarded() {
    let s = setup("");
    let mut sock = connect(s.corral.addr("tls_in"));
    // A valid handshake record header, then a ClientHello of garbage.
    let mut bad = vec![0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c];
    bad.extend((0..60u8).map(|i| 0xff - i));
    sock.write_all(&bad).unwrap();
    assert_eq!(closed_by_corral(&mut sock), b"");
    let client = format!("127.0.0.1:{}", port(&sock));
    let warning = s
        .corral
        .stderr
        .wait_for(&client, WAIT)
        .expect("a warning naming the client");
    assert!(warning.contains("[WARNING]"), "{warning}");
    assert!(warning.contains("frontend tls_in"), "{warning}");
    assert!(
        warning.contains("ClientHello version is not TLS"),
        "{warning}"
    );
    let line = s
        .corral
        .stdout
        .wait_for(&format!("{client} ["), WAIT)
        .expect("log line");
    assert!(
        line.contains(" tls_in tls_in/<NOSRV> ") && line.contains(" PR "),
        "{line}"
    );
    assert_eq!((s.api.accepted(), s.www.accepted()), (0, 0));
}

#[test]
fn an_oversized_hello_is_closed_logged_and_never_forwarded() {
    let s = setup(", tune.bufsize: 4k");
    // A real hello stretched by a large padding extension (type 21): each
    // length grows by the padding; the record still fits TLS's 16 KiB.
    let mut conn = client_conn(&s.pki, "api.example.com");
    let mut hello = take_hello(&mut conn);
    let pad = 6000usize;
    hello.extend_from_slice(&[0x00, 0x15]);
    hello.extend_from_slice(&(pad as u16).to_be_bytes());
    hello.extend(std::iter::repeat_n(0u8, pad));
    let grow = pad + 4;
    let add = |bytes: &mut [u8], by: usize| {
        let mut v = 0usize;
        for b in bytes.iter() {
            v = v << 8 | usize::from(*b);
        }
        v += by;
        for b in bytes.iter_mut().rev() {
            *b = v as u8;
            v >>= 8;
        }
    };
    add(&mut hello[3..5], grow); // record length
    add(&mut hello[6..9], grow); // handshake length
    // The extensions block length sits right before the first extension:
    // find it from the end of the fixed ClientHello fields.
    let body = 9;
    let sid = usize::from(hello[body + 34]);
    let suites_at = body + 35 + sid;
    let suites = usize::from(u16::from_be_bytes([hello[suites_at], hello[suites_at + 1]]));
    let methods_at = suites_at + 2 + suites;
    let exts_at = methods_at + 1 + usize::from(hello[methods_at]);
    add(&mut hello[exts_at..exts_at + 2], grow);
    let mut sock = connect(s.corral.addr("tls_in"));
    // corral may close before reading it all: a failed write is fine.
    let _ = sock.write_all(&hello);
    let _ = closed_by_corral(&mut sock);
    let client = format!("127.0.0.1:{}", port(&sock));
    let warning = s
        .corral
        .stderr
        .wait_for(&client, WAIT)
        .expect("a warning naming the client");
    assert!(warning.contains("larger than tune.bufsize"), "{warning}");
    assert_eq!((s.api.accepted(), s.www.accepted()), (0, 0));
}

#[test]
fn a_silent_client_is_judged_when_the_delay_ends() {
    let api = Server::start(Arc::new(|_| {}));
    let yaml = format!(
        r#"global: {{ workers: 1, log: stdout }}
frontends:
  fe:
    bind: ["127.0.0.1:0"]
    tcp-request: [ "inspect-delay 300ms", "content accept if {{ req.len gt 0 }}", "content reject" ]
    default_backend: be
backends:
  be: {{ servers: {{ s: {{ address: "{}" }} }} }}
"#,
        api.addr
    );
    let corral = Corral::start(&yaml);
    let mut sock = connect(corral.addr("fe"));
    let started = Instant::now();
    assert_eq!(closed_by_corral(&mut sock), b"");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(api.accepted(), 0);
    // A client that speaks is let through, its first bytes included.
    let echo = echo_server();
    let corral2 = Corral::start(&yaml.replace(&api.addr.to_string(), &echo.addr.to_string()));
    let mut sock = connect(corral2.addr("fe"));
    sock.write_all(b"not tls at all").unwrap();
    let mut got = [0u8; 14];
    sock.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"not tls at all");
}

#[test]
fn use_backend_without_inspection_and_a_connection_no_rule_routes() {
    let a = name_server("a");
    let b = name_server("b");
    let yaml = format!(
        r#"global: {{ workers: 1, log: stdout }}
frontends:
  fe:
    bind: ["127.0.0.1:0"]
    use_backend:
      - a if {{ src 127.0.0.2 }}
      - b if {{ src 127.0.0.3 }}
backends:
  a: {{ servers: {{ s: {{ address: "{}" }} }} }}
  b: {{ servers: {{ s: {{ address: "{}" }} }} }}
"#,
        a.addr, b.addr
    );
    let corral = Corral::start(&yaml);
    let addr: SocketAddr = corral.addr("fe");
    assert_eq!(name_via(addr, "127.0.0.2".parse().unwrap()).unwrap(), "a");
    assert_eq!(name_via(addr, "127.0.0.3".parse().unwrap()).unwrap(), "b");
    // No rule matches and there is no default_backend: closed, logged
    // with no server, as HAProxy does.
    let mut sock = connect_from("127.0.0.4".parse().unwrap(), addr).unwrap();
    let _ = sock.write_all(b"x");
    assert_eq!(closed_by_corral(&mut sock), b"");
    let line = corral
        .stdout
        .wait_for("127.0.0.4:", WAIT)
        .expect("log line");
    assert!(
        line.contains(" fe fe/<NOSRV> ") && line.contains(" SC "),
        "{line}"
    );
    assert_eq!((a.accepted(), b.accepted()), (1, 1));
}

#[test]
fn first_byte_fetches_without_an_inspect_delay_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corral.yaml");
    let yaml = "frontends:\n  tls_in:\n    bind: \"127.0.0.1:0\"\n    use_backend: [ \"be if { req.ssl_sni -i a.example }\" ]\nbackends:\n  be:\n    servers:\n      s1: { address: \"127.0.0.1:9\" }\n";
    std::fs::write(&path, yaml).unwrap();
    let (status, _, stderr) = run_cmd(&["check", "-c", path.to_str().unwrap()]);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("[WARNING]")
            && stderr.contains("frontends.tls_in:")
            && stderr.contains("inspect-delay"),
        "{stderr}"
    );
    // With the delay, no warning.
    let with_delay = yaml.replace(
        "    use_backend:",
        "    tcp-request: [ \"inspect-delay 5s\" ]\n    use_backend:",
    );
    std::fs::write(&path, with_delay).unwrap();
    let (status, _, stderr) = run_cmd(&["check", "-c", path.to_str().unwrap()]);
    assert!(status.success() && !stderr.contains("WARNING"), "{stderr}");
}
