//! The load generator's TLS client (`run --tls`), built for benchmarks
//! only: it must cost less per handshake than the server it measures, so
//! that the proxy, not the load core, sets the pace.
//!
//! - [`NoVerification`] accepts any certificate and any handshake
//!   signature: the client does no public-key operation besides its key
//!   exchange. Never use it outside a benchmark.
//! - No session resumption: no session store, no TLS 1.2 tickets or session
//!   IDs, so every new connection is a full handshake.
//! - One key-exchange group, X25519, so the first ClientHello always
//!   carries the key share the server picks (no HelloRetryRequest).
//! - Handshake signatures offered: the SHA-256 schemes only (ECDSA P-256,
//!   RSA-PSS, and RSA PKCS#1 for TLS 1.2, plus Ed25519), so that every
//!   server signs with the same algorithm for the same key.
//!
//! The connection's record layer is rustls's buffered one (through
//! futures-rustls): each request written and each record read costs rustls
//! one small buffer allocation, the only per-request allocation left on
//! the TLS path.

use crate::cli::{TlsProvider, TlsVersion};
use crate::stats::ErrorKind;
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use glommio::net::TcpStream;
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// What `--tls` asked for, checked.
pub(crate) struct TlsPlan {
    /// The client's configuration, shared by every connection.
    pub config: Arc<ClientConfig>,
    /// `--sni`, if given.
    pub sni: Option<String>,
    /// The version offered.
    pub version: TlsVersion,
    /// `--alpn`, if given.
    pub alpn: Option<String>,
    /// `--tls-suite`, if given.
    pub suite: Option<String>,
    /// The client's crypto provider.
    pub provider: TlsProvider,
}

impl TlsPlan {
    /// Builds the client.
    pub(crate) fn new(
        sni: Option<&str>,
        version: TlsVersion,
        alpn: Option<&str>,
        suite: Option<&str>,
        provider: TlsProvider,
    ) -> Result<TlsPlan, String> {
        if let Some(name) = sni {
            sni_name(name)?;
        }
        let mut crypto = crypto_provider(provider);
        if let Some(name) = suite {
            let names: Vec<&str> = crypto
                .cipher_suites
                .iter()
                .filter_map(|s| s.suite().as_str())
                .collect();
            crypto
                .cipher_suites
                .retain(|s| s.suite().as_str() == Some(name));
            if crypto.cipher_suites.is_empty() {
                return Err(format!(
                    "--tls-suite `{name}`: expected one of {}",
                    names.join(", ")
                ));
            }
        }
        let versions: &[&rustls::SupportedProtocolVersion] = match version {
            TlsVersion::V12 => &[&rustls::version::TLS12],
            TlsVersion::V13 => &[&rustls::version::TLS13],
        };
        let mut config = ClientConfig::builder_with_provider(Arc::new(crypto))
            .with_protocol_versions(versions)
            .map_err(|e| format!("--tls-version and --tls-suite do not go together: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification))
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        if let Some(p) = alpn {
            config.alpn_protocols = vec![p.as_bytes().to_vec()];
        }
        Ok(TlsPlan {
            config: Arc::new(config),
            sni: sni.map(str::to_string),
            version,
            alpn: alpn.map(str::to_string),
            suite: suite.map(str::to_string),
            provider,
        })
    }

    /// The server name for target `text` (`host:port`): `--sni` if given,
    /// else the host, a DNS name (sent as SNI) or an IP address (no SNI).
    pub(crate) fn server_name(&self, text: &str) -> Result<ServerName<'static>, String> {
        if let Some(name) = &self.sni {
            return sni_name(name);
        }
        let host = text.rsplit_once(':').map_or(text, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(|_| {
            format!("TARGET `{text}`: `{host}` is not a valid TLS server name; give one with --sni")
        })
    }

    /// The version offered, as written in reports.
    pub(crate) fn version_name(&self) -> &'static str {
        match self.version {
            TlsVersion::V12 => "1.2",
            TlsVersion::V13 => "1.3",
        }
    }
}

/// `--sni NAME` as a server name: a DNS name.
fn sni_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_string())
        .ok()
        .filter(|n| matches!(n, ServerName::DnsName(_)))
        .ok_or_else(|| format!("--sni `{name}`: expected a DNS name such as example.com"))
}

