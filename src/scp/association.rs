//! Association negotiation (PS3.8): the acceptor options handed to
//! `dicom-ul`, the Called/Calling AE title policy, and the transient
//! rejection sent when the node is already serving its limit.
//!
//! `dicom-ul` reads the A-ASSOCIATE-RQ and negotiates presentation contexts;
//! we decide who may associate ([`AccessPolicy`]) and what is offered
//! (`contexts`). A rejection for being busy is sent here directly, because
//! it must be *transient* and name "local limit exceeded", which only the
//! service provider may say.

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dicom_ul::ServerAssociationOptions;
use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJServiceUserReason, AssociationRJSource, Pdu, UserIdentity,
};
use tokio::io::AsyncWriteExt;

use crate::config::Config;
use crate::scp::contexts;
use crate::scp::session::Transport;

/// One entry of the calling AE allow-list, with its host resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedCaller {
    pub ae_title: String,
    /// Addresses the caller must come from; `None` means any host.
    pub hosts: Option<Vec<IpAddr>>,
}

impl AllowedCaller {
    /// Parses `"AE"` or `"AE@host"`, resolving the host name once.
    pub fn parse(entry: &str) -> anyhow::Result<AllowedCaller> {
        match entry.split_once('@') {
            None => Ok(AllowedCaller {
                ae_title: entry.trim().to_owned(),
                hosts: None,
            }),
            Some((ae, host)) => {
                let hosts: Vec<IpAddr> = match host.parse::<IpAddr>() {
                    Ok(ip) => vec![ip.to_canonical()],
                    Err(_) => (host, 0)
                        .to_socket_addrs()
                        .map_err(|e| anyhow::anyhow!("cannot resolve {host:?}: {e}"))?
                        .map(|a| a.ip().to_canonical())
                        .collect(),
                };
                Ok(AllowedCaller {
                    ae_title: ae.trim().to_owned(),
                    hosts: Some(hosts),
                })
            }
        }
    }

    fn admits(&self, calling_ae_title: &str, peer: IpAddr) -> bool {
        self.ae_title == calling_ae_title
            && self
                .hosts
                .as_ref()
                .is_none_or(|hosts| hosts.contains(&peer.to_canonical()))
    }
}

/// Who may associate, checked by `dicom-ul` during negotiation. Built per
/// connection because the allow-list may name the peer's host; the list
/// itself is shared, not copied.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    pub our_ae_title: String,
    pub require_called_ae_title: bool,
    /// Empty means any caller is allowed.
    pub allowed: Arc<Vec<AllowedCaller>>,
    pub peer: IpAddr,
}

impl AccessControl for AccessPolicy {
    fn check_access(
        &self,
        _this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if self.require_called_ae_title && called_ae_title.trim() != self.our_ae_title {
            tracing::warn!(
                called = called_ae_title.trim(),
                "association rejected: called AE title not recognized"
            );
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        let calling = calling_ae_title.trim();
        if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a.admits(calling, self.peer)) {
            tracing::warn!(calling, peer = %self.peer, "association rejected: calling AE title not allowed");
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

/// Acceptor options shared by every association: our AE title, the
/// presentation contexts we accept, strict PDU checks and our maximum PDU
/// length. Access control is added per connection.
pub fn acceptor_options(
    config: &Config,
) -> ServerAssociationOptions<
    'static,
    dicom_ul::association::server::AcceptAny,
    dicom_ul::association::server::DefaultNegotiation,
> {
    let mut options = ServerAssociationOptions::new()
        .ae_title(config.node.ae_title.clone())
        .strict(true)
        .max_pdu_length(config.network.max_pdu_length)
        .read_timeout(config.network.association_timeout())
        .write_timeout(config.network.dimse_timeout())
        .with_abstract_syntax(contexts::VERIFICATION);
    for sop_class in contexts::STORAGE_SOP_CLASSES {
        options = options.with_abstract_syntax(*sop_class);
    }
    for transfer_syntax in contexts::TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(*transfer_syntax);
    }
    options
}

/// Reads the peer's A-ASSOCIATE-RQ and answers A-ASSOCIATE-RJ with result
/// *rejected-transient*, source *service-provider (presentation)*, reason
/// *local-limit-exceeded*, so the peer knows to try again later. Over TLS,
/// `socket` is the TLS stream: the peer could not read a plain answer.
pub async fn reject_busy<S: Transport>(mut socket: S, artim: Duration, max_pdu_length: u32) {
    let mut buffer = BytesMut::with_capacity(4096);
    let request = tokio::time::timeout(
        artim,
        dicom_ul::association::read_pdu_from_wire_async(
            &mut socket,
            &mut buffer,
            max_pdu_length,
            false,
        ),
    )
    .await;
    if !matches!(request, Ok(Ok(Pdu::AssociationRQ(_)))) {
        return;
    }
    let rejection = Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    });
    let mut encoded = Vec::with_capacity(16);
    if dicom_ul::write_pdu(&mut encoded, &rejection).is_ok() {
        let _ = tokio::time::timeout(artim, socket.write_all(&encoded)).await;
        let _ = socket.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> AccessPolicy {
        AccessPolicy {
            our_ae_title: "CHESTNODE".into(),
            require_called_ae_title: true,
            allowed: Arc::new(
                allowed
                    .iter()
                    .map(|e| AllowedCaller::parse(e).unwrap())
                    .collect(),
            ),
            peer: "127.0.0.1".parse().unwrap(),
        }
    }

    #[test]
    fn called_ae_title_must_be_ours() {
        let p = policy(&[]);
        assert!(p.check_access("", "ANY", "CHESTNODE       ", None).is_ok());
        assert_eq!(
            p.check_access("", "ANY", "OTHER", None),
            Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized)
        );
    }

    #[test]
    fn allow_list_checks_title_and_host() {
        let p = policy(&["MODALITY", "PACS@127.0.0.1", "FAR@10.1.2.3"]);
        assert!(p.check_access("", "MODALITY", "CHESTNODE", None).is_ok());
        assert!(p.check_access("", "PACS", "CHESTNODE", None).is_ok());
        assert_eq!(
            p.check_access("", "FAR", "CHESTNODE", None),
            Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
        );
        assert_eq!(
            p.check_access("", "STRANGER", "CHESTNODE", None),
            Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_entries() {
        let caller = AllowedCaller::parse("PACS@127.0.0.1").unwrap();
        assert!(caller.admits("PACS", "::ffff:127.0.0.1".parse().unwrap()));
    }
}
