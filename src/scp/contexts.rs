//! The presentation contexts the SCP accepts: which SOP classes, in which
//! transfer syntaxes.
//!
//! Abstract syntaxes are every image storage SOP class in the standard
//! dictionary (CR, DX for presentation and processing, CT and Enhanced CT,
//! MR, Secondary Capture and its multi-frame variants, and the rest), plus
//! Verification, the structured report storage classes, softcopy
//! presentation states, Key Object Selection, Segmentation and Encapsulated
//! PDF, so that a PACS forwarding a whole chest study is never refused half
//! way. Only images are analysed; the worker gates the rest.
//!
//! Transfer syntaxes are every standard one a modality might use. Objects are
//! stored exactly as received, so accepting a syntax does not require a codec
//! for it.

// Retired image storage classes are listed on purpose: old modalities still send them.
#![allow(deprecated)]

use dicom_dictionary_std::uids;

/// Verification SOP Class (C-ECHO).
pub const VERIFICATION: &str = uids::VERIFICATION;

/// Storage SOP classes accepted for C-STORE, by their standard dictionary
/// constants.
pub const STORAGE_SOP_CLASSES: &[&str] = &[
    uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::DIGITAL_INTRA_ORAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DIGITAL_INTRA_ORAL_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::ENCAPSULATED_PDF_STORAGE,
    uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::VARIABLE_MODALITY_LUT_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::PSEUDO_COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::BLENDING_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::XAXRF_GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::X_RAY_ANGIOGRAPHIC_IMAGE_STORAGE,
    uids::ENHANCED_XA_IMAGE_STORAGE,
    uids::X_RAY_RADIOFLUOROSCOPIC_IMAGE_STORAGE,
    uids::ENHANCED_XRF_IMAGE_STORAGE,
    uids::X_RAY_ANGIOGRAPHIC_BI_PLANE_IMAGE_STORAGE,
    uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
    uids::LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE,
    uids::X_RAY3_D_ANGIOGRAPHIC_IMAGE_STORAGE,
    uids::X_RAY3_D_CRANIOFACIAL_IMAGE_STORAGE,
    uids::BREAST_TOMOSYNTHESIS_IMAGE_STORAGE,
    uids::BREAST_PROJECTION_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::BREAST_PROJECTION_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::ENHANCED_PET_IMAGE_STORAGE,
    uids::INTRAVASCULAR_OPTICAL_COHERENCE_TOMOGRAPHY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::INTRAVASCULAR_OPTICAL_COHERENCE_TOMOGRAPHY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::CT_IMAGE_STORAGE,
    uids::ENHANCED_CT_IMAGE_STORAGE,
    uids::LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE,
    uids::CT_IMAGE_STORAGE_FOR_PROCESSING,
    uids::ENHANCED_CT_IMAGE_STORAGE_FOR_PROCESSING,
    uids::LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE_FOR_PROCESSING,
    uids::NUCLEAR_MEDICINE_IMAGE_STORAGE,
    uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE_RETIRED,
    uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
    uids::MR_IMAGE_STORAGE,
    uids::ENHANCED_MR_IMAGE_STORAGE,
    uids::ENHANCED_MR_COLOR_IMAGE_STORAGE,
    uids::LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE,
    uids::RT_IMAGE_STORAGE,
    uids::ENHANCED_RT_IMAGE_STORAGE,
    uids::ENHANCED_CONTINUOUS_RT_IMAGE_STORAGE,
    uids::NUCLEAR_MEDICINE_IMAGE_STORAGE_RETIRED,
    uids::DICOSCT_IMAGE_STORAGE,
    uids::DICOS_DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DICOS_DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::ULTRASOUND_IMAGE_STORAGE_RETIRED,
    uids::ULTRASOUND_IMAGE_STORAGE,
    uids::PHOTOACOUSTIC_IMAGE_STORAGE,
    uids::EDDY_CURRENT_IMAGE_STORAGE,
    uids::EDDY_CURRENT_MULTI_FRAME_IMAGE_STORAGE,
    uids::THERMOGRAPHY_IMAGE_STORAGE,
    uids::THERMOGRAPHY_MULTI_FRAME_IMAGE_STORAGE,
    uids::SEGMENTATION_STORAGE,
    uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_SINGLE_BIT_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_BYTE_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::VL_ENDOSCOPIC_IMAGE_STORAGE,
    uids::VIDEO_ENDOSCOPIC_IMAGE_STORAGE,
    uids::VL_MICROSCOPIC_IMAGE_STORAGE,
    uids::VIDEO_MICROSCOPIC_IMAGE_STORAGE,
    uids::VL_SLIDE_COORDINATES_MICROSCOPIC_IMAGE_STORAGE,
    uids::VL_PHOTOGRAPHIC_IMAGE_STORAGE,
    uids::VIDEO_PHOTOGRAPHIC_IMAGE_STORAGE,
    uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE,
    uids::OPHTHALMIC_PHOTOGRAPHY16_BIT_IMAGE_STORAGE,
    uids::OPHTHALMIC_TOMOGRAPHY_IMAGE_STORAGE,
    uids::WIDE_FIELD_OPHTHALMIC_PHOTOGRAPHY_STEREOGRAPHIC_PROJECTION_IMAGE_STORAGE,
    uids::WIDE_FIELD_OPHTHALMIC_PHOTOGRAPHY3_D_COORDINATES_IMAGE_STORAGE,
    uids::OPHTHALMIC_OPTICAL_COHERENCE_TOMOGRAPHY_EN_FACE_IMAGE_STORAGE,
    uids::VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE,
    uids::DERMOSCOPIC_PHOTOGRAPHY_IMAGE_STORAGE,
    uids::CONFOCAL_MICROSCOPY_IMAGE_STORAGE,
    uids::CONFOCAL_MICROSCOPY_TILED_PYRAMIDAL_IMAGE_STORAGE,
    uids::BASIC_TEXT_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::COMPREHENSIVE_SR_STORAGE,
    uids::COMPREHENSIVE3_DSR_STORAGE,
    uids::EXTENSIBLE_SR_STORAGE,
    uids::MAMMOGRAPHY_CADSR_STORAGE,
    uids::KEY_OBJECT_SELECTION_DOCUMENT_STORAGE,
    uids::CHEST_CADSR_STORAGE,
    uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
    uids::RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE,
    uids::COLON_CADSR_STORAGE,
    uids::IMPLANTATION_PLAN_SR_STORAGE,
    uids::ACQUISITION_CONTEXT_SR_STORAGE,
    uids::SIMPLIFIED_ADULT_ECHO_SR_STORAGE,
    uids::PATIENT_RADIATION_DOSE_SR_STORAGE,
    uids::PLANNED_IMAGING_AGENT_ADMINISTRATION_SR_STORAGE,
    uids::PERFORMED_IMAGING_AGENT_ADMINISTRATION_SR_STORAGE,
    uids::ENHANCED_X_RAY_RADIATION_DOSE_SR_STORAGE,
    uids::WAVEFORM_ANNOTATION_SR_STORAGE,
];

