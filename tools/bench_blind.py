"""Blind calibration benchmark (issue 52): every shipped denoiser's default call (no sigma) against
the same model told the true sigma, on every kind of photo, beside the previous release.

    python -m tools.bench_blind                      # writes docs/benchmarks/blind.md and blind.json
    python -m tools.bench_blind --limit 2 --real-limit 3 --repeat 2 --out /tmp/b.md   # quick look
    git worktree add OUT/previous REV && python -m tools.bench_blind --runtime OUT/previous \\
        --out OUT/previous.md --json docs/benchmarks/blind-previous.json   # the previous release's figures

The grid, per model (gray models on gray images, color models on color images):

* clean: the validation images as they are (Set12 gray, McMaster color), the same JPEG-compressed
  at quality 75 (no noise added: blocking is not noise), and real clean photos (the references of
  the PolyU pairs, the mean of many shots; gray copies for gray models). The figure is the output's
  PSNR against its input: 45 dB or more is issue 52's bar ("comes back nearly unchanged").
* white Gaussian noise, sigma 5 / 15 / 25 / 50 (float, not clipped, PSNR on [0, 1]: the noise
  protocol of ../shared/README.md, seeded per image): blind and told the true sigma; the bar is
  blind within 0.3 dB of told.
* real camera pairs (PolyU, evaluation only): blind, the model at its best fixed sigma from a grid
  chosen with hindsight (float models), OpenCV non-local means at its best h (tools/bench_real_noise.py's
  protocol: 8-bit in and out).
* every case: is the blind output at least as close to the reference as the input was? ("never worse
  than the input").

Cost of blindness: the blind call over the call told a sigma (15), on one 640x480 frame of
correlated noise (the blind path runs the learned estimator there; on white noise it skips it): the
median ratio over ``--repeat`` pairs of calls made back to back (``paired``), threads fixed at 2: a
pair sees one load, so the ratio holds on a shared host whose speed drifts within seconds.
``--runtime DIR`` benchmarks another checkout's runtime and models (its ``edge_ae/`` and
``exported/``), e.g. the previous release; ``--previous JSON`` is shown beside.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

# Imported before --runtime puts another checkout first on the path: this checkout's one PSNR.
from training import metrics

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "denoise"
POLYU = DATA / "real" / "polyu-canon"
OUT = ROOT / "docs" / "benchmarks" / "blind.md"
PREVIOUS = ROOT / "docs" / "benchmarks" / "blind-previous.json"
SIGMAS = (5.0, 15.0, 25.0, 50.0)
JPEG_QUALITY = 75
ORACLE_SIGMAS = (4.0, 6.0, 8.0, 10.0, 13.0)
NLM_H = (3.0, 4.0, 5.0)
THREADS = 2
# Default grid size: sized to run in about half an hour on 2 busy shared cores for all 8 denoisers.
LIMIT, PHOTO_LIMIT, REAL_LIMIT = 6, 8, 20
CLEAN_BAR = 45.0
GAP_BAR = 0.3
TOLD = 15.0  # the sigma of the timed told call


def psnr(out: np.ndarray, ref: np.ndarray) -> float:
    """The output as the runtime would clip it, against the reference (training.metrics.psnr)."""
    return metrics.psnr(ref, np.clip(out.astype(np.float64), 0, 1))


def spread(items: list, limit: int | None) -> list:
    if limit is None or limit >= len(items):
        return items
    return [items[round(i * (len(items) - 1) / max(limit - 1, 1))] for i in range(limit)]


def read(path: Path, flag: int) -> np.ndarray:
    image = cv2.imread(str(path), flag)
    if image is None:
        raise ValueError(f"expected an image file OpenCV can read, got {path}")
    return np.asarray(image)


def load_set(name: str, gray: bool, limit: int | None) -> list[np.ndarray]:
    files = sorted((DATA / "val" / name).glob("*.png"), key=lambda p: (len(p.stem), p.stem))
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    return [read(p, flag).astype(np.float32) / 255 for p in spread(files, limit)]


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)).astype(np.float32) / 255


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (clean + rng.standard_normal(clean.shape) * sigma / 255).astype(np.float32)


def real_pairs(gray: bool, limit: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(noisy, reference) 8-bit PolyU pairs, BGR or gray (OpenCV's conversion), as
    tools/bench_real_noise.py reads them (not imported: --runtime may be an older checkout)."""
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    noisy_files = spread(sorted(POLYU.glob("*_real.*")), limit)
    return [(read(f, flag), read(f.with_name(f.name.replace("_real", "_mean")), flag)) for f in noisy_files]


