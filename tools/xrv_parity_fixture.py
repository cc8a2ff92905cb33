#!/usr/bin/env python3
"""Write the DenseNet-121 parity fixture (tests/fixtures/densenet121_parity/).

torchxrayvision's DenseNet in the densenet121-res224-all configuration (1 input
channel, 18 outputs), no pretrained weights: every tensor gets the
deterministic values of tools/xrv_detweights.py (the Rust test regenerates the
same values without torch). The input is a real radiograph preprocessed the
torchxrayvision way. Outputs:

  input.safetensors     "input"          [1,1,224,224] float32
  expected.safetensors  "features"       [1,1024]  norm5 -> ReLU -> global average pool
                        "logits"         [1,18]    classifier output
                        "probabilities"  [1,18]    sigmoid(logits)
                        "calibrated"     [1,18]    model(x) with the published op_threshs
  state_dict.txt        every state_dict key, dtype and shape, in order
  labels.json           label names in output order, op_threshs (NaN as null)

Runs on one CPU thread so that re-running gives bit-identical files.

    python tools/xrv_parity_fixture.py [--image PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xrv_detweights as dw  # noqa: E402


def main() -> int:
    root = dw.repo_root()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=os.path.join(root, "..", "shared", "data", "cxr", "nih", "00000001_000.png"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "densenet121_parity"))
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    import torchxrayvision as xrv
    from safetensors.torch import load_file

    dw.set_torch_threads(1)
    torch.manual_seed(0)  # nothing random is used; belt and braces

    if not os.path.isfile(args.image):
        print(f"input image not found: {args.image}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)

    meta = dw.xrv_model_meta(dw.MODEL_NAME)
    labels = list(meta["labels"])
    op_threshs = [float(t) for t in meta["op_threshs"]]

    model = dw.build_xrv_densenet(dw.MODEL_NAME)
    dw.load_deterministic_weights(model)

    # state_dict.txt is written before op_threshs is set: the thresholds are
    # metadata (labels.json / the manifest), not weights.
    sd_lines = []
    for name, t in dw.weight_keys(model).items():
        dtype = str(t.dtype).replace("torch.", "")
        sd_lines.append(f"{name} {dtype} {list(t.shape)}")

    dw.set_published_op_threshs(model, dw.MODEL_NAME)
    model.input_resolution = meta.get("input_resolution", 224)  # as xrv sets it for pretrained models
    model.eval()

    x_np = dw.preprocess_xrv(args.image)
    assert x_np.shape == (1, 1, 224, 224) and x_np.dtype == np.float32
    x = torch.from_numpy(x_np)

    with torch.no_grad():
        features = model.features2(x.clone())
        logits = model.classifier(features)
        probabilities = torch.sigmoid(logits)
        calibrated = model(x.clone())

        # Cross-checks of what the README documents.
        manual_feat = F.adaptive_avg_pool2d(F.relu(model.features(x.clone())), 1).flatten(1)
        assert torch.equal(manual_feat, features), "features2 != relu(features)->avgpool"
        t = model.op_threshs.expand_as(probabilities)
        manual_cal = torch.where(
            torch.isnan(t),
            torch.full_like(probabilities, 0.5),
            torch.where(probabilities < t, probabilities / (t * 2), 1.0 - (1.0 - probabilities) / ((1 - t) * 2)),
        )
        assert torch.equal(manual_cal, calibrated), "calibration formula differs from model output"

    st_meta = {
        "generator": "tools/xrv_parity_fixture.py",
        "model": dw.MODEL_NAME,
        "torch": torch.__version__,
        "torchxrayvision": xrv.__version__,
    }
    # dw.save_safetensors: byte-reproducible (safetensors' own writer orders
    # the metadata map differently on every run).
    dw.save_safetensors({"input": x.contiguous()}, os.path.join(args.out, "input.safetensors"), metadata=st_meta)
    dw.save_safetensors(
        {
            "features": features.contiguous(),
            "logits": logits.contiguous(),
            "probabilities": probabilities.contiguous(),
            "calibrated": calibrated.contiguous(),
        },
        os.path.join(args.out, "expected.safetensors"),
        metadata=st_meta,
    )
    # Read back with the safetensors package: same tensors, bit for bit.
    back = load_file(os.path.join(args.out, "expected.safetensors"))
    assert list(back) and all(torch.equal(back[k], v) for k, v in
                              [("features", features), ("logits", logits),
                               ("probabilities", probabilities), ("calibrated", calibrated)])
    assert torch.equal(load_file(os.path.join(args.out, "input.safetensors"))["input"], x)

    with open(os.path.join(args.out, "state_dict.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(sd_lines) + "\n")
    with open(os.path.join(args.out, "labels.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "model": dw.MODEL_NAME,
                "torchxrayvision": xrv.__version__,
                "labels": labels,
                "op_threshs": [None if math.isnan(t) else t for t in op_threshs],
            },
            f,
            indent=2,
        )
        f.write("\n")

    lg = logits.double()
    print(f"torch {torch.__version__}, torchxrayvision {xrv.__version__}")
    print(f"state_dict keys: {len(sd_lines)}")
    print(f"input: min {x.min().item():.4f} max {x.max().item():.4f} mean {x.mean().item():.4f}")
    print(f"features: max|.| {features.abs().max().item():.6g} mean {features.mean().item():.6g}")
    print(f"logits: max|.| {lg.abs().max().item():.6g} mean|.| {lg.abs().mean().item():.6g}")
    print("logits:", [round(v, 4) for v in logits[0].tolist()])
    print("calibrated:", [round(v, 4) for v in calibrated[0].tolist()])

    # float32 error indication: same model in float64.
    m64 = dw.build_xrv_densenet(dw.MODEL_NAME)
    dw.load_deterministic_weights(m64)
    m64.double().eval()
    with torch.no_grad():
        f64 = m64.features2(x.double())
        l64 = m64.classifier(f64)
    print(f"float32 vs float64 model: features max diff {(features.double() - f64).abs().max().item():.3g}, "
          f"logits max diff {(lg - l64).abs().max().item():.3g}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
