//! The worker's step before the analysis gate: an SR or grayscale
//! presentation state is a doctor's annotation of the images it
//! references (see `research::annotations::annotations_of`), stored all
//! or nothing, and its job ends as not analysed without any result.
//!
//! An object that refers to an image not stored yet is retried like a
//! failed analysis (a PACS may send a study's SR before its images), then
//! given up; one the node cannot read, or whose regions lie outside
//! their image, is refused at once. Both leave an incident that `status`
//! shows; neither changes what is already stored.

use std::path::Path;

use super::Worker;
use crate::clock::unix_now;
use crate::ledger::InstanceRecord;
use crate::queue::{Job, JobState};
use crate::research::annotations::{NotAnAnnotation, Preparer, Source, annotations_of, save_all};

/// What became of an annotation object.
enum Taken {
    /// Not analysed, with this reason.
    Done(String),
    /// Refused: not analysed, with this reason and an incident.
    Refused(String),
    /// To be retried (an image it refers to is not stored yet).
    Retry(String),
}

impl Worker {
    /// Reads, checks and stores the annotations of an SR or GSPS, and
    /// finishes its job.
    pub(super) fn take_annotations(&self, job: &Job, record: &InstanceRecord, path: &Path) {
        let taken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.store_annotations(record, path)
        }))
        .unwrap_or_else(|_| Taken::Refused("reading it as annotations panicked".into()));
        let queue = self.db.queue();
        let kind = if is_presentation_state(record) {
            "presentation state"
        } else {
            "SR"
        };
        let finished = match taken {
            Taken::Done(reason) => {
                tracing::info!(job = job.id, sop_instance_uid = %job.sop_instance_uid, %reason, "annotation object");
                queue.finish(job, JobState::NotAnalysed { reason }, None)
            }
            Taken::Refused(reason) => {
                tracing::warn!(job = job.id, sop_instance_uid = %job.sop_instance_uid, %reason, "annotation object refused");
                self.db.incidents().record(
                    "annotations",
                    format!(
                        "{kind} {} refused, nothing of it stored: {reason}",
                        job.sop_instance_uid
                    ),
                );
                let reason = format!("annotation refused: {reason}");
                queue.finish(job, JobState::NotAnalysed { reason }, None)
            }
            Taken::Retry(reason) => {
                let state = queue.retry_or_fail(job, &reason, self.schedule.retry_delay);
                if let Ok(state) = &state {
                    tracing::warn!(job = job.id, attempts = job.attempts, %reason, next = state.label(), "annotation object waits");
                    self.db.incidents().record(
                        "annotations",
                        format!(
                            "{kind} {} not stored (attempt {}, {}): {reason}",
                            job.sop_instance_uid,
                            job.attempts,
                            if state.label() == "dead-letter" {
                                "given up"
                            } else {
                                "will retry"
                            }
                        ),
                    );
                }
                state.map(|_| ())
            }
        };
        if let Err(error) = finished {
            tracing::error!(job = job.id, %error, "could not record an annotation object");
        }
    }

    fn store_annotations(&self, record: &InstanceRecord, path: &Path) -> Taken {
        let object = match std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                crate::store::open_checked(std::io::BufReader::new(file)).map_err(|e| e.to_string())
            }) {
            Ok(object) => object,
            Err(error) => return Taken::Retry(format!("reading the stored object: {error}")),
        };
        let found = match annotations_of(&object) {
            Ok(found) => found,
            Err(NotAnAnnotation::OwnResult) => return Taken::Done("our own AI result".into()),
            Err(other @ NotAnAnnotation::DeviceResult) => return Taken::Done(other.to_string()),
            Err(NotAnAnnotation::OtherClass) => {
                return Taken::Done("not an annotation object".into());
            }
            Err(NotAnAnnotation::Nothing(reason)) => {
                return Taken::Done(format!("annotation: none stored ({reason})"));
            }
            Err(NotAnAnnotation::Refused(reason)) => return Taken::Refused(reason),
        };
        for annotation in &found {
            match self.db.find_instance(&annotation.sop_instance_uid) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Taken::Retry(format!(
                        "it refers to an image that is not stored: {}",
                        annotation.sop_instance_uid
                    ));
                }
                Err(error) => return Taken::Retry(format!("index lookup failed: {error:#}")),
            }
        }
        let mut preparer = Preparer::new(&self.db, &self.data_dir, unix_now());
        let source = if is_presentation_state(record) {
            Source::DicomGsps
        } else {
            Source::DicomSr
        };
        let reader = match record.calling_ae_title.trim() {
            "" => "unknown",
            title => title,
        };
        let mut prepared = Vec::with_capacity(found.len());
        for (index, annotation) in found.into_iter().enumerate() {
            match preparer.prepare(annotation, reader, source) {
                Ok(annotation) => prepared.push(annotation),
                Err(error) => {
                    return Taken::Refused(format!("annotation {}: {error:#}", index + 1));
                }
            }
        }
        match save_all(&self.db, &prepared) {
            Ok(()) => Taken::Done(format!("annotation: {} stored", prepared.len())),
            Err(error) => Taken::Retry(format!("storing the annotations: {error:#}")),
        }
    }
}

fn is_presentation_state(record: &InstanceRecord) -> bool {
    record.sop_class_uid.trim_end_matches(['\0', ' '])
        == dicom_dictionary_std::uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE
}
