//! One association, from A-ASSOCIATE-AC to release or abort: the DIMSE
//! message loop.
//!
//! P-DATA values arrive in any fragmentation the peer likes: a command may
//! span several PDVs and PDUs, and a command and the start of its data set
//! may share one PDU. The loop is therefore a small state machine over PDVs
//! ([`Inbound`]) rather than a loop over messages. Data set bytes go straight
//! to the store's temporary file, so memory use is bounded by the PDU size,
//! not the object size.
//!
//! Anything that breaks the protocol (data without a command, a PDV on a
//! context that was not accepted, an unparsable command set) ends the
//! association with A-ABORT. Anything wrong with an *instance* gets a
//! failure status and the association carries on.
//!
//! The loop is generic over the [`Transport`], so plain TCP and TLS
//! associations run the same code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_ul::association::AsyncAssociation;
use dicom_ul::association::{Association, AsyncServerAssociation};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextResultReason};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::dimse::{Command, PduError, PduReader, Pdv, Received, Response, command_field, status};
use crate::metrics::Metrics;
use crate::scp::contexts;
use crate::store::{Incoming, IncomingMeta, Store, StoreError, Stored, ValidUid};

/// The largest command set we accept. Real ones are a few hundred bytes.
const MAX_COMMAND_SET_BYTES: usize = 64 * 1024;

/// What an association runs over: a TCP stream, or a TLS stream over one.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for S {}

/// What every session needs from the node.
pub struct SessionContext {
    pub store: Arc<Store>,
    /// Longest wait for the next PDU inside a DIMSE message.
    pub dimse_timeout: Duration,
    /// Longest wait for the next message.
    pub idle_timeout: Duration,
    pub metrics: Arc<Metrics>,
    /// Decides each instance's analysis priority.
    pub priority: crate::queue::PriorityConfig,
}

/// An accepted presentation context.
#[derive(Debug, Clone)]
struct AcceptedContext {
    id: u8,
    abstract_syntax: String,
    transfer_syntax: String,
}

/// Where we are in the current DIMSE message.
enum Inbound {
    /// Between messages, or collecting the fragments of a command set.
    Command {
        bytes: Vec<u8>,
        context_id: Option<u8>,
    },
    /// Collecting the data set of a C-STORE (or of a request we refuse).
    DataSet {
        request: Command,
        context_id: u8,
        sink: Sink,
    },
}

/// Where data set bytes go.
enum Sink {
    /// Into a temporary file, to be committed when complete.
    Store(Incoming),
    /// Nowhere: the request is already refused with this status.
    Discard { status: u16, comment: String },
}

/// How the loop ended.
enum Ending {
    Released,
    PeerAborted,
    ConnectionLost(String),
    /// We must send A-ABORT, for this reason.
    Abort(String),
}

/// Counters reported when the association ends.
#[derive(Default)]
struct Tally {
    stored: u32,
    duplicates: u32,
    failed: u32,
    bytes: u64,
}

/// Serves one established association until it ends. `abort` is cancelled
/// when the node stops waiting for in-flight work at shutdown.
pub async fn serve<S: Transport>(
    mut association: AsyncServerAssociation<S>,
    context: Arc<SessionContext>,
    abort: CancellationToken,
) {
    let started = Instant::now();
    let calling = association.peer_ae_title().trim().to_owned();
    let accepted: Vec<AcceptedContext> = association
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| AcceptedContext {
            id: pc.id,
            abstract_syntax: pc.abstract_syntax.clone(),
            transfer_syntax: pc.transfer_syntax.clone(),
        })
        .collect();
    tracing::info!(calling = %calling, contexts = accepted.len(), "association accepted");

    let mut session = Session {
        context: &context,
        calling: &calling,
        accepted: &accepted,
        inbound: Inbound::Command {
            bytes: Vec::new(),
            context_id: None,
        },
        tally: Tally::default(),
    };
    let ending = session.run(&mut association, &abort).await;
    let tally = session.tally;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match ending {
        Ending::Released => {
            tracing::info!(calling = %calling, stored = tally.stored, duplicates = tally.duplicates, failed = tally.failed, bytes = tally.bytes, elapsed_ms, "association released");
        }
        Ending::PeerAborted => {
            tracing::warn!(calling = %calling, stored = tally.stored, failed = tally.failed, elapsed_ms, "association aborted by peer");
        }
        Ending::ConnectionLost(reason) => {
            tracing::warn!(calling = %calling, stored = tally.stored, failed = tally.failed, %reason, "connection lost");
        }
        Ending::Abort(reason) => {
            tracing::warn!(calling = %calling, stored = tally.stored, failed = tally.failed, %reason, "aborting association");
            context
                .store
                .ledger()
                .incidents()
                .record("scp", format!("A-ABORT sent to {calling}: {reason}"));
            let _ = association.abort().await;
        }
    }
}

