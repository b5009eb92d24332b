"""Fit a feature-memory anomaly detector on a folder of normal images, on the device, without torch.

A frozen pretrained feature extractor (``features-lite0``, shipped) describes every image patch;
the memory keeps a greedy coreset of the normal patches (PatchCore's recipe); an image's anomaly
map is each patch's distance to its nearest normal patch. numpy and onnxruntime do the work; the
``onnx`` package writes the resulting graph (``edge_ae.anomaly.graph``).

Memory stays bounded for any number of images: each image gives at most
``pool_patches / n_images`` random patches (at least one), so the pool the coreset is chosen from
has a fixed size. Some normal images are held out (or ``val_normal`` is used) to set the
threshold exactly as training does (``edge_ae.anomaly.calibration``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge_ae.anomaly.calibration import DEFAULT_FPR, calibrate_f1, calibrate_fpr
from edge_ae.anomaly.coreset import greedy_coreset
from edge_ae.anomaly.inputs import MAX_ASPECT, MAX_WORK_PIXELS, keep_aspect_size, raw_batch, to_model_input
from edge_ae.errors import EdgeAEError, ImageError
from edge_ae.files.imageio import READ_SUFFIXES, read_image
from edge_ae.image import check_image
from edge_ae.model.contract import COLOR_ORDERS, METADATA_KEY, AnomalyCalibration, ModelSpec
from edge_ae.model.loading import LoadedModel, load_model, model_from_bytes
from edge_ae.model.registry import sha256_of

FEATURES = "features-lite0"
RESIZE_MODES = ("stretch", "keep-aspect")
Item = np.ndarray | str | Path
# Input size bounds. Scoring refuses a model input over MAX_WORK_PIXELS, and the input is at least
# size x size (the square, or the shorter side): a larger size would refuse every image.
MIN_SIZE, MAX_SIZE = 32, math.isqrt(MAX_WORK_PIXELS)
# A normal image must have this many pixels on its shorter side: a 1x1 or 4x4 "image" stretched
# to the input size teaches nothing about the surface and pulls the memory towards flat color.
MIN_SIDE = 16
# Fewer held-out normal images than this leave the threshold on one or two scores (a warning).
MIN_CALIBRATION_IMAGES = 10
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class FitOptions:
    """How a detector is fitted; the defaults are meant for any folder of normal images."""

    size: int = 256  # stretch: images resized to size x size; keep-aspect: shorter side
    resize: str = "stretch"
    memory_patches: int = 4000  # coreset size: the normal patches the model keeps
    pool_patches: int = 60000  # patches collected over all images before the coreset
    holdout: float = 0.15  # share of the normal images held out for calibration (no val_normal)
    fpr: float = DEFAULT_FPR  # target false-positive rate when only normal images are known
    blur_sigma: float = 4.0  # Gaussian smoothing of the map, in input pixels (PatchCore's 4)
    # Image score: mean of the map's top share of size x size pixels (0: its maximum). The mean of
    # the top 1 % is steadier than one pixel (docs/experiments/2026-12-05-anomaly-v2.md).
    score_top: float = 0.01
    # Features projected on their first principal axes (fitted on the pool) before the nearest-
    # neighbour search; 0 keeps all. 64 of 152 keep 95 % of the variance, drop dimensions that are
    # mostly noise (better on the magnetic-tile trial) and cost less per memory patch.
    project_dim: int = 64
    seed: int = 0
    features: str = FEATURES  # extractor: a shipped name or a path to a "features" model

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {self.size}")
        if self.memory_patches < 1 or self.pool_patches < self.memory_patches:
            raise ValueError(f"need 1 <= memory_patches <= pool_patches, got {self.memory_patches} and "
                             f"{self.pool_patches}")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must be a share between 0 and 1, got {self.holdout}")
        if not self.blur_sigma > 0:
            raise ValueError(f"blur_sigma must be positive, got {self.blur_sigma}")
        if self.project_dim < 0:
            raise ValueError(f"project_dim must be 0 (none) or positive, got {self.project_dim}")
        if not 0.0 <= self.score_top < 1.0:
            raise ValueError(f"score_top must be a share in [0, 1), got {self.score_top}")

    @property
    def score_pixels(self) -> int:
        """How many of the map's highest pixels the image score averages (1: the maximum)."""
        return max(1, round(self.score_top * self.size * self.size))


