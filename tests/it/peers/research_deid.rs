//! De-identification (`research::deidentify`) of real files, checked by
//! independent readers: `dciodvfy` must find no error in the output that
//! the source did not already have, and `dcmdump` must show the research
//! ID, Patient Identity Removed = YES, and none of the source's PHI. The
//! reference SR and GSPS must still point at the de-identified image.

use std::path::{Path, PathBuf};

use crate::common::cli::{dciodvfy_errors, tool_output};
use crate::common::dicom_file;
use chestnode::research::{DeidError, DeidOptions, Exclusion, PatientKey, UidRemapper, deidentify};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, open_file};

/// Chest CR and DX, a CT, an SR and a GSPS, in several transfer syntaxes.
const SOURCES: &[&str] = &[
    "wg04/RG1_JLSN.dcm",                                  // CR, JPEG-LS near-lossless
    "wg04/RG3_UNC.dcm",                                   // CR, explicit VR little endian
    "wg04/RG3_JPLL.dcm",                                  // CR, JPEG lossless
    "wg04/RG3_RLE.dcm",                                   // CR, RLE
    "wg04/CT1_J2KR.dcm",                                  // CT, JPEG 2000 lossless
    "misc/dx_thorax_small.dcm",                           // DX, MONOCHROME1
    "misc/highdicom_sr_document.dcm",                     // TID 1500 SR by highdicom
    "reference/source_dx_for_reference.dcm",              // DX
    "reference/tid1500_cxr_nodule_comprehensive3dsr.dcm", // SR on that DX
    "reference/gsps_cxr_nodule_box.dcm",                  // GSPS on that DX
];

const RESEARCH_ID: &str = "RSCH-000017";

fn patient() -> PatientKey {
    PatientKey {
        research_id: RESEARCH_ID.into(),
        date_offset_days: -412,
    }
}

