//! Tests for the de-identification: every row of Table E.1-1 under the
//! hospital's options and with every option off, UID consistency across
//! an image and the SR/GSPS that refer to it, date intervals, and the
//! exclusions.

use dicom_core::{
    DataDictionary, DataElement, Length, PrimitiveValue, Tag, VR,
    dictionary::VirtualVr,
    header::Header,
    value::{DataSetSequence, PixelFragmentSequence, Value},
};
use dicom_object::{
    DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject, StandardDataDictionary,
    mem::InMemElement,
};

use super::profile::{Row, profile};
use super::*;

const OFFSET: i32 = -30;
const IMAGE_UID: &str = "1.2.826.0.1.3680043.8.498.1";
const STUDY_UID: &str = "1.2.826.0.1.3680043.8.498.2";
const SERIES_UID: &str = "1.2.826.0.1.3680043.8.498.3";
const CR: &str = "1.2.840.10008.5.1.4.1.1.1";
/// A sequence the table does not list, to carry a nested copy of the rows.
const CARRIER: Tag = Tag(0x0054, 0x0220);

fn patient() -> PatientKey {
    PatientKey {
        research_id: "RID-0042".into(),
        date_offset_days: OFFSET,
    }
}

fn remapper() -> UidRemapper {
    UidRemapper::new([42; 32])
}

fn all_off() -> DeidOptions {
    DeidOptions {
        retain_longitudinal_modified_dates: false,
        retain_patient_characteristics: false,
        clean_descriptors: false,
        retain_device_identity: false,
        clean_pixel_regions: Vec::new(),
    }
}

fn file(elements: Vec<InMemElement>) -> DefaultDicomObject {
    InMemDicomObject::from_element_iter(elements)
        .with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1"))
        .unwrap()
}

