"""Measure temporal denoising against per-frame denoising on synthetic fixed-camera clips.

    python -m tools.bench_temporal [--model denoise-color] [--out docs/benchmarks/temporal.md]

Each clip: a still image (the background) with a textured patch (the moving object, cut from
another image) sliding across it, and fresh Gaussian noise on every frame, quantised to 8 bits
like a camera's. Every frame is denoised on its own (the baseline), and the same denoised
frames go through ``edge_ae.video.temporal.TemporalFilter`` (what ``edge-ae camera --temporal``
runs). PSNR against the clean frames is pooled (one MSE per region over all frames after a
warm-up, and over all clips for the total) on these regions:

* static: pixels the object covers neither in this frame nor in the previous one;
* moving: pixels it covers in this frame or the previous one, split into its body and the
  background it has just uncovered (where a ghost would show).

The bar (issue 6): at least +1.5 dB on the static area, no worse on the moving object.
Writes a markdown report with the exact command; never edit its numbers by hand.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_ae import Denoiser
from edge_ae.denoise.precision import exact
from edge_ae.files.imageio import read_image
from edge_ae.image import to_bgr8
from edge_ae.video.temporal import TemporalFilter
from training.metrics import psnr_of_mse

ROOT = Path(__file__).resolve().parent.parent

VAL = ROOT.parent / "shared" / "data" / "denoise" / "val" / "McMaster"
SAMPLES = ROOT / "samples" / "noisy"
# (background, object) pairs. The filter's thresholds were chosen on the first clip only; the
# others are a check that they were not fitted to it.
VAL_CLIPS = (("1.png", "8.png"), ("5.png", "13.png"), ("12.png", "3.png"))
SAMPLE_CLIPS = (("Building.png", "Chupa_Chups.png"), ("Vinegar.png", "Marilyn.png"))
REGIONS = ("static", "moving", "body", "uncovered")
METHODS = ("noisy", "per-frame", "temporal")
BAR_STATIC_DB = 1.5


def default_clips() -> list[tuple[Path, Path]]:
    """McMaster validation photos when ../shared is present, else the bundled samples (which are
    noisy photos themselves, so their figures are only indicative)."""
    if all((VAL / name).is_file() for pair in VAL_CLIPS for name in pair):
        return [(VAL / a, VAL / b) for a, b in VAL_CLIPS]
    return [(SAMPLES / a, SAMPLES / b) for a, b in SAMPLE_CLIPS]


def make_clip(background: np.ndarray, patch: np.ndarray, *, frames: int, step: int, sigma: float,
              seed: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(clean frames, noisy uint8 frames, object masks) with the patch moving ``step`` px a frame
    along a diagonal that bounces off the borders."""
    rng = np.random.default_rng(seed)
    h, w = background.shape[:2]
    ph, pw = patch.shape[:2]
    y, x, dy, dx = h // 4, 8, step // 2 or 1, step
    clean, noisy, masks = [], [], []
    for _ in range(frames):
        frame = background.copy()
        frame[y:y + ph, x:x + pw] = patch
        mask = np.zeros((h, w), bool)
        mask[y:y + ph, x:x + pw] = True
        clean.append(frame)
        masks.append(mask)
        noise = rng.standard_normal(frame.shape) * sigma
        noisy.append(np.clip(frame.astype(np.float64) + noise + 0.5, 0, 255).astype(np.uint8))
        if not 0 <= x + dx <= w - pw:
            dx = -dx
        if not 0 <= y + dy <= h - ph:
            dy = -dy
        x, y = x + dx, y + dy
    return clean, noisy, masks


def psnr(sq_err: float, count: int) -> float:
    """PSNR of 8-bit frames from a region's squared-error sum over ``count`` values."""
    return float(psnr_of_mse(sq_err / max(count, 1), peak=255))