fn text(object: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<String> {
    object
        .get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        .filter(|s| !s.is_empty())
}

/// The source's identifying strings: names (whole and the family name),
/// IDs, birth date, institution, physicians, accession number. Strings
/// under four characters are left out: they occur by chance in any dump.
fn phi(object: &DefaultDicomObject) -> Vec<String> {
    let mut found = Vec::new();
    for tag in [
        tags::PATIENT_NAME,
        tags::PATIENT_ID,
        tags::PATIENT_BIRTH_DATE,
        tags::INSTITUTION_NAME,
        tags::INSTITUTION_ADDRESS,
        tags::REFERRING_PHYSICIAN_NAME,
        tags::PERFORMING_PHYSICIAN_NAME,
        tags::OPERATORS_NAME,
        tags::ACCESSION_NUMBER,
        dicom_core::Tag(0x0010, 0x1000), // Other Patient IDs (retired)
    ] {
        let Some(value) = text(object, tag) else {
            continue;
        };
        for value in value.split('\\') {
            found.push(value.to_owned());
            if let Some((family, _)) = value.split_once('^') {
                found.push(family.to_owned());
            }
        }
    }
    found.retain(|s| s.len() >= 4);
    found
}

/// dciodvfy's error lines with values and positions taken out, so that
/// the same problem reads the same in source and output.
fn normalised_errors(file: &Path) -> Vec<String> {
    let (errors, _) = dciodvfy_errors(file);
    let mut errors: Vec<String> = errors
        .iter()
        .map(|line| {
            line.split(" - value")
                .next()
                .unwrap_or(line)
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect()
        })
        .collect();
    errors.sort();
    errors.dedup();
    errors
}

/// The values inside `[...]` of a dcmdump listing, one per element.
fn dumped_values(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter_map(|line| {
            let start = line.find('[')?;
            let end = line.rfind(']')?;
            (end > start).then(|| &line[start + 1..end])
        })
        .collect()
}

#[test]
fn real_files_stay_valid_and_lose_their_phi() {
    let out_dir = tempfile::tempdir().unwrap();
    let uids = UidRemapper::new([0x5a; 32]);
    let options = DeidOptions::default();
    let mut written: Vec<(String, PathBuf, DefaultDicomObject)> = Vec::new();

    for source in SOURCES {
        let path = dicom_file(source);
        let original = open_file(&path).unwrap_or_else(|e| panic!("{source}: {e}"));
        let result = match deidentify(&original, &patient(), &uids, &options) {
            Ok(result) => result,
            Err(e) => panic!("{source}: {e}"),
        };
        assert!(result.remapped_uids > 0 && result.replaced > 0, "{source}");
        let name = Path::new(source).file_name().unwrap();
        let target = out_dir.path().join(name);
        result.object.write_to_file(&target).unwrap();

        let before = normalised_errors(&path);
        let after = normalised_errors(&target);
        let new_errors: Vec<&String> = after.iter().filter(|e| !before.contains(e)).collect();
        assert!(
            new_errors.is_empty(),
            "{source}: dciodvfy errors the source did not have: {new_errors:#?}"
        );

        let picked = std::process::Command::new("dcmdump")
            .args(["+P", "0010,0010", "+P", "0010,0020", "+P", "0012,0062"])
            .arg(&target)
            .output()
            .expect("dcmdump must be installed");
        let picked = String::from_utf8_lossy(&picked.stdout);
        let picked: Vec<&str> = dumped_values(&picked);
        assert_eq!(picked, [RESEARCH_ID, RESEARCH_ID, "YES"], "{source}");

        let (_, dump) = tool_output("dcmdump", &target);
        let values = dumped_values(&dump);
        let secrets = phi(&original);
        assert!(!secrets.is_empty(), "{source}: no PHI to look for");
        for secret in secrets {
            let leaked: Vec<&&str> = values.iter().filter(|v| v.contains(&secret)).collect();
            assert!(
                leaked.is_empty(),
                "{source}: a PHI string survives in {leaked:?}"
            );
        }
        if text(&original, tags::MODALITY).as_deref() == Some("SR") {
            let (status, text) = tool_output("dsrdump", &target);
            assert!(status.status.success(), "{source}: dsrdump failed: {text}");
        }
        written.push((source.to_string(), target, result.object));
    }

    // the reference SR and GSPS still point at the de-identified DX
    let find = |suffix: &str| {
        &written
            .iter()
            .find(|(s, _, _)| s.ends_with(suffix))
            .expect("written")
            .2
    };
    let dx = find("source_dx_for_reference.dcm");
    let dx_uid = text(dx, tags::SOP_INSTANCE_UID).unwrap();
    assert!(dx_uid.starts_with("2.25."));
    for suffix in [
        "tid1500_cxr_nodule_comprehensive3dsr.dcm",
        "gsps_cxr_nodule_box.dcm",
    ] {
        let (_, dump) = tool_output(
            "dcmdump",
            &written
                .iter()
                .find(|(s, _, _)| s.ends_with(suffix))
                .unwrap()
                .1,
        );
        let referenced: Vec<&str> = dump
            .lines()
            .filter(|l| l.trim_start().starts_with("(0008,1155)"))
            .filter_map(|l| dumped_values(l).first().copied())
            .collect();
        assert!(!referenced.is_empty(), "{suffix}: no references");
        assert!(
            referenced.contains(&dx_uid.as_str()),
            "{suffix}: {referenced:?} vs {dx_uid}"
        );
        assert_eq!(
            text(find(suffix), tags::STUDY_INSTANCE_UID),
            text(dx, tags::STUDY_INSTANCE_UID)
        );
    }
}

#[test]
fn a_secondary_capture_is_excluded() {
    let original = open_file(dicom_file("misc/siim_cr_chest_jpeg_baseline.dcm")).unwrap();
    let result = deidentify(
        &original,
        &patient(),
        &UidRemapper::new([1; 32]),
        &DeidOptions::default(),
    );
    assert!(
        matches!(
            result,
            Err(DeidError::Excluded(Exclusion::SecondaryCapture))
        ),
        "{result:?}"
    );
}

#[test]
fn burned_in_native_image_is_cleaned_in_its_regions_and_stays_valid() {
    let path = dicom_file("wg04/RG3_UNC.dcm");
    let mut original = open_file(&path).unwrap();
    original.put(dicom_core::DataElement::new(
        tags::BURNED_IN_ANNOTATION,
        dicom_core::VR::CS,
        dicom_core::PrimitiveValue::from("YES"),
    ));
    let options = DeidOptions {
        clean_pixel_regions: vec![chestnode::research::PixelRegion {
            x: 0,
            y: 0,
            width: 400,
            height: 100,
        }],
        ..DeidOptions::default()
    };
    let result = deidentify(&original, &patient(), &UidRemapper::new([3; 32]), &options)
        .unwrap_or_else(|e| panic!("{e}"));
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("cleaned.dcm");
    result.object.write_to_file(&target).unwrap();
    let before = normalised_errors(&path);
    let new_errors: Vec<String> = normalised_errors(&target)
        .into_iter()
        .filter(|e| !before.contains(e))
        .collect();
    assert!(new_errors.is_empty(), "{new_errors:#?}");
    let (_, dump) = tool_output("dcmdump", &target);
    assert!(dump.contains("[113101]"), "no Clean Pixel Data code");
    assert_eq!(
        text(&result.object, tags::BURNED_IN_ANNOTATION).as_deref(),
        Some("NO")
    );
    let pixels = result
        .object
        .get(tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap();
    let source_pixels = original.get(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
    let columns = 1760;
    let region_had_signal = (0..100usize)
        .any(|y| (0..400usize).any(|x| source_pixels[2 * (y * columns + x)..][..2] != [0, 0]));
    assert!(region_had_signal, "the test region was already black");
    for y in [0usize, 50, 99] {
        for x in [0usize, 200, 399] {
            let i = 2 * (y * columns + x);
            assert_eq!(&pixels[i..i + 2], &[0, 0], "({x},{y}) not blanked");
        }
    }
}
