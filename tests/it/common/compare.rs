//! Semantic comparison of two DICOM files' data sets: same elements, same
//! value bytes, same items and fragments. Header lengths and VRs are not
//! compared, so an object received in implicit VR or deflated still equals
//! its explicit-VR original.

use std::path::Path;

use dicom_core::header::Header;
use dicom_core::value::Value;
use dicom_core::{DataElement, Tag};
use dicom_object::{InMemDicomObject, open_file};

const DATA_SET_TRAILING_PADDING: Tag = Tag(0xFFFC, 0xFFFC);

/// Panics with the first difference between the two files' data sets.
pub fn assert_same_data_set(original: &Path, received: &Path) {
    let a = open_file(original).unwrap_or_else(|e| panic!("{}: {e}", original.display()));
    let b = open_file(received).unwrap_or_else(|e| panic!("{}: {e}", received.display()));
    compare_objects(&a, &b, &original.display().to_string());
}

fn meaningful(o: &InMemDicomObject) -> Vec<&DataElement<InMemDicomObject>> {
    o.iter()
        .filter(|e| e.tag() != DATA_SET_TRAILING_PADDING)
        .collect()
}

fn compare_objects(a: &InMemDicomObject, b: &InMemDicomObject, context: &str) {
    // Data Set Trailing Padding carries no content (PS3.5 §7.8), and DCMTK
    // drops it when sending.
    let (a_elements, b_elements) = (meaningful(a), meaningful(b));
    let a_tags: Vec<_> = a_elements.iter().map(|e| e.tag()).collect();
    let b_tags: Vec<_> = b_elements.iter().map(|e| e.tag()).collect();
    if a_tags != b_tags {
        let only_a: Vec<_> = a_tags.iter().filter(|t| !b_tags.contains(t)).collect();
        let only_b: Vec<_> = b_tags.iter().filter(|t| !a_tags.contains(t)).collect();
        panic!(
            "{context}: element lists differ; only in original {only_a:?}, only in received {only_b:?}"
        );
    }
    for (x, y) in a_elements.iter().zip(b_elements.iter()) {
        let here = format!("{context} {}", x.tag());
        match (x.value(), y.value()) {
            (Value::Primitive(p), Value::Primitive(q)) => {
                let (p, q) = (p.to_bytes(), q.to_bytes());
                // An odd-length value (invalid DICOM) is padded to even
                // length by DCMTK on the way; that one byte is allowed.
                let padded = p.len() % 2 == 1 && q.len() == p.len() + 1 && q.starts_with(&p);
                assert!(
                    p == q || padded,
                    "{here}: values differ ({} vs {} bytes)",
                    p.len(),
                    q.len()
                );
            }
            (Value::Sequence(s), Value::Sequence(t)) => {
                assert_eq!(
                    s.items().len(),
                    t.items().len(),
                    "{here}: item counts differ"
                );
                for (i, (u, v)) in s.items().iter().zip(t.items()).enumerate() {
                    compare_objects(u, v, &format!("{here}[{i}]"));
                }
            }
            (Value::PixelSequence(s), Value::PixelSequence(t)) => {
                assert_eq!(
                    s.offset_table(),
                    t.offset_table(),
                    "{here}: offset tables differ"
                );
                assert!(s.fragments() == t.fragments(), "{here}: fragments differ");
            }
            _ => panic!("{here}: value kinds differ"),
        }
    }
}
