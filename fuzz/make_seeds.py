#!/usr/bin/env python3
"""Writes the small synthetic seed corpus under tests/fuzz_corpus/<target>/.

Every seed is built here from the standard's encodings (PS3.5, PS3.7,
PS3.8), byte by byte, with the standard library only (Pillow, if present,
adds a tiny JPEG baseline image). Seeds are named seed-*; the regression
test expects each of them to be accepted, so a seed that stops parsing is
noticed. Run from anywhere: python3 fuzz/make_seeds.py
"""

import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fuzz_corpus"

VERIFICATION = "1.2.840.10008.1.1"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
# Index of each transfer syntax in chestnode's scp::contexts::TRANSFER_SYNTAXES:
# the first byte of a "received" object seed.
TS_INDEX = {"explicit": 0, "implicit": 1, "deflate": 2, "jpeg_baseline": 3, "rle": 14}


def even(value: bytes, pad: bytes = b"\0") -> bytes:
    return value + pad if len(value) % 2 else value


# --- Upper layer (PS3.8 §9.3) -------------------------------------------------


def item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def associate_rq() -> bytes:
    header = struct.pack(">HH", 1, 0) + b"CHESTNODE".ljust(16) + b"MODALITY".ljust(16)
    header += bytes(32)
    body = item(0x10, b"1.2.840.10008.3.1.1.1")
    for pc_id, syntax in ((1, VERIFICATION), (3, DX)):
        pc = bytes([pc_id, 0, 0, 0]) + item(0x30, syntax.encode())
        pc += item(0x40, IMPLICIT.encode()) + item(0x40, EXPLICIT.encode())
        body += item(0x20, pc)
    user = item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4.5")
    user += item(0x55, b"FUZZSEED")
    body += item(0x50, user)
    return pdu(0x01, header + body)


def pdv(pc_id: int, control: int, data: bytes) -> bytes:
    return struct.pack(">I", len(data) + 2) + bytes([pc_id, control]) + data


# --- Data sets ----------------------------------------------------------------

