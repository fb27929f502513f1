//! A worker's TLS handshakes with clients.
//!
//! Each worker keeps its own copy of every TLS frontend's rustls
//! configuration (so the reference count touched by every handshake lives
//! in this worker's cache, not shared), built over the read-only
//! certificate set, ticket keys and the thread-local session cache.
//! `replace_certs` swaps the copy: handshakes that already started finish
//! with the old certificates, new ones use the new. (A configuration
//! reload starts a new generation instead, with copies of its own.)

use super::FrontendTls;
use super::certs::CertSet;
use super::tickets::SessionCache;
use crate::http::conn::{Deadline, IoFail, until};
use crate::stream::Stream;
use glommio::net::TcpStream;
use rustls::ServerConfig;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

/// Builds the rustls server configuration of frontend `fe`.
pub fn server_config(
    tls: &FrontendTls,
    fe: usize,
    set: Arc<CertSet>,
) -> Result<ServerConfig, String> {
    let versions = super::Version::range(tls.min_version, tls.max_version);
    let mut cfg = ServerConfig::builder_with_provider(tls.provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("the TLS versions cannot be used with this provider: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(set);
    cfg.alpn_protocols = tls.alpn.clone();
    cfg.session_storage = Arc::new(SessionCache {
        frontend: fe,
        size: tls.cache_size,
    });
    if let Some(t) = &tls.tickets {
        cfg.ticketer = t.clone();
    }
    Ok(cfg)
}

/// One frontend's handshakes on one worker.
pub struct Acceptor {
    config: RefCell<Arc<ServerConfig>>,
}

impl Acceptor {
    pub fn new(tls: &FrontendTls, fe: usize) -> Result<Acceptor, String> {
        let cfg = server_config(tls, fe, tls.set.clone())?;
        Ok(Acceptor {
            config: RefCell::new(Arc::new(cfg)),
        })
    }

    /// New handshakes use `set` from now on.
    pub fn replace_certs(&self, set: Arc<CertSet>) {
        let mut cfg = (**self.config.borrow()).clone();
        cfg.cert_resolver = set;
        *self.config.borrow_mut() = Arc::new(cfg);
    }

    /// Runs the server side of a handshake on `tcp` within `timeout`. The
    /// error says why it failed, for the log.
    pub async fn accept(&self, tcp: TcpStream, timeout: Duration) -> Result<Stream, String> {
        let acceptor = futures_rustls::TlsAcceptor::from(self.config.borrow().clone());
        match until(Deadline::After(timeout), acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Ok(Stream::TlsIn(Box::new(tls))),
            Ok(Err(e)) => Err(handshake_error(&e)),
            Err(IoFail::Timeout) => Err("timeout during the handshake".into()),
            Err(IoFail::Error(e)) => Err(handshake_error(&e)),
        }
    }
}

/// The reason a handshake failed, as a short phrase.
pub fn handshake_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the client closed during the handshake".into(),
        _ => match e.get_ref() {
            Some(inner) => inner.to_string(),
            None => e.to_string(),
        },
    }
}
