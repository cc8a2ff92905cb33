#!/usr/bin/env python3
"""Rebuild /work/corpus-extra or /work/corpus-extra2 (extra real chest radiographs) from local
git mirrors.

Every image and label comes out of the git objects of a pinned commit of a public
GitHub repository, read with `git --git-dir=<mirror> cat-file`. Nothing is downloaded.

Two corpora (`--corpus`), each a list of sources (see CORPORA):
  extra   JSRT nodules/non-nodules (224 px copies)          -> /work/corpus-extra
  extra2  Shenzhen + Montgomery TB/normal (299 px copies)   -> /work/corpus-extra2
          (also deduplicated against /work/corpus-extra)

Output (outside the repository, never committed):
  <out>/images/<source>/<name>.jpg   8-bit grey JPEG q90, longest side 512 px, Lanczos, aspect kept
  <out>/labels.csv                   cxr-train columns + patient_id + findings
  <out>/dedupe_report.csv            every candidate that was dropped, and why
  <out>/SHA256SUMS                   hash of every output file (to check that a rebuild is identical)
  <out>/README.md                    counts and caveats for this build

Rules enforced here (see scripts/corpus/README.md and docs/data-sources.md):
  * whole repositories listed as reserved in reserved-for-evaluation.txt are refused;
  * any file whose name is a reserved NIH ChestX-ray14 name, or whose NIH patient id
    (8-digit prefix) has a reserved image, is dropped;
  * content fingerprint (grey, 32x32 bilinear, zero mean / unit std, MSD < 0.05, plus
    centre-crop variants) against cxr-train, shared/data/cxr and within this corpus.

Usage:
  python3 scripts/corpus/build_extra_corpus.py [--corpus extra] \
      [--jsrt-images-mirror /work/.mirror/venkatasai3005+lung-segmentation-unet/repo] \
      [--jsrt-meta-mirror /work/.mirror/farhanxaidi+Programming_for_Big_Data/repo] \
      [--out /work/corpus-extra]
  python3 scripts/corpus/build_extra_corpus.py --corpus extra2 \
      [--tb-mirror /work/.mirror/PPROGER+fluorography-detection-of-a-disease-using-a-neural-network/repo] \
      [--dedupe-against /work/corpus-extra] [--out /work/corpus-extra2]
Requires Python 3, Pillow and numpy, and git.
"""
import argparse
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

# ---------------------------------------------------------------- constants
SHARED = "/work/shared/data"
LONG_SIDE = 512
JPEG_QUALITY = 90
MIN_SHORT_SIDE = 256          # cxr-train convention
FP_SIZE = 32
FP_MSD = 0.05
CROP_MARGINS = (0.04, 0.08, 0.12)

CXR_TRAIN_COLUMNS = ["file", "source", "label", "pediatric", "boxes", "original_size",
                     "license", "repo", "commit", "original_path", "nih_findings",
                     "nih_patient_id", "nih_view", "nih_age", "nih_sex"]
COLUMNS = CXR_TRAIN_COLUMNS + ["patient_id", "findings"]
LABELS = {"normal", "nodule", "tuberculosis", "emphysema", "pneumonia", "lung-opacity", "other"}

NIH_NAME = re.compile(r"^(\d{8})_(\d{3})\.png$", re.IGNORECASE)

# JSRT geometry: originals are 2048 x 2048, 0.175 mm pixel spacing; the metadata gives the
# nodule centre in that frame and the nodule size in mm.
JSRT_ORIG_PX = 2048
JSRT_MM_PER_PX = 0.175

