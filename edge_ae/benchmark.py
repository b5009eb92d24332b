"""Timing shipped models end to end on this machine, and picking the best one that keeps up
with a frame rate (``edge-ae bench``).

Each model is timed the way the runtime uses it on a camera frame: the public call (``Denoiser``
with its noise level estimated, ``AnomalyDetector`` with its resize and map, ...) on a generated
frame of the requested size, after warm-up calls, as the median of ``repeat`` calls with a fixed
thread count. A model of a kind without a driver here is timed through its raw graph.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ae.model.registry import ModelEntry

# Op types that mark a graph as 8-bit (training/denoise/quantize.py writes QDQ / QLinear graphs).
_INT8_OPS = (b"QuantizeLinear", b"QLinearConv", b"ConvInteger", b"MatMulInteger", b"QLinearMatMul")


def is_eight_bit(path: Path) -> bool:
    """Whether an ONNX file holds 8-bit operators (read as bytes: the runtime has no onnx)."""
    data = path.read_bytes()
    return any(op in data for op in _INT8_OPS)


@dataclass(frozen=True)
class Timing:
    name: str
    kind: str
    channels: int
    eight_bit: bool
    size: tuple[int, int]  # (width, height) of the frame
    threads: int
    repeat: int
    ms: float  # median over the timed calls
    ms_min: float
    macs_per_pixel: float | None  # from the manifest, where it records one
    quality: float | None  # the manifest's headline quality figure (higher is better)
    quality_label: str

    @property
    def fps(self) -> float:
        return 1000.0 / self.ms if self.ms > 0 else float("inf")

    @property
    def macs_per_second(self) -> float | None:
        if not self.macs_per_pixel or self.ms <= 0:
            return None
        return self.macs_per_pixel * self.size[0] * self.size[1] / (self.ms / 1000.0)


def quality_of(entry: ModelEntry) -> tuple[float | None, str]:
    """One number per model to rank models of the same kind and channels: denoisers their mean
    PSNR at sigma 25 on their benchmark set, anomaly models their image AUROC, autoencoders
    their test PSNR. None where the manifest records none of these."""
    q = entry.quality or {}
    if entry.kind == "denoiser":
        at25 = [v["psnr"] for k, v in q.items() if isinstance(v, dict) and "psnr" in v and k.endswith("sigma25")]
        if at25:
            sets = sorted({k.split("/")[0] for k in q if k.endswith("sigma25")})
            return float(np.mean(at25)), f"PSNR dB, {'/'.join(sets)} sigma 25"
    if entry.kind == "anomaly" and isinstance(q.get("image_auroc"), (int, float)):
        return float(q["image_auroc"]), "image AUROC"
    if isinstance(q.get("test_psnr_db"), (int, float)):
        return float(q["test_psnr_db"]), "test PSNR dB"
    return None, ""


def synthetic_frame(width: int, height: int, channels: int, *, seed: int = 0) -> np.ndarray:
    """A uint8 camera-like frame: smooth shapes and edges plus sensor-like noise (sigma 15)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 128 + 60 * np.sin(x / 23.0) * np.cos(y / 17.0) + 40 * ((x // 64 + y // 48) % 2)
    planes = [base, base[::-1], base[:, ::-1]][:channels]
    rng = np.random.default_rng(seed)
    frame = np.stack(planes, axis=2) + rng.normal(0.0, 15.0, (height, width, channels))
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    return frame[:, :, 0] if channels == 1 else frame


def _raw_runner(entry: ModelEntry, threads: int) -> tuple[Callable[[np.ndarray], object], int]:
    """A model of a kind this module does not know: its graph on the frame, resized to the
    input size the graph or metadata fixes (the frame's own size where nothing does)."""
    import cv2

    from edge_ae.model.loading import load_model

    model = load_model(entry.name, threads=threads)
    spec = model.spec
    inputs = model.session.get_inputs()
    names = [o.name for o in model.session.get_outputs()]

    def feeds_for(frame: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {}
        for i in inputs:
            shape = [d if isinstance(d, int) and d > 0 else None for d in i.shape]
            if len(shape) == 4:
                h = shape[2] or (spec.input_size[0] if spec.input_size else frame.shape[0])
                w = shape[3] or (spec.input_size[1] if spec.input_size else frame.shape[1])
                m = spec.size_multiple
                h, w = max(m, h // m * m), max(m, w // m * m)
                img = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, -1)
                feeds[i.name] = img.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
            else:
                feeds[i.name] = np.full([d or 1 for d in shape], 0.1, np.float32)
        return feeds

    return (lambda frame: model.session.run(names, feeds_for(frame))), spec.channels


def frame_runner(entry: ModelEntry, *, threads: int) -> tuple[Callable[[np.ndarray], object], int]:
    """(call on one frame, channels the frame should have) for a shipped model."""
    if entry.kind == "denoiser":
        from edge_ae.denoise.denoiser import Denoiser
        from edge_ae.denoise.precision import exact

        # the named model itself, never its twin: bench times each one and says what auto picks
        return Denoiser(entry.name, threads=threads, precision=exact(entry.name)), entry.channels
    if entry.kind == "anomaly":
        from edge_ae.anomaly.detector import AnomalyDetector

        return AnomalyDetector(entry.name, threads=threads), entry.channels
    if entry.kind == "autoencoder":
        from edge_ae.autoencoder import Autoencoder

        return Autoencoder(entry.name, threads=threads).reconstruct, entry.channels
    return _raw_runner(entry, threads)


def time_model(entry: ModelEntry, *, size: tuple[int, int], threads: int, repeat: int = 5,
               warmup: int = 1) -> Timing:
    """Time ``entry`` on a generated ``size`` (width, height) frame: ``warmup`` untimed calls,
    then the median of ``repeat`` timed ones."""
    if repeat < 1 or warmup < 0 or threads < 1:
        raise ValueError(f"repeat >= 1, warmup >= 0 and threads >= 1 expected, got {repeat}, {warmup}, {threads}")
    run, channels = frame_runner(entry, threads=threads)
    frame = synthetic_frame(size[0], size[1], channels)
    for _ in range(warmup):
        run(frame)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(frame)
        times.append((time.perf_counter() - start) * 1000.0)
    macs = entry.speed.get("macs_per_pixel") if entry.speed else None
    quality, label = quality_of(entry)
    return Timing(
        name=entry.name, kind=entry.kind, channels=channels, eight_bit=is_eight_bit(entry.path), size=size,
        threads=threads, repeat=repeat, ms=statistics.median(times), ms_min=min(times),
        macs_per_pixel=float(macs) if isinstance(macs, (int, float)) else None, quality=quality, quality_label=label,
    )


@dataclass(frozen=True)
class Pick:
    kind: str
    channels: int
    model: Timing | None  # the best model reaching the frame rate, None if none does
    fastest: Timing  # the fastest of the group, for when none reaches it


def recommend(timings: list[Timing], *, fps: float) -> list[Pick]:
    """Per (kind, channels): the best-quality model whose median time reaches ``fps`` (the
    fastest such model where no quality is recorded), and the group's fastest model."""
    groups: dict[tuple[str, int], list[Timing]] = {}
    for t in timings:
        groups.setdefault((t.kind, t.channels), []).append(t)
    picks = []
    for (kind, channels), group in groups.items():
        fast_enough = [t for t in group if t.fps >= fps]
        best = max(fast_enough, key=lambda t: (t.quality if t.quality is not None else float("-inf"), -t.ms),
                   default=None)
        picks.append(Pick(kind=kind, channels=channels, model=best, fastest=min(group, key=lambda t: t.ms)))
    return picks


def eight_bit_pairs(timings: list[Timing]) -> list[tuple[Timing, Timing]]:
    """(float, 8-bit) pairs of the same model timed here: ``X`` and ``X-int8``."""
    by_name = {t.name: t for t in timings}
    return [(by_name[t.name[: -len("-int8")]], t) for t in timings
            if t.name.endswith("-int8") and t.name[: -len("-int8")] in by_name]
