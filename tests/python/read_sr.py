"""Reads a chestnode SR back with highdicom and prints what it found as JSON.

Used by tests/it/peers/report_objects.rs: an independent implementation must see a
TID 1500 Imaging Measurement Report with our image-level result and one
planar ROI group per localised finding.
"""
import json
import sys

import highdicom as hd


def code(concept):
    return None if concept is None else [concept.value, concept.scheme_designator, concept.meaning]


def main(path):
    sr = hd.sr.srread(path)
    report = sr.content
    out = {
        "sop_class": str(sr.SOPClassUID),
        "template": sr.ContentTemplateSequence[0].TemplateIdentifier,
        "title": code(hd.sr.CodedConcept.from_dataset(sr.ConceptNameCodeSequence[0])),
        "image_groups": [],
        "roi_groups": [],
    }
    for group in report.get_image_measurement_groups():
        out["image_groups"].append({
            "tracking_identifier": group.tracking_identifier,
            "tracking_uid": str(group.tracking_uid),
            "finding": code(group.finding_type),
            "measurements": [
                {"name": code(m.name), "value": float(m.value), "unit": code(m.unit)}
                for m in group.get_measurements()
            ],
        })
    for group in report.get_planar_roi_measurement_groups():
        roi = group.roi
        out["roi_groups"].append({
            "tracking_identifier": group.tracking_identifier,
            "tracking_uid": str(group.tracking_uid),
            "finding": code(group.finding_type),
            "category": code(group.finding_category),
            "sites": [code(site.value) for site in group.finding_sites],
            "graphic_type": roi.graphic_type.value,
            "points": roi.value.tolist(),
            "source": str(roi.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
                          if hasattr(roi, "ReferencedSOPSequence")
                          else roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID),
            "measurements": [
                {"name": code(m.name), "value": float(m.value), "unit": code(m.unit)}
                for m in group.get_measurements()
            ],
        })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
