"""Measure temporal denoising against per-frame denoising on a synthetic fixed-camera clip.

    python tools/bench_temporal.py [--model denoise-color] [--out docs/benchmarks/temporal.md]

The clip: a still image (the background) with a textured patch (the moving object, cut from
another image) sliding across it, and fresh Gaussian noise on every frame, quantised to 8 bits
like a camera's. Every frame is denoised on its own (the baseline), and the same denoised
frames go through ``edge_ae.temporal.TemporalFilter`` (what ``edge-ae camera --temporal``
runs). PSNR against the clean frames is pooled over frames (one MSE per region over all
frames after a warm-up) on two regions:

* static: pixels the object covers neither in this frame nor in the previous one;
* moving: pixels it covers in this frame or the previous one - its body plus the background
  it just uncovered, where a ghost would show.

The bar (issue 6): at least +1.5 dB on the static area, no worse on the moving area.
Writes a markdown report with the exact command; never edit its numbers by hand.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_ae import Denoiser  # noqa: E402
from edge_ae.imageio import read_image  # noqa: E402
from edge_ae.sinks import to_bgr8  # noqa: E402
from edge_ae.temporal import TemporalFilter  # noqa: E402

VAL = ROOT.parent / "shared" / "data" / "denoise" / "val" / "McMaster"
BAR_STATIC_DB = 1.5


def default_images() -> tuple[Path, Path]:
    """Background and object images: McMaster validation photos if present, else bundled samples."""
    if (VAL / "1.png").is_file() and (VAL / "8.png").is_file():
        return VAL / "1.png", VAL / "8.png"
    samples = ROOT / "samples" / "noisy"
    return samples / "Building.png", samples / "Chupa_Chups.png"


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
    mse = sq_err / max(count, 1)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def run(args: argparse.Namespace) -> dict[str, object]:
    bg_path, obj_path = args.background or default_images()[0], args.object or default_images()[1]
    background = to_bgr8(read_image(bg_path))[: args.size, : args.size]
    obj = to_bgr8(read_image(obj_path))
    p = args.patch
    oy, ox = (obj.shape[0] - p) // 2, (obj.shape[1] - p) // 2
    patch = obj[oy:oy + p, ox:ox + p]
    clean, noisy, masks = make_clip(background, patch, frames=args.frames, step=args.step, sigma=args.sigma, seed=args.seed)

    denoiser = Denoiser(args.model, threads=args.threads)
    temporal = TemporalFilter(max_age=args.max_age)
    region_names = ("static", "moving", "body", "uncovered")
    sums = {(m, r): 0.0 for m in ("noisy", "per-frame", "temporal") for r in region_names}
    counts = dict.fromkeys(region_names, 0)
    t_denoise = t_temporal = 0.0
    for t in range(args.frames):
        start = time.perf_counter()
        den = denoiser(noisy[t], sigma=args.sigma)
        t_denoise += time.perf_counter() - start
        start = time.perf_counter()
        filt = temporal(den, raw=noisy[t], sigma=args.sigma)
        t_temporal += time.perf_counter() - start
        if t < args.warmup:
            continue
        moving = masks[t] | masks[t - 1]
        regions = {"static": ~moving, "moving": moving, "body": masks[t], "uncovered": masks[t - 1] & ~masks[t]}
        ref = clean[t].astype(np.float64)
        for region, mask in regions.items():
            counts[region] += int(mask.sum()) * 3
            for name, img in (("noisy", noisy[t]), ("per-frame", den), ("temporal", filt)):
                sums[(name, region)] += float(((img.astype(np.float64) - ref) ** 2)[mask].sum())
    result = {f"{m} {r}": psnr(sums[(m, r)], counts[r]) for (m, r) in sums}
    result.update(background=str(bg_path), object=str(obj_path), shape=background.shape,
                  denoise_ms=1000 * t_denoise / args.frames, temporal_ms=1000 * t_temporal / args.frames,
                  model=str(denoiser.model_for(3).path))
    return result


def report(args: argparse.Namespace, r: dict[str, object], command: str) -> str:
    gain = {k: r[f"temporal {k}"] - r[f"per-frame {k}"] for k in ("static", "moving", "body", "uncovered")}
    ok_static, ok_moving, ok_body = gain["static"] >= BAR_STATIC_DB, gain["moving"] >= 0.0, gain["body"] >= 0.0
    rel = lambda p: str(Path(p).resolve().relative_to(ROOT.parent)) if str(Path(p).resolve()).startswith(str(ROOT.parent)) else p  # noqa: E731
    lines = [
        "# Temporal denoising (`edge-ae camera --temporal`)",
        "",
        "Generated by `tools/bench_temporal.py`; do not edit the numbers by hand. Command:",
        "",
        "```",
        command,
        "```",
        "",
        f"Clip: background `{rel(r['background'])}` cropped to {r['shape'][1]}x{r['shape'][0]}, a {args.patch}x{args.patch} "
        f"textured patch from `{rel(r['object'])}` moving {args.step} px/frame (diagonal, bouncing), "
        f"{args.frames} frames, fresh Gaussian noise sigma {args.sigma:g} (0-255) every frame, quantised to 8 bits, "
        f"seed {args.seed}. Denoiser `{rel(r['model'])}` with the true sigma; "
        f"TemporalFilter(max_age={args.max_age}) on its output. PSNR pooled over frames {args.warmup}-{args.frames - 1} "
        f"(the first {args.warmup} are warm-up). Static: pixels the object covers neither now nor in the previous frame; "
        "moving: pixels it covers now or in the previous frame (its body plus the background it just uncovered, "
        "where a ghost would show).",
        "",
        "| PSNR (dB) | static area | moving area | of which: object body | of which: just uncovered |",
        "|---|---:|---:|---:|---:|",
        *[f"| {label} | " + " | ".join(f"{r[f'{key} {k}']:.2f}" for k in ("static", "moving", "body", "uncovered")) + " |"
          for label, key in (("noisy input", "noisy"), ("per-frame denoising", "per-frame"),
                             ("per-frame + temporal", "temporal"))],
        "| **temporal gain** | " + " | ".join(f"**{gain[k]:+.2f}**" for k in ("static", "moving", "body", "uncovered")) + " |",
        "",
        f"Bar: static gain >= +{BAR_STATIC_DB} dB: **{'met' if ok_static else 'NOT met'}**; "
        f"moving area (body + just uncovered) no worse than per-frame: **{'met' if ok_moving else 'NOT met'}**; "
        f"object body alone no worse: **{'met' if ok_body else 'NOT met'}**.",
        "",
        f"Time per frame on this machine ({platform.machine()}, {args.threads} thread(s), other jobs running): "
        f"denoiser {r['denoise_ms']:.1f} ms, temporal filter {r['temporal_ms']:.1f} ms.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="denoise-color", help="denoiser name or .onnx path (default denoise-color)")
    ap.add_argument("--background", type=Path, help="still image (default: McMaster 1.png, or a bundled sample)")
    ap.add_argument("--object", type=Path, help="image the moving patch is cut from (default: McMaster 8.png)")
    ap.add_argument("--size", type=int, default=320, help="crop the background to at most this many pixels a side")
    ap.add_argument("--patch", type=int, default=64, help="moving patch size in pixels")
    ap.add_argument("--step", type=int, default=4, help="object motion in pixels per frame")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=8, help="first frames left out of the figures")
    ap.add_argument("--sigma", type=float, default=25.0, help="noise std on the 0-255 scale")
    ap.add_argument("--max-age", type=int, default=8, help="TemporalFilter max_age")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "temporal.md")
    args = ap.parse_args(argv)
    if not 1 <= args.warmup < args.frames:
        ap.error("need 1 <= --warmup < --frames")
    command = "python tools/bench_temporal.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    result = run(args)
    text = report(args, result, command.strip())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
