#!/usr/bin/env bash
# Reproduce exported/anomaly-magnetic-tile.onnx: two anomaly models on the same normal images
# (same seed, so the same held-out split), one at 128 px on whole images, one at 256 px trained
# on 128 px crops, then fused into one graph and calibrated on the shared held-out images.
# One after another (2 cores: never two at once); about 95 minutes on two CPU cores (58 + 36 + 1).
# --name/--out/--no-manifest only decide where a member is written, not what it learns.
set -euo pipefail
cd "$(dirname "$0")/.."
NORMAL=../shared/data/anomaly/magnetic_tile/tile/train/good
MEMBERS=runs/anomaly-magnetic-tile-members
python -m training.anomaly --normal "$NORMAL" --name anomaly-magnetic-tile-128 --seg-width 24 \
  --out "$MEMBERS" --no-manifest
python -m training.anomaly --normal "$NORMAL" --name anomaly-magnetic-tile-256 --size 256 --patch 128 \
  --out "$MEMBERS" --no-manifest
python -m training.anomaly.fuse "$MEMBERS/anomaly-magnetic-tile-128.onnx" "$MEMBERS/anomaly-magnetic-tile-256.onnx" \
  --name anomaly-magnetic-tile
