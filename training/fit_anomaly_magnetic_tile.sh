#!/usr/bin/env bash
# Reproduce exported/anomaly-magnetic-tile.onnx: `edge-ae anomaly fit` (no torch) on the magnetic
# tiles' normal images with the options chosen on the validation split (never the reported test
# part; docs/experiments/2026-12-06-anomaly-v3.md): the deeper Lite0 extractor, 8000 memory patches,
# the image score over the map's top 32 %, the threshold for 3 % false positives on the held-out
# normal images; then its benchmark on the untouched test part (which also records it in
# exported/manifest.json). The fit is seeded (seed 0); a few minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m edge_ae anomaly fit --normal ../shared/data/anomaly/magnetic_tile/tile/train/good \
  -o exported/anomaly-magnetic-tile.onnx --name anomaly-magnetic-tile --backbone lite0-deep --memory 8000 \
  --score-top 0.32 --fpr 0.03 --threads 2 --overwrite
python -m tools.bench_anomaly --model exported/anomaly-magnetic-tile.onnx --out docs/benchmarks/anomaly.md --update-manifest
