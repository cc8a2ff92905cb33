//! The Storage SCP: everything that speaks DICOM on the way in.
//!
//! - `listener`: accept loop, association limit, shutdown
//! - `association`: negotiation options, AE title policy, busy rejection
//! - `session`: the DIMSE loop of one association (C-ECHO, C-STORE)
//! - `dimse`: command set encoding and decoding, status codes
//! - `contexts`: SOP classes and transfer syntaxes accepted
//!
//! The SCP knows nothing about disks beyond the store's "persist this stream
//! and tell me when it is durable".

pub mod association;
pub mod contexts;
pub mod dimse;
pub mod listener;
pub mod pdu_reader;
pub mod session;

pub use listener::Listener;
pub use session::SessionContext;
