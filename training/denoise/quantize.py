"""Quantize an exported denoiser to 8 bits (int8 weights, uint8 activations), for CPUs whose
integer dot-product instructions (x86 VNNI, Arm dot product) run 8-bit convolutions faster than
float ones (the measured gain is in docs/DENOISING.md).

    python -m training.denoise.quantize exported/denoise-color.onnx          # -> exported/denoise-color-int8.onnx

Static quantization with onnxruntime (QDQ format, per-channel weight scales): activation ranges
are calibrated on noisy patches of clean training images at noise levels spread over the model's
trained range, seeded, so the same command gives the same file. Which number of patches suits a
model varied (64 or 256 each won for some model here), so both are tried (``--count``), each with
two ways of turning the observed values into a range (``--range``): their minimum and maximum, and
the 99.99th percentile, which ignores a few outliers and so keeps finer 8-bit steps for the rest
(it let every layer of ``denoise-gray-fast`` after the first run in 8 bits within the allowed drop;
with min/max one of them had to stay float). Kept is the combination that leaves the fewest layers
in float, then the one with the smaller drop.

What is quantized: ``Conv``, the ``Relu`` after it and the ``Concat`` (or ``Add``, in a network
built with ``merge: add``) that joins a skip connection, so the path from one convolution to the
next stays 8-bit. onnxruntime folds a quantized ReLU into the convolution's output range and runs
the join as ``QLinearConcat`` (``QLinearAdd``); with
``Conv`` alone, every convolution's output was turned back to float for its ReLU and the join,
and quantized again for the next layer, which cost about a fifth of the time (docs/DENOISING.md).
``ConvTranspose`` stays float (onnxruntime's CPU provider has no 8-bit kernel for it;
rewriting it as a 1x1 convolution plus DepthToSpace was slower here). A ``DepthToSpace`` that
unfolds an 8-bit result is moved in front of its dequantization (``depth_to_space_on_8_bits``):
the same values, a quarter of the bytes to move. The first convolution
stays float: it sees the image and the noise level, whose 8-bit steps cost PSNR for little time.
Weights use a 7-bit range (``reduce_range``): x86 CPUs without VNNI sum pairs of 8-bit products
in 16 bits, which full-range weights can overflow; here it cost at most 0.03 dB.

Instead of the float export's 1e-4 parity, the check here is the quality the user sees: PSNR of
the 8-bit model against the float model at sigma 15, 25 and 50 on whole images (by default 8
seeded crops of the calibration folder: the drop is relative, and the benchmark's test sets stay
untouched). If a drop exceeds ``--max-drop`` dB, the most sensitive remaining convolution (often
the last one, which writes the noise estimate) is kept float too, and so on; the file is not
written if half the convolutions would have to stay float.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import io
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from edge_ae.errors import ModelError
from edge_ae.files.atomic import write_bytes_atomic
from edge_ae.model.contract import METADATA_KEY, ModelSpec
from edge_ae.model.loading import LoadedModel, load_model
from edge_ae.model.registry import sha256_of
from training import data
from training.metrics import psnr
from training.onnx_export import EXPORTED, git_commit, update_manifest
from training.paths import SHARED

# Same images the float models were trained on: calibration data is training data, never test.
CALIBRATION_DIRS = {1: SHARED / "denoise" / "train" / "train400", 3: SHARED / "denoise" / "train" / "bsd432"}
CHECK_SIGMAS = (15.0, 25.0, 50.0)
# The ops quantized; everything else (ConvTranspose, the noise-map input, shape arithmetic) stays float.
QUANTIZED_OPS = ["Conv", "Relu", "Concat", "Add"]
JOIN_OPS = {"Concat", "Add"}  # how a skip connection meets the up-sampled path (``merge`` concat or add)
PERCENTILE = 99.99
RANGE_RULES = ("minmax", "percentile")  # how calibration turns observed activations into 8-bit ranges
FEATURE_OPS = {"Conv", "Relu", "ConvTranspose"}


def float_joins(model: onnx.ModelProto) -> list[str]:
    """Concat and Add nodes that do not join feature maps (the image with its noise map, shape
    arithmetic): quantizing them would only add rounding in front of the float first convolution."""
    producers = {out: n.op_type for n in model.graph.node for out in n.output}
    return [n.name for n in model.graph.node
            if n.op_type in JOIN_OPS and not all(producers.get(i) in FEATURE_OPS for i in n.input)]


def joins_feeding(model: onnx.ModelProto, convs: list[str]) -> list[str]:
    """The joins (Concat or Add) whose output goes into one of ``convs``. A convolution kept float
    keeps its join float too: an 8-bit join puts the skip and the up-sampled path, whose ranges can
    differ a lot, on one scale, which is what makes such a layer sensitive in the first place."""
    join_of = {n.output[0]: n.name for n in model.graph.node if n.op_type in JOIN_OPS}
    return [join_of[n.input[0]] for n in model.graph.node if n.name in convs and n.input[0] in join_of]


def depth_to_space_on_8_bits(model: onnx.ModelProto) -> int:
    """Move each DepthToSpace that follows a per-tensor DequantizeLinear in front of it, in place,
    so that it shuffles the uint8 tensor instead of the float one; returns how many were moved.

    DepthToSpace only moves values and a per-tensor dequantization treats every value alike, so
    the output is bit for bit the same; onnxruntime then moves a quarter of the bytes. In the
    folded fast models (``unshuffle``), the one that unfolds the noise estimate to full resolution
    took 8-9 % of the 8-bit gray graph's kernel time in float (docs/DENOISING.md)."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    constants = {t.name: t for t in model.graph.initializer}
    graph_outputs = {o.name for o in model.graph.output}
    nodes = list(model.graph.node)
    moved = 0
    for dq in [n for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] not in constants]:
        users = consumers.get(dq.output[0], [])
        scalar = all(name in constants and not constants[name].dims for name in dq.input[1:])
        if not scalar or len(users) != 1 or users[0].op_type != "DepthToSpace" or dq.output[0] in graph_outputs:
            continue
        d2s = users[0]
        quantized, shuffled = dq.input[0], d2s.output[0]
        d2s.input[0], d2s.output[0] = quantized, f"{shuffled}_quantized"
        dq.input[0], dq.output[0] = d2s.output[0], shuffled
        nodes.remove(d2s)
        nodes.insert(nodes.index(dq), d2s)  # keep the node list topologically sorted
        moved += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return moved


