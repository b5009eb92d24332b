"""``edge-ae embed``: image files -> one latent vector each, saved as .npy or .csv."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

from edge_ae.autoencoder import Autoencoder
from edge_ae.cli.limits import add_max_pixels, tidy
from edge_ae.cli.options import add_model, add_threads, resolve_threads
from edge_ae.cli.outputs import saved
from edge_ae.files import batch
from edge_ae.files.atomic import encode_text, write_bytes_atomic
from edge_ae.files.imageio import read_image
from edge_ae.files.output_paths import check_file

FORMATS = (".npy", ".csv")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="encode image files to latent vectors (.npy or .csv)",
                       description="Encode image files, folders or globs with an autoencoder's encoder. "
                       ".npy: an N x D float32 array, with the source paths in <name>.files.txt beside it; "
                       ".csv: one row per image, the path then D numbers. Images are converted to gray "
                       "and resized to the model's input size.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or quoted globs")
    add_model(p, "autoencoder", default="mnist-dense36")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="latents.npy or latents.csv")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    add_threads(p)
    add_max_pixels(p)
    p.set_defaults(func=run)


def save(path: Path, sources: list[Path], latents: np.ndarray) -> None:
    """Write atomically (temporary file, then rename): never a half-written output."""
    if path.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, latents)
        # The names first: latents without their list could not be told apart.
        write_bytes_atomic(path.with_suffix(".files.txt"), encode_text("".join(f"{s}\n" for s in sources)))
        write_bytes_atomic(path, buf.getvalue())
        return
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", *(f"z{i}" for i in range(latents.shape[1]))])
    for source, row in zip(sources, latents, strict=True):
        writer.writerow([str(source), *(f"{v:.7g}" for v in row)])
    write_bytes_atomic(path, encode_text(text.getvalue()))


def run(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(f"--output must end in .npy or .csv, got {args.output.name!r}")
    model = Autoencoder(args.model, threads=resolve_threads(args.threads))  # a bad --model fails before any file is read
    found, missing = batch.find_inputs(args.inputs, recursive=args.recursive)
    check_file(args.output, args.inputs, label="--output", sources=[src for src, _ in found])
    check_file(args.output.with_suffix(".files.txt"), args.inputs, label="--output's .files.txt",
               sources=[src for src, _ in found])
    batch.prepare_folder(args.output.parent, label="folder of --output")
    tidy(args.output.parent, names=(args.output.name, args.output.with_suffix(".files.txt").name))
    failed = [str(m) for m in missing]
    sources, latents = [], []
    one_per_line = args.output.suffix.lower() == ".npy"
    for source, _ in found:
        if one_per_line and any(ch in str(source) for ch in "\r\n"):
            # .files.txt holds one path per line: this name would shift every later row.
            failed.append(f"{str(source)!r}: its name holds a line break, which {args.output.with_suffix('.files.txt').name} "
                          "(one path per line) cannot list: rename it, or write .csv")
            continue
        try:
            latents.append(model.encode(read_image(source, max_pixels=args.max_pixels)))
            sources.append(source)
        except Exception as exc:  # decoder or inference: this file's line, the rest go on
            failed.append(batch.failure_message(source, exc))
    for message in failed:
        print(f"failed: {message}", file=sys.stderr)
    if sources:
        saved(args.output, lambda: save(args.output, sources, np.stack(latents).astype(np.float32)))
    where = f" -> {args.output}" if sources else " (nothing written)"
    print(f"{len(sources)} embedded ({model.latent_dim}-D, {model.spec.name}), {len(failed)} failed{where}")
    return 1 if failed or not sources else 0
