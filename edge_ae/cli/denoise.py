"""``edge-ae denoise``: clean image files into an output folder."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from edge_ae.cli.limits import add_max_pixels, tidy
from edge_ae.cli.options import add_model, add_precision, add_threads, resolve_threads, usable_cores
from edge_ae.cli.report import run_and_report
from edge_ae.cli.values import float_range, int_at_least, int_range, non_negative_float, positive_int
from edge_ae.denoise.denoiser import Denoiser
from edge_ae.denoise.ensemble import COPIES
from edge_ae.denoise.options import STRENGTHS, DenoiseOptions
from edge_ae.files import batch
from edge_ae.jobs.denoise_job import DenoiseJob, compare_name

# --ray given without an address: start a private local instance.
LOCAL_RAY = "local"
# Smallest --tile: above every shipped model's size multiple, so a tile is never refused per file.
MIN_TILE = 64


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("denoise", help="denoise image files into an output folder",
                       description="Denoise image files, folders or globs into OUTDIR, keeping relative "
                       "paths, format and bit depth. Existing outputs are skipped unless --overwrite, "
                       "so a rerun resumes.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or quoted globs")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help="output folder")
    add_model(p, "denoiser", default_help="default: denoise-gray / denoise-color by each image's channels")
    add_precision(p)
    p.add_argument("--sigma", type=non_negative_float, help="noise level on the 0-255 scale (default: estimated per image)")
    p.add_argument("--strength", type=float_range(*STRENGTHS), default=1.0, metavar="X",
                   help="scale the noise level (0.25-4, default 1): above 1 cleans harder, below 1 keeps more grain")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="say which model runs and why (float or 8-bit), and print each file's noise level "
                   "(0-255 scale); with --ray, also Ray's own log lines")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("-j", "--jobs", type=positive_int, help="worker processes (default 1); with --ray, Ray workers "
                   "(default: the cluster's CPUs / --threads)")
    add_threads(p)  # with --ray: 1 per Ray worker unless given
    p.add_argument("--ray", nargs="?", const=LOCAL_RAY, metavar="ADDRESS",
                   help="run on Ray Data (pip install \"edge-ae[ray]\"; docs/SCALE_OUT.md): alone, a local Ray "
                   "instance on this machine; with HOST:PORT or auto, that cluster, whose "
                   "workers must see the same paths (--threads: 1 per Ray worker unless given). Put it after the inputs, "
                   "or write --ray=ADDRESS")
    p.add_argument("--quality", type=int_range(0, 100), default=95, help="JPEG/WebP quality for lossy outputs (default 95)")
    p.add_argument("--tile", type=int_at_least(MIN_TILE),
                   help=f"tile size in pixels, at least {MIN_TILE} (default: 1024 up to 1024x1024 images, else 512)")
    p.add_argument("--ensemble", type=int, default=1, choices=COPIES, metavar="N",
                   help="average the model over N flips/rotations of each image (1, 2, 4, 8; default 1): "
                   "a little cleaner, N times slower")
    p.add_argument("--compare", type=Path, metavar="DIR",
                   help="also write before|after PNGs here (Marilyn.png -> Marilyn-compare.png, a.jpg -> "
                   "a-compare-jpg.png)")
    add_max_pixels(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.ray not in (None, LOCAL_RAY) and Path(args.ray).exists():
        raise argparse.ArgumentTypeError(f"--ray took the input {args.ray} for a cluster address: put --ray after "
                                         "the inputs, or write --ray=ADDRESS")
    if args.ray not in (None, LOCAL_RAY):
        from edge_ae.jobs.ray_cluster import check_address  # no Ray import: a usage error before any work

        check_address(args.ray)
    jobs = args.jobs or 1
    threads = args.threads or (1 if args.ray is not None else resolve_threads(None, jobs=jobs))
    # Load once here so a bad --model fails before any file is touched.
    try:
        denoiser = Denoiser(args.model, threads=threads, tile=args.tile, ensemble=args.ensemble,
                            precision=args.precision)
    except ValueError as exc:  # --precision float/int8 with a model file
        raise argparse.ArgumentTypeError(str(exc)) from None
    if args.verbose:
        if args.model is not None:
            print(f"model: {denoiser.choice_for(3).describe()}", file=sys.stderr)
        else:
            print(f"model: gray images {denoiser.choice_for(1).describe()}; color images "
                  f"{denoiser.choice_for(3).describe()}", file=sys.stderr)
    plan = batch.plan(args.inputs, args.output, recursive=args.recursive, overwrite=args.overwrite)
    if args.compare is not None:
        # The compare folder gets every check the output folder gets: a before|after picture
        # must never replace an original or a denoised output.
        batch.check_folder(args.compare, args.inputs, label="--compare folder", others={"output folder": args.output})
        plan = _regenerate_missing_compares(plan, args.output, args.compare)
    for folder, label in ((args.output, "output folder"), (args.compare, "--compare folder")):
        if folder is not None:
            batch.prepare_folder(folder, label=label)
            tidy(folder)
    jobs = _capped_jobs(args.jobs, len(plan.tasks), local=args.ray is None)
    if args.jobs is not None and args.ray is None and not args.threads:
        threads = resolve_threads(None, jobs=jobs)
    model, compare, out_dir, runner = args.model, args.compare, args.output, None
    if args.ray is not None:
        from edge_ae.jobs import ray_engine  # Ray only on this path

        # Ray workers may run elsewhere, in another folder: every path they get is absolute.
        model = str(Path(model).absolute()) if model and Path(model).is_file() else model
        compare = compare.absolute() if compare is not None else None
        out_dir = out_dir.absolute()
        address = None if args.ray == LOCAL_RAY else args.ray
        runner = partial(ray_engine.run, address=address, workers=args.jobs and jobs, threads=threads,
                         verbose=args.verbose)
    options = DenoiseOptions(sigma=args.sigma, strength=args.strength, tile=args.tile, ensemble=args.ensemble,
                             precision=args.precision)
    job = DenoiseJob(model=model, options=options, threads=threads, out_dir=out_dir, quality=args.quality,
                     compare_dir=compare, max_pixels=args.max_pixels)
    label = "noise level (0-255" + (", given" if args.sigma is not None else ", estimated") + (
        f", x{args.strength:g}" if args.strength != 1 else "") + ")"
    return run_and_report(plan, job, jobs=jobs, verb="denoised", out_dir=args.output, runner=runner,
                          value_label=label, verbose=args.verbose)


def _capped_jobs(asked: int | None, files: int, *, local: bool) -> int:
    """``--jobs`` never above the number of files (each worker loads its own models: more only
    cost memory), with a note when a local run asks for more workers than the machine has cores."""
    jobs = min(asked or 1, max(files, 1))
    cores = usable_cores()
    if local and jobs > cores:
        print(f"note: --jobs {jobs} is more than this machine's {cores} cores: each worker holds its own models in "
              f"memory and the batch gets no faster; --jobs {cores} is the most that helps", file=sys.stderr)
    return jobs


def _regenerate_missing_compares(plan: batch.Plan, out_dir: Path, compare_dir: Path) -> batch.Plan:
    """A skipped input (output exists) whose before|after picture is missing gets it made again
    from the existing output, so a rerun completes what a killed run left."""
    tasks, problems = list(plan.tasks), []
    for problem in plan.problems:
        task = problem.task
        if problem.status == "skipped" and not (compare_dir / compare_name(task.target, out_dir)).exists():
            tasks.append(batch.Task(task.source, task.target, extras_only=True))
        else:
            problems.append(problem)
    return batch.Plan(tasks, problems)
