//! An error with its causes, on one line.
//!
//! `dicom-ul` and `rustls` wrap the reason an association or a handshake
//! failed several layers deep, and their outer messages rarely say it
//! ("is the peer speaking TLS?"). Both roles log such failures, and the
//! outbox records them as delivery errors, so both need the whole chain,
//! without the repetition of causes whose text the outer message already
//! includes.

/// `error` followed by each cause whose text is not already part of the
/// line, separated by `": "`.
pub(crate) fn describe_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text += ": ";
            text += &cause_text;
        }
        source = cause.source();
    }
    text
}
