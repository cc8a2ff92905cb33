//! Walks every row of PS3.15 Table E.1-1: one object holds every
//! attribute the table lists (and a nested copy in a sequence), and each
//! must come out as the row's action under the options says.

use dicom_core::{
    DataDictionary, DataElement, Length, PrimitiveValue, Tag, VR,
    dictionary::VirtualVr,
    header::Header,
    value::{DataSetSequence, Value},
};
use dicom_object::{InMemDicomObject, StandardDataDictionary, mem::InMemElement};

use super::super::profile::{Row, profile};
use super::*;
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
    let dated = matches!(vr, VR::DA | VR::DT | VR::TM | VR::SQ);
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
