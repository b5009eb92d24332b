"""What a denoiser model must give back, checked for every run: the contract's shape and finite
values. Below both ``denoiser.py`` and ``streamed.py``, which call it."""

from __future__ import annotations

import numpy as np

from edge_ae.errors import ModelError
from edge_ae.model.loading import LoadedModel


def checked_output(model: LoadedModel, out: np.ndarray, tile: np.ndarray, *, channels: int | None) -> np.ndarray:
    """A model's output as the contract promises it (N x C x H x W like the tile, finite), or a
    one-line ``ModelError``: a custom model that returns another shape, other channels or NaN is
    never written as "denoised". The finiteness test is one sum, a fraction of the inference."""
    n, _, h, w = tile.shape
    want = (n, channels, h, w) if channels is not None else None
    got = tuple(np.shape(out))
    if len(got) != 4 or (want is not None and got != want) or (want is None and (got[0], got[2], got[3]) != (n, h, w)):
        expected = "x".join(map(str, want)) if want is not None else f"{n}xCx{h}x{w}"
        raise ModelError(f"{model.spec.name}: output of shape {'x'.join(map(str, got))}, expected {expected} "
                         "(the contract: same height and width as the input, the model's channels)")
    if not np.isfinite(np.sum(out, dtype=np.float64)):
        raise ModelError(f"{model.spec.name}: output has NaN or infinite values: the model is broken for this input")
    return out
