"""Deterministic DenseNet-121 weights and shared helpers for chestnode's
torchxrayvision parity tools.

The weight scheme is specified in tests/fixtures/densenet121_parity/README.md
and is reproduced bit for bit by the Rust tests (without torch). Every value
depends only on the tensor's name, its shape and the element index:

    seed = FNV-1a-64(name as UTF-8)
    s    = seed + (i + 1) * 0x9E3779B97F4A7C15            (wrapping u64)
    z    = splitmix64 finaliser of s                       (wrapping u64)
    u    = (z >> 11) * 2**-53                              (float64, in [0, 1))
    value by role, computed in float64, rounded to float32.

This module only *uses* torch / torchxrayvision; it contains no code from
either project.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Dict, Iterable, Tuple

import numpy as np

MASK64 = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB

MODEL_NAME = "densenet121-res224-all"
INPUT_SIZE = 224


def fnv1a64(name: str) -> int:
    h = FNV_OFFSET
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * FNV_PRIME) & MASK64
    return h


def uniform_u64_reference(seed: int, i: int) -> float:
    """Pure-Python (arbitrary precision ints) reference for element i."""
    s = (seed + (i + 1) * GOLDEN) & MASK64
    z = s
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    z = z ^ (z >> 31)
    return float(z >> 11) * (2.0 ** -53)


def uniforms(seed: int, n: int) -> np.ndarray:
    """Vectorised u for i = 0..n-1 (float64). numpy uint64 array arithmetic
    wraps modulo 2**64, exactly like Rust's wrapping_* ops."""
    with np.errstate(over="ignore"):
        idx = np.arange(1, n + 1, dtype=np.uint64)
        s = np.uint64(seed) + idx * np.uint64(GOLDEN)
        z = s
        z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
        z = z ^ (z >> np.uint64(31))
    # z >> 11 < 2**53, so the conversion to float64 is exact.
    return (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def role(name: str, shape: Tuple[int, ...]) -> str:
    if name.endswith("running_var"):
        return "running_var"
    if name.endswith("running_mean"):
        return "running_mean"
    if len(shape) == 1 and name.endswith(".weight"):
        return "bn_weight"
    if len(shape) == 1 and name.endswith(".bias"):
        return "bias"
    if len(shape) == 4 and name.endswith(".weight"):
        return "conv_weight"
    if len(shape) == 2 and name.endswith(".weight"):
        return "linear_weight"
    raise ValueError(f"no deterministic rule for tensor {name!r} with shape {shape}")


def values_from_u(name: str, shape: Tuple[int, ...], u: np.ndarray) -> np.ndarray:
    """Map u (float64) to the tensor's values (float64), operation order as
    documented: every expression is evaluated left to right in float64."""
    r = role(name, shape)
    if r == "running_var":
        return 0.5 + u
    if r == "running_mean":
        return 0.2 * u - 0.1
    if r == "bn_weight":
        return 0.75 + 0.5 * u
    if r == "bias":
        return 0.2 * u - 0.1
    if r == "conv_weight":
        fan_in = shape[1] * shape[2] * shape[3]
        return (2.0 * u - 1.0) * math.sqrt(3.0 / fan_in)
    if r == "linear_weight":
        fan_in = shape[1]
        return (2.0 * u - 1.0) * math.sqrt(3.0 / fan_in)
    raise AssertionError(r)


def deterministic_tensor(name: str, shape: Iterable[int]) -> np.ndarray:
    """float32 array of the given shape (C order), per the scheme."""
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape)) if shape else 1
    u = uniforms(fnv1a64(name), n)
    v = values_from_u(name, shape, u)
    return v.astype(np.float32).reshape(shape)  # round to nearest even


def reference_value(name: str, shape: Tuple[int, ...], i: int) -> np.float32:
    """Scalar reference (pure Python ints + float64), for cross-checks."""
    u = np.array([uniform_u64_reference(fnv1a64(name), i)], dtype=np.float64)
    return values_from_u(name, tuple(shape), u).astype(np.float32)[0]


