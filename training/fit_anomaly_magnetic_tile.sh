#!/usr/bin/env bash
# Reproduce exported/anomaly-magnetic-tile.onnx: `edge-ae anomaly fit` with its defaults (no torch,
# frozen features-lite0, nothing chosen for this data set) on the magnetic tiles' normal images,
# then its benchmark on the test split (which also records it in exported/manifest.json). The fit is
# seeded (seed 0): the same patches are drawn and kept on every run; a few minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m edge_ae anomaly fit --normal ../shared/data/anomaly/magnetic_tile/tile/train/good \
  -o exported/anomaly-magnetic-tile.onnx --name anomaly-magnetic-tile --threads 2 --overwrite
python -m tools.bench_anomaly --model exported/anomaly-magnetic-tile.onnx --out docs/benchmarks/anomaly.md --update-manifest