SOURCES = {
    "jsrt_venkatasai": {
        "repo": "venkatasai3005/lung-segmentation-unet",
        "commit": "1fe31ab1e4d14a31b2acfb656535293ae1b113ee",
        "mirror_arg": "jsrt_images_mirror",
        "default_mirror": "/work/.mirror/venkatasai3005+lung-segmentation-unet/repo",
        "image_dir": "dataset/images/",
        # The copies are 224 x 224. They are below the cxr-train minimum (256) and are
        # kept on purpose (the only JSRT copy found); they are upscaled to 512.
        "allow_small": True,
        "license": ("no LICENSE file in repo; images are the JSRT Standard Digital Image "
                    "Database (Japanese Society of Radiological Technology), distributed by "
                    "JSRT for research/education use; redistribution terms not stated in repo"),
    },
}
# Shenzhen (CHNCXR_*) and Montgomery (MCUCXR_*) TB sets of the US National Library of Medicine,
# all 800 images as 299 x 299 RGB copies (aspect not kept). The folder gives the label and must
# agree with the file name's suffix (_1 = TB, _0 = normal).
TB_REPO = {
    "repo": "PPROGER/fluorography-detection-of-a-disease-using-a-neural-network",
    "commit": "fb8a6f3158f42e72770eca8c62a50eea491139ff",
    "mirror_arg": "tb_mirror",
    "default_mirror": "/work/.mirror/PPROGER+fluorography-detection-of-a-disease-using-a-neural-network/repo",
    "dirs": {"train_dir/Normal/": "normal", "val_dir/Normal/": "normal",
             "train_dir/Tuberculosis/": "tuberculosis", "val_dir/Tuberculosis/": "tuberculosis"},
}
_TB_LICENSE = ("no LICENSE file in repo (README is a title only); images are the NLM {} "
               "tuberculosis chest X-ray set (Jaeger et al. 2014), 299x299 copies; "
               "redistribution terms not stated in repo")
for _name, _prefix, _set in (("tb_shenzhen_pproger", "CHNCXR_", "Shenzhen"),
                             ("tb_montgomery_pproger", "MCUCXR_", "Montgomery County")):
    SOURCES[_name] = dict(TB_REPO, prefix=_prefix, allow_small=False, license=_TB_LICENSE.format(_set))

JSRT_META = {
    "repo": "farhanxaidi/Programming_for_Big_Data",
    "commit": "72b37d1fadfa48a43ba363a34e39640385a1c4c2",
    "mirror_arg": "jsrt_meta_mirror",
    "default_mirror": "/work/.mirror/farhanxaidi+Programming_for_Big_Data/repo",
    "path": "jsrt_metadata.csv",
}


