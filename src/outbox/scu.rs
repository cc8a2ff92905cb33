//! The C-STORE SCU: one association to a destination, over which result
//! objects are sent one after another and each answer is read.
//!
//! The association proposes one presentation context per distinct (SOP
//! class, stored transfer syntax) among the objects to send, each offering
//! the stored syntax first and then explicit and implicit VR little endian,
//! which every Storage SCP accepts. When the peer picks another syntax than
//! the file's, the data set is re-encoded (`dicom-pixeldata` transcoding);
//! otherwise the stored bytes after the file meta group are sent as they
//! are. Commands and data sets travel in PDVs that fit the smaller of the
//! peer's and our maximum PDU length.
//!
//! A destination with `tls` is reached over TLS (see [`Link`]).
//!
//! An object counts as delivered only when its C-STORE-RSP arrives: a
//! timeout, an abort, a broken connection or an unreadable answer all leave
//! it undelivered (the caller retries it).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_pixeldata::Transcode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{ClientAssociationOptions, Pdu};
use rustls::ClientConfig;

use super::failure::{Failure, classify_association_error};
use super::link::Link;
use crate::config::DestinationConfig;
use crate::dimse::{Command, Response, command_field, describe_chain};

/// Bytes of a P-DATA-TF PDU's variable field taken by one PDV's header
/// (item length, presentation context id, message control header).
const PDV_HEADER: usize = 6;
/// The smallest PDU length we send, whatever a peer announces.
const MIN_PDU: usize = 4096;
/// Offset of "DICM" in a Part-10 file, after the preamble.
const PREAMBLE: usize = 128;

/// What the SCU needs to know about us.
#[derive(Debug, Clone)]
pub struct ScuSettings {
    /// Our AE title (the Calling AE Title).
    pub calling_ae_title: String,
    /// How long to wait for the association, each PDU written and each answer.
    pub timeout: Duration,
    /// The largest PDU we send and receive.
    pub max_pdu_length: u32,
}

/// One object to send: its identity and its stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectToStore<'a> {
    pub sop_class_uid: &'a str,
    pub sop_instance_uid: &'a str,
    pub transfer_syntax_uid: &'a str,
    /// Absolute path of the Part-10 file.
    pub file: &'a Path,
}

/// Why a C-STORE did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// This object could not be sent; the association is still usable.
    Object(Failure),
    /// The association broke; it must not be used again.
    Association(Failure),
}

/// An established association to one destination.
pub struct StoreAssociation {
    association: Link,
    timeout: Duration,
    max_pdv_data: usize,
    next_message_id: u16,
}

impl StoreAssociation {
    /// Requests an association to `destination` proposing a context for
    /// each (SOP class, transfer syntax) pair in `proposals`; over TLS
    /// when `tls` is given (the destination's client configuration).
    pub async fn establish(
        settings: &ScuSettings,
        destination: &DestinationConfig,
        tls: Option<&Arc<ClientConfig>>,
        proposals: &[(&str, &str)],
    ) -> Result<StoreAssociation, Failure> {
        let mut pairs: Vec<(&str, &str)> = proposals.to_vec();
        pairs.sort_unstable();
        pairs.dedup();
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(settings.calling_ae_title.clone())
            .called_ae_title(destination.ae_title.clone())
            .max_pdu_length(settings.max_pdu_length)
            .connection_timeout(settings.timeout)
            .read_timeout(settings.timeout)
            .write_timeout(settings.timeout);
        for (sop_class, transfer_syntax) in pairs {
            options = options.with_presentation_context(
                sop_class.to_owned(),
                transfer_syntaxes(transfer_syntax),
            );
        }
        let association = match tokio::time::timeout(
            settings.timeout.saturating_mul(2),
            Link::establish(options, &destination.host, destination.port, tls),
        )
        .await
        {
            Err(_) => {
                return Err(Failure::Transient(
                    "timed out requesting the association".into(),
                ));
            }
            // Over TLS, a peer that refuses our client certificate (or
            // wants one we do not have) closes the connection once the
            // handshake is over, which dicom-ul reports as "TLS not
            // supported".
            Ok(Err(dicom_ul::association::Error::TlsNotSupported)) if tls.is_some() => {
                return Err(Failure::Transient(
                    "the peer closed the TLS connection without answering the association \
                     request: it may not accept our client certificate, or want one"
                        .into(),
                ));
            }
            Ok(Err(error)) => return Err(classify_association_error(&error)),
            Ok(Ok(association)) => association,
        };
        let peer_max = association.acceptor_max_pdu_length() as usize;
        let our_max = settings.max_pdu_length as usize;
        let max_pdu = peer_max.min(our_max).max(MIN_PDU);
        Ok(StoreAssociation {
            association,
            timeout: settings.timeout,
            max_pdv_data: max_pdu - PDV_HEADER,
            next_message_id: 1,
        })
    }

