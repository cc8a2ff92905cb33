//! DIMSE command sets (PS3.7 §9 and Annex E): decoding the requests we
//! serve and encoding their responses.
//!
//! A command set is a small data set of group 0000 elements, always in
//! implicit VR little endian. We decode it with `dicom-object` and pull out
//! the fields we act on; unknown fields are ignored, as the standard allows.
//! Responses carry exactly what PS3.7 requires for C-ECHO-RSP and
//! C-STORE-RSP, with the command group length computed last.

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

/// Command Field values (PS3.7 Table E.1-1) that this node understands.
pub mod command_field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
    /// Bit set in every response's Command Field.
    pub const RESPONSE_BIT: u16 = 0x8000;
}

/// Status codes we send (PS3.7 Annex C, PS3.4 Table B.2-1).
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: out of resources (disk space watermark, I/O failure).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: the data set does not match the SOP class or the command.
    pub const DATA_SET_DOES_NOT_MATCH: u16 = 0xA900;
    /// Error: cannot understand (unparsable data set, invalid UID).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Refused: SOP class not supported on this presentation context.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Unrecognized operation.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
}

/// Value of Command Data Set Type meaning "no data set follows".
const NO_DATA_SET: u16 = 0x0101;

/// The longest Error Comment (LO) we send.
const ERROR_COMMENT_MAX: usize = 64;

/// A decoded request command set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub command_field: u16,
    pub message_id: u16,
    pub affected_sop_class_uid: Option<String>,
    pub affected_sop_instance_uid: Option<String>,
    /// C-STORE Priority: 0 medium, 1 high, 2 low.
    pub priority: u16,
    pub has_data_set: bool,
}

/// Why a command set could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DimseError {
    #[error("command set is not a valid implicit VR little endian data set: {0}")]
    Unparsable(String),
    #[error("command set lacks required field {0}")]
    MissingField(&'static str),
}

impl Command {
    /// Decodes a complete command set (all command fragments concatenated).
    pub fn decode(bytes: &[u8]) -> Result<Command, DimseError> {
        let fields = CommandSet::parse(bytes)?;
        Ok(Command {
            command_field: fields.u16(tags::COMMAND_FIELD, "Command Field")?,
            message_id: fields.u16(tags::MESSAGE_ID, "Message ID")?,
            affected_sop_class_uid: fields.text(tags::AFFECTED_SOP_CLASS_UID),
            affected_sop_instance_uid: fields.text(tags::AFFECTED_SOP_INSTANCE_UID),
            priority: fields.u16(tags::PRIORITY, "Priority").unwrap_or(0),
            has_data_set: fields.u16(tags::COMMAND_DATA_SET_TYPE, "Command Data Set Type")?
                != NO_DATA_SET,
        })
    }

    /// Encodes this request; used by tests and, later, by the C-STORE SCU.
    pub fn encode(&self) -> Vec<u8> {
        let mut elements = vec![
            us(tags::COMMAND_FIELD, self.command_field),
            us(tags::MESSAGE_ID, self.message_id),
            us(
                tags::COMMAND_DATA_SET_TYPE,
                if self.has_data_set {
                    0x0000
                } else {
                    NO_DATA_SET
                },
            ),
        ];
        if self.command_field == command_field::C_STORE_RQ {
            elements.push(us(tags::PRIORITY, self.priority));
        }
        push_uids(
            &mut elements,
            &self.affected_sop_class_uid,
            &self.affected_sop_instance_uid,
        );
        encode_with_group_length(elements)
    }
}

/// A response command set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub command_field: u16,
    pub message_id_being_responded_to: u16,
    pub affected_sop_class_uid: Option<String>,
    pub affected_sop_instance_uid: Option<String>,
    pub status: u16,
    pub error_comment: Option<String>,
}

impl Response {
    /// The response to `request` with the given status.
    pub fn to(request: &Command, status: u16) -> Response {
        Response {
            command_field: request.command_field | command_field::RESPONSE_BIT,
            message_id_being_responded_to: request.message_id,
            affected_sop_class_uid: request.affected_sop_class_uid.clone(),
            affected_sop_instance_uid: request.affected_sop_instance_uid.clone(),
            status,
            error_comment: None,
        }
    }

    /// Adds an Error Comment, cut to the 64 characters an LO may hold.
    pub fn with_error_comment(mut self, comment: impl Into<String>) -> Response {
        let mut comment: String = comment.into();
        comment.retain(|c| c.is_ascii_graphic() || c == ' ');
        comment.truncate(ERROR_COMMENT_MAX);
        self.error_comment = Some(comment);
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut elements = vec![
            us(tags::COMMAND_FIELD, self.command_field),
            us(
                tags::MESSAGE_ID_BEING_RESPONDED_TO,
                self.message_id_being_responded_to,
            ),
            us(tags::COMMAND_DATA_SET_TYPE, NO_DATA_SET),
            us(tags::STATUS, self.status),
        ];
        push_uids(
            &mut elements,
            &self.affected_sop_class_uid,
            &self.affected_sop_instance_uid,
        );
        if let Some(comment) = &self.error_comment {
            elements.push(DataElement::new(
                tags::ERROR_COMMENT,
                VR::LO,
                PrimitiveValue::from(comment.as_str()),
            ));
        }
        encode_with_group_length(elements)
    }

