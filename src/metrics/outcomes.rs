//! What the node's components report to the registry: how an association
//! attempt or a delivery attempt ended. Kept apart from the registry so
//! the SCP and the outbox name their outcomes in their own words, and the
//! registry alone decides how each is labelled in the exposition.

/// How an association attempt ended, as far as the listener knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationOutcome {
    /// A-ASSOCIATE-AC sent; the session runs.
    Accepted,
    /// A-ASSOCIATE-RJ sent: over the association limit, or the Called or
    /// Calling AE title was refused.
    Rejected,
    /// No association: ARTIM timeout, a malformed request, a lost connection.
    Failed,
    /// No association: the TLS handshake failed (a plain-TCP peer, an
    /// untrusted or missing client certificate).
    TlsFailed,
}

impl AssociationOutcome {
    pub(super) fn label(self) -> &'static str {
        match self {
            AssociationOutcome::Accepted => "accepted",
            AssociationOutcome::Rejected => "rejected",
            AssociationOutcome::Failed => "failed",
            AssociationOutcome::TlsFailed => "tls_failed",
        }
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The destination answered success or a warning.
    Delivered,
    /// Failed; will be retried after a backoff.
    Transient,
    /// Failed; moved to the dead-letter list.
    Permanent,
}

impl DeliveryOutcome {
    pub(super) fn label(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Transient => "transient",
            DeliveryOutcome::Permanent => "permanent",
        }
    }
}
