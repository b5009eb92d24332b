"""Anomaly detection on images with an exported anomaly model.

The model's graph does all the maths (reconstruction, multi-scale error, smoothing, image
score); this module only fits an image to the model's input and the map back to the image.
Size policy (the same functions are used in training, so the two cannot drift): the whole image
is resized, nothing at the borders is cropped away, either to the model's fixed ``input_size``
(aspect ratio not kept) or, for a model with a ``short_side``, so that its shorter side has that
many pixels and the longer side keeps the aspect ratio (rounded to the model's size multiple).
Color is converted to gray for a gray model and gray repeated for a color model, alpha is
ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge_ae.anomaly.inputs import (  # noqa: F401  (also importable from here, as before)
    MAX_ASPECT,
    MAX_WORK_PIXELS,
    check_working_size,
    keep_aspect_size,
    model_input_size,
    raw_batch,
    to_model_input,
)
from edge_ae.errors import ImageError, ModelError, a_model_of
from edge_ae.image import check_image, is_single_image, to_bgr8
from edge_ae.model.contract import AnomalyCalibration, ModelSpec
from edge_ae.model.loading import LoadedModel, load_model, model_from_bytes

if TYPE_CHECKING:  # fit.py needs the onnx package; only its type is named here
    from edge_ae.anomaly.fit import FitResult


@dataclass(frozen=True, eq=False)
class AnomalyResult:
    """The verdict on one image.

    ``anomaly_map`` is HxW float32 at the image's own size, in the same units as ``score`` and
    ``threshold`` (a pixel above ``threshold`` is anomalous-looking)."""

    score: float
    normalized_score: float  # 0.5 at the threshold, monotone in ``score``
    is_anomaly: bool
    anomaly_map: np.ndarray
    threshold: float
    # The normal images' median map value (AnomalyCalibration.map_median): where the overlay's
    # color scale starts; None for models calibrated without it (the scale starts at 0).
    map_floor: float | None = None


class AnomalyDetector:
    """Flags images that do not look like the normal images a model was trained on.

    Build once (loads the ONNX session), call per image or frame::

        detector = AnomalyDetector("anomaly-magnetic-tile")
        result = detector(image)
    """

    def __init__(self, model: str | Path | LoadedModel, *, threads: int | None = None,
                 providers: Sequence[str] | None = None) -> None:
        self.model = load_model(model, kind="anomaly", threads=threads, providers=providers)
        spec = self.model.spec
        if spec.kind != "anomaly":
            raise ModelError(f"{spec.name}: expected an anomaly model, found {a_model_of(spec.kind)}")
        # ModelSpec validation guarantees both for kind "anomaly": a calibration, and an
        # input_size or a short_side.
        assert spec.anomaly is not None
        self.spec: ModelSpec = spec
        self.calibration: AnomalyCalibration = spec.anomaly
        self.fit_result: FitResult | None = None  # what AnomalyDetector.fit did; None when loaded

    @property
    def input_size(self) -> tuple[int, int] | None:
        """The fixed (height, width) every image is resized to; None for a model that keeps the
        aspect ratio (``spec.short_side``)."""
        if self.spec.input_size is None:
            return None
        return (int(self.spec.input_size[0]), int(self.spec.input_size[1]))

    @classmethod
    def fit(cls, normal: str | Path | list, *, name: str = "my-line", threads: int | None = None,
            **fit: object) -> AnomalyDetector:
        """A detector fitted on normal images (a folder, or a list of images / paths) on this machine,
        without torch: pretrained features and a memory of normal patches (``edge_ae.anomaly.fit``;
        keyword options ``val_normal``, ``val_anomalous``, ``options=FitOptions(...)``, ``progress``,
        ``on_skip``). Needs the ``onnx`` package. ``detector.fit_result`` says what was done;
        ``detector.save(path)`` writes the model."""
        from edge_ae.anomaly.fit import fit_anomaly_model

        result = fit_anomaly_model(normal, name=name, threads=threads, **fit)  # type: ignore[arg-type]
        detector = cls(model_from_bytes(result.data, result.spec, threads=threads))
        detector.fit_result = result
        return detector

    def save(self, path: str | Path) -> Path:
        """Write this detector's ONNX file to ``path`` (whole or not at all)."""
        from edge_ae.files.atomic import write_bytes_atomic

        data = self.fit_result.data if self.fit_result is not None else self.model.path.read_bytes()
        write_bytes_atomic(path, data)
        return Path(path)

    def raw(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Maps (N, h, w) at the model's input size and scores (N,), for one batch of images (for a
        model that keeps the aspect ratio, images whose shapes give the same input size)."""
        return raw_batch(self.model, images)

    def score(self, images: np.ndarray | Sequence[np.ndarray]) -> float | np.ndarray:
        """The anomaly score, without map or verdict (what calibration needs): higher means less
        like the normal images, in the units of ``calibration.threshold``. A float for one image,
        an (N,) array for a list of images or an N x H x W (x C) batch, as ``Autoencoder.score``."""
        if isinstance(images, np.ndarray) and is_single_image(images):
            return float(self.raw([images])[1][0])
        if len(images) == 0:
            raise ImageError("images is empty: nothing to score")
        # One at a time: images of a keep-aspect model may resize to different input sizes.
        return np.array([self.raw([image])[1][0] for image in images], np.float32)

    def __call__(self, image: np.ndarray) -> AnomalyResult:
        """The verdict on one image: score, normalised score, anomaly flag and a map at the image's size."""
        image = check_image(image)
        maps, scores = self.raw([image])
        score = float(scores[0])
        h, w = image.shape[:2]
        amap = cv2.resize(maps[0], (w, h), interpolation=cv2.INTER_LINEAR) if (h, w) != maps.shape[1:] else maps[0]
        cal = self.calibration
        return AnomalyResult(
            score=score,
            normalized_score=cal.normalized(score),
            is_anomaly=bool(score > cal.threshold),
            anomaly_map=np.ascontiguousarray(amap, dtype=np.float32),
            threshold=float(cal.threshold),
            map_floor=cal.map_median,
        )