struct Session<'a> {
    context: &'a SessionContext,
    calling: &'a str,
    accepted: &'a [AcceptedContext],
    inbound: Inbound,
    tally: Tally,
}

impl Session<'_> {
    async fn run<S: Transport>(
        &mut self,
        association: &mut AsyncServerAssociation<S>,
        abort: &CancellationToken,
    ) -> Ending {
        let mut reader = {
            let max_pdu_length = association.acceptor_max_pdu_length();
            let (_, already_read) = association.get_mut();
            PduReader::new(max_pdu_length, &already_read.split())
        };
        loop {
            let between_messages =
                matches!(&self.inbound, Inbound::Command { bytes, .. } if bytes.is_empty());
            let limit = if between_messages {
                self.context.idle_timeout
            } else {
                self.context.dimse_timeout
            };
            let received = tokio::select! {
                received = tokio::time::timeout(limit, reader.next(association.inner_stream())) => received,
                _ = abort.cancelled() => return Ending::Abort("node shutting down".into()),
            };
            let pdu = match received {
                Err(_) if between_messages => return Ending::Abort("idle timeout".into()),
                Err(_) => {
                    return Ending::Abort("DIMSE timeout waiting for the rest of a message".into());
                }
                Ok(Err(PduError::Closed)) => {
                    return Ending::ConnectionLost("peer closed the connection".into());
                }
                Ok(Err(PduError::Io(error))) => return Ending::ConnectionLost(error.to_string()),
                Ok(Err(error)) => return Ending::Abort(error.to_string()),
                Ok(Ok(pdu)) => pdu,
            };
            match pdu {
                Received::PData(values) => {
                    for value in values {
                        if let Err(violation) = self.on_value(association, value).await {
                            return violation;
                        }
                    }
                }
                Received::Other(Pdu::ReleaseRQ) => {
                    if !between_messages {
                        tracing::warn!(
                            "release requested in the middle of a message; partial instance discarded"
                        );
                    }
                    let release = send(association, &Pdu::ReleaseRP);
                    let _ = tokio::time::timeout(self.context.dimse_timeout, release).await;
                    return Ending::Released;
                }
                Received::Other(Pdu::AbortRQ { .. }) => return Ending::PeerAborted,
                Received::Other(other) => {
                    return Ending::Abort(format!("unexpected PDU {}", other.short_description()));
                }
            }
        }
    }

    /// Handles one presentation data value.
    async fn on_value<S: Transport>(
        &mut self,
        association: &mut AsyncServerAssociation<S>,
        value: Pdv,
    ) -> Result<(), Ending> {
        if !self
            .accepted
            .iter()
            .any(|pc| pc.id == value.presentation_context_id)
        {
            return Err(Ending::Abort(format!(
                "P-DATA on presentation context {} which was not accepted",
                value.presentation_context_id
            )));
        }
        match (&mut self.inbound, value.is_command) {
            (Inbound::Command { bytes, context_id }, true) => {
                if context_id.is_some_and(|id| id != value.presentation_context_id) {
                    return Err(Ending::Abort(
                        "command fragments on different contexts".into(),
                    ));
                }
                *context_id = Some(value.presentation_context_id);
                bytes.extend_from_slice(&value.data);
                if bytes.len() > MAX_COMMAND_SET_BYTES {
                    return Err(Ending::Abort("command set too large".into()));
                }
                if !value.is_last {
                    return Ok(());
                }
                let request = Command::decode(bytes)
                    .map_err(|e| Ending::Abort(format!("bad command set: {e}")))?;
                let context_id = value.presentation_context_id;
                self.inbound = Inbound::Command {
                    bytes: Vec::new(),
                    context_id: None,
                };
                self.on_command(association, request, context_id).await
            }
            (
                Inbound::DataSet {
                    context_id, sink, ..
                },
                false,
            ) => {
                if *context_id != value.presentation_context_id {
                    return Err(Ending::Abort(
                        "data set fragments on a different context".into(),
                    ));
                }
                if let Sink::Store(incoming) = sink {
                    let write = incoming.write(&value.data);
                    if let Err(error) = write {
                        tracing::warn!(%error, "could not write incoming data set");
                        *sink = Sink::Discard {
                            status: status::OUT_OF_RESOURCES,
                            comment: format!("storage write failed: {error}"),
                        };
                    }
                }
                if value.is_last {
                    self.finish_data_set(association).await?;
                }
                Ok(())
            }
            (Inbound::Command { .. }, false) => {
                Err(Ending::Abort("data set fragment without a command".into()))
            }
            (Inbound::DataSet { .. }, true) => Err(Ending::Abort(
                "command fragment before the data set was complete".into(),
            )),
        }
    }

    /// Acts on a complete command set.
    async fn on_command<S: Transport>(
        &mut self,
        association: &mut AsyncServerAssociation<S>,
        request: Command,
        context_id: u8,
    ) -> Result<(), Ending> {
        let context = self
            .accepted
            .iter()
            .find(|pc| pc.id == context_id)
            .expect("checked in on_value")
            .clone();
        match request.command_field {
            command_field::C_ECHO_RQ => {
                if request.has_data_set {
                    return Err(Ending::Abort("C-ECHO-RQ announced a data set".into()));
                }
                let response_status = if context.abstract_syntax == contexts::VERIFICATION {
                    status::SUCCESS
                } else {
                    status::SOP_CLASS_NOT_SUPPORTED
                };
                tracing::debug!(calling = self.calling, "C-ECHO");
                self.respond(
                    association,
                    context_id,
                    Response::to(&request, response_status),
                )
                .await
            }
            command_field::C_STORE_RQ if request.has_data_set => {
                let sink = self.open_sink(&request, &context);
                self.inbound = Inbound::DataSet {
                    request,
                    context_id,
                    sink,
                };
                Ok(())
            }
            command_field::C_STORE_RQ => {
                let response = Response::to(&request, status::CANNOT_UNDERSTAND)
                    .with_error_comment("C-STORE-RQ without a data set");
                self.respond(association, context_id, response).await
            }
            command_field::C_CANCEL_RQ => Ok(()),
            _ if request.has_data_set => {
                let sink = Sink::Discard {
                    status: status::UNRECOGNIZED_OPERATION,
                    comment: "operation not supported by this node".into(),
                };
                self.inbound = Inbound::DataSet {
                    request,
                    context_id,
                    sink,
                };
                Ok(())
            }
            _ => {
                let response = Response::to(&request, status::UNRECOGNIZED_OPERATION)
                    .with_error_comment("operation not supported by this node");
                self.respond(association, context_id, response).await
            }
        }
    }

    /// Decides where a C-STORE's data set goes before its first byte arrives.
    fn open_sink(&self, request: &Command, context: &AcceptedContext) -> Sink {
        let refuse = |status, comment: String| Sink::Discard { status, comment };
        let Some(sop_class) = request.affected_sop_class_uid.clone() else {
            return refuse(
                status::CANNOT_UNDERSTAND,
                "missing Affected SOP Class UID".into(),
            );
        };
        if sop_class != context.abstract_syntax || !contexts::is_accepted_storage_class(&sop_class)
        {
            return refuse(
                status::SOP_CLASS_NOT_SUPPORTED,
                "Affected SOP Class UID does not match the presentation context".into(),
            );
        }
        let instance = match request
            .affected_sop_instance_uid
            .as_deref()
            .map(ValidUid::parse)
        {
            None => {
                return refuse(
                    status::CANNOT_UNDERSTAND,
                    "missing Affected SOP Instance UID".into(),
                );
            }
            Some(Err(e)) => {
                return refuse(
                    status::CANNOT_UNDERSTAND,
                    format!("invalid Affected SOP Instance UID: {e}"),
                );
            }
            Some(Ok(uid)) => uid,
        };
        let meta = IncomingMeta {
            sop_class_uid: sop_class,
            sop_instance_uid: instance,
            transfer_syntax_uid: context.transfer_syntax.clone(),
            calling_ae_title: self.calling.to_owned(),
            priority: self
                .context
                .priority
                .priority_of(self.calling, request.priority),
        };
        match tokio::task::block_in_place(|| self.context.store.begin(meta)) {
            Ok(incoming) => Sink::Store(incoming),
            Err(error) => refuse(status::OUT_OF_RESOURCES, error.to_string()),
        }
    }

    /// The last data set fragment arrived: commit or refuse, then respond.
    async fn finish_data_set<S: Transport>(
        &mut self,
        association: &mut AsyncServerAssociation<S>,
    ) -> Result<(), Ending> {
        let inbound = std::mem::replace(
            &mut self.inbound,
            Inbound::Command {
                bytes: Vec::new(),
                context_id: None,
            },
        );
        let Inbound::DataSet {
            request,
            context_id,
            sink,
        } = inbound
        else {
            unreachable!("only called while receiving a data set");
        };
        let response = match sink {
            Sink::Discard { status, comment } => {
                self.refused(&request, status, &comment);
                Response::to(&request, status).with_error_comment(comment)
            }
            Sink::Store(incoming) => {
                let bytes = incoming.data_set_bytes();
                let transfer_syntax = incoming.meta().transfer_syntax_uid.clone();
                let store = self.context.store.clone();
                let committed = tokio::task::spawn_blocking(move || store.commit(incoming))
                    .await
                    .unwrap_or_else(|e| {
                        Err(StoreError::OutOfResources(format!(
                            "commit task failed: {e}"
                        )))
                    });
                match committed {
                    Ok(Stored::New(record)) => {
                        self.context.metrics.instance_received(true, bytes);
                        self.tally.stored += 1;
                        self.tally.bytes += bytes;
                        tracing::info!(
                            sop_instance_uid = %record.sop_instance_uid,
                            sop_class_uid = %record.sop_class_uid,
                            %transfer_syntax,
                            bytes,
                            job = record.job_id,
                            "instance stored"
                        );
                        Response::to(&request, status::SUCCESS)
                    }
                    Ok(Stored::Duplicate(record)) => {
                        self.context.metrics.instance_received(true, bytes);
                        self.tally.duplicates += 1;
                        tracing::info!(
                            sop_instance_uid = %record.sop_instance_uid,
                            "duplicate instance: first copy kept, no new job"
                        );
                        Response::to(&request, status::SUCCESS)
                    }
                    Err(error) => {
                        let status = match &error {
                            StoreError::OutOfResources(_) => status::OUT_OF_RESOURCES,
                            StoreError::Mismatch(_) => status::DATA_SET_DOES_NOT_MATCH,
                            StoreError::Unparsable(_) | StoreError::InvalidUid(..) => {
                                status::CANNOT_UNDERSTAND
                            }
                        };
                        let comment = error.to_string();
                        self.refused(&request, status, &comment);
                        Response::to(&request, status).with_error_comment(comment)
                    }
                }
            }
        };
        self.respond(association, context_id, response).await
    }

    /// Logs and records a refused instance.
    fn refused(&mut self, request: &Command, status: u16, comment: &str) {
        self.context.metrics.instance_received(false, 0);
        self.tally.failed += 1;
        tracing::warn!(
            calling = self.calling,
            status = format_args!("{status:#06X}"),
            reason = comment,
            "C-STORE refused"
        );
        let uid = request.affected_sop_instance_uid.as_deref().unwrap_or("?");
        let uid: String = uid
            .chars()
            .take(64)
            .filter(|c| c.is_ascii_graphic())
            .collect();
        self.context.store.ledger().incidents().record(
            "scp",
            format!(
                "C-STORE of {uid} from {} refused with {status:#06X}: {comment}",
                self.calling
            ),
        );
    }

    async fn respond<S: Transport>(
        &mut self,
        association: &mut AsyncServerAssociation<S>,
        context_id: u8,
        response: Response,
    ) -> Result<(), Ending> {
        let pdu = Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: response.encode(),
            }],
        };
        match tokio::time::timeout(self.context.dimse_timeout, send(association, &pdu)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Ending::ConnectionLost(format!("sending response: {error}"))),
            Err(_) => Err(Ending::Abort("timed out sending a response".into())),
        }
    }
}

/// Sends one PDU and flushes it: a TLS stream may hold back what it could
/// not write at once until flushed (on TCP, flushing does nothing).
async fn send<S: Transport>(
    association: &mut AsyncServerAssociation<S>,
    pdu: &Pdu,
) -> Result<(), String> {
    association.send(pdu).await.map_err(|e| e.to_string())?;
    association
        .inner_stream()
        .flush()
        .await
        .map_err(|e| e.to_string())
}