    /// Sends one object with C-STORE and returns the peer's response, of
    /// whatever status (the caller judges it).
    pub async fn store(&mut self, object: &ObjectToStore<'_>) -> Result<Response, StoreError> {
        let Some((context_id, accepted_ts)) = self.context_for(object) else {
            return Err(StoreError::Object(Failure::Permanent(format!(
                "the peer accepted no presentation context for SOP class {}: SOP class not supported",
                object.sop_class_uid
            ))));
        };
        let file = object.file.to_path_buf();
        let instance = object.sop_instance_uid.to_owned();
        let data_set =
            tokio::task::spawn_blocking(move || data_set_for(&file, &instance, &accepted_ts))
                .await
                .map_err(|e| {
                    StoreError::Object(Failure::Transient(format!("preparing the data set: {e}")))
                })?
                .map_err(StoreError::Object)?;

        let message_id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        let command = Command {
            command_field: command_field::C_STORE_RQ,
            message_id,
            affected_sop_class_uid: Some(object.sop_class_uid.to_owned()),
            affected_sop_instance_uid: Some(object.sop_instance_uid.to_owned()),
            priority: 0,
            has_data_set: true,
        };
        self.send_pdv(context_id, PDataValueType::Command, true, command.encode())
            .await?;
        let mut chunks = data_set.chunks(self.max_pdv_data).peekable();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.send_pdv(context_id, PDataValueType::Data, last, chunk.to_vec())
                .await?;
        }
        let response = self.receive_response().await?;
        if response.command_field != command_field::C_STORE_RSP
            || response.message_id_being_responded_to != message_id
        {
            return Err(StoreError::Association(Failure::Transient(format!(
                "the peer answered message {message_id} with command 0x{:04X} to message {}",
                response.command_field, response.message_id_being_responded_to
            ))));
        }
        Ok(response)
    }

    /// Releases the association; a peer that does not answer the release
    /// in time is aborted. Either way the connection is closed.
    pub async fn release(self) {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.association.release()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(error = %describe_chain(&error), "release failed"),
            Err(_) => tracing::debug!("release timed out"),
        }
    }

    /// Aborts the association (after a protocol failure).
    pub async fn abort(self) {
        let timeout = self.timeout;
        let _ = tokio::time::timeout(timeout, self.association.abort()).await;
    }

    /// The accepted context for the object's SOP class, preferring one
    /// whose transfer syntax is the file's, and that syntax.
    fn context_for(&self, object: &ObjectToStore<'_>) -> Option<(u8, String)> {
        let contexts = self.association.presentation_contexts();
        let matching = || {
            contexts
                .iter()
                .filter(|c| trim_uid(&c.abstract_syntax) == object.sop_class_uid)
        };
        matching()
            .find(|c| trim_uid(&c.transfer_syntax) == object.transfer_syntax_uid)
            .or_else(|| matching().next())
            .map(|c| (c.id, trim_uid(&c.transfer_syntax).to_owned()))
    }

    async fn send_pdv(
        &mut self,
        context_id: u8,
        value_type: PDataValueType,
        is_last: bool,
        data: Vec<u8>,
    ) -> Result<(), StoreError> {
        let pdu = Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type,
                is_last,
                data,
            }],
        };
        match tokio::time::timeout(self.timeout, self.association.send(&pdu)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(StoreError::Association(failure)),
            Err(_) => Err(StoreError::Association(Failure::Transient(
                "timed out sending to the peer".into(),
            ))),
        }
    }

    /// Reads PDUs until a complete command set arrives, and decodes it.
    async fn receive_response(&mut self) -> Result<Response, StoreError> {
        let broken = |reason: String| StoreError::Association(Failure::Transient(reason));
        let mut command = Vec::new();
        loop {
            let pdu = match tokio::time::timeout(self.timeout, self.association.receive()).await {
                Err(_) => return Err(broken("timed out waiting for the C-STORE response".into())),
                Ok(Err(error)) => {
                    return Err(StoreError::Association(classify_association_error(&error)));
                }
                Ok(Ok(pdu)) => pdu,
            };
            match pdu {
                Pdu::PData { data } => {
                    for value in data {
                        if value.value_type != PDataValueType::Command {
                            continue;
                        }
                        command.extend_from_slice(&value.data);
                        if value.is_last {
                            return Response::decode(&command)
                                .map_err(|e| broken(format!("unreadable C-STORE response: {e}")));
                        }
                    }
                }
                Pdu::AbortRQ { source } => {
                    return Err(broken(format!(
                        "association aborted by the peer ({source:?})"
                    )));
                }
                other => {
                    return Err(broken(format!(
                        "unexpected {} instead of the C-STORE response",
                        other.short_description()
                    )));
                }
            }
        }
    }
}

