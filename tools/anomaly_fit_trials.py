"""Quick trials for the fitted detector's design (docs/experiments/2026-12-05-anomaly-v2.md):
image AUROC per defect type on the magnetic-tile test split for one feature extractor and memory
recipe, scored in numpy (the same distances, resize and blur as the graph) so that variants of the
score need no new fit.

    python -m tools.anomaly_fit_trials --features exported/features-lite0.onnx
    python -m tools.anomaly_fit_trials --features OUT/feat-4_7.onnx --per-image 100 --memory 2000

Fits on ``--fit-images`` images of train/good drawn with a fixed seed (the same for every
variant), ``--per-image`` random patches of each, a greedy coreset of ``--memory`` patches.
Images are stretched to ``--size``. Scores: the map's maximum and the mean of its top 1 %.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from edge_ae.anomaly.coreset import greedy_coreset
from edge_ae.anomaly.graph import gaussian_kernel
from edge_ae.anomaly.inputs import to_model_input
from edge_ae.files.imageio import read_image
from edge_ae.model.loading import make_session
from training.metrics import auroc

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "anomaly" / "magnetic_tile" / "tile"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=Path, default=Path("exported/features-lite0.onnx"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--fit-images", type=int, default=200)
    ap.add_argument("--per-image", type=int, default=300)
    ap.add_argument("--memory", type=int, default=3000)
    ap.add_argument("--exposure", action="store_true", help="each image standardised (mean 0.5, std 0.15) first")
    args = ap.parse_args(argv)
    session = make_session(args.features, 2)

    def features(path: Path) -> np.ndarray:
        x = to_model_input(read_image(path), channels=1, size=(args.size, args.size))[None]
        if args.exposure:
            x = np.clip((x - x.mean()) / (x.std() + 1e-3) * 0.15 + 0.5, 0, 1).astype(np.float32)
        return session.run(None, {"image": x})[0][0]

    rng = np.random.default_rng(0)
    train = sorted((args.data / "train" / "good").iterdir())
    chosen = [train[i] for i in rng.permutation(len(train))[: args.fit_images]]
    pool = []
    for path in chosen:
        f = features(path)
        patches = f.reshape(f.shape[0], -1).T
        pool.append(patches[rng.choice(patches.shape[0], min(args.per_image, patches.shape[0]), replace=False)])
    bank = np.concatenate(pool)
    memory = bank[greedy_coreset(bank, args.memory)]
    msq = (memory**2).sum(1)
    kernel = gaussian_kernel(4.0)
    top = max(1, round(0.01 * args.size * args.size))
    kinds: list[str] = []
    scores: dict[str, list[float]] = {"max": [], "top 1 %": []}
    for folder in sorted(p for p in (args.data / "test").iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            f = features(path)
            p = f.reshape(f.shape[0], -1).T
            d = np.sqrt(np.maximum(((p**2).sum(1)[:, None] - 2 * p @ memory.T + msq[None]).min(1), 0))
            up = cv2.resize(d.reshape(f.shape[1:]), (args.size, args.size), interpolation=cv2.INTER_LINEAR)
            amap = cv2.sepFilter2D(up, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
            scores["max"].append(float(amap.max()))
            scores["top 1 %"].append(float(np.sort(amap.ravel())[-top:].mean()))
            kinds.append(folder.name)
    kind = np.array(kinds)
    types = sorted(set(kinds) - {"good"})
    print("| score | image AUROC | " + " | ".join(types) + " |")
    for name, values in scores.items():
        s = np.array(values)
        good = s[kind == "good"]
        cells = [f"{auroc(good, s[kind != 'good']):.3f}"] + [f"{auroc(good, s[kind == t]):.3f}" for t in types]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
