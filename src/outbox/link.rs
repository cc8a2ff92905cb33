//! The client association under the C-STORE SCU, over plain TCP or TLS.
//!
//! `dicom-ul` gives an association over TLS a different type from one over
//! TCP, and offers no way to establish over a stream of our choosing, so
//! the SCU holds a [`Link`]: one of the two, with the handful of operations
//! it needs forwarded to whichever it is. A TLS destination's certificate
//! is checked against its configured CA and against its `host` (a DNS name,
//! or an IP address that must appear among the certificate's IP SANs).
//!
//! A TLS stream keeps what it could not write at once in its own buffer
//! until it is written to again or flushed; `dicom-ul` does neither after
//! a PDU, so without [`Link::send`]'s flush the end of a large data set
//! could sit unsent while we wait for the peer's answer to it.

use std::sync::Arc;

use dicom_ul::association::client::AsyncTlsStream;
use dicom_ul::association::{AsyncClientAssociation, Error};
use dicom_ul::pdu::PresentationContextNegotiated;
use dicom_ul::{ClientAssociationOptions, Pdu};
use rustls::ClientConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::failure::{Failure, classify_association_error};

/// An established client association (boxed: the two differ in size by
/// the TLS session's state).
pub enum Link {
    Plain(Box<AsyncClientAssociation<TcpStream>>),
    Tls(Box<AsyncClientAssociation<AsyncTlsStream>>),
}

impl Link {
    /// Connects to `host:port` (over TLS when `tls` is given) and requests
    /// the association described by `options`.
    pub async fn establish(
        options: ClientAssociationOptions<'_>,
        host: &str,
        port: u16,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<Link, Error> {
        match tls {
            None => options
                .establish_async((host, port))
                .await
                .map(|association| Link::Plain(Box::new(association))),
            Some(tls) => options
                .tls_config(tls.clone())
                .server_name(host)
                .establish_tls_async((host, port))
                .await
                .map(|association| Link::Tls(Box::new(association))),
        }
    }

    pub fn presentation_contexts(&self) -> &[PresentationContextNegotiated] {
        match self {
            Link::Plain(a) => a.presentation_contexts(),
            Link::Tls(a) => a.presentation_contexts(),
        }
    }

    /// The largest PDU the peer accepts.
    pub fn acceptor_max_pdu_length(&self) -> u32 {
        match self {
            Link::Plain(a) => a.acceptor_max_pdu_length(),
            Link::Tls(a) => a.acceptor_max_pdu_length(),
        }
    }

    /// Sends one PDU, all of it.
    pub async fn send(&mut self, pdu: &Pdu) -> Result<(), Failure> {
        let classify = |error: Error| classify_association_error(&error);
        match self {
            Link::Plain(a) => a.send(pdu).await.map_err(classify),
            Link::Tls(a) => {
                a.send(pdu).await.map_err(classify)?;
                a.inner_stream()
                    .flush()
                    .await
                    .map_err(|error| Failure::Transient(format!("sending over TLS: {error}")))
            }
        }
    }

    pub async fn receive(&mut self) -> Result<Pdu, Error> {
        match self {
            Link::Plain(a) => a.receive().await,
            Link::Tls(a) => a.receive().await,
        }
    }

    pub async fn release(self) -> Result<(), Error> {
        match self {
            Link::Plain(a) => a.release().await,
            Link::Tls(a) => a.release().await,
        }
    }

    pub async fn abort(self) -> Result<(), Error> {
        match self {
            Link::Plain(a) => a.abort().await,
            Link::Tls(a) => a.abort().await,
        }
    }
}
