"""Denoiser benchmark: shipped models vs OpenCV non-local means, BM3D and the seeds' plain
convolutional autoencoder, side by side in one run.

    python -m tools.bench_denoise                # full run, writes docs/benchmarks/denoise.md
    python -m tools.bench_denoise --limit 2 --sigmas 25 --methods models nlm --out /tmp/d.md   # quick look
    python -m tools.bench_denoise --sets Set12 --methods models nlm --model trial.onnx --out /tmp/t.md  # a trial file too

Quality: Set12 (gray) and McMaster (color) from ../shared/data/denoise/val at sigma 15/25/50,
noise protocol of ../shared/README.md (clean in [0, 1] plus Gaussian noise of std sigma/255,
float, not clipped; PSNR on [0, 1]); the same noisy image for every method (seeded per image).
Models and BM3D are told the true sigma; ``(est.)`` rows let the runtime estimate it; ``ensemble 8``
rows run the quality models with ``Denoiser(ensemble=8)`` (8 flips/transposes averaged).
Non-local means needs 8-bit input, so it sees the noisy image clipped and rounded; its filter
strength h is tuned per sigma on 4 held-out BSD training images, never on the test sets.
Speed: milliseconds per 640x480 frame, uint8 in and out, end to end, threads fixed at 2; every
model is timed in 4 rounds (``time_in_passes``), so that all see the same machine load.
Needs the bench extra (bm3d, scikit-image) and the dev venv.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_ae import Denoiser, list_models
from edge_ae import image as im
from edge_ae.denoise.precision import exact
from tools.macs import count as count_macs
from training import metrics

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT.parent / "shared" / "data" / "denoise"
SETS = {"Set12": 1, "McMaster": 3}
NLM_FACTORS = (0.3, 0.45, 0.6, 0.8, 1.0, 1.2)
THREADS = 2
PASSES = 4  # timing rounds over all models (see time_in_passes)
ENSEMBLE = 8  # copies averaged by the quality models' ensemble rows
QUALITY_MODELS = ("denoise-gray", "denoise-color")


def read(path: Path, flag: int) -> np.ndarray:
    image = cv2.imread(str(path), flag)
    if image is None:
        raise SystemExit(f"bench_denoise: cannot read {path}")
    return image


def load_set(name: str, channels: int, limit: int | None) -> list[np.ndarray]:
    files = sorted((DATA / "val" / name).glob("*.png"), key=lambda p: (len(p.stem), p.stem))[:limit]
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    return [read(p, flag).astype(np.float32) / 255 for p in files]


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (clean + rng.standard_normal(clean.shape) * sigma / 255).astype(np.float32)


def psnr(out: np.ndarray, clean: np.ndarray) -> float:
    """The output as the runtime would clip it, against the clean image (training.metrics.psnr)."""
    return metrics.psnr(clean, np.clip(out, 0, 1))


def ssim(out: np.ndarray, clean: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    axis = 2 if clean.ndim == 3 else None
    return float(structural_similarity(clean, np.clip(out, 0, 1).astype(np.float32), data_range=1.0, channel_axis=axis))


def nlm(noisy: np.ndarray, sigma: float, factor: float) -> np.ndarray:
    h = factor * sigma
    if noisy.ndim == 2:
        out = cv2.fastNlMeansDenoising(im.to_uint8(noisy), None, h, 7, 21)
    else:
        out = cv2.fastNlMeansDenoisingColored(im.to_uint8(noisy), None, h, h, 7, 21)
    return out.astype(np.float32) / 255


def tune_nlm(channels: int, sigma: float) -> float:
    """Best h/sigma on 4 held-out BSD training images (not a test set)."""
    files = sorted((DATA / "train" / "bsd432").glob("*.jpg"))[-4:]
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    images = [read(p, flag).astype(np.float32)[:160, :160] / 255 for p in files]
    scores = {f: np.mean([psnr(nlm(add_noise(im, sigma, i), sigma, f), im) for i, im in enumerate(images)])
              for f in NLM_FACTORS}
    return max(scores, key=scores.__getitem__)


def bm3d_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    if noisy.ndim == 2:
        return np.asarray(bm3d.bm3d(noisy, sigma_psd=sigma / 255), np.float32)
    rgb = noisy[:, :, ::-1]
    return np.asarray(bm3d.bm3d_rgb(rgb, sigma_psd=sigma / 255), np.float32)[:, :, ::-1].copy()


def models_by_kind() -> tuple[list[str], list[str]]:
    names = [e.name for e in list_models("denoiser")]
    baselines = [n for n in names if n.startswith("plain-cae")]
    return [n for n in names if n not in baselines], baselines


def graph_feeds(spec, frame: np.ndarray) -> dict[str, np.ndarray]:
    """The network's own inputs for a 640x480 frame (already a multiple of every model's size
    multiple), prepared by the runtime's helpers once, outside the timing: so the timing is the
    graph's alone (no noise estimate, no conversions)."""
    batch, _ = im.adapt_channels(im.split(frame).color, spec.channels)
    feeds = {"image": im.to_float(batch)}
    if spec.noise_input:  # a map model takes the level per pixel and channel (docs/MODEL_CONTRACT.md)
        shape = batch.shape if spec.noise_map else (batch.shape[0], 1)
        feeds["sigma"] = np.full(shape, 25 / 255, np.float32)
    return feeds