# ---------------------------------------------------------------- git helpers
def git(mirror, *args, binary=False):
    out = subprocess.run(["git", "--git-dir", mirror, *args], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout
    return out if binary else out.decode("utf-8")


def git_dir(mirror):
    """A fetched mirror is either a bare git directory or a folder holding `.git`."""
    return os.path.join(mirror, ".git") if os.path.isdir(os.path.join(mirror, ".git")) else mirror


def check_commit(mirror, commit, repo):
    if not os.path.isdir(mirror):
        sys.exit(f"mirror for {repo} not found at {mirror}; fetch github:{repo} first")
    try:
        git(mirror, "cat-file", "-e", commit + "^{commit}")
    except subprocess.CalledProcessError:
        sys.exit(f"mirror {mirror} does not contain pinned commit {commit} of {repo}")


def ls_tree(mirror, commit, prefix):
    out = git(mirror, "ls-tree", "-r", "-l", commit, "--", prefix)
    rows = []
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        mode, typ, sha, size = meta.split()
        rows.append((path, sha, size))
    return sorted(rows)


def read_blob(mirror, sha):
    return git(mirror, "cat-file", "blob", sha, binary=True)


# ---------------------------------------------------------------- reserved list
def load_reserved(path):
    names, repos = set(), set()
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s:
                continue
            if s.startswith("#"):
                m = re.search(r"Whole repositories reserved:\s*(.*)", s)
                if m:
                    for r in m.group(1).split(","):
                        r = r.strip().rstrip(".")
                        if r:
                            repos.add(r.lower())
                continue
            names.add(s.lower())
    patients = {n[:8] for n in names if NIH_NAME.match(n)}
    # The brief names these two explicitly; keep them even if the file's wording changes.
    repos |= {"jrzech/reproduce-chexnet", "agchung/actualmed-covid-chestxray-dataset"}
    return names, patients, repos


def reserved_reason(basename, reserved_names, reserved_patients):
    b = basename.lower()
    if b in reserved_names:
        return "reserved NIH file name"
    m = NIH_NAME.match(b)
    if m and m.group(1) in reserved_patients:
        return "NIH patient has a reserved image"
    return None


# ---------------------------------------------------------------- images
def to_grey(im):
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = np.percentile(a, [0.1, 99.9])
        a = np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1) * 255.0
        return Image.fromarray(np.round(a).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA").convert("RGB")
    return im.convert("L")


def resize_long(im, long_side=LONG_SIDE):
    w, h = im.size
    s = long_side / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return im.resize((nw, nh), Image.LANCZOS), s


def fingerprint(im):
    a = np.asarray(im.convert("L").resize((FP_SIZE, FP_SIZE), Image.BILINEAR), dtype=np.float64)
    a = a - a.mean()
    sd = a.std()
    return (a / sd if sd > 0 else a).ravel()


def crop_variants(im):
    w, h = im.size
    out = []
    for m in CROP_MARGINS:
        dx, dy = round(w * m), round(h * m)
        out.append(im.crop((dx, dy, w - dx, h - dy)))
    return out


class FingerprintIndex:
    def __init__(self):
        self.keys, self.vecs = [], []

    def add(self, key, vec):
        self.keys.append(key)
        self.vecs.append(vec)

    def best(self, vec):
        if not self.vecs:
            return None, float("inf")
        m = np.asarray(self.vecs)
        d = ((m - vec) ** 2).mean(axis=1)
        i = int(np.argmin(d))
        return self.keys[i], float(d[i])


def add_corpus_to_index(idx, corpus_dir, tag):
    """Fingerprints every image listed in `<corpus_dir>/labels.csv`; returns how many."""
    n0 = len(idx.keys)
    with open(os.path.join(corpus_dir, "labels.csv")) as f:
        for row in csv.DictReader(f):
            with Image.open(os.path.join(corpus_dir, row["file"])) as im:
                idx.add(f"{tag}:" + row["file"], fingerprint(im))
    return len(idx.keys) - n0


def load_reference_index(cxr_train_dir, shared_cxr_dir, other_corpora=()):
    """cxr-train, shared/data/cxr and any other built corpora (e.g. corpus-extra for extra2).
    Returns the index and the image count per reference set, in that order."""
    idx = FingerprintIndex()
    counts = [("cxr-train", add_corpus_to_index(idx, cxr_train_dir, "cxr-train"))]
    n0 = len(idx.keys)
    for root, _, files in sorted(os.walk(shared_cxr_dir)):
        for fn in sorted(files):
            if fn.lower().endswith((".png", ".jpg", ".jpeg")):
                p = os.path.join(root, fn)
                with Image.open(p) as im:
                    idx.add("shared-cxr:" + os.path.relpath(p, shared_cxr_dir), fingerprint(to_grey(im)))
    counts.append(("shared/data/cxr", len(idx.keys) - n0))
    for d in other_corpora:
        tag = os.path.basename(os.path.normpath(d))
        counts.append((tag, add_corpus_to_index(idx, d, tag)))
    return idx, counts


# ---------------------------------------------------------------- JSRT
def parse_jsrt_meta(text):
    """jsrt_metadata.csv without header: study_id, subtlety, size_mm, age, sex, x, y,
    state, position, diagnosis (the Kaggle 'nodules-in-chest-xrays-jsrt' layout)."""
    rows = {}
    for rec in csv.reader(io.StringIO(text)):
        if not rec or not rec[0].strip():
            continue
        rec = [c.strip() for c in rec] + [""] * (10 - len(rec))
        sid = rec[0]
        if not re.match(r"^JPC(LN|NN)\d{3}\.png$", sid):
            raise ValueError(f"unexpected JSRT metadata row: {rec}")
        rows[sid] = {
            "subtlety": int(rec[1]) if rec[1] else None,
            "size_mm": float(rec[2]) if rec[2] else None,
            "age": int(rec[3]) if rec[3].isdigit() else None,
            "sex": rec[4],
            "x": int(rec[5]) if rec[5] else None,
            "y": int(rec[6]) if rec[6] else None,
            "state": rec[7],
            "position": rec[8],
            "diagnosis": rec[9],
        }
    if len(rows) != 247:
        raise ValueError(f"expected 247 JSRT metadata rows, got {len(rows)}")
    return rows


def jsrt_findings(meta, out_w, out_h):
    if meta["x"] is None:
        return []
    sx, sy = out_w / JSRT_ORIG_PX, out_h / JSRT_ORIG_PX
    r_px = (meta["size_mm"] / JSRT_MM_PER_PX) / 2.0
    x0 = max(0.0, (meta["x"] - r_px) * sx)
    y0 = max(0.0, (meta["y"] - r_px) * sy)
    x1 = min(float(out_w), (meta["x"] + r_px) * sx)
    y1 = min(float(out_h), (meta["y"] + r_px) * sy)
    box = [round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)]
    state = meta["state"].lower()
    malignant = True if state == "malignant" else False if state == "benign" else None
    return [{"type": "nodule", "box": box, "diameter_mm": meta["size_mm"],
             "subtlety": meta["subtlety"], "malignant": malignant}]


