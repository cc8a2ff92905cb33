//! Deciding whether a failed delivery is worth retrying.
//!
//! A transient failure (the peer is down, busy, out of space, or the
//! network broke) clears by itself, so the delivery is retried with
//! backoff. A permanent one (the peer refuses us, our SOP class or our data
//! set) will fail the same way every time: retrying it in a loop would only
//! hide it, so it goes to the dead-letter list for a person to look at.
//!
//! C-STORE statuses follow PS3.4 Table B.2-1 and PS3.7 Annex C; association
//! rejections PS3.8 §9.3.4.

use dicom_ul::association::Error as AssociationError;
use dicom_ul::pdu::{AssociationRJ, AssociationRJResult};

use crate::dimse::describe_chain;

/// Why an attempt did not deliver, and whether to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Retry later, with backoff.
    Transient(String),
    /// Do not retry; dead-letter.
    Permanent(String),
}

impl Failure {
    pub fn reason(&self) -> &str {
        match self {
            Failure::Transient(reason) | Failure::Permanent(reason) => reason,
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, Failure::Permanent(_))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let class = if self.is_permanent() {
            "permanent"
        } else {
            "transient"
        };
        write!(f, "{} ({class})", self.reason())
    }
}

/// What a C-STORE-RSP status means for the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    Success,
    /// Stored, with a warning (coercion, elements discarded, data set does
    /// not match the SOP class): delivered, and logged as a warning.
    Warning,
    Failed(Failure),
}

/// Classifies a C-STORE response status.
pub fn classify_status(status: u16) -> StatusOutcome {
    let describe = |what: &str| format!("C-STORE status 0x{status:04X}: {what}");
    match status {
        0x0000 => StatusOutcome::Success,
        // Warning class (PS3.7 C.4): 0001, 0107, 0116 and Bxxx, which for
        // C-STORE are B000 coercion, B006 elements discarded, B007 data set
        // does not match the SOP class.
        0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusOutcome::Warning,
        0xA700..=0xA7FF => {
            StatusOutcome::Failed(Failure::Transient(describe("refused, out of resources")))
        }
        0x0213 => {
            StatusOutcome::Failed(Failure::Transient(describe("refused, resource limitation")))
        }
        0x0122 => StatusOutcome::Failed(Failure::Permanent(describe(
            "refused, SOP class not supported",
        ))),
        0xA900..=0xA9FF => StatusOutcome::Failed(Failure::Permanent(describe(
            "error, data set does not match SOP class",
        ))),
        0xC000..=0xCFFF => {
            StatusOutcome::Failed(Failure::Permanent(describe("error, cannot understand")))
        }
        _ => StatusOutcome::Failed(Failure::Permanent(describe("failed"))),
    }
}

/// Classifies a failure to establish, use or release an association.
pub fn classify_association_error(error: &AssociationError) -> Failure {
    match error {
        AssociationError::Rejected { association_rj, .. } => classify_rejection(association_rj),
        AssociationError::NoAcceptedPresentationContexts { .. } => Failure::Permanent(
            "association accepted without any presentation context: SOP class not supported".into(),
        ),
        AssociationError::Aborted { .. } => Failure::Transient("association aborted".into()),
        AssociationError::UnexpectedPdu { pdu, .. } => match **pdu {
            dicom_ul::Pdu::AbortRQ { ref source } => {
                Failure::Transient(format!("association aborted by the peer ({source:?})"))
            }
            ref other => Failure::Transient(format!(
                "unexpected PDU from the peer: {}",
                other.short_description()
            )),
        },
        // Missing presentation contexts or an AE title we cannot send are
        // our own configuration's fault, and will not clear by waiting.
        AssociationError::MissingAbstractSyntax { .. } | AssociationError::SendPdu { .. } => {
            Failure::Permanent(format!("cannot request the association: {error}"))
        }
        // A host that cannot be a TLS server name will not become one.
        AssociationError::InvalidServerName { .. } | AssociationError::TlsConfigMissing { .. } => {
            Failure::Permanent(format!(
                "cannot connect over TLS: {}",
                describe_chain(error)
            ))
        }
        // An untrusted or expired certificate, a name mismatch, a peer
        // that does not speak TLS: retried, since fixing the peer's
        // certificate (or ours) must not need every result re-sent by hand.
        AssociationError::TlsHandshake { .. } | AssociationError::TlsConnection { .. } => {
            Failure::Transient(format!("TLS handshake failed: {}", describe_chain(error)))
        }
        AssociationError::Connect { source, .. } if is_tls_error(source) => {
            Failure::Transient(format!("TLS handshake failed: {}", describe_chain(source)))
        }
        // With TLS support built in, dicom-ul reports every failure to read
        // the A-ASSOCIATE answer as "TLS not supported", whatever happened.
        AssociationError::TlsNotSupported => Failure::Transient(
            "no readable answer to the association request: the peer closed the connection \
             or timed out (it may expect TLS)"
                .into(),
        ),
        // Connection refused or reset, timeouts, a closed socket, a PDU
        // the peer cut short: the network or the peer, which may recover.
        other => Failure::Transient(describe_chain(other)),
    }
}

