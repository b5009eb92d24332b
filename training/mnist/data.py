"""MNIST and Fashion-MNIST from ``../shared/data`` (keras ``.npz`` layout), as float32 tensors
(N, 1, 28, 28) on [0, 1]; plus a small synthetic stand-in so tests run without the data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.paths import SHARED

FILES = {"mnist": SHARED / "mnist" / "mnist.npz", "fashion_mnist": SHARED / "fashion_mnist" / "fashion_mnist.npz"}


@dataclass(frozen=True)
class Split:
    """Images (N, 1, 28, 28) float32 on [0, 1] and their integer labels (N,)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int | None) -> Split:
        return self if n is None else Split(self.x[:n], self.y[:n])

    def where(self, mask: np.ndarray) -> Split:
        return Split(self.x[mask], self.y[mask])


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    synthetic: bool = False


def available(name: str = "mnist") -> bool:
    return FILES[name].is_file()


def load(name: str = "mnist") -> Dataset:
    """The real data set; raises FileNotFoundError naming the expected path if it is absent."""
    path = FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"{name} not found at {path} (expected the keras .npz layout)")
    with np.load(path) as npz:
        def split(prefix: str) -> Split:
            x = npz[f"x_{prefix}"].astype(np.float32)[:, None] / np.float32(255.0)
            return Split(x, npz[f"y_{prefix}"].astype(np.int64))

        return Dataset(name, split("train"), split("test"))


def synthetic(n_train: int = 600, n_test: int = 200, *, seed: int = 0, name: str = "synthetic") -> Dataset:
    """Ten classes of blurred random strokes with per-sample jitter and noise: digit-like enough
    for every recipe to run end to end in a test, nothing more."""
    import cv2

    rng = np.random.default_rng(seed)
    templates = []
    for _ in range(10):
        canvas = np.zeros((28, 28), np.float32)
        pts = rng.integers(6, 22, size=(4, 2))
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), 1.0, 2)
        templates.append(cv2.GaussianBlur(canvas, (3, 3), 0))

    def make(n: int) -> Split:
        y = np.arange(n) % 10
        rng.shuffle(y)
        x = np.empty((n, 1, 28, 28), np.float32)
        for i, label in enumerate(y):
            dx, dy = rng.integers(-2, 3, size=2)
            shifted = np.roll(templates[label], (int(dy), int(dx)), axis=(0, 1))
            x[i, 0] = np.clip(shifted + rng.normal(0, 0.05, (28, 28)), 0, 1)
        return Split(x, y.astype(np.int64))

    return Dataset(name, make(n_train), make(n_test), synthetic=True)


def get(name: str = "mnist", *, allow_synthetic: bool = False) -> Dataset:
    """The real data when present; the synthetic stand-in only when asked for (tests)."""
    if available(name) or not allow_synthetic:
        return load(name)
    return synthetic(name=f"synthetic ({name} absent)")
