//! Unit tests of annotations: agreement statistics, consensus, and the
//! all-or-nothing import against a ledger with one stored image.

use super::*;

fn annotation(
    reader: &str,
    sop: &str,
    finding: FindingType,
    region: Option<[f64; 4]>,
) -> Annotation {
    Annotation {
        id: format!("{reader}-{sop}-{}", finding.key()),
        version: 1,
        sop_instance_uid: sop.into(),
        reader: reader.into(),
        finding,
        finding_text: None,
        location: region.map(|[x, y, width, height]| Location::Box {
            x,
            y,
            width,
            height,
        }),
        ct: None,
        certainty: Certainty::Definite,
        confirmed: None,
        created_at: 0,
        source: Source::File,
        deleted: false,
    }
}

#[test]
fn kappa_matches_a_worked_example() {
    // 50 items: both yes 20, both no 15, A yes/B no 5, A no/B yes 10:
    // po = 0.7, pe = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.4.
    let mut pairs = Vec::new();
    pairs.extend(std::iter::repeat_n((true, true), 20));
    pairs.extend(std::iter::repeat_n((false, false), 15));
    pairs.extend(std::iter::repeat_n((true, false), 5));
    pairs.extend(std::iter::repeat_n((false, true), 10));
    assert!((cohen_kappa(&pairs).unwrap() - 0.4).abs() < 1e-9);
    assert_eq!(cohen_kappa(&[(true, true), (true, true)]), Some(1.0));
    assert_eq!(cohen_kappa(&[]), None);
}

#[test]
fn iou_of_boxes() {
    assert!((iou((0.0, 0.0, 10.0, 10.0), (5.0, 0.0, 10.0, 10.0)) - 50.0 / 150.0).abs() < 1e-9);
    assert_eq!(iou((0.0, 0.0, 1.0, 1.0), (5.0, 5.0, 1.0, 1.0)), 0.0);
    assert_eq!(iou((2.0, 2.0, 4.0, 4.0), (2.0, 2.0, 4.0, 4.0)), 1.0);
}

#[test]
fn two_readers_agreement_on_findings_and_regions() {
    use FindingType::*;
    let all = vec![
        annotation("a", "1.1", NoduleMass, Some([10.0, 10.0, 20.0, 20.0])),
        annotation("b", "1.1", NoduleMass, Some([12.0, 10.0, 20.0, 20.0])),
        annotation("a", "1.2", Copd, None),
        annotation("b", "1.2", Normal, None),
        annotation("a", "1.3", NoduleMass, Some([50.0, 50.0, 10.0, 10.0])),
        annotation("b", "1.3", NoduleMass, Some([0.0, 0.0, 10.0, 10.0])),
        annotation("a", "1.9", Tuberculosis, None), // only a read it
    ];
    let pairs = agreement(&all);
    assert_eq!(pairs.len(), 1);
    let p = &pairs[0];
    assert_eq!(p.images, 3);
    assert_eq!(p.kappa["nodule-mass"], 1.0);
    assert!(p.kappa["copd"] < 0.5);
    assert!(
        !p.kappa.contains_key("tuberculosis"),
        "only on an image b did not read"
    );
    assert_eq!((p.matched_regions, p.regions_a, p.regions_b), (1, 2, 2));
    assert_eq!(p.lesion_f1, Some(0.5));
    assert!(p.mean_iou.unwrap() > 0.8);
}

#[test]
fn consensus_rules() {
    use FindingType::*;
    let a = annotation("a", "1.1", NoduleMass, Some([10.0, 10.0, 20.0, 20.0]));
    let b = annotation("b", "1.1", NoduleMass, Some([12.0, 10.0, 20.0, 20.0]));
    let c = annotation("c", "1.1", Copd, None);
    let all = [&a, &b, &c];
    let union = consensus(&all, Consensus::Union);
    assert_eq!(union.readers, 3);
    assert!(union.findings.contains(&NoduleMass) && union.findings.contains(&Copd));
    assert_eq!(union.regions.len(), 1);
    assert_eq!(union.regions[0].1, [11.0, 10.0, 20.0, 20.0]);
    let majority = consensus(&all, Consensus::Majority);
    assert!(majority.findings.contains(&NoduleMass) && !majority.findings.contains(&Copd));
    assert_eq!(majority.regions.len(), 1);
    let intersection = consensus(&all, Consensus::Intersection);
    assert!(intersection.findings.is_empty() && intersection.regions.is_empty());
}

