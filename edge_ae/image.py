"""The image contract shared by every runtime function (OpenCV's conventions):

* shape HxW, HxWx1, HxWx3 (BGR) or HxWx4 (BGRA; alpha passed through untouched);
* dtype uint8 (0-255), uint16 (0-65535) or float32 (0.0-1.0, values outside are allowed and
  clipped only where a model needs it).

The value range comes from the dtype alone, never from the pixel values.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_ae.errors import ImageError

SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def check_image(image: object, *, name: str = "image") -> np.ndarray:
    """Raise ImageError unless ``image`` meets the contract; return it as an ndarray."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name} must be a numpy array (HxW or HxWxC), got {type(image).__name__}")
    if image.dtype not in SCALES:
        raise ImageError(f"{name} must be uint8, uint16 or float32, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageError(f"{name} must be HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(f"{name} is empty (shape {image.shape})")
    if image.dtype == np.float32:
        # Refused rather than passed on: a model's convolutions spread one NaN over its receptive
        # field, and the noise estimate turns it into a NaN noise level.
        bad = image.size - int(np.count_nonzero(np.isfinite(image)))
        if bad:
            raise ImageError(f"{name} has {bad} NaN or infinite value(s): expected finite numbers (0.0-1.0 for float32)")
    return image


@dataclass(frozen=True)
class Planes:
    """An image split into what a model sees and what it must give back untouched."""

    color: np.ndarray  # HxWxC view of the input in its own dtype, C in (1, 3); no copy is made
    alpha: np.ndarray | None  # HxW in the original dtype, or None
    shape: tuple[int, ...]
    dtype: np.dtype


def split(image: np.ndarray) -> Planes:
    image = check_image(image)
    alpha = None
    if image.ndim == 2:
        color = image[:, :, None]
    elif image.shape[2] == 4:
        color, alpha = image[:, :, :3], image[:, :, 3]
    else:
        color = image
    return Planes(color=color, alpha=alpha, shape=image.shape, dtype=image.dtype)


def merge(planes: Planes, color: np.ndarray) -> np.ndarray:
    """Inverse of ``split``: processed float color planes back in the original shape and dtype
    (``color`` may be overwritten to save memory on large images)."""
    out = from_float(color, planes.dtype)
    if planes.alpha is not None:
        out = np.concatenate([out, planes.alpha[:, :, None]], axis=2)
    elif len(planes.shape) == 2:
        out = out[:, :, 0]
    return out


def to_float(image: np.ndarray) -> np.ndarray:
    scale = SCALES[image.dtype]
    out = image.astype(np.float32)
    if scale != 1.0:
        out *= np.float32(1.0 / scale)
    return out


def from_float(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float [0, 1] to ``dtype``, rounding and clipping; works in place on ``image`` when it is
    a writable float32 array (large images: no extra full-size temporaries)."""
    scale = SCALES[np.dtype(dtype)]
    if scale == 1.0:
        return image.astype(np.float32, copy=False)
    work = image if image.dtype == np.float32 and image.flags.writeable else image.astype(np.float32)
    work *= np.float32(scale)
    work += np.float32(0.5)
    np.clip(work, 0, scale, out=work)
    return work.astype(dtype)


def adapt_channels(color: np.ndarray, model_channels: int) -> tuple[np.ndarray, str]:
    """Fit HxWxC planes (any dtype) to a model's channel count.

    * gray model, color image: each of B, G, R goes through the model as its own gray image;
    * color model, gray image: the gray plane is repeated to BGR and the output averaged back.

    Returns the planes as a batch (N, C_model, H, W) and how to undo it ("same", "per_channel",
    "replicate")."""
    c = color.shape[2]
    chw = color.transpose(2, 0, 1)
    if c == model_channels:
        return chw[None], "same"
    if model_channels == 1:
        return chw[:, None], "per_channel"
    return np.repeat(chw, 3, axis=0)[None], "replicate"


def restore_channels(batch: np.ndarray, how: str) -> np.ndarray:
    """Inverse of ``adapt_channels``: (N, C_model, H, W) back to HxWxC."""
    if how == "same":
        return batch[0].transpose(1, 2, 0)
    if how == "per_channel":
        return batch[:, 0].transpose(1, 2, 0)
    return batch[0].mean(axis=0, keepdims=True).transpose(1, 2, 0)


def is_single_image(images: np.ndarray) -> bool:
    """Whether an array is one image (HxW, or HxWxC with C of 1, 3 or 4) rather than a batch
    (N x H x W or N x H x W x C): how the task classes tell ``score(image)`` from ``score(batch)``."""
    return images.ndim == 2 or (images.ndim == 3 and images.shape[2] in (1, 3, 4))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The image at 8 bits per value, channels unchanged: uint16 divided by 257, float taken as
    0-1 and rounded (clipped first). The one depth conversion for display and pictures."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image // 257).astype(np.uint8)
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any contract image as 8-bit, 3-channel BGR (video files, windows, overlays): gray is
    repeated, alpha dropped. Always a new array, so drawing on it never touches the input."""
    image = to_uint8(check_image(image))
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    return image.copy()
