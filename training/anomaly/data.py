"""Normal images in memory at the model's input size, training batches, and synthetic defects.

Images go through ``edge_ae.anomaly.detector.to_model_input`` and ``keep_aspect_size``, the runtime's own
preprocessing, so training sees exactly what the deployed model sees (see that module for the
size policy). Stretched to a square, the images are one (N, C, S, S) array; with the aspect
ratio kept they are a list of (C, H, W) arrays of different shapes (``Images`` covers both), and
training takes square crops of them.

Synthetic defects teach the autoencoder to *repair* (input: a normal image with a pasted blob;
target: the clean image) so that real defects are not reconstructed and stand out in the error.
Shapes are random smoothed-noise blobs; contents are patches of other normal images with shifted
intensity, flat dark or bright patches, or noise: generic, nothing specific to one data set.
With ``--textures``, half of them instead take a crop of an outside image (natural photos, a
texture set), as DRAEM's do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge_ae.anomaly.inputs import keep_aspect_size, to_model_input
from edge_ae.errors import ImageError
from edge_ae.files.imageio import read_image
from training.data import list_images


def is_grey(image: np.ndarray) -> bool:
    if image.ndim == 2 or image.shape[2] == 1:
        return True
    b, g, r = (image[:, :, i].astype(np.int32) for i in range(3))
    return bool(np.abs(b - g).max() <= 2 and np.abs(g - r).max() <= 2)


def choose_channels(paths: list[Path], requested: int | str) -> int:
    if requested in (1, 3, "1", "3"):
        return int(requested)
    # "auto": color only if some image really has color (a gray JPEG saved as RGB stays gray).
    for p in paths:
        if not is_grey(read_image(p)):
            return 3
    return 1


Images = np.ndarray | list[np.ndarray]  # (N, C, H, W), or N arrays (C, H_i, W_i)


def load(paths: list[Path], *, channels: int, size: int,
         keep_aspect_multiple: int = 0) -> tuple[Images, list[Path], list[str]]:
    """The readable images, their paths, and the problems met. Stretched (``keep_aspect_multiple``
    0): one (N, C, size, size) float32 array. Aspect kept: a list of (C, H, W) arrays whose
    shorter side is ``size`` and both sides multiples of ``keep_aspect_multiple``."""
    images, kept, problems = [], [], []
    for p in paths:
        try:
            image = read_image(p)
            shape = ((size, size) if not keep_aspect_multiple else
                     keep_aspect_size(*image.shape[:2], short_side=size, multiple=keep_aspect_multiple))
            images.append(to_model_input(image, channels=channels, size=shape))
            kept.append(p)
        except ImageError as exc:
            problems.append(str(exc))
    if not images:
        raise ValueError(f"no readable images among {len(paths)} files")
    return (images if keep_aspect_multiple else np.stack(images)), kept, problems


def chunks(images: Images, batch: int) -> Iterator[np.ndarray]:
    """(n, C, H, W) arrays of at most ``batch`` consecutive images of one shape each, in order."""
    if isinstance(images, np.ndarray):
        for i in range(0, len(images), batch):
            yield images[i : i + batch]
        return
    group: list[np.ndarray] = []
    for im in images:
        if group and (len(group) == batch or im.shape != group[0].shape):
            yield np.stack(group)
            group = []
        group.append(im)
    if group:
        yield np.stack(group)


def split(paths: list[Path], fraction: float, rng: np.random.Generator) -> tuple[list[Path], list[Path]]:
    """(train, held out): a seeded random ``fraction`` held out, at least 1 image each."""
    order = rng.permutation(len(paths))
    n_hold = min(len(paths) - 1, max(1, int(round(fraction * len(paths)))))
    hold = sorted(paths[i] for i in order[:n_hold])
    train = sorted(paths[i] for i in order[n_hold:])
    return train, hold


def folder(path: str | Path) -> list[Path]:
    return list_images(path)


def scratch_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random thin polyline (scratch, crack) as a soft (H, W) mask."""
    mask = np.zeros(shape, np.float32)
    size = min(shape)
    points = [rng.uniform(0, 1, 2) * np.array(shape[::-1])]
    step = size * rng.uniform(0.05, 0.2)
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(2, 6))):
        angle += rng.normal(0, 0.6)
        points.append(points[-1] + step * np.array([np.cos(angle), np.sin(angle)]))
    pts = np.round(np.array(points)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(mask, [pts], False, 1.0, thickness=int(rng.integers(1, max(2, size // 40) + 1)))
    return cv2.GaussianBlur(mask, (0, 0), 0.7)


def blob_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random soft blob ((H, W) float32 on [0, 1]) covering roughly 0.3-8 % of a square image
    (of a square of the shorter side, for other shapes)."""
    h, w = shape
    size = min(shape)
    for _ in range(20):
        cells = int(rng.integers(3, 9))
        noise = rng.random((cells, cells)).astype(np.float32)
        field = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
        # Keep it local: a random window of 1/8 to 1/2 of the (shorter) side.
        win = int(rng.integers(size // 8, size // 2 + 1))
        y, x = (int(v) for v in rng.integers(0, [h - win + 1, w - win + 1]))
        window = np.zeros_like(field)
        window[y : y + win, x : x + win] = 1.0
        window = cv2.GaussianBlur(window, (0, 0), win / 6)
        field = field * window
        t = np.quantile(field, 1.0 - rng.uniform(0.003, 0.08) * size * size / (h * w))
        mask = (field > t).astype(np.float32)
        if mask.sum() >= 4:
            return cv2.GaussianBlur(mask, (0, 0), 0.7)
    mask = np.zeros(shape, np.float32)
    cy, cx = h // 2, w // 2
    mask[cy - 2 : cy + 2, cx - 2 : cx + 2] = 1.0
    return mask


def synthetic_defect(image: np.ndarray, other: np.ndarray, rng: np.random.Generator, *,
                     texture: np.ndarray | None = None, relight: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(defective copy of ``image`` (C, H, W), its mask (H, W)); ``other`` is another normal image
    of the same shape; ``texture``, an outside image of that shape, is the content when given.
    ``relight`` adds a fifth kind of content, the image itself made darker or brighter (off by
    default, so that the random draws, and the models trained before it, stay as they were)."""
    c, h, w = image.shape
    mask = scratch_mask((h, w), rng) if rng.random() < 0.3 else blob_mask((h, w), rng)
    kind = -1 if texture is not None else rng.integers(5 if relight else 4)
    if kind == 4:  # the same surface, darker or brighter: a crack, a stain, a shadow, a dent catching light
        content = image * (1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.6))
    elif kind == -1 and texture is not None:  # something this camera never shows, re-lit
        content = texture * rng.uniform(0.4, 1.6) + rng.uniform(-0.3, 0.3)
    elif kind == 0:  # another normal image, moved and re-lit: wrong texture in the wrong place
        content = np.roll(other, (int(rng.integers(h)), int(rng.integers(w))), axis=(1, 2))
        content = content * rng.uniform(0.4, 1.6) + rng.uniform(-0.3, 0.3)
    elif kind == 1:  # a flat dark or bright patch (hole, spot, glare)
        level = rng.uniform(0.0, 0.25) if rng.integers(2) else rng.uniform(0.75, 1.0)
        content = np.full_like(image, level) + rng.normal(0, 0.02, image.shape).astype(np.float32)
    elif kind == 2:  # the image itself, shifted: a break in its structure
        content = np.roll(image, (int(rng.integers(-h // 4, h // 4)), int(rng.integers(-w // 4, w // 4))), axis=(1, 2))
        content = content + rng.uniform(-0.25, 0.25)
    else:  # noise texture
        content = rng.normal(rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3), image.shape).astype(np.float32)
    if c == 3 and rng.integers(2):  # a color cast, for color models
        content = content * rng.uniform(0.6, 1.4, (3, 1, 1))
    beta = rng.uniform(0.5, 1.0)
    m = (mask * beta)[None]
    out = np.clip(image * (1 - m) + content.astype(np.float32) * m, 0.0, 1.0).astype(np.float32)
    return out, mask


class Batches:
    """Training pairs (input, clean target) from in-memory normal images.

    Whole images of different shapes (aspect kept, ``patch`` 0) are batched by shape: each batch
    comes from the images of one shape, the shape drawn in proportion to how many images have it,
    so every image is still drawn equally often."""

    def __init__(self, images: Images, *, synthetic_fraction: float, input_noise: float, flips: bool,
                 rng: np.random.Generator, patch: int = 0, textures: Images | None = None,
                 relight: bool = False) -> None:
        self.images = images
        self.relight = relight
        self.textures = textures
        # The network is fully convolutional: square crops teach it the same local appearance for
        # a fraction of the compute of whole images (0: whole images).
        smallest = min(min(im.shape[1:]) for im in images)
        same_shape = isinstance(images, np.ndarray) or len({im.shape for im in images}) == 1
        if patch > smallest:
            raise ValueError(f"crops must fit in every image: expected a patch of at most {smallest} px, found {patch}")
        self.patch = patch if 0 < patch and (patch < smallest or not same_shape) else 0
        shapes: dict[tuple[int, ...], list[int]] = {}
        if not same_shape and not self.patch:
            for i, im in enumerate(images):
                shapes.setdefault(im.shape, []).append(i)
        self.by_shape = {i: np.array(group) for group in shapes.values() for i in group}
        self.synthetic_fraction = synthetic_fraction
        self.input_noise = input_noise
        self.flips = flips
        self.rng = rng

    def view(self, i: int) -> np.ndarray:
        im = self.images[i]
        if self.flips:
            if self.rng.integers(2):
                im = im[:, :, ::-1]
            if self.rng.integers(2):
                im = im[:, ::-1, :]
        if self.patch:
            y = int(self.rng.integers(im.shape[1] - self.patch + 1))
            x = int(self.rng.integers(im.shape[2] - self.patch + 1))
            im = im[:, y : y + self.patch, x : x + self.patch]
        return np.ascontiguousarray(im)

    def texture_like(self, image: np.ndarray) -> np.ndarray:
        """A random crop (half to all of each side) of a random texture, resized to ``image``'s shape."""
        assert self.textures is not None
        t = self.textures[int(self.rng.integers(len(self.textures)))]
        side = t.shape[1:]
        ch, cw = (int(self.rng.integers(n // 2, n + 1)) for n in side)
        y, x = int(self.rng.integers(side[0] - ch + 1)), int(self.rng.integers(side[1] - cw + 1))
        crop = np.ascontiguousarray(t[:, y : y + ch, x : x + cw].transpose(1, 2, 0))
        fitted = cv2.resize(crop, image.shape[:0:-1], interpolation=cv2.INTER_AREA)
        return fitted.reshape(image.shape[1:] + (-1,)).transpose(2, 0, 1)

    def draw(self, size: int) -> np.ndarray:
        """Indices of ``size`` images that stack: any, or all of the shape of a first random one."""
        if not self.by_shape:
            return self.rng.integers(len(self.images), size=size)
        group = self.by_shape[int(self.rng.integers(len(self.images)))]
        return group[self.rng.integers(len(group), size=size)]

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input, clean target, defect mask (N, 1, H, W) of 0/1): the segmenter's target is where
        the synthetic defect is clearly visible (its soft mask above 0.3)."""
        idx = self.draw(size)
        # Where the synthetic defect's content comes from: any image, or one of the batch's shape.
        sources = self.by_shape.get(int(idx[0]), np.arange(len(self.images)))
        clean = np.stack([self.view(int(i)) for i in idx])
        noisy = clean.copy()
        masks = np.zeros((size, 1) + clean.shape[2:], np.float32)
        for j in range(size):
            if self.rng.random() < self.synthetic_fraction:
                other = self.view(int(sources[self.rng.integers(len(sources))]))
                # Only with textures is a random number drawn here, so runs without them repeat
                # the models trained before textures existed.
                texture = (self.texture_like(clean[j]) if self.textures is not None and self.rng.random() < 0.5
                           else None)
                noisy[j], mask = synthetic_defect(clean[j], other, self.rng, texture=texture, relight=self.relight)
                masks[j, 0] = mask > 0.3
        if self.input_noise > 0:
            noisy = noisy + self.rng.normal(0, self.input_noise, noisy.shape).astype(np.float32)
        return np.clip(noisy, 0, 1).astype(np.float32), clean, masks


def synthetic_set(images: Images, rng: np.random.Generator, *,
                  relight: bool = False) -> tuple[Images, list[np.ndarray] | np.ndarray]:
    """A fixed set of defective copies of held-out images, for the validation score (as ``images``
    are: one array, or a list for images of different shapes), with the training's defect kinds."""
    out, masks = [], []
    for i in range(len(images)):
        image = images[i]
        other = images[int(rng.integers(len(images)))]
        if other.shape != image.shape:  # another normal texture, fitted to this image's shape
            other = cv2.resize(other.transpose(1, 2, 0), image.shape[:0:-1], interpolation=cv2.INTER_AREA)
            other = other.reshape(image.shape[1:] + (-1,)).transpose(2, 0, 1)
        d, m = synthetic_defect(image, np.ascontiguousarray(other), rng, relight=relight)
        out.append(d)
        masks.append(m)
    if isinstance(images, np.ndarray):
        return np.stack(out), np.stack(masks)
    return out, masks
