#!/usr/bin/env python3
"""Convert torchxrayvision's official DenseNet-121 weights to safetensors plus
a chestnode model manifest (TOML).

For users who already own the weights file: this tool never downloads
anything. Either point it at the file (the pickled whole-model .pt that
torchxrayvision stores in ~/.torchxrayvision/models_data/), or let it find the
file in that cache:

    python tools/convert_xrv_densenet.py --weights PATH/TO/file.pt --out weights/densenet121-res224-all
    python tools/convert_xrv_densenet.py --from-cache [--cache-dir DIR]  --out weights/densenet121-res224-all

Writes <out>.safetensors (every floating-point state_dict tensor as float32,
with torchxrayvision's / torchvision's key names, e.g.
features.denseblock1.denselayer1.norm1.weight; integer num_batches_tracked
counters are left out) and <out>.toml next to it.

Security: the official file is a pickle; loading it runs code from the file.
Only convert files you obtained from torchxrayvision's official release.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xrv_detweights as dw  # noqa: E402

# Datasets named in each DenseNet's torchxrayvision identifier / description.
DATASET_NAMES = {
    "nih": "NIH ChestX-ray14",
    "pc": "PadChest",
    "chex": "CheXpert (Stanford)",
    "mimic_ch": "MIMIC-CXR (CheXpert labeller)",
    "mimic_nb": "MIMIC-CXR (NegBio labeller)",
    "google": "Google's relabelled NIH ChestX-ray14 subset",
    "openi": "OpenI (Indiana University)",
    "rsna": "RSNA Pneumonia Detection Challenge (Kaggle)",
}
DATASETS_OF_MODEL = {
    "densenet121-res224-all": ["nih", "pc", "chex", "mimic_ch", "google", "openi", "rsna"],
    "densenet121-res224-nih": ["nih"],
    "densenet121-res224-pc": ["pc"],
    "densenet121-res224-chex": ["chex"],
    "densenet121-res224-rsna": ["rsna"],
    "densenet121-res224-mimic_nb": ["mimic_nb"],
    "densenet121-res224-mimic_ch": ["mimic_ch"],
}

INTENDED_USE = (
    "Research use only, not for diagnosis. Chest radiograph (frontal, PA/AP) "
    "pathology scores from torchxrayvision's DenseNet-121; not a medical device, "
    "not validated for clinical use; outputs must not drive patient care."
)
MEASURED_PERFORMANCE = (
    "Not measured by chestnode. torchxrayvision publishes per-label operating "
    "points (the thresholds below) but no AUCs in the package; see Cohen et al., "
    "'On the limits of cross-domain generalization in automated X-ray prediction' "
    "(MIDL 2020, arXiv:2002.02497) and the torchxrayvision paper (arXiv:2111.00595)."
)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def toml_str(s: str) -> str:
    # JSON string escapes (\" \\ \n \uXXXX) are valid TOML basic-string escapes.
    return json.dumps(s, ensure_ascii=True)


def toml_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    r = repr(float(x))
    return r if ("." in r or "e" in r or "n" in r) else r + ".0"


def cached_weights_path(model_name: str, cache_dir: str | None) -> str:
    meta = dw.xrv_model_meta(model_name)
    import torchxrayvision as xrv

    folder = cache_dir if cache_dir is not None else xrv.utils.get_cache_dir()
    return os.path.expanduser(os.path.join(folder, os.path.basename(meta["weights_url"])))


def load_source_state_dict(path: str):
    """State dict from torchxrayvision's pickled whole-model file (or, for
    convenience, a saved state_dict / checkpoint dict)."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, torch.nn.Module):
        # Modules pickled by old torch versions may lack attributes newer
        # versions expect when building a state_dict.
        for mod in obj.modules():
            if not hasattr(mod, "_non_persistent_buffers_set"):
                mod._non_persistent_buffers_set = set()
        sd = obj.state_dict()
    elif isinstance(obj, dict):
        sd = obj
        for key in ("state_dict", "model_state_dict", "model"):
            if key in sd and isinstance(sd[key], dict):
                sd = sd[key]
                break
        if isinstance(sd.get("model"), torch.nn.Module):
            sd = sd["model"].state_dict()
    else:
        raise SystemExit(f"{path}: neither a pickled model nor a state_dict (got {type(obj).__name__})")
    sd = dict(sd)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def build_reference_model(model_name: str, sd):
    """Fresh torchxrayvision DenseNet with the source weights, loaded
    strictly: every key name and shape must match the architecture."""
    import torch

    sd = dict(sd)
    src_thr = sd.pop("op_threshs", None)
    model = dw.build_xrv_densenet(model_name)
    model.load_state_dict(sd, strict=True)
    model.eval().float()
    if src_thr is not None:
        pub = torch.tensor(dw.xrv_model_meta(model_name)["op_threshs"])
        same = src_thr.shape == pub.shape and torch.allclose(src_thr.float(), pub, equal_nan=True)
        if not same:
            print("warning: op_threshs stored in the weights file differ from the published ones; "
                  "the manifest uses the published ones", file=sys.stderr)
    return model