def crops(folder: Path, channels: int, *, count: int, size: int, multiple: int, seed: int) -> list[np.ndarray]:
    """``count`` seeded centre crops (HxWxC float32), at most ``size`` px and a multiple of ``multiple``."""
    files = data.list_images(folder)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(files), size=min(count, len(files)), replace=False)
    out = []
    for i in sorted(int(k) for k in picked):
        image = data.load_image(files[i], channels)
        h, w = (min(size, d) // multiple * multiple for d in image.shape[:2])
        y, x = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
        out.append(np.ascontiguousarray(image[y:y + h, x:x + w]))
    return out


def noisy_patches(folder: Path, channels: int, *, count: int, size: int, sigma_max: float,
                  seed: int) -> list[dict[str, np.ndarray]]:
    """``count`` seeded (noisy patch, sigma) feeds; sigma spread evenly over [0, sigma_max]."""
    files = data.list_images(folder)
    if not files:
        raise ValueError(f"no images in {folder}")
    rng = np.random.default_rng(seed)
    feeds = []
    for k in range(count):
        image = data.load_image(files[int(rng.integers(len(files)))], channels)
        h, w = image.shape[:2]
        ph, pw = min(size, h), min(size, w)
        y, x = int(rng.integers(h - ph + 1)), int(rng.integers(w - pw + 1))
        clean = image[y:y + ph, x:x + pw].transpose(2, 0, 1)[None]
        sigma = sigma_max * k / max(1, count - 1) / 255
        noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * sigma
        feeds.append({"image": noisy.astype(np.float32), "sigma": np.full((1, 1), sigma, np.float32)})
    return feeds


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]], names: set[str]) -> None:
        self._it = iter([{k: v for k, v in f.items() if k in names} for f in feeds])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # part of the protocol; one pass is all static calibration needs
        pass


