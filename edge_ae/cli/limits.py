"""Options shared by the commands that read image files: the pixel limit, and tidying up after
a run that was killed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_ae.cli.values import pixel_count
from edge_ae.files.atomic import remove_stale_temporaries
from edge_ae.files.imageio import DEFAULT_MAX_PIXELS


def add_max_pixels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=pixel_count, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help=f"refuse images of more than N pixels, checked from the file's header before decoding "
                        f"(default {DEFAULT_MAX_PIXELS:.0e}, i.e. {DEFAULT_MAX_PIXELS // 10**6} megapixels)")


def tidy(folder: Path, *, names: tuple[str, ...] | None = None) -> None:
    """Remove what a killed run left in ``folder`` (edge-ae's own ``.NAME.XXXXXXXX.part`` files
    only) and say so on stderr."""
    removed = remove_stale_temporaries(folder, names=names)
    if removed:
        print(f"note: removed {len(removed)} temporary file(s) left by an interrupted run in {folder} "
              f"({removed[0].name}{', ...' if len(removed) > 1 else ''})", file=sys.stderr)