def jsrt_candidates(args):
    src = SOURCES["jsrt_venkatasai"]
    mirror = getattr(args, src["mirror_arg"])
    check_commit(mirror, src["commit"], src["repo"])
    mm = getattr(args, JSRT_META["mirror_arg"])
    check_commit(mm, JSRT_META["commit"], JSRT_META["repo"])
    meta_text = git(mm, "show", f"{JSRT_META['commit']}:{JSRT_META['path']}")
    meta = parse_jsrt_meta(meta_text)
    for path, sha, size in ls_tree(mirror, src["commit"], src["image_dir"]):
        base = os.path.basename(path)
        if base not in meta:
            continue
        m = meta[base]
        label = "nodule" if base.startswith("JPCLN") else "normal"
        if (label == "nodule") != (m["x"] is not None):
            raise ValueError(f"JSRT label/metadata mismatch for {base}")
        age = m["age"]
        yield {
            "source": "jsrt_venkatasai",
            "name": base.rsplit(".", 1)[0],
            "label": label,
            "pediatric": "unknown" if age is None else ("yes" if age < 18 else "no"),
            "license": src["license"],
            "repo": src["repo"],
            "commit": src["commit"],
            "original_path": path,
            "blob": (mirror, sha, size),
            "patient_id": base.rsplit(".", 1)[0],
            "allow_small": src["allow_small"],
            "findings_fn": (lambda w, h, m=m: jsrt_findings(m, w, h)),
        }


# ---------------------------------------------------------------- Shenzhen / Montgomery TB
TB_NAME = re.compile(r"^(CHNCXR|MCUCXR)_(\d{4})_([01])\.png$")


def tb_candidates(args):
    mirror = git_dir(getattr(args, TB_REPO["mirror_arg"]))
    check_commit(mirror, TB_REPO["commit"], TB_REPO["repo"])
    by_prefix = {s["prefix"]: name for name, s in SOURCES.items() if s.get("prefix")}
    seen = set()
    for folder, label in sorted(TB_REPO["dirs"].items()):
        for path, sha, size in ls_tree(mirror, TB_REPO["commit"], folder):
            base = os.path.basename(path)
            m = TB_NAME.match(base)
            if not m:
                raise ValueError(f"unexpected file in {folder}: {path}")
            if (label == "tuberculosis") != (m.group(3) == "1"):
                raise ValueError(f"folder label {label} disagrees with file name {path}")
            if base in seen:
                raise ValueError(f"{base} appears twice")
            seen.add(base)
            name = by_prefix[m.group(1) + "_"]
            src = SOURCES[name]
            yield {
                "source": name,
                "name": base.rsplit(".", 1)[0],
                "label": label,
                # The NLM sets may include children; this copy carries no age.
                "pediatric": "unknown",
                "license": src["license"],
                "repo": src["repo"],
                "commit": src["commit"],
                "original_path": path,
                "blob": (mirror, sha, size),
                # One image per patient in both sets: the study number is the patient.
                "patient_id": f"{m.group(1)}_{m.group(2)}",
                "allow_small": src["allow_small"],
                "findings_fn": lambda w, h: [],
            }