    /// Decodes a response; used by tests and the C-STORE SCU.
    pub fn decode(bytes: &[u8]) -> Result<Response, DimseError> {
        let fields = CommandSet::parse(bytes)?;
        Ok(Response {
            command_field: fields.u16(tags::COMMAND_FIELD, "Command Field")?,
            message_id_being_responded_to: fields.u16(
                tags::MESSAGE_ID_BEING_RESPONDED_TO,
                "Message ID Being Responded To",
            )?,
            affected_sop_class_uid: fields.text(tags::AFFECTED_SOP_CLASS_UID),
            affected_sop_instance_uid: fields.text(tags::AFFECTED_SOP_INSTANCE_UID),
            status: fields.u16(tags::STATUS, "Status")?,
            error_comment: fields.text(tags::ERROR_COMMENT),
        })
    }
}

/// A parsed command set, for reading its fields.
struct CommandSet(InMemDicomObject);

impl CommandSet {
    fn parse(bytes: &[u8]) -> Result<CommandSet, DimseError> {
        InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .map(CommandSet)
            .map_err(|e| DimseError::Unparsable(e.to_string()))
    }

    fn u16(&self, tag: Tag, name: &'static str) -> Result<u16, DimseError> {
        self.0
            .get(tag)
            .and_then(|e| e.to_int::<u16>().ok())
            .ok_or(DimseError::MissingField(name))
    }

    /// A text field without its padding.
    fn text(&self, tag: Tag) -> Option<String> {
        self.0
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
    }
}

/// An unsigned short command element.
fn us(tag: Tag, value: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(value))
}

fn push_uids(
    elements: &mut Vec<DataElement<InMemDicomObject>>,
    sop_class: &Option<String>,
    sop_instance: &Option<String>,
) {
    if let Some(uid) = sop_class {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(uid.as_str()),
        ));
    }
    if let Some(uid) = sop_instance {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uid.as_str()),
        ));
    }
}

/// Writes the elements in implicit VR little endian, preceded by
/// (0000,0000) Command Group Length holding the length of the rest.
fn encode_with_group_length(elements: Vec<DataElement<InMemDicomObject>>) -> Vec<u8> {
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let body_object = InMemDicomObject::from_element_iter(elements);
    let mut body = Vec::with_capacity(256);
    body_object
        .write_dataset_with_ts(&mut body, &ts)
        .expect("writing a command set to memory cannot fail");
    let group_length = u32::try_from(body.len()).expect("command sets are small");
    let length_object = InMemDicomObject::from_element_iter([DataElement::new(
        tags::COMMAND_GROUP_LENGTH,
        VR::UL,
        PrimitiveValue::from(group_length),
    )]);
    let mut encoded = Vec::with_capacity(body.len() + 12);
    length_object
        .write_dataset_with_ts(&mut encoded, &ts)
        .expect("writing a command set to memory cannot fail");
    encoded.extend_from_slice(&body);
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_request() -> Command {
        Command {
            command_field: command_field::C_STORE_RQ,
            message_id: 7,
            affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.1.1".into()),
            affected_sop_instance_uid: Some("1.2.3.4".into()),
            priority: 1,
            has_data_set: true,
        }
    }

    #[test]
    fn request_round_trips() {
        let request = store_request();
        assert_eq!(Command::decode(&request.encode()).unwrap(), request);
    }

    #[test]
    fn response_echoes_the_request_and_has_a_correct_group_length() {
        let response = Response::to(&store_request(), status::OUT_OF_RESOURCES)
            .with_error_comment("disk below watermark");
        let bytes = response.encode();
        // (0000,0000) UL, implicit VR: tag(4) + length(4) + value(4)
        assert_eq!(&bytes[0..4], &[0, 0, 0, 0]);
        let group_length = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        assert_eq!(group_length as usize, bytes.len() - 12);
        let decoded = Response::decode(&bytes).unwrap();
        assert_eq!(decoded.command_field, command_field::C_STORE_RSP);
        assert_eq!(decoded.message_id_being_responded_to, 7);
        assert_eq!(
            decoded.affected_sop_instance_uid.as_deref(),
            Some("1.2.3.4")
        );
        assert_eq!(decoded.status, 0xA700);
        assert_eq!(
            decoded.error_comment.as_deref(),
            Some("disk below watermark")
        );
    }

    #[test]
    fn error_comment_is_cut_to_an_lo() {
        let response = Response::to(&store_request(), status::CANNOT_UNDERSTAND)
            .with_error_comment("x".repeat(200) + "\n");
        assert_eq!(response.error_comment.unwrap().len(), 64);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Command::decode(&[0xff; 7]).is_err());
        assert!(Command::decode(&[]).is_err());
    }
}
