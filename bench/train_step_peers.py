#!/usr/bin/env python3
"""One training step of chestnode's compact model in PyTorch, for comparison
with `cargo bench --bench train_step` (benches/train_step.rs).

The same networks as src/model/compact/: strided 3x3 conv + batch norm +
ReLU stages of widths 16/32/64/96/128 and a linear classifier on the global
mean; chestnet-compact-v1 has a 1x1 segmentation head after the third
stage (stride 16), chestnet-compact-v2 a top-down decoder (1x1 laterals of
stages 1-3 to 32 channels, x2 nearest upsampling, a 3x3 block, a 1x1 head:
stride 4) whose per-map maximum is added to the image logits. The same loss
(binary cross-entropy with logits on the 7 image-level outputs plus on the
segmentation maps), AdamW, batch 16 at 256x256, float32, CPU, the same
thread count. Prints median and p90 of 10 steps after 2 warm-up steps as
one JSON line.

With --inference: one image through v2 in evaluation mode (no gradients),
median and p90 of 20 passes after 3 warm-up passes.

Usage: python bench/train_step_peers.py [--threads 2] [--architecture v1|v2] [--size 256] [--inference]
"""
import argparse
import json
import time

import torch
from torch import nn
import torch.nn.functional as F

BATCH, SIZE, LABELS = 16, 256, 7
WIDTHS = [16, 32, 64, 96, 128]


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(cout, eps=1e-5)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class CompactNet(nn.Module):
    def __init__(self, labels, decoder_width=None):
        super().__init__()
        w = WIDTHS
        self.stem = ConvBnRelu(1, w[0], 2)
        self.stages = nn.ModuleList(
            nn.Sequential(ConvBnRelu(w[i], w[i + 1], 2), ConvBnRelu(w[i + 1], w[i + 1], 1))
            for i in range(4)
        )
        self.decoder_width = decoder_width
        if decoder_width is None:
            self.segmentation = nn.Conv2d(w[3], labels, 1)
        else:
            self.laterals = nn.ModuleList(nn.Conv2d(w[i], decoder_width, 1) for i in (1, 2, 3))
            self.refine = ConvBnRelu(decoder_width, decoder_width, 1)
            self.segmentation = nn.Conv2d(decoder_width, labels, 1)
        self.classifier = nn.Linear(w[4], labels)

    def forward(self, x):
        x = self.stem(x)
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        logits = self.classifier(x.mean(dim=(2, 3)))
        if self.decoder_width is None:
            return logits, self.segmentation(outputs[2])
        top = self.laterals[2](outputs[2])
        for stage in (1, 0):
            top = F.interpolate(top, scale_factor=2, mode="nearest") + \
                self.laterals[stage](outputs[stage])
        segmentation = self.segmentation(self.refine(top))
        return logits + segmentation.flatten(2).amax(dim=2), segmentation


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--architecture", choices=["v1", "v2"], default="v1")
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--inference", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.inference:
        return inference(args)
    size = args.size
    torch.manual_seed(7)
    v2 = args.architecture == "v2"
    model = CompactNet(LABELS, decoder_width=32 if v2 else None).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    grid = size // (4 if v2 else 16)
    inputs = torch.rand(BATCH, 1, size, size) * 2 - 1
    targets = torch.rand(BATCH, LABELS).round()
    masks = (torch.rand(BATCH, LABELS, grid, grid) >= 0.9).float()

    def step():
        optimiser.zero_grad(set_to_none=True)
        logits, segmentation = model(inputs)
        loss = F.binary_cross_entropy_with_logits(logits, targets) + \
            F.binary_cross_entropy_with_logits(segmentation, masks)
        loss.backward()
        optimiser.step()
        return loss.item()

    for _ in range(2):
        step()
    times = []
    for _ in range(10):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(json.dumps({"peer": "pytorch", "version": torch.__version__,
                      "architecture": f"chestnet-compact-{args.architecture}", "threads": args.threads,
                      "batch": BATCH, "size": size,
                      "median_ms": round(times[5], 1), "p90_ms": round(times[9], 1)}))


def inference(args):
    torch.manual_seed(7)
    model = CompactNet(LABELS, decoder_width=32).eval()
    image = torch.rand(1, 1, args.size, args.size) * 2 - 1
    times = []
    with torch.inference_mode():
        for _ in range(3):
            torch.sigmoid(model(image)[0]).tolist()
        for _ in range(20):
            start = time.perf_counter()
            torch.sigmoid(model(image)[0]).tolist()
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(json.dumps({"peer": "pytorch", "mode": "inference", "version": torch.__version__,
                      "architecture": "chestnet-compact-v2", "threads": args.threads, "batch": 1,
                      "size": args.size, "median_ms": round(times[10], 2),
                      "p90_ms": round(times[18], 2)}))


if __name__ == "__main__":
    main()
