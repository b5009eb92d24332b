"""The texture gate's setting (issue 52, ``edge_ae/denoise/texture_gate.py``): what each setting
trades on clean photos against real noisy pairs, and the rule that chose the shipped one.

    python -m tools.texture_gate_trials                 # both default models, about 10 min on 2 cores
    python -m tools.texture_gate_trials --limit 6       # a quick look

Each image goes once through the default blind call with the texture gate switched off, while the
arguments the gate would get (the input, the level map, how far the noise is not white) are
recorded; then every setting of the grid is applied to that output with the runtime's own
``texture_gate.weight`` (its constants set per row): the gate is the call's last step,
``output = input + keep * (denoised - input)``, so this is the blind call at that setting up to
float rounding. Float images in and out (the benchmarks' 8-bit rounding left out).

The rule, written before the run (docs/experiments/2026-12-06-blind-calibration.md): choose, for
both models at once, the setting with the highest mean clean-photo PSNR against the input on the
*selection* photos (every 18th BSD432 training photo: clean, and never a test image) whose loss
on the *selection* real pairs (the odd-numbered PolyU pairs) against no gate is at most 0.05 dB
for ``denoise-color`` and 0.10 dB for ``denoise-gray``. Reported beside: the test sets the
benchmark uses (Set12 / McMaster as they are and as JPEG-75 copies) and the even pairs.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from edge_ae import Denoiser
from edge_ae.denoise import texture_gate
from tools.bench_real_noise import load_pairs
from training import metrics

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "denoise"
GRID = [(low, high, floor) for low in (1.0, 1.5, 2.0) for high in (3.0, 4.0) for floor in (0.0, 0.25, 0.5)]
LOSS_BOUND = {"denoise-color": 0.05, "denoise-gray": 0.10}


@contextmanager
def gate_off_recording(calls: list) -> Iterator[None]:
    """Switch the texture gate off and record what it was called with."""
    weight = texture_gate.weight

    def record(source: np.ndarray, level: float | np.ndarray, not_white: float, *, context: int = 0) -> None:
        calls.append((np.array(source), np.array(level), not_white, context))
        return None

    texture_gate.weight = record
    try:
        yield
    finally:
        texture_gate.weight = weight


@contextmanager
def setting(low: float, high: float, floor: float) -> Iterator[None]:
    saved = texture_gate.LOW, texture_gate.HIGH, texture_gate.FLOOR
    texture_gate.LOW, texture_gate.HIGH, texture_gate.FLOOR = low, high, floor
    try:
        yield
    finally:
        texture_gate.LOW, texture_gate.HIGH, texture_gate.FLOOR = saved


def images(model: str, limit: int | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(kind, input, reference) as float32 [0, 1] images of the model's channel count."""
    gray = model.startswith("denoise-gray")
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    out = []

    def read(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), flag)
        if image is None:
            raise SystemExit(f"texture_gate_trials: cannot read {path}")
        return image.astype(np.float32) / 255

    for path in sorted((DATA / "train" / "bsd432").iterdir())[::18][:limit]:
        image = read(path)
        out.append(("selection clean (BSD432)", image, image))
    for path in sorted((DATA / "val" / ("Set12" if gray else "McMaster")).iterdir())[:limit]:
        image = read(path)
        out.append(("test clean", image, image))
        ok, jpeg = cv2.imencode(".jpg", np.rint(image * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 75])
        copy = np.asarray(cv2.imdecode(jpeg, flag), np.float32) / 255
        out.append(("test JPEG-75", copy, copy))
    for i, pair in enumerate(load_pairs(grey=gray)[: None if limit is None else 2 * limit]):
        kind = "selection pairs (odd)" if i % 2 else "test pairs (even)"
        out.append((kind, pair.noisy.astype(np.float32) / 255, pair.clean.astype(np.float32) / 255))
    return out


def psnr(out: np.ndarray, ref: np.ndarray) -> float:
    return metrics.psnr(ref, np.clip(out, 0, 1))


def trials(model: str, limit: int | None) -> dict[tuple[float, float, float] | None, dict[str, list[float]]]:
    denoiser = Denoiser(model, threads=2, precision="float")
    runs = []
    for kind, image, ref in images(model, limit):
        calls: list = []
        with gate_off_recording(calls):
            plain = np.asarray(denoiser(image), np.float32)
        runs.append((kind, image, ref, plain, calls))
    table: dict = {}
    for key in [None, *GRID]:
        scores: dict[str, list[float]] = {}
        for kind, image, ref, plain, calls in runs:
            out = plain
            if key is not None and calls:
                with setting(*key):
                    source, level, not_white, context = calls[0]
                    keep = texture_gate.weight(source, level if level.ndim else float(level), not_white, context=context)
                if keep is not None:
                    chw = plain[None, None] if plain.ndim == 2 else plain.transpose(2, 0, 1)[None]
                    src = image[None, None] if image.ndim == 2 else image.transpose(2, 0, 1)[None]
                    mixed = src + keep * (chw - src)
                    out = mixed[0, 0] if plain.ndim == 2 else mixed[0].transpose(1, 2, 0)
            scores.setdefault(kind, []).append(psnr(out, ref))
        table[key] = scores
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, help="only N images per set (quick looks)")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"texture_gate_trials: needs the data sets in {DATA}")
    tables = {model: trials(model, args.limit) for model in LOSS_BOUND}
    allowed: list[tuple[float, float, float]] = []
    for key in GRID:
        ok = all(np.mean(t[None]["selection pairs (odd)"]) - np.mean(t[key]["selection pairs (odd)"]) <= LOSS_BOUND[m] + 1e-9
                 for m, t in tables.items())
        if ok:
            allowed.append(key)
    def clean_gain(k: tuple[float, float, float]) -> float:
        return float(sum(np.mean(t[k]["selection clean (BSD432)"]) for t in tables.values()))

    chosen = max(allowed, key=clean_gain, default=None)
    for model, table in tables.items():
        kinds = list(next(iter(table.values())))
        print(f"\n{model}: mean PSNR (dB; clean and JPEG against the input, pairs against the reference)\n")
        print("| LOW, HIGH, FLOOR | " + " | ".join(kinds) + " | test clean, worst |")
        print("| --- " * (len(kinds) + 2) + "|")
        for row, scores in table.items():
            label = "no texture gate" if row is None else ", ".join(f"{v:g}" for v in row)
            if row == chosen:
                label = f"**{label}** (the rule's pick)"
            cells = [f"{np.mean(scores[k]):.2f}" for k in kinds]
            print(f"| {label} | " + " | ".join(cells) + f" | {min(scores['test clean']):.2f} |")
    shipped = (texture_gate.LOW, texture_gate.HIGH, texture_gate.FLOOR)
    print(f"\nrule's pick: {chosen}; shipped: {shipped}" + (" (the same)" if chosen == shipped else " (DIFFERENT)"))


if __name__ == "__main__":
    main()
