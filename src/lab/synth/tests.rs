//! The generator's contract: deterministic for a seed, and its labels
//! match its masks and its anatomy.

use super::findings::{FindingMix, PlannedFinding};
use super::host::Structure;
use super::lesions::Site;
use super::*;
use crate::lab::dataset::FindingKind;
use crate::lab::dataset::ImageLabel;

fn small(size: usize) -> SynthConfig {
    SynthConfig {
        size,
        ..SynthConfig::default()
    }
}

fn label_json(case: &SyntheticCase) -> String {
    serde_json::to_string(&case.label("images/x.dcm")).unwrap()
}

fn dicom_bytes(case: &SyntheticCase) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.dcm");
    case.dx().write(&path).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn the_same_seed_gives_identical_files_and_different_seeds_differ() {
    let config = SynthConfig {
        monochrome1_fraction: 0.5,
        ..small(128)
    };
    for index in 0..4 {
        let a = generate(&config, 11, index);
        let b = generate(&config, 11, index);
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(dicom_bytes(&a), dicom_bytes(&b));
        assert_eq!(label_json(&a), label_json(&b));
    }
    let a = generate(&config, 11, 0);
    let other_seed = generate(&config, 12, 0);
    let other_index = generate(&config, 11, 1);
    assert_ne!(a.pixels, other_seed.pixels);
    assert_ne!(a.pixels, other_index.pixels);
    assert_ne!(dicom_bytes(&a), dicom_bytes(&other_seed));
}

/// Every finding's mask is non-empty and its box is exactly the mask's extent.
fn check_boxes(label: &ImageLabel) {
    for finding in &label.findings {
        let bits = finding.mask.decode();
        assert_eq!(bits.len(), (label.rows * label.columns) as usize);
        let set: Vec<(u32, u32)> = bits
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(|(i, _)| (i as u32 % label.columns, i as u32 / label.columns))
            .collect();
        assert!(!set.is_empty(), "{:?} has an empty mask", finding.kind);
        assert_eq!(set.len() as u32, finding.area_px);
        let [x0, y0, x1, y1] = finding.bbox;
        assert!(
            set.iter()
                .all(|&(x, y)| x >= x0 && x < x1 && y >= y0 && y < y1)
        );
        // Tight: the mask touches every side of its box.
        assert!(set.iter().any(|p| p.0 == x0) && set.iter().any(|p| p.0 == x1 - 1));
        assert!(set.iter().any(|p| p.1 == y0) && set.iter().any(|p| p.1 == y1 - 1));
    }
}

#[test]
fn every_box_holds_its_mask_and_categories_follow_findings() {
    let config = small(128);
    let (mut normals, mut abnormal) = (0, 0);
    for index in 0..30 {
        let case = generate(&config, 5, index);
        let label = case.label("images/x.dcm");
        check_boxes(&label);
        let has = |key: &str| label.categories[key];
        if label.findings.is_empty() {
            normals += 1;
            assert!(has("normal") && !has("any-abnormality"));
            assert!(label.categories.iter().filter(|(_, v)| **v).count() == 1);
        } else {
            abnormal += 1;
            assert!(!has("normal") && has("any-abnormality"));
            for finding in &label.findings {
                assert!(has(&finding.category));
            }
        }
    }
    assert!(
        normals > 0 && abnormal > 0,
        "{normals} normals, {abnormal} abnormal"
    );
}

