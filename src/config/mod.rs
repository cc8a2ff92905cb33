//! Node configuration: one TOML file (see `deploy/chestnode.toml`), with
//! command-line flags layered on top.
//!
//! Every field has a default so that an empty file, or no file at all, gives
//! a working node bound to loopback. Validation happens once, here, so the
//! rest of the code can trust what it is handed (an AE title is 1–16
//! characters, timeouts are non-zero, and so on).

mod annotator;
mod clinical;
mod priority;
mod research;

pub use annotator::AnnotatorConfig;
pub use clinical::{ClinicalConfig, ExtraColumn, ExtraColumnKind};
pub use priority::{Priority, PriorityConfig};
pub use research::ResearchConfig;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    pub network: NetworkConfig,
    pub access: AccessConfig,
    pub tls: TlsConfig,
    pub storage: StorageConfig,
    pub analysis: AnalysisConfig,
    pub retention: RetentionConfig,
    pub report: ReportConfig,
    pub outbox: OutboxConfig,
    pub http: HttpConfig,
    /// Which images are analysed first.
    pub priority: PriorityConfig,
    /// The research wing: series completion, research IDs, CT pairing.
    pub research: ResearchConfig,
    /// The browser annotator's listener (off by default).
    pub annotator: AnnotatorConfig,
    /// Where results are sent (`[[destinations]]`); none: results are
    /// stored but not sent.
    pub destinations: Vec<DestinationConfig>,
}

/// Who this node is and where it keeps its data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Our AE title (the Called AE Title peers must use).
    pub ae_title: String,
    /// Address to listen on.
    pub bind: IpAddr,
    /// DICOM port.
    pub port: u16,
    /// Everything the node writes lives below this directory.
    pub data_dir: PathBuf,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            ae_title: "CHESTNODE".into(),
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 11112,
            data_dir: PathBuf::from("./chestnode-data"),
        }
    }
}

/// Upper-layer limits and timeouts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Maximum PDU length we accept (bytes); announced in A-ASSOCIATE-AC.
    pub max_pdu_length: u32,
    /// Associations served at once; more are rejected as transient.
    pub max_associations: usize,
    /// ARTIM: how long a peer may take to send its A-ASSOCIATE-RQ (seconds).
    pub association_timeout_secs: u64,
    /// How long we wait for the next PDU inside a DIMSE message (seconds).
    pub dimse_timeout_secs: u64,
    /// How long an association may sit idle between messages (seconds).
    pub idle_timeout_secs: u64,
    /// On shutdown, how long in-flight associations may take to finish (seconds).
    pub shutdown_grace_secs: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            max_pdu_length: 131_072,
            max_associations: 16,
            association_timeout_secs: 30,
            dimse_timeout_secs: 60,
            idle_timeout_secs: 300,
            shutdown_grace_secs: 30,
        }
    }
}

impl NetworkConfig {
    pub fn association_timeout(&self) -> Duration {
        Duration::from_secs(self.association_timeout_secs)
    }
    pub fn dimse_timeout(&self) -> Duration {
        Duration::from_secs(self.dimse_timeout_secs)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// Which peers may associate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// Reject requests whose Called AE Title is not ours.
    pub require_called_ae_title: bool,
    /// Calling AE titles allowed to associate, as `"AE"` or `"AE@host"`.
    /// Empty means anyone may.
    pub allowed_calling: Vec<String>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            require_called_ae_title: true,
            allowed_calling: Vec::new(),
        }
    }
}

/// DICOM over TLS for the SCP (PS3.15 Annex B). Off by default: when on,
/// the DICOM port speaks only TLS.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Require TLS on `node.port`.
    pub enabled: bool,
    /// PEM file with our certificate, then any intermediates.
    pub certificate: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: Option<PathBuf>,
    /// PEM file of CA certificates. When set, every peer must present a
    /// client certificate issued by one of them; unset, none is asked for.
    pub client_ca: Option<PathBuf>,
}

/// DICOM over TLS to one destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DestinationTlsConfig {
    /// PEM file of the CA certificates the destination's certificate must
    /// chain to. Its name must match the destination's `host` (an IP
    /// address must be in the certificate's IP subject alternative names).
    pub ca_certificate: PathBuf,
    /// PEM file with our client certificate (then intermediates), for a
    /// destination that requires one. Needs `client_key`.
    #[serde(default)]
    pub client_certificate: Option<PathBuf>,
    /// PEM file with the client certificate's private key.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

/// Durable storage settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Refuse new instances (0xA700) when free space drops below this (MiB).
    pub min_free_mb: u64,
    /// Refuse new instances (0xA700) while this many jobs wait for (or are
    /// in) analysis, so a stalled worker cannot fill the disk. 0: no limit.
    pub max_queued_jobs: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            min_free_mb: 1024,
            max_queued_jobs: 10_000,
        }
    }
}

