//! A deliberately low-level DICOM client for tests that must send what no
//! well-behaved tool sends: garbage data sets, crafted UIDs, odd
//! fragmentation. Built on `dicom-ul`'s synchronous client.

use std::net::TcpStream;
use std::time::Duration;

use chestnode::dimse::{Command, Response, command_field};
use dicom_ul::ClientAssociationOptions;
use dicom_ul::association::client::ClientAssociation;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};

pub struct RawScu {
    pub association: ClientAssociation<TcpStream>,
    next_message_id: u16,
}

impl RawScu {
    /// Associates proposing one presentation context.
    pub fn connect(
        port: u16,
        calling: &str,
        abstract_syntax: &str,
        transfer_syntaxes: &[&str],
    ) -> Result<RawScu, dicom_ul::association::Error> {
        let association = ClientAssociationOptions::new()
            .calling_ae_title(calling)
            .called_ae_title("CHESTNODE")
            .with_presentation_context(abstract_syntax, transfer_syntaxes.to_vec())
            .read_timeout(Duration::from_secs(30))
            .establish(("127.0.0.1", port))?;
        Ok(RawScu {
            association,
            next_message_id: 1,
        })
    }

    /// The presentation context id of the first accepted context.
    pub fn context_id(&self) -> u8 {
        self.association.presentation_contexts()[0].id
    }

    /// Sends a C-STORE-RQ with `data_set` as raw bytes, split into PDVs of
    /// `fragment` bytes; the command travels in the same PDU as the first
    /// data fragment. Returns the response.
    pub fn store_raw(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        data_set: &[u8],
        fragment: usize,
    ) -> Response {
        let context_id = self.context_id();
        let command_bytes = self.next_store_command(sop_class, sop_instance);
        // The command in two fragments, the second sharing a PDU with data.
        let (first, second) = command_bytes.split_at(command_bytes.len() / 2);
        self.association
            .send(&Pdu::PData {
                data: vec![pdv(context_id, PDataValueType::Command, false, first)],
            })
            .unwrap();
        let mut chunks = data_set.chunks(fragment.max(1)).peekable();
        let mut values = vec![pdv(context_id, PDataValueType::Command, true, second)];
        if let Some(chunk) = chunks.next() {
            values.push(pdv(
                context_id,
                PDataValueType::Data,
                chunks.peek().is_none(),
                chunk,
            ));
        }
        self.association.send(&Pdu::PData { data: values }).unwrap();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.association
                .send(&Pdu::PData {
                    data: vec![pdv(context_id, PDataValueType::Data, last, chunk)],
                })
                .unwrap();
        }
        self.read_response()
    }

    /// Sends a complete C-STORE-RQ command set and no data set: what a
    /// sender does just before it stalls.
    pub fn send_store_command(&mut self, sop_class: &str, sop_instance: &str) {
        let context_id = self.context_id();
        let bytes = self.next_store_command(sop_class, sop_instance);
        self.association
            .send(&Pdu::PData {
                data: vec![pdv(context_id, PDataValueType::Command, true, &bytes)],
            })
            .unwrap();
    }

    /// The encoded C-STORE-RQ command set for the next message.
    fn next_store_command(&mut self, sop_class: &str, sop_instance: &str) -> Vec<u8> {
        let command = Command {
            command_field: command_field::C_STORE_RQ,
            message_id: self.next_message_id,
            affected_sop_class_uid: Some(sop_class.into()),
            affected_sop_instance_uid: Some(sop_instance.into()),
            priority: 0,
            has_data_set: true,
        };
        self.next_message_id += 1;
        command.encode()
    }

    pub fn read_response(&mut self) -> Response {
        match self.association.receive().expect("a response PDU") {
            Pdu::PData { data } => {
                let bytes: Vec<u8> = data.into_iter().flat_map(|v| v.data).collect();
                Response::decode(&bytes).expect("a valid response command set")
            }
            other => panic!("expected P-DATA, got {other:?}"),
        }
    }

    pub fn release(self) {
        self.association.release().expect("release succeeds");
    }
}

fn pdv(context_id: u8, value_type: PDataValueType, is_last: bool, data: &[u8]) -> PDataValue {
    PDataValue {
        presentation_context_id: context_id,
        value_type,
        is_last,
        data: data.to_vec(),
    }
}

/// An association proposing DX storage in explicit VR little endian, as
/// `calling`.
pub fn dx_association(node: &super::Node, calling: &str) -> RawScu {
    RawScu::connect(
        node.port,
        calling,
        dicom_dictionary_std::uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        &[dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN],
    )
    .unwrap()
}
