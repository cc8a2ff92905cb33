//! The coded concepts result objects use, in one place: DICOM (DCM),
//! SNOMED CT (SCT), LOINC (LN) and UCUM codes, and the mapping from the
//! report's categories to finding codes.

use super::content_item::Code;
use crate::findings::Category;

// Document and observer context (TID 1500, 1204, 1001, 1004).
pub const IMAGING_MEASUREMENT_REPORT: Code =
    Code::new("126000", "DCM", "Imaging Measurement Report");
pub const LANGUAGE_OF_CONTENT: Code =
    Code::new("121049", "DCM", "Language of Content Item and Descendants");
pub const ENGLISH_US: Code = Code::new("en-US", "RFC5646", "English (United States)");
pub const OBSERVER_TYPE: Code = Code::new("121005", "DCM", "Observer Type");
pub const DEVICE: Code = Code::new("121007", "DCM", "Device");
pub const DEVICE_OBSERVER_UID: Code = Code::new("121012", "DCM", "Device Observer UID");
pub const DEVICE_OBSERVER_NAME: Code = Code::new("121013", "DCM", "Device Observer Name");
pub const DEVICE_OBSERVER_MANUFACTURER: Code =
    Code::new("121014", "DCM", "Device Observer Manufacturer");
pub const DEVICE_OBSERVER_MODEL_NAME: Code =
    Code::new("121015", "DCM", "Device Observer Model Name");
pub const PROCEDURE_REPORTED: Code = Code::new("121058", "DCM", "Procedure reported");
/// LOINC "XR Chest Single view": what a frontal chest radiograph is.
pub const XR_CHEST_SINGLE_VIEW: Code = Code::new("36554-4", "LN", "XR Chest Single view");
pub const IMAGING_MEASUREMENTS: Code = Code::new("126010", "DCM", "Imaging Measurements");

// Measurement groups (TID 1501, 1410, 4019).
pub const MEASUREMENT_GROUP: Code = Code::new("125007", "DCM", "Measurement Group");
pub const TRACKING_IDENTIFIER: Code = Code::new("112039", "DCM", "Tracking Identifier");
pub const TRACKING_UID: Code = Code::new("112040", "DCM", "Tracking Unique Identifier");
pub const FINDING: Code = Code::new("121071", "DCM", "Finding");
pub const FINDING_CATEGORY: Code = Code::new("276214006", "SCT", "Finding category");
pub const FINDING_SITE: Code = Code::new("363698007", "SCT", "Finding Site");
pub const ALGORITHM_NAME: Code = Code::new("111001", "DCM", "Algorithm Name");
pub const ALGORITHM_VERSION: Code = Code::new("111003", "DCM", "Algorithm Version");
pub const ALGORITHM_MANUFACTURER: Code = Code::new("122405", "DCM", "Algorithm Manufacturer");
pub const CERTAINTY_OF_FINDING: Code = Code::new("111012", "DCM", "Certainty of Finding");
pub const LONG_AXIS: Code = Code::new("103339001", "SCT", "Long axis");
pub const SHORT_AXIS: Code = Code::new("103340004", "SCT", "Short axis");
pub const GEOMETRIC_PURPOSE: Code = Code::new("130400", "DCM", "Geometric purpose of region");
pub const BOUNDED_BY: Code = Code::new("75958009", "SCT", "Bounded by");
pub const IMAGE_REGION: Code = Code::new("111030", "DCM", "Image Region");
pub const SOURCE: Code = Code::new("260753009", "SCT", "Source");
pub const SOURCE_OF_MEASUREMENT: Code = Code::new("121112", "DCM", "Source of Measurement");
pub const MORPHOLOGICALLY_ABNORMAL_STRUCTURE: Code =
    Code::new("49755003", "SCT", "Morphologically Abnormal Structure");

// Units (UCUM).
pub const PERCENT: Code = Code::new("%", "UCUM", "Percent");
pub const MILLIMETRE: Code = Code::new("mm", "UCUM", "millimeter");