/// Whether a connection error came from TLS (tokio-rustls reports
/// rustls errors, such as an untrusted certificate, as I/O errors).
fn is_tls_error(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// A-ASSOCIATE-RJ: its Result field says whether to try again.
pub fn classify_rejection(rejection: &AssociationRJ) -> Failure {
    let reason = format!("association rejected: {}", rejection.source);
    match rejection.result {
        AssociationRJResult::Permanent => Failure::Permanent(format!("{reason} (permanent)")),
        AssociationRJResult::Transient => Failure::Transient(format!("{reason} (transient)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_ul::pdu::{
        AssociationRJServiceProviderPresentationReason as Presentation,
        AssociationRJServiceUserReason as User, AssociationRJSource,
    };

    #[test]
    fn statuses_are_classified_as_the_standard_defines_them() {
        use StatusOutcome::*;
        let table: &[(u16, &str)] = &[
            (0x0000, "success"),
            (0xB000, "warning"),
            (0xB006, "warning"),
            (0xB007, "warning"),
            (0x0001, "warning"),
            (0xA700, "transient"),
            (0xA701, "transient"),
            (0xA7FF, "transient"),
            (0x0213, "transient"),
            (0x0122, "permanent"),
            (0xA900, "permanent"),
            (0xA9FF, "permanent"),
            (0xC000, "permanent"),
            (0xC123, "permanent"),
            (0x0211, "permanent"),
            (0x0110, "permanent"),
            (0xFE00, "permanent"),
        ];
        for &(status, expected) in table {
            let got = match classify_status(status) {
                Success => "success",
                Warning => "warning",
                Failed(Failure::Transient(_)) => "transient",
                Failed(Failure::Permanent(_)) => "permanent",
            };
            assert_eq!(got, expected, "status 0x{status:04X}");
        }
    }

    #[test]
    fn failure_reasons_name_the_status() {
        let StatusOutcome::Failed(failure) = classify_status(0xA900) else {
            panic!("0xA900 is a failure")
        };
        assert!(failure.reason().contains("0xA900"), "{failure}");
    }

    #[test]
    fn rejections_follow_their_result_field() {
        let permanent = AssociationRJ {
            result: AssociationRJResult::Permanent,
            source: AssociationRJSource::ServiceUser(User::CallingAETitleNotRecognized),
        };
        let failure = classify_rejection(&permanent);
        assert!(failure.is_permanent(), "{failure}");
        assert!(failure.reason().contains("calling AE title"), "{failure}");

        let transient = AssociationRJ {
            result: AssociationRJResult::Transient,
            source: AssociationRJSource::ServiceProviderPresentation(
                Presentation::LocalLimitExceeded,
            ),
        };
        assert!(!classify_rejection(&transient).is_permanent());
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = dicom_ul::ClientAssociationOptions::new()
            .with_abstract_syntax("1.2.840.10008.1.1")
            .establish_async(("127.0.0.1", port))
            .await
            .unwrap_err();
        let failure = classify_association_error(&error);
        assert!(!failure.is_permanent(), "{failure}");
    }
}
