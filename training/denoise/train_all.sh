#!/usr/bin/env bash
# Train every shipped denoiser and the plain baseline, one after another (2 cores: never two at once).
# Reproduces exported/: python -m training.denoise.export runs/<name>/best.pt after each shipped one,
# except denoise-gray-fast: it ships after 8-bit fine-tuning, so export runs/qat/denoise-gray-fast/best.pt,
# then python -m training.denoise.quantize exported/denoise-gray-fast.onnx for its -int8 twin.
# denoise-color-3x3, denoise-color-separable and denoise-color-fast-base are not shipped: each is the run
# the next one starts from (init_from), so denoise-color is denoise-color-3x3, fine-tuned twice, and
# denoise-color-fast is denoise-color-fast-base, fine-tuned once.
set -euo pipefail
cd "$(dirname "$0")/../.."
for name in denoise-color-3x3 denoise-color-separable denoise-color denoise-gray denoise-color-fast-base denoise-color-fast denoise-gray-fast \
            plain-cae-gray plain-cae-color; do
  python -m training.denoise.train "training/denoise/configs/$name.json" --out runs
done
# The fast grey model is run in 8 bits: fine-tune it with the quantizer's rounding simulated (docs/DENOISING.md).
python -m training.denoise.qat runs/denoise-gray-fast/best.pt --out runs/qat
# Blind by default (issue 45): once denoise-color and denoise-color-fast are exported as above, each
# colour model's noise-level estimator is learnt through it (frozen), and the pair is exported again
# with a noise-map input; then quantize those two for their -int8 twins.
#   python -m training.denoise.train_blind training/denoise/configs/blind-color.json
#   python -m training.denoise.export_blind runs/blind-color/best.pt --denoiser denoise-color --estimator noise-level-color
#   python -m training.denoise.train_blind training/denoise/configs/blind-color-fast.json
#   python -m training.denoise.export_blind runs/blind-color-fast/best.pt --denoiser denoise-color-fast --estimator noise-level-color-fast