def ensemble_name(model: str) -> str:
    return f"{model}, ensemble {ENSEMBLE}"


def time_call(fn, arg: object, repeat: int) -> float:
    """Median milliseconds of ``fn(arg)``."""
    if repeat > 1:
        fn(arg)  # warm-up: first call allocates
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def time_in_passes(calls: Mapping[Any, tuple[Any, Any, int]], passes: int) -> dict[Any, float]:
    """Median milliseconds of each ``fn(arg)`` (key -> (fn, arg, repeats)). The calls are timed in
    ``passes`` rounds, each a short block of consecutive calls per model after a warm-up: a shared
    machine can run tens of percent slower for minutes at a time, and rounds let every model see
    the same mix of fast and slow spells, so their ratios hold even when absolute figures drift.
    Blocks rather than single alternating calls, because a session that has just run keeps its
    threads spinning for a moment and slows the next session down."""
    samples: dict[object, list[float]] = {key: [] for key in calls}
    for _ in range(passes):
        for key, (fn, arg, repeat) in calls.items():
            samples[key].append(time_call(fn, arg, max(1, -(-repeat // passes))))
    return {key: statistics.median(v) for key, v in samples.items()}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 50])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--methods", nargs="+", default=["models", "nlm", "bm3d", "baseline"],
                    choices=["models", "nlm", "bm3d", "baseline"])
    ap.add_argument("--limit", type=int, help="only the first N images of each set (quick looks)")
    ap.add_argument("--repeat", type=int, default=20, help="timing repeats per model (median)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "denoise.md")
    ap.add_argument("--json", type=Path, default=ROOT / "runs" / "bench_denoise.json")
    ap.add_argument("--update-manifest", action="store_true", help="record the figures in exported/manifest.json")
    ap.add_argument("--model", action="append", type=Path, default=[],
                    help="also benchmark this denoiser file (a trial; repeatable), labelled by its path; "
                         "never written to the manifest")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"bench_denoise: needs the validation sets in {DATA}")
    if args.model and args.out == ap.get_default("out"):
        sys.exit("bench_denoise: pass --out with --model, so that docs/benchmarks/denoise.md keeps the shipped models only")
    missing = [str(m) for m in args.model if not m.is_file()]
    if missing:
        sys.exit(f"bench_denoise: no such model file: {', '.join(missing)}")
    return args


def model_methods(names: list[str], channels: int) -> dict[str, object]:
    """The denoisers of ``names`` that take ``channels``, as ``f(noisy, sigma)``; the quality models
    also blind (est.) and as an 8-copy ensemble."""
    methods: dict[str, object] = {}
    for name in names:
        d = Denoiser(name, threads=THREADS, precision=exact(name))  # each row its own model, never the twin
        if d.model_for(channels).spec.channels != channels:
            continue  # gray models on the gray set, color models on the color set
        methods[name] = lambda x, s, d=d: d(x, sigma=s)
        if name in QUALITY_MODELS:
            methods[f"{name} (est.)"] = lambda x, s, d=d: d(x)
            e = Denoiser(name, threads=THREADS, ensemble=ENSEMBLE, precision=exact(name))
            methods[ensemble_name(name)] = lambda x, s, e=e: e(x, sigma=s)
    return methods


def measure_quality(args: argparse.Namespace, names: list[str]) -> dict[tuple[str, str, float], tuple[float, float]]:
    """(set, method, sigma) -> (mean PSNR, mean SSIM), the same noisy images for every method."""
    rows: dict[tuple[str, str, float], tuple[float, float]] = {}
    for set_name in args.sets:
        channels = SETS[set_name]
        images = load_set(set_name, channels, args.limit)
        methods = model_methods(names, channels)
        for sigma in args.sigmas:
            todo: dict[str, Any] = dict(methods)
            if "nlm" in args.methods:
                factor = tune_nlm(channels, sigma)
                todo[f"OpenCV NLM (h={factor:g}σ)"] = lambda x, s, f=factor: nlm(x, s, f)
            if "bm3d" in args.methods:
                todo["BM3D" if channels == 1 else "CBM3D"] = bm3d_denoise
            for method, fn in todo.items():
                scores = []
                for i, clean in enumerate(images):
                    noisy = add_noise(clean, sigma, seed=1000 * i + int(sigma))
                    out = fn(noisy, sigma)
                    scores.append((psnr(out, clean), ssim(out, clean)))
                label = method.replace(f"h={factor:g}σ", "tuned h") if "NLM" in method else method
                rows[(set_name, label, sigma)] = (float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores])))
                print(f"{set_name} sigma {sigma:g} {method}: {rows[(set_name, label, sigma)][0]:.2f} dB", flush=True)
    return rows


