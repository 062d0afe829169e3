//! TLS on the server's own listener (feature `tls`): the certificate and key, loaded from PEM
//! files and reloaded on SIGHUP, and [`TlsStream`], the socket wrapper that makes a connection
//! speak TLS without the connection knowing.
//!
//! How it fits the loop: with `--tls-cert` and `--tls-key`, every accepted socket is wrapped
//! in a [`TlsStream`] before it becomes a `Conn`. The connection reads plaintext from it and
//! writes plaintext to it exactly as it does to a bare socket; the TLS handshake happens
//! inside the first reads, so `--handshake-timeout` (which runs from accept until the request
//! head is complete) covers it too. A broadcast stays one shared plaintext frame in every
//! outbox; each TLS connection encrypts its own copy when it writes (`tls/stream.rs`).
//!
//! ```text
//!   cert.pem + key.pem ──load──▶ ServerTls { Arc<rustls::ServerConfig> } ◀──reload── SIGHUP
//!                                         │ a clone of the Arc per accepted socket
//!                                         ▼
//!   TcpStream ──▶ TlsStream { rustls::server::UnbufferedServerConnection } ──▶ Conn
//! ```
//!
//! A reload builds a whole new `ServerConfig`; connections keep the `Arc` they were given, so
//! open connections are untouched and only new ones see the new certificate. A reload that
//! fails (a half-written file, a key that does not match) keeps the old configuration and
//! says why.
//!
//! The crypto is rustls with the `ring` provider, chosen by measurement (docs/tls.md): the
//! smallest binary of the well-kept providers, and it cross-builds for the ARM boards with the
//! C cross compilers the plain build already uses.

mod side;
mod stream;

pub use side::Side;
pub use stream::TlsStream;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the certificate or key could not be used. Each variant prints as one line that names
/// the file; at start the caller prints it and exits non-zero, on reload it logs it and keeps
/// serving with the previous certificate.
#[derive(Debug)]
pub enum TlsError {
    /// The file could not be read (missing, unreadable): fix the path or its permissions.
    Read {
        /// "certificate" or "key".
        what: &'static str,
        /// The file as given on the command line.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file holds no PEM certificate (`-----BEGIN CERTIFICATE-----`) or a broken one.
    NoCertificate(PathBuf),
    /// The file holds no PEM private key (PKCS#8, PKCS#1 or SEC1), or a broken one.
    NoKey(PathBuf),
    /// The key is not the private half of the certificate's public key.
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The system has no trusted root certificates (a minimal container): give `--ca FILE`.
    NoRoots,
    /// rustls refused the pair for another reason (an unsupported key type, a malformed
    /// certificate); its words follow.
    Rejected(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { what, path, source } => {
                write!(f, "cannot read the TLS {what} {}: {source}", path.display())
            }
            TlsError::NoCertificate(path) => {
                write!(f, "no PEM certificate in {}", path.display())
            }
            TlsError::NoKey(path) => write!(f, "no PEM private key in {}", path.display()),
            TlsError::Mismatch { cert, key } => write!(
                f,
                "the key in {} does not belong to the certificate in {}",
                key.display(),
                cert.display()
            ),
            TlsError::NoRoots => {
                f.write_str("no trusted root certificates on this system: give --ca FILE")
            }
            TlsError::Rejected(e) => write!(f, "TLS certificate or key rejected: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The server's TLS configuration, with the files it came from so SIGHUP can reload it.
pub struct ServerTls {
    /// The certificate chain file (PEM): the server's certificate first, then intermediates.
    cert: PathBuf,
    /// The private key file (PEM).
    key: PathBuf,
    /// What new connections are handed; replaced whole on reload.
    config: Arc<ServerConfig>,
}

impl ServerTls {
    /// Reads and checks the certificate chain and key. Fails with a one-line reason.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            config: Arc::new(server_config(cert, key)?),
            cert: cert.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Reads the files again (SIGHUP). On success new connections get the new certificate;
    /// on failure nothing changes and the reason is returned.
    pub fn reload(&mut self) -> Result<(), TlsError> {
        self.config = Arc::new(server_config(&self.cert, &self.key)?);
        Ok(())
    }

    /// Wraps an accepted socket: the TLS handshake runs inside its first reads.
    pub fn wrap<S>(&self, socket: S) -> TlsStream<S> {
        TlsStream::server(socket, Arc::clone(&self.config))
    }

    /// The configuration new connections get (tests use it to start a [`TlsStream`]).
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }
}

/// The client configuration of `chatloop connect wss://`: the system's trusted roots, plus
/// the certificates in `ca` (a PEM file: a self-signed server's certificate, or a private CA).
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system files are skipped: with --ca the client works without them.
    let system = rustls_native_certs::load_native_certs().certs;
    let (trusted, _unusable) = roots.add_parsable_certificates(system);
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|source| TlsError::Read {
            what: "CA certificate",
            path: path.to_owned(),
            source,
        })?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| TlsError::NoCertificate(path.to_owned()))?;
        for cert in certs {
            roots.add(cert).map_err(TlsError::Rejected)?;
        }
    } else if trusted == 0 {
        return Err(TlsError::NoRoots);
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        // The ring provider supports every default version; this cannot fail.
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The crypto provider every TLS connection uses, server and client side: ring, with the
/// AES-256 suites moved after AES-128 and ChaCha20, as browsers order them.
///
/// The order only matters to our clients (`chatloop connect`): the server follows the
/// client's preference. AES-128-GCM goes with SHA-256, whose handshake hashing runs on the
/// CPU's SHA instructions where it has them, while the AES-256 suite's SHA-384 does not; ring
/// puts AES-256 first.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::CipherSuite::*;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        matches!(
            s.suite(),
            TLS13_AES_256_GCM_SHA384
                | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        )
    });
    Arc::new(provider)
}

/// Builds a `ServerConfig` from the two PEM files.
fn server_config(cert_path: &Path, key_path: &Path) -> Result<ServerConfig, TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read("certificate", cert_path)?;
    let key_pem = read("key", key_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|chain| !chain.is_empty())
        .ok_or_else(|| TlsError::NoCertificate(cert_path.to_owned()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::NoKey(key_path.to_owned()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        // The ring provider supports every default version; this cannot fail.
        .expect("ring supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        // Checks that the key parses and that it is the certificate's (its public key matches
        // the certificate's SubjectPublicKeyInfo).
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            },
            other => TlsError::Rejected(other),
        })?;
    // A browser fetches the page over HTTP/1.1 and upgrades on the same connection: that is
    // all this listener speaks (no HTTP/2, so no h2 in ALPN).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
