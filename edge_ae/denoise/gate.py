"""Leave nearly clean photos alone: below a low noise level the denoiser's output is blended back
towards its input, in proportion to the level.

Why: told sigma 0, the color model still changes a clean photo (43.8 dB against the input on
McMaster, below issue 52's 45 dB bar), and on white noise of sigma 1-3 a blend of input and output
beats the output alone for every shipped model (docs/experiments/2026-12-06-blind-calibration.md).
So at level ``s`` (0-255) the output is ``input + min(s / GATE_LEVEL, 1) * (denoised - input)``:
level 0 is an exact pass-through, levels from ``GATE_LEVEL`` up are untouched. The learned
estimators were trained through this same gate (training/denoise/train_blind.py ``gate_level``).
"""

from __future__ import annotations

import numpy as np

GATE_LEVEL = 4.0  # 0-255 scale


def weight(level: float | np.ndarray) -> float | np.ndarray | None:
    """How much of the denoiser's change to keep: a number, or an HxW map for an HxWxC level map
    (the mean over its channels); None where the level is ``GATE_LEVEL`` or more everywhere."""
    if isinstance(level, np.ndarray):
        if float(level.min()) >= GATE_LEVEL:  # the usual case, and a quick check (no reduction per pixel)
            return None
        return np.minimum(mean_level(level) * np.float32(1.0 / GATE_LEVEL), np.float32(1.0))
    level = float(level)
    return None if level >= GATE_LEVEL else level / GATE_LEVEL


def mean_level(level: float | np.ndarray) -> float | np.ndarray:
    """An HxWxC level map averaged over its channels (HxW, float32, the same arithmetic for any
    region); a number or an HxW map as it is."""
    if not isinstance(level, np.ndarray) or level.ndim < 3:
        return level
    planes = [level[:, :, c] for c in range(level.shape[2])]
    return np.add.reduce(planes, dtype=np.float32) * np.float32(1.0 / len(planes))


def blend(source: np.ndarray, denoised: np.ndarray, keep: float | np.ndarray) -> np.ndarray:
    """``source + keep * (denoised - source)`` for (N, C, H, W) float batches, in ``denoised``'s
    memory; ``keep`` a number, an HxW map or an (N, 1, H, W) one."""
    denoised -= source
    denoised *= keep
    denoised += source
    return denoised