def measure_speed(args: argparse.Namespace, names: list[str]) -> tuple[dict, dict, dict]:
    """End-to-end ms per 640x480 frame, graph-only ms, and (params, multiply-adds per pixel)."""
    rng = np.random.default_rng(0)
    frames = {1: (rng.random((480, 640)) * 255).astype(np.uint8), 3: (rng.random((480, 640, 3)) * 255).astype(np.uint8)}
    end_to_end: dict[tuple[str, int], tuple[object, object, int]] = {}
    graph_only: dict[str, tuple[object, object, int]] = {}
    cost: dict[str, tuple[int, float]] = {}
    for name in names:
        d = Denoiser(name, threads=THREADS, precision=exact(name))  # each row its own model, never the twin
        model = d.model_for(1)
        frame = frames[model.spec.channels]
        cost[name] = count_macs(model.path)
        end_to_end[(name, model.spec.channels)] = (d, frame, args.repeat)
        graph_only[name] = (model.run, graph_feeds(model.spec, frame), args.repeat)
        if name in QUALITY_MODELS:
            e = Denoiser(name, threads=THREADS, ensemble=ENSEMBLE, precision=exact(name))
            cost[ensemble_name(name)] = (cost[name][0], cost[name][1] * ENSEMBLE)
            end_to_end[(ensemble_name(name), model.spec.channels)] = (e, frame, min(args.repeat, 3))
    speed = time_in_passes(end_to_end, PASSES)
    graph_ms = time_in_passes(graph_only, PASSES)
    if "nlm" in args.methods:
        reps = min(args.repeat, 5)  # NLM is slow: a few runs give a stable median
        speed[("OpenCV NLM", 1)] = time_call(lambda f: cv2.fastNlMeansDenoising(f, None, 25.0, 7, 21), frames[1], reps)
        speed[("OpenCV NLM", 3)] = time_call(
            lambda f: cv2.fastNlMeansDenoisingColored(f, None, 25.0, 25.0, 7, 21), frames[3], reps)
    if "bm3d" in args.methods:
        speed[("BM3D", 1)] = time_call(lambda f: bm3d_denoise(f.astype(np.float32) / 255, 25), frames[1], 1)
        speed[("CBM3D", 3)] = time_call(lambda f: bm3d_denoise(f.astype(np.float32) / 255, 25), frames[3], 1)
    return speed, graph_ms, cost


