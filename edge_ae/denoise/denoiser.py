"""``Denoiser``: clean any OpenCV image with an edge-ae denoiser model.

    from edge_ae import Denoiser
    clean = Denoiser()(frame)                  # picks denoise-gray / denoise-color per input
    clean = Denoiser("denoise-color-fast", threads=2)(frame, sigma=15)
    softer = Denoiser()(photo, strength=0.7)   # keep more grain than the estimate says
    best = Denoiser(ensemble=8)(photo)         # average over 8 flips/rotations: stills, 8x the time

Blind by default: a model whose metadata names a ``noise_estimator`` (a small ``noise-level``
model trained end to end through it, training/denoise/) has that model estimate a per-pixel,
per-channel noise map first (from a grid of crops: ``level_grid.py``), except where the noise is
white, which a classical reading measures better (``white_noise.py``); a map model
(``noise_map``) is fed the map, an older model its mean. A gray model with no estimator of its own
uses ``noise-level-gray``, a color one the default color model's; with none installed, the
wavelet estimate (``estimate_sigma``) is the fallback. Below a level of 4 the output is blended
back towards the input (``gate.py``): level 0 returns the input. On the blind call, where the
input's local detail stands far above the level read there, the change is mostly blended back
too (``texture_gate.py``: a clean textured photo keeps its texture); a told sigma is used as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edge_ae import image as im
from edge_ae.denoise import gate, texture_gate
from edge_ae.denoise.blind import BlindLevel, NoiseEstimate
from edge_ae.denoise.ensemble import averaged, check_copies
from edge_ae.denoise.noise_level import estimate_sigma
from edge_ae.denoise.options import STRENGTHS, check_strength  # noqa: F401  (STRENGTHS: importable here as before)
from edge_ae.denoise.output import checked_output
from edge_ae.denoise.precision import PrecisionChoice, check_precision, choose
from edge_ae.denoise.streamed import denoise_in_tiles
from edge_ae.denoise.tiling import margin_for, one_tile, run_tiled
from edge_ae.errors import ModelError
from edge_ae.model.loading import LoadedModel, load_model
from edge_ae.model.registry import resolve_model

DEFAULT_MODELS = {1: "denoise-gray", 3: "denoise-color"}
FAST_MODELS = {1: "denoise-gray-fast", 3: "denoise-color-fast"}  # model=None with fast=True: live video
GRAY_ESTIMATOR = "noise-level-gray"  # for gray models without an estimator of their own (issue 52)


class Denoised(NamedTuple):
    """What ``Denoiser.denoise`` returns: the image (shape and dtype of the input) and the mean
    noise level (0-255) it was cleaned at, None for a model without a noise input."""

    image: np.ndarray
    level: float | None


class Denoiser:
    """Denoise HxW / HxWx1 / HxWx3 (BGR) / HxWx4 (BGRA) images of dtype uint8, uint16 or float32.

    Output has the input's shape and dtype; alpha is passed through untouched.

    * ``model``: a shipped model name, a path to an edge-ae ONNX file, or None for the default
      (``denoise-gray`` for gray input, ``denoise-color`` for color input, each loaded on first use).
    * ``threads``: onnxruntime intra-op threads (None: onnxruntime's default, all cores).
    * ``providers``: onnxruntime execution providers in order of preference (default: CPU).
    * ``tile``: core tile size in pixels; larger images are processed in overlapping tiles. The
      default (None) takes frames up to 1024x1024 in one tile (fastest) and larger images in
      512-pixel tiles, which keeps a 4000x3000 photo well under 1 GB of memory.
    * ``precision``: ``"auto"`` (default), ``"float"`` or ``"int8"``: which of a shipped denoiser
      and its ``-int8`` twin runs (``edge_ae.denoise.precision``). Auto takes the twin where the CPU
      has 8-bit dot products and the twin loses at most 0.1 dB on the benchmark; ``choice_for``
      says which ran and why. A model file runs as it is.
    * ``fast``: with ``model=None``, the fast models (``denoise-gray-fast`` / ``denoise-color-fast``)
      instead of the quality ones: live video, where every frame counts.
    * ``ensemble``: 1, 2, 4 or 8 copies of the image (flipped, transposed) run through the model
      and averaged (``edge_ae.denoise.ensemble``): a little cleaner (about +0.11 to +0.22 dB PSNR, see
      docs/BENCHMARKS.md) at that many times the cost; for still photos rather than live video.

    A gray model on a color image denoises B, G and R as three gray images; a color model on a
    gray image sees the gray plane repeated as BGR and its output is averaged back to gray.
    """

    def __init__(self, model: str | Path | LoadedModel | None = None, *, threads: int | None = None, tile: int | None = None,
                 ensemble: int = 1, precision: str = "auto", fast: bool = False,
                 providers: Sequence[str] | None = None) -> None:
        self.threads = threads
        self.providers = providers
        self.precision = check_precision(precision)
        self._defaults = FAST_MODELS if fast else DEFAULT_MODELS
        self.tile = tile
        self.ensemble = check_copies(ensemble)
        self._fixed: LoadedModel | None = None
        self._by_channels: dict[int, LoadedModel] = {}
        self._choices: dict[int, PrecisionChoice] = {}
        self._estimators: dict[str, LoadedModel | None] = {}
        # The mean noise level (0-255) the last call cleaned at, for reports ("est. sigma").
        self.last_sigma: float | None = None
        if model is not None:
            self._fixed_choice: PrecisionChoice | None = choose(model, self.precision)
            self._fixed = load_model(self._fixed_choice.model, kind="denoiser", threads=threads,
                                     providers=providers)
        else:
            self._fixed_choice = None

    def choice_for(self, channels: int) -> PrecisionChoice:
        """Which model runs on an image with ``channels`` planes (1 or 3), and why (float or 8-bit)."""
        return self._fixed_choice if self._fixed_choice is not None else self._default_choice(channels)

    def _default_choice(self, channels: int) -> PrecisionChoice:
        if channels not in self._choices:
            self._choices[channels] = choose(self._defaults[channels], self.precision)
        return self._choices[channels]

    @property
    def name(self) -> str:
        """The model's manifest name, or what is loaded by default for gray and color frames."""
        if self._fixed is not None:
            return self._fixed.spec.name
        return f"{DEFAULT_MODELS[1]} / {DEFAULT_MODELS[3]} (by channels)"

    def model_for(self, channels: int) -> LoadedModel:
        """The model used for an image with ``channels`` color planes (1 or 3)."""
        if self._fixed is not None:
            return self._fixed
        if channels not in self._by_channels:
            name = self._default_choice(channels).model
            self._by_channels[channels] = load_model(name, kind="denoiser", threads=self.threads,
                                                      providers=self.providers)
        return self._by_channels[channels]

    def _tile_for(self, size: tuple[int, ...]) -> int:
        if self.tile is not None:
            return self.tile
        return 1024 if max(size) <= 1024 else 512

    def _estimator_for(self, model: LoadedModel) -> LoadedModel | None:
        """The noise-level model the blind path runs for ``model``: its own (metadata
        ``noise_estimator``, looked up next to the model file, then by name), else for a gray
        model ``noise-level-gray`` (a color estimate averaged reads gray photos wrong: issue 52),
        else the default color model's; None when none is installed (the wavelet estimate is
        used then)."""
        name = model.spec.noise_estimator
        if name is None and model.spec.channels == 1:
            gray = self._gray_estimator(model)
            if gray is not None:
                return gray
        if name is None:
            if model.spec.name in (DEFAULT_MODELS[3], self._default_choice(3).model):
                return None
            try:
                name = self._model_for_default_color().spec.noise_estimator
            except ModelError:
                return None
            if name is None:
                return None
        # the model asks for it by name: a missing file is its error, said as such
        return self._estimator_named(model, name, required=model.spec.noise_estimator is not None)

    def _gray_estimator(self, model: LoadedModel) -> LoadedModel | None:
        return self._estimator_named(model, GRAY_ESTIMATOR, required=False)

    def _estimator_named(self, model: LoadedModel, name: str, *, required: bool) -> LoadedModel | None:
        """The estimator ``name`` beside ``model``'s file, else the shipped one; loaded once per
        folder and name. ``None`` when there is none and the model does not require it."""
        key = f"{model.path.parent}/{name}"
        if key not in self._estimators:
            beside = model.path.parent / f"{name}.onnx"
            try:
                path = beside if beside.is_file() else resolve_model(name)[0]
            except ModelError:
                if required:
                    raise
                path = None
            self._estimators[key] = None if path is None else load_model(
                path, kind="noise-level", threads=self.threads, providers=self.providers)
        return self._estimators[key]

    def _model_for_default_color(self) -> LoadedModel:
        if 3 not in self._by_channels:
            self._by_channels[3] = load_model(self._default_choice(3).model, kind="denoiser", threads=self.threads,
                                                  providers=self.providers)
        return self._by_channels[3]

    def noise_map(self, image: np.ndarray, *, model: LoadedModel | None = None) -> np.ndarray | None:
        """The blind noise-level estimate of ``image``: HxWxC float32 on the 0-255 scale (C: the
        estimator's channels), or None when no noise-level model is installed. Where the noise is
        white (``white_noise.py``) its classical reading, uniform; where it is not (camera noise,
        texture) the learned map; a blend between (``blind.py``)."""
        estimate = self.estimate(image, model=model)
        return None if estimate is None else estimate.level

    def estimate(self, image: np.ndarray, *, model: LoadedModel | None = None) -> NoiseEstimate | None:
        """``noise_map`` with how far the noise read as white: give it back as ``sigma=`` (e.g. on
        the next frames of a fixed camera) and the call is the blind call, texture gate included;
        None when no noise-level model is installed."""
        level = self.blind_level(image, model=model)
        h, w = image.shape[:2]
        return None if level is None else NoiseEstimate(level.region(0, h, 0, w), level.white)

    def blind_level(self, image: np.ndarray, *, model: LoadedModel | None = None) -> BlindLevel | None:
        """The image-wide parts of the blind estimate, to read the map one region at a time
        (``BlindLevel.region``); None when no noise-level model is installed."""
        planes = im.split(image)
        model = model or self.model_for(planes.color.shape[2])
        estimator = self._estimator_for(model)
        if estimator is None:
            return None
        batch, _ = im.adapt_channels(planes.color, estimator.spec.channels)
        spec = estimator.spec

        def infer(tile: np.ndarray) -> np.ndarray:
            return checked_output(estimator, estimator.run({"image": im.to_float(tile)})[0], tile, channels=None)

        return BlindLevel.of(infer, batch, multiple=spec.size_multiple, receptive_field=spec.receptive_field,
                             tile=self._tile_for(batch.shape[2:]))

    def __call__(self, image: np.ndarray, *, sigma: float | np.ndarray | NoiseEstimate | None = None,
                 strength: float = 1.0) -> np.ndarray:
        """Denoise ``image``.

        ``sigma``: the noise level on the 0-255 scale (whatever the dtype), one number or a map
        (HxW or HxWxC, e.g. from ``noise_map``), used as given; None estimates it from the image;
        a ``NoiseEstimate`` (from ``estimate``, reused over video frames) is used as the blind
        call uses its own. ``strength`` (0.25-4, default 1) multiplies the level: above 1 cleans
        harder, below 1 keeps more grain. Where the level is under 4 the output is blended
        towards the input (``gate.py``; level 0 returns the input); blind, strong texture keeps
        most of itself (``texture_gate.py``). ``last_sigma`` holds the mean
        level used: kept for existing callers, but shared by every thread using this object;
        ``denoise`` returns the level with the image instead."""
        result = self.denoise(image, sigma=sigma, strength=strength)
        self.last_sigma = result.level
        return result.image

    def denoise(self, image: np.ndarray, *, sigma: float | np.ndarray | NoiseEstimate | None = None,
                strength: float = 1.0) -> Denoised:
        """As calling the denoiser, returning the image and the mean noise level (0-255) it was
        cleaned at (None for a model without a noise input) together: the level of this call,
        safe when threads share one ``Denoiser``."""
        planes = im.split(image)
        model = self.model_for(planes.color.shape[2])
        spec = model.spec
        strength = check_strength(strength)
        if self.ensemble == 1 and not one_tile(*planes.color.shape[:2], multiple=spec.size_multiple,
                                                 tile=self._tile_for(planes.color.shape[:2])):
            # More than one tile: end to end in tiles, never a full-size float copy (streamed.py).
            out, used = denoise_in_tiles(self, image, planes, model, sigma=sigma, strength=strength)
            return Denoised(out, used)
        batch, how = im.adapt_channels(planes.color, spec.channels)
        level, not_white = self._level_and_texture(image, planes, model, sigma) if spec.noise_input else (0.0, 0.0)
        if isinstance(level, np.ndarray):
            if strength != 1.0:  # a full-size pass saved on the default call
                level = level * np.float32(strength)
            used = float(level.mean())
        else:
            level = float(level) * float(strength)
            used = level if spec.noise_input else None
        raw = batch  # the image as given (a tile of the streamed path reads the same values)
        feed_map = spec.noise_input and spec.noise_map
        if feed_map:  # the map travels with the image through tiles and flips, as extra channels
            levels = self._map_for(level, batch)
            batch = np.concatenate([im.to_float(batch), levels], axis=1)
        elif isinstance(level, np.ndarray):
            level = float(level.mean())
        sigma_feed = None if feed_map else np.full((batch.shape[0], 1), level / 255.0, np.float32)
        c = spec.channels

        def infer(tile: np.ndarray) -> np.ndarray:
            if feed_map:
                out = model.run({"image": np.ascontiguousarray(tile[:, :c]), "sigma": np.ascontiguousarray(tile[:, c:])})[0]
                return checked_output(model, out, tile, channels=c)
            feeds = {"image": im.to_float(tile)}
            if spec.noise_input and sigma_feed is not None:
                feeds["sigma"] = sigma_feed
            return checked_output(model, model.run(feeds)[0], tile, channels=c)

        def run(copy: np.ndarray) -> np.ndarray:
            return run_tiled(
                infer, copy, multiple=spec.size_multiple,
                margin=margin_for(spec.receptive_field, spec.size_multiple), tile=self._tile_for(copy.shape[2:]),
                out_channels=c,
            )

        out = averaged(run, batch, self.ensemble)
        keep = gate.weight(level) if spec.noise_input else None
        if not_white > 0.0:  # the blind call keeps the photo's own texture (texture_gate.py)
            texture = texture_gate.weight(raw, gate.mean_level(level), not_white)
            if texture is not None:
                keep = texture if keep is None else texture * keep
        if keep is not None:
            out = gate.blend(im.to_float(batch[:, :c]), out, keep)
        return Denoised(im.merge(planes, im.restore_channels(out, how)), used)

    def _level_and_texture(self, image: np.ndarray, planes: im.Planes, model: LoadedModel,
                           sigma: float | np.ndarray | NoiseEstimate | None) -> tuple[float | np.ndarray, float]:
        """The level before ``strength`` (a number or an HxWxC map, 0-255) and the texture gate's
        share (``texture_gate.py``: 0 unless the level is the blind estimate, or one given back)."""
        if sigma is None:
            found = self.blind_level(image, model=model)
            if found is None:  # no noise-level model installed: the wavelet estimate
                return estimate_sigma(image), 0.0
            # A model fed one level gets the map's mean, taken from the cells.
            h, w = planes.color.shape[:2]
            return (found.region(0, h, 0, w) if model.spec.noise_map else found.mean()), 1.0 - found.white
        if isinstance(sigma, NoiseEstimate):  # its map checked as a given one
            return self._level(image, planes, model, sigma.level), 1.0 - sigma.white
        return self._level(image, planes, model, sigma), 0.0

    def _level(self, image: np.ndarray, planes: im.Planes, model: LoadedModel,
               sigma: float | np.ndarray) -> float | np.ndarray:
        """A given noise level, checked: a number or an HxWxC map, 0-255 scale, before ``strength``."""
        if isinstance(sigma, np.ndarray) and sigma.ndim > 0:
            h, w = planes.color.shape[:2]
            if sigma.shape[:2] != (h, w) or sigma.ndim > 3 or not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
                raise ValueError(f"a sigma map must be HxW or HxWxC like the image ({h}x{w}), finite and >= 0; "
                                 f"got shape {sigma.shape}")
            return sigma.astype(np.float32).reshape(h, w, -1)
        sigma = float(sigma)
        if not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"sigma must be a finite number >= 0 (0-255 scale), got {sigma}")
        return sigma

    @staticmethod
    def _map_for(level: float | np.ndarray, batch: np.ndarray) -> np.ndarray:
        """``level`` (0-255) as the (N, C, H, W) map on the [0, 1] scale a map model takes."""
        n, c, h, w = batch.shape
        if not isinstance(level, np.ndarray):
            return np.full((n, c, h, w), level / 255.0, np.float32)
        planes = level.transpose(2, 0, 1)[None] / np.float32(255.0)
        if planes.shape[1] != c:  # e.g. a color estimate for a gray model: one level per pixel
            planes = planes.mean(axis=1, keepdims=True)
        return np.ascontiguousarray(np.broadcast_to(planes, (n, c, h, w)), dtype=np.float32)
