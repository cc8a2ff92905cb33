//! What a cohort needs to know of a series that the ledger does not keep:
//! whose it is, what it is and when it was taken. Read from the header of
//! one stored instance (never the pixel data), because the ledger holds no
//! patient data by design.

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use crate::ledger::{Ledger, SeriesRecord};

/// The patient data and dates of a series, as its first instance states
/// them. Held in memory while a cohort is chosen or exported; never stored
/// in the ledger or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct SeriesHeader {
    pub patient_id: String,
    pub patient_name: String,
    pub modality: String,
    /// The acquisition date (Acquisition, Content, Series, then Study Date),
    /// as days since 1970-01-01; `None` when none parses.
    pub day: Option<i64>,
    pub body_part: String,
}

impl std::fmt::Debug for SeriesHeader {
    // No patient data in debug output: it could reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesHeader")
            .field("modality", &self.modality)
            .field("body_part", &self.body_part)
            .finish_non_exhaustive()
    }
}

impl SeriesHeader {
    /// Reads the header of a stored Part-10 file.
    pub fn read(path: &Path) -> anyhow::Result<SeriesHeader> {
        let object = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| anyhow::anyhow!("reading the header of {}: {e}", path.display()))?;
        Ok(Self::of(&object))
    }

    /// The header of a series: from its first instance, or, if retention
    /// took that one, from another still stored (the series' members are
    /// listed only then). `None` when no instance's header can be read.
    pub fn of_series(
        ledger: &Ledger,
        data_dir: &Path,
        record: &SeriesRecord,
    ) -> anyhow::Result<Option<SeriesHeader>> {
        let read = |uid: &str| -> anyhow::Result<Option<SeriesHeader>> {
            let Some(instance) = ledger.find_instance(uid)? else {
                return Ok(None);
            };
            match SeriesHeader::read(&data_dir.join(&instance.path)) {
                Ok(header) => Ok(Some(header)),
                Err(error) => {
                    tracing::warn!("skipping an unreadable instance: {error:#}");
                    Ok(None)
                }
            }
        };
        if let Some(header) = read(&record.first_sop_instance_uid)? {
            return Ok(Some(header));
        }
        for uid in ledger.series().members(&record.series_instance_uid)? {
            if uid != record.first_sop_instance_uid
                && let Some(header) = read(&uid)?
            {
                return Ok(Some(header));
            }
        }
        Ok(None)
    }

    /// The fields of an object already open.
    pub fn of(object: &DefaultDicomObject) -> SeriesHeader {
        let text = |tag| crate::imaging::attributes::text(object, tag).unwrap_or_default();
        let day = [
            tags::ACQUISITION_DATE,
            tags::CONTENT_DATE,
            tags::SERIES_DATE,
            tags::STUDY_DATE,
        ]
        .into_iter()
        .find_map(|tag| parse_day(&text(tag)));
        SeriesHeader {
            patient_id: text(tags::PATIENT_ID),
            patient_name: text(tags::PATIENT_NAME),
            modality: text(tags::MODALITY).to_ascii_uppercase(),
            day,
            body_part: text(tags::BODY_PART_EXAMINED).to_ascii_uppercase(),
        }
    }
}

/// Days since 1970-01-01 of a DICOM date (`YYYYMMDD`).
pub fn parse_day(value: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(value.get(..8)?, "%Y%m%d").ok()?;
    Some((date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days())
}

/// A `YYYY-MM-DD` date from the command line, as days since 1970-01-01.
pub fn parse_iso_day(value: &str) -> anyhow::Result<i64> {
    let date = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("not a date (YYYY-MM-DD): {value:?}"))?;
    Ok((date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_day_numbers() {
        assert_eq!(parse_day("19700102"), Some(1));
        assert_eq!(parse_day("20240301"), parse_iso_day("2024-03-01").ok());
        assert_eq!(parse_day(""), None);
        assert_eq!(parse_day("2024"), None);
        assert!(parse_iso_day("01/03/2024").is_err());
    }
}
