#!/usr/bin/env python3
"""DenseNet-121 forward latency of chestnode's peers: PyTorch (CPU) and
ONNX Runtime (CPU).

What is measured
  torchxrayvision's DenseNet (densenet121-res224-all architecture: 1 input
  channel, 18 outputs) with the deterministic weights of
  tests/fixtures/densenet121_parity/README.md, eval mode, float32, one
  224x224 image (batch 1: the fixture's input.safetensors, or a fixed
  pseudo-random image if the fixture is absent). The timed call is the
  network forward up to the logits (no op_threshs calibration, which is a
  few scalar operations).
    - PyTorch: model(x) under torch.inference_mode(), torch.set_num_threads(2),
      one inter-op thread.
    - ONNX Runtime: the same model exported to ONNX (opset 17, TorchScript
      exporter) in a temporary folder, CPUExecutionProvider, all graph
      optimisations, intra_op_num_threads=2, inter_op_num_threads=1,
      sequential execution.
  Each peer: WARMUP untimed runs, then RUNS timed runs (time.perf_counter
  around each call). Reported: median and p90 (nearest rank:
  the ceil(0.9*RUNS)-th smallest), min and mean, in milliseconds, and
  "other CPU s": CPU seconds that other processes used during the timed runs
  (from /proc/stat, over the timed wall time); well above 0 means the
  machine was not quiet and the numbers are contaminated.
  ONNX Runtime's output must match PyTorch's within 1e-4 (max abs diff),
  or the script exits 1.

    python bench/densenet_peers.py [--json FILE|-] [--runs 15] [--warmup 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import xrv_detweights as dw  # noqa: E402

THREADS = 2
TOLERANCE = 1e-4


def summarise(timed):
    samples_s, other_cpu_s = timed
    ms = sorted(s * 1000.0 for s in samples_s)
    p90 = ms[max(0, math.ceil(0.9 * len(ms)) - 1)]
    return {
        "runs": len(ms),
        "median_ms": statistics.median(ms),
        "p90_ms": p90,
        "min_ms": ms[0],
        "mean_ms": statistics.fmean(ms),
        "samples_ms": ms,
        "other_processes_cpu_s": round(other_cpu_s, 3),
        "wall_s": round(sum(samples_s), 3),
    }


def busy_cpu_seconds():
    """CPU seconds spent busy by the whole machine (all cores), from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def time_calls(fn, warmup, runs):
    """Timed samples (s) and the CPU seconds other processes used meanwhile
    (a contamination indicator: ~0 on a quiet machine)."""
    for _ in range(warmup):
        fn()
    out = []
    busy0, own0 = busy_cpu_seconds(), own_cpu_seconds()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    other = (busy_cpu_seconds() - busy0) - (own_cpu_seconds() - own0)
    return out, max(0.0, other)


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write results as JSON to this file ('-' for stdout)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()

    load_before = os.getloadavg()
    import numpy as np
    import torch
    import onnxruntime as ort
    import torchxrayvision as xrv

    torch.set_num_threads(THREADS)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    model = dw.build_xrv_densenet(dw.MODEL_NAME)
    dw.load_deterministic_weights(model)
    model.eval()

    fixture = os.path.join(ROOT, "tests", "fixtures", "densenet121_parity", "input.safetensors")
    if os.path.isfile(fixture):
        from safetensors.torch import load_file

        x = load_file(fixture)["input"].contiguous()
        input_desc = "tests/fixtures/densenet121_parity/input.safetensors"
    else:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(1, 1, 224, 224, generator=g) * 2048.0 - 1024.0
        input_desc = "pseudo-random, seed 0"
    x_np = x.numpy()

    with torch.inference_mode():
        ref = model(x).numpy().copy()

    def torch_call():
        with torch.inference_mode():
            return model(x)

    torch_s = time_calls(torch_call, args.warmup, args.runs)

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "densenet121.onnx")
        export_kw = dict(input_names=["input"], output_names=["logits"], opset_version=17)
        try:
            torch.onnx.export(model, (x,), onnx_path, dynamo=False, **export_kw)
        except TypeError:  # torch without the dynamo switch
            torch.onnx.export(model, (x,), onnx_path, **export_kw)
        so = ort.SessionOptions()
        so.intra_op_num_threads = THREADS
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(onnx_path, sess_options=so, providers=["CPUExecutionProvider"])
        feed = {"input": x_np}
        ort_out = sess.run(["logits"], feed)[0]
        ort_s = time_calls(lambda: sess.run(["logits"], feed), args.warmup, args.runs)

    diff = float(np.abs(ort_out.astype(np.float64) - ref.astype(np.float64)).max())
    result = {
        "benchmark": "densenet121 forward, 224x224, batch 1, float32, CPU",
        "model": f"torchxrayvision DenseNet ({dw.MODEL_NAME} architecture), deterministic weights",
        "input": input_desc,
        "threads": {"torch_intra": THREADS, "torch_interop": 1, "ort_intra": THREADS, "ort_inter": 1},
        "warmup": args.warmup,
        "cpu": cpu_model(),
        "cpus_online": os.cpu_count(),
        "loadavg_1_5_15_at_start": [round(v, 2) for v in load_before],
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "torchxrayvision": xrv.__version__,
            "numpy": np.__version__,
        },
        "peers": {"pytorch": summarise(torch_s), "onnxruntime": summarise(ort_s)},
        "ort_vs_torch_max_abs_diff": diff,
        "ort_matches_torch": diff <= TOLERANCE,
        "logits_max_abs": float(np.abs(ref).max()),
    }

    print(f"DenseNet-121 (xrv, deterministic weights) 224x224 batch 1, {THREADS} threads, "
          f"{args.warmup} warm-up + {args.runs} runs; {result['cpu']}, "
          f"load average at start {load_before[0]:.2f}")
    print(f"{'peer':<24}{'median ms':>11}{'p90 ms':>10}{'min ms':>10}{'mean ms':>10}{'other CPU s':>13}")
    for name, label in [("pytorch", f"PyTorch {torch.__version__}"), ("onnxruntime", f"ONNX Runtime {ort.__version__}")]:
        s = result["peers"][name]
        print(f"{label:<24}{s['median_ms']:>11.1f}{s['p90_ms']:>10.1f}{s['min_ms']:>10.1f}{s['mean_ms']:>10.1f}"
              f"{s['other_processes_cpu_s']:>9.2f}/{s['wall_s']:.2f}")
    print(f"ORT vs PyTorch logits: max abs diff {diff:.3g} ({'ok' if diff <= TOLERANCE else 'FAIL'}, tolerance {TOLERANCE})")

    if args.json:
        text = json.dumps(result, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            with open(args.json, "w", encoding="utf-8") as f:
                f.write(text)
    return 0 if diff <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