#[test]
fn every_kind_of_finding_is_drawn_with_a_mask() {
    let config = small(160);
    let kinds = [
        FindingKind::Nodule,
        FindingKind::Mass,
        FindingKind::Consolidation,
        FindingKind::GroundGlass,
        FindingKind::Tuberculosis,
        FindingKind::MediastinalWidening,
        FindingKind::MediastinalMass,
        FindingKind::Emphysema,
        FindingKind::PleuralEffusion,
    ];
    for (index, kind) in kinds.into_iter().enumerate() {
        let planned = [PlannedFinding {
            kind,
            site: Site::AnyLung,
            diameter_mm: None,
        }];
        let case = generate_with(&config, 9, index as u64, &planned);
        let normal = generate_with(&config, 9, index as u64, &[]);
        let label = case.label("images/x.dcm");
        assert_eq!(label.findings.len(), 1, "{kind:?}");
        assert_eq!(label.findings[0].kind, kind);
        check_boxes(&label);
        // The finding brightens the image inside its mask (the same case
        // without it has the same anatomy, exposure and noise) more than
        // outside. Emphysema and widening change the anatomy instead.
        if matches!(
            kind,
            FindingKind::Emphysema | FindingKind::MediastinalWidening
        ) {
            assert_ne!(case.pixels, normal.pixels);
            continue;
        }
        let mask = &case.findings[0].mask;
        let mean_difference = |inside: bool| {
            let pixels: Vec<usize> = (0..mask.bits.len())
                .filter(|&i| mask.bits[i] == inside)
                .collect();
            pixels
                .iter()
                .map(|&i| case.pixels[i] as f32 - normal.pixels[i] as f32)
                .sum::<f32>()
                / pixels.len() as f32
        };
        let (inside, outside) = (mean_difference(true), mean_difference(false));
        assert!(
            inside > outside + 10.0,
            "{kind:?}: {inside} inside, {outside} outside"
        );
    }
}

#[test]
fn a_nodules_mask_area_matches_its_diameter() {
    let config = small(512);
    for index in 0..8 {
        let planned = [PlannedFinding {
            kind: FindingKind::Nodule,
            site: Site::FreeLung,
            diameter_mm: None,
        }];
        let case = generate_with(&config, 21, index, &planned);
        let finding = &case.findings[0];
        let diameter = finding.details.diameter_mm.unwrap();
        assert!((5.0..=31.0).contains(&diameter), "{diameter}");
        let area_mm2 = finding.mask.area() as f32 * case.spacing_mm * case.spacing_mm;
        let equivalent = 2.0 * (area_mm2 / std::f32::consts::PI).sqrt();
        let tolerance = 0.1 * diameter + case.spacing_mm;
        assert!(
            (equivalent - diameter).abs() <= tolerance,
            "stated {diameter} mm, mask {equivalent} mm"
        );
    }
}

#[test]
fn overlap_tags_agree_with_the_anatomy_masks() {
    let config = small(192);
    let sites = [
        Structure::Heart,
        Structure::Diaphragm,
        Structure::Hilum,
        Structure::Rib,
        Structure::Clavicle,
    ];
    for (index, structure) in sites.into_iter().enumerate() {
        let planned = [PlannedFinding {
            kind: FindingKind::Nodule,
            site: Site::Over(structure),
            diameter_mm: None,
        }];
        let case = generate_with(&config, 33, index as u64, &planned);
        let finding = case
            .findings
            .first()
            .unwrap_or_else(|| panic!("no nodule placed over {structure:?}"));
        assert!(
            finding.tags.iter().any(|t| t == structure.overlap_tag()),
            "{structure:?}: {:?}",
            finding.tags
        );
        // Every structure's tag is there exactly when a tenth of the
        // nodule lies on that structure's mask.
        for (other, mask) in &case.structures {
            let fraction = finding.mask.overlap(mask) as f32 / finding.mask.area() as f32;
            let tagged = finding.tags.iter().any(|t| t == other.overlap_tag());
            assert_eq!(tagged, fraction >= 0.1, "{other:?} {fraction}");
        }
    }
    // Free-lung nodules overlap none of the central structures.
    let planned = [PlannedFinding {
        kind: FindingKind::Nodule,
        site: Site::FreeLung,
        diameter_mm: None,
    }];
    let case = generate_with(&config, 33, 9, &planned);
    let finding = &case.findings[0];
    assert!(finding.tags.iter().any(|t| t == "free_lung"));
    for (structure, mask) in &case.structures {
        if matches!(
            structure,
            Structure::Heart | Structure::Diaphragm | Structure::Hilum
        ) {
            assert!(finding.mask.overlap(mask) * 10 < finding.mask.area());
        }
    }
}

