//! The outbox: result objects waiting to be sent to each destination by
//! C-STORE, retried until delivered or dead-lettered.
