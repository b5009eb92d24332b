#!/usr/bin/env bash
# Reproduce exported/anomaly-magnetic-tile-ae.onnx (shipped as anomaly-magnetic-tile until 2026-12-05): two anomaly models on the same normal images
# (same split seed, so the same held-out images), both at 128 px on the shorter side with the
# aspect ratio kept, trained on whole images batched by shape: the anomaly-magnetic-tile-fast
# recipe, and the same with --exposure gain (each image scaled to one mean brightness first);
# then fused into one graph and calibrated on the shared held-out images (docs/ANOMALY.md,
# "One brightness for every photo"). One after another (2 cores: never two at once); about
# 95 minutes on two CPU cores (50 + 42 + 1). --name/--out/--no-manifest only decide where a
# member is written, not what it learns. The first member is the anomaly-magnetic-tile-fast recipe
# (the shipped fusion holds exported/anomaly-magnetic-tile-fast.onnx itself), so if
# training/train_anomaly_magnetic_tile_fast.sh has just run, copy that file into $MEMBERS instead
# of training it again. The second member's recipe, same seed, has not reproduced: it scored image
# AUROC 0.850, 0.886 (the shipped member), 0.850 and 0.859 in four runs, none of the others
# giving the shipped weights (docs/ANOMALY.md, "A fourth run"), so expect a retrained fusion to
# score less than the shipped one.
set -euo pipefail
cd "$(dirname "$0")/.."
NORMAL=../shared/data/anomaly/magnetic_tile/tile/train/good
MEMBERS=runs/anomaly-magnetic-tile-members
python -m training.anomaly --normal "$NORMAL" --name anomaly-magnetic-tile-fast --resize keep-aspect \
  --out "$MEMBERS" --no-manifest
python -m training.anomaly --normal "$NORMAL" --name anomaly-magnetic-tile-fast-gain-seed0 --resize keep-aspect \
  --exposure gain --seed 0 --split-seed 0 --out "$MEMBERS" --no-manifest
python -m training.anomaly.fuse "$MEMBERS/anomaly-magnetic-tile-fast.onnx" "$MEMBERS/anomaly-magnetic-tile-fast-gain-seed0.onnx" \
  --name anomaly-magnetic-tile-ae \
  --description 'Surface-defect detector for magnetic tiles (grey): two 128 px keep-aspect autoencoder + segmenter members, one with exposure gain, fused'
python -m tools.bench_anomaly --model anomaly-magnetic-tile-ae --out docs/benchmarks/anomaly-ae.md --update-manifest
