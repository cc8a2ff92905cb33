#!/usr/bin/env python3
"""Convert innolitics/dicom-standard's standard/confidentiality_profile_attributes.json
(PS3.15 Table E.1-1) into src/research/deid/annex_e.tsv.

Usage: annex_e_tsv.py confidentiality_profile_attributes.json > src/research/deid/annex_e.tsv
The private-attributes row is left out: the code removes every odd group itself.
"""
import json
import sys

COLUMNS = [
    ("basicProfile", "basic"),
    ("rtnLongModifDatesOpt", "long_modif_dates"),
    ("rtnPatCharsOpt", "patient_chars"),
    ("rtnDevIdOpt", "device_id"),
    ("cleanDescOpt", "clean_desc"),
    ("rtnUIDsOpt", "uids"),
    ("rtnInstIdOpt", "institution_id"),
    ("rtnLongFullDatesOpt", "long_full_dates"),
    ("cleanStructContOpt", "clean_struct"),
    ("cleanGraphOpt", "clean_graph"),
]

rows = json.load(open(sys.argv[1]))
print("# PS3.15 Table E.1-1, from innolitics/dicom-standard (see docs/data-sources.md).")
print("# tag\t" + "\t".join(c for _, c in COLUMNS) + "\tname")
out = []
for r in rows:
    tag = r["tag"]
    if "ODD" in tag:
        continue
    tag = tag.strip("()").replace(",", "").upper()
    assert len(tag) == 8, tag
    cells = [r.get(k, "-") for k, _ in COLUMNS]
    out.append((tag, "\t".join([tag] + cells + [" ".join(r["name"].split())])))
for _, line in sorted(out):
    print(line)
