//! Server certificates: loading PEM files and directories, and choosing
//! one per handshake by the client's SNI.
//!
//! A file holds a certificate chain (leaf first) and its private key, the
//! format of HAProxy's `crt`; a key may instead sit beside it in
//! `<file>.key`. A directory contributes each of its files in name order
//! (`.key`, `.ocsp`, `.issuer`, `.sctl` and `.csr` files are companions,
//! not certificates). The first certificate loaded is the default, used
//! when a client sends no SNI or a name no certificate covers.
//!
//! A set is built once per load (start-up or reload) and then only read,
//! by every worker's handshakes at once.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Extensions of files in a certificate directory that are not certificates.
const COMPANIONS: &[&str] = &["key", "ocsp", "issuer", "sctl", "csr"];

/// One loaded certificate, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub file: PathBuf,
    /// The DNS names it covers (SAN entries, else its CN), as written.
    pub names: Vec<String>,
    /// Set when the certificate is outside its validity period now.
    pub expired: bool,
}

/// The certificates of a frontend, indexed by name.
pub(crate) struct CertSet {
    /// Lowercase exact names → certificates (several when one name has,
    /// e.g., both an ECDSA and an RSA certificate).
    exact: HashMap<String, Vec<Arc<CertifiedKey>>>,
    /// `*.example.com` is kept under `example.com`.
    wildcard: HashMap<String, Vec<Arc<CertifiedKey>>>,
    /// Used without SNI or when no name matches: the first certificate
    /// loaded, and the others that share its first name.
    default: Vec<Arc<CertifiedKey>>,
    pub loaded: Vec<Loaded>,
}

impl fmt::Debug for CertSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertSet")
            .field("loaded", &self.loaded)
            .finish()
    }
}

impl CertSet {
    /// Loads every file and directory of `paths`. The error names the file
    /// and what is wrong with it.
    pub(crate) fn load(paths: &[PathBuf], provider: &CryptoProvider) -> Result<CertSet, String> {
        let mut files = Vec::new();
        for p in paths {
            let meta =
                std::fs::metadata(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
            if meta.is_dir() {
                let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(|e| format!("cannot list `{}`: {e}", p.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.is_file() && !is_companion(f))
                    .collect();
                inside.sort();
                if inside.is_empty() {
                    return Err(format!(
                        "directory `{}` holds no certificate file",
                        p.display()
                    ));
                }
                files.extend(inside);
            } else {
                files.push(p.clone());
            }
        }
        let mut set = CertSet {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default: Vec::new(),
            loaded: Vec::new(),
        };
        for file in &files {
            let (key, loaded) = load_file(file, provider)?;
            let key = Arc::new(key);
            if set.loaded.is_empty()
                || (!loaded.names.is_empty() && loaded.names.first() == set.loaded[0].names.first())
            {
                set.default.push(key.clone());
            }
            for name in &loaded.names {
                let lower = name.to_ascii_lowercase();
                match lower.strip_prefix("*.") {
                    Some(parent) => set
                        .wildcard
                        .entry(parent.to_string())
                        .or_default()
                        .push(key.clone()),
                    None => set.exact.entry(lower).or_default().push(key.clone()),
                }
            }
            set.loaded.push(loaded);
        }
        if set.loaded.is_empty() {
            return Err("no certificate given".into());
        }
        Ok(set)
    }

    /// The certificates for `sni` (exact name first, then a wildcard one
    /// level up), else the default ones.
    fn candidates(&self, sni: Option<&str>) -> &[Arc<CertifiedKey>] {
        if let Some(name) = sni {
            // Lowercase on the stack: names are at most 253 bytes.
            let mut buf = [0u8; 256];
            if name.len() <= buf.len() {
                let lower = &mut buf[..name.len()];
                lower.copy_from_slice(name.as_bytes());
                lower.make_ascii_lowercase();
                if let Ok(lower) = std::str::from_utf8(lower) {
                    if let Some(list) = self.exact.get(lower) {
                        return list;
                    }
                    if let Some((_, parent)) = lower.split_once('.')
                        && let Some(list) = self.wildcard.get(parent)
                    {
                        return list;
                    }
                }
            }
        }
        &self.default
    }
}

impl ResolvesServerCert for CertSet {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let list = self.candidates(hello.server_name());
        // The first whose key can sign with a scheme the client offers
        // (ECDSA before RSA when the files list it first).
        let schemes = hello.signature_schemes();
        list.iter()
            .find(|k| k.key.choose_scheme(schemes).is_some())
            .or_else(|| list.first())
            .cloned()
    }
}

fn is_companion(f: &Path) -> bool {
    f.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| COMPANIONS.contains(&e))
}

/// Reads one certificate file (and its `.key` companion if the key is not
/// inside), checks that the key belongs to the certificate, and reads the
/// names it covers.
fn load_file(file: &Path, provider: &CryptoProvider) -> Result<(CertifiedKey, Loaded), String> {
    let show = file.display();
    let pem = std::fs::read(file).map_err(|e| format!("cannot read `{show}`: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{show}`: bad PEM certificate: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "`{show}` holds no certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks, leaf first, then the key)"
        ));
    }
    let key = match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(k) => k,
        Err(_) => {
            let mut beside = file.as_os_str().to_owned();
            beside.push(".key");
            let beside = PathBuf::from(beside);
            let key_pem = std::fs::read(&beside).map_err(|_| {
                format!(
                    "`{show}` holds no private key, and `{}` cannot be read (put the key in the same file, after the chain, or beside it in .key)",
                    beside.display()
                )
            })?;
            PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| format!("`{}`: no usable private key: {e}", beside.display()))?
        }
    };
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("`{show}`: the private key cannot be used: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(format!(
                "`{show}`: the private key does not belong to the certificate (its public key differs from the certificate's)"
            ));
        }
        Err(e) => return Err(format!("`{show}`: {e}")),
    }
    let (names, expired) = names_of(&certified.cert[0])
        .map_err(|e| format!("`{show}`: the certificate cannot be parsed: {e}"))?;
    let loaded = Loaded {
        file: file.to_path_buf(),
        names,
        expired,
    };
    Ok((certified, loaded))
}

/// The DNS names of a certificate (SAN, else the subject's CN) and whether
/// it is outside its validity period now.
fn names_of(der: &CertificateDer<'_>) -> Result<(Vec<String>, bool), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_string());
            }
        }
    }
    if names.is_empty()
        && let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
    {
        names.push(cn.to_string());
    }
    Ok((names, !cert.validity().is_valid()))
}
