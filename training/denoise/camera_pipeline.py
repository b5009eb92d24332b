"""Realistic camera noise for training, synthesised from clean sRGB images.

Real photos are not clean images plus white noise: the sensor adds signal-dependent shot noise
and read noise to a Bayer mosaic of linear values, then the camera demosaics (which correlates the
noise across neighbouring pixels and channels), white-balances and color-corrects (which makes
the channels differently noisy), applies its tone curve (shadows noisier than highlights),
sharpens, smooths the chroma and writes a JPEG. A network trained on white noise, and a noise
estimate that looks at the finest wavelet band, both miss most of that (issue 45).

So each clean image is run backwards to approximate sensor values, noised there, and run forwards
again, as in Brooks et al., "Unprocessing Images for Learned Raw Denoising" (CVPR 2019) and CBDNet
(Guo et al., CVPR 2019):

  sRGB -> inverse tone curve -> inverse gamma -> inverse color matrix (a random mix of four
  cameras' matrices) -> inverse white balance (highlights kept) -> RGGB mosaic
  -> shot + read noise (shot level log-uniform, read level tied to it as Brooks measured)
  -> OpenCV demosaicing on uint16 (bilinear or edge-aware) -> white balance -> color matrix
  -> gamma -> tone curve -> optional mild sharpening -> optional chroma smoothing -> optional JPEG.

The training target is the same forward pipeline without noise (and the same JPEG where the noisy
copy has one), so the network learns to remove the noise, not to redo the demosaicing or undo the
JPEG. Ranges are Brooks's unless stated. numpy + OpenCV only; the
per-image work (demosaic, JPEG) is OpenCV on small patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# XYZ -> camera matrices of four cameras (Brooks et al. 2019, from DNG metadata).
XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
], np.float64)
RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                    [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]])
# Shot-noise variance per unit of linear signal: Brooks's range, from bright daylight to low light.
SHOT_RANGE = (1e-4, 1.2e-2)
GREY_WEIGHTS = np.array([0.114, 0.587, 0.299], np.float32)  # BGR, as cv2.COLOR_BGR2GRAY
DEMOSAIC = (cv2.COLOR_BayerBG2RGB, cv2.COLOR_BayerBG2RGB_EA)  # OpenCV's name for an RGGB mosaic


@dataclass(frozen=True)
class CameraParams:
    """One simulated camera and exposure."""

    rgb2cam: np.ndarray  # 3x3, rows sum to 1
    rgb_gain: float  # overall brightness gain the camera applied
    red_gain: float
    blue_gain: float
    shot: float  # shot-noise variance per unit linear signal
    read: float  # read-noise variance
    demosaic: int  # an OpenCV Bayer conversion code
    sharpen: float  # unsharp-mask amount, 0: none
    chroma_blur: float  # Gaussian sigma (pixels) of the chroma smoothing, 0: none
    jpeg_quality: int  # 0: no JPEG
    jpeg_target_quality: int = 0  # the target's JPEG quality; 0: the same as the noisy image's


def sample_params(rng: np.random.Generator, *, shot: float | None = None,
                  shot_range: tuple[float, float] = SHOT_RANGE, jpeg_probability: float = 0.8,
                  jpeg_quality: tuple[int, int] = (75, 98), sharpen_probability: float = 0.5,
                  chroma_blur_probability: float = 0.5, jpeg_target_quality: int = 0) -> CameraParams:
    """A random camera. ``shot`` fixes the noise level (else log-uniform over ``shot_range``).
    ``jpeg_target_quality`` 100 gives the target a near-lossless JPEG instead of the noisy
    image's (how the first trials ran, docs/experiments/2026-12-05-real-noise.md)."""
    weights = rng.uniform(1e-8, 1.0, size=(len(XYZ2CAMS), 1, 1))
    xyz2cam = (XYZ2CAMS * weights).sum(axis=0) / weights.sum()
    rgb2cam = xyz2cam @ RGB2XYZ
    rgb2cam /= rgb2cam.sum(axis=1, keepdims=True)
    if shot is None:
        shot = float(np.exp(rng.uniform(np.log(shot_range[0]), np.log(shot_range[1]))))
    # Read noise follows shot noise along the line Brooks fitted to real sensors (log domain).
    read = float(np.exp(2.18 * np.log(shot) + 1.20 + rng.normal(0.0, 0.26)))
    return CameraParams(
        rgb2cam=rgb2cam,
        rgb_gain=float(1.0 / np.clip(rng.normal(0.8, 0.1), 0.5, 1.2)),
        red_gain=float(rng.uniform(1.9, 2.4)),
        blue_gain=float(rng.uniform(1.5, 1.9)),
        shot=float(shot),
        read=read,
        demosaic=int(DEMOSAIC[rng.integers(len(DEMOSAIC))]),
        sharpen=float(rng.uniform(0.1, 0.6)) if rng.random() < sharpen_probability else 0.0,
        chroma_blur=float(rng.uniform(0.5, 1.5)) if rng.random() < chroma_blur_probability else 0.0,
        jpeg_quality=int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1)) if rng.random() < jpeg_probability else 0,
        jpeg_target_quality=jpeg_target_quality,
    )