/// Transfer syntaxes accepted. When a peer proposes several in one
/// presentation context, the first of its own list that is here wins, so the
/// sender's preference (usually its file's own syntax) is kept.
pub const TRANSFER_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    uids::JPEG_BASELINE8_BIT,
    uids::JPEG_EXTENDED12_BIT,
    uids::JPEG_LOSSLESS,
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEGLS_LOSSLESS,
    uids::JPEGLS_NEAR_LOSSLESS,
    uids::JPEG2000_LOSSLESS,
    uids::JPEG2000,
    uids::HTJ2K_LOSSLESS,
    uids::HTJ2K_LOSSLESS_RPCL,
    uids::HTJ2K,
    uids::RLE_LOSSLESS,
];

/// Whether C-STORE of this SOP class is accepted.
pub fn is_accepted_storage_class(uid: &str) -> bool {
    STORAGE_SOP_CLASSES.contains(&uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::dictionary::UidDictionary;
    use dicom_dictionary_std::StandardSopClassDictionary;

    #[test]
    fn every_storage_class_is_a_known_storage_sop_class() {
        for uid in STORAGE_SOP_CLASSES {
            let entry = StandardSopClassDictionary
                .by_uid(uid)
                .unwrap_or_else(|| panic!("{uid} not in the dictionary"));
            assert!(entry.name.contains("Storage"), "{uid}: {}", entry.name);
        }
    }

    #[test]
    fn chest_workflow_classes_are_accepted() {
        for uid in [
            uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
            uids::CT_IMAGE_STORAGE,
            uids::ENHANCED_CT_IMAGE_STORAGE,
            uids::MR_IMAGE_STORAGE,
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
            uids::MULTI_FRAME_GRAYSCALE_BYTE_SECONDARY_CAPTURE_IMAGE_STORAGE,
            uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
            uids::MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE,
            uids::COMPREHENSIVE3_DSR_STORAGE,
        ] {
            assert!(is_accepted_storage_class(uid), "{uid}");
        }
    }

    #[test]
    fn every_transfer_syntax_can_be_negotiated_by_dicom_ul() {
        for ts in TRANSFER_SYNTAXES {
            assert!(dicom_ul::association::server::is_supported(ts), "{ts}");
        }
    }
}
