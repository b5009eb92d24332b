"""``edge-ae bench``: time the shipped models on this machine and say which one keeps up with a
frame rate. What a user runs first on a new board."""

from __future__ import annotations

import argparse
import os

from edge_ae.benchmark import Timing, eight_bit_pairs, recommend, time_model
from edge_ae.cli.options import add_model, add_precision, add_threads, deprecated, resolve_threads
from edge_ae.cli.values import frame_size, non_negative_int, positive_float, positive_int
from edge_ae.denoise.precision import TWIN_SUFFIX, choose
from edge_ae.errors import ModelError
from edge_ae.hardware import cpu_info
from edge_ae.model.registry import get_entry, list_models

# Graph parts of an autoencoder (their inputs are latents, not frames): timed only when named.
PARTS = ("encoder", "decoder")
CAMERA_KINDS = ("denoiser", "anomaly")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="time the shipped models on this machine and recommend one for a frame rate",
        description="Time each shipped model end to end on a generated frame (warm-up, then the median of "
                    "--repeat calls, with a fixed thread count), print ms per frame, fps and multiply-adds per "
                    "second, and recommend the best model of each kind that reaches --fps.",
    )
    add_model(p, "models to time, each as named", several=True, paths=False,
              default_help="default: all shipped, without the autoencoders' encoder/decoder parts")
    p.add_argument("--models", nargs="+", action="extend", metavar="NAME", help=argparse.SUPPRESS)  # the old name
    add_precision(p, bench=True)
    p.add_argument("--size", type=frame_size, default=(640, 480), metavar="WxH", help="frame size (default 640x480)")
    add_threads(p)
    p.add_argument("--repeat", type=positive_int, default=5, help="timed calls per model; the median is shown "
                   "(default 5)")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="untimed calls first (default 1)")
    p.add_argument("--fps", type=positive_float, default=10.0, help="frame rate to recommend a model for "
                   "(default 10)")
    p.set_defaults(func=run)


def _models(names: list[str] | None) -> list:
    if names:
        return [get_entry(n) for n in dict.fromkeys(names)]  # ModelError names the shipped ones
    return [e for e in list_models() if e.kind not in PARTS]


def _runs_at(t: Timing, precision: str) -> bool:
    """Whether ``edge-ae denoise/camera --precision PRECISION`` would run ``t``'s model when its
    float name is given: the recommendation considers those only."""
    if t.kind != "denoiser":
        return True
    base = t.name[: -len(TWIN_SUFFIX)] if t.name.endswith(TWIN_SUFFIX) else t.name
    try:
        return choose(base, precision).model == t.name
    except ModelError:  # --precision int8 and no twin: the model runs as it is
        return True


def _auto_lines(timings: list[Timing]) -> list[str]:
    """For each float denoiser timed beside its 8-bit twin: what precision auto runs here, why,
    and what that gains against float in this run (the ratio of the two medians)."""
    by_name = {t.name: t for t in timings}
    lines = []
    for t in timings:
        twin = by_name.get(t.name + TWIN_SUFFIX)
        if t.kind != "denoiser" or twin is None:
            continue
        choice = choose(t.name, "auto")
        ran = by_name[choice.model]
        lines.append(f"  {t.name:<24} -> {choice.describe()}; {ran.ms:.1f} ms vs float {t.ms:.1f} ms: "
                     f"x{t.ms / ran.ms:.2f}")
    return lines


def _row(t: Timing) -> str:
    macs = t.macs_per_second
    gmacs = f"{macs / 1e9:7.2f}" if macs is not None else "      -"
    bits = "int8" if t.eight_bit else "fp32"
    return f"{t.name:<30} {t.kind:<11} {bits:<5} {t.ms:9.1f} {t.fps:7.1f} {gmacs}"


def run(args: argparse.Namespace) -> int:
    if args.models:
        deprecated("--models", "-m/--model")
    entries = _models((args.model or []) + (args.models or []) or None)
    cpu = cpu_info()
    threads = resolve_threads(args.threads)
    w, h = args.size
    print(f"edge-ae bench: {w}x{h} frames, {threads} thread(s), median of {args.repeat} after {args.warmup} "
          f"warm-up call(s); {cpu.describe()}")
    if cpu.emulated:
        print(f"NOTE: this machine looks emulated ({cpu.emulated}): the times below say nothing about real hardware.")
    print(f"{'model':<30} {'kind':<11} {'bits':<5} {'ms/frame':>9} {'fps':>7} {'GMAC/s':>7}")
    timings = []
    for entry in entries:
        t = time_model(entry, size=(w, h), threads=threads, repeat=args.repeat, warmup=args.warmup)
        timings.append(t)
        print(_row(t), flush=True)
    print("(denoisers: noise level estimated per frame, as by default; GMAC/s where the manifest records "
          "the model's multiply-adds per pixel)")
    auto = _auto_lines(timings)
    if auto:
        print("\nWhat --precision auto (the default of denoise and camera) runs here, and its speed-up over float "
              "in this run:")
        print("\n".join(auto))

    print(f"\nFor {args.fps:g} fps ({1000 / args.fps:.0f} ms a frame) at {w}x{h} on this machine:")
    # only what `edge-ae camera` runs on each frame is recommended; the other kinds are parts or tools
    if args.precision != "auto" or auto:
        print(f"(denoisers at --precision {args.precision}: the float model or its 8-bit twin, as denoise and camera "
              "would run it)")
    considered = [t for t in timings if t.kind in CAMERA_KINDS and _runs_at(t, args.precision)]
    for pick in recommend(considered, fps=args.fps):
        group = f"{pick.kind}, {'gray' if pick.channels == 1 else 'color'}"
        if pick.model is not None:
            quality = f"; {pick.model.quality:g} {pick.model.quality_label}" if pick.model.quality is not None else ""
            print(f"  {group:<22} {pick.model.name} ({pick.model.ms:.1f} ms{quality})")
        else:
            f = pick.fastest
            print(f"  {group:<22} none reaches it; the fastest is {f.name} ({f.ms:.1f} ms, {f.fps:.1f} fps): use a "
                  f"smaller --size, fewer fps (edge-ae camera --max-fps), or more --threads")
    pairs = eight_bit_pairs(timings)
    if pairs:
        faster = [q.name for p, q in pairs if q.ms < p.ms]
        slower = [q.name for p, q in pairs if q.ms >= p.ms]
        print("\n8-bit against float here: " + "; ".join(f"{q.name} {q.ms:.1f} ms vs {p.ms:.1f} ms" for p, q in pairs))
        if slower:
            print(f"  prefer the float models over {', '.join(slower)} on this CPU: the 8-bit ones are not faster")
        if faster and cpu.int8_dot is False:
            print("  (this CPU has no 8-bit dot-product instructions; the 8-bit gain comes from lighter memory traffic)")
    if cpu.emulated:
        print("\nNOTE: emulated: the recommendation above follows the emulator's speed, not a device's.")
    cores = os.cpu_count() or 1
    if threads > cores:
        print(f"\nNOTE: {threads} threads on {cores} logical CPUs: the times include oversubscription.")
    return 0
