//! Whole objects: an image and the SR and GSPS that refer to it, dates
//! a month apart, and the objects that must be excluded or cleaned.

use dicom_core::{
    DataElement, PrimitiveValue, Tag, VR,
    value::{PixelFragmentSequence, Value},
};
use dicom_object::{DefaultDicomObject, InMemDicomObject, mem::InMemElement};

use super::*;

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
            text(
                Tag(0x0040, 0xA160),
                VR::UT,
                "Nodule, seen with Doejohn on 2021-01-01, MRN 88412345",
            ),
        ])],
    );
    let sr = file(vec![
        text(Tag(0x0008, 0x0016), VR::UI, "1.2.840.10008.5.1.4.1.1.88.34"),
        text(Tag(0x0008, 0x0018), VR::UI, "1.2.826.0.1.3680043.8.498.9"),
        text(Tag(0x0008, 0x0023), VR::DA, "20210102"),
        text(Tag(0x0010, 0x0010), VR::PN, "Doejohn^Janet"),
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
    assert_eq!(
        find(&sr, &[(0x0040, 0xA730), (0x0040, 0xA160)]),
        "Nodule, seen with on , MRN"
    );

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
    let us = |t, v: u16| DataElement::new(Tag(0x6002, t), VR::US, PrimitiveValue::from(v));
    let embedded = with(image("20210101"), vec![us(0x0010, 4), us(0x0102, 15)]);
    let cleaning = DeidOptions {
        clean_pixel_regions: vec![PixelRegion {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
        }],
        ..DeidOptions::default()
    };
    assert_eq!(
        excluded(&embedded, &cleaning),
        Exclusion::OverlayInPixelData
    );
    // with regions cleaned, a plane overlay goes with its whole group
    let plane = with(overlay, vec![us(0x0010, 4)]);
    let plane = with(
        plane,
        vec![DataElement::new(
            Tag(0x6002, 0x3000),
            VR::OW,
            PrimitiveValue::U8(vec![0; 8].into()),
        )],
    );
    let out = deidentify(&plane, &patient(), &remapper(), &cleaning)
        .unwrap()
        .object;
    assert!(out.iter().all(|e| e.tag().0 & 0xFF00 != 0x6000));
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

#[test]
fn options_are_described_for_the_report() {
    assert_eq!(
        DeidOptions::default().describe(),
        [
            "Basic Application Level Confidentiality Profile",
            "Retain Longitudinal Temporal Information with Modified Dates",
            "Retain Patient Characteristics",
            "Clean Descriptors",
        ]
    );
    let options = DeidOptions {
        retain_device_identity: true,
        clean_pixel_regions: vec![PixelRegion {
            x: 0,
            y: 0,
            width: 10,
            height: 10,
        }],
        ..all_off()
    };
    assert_eq!(
        options.describe(),
        [
            "Basic Application Level Confidentiality Profile",
            "Retain Device Identity",
            "Clean Pixel Data (1 region)",
        ]
    );
    let json = serde_json::to_string(&options).unwrap();
    assert_eq!(serde_json::from_str::<DeidOptions>(&json).unwrap(), options);
}
