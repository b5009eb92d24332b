"""The per-frame work of a live run: noise level -> denoise -> temporal filter -> anomaly
detection -> the picture to show. No threads, no sinks, no clock: one frame in, one out, so it
can be tested and reused on its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_ae.denoise.blind import NoiseEstimate
from edge_ae.denoise.noise_level import estimate_sigma
from edge_ae.denoise.options import DenoiseOptions
from edge_ae.image import to_bgr8
from edge_ae.video.controls import ControlChange, LiveControls
from edge_ae.video.temporal import TemporalFilter


@dataclass(frozen=True)
class Processed:
    image: np.ndarray  # the processed frame, source dtype
    view: np.ndarray  # 8-bit BGR, with the anomaly overlay if any
    anomaly: Any  # an AnomalyResult, or None


class FramePipeline:
    """Options as ``Stream`` documents them (``denoise``, ``options``: a ``DenoiseOptions``,
    ``estimate_every``, ``temporal``, ``anomaly``, ``overlay``, ``threads``). Models load here,
    so a bad model path fails before any camera opens.

    ``controls`` takes changes from other threads (``strength``, denoising on or off), applied at
    the start of the next frame; ``last_sigma`` is the mean noise level (0-255) the last frame
    was cleaned at (None when nothing denoised it)."""

    def __init__(self, *, denoise: str | Path | Callable[..., np.ndarray] | None = None,
                 options: DenoiseOptions | None = None, estimate_every: int = 8,
                 temporal: bool | TemporalFilter = False, anomaly: Any = None,
                 overlay: Callable[[np.ndarray, Any], np.ndarray] | None = None, threads: int | None = None) -> None:
        options = options if options is not None else DenoiseOptions()
        if not isinstance(options, DenoiseOptions):
            raise TypeError(f"options must be a DenoiseOptions, got {type(options).__name__}")
        if isinstance(estimate_every, bool) or not isinstance(estimate_every, int) or estimate_every < 1:
            raise ValueError(f"estimate_every must be a whole number >= 1, got {estimate_every!r}")
        self.options = options
        self.denoiser = _make_denoiser(denoise, threads, options)
        self.detector = _make_detector(anomaly, threads)
        self.overlay = overlay
        self.temporal = temporal if isinstance(temporal, TemporalFilter) else (TemporalFilter() if temporal else None)
        self.sigma = options.sigma
        self.strength = options.strength  # changed live through ``controls``
        self.estimate_every = estimate_every
        self._sigma_ema: float | None = None
        self._level_map: np.ndarray | NoiseEstimate | None = None  # learned estimate, reused between estimates
        self._level_age = 0
        self._learned = True  # until the denoiser turns out to have no noise-level model
        self.controls = LiveControls()
        self.denoise_enabled = True  # False: the denoiser and the temporal filter are bypassed
        self.last_sigma: float | None = None

    def __call__(self, image: np.ndarray) -> Processed:
        change = self.controls.take()
        if change is not None:
            self._apply(change)
        out = image
        denoiser = self.denoiser if self.denoise_enabled else None
        temporal = self.temporal if self.denoise_enabled else None
        sigma = self.noise_level(image) if (denoiser is not None or temporal is not None) else None
        mean = None if sigma is None else float(np.mean(_level_of(sigma)))
        self.last_sigma = mean
        if denoiser is not None:
            out = denoiser(image, sigma=sigma)
        if temporal is not None:
            out = temporal(out, raw=image if denoiser is not None else None, sigma=mean)
        result = self.detector(out) if self.detector is not None else None
        view = to_bgr8(out)
        if result is not None:
            view = self._overlay()(view, result)
        return Processed(image=out, view=view, anomaly=result)

    def _apply(self, change: ControlChange) -> None:
        if change.strength is not None:
            self.strength = change.strength
        if change.denoise is not None and change.denoise != self.denoise_enabled:
            self.denoise_enabled = change.denoise
            if change.denoise and self.temporal is not None:
                self.temporal.reset()  # its average is of frames from before the pause

    def reset(self) -> None:
        """Start afresh after the view may have changed (a camera reconnected)."""
        if self.temporal is not None:
            self.temporal.reset()
        self._sigma_ema = None

    def noise_level(self, image: np.ndarray) -> float | np.ndarray | NoiseEstimate:
        if self.sigma is not None:
            return self.sigma
        learned = self._learned_level(image)
        if isinstance(learned, NoiseEstimate):  # given back as the blind call would use it
            return learned.scaled(self.strength)
        if learned is not None:
            return learned * np.float32(self.strength)
        # One frame's estimate wobbles by a few percent; smoothing keeps the denoising strength
        # from flickering on a fixed camera.
        estimate = estimate_sigma(image)
        self._sigma_ema = estimate if self._sigma_ema is None else 0.8 * self._sigma_ema + 0.2 * estimate
        return self._sigma_ema * self.strength

    def _learned_level(self, image: np.ndarray) -> np.ndarray | NoiseEstimate | None:
        """The denoiser's learned noise estimate (``Denoiser.estimate``, or a map from a
        ``noise_map`` of another denoiser), re-estimated every ``estimate_every`` frames (a
        camera's noise changes with its exposure, not from frame to frame) and averaged with the
        previous estimate so the strength does not flicker; None without a noise-level model."""
        read = getattr(self.denoiser, "estimate", None) or getattr(self.denoiser, "noise_map", None)
        if not self._learned or read is None:
            return None
        previous = self._level_map
        stale = previous is None or _level_of(previous).shape[:2] != image.shape[:2]
        if stale or self._level_age >= self.estimate_every:
            estimate = read(image)
            if estimate is None:
                self._learned = False
                return None
            if previous is None or stale:
                self._level_map = estimate
            elif isinstance(estimate, NoiseEstimate) and isinstance(previous, NoiseEstimate):
                self._level_map = previous.averaged(estimate)
            else:
                self._level_map = 0.5 * (_level_of(previous) + _level_of(estimate))
            self._level_age = 0
        self._level_age += 1
        return self._level_map

    def _overlay(self) -> Callable[[np.ndarray, Any], np.ndarray]:
        if self.overlay is None:
            from edge_ae.anomaly.detector import draw_overlay  # the anomaly runtime, only when used

            self.overlay = draw_overlay
        return self.overlay


def _level_of(sigma: float | np.ndarray | NoiseEstimate) -> np.ndarray:
    """The level (0-255) of a number, a map or an estimate, as an array."""
    return np.asarray(sigma.level if isinstance(sigma, NoiseEstimate) else sigma)


def _make_denoiser(denoise: Any, threads: int | None, options: DenoiseOptions) -> Callable[..., np.ndarray] | None:
    if denoise is None or callable(denoise):
        return denoise
    from edge_ae.denoise.denoiser import Denoiser

    return Denoiser(denoise, threads=threads, tile=options.tile, ensemble=options.ensemble, precision=options.precision)


def _make_detector(anomaly: Any, threads: int | None) -> Any:
    if anomaly is None or callable(anomaly):
        return anomaly
    from edge_ae.anomaly.detector import AnomalyDetector  # the anomaly runtime, only when used

    return AnomalyDetector(anomaly, threads=threads)
