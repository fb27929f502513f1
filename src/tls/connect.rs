//! TLS to servers (`servers.S.tls`): the client configuration, the
//! verifiers, and the handshake.
//!
//! With `verify: required` the server's chain must lead to a certificate
//! in `ca`; its name is checked against the SNI corral sends. Without an
//! SNI (none configured, or it rendered empty) the chain alone is checked,
//! as HAProxy does without `verifyhost`. `verify: none` accepts any
//! certificate but still checks the handshake's signatures.

use crate::io::stream::Stream;
use glommio::net::TcpStream;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// Where Debian and Ubuntu keep the system's trusted CAs (`ca: "@system-ca"`).
const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Builds the client configuration for a server.
pub fn client_config(
    verify: bool,
    ca: Option<&Path>,
    alpn: Vec<Vec<u8>>,
    provider: Arc<CryptoProvider>,
) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("the TLS versions cannot be used with this provider: {e}"))?;
    let chain = if verify {
        let Some(ca) = ca else {
            return Err(
                "`verify: required` needs `ca` (a PEM file of trusted CAs, or \"@system-ca\"); write `verify: none` to skip verification"
                    .into(),
            );
        };
        let path = if ca.as_os_str() == "@system-ca" {
            Path::new(SYSTEM_CA)
        } else {
            ca
        };
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| format!("`{}`: bad PEM certificate: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("`{}`: unusable CA certificate: {e}", path.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("`{}` holds no CA certificate", path.display()));
        }
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("cannot build the verifier: {e}"))?;
        Some(chain)
    } else {
        None
    };
    let verifier = Arc::new(Verifier { chain, provider });
    let mut cfg = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn;
    Ok(cfg)
}

/// Runs a client handshake with a server on `tcp`. `sni` is sent when
/// given (and checked by the verifier); otherwise the server is known by
/// its address and no SNI is sent.
pub(crate) async fn connect(
    cfg: Arc<ClientConfig>,
    tcp: TcpStream,
    sni: Option<&str>,
    ip: IpAddr,
) -> std::io::Result<Stream> {
    let name = match sni.and_then(|s| ServerName::try_from(s.to_string()).ok()) {
        Some(n) => n,
        None => ServerName::IpAddress(ip.into()),
    };
    let tls = futures_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await?;
    Ok(Stream::TlsOut(Box::new(tls)))
}

/// How a server's certificate is checked: against `chain`'s roots (the
/// name only when it is a DNS name, i.e. an SNI was sent), or not at all
/// (`verify: none`). The handshake's signatures are always checked: they
/// prove the server holds the key of the certificate it sent.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        let named = matches!(server_name, ServerName::DnsName(_));
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !named => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
