"""``edge-ae denoise``: clean image files into an output folder."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ae.cli.report import run_and_report
from edge_ae.denoise.denoiser import Denoiser
from edge_ae.denoise.ensemble import COPIES
from edge_ae.files import batch
from edge_ae.files.imageio import read_image, write_image


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Before | after as one 8-bit image with a white separator, for viewing."""
    def to8(x: np.ndarray) -> np.ndarray:
        if x.dtype == np.uint16:
            return (x // 257).astype(np.uint8)
        if x.dtype == np.float32:
            return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
        return x

    a, b = to8(before), to8(after)
    sep_shape = (a.shape[0], 4) + a.shape[2:]
    return np.concatenate([a, np.full(sep_shape, 255, np.uint8), b], axis=1)


@dataclass(frozen=True)
class DenoiseJob:
    """Picklable recipe for the per-file job, built once per worker process."""

    model: str | None
    sigma: float | None
    threads: int
    tile: int | None
    ensemble: int
    quality: int
    compare_dir: Path | None
    out_dir: Path

    def __call__(self):  # noqa: ANN204 - returns the per-task callable
        denoiser = Denoiser(self.model, threads=self.threads, tile=self.tile, ensemble=self.ensemble)

        def job(task: batch.Task) -> None:
            image = read_image(task.source)
            clean = denoiser(image, sigma=self.sigma)
            write_image(task.target, clean, jpeg_quality=self.quality)
            if self.compare_dir is not None:
                rel = task.target.relative_to(self.out_dir).with_suffix(".png")
                write_image(self.compare_dir / rel, side_by_side(image, clean))

        return job


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("denoise", help="denoise image files into an output folder",
                       description="Denoise image files, folders or globs into OUTDIR, keeping relative "
                       "paths, format and bit depth. Existing outputs are skipped unless --overwrite, "
                       "so a rerun resumes.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or quoted globs")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help="output folder")
    p.add_argument("-m", "--model", help="model name or .onnx path (default: denoise-gray / denoise-color per image)")
    p.add_argument("--sigma", type=float, help="noise level on the 0-255 scale (default: estimated per image)")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--threads", type=int, help="inference threads per worker (default: cores / jobs)")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality for lossy outputs (default 95)")
    p.add_argument("--tile", type=int, help="tile size in pixels (default: 1024 up to 1024x1024 images, else 512)")
    p.add_argument("--ensemble", type=int, default=1, choices=COPIES, metavar="N",
                   help="average the model over N flips/rotations of each image (1, 2, 4, 8; default 1): "
                   "a little cleaner, N times slower")
    p.add_argument("--compare", type=Path, metavar="DIR", help="also write before|after PNGs here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.sigma is not None and args.sigma < 0:
        raise argparse.ArgumentTypeError(f"--sigma must be >= 0, got {args.sigma}")
    if not 0 <= args.quality <= 100:
        raise argparse.ArgumentTypeError(f"--quality must be 0-100, got {args.quality}")
    threads = args.threads or batch.default_threads(args.jobs)
    # Load once here so a bad --model fails before any file is touched.
    Denoiser(args.model, threads=threads, tile=args.tile, ensemble=args.ensemble)
    plan = batch.plan(args.inputs, args.output, recursive=args.recursive, overwrite=args.overwrite)
    job = DenoiseJob(args.model, args.sigma, threads, args.tile, args.ensemble, args.quality, args.compare, args.output)
    return run_and_report(plan, job, jobs=args.jobs, verb="denoised", out_dir=args.output)
