//! DIMSE command sets (PS3.7 §9 and Annex E): requests and responses,
//! encoded and decoded for both roles — the SCP decodes requests and
//! encodes responses, the SCU the other way round.
//!
//! A command set is a small data set of group 0000 elements, always in
//! implicit VR little endian. We split it into elements ourselves (see
//! `CommandSet` for why not with `dicom-object`) and pull out the fields we
//! act on; unknown fields are ignored, as the standard allows. Commands
//! are encoded with `dicom-object`; responses carry exactly what PS3.7
//! requires for C-ECHO-RSP and C-STORE-RSP, with the command group length
//! computed last.

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

    /// Encodes this request; used by the C-STORE SCU and by tests.
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

/// A command set split into its elements: the value bytes of each, by tag.
///
/// Read here rather than by `dicom-object`, because a command set is only a
/// flat list of implicit VR little endian elements and the general parser
/// is unsafe on hostile input of this kind: it reserves an element's
/// declared length before reading the value (an 80-byte command claiming a
/// 4 GB value cost 4 GB), and a value whose length does not suit its VR
/// (an odd-length UL) makes it lose its place and read a length out of the
/// middle of a value. This reader never holds more than the input.
struct CommandSet<'a>(Vec<(Tag, &'a [u8])>);

impl<'a> CommandSet<'a> {
    fn parse(mut bytes: &'a [u8]) -> Result<CommandSet<'a>, DimseError> {
        const HEADER: usize = 8;
        let mut elements = Vec::with_capacity(8);
        while !bytes.is_empty() {
            let header = bytes
                .get(..HEADER)
                .ok_or_else(|| DimseError::Unparsable("element header cut short".into()))?;
            let tag = Tag(
                u16::from_le_bytes([header[0], header[1]]),
                u16::from_le_bytes([header[2], header[3]]),
            );
            let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let rest = &bytes[HEADER..];
            let value = usize::try_from(length)
                .ok()
                .and_then(|length| rest.get(..length))
                .ok_or_else(|| {
                    DimseError::Unparsable(format!(
                        "element {tag} claims {length} bytes, more than the command set holds"
                    ))
                })?;
            elements.push((tag, value));
            bytes = &rest[value.len()..];
        }
        Ok(CommandSet(elements))
    }

    /// The value of `tag`; the last one if it is repeated.
    fn value(&self, tag: Tag) -> Option<&'a [u8]> {
        self.0
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map(|&(_, v)| v)
    }

    /// The first value of an unsigned short (US) field.
    fn u16(&self, tag: Tag, name: &'static str) -> Result<u16, DimseError> {
        self.value(tag)
            .and_then(|value| value.get(..2))
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or(DimseError::MissingField(name))
    }

    /// A text field without its padding, read in the default character set
    /// as ISO 8859-1 (as `dicom-object` reads it), so that any byte reads
    /// as a character and writes back as the same byte.
    fn text(&self, tag: Tag) -> Option<String> {
        self.value(tag).map(|value| {
            let text: String = value.iter().map(|&b| char::from(b)).collect();
            text.trim_end_matches(['\0', ' ']).to_owned()
        })
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
            PrimitiveValue::from(encodable(uid)),
        ));
    }
    if let Some(uid) = sop_instance {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(encodable(uid)),
        ));
    }
}

/// `text` with every character that the writer's default character set
/// (ISO 8859-1) cannot hold replaced by `?`, so encoding cannot fail. Text
/// decoded from a command set always fits; this guards values set by hand.
fn encodable(text: &str) -> String {
    text.chars()
        .map(|c| if u32::from(c) <= 0xFF { c } else { '?' })
        .collect()
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
    fn a_length_beyond_the_command_set_is_refused_before_parsing() {
        // (0000,0000) UL claiming about 4 GB, then a little more: found by
        // the pdu fuzz target, which made the parser reserve it all.
        let mut bytes = vec![0, 0, 0, 0, 0x03, 0xFF, 0xFF, 0xFA];
        bytes.extend_from_slice(&[0x38, 0, 0, 0, 0, 0, 3, 0]);
        let error = Command::decode(&bytes).unwrap_err();
        assert!(error.to_string().contains("claims"), "{error}");
        // An undefined length, as a sequence would have.
        let undefined = [0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(Response::decode(&undefined).is_err());
        // One byte short of the declared value.
        let mut short = store_request().encode();
        short.pop();
        assert!(Command::decode(&short).is_err());
    }

    #[test]
    fn an_element_of_odd_length_does_not_shift_the_ones_after_it() {
        // A 3-byte group length (UL): the general parser read 0 values of
        // 4 bytes, lost its place and took a later length from a value.
        let mut bytes = vec![0, 0, 0, 0, 3, 0, 0, 0, 0xAA, 0xBB, 0xCC];
        let request = store_request();
        bytes.extend_from_slice(&request.encode()[12..]);
        assert_eq!(Command::decode(&bytes).unwrap(), request);
    }

    #[test]
    fn a_request_with_bytes_outside_ascii_is_still_answered() {
        // Found by the dimse_command fuzz target (while the reader decoded
        // text as UTF-8): 0xAE inside the Affected SOP Class UID made
        // encoding the response panic. Every byte must echo as itself.
        let mut bytes = store_request().encode();
        let at = bytes.windows(3).position(|w| w == b"840").unwrap();
        bytes[at] = 0xAE;
        let request = Command::decode(&bytes).unwrap();
        let response = Response::to(&request, status::SOP_CLASS_NOT_SUPPORTED).encode();
        assert!(response.windows(4).any(|w| w == b"\xAE40."));
        assert!(Response::decode(&response).is_ok());
        // Text no byte could have produced is replaced rather than fail.
        let mut by_hand = store_request();
        by_hand.affected_sop_instance_uid = Some("1.2.\u{20AC}".into());
        let decoded = Command::decode(&by_hand.encode()).unwrap();
        assert_eq!(decoded.affected_sop_instance_uid.as_deref(), Some("1.2.?"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Command::decode(&[0xff; 7]).is_err());
        assert!(Command::decode(&[]).is_err());
    }
}
