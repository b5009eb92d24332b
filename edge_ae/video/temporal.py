"""Temporal denoising for a fixed camera: average each denoised frame with the previous output
where the scene has not changed, and not where it has, so moving objects leave no ghost.

* Blending: per pixel the filter keeps an *age*, the number of frames averaged there (capped at
  ``max_age``); a static pixel becomes a running mean of the denoised frames. Where the scene
  changed, the age drops to 0 and the pixel is this frame's denoised value, as per-frame
  denoising gives.
* Motion: the difference between this frame and the running mean, as a robust z-score against
  its own spread over the frame (so the noise level is measured, not assumed; valid while less
  than half of a fixed camera's view moves, and capped by the input noise so that a cut or a
  light switched on still counts as change). Computed on the denoised and on the raw frames,
  from the mean difference and from its energy over a small and a 3x larger box; the mask is
  then grown a little, since the inside of a moving object changes less than its edges.
* Detail restoration: a denoiser smooths fine texture the same way in every frame, so averaging
  its outputs alone gains little (under 1 dB on a textured scene). The same running mean is kept
  of the *raw* frames, whose noise falls as 1/N while their texture stays; what that mean has
  beyond the denoised mean is added back through a local Wiener gain (signal energy against the
  known remaining noise variance, with a margin), so texture returns where enough frames were
  averaged. Needs the raw frame and its noise level; without them the filter only blends.
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
      moving object can look unchanged while its edges do not;
    * ``margin``: detail counts as signal only above ``margin`` times the noise variance left
      (over-subtraction: where a single frame is all there is, as on a moving object, a noisy
      energy estimate would otherwise add noise back).
    """

    def __init__(self, *, max_age: int = 8, low: float = 4.0, high: float = 6.0, window: int = 5, grow: int = 5,
                 margin: float = 1.5) -> None:
        if max_age < 1:
            raise ValueError(f"max_age must be at least 1, got {max_age}")
        if not 0 < low < high:
            raise ValueError(f"need 0 < low < high, got low={low} high={high}")
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd number, got {window}")
        if grow < 1 or grow % 2 == 0:
            raise ValueError(f"grow must be a positive odd number, got {grow}")
        self.grow = grow
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = margin
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
        assert self._age is not None and self._var is not None  # set together with _prev
        motion = self.motion(cur, self._prev, sigma=sigma)
        if raw_f is not None:
            assert self._raw is not None and sigma is not None  # raw_f exists only with both
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
        assert self._raw is not None and sigma is not None
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
        # gain = signal / (signal + nv), signal = max(energy - margin * nv, 0); in place, for speed
        signal = np.subtract(energy, self.margin * nv, out=energy)
        np.maximum(signal, 0.0, out=signal)
        gain = signal / (signal + nv + np.float32(1e-12))
        gain *= detail
        gain += smooth
        return gain

    def motion(self, current: np.ndarray, previous: np.ndarray, *, sigma: float | None = None) -> np.ndarray:
        """HxW motion weight in [0, 1] (0 static, 1 moving) for float planes on [0, 1].

        Two cues, the larger wins: the box mean of the signed difference (noise cancels, a
        change of brightness adds up) and the box mean of the squared difference (texture
        shifted inside a moving object, whose signed difference cancels too). Each is turned
        into a robust z-score against its own spread over the frame."""
        delta = current - previous
        diff = _channel_mean(delta)
        k = (self.window, self.window)
        mean = np.abs(cv2.blur(diff, k, borderType=cv2.BORDER_REFLECT))
        # Per-channel squares: a change of color at equal brightness cancels in ``diff``.
        energy = cv2.blur(_channel_mean(delta * delta), k, borderType=cv2.BORDER_REFLECT)
        # Signed cue: spread of the smoothed difference, capped by what two raw frames' noise
        # could give, so that a change over most of the view still counts as motion.
        spread = _median(mean) * MAD_TO_STD
        ceiling = (sigma / 255.0) ** 2 if sigma is not None else None
        if ceiling is not None:
            spread = min(spread, np.sqrt(2.0 * ceiling) / self.window)
        z_mean = mean / max(spread, 0.25 / 255.0)
        # Energy cue: distance above the typical (median) energy in robust deviations; capped
        # likewise by the energy of two frames' noise (2 sigma^2) and its spread over the box.
        med, dev = _median_and_spread(energy)
        if ceiling is not None:
            med = min(med, 2.0 * ceiling)
            dev = min(dev, 2.0 * np.sqrt(2.0) * ceiling / self.window)
        z_energy = (energy - med) / max(dev, (0.25 / 255.0) ** 2)
        # Coarse energy cue: a 3x wider box sees a moving object's faint inner texture change
        # that one small box cannot tell from noise.
        kc = (3 * self.window, 3 * self.window)
        coarse = cv2.blur(energy, kc, borderType=cv2.BORDER_REFLECT)
        med_c, dev_c = _median_and_spread(coarse)
        if ceiling is not None:
            med_c = min(med_c, 2.0 * ceiling)
            dev_c = min(dev_c, 2.0 * np.sqrt(2.0) * ceiling / (3 * self.window))
        z_energy = np.maximum(z_energy, (coarse - med_c) / max(dev_c, (0.25 / 255.0) ** 2))
        z = np.maximum(z_mean, z_energy)
        weight = np.clip((z - self.low) / (self.high - self.low), 0.0, 1.0)
        if self.grow > 1:
            weight = cv2.dilate(weight, np.ones((self.grow, self.grow), np.uint8))
        return weight


def _median(values: np.ndarray) -> float:
    """Median over a 1-in-16 grid of pixels: the same statistic for a frame-wide spread, at a
    sixteenth of the cost (it runs several times a frame)."""
    return float(np.median(values[::4, ::4]))


def _median_and_spread(values: np.ndarray) -> tuple[float, float]:
    """Median and robust standard deviation (median absolute deviation), on the same grid."""
    grid = values[::4, ::4]
    med = float(np.median(grid))
    return med, float(np.median(np.abs(grid - med))) * MAD_TO_STD


def _channel_mean(planes: np.ndarray) -> np.ndarray:
    """HxWxC -> HxW mean over channels (adding slices: much faster than a reduction over a
    3-long axis)."""
    total = planes[:, :, 0].copy()
    for c in range(1, planes.shape[2]):
        total += planes[:, :, c]
    if planes.shape[2] > 1:
        total *= np.float32(1.0 / planes.shape[2])
    return total
