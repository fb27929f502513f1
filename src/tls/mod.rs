//! TLS on rustls: terminating client connections (certificates chosen by
//! SNI, resumption), and speaking TLS to servers.
//!
//! - `certs.rs`: loading certificate files; the SNI index.
//! - `tickets.rs`: session tickets with rotating keys, the session cache.
//! - `accept.rs`: a worker's handshakes with clients.
//! - `connect.rs`: handshakes with servers, and certificate verification.
//! - `names.rs`: the OpenSSL spellings of protocols and cipher suites that
//!   HAProxy users see in fetches and logs.
//!
//! Everything read during a handshake is either the worker's own (its
//! `ServerConfig` copy, the thread-local session cache) or built once and
//! then only read (certificates, the ticket secret): nothing is locked.
//!
//! Must not touch: HTTP, sessions or workers; it sees connections only as
//! `io` streams.

pub(crate) mod accept;
pub(crate) mod certs;
pub(crate) mod connect;
pub(crate) mod tickets;

use rustls::crypto::CryptoProvider;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// `global.ssl-provider`: the rustls cryptography back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// AWS-LC (BoringSSL-derived, assembly for current CPUs).
    AwsLcRs,
    /// *ring*.
    Ring,
}

impl Provider {
    pub(crate) const CHOICES: &'static [&'static str] = &["aws-lc-rs", "ring"];

    pub(crate) fn parse(s: &str) -> Option<Provider> {
        match s {
            "aws-lc-rs" => Some(Provider::AwsLcRs),
            "ring" => Some(Provider::Ring),
            _ => None,
        }
    }

    pub(crate) fn crypto(self) -> Arc<CryptoProvider> {
        Arc::new(match self {
            Provider::AwsLcRs => rustls::crypto::aws_lc_rs::default_provider(),
            Provider::Ring => rustls::crypto::ring::default_provider(),
        })
    }
}

/// A TLS protocol version corral can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Version {
    Tls12,
    Tls13,
}

impl Version {
    /// `1.2`, `1.3` (also `TLSv1.2`, HAProxy's `ssl-min-ver` spelling).
    pub(crate) fn parse(s: &str) -> Result<Version, String> {
        match s.trim_start_matches("TLSv") {
            "1.2" => Ok(Version::Tls12),
            "1.3" => Ok(Version::Tls13),
            "1.0" | "1.1" | "1" => Err(format!(
                "`{s}` is not offered: TLS 1.0 and 1.1 are obsolete (RFC 8996) and always refused; use \"1.2\" or \"1.3\""
            )),
            _ => Err(format!(
                "`{s}` is not a TLS version: expected \"1.2\" or \"1.3\""
            )),
        }
    }

    fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            Version::Tls12 => &rustls::version::TLS12,
            Version::Tls13 => &rustls::version::TLS13,
        }
    }

    /// The rustls versions from `min` to `max`.
    pub(crate) fn range(
        min: Version,
        max: Version,
    ) -> Vec<&'static rustls::SupportedProtocolVersion> {
        [Version::Tls12, Version::Tls13]
            .into_iter()
            .filter(|v| *v >= min && *v <= max)
            .map(Version::rustls)
            .collect()
    }
}

/// `frontends.NAME.tls:` terminating TLS on a frontend's `ssl` binds.
#[derive(Clone)]
pub(crate) struct FrontendTls {
    /// `certs`: files and directories of PEM certificates, as resolved
    /// (relative to the configuration file); read again on reload.
    pub certs: Vec<PathBuf>,
    /// The certificates loaded from `certs`.
    pub set: Arc<certs::CertSet>,
    /// `min_version` (default "1.2") and `max_version` (default "1.3").
    pub min_version: Version,
    pub max_version: Version,
    /// `alpn`: protocols offered, in preference order (default none).
    pub alpn: Vec<Vec<u8>>,
    /// Ticket keys; `None` with `tls-tickets: false` (HAProxy's
    /// `no-tls-tickets`).
    pub tickets: Option<Arc<tickets::Tickets>>,
    /// `cachesize`: sessions each worker keeps for resumption by id
    /// (default 20000, HAProxy's `tune.ssl.cachesize`; 0 disables).
    pub cache_size: usize,
    pub provider: Arc<CryptoProvider>,
}

impl fmt::Debug for FrontendTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontendTls")
            .field("certs", &self.certs)
            .field("min_version", &self.min_version)
            .field("max_version", &self.max_version)
            .field("tickets", &self.tickets.is_some())
            .field("cache_size", &self.cache_size)
            .finish()
    }
}

/// `backends.B.servers.S.tls:` connecting to a server over TLS.
#[derive(Clone)]
pub(crate) struct ServerTls {
    /// `verify: required` (default) checks the server's chain against
    /// `ca`, and its name when an SNI is sent; `none` checks nothing.
    pub verify: bool,
    /// `sni`: a log-format string (`"%[ssl_fc_sni]"`, `api.internal`)
    /// rendered per connection; empty or absent sends no SNI.
    pub sni: Option<crate::acl::LogFormat>,
    /// The rendered SNI cannot change between connections, so idle
    /// connections may be pooled and reused.
    pub sni_fixed: bool,
    /// The SNI health checks send: `sni` when it is plain text (a
    /// check has no client connection to render `%[...]` from).
    pub check_sni: Option<String>,
    /// The rustls settings, shared read-only; each worker makes its own
    /// copy (with its own resumption store) at start.
    pub client: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("verify", &self.verify)
            .field("sni", &self.sni)
            .finish()
    }
}