#[test]
fn locations_are_checked_against_the_image() {
    let inside = Location::Box {
        x: 0.0,
        y: 0.0,
        width: 10.0,
        height: 10.0,
    };
    assert!(inside.check(10, 10).is_ok());
    let outside = Location::Box {
        x: 5.0,
        y: 0.0,
        width: 10.0,
        height: 10.0,
    };
    assert!(
        outside
            .check(10, 10)
            .unwrap_err()
            .to_string()
            .contains("outside the image")
    );
    let line = Location::Polygon(vec![[0.0, 0.0], [1.0, 1.0]]);
    assert!(line.check(10, 10).is_err());
    assert_eq!(FindingType::parse("COPD").unwrap(), FindingType::Copd);
    assert_eq!(FindingType::parse("tb").unwrap(), FindingType::Tuberculosis);
    assert!(FindingType::parse("flu").is_err());
}

/// An import with one bad row stores nothing; the same file without it
/// stores every row; a second version of an annotation keeps the first.
#[test]
fn imports_are_all_or_nothing_and_versioned() {
    use crate::queue::Priority;
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    // One stored image: a small DX from the shared test data.
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/dicom/misc/dx_thorax_small.dcm");
    let source = std::env::var_os("CHESTNODE_TEST_DATA")
        .map(|d| std::path::PathBuf::from(d).join("dicom/misc/dx_thorax_small.dcm"))
        .unwrap_or(source);
    let object = dicom_object::open_file(&source).unwrap();
    let sop = object
        .meta()
        .media_storage_sop_instance_uid()
        .trim_end_matches('\0')
        .to_owned();
    std::fs::copy(&source, dir.path().join("image.dcm")).unwrap();
    ledger
        .insert_with_job(
            crate::ledger::InstanceRecord {
                sop_instance_uid: sop.clone(),
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.1.1".into(),
                study_instance_uid: "1.2".into(),
                series_instance_uid: "1.2.3".into(),
                transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
                path: "image.dcm".into(),
                size_bytes: 1,
                calling_ae_title: "X".into(),
                received_at: 1,
                job_id: 0,
            },
            Priority::Medium,
        )
        .unwrap();
    let header = "sop_instance_uid,reader,finding,certainty,x,y,width,height\n";
    let good =
        format!("{sop},dr-a,nodule-mass,definite,10,10,20,20\n{sop},dr-b,copd,probable,,,,\n");
    let bad_rows = format!(
        "{good}{sop},dr-a,nodule-mass,definite,300,10,20,20\n1.2.999,dr-a,copd,possible,,,,\n{sop},dr-a,flu,possible,,,,\n"
    );
    let error = import(
        &ledger,
        dir.path(),
        ImportFormat::Csv,
        &format!("{header}{bad_rows}"),
        "op",
        5,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("3 bad row(s)"), "{error}");
    assert!(
        error.contains("line 4") && error.contains("outside the image"),
        "{error}"
    );
    assert!(
        error.contains("line 5") && error.contains("no stored image"),
        "{error}"
    );
    assert!(
        error.contains("line 6") && error.contains("unknown finding"),
        "{error}"
    );
    assert!(
        current_all(&ledger).unwrap().is_empty(),
        "nothing half-imported"
    );

    let unknown = import(
        &ledger,
        dir.path(),
        ImportFormat::Csv,
        "sop_instance_uid,finding,certainty,colour\n",
        "op",
        5,
    );
    assert!(unknown.unwrap_err().to_string().contains("unknown column"));

    let done = import(
        &ledger,
        dir.path(),
        ImportFormat::Csv,
        &format!("{header}{good}"),
        "op",
        5,
    )
    .unwrap();
    assert_eq!((done.annotations, done.images), (2, 1));
    let stored = current_for_image(&ledger, &sop).unwrap();
    assert_eq!(stored.len(), 2);
    let nodule = stored
        .iter()
        .find(|a| a.finding == FindingType::NoduleMass)
        .unwrap();

    // A JSON correction of the nodule is its version 2; the first stays.
    let json = format!(
        r#"[{{"id":"{}","sop_instance_uid":"{sop}","reader":"dr-a","finding":"nodule-mass","certainty":"probable","location":{{"polygon":[[10,10],[30,10],[20,30]]}}}}]"#,
        nodule.id
    );
    import(&ledger, dir.path(), ImportFormat::Json, &json, "op", 6).unwrap();
    let versions = ledger.annotations().for_image(&sop).unwrap();
    assert_eq!(versions.len(), 3);
    let now = current_for_image(&ledger, &sop).unwrap();
    let nodule = now
        .iter()
        .find(|a| a.finding == FindingType::NoduleMass)
        .unwrap();
    assert_eq!((nodule.version, nodule.certainty), (2, Certainty::Probable));
}
