//! A worker's TLS handshakes with clients.
//!
//! Each worker keeps its own copy of every TLS frontend's rustls
//! configuration (so the reference count touched by every handshake lives
//! in this worker's cache, not shared), built over the read-only
//! certificate set, ticket keys and the thread-local copy of the session
//! cache. A configuration reload starts a new generation, with copies of
//! its own.

use super::FrontendTls;
use super::certs::CertSet;
use super::tickets::SessionCache;
use crate::io::conn::{Deadline, IoFail, until};
use crate::io::stream::Stream;
use glommio::net::TcpStream;
use rustls::ServerConfig;
use std::sync::Arc;
use std::time::Duration;

/// Builds the rustls server configuration of frontend `fe`.
pub(crate) fn server_config(
    tls: &FrontendTls,
    fe: usize,
    set: Arc<CertSet>,
    shared: bool,
) -> Result<ServerConfig, String> {
    let versions = super::Version::range(tls.min_version, tls.max_version);
    let mut cfg = ServerConfig::builder_with_provider(tls.provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("the TLS versions cannot be used with this provider: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(set);
    cfg.alpn_protocols = tls.alpn.clone();
    // The server's cipher suite order (rustls': the strongest first), not
    // the client's, picks the suite (HAProxy's `prefer-server-ciphers`).
    cfg.ignore_client_order = true;
    cfg.session_storage = Arc::new(SessionCache {
        frontend: fe,
        size: tls.cache_size,
        shared,
    });
    if let Some(t) = &tls.tickets {
        cfg.ticketer = t.clone();
    }
    Ok(cfg)
}

/// One frontend's handshakes on one worker.
pub(crate) struct Acceptor {
    config: Arc<ServerConfig>,
}

impl Acceptor {
    /// `workers`: how many workers share the session cache.
    pub(crate) fn new(tls: &FrontendTls, fe: usize, workers: usize) -> Result<Acceptor, String> {
        let cfg = server_config(tls, fe, tls.set.clone(), workers > 1)?;
        Ok(Acceptor {
            config: Arc::new(cfg),
        })
    }

    /// Runs the server side of a handshake on `tcp` within `timeout`,
    /// calling `after_step` after each step of it (which sends the
    /// sessions it stored to the other workers). The error says why it
    /// failed, for the log.
    pub(crate) async fn accept(
        &self,
        tcp: TcpStream,
        timeout: Duration,
        after_step: impl Fn(),
    ) -> Result<Stream, String> {
        let acceptor = futures_rustls::TlsAcceptor::from(self.config.clone());
        let mut handshake = std::pin::pin!(acceptor.accept(tcp));
        let stepped = std::future::poll_fn(|cx| {
            let r = handshake.as_mut().poll(cx);
            after_step();
            r
        });
        match until(Deadline::After(timeout), stepped).await {
            Ok(Ok(tls)) => Ok(Stream::TlsIn(Box::new(tls))),
            Ok(Err(e)) => Err(handshake_error(&e)),
            Err(IoFail::Timeout) => Err("timeout during the handshake".into()),
            Err(IoFail::Error(e)) => Err(handshake_error(&e)),
        }
    }
}

/// The reason a handshake failed, as a short phrase.
pub(crate) fn handshake_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the client closed during the handshake".into(),
        _ => match e.get_ref() {
            Some(inner) => inner.to_string(),
            None => e.to_string(),
        },
    }
}
