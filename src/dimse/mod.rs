//! The DICOM message exchange both of the node's roles speak: reading PDUs
//! off an association (PS3.8) and encoding and decoding DIMSE command sets
//! (PS3.7).
//!
//! Like `dicom-ul`, this layer is role-neutral: the Storage SCP (`scp`)
//! reads requests and writes responses with it, the C-STORE SCU
//! (`outbox::scu`) writes requests and reads responses. What each role
//! *does* with a message — session state, association policy, retries —
//! stays in that role's module, so neither role depends on the other.
//!
//! - `command`: command sets, Command Field values and status codes
//! - `pdu_reader`: PDUs from the wire, P-DATA values without copying
//! - `error_chain`: an error and its causes on one log line

mod command;
mod error_chain;
mod pdu_reader;

pub use command::{Command, DimseError, Response, command_field, status};
pub(crate) use error_chain::describe_chain;
pub(crate) use pdu_reader::{PduError, PduReader, Pdv, Received};
