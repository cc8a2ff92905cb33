//! The `[annotator]` section: the browser annotator's own listener
//! (docs/annotation.md).
//!
//! Kept apart from `[http]` because the two answer different questions:
//! the operations endpoint is unauthenticated and read-only, the annotator
//! shows patient images behind a login and may be served over TLS.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Settings of the annotator's web server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnnotatorConfig {
    /// Serve the annotator at all.
    pub enabled: bool,
    /// Address to listen on; loopback unless deliberately exposed (then
    /// with TLS).
    pub bind: IpAddr,
    pub port: u16,
    /// PEM certificate chain; with `tls_key`, the listener speaks HTTPS.
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key of `tls_certificate`.
    pub tls_key: Option<PathBuf>,
    /// A session unused for this many seconds ends.
    pub session_idle_secs: u64,
}

impl Default for AnnotatorConfig {
    fn default() -> Self {
        AnnotatorConfig {
            enabled: false,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8443,
            tls_certificate: None,
            tls_key: None,
            session_idle_secs: 30 * 60,
        }
    }
}

impl AnnotatorConfig {
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// Whether the listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls_certificate.is_some()
    }

    /// Checks that TLS is configured whole, and the idle limit sane.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.tls_certificate.is_some() == self.tls_key.is_some(),
            "annotator.tls_certificate and annotator.tls_key go together"
        );
        anyhow::ensure!(
            (60..=24 * 3600).contains(&self.session_idle_secs),
            "annotator.session_idle_secs must be between 60 and 86400"
        );
        Ok(())
    }
}
