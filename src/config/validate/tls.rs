//! Validation of TLS settings: `global.ssl-provider`, a frontend's `tls:`
//! block and `ssl` binds, a server's `tls:` block. Certificates and CA
//! files are read here, so a configuration that names a missing or
//! mismatched certificate never starts (and never replaces a running one).

use super::*;
use crate::tls::{FrontendTls, Provider, ServerTls, Version, certs::CertSet, tickets::Tickets};
use std::sync::Arc;

const FRONTEND_KEYS: &[&str] = &[
    "certs",
    "min_version",
    "max_version",
    "alpn",
    "tls-tickets",
    "cachesize",
];
const SERVER_KEYS: &[&str] = &["verify", "ca", "sni", "alpn"];

impl Validator<'_> {
    pub(super) fn ssl_provider(&mut self, v: &Value) -> Provider {
        self.choice(v, "global.ssl-provider", Provider::CHOICES)
            .and_then(Provider::parse)
            .unwrap_or(Provider::AwsLcRs)
    }

    /// The keys of a `tls:` map, each unknown one reported.
    fn tls_map<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        known: &[&str],
        example: &str,
    ) -> Option<Vec<(&'v str, &'v Value)>> {
        let Value::Mapping(m) = v else {
            self.c.at(
                path,
                format!(
                    "`{}` is not valid: expected a map, e.g. `{example}`",
                    show(v)
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for (k, val) in m {
            let Some(k) = k.as_str() else { continue };
            if !known.contains(&k) {
                self.c.at_key(
                    &child(path, k),
                    format!("unknown key `{k}` (valid keys: {})", known.join(", ")),
                );
                continue;
            }
            out.push((k, val));
        }
        Some(out)
    }

    fn tls_version(&mut self, v: &Value, path: &str) -> Option<Version> {
        let text = self.string(v, path, "a TLS version, \"1.2\" or \"1.3\"")?;
        Version::parse(&text)
            .map_err(|msg| self.c.at(path, msg))
            .ok()
    }

    fn alpn(&mut self, v: &Value, path: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (name, p) in self.strings_only(v, path) {
            match name.as_str() {
                "http/1.1" | "http/1.0" => out.push(name.into_bytes()),
                "h2" => self.c.at(
                    &p,
                    "`h2` cannot be offered yet: corral speaks HTTP/1.1 (offer `http/1.1`)",
                ),
                other if other.is_empty() || other.len() > 255 => {
                    self.c.at(&p, "an ALPN protocol name is 1 to 255 bytes")
                }
                _ => out.push(name.into_bytes()),
            }
        }
        out
    }

    /// A frontend's `tls:` block (certificates are loaded here).
    pub(super) fn frontend_tls(
        &mut self,
        v: &Value,
        path: &str,
        provider: Provider,
    ) -> Option<FrontendTls> {
        let keys = self.tls_map(
            v,
            path,
            FRONTEND_KEYS,
            "tls: { certs: [ /etc/corral/certs/ ] }",
        )?;
        let mut certs = Vec::new();
        let mut min_version = Version::Tls12;
        let mut max_version = Version::Tls13;
        let mut alpn = Vec::new();
        let mut tickets = true;
        let mut cache_size = 20_000;
        let mut ok = true;
        for (k, val) in keys {
            let p = child(path, k);
            match k {
                "certs" => {
                    for (file, fp) in self.strings_only(val, &p) {
                        let resolved = self.base_dir.join(&file);
                        certs.push((resolved, fp));
                    }
                }
                "min_version" => match self.tls_version(val, &p) {
                    Some(x) => min_version = x,
                    None => ok = false,
                },
                "max_version" => match self.tls_version(val, &p) {
                    Some(x) => max_version = x,
                    None => ok = false,
                },
                "alpn" => alpn = self.alpn(val, &p),
                "tls-tickets" => tickets = self.boolean(val, &p).unwrap_or(true),
                "cachesize" => {
                    cache_size = self
                        .uint(val, &p, 0, 10_000_000, "a number of sessions (0: no cache)")
                        .unwrap_or(20_000) as usize
                }
                _ => {}
            }
        }
        if certs.is_empty() {
            self.c.at_key(
                path,
                "missing `certs`: list the PEM files or directories (certificate chain then key), e.g. `certs: [ /etc/corral/certs/ ]`",
            );
            return None;
        }
        if min_version > max_version {
            self.c.at(
                &child(path, "min_version"),
                "`min_version` is above `max_version`: no version would be left",
            );
            return None;
        }
        let crypto = provider.crypto();
        // Each entry is loaded alone first, so an error names its own entry.
        for (file, fp) in &certs {
            if let Err(msg) = CertSet::load(std::slice::from_ref(file), &crypto) {
                self.c.at(fp, msg);
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let files: Vec<PathBuf> = certs.into_iter().map(|(f, _)| f).collect();
        let set = match CertSet::load(&files, &crypto) {
            Ok(s) => s,
            Err(msg) => {
                self.c.at(&child(path, "certs"), msg);
                return None;
            }
        };
        for l in set.loaded.iter().filter(|l| l.expired) {
            self.warnings.push(format!(
                "{path}.certs: `{}` is outside its validity period (clients will refuse it)",
                l.file.display()
            ));
        }
        let tickets = if tickets {
            match Tickets::new() {
                Ok(t) => Some(Arc::new(t)),
                Err(msg) => {
                    self.c.at_key(path, msg);
                    return None;
                }
            }
        } else {
            None
        };
        Some(FrontendTls {
            certs: files,
            set: Arc::new(set),
            min_version,
            max_version,
            alpn,
            tickets,
            cache_size,
            provider: crypto,
        })
    }

    /// A server's `tls:` block: `true`/`{}` (verification needs `ca`), or
    /// a map of `verify`, `ca`, `sni`, `alpn`.
    pub(super) fn server_tls(
        &mut self,
        v: &Value,
        path: &str,
        provider: Provider,
    ) -> Option<ServerTls> {
        let empty = Value::Mapping(Default::default());
        let v = match v {
            Value::Bool(false) => return None,
            Value::Bool(true) => &empty,
            other => other,
        };
        let keys = self.tls_map(
            v,
            path,
            SERVER_KEYS,
            "tls: { verify: required, ca: /etc/corral/ca.pem, sni: \"%[ssl_fc_sni]\" }",
        )?;
        let mut verify = true;
        let mut ca = None;
        let mut sni = None;
        let mut sni_text = None;
        let mut alpn = Vec::new();
        for (k, val) in keys {
            let p = child(path, k);
            match k {
                "verify" => verify = self.choice(val, &p, &["required", "none"]) != Some("none"),
                "ca" => {
                    ca = self
                        .string(val, &p, "a PEM file of CA certificates")
                        .map(|s| {
                            if s == "@system-ca" {
                                PathBuf::from(s)
                            } else {
                                self.base_dir.join(s)
                            }
                        })
                }
                "sni" => {
                    if let Some(text) = self.string(
                        val,
                        &p,
                        "an SNI, e.g. \"%[ssl_fc_sni]\" or \"api.internal\"",
                    ) {
                        match crate::acl::LogFormat::parse(&text) {
                            Ok(f) => {
                                sni = Some(f);
                                sni_text = Some(text.replace("%%", "%"));
                            }
                            Err(e) => self.c.at_offset(&p, &text, e.offset, e.message),
                        }
                    }
                }
                "alpn" => alpn = self.alpn(val, &p),
                _ => {}
            }
        }
        let crypto = provider.crypto();
        let client = match crate::tls::connect::client_config(verify, ca.as_deref(), alpn, crypto) {
            Ok(c) => c,
            Err(msg) => {
                let at = if ca.is_some() {
                    child(path, "ca")
                } else {
                    path.to_string()
                };
                self.c.at_key(&at, msg);
                return None;
            }
        };
        let sni_fixed = sni.as_ref().is_none_or(|f| f.is_literal());
        let check_sni = match (&sni, &sni_text) {
            (Some(f), Some(text)) if f.is_literal() && !text.is_empty() => Some(text.clone()),
            _ => None,
        };
        Some(ServerTls {
            verify,
            sni,
            sni_fixed,
            check_sni,
            client: Arc::new(client),
        })
    }

    /// Marks which binds terminate TLS: those written with `ssl`, or all of
    /// them when the frontend has `tls:` and none says `ssl`.
    pub(super) fn tls_binds(&mut self, base: &str, binds: &mut [Bind], tls: bool) {
        let any_ssl = binds.iter().any(|b| b.tls);
        if any_ssl && !tls {
            self.c.at(
                &child(base, "bind"),
                "a bind says `ssl` but the frontend has no `tls:` block: add `tls: { certs: [ /path/cert.pem ] }`",
            );
        }
        if tls && !any_ssl {
            for b in binds {
                b.tls = true;
            }
        }
    }
}

/// Splits a bind line into its address and options (`ssl` only).
pub(super) fn bind_words(text: &str) -> Result<(&str, bool), String> {
    let mut words = text.split_whitespace();
    let addr = words.next().unwrap_or("");
    let mut ssl = false;
    for w in words {
        match w {
            "ssl" => ssl = true,
            "crt" => {
                return Err(
                    "`crt` on a bind line: list certificates in the frontend's `tls.certs` and write only `ssl` here".into(),
                );
            }
            other => return Err(format!("unknown bind option `{other}` (supported: ssl)")),
        }
    }
    Ok((addr, ssl))
}