#[test]
fn normals_have_no_findings() {
    let config = SynthConfig {
        mix: FindingMix {
            normal: 1.0,
            nodule: 0.0,
            mass: 0.0,
            consolidation: 0.0,
            ground_glass: 0.0,
            tuberculosis: 0.0,
            mediastinal: 0.0,
            emphysema: 0.0,
            pleural_effusion: 0.0,
            ..FindingMix::default()
        },
        ..small(96)
    };
    for index in 0..3 {
        let label = generate(&config, 2, index).label("images/x.dcm");
        assert!(label.findings.is_empty());
        assert!(label.categories["normal"]);
        assert!(!label.categories["any-abnormality"]);
    }
}

#[test]
fn the_dx_header_is_a_12_bit_pa_chest() {
    use dicom_dictionary_std::tags;
    let config = SynthConfig {
        monochrome1_fraction: 1.0,
        ..small(64)
    };
    let case = generate(&config, 4, 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.dcm");
    case.dx().write(&path).unwrap();
    let object = dicom_object::open_file(&path).unwrap();
    let text = |tag| {
        object
            .element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(text(tags::MODALITY), "DX");
    assert_eq!(text(tags::VIEW_POSITION), "PA");
    assert_eq!(text(tags::BODY_PART_EXAMINED), "CHEST");
    assert_eq!(text(tags::BITS_STORED), "12");
    assert_eq!(text(tags::PHOTOMETRIC_INTERPRETATION), "MONOCHROME1");
    assert_eq!(text(tags::PRESENTATION_LUT_SHAPE), "INVERSE");
    let pixels: Vec<u16> = object
        .element(tags::PIXEL_DATA)
        .unwrap()
        .uint16_slice()
        .unwrap()
        .to_vec();
    assert_eq!(pixels.len(), 64 * 64);
    assert!(pixels.iter().all(|&v| v <= 4095));
    // MONOCHROME1 stores the inverse of the rendered values.
    assert!(pixels.iter().zip(&case.pixels).all(|(s, r)| s + r == 4095));
    assert!(crate::imaging::gate(&object) == crate::imaging::Gate::Analyse);
}

#[test]
fn findings_are_inserted_into_a_real_radiograph_inside_its_lungs() {
    let png = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/cxr/tbx11k/h0001.png");
    assert!(png.exists(), "test radiograph missing: {}", png.display());
    let config = SynthConfig {
        mix: FindingMix {
            normal: 0.0,
            nodule: 1.0,
            mass: 0.0,
            consolidation: 0.0,
            ground_glass: 0.0,
            tuberculosis: 0.0,
            mediastinal: 0.0,
            emphysema: 0.0,
            pleural_effusion: 0.0,
            second_finding: 0.0,
            hidden_nodules: 0.0,
        },
        ..small(256)
    };
    let original = insert::load_png(&png, 256).unwrap();
    let lungs = insert::estimate_lungs(&original, 256);
    assert!(lungs.area() > 256 * 256 / 20, "lungs {}", lungs.area());
    for index in 0..3 {
        let case = insert::insert_case(&config, 8, index, &insert::Background::file(&png)).unwrap();
        let label = case.label("images/x.dcm");
        assert_eq!(label.source, "inserted");
        assert!(!label.anatomy_known);
        assert_eq!(label.findings.len(), 1);
        check_boxes(&label);
        let mask = &case.findings[0].mask;
        assert!(mask.overlap(&lungs) * 10 >= mask.area() * 6);
        // Brighter (more attenuating) inside the nodule than before.
        let before: f32 = (0..mask.bits.len())
            .filter(|&i| mask.bits[i])
            .map(|i| original[i] * 4095.0)
            .sum();
        let after: f32 = (0..mask.bits.len())
            .filter(|&i| mask.bits[i])
            .map(|i| case.pixels[i] as f32)
            .sum();
        assert!(
            after > before + 5.0 * mask.area() as f32,
            "{before} -> {after}"
        );
    }
}

#[test]
fn a_5_mm_nodule_stands_out_from_the_noise_at_the_default_spacing() {
    // 0.35 mm pixels, as at the default 1024 px, on a smaller canvas.
    let config = SynthConfig {
        size: 512,
        field_of_view_mm: 180.0,
        ..SynthConfig::default()
    };
    let mut contrasts = Vec::new();
    for index in 0..4 {
        let planned = [PlannedFinding {
            kind: FindingKind::Nodule,
            site: Site::FreeLung,
            diameter_mm: Some(5.0),
        }];
        let case = generate_with(&config, 44, index, &planned);
        let Some(finding) = case.findings.first() else {
            continue;
        };
        let normal = generate_with(&config, 44, index, &[]);
        // Signal: the rendered difference inside the mask (the same case
        // without the nodule has the same anatomy, exposure and noise).
        // Noise: pixel-to-pixel differences around it in the image.
        let n = case.size;
        let [x0, y0, x1, y1] = finding.mask.bbox().unwrap();
        let inside: Vec<usize> = (0..n * n).filter(|&i| finding.mask.bits[i]).collect();
        let signal = inside
            .iter()
            .map(|&i| case.pixels[i] as f32 - normal.pixels[i] as f32)
            .sum::<f32>()
            / inside.len() as f32;
        let steps: Vec<f32> = (y0.saturating_sub(12)..(y1 + 12).min(n as u32))
            .flat_map(|r| (x0.saturating_sub(12)..(x1 + 12).min(n as u32 - 1)).map(move |c| (r, c)))
            .map(|(r, c)| r as usize * n + c as usize)
            .filter(|&i| !finding.mask.bits[i])
            .map(|i| (case.pixels[i + 1] as f32 - case.pixels[i] as f32) / 2f32.sqrt())
            .collect();
        let noise = (steps.iter().map(|v| v * v).sum::<f32>() / steps.len() as f32).sqrt();
        // Rose criterion: contrast-to-noise times the square root of the
        // number of pixels above 5 is visible.
        contrasts.push(signal / noise.max(1.0) * (inside.len() as f32).sqrt());
    }
    assert!(contrasts.len() >= 3, "{contrasts:?}");
    assert!(
        contrasts.iter().all(|&c| c > 5.0),
        "Rose contrast {contrasts:?}"
    );
}

#[test]
fn mix_overrides_change_only_what_they_name_and_refuse_nonsense() {
    let base = FindingMix::default();
    let items = [
        "nodule=0.5".to_string(),
        " hidden_nodules = 0.8".to_string(),
    ];
    let mix = base.with_overrides(&items).unwrap();
    assert_eq!(mix.nodule, 0.5);
    assert_eq!(mix.hidden_nodules, 0.8);
    assert_eq!(mix.mass, base.mass);
    assert_eq!(mix.normal, base.normal);
    for bad in [
        "nodule",
        "nodule=x",
        "nodules=0.5",
        "nodule=-1",
        "hidden_nodules=1.5",
    ] {
        let error = base.with_overrides(&[bad.to_string()]).unwrap_err();
        assert!(error.to_string().contains("--mix"), "{bad}: {error}");
    }
    let nothing: Vec<String> = [
        "normal",
        "nodule",
        "mass",
        "consolidation",
        "ground_glass",
        "tuberculosis",
        "mediastinal",
        "emphysema",
        "pleural_effusion",
    ]
    .iter()
    .map(|key| format!("{key}=0"))
    .collect();
    assert!(base.with_overrides(&nothing).is_err());
}

#[test]
fn a_nodule_heavy_mix_draws_mostly_nodules() {
    let mix = FindingMix::default()
        .with_overrides(&["nodule=0.7".to_string(), "normal=0.1".to_string()])
        .unwrap();
    let mut rng = Rng::new(7);
    let cases = 2000;
    let with_nodule = (0..cases)
        .filter(|_| {
            mix.plan(&mut rng)
                .iter()
                .any(|planned| planned.kind == FindingKind::Nodule)
        })
        .count();
    // nodule 0.7 of a total weight of 1.28, plus second findings: about
    // 59 % of cases, against about 25 % with the default mix.
    assert!(
        (1050..1320).contains(&with_nodule),
        "{with_nodule} of {cases}"
    );
}