CORPORA = {
    "extra": {
        "out": "/work/corpus-extra",
        "candidates": lambda args: jsrt_candidates(args),
        "repos": [SOURCES["jsrt_venkatasai"]["repo"], JSRT_META["repo"]],
        "dedupe_against": [],
        "title": "corpus-extra: extra real chest radiographs (research use only)",
        "caveat": [
            "Caveat: the JSRT copies in the source repository are 224 x 224 (the JSRT originals are",
            "2048 x 2048, 0.175 mm/px). They were upscaled to 512 x 512, so they are blurrier than",
            "the rest of the corpus, and small nodules span only a few source pixels. Boxes are",
            "derived from the JSRT centre and size (mm), assuming a round nodule; they are not",
            "radiologist-drawn boxes.",
        ],
    },
    "extra2": {
        "out": "/work/corpus-extra2",
        "candidates": lambda args: tb_candidates(args),
        "repos": [TB_REPO["repo"]],
        "dedupe_against": ["/work/corpus-extra"],
        "title": "corpus-extra2: more real chest radiographs (research use only)",
        "caveat": [
            "Caveat: the Shenzhen and Montgomery copies in the source repository are 299 x 299 RGB",
            "(equal channels). The originals are near-square, up to 3000 x 3000 (Shenzhen), and",
            "4020 x 4892 or 4892 x 4020 (Montgomery); the copies were squashed to a square, so",
            "Montgomery films are distorted by about 20 % in one direction. They were upscaled to",
            "512 x 512. Labels are image level (TB / normal), no boxes. `normal` means the NLM",
            "'normal' class of a TB screening set. The two sets come from two hospitals with",
            "different scanners, and TB prevalence differs between them: stratify by source.",
        ],
    },
}


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="extra")
    ap.add_argument("--jsrt-images-mirror", default=SOURCES["jsrt_venkatasai"]["default_mirror"])
    ap.add_argument("--jsrt-meta-mirror", default=JSRT_META["default_mirror"])
    ap.add_argument("--tb-mirror", default=TB_REPO["default_mirror"])
    ap.add_argument("--out", help="default: /work/corpus-extra or /work/corpus-extra2")
    ap.add_argument("--dedupe-against", action="append",
                    help="another built corpus (folder with labels.csv) to deduplicate against; "
                         "default for extra2: /work/corpus-extra")
    ap.add_argument("--cxr-train", default=os.path.join(SHARED, "cxr-train"))
    ap.add_argument("--shared-cxr", default=os.path.join(SHARED, "cxr"))
    ap.add_argument("--reserved", default=os.path.join(SHARED, "reserved-for-evaluation.txt"))
    args = ap.parse_args()
    corpus = CORPORA[args.corpus]
    others = corpus["dedupe_against"] if args.dedupe_against is None else args.dedupe_against

    reserved_names, reserved_patients, reserved_repos = load_reserved(args.reserved)
    for r in corpus["repos"]:
        if r.lower() in reserved_repos:
            sys.exit(f"refusing: {r} is reserved for evaluation")

    out = os.path.abspath(args.out or corpus["out"])
    if any(os.path.realpath(out) == os.path.realpath(d) for d in others):
        sys.exit("refusing to write into a corpus this build deduplicates against")
    repo_root = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    if any(os.path.realpath(out) == r or os.path.realpath(out).startswith(r + os.sep)
           for r in ("/work/main", repo_root)):
        sys.exit("refusing to write images inside the repository")

    print("fingerprinting reference images ...", flush=True)
    ref, ref_counts = load_reference_index(args.cxr_train, args.shared_cxr, others)
    print("  " + ", ".join(f"{n} {tag}" for tag, n in ref_counts), flush=True)
    os.makedirs(out, exist_ok=True)
    for sub in ("images",):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    for fn in ("labels.csv", "dedupe_report.csv", "SHA256SUMS", "README.md"):
        if os.path.exists(os.path.join(out, fn)):
            os.remove(os.path.join(out, fn))

    own = FingerprintIndex()
    rows, dropped = [], []
    candidates = list(corpus["candidates"](args))
    candidates.sort(key=lambda c: (c["source"], c["name"]))
    for c in candidates:
        key = f"{c['source']}/{c['name']}"
        why = reserved_reason(os.path.basename(c["original_path"]), reserved_names, reserved_patients)
        if why:
            dropped.append((key, c["original_path"], why, ""))
            continue
        mirror, sha, size = c["blob"]
        if size == "-":
            dropped.append((key, c["original_path"], "blob absent from snapshot", ""))
            continue
        data = read_blob(mirror, sha)
        with Image.open(io.BytesIO(data)) as im0:
            im0.load()
            orig_w, orig_h = im0.size
            grey = to_grey(im0)
        if min(orig_w, orig_h) < MIN_SHORT_SIDE and not c["allow_small"]:
            dropped.append((key, c["original_path"], f"shorter side < {MIN_SHORT_SIDE}", ""))
            continue
        fp = fingerprint(grey)
        k, d = ref.best(fp)
        if d < FP_MSD:
            dropped.append((key, c["original_path"], "content duplicate of reference", f"{k} msd={d:.4f}"))
            continue
        hit = None
        for v in crop_variants(grey):
            k2, d2 = ref.best(fingerprint(v))
            if d2 < FP_MSD:
                hit = (k2, d2)
                break
        if hit:
            dropped.append((key, c["original_path"], "crop-variant match to reference",
                            f"{hit[0]} msd={hit[1]:.4f}"))
            continue
        k3, d3 = own.best(fp)
        if d3 < FP_MSD:
            dropped.append((key, c["original_path"], "duplicate inside this corpus", f"{k3} msd={d3:.4f}"))
            continue
        own.add(key, fp)

        small, _ = resize_long(grey)
        rel = f"images/{c['source']}/{c['name']}.jpg"
        dst = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        small.save(dst, "JPEG", quality=JPEG_QUALITY)
        w, h = small.size
        findings = c["findings_fn"](w, h)
        boxes = [f["box"] + [f["type"]] for f in findings if f.get("box")]
        assert c["label"] in LABELS
        rows.append({
            "file": rel, "source": c["source"], "label": c["label"], "pediatric": c["pediatric"],
            "boxes": json.dumps(boxes) if boxes else "",
            "original_size": f"{orig_w}x{orig_h}", "license": c["license"], "repo": c["repo"],
            "commit": c["commit"], "original_path": c["original_path"],
            "nih_findings": "", "nih_patient_id": "", "nih_view": "", "nih_age": "", "nih_sex": "",
            "patient_id": c["patient_id"], "findings": json.dumps(findings),
        })

    rows.sort(key=lambda r: r["file"])
    with open(os.path.join(out, "labels.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        wr.writeheader()
        wr.writerows(rows)
    with open(os.path.join(out, "dedupe_report.csv"), "w", newline="") as f:
        wr = csv.writer(f, lineterminator="\n")
        wr.writerow(["candidate", "original_path", "reason", "detail"])
        wr.writerows(sorted(dropped))

    counts = {}
    for r in rows:
        counts.setdefault(r["source"], {}).setdefault(r["label"], 0)
        counts[r["source"]][r["label"]] += 1
    write_readme(out, corpus, rows, dropped, counts, ref_counts)

    sums = []
    for root, _, files in os.walk(out):
        for fn in files:
            if fn == "SHA256SUMS":
                continue
            p = os.path.join(root, fn)
            with open(p, "rb") as f:
                sums.append((os.path.relpath(p, out), hashlib.sha256(f.read()).hexdigest()))
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        for rel, h in sorted(sums):
            f.write(f"{h}  {rel}\n")

    print(f"kept {len(rows)}, dropped {len(dropped)}")
    for s, lc in sorted(counts.items()):
        print(" ", s, dict(sorted(lc.items())))


def write_readme(out, corpus, rows, dropped, counts, ref_counts):
    refs = [f"{n} {tag} images" for tag, n in ref_counts]
    lines = [
        "# " + corpus["title"],
        "",
        "Built by `scripts/corpus/build_extra_corpus.py` in the chestnode repository from pinned git",
        "snapshots; see `docs/data-sources.md` there for sources, licences and caveats.",
        "Same image format as `shared/data/cxr-train` (8-bit grey JPEG q90, longest side 512, Lanczos).",
        "`labels.csv` has the cxr-train columns plus `patient_id` and `findings` (JSON list of",
        "`{type, box [x0,y0,x1,y1] in the 512 frame, diameter_mm, subtlety, malignant}`).",
        "",
        f"Images: {len(rows)}. Dropped candidates: {len(dropped)} (see `dedupe_report.csv`).",
        "Fingerprinted against " + ", ".join(refs[:-1]) + " and " + refs[-1] + ".",
        "",
        "| source | label | n |",
        "|---|---|---|",
    ]
    for s, lc in sorted(counts.items()):
        for l, n in sorted(lc.items()):
            lines.append(f"| {s} | {l} | {n} |")
    lines += [""] + corpus["caveat"] + [""]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