@dataclass(frozen=True)
class FitResult:
    """A fitted model: its ONNX bytes and contract, and what happened on the way."""

    data: bytes
    spec: ModelSpec
    fit_images: int
    calibration_images: int
    memory_patches: int
    seconds: float
    skipped: list[str] = field(default_factory=list)  # one line per unreadable image
    coreset_seconds: float = 0.0  # of ``seconds``: the greedy selection of the memory patches


def list_images(source: str | Path | Sequence[Item]) -> list[Item]:
    """A folder's image files (sorted, not recursive) or the given sequence of arrays / paths."""
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.is_dir():
            raise EdgeAEError(f"{folder}: not a folder of images")
        items: list[Item] = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in READ_SUFFIXES)
        if not items:
            raise EdgeAEError(f"{folder}: no image files ({', '.join(READ_SUFFIXES)})")
        return items
    return list(source)


def _label(item: Item, index: int) -> str:
    return str(item) if isinstance(item, (str, Path)) else f"image {index}"


def _read(item: Item) -> np.ndarray:
    return read_image(item) if isinstance(item, (str, Path)) else item


def _size(options: FitOptions, stride: int, shape: tuple[int, ...]) -> tuple[int, int]:
    if options.resize == "stretch":
        return (options.size, options.size)
    return keep_aspect_size(shape[0], shape[1], short_side=options.size, multiple=stride)


class _Extractor:
    def __init__(self, options: FitOptions, threads: int | None) -> None:
        self.model: LoadedModel = load_model(options.features, kind="features", threads=threads)
        self.stride = int(self.model.spec.size_multiple)
        self.options = options

    def __call__(self, image: np.ndarray, channels: int) -> np.ndarray:
        """(P, D) patch features of one image."""
        x = to_model_input(image, channels=channels, size=_size(self.options, self.stride, image.shape))
        feats = self.model.run({"image": x[None]})[0][0]
        return feats.reshape(feats.shape[0], -1).T


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 or image.shape[2] == 1 else 3


def _check_normal_shape(image: np.ndarray, label: str) -> np.ndarray:
    """Refuse a normal image too small or too elongated to teach the model anything (scoring
    would refuse the elongated one too)."""
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{label}: {w}x{h} image is too small for a normal image (at least {MIN_SIDE} pixels a side)")
    if max(h, w) / min(h, w) > MAX_ASPECT:
        raise ImageError(f"{label}: {w}x{h} image is more elongated than the {MAX_ASPECT:g}:1 anomaly scoring accepts")
    return image


class _Reader:
    """Reads images one at a time, reporting each unreadable one once and the progress per stage."""

    def __init__(self, progress: Progress | None, on_skip: Callable[[str], None] | None) -> None:
        self.progress, self.on_skip = progress, on_skip
        self.skipped: list[str] = []

    def _one(self, item: Item, index: int) -> np.ndarray | None:
        try:
            image = _read(item)
            if not isinstance(image, np.ndarray):
                raise ImageError(f"{_label(item, index)}: not an image array ({type(image).__name__})")
            return _check_normal_shape(check_image(image), _label(item, index))
        except ImageError as exc:
            message = str(exc)
        except (TypeError, ValueError) as exc:
            message = f"{_label(item, index)}: {exc}"
        self.skipped.append(message)
        if self.on_skip is not None:
            self.on_skip(message)
        return None

    def readable(self, item: Item, index: int) -> bool:
        """Whether ``item`` reads as a usable image (an unreadable one is reported once here)."""
        return self._one(item, index) is not None

    def __call__(self, items: list[Item], stage: str) -> Iterator[np.ndarray]:
        self.step(stage, 0, len(items))  # the stage starts now (its rate and ETA count from here)
        for i, item in enumerate(items):
            image = self._one(item, i)
            self.step(stage, i + 1, len(items))
            if image is not None:
                yield image

    def step(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)