LONG_VRS = {b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"}


def explicit(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    value = even(value, b" " if vr in (b"CS", b"DS", b"IS", b"LO", b"PN", b"SH", b"DA", b"TM") else b"\0")
    if vr in LONG_VRS:
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def implicit(group: int, element: int, _vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HHI", group, element, len(value)) + value


def us(value: int) -> bytes:
    return struct.pack("<H", value)


def command(fields) -> bytes:
    body = b"".join(implicit(0, e, b"", even(v)) for e, v in fields)
    return implicit(0, 0, b"", struct.pack("<I", len(body))) + body


def echo_rq() -> bytes:
    return command([(0x0002, VERIFICATION.encode()), (0x0100, us(0x30)), (0x0110, us(1)), (0x0800, us(0x101))])


def store_rq() -> bytes:
    return command([
        (0x0002, DX.encode()), (0x0100, us(1)), (0x0110, us(2)), (0x0700, us(0)),
        (0x0800, us(0)), (0x1000, b"1.2.3.4"),
    ])


def store_rsp() -> bytes:
    return command([
        (0x0002, DX.encode()), (0x0100, us(0x8001)), (0x0120, us(2)), (0x0800, us(0x101)),
        (0x0900, us(0xA700)), (0x0902, b"disk below watermark"), (0x1000, b"1.2.3.4"),
    ])


def header_elements(enc, photometric=b"MONOCHROME2", rows=8, columns=8, bits=16):
    stored = 12 if bits == 16 else 8
    return b"".join([
        enc(0x0008, 0x0016, b"UI", DX.encode()),
        enc(0x0008, 0x0018, b"UI", b"1.2.3.4"),
        enc(0x0008, 0x0060, b"CS", b"DX"),
        enc(0x0010, 0x0010, b"PN", b"Seed^Fuzz"),
        enc(0x0010, 0x0020, b"LO", b"FUZZ01"),
        enc(0x0018, 0x0015, b"CS", b"CHEST"),
        enc(0x0018, 0x1164, b"DS", b"0.2\\0.2"),
        enc(0x0018, 0x5101, b"CS", b"PA"),
        enc(0x0020, 0x000D, b"UI", b"1.2.3.4.1"),
        enc(0x0020, 0x000E, b"UI", b"1.2.3.4.2"),
        enc(0x0028, 0x0002, b"US", us(1)),
        enc(0x0028, 0x0004, b"CS", photometric),
        enc(0x0028, 0x0010, b"US", us(rows)),
        enc(0x0028, 0x0011, b"US", us(columns)),
        enc(0x0028, 0x0100, b"US", us(bits)),
        enc(0x0028, 0x0101, b"US", us(stored)),
        enc(0x0028, 0x0102, b"US", us(stored - 1)),
        enc(0x0028, 0x0103, b"US", us(0)),
    ])


def ramp(rows=8, columns=8, bits=16) -> bytes:
    if bits == 8:
        return bytes((r * columns + c) * 4 % 256 for r in range(rows) for c in range(columns))
    return b"".join(us((r * columns + c) * 64 % 4096) for r in range(rows) for c in range(columns))


def windowed(enc) -> bytes:
    return enc(0x0028, 0x1050, b"DS", b"2048") + enc(0x0028, 0x1051, b"DS", b"4096")


def native(enc) -> bytes:
    pixels = ramp()
    return header_elements(enc) + windowed(enc) + enc(0x7FE0, 0x0010, b"OW", pixels)


def lut_item(enc, first: int, data: list) -> bytes:
    body = enc(0x0028, 0x3002, b"US", b"".join(us(v) for v in (len(data), first, 16)))
    body += enc(0x0028, 0x3006, b"OW", b"".join(us(v) for v in data))
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body


def with_luts() -> bytes:
    enc = explicit
    lut = lut_item(enc, 0, [min(4095, v * 17) for v in range(256)])
    voi = lut_item(enc, 0, [v * 16 for v in range(256)])
    seq = lambda tag, items: struct.pack("<HH2sHI", 0x0028, tag, b"SQ", 0, 0xFFFFFFFF) + items + struct.pack(
        "<HHI", 0xFFFE, 0xE0DD, 0)
    elements = header_elements(enc, photometric=b"MONOCHROME1")
    elements += seq(0x3000, lut) + seq(0x3010, voi)
    elements += enc(0x0028, 0x0120, b"US", us(0))
    return elements + enc(0x7FE0, 0x0010, b"OW", ramp())


def encapsulated(enc, frame: bytes) -> bytes:
    items = struct.pack("<HHI", 0xFFFE, 0xE000, 0)  # empty basic offset table
    items += struct.pack("<HHI", 0xFFFE, 0xE000, len(even(frame))) + even(frame)
    items += struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF) + items


def packbits(data: bytes) -> bytes:
    out = b""
    for start in range(0, len(data), 128):
        chunk = data[start:start + 128]
        out += bytes([len(chunk) - 1]) + chunk
    return out


def rle() -> bytes:
    pixels = ramp()
    high = bytes(pixels[1::2])
    low = bytes(pixels[0::2])
    segments = [packbits(high), packbits(low)]
    offsets = [64, 64 + len(segments[0])]
    frame = struct.pack("<16I", 2, *offsets, *([0] * 13)) + b"".join(segments)
    return header_elements(explicit) + windowed(explicit) + encapsulated(explicit, frame)


def jpeg_baseline():
    try:
        from PIL import Image
    except ImportError:
        return None
    import io
    image = Image.frombytes("L", (8, 8), ramp(bits=8))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return header_elements(explicit, bits=8) + encapsulated(explicit, out.getvalue())


def part10(data_set: bytes, ts: str = EXPLICIT) -> bytes:
    meta = b"".join([
        explicit(0x0002, 0x0001, b"OB", b"\0\1"),
        explicit(0x0002, 0x0002, b"UI", DX.encode()),
        explicit(0x0002, 0x0003, b"UI", b"1.2.3.4"),
        explicit(0x0002, 0x0010, b"UI", ts.encode()),
        explicit(0x0002, 0x0012, b"UI", b"1.2.3.4.99"),
    ])
    group_length = explicit(0x0002, 0x0000, b"UL", struct.pack("<I", len(meta)))
    return bytes(128) + b"DICM" + group_length + meta + data_set


def received(ts: str, data_set: bytes) -> bytes:
    return bytes([TS_INDEX[ts]]) + data_set


def deflated(data_set: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data_set) + compressor.flush()


def main():
    echo = pdu(0x04, pdv(1, 0x03, echo_rq()))
    store_cmd = store_rq()
    store = pdu(0x04, pdv(3, 0x01, store_cmd[:20]) + pdv(3, 0x03, store_cmd[20:]))
    store += pdu(0x04, pdv(3, 0x00, native(implicit)[:40]) + pdv(3, 0x02, native(implicit)[40:]))
    release = pdu(0x05, bytes(4))
    seeds = {
        "pdu": {
            "seed-associate-rq.bin": associate_rq(),
            "seed-echo-then-release.bin": echo + release,
            "seed-store-then-release.bin": store + release,
            "seed-abort.bin": pdu(0x07, bytes([0, 0, 2, 0])),
        },
        "dimse_command": {
            "seed-echo-rq.bin": echo_rq(),
            "seed-store-rq.bin": store_cmd,
            "seed-store-rsp.bin": store_rsp(),
        },
    }
    objects = {
        "seed-explicit.bin": received("explicit", native(explicit)),
        "seed-implicit.bin": received("implicit", native(implicit)),
        "seed-deflate.bin": received("deflate", deflated(native(explicit))),
        "seed-rle.bin": received("rle", rle()),
        "seed-luts.bin": received("explicit", with_luts()),
        "seed-part10.dcm": part10(native(explicit)),
    }
    jpeg = jpeg_baseline()
    if jpeg is not None:
        objects["seed-jpeg-baseline.bin"] = received("jpeg_baseline", jpeg)
    seeds["dataset"] = objects
    seeds["pixel_pipeline"] = objects
    for target, files in seeds.items():
        directory = ROOT / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)
            print(f"{directory / name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
