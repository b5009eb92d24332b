"""python -m training.anomaly.fuse MODEL.onnx MODEL.onnx ... --name NAME

Fuses anomaly models trained on the same normal images at different input sizes into one model
that runs them all on each image: a model trained on small whole images sees large defects (an
uneven surface) whole, one trained at a larger size sees hairline cracks that shrinking erases.

The fused graph (one ONNX file, so the runtime needs nothing new):

1. input at the largest member's size; each smaller member gets it shrunk by area averaging (as
   the images it was trained on were), so every member sees what it was trained on;
2. each member's map, upsampled bilinearly to the largest size, becomes a z-score with the mean
   and standard deviation of that member's normal scores (from its own metadata, measured on its
   held-out normal images), so members whose maps have different units weigh the same;
3. the fused map is the mean of the members' z-maps, and the image score is its maximum (as the
   members' own default): map and score share units, as the contract requires.

Members trained with `--resize keep-aspect` fuse the same way, with sizes that are their short sides:
each larger one must be a whole multiple of each smaller (128 and 256, not 128 and 192). The fused
model keeps the aspect ratio at the largest short side, with both sides rounded to a coarser
multiple (32 for 128 + 256), so that each smaller member gets the image shrunk by a whole factor
(a box average, which is what OpenCV's area resize does for a whole factor). The smaller member's
input can then differ from what it was trained on by the rounding of the longer side (at most
half the multiple, a few percent of the aspect ratio); maps are upsampled by that same factor.

The members must come from `python -m training.anomaly` runs on the same folder with the same
hold-out options and split seed (`--split-seed`, by default `--seed`), so they share one held-out
split: the fused threshold is calibrated on those images, which no member was trained on (target
false-positive rate, or the best F1 when the members were given --val-anomalous).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import compose, helper, numpy_helper

from edge_ae.errors import ModelError
from edge_ae.model.contract import METADATA_KEY, ModelSpec
from edge_ae.model.loading import make_session
from edge_ae.model.registry import sha256_of
from training.anomaly.config import AnomalyConfig
from training.anomaly.options import parse as parse_training_command
from training.paths import EXPORTED

OPSET = 17
PARITY_TOLERANCE = 1e-4
TRAINING_PREFIX = ("python", "-m", "training.anomaly")
# Options that decide which images are held out; members must agree on all of them.
SPLIT_FIELDS = {"normal": "--normal", "val_normal": "--val-normal", "val_anomalous": "--val-anomalous",
                "holdout_seed": "split seed (--split-seed, by default --seed)", "holdout": "--holdout",
                "channels": "--channels"}


@dataclass(frozen=True)
class Member:
    path: Path
    proto: onnx.ModelProto
    spec: ModelSpec
    config: AnomalyConfig  # what the member was trained with (member_config)
    size: int  # the fixed square size, or the short side of a member that keeps the aspect ratio

    @property
    def keep_aspect(self) -> bool:
        return self.spec.short_side is not None


def member_config(path: Path, provenance: dict[str, object]) -> AnomalyConfig:
    """The config a member was trained with: the JSON its export recorded (``training_config``),
    or, for models exported before that (the shipped ones), its recorded training command
    parsed again."""
    saved = provenance.get("training_config")
    if isinstance(saved, dict):
        unknown = sorted(set(saved) - {f.name for f in fields(AnomalyConfig)})
        if unknown:
            raise ModelError(f"{path}: its training config has options this version does not know: {unknown}")
        return AnomalyConfig(**saved)
    words = shlex.split(str(provenance.get("training_command", "")))
    if tuple(words[:3]) != TRAINING_PREFIX:
        raise ModelError(f"{path}: its provenance has no training config and no 'python -m training.anomaly' "
                         "training command, so its held-out split cannot be re-derived")
    try:
        return parse_training_command(words[3:])[1]
    except SystemExit:  # argparse has already said which option it could not read
        raise ModelError(f"{path}: its recorded training command does not parse with this version") from None


def read_member(path: Path) -> Member:
    try:
        proto = onnx.load(str(path))
    except (OSError, DecodeError) as exc:
        raise ModelError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in meta:
        raise ModelError(f"{path}: no edge-ae metadata; fuse models exported by python -m training.anomaly")
    spec = ModelSpec.from_json(meta[METADATA_KEY], source=str(path))
    if spec.kind != "anomaly" or spec.anomaly is None:
        raise ModelError(f"{path}: expected an anomaly model, found kind {spec.kind!r}")
    if spec.short_side is None and (spec.input_size is None or spec.input_size[0] != spec.input_size[1]):
        raise ModelError(f"{path}: expected a square input_size, found {spec.input_size}")
    if "members" in spec.provenance:
        raise ModelError(f"{path}: already a fused model; fuse the original members instead")
    config = member_config(path, spec.provenance)
    if [op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")] != [OPSET]:
        raise ModelError(f"{path}: expected ONNX opset {OPSET}")
    assert spec.short_side is not None or spec.input_size is not None  # checked above
    size = spec.short_side if spec.short_side is not None else int(spec.input_size[0])  # type: ignore[index]
    return Member(path, proto, spec, config, size)


def check_members(members: list[Member]) -> None:
    if len(members) < 2:
        raise ValueError("give two or more models to fuse")
    first = members[0]
    for m in members[1:]:
        if m.spec.channels != first.spec.channels:
            raise ValueError(f"{m.path} has {m.spec.channels} channel(s), {first.path} {first.spec.channels}")
        differ = [label for f, label in SPLIT_FIELDS.items() if getattr(m.config, f) != getattr(first.config, f)]
        if differ:
            raise ValueError(f"{m.path} and {first.path} were trained with different {', '.join(differ)}: "
                             "they do not share held-out images to calibrate on")
        if m.keep_aspect != first.keep_aspect:
            raise ValueError(f"{m.path} and {first.path} fit images differently (--resize stretch and keep-aspect); "
                             "fuse models of one size policy")
    if first.keep_aspect:
        size = max(m.size for m in members)
        odd = [f"{m.path} ({m.size})" for m in members if size % m.size]
        if odd:
            raise ValueError(f"members that keep the aspect ratio need short sides that divide the largest "
                             f"({size}); found {', '.join(odd)}")


def fused_multiple(members: list[Member]) -> int:
    """What both sides of the fused model's input must be multiples of: 1 for stretched members
    (the input has a fixed size); for members that keep the aspect ratio, each member's own
    multiple at its shrink factor."""
    if not members[0].keep_aspect:
        return 1
    size = max(m.size for m in members)
    return math.lcm(*(m.spec.size_multiple * (size // m.size) for m in members))


def area_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) weights that shrink a line of ``n_in`` pixels to ``n_out`` by box averaging:
    each output pixel is the overlap-weighted mean of the input pixels it covers (what OpenCV's
    INTER_AREA does when shrinking), for any ratio, not only whole numbers."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def _spread(m: Member) -> float:
    """The member's normal-score standard deviation, the unit of its z-map (1 if it is zero)."""
    assert m.spec.anomaly is not None
    return m.spec.anomaly.score_std if m.spec.anomaly.score_std > 0 else 1.0