/// The analysis engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Model manifest (`weights/*.toml`). Empty: the built-in default model.
    pub model: Option<PathBuf>,
    /// `cpu`, or `cuda` for a build with the `cuda` feature.
    pub device: String,
    /// Images analysed at once. Two by default: with the compact model,
    /// decoding (single-threaded) takes longer than the forward pass, so a
    /// second worker decodes while the first runs the model (1.8 → 3.0
    /// images/s on 2 cores, BENCHMARKS.md). Zero receives and queues only;
    /// jobs stay pending until a node with workers runs.
    pub workers: usize,
    /// Seconds before a failed analysis is retried; each further retry
    /// waits four times longer. After three attempts the job is failed.
    pub retry_delay_secs: u64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            model: None,
            device: "cpu".into(),
            workers: 2,
            retry_delay_secs: 30,
        }
    }
}

/// When delivered instances are deleted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delete instances (and their results) this many days after receipt,
    /// once analysed and delivered everywhere. 0: never by age.
    pub keep_days: u64,
    /// Delete such instances, oldest first, while the data directory's file
    /// system is fuller than this percentage. 0: never by disk use.
    pub max_used_percent: u8,
    /// Seconds between sweeps.
    pub sweep_interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep_days: 30,
            max_used_percent: 90,
            sweep_interval_secs: 600,
        }
    }
}

/// The result objects made for each analysed image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// Root under which result UIDs are made (at most 43 characters).
    /// Empty: `2.25.` UUID-derived UIDs.
    pub uid_root: String,
    /// Institution or site name written as the Manufacturer of the
    /// Contributing Equipment and observer device.
    pub manufacturer: String,
    pub sr_series_number: i32,
    pub sr_series_description: String,
    pub sc_series_number: i32,
    pub sc_series_description: String,
    pub gsps_series_number: i32,
    pub gsps_series_description: String,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            uid_root: String::new(),
            manufacturer: "chestnode".into(),
            sr_series_number: 9901,
            sr_series_description: "AI chest findings (SR)".into(),
            sc_series_number: 9902,
            sc_series_description: "AI chest findings (overlay)".into(),
            gsps_series_number: 9903,
            gsps_series_description: "AI chest findings (GSPS)".into(),
        }
    }
}

/// The kinds of result object a destination can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultKind {
    /// The TID 1500 structured report.
    Sr,
    /// The secondary-capture overlay.
    Sc,
    /// The grayscale softcopy presentation state.
    Gsps,
}

impl ResultKind {
    pub const ALL: [ResultKind; 3] = [ResultKind::Sr, ResultKind::Sc, ResultKind::Gsps];

    pub fn key(self) -> &'static str {
        match self {
            ResultKind::Sr => "sr",
            ResultKind::Sc => "sc",
            ResultKind::Gsps => "gsps",
        }
    }
}

/// One peer that results are sent to by C-STORE.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Short name, used in `status` and `retry` (letters, digits, `-`, `_`).
    pub name: String,
    /// The peer's AE title (our Called AE Title).
    pub ae_title: String,
    pub host: String,
    pub port: u16,
    /// Which result objects this destination takes.
    #[serde(default = "default_kinds")]
    pub kinds: Vec<ResultKind>,
    /// Connect with TLS; absent: plain TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<DestinationTlsConfig>,
}

fn default_kinds() -> Vec<ResultKind> {
    vec![ResultKind::Sr, ResultKind::Sc]
}

/// How results are delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Seconds before the first retry of a transient failure; each further
    /// retry waits twice as long (with ±25 % jitter), up to `max_retry_delay_secs`.
    pub retry_delay_secs: u64,
    pub max_retry_delay_secs: u64,
    /// Seconds to wait for a peer to accept an association or answer a C-STORE.
    pub timeout_secs: u64,
    /// Largest PDU we send.
    pub max_pdu_length: u32,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            retry_delay_secs: 5,
            max_retry_delay_secs: 600,
            timeout_secs: 30,
            max_pdu_length: 131_072,
        }
    }
}

/// The operations HTTP endpoint: `/health`, `/metrics`, `/api/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve the endpoint at all.
    pub enabled: bool,
    /// Address to listen on; loopback unless deliberately exposed.
    pub bind: IpAddr,
    /// HTTP port.
    pub port: u16,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8081,
        }
    }
}

impl HttpConfig {
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }
}