def draw_overlay(image: np.ndarray, result: AnomalyResult, *, alpha: float = 0.45) -> np.ndarray:
    """The image with the anomaly map as a heatmap and the anomalous region outlined, as an 8-bit
    BGR image at the image's size.

    Colors are on a fixed scale, the same for every image so that heatmaps compare: it starts
    (blue) at the normal images' median map value recorded at calibration (``map_floor``; 0 for
    older models), the threshold sits mid-scale and as far again above it is full red. A fitted
    model's normal cells already sit at a distance well above 0, so a scale from 0 painted the whole
    normal surface mid-scale and hid the defect. Regions above the threshold get a white outline
    and the score is written in the corner (red when anomalous)."""
    base = to_bgr8(image)
    amap = result.anomaly_map
    if amap.shape != base.shape[:2]:
        amap = cv2.resize(amap, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_LINEAR)
    level = result.threshold if result.threshold > 0 else float(np.max(amap)) or 1.0
    floor = result.map_floor if result.map_floor is not None and result.map_floor < level else 0.0
    heat = np.clip((amap - floor) / (2.0 * (level - floor)) * 255.0, 0, 255).astype(np.uint8)
    colored = cv2.applyColorMap(heat, cv2.COLORMAP_JET)
    out = cv2.addWeighted(base, 1.0 - alpha, colored, alpha, 0.0)
    region = (amap > level).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, round(min(base.shape[:2]) / 200))
    cv2.drawContours(out, contours, -1, (255, 255, 255), thickness + 1)
    cv2.drawContours(out, contours, -1, (0, 0, 255), thickness)
    label = f"{'ANOMALY' if result.is_anomaly else 'normal'} {result.normalized_score:.2f}"
    scale = max(0.4, min(base.shape[:2]) / 400)
    color = (0, 0, 255) if result.is_anomaly else (0, 200, 0)
    origin = (4, int(18 * scale) + 4)
    cv2.putText(out, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(out, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
    return out