def as_map(feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The feeds with each (N, 1) sigma spread over the image as the (N, C, H, W) map a
    ``noise_map`` model takes (docs/MODEL_CONTRACT.md)."""
    return [{**f, "sigma": np.ascontiguousarray(np.broadcast_to(f["sigma"][:, :, None, None], f["image"].shape))}
            for f in feeds]


def _run(model: LoadedModel, feed: dict[str, np.ndarray]) -> np.ndarray:
    feeds = {"image": feed["image"]}
    if model.spec.noise_input:  # the seeds' plain autoencoder has no sigma input
        feeds["sigma"] = as_map([feed])[0]["sigma"] if model.spec.noise_map else feed["sigma"]
    return model.run(feeds)[0]


class QualityCheck:
    """PSNR of candidate 8-bit models against the float model, on fixed noisy versions of
    ``clean_images`` at each sigma. The float model's outputs are computed once, here, not for
    every candidate of the layer search."""

    def __init__(self, float_model: LoadedModel, clean_images: list[np.ndarray],
                 sigmas: tuple[float, ...] = CHECK_SIGMAS) -> None:
        self.cases: dict[float, list[tuple[dict[str, np.ndarray], np.ndarray]]] = {}
        self.float_db: dict[float, float] = {}
        for sigma in sigmas:
            rng = np.random.default_rng(int(sigma))
            cases = []
            for clean in clean_images:
                chw = clean.transpose(2, 0, 1)[None]
                noisy = (chw + rng.standard_normal(chw.shape).astype(np.float32) * sigma / 255).astype(np.float32)
                cases.append(({"image": noisy, "sigma": np.full((1, 1), sigma / 255, np.float32)}, chw))
            self.cases[sigma] = cases
            self.float_db[sigma] = float(np.mean([psnr(chw, np.clip(_run(float_model, feed), 0, 1)) for feed, chw in cases]))

    def drops(self, int8_path: Path) -> dict[str, float]:
        """Mean PSNR of each model at each sigma, and the drop (float minus int8), in dB."""
        candidate = load_model(int8_path, kind="denoiser", threads=2)
        result: dict[str, float] = {}
        for sigma, cases in self.cases.items():
            int8_db = float(np.mean([psnr(chw, np.clip(_run(candidate, feed), 0, 1)) for feed, chw in cases]))
            result[f"sigma{sigma:g}_float_db"] = round(self.float_db[sigma], 3)
            result[f"sigma{sigma:g}_int8_db"] = round(int8_db, 3)
            result[f"sigma{sigma:g}_drop_db"] = round(self.float_db[sigma] - int8_db, 3)
        return result


def calibration_method(rule: str) -> tuple[object, dict[str, float]]:
    """onnxruntime's calibration method and options for a ``RANGE_RULES`` entry."""
    from onnxruntime.quantization import CalibrationMethod

    if rule == "minmax":
        return CalibrationMethod.MinMax, {}
    if rule == "percentile":
        return CalibrationMethod.Percentile, {"CalibPercentile": PERCENTILE}
    raise ValueError(f"range rule must be one of {', '.join(RANGE_RULES)}, got {rule!r}")


def describe_rule(rule: str) -> str:
    return "min/max" if rule == "minmax" else f"the {PERCENTILE:g}th percentile"


def quantize(source: str | Path, *, out_dir: Path = EXPORTED, name: str | None = None,
             calibration: Path | None = None, count: int | tuple[int, ...] = (64, 256),
             ranges: tuple[str, ...] = RANGE_RULES, patch: int = 128, seed: int = 0,
             validation: Path | None = None, max_drop: float = 0.3, manifest: bool = True,
             command: str = "") -> tuple[Path, ModelSpec, dict[str, float]]:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {rule: calibration_method(rule) for rule in ranges}  # unknown rules fail before any work
    if not methods:
        raise ValueError("at least one range rule is needed")

    # The runtime's own loader validates the file and its metadata, with its one-line errors.
    float_model = load_model(source, threads=2)
    spec = float_model.spec
    if spec.kind != "denoiser":
        raise ValueError(f"{source}: only denoisers can be quantized here, found a model of kind {spec.kind!r}")
    model = onnx.load(str(float_model.path))
    name = name or f"{spec.name}-int8"
    calibration = calibration or CALIBRATION_DIRS[spec.channels]
    if not calibration.is_dir():
        raise ValueError(f"calibration images not found in {calibration}; pass --calibration DIR (clean images)")
    validation = validation or calibration
    sigma_max = spec.noise_levels[1] if spec.noise_levels else 50.0
    counts = (count,) if isinstance(count, int) else tuple(count)
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    input_names = {i.name for i in model.graph.input}
    joins = float_joins(model)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_model.path), str(prepared), skip_symbolic_shape=True)
        check = QualityCheck(float_model, crops(validation, spec.channels, count=8, size=256,
                                                multiple=spec.size_multiple, seed=seed + 1))

        def attempt(feeds: list[dict[str, np.ndarray]], rule: str, float_convs: list[str],
                    tag: str) -> tuple[Path, dict[str, float], float]:
            out = Path(tmp) / f"{tag}.onnx"
            method, options = methods[rule]
            with contextlib.redirect_stdout(io.StringIO()):  # the percentile calibrator prints its thresholds
                quantize_static(
                    str(prepared), str(out), _Feeds(feeds, input_names),
                    quant_format=QuantFormat.QDQ, per_channel=True, op_types_to_quantize=QUANTIZED_OPS,
                    nodes_to_exclude=[*float_convs, *joins, *joins_feeding(model, float_convs)],
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                    calibrate_method=method, extra_options=options,
                )
            candidate = onnx.load(str(out))
            if depth_to_space_on_8_bits(candidate):
                onnx.save(candidate, str(out))
            drops = check.drops(out)  # of the file as it will be written
            return out, drops, max(v for k, v in drops.items() if k.endswith("_drop_db"))

        def search_layers(feeds: list[dict[str, np.ndarray]], rule: str, tag: str) -> dict[str, object]:
            keep_float = [convs[0]] if len(convs) > 2 else []
            quantized, drops, worst = attempt(feeds, rule, keep_float, f"{tag}-0")
            search = [{"float_convs": list(keep_float), "worst_drop_db": worst}]
            # Some layers cannot take 8 bits (a decoder conv that mixes a skip with the up-sampled
            # path, whose ranges differ a lot): keep the single most sensitive one float, and repeat,
            # until the drop is within bounds; give up when half the convolutions would stay float.
            while worst > max_drop:
                candidates = [c for c in convs if c not in keep_float]
                if len(keep_float) + 1 > len(convs) // 2 or not candidates:
                    raise AssertionError(f"8-bit {name} loses {worst:.2f} dB against {spec.name} (> {max_drop} dB "
                                         f"allowed) even with {len(keep_float)} convolutions in float: {drops}")
                tried = {c: attempt(feeds, rule, [*keep_float, c], f"{tag}-{len(keep_float)}-{i}")
                         for i, c in enumerate(candidates)}
                best = min(tried, key=lambda c: tried[c][2])
                keep_float.append(best)
                quantized, drops, worst = tried[best]
                search.append({"float_convs": list(keep_float), "worst_drop_db": worst})
            return {"path": quantized, "drops": drops, "worst": worst, "float_convs": keep_float, "search": search}

        # Activation ranges come from the calibration patches, and which number of patches and
        # which range rule suit a model best varied between models here, so each combination is
        # tried. Kept: the one that needs the fewest float convolutions (the fastest file), and
        # of those the one with the smallest drop on the check images (ties: the first).
        results: dict[tuple[int, str], dict[str, Any]] = {}
        failures = []
        for n in counts:
            feeds = noisy_patches(calibration, spec.channels, count=n, size=patch, sigma_max=sigma_max, seed=seed)
            feeds = as_map(feeds) if spec.noise_map else feeds
            for rule in methods:
                try:
                    results[(n, rule)] = search_layers(feeds, rule, f"c{n}-{rule}")
                except AssertionError as exc:
                    failures.append(f"{n} patches, {rule}: {exc}")
        if not results:
            raise AssertionError("; ".join(failures))
        chosen = min(results, key=lambda k: (len(results[k]["float_convs"]), results[k]["worst"]))
        quantized, drops = results[chosen]["path"], results[chosen]["drops"]
        q = onnx.load(str(quantized))
        new_spec = dataclasses.replace(
            spec, name=name,
            description=f"{spec.description} 8-bit (int8) version of {spec.name}.",
            provenance={
                **spec.provenance,
                "training_command": command or f"python -m training.denoise.quantize exported/{spec.name}.onnx",
                "float_training_command": spec.provenance.get("training_command", ""),
                "git_commit": git_commit(),
                "date": datetime.date.today().isoformat(),
                "float_date": spec.provenance.get("date", ""),
                "quantized_from": {"name": spec.name, "sha256": sha256_of(float_model.path)},
                "quantization": {
                    "format": "QDQ, int8 weights per channel (7-bit range), uint8 activations", "onnxruntime": ort.__version__,
                    "ops": QUANTIZED_OPS,
                    "calibration": f"{chosen[0]} patches of {patch}px from {calibration.name}, sigma 0-{sigma_max:g}, "
                                   f"seed {seed}, ranges by {describe_rule(chosen[1])}",
                    # the worst drop and the float convolutions of every combination tried
                    "calibration_tried": {f"{n} {rule}": {"worst_drop_db": r["worst"], "float_convs": len(r["float_convs"])}
                                          for (n, rule), r in results.items()},
                    "float_convs": results[chosen]["float_convs"],
                    "search": results[chosen]["search"],  # the worst drop after each layer search round
                    "check": {"images": f"8 crops of {validation.name}, seed {seed + 1}", **drops},
                },
            },
        )
        del q.metadata_props[:]
        entry = q.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, new_spec.to_json()
        q.producer_name = "edge-ae"
        q.doc_string = new_spec.description
        onnx.checker.check_model(q)
        path = out_dir / f"{name}.onnx"
        write_bytes_atomic(path, q.SerializeToString())
    if manifest:
        update_manifest(new_spec, path)
    return path, new_spec, drops


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="an exported float denoiser: a shipped name or an .onnx path")
    ap.add_argument("--name", help="name of the 8-bit model (default: NAME-int8)")
    ap.add_argument("--out", type=Path, default=EXPORTED, help="output folder (default: exported/)")
    ap.add_argument("--calibration", type=Path, help="folder of clean images (default: the model's training set)")
    ap.add_argument("--validation", type=Path,
                    help="folder of clean images for the quality check (default: the calibration folder)")
    ap.add_argument("--count", type=int, nargs="+", default=[64, 256],
                    help="calibration patch counts to try; kept: fewest float layers, then smallest drop (default 64 256)")
    ap.add_argument("--range", nargs="+", choices=RANGE_RULES, default=list(RANGE_RULES), dest="ranges",
                    help="how activation ranges are set from calibration: min/max of the values seen, or their "
                         f"{PERCENTILE:g}th percentile; each is tried (default: both)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-drop", type=float, default=0.3, help="largest PSNR loss allowed, dB (default 0.3)")
    ap.add_argument("--no-manifest", action="store_true")
    args = ap.parse_args(argv)
    args_given = argv if argv is not None else sys.argv[1:]
    command = "python -m training.denoise.quantize " + " ".join(shlex.quote(a) for a in args_given)
    try:
        path, spec, drops = quantize(
            args.model, out_dir=args.out, name=args.name, calibration=args.calibration, count=tuple(args.count),
            ranges=tuple(args.ranges), seed=args.seed, validation=args.validation, max_drop=args.max_drop,
            manifest=not args.no_manifest, command=command)
    except (ValueError, AssertionError, OSError, ModelError) as exc:
        sys.exit(f"error: {exc}")
    checks = ", ".join(f"σ{s:g} {drops[f'sigma{s:g}_float_db']:.2f} -> {drops[f'sigma{s:g}_int8_db']:.2f} dB"
                       for s in CHECK_SIGMAS)
    q = spec.provenance["quantization"]
    for tried, r in q["calibration_tried"].items():
        print(f"  calibration {tried}: {r['float_convs']} convolutions in float, worst drop {r['worst_drop_db']:.2f} dB")
    print(f"  kept: {q['calibration']}")
    for step in q["search"]:
        print(f"  {len(step['float_convs'])} convolutions in float: worst drop {step['worst_drop_db']:.2f} dB")
    print(f"wrote {path} ({spec.name}): {checks}")


if __name__ == "__main__":
    main()
