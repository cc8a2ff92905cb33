//! Publishing an analysed image's results: the report builds the result
//! objects (pure), the store writes them durably to its `results/` folder,
//! and the outbox routes each to the destinations that take its kind.
//! This file only puts the three in order.
//!
//! Every step is idempotent — deterministic UIDs, files replaced in place,
//! outbox entries keyed by destination and UID — so a crash anywhere in
//! between is repaired by analysing the image again, without a duplicate
//! reaching PACS.

use std::path::PathBuf;

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::analysis::AnalysisResult;
use crate::config::{Config, ReportConfig, ResultKind};
use crate::imaging::Radiograph;
use crate::imaging::attributes::text;
use crate::outbox::{NewDelivery, Outbox};
use crate::queue::PublishedObject;
use crate::report::{ResultContext, ResultObject, ResultUids, build_results};
use crate::store::ValidUid;
use crate::store::results::write_result;

/// Builds, stores and queues result objects.
pub struct Publisher {
    settings: ReportConfig,
    uids: ResultUids,
    /// The kinds made for every image, as the outbox's routing wants them.
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
        Ok(Publisher {
            settings: config.report.clone(),
            uids: ResultUids::new(root)?,
            kinds: outbox.kinds(),
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
        let objects = build_results(&context, result, radiograph, &self.kinds)?;
        objects
            .into_iter()
            .map(|object| {
                let path = write_result(
                    &self.data_dir,
                    &study,
                    &object.sop_instance_uid,
                    &object.to_part10()?,
                )?;
                self.outbox.enqueue(&NewDelivery {
                    kind: object.kind,
                    sop_class_uid: object.sop_class_uid.to_owned(),
                    sop_instance_uid: object.sop_instance_uid.clone(),
                    transfer_syntax_uid: ResultObject::TRANSFER_SYNTAX.to_owned(),
                    path: path.clone(),
                    source_sop_instance_uid: context.source_instance_uid(),
                    job_id,
                })?;
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
