//! TLS for tests: a throw-away CA issuing certificates (rcgen), blocking
//! rustls clients, and a TLS HTTP server to stand in for backends.

use super::Server;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate authority made for one test.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Leaf {
    /// HAProxy's `crt` format: the chain, then the key.
    pub fn combined(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.combined()).unwrap();
    }
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "corral test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        Pki {
            ca: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A leaf for `names` (ECDSA P-256, or RSA 2048 with `rsa`).
    pub fn leaf(&self, names: &[&str], rsa: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, first.as_str());
        }
        let key = if rsa {
            KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap()
        } else {
            KeyPair::generate().unwrap()
        };
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client trusting this CA, TLS 1.2 and 1.3, with resumption.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    }

    /// Like `client`, without resumption: every connection is a full
    /// handshake and sees the certificate served now.
    pub fn client_full_handshakes(&self) -> Arc<ClientConfig> {
        let mut cfg = (*self.client()).clone();
        cfg.resumption = rustls::client::Resumption::disabled();
        Arc::new(cfg)
    }

    /// A client offering only `suites`, in this order (its preference).
    pub fn client_suites(
        &self,
        suites: Vec<rustls::SupportedCipherSuite>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let mut p = rustls::crypto::aws_lc_rs::default_provider();
        p.cipher_suites = suites;
        let cfg = ClientConfig::builder_with_provider(Arc::new(p))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(cfg)
    }

    pub fn client_versions(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let mut cfg = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Connects and completes a handshake; `sni` None sends no SNI (the
/// certificate is then checked against the address, so use it only with
/// a client that does not verify names, or expect the error).
pub fn connect(
    cfg: &Arc<ClientConfig>,
    addr: SocketAddr,
    sni: Option<&str>,
) -> Result<Tls, String> {
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_string()).map_err(|e| e.to_string())?,
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let conn = ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(super::WAIT)).unwrap();
    tcp.set_write_timeout(Some(super::WAIT)).unwrap();
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
    }
    Ok(s)
}

/// The DER of the certificate the server presented.
pub fn peer_cert(s: &Tls) -> Vec<u8> {
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

/// A client that accepts any certificate (to see which one is served
/// when no SNI is sent): corral's own `verify: none` settings.
pub fn client_trusting_anything() -> Arc<ClientConfig> {
    Arc::new(corral::client_config(false, None, Vec::new(), provider()).unwrap())
}

/// A response read off any stream.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Sends `GET path` with `Host` and reads one response (Content-Length
/// framed; the connection stays usable).
pub fn get(s: &mut impl ReadWrite, path: &str, host: &str) -> Result<Answer, String> {
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    s.flush().map_err(|e| e.to_string())?;
    read_answer(s)
}

pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

pub fn read_answer(s: &mut impl Read) -> Result<Answer, String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            Ok(_) => return Err(format!("closed after {} bytes of head", buf.len())),
            Err(e) => return Err(e.to_string()),
        }
        if buf.len() > 65536 {
            return Err("head too long".into());
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let mut a = Answer {
        status,
        head,
        body: String::new(),
    };
    let len: usize = a
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).map_err(|e| e.to_string())?;
    a.body = String::from_utf8_lossy(&body).to_string();
    Ok(a)
}

/// A TLS HTTP/1.1 server answering every request with
/// `hello from NAME sni=SNI` (keep-alive), presenting `leaf`.
pub fn https_server(name: &str, leaf: &Leaf) -> Server {
    let chain = vec![CertificateDer::from(leaf.der.clone())];
    let key = PrivateKeyDer::try_from(
        rustls::pki_types::pem::PemObject::from_pem_slice(leaf.key_pem.as_bytes())
            .map(|k: PrivateKeyDer<'static>| k.secret_der().to_vec())
            .unwrap(),
    )
    .unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let name = name.to_string();
    Server::start(Arc::new(move |tcp: TcpStream| {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        let Ok(conn) = rustls::ServerConnection::new(cfg.clone()) else {
            return;
        };
        let mut s = StreamOwned::new(conn, tcp);
        loop {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match s.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            let sni = s.conn.server_name().unwrap_or("-").to_string();
            let body = format!("hello from {name} sni={sni}\n");
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(reply.as_bytes())
                .and_then(|_| s.flush())
                .is_err()
            {
                return;
            }
        }
    }))
}