def nlm(image: np.ndarray, h: float) -> np.ndarray:
    if image.ndim == 2:
        return cv2.fastNlMeansDenoising(image, None, h, 7, 21)
    return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, 21)


def psnr8(out: np.ndarray, ref: np.ndarray) -> float:
    return psnr(out.astype(np.float32) / 255, ref.astype(np.float32) / 255)


def grid_case(denoise, images: list[np.ndarray], case: str, sigma: float | None, *, with_told: bool = True) -> dict:
    """One row: mean PSNR of input, blind output (and told) against the reference, levels read,
    and how many images came out worse than they went in."""
    rows = []
    for i, clean in enumerate(images):
        if case == "white" and sigma is not None:
            noisy, ref = add_noise(clean, sigma, i), clean
        elif case == "jpeg":
            noisy = ref = jpeg(clean, JPEG_QUALITY)
        else:
            noisy = ref = clean
        blind = denoise(noisy)
        level = denoise.last_sigma
        told = denoise(noisy, sigma=sigma) if case == "white" and with_told else None
        p_in = psnr(noisy, ref)
        p_blind = psnr(blind, ref)
        rows.append((p_in, p_blind, float("nan") if told is None else psnr(told, ref), level or 0.0, p_blind < p_in))
    a = np.array([r[:4] for r in rows], np.float64)
    finite_in = a[:, 0][np.isfinite(a[:, 0])]
    # A clean input is its own reference: any change is "worse", so there the bar is CLEAN_BAR instead.
    return {"input": float(finite_in.mean()) if len(finite_in) else None, "blind": float(a[:, 1].mean()),
            "told": None if case != "white" or not with_told else float(a[:, 2].mean()), "level": float(a[:, 3].mean()),
            "worse_than_input": int(sum(r[4] for r in rows)) if case == "white" else None, "images": len(rows)}


def photo_case(denoise, photos: list[np.ndarray]) -> dict:
    """Real clean photos (8-bit): the blind output's PSNR against its input."""
    scores, levels = [], []
    for photo in photos:
        out = denoise(photo)
        levels.append(denoise.last_sigma or 0.0)
        scores.append(psnr8(out, photo))
    return {"input": None, "blind": float(np.mean(scores)), "told": None, "level": float(np.mean(levels)),
            "worse_than_input": None, "images": len(photos)}


def real_case(denoise, pairs, *, oracle: bool) -> dict:
    blind, levels = [], []
    for noisy, clean in pairs:
        blind.append(psnr8(denoise(noisy), clean))
        levels.append(denoise.last_sigma or 0.0)
    noisy_psnr = [psnr8(n, c) for n, c in pairs]
    row: dict[str, object] = {"input": float(np.mean(noisy_psnr)), "blind": float(np.mean(blind)),
           "level": float(np.mean(levels)),
           "worse_than_input": int(sum(b < n for b, n in zip(blind, noisy_psnr, strict=True))), "images": len(pairs)}
    if oracle:
        grid = {s: float(np.mean([psnr8(denoise(n, sigma=s), c) for n, c in pairs])) for s in ORACLE_SIGMAS}
        best = max(grid, key=lambda s: grid[s])
        row.update({"oracle": grid[best], "oracle_sigma": best, "oracle_grid": {f"{s:g}": v for s, v in grid.items()}})
    return row


def nlm_best(pairs) -> dict:
    grid = {h: float(np.mean([psnr8(nlm(n, h), c) for n, c in pairs])) for h in NLM_H}
    best = max(grid, key=lambda h: grid[h])
    return {"psnr": grid[best], "h": best, "grid": {f"{h:g}": v for h, v in grid.items()}}


