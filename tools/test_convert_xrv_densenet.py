#!/usr/bin/env python3
"""Tests for tools/convert_xrv_densenet.py without the official weights.

An untrained torchxrayvision DenseNet with random, non-trivial weights
(including BatchNorm running statistics) is saved the way torchxrayvision's
files are saved (the whole pickled module, torch.save(model)), converted,
and the safetensors reloaded into a fresh model must give identical outputs.

    python tools/test_convert_xrv_densenet.py      # or: pytest tools/
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import tempfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import xrv_detweights as dw  # noqa: E402


def _random_model(seed: int, strip_nonpersistent: bool = False):
    import torch

    g = torch.Generator().manual_seed(seed)
    m = dw.build_xrv_densenet(dw.MODEL_NAME)
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.dim() == 1:
                t.copy_(torch.rand(t.shape, generator=g) * 0.2 - 0.1 + (1.0 if name.endswith(".weight") else 0.0))
            else:
                fan_in = t[0].numel()
                t.copy_((torch.rand(t.shape, generator=g) * 2 - 1) * math.sqrt(3.0 / fan_in))
    m.eval()
    if strip_nonpersistent:
        # Imitate a module pickled by an old torch that predates this attribute.
        for mod in m.modules():
            mod.__dict__.pop("_non_persistent_buffers_set", None)
    return m


def _run_converter(args):
    cmd = [sys.executable, os.path.join(HERE, "convert_xrv_densenet.py"), *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _check_output(src_model, out_base):
    import torch
    from safetensors.torch import load_file

    st_path, toml_path = out_base + ".safetensors", out_base + ".toml"
    tensors = load_file(st_path)
    expected_keys = [k for k, v in dw.weight_keys(src_model).items() if v.is_floating_point()]
    assert sorted(tensors) == sorted(expected_keys)
    assert all(t.dtype == torch.float32 for t in tensors.values())
    for k in expected_keys:
        assert torch.equal(tensors[k], src_model.state_dict()[k].float()), k

    fresh = dw.build_xrv_densenet(dw.MODEL_NAME)
    missing, unexpected = fresh.load_state_dict(tensors, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    fresh.eval()
    x = torch.rand(1, 1, 224, 224, generator=torch.Generator().manual_seed(7)) * 2048 - 1024
    with torch.no_grad():
        assert torch.equal(src_model(x), fresh(x))

    with open(toml_path, "rb") as f:
        doc = tomllib.load(f)
    with open(st_path, "rb") as f:
        assert doc["model"]["sha256"] == hashlib.sha256(f.read()).hexdigest()
    meta = dw.xrv_model_meta(dw.MODEL_NAME)
    assert doc["model"]["weights"] == os.path.basename(st_path)
    assert doc["model"]["architecture"] == "densenet121-xrv"
    assert doc["model"]["research_use_only"] is True
    assert doc["input"] == {"size": 224, "channels": 1, "crop": "center-square",
                            "normalisation": {"low": -1024.0, "high": 1024.0}}
    assert [l["name"] for l in doc["labels"]] == meta["labels"]
    assert [l["threshold"] for l in doc["labels"]] == [float(t) for t in meta["op_threshs"]]


def test_convert_pickled_whole_model():
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        src = _random_model(1)
        pt = os.path.join(tmp, "model.pt")
        torch.save(src, pt)
        out = os.path.join(tmp, "out", "densenet121-res224-all")
        _run_converter(["--weights", pt, "--out", out])
        _check_output(src, out)


def test_convert_from_cache_old_style_pickle():
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        src = _random_model(2)
        cache = os.path.join(tmp, "models_data")
        os.makedirs(cache)
        # The file name torchxrayvision gives the downloaded file.
        fname = os.path.basename(dw.xrv_model_meta(dw.MODEL_NAME)["weights_url"])
        torch.save(_random_model(2, strip_nonpersistent=True), os.path.join(cache, fname))
        out = os.path.join(tmp, "densenet121-res224-all.safetensors")  # suffix is stripped
        _run_converter(["--from-cache", "--cache-dir", cache, "--out", out])
        _check_output(src, out[: -len(".safetensors")])


def test_convert_state_dict_file():
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        src = _random_model(3)
        pt = os.path.join(tmp, "sd.pt")
        torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, pt)
        out = os.path.join(tmp, "m")
        _run_converter(["--weights", pt, "--out", out])
        _check_output(src, out)


def test_missing_file_is_refused():
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, os.path.join(HERE, "convert_xrv_densenet.py"),
               "--from-cache", "--cache-dir", tmp, "--out", os.path.join(tmp, "x")]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 2 and "not found" in r.stderr
        assert not os.path.exists(os.path.join(tmp, "x.safetensors"))


def test_deterministic_scheme_reference():
    """Vectorised numpy generator == pure-Python big-int reference."""
    import numpy as np

    for name, shape in [("features.conv0.weight", (64, 1, 7, 7)),
                        ("features.norm0.running_var", (64,)),
                        ("features.norm0.running_mean", (64,)),
                        ("features.norm0.weight", (64,)),
                        ("classifier.bias", (18,)),
                        ("classifier.weight", (18, 1024))]:
        arr = dw.deterministic_tensor(name, shape).reshape(-1)
        for i in [0, 1, 2, arr.size // 2, arr.size - 1]:
            assert arr[i].tobytes() == dw.reference_value(name, shape, i).tobytes(), (name, i)
    assert dw.fnv1a64("") == 0xCBF29CE484222325
    assert dw.fnv1a64("a") == 0xAF63DC4C8601EC8C  # published FNV-1a 64 test vector
    assert np.float32(dw.deterministic_tensor("features.conv0.weight", (64, 1, 7, 7)).flat[0]).view(np.uint32) == 0x3DC003A4


if __name__ == "__main__":
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    failed = 0
    for t in tests:
        try:
            t()
            print(f"ok   {t.__name__}")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {t.__name__}: {e!r}")
    print(f"{len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
