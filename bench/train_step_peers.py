#!/usr/bin/env python3
"""One training step of chestnode's compact model in PyTorch, for comparison
with `cargo bench --bench train_step` (benches/train_step.rs).

The same network as src/model/compact.rs (chestnet-compact-v1: strided 3x3
conv + batch norm + ReLU stages of widths 16/32/64/96/128, a 1x1
segmentation head after the third stage, a linear classifier on the global
mean), the same loss (binary cross-entropy with logits on the 7 image-level
outputs plus on the stride-16 segmentation maps), AdamW, batch 16 at
256x256, float32, CPU, the same thread count. Prints median and p90 of 10
steps after 2 warm-up steps as one JSON line.

Usage: python bench/train_step_peers.py [--threads 2]
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
    def __init__(self, labels):
        super().__init__()
        w = WIDTHS
        self.stem = ConvBnRelu(1, w[0], 2)
        self.stages = nn.ModuleList(
            nn.Sequential(ConvBnRelu(w[i], w[i + 1], 2), ConvBnRelu(w[i + 1], w[i + 1], 1))
            for i in range(4)
        )
        self.segmentation = nn.Conv2d(w[3], labels, 1)
        self.classifier = nn.Linear(w[4], labels)

    def forward(self, x):
        x = self.stem(x)
        segmentation = None
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index == 2:
                segmentation = self.segmentation(x)
        return self.classifier(x.mean(dim=(2, 3))), segmentation


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    model = CompactNet(LABELS).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    grid = SIZE // 16
    inputs = torch.rand(BATCH, 1, SIZE, SIZE) * 2 - 1
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
    print(json.dumps({"peer": "pytorch", "version": torch.__version__, "threads": args.threads,
                      "batch": BATCH, "size": SIZE,
                      "median_ms": round(times[5], 1), "p90_ms": round(times[9], 1)}))


if __name__ == "__main__":
    main()
