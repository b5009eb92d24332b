"""``Denoiser``: clean any OpenCV image with an edge-ae denoiser model.

    from edge_ae import Denoiser
    clean = Denoiser()(frame)                  # picks denoise-gray / denoise-color per input
    clean = Denoiser("denoise-color-fast", threads=2)(frame, sigma=15)
    best = Denoiser(ensemble=8)(photo)         # average over 8 flips/rotations: stills, 8x the time
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_ae import image as im
from edge_ae.denoise.ensemble import averaged, check_copies
from edge_ae.denoise.noise_level import estimate_sigma
from edge_ae.denoise.tiling import margin_for, run_tiled
from edge_ae.model.loading import LoadedModel, load_model

DEFAULT_MODELS = {1: "denoise-gray", 3: "denoise-color"}


class Denoiser:
    """Denoise HxW / HxWx1 / HxWx3 (BGR) / HxWx4 (BGRA) images of dtype uint8, uint16 or float32.

    Output has the input's shape and dtype; alpha is passed through untouched.

    * ``model``: a shipped model name, a path to an edge-ae ONNX file, or None for the default
      (``denoise-gray`` for grey input, ``denoise-color`` for colour input, each loaded on first use).
    * ``threads``: onnxruntime intra-op threads (None: onnxruntime's default, all cores).
    * ``tile``: core tile size in pixels; larger images are processed in overlapping tiles. The
      default (None) takes frames up to 1024x1024 in one tile (fastest) and larger images in
      512-pixel tiles, which keeps a 4000x3000 photo well under 1 GB of memory.
    * ``ensemble``: 1, 2, 4 or 8 copies of the image (flipped, transposed) run through the model
      and averaged (``edge_ae.denoise.ensemble``): a little cleaner (about +0.11 to +0.22 dB PSNR, see
      docs/BENCHMARKS.md) at that many times the cost; for still photos rather than live video.

    A grey model on a colour image denoises B, G and R as three grey images; a colour model on a
    grey image sees the grey plane repeated as BGR and its output is averaged back to grey.
    """

    def __init__(self, model: str | Path | None = None, *, threads: int | None = None, tile: int | None = None,
                 ensemble: int = 1) -> None:
        self.threads = threads
        self.tile = tile
        self.ensemble = check_copies(ensemble)
        self._fixed: LoadedModel | None = None
        self._by_channels: dict[int, LoadedModel] = {}
        if model is not None:
            self._fixed = load_model(model, kind="denoiser", threads=threads)

    def model_for(self, channels: int) -> LoadedModel:
        """The model used for an image with ``channels`` colour planes (1 or 3)."""
        if self._fixed is not None:
            return self._fixed
        if channels not in self._by_channels:
            self._by_channels[channels] = load_model(DEFAULT_MODELS[channels], kind="denoiser", threads=self.threads)
        return self._by_channels[channels]

    def tile_for(self, size: tuple[int, ...]) -> int:
        if self.tile is not None:
            return self.tile
        return 1024 if max(size) <= 1024 else 512

    def __call__(self, image: np.ndarray, *, sigma: float | None = None) -> np.ndarray:
        """Denoise ``image``. ``sigma`` is the noise standard deviation on the 0-255 scale
        (whatever the dtype); None estimates it from the image. Larger values clean harder."""
        planes = im.split(image)
        model = self.model_for(planes.color.shape[2])
        spec = model.spec
        if sigma is None:
            sigma = estimate_sigma(image) if spec.noise_input else 0.0
        if not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"sigma must be a finite number >= 0 (0-255 scale), got {sigma}")
        batch, how = im.adapt_channels(planes.color, spec.channels)
        sigma_feed = np.full((batch.shape[0], 1), sigma / 255.0, np.float32)

        def infer(tile: np.ndarray) -> np.ndarray:
            feeds = {"image": im.to_float(tile)}
            if spec.noise_input:
                feeds["sigma"] = sigma_feed
            return model.run(feeds)[0]

        def run(copy: np.ndarray) -> np.ndarray:
            return run_tiled(
                infer, copy, multiple=spec.size_multiple,
                margin=margin_for(spec.receptive_field, spec.size_multiple), tile=self.tile_for(copy.shape[2:]),
            )

        out = averaged(run, batch, self.ensemble)
        return im.merge(planes, im.restore_channels(out, how))
