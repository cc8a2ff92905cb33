#!/usr/bin/env python3
"""Side-by-side PNG of lesions inserted into real radiographs, for checking by eye.

Each row: the real background (as the model sees it: centre-cropped square), the same film
with the inserted findings, and a zoom of each (the background and the inserted film around
the first finding), with the finding's type, size, margin and overlap tags.

Usage: side_by_side.py INSERTED_DATASET CORPUS_DATASET OUT.png [N_ROWS] [TYPE ...]
Set SOURCE=name to take only films of that corpus source. Needs dcmj2pnm (DCMTK) and Pillow.
"""
import glob, json, os, subprocess, sys, tempfile
from PIL import Image, ImageDraw

inserted, corpus, out = sys.argv[1:4]
rows_wanted = int(sys.argv[4]) if len(sys.argv) > 4 else 6
types = set(sys.argv[5:]) or {"nodule", "mass"}
tmp = tempfile.mkdtemp()

def render(dcm):
    png = os.path.join(tmp, "x.png")
    subprocess.run(["dcmj2pnm", "--write-png", "--use-window", "1", dcm, png], check=True, capture_output=True)
    return Image.open(png).convert("L")

def square(img, size):
    side = min(img.size)
    left, top = (img.size[0] - side) // 2, (img.size[1] - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size))

rows, seen = [], set()
for label_path in sorted(glob.glob(os.path.join(inserted, "labels", "*.json"))):
    label = json.load(open(label_path))
    if os.environ.get("SOURCE") and label.get("background_source") != os.environ["SOURCE"]:
        continue
    found = [f for f in label["findings"] if f["type"] in types]
    if not found:
        continue
    f = found[0]
    key = (f["type"], f.get("margin"), tuple(t for t in f["tags"] if t.startswith("overlaps")))
    if key in seen and len(rows) < rows_wanted // 2:
        continue
    seen.add(key)
    size = label["rows"]
    after = render(os.path.join(inserted, label["image"])).resize((size, size))
    before = square(render(os.path.join(corpus, "images", label["background"])), size)
    x0, y0, x1, y1 = f["box"]
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    half = min(max(40, int(1.5 * max(x1 - x0, y1 - y0))), size // 2)
    zoom = (cx - half, cy - half, cx + half, cy + half)
    tile = 256
    row = Image.new("L", (4 * tile, tile + 18), 0)
    for k, img in enumerate([before, after, before.crop(zoom), after.crop(zoom)]):
        row.paste(img.resize((tile, tile)), (k * tile, 18))
    text = f'{os.path.basename(label_path)}: {f["type"]} {f.get("diameter_mm", 0):.0f} mm {f.get("margin", "")}' \
           f'{" calcified" if f.get("calcified") else ""} {" ".join(t for t in f["tags"] if t.startswith("overlaps") or t == "free_lung")}'
    ImageDraw.Draw(row).text((4, 3), text, fill=255)
    rows.append(row)
    if len(rows) >= rows_wanted:
        break
sheet = Image.new("L", (rows[0].width, sum(r.height for r in rows)))
y = 0
for r in rows:
    sheet.paste(r, (0, y))
    y += r.height
sheet.save(out)
print(f"wrote {out} ({len(rows)} rows)")
