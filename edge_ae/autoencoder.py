"""Small fixed-size autoencoders (the MNIST recipes): encode images to latent vectors, decode
latents to images, reconstruct, and score images by reconstruction error.

Images follow the runtime's image contract (``edge_ae.image``), one at a time or as a batch:

* one image: HxW, HxWx1, HxWx3 (BGR) or HxWx4 (BGRA; alpha is dropped);
* a batch: an N x H x W array (gray), an N x H x W x C array, or a list of images (sizes may differ);
* uint8, uint16 or float32 (0-1); the value range comes from the dtype.

An array whose last axis is 1, 3 or 4 is one image; any other 3-D array is a batch of gray
images. Color is converted to gray (the models are gray). Images of another size than the
model's ``input_size`` are resized to it (area interpolation when shrinking, bilinear when
enlarging), so outputs always have the model's size. Outputs are float32 on [0, 1]: one image
in gives one result out (HxW image, (D,) latent, float score); a batch gives a batch.

The encoder and decoder are separate graphs next to the autoencoder file (its ``parts``),
loaded the first time ``encode`` or ``decode`` needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge_ae.errors import EdgeAEError, ImageError, ModelError
from edge_ae.image import check_image, is_single_image, to_float
from edge_ae.model.loading import LoadedModel, load_model
from edge_ae.model.registry import get_entry

CHUNK = 1024  # images per inference call: bounds memory on large batches


def _to_gray(image: np.ndarray, size: tuple[int, int], name: str) -> np.ndarray:
    """One image of the contract -> HxW float32 on [0, 1] at ``size`` (height, width)."""
    image = to_float(check_image(image, name=name))
    if image.ndim == 3:
        if image.shape[2] == 1:
            image = image[:, :, 0]
        else:
            image = cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_BGR2GRAY)
    if image.shape != size:
        shrink = image.shape[0] > size[0] or image.shape[1] > size[1]
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.clip(image, 0.0, 1.0)


def to_batch(images: object, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Images in any accepted form -> (N, 1, H, W) float32 batch, and whether one image came in."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ImageError("images is an empty list")
        return np.stack([_to_gray(im, size, f"images[{i}]") for i, im in enumerate(images)])[:, None], False
    if not isinstance(images, np.ndarray):
        raise ImageError(f"images must be a numpy array or a list of arrays, got {type(images).__name__}")
    if is_single_image(images):
        return _to_gray(images, size, "image")[None, None], True
    if images.ndim not in (3, 4):
        raise ImageError(
            f"images must be one image (HxW or HxWxC) or a batch (NxHxW or NxHxWxC), got shape {images.shape}"
        )
    if len(images) == 0:
        raise ImageError(f"images is an empty batch (shape {images.shape})")
    return np.stack([_to_gray(im, size, f"images[{i}]") for i, im in enumerate(images)])[:, None], False


class Autoencoder:
    """An edge-ae ``autoencoder`` model with its encoder and decoder parts.

    ``model`` is a shipped model name (``edge-ae models --kind autoencoder``) or a path to
    an .onnx file; ``threads`` caps inference threads (default: onnxruntime's choice);
    ``providers`` names onnxruntime execution providers in order of preference (default: CPU)."""

    def __init__(self, model: str | Path | LoadedModel, *, threads: int | None = None,
                 providers: Sequence[str] | None = None) -> None:
        self.model: LoadedModel = load_model(model, kind="autoencoder", threads=threads, providers=providers)
        self.spec = self.model.spec
        if self.spec.input_size is None or not self.spec.latent_dim:
            raise ModelError(f"{self.model.path}: an autoencoder model needs 'input_size' and 'latent_dim' in its metadata")
        self.input_size: tuple[int, int] = tuple(self.spec.input_size)  # type: ignore[assignment]
        self.latent_dim: int = int(self.spec.latent_dim)
        self._threads = threads
        self._providers = providers
        self._by_name = isinstance(model, str) and not str(model).endswith(".onnx") and "/" not in str(model)
        self._parts: dict[str, LoadedModel] = {}

    def _part(self, kind: str) -> LoadedModel:
        if kind in self._parts:
            return self._parts[kind]
        file = self.spec.parts.get(kind)
        if not file:
            raise ModelError(
                f"{self.spec.name}: no {kind} part in its metadata (parts: {sorted(self.spec.parts) or 'none'}); "
                f"export it with its encoder and decoder to use encode/decode"
            )
        source: str | Path = self.model.path.parent / file
        if self._by_name:  # shipped parts are loaded by name, so their sha256 is checked too
            try:
                source = get_entry(Path(file).stem).name
            except ModelError:
                pass
        if isinstance(source, Path) and not source.is_file():
            raise ModelError(f"{self.spec.name}: its {kind} {file} is missing (expected at {source})")
        part = load_model(source, kind=kind, threads=self._threads, providers=self._providers)
        if part.spec.latent_dim != self.latent_dim:
            raise ModelError(
                f"{self.spec.name}: its {kind} {file} has latent_dim {part.spec.latent_dim}, expected {self.latent_dim}"
            )
        self._parts[kind] = part
        return part

    def _run(self, model: LoadedModel, name: str, batch: np.ndarray) -> np.ndarray:
        outs = [model.run({name: batch[i : i + CHUNK]})[0] for i in range(0, len(batch), CHUNK)]
        return np.concatenate(outs).astype(np.float32, copy=False)

    def _images_out(self, batch: np.ndarray, single: bool) -> np.ndarray:
        images = np.clip(batch[:, 0], 0.0, 1.0)
        return images[0] if single else images

    def encode(self, images: object) -> np.ndarray:
        """Latent vectors: (D,) for one image, (N, D) for a batch."""
        batch, single = to_batch(images, self.input_size)
        latents = self._run(self._part("encoder"), "image", batch)
        return latents[0] if single else latents

    def decode(self, latents: object) -> np.ndarray:
        """Images from latent vectors: HxW for a (D,) latent, N x H x W for (N, D)."""
        array = np.asarray(latents)
        if array.ndim not in (1, 2) or array.shape[-1] != self.latent_dim or array.size == 0:
            raise EdgeAEError(
                f"latents must have shape ({self.latent_dim},) or (N, {self.latent_dim}) for {self.spec.name}, "
                f"got {array.shape}"
            )
        if not np.issubdtype(array.dtype, np.number):
            raise EdgeAEError(f"latents must be numbers, got dtype {array.dtype}")
        single = array.ndim == 1
        batch = np.ascontiguousarray(array.reshape(-1, self.latent_dim), dtype=np.float32)
        return self._images_out(self._run(self._part("decoder"), "latent", batch), single)

    def reconstruct(self, images: object) -> np.ndarray:
        """The model's reconstruction (at ``input_size``, float32 on [0, 1])."""
        batch, single = to_batch(images, self.input_size)
        return self._images_out(self._run(self.model, "image", batch), single)

    def score(self, images: object) -> np.ndarray | float:
        """Per-image reconstruction error: mean squared error on [0, 1] between the (resized,
        gray) input and its reconstruction. A float for one image, an (N,) array for a batch."""
        batch, single = to_batch(images, self.input_size)
        recon = self._run(self.model, "image", batch)
        errors = ((recon - batch) ** 2).reshape(len(batch), -1).mean(axis=1)
        return float(errors[0]) if single else errors
