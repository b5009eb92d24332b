"""Do an anomaly model's own features find defects by nearest-neighbour distance (PatchCore's way)?

    python tools/anomaly_feature_knn.py                         # anomaly-magnetic-tile-fast
    python tools/anomaly_feature_knn.py --model my-member.onnx  # any single (not fused) learned-map model

PatchCore and DifferNet find defects with features of a network pretrained on ImageNet; edge-ae
trains from scratch. This check asks whether the features a trained model already has can stand in
for them: per location, the distance to the nearest normal feature. Two feature sets, fixed before
the check was first scored (docs/ANOMALY.md, "Nearest normal features"):

- ``autoencoder``: the autoencoder's encoder at 1/4 and 1/8 resolution;
- ``segmenter``: the segmenter's encoder at 1/4 and 1/8 (its third stage and its bottom).

Each: the 1/8 map upsampled (nearest) to 1/4, the two concatenated, a 3x3 mean (each location
sees its neighbours, as in PatchCore), then the L2 distance of every location to the nearest of
``--bank`` features drawn at random from the model's own training images (the held-out images,
recovered from the split seed in its provenance as ``tools/anomaly_holdout_scores.py`` does, are
left out of the bank). Image score: the largest distance. Printed: image AUROC (test/good against
every defect type) and per defect type, for the model's own score, each feature set alone, and
each fused with the model (image scores z-scored on the held-out normal images, then averaged).
A check, not a feature: no shipped graph does this. About 5 minutes on two cores for the
magnetic tiles.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_ae.errors import ModelError  # noqa: E402
from edge_ae.model.contract import ModelSpec  # noqa: E402
from edge_ae.model.loading import read_spec  # noqa: E402
from edge_ae.model.registry import resolve_model  # noqa: E402
from tools.anomaly_holdout_scores import training_split  # noqa: E402
from tools.bench_anomaly import DATA, test_set  # noqa: E402
from training.anomaly import data  # noqa: E402
from training.metrics import auroc  # noqa: E402

# Node outputs as torch.onnx names them when training/anomaly/export.py exports a learned-map model.
TAPS = {
    "autoencoder": ("/net/encoder/encoder.3/encoder.3.1/LeakyRelu_output_0",
                    "/net/encoder/encoder.5/encoder.5.1/LeakyRelu_output_0"),
    "segmenter": ("/segmenter/enc3/enc3.5/Relu_output_0", "/segmenter/bottom/bottom.5/Relu_output_0"),
}


def patch_features(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """(C1, H, W) and (C2, h, w) with H, W whole multiples of h, w -> (H*W, C1+C2): the coarse map
    repeated up to the fine one's size, concatenated, then each location averaged with its 3x3
    neighbours (edges padded by repetition)."""
    fy, fx = fine.shape[1] // coarse.shape[1], fine.shape[2] // coarse.shape[2]
    both = np.concatenate([fine, coarse.repeat(fy, axis=1).repeat(fx, axis=2)])
    padded = np.pad(both, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = fine.shape[1:]
    mean = sum(padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0
    return np.ascontiguousarray(mean.reshape(mean.shape[0], -1).T, dtype=np.float32)


def nearest_distance(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """L2 distance of each query row to its nearest bank row."""
    d2 = (queries**2).sum(1)[:, None] - 2.0 * queries @ bank.T + (bank**2).sum(1)[None, :]
    return np.sqrt(np.maximum(d2.min(1), 0.0))


class FeatureModel:
    """The model's session with the tapped layers added as outputs."""

    def __init__(self, path: Path, threads: int) -> None:
        graph = onnx.load(str(path))
        produced = {o for node in graph.graph.node for o in node.output}
        missing = [t for pair in TAPS.values() for t in pair if t not in produced]
        if missing:
            raise ModelError(f"{path}: not a single learned-map anomaly model as training/anomaly/export.py "
                             f"writes it (a fused model has its members' layers renamed); missing {missing[0]}")
        for pair in TAPS.values():
            graph.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in pair)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.names = [t for pair in TAPS.values() for t in pair]
        self.spec: ModelSpec = read_spec(self.session, str(path))

    def __call__(self, image: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """(the model's own score, {feature set: (locations, dims)}) for one (C, H, W) input."""
        score, *taps = self.session.run(["score", *self.names], {"image": image[None]})
        out = dict(zip(self.names, taps, strict=True))
        return float(score[0]), {k: patch_features(out[a][0], out[b][0]) for k, (a, b) in TAPS.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="anomaly-magnetic-tile-fast", help="registry name or .onnx file")
    ap.add_argument("--data", type=Path, default=DATA, help=f"folder with train/good and test/ (default {DATA})")
    ap.add_argument("--bank", type=int, default=30000, help="normal features kept for the search")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not (args.data / "test").is_dir() or not (args.data / "train" / "good").is_dir():
        print(f"error: no train/good and test/ folders in {args.data}", file=sys.stderr)
        return 2
    try:
        path, _ = resolve_model(args.model)
        model = FeatureModel(path, args.threads)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spec = model.spec
    if not spec.short_side:
        print("error: only models that keep the aspect ratio (short_side) are handled", file=sys.stderr)
        return 2
    train_paths, hold_paths = training_split(spec, args.data / "train" / "good")
    options = {"channels": spec.channels, "size": spec.short_side, "keep_aspect_multiple": spec.size_multiple}

    def features(images: data.Images) -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
        scores, feats = [], {k: [] for k in TAPS}
        for im in images:
            s, f = model(im)
            scores.append(s)
            for k in TAPS:
                feats[k].append(f[k])
        return np.array(scores), feats

    train, _, _ = data.load(train_paths, **options)
    hold, _, _ = data.load(hold_paths, **options)
    items = test_set(args.data)
    kinds = np.array([kind for _, kind, _ in items])
    test = [data.load([p], **options)[0][0] for p, _, _ in items]
    _, train_f = features(train)
    hold_s, hold_f = features(hold)
    test_s, test_f = features(test)

    defect_types = sorted(set(kinds) - {"good"})
    print("| scoring | image AUROC | " + " | ".join(defect_types) + " |")
    print("| --- | --- |" + " --- |" * len(defect_types))

    def row(label: str, s: np.ndarray) -> None:
        good = s[kinds == "good"]
        per = [f"{auroc(good, s[kinds == k]):.3f}" for k in defect_types]
        print(f"| {label} | {auroc(good, s[kinds != 'good']):.3f} | " + " | ".join(per) + " |", flush=True)

    row(f"{spec.name} (its own score)", test_s)
    own_z = (test_s - hold_s.mean()) / hold_s.std()
    rng = np.random.default_rng(0)
    for k in TAPS:
        pool = np.concatenate(train_f[k])
        bank = pool[rng.permutation(len(pool))[: args.bank]]
        h = np.array([nearest_distance(f, bank).max() for f in hold_f[k]])
        t = np.array([nearest_distance(f, bank).max() for f in test_f[k]])
        row(f"{k} features, nearest normal", t)
        row(f"{k} features fused with the model", (own_z + (t - h.mean()) / h.std()) / 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