/// The transfer syntaxes proposed for a file stored in `stored`: that one
/// first, then the two every SCP must accept.
fn transfer_syntaxes(stored: &str) -> Vec<String> {
    let mut syntaxes = vec![stored.to_owned()];
    for uid in [
        EXPLICIT_VR_LITTLE_ENDIAN.uid(),
        IMPLICIT_VR_LITTLE_ENDIAN.uid(),
    ] {
        if !syntaxes.iter().any(|s| s == uid) {
            syntaxes.push(uid.to_owned());
        }
    }
    syntaxes
}

fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

/// The data set of the Part-10 file at `path`, encoded in
/// `transfer_syntax`: the stored bytes when the file already uses it,
/// else re-encoded. Checks that the file holds `sop_instance_uid`.
pub fn data_set_for(
    path: &Path,
    sop_instance_uid: &str,
    transfer_syntax: &str,
) -> Result<Vec<u8>, Failure> {
    let bytes = std::fs::read(path).map_err(|error| {
        let reason = format!("reading result file {}: {error}", path.display());
        if error.kind() == std::io::ErrorKind::NotFound {
            Failure::Permanent(reason)
        } else {
            Failure::Transient(reason)
        }
    })?;
    let unreadable =
        |what: String| Failure::Permanent(format!("result file {}: {what}", path.display()));
    if bytes.len() < PREAMBLE + 4 || &bytes[PREAMBLE..PREAMBLE + 4] != b"DICM" {
        return Err(unreadable("not a DICOM Part-10 file".into()));
    }
    let meta = dicom_object::FileMetaTable::from_reader(&bytes[PREAMBLE..])
        .map_err(|e| unreadable(format!("unreadable file meta group: {e}")))?;
    if meta.media_storage_sop_instance_uid() != sop_instance_uid {
        return Err(unreadable(format!(
            "holds SOP instance {}, not {sop_instance_uid}",
            meta.media_storage_sop_instance_uid()
        )));
    }
    if meta.transfer_syntax() == transfer_syntax {
        // "DICM", then (0002,0000) UL in explicit VR (12 bytes), then the
        // rest of the group.
        let start = PREAMBLE + 4 + 12 + meta.information_group_length as usize;
        return match bytes.get(start..) {
            // Every value has an even length (PS3.5 §7.1.1), so a data set
            // does too; a peer given an odd one waits for the byte that
            // never comes, and the delivery would time out for ever.
            Some(data_set) if data_set.len() % 2 == 1 => Err(unreadable(
                "the data set has an odd length (a value of odd length): not valid DICOM".into(),
            )),
            Some(data_set) if !data_set.is_empty() => Ok(data_set.to_vec()),
            _ => Err(unreadable("no data set after the file meta group".into())),
        };
    }
    let target = TransferSyntaxRegistry
        .get(transfer_syntax)
        .ok_or_else(|| unreadable(format!("unknown transfer syntax {transfer_syntax}")))?;
    let mut object = dicom_object::from_reader(&bytes[PREAMBLE..])
        .map_err(|e| unreadable(format!("unreadable data set: {e}")))?;
    object.transcode(target).map_err(|e| {
        unreadable(format!(
            "cannot re-encode from {} to {transfer_syntax}: {e}",
            meta.transfer_syntax()
        ))
    })?;
    let mut out = Vec::with_capacity(bytes.len());
    object
        .write_dataset_with_ts(&mut out, target)
        .map_err(|e| unreadable(format!("cannot write in {transfer_syntax}: {e}")))?;
    Ok(out)
}