def _inverse_tone(x: np.ndarray) -> np.ndarray:
    """Inverse of the smoothstep tone curve 3x^2 - 2x^3 that Brooks use as a generic camera curve."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)


def _tone(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return 3.0 * x**2 - 2.0 * x**3


def unprocess(rgb: np.ndarray, p: CameraParams) -> np.ndarray:
    """HxWx3 sRGB in [0, 1] -> HxW RGGB mosaic of approximate linear sensor values."""
    lin = np.maximum(_inverse_tone(rgb), 1e-8) ** 2.2
    cam = lin @ p.rgb2cam.T
    gains = np.array([1.0 / p.red_gain, 1.0, 1.0 / p.blue_gain]) / p.rgb_gain
    # Inverting white balance would push bright pixels above 1, where a sensor clips; so near
    # white the inverse gain fades to 1 (Brooks's "safe" inversion) and highlights stay clipped.
    grey = cam.mean(axis=2, keepdims=True)
    mask = (np.maximum(grey - 0.9, 0.0) / 0.1) ** 2
    cam = np.clip(cam * np.maximum(mask + (1.0 - mask) * gains, gains), 0.0, 1.0)
    mosaic = np.empty(cam.shape[:2], cam.dtype)
    mosaic[0::2, 0::2] = cam[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = cam[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = cam[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = cam[1::2, 1::2, 2]
    return mosaic


def add_sensor_noise(mosaic: np.ndarray, p: CameraParams, rng: np.random.Generator) -> np.ndarray:
    """Shot noise (variance proportional to the signal) plus read noise, clipped as a sensor does."""
    std = np.sqrt(np.maximum(mosaic, 0.0) * p.shot + p.read)
    return np.clip(mosaic + rng.standard_normal(mosaic.shape) * std, 0.0, 1.0)


def process(mosaic: np.ndarray, p: CameraParams) -> np.ndarray:
    """HxW RGGB mosaic in [0, 1] -> HxWx3 sRGB in [0, 1] (demosaic, gains, color matrix, curves)."""
    raw16 = (np.clip(mosaic, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    cam = cv2.cvtColor(raw16, p.demosaic).astype(np.float64) / 65535.0
    cam = np.clip(cam * (np.array([p.red_gain, 1.0, p.blue_gain]) * p.rgb_gain), 0.0, 1.0)
    lin = np.clip(cam @ np.linalg.inv(p.rgb2cam).T, 0.0, 1.0)
    out = _tone(np.maximum(lin, 1e-8) ** (1.0 / 2.2))
    if p.sharpen > 0:
        blurred = cv2.GaussianBlur(out, (0, 0), 1.0)
        out = np.clip(out + p.sharpen * (out - blurred), 0.0, 1.0)
    return out


def _smooth_chroma(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Cameras' own noise reduction smooths color much more than brightness."""
    ycc = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2YCrCb)
    ycc[:, :, 1:] = cv2.GaussianBlur(ycc[:, :, 1:], (0, 0), sigma)
    return np.clip(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB), 0.0, 1.0)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    bgr8 = (np.clip(rgb[:, :, ::-1], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", bgr8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("OpenCV could not decode the JPEG it encoded")
    return decoded[:, :, ::-1].astype(np.float32) / 255.0


def simulate(rgb: np.ndarray, p: CameraParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, target) HxWx3 float32 sRGB for one clean HxWx3 RGB image (even height and width)."""
    mosaic = unprocess(rgb.astype(np.float64), p)
    target = process(mosaic, p)
    noisy = process(add_sensor_noise(mosaic, p, rng), p)
    if p.chroma_blur > 0:  # the camera smooths the color of everything it records, target included
        target = _smooth_chroma(target, p.chroma_blur)
        noisy = _smooth_chroma(noisy, p.chroma_blur)
    if p.jpeg_quality:
        noisy = _jpeg(noisy, p.jpeg_quality)
        # The target is what this camera would have written without sensor noise: the same JPEG
        # of the noise-free rendering. JPEG's loss on the scene itself (4:2:0 color, blocks,
        # ringing) is not noise: no denoiser can undo it, and a real reference (the mean of many
        # shots of one scene, as in PolyU) carries it too. A target without it asked the network,
        # and so the end-to-end noise estimate, to smooth harder than real photos want.
        target = _jpeg(target, p.jpeg_target_quality or p.jpeg_quality)
    return noisy.astype(np.float32), target.astype(np.float32)


def camera_batch(clean: np.ndarray, rng: np.random.Generator, *, shot: float | None = None,
                 **options: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-noised copies of a batch of clean patches.

    ``clean``: (N, C, H, W) float32 in [0, 1], C = 3 (BGR, as the training data) or 1 (gray:
    simulated as a color camera whose output is converted to gray); H and W even. ``shot`` fixes
    the noise level of every image; ``options`` go to ``sample_params``.
    Returns (noisy, target, level): noisy and target (N, C, H, W) float32 in [0, 1], and the root
    mean square of noisy - target per image, (N, 1), on the [0, 1] scale.
    """
    if clean.ndim != 4 or clean.shape[1] not in (1, 3) or clean.shape[2] % 2 or clean.shape[3] % 2:
        raise ValueError(f"expected (N, 1 or 3, H, W) patches with even H and W, got shape {clean.shape}")
    n, c = clean.shape[:2]
    noisy = np.empty(clean.shape, np.float32)
    target = np.empty(clean.shape, np.float32)
    for i in range(n):
        hwc = clean[i].transpose(1, 2, 0)
        rgb = np.repeat(hwc, 3, axis=2) if c == 1 else hwc[:, :, ::-1]
        out_noisy, out_target = simulate(rgb, sample_params(rng, shot=shot, **options), rng)  # type: ignore[arg-type]
        for out, result in ((noisy, out_noisy), (target, out_target)):
            bgr = result[:, :, ::-1]
            out[i] = (bgr @ GREY_WEIGHTS)[None] if c == 1 else bgr.transpose(2, 0, 1)
    level = np.sqrt(((noisy - target) ** 2).reshape(n, -1).mean(axis=1, keepdims=True)).astype(np.float32)
    return noisy, target, level