def export_tensors(model):
    import torch

    out = {}
    for name, t in dw.weight_keys(model).items():
        if not t.is_floating_point():
            continue  # num_batches_tracked: training-only counter
        out[name] = t.detach().to(dtype=torch.float32).contiguous().clone()
    return out


def verify_roundtrip(model_name: str, reference, st_path: str) -> float:
    """Reload the safetensors into a fresh model; outputs must be identical."""
    import torch
    from safetensors.torch import load_file

    fresh = dw.build_xrv_densenet(model_name)
    missing, unexpected = fresh.load_state_dict(load_file(st_path), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked") and k != "op_threshs"]
    if missing or unexpected:
        raise SystemExit(f"round trip: missing={missing} unexpected={unexpected}")
    fresh.eval()
    g = torch.Generator().manual_seed(1234)
    x = (torch.rand(2, 1, 224, 224, generator=g) * 2048.0 - 1024.0)
    with torch.no_grad():
        a = reference(x)
        b = fresh(x)
    diff = (a - b).abs().max().item()
    if not torch.equal(a, b):
        raise SystemExit(f"round trip: outputs differ (max abs diff {diff})")
    return diff


def write_manifest(path: str, model_name: str, st_name: str, sha: str, xrv_version: str) -> None:
    meta = dw.xrv_model_meta(model_name)
    labels = list(meta["labels"])
    threshs = [float(t) for t in meta["op_threshs"]]
    datasets = ", ".join(DATASET_NAMES[d] for d in DATASETS_OF_MODEL[model_name])
    desc = meta.get("description", "")
    training = f"{datasets}" + (f" (torchxrayvision: {desc})" if desc else "")
    lines = [
        "# chestnode model manifest, written by tools/convert_xrv_densenet.py",
        "[model]",
        f"name = {toml_str(model_name)}",
        f"version = {toml_str('torchxrayvision-' + xrv_version)}",
        'architecture = "densenet121-xrv"',
        f"weights = {toml_str(st_name)}",
        f"sha256 = {toml_str(sha)}",
        "research_use_only = true",
        f"intended_use = {toml_str(INTENDED_USE)}",
        f"training_data = {toml_str(training)}",
        f"measured_performance = {toml_str(MEASURED_PERFORMANCE)}",
        "",
        "[input]",
        f"size = {int(meta.get('input_resolution', 224))}",
        "channels = 1",
        'crop = "center-square"',
        "normalisation = { low = -1024.0, high = 1024.0 }",
        "",
    ]
    for name, thr in zip(labels, threshs):
        lines += ["[[labels]]", f"name = {toml_str(name)}", f"threshold = {toml_float(thr)}", ""]
    text = "\n".join(lines)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    # Must parse, and say what we meant.
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    assert doc["model"]["sha256"] == sha and len(doc["labels"]) == len(labels)
    for lab, name, thr in zip(doc["labels"], labels, threshs):
        assert lab["name"] == name
        assert (math.isnan(lab["threshold"]) and math.isnan(thr)) or lab["threshold"] == thr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="torchxrayvision's weights file (.pt, pickled whole model)")
    src.add_argument("--from-cache", action="store_true", help="use the file in torchxrayvision's cache")
    ap.add_argument("--cache-dir", help="cache folder (default: ~/.torchxrayvision/models_data/)")
    ap.add_argument("--model", default=dw.MODEL_NAME, choices=sorted(DATASETS_OF_MODEL))
    ap.add_argument("--out", required=True, help="output path without extension (a .safetensors suffix is stripped)")
    ap.add_argument("--no-verify", action="store_true", help="skip the reload-and-compare check")
    args = ap.parse_args(argv)

    import torch
    import torchxrayvision as xrv

    path = args.weights if args.weights else cached_weights_path(args.model, args.cache_dir)
    if not os.path.isfile(path):
        print(f"weights file not found: {path}\n(this tool does not download; obtain torchxrayvision's "
              f"weights for {args.model} and pass --weights)", file=sys.stderr)
        return 2

    out = args.out[: -len(".safetensors")] if args.out.endswith(".safetensors") else args.out
    out_dir = os.path.dirname(os.path.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    st_path, toml_path = out + ".safetensors", out + ".toml"

    sd = load_source_state_dict(path)
    reference = build_reference_model(args.model, sd)
    tensors = export_tensors(reference)
    # Own writer: byte-reproducible, so converting twice gives the same sha256.
    dw.save_safetensors(tensors, st_path, metadata={
        "format": "pt",
        "model": args.model,
        "source": os.path.basename(path),
        "torchxrayvision": xrv.__version__,
    })
    if not args.no_verify:
        verify_roundtrip(args.model, reference, st_path)
    sha = sha256_file(st_path)
    write_manifest(toml_path, args.model, os.path.basename(st_path), sha, xrv.__version__)
    n = sum(t.numel() for t in tensors.values())
    print(f"{st_path}: {len(tensors)} tensors, {n} values, sha256 {sha}")
    print(f"{toml_path}: manifest" + ("" if args.no_verify else " (round trip verified: identical outputs)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
