"""Temporal denoising for a fixed camera: average each denoised frame with the previous output
where the scene has not changed, and not where it has, so moving objects leave no ghost.

* Blending: per pixel the filter keeps an *age*, the number of frames averaged there (capped at
  ``max_age``); a static pixel becomes a running mean of the denoised frames. Where the scene
  changed, the age drops to 0 and the pixel is this frame's denoised value, as per-frame
  denoising gives.
* Motion: the difference between this frame and the running mean, as a robust z-score against
  its own spread over the frame (so the noise level is measured, not assumed; valid while less
  than half of a fixed camera's view moves, and capped by the input noise so that a cut or a
  light switched on still counts as change). Computed on the denoised and on the raw frames.
* Detail restoration: a denoiser smooths fine texture the same way in every frame, so averaging
  its outputs alone gains little (under 1 dB on a textured scene). The same running mean is kept
  of the *raw* frames, whose noise falls as 1/N while their texture stays; what that mean has
  beyond the denoised mean is added back through a local Wiener gain (signal energy against the
  known remaining noise variance), so texture returns where enough frames were averaged.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_ae import image as im

MAD_TO_STD = 1.0 / 0.6745


class TemporalFilter:
    """``filt(denoised, raw=frame, sigma=s)`` -> the temporally filtered frame (same shape and dtype
    as ``denoised``).

    * ``max_age``: most frames averaged at a static pixel (more: cleaner, slower to settle);
    * ``low``, ``high``: the motion ramp, in noise standard deviations of the smoothed
      difference: below ``low`` a pixel is static, above ``high`` it is moving;
    * ``window``: box size (odd pixels) for smoothing the difference and for the local energy
      of the detail restoration;
    * ``grow``: the motion mask is dilated by this many pixels (odd), because the middle of a
      moving object can look unchanged while its edges do not.
    """

    def __init__(self, *, max_age: int = 8, low: float = 4.0, high: float = 6.0, window: int = 5, grow: int = 5) -> None:
        if max_age < 1:
            raise ValueError(f"max_age must be at least 1, got {max_age}")
        if not 0 < low < high:
            raise ValueError(f"need 0 < low < high, got low={low} high={high}")
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd number, got {window}")
        if grow < 1 or grow % 2 == 0:
            raise ValueError(f"grow must be a positive odd number, got {grow}")
        self.grow = grow
        self.max_age = max_age
        self.low = low
        self.high = high
        self.window = window
        self.reset()

    def reset(self) -> None:
        """Forget the past (after a reconnect or a change of resolution)."""
        self._prev: np.ndarray | None = None  # running mean of the denoised frames, HxWxC float32 on [0, 1]
        self._raw: np.ndarray | None = None  # running mean of the raw frames, same weights
        self._age: np.ndarray | None = None  # HxW: frames averaged so far, capped at max_age
        self._var: np.ndarray | None = None  # HxW: noise variance left in ``_raw``, as a fraction of one frame's
        self.last_motion_fraction = 0.0  # share of pixels treated as moving in the last frame

    def __call__(self, denoised: np.ndarray, *, raw: np.ndarray | None = None, sigma: float | None = None) -> np.ndarray:
        """Filter ``denoised`` (this frame after the denoiser). ``raw`` is the same frame before
        denoising and ``sigma`` its noise level (0-255 scale); with both, texture the denoiser
        smoothed away is restored from the running mean of the raw frames. Without them the
        filter only blends denoised frames."""
        planes = im.split(denoised)
        cur = im.to_float(planes.color)
        raw_f = im.to_float(im.split(raw).color) if raw is not None and sigma else None
        if raw_f is not None and raw_f.shape != cur.shape:
            raise ValueError(f"raw frame shape {raw_f.shape} does not match the denoised frame's {cur.shape}")
        if self._prev is None or self._prev.shape != cur.shape or (raw_f is None) != (self._raw is None):
            self._prev, self._raw = cur, raw_f
            self._age = np.ones(cur.shape[:2], np.float32)
            self._var = np.ones(cur.shape[:2], np.float32)
            self.last_motion_fraction = 1.0
            return denoised.copy()
        motion = self.motion(cur, self._prev, sigma=sigma)
        if raw_f is not None:
            # The raw frames keep the texture the denoiser smooths, so texture moving inside an
            # object shows there even where the denoised frames barely change.
            motion = np.maximum(motion, self.motion(raw_f, self._raw, sigma=sigma))
        age = self._age * (1.0 - motion)
        w = age / (age + 1.0)
        out = cur + w[:, :, None] * (self._prev - cur)
        self._age = np.minimum(age + 1.0, float(self.max_age))
        self._prev = out
        self.last_motion_fraction = float(np.mean(motion > 0.5))
        if raw_f is None:
            return im.merge(planes, out.copy())  # merge may reuse its argument; ``out`` is our state
        self._raw = raw_f + w[:, :, None] * (self._raw - raw_f)
        # Exact noise variance of a weighted mean of independent frames, updated recursively.
        self._var = (1.0 - w) ** 2 + w**2 * self._var
        return im.merge(planes, self.restore(out, self._raw, self._var * np.float32((sigma / 255.0) ** 2)))

    def restore(self, smooth: np.ndarray, raw_mean: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        """Add back the part of ``raw_mean - smooth`` that is signal, not noise: a local Wiener
        gain on the detail, from its local energy against the noise variance left in the mean.
        Where many frames were averaged the noise is low and lost texture comes back; where the
        scene just changed the noise is a full frame's and little is added."""
        detail = raw_mean - smooth
        k = (self.window, self.window)
        energy = cv2.blur(detail * detail, k, borderType=cv2.BORDER_REFLECT).reshape(detail.shape)
        nv = noise_var[:, :, None]
        signal = np.maximum(energy - nv, 0.0)
        return smooth + signal / (signal + nv + 1e-12) * detail

    def motion(self, current: np.ndarray, previous: np.ndarray, *, sigma: float | None = None) -> np.ndarray:
        """HxW motion weight in [0, 1] (0 static, 1 moving) for float planes on [0, 1].

        Two cues, the larger wins: the box mean of the signed difference (noise cancels, a
        change of brightness adds up) and the box mean of the squared difference (texture
        shifted inside a moving object, whose signed difference cancels too). Each is turned
        into a robust z-score against its own spread over the frame."""
        delta = current - previous
        diff = np.mean(delta, axis=2, dtype=np.float32)
        k = (self.window, self.window)
        mean = np.abs(cv2.blur(diff, k, borderType=cv2.BORDER_REFLECT))
        # Per-channel squares: a change of colour at equal brightness cancels in ``diff``.
        energy = cv2.blur(np.mean(delta * delta, axis=2, dtype=np.float32), k, borderType=cv2.BORDER_REFLECT)
        # Signed cue: spread of the smoothed difference, capped by what two raw frames' noise
        # could give, so that a change over most of the view still counts as motion.
        spread = float(np.median(mean)) * MAD_TO_STD
        if sigma is not None:
            spread = min(spread, np.sqrt(2.0) * sigma / 255.0 / self.window)
        z_mean = mean / max(spread, 0.25 / 255.0)
        # Energy cue: distance above the typical (median) energy in robust deviations.
        med = float(np.median(energy))
        dev = float(np.median(np.abs(energy - med))) * MAD_TO_STD
        z_energy = (energy - med) / max(dev, (0.25 / 255.0) ** 2)
        z = np.maximum(z_mean, z_energy)
        weight = np.clip((z - self.low) / (self.high - self.low), 0.0, 1.0)
        if self.grow > 1:
            weight = cv2.dilate(weight, np.ones((self.grow, self.grow), np.uint8))
        return weight