def _split(items: list[Item], val_normal: str | Path | Sequence[Item] | None, options: FitOptions,
           rng: np.random.Generator, read: _Reader) -> tuple[list[Item], list[Item]]:
    """(images to fit on, normal images to set the threshold on). The held-out images are the first
    readable ones in a seeded random order, so unreadable files never take the threshold's places;
    they are read here once, and the images left unreadable are not fitted on either. When every
    image reads, the split is the plain seeded one (the same model as before for a clean folder)."""
    if val_normal is not None:
        return items, list_images(val_normal)
    return holdout_split(items, options, rng, read)


def holdout_split(items: list[Item], options: FitOptions, rng: np.random.Generator,
                  read: _Reader | None = None) -> tuple[list[Item], list[Item]]:
    """(images to fit on, the seeded ``options.holdout`` share held out to set the threshold); with
    ``read``, unreadable images are skipped (see ``_split``), without it every item counts as readable."""
    if len(items) < 2:
        raise EdgeAEError(f"need at least 2 normal images (some are held out to set the threshold), got {len(items)}")
    order = rng.permutation(len(items))
    n_hold = min(len(items) - 1, max(1, round(len(items) * options.holdout)))
    hold: list[int] = []
    unreadable: set[int] = set()
    for i in order:
        if len(hold) == n_hold:
            break
        if read is None or read.readable(items[i], int(i)):
            hold.append(int(i))
        else:
            unreadable.add(int(i))
    fit = [item for i, item in enumerate(items) if i not in unreadable and i not in hold]
    if not fit or not hold:
        raise EdgeAEError(f"need at least 2 readable normal images (some are held out to set the threshold), got "
                          f"{len(hold) + len(fit)} of {len(items)}")
    return fit, [items[i] for i in sorted(hold)]