fn text(tag: Tag, vr: VR, value: &str) -> InMemElement {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> InMemElement {
    DataElement::new(
        tag,
        VR::SQ,
        Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
    )
}

fn item(elements: Vec<InMemElement>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

fn strings(object: &InMemDicomObject, tag: Tag) -> Vec<String> {
    let element = object.get(tag).unwrap_or_else(|| panic!("{tag} missing"));
    element
        .value()
        .to_multi_str()
        .map(|v| {
            v.iter()
                .map(|s| s.trim_end_matches('\0').trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn one(object: &InMemDicomObject, tag: Tag) -> String {
    strings(object, tag).join("\\")
}

/// The tag and VR a row is instantiated with, or `None` when it cannot be
/// (meta and command groups, VRs that depend on context).
fn instance(row: &Row) -> Option<(Tag, VR)> {
    let tag = match row.pattern {
        "50XXXXXX" => Tag(0x5000, 0x3000),
        _ => row.example_tag(),
    };
    if tag.0 <= 0x0002 || tag == Tag(0x0010, 0x0010) || tag == Tag(0x0010, 0x0020) {
        return None;
    }
    let vr = match StandardDataDictionary.by_tag(tag)?.vr {
        VirtualVr::Exact(vr) => vr,
        VirtualVr::Ox | VirtualVr::Px => VR::OB,
        _ => return None,
    };
    Some((tag, vr))
}

/// A distinctive value of `vr` for row `n`; text carries the patient's
/// surname so cleaning has something to remove.
fn value(n: usize, vr: VR) -> Option<Value<InMemDicomObject>> {
    let p = |v: PrimitiveValue| Some(Value::Primitive(v));
    match vr {
        VR::PN => p(format!("Row{n}^Person").into()),
        VR::LO | VR::SH | VR::LT | VR::ST | VR::UT | VR::UC => p(format!("T{n} DOEJOHN").into()),
        VR::CS => p(format!("CS{n}").into()),
        VR::AE => p(format!("AE{n}").into()),
        VR::UR => p(format!("http://h/{n}").into()),
        VR::AS => p("045Y".into()),
        VR::DA => p("20210315".into()),
        VR::DT => p("20210315101112.123+0100".into()),
        VR::TM => p("101112".into()),
        VR::DS => p("12.5".into()),
        VR::IS => p("123".into()),
        VR::UI => p(format!("1.2.3.4.{n}").into()),
        VR::US => p(PrimitiveValue::from(4321u16)),
        VR::SS => p(PrimitiveValue::from(-432i16)),
        VR::UL => p(PrimitiveValue::from(43210u32)),
        VR::SL => p(PrimitiveValue::from(-43210i32)),
        VR::UV => p(PrimitiveValue::from(43210u64)),
        VR::SV => p(PrimitiveValue::from(-43210i64)),
        VR::FL => p(PrimitiveValue::from(1.5f32)),
        VR::FD => p(PrimitiveValue::from(2.5f64)),
        VR::OB | VR::OW | VR::UN | VR::OF | VR::OD | VR::OL | VR::OV => {
            p(PrimitiveValue::U8(vec![1, 2, 3, 4].into()))
        }
        VR::AT => p(PrimitiveValue::Tags(vec![Tag(0x0010, 0x0010)].into())),
        VR::SQ => Some(Value::Sequence(DataSetSequence::new(
            vec![item(vec![text(
                Tag(0x0008, 0x0100),
                VR::SH,
                &format!("CODE{n}"),
            )])],
            Length::UNDEFINED,
        ))),
    }
}

/// Every instantiable row as (row, element).
fn table_elements() -> Vec<(&'static Row, InMemElement)> {
    profile()
        .rows()
        .iter()
        .enumerate()
        .filter_map(|(n, row)| {
            let (tag, vr) = instance(row)?;
            Some((row, DataElement::new(tag, vr, value(n, vr)?)))
        })
        .collect()
}

/// The expected action, derived from the row's codes by the documented
/// rules (written independently of `Row::action`).
fn expected(row: &Row, options: &DeidOptions, vr: VR) -> &'static str {
    let column = |on: bool, code: Option<&'static str>| if on { code } else { None };
    let codes = [
        column(
            options.retain_longitudinal_modified_dates,
            row.long_modif_dates,
        ),
        column(options.retain_patient_characteristics, row.patient_chars),
        column(options.retain_device_identity, row.device_id),
        column(options.clean_descriptors, row.clean_desc),
    ];
    if codes.contains(&Some("K")) {
        return "K";
    }
    if codes.contains(&Some("C")) {
        return "C";
    }
    let dated = matches!(vr, VR::DA | VR::DT | VR::TM);
    match (row.basic, dated) {
        ("X" | "X/D", _) => "X",
        ("Z" | "X/Z", _) | ("Z/D" | "X/Z/D", false) => "Z",
        ("Z/D" | "X/Z/D", true) | ("D", _) => "D",
        ("U" | "X/Z/U*", _) => "U",
        (other, _) => panic!("unexpected basic action {other} for {}", row.name),
    }
}

fn is_empty(element: &InMemElement) -> bool {
    match element.value() {
        Value::Sequence(s) => s.items().is_empty(),
        Value::Primitive(v) => v.to_multi_str().iter().all(|s| s.trim().is_empty()),
        Value::PixelSequence(_) => false,
    }
}

/// Checks one de-identified element against its row; returns a message
/// per mismatch.
fn check(
    row: &Row,
    original: &InMemElement,
    result: &InMemDicomObject,
    options: &DeidOptions,
    n: &str,
) -> Option<String> {
    let tag = original.tag();
    let vr = original.vr();
    let action = expected(row, options, vr);
    let out = result.get(tag);
    let dates_on = options.retain_longitudinal_modified_dates;
    let fail = |why: &str| {
        Some(format!(
            "{n} {} {tag} {vr:?} action {action}: {why}",
            row.name
        ))
    };
    let Some(out) = out else {
        return (action != "X").then(|| fail("removed"))?;
    };
    if action == "X" {
        return fail("not removed");
    }
    if action == "Z" {
        return (!is_empty(out)).then(|| fail("not empty"))?;
    }
    let before = original
        .value()
        .to_multi_str()
        .map(|v| v.join("\\"))
        .unwrap_or_default();
    let after = out
        .value()
        .to_multi_str()
        .map(|v| v.join("\\"))
        .unwrap_or_default();
    let ok = match vr {
        VR::SQ => matches!(out.value(), Value::Sequence(s) if s.items().len() == 1),
        VR::UI => after == remapper().remap(&before),
        VR::DA if dates_on => after == "20210213",
        VR::DT if dates_on => after == "20210213101112.123+0100",
        VR::DA | VR::DT if action != "D" => is_empty(out),
        _ => match action {
            "D" => {
                after != before && !after.is_empty()
                    || out
                        .value()
                        .primitive()
                        .is_some_and(|p| p.calculate_byte_len() == 0)
            }
            "K" => after == before,
            "C" if matches!(vr, VR::LO | VR::SH | VR::LT | VR::ST | VR::UT | VR::UC) => {
                !after.contains("DOEJOHN") && after.starts_with('T')
            }
            "C" | "U" => after == before,
            _ => false,
        },
    };
    (!ok).then(|| fail(&format!("{before:?} became {after:?}")))?
}

/// Every (tag, text value) in `object`, nested ones included.
fn collect(object: &InMemDicomObject, into: &mut Vec<(Tag, String)>) {
    for element in object.iter() {
        match element.value() {
            Value::Sequence(s) => s.items().iter().for_each(|i| collect(i, into)),
            v => into.extend(
                v.to_multi_str()
                    .iter()
                    .map(|s| (element.tag(), s.join("\\"))),
            ),
        }
    }
}

fn walk_whole_table(mut options: DeidOptions) {
    // overlay planes are table rows; without regions they exclude the object
    options.clean_pixel_regions = vec![PixelRegion {
        x: 0,
        y: 0,
        width: 1,
        height: 1,
    }];
    let rows = table_elements();
    assert!(rows.len() > 500, "only {} rows instantiated", rows.len());
    let mut elements: Vec<InMemElement> = rows.iter().map(|(_, e)| e.clone()).collect();
    let nested = item(elements.clone());
    assert!(profile().row(CARRIER).is_none());
    elements.push(seq(CARRIER, vec![nested]));
    elements.push(text(Tag(0x0010, 0x0010), VR::PN, "Doejohn^Janet"));
    elements.push(text(Tag(0x0010, 0x0020), VR::LO, "PID8841"));
    elements.push(text(Tag(0x0008, 0x0016), VR::UI, CR));
    elements.push(text(Tag(0x0009, 0x0010), VR::LO, "ACME PRIVATE"));
    elements.push(text(Tag(0x0009, 0x1001), VR::LO, "DOEJOHN PRIVATE"));
    let source = file(elements);

    let out = deidentify(&source, &patient(), &remapper(), &options).unwrap();
    let result: &InMemDicomObject = &out.object;
    let nested_out = match result.get(CARRIER).map(|e| e.value()) {
        Some(Value::Sequence(s)) => &s.items()[0],
        other => panic!("carrier sequence lost: {other:?}"),
    };
    let mut failures = Vec::new();
    for (row, original) in &rows {
        failures.extend(check(row, original, result, &options, "top"));
        failures.extend(check(row, original, nested_out, &options, "nested"));
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );

    assert_eq!(one(result, Tag(0x0010, 0x0010)), "RID-0042");
    assert_eq!(one(result, Tag(0x0010, 0x0020)), "RID-0042");
    assert!(result.get(Tag(0x0009, 0x0010)).is_none() && result.get(Tag(0x0009, 0x1001)).is_none());
    assert_eq!(one(result, Tag(0x0012, 0x0062)), "YES");
    assert_eq!(one(result, Tag(0x0008, 0x0016)), CR);
    // no original value survives except where an enabled option keeps it
    let mut values = Vec::new();
    collect(result, &mut values);
    for (tag, value) in values {
        let kept = profile()
            .row(tag)
            .is_some_and(|row| expected(row, &options, VR::LO) == "K");
        for secret in ["DOEJOHN", "Doejohn", "PID8841", "20210315", "1.2.3.4."] {
            assert!(
                kept || !value.contains(secret),
                "{secret} survived in {tag}"
            );
        }
    }
    assert!(
        out.removed > 100 && out.remapped_uids > 10,
        "{} {}",
        out.removed,
        out.remapped_uids
    );
}

#[test]
fn every_row_of_the_table_with_the_hospital_options() {
    let options = DeidOptions::default();
    walk_whole_table(options);
}

#[test]
fn every_row_of_the_table_with_every_option_off() {
    walk_whole_table(all_off());
}

fn image(study_date: &str) -> DefaultDicomObject {
    file(vec![
        text(Tag(0x0008, 0x0016), VR::UI, CR),
        text(Tag(0x0008, 0x0018), VR::UI, IMAGE_UID),
        text(Tag(0x0008, 0x0020), VR::DA, study_date),
        text(Tag(0x0008, 0x002A), VR::DT, "20210101083000-20210101093000"),
        text(Tag(0x0008, 0x1030), VR::LO, "CHEST PA Doejohn 2021-01-01"),
        text(Tag(0x0010, 0x0010), VR::PN, "Doejohn^Janet"),
        text(Tag(0x0010, 0x0020), VR::LO, "PID8841"),
        text(Tag(0x0020, 0x000D), VR::UI, STUDY_UID),
        text(Tag(0x0020, 0x000E), VR::UI, SERIES_UID),
    ])
}

fn reference(class: &str, instance: &str) -> InMemDicomObject {
    item(vec![
        text(Tag(0x0008, 0x1150), VR::UI, class),
        text(Tag(0x0008, 0x1155), VR::UI, instance),
    ])
}

#[test]
fn references_from_sr_and_gsps_follow_the_image() {
    let uids = remapper();
    let options = DeidOptions::default();
    let image = deidentify(&image("20210101"), &patient(), &uids, &options).unwrap();
    let new_image_uid = one(&image.object, Tag(0x0008, 0x0018));
    assert_ne!(new_image_uid, IMAGE_UID);
    assert_eq!(
        image.object.meta().media_storage_sop_instance_uid(),
        new_image_uid
    );
    assert_eq!(one(&image.object, Tag(0x0008, 0x0016)), CR);

    let evidence = seq(
        Tag(0x0040, 0xA375),
        vec![item(vec![
            text(Tag(0x0020, 0x000D), VR::UI, STUDY_UID),
            seq(
                Tag(0x0008, 0x1115),
                vec![item(vec![
                    text(Tag(0x0020, 0x000E), VR::UI, SERIES_UID),
                    seq(Tag(0x0008, 0x1199), vec![reference(CR, IMAGE_UID)]),
                ])],
            ),
        ])],
    );
    let content = seq(
        Tag(0x0040, 0xA730),
        vec![item(vec![
            text(Tag(0x0040, 0xA040), VR::CS, "IMAGE"),
            seq(Tag(0x0008, 0x1199), vec![reference(CR, IMAGE_UID)]),
        ])],
    );
    let sr = file(vec![
        text(Tag(0x0008, 0x0016), VR::UI, "1.2.840.10008.5.1.4.1.1.88.34"),
        text(Tag(0x0008, 0x0018), VR::UI, "1.2.826.0.1.3680043.8.498.9"),
        text(Tag(0x0008, 0x0023), VR::DA, "20210102"),
        text(Tag(0x0020, 0x000D), VR::UI, STUDY_UID),
        evidence,
        content,
    ]);
    let sr = deidentify(&sr, &patient(), &uids, &options).unwrap().object;
    let find = |o: &InMemDicomObject, path: &[(u16, u16)]| -> String {
        let mut at = o;
        for &(g, e) in &path[..path.len() - 1] {
            match at.get(Tag(g, e)).map(|x| x.value()) {
                Some(Value::Sequence(s)) => at = &s.items()[0],
                _ => panic!("no ({g:04X},{e:04X})"),
            }
        }
        let (g, e) = path[path.len() - 1];
        one(at, Tag(g, e))
    };
    let evidence_ref = find(
        &sr,
        &[
            (0x0040, 0xA375),
            (0x0008, 0x1115),
            (0x0008, 0x1199),
            (0x0008, 0x1155),
        ],
    );
    let content_ref = find(&sr, &[(0x0040, 0xA730), (0x0008, 0x1199), (0x0008, 0x1155)]);
    assert_eq!(evidence_ref, new_image_uid);
    assert_eq!(content_ref, new_image_uid);
    assert_eq!(
        find(&sr, &[(0x0040, 0xA730), (0x0008, 0x1199), (0x0008, 0x1150)]),
        CR
    );
    assert_eq!(
        one(&sr, Tag(0x0020, 0x000D)),
        one(&image.object, Tag(0x0020, 0x000D))
    );
    assert_eq!(one(&sr, Tag(0x0008, 0x0023)), "20201203");

    let gsps = file(vec![
        text(Tag(0x0008, 0x0016), VR::UI, "1.2.840.10008.5.1.4.1.1.11.1"),
        text(Tag(0x0008, 0x0018), VR::UI, "1.2.826.0.1.3680043.8.498.10"),
        seq(
            Tag(0x0008, 0x1115),
            vec![item(vec![
                text(Tag(0x0020, 0x000E), VR::UI, SERIES_UID),
                seq(Tag(0x0008, 0x1140), vec![reference(CR, IMAGE_UID)]),
            ])],
        ),
    ]);
    let gsps = deidentify(&gsps, &patient(), &uids, &options)
        .unwrap()
        .object;
    assert_eq!(
        find(
            &gsps,
            &[(0x0008, 0x1115), (0x0008, 0x1140), (0x0008, 0x1155)]
        ),
        new_image_uid
    );
    assert_eq!(
        find(&gsps, &[(0x0008, 0x1115), (0x0020, 0x000E)]),
        one(&image.object, Tag(0x0020, 0x000E))
    );
}

#[test]
fn dates_keep_their_intervals() {
    let uids = remapper();
    let options = DeidOptions::default();
    let first = deidentify(&image("20210101"), &patient(), &uids, &options)
        .unwrap()
        .object;
    let later = deidentify(&image("20210131"), &patient(), &uids, &options)
        .unwrap()
        .object;
    let date = |o: &DefaultDicomObject| {
        chrono::NaiveDate::parse_from_str(&one(o, Tag(0x0008, 0x0020)), "%Y%m%d").unwrap()
    };
    assert_eq!((date(&later) - date(&first)).num_days(), 30);
    assert_eq!(one(&first, Tag(0x0008, 0x0020)), "20201202");
    assert_eq!(
        one(&first, Tag(0x0008, 0x002A)),
        "20201202083000-20201202093000"
    );
    assert_eq!(one(&first, Tag(0x0028, 0x0303)), "MODIFIED");
    // clean descriptors: the surname and the date are gone, the rest stays
    assert_eq!(one(&first, Tag(0x0008, 0x1030)), "CHEST PA");
    let codes: Vec<String> = match first.get(Tag(0x0012, 0x0064)).unwrap().value() {
        Value::Sequence(s) => s
            .items()
            .iter()
            .map(|i| one(i, Tag(0x0008, 0x0100)))
            .collect(),
        _ => panic!("no code sequence"),
    };
    assert_eq!(codes, ["113100", "113105", "113107", "113108"]);

    let off = deidentify(&image("20210101"), &patient(), &uids, &all_off())
        .unwrap()
        .object;
    assert!(strings(&off, Tag(0x0008, 0x0020)).is_empty());
    assert!(off.get(Tag(0x0028, 0x0303)).is_none());
}

fn excluded(object: &DefaultDicomObject, options: &DeidOptions) -> Exclusion {
    match deidentify(object, &patient(), &remapper(), options) {
        Err(DeidError::Excluded(why)) => why,
        other => panic!("not excluded: {other:?}"),
    }
}

fn with(mut object: DefaultDicomObject, elements: Vec<InMemElement>) -> DefaultDicomObject {
    for e in elements {
        object.put(e);
    }
    object
}

#[test]
fn burned_in_secondary_capture_and_overlays_are_excluded() {
    let options = DeidOptions::default();
    let burned = with(
        image("20210101"),
        vec![text(Tag(0x0028, 0x0301), VR::CS, "YES")],
    );
    assert_eq!(excluded(&burned, &options), Exclusion::BurnedInAnnotation);
    let sc = with(
        image("20210101"),
        vec![text(
            Tag(0x0008, 0x0016),
            VR::UI,
            "1.2.840.10008.5.1.4.1.1.7",
        )],
    );
    assert_eq!(excluded(&sc, &options), Exclusion::SecondaryCapture);
    let overlay = with(
        image("20210101"),
        vec![DataElement::new(
            Tag(0x6000, 0x3000),
            VR::OW,
            PrimitiveValue::U8(vec![0; 8].into()),
        )],
    );
    assert_eq!(excluded(&overlay, &options), Exclusion::OverlayInPixelData);
}

fn pixels(object: DefaultDicomObject, data: Value<InMemDicomObject>) -> DefaultDicomObject {
    let us = |t, v: u16| DataElement::new(Tag(0x0028, t), VR::US, PrimitiveValue::from(v));
    with(
        object,
        vec![
            text(Tag(0x0028, 0x0301), VR::CS, "YES"),
            us(0x0002, 1),
            us(0x0010, 4),
            us(0x0011, 4),
            us(0x0100, 16),
            us(0x0101, 12),
            us(0x0103, 0),
            DataElement::new(Tag(0x7FE0, 0x0010), VR::OW, data),
        ],
    )
}

#[test]
fn clean_pixel_regions_blank_native_pixels_and_refuse_compressed_ones() {
    let options = DeidOptions {
        clean_pixel_regions: vec![PixelRegion {
            x: 1,
            y: 0,
            width: 2,
            height: 1,
        }],
        ..DeidOptions::default()
    };
    let native = pixels(
        image("20210101"),
        Value::Primitive(PrimitiveValue::U16(vec![7; 16].into())),
    );
    let out = deidentify(&native, &patient(), &remapper(), &options)
        .unwrap()
        .object;
    match out.get(Tag(0x7FE0, 0x0010)).unwrap().value() {
        Value::Primitive(PrimitiveValue::U16(v)) => {
            assert_eq!(&v[..4], &[7, 0, 0, 7]);
            assert!(v[4..].iter().all(|&p| p == 7));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(one(&out, Tag(0x0028, 0x0301)), "NO");
    let codes = format!("{:?}", out.get(Tag(0x0012, 0x0064)).unwrap());
    assert!(codes.contains("113101"));

    let compressed = pixels(
        image("20210101"),
        Value::PixelSequence(PixelFragmentSequence::new_fragments(vec![vec![1u8, 2]])),
    );
    assert!(matches!(
        excluded(&compressed, &options),
        Exclusion::PixelsNotCleanable(_)
    ));
    let sc = with(
        native,
        vec![text(
            Tag(0x0008, 0x0016),
            VR::UI,
            "1.2.840.10008.5.1.4.1.1.7.2",
        )],
    );
    assert_eq!(excluded(&sc, &options), Exclusion::SecondaryCapture);
}