// Equipment.
pub const PROCESSING_EQUIPMENT: Code = Code::new("109102", "DCM", "Processing Equipment");

// Findings.
pub const NODULE: Code = Code::new("27925004", "SCT", "Nodule");
pub const MASS: Code = Code::new("4147007", "SCT", "Mass");
pub const LUNG_CONSOLIDATION: Code = Code::new("95436008", "SCT", "Lung consolidation");
pub const GROUND_GLASS_OPACITY: Code = Code::new("112120", "DCM", "Ground glass opacity");
pub const TUBERCULOSIS: Code = Code::new("56717001", "SCT", "Tuberculosis");
pub const PULMONARY_EMPHYSEMA: Code = Code::new("87433001", "SCT", "Pulmonary emphysema");
pub const ABNORMAL: Code = Code::new("263654008", "SCT", "Abnormal");
pub const NORMAL: Code = Code::new("17621005", "SCT", "Normal");

// Anatomy.
pub const LUNG: Code = Code::new("39607008", "SCT", "Lung");
pub const HEART: Code = Code::new("80891009", "SCT", "Heart");
pub const DIAPHRAGM: Code = Code::new("5798000", "SCT", "Diaphragm");
pub const HILUM_OF_LUNG: Code = Code::new("46750007", "SCT", "Hilum of lung");
pub const MEDIASTINUM: Code = Code::new("72410000", "SCT", "Mediastinum");

/// Nodules are lesions up to 30 mm; larger ones are masses.
const MASS_THRESHOLD_MM: f64 = 30.0;

/// The finding code for a category, as the image-level group states it.
pub fn category_finding(category: Category) -> Code {
    match category {
        Category::NoduleMass => NODULE,
        Category::Consolidation => LUNG_CONSOLIDATION,
        Category::Tuberculosis => TUBERCULOSIS,
        Category::MediastinalMass => MASS,
        Category::Emphysema => PULMONARY_EMPHYSEMA,
        Category::AnyAbnormality => ABNORMAL,
        Category::Normal => NORMAL,
    }
}

/// The finding code for one localised finding: nodule or mass by size,
/// ground glass when the model's label says so.
pub fn localised_finding(category: Category, label: &str, long_axis_mm: Option<f64>) -> Code {
    match category {
        Category::NoduleMass => match long_axis_mm {
            Some(mm) if mm > MASS_THRESHOLD_MM => MASS,
            _ if label.eq_ignore_ascii_case("mass") => MASS,
            _ => NODULE,
        },
        Category::Consolidation
            if label
                .to_ascii_lowercase()
                .replace(['-', ' ', '_'], "")
                .contains("groundglass") =>
        {
            GROUND_GLASS_OPACITY
        }
        other => category_finding(other),
    }
}

/// The site that always applies to a category, if any: the mediastinum
/// for mediastinal masses, the lung for everything else localised.
pub fn primary_site(category: Category) -> Option<Code> {
    match category {
        Category::MediastinalMass => Some(MEDIASTINUM),
        Category::AnyAbnormality | Category::Normal => None,
        _ => Some(LUNG),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodules_become_masses_above_30_mm() {
        assert_eq!(
            localised_finding(Category::NoduleMass, "Nodule", Some(12.0)),
            NODULE
        );
        assert_eq!(
            localised_finding(Category::NoduleMass, "Nodule", Some(42.0)),
            MASS
        );
        assert_eq!(localised_finding(Category::NoduleMass, "Mass", None), MASS);
        assert_eq!(
            localised_finding(Category::Consolidation, "ground-glass", None),
            GROUND_GLASS_OPACITY
        );
        assert_eq!(
            localised_finding(Category::MediastinalMass, "x", None),
            MASS
        );
        assert_eq!(primary_site(Category::MediastinalMass), Some(MEDIASTINUM));
    }
}
