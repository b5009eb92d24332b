"""The options of ``python -m training.anomaly`` and the ``AnomalyConfig`` they make: one
definition for the command (cli.py) and for reading the commands recorded in models exported
before the config itself was recorded (fuse.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.anomaly.config import EXPOSURES, SIZE_MULTIPLE, AnomalyConfig
from training.paths import EXPORTED, ROOT

# Config fields that are plain command-line options (--size, --width, ...).
OPTIONS = ("size", "holdout", "width", "latent_channels", "seg_width", "batch", "patch", "val_images", "steps", "minutes", "lr",
           "eval_every", "patience", "synthetic_fraction", "input_noise", "fpr", "topk", "smooth", "seed", "threads")


def parse(argv: list[str] | None, *, description: str = "") -> tuple[argparse.Namespace, AnomalyConfig]:
    """Parsed arguments and the config they make; argparse exits 2 on a usage error."""
    ap = argparse.ArgumentParser(prog="python -m training.anomaly", description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = AnomalyConfig(name="", normal="")
    ap.add_argument("--normal", required=True, help="folder of normal images (searched recursively)")
    ap.add_argument("--val-normal", help="held-out normal images (default: a seeded split of --normal)")
    ap.add_argument("--val-anomalous", help="anomalous validation images: early stop on their AUROC, F1-optimal threshold")
    ap.add_argument("--textures", help="optional folder of other images (natural photos, textures): half the "
                    "synthetic defects take their content from them")
    ap.add_argument("--name", required=True, help="model name; writes OUT/NAME.onnx")
    ap.add_argument("--out", type=Path, default=EXPORTED, help="export folder (default exported/)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs", help="checkpoints go to RUNS/NAME (default runs/)")
    ap.add_argument("--resume", action="store_true",
                    help="continue from RUNS/NAME/checkpoint.pt if it holds a stopped run of the same options")
    ap.add_argument("--no-manifest", action="store_true", help="do not add the model to OUT/manifest.json")
    ap.add_argument("--description", default="", help="one line for the manifest")
    for key in OPTIONS:
        default = getattr(defaults, key)
        ap.add_argument("--" + key.replace("_", "-"), type=type(default), default=default, help=f"default {default}")
    ap.add_argument("--map", default=defaults.map, choices=["learned", "error"],
                    help="learned: a segmenter trained on synthetic defects compares image and repair (default); "
                    "error: the reconstruction error alone")
    ap.add_argument("--resize", default=defaults.resize, choices=["stretch", "keep-aspect"],
                    help="stretch: every image to --size x --size (default); keep-aspect: the shorter side to "
                    "--size, the longer in proportion (whole images, batched by shape, or crops of --patch)")
    ap.add_argument("--exposure", default=defaults.exposure, choices=list(EXPOSURES),
                    help="none: images as they come (default); gain: the graph scales each image to one mean "
                    "brightness first (exposure or light that changes between photos)")
    ap.add_argument("--channels", default="auto", choices=["auto", "1", "3"], help="default auto (gray if all images are)")
    ap.add_argument("--no-positional", action="store_true",
                    help="--map error only: no per-pixel normal statistics (views that are not from a fixed camera)")
    ap.add_argument("--relight", action="store_true",
                    help="synthetic defects also of the image itself made darker or brighter (cracks, stains)")
    ap.add_argument("--no-flips", action="store_true", help="no flipped copies of normal images (orientation matters)")
    ap.add_argument("--split-seed", type=int, default=None,
                    help="seed of the held-out split (default: --seed); models to fuse must share it")
    ap.add_argument("--sizes", type=parse_sizes, help="two or more sizes, e.g. 128,256: one model per size, fused "
                    "into one (instead of --size and --patch)")
    args = ap.parse_args(argv)
    if args.sizes is not None:
        given = [a.split("=")[0] for a in (sys.argv[1:] if argv is None else argv)]
        clash = [o for o in ("--size", "--patch") if o in given]
        if clash:
            ap.error(f"--sizes sets each member's size and crops; leave out {' and '.join(clash)}")
    if args.resize == "keep-aspect":
        sizes = args.sizes or (args.size,)
        found = ", ".join(map(str, sizes))
        if any(v % SIZE_MULTIPLE for v in sizes):
            ap.error(f"--resize keep-aspect needs sizes that are multiples of {SIZE_MULTIPLE}, found {found}")
        if any(sizes[-1] % v for v in sizes):
            ap.error(f"--resize keep-aspect fuses sizes that divide the largest, found {found}")
        if args.patch > args.size:
            ap.error(f"--resize keep-aspect trains on square crops of at most the shorter side (--size {args.size}), "
                     f"found --patch {args.patch}")
        if args.map == "error" and not args.no_positional:
            ap.error("--map error with --resize keep-aspect needs --no-positional: per-pixel normal statistics "
                     "need one fixed input size")
    values = {k: getattr(args, k) for k in OPTIONS}
    cfg = AnomalyConfig(name=args.name, normal=args.normal, val_normal=args.val_normal, val_anomalous=args.val_anomalous,
                        textures=args.textures,
                        map=args.map, resize=args.resize, exposure=args.exposure,
                        channels=args.channels if args.channels == "auto" else int(args.channels),
                        flips=not args.no_flips, relight=args.relight, positional=not args.no_positional,
                        split_seed=args.split_seed, **values)
    return args, cfg


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 128,256, got {text!r}") from None
    if len(sizes) < 2 or sizes[0] < 32:
        raise argparse.ArgumentTypeError(f"expected two or more different sizes of at least 32, got {text!r}")
    return sizes
