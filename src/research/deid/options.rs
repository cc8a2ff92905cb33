//! The profile options a cohort is exported with (the option columns of
//! PS3.15 Table E.1-1 we support), kept with the cohort and named in the
//! export report and in the objects themselves (CID 7050 codes).

use serde::{Deserialize, Serialize};

/// Profile options (PS3.15 Table E.1-1 columns). The default is what the
/// hospital needs: modified dates, patient characteristics and cleaned
/// descriptors kept, device identity removed, no pixel cleaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeidOptions {
    /// Shift DA/DT by the patient's offset instead of removing them.
    pub retain_longitudinal_modified_dates: bool,
    /// Keep age, sex, size, weight and the like.
    pub retain_patient_characteristics: bool,
    /// Keep descriptions with identifying content removed.
    pub clean_descriptors: bool,
    /// Keep device serial numbers, station names and the like.
    pub retain_device_identity: bool,
    /// Rectangles blanked in every image ("clean pixel" option); images
    /// marked as having burned-in annotation are accepted only with these.
    pub clean_pixel_regions: Vec<PixelRegion>,
}

/// A rectangle of an image, in pixels from the top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelRegion {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Default for DeidOptions {
    fn default() -> Self {
        DeidOptions {
            retain_longitudinal_modified_dates: true,
            retain_patient_characteristics: true,
            clean_descriptors: true,
            retain_device_identity: false,
            clean_pixel_regions: Vec::new(),
        }
    }
}

impl DeidOptions {
    /// Human-readable names of the profile and the options in force, for
    /// the export report.
    pub fn describe(&self) -> Vec<String> {
        let mut names = vec!["Basic Application Level Confidentiality Profile".to_owned()];
        if self.retain_longitudinal_modified_dates {
            names.push("Retain Longitudinal Temporal Information with Modified Dates".into());
        }
        if self.retain_patient_characteristics {
            names.push("Retain Patient Characteristics".into());
        }
        if self.retain_device_identity {
            names.push("Retain Device Identity".into());
        }
        if self.clean_descriptors {
            names.push("Clean Descriptors".into());
        }
        if !self.clean_pixel_regions.is_empty() {
            names.push(format!(
                "Clean Pixel Data ({} region{})",
                self.clean_pixel_regions.len(),
                if self.clean_pixel_regions.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ));
        }
        names
    }

    /// The CID 7050 codes (value, meaning) for the profile and options in
    /// force; Clean Pixel Data only when pixels were actually cleaned.
    pub(super) fn method_codes(&self, pixels_cleaned: bool) -> Vec<(&'static str, &'static str)> {
        let mut codes = vec![("113100", "Basic Application Confidentiality Profile")];
        if pixels_cleaned {
            codes.push(("113101", "Clean Pixel Data Option"));
        }
        if self.clean_descriptors {
            codes.push(("113105", "Clean Descriptors Option"));
        }
        if self.retain_longitudinal_modified_dates {
            codes.push((
                "113107",
                "Retain Longitudinal Temporal Information Modified Dates Option",
            ));
        }
        if self.retain_patient_characteristics {
            codes.push(("113108", "Retain Patient Characteristics Option"));
        }
        if self.retain_device_identity {
            codes.push(("113109", "Retain Device Identity Option"));
        }
        codes
    }
}
