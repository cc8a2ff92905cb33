//! Publishing an analysed image's results: build the result objects, write
//! them durably to the store's `results/` folder and hand them to the
//! outbox, once per destination that takes their kind.
//!
//! Every step is idempotent — deterministic UIDs, files replaced in place,
//! outbox entries keyed by destination and UID — so a crash anywhere in
//! between is repaired by analysing the image again, without a duplicate
//! reaching PACS.

use std::path::PathBuf;

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde::{Deserialize, Serialize};

use super::header::{ResultContext, ResultObject};
use super::uids::ResultUids;
use crate::analysis::AnalysisResult;
use crate::config::{Config, DestinationConfig, ReportConfig, ResultKind};
use crate::imaging::Radiograph;
use crate::imaging::attributes::text;
use crate::outbox::{NewDelivery, Outbox};
use crate::store::ValidUid;
use crate::store::results::write_result;

/// One result object as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedObject {
    pub kind: ResultKind,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// Relative to the data directory.
    pub path: PathBuf,
}

/// Builds, stores and queues result objects.
pub struct Publisher {
    settings: ReportConfig,
    uids: ResultUids,
    destinations: Vec<DestinationConfig>,
    /// The kinds made for every image: SR and SC always (they are what
    /// `status` and PACS show), GSPS when a destination takes it.
    kinds: Vec<ResultKind>,
    data_dir: PathBuf,
    outbox: Outbox,
}

impl Publisher {
    pub fn new(config: &Config, data_dir: PathBuf, outbox: Outbox) -> anyhow::Result<Publisher> {
        let root = match config.report.uid_root.trim() {
            "" => None,
            root => {
                Some(ValidUid::parse(root).map_err(|e| anyhow::anyhow!("report.uid_root: {e}"))?)
            }
        };
        let kinds = ResultKind::ALL
            .into_iter()
            .filter(|kind| {
                *kind != ResultKind::Gsps
                    || config
                        .destinations
                        .iter()
                        .any(|destination| destination.kinds.contains(kind))
            })
            .collect();
        Ok(Publisher {
            settings: config.report.clone(),
            uids: ResultUids::new(root)?,
            destinations: config.destinations.clone(),
            kinds,
            data_dir,
            outbox,
        })
    }

    /// Builds and writes the result objects of one analysed image, and
    /// queues each for the destinations that take its kind.
    pub fn publish(
        &self,
        source: &InMemDicomObject,
        result: &AnalysisResult,
        radiograph: &Radiograph,
        job_id: Option<u64>,
    ) -> anyhow::Result<Vec<PublishedObject>> {
        let now = chrono::Local::now();
        let context = ResultContext {
            source,
            settings: &self.settings,
            uids: &self.uids,
            model: &result.findings.model,
            created_date: now.format("%Y%m%d").to_string(),
            created_time: now.format("%H%M%S").to_string(),
        };
        let study = text(source, tags::STUDY_INSTANCE_UID).unwrap_or_default();
        let objects = super::build_results(&context, result, radiograph, &self.kinds)?;
        objects
            .into_iter()
            .map(|object| {
                let path = write_result(
                    &self.data_dir,
                    &study,
                    &object.sop_instance_uid,
                    &object.to_part10()?,
                )?;
                self.outbox.enqueue(
                    &self.destinations,
                    &NewDelivery {
                        kind: object.kind,
                        sop_class_uid: object.sop_class_uid.to_owned(),
                        sop_instance_uid: object.sop_instance_uid.clone(),
                        transfer_syntax_uid: ResultObject::TRANSFER_SYNTAX.to_owned(),
                        path: path.clone(),
                        source_sop_instance_uid: context.source_instance_uid(),
                        job_id,
                    },
                )?;
                Ok(PublishedObject {
                    kind: object.kind,
                    sop_class_uid: object.sop_class_uid.to_owned(),
                    sop_instance_uid: object.sop_instance_uid,
                    path,
                })
            })
            .collect()
    }
}
