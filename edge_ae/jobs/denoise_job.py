"""The per-file job of ``edge-ae denoise``: read, denoise, write atomically, and the optional
before|after picture. A picklable recipe, built once per worker process (``--jobs``) or Ray actor
(``--ray``, ``ray_engine.denoise_dataset``) and then called for each task, so both paths run the
same code per file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ae.denoise.denoiser import Denoiser
from edge_ae.denoise.options import DenoiseOptions
from edge_ae.files import batch
from edge_ae.files.imageio import read_image, read_photo, write_image
from edge_ae.files.names import derived_name
from edge_ae.image import to_uint8


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Before | after as one 8-bit image with a white separator, for viewing."""
    a, b = to_uint8(before), to_uint8(after)
    sep_shape = (a.shape[0], 4) + a.shape[2:]
    return np.concatenate([a, np.full(sep_shape, 255, np.uint8), b], axis=1)


def compare_name(target: Path, out_dir: Path) -> Path:
    """The before|after picture's path relative to the compare folder: Marilyn.png ->
    Marilyn-compare.png, same.jpg -> same-compare-jpg.png, so same.jpg and same.png get one each
    (``edge_ae.files.names``)."""
    return derived_name(target.relative_to(out_dir), "compare")


@dataclass(frozen=True, kw_only=True)
class DenoiseJob:
    """Picklable recipe for the per-file job, built once per worker process: which model, how to
    denoise (``options``, checked when made), and where and how to write."""

    model: str | None
    options: DenoiseOptions = DenoiseOptions()
    threads: int = 1
    out_dir: Path
    quality: int = 95
    compare_dir: Path | None = None
    max_pixels: int | None = None

    def __call__(self):  # returns the per-task callable
        o = self.options
        denoiser = Denoiser(self.model, threads=self.threads, tile=o.tile, ensemble=o.ensemble, precision=o.precision)

        def job(task: batch.Task) -> float | None:
            # Upright as its EXIF orientation says; its EXIF and ICC profile go into the output.
            image, header, metadata = read_photo(task.source, max_pixels=self.max_pixels)
            gray_alpha = header is not None and header.gray_alpha and image.ndim == 3 and image.shape[2] == 4
            level: float | None = None
            if task.extras_only:  # the output exists, its compare picture does not: no need to denoise again
                clean = read_image(task.target, max_pixels=None)
            elif gray_alpha:
                # A gray+alpha PNG decodes as BGRA; denoised as gray, written back as gray+alpha.
                gray, level = denoiser.denoise(image[:, :, 0], sigma=o.sigma, strength=o.strength)
                clean = np.dstack([gray, gray, gray, image[:, :, 3]])
            else:
                clean, level = denoiser.denoise(image, sigma=o.sigma, strength=o.strength)
            before = image if self.compare_dir is not None else None
            del image  # not kept while the output is encoded and written, unless a compare picture needs it
            if not task.extras_only:
                write_image(task.target, clean, jpeg_quality=self.quality, gray_alpha=gray_alpha, metadata=metadata)
            if before is not None and self.compare_dir is not None:
                write_image(self.compare_dir / compare_name(task.target, self.out_dir), side_by_side(before, clean))
            return None if task.extras_only else level

        return job