def main() -> None:
    args = parse_args()
    cv2.setNumThreads(THREADS)
    shipped, baselines = models_by_kind()
    if "models" in args.methods:
        shipped += [str(m) for m in args.model]
    names = (shipped if "models" in args.methods else []) + (baselines if "baseline" in args.methods else [])
    started = time.time()
    rows = measure_quality(args, names)
    speed, graph_ms, cost = measure_speed(args, names)
    record = {"rows": [[*k, *v] for k, v in rows.items()], "speed": [[*k, v] for k, v in speed.items()],
              "graph_ms": graph_ms, "cost": {k: list(v) for k, v in cost.items()}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(rows, speed, graph_ms, cost, args, time.time() - started))
    if args.update_manifest:
        update_manifest(rows, speed, cost)
    if args.out.resolve().parent == (ROOT / "docs" / "benchmarks").resolve():
        from tools.benchmarks_md import main as rebuild

        rebuild()  # after the manifest: the README's models table is rendered from it
    print(f"wrote {args.out}")


def render(rows, speed, graph_ms, cost, args, seconds: float) -> str:
    cmd = "python -m tools.bench_denoise" + ("" if len(sys.argv) == 1 else " " + " ".join(sys.argv[1:]))
    lines = [
        "## Denoising: quality and speed",
        "",
        f"Command: `{cmd}` — {datetime.date.today().isoformat()}, {platform.machine()} CPU, "
        f"{THREADS} threads, Python {platform.python_version()}, {seconds / 60:.0f} min. "
        "Protocol in the script's docstring (Gaussian noise, float, unclipped; PSNR on [0, 1]; "
        "the same noisy images for every method).",
        "",
    ]
    for set_name in args.sets:
        methods = list(dict.fromkeys(m for (s, m, _) in rows if s == set_name))
        if not methods:
            continue
        subset = f", first {args.limit} images" if args.limit else ""
        lines += [f"### {set_name} ({'gray' if SETS[set_name] == 1 else 'color'}{subset})",
                  "", "| method | " + " | ".join(f"σ={s:g} PSNR / SSIM" for s in args.sigmas) + " |",
                  "|---|" + "---|" * len(args.sigmas)]
        for m in methods:
            cells = [f"{rows[(set_name, m, s)][0]:.2f} / {rows[(set_name, m, s)][1]:.4f}" if (set_name, m, s) in rows else "–"
                     for s in args.sigmas]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### Cost and speed (640x480 frame, uint8, end to end, 2 threads, median)", "",
              "| method | parameters | multiply-adds / pixel | gray ms | color ms |", "|---|---|---|---|---|"]
    names = list(dict.fromkeys(n for n, _ in speed))
    for n in names:
        params, macs = cost.get(n, (None, None))
        g, c = speed.get((n, 1)), speed.get((n, 3))
        lines.append(f"| {n} | {f'{params:,}' if params else '–'} | {f'{macs:,.0f}' if macs else '–'} | "
                     f"{f'{g:.1f}' if g else '–'} | {f'{c:.1f}' if c else '–'} |")
    lines += ["", *throughput(graph_ms, cost), "", *targets(rows, speed, cost, args)]
    return "\n".join(lines) + "\n"