def run_clip(denoiser: Denoiser, bg_path: Path, obj_path: Path, args: argparse.Namespace, seed: int) -> dict[str, object]:
    """Squared-error sums and pixel counts per (method, region) for one clip, plus timings."""
    background = to_bgr8(read_image(bg_path))[: args.size, : args.size]
    obj = to_bgr8(read_image(obj_path))
    p = args.patch
    oy, ox = (obj.shape[0] - p) // 2, (obj.shape[1] - p) // 2
    clean, noisy, masks = make_clip(background, obj[oy:oy + p, ox:ox + p], frames=args.frames, step=args.step,
                                    sigma=args.sigma, seed=seed)
    temporal = TemporalFilter(max_age=args.max_age)
    sums = {(m, r): 0.0 for m in METHODS for r in REGIONS}
    counts = dict.fromkeys(REGIONS, 0)
    cpu_denoise = cpu_temporal = 0.0
    for t in range(args.frames):
        start = time.process_time()
        den = denoiser(noisy[t], sigma=args.sigma)
        cpu_denoise += time.process_time() - start
        start = time.process_time()
        filt = temporal(den, raw=noisy[t], sigma=args.sigma)
        cpu_temporal += time.process_time() - start
        if t < args.warmup:
            continue
        moving = masks[t] | masks[t - 1]
        regions = {"static": ~moving, "moving": moving, "body": masks[t], "uncovered": masks[t - 1] & ~masks[t]}
        ref = clean[t].astype(np.float64)
        for region, mask in regions.items():
            counts[region] += int(mask.sum()) * 3
            for name, img in (("noisy", noisy[t]), ("per-frame", den), ("temporal", filt)):
                sums[(name, region)] += float(((img.astype(np.float64) - ref) ** 2)[mask].sum())
    return {"sums": sums, "counts": counts, "shape": background.shape, "background": bg_path, "object": obj_path,
            "cpu_denoise_ms": 1000 * cpu_denoise / args.frames, "cpu_temporal_ms": 1000 * cpu_temporal / args.frames}


def table(sums: dict, counts: dict) -> tuple[dict[str, float], list[str]]:
    value = {(m, r): psnr(sums[(m, r)], counts[r]) for m in METHODS for r in REGIONS}
    gain = {r: value[("temporal", r)] - value[("per-frame", r)] for r in REGIONS}
    rows = [f"| {label} | " + " | ".join(f"{value[(m, r)]:.2f}" for r in REGIONS) + " |"
            for label, m in (("noisy input", "noisy"), ("per-frame denoising", "per-frame"),
                             ("per-frame + temporal", "temporal"))]
    rows.append("| **temporal gain** | " + " | ".join(f"**{gain[r]:+.2f}**" for r in REGIONS) + " |")
    return gain, rows


def rel(path: Path) -> str:
    """A path as the repository sees it: ``exported/x.onnx``, ``../shared/...``."""
    resolved = Path(path).resolve()
    for base, prefix in ((ROOT, ""), (ROOT.parent, "../")):
        try:
            return prefix + str(resolved.relative_to(base))
        except ValueError:
            continue
    return str(path)