def paired(told: Callable, blind: Callable, arg: np.ndarray, pairs: int) -> dict:
    """The two calls timed back to back ``pairs`` times (which goes first alternates), the ratio of
    each pair, and the medians: on a shared host whose speed drifts by tens of percent within
    seconds, a pair of calls sees the same load, blocks of calls need not."""
    told(arg), blind(arg)  # warm-up
    t_ms, b_ms, ratios = [], [], []
    for i in range(pairs):
        timed = {}
        for key, fn in (("told", told), ("blind", blind)) if i % 2 == 0 else (("blind", blind), ("told", told)):
            t = time.perf_counter()
            fn(arg)
            timed[key] = time.perf_counter() - t
        t_ms.append(1000 * timed["told"])
        b_ms.append(1000 * timed["blind"])
        ratios.append(timed["blind"] / timed["told"])
    return {"told_ms": float(np.median(t_ms)), "blind_ms": float(np.median(b_ms)), "ratio": float(np.median(ratios))}


def cost_ratios(models: list[str], frames: dict[int, np.ndarray], repeat: int) -> dict[str, dict]:
    """Blind call / call told a sigma on one 640x480 frame: the median ratio of ``repeat`` pairs of
    calls (``paired``), models one after the other."""
    out = {}
    for name in models:
        d = named(name)
        frame = frames[d.model_for(3).spec.channels]
        out[name] = paired(lambda x, d=d: d(x, sigma=TOLD), lambda x, d=d: d(x), frame, repeat)
    return out