# ---------------------------------------------------------------- safetensors

_ST_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "int64": "I64", "int32": "I32"}


def save_safetensors(tensors: Dict[str, "object"], path: str, metadata: Dict[str, str] | None = None) -> None:
    """Write a safetensors file byte-for-byte reproducibly (the safetensors
    package orders the metadata map differently from run to run). Tensors
    are stored in the dict's order, little-endian, C order; the JSON header
    (metadata first, keys in the given order, no spaces) is padded with
    spaces to a multiple of 8 bytes."""
    import json

    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        arr = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        arr = np.ascontiguousarray(arr)
        dt = _ST_DTYPES[arr.dtype.name]
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hb = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(hb).to_bytes(8, "little"))
        f.write(hb)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- torch side

def set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process


def xrv_model_meta(model_name: str = MODEL_NAME) -> dict:
    import torchxrayvision as xrv

    return xrv.models.model_urls[model_name]


def build_xrv_densenet(model_name: str = MODEL_NAME):
    """torchxrayvision's DenseNet with the architecture of `model_name`
    (1 input channel, one output per published label), WITHOUT downloading
    or loading any pretrained weights."""
    import torchxrayvision as xrv

    meta = xrv_model_meta(model_name)
    model = xrv.models.DenseNet(num_classes=len(meta["labels"]), in_channels=1, weights=None)
    return model


def weight_keys(model) -> Dict[str, "object"]:
    """The model's state_dict minus the op_threshs buffer (thresholds are
    metadata, not weights; they are None until set)."""
    return {k: v for k, v in model.state_dict().items() if k != "op_threshs"}


def deterministic_state_dict(model) -> Dict[str, "object"]:
    """Deterministic values for every floating-point tensor of the model's
    state_dict; integer tensors (num_batches_tracked) are kept as they are."""
    import torch

    out = {}
    for name, t in weight_keys(model).items():
        if t.is_floating_point():
            arr = deterministic_tensor(name, tuple(t.shape))
            out[name] = torch.from_numpy(arr)
        else:
            out[name] = t.clone()
    return out


def load_deterministic_weights(model):
    import torch

    sd = deterministic_state_dict(model)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # op_threshs is the only key allowed to be absent (it may be None).
    missing = [k for k in missing if k != "op_threshs"]
    if missing or unexpected:
        raise RuntimeError(f"state_dict mismatch: missing={missing} unexpected={unexpected}")
    model.eval()
    model.float()
    return model


def set_published_op_threshs(model, model_name: str = MODEL_NAME):
    """As torchxrayvision does after loading pretrained weights:
    model.op_threshs = torch.tensor(model_urls[name]["op_threshs"]) (float32)."""
    import torch

    model.op_threshs = torch.tensor(xrv_model_meta(model_name)["op_threshs"])
    return model


def preprocess_xrv(path: str) -> np.ndarray:
    """torchxrayvision's preprocessing for an 8-bit image: load and map
    0..255 linearly onto [-1024, 1024] (xrv.utils.load_image), centre-crop to
    a square (xrv.datasets.XRayCenterCrop) and resize to 224x224 with the
    default skimage engine (xrv.datasets.XRayResizer). Returns [1,1,224,224]
    float32."""
    import torchxrayvision as xrv

    img = xrv.utils.load_image(path)  # [1, H, W], float32 in [-1024, 1024]
    img = xrv.datasets.XRayCenterCrop()(img)
    img = xrv.datasets.XRayResizer(INPUT_SIZE)(img)
    return np.ascontiguousarray(img[None, ...].astype(np.float32))


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":  # tiny self-check
    for nm, shp in [("features.conv0.weight", (64, 1, 7, 7)), ("features.norm0.running_var", (64,))]:
        arr = deterministic_tensor(nm, shp).reshape(-1)
        for i in range(3):
            ref = reference_value(nm, shp, i)
            assert arr[i].tobytes() == ref.tobytes()
            print(nm, i, repr(float(arr[i])), arr[i].view(np.uint32).item().to_bytes(4, "big").hex())
    sys.exit(0)
