#!/usr/bin/env python3
"""Drives chestnode's Storage SCP with pynetdicom, as a field client did.

Sends C-STOREs of a ~1 MB uncompressed image whose data set's SOP Instance
UID differs from the Affected SOP Instance UID in the command (pynetdicom,
sending chunked from a file, takes the command's UIDs from the file's meta
information), with a maximum PDU length of 16,382, then one good C-STORE. Prints
one JSON object: each store's status (null when no response came back
within the DIMSE timeout) and how long it took.

usage: store_mismatched.py PORT COUNT ASSOCIATIONS DIMSE_TIMEOUT_S WORKDIR
"""

import json
import sys
import time
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config

# Send data sets straight from their files, command UIDs from the meta
# information: the only way pynetdicom sends a data set that contradicts its
# command, as the field client did.
_config.STORE_SEND_CHUNKED_DATASET = True

DX = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
ROWS, COLUMNS = 1024, 512  # 16-bit: 1 MiB of pixel data


def write_instance(path: Path, *, mismatched: bool) -> None:
    """A DX image; when `mismatched`, its meta header names another instance."""
    ds = Dataset()
    ds.SOPClassUID = DX
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.PatientID = "PYNETDICOM-TEST"
    ds.Rows, ds.Columns = ROWS, COLUMNS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(256)) * (ROWS * COLUMNS * 2 // 256)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    if mismatched:
        # Written again as it stands: enforcing the file format would copy
        # the data set's UID back into the meta information.
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.preamble = b"\0" * 128
        ds.save_as(path, enforce_file_format=False)


def store(assoc, path: Path) -> dict:
    started = time.monotonic()
    status = assoc.send_c_store(path)
    elapsed = time.monotonic() - started
    value = int(status.Status) if "Status" in status else None
    return {"status": value, "seconds": round(elapsed, 3)}


def main() -> int:
    port, count, associations = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    dimse_timeout, workdir = float(sys.argv[4]), Path(sys.argv[5])
    bad = workdir / "mismatched.dcm"
    good = workdir / "good.dcm"
    write_instance(bad, mismatched=True)
    write_instance(good, mismatched=False)

    ae = AE(ae_title="PYNETDICOM")
    ae.maximum_pdu_size = 16382
    ae.dimse_timeout = dimse_timeout
    ae.acse_timeout = 30
    ae.network_timeout = dimse_timeout
    ae.add_requested_context(DX, ExplicitVRLittleEndian)

    result = {"mismatched": [], "good": None, "associations": []}
    per_association = -(-count // associations)
    sent = 0
    while sent < count:
        assoc = ae.associate("127.0.0.1", port, ae_title="CHESTNODE")
        if not assoc.is_established:
            result["associations"].append("not established")
            break
        n = min(per_association, count - sent)
        for _ in range(n):
            result["mismatched"].append(store(assoc, bad))
            sent += 1
            if not assoc.is_established:
                break
        if assoc.is_established:
            assoc.release()
            result["associations"].append("released")
        else:
            result["associations"].append("aborted")

    assoc = ae.associate("127.0.0.1", port, ae_title="CHESTNODE")
    if assoc.is_established:
        result["good"] = store(assoc, good)
        assoc.release()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
