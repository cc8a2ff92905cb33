//! Storing annotations: every new version is checked against the image it
//! refers to (the image must be stored; a location must lie inside it),
//! given its id and version, and written with the others of its batch in
//! one transaction, so an import is all or nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use dicom_dictionary_std::tags;

use super::record::{Annotation, NewAnnotation, Source};
use crate::ledger::Ledger;

/// Columns and rows of a stored image, from its header.
pub fn image_size(ledger: &Ledger, data_dir: &Path, sop: &str) -> anyhow::Result<(u32, u32)> {
    let instance = ledger
        .find_instance(sop)?
        .ok_or_else(|| anyhow::anyhow!("no stored image has SOP Instance UID {sop}"))?;
    let object = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(data_dir.join(&instance.path))
        .map_err(|e| anyhow::anyhow!("reading the image {sop}: {e}"))?;
    let number = |tag| -> anyhow::Result<u32> {
        Ok(object
            .element(tag)
            .map_err(|_| anyhow::anyhow!("the object {sop} is not an image"))?
            .to_int::<u32>()?)
    };
    Ok((number(tags::COLUMNS)?, number(tags::ROWS)?))
}

/// Turns incoming annotations into new versions, checking each; the
/// errors come back with the index of the annotation they belong to.
pub struct Preparer<'a> {
    ledger: &'a Ledger,
    data_dir: &'a Path,
    now: u64,
    sizes: HashMap<String, (u32, u32)>,
    versions: HashMap<(String, String), u32>,
}

impl<'a> Preparer<'a> {
    pub fn new(ledger: &'a Ledger, data_dir: &'a Path, now: u64) -> Preparer<'a> {
        Preparer {
            ledger,
            data_dir,
            now,
            sizes: HashMap::new(),
            versions: HashMap::new(),
        }
    }

    /// Checks one annotation and gives it its id and version.
    pub fn prepare(
        &mut self,
        new: NewAnnotation,
        default_reader: &str,
        source: Source,
    ) -> anyhow::Result<Annotation> {
        new.check()?;
        crate::store::ValidUid::parse(&new.sop_instance_uid)
            .map_err(|e| anyhow::anyhow!("sop_instance_uid: {e}"))?;
        let size = match self.sizes.get(&new.sop_instance_uid) {
            Some(size) => *size,
            None => {
                let size = image_size(self.ledger, self.data_dir, &new.sop_instance_uid)?;
                self.sizes.insert(new.sop_instance_uid.clone(), size);
                size
            }
        };
        if let Some(location) = &new.location {
            location.check(size.0, size.1)?;
        }
        let id = match &new.id {
            Some(id) => {
                anyhow::ensure!(
                    !id.is_empty()
                        && id.len() <= 64
                        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                    "an annotation id is 1-64 letters, digits or '-'"
                );
                id.clone()
            }
            None => new_id(),
        };
        let key = (new.sop_instance_uid.clone(), id.clone());
        let version = match self.versions.get(&key) {
            Some(v) => v + 1,
            None => self
                .ledger
                .annotations()
                .next_version(&new.sop_instance_uid, &id)?,
        };
        if new.id.is_some() && version == 1 && new.deleted {
            anyhow::bail!("annotation {id} does not exist, so it cannot be deleted");
        }
        self.versions.insert(key, version);
        Ok(Annotation {
            id,
            version,
            sop_instance_uid: new.sop_instance_uid,
            reader: new.reader.unwrap_or_else(|| default_reader.to_owned()),
            finding: new.finding,
            finding_text: new.finding_text,
            location: new.location,
            ct: new.ct,
            certainty: new.certainty,
            confirmed: new.confirmed,
            created_at: self.now,
            source,
            deleted: new.deleted,
        })
    }
}

/// A new annotation id: the time in nanoseconds, then random bits, so ids
/// sort in the order annotations were made (an image's are listed so).
fn new_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{nanos:016x}{:08x}", fastrand::u32(..))
}

/// Stores prepared annotations, all or none.
pub fn save_all(ledger: &Ledger, annotations: &[Annotation]) -> anyhow::Result<()> {
    let records = annotations
        .iter()
        .map(|a| {
            Ok((
                a.sop_instance_uid.clone(),
                a.id.clone(),
                a.version,
                serde_json::to_vec(a)?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    ledger.annotations().insert_all(&records)
}

/// The newest version of each annotation, without the deleted ones.
fn current(stored: Vec<crate::ledger::StoredAnnotation>) -> anyhow::Result<Vec<Annotation>> {
    let mut newest: BTreeMap<(String, String), Annotation> = BTreeMap::new();
    for (sop, id, _, bytes) in stored {
        let annotation: Annotation = serde_json::from_slice(&bytes)?;
        newest.insert((sop, id), annotation);
    }
    Ok(newest.into_values().filter(|a| !a.deleted).collect())
}

/// The current annotations of one image, oldest first (by id: see
/// `new_id`).
pub fn current_for_image(ledger: &Ledger, sop: &str) -> anyhow::Result<Vec<Annotation>> {
    current(ledger.annotations().for_image(sop)?)
}

/// Every current annotation.
pub fn current_all(ledger: &Ledger) -> anyhow::Result<Vec<Annotation>> {
    current(ledger.annotations().all()?)
}
