//! TLS for the ixn workbin server and its clients, on rustls (with the `ring` provider).
//!
//! - [`Acceptor`]: the server side of both listeners, built from PEM files (certificate chain,
//!   private key, and optionally the authority client certificates must chain to), and read
//!   again by [`Acceptor::reload`] (the server calls it on SIGHUP): connections already open
//!   keep the configuration they started with; new ones get the new one.
//! - [`peer_names`]: the names a verified client certificate proves (subject common name and
//!   DNS subject-alternative names); the server compares them with application names.
//! - [`connector`]: the client side (`ixn --tls --ca FILE`, `ixn-load --tls`), with an optional
//!   client certificate.

#![warn(missing_docs)]

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

mod explain;

pub use explain::{Peer, explain};
pub use rustls;
pub use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

/// Why a TLS configuration could not be built. Each names the file concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or holds no valid PEM.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what it should hold.
        problem: String,
    },
    /// rustls refused the certificate and key (for example a key that does not match).
    #[error("the certificate {cert} and key {key} cannot be used: {source}")]
    Identity {
        /// The certificate chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// A CA file holds certificates that cannot be trust anchors.
    #[error("{path}: not usable as a certificate authority: {problem}")]
    Authority {
        /// The CA file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A host name that cannot be checked against a certificate.
    #[error("{0:?} is not a valid server name for TLS (give a DNS name or an IP address)")]
    ServerName(String),
}

/// The files of a server's TLS identity (`[tls]` in the configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFiles {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
    /// CA certificates (PEM) client certificates must chain to; `None`: none is asked for.
    pub client_ca: Option<PathBuf>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::File {
        path: path.to_owned(),
        problem: format!("cannot read it: {e}"),
    })
}

/// Reads every certificate of a PEM file (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::File {
            path: path.to_owned(),
            problem: format!("not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::File {
            path: path.to_owned(),
            problem: "no certificate in it (expected PEM blocks \"BEGIN CERTIFICATE\")".to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| Error::File {
        path: path.to_owned(),
        problem: format!(
            "no private key in it ({e}; expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)"
        ),
    })
}

fn roots(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| Error::Authority {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A server configuration from `files`.
pub fn server_config(files: &ServerFiles) -> Result<ServerConfig, Error> {
    let certs = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Identity {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            // A certificate is asked for, not demanded: whether an application must present
            // one is the configuration's `client_certificate`, checked at registration.
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| Error::Authority {
                        path: ca.clone(),
                        problem: e.to_string(),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|source| Error::Identity {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })
}

/// The server side of TLS, shared by both listeners and read again on [`Acceptor::reload`].
#[derive(Clone, Debug)]
pub struct Acceptor {
    files: Arc<ServerFiles>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl Acceptor {
    /// Reads `files`; fails (naming the file) when they do not make a server identity.
    pub fn load(files: ServerFiles) -> Result<Self, Error> {
        let config = server_config(&files)?;
        Ok(Self {
            files: Arc::new(files),
            current: Arc::new(RwLock::new(Arc::new(config))),
        })
    }

    /// Reads the files again. On success new connections use them; on failure nothing
    /// changes (the error says which file is wrong).
    pub fn reload(&self) -> Result<(), Error> {
        let config = server_config(&self.files)?;
        let next = Arc::new(config);
        match self.current.write() {
            Ok(mut current) => *current = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }

    /// The configuration for a connection accepted now.
    pub fn current(&self) -> TlsAcceptor {
        let config = match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        TlsAcceptor::from(config)
    }

    /// The files it reads.
    pub fn files(&self) -> &ServerFiles {
        &self.files
    }

    /// True when client certificates are asked for.
    pub fn asks_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }
}

/// The names a verified client certificate proves: its subject common names and DNS
/// subject-alternative names, in that order. Empty when the client presented none.
pub fn peer_names(conn: &rustls::ServerConnection) -> Vec<String> {
    let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) else {
        return Vec::new();
    };
    names_of(leaf)
}

/// The subject common names and DNS subject-alternative names of a certificate.
pub fn names_of(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, parsed)) = X509Certificate::from_der(cert) else {
        return Vec::new();
    };
    let mut names: Vec<String> = parsed
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    names
}

/// What a client needs to speak TLS to the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientFiles {
    /// CA certificates (PEM) the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// A client certificate chain (PEM) and its key, for applications that must present one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// A client-side connector from `files` (see [`client_config`]).
pub fn connector(files: &ClientFiles) -> Result<TlsConnector, Error> {
    Ok(TlsConnector::from(client_config(files)?))
}

/// A client configuration from `files`: the server's certificate must chain to one of the
/// roots in `ca` (there are no built-in roots; the command lines ask for `--ca`).
pub fn client_config(files: &ClientFiles) -> Result<Arc<ClientConfig>, Error> {
    let roots = match &files.ca {
        Some(ca) => roots(ca)?,
        None => RootCertStore::empty(),
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Identity {
            cert: PathBuf::new(),
            key: PathBuf::new(),
            source,
        })?
        .with_root_certificates(roots);
    let config = match &files.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .map_err(|source| Error::Identity {
                cert: cert.clone(),
                key: key.clone(),
                source,
            })?,
    };
    Ok(Arc::new(config))
}

/// The name to check the server's certificate against: `host` as given (a DNS name or an IP
/// address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned()).map_err(|_| Error::ServerName(host.to_owned()))
}

/// Certificates for tests and for trying TLS out: an authority, and leaf certificates it signs.
#[cfg(any(test, feature = "test-pki"))]
pub mod test_pki;
