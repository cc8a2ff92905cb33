//! TLS settings for DICOM connections (PS3.15 Annex B): turns the PEM files
//! named in the configuration into `rustls` configurations, one for the SCP
//! and one per TLS destination.
//!
//! Everything is loaded once, at start-up, so that a missing file, a file
//! without the expected PEM block, or a key that does not belong to its
//! certificate stops the node with an error naming the file — rather than
//! failing every association later with a handshake error that names
//! nothing. One crypto provider (`ring`) is used throughout; its default
//! protocol versions are TLS 1.2 and 1.3, which covers the BCP 195 profiles
//! that DICOM peers such as DCMTK offer.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::{Config, DestinationTlsConfig, TlsConfig};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The SCP's TLS configuration, or `None` when `[tls]` is off. With
/// `client_ca` set, peers must present a certificate issued by one of its
/// CAs; otherwise none is requested.
pub fn server_config(tls: &TlsConfig) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    if !tls.enabled {
        return Ok(None);
    }
    let (Some(certificate), Some(private_key)) = (&tls.certificate, &tls.private_key) else {
        bail!("tls.enabled needs tls.certificate and tls.private_key");
    };
    let chain = certificates(certificate).context("tls.certificate")?;
    let key = private_key_from(private_key).context("tls.private_key")?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(client_ca) => {
            let roots = root_store(client_ca).context("tls.client_ca")?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .context("tls.client_ca: cannot verify client certificates with it")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "tls.certificate {} and tls.private_key {} do not make a usable pair",
            certificate.display(),
            private_key.display()
        )
    })?;
    Ok(Some(Arc::new(config)))
}

/// The client configuration for one destination: its CA as the only trust
/// anchor, and our client certificate when one is configured.
pub fn client_config(tls: &DestinationTlsConfig) -> anyhow::Result<Arc<ClientConfig>> {
    let roots = root_store(&tls.ca_certificate).context("ca_certificate")?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots);
    let config = match (&tls.client_certificate, &tls.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(certificate), Some(key)) => {
            let chain = certificates(certificate).context("client_certificate")?;
            let key = private_key_from(key).context("client_key")?;
            builder.with_client_auth_cert(chain, key).with_context(|| {
                format!(
                    "client_certificate {} and its client_key do not make a usable pair",
                    certificate.display()
                )
            })?
        }
        _ => bail!("client_certificate and client_key go together"),
    };
    Ok(Arc::new(config))
}

/// The annotator's HTTPS configuration: one certificate chain and its
/// key, no client certificates, HTTP/1.1 offered by ALPN.
pub fn https_server_config(certificate: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = certificates(certificate).context("annotator.tls_certificate")?;
    let key_der = private_key_from(key).context("annotator.tls_key")?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .with_context(|| {
            format!(
                "annotator.tls_certificate {} and annotator.tls_key {} do not make a usable pair",
                certificate.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Loads every TLS file the configuration names, so that `serve` fails at
/// start-up, naming the setting, rather than at the first connection.
pub fn check(config: &Config) -> anyhow::Result<()> {
    server_config(&config.tls)?;
    for destination in &config.destinations {
        if let Some(tls) = &destination.tls {
            client_config(tls).with_context(|| format!("destinations.{}.tls", destination.name))?;
        }
    }
    Ok(())
}

/// Every certificate in a PEM file, in order; at least one.
fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: malformed PEM", path.display()))?;
    if chain.is_empty() {
        bail!("{}: no CERTIFICATE block in it", path.display());
    }
    Ok(chain)
}

/// The first private key in a PEM file.
fn private_key_from(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "{}: no PRIVATE KEY block in it (PKCS#8, RSA or EC)",
            path.display()
        ),
        other => anyhow::anyhow!("reading {}: {other}", path.display()),
    })
}

/// The certificates of a PEM file as trust anchors.
fn root_store(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path)? {
        roots
            .add(certificate)
            .with_context(|| format!("{}: not a usable CA certificate", path.display()))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn off_means_no_server_config() {
        assert!(server_config(&TlsConfig::default()).unwrap().is_none());
    }

    #[test]
    fn a_missing_file_is_named() {
        let tls = TlsConfig {
            enabled: true,
            certificate: Some("/nonexistent/node.crt".into()),
            private_key: Some("/nonexistent/node.key".into()),
            client_ca: None,
        };
        let error = format!("{:#}", server_config(&tls).unwrap_err());
        assert!(error.contains("/nonexistent/node.crt"), "{error}");
        assert!(error.contains("tls.certificate"), "{error}");
    }

    #[test]
    fn a_file_without_pem_blocks_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = write(dir.path(), "ca.pem", "just some text\n");
        let tls = DestinationTlsConfig {
            ca_certificate: not_pem,
            client_certificate: None,
            client_key: None,
        };
        let error = format!("{:#}", client_config(&tls).unwrap_err());
        assert!(error.contains("no CERTIFICATE block"), "{error}");
    }

    #[test]
    fn a_key_file_without_a_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "node.key", "");
        let error = format!("{:#}", private_key_from(&empty).unwrap_err());
        assert!(error.contains("no PRIVATE KEY block"), "{error}");
    }
}