def report(args: argparse.Namespace, clips: list[dict[str, Any]], model: Path, command: str) -> str:
    header = ["| PSNR (dB) | static area | moving area | of which: object body | of which: just uncovered |",
              "|---|---:|---:|---:|---:|"]
    total_sums = {k: sum(c["sums"][k] for c in clips) for k in clips[0]["sums"]}
    total_counts = {r: sum(c["counts"][r] for c in clips) for r in REGIONS}
    gain, rows = table(total_sums, total_counts)
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    lines = [
        "# Temporal denoising (`edge-ae camera --temporal`)",
        "",
        "Generated by `tools/bench_temporal.py`; do not edit the numbers by hand. Command:",
        "",
        "```",
        command,
        "```",
        "",
        f"Each clip: a background photo cropped to at most {args.size}x{args.size}, a {args.patch}x{args.patch} textured "
        f"patch from another photo moving {args.step} px/frame (diagonal, bouncing), {args.frames} frames, fresh "
        f"Gaussian noise sigma {args.sigma:g} (0-255) every frame, quantised to 8 bits. Denoiser `{rel(model)}` "
        f"given the true sigma; `TemporalFilter(max_age={args.max_age})` (the defaults of `--temporal`) on its "
        f"output. PSNR pooled over frames {args.warmup}-{args.frames - 1} (the first {args.warmup} are warm-up). "
        "Static: pixels the object covers neither now nor in the previous frame; moving: pixels it covers now "
        "or in the previous frame = its body + the background it has just uncovered (where a ghost would show). "
        "The filter's thresholds were chosen on clip 1; the other clips did not take part.",
        "",
        f"## All {len(clips)} clips pooled",
        "",
        *header,
        *rows,
        "",
        f"Bar: static gain >= +{BAR_STATIC_DB} dB: **{verdict(gain['static'] >= BAR_STATIC_DB)}**; "
        f"moving object no worse than per-frame - body + uncovered: **{verdict(gain['moving'] >= 0)}**, "
        f"body alone: **{verdict(gain['body'] >= 0)}**. Per clip, gain on the body: "
        + ", ".join(f"{table(c['sums'], c['counts'])[0]['body']:+.2f} dB" for c in clips)
        + "; on the static area: " + ", ".join(f"{table(c['sums'], c['counts'])[0]['static']:+.2f} dB" for c in clips) + ".",
        "",
    ]
    for i, clip in enumerate(clips, start=1):
        _, rows = table(clip["sums"], clip["counts"])
        h, w = clip["shape"][:2]
        lines += [f"## Clip {i}: `{rel(clip['background'])}` ({w}x{h}) with a patch of `{rel(clip['object'])}`", "",
                  *header, *rows, ""]
    cpu_d = np.mean([c["cpu_denoise_ms"] for c in clips])
    cpu_t = np.mean([c["cpu_temporal_ms"] for c in clips])
    lines += [
        f"CPU time per frame on this machine ({platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, onnxruntime threads {args.threads}, OpenCV threads 1, shared with other jobs): "
        f"denoiser {cpu_d:.0f} ms, temporal filter {cpu_t:.0f} ms (for the {w}x{h} frames above; it scales with pixels).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="denoise-color", help="denoiser name or .onnx path (default denoise-color)")
    ap.add_argument("--clip", nargs=2, action="append", type=Path, metavar=("BACKGROUND", "OBJECT"),
                    help="a clip's background image and the image its moving patch is cut from (repeatable; "
                    "default: three McMaster validation pairs, or bundled samples)")
    ap.add_argument("--size", type=int, default=256, help="crop backgrounds to at most this many pixels a side")
    ap.add_argument("--patch", type=int, default=64, help="moving patch size in pixels")
    ap.add_argument("--step", type=int, default=4, help="object motion in pixels per frame")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=8, help="first frames left out of the figures")
    ap.add_argument("--sigma", type=float, default=25.0, help="noise std on the 0-255 scale")
    ap.add_argument("--max-age", type=int, default=8, help="TemporalFilter max_age")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "temporal.md")
    args = ap.parse_args(argv)
    if not 1 <= args.warmup < args.frames:
        ap.error("need 1 <= --warmup < --frames")
    cv2.setNumThreads(1)  # one core for everything: figures comparable to a small board's
    argv = sys.argv[1:] if argv is None else argv
    command = ("python -m tools.bench_temporal " + " ".join(shlex.quote(a) for a in argv)).strip()
    denoiser = Denoiser(args.model, threads=args.threads, precision=exact(args.model) if args.model else "auto")
    clips = [run_clip(denoiser, bg, obj, args, seed=args.seed + i) for i, (bg, obj) in enumerate(args.clip or default_clips())]
    text = report(args, clips, denoiser.model_for(3).path, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