def frame_640x480(gray: bool) -> np.ndarray:
    """A McMaster photo at 640x480 with correlated noise (white noise of sigma 15 blurred over about
    a pixel, as demosaicing spreads camera noise), 8-bit: the blind path runs the learned estimator
    on it (on white noise it skips it), so the ratio is the dearer case."""
    image = read(sorted((DATA / "val" / "McMaster").glob("*.png"))[0], cv2.IMREAD_COLOR)
    image = np.asarray(cv2.resize(image, (640, 480), interpolation=cv2.INTER_CUBIC)).astype(np.float32)
    noise = cv2.GaussianBlur(np.random.default_rng(0).standard_normal(image.shape).astype(np.float32), (0, 0), 1.0)
    noisy = np.clip(image + noise * (15.0 / float(noise.std())) + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(noisy, cv2.COLOR_BGR2GRAY) if gray else noisy


def named(name: str):
    """The named model itself (never its 8-bit twin chosen by ``precision="auto"``), 2 threads."""
    from edge_ae import Denoiser

    try:
        from edge_ae.denoise.precision import exact
    except ImportError:  # a runtime from before precision="auto" (--runtime)
        return Denoiser(name, threads=THREADS)
    return Denoiser(name, threads=THREADS, precision=exact(name))


def measure(args: argparse.Namespace, log: Callable[[str], None]) -> dict:
    from edge_ae import list_models

    names = [e.name for e in list_models("denoiser")]
    models = []
    for name in names:
        spec = named(name).model_for(3).spec
        if spec.noise_input:  # a model without a noise input has no blind call to calibrate
            models.append((name, spec.channels))
    sets = {1: load_set("Set12", True, args.limit), 3: load_set("McMaster", False, args.limit)}
    photos = {g: [c for _, c in real_pairs(g == 1, args.photo_limit)] for g in (1, 3)}
    pairs = {g: real_pairs(g == 1, args.real_limit) for g in (1, 3)}
    result: dict = {"models": {}, "nlm": {}}
    for channels in (3, 1) if not args.blind_only else ():
        result["nlm"][str(channels)] = nlm_best(pairs[channels])
        log(f"NLM best on {len(pairs[channels])} {'color' if channels == 3 else 'gray'} pairs: "
            f"{result['nlm'][str(channels)]['psnr']:.2f} dB")
    for name, channels in models:
        d = named(name)
        rows = {"clean": grid_case(d, sets[channels], "clean", None),
                f"jpeg{JPEG_QUALITY}": grid_case(d, sets[channels], "jpeg", None),
                "clean photos": photo_case(d, photos[channels])}
        for s in SIGMAS:
            rows[f"sigma{s:g}"] = grid_case(d, sets[channels], "white", s, with_told=not args.blind_only)
        rows["real"] = real_case(d, pairs[channels], oracle=not name.endswith("-int8") and not args.blind_only)
        result["models"][name] = {"channels": channels, "rows": rows}
        log(f"{name}: clean {rows['clean']['blind']:.2f} dB (level {rows['clean']['level']:.1f}), "
            + ", ".join(f"σ{s:g} {fmt(rows[f'sigma{s:g}']['blind'])}/{fmt(rows[f'sigma{s:g}']['told'])}" for s in SIGMAS)
            + f", real {rows['real']['blind']:.2f}")
    ratios = cost_ratios([n for n, _ in models], {1: frame_640x480(True), 3: frame_640x480(False)}, args.repeat)
    for name, r in ratios.items():
        result["models"][name]["cost"] = r
    return result


# ---------------------------------------------------------------- report

CASES = [("clean", "clean (Set12 / McMaster as they are)"), (f"jpeg{JPEG_QUALITY}", f"JPEG quality {JPEG_QUALITY}, no noise"),
         ("clean photos", "clean photos (PolyU references)")] + [(f"sigma{s:g}", f"white σ {s:g}") for s in SIGMAS]


def fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def worse(r: dict) -> str:
    return "-" if r["worse_than_input"] is None else f"{r['worse_than_input']} / {r['images']}"


def prev_cell(p: dict | None) -> str:
    return "-" if not p else f"{fmt(p['blind'])} ({fmt(p['level'], 1)})"


def bar_of(key: str, row: dict, prev: dict | None) -> str:
    if key in ("clean", f"jpeg{JPEG_QUALITY}", "clean photos"):
        return "met" if row["blind"] >= CLEAN_BAR else f"**missed by {CLEAN_BAR - row['blind']:.2f} dB**"
    if row["told"] is None:
        return "-"
    gap = row["blind"] - row["told"]
    return "met" if gap >= -GAP_BAR else f"**missed by {-gap - GAP_BAR:.2f} dB**"


DEFAULTS = ("denoise-gray", "denoise-color")


def bars(data: dict, previous: dict | None) -> list[str]:
    """Issue 52's bars, one row each: the default models' clean pass-through and white-noise gaps,
    the real-pair bars, every model's cost ratio and worse-than-input count."""
    models, prev = data["models"], (previous or {}).get("models", {})
    rows = ["| bar | model | measured | status |", "| --- | --- | --- | --- |"]

    def row(bar: str, name: str, value: str, ok: bool, short: str) -> None:
        rows.append(f"| {bar} | `{name}` | {value} | {'met' if ok else f'**missed by {short}**'} |")

    for name in DEFAULTS:
        if name not in models:
            continue
        r = models[name]["rows"]
        for key, label in CASES[:3]:
            v = r[key]["blind"]
            row(f"{label}: {CLEAN_BAR:g} dB or more against the input", name, f"{v:.2f} dB", v >= CLEAN_BAR,
                f"{CLEAN_BAR - v:.2f} dB")
        gaps = {s: r[f"sigma{s:g}"]["blind"] - r[f"sigma{s:g}"]["told"] for s in SIGMAS if r[f"sigma{s:g}"]["told"] is not None}
        if gaps:
            worst = min(gaps, key=lambda s: gaps[s])
            row(f"white σ {'/'.join(f'{s:g}' for s in SIGMAS)}: blind within {GAP_BAR} dB of told", name,
                f"worst {gaps[worst]:+.2f} dB (σ {worst:g})", gaps[worst] >= -GAP_BAR, f"{-gaps[worst] - GAP_BAR:.2f} dB")
    nlm = data.get("nlm") or {}
    for name, extra in (("denoise-color", 0.0), ("denoise-gray", 0.0), ("denoise-color-fast", 0.5)):
        if name not in models or not nlm:
            continue
        real = models[name]["rows"]["real"]
        need = nlm[str(models[name]["channels"])]["psnr"] + extra
        row(f"real pairs: above NLM's best{' + 0.5 dB' if extra else ''} ({need:.2f} dB)", name, f"{real['blind']:.2f} dB",
            real["blind"] > need, f"{need - real['blind']:.2f} dB")
        p = prev.get(name, {}).get("rows", {}).get("real")
        if p:
            row("real pairs: at least the previous release's blind figure", name,
                f"{real['blind']:.2f} dB (previous {p['blind']:.2f})", real["blind"] >= p["blind"],
                f"{p['blind'] - real['blind']:.3f} dB")
    for name, m in models.items():
        c = m.get("cost")
        if c:
            limit = 1.3 if "-fast" in name else 1.15
            row(f"cost of blindness at most {limit:g}x the told call", name, f"{c['ratio']:.2f}x", c["ratio"] <= limit,
                f"{c['ratio'] - limit:.2f}x")
    for name, m in models.items():
        worse = sum(r["worse_than_input"] or 0 for r in m["rows"].values())
        cases = sum(r["images"] for r in m["rows"].values() if r["worse_than_input"] is not None)
        before = prev.get(name, {}).get("rows", {})
        was = f" (previous {sum(r['worse_than_input'] or 0 for r in before.values())})" if before else ""
        row("never worse than the input (noisy cases)", name, f"{worse} of {cases} images worse{was}", worse == 0,
            f"{worse} images")
    return rows


def render(data: dict, previous: dict | None, args: argparse.Namespace) -> str:
    prev_models = (previous or {}).get("models", {})
    lines = ["# Blind calibration (issue 52)", "", f"Command: `{data['command']}`", "",
             f"Written by that command on {data['date']} ({data['machine']}, {THREADS} threads, load average "
             f"{data['load'][0]:.1f} at the start and {data['load'][1]:.1f} at the end, {data['minutes']:.0f} min). "
             "Every shipped denoiser with a noise input, called as a user does (`Denoiser(name)(image)`, no sigma: "
             "\"blind\"), against the same model told the true sigma (\"told\") and, where given, the previous release "
             f"(\"previous blind\": `{(previous or {}).get('command', '-')}`, {(previous or {}).get('date', '-')}). "
             f"Images: {data['images']}. Bars: clean inputs come back at {CLEAN_BAR:g} dB or more against the input; "
             f"on white noise blind is within {GAP_BAR} dB of told; no case is worse than its input "
             "(\"worse\": noisy images whose output is further from the reference than the input was; a clean input is its "
             "own reference, so there the 45 dB bar stands for it). "
             "PSNR in dB; \"level\": the mean noise level the blind call used (0-255).", "",
             "### Bars", "", *bars(data, previous), ""]
    for name, m in data["models"].items():
        prev = prev_models.get(name, {}).get("rows", {})
        lines += [f"### {name} ({'gray' if m['channels'] == 1 else 'color'})", "",
                  "| case | input | blind (level) | told | blind − told | worse than input | bar | previous blind (level) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for key, label in CASES:
            r = m["rows"][key]
            p = prev.get(key)
            gap = None if r["told"] is None else r["blind"] - r["told"]
            lines.append(f"| {label} | {fmt(r['input'])} | {fmt(r['blind'])} ({fmt(r['level'], 1)}) | {fmt(r['told'])} | "
                         f"{fmt(gap)} | {worse(r)} | {bar_of(key, r, p)} | "
                         f"{prev_cell(p)} |")
        r = m["rows"]["real"]
        p = prev.get("real")
        oracle = f"{fmt(r['oracle'])} (σ {r['oracle_sigma']:g})" if "oracle" in r else "-"
        lines.append(f"| real pairs (PolyU, {r['images']}) | {fmt(r['input'])} | {fmt(r['blind'])} ({fmt(r['level'], 1)}) | "
                     f"best fixed σ: {oracle} | {fmt(r['blind'] - r['oracle']) if 'oracle' in r else '-'} | "
                     f"{worse(r)} | {real_bar(name, r, data, p)} | "
                     f"{prev_cell(p)} |")
        c = m.get("cost")
        pc = prev_models.get(name, {}).get("cost")
        if c:
            limit = 1.3 if "-fast" in name else 1.15
            verdict = "met" if c["ratio"] <= limit else f"**missed: {c['ratio']:.2f}x**"
            lines += ["", f"Cost of blindness (640x480, correlated noise, {THREADS} threads): blind {c['blind_ms']:.1f} ms, told "
                      f"{c['told_ms']:.1f} ms: **{c['ratio']:.2f}x** (bar {limit:g}x: {verdict})"
                      + (f"; previous release {pc['ratio']:.2f}x in its own run" if pc else "") + "."]
        lines.append("")
    nl = data["nlm"]
    if not nl:
        return "\n".join(lines)
    lines += [f"Non-local means at its best h on the same pairs: color {fmt(nl['3']['psnr'])} dB (h {nl['3']['h']:g}), "
              f"gray {fmt(nl['1']['psnr'])} dB (h {nl['1']['h']:g}). Real-pair bars: the default models blind at least "
              "the previous release's blind figure and above NLM's best; `denoise-color-fast` blind at least NLM's best "
              "+ 0.5 dB.", ""]
    return "\n".join(lines)


def real_bar(name: str, r: dict, data: dict, prev: dict | None) -> str:
    if not data["nlm"]:
        return "-"
    nlm = data["nlm"][str(data["models"][name]["channels"])]["psnr"]
    need = nlm + (0.5 if name == "denoise-color-fast" else 0.0)
    notes = []
    if r["blind"] <= need:
        notes.append(f"**{need - r['blind']:.2f} dB short of NLM{' + 0.5' if need > nlm else ''}**")
    if prev and r["blind"] < prev["blind"]:
        notes.append(f"**{prev['blind'] - r['blind']:.2f} dB below previous**")
    return "; ".join(notes) if notes else "met"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=LIMIT, help=f"images per validation set, spread evenly (default {LIMIT})")
    ap.add_argument("--photo-limit", type=int, default=PHOTO_LIMIT,
                    help=f"clean real photos (PolyU references), spread evenly (default {PHOTO_LIMIT})")
    ap.add_argument("--real-limit", type=int, default=REAL_LIMIT,
                    help=f"real pairs, spread evenly (default {REAL_LIMIT} of the 55)")
    ap.add_argument("--blind-only", action="store_true",
                    help="skip what does not depend on the estimate (told sigma, best fixed sigma, NLM): "
                         "for the previous release's column")
    ap.add_argument("--repeat", type=int, default=8, help="pairs of timed calls (blind, told) per model: the median ratio")
    ap.add_argument("--runtime", type=Path, help="benchmark this checkout's edge_ae/ and exported/ instead")
    ap.add_argument("--previous", type=Path, default=PREVIOUS, help="figures to show beside (a --json of an earlier run)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--json", type=Path, help="raw numbers (default: --out with .json)")
    ap.add_argument("--render-only", action="store_true",
                    help="render --out from the --json of an earlier run, measuring nothing")
    args = ap.parse_args()
    json_path = args.json or args.out.with_suffix(".json")
    if args.render_only:
        write_report(json.loads(json_path.read_text()), args, json_path)
        return
    if args.runtime is not None:
        if not (args.runtime / "edge_ae").is_dir():
            sys.exit(f"bench_blind: --runtime expects a checkout with edge_ae/ and exported/, got {args.runtime}")
        sys.path.insert(0, str(args.runtime.resolve()))
    if not DATA.is_dir():
        sys.exit(f"bench_blind: needs the validation sets and real pairs in {DATA}")
    cv2.setNumThreads(THREADS)
    started, load0 = time.time(), os.getloadavg()[0]

    def log(text: str) -> None:
        print(f"[{(time.time() - started) / 60:5.1f} min] {text}", flush=True)

    data = measure(args, log)
    import edge_ae

    here = Path(edge_ae.__file__).parent.parent == ROOT
    data.update({"command": "python -m tools.bench_blind" + "".join(" " + a for a in sys.argv[1:]),
                 "date": datetime.date.today().isoformat(), "runtime": "this checkout" if here else str(args.runtime),
                 "machine": f"{platform.machine()}, {os.cpu_count()} cores", "load": [load0, os.getloadavg()[0]],
                 "minutes": (time.time() - started) / 60,
                 "images": f"Set12 and McMaster ({args.limit} per set, spread evenly), {args.photo_limit} clean PolyU "
                           f"references, {args.real_limit} PolyU pairs (spread evenly over the 55)"})
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    write_report(data, args, json_path)


def write_report(data: dict, args: argparse.Namespace, json_path: Path) -> None:
    previous = json.loads(args.previous.read_text()) if args.previous and args.previous.is_file() and \
        args.previous.resolve() != json_path.resolve() else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(data, previous, args))
    if args.out.resolve().parent == OUT.parent.resolve():
        from tools.benchmarks_md import main as rebuild

        rebuild()
    print(f"wrote {args.out} and {json_path}")


if __name__ == "__main__":
    main()
