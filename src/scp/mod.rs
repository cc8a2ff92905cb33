//! The Storage SCP: everything that speaks DICOM on the way in.
//!
//! - `listener`: accept loop, association limit, shutdown
//! - `association`: negotiation options, AE title policy, busy rejection
//! - `session`: the DIMSE loop of one association (C-ECHO, C-STORE)
//! - `contexts`: SOP classes and transfer syntaxes accepted
//!
//! Reading PDUs and coding command sets is shared with the SCU, in
//! `crate::dimse`. The SCP knows nothing about disks beyond the store's
//! "persist this stream and tell me when it is durable".

mod association;
pub(crate) mod contexts;
mod listener;
mod session;

pub use contexts::TRANSFER_SYNTAXES;
pub use listener::Listener;
pub use session::SessionContext;
