"""How an image becomes an anomaly model's input (its working size, the (C, H, W) float32
array) and what one batch of such inputs gives back: the numpy side that ``AnomalyDetector``
and the on-device fit (``fit.py``) share, below both of them."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge_ae.errors import ImageError
from edge_ae.image import check_image, split, to_float
from edge_ae.model.contract import ModelSpec
from edge_ae.model.loading import LoadedModel


def keep_aspect_size(height: int, width: int, *, short_side: int, multiple: int) -> tuple[int, int]:
    """(height, width) with the shorter side ``short_side`` and the longer one in proportion,
    rounded to a multiple of ``multiple`` (at least one multiple)."""
    scale = short_side / min(height, width)

    def fit(n: int) -> int:
        return max(multiple, int(round(n * scale / multiple)) * multiple)

    return (short_side, fit(width)) if height <= width else (fit(height), short_side)


# Working-size bounds for scoring. An image is resized whole, so a 1x5000 strip would become
# 128x640000 for a model with a 128-pixel short side (~23 GB in the graph), or be squashed
# beyond recognition into a fixed square: neither can be scored sensibly.
MAX_ASPECT = 10.0  # longer side / shorter side
MAX_WORK_PIXELS = 4_000_000  # pixels of the model input (about 1 GB of graph memory)


def check_working_size(spec: ModelSpec, height: int, width: int) -> tuple[int, int]:
    """``model_input_size``, refused (ImageError) for an image too elongated to score or whose
    model input would be too large."""
    aspect = max(height, width) / max(1, min(height, width))
    if aspect > MAX_ASPECT:
        shown = f"{aspect:.0f}" if aspect >= 100 else f"{aspect:.3g}"
        raise ImageError(f"{width}x{height} image: aspect ratio {shown}:1 is over the {MAX_ASPECT:g}:1 that "
                         f"anomaly scoring accepts (the whole image is resized for {spec.name}): crop it into parts")
    size = model_input_size(spec, height, width)
    if size[0] * size[1] > MAX_WORK_PIXELS:
        raise ImageError(f"{width}x{height} image: {spec.name} would work on {size[1]}x{size[0]} pixels, over the "
                         f"{MAX_WORK_PIXELS / 1e6:g} megapixels anomaly scoring allows")
    return size


def model_input_size(spec: ModelSpec, height: int, width: int) -> tuple[int, int]:
    """The (height, width) an image of this size is resized to for ``spec``'s anomaly model."""
    if spec.short_side is not None:
        return keep_aspect_size(height, width, short_side=spec.short_side, multiple=spec.size_multiple)
    assert spec.input_size is not None  # ModelSpec validation: an anomaly model has one or the other
    return (int(spec.input_size[0]), int(spec.input_size[1]))


def to_model_input(image: np.ndarray, *, channels: int, size: tuple[int, int]) -> np.ndarray:
    """An image (runtime image contract) as the model's (C, H, W) float32 input on [0, 1]."""
    color = to_float(split(image).color)  # HxWxC float32 on [0, 1], alpha dropped
    if channels == 1 and color.shape[2] == 3:
        color = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)[:, :, None]
    elif channels == 3 and color.shape[2] == 1:
        color = np.repeat(color, 3, axis=2)
    h, w = size
    # Area averaging when shrinking avoids aliasing that would look like texture defects.
    shrinking = color.shape[0] > h or color.shape[1] > w
    resized = cv2.resize(color, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    return np.clip(resized, 0.0, 1.0).transpose(2, 0, 1).astype(np.float32, copy=False)


def raw_batch(model: LoadedModel, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Maps (N, h, w) at the model's input size and scores (N,), for one batch of images (for a
    model that keeps the aspect ratio, images whose shapes give the same input size)."""
    spec = model.spec
    checked = [check_image(im) for im in images]
    sizes = {check_working_size(spec, *im.shape[:2]) for im in checked}
    if len(sizes) != 1:
        raise ValueError(f"images of one batch must resize to one input size for {spec.name}, "
                         f"found {len(sizes)} sizes: {sorted(sizes)}; pass them one at a time")
    size = sizes.pop()
    batch = np.stack([to_model_input(im, channels=spec.channels, size=size) for im in checked])
    maps, scores = model.run({"image": batch})
    return maps[:, 0], scores.reshape(-1)
