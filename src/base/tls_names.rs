//! Protocol and cipher-suite names as OpenSSL (and so HAProxy's
//! `ssl_fc_protocol`, `ssl_fc_cipher`, `%sslv`, `%sslc`) spells them.

use rustls::{CipherSuite, ProtocolVersion};

/// `TLSv1.2`, `TLSv1.3`.
pub(crate) fn protocol(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        ProtocolVersion::TLSv1_1 => "TLSv1.1",
        ProtocolVersion::TLSv1_0 => "TLSv1",
        _ => "unknown",
    }
}

/// The OpenSSL name of a cipher suite (TLS 1.3 suites keep their IANA
/// names, as in OpenSSL).
pub(crate) fn cipher(s: CipherSuite) -> &'static str {
    match s {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_spellings() {
        assert_eq!(protocol(ProtocolVersion::TLSv1_3), "TLSv1.3");
        assert_eq!(
            cipher(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "ECDHE-RSA-AES128-GCM-SHA256"
        );
        // Every suite either provider offers has a name.
        let providers = [
            rustls::crypto::aws_lc_rs::default_provider(),
            rustls::crypto::ring::default_provider(),
        ];
        for p in providers {
            for s in &p.cipher_suites {
                assert_ne!(cipher(s.suite()), "unknown", "{:?}", s.suite());
            }
        }
    }
}