def throughput(graph_ms, cost) -> list[str]:
    """What the speed targets ask of this CPU: the graph's own multiply-add rate, and the model
    size that the best rate measured here fits into each time budget."""
    pixels = 640 * 480
    rates = {n: cost[n][1] * pixels / (graph_ms[n] / 1000) / 1e9 for n in graph_ms if n in cost}
    if not rates:
        return []
    out = ["### What the speed targets ask of this CPU", "",
           "Graph only (no noise estimate or conversions), 640x480, 2 threads, median:", "",
           "| model | graph ms | multiply-adds / s |", "|---|---|---|"]
    out += [f"| {n} | {graph_ms[n]:.1f} | {rates[n]:.0f} G |" for n in rates]
    best = max(rates.values())
    out += ["", f"At the best rate measured here ({best:.0f} G multiply-adds/s), the graph alone fits "
            f"{best * 1e9 * 0.060 / pixels:,.0f} multiply-adds/pixel into 60 ms and "
            f"{best * 1e9 * 0.010 / pixels:,.0f} into 10 ms, before any pre- or post-processing."]
    return out


def targets(rows, speed, cost, args) -> list[str]:
    """The issue's bars, checked against this run's numbers."""
    out = ["### Targets", "", "| target | result | met |", "|---|---|---|"]

    def get(set_name, method, sigma):
        return rows.get((set_name, method, sigma), (None,))[0]

    for model, set_name, ref in (("denoise-gray", "Set12", "BM3D"), ("denoise-color", "McMaster", "CBM3D")):
        for variant in (model, ensemble_name(model), f"{model}-int8"):
            for s in args.sigmas:
                ours, theirs = get(set_name, variant, s), get(set_name, ref, s)
                if ours is not None and theirs is not None:
                    out.append(f"| {variant} ≥ {ref} on {set_name}, σ={s:g} | {ours:.2f} vs {theirs:.2f} dB "
                               f"({ours - theirs:+.2f}) | {'yes' if ours >= theirs else '**no**'} |")
            if variant in cost:  # the ensemble runs the model 8 times: 8x its multiply-adds
                macs = cost[variant][1]
                out.append(f"| {variant} ≤ 40k multiply-adds/pixel | {macs:,.0f} | "
                           f"{'yes' if macs <= 40000 else '**no**'} |")
    for variant in ("denoise-color", "denoise-color-int8"):
        if (variant, 3) in speed:
            ms = speed[(variant, 3)]
            out.append(f"| {variant} 640x480 color < 60 ms | {ms:.1f} ms | {'yes' if ms < 60 else '**no**'} |")
    for model, set_name in (("denoise-gray-fast", "Set12"), ("denoise-color-fast", "McMaster"),
                            ("denoise-gray-fast-int8", "Set12"), ("denoise-color-fast-int8", "McMaster")):
        ours = get(set_name, model, 25.0)
        ref = get(set_name, "OpenCV NLM (tuned h)", 25.0)
        if ours is not None and ref is not None:
            out.append(f"| {model} ≥ NLM + 1 dB on {set_name}, σ=25 | {ours:.2f} vs {ref:.2f} dB ({ours - ref:+.2f}) | "
                       f"{'yes' if ours >= ref + 1 else '**no**'} |")
        if model in cost:
            macs = cost[model][1]
            out.append(f"| {model} ≤ 5k multiply-adds/pixel | {macs:,.0f} | {'yes' if macs <= 5000 else '**no**'} |")
    for variant in ("denoise-gray-fast", "denoise-gray-fast-int8"):
        if (variant, 1) in speed:
            ms = speed[(variant, 1)]
            out.append(f"| {variant} 640x480 gray < 10 ms | {ms:.1f} ms | {'yes' if ms < 10 else '**no**'} |")
    return out


def update_manifest(rows, speed, cost) -> None:
    path = ROOT / "exported" / "manifest.json"
    data = json.loads(path.read_text())
    for entry in data["models"]:
        name = entry["name"]
        quality = {f"{s}/sigma{int(sig)}": {"psnr": round(v[0], 2), "ssim": round(v[1], 4)}
                   for (s, m, sig), v in rows.items() if m == name}
        if quality:
            entry["quality"] = {"protocol": "tools/bench_denoise.py", **quality}
        ms = {f"{'gray' if ch == 1 else 'color'}_640x480_ms": round(v, 1) for (n, ch), v in speed.items() if n == name}
        if ms:
            entry["speed"] = {**ms, "threads": THREADS, "params": cost[name][0], "macs_per_pixel": round(cost[name][1])}
    path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