/// `provider` with X25519 as its only key-exchange group.
fn crypto_provider(provider: TlsProvider) -> CryptoProvider {
    match provider {
        TlsProvider::AwsLcRs => CryptoProvider {
            kx_groups: vec![rustls::crypto::aws_lc_rs::kx_group::X25519],
            ..rustls::crypto::aws_lc_rs::default_provider()
        },
        TlsProvider::Ring => CryptoProvider {
            kx_groups: vec![rustls::crypto::ring::kx_group::X25519],
            ..rustls::crypto::ring::default_provider()
        },
    }
}

/// What a connection negotiated (recorded once per thread, for the
/// report: every contestant of a comparison should show the same).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Negotiated {
    /// `TLSv1_3`...
    pub version: String,
    /// `TLS13_AES_256_GCM_SHA384`...
    pub cipher_suite: String,
    /// The ALPN protocol the server chose, if any.
    pub alpn: Option<String>,
}

/// Runs the client handshake over `tcp` with `server_name`. An I/O or
/// protocol failure is a `Tls` error (the caller decides whether the
/// watchdog's expiry or the end of the run caused it).
pub(crate) async fn handshake(
    plan: &TlsPlan,
    server_name: &ServerName<'static>,
    tcp: TcpStream,
) -> Result<Box<TlsStream<TcpStream>>, ErrorKind> {
    TlsConnector::from(plan.config.clone())
        .connect(server_name.clone(), tcp)
        .await
        .map(Box::new)
        .map_err(|_| ErrorKind::Tls)
}

/// What `stream` negotiated.
pub(crate) fn negotiated(stream: &TlsStream<TcpStream>) -> Negotiated {
    let (_, conn) = stream.get_ref();
    let name = |s: Option<&'static str>, d: &dyn std::fmt::Debug| {
        s.map(str::to_string).unwrap_or_else(|| format!("{d:?}"))
    };
    let version = conn
        .protocol_version()
        .map(|v| name(v.as_str(), &v))
        .unwrap_or_default();
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| name(s.suite().as_str(), &s.suite()))
        .unwrap_or_default();
    Negotiated {
        version,
        cipher_suite,
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    }
}

/// A certificate verifier that accepts every certificate and every
/// handshake signature without looking at them. For benchmarks only: it
/// makes the client's handshake cheaper than the server's, which is the
/// point of a load generator, and makes the connection insecure, which
/// does not matter on loopback against one's own test certificate.
#[derive(Debug)]
pub(crate) struct NoVerification;

/// The handshake signature schemes offered: SHA-256 only, so that every
/// server signs with the same algorithm for the same key type.
const SCHEMES: [SignatureScheme; 4] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::ED25519,
];

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        let p = TlsPlan::new(None, TlsVersion::V13, None, None, TlsProvider::AwsLcRs).unwrap();
        assert!(matches!(
            p.server_name("localhost:443").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            p.server_name("127.0.0.1:443").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            p.server_name("[::1]:443").unwrap(),
            ServerName::IpAddress(_)
        ));
        let p = TlsPlan::new(
            Some("bench.test"),
            TlsVersion::V12,
            Some("http/1.1"),
            None,
            TlsProvider::Ring,
        )
        .unwrap();
        assert!(matches!(
            p.server_name("127.0.0.1:443").unwrap(),
            ServerName::DnsName(_)
        ));
        assert_eq!(p.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let e = TlsPlan::new(
            Some("10.0.0.1"),
            TlsVersion::V13,
            None,
            None,
            TlsProvider::AwsLcRs,
        )
        .err()
        .unwrap();
        assert!(e.contains("--sni `10.0.0.1`"), "{e}");
        let p = TlsPlan::new(
            None,
            TlsVersion::V13,
            None,
            Some("TLS13_AES_128_GCM_SHA256"),
            TlsProvider::AwsLcRs,
        )
        .unwrap();
        assert_eq!(p.config.crypto_provider().cipher_suites.len(), 1);
        let e = TlsPlan::new(None, TlsVersion::V13, None, Some("X"), TlsProvider::Ring)
            .err()
            .unwrap();
        assert!(e.contains("TLS13_AES_128_GCM_SHA256"), "{e}");
        // A TLS 1.2 suite with TLS 1.3 only: no usable suite.
        let e = TlsPlan::new(
            None,
            TlsVersion::V13,
            None,
            Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            TlsProvider::Ring,
        )
        .err()
        .unwrap();
        assert!(e.contains("do not go together"), "{e}");
    }
}