def _scalar(name: str, value: float) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _inputs(node: onnx.NodeProto) -> list[str]:
    """A node's inputs, with those its subgraphs (If/Loop bodies) read from the outer graph."""
    names = list(node.input)
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            names += [i for n in attr.g.node for i in _inputs(n)]
    return names


def _reachable(nodes: list[onnx.NodeProto], outputs: list[str]) -> list[onnx.NodeProto]:
    """The nodes the outputs depend on, in their original (topological) order: the members'
    own score heads are left out."""
    producer = {o: n for n in nodes for o in n.output}
    needed, stack = set(), list(outputs)
    keep: set[int] = set()
    while stack:
        name = stack.pop()
        if name in needed or name not in producer:
            continue
        needed.add(name)
        node = producer[name]
        keep.add(id(node))
        stack.extend(_inputs(node))
    return [n for n in nodes if id(n) in keep]


def fuse_graph(members: list[Member]) -> onnx.ModelProto:
    """One graph: image (N, C, S, S) -> anomaly_map (N, 1, S, S), score (N,), S the largest size
    (for members that keep the aspect ratio: any height and width, multiples of fused_multiple)."""
    size = max(m.size for m in members)
    channels = members[0].spec.channels
    keep_aspect = members[0].keep_aspect
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    z_maps: list[str] = []
    for i, m in enumerate(members):
        p = f"m{i}_"
        sub = compose.add_prefix(m.proto, p)
        if m.size < size and keep_aspect:
            k = size // m.size  # a whole factor (check_members): a box average is the area resize
            nodes.append(helper.make_node("AveragePool", ["image"], [p + "image"], kernel_shape=[k, k], strides=[k, k],
                                          name=p + "shrink"))
        elif m.size < size:
            # image (N, C, S, S) -> A @ image @ A^T (N, C, s, s): area resize as two constant matmuls.
            rows = area_matrix(m.size, size)
            inits += [numpy_helper.from_array(rows, p + "area_rows"), numpy_helper.from_array(rows.T.copy(), p + "area_cols")]
            nodes.append(helper.make_node("MatMul", [p + "area_rows", "image"], [p + "image_rows"], name=p + "shrink_rows"))
            nodes.append(helper.make_node("MatMul", [p + "image_rows", p + "area_cols"], [p + "image"], name=p + "shrink_cols"))
        else:
            nodes.append(helper.make_node("Identity", ["image"], [p + "image"], name=p + "input"))
        nodes.extend(sub.graph.node)
        inits.extend(sub.graph.initializer)
        amap = p + "anomaly_map"
        if m.size < size:
            ratio = np.float32(size / m.size)
            if int(np.floor(np.float32(m.size) * ratio)) != size:
                raise ValueError(f"{m.path}: cannot upsample its {m.size} px map to exactly {size} px")
            inits.append(numpy_helper.from_array(np.array([1, 1, ratio, ratio], dtype=np.float32), p + "scales"))
            # half_pixel linear is what cv2.INTER_LINEAR does, as the runtime's map resize.
            nodes.append(helper.make_node("Resize", [amap, "", p + "scales"], [p + "map_up"], mode="linear",
                                          coordinate_transformation_mode="half_pixel", name=p + "upsample"))
            amap = p + "map_up"
        assert m.spec.anomaly is not None
        inits += [_scalar(p + "score_mean", m.spec.anomaly.score_mean), _scalar(p + "score_std", _spread(m))]
        nodes.append(helper.make_node("Sub", [amap, p + "score_mean"], [p + "centred"], name=p + "centre"))
        nodes.append(helper.make_node("Div", [p + "centred", p + "score_std"], [p + "z"], name=p + "scale"))
        z_maps.append(p + "z")
    nodes.append(helper.make_node("Mean", z_maps, ["anomaly_map"], name="fuse"))
    nodes.append(helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2, 3], keepdims=0, name="score"))
    nodes = _reachable(nodes, ["anomaly_map", "score"])
    used = {i for n in nodes for i in _inputs(n)}
    h, w = ("height", "width") if keep_aspect else (size, size)
    graph = helper.make_graph(
        nodes, "fused_anomaly",
        [helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, ["batch", channels, h, w])],
        [helper.make_tensor_value_info("anomaly_map", onnx.TensorProto.FLOAT, ["batch", 1, h, w]),
         helper.make_tensor_value_info("score", onnx.TensorProto.FLOAT, ["batch"])],
        initializer=[t for t in inits if t.name in used],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edge-ae")
    model.ir_version = members[0].proto.ir_version
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.anomaly.fuse", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help="anomaly models (.onnx) from python -m training.anomaly")
    ap.add_argument("--name", required=True, help="model name; writes OUT/NAME.onnx")
    ap.add_argument("--out", type=Path, default=EXPORTED, help="export folder (default exported/)")
    ap.add_argument("--no-manifest", action="store_true", help="do not add the model to OUT/manifest.json")
    ap.add_argument("--description", default="", help="one line for the manifest")
    args = ap.parse_args(argv)
    start = time.monotonic()

    def log(message: str) -> None:
        stamp = time.monotonic() - start
        print(f"[{int(stamp // 60):3d}:{int(stamp % 60):02d}] {message}", file=sys.stderr, flush=True)

    try:
        members = [read_member(p) for p in args.models]
        check_members(members)
    except (ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = "python -m training.anomaly.fuse " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    size = max(m.size for m in members)
    try:
        export_fused(fuse_graph(members), members, replace(members[0].config, name=args.name, size=size),
                     args.out, command=command, manifest=not args.no_manifest, log=log, description=args.description)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def member_outputs(members: list[Member], images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fused map and score computed from the members run one by one (the check on the fused
    graph): the same steps as in :func:`fuse_graph`, in numpy and OpenCV, for images (N, C, H, W)
    of one shape."""
    import cv2

    h, w = images.shape[2:]
    largest = max(m.size for m in members)
    z_maps = []
    for m in members:
        small = images
        if m.size < largest:  # OpenCV's area resize, independent of the graph's matmuls or pooling
            k = largest / m.size
            mh, mw = (int(round(h / k)), int(round(w / k))) if m.keep_aspect else (m.size, m.size)
            small = np.stack([np.stack([cv2.resize(ch, (mw, mh), interpolation=cv2.INTER_AREA) for ch in im])
                              for im in images])
        session = make_session(m.proto.SerializeToString())
        maps = session.run(["anomaly_map"], {"image": small.astype(np.float32)})[0][:, 0]
        maps = np.stack([cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR) for a in maps])
        assert m.spec.anomaly is not None
        z_maps.append((maps - m.spec.anomaly.score_mean) / _spread(m))
    fused = np.mean(z_maps, axis=0)
    return fused[:, None], fused.reshape(len(fused), -1).max(axis=1)


def export_fused(model: onnx.ModelProto, members: list[Member], cfg: AnomalyConfig, out_dir: Path, *, command: str,
                 manifest: bool, log: Callable[[str], None], description: str = "") -> Path:
    """Calibrate the fused graph on the members' shared held-out images, check it against the
    members run one by one, and write it with its metadata (and manifest entry)."""

    from edge_ae.files.atomic import write_bytes_atomic
    from edge_ae.model.contract import COLOR_ORDERS
    from training.anomaly import data
    from training.anomaly.export import RESIZE_WORDS, calibrate, time_and_record, validation_metrics
    from training.anomaly.train import prepare
    from training.onnx_export import provenance

    multiple = fused_multiple(members)
    prep = prepare(cfg, log, multiple=multiple)
    session = make_session(model.SerializeToString())

    def scores(images: data.Images) -> np.ndarray:
        return np.concatenate([session.run(["score"], {"image": chunk})[0] for chunk in data.chunks(images, 16)])

    normal = scores(prep.holdout)
    anomalous = scores(prep.anomalous) if prep.anomalous is not None else None
    cal = calibrate(cfg, normal, anomalous)
    diff = 0.0
    for check in data.chunks(prep.holdout[:8], 8):
        want_map, want_score = member_outputs(members, check)
        got_map, got_score = session.run(["anomaly_map", "score"], {"image": check})
        scale = max(1.0, float(np.abs(want_score).max()))
        diff = max(diff, float(np.abs(got_map - want_map).max()) / scale,
                   float(np.abs(got_score - want_score).max()) / scale)
    if not diff <= PARITY_TOLERANCE:
        raise AssertionError(f"fused graph differs from its members run one by one by {diff:.2e} (relative)")
    metrics = validation_metrics(normal, anomalous, cal)
    sizes = ("shorter side " if cfg.keep_aspect else "") + "+".join(str(m.size) for m in members)
    source = "/".join(Path(cfg.normal).parts[-3:])
    spec = ModelSpec(
        name=cfg.name, kind="anomaly", channels=prep.channels, color_order=COLOR_ORDERS[prep.channels],
        size_multiple=multiple, receptive_field=1, input_size=None if cfg.keep_aspect else (cfg.size, cfg.size),
        short_side=cfg.size if cfg.keep_aspect else None, anomaly=cal,
        description=description or (f"Anomaly detector ({'gray' if prep.channels == 1 else 'color'}, {sizes} px "
                                    f"fused) learnt from the normal images in {source}: at each size a convolutional "
                                    "autoencoder repairs the image and a U-Net segmenter trained on synthetic defects "
                                    "maps where image and repair differ; the maps are averaged as z-scores; score: "
                                    "the fused map's maximum."),
        provenance=provenance(
            command=command,  # each member's own training command is in "members"
            data=f"{cfg.normal} ({len(prep.holdout)} held-out normal images for calibration, shared by all members)",
            metrics=metrics,
            extra={"members": [member_record(m) for m in members],
                   "fusion": "mean of the members' maps as z-scores (their normal score mean and std), "
                   "upsampled bilinearly to the largest size; score: the fused map's maximum",
                   "resize": RESIZE_WORDS[cfg.resize] + "; smaller members: area average of that",
                   "split_seed": cfg.holdout_seed},
        ),
    )
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_json()
    model.doc_string = spec.description
    onnx.checker.check_model(model, full_check=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{cfg.name}.onnx"
    write_bytes_atomic(path, model.SerializeToString())
    time_and_record(session, prep.holdout[0][None], spec, path, cal, metrics, manifest=manifest,
                    check=f"check against members {diff:.1e}", log=log)
    return path


def member_record(m: Member) -> dict[str, object]:
    """What the fused model's provenance says about one member."""
    cal = m.spec.anomaly
    assert cal is not None
    return {"name": m.spec.name, "file": m.path.name, "sha256": sha256_of(m.path), "input_size": m.size,
            "training_command": m.spec.provenance.get("training_command", ""),
            "git_commit": m.spec.provenance.get("git_commit", ""),
            **{k: m.spec.provenance[k] for k in ("steps", "best_step", "train_seconds", "host", "libraries")
               if k in m.spec.provenance},
            "score_mean": cal.score_mean,
            "score_std": cal.score_std, "metrics": m.spec.provenance.get("metrics", {})}


if __name__ == "__main__":
    sys.exit(main())