impl Config {
    /// Reads a TOML file. Unknown keys are errors, so a typo cannot silently
    /// leave a default in force.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing configuration {}", path.display()))
    }

    /// Checks values that TOML types alone cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        validate_ae_title(&self.node.ae_title).context("node.ae_title")?;
        for entry in &self.access.allowed_calling {
            let ae = entry.split_once('@').map_or(entry.as_str(), |(ae, _)| ae);
            validate_ae_title(ae).with_context(|| format!("access.allowed_calling {entry:?}"))?;
        }
        self.research.validate()?;
        self.annotator.validate()?;
        let n = &self.network;
        if !(4096..=16_777_216).contains(&n.max_pdu_length) {
            bail!("network.max_pdu_length must be between 4096 and 16777216");
        }
        if !["cpu", "cuda"].contains(&self.analysis.device.as_str()) {
            bail!("analysis.device must be \"cpu\" or \"cuda\"");
        }
        if self.retention.max_used_percent > 99 || self.retention.sweep_interval_secs == 0 {
            bail!("retention.max_used_percent must be 0-99 and sweep_interval_secs at least 1");
        }
        if self.report.uid_root.len() > 43 {
            bail!("report.uid_root must be at most 43 characters");
        }
        let mut names = std::collections::HashSet::new();
        for destination in &self.destinations {
            let name = &destination.name;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bail!("destinations: name {name:?} must be letters, digits, '-' or '_'");
            }
            if !names.insert(name.clone()) {
                bail!("destinations: name {name:?} is used twice");
            }
            validate_ae_title(&destination.ae_title)
                .with_context(|| format!("destinations.{name}.ae_title"))?;
            if destination.kinds.is_empty() {
                bail!("destinations.{name}.kinds is empty");
            }
            let unpaired = destination
                .tls
                .as_ref()
                .is_some_and(|tls| tls.client_certificate.is_some() != tls.client_key.is_some());
            if unpaired {
                bail!("destinations.{name}.tls: client_certificate and client_key go together");
            }
        }
        if self.tls.enabled && (self.tls.certificate.is_none() || self.tls.private_key.is_none()) {
            bail!("tls.enabled needs tls.certificate and tls.private_key");
        }
        if !(4096..=16_777_216).contains(&self.outbox.max_pdu_length) {
            bail!("outbox.max_pdu_length must be between 4096 and 16777216");
        }
        if self.outbox.retry_delay_secs == 0 || self.outbox.timeout_secs == 0 {
            bail!("outbox.retry_delay_secs and outbox.timeout_secs must be at least 1");
        }
        if self.http.enabled && self.http.port == 0 {
            bail!("http.port must be a port number (1-65535)");
        }
        for ae in self.priority.calling_ae_titles.keys() {
            validate_ae_title(ae).with_context(|| format!("priority.calling_ae_titles {ae:?}"))?;
        }
        if n.max_associations == 0 {
            bail!("network.max_associations must be at least 1");
        }
        for (name, value) in [
            ("association_timeout_secs", n.association_timeout_secs),
            ("dimse_timeout_secs", n.dimse_timeout_secs),
            ("idle_timeout_secs", n.idle_timeout_secs),
        ] {
            if value == 0 {
                bail!("network.{name} must be at least 1 second");
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.node.bind, self.node.port)
    }
}

/// An AE title is 1–16 characters of the default character repertoire,
/// without backslash or control characters, and not all spaces.
pub fn validate_ae_title(ae: &str) -> anyhow::Result<()> {
    let trimmed = ae.trim();
    if trimmed.is_empty() || ae.len() > 16 {
        bail!("AE title must be 1-16 characters, got {ae:?}");
    }
    if !ae.chars().all(|c| c.is_ascii_graphic() || c == ' ') || ae.contains('\\') {
        bail!("AE title has characters outside the DICOM default repertoire: {ae:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config.node.ae_title, "CHESTNODE");
        assert_eq!(config.node.port, 11112);
        assert_eq!(config.node.bind.to_string(), "127.0.0.1");
        assert_eq!(config.node.data_dir, PathBuf::from("./chestnode-data"));
        assert!(config.http.enabled);
        assert_eq!(config.http.listen_addr().to_string(), "127.0.0.1:8081");
        config.validate().unwrap();
    }

    #[test]
    fn example_file_in_deploy_parses_and_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/chestnode.toml");
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Config>("[node]\naetitle = \"X\"").is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        let mut config = Config::default();
        config.node.ae_title = "WAY_TOO_LONG_AE_TITLE".into();
        assert!(config.validate().is_err());
        let mut config = Config::default();
        config.network.max_associations = 0;
        assert!(config.validate().is_err());
        let mut config = Config::default();
        config.access.allowed_calling = vec!["BAD\\AE".into()];
        assert!(config.validate().is_err());
        let mut config = Config::default();
        config.http.port = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn tls_needs_a_certificate_and_a_key() {
        let mut config = Config::default();
        config.tls.enabled = true;
        config.tls.certificate = Some("node.crt".into());
        assert!(config.validate().is_err());
        config.tls.private_key = Some("node.key".into());
        config.validate().unwrap();
    }

    #[test]
    fn destination_tls_parses_and_pairs_client_certificate_with_key() {
        let text = r#"
            [[destinations]]
            name = "pacs"
            ae_title = "PACS"
            host = "pacs.example"
            port = 2762
            tls = { ca_certificate = "ca.pem", client_certificate = "me.crt" }
        "#;
        let config: Config = toml::from_str(text).unwrap();
        let tls = config.destinations[0].tls.as_ref().unwrap();
        assert_eq!(tls.ca_certificate, PathBuf::from("ca.pem"));
        assert!(config.validate().is_err(), "client_key is missing");
    }
}
