"""Does a denoiser shift the colors of real photos? The mean change each model makes to the PolyU
pairs, and what restoring the input's low frequencies would give back (issue 52, second session).

    python -m tools.real_noise_bias          # about 2 min on 2 cores

Per model, blind as a user calls it (8-bit in and out, the real-noise benchmark's protocol): the
mean of (output - noisy input) per B, G, R channel over the 55 pairs (the noise itself is
zero-mean: the mean of (noisy - reference) is printed beside), the largest such shift on one
photo, and the mean PSNR of the output and of ``output - box(output - input)`` (the input's
local mean put back, box filters of ``SIZES`` pixels), on the odd and even pairs.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_ae import Denoiser
from tools.bench_real_noise import load_pairs, psnr

MODELS = ("denoise-color", "denoise-color-fast", "denoise-gray")
SIZES = (15, 25, 41)


def main() -> None:
    for name in MODELS:
        gray = name.startswith("denoise-gray")
        denoiser = Denoiser(name, threads=2)
        noise_mean, shift = [], []
        scores: dict[tuple[str, int], list[float]] = {}
        for i, pair in enumerate(load_pairs(grey=gray)):
            out = denoiser(pair.noisy)
            noisy, change = pair.noisy.astype(np.float32), out.astype(np.float32) - pair.noisy.astype(np.float32)
            noise_mean.append((noisy - pair.clean).reshape(-1, 1 if gray else 3).mean(axis=0))
            shift.append(change.reshape(-1, 1 if gray else 3).mean(axis=0))
            half = "odd" if i % 2 else "even"
            scores.setdefault((half, 0), []).append(psnr(out, pair.clean))
            for size in SIZES:
                local = cv2.blur(change, (size, size), borderType=cv2.BORDER_REFLECT_101)
                restored = np.clip(np.rint(out.astype(np.float32) - local), 0, 255).astype(np.uint8)
                scores.setdefault((half, size), []).append(psnr(restored, pair.clean))
        print(f"\n{name}: mean (noisy - reference) {np.round(np.mean(noise_mean, axis=0), 2)}, "
              f"mean (output - noisy) {np.round(np.mean(shift, axis=0), 2)}, "
              f"largest on one photo {np.round(np.abs(np.array(shift)).max(axis=0), 2)} (B, G, R or gray; 0-255)")
        for half in ("odd", "even"):
            cells = [f"as is {np.mean(scores[(half, 0)]):.2f}"]
            cells += [f"low frequencies of the input, box {s}: {np.mean(scores[(half, s)]):.2f}" for s in SIZES]
            print(f"  {half} pairs, PSNR dB: " + "; ".join(cells))


if __name__ == "__main__":
    main()