def _collect(images: Iterator[np.ndarray], extractor: _Extractor, per_image: int,
             rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """(pool of patches, images used, channels): at most ``per_image`` random patches of each image."""
    pool: list[np.ndarray] = []
    channels = 0
    for image in images:
        channels = channels or _channels(image)
        patches = extractor(image, channels)
        keep = rng.choice(patches.shape[0], per_image, replace=False) if patches.shape[0] > per_image else slice(None)
        pool.append(np.ascontiguousarray(patches[keep], dtype=np.float32))
    if not pool:
        raise EdgeAEError("no readable normal image to fit on")
    return np.concatenate(pool), len(pool), channels


def _principal_axes(pool: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, the first ``dims`` principal axes as columns) of the pool; None for 0 or no fewer dims."""
    if not dims or dims >= pool.shape[1]:
        return None
    mean = pool.mean(0)
    _, _, vt = np.linalg.svd(pool - mean, full_matrices=False)
    return mean.astype(np.float32), np.ascontiguousarray(vt[:dims].T, dtype=np.float32)


def fit_anomaly_model(normal: str | Path | Sequence[Item], *, name: str = "my-line",
                      val_normal: str | Path | Sequence[Item] | None = None,
                      val_anomalous: str | Path | Sequence[Item] | None = None,
                      options: FitOptions | None = None, threads: int | None = None,
                      progress: Progress | None = None, on_skip: Callable[[str], None] | None = None,
                      command: str = "") -> FitResult:
    """Fit a detector on ``normal`` images (a folder, or arrays / paths); see the module doc.

    Unreadable images are skipped, each reported once through ``on_skip`` and in the result."""
    try:
        import onnx  # noqa: F401

        from edge_ae.anomaly.graph import build_anomaly_graph
    except ImportError:
        raise EdgeAEError("fitting writes an ONNX graph and needs the onnx package: pip install onnx") from None
    options = options or FitOptions()
    start = time.perf_counter()
    read = _Reader(progress, on_skip)
    rng = np.random.default_rng(options.seed)
    fit_items, hold_items = _split(list_images(normal), val_normal, options, rng, read)
    extractor = _Extractor(options, threads)
    per_image = max(1, math.ceil(options.pool_patches / len(fit_items)))
    pool, n_fit, channels = _collect(read(fit_items, "features"), extractor, per_image, rng)
    keep = min(options.memory_patches, pool.shape[0])
    read.step("memory", 0, keep)
    projection = _principal_axes(pool, options.project_dim)
    if projection is not None:
        pool = (pool - projection[0]) @ projection[1]
    t_coreset = time.perf_counter()
    memory = pool[greedy_coreset(pool, options.memory_patches, seed=options.seed,
                                 progress=lambda done, total: read.step("memory", done, total))]
    coreset_seconds = time.perf_counter() - t_coreset
    features_bytes = extractor.model.path.read_bytes()

    def build(spec: ModelSpec) -> bytes:
        return build_anomaly_graph(features_bytes, memory, blur_sigma=options.blur_sigma, channels=channels,
                                   score_pixels=options.score_pixels, projection=projection,
                                   metadata={METADATA_KEY: spec.to_json()},
                                   doc=spec.description).SerializeToString()

    draft = _spec(name, channels, extractor.stride, options, AnomalyCalibration(threshold=0.0, score_mean=0.0, score_std=0.0))
    scorer = model_from_bytes(build(draft), draft, threads=threads)

    def score(image: np.ndarray) -> float:
        return float(raw_batch(scorer, [image])[1][0])

    normal_scores, map_medians = [], []
    for im in read(hold_items, "calibrate"):
        maps, scores = raw_batch(scorer, [im])
        normal_scores.append(float(scores[0]))
        map_medians.append(float(np.median(maps[0])))
    if not normal_scores:
        raise EdgeAEError("no readable normal image left to set the threshold on")
    anomalous = ([score(im) for im in read(list_images(val_anomalous), "calibrate anomalous")]
                 if val_anomalous is not None else [])
    cal = calibrate_f1(normal_scores, anomalous) if anomalous else calibrate_fpr(normal_scores, fpr=options.fpr)
    cal = dataclasses.replace(cal, map_median=float(np.median(map_medians)))
    seconds = time.perf_counter() - start
    record = {
        "training_command": command or "edge_ae.anomaly.fit.fit_anomaly_model (Python)",
        "method": "feature memory: nearest-neighbour distance to a greedy coreset of normal patches (PatchCore-style)",
        "features": {"name": extractor.model.spec.name, "sha256": sha256_of(extractor.model.path),
                     "weights": extractor.model.spec.provenance.get("weights", {})},
        "fit_images": n_fit, "calibration_images": len(normal_scores), "memory_patches": int(memory.shape[0]),
        "pool_patches": int(pool.shape[0]), "fit_seconds": round(seconds, 1), "skipped_images": len(read.skipped),
        "options": asdict(options), "date": datetime.date.today().isoformat(), "python": platform.python_version(),
    }
    spec = _spec(name, channels, extractor.stride, options, cal, provenance=record)
    return FitResult(data=build(spec), spec=spec, fit_images=n_fit, calibration_images=len(normal_scores),
                     memory_patches=int(memory.shape[0]), seconds=seconds, skipped=read.skipped,
                     coreset_seconds=coreset_seconds)


def _spec(name: str, channels: int, stride: int, options: FitOptions, cal: AnomalyCalibration,
          provenance: dict | None = None) -> ModelSpec:
    keep = options.resize == "keep-aspect"
    shape = f"shorter side {options.size} px" if keep else f"{options.size}x{options.size}"
    return ModelSpec(
        name=name, kind="anomaly", channels=channels, color_order=COLOR_ORDERS[channels],
        size_multiple=stride if keep else 1, receptive_field=1,
        input_size=None if keep else (options.size, options.size), short_side=options.size if keep else None,
        anomaly=cal,
        description=(f"Anomaly detector ({'gray' if channels == 1 else 'color'}, {shape}) fitted on the device: "
                     f"pretrained {options.features} features, distance to the nearest of "
                     f"{options.memory_patches} normal patches."),
        provenance=json.loads(json.dumps(provenance or {})),
    )
