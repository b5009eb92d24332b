"""Runs every shipped model on real images and saves the outputs, so that two machines (this x86
host and an emulated aarch64 root, tools/arm64_check.sh) can be compared; and compares them.

    python -m tools.arm64_check run --samples samples --out build/arm64-check/x86_64
    python -m tools.arm64_check compare build/arm64-check/x86_64 build/arm64-check/cortex-a72 \
        [more dirs] --report build/arm64-check/report.md

``run`` iterates the registry (``edge_ae.list_models()``), so a model added later is covered
without editing this file; a kind this script has no driver for is run through its raw graph
(inputs built from the metadata) and says so. It needs only the runtime (numpy, onnxruntime,
OpenCV, edge_ae): it runs inside the arm64 root against the installed wheel. Per model it writes
``<name>.npz`` (every output array) and a line in ``results.json``; ``platform.json`` records
the machine, library versions and the CPU's 8-bit dot-product bit (which onnxruntime's 8-bit
kernels depend on); ``cli/`` holds the outputs of ``edge-ae denoise``, ``edge-ae anomaly`` and
``edge-ae camera --source FOLDER`` run end to end.

``compare`` checks each other run against the reference (the first directory):

* inputs: the same bytes on both sides (hashes), else nothing else is meaningful;
* float models: uint8 outputs within FLOAT_LEVELS gray level(s), float outputs within FLOAT_ABS;
* 8-bit models: the difference is stated (largest, share of pixels that differ) and must stay
  within INT8_LEVELS / INT8_SHARE; and on the small noisy set the PSNR must be within PSNR_DB of
  the reference's;
* anomaly verdicts (flagged or not) identical; CLI runs exit 0 on both with outputs within the
  same bounds.

It exits 1 when a check fails, and writes a Markdown report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from training import metrics  # numpy only; arm64_check.sh copies it into the emulated root

# Bounds, fixed before the first emulated run (2026-12-05). Float graphs on another CPU differ
# only by rounding order (NEON vs AVX, other blockings); 8-bit graphs round their activations to
# a 256-step grid, so a one-ulp difference before a requantization moves a value a whole step,
# which later layers can grow to a few gray levels.
FLOAT_LEVELS = 1  # uint8 outputs of float models
FLOAT_ABS = 1e-5  # float outputs on [0, 1] (larger ones: relative to their largest magnitude)
INT8_LEVELS = 8  # uint8 outputs of 8-bit models: largest difference allowed
INT8_SHARE = 0.15  # ... and the largest share of pixels allowed to differ at all
INT8_ABS = INT8_LEVELS / 255.0  # float outputs of 8-bit models
PSNR_DB = 0.05  # PSNR on the noisy set: |arm - x86| for every model

# Op types that mark a graph as 8-bit (training/denoise/quantize.py writes QDQ / QLinear graphs).
INT8_OPS = (b"QuantizeLinear", b"QLinearConv", b"ConvInteger", b"MatMulInteger", b"QLinearMatMul")
AT_HWCAP, AT_HWCAP2 = 16, 26
HWCAP_ASIMDDP = 1 << 20  # arm64: SDOT/UDOT (8-bit dot products), Armv8.2 DotProd
HWCAP2_I8MM = 1 << 13  # arm64: SMMLA/UMMLA (8-bit matrix multiply), Armv8.6


# ---------------------------------------------------------------------------- platform


def hwcaps() -> tuple[int | None, int | None]:
    """The kernel's AT_HWCAP and AT_HWCAP2 words (under qemu-user: the emulated CPU's), or None."""
    if not sys.platform.startswith("linux"):
        return None, None
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.getauxval.restype = ctypes.c_ulong
        libc.getauxval.argtypes = [ctypes.c_ulong]
        return int(libc.getauxval(AT_HWCAP)), int(libc.getauxval(AT_HWCAP2))
    except (OSError, AttributeError):
        return None, None


def eight_bit_path(machine: str, hwcap: int | None, hwcap2: int | None) -> str:
    """Which family of 8-bit GEMM kernels onnxruntime's MLAS dispatches to, as its CPU feature
    test decides (on arm64 it reads the same HWCAP bits: onnxruntime/core/common/cpuid_info.cc)."""
    if machine not in ("aarch64", "arm64"):
        return f"{machine}: not arm64 (x86 uses its AVX2/AVX-VNNI/AVX512 8-bit kernels)"
    if hwcap is None:
        return "unknown (no getauxval)"
    if hwcap2 is not None and hwcap2 & HWCAP2_I8MM:
        return "asimddp=1, i8mm=1: MLAS's UMMLA/SMMLA (i8mm) kernels"
    if hwcap & HWCAP_ASIMDDP:
        return "asimddp=1: MLAS's UDOT/SDOT dot-product kernels"
    return "asimddp=0: MLAS's plain NEON kernels (widening multiply-accumulate, no dot product)"


def emulation_hint() -> str | None:
    """Why this process looks emulated (qemu-user), or None. Under qemu-user an aarch64 process
    still sees the host's /proc/cpuinfo (an x86 one) unless qemu fakes it."""
    if os.environ.get("QEMU_CPU"):
        return f"QEMU_CPU={os.environ['QEMU_CPU']} is set"
    machine = platform.machine()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    if machine in ("aarch64", "arm64") and ("vendor_id" in cpuinfo or "GenuineIntel" in cpuinfo or "AuthenticAMD" in cpuinfo):
        return "an aarch64 process sees an x86 /proc/cpuinfo"
    return None


def platform_info() -> dict:
    import cv2
    import onnxruntime as ort

    import edge_ae

    hwcap, hwcap2 = hwcaps()
    machine = platform.machine()
    return {
        "machine": machine,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "opencv": cv2.__version__,
        "edge_ae": edge_ae.__version__,
        "edge_ae_from": str(Path(edge_ae.__file__).parent),
        "qemu_cpu": os.environ.get("QEMU_CPU"),
        "emulated": emulation_hint(),
        "hwcap": hwcap,
        "hwcap2": hwcap2,
        "asimddp": None if hwcap is None or machine not in ("aarch64", "arm64") else bool(hwcap & HWCAP_ASIMDDP),
        "eight_bit_path": eight_bit_path(machine, hwcap, hwcap2),
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }


# ---------------------------------------------------------------------------- inputs


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def imread(path: Path, flag: int) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), flag)
    if image is None:
        raise SystemExit(f"arm64_check: cannot read {path}")
    return image


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def add_noise(image: np.ndarray, rng: np.random.Generator, sigma: float = 25.0) -> np.ndarray:
    """Near-Gaussian noise made of integers only (a sum of 12 uniform bytes: std 256, shifted to
    mean 0, scaled by a power of two), so every machine makes the same bytes; numpy's
    standard_normal goes through log/exp, whose last bit differs between x86 and aarch64 builds,
    which moved a few rounded pixels of an earlier version of this set."""
    total = rng.integers(0, 256, size=(12, *image.shape), dtype=np.int64).sum(axis=0) - 1530
    noise = total * sigma / 256.0  # exact in float64 for a whole-number sigma
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)


class Inputs:
    """Real images from ``samples/``, read once. Crops keep emulated runs to minutes."""

    def __init__(self, samples: Path, *, crop: int, count: int) -> None:
        import cv2

        noisy = sorted((samples / "noisy").glob("*.png"))[:count]
        anomaly = sorted((samples / "anomaly").glob("*.jpg"))[:count]
        if not noisy or not anomaly:
            raise SystemExit(f"arm64_check: expected PNGs in {samples}/noisy and JPEGs in {samples}/anomaly")
        self.names = [p.stem for p in noisy]
        self.color = [center_crop(imread(p, cv2.IMREAD_COLOR), crop) for p in noisy]
        self.gray = [cv2.cvtColor(im, cv2.COLOR_BGR2GRAY) for im in self.color]
        self.anomaly_names = [p.stem for p in anomaly]
        self.anomaly_paths = anomaly
        self.anomaly = [imread(p, cv2.IMREAD_GRAYSCALE) for p in anomaly]
        # The small noisy set for PSNR: the sample photos shrunk 4x by area averaging (which
        # averages their own noise away: a near-clean reference), near-Gaussian noise of sigma 25
        # added with a fixed seed, rounded to uint8. Its hash is recorded: compare refuses to
        # compare PSNRs of sets that differ.
        # Integer arithmetic only: OpenCV's area resize and gray conversion round differently
        # on x86 and aarch64 (their SIMD paths), which changed a few reference pixels.
        rng = np.random.default_rng(0)
        self.clean_color, self.noisy_color = [], []
        for p in noisy[: max(1, min(3, count))]:
            full = imread(p, cv2.IMREAD_COLOR).astype(np.int64)
            h, w = full.shape[0] // 4, full.shape[1] // 4
            blocks = full[: 4 * h, : 4 * w].reshape(h, 4, w, 4, 3).sum(axis=(1, 3))
            small = ((blocks + 8) // 16).astype(np.uint8)  # 4x4 means, rounded
            self.clean_color.append(small)
            self.noisy_color.append(add_noise(small, rng))
        weights = np.array([114, 587, 299], np.int64)  # BGR, as ITU-R BT.601 / OpenCV's gray
        self.clean_gray = [((im.astype(np.int64) @ weights + 500) // 1000).astype(np.uint8) for im in self.clean_color]
        rng = np.random.default_rng(1)
        self.noisy_gray = [add_noise(im, rng) for im in self.clean_gray]

    def hashes(self) -> dict[str, str]:
        return {
            "photos": digest(*self.color),
            "anomaly": digest(*self.anomaly),
            "noisy_set": digest(*self.clean_color, *self.noisy_color, *self.noisy_gray),
        }


def psnr(clean: np.ndarray, out: np.ndarray) -> float:
    """8-bit PSNR (training/metrics.py, which arm64_check.sh copies beside this script)."""
    return metrics.psnr(clean, out, peak=255)


# ---------------------------------------------------------------------------- drivers


def is_int8(path: Path) -> bool:
    data = path.read_bytes()
    return any(op in data for op in INT8_OPS)


def drive_denoiser(name: str, inp: Inputs, threads: int | None) -> tuple[dict, dict]:
    from edge_ae import Denoiser, load_model
    from edge_ae.denoise.precision import exact

    channels = load_model(name, threads=threads).spec.channels
    den = Denoiser(name, threads=threads, precision=exact(name))  # the named model, never its twin
    photos = inp.color if channels == 3 else inp.gray
    arrays: dict[str, Any] = {}
    info: dict[str, Any] = {"sigma_estimated": []}
    for label, photo in zip(inp.names, photos, strict=True):
        from edge_ae import estimate_sigma

        sigma = float(estimate_sigma(photo))
        info["sigma_estimated"].append(round(sigma, 4))
        arrays[f"u8/{label}"] = den(photo)  # uint8 in -> uint8 out, noise level estimated
        arrays[f"f32/{label}"] = den(photo.astype(np.float32) / 255.0, sigma=25.0)  # float in/out, fixed level
    clean, noisy = (inp.clean_color, inp.noisy_color) if channels == 3 else (inp.clean_gray, inp.noisy_gray)
    info["psnr_noisy_set"] = []
    for i, (c, n) in enumerate(zip(clean, noisy, strict=True)):
        out = den(n, sigma=25.0)
        arrays[f"psnr/{i}"] = out
        info["psnr_noisy_set"].append(round(psnr(c, out), 4))
    info["psnr_mean"] = round(float(np.mean(info["psnr_noisy_set"])), 4)
    return arrays, info


def drive_anomaly(name: str, inp: Inputs, threads: int | None) -> tuple[dict, dict]:
    from edge_ae import AnomalyDetector

    det = AnomalyDetector(name, threads=threads)
    arrays: dict[str, Any] = {}
    info: dict[str, Any] = {"scores": [], "flagged": []}
    for label, image in zip(inp.anomaly_names, inp.anomaly, strict=True):
        res = det(image)
        arrays[f"map/{label}"] = res.anomaly_map
        arrays[f"score/{label}"] = np.float64(res.score)
        info["scores"].append(res.score)
        info["flagged"].append(bool(res.is_anomaly))
    return arrays, info


def autoencoder_images(inp: Inputs) -> list[np.ndarray]:
    return inp.anomaly + inp.gray


def test_latents(dim: int, count: int = 4) -> np.ndarray:
    """Exact on every machine (small integers over 3), unlike anything from sin/exp."""
    return (((np.arange(count * dim) * 5) % 7 - 3) / 3.0).astype(np.float32).reshape(count, dim)


def drive_autoencoder(name: str, inp: Inputs, threads: int | None) -> tuple[dict, dict]:
    from edge_ae import Autoencoder

    ae = Autoencoder(name, threads=threads)
    images = autoencoder_images(inp)
    recon = ae.reconstruct(images)
    scores = np.asarray(ae.score(images), dtype=np.float64)
    return {"reconstruction": recon, "score": scores}, {"scores": [float(s) for s in scores]}


def drive_part(name: str, inp: Inputs, threads: int | None) -> tuple[dict, dict]:
    """An encoder or decoder on its own: its graph through LoadedModel, inputs as the
    Autoencoder class prepares them."""
    from edge_ae import load_model
    from edge_ae.autoencoder import to_batch

    model = load_model(name, threads=threads)
    spec = model.spec
    if spec.kind == "encoder":
        assert spec.input_size is not None and spec.latent_dim is not None  # an encoder's contract
        batch, _ = to_batch(autoencoder_images(inp), (int(spec.input_size[0]), int(spec.input_size[1])))
        return {"latent": model.run({"image": batch})[0]}, {}
    assert spec.latent_dim is not None  # a decoder's contract
    return {"image": model.run({"latent": test_latents(int(spec.latent_dim))})[0]}, {}


def drive_generic(name: str, inp: Inputs, threads: int | None) -> tuple[dict, dict]:
    """A kind this script has no driver for: its raw graph, each input built from its declared
    shape (4-D image inputs from a sample photo, the rest from exact small numbers)."""
    import cv2

    from edge_ae import load_model

    model = load_model(name, threads=threads)
    spec = model.spec
    feeds = {}
    for i in model.session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else None for d in i.shape]
        if len(shape) == 4:
            c = shape[1] or spec.channels
            h = shape[2] or (spec.input_size[0] if spec.input_size else spec.short_side or 128)
            w = shape[3] or (spec.input_size[1] if spec.input_size else spec.short_side or 128)
            m = spec.size_multiple
            h, w = max(m, h // m * m), max(m, w // m * m)
            photo = inp.color[0] if c == 3 else inp.gray[0][:, :, None]
            img = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, c)
            feeds[i.name] = (img.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
        else:
            dims = [d or 1 for d in shape]
            n = int(np.prod(dims)) if dims else 1
            feeds[i.name] = test_latents(n, 1).reshape(dims) if "float" in i.type else np.ones(dims, np.int64)
    names = [o.name for o in model.session.get_outputs()]
    outs = model.session.run(names, feeds)
    return {f"out/{n}": np.asarray(o) for n, o in zip(names, outs, strict=True)}, {"generic": True}


DRIVERS = {
    "denoiser": drive_denoiser,
    "anomaly": drive_anomaly,
    "autoencoder": drive_autoencoder,
    "encoder": drive_part,
    "decoder": drive_part,
}


# ---------------------------------------------------------------------------- CLI runs


def edge_ae_command() -> list[str]:
    """The console script next to this Python (what a user types), else ``python -m edge_ae``."""
    script = Path(sys.executable).parent / "edge-ae"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "edge_ae"]


def pick(names: list[str], preferred: str) -> str | None:
    if preferred in names:
        return preferred
    fast = [n for n in names if n.endswith("-fast")]
    return (fast or names)[0] if fast or names else None


def run_cli(out: Path, inp: Inputs, samples: Path, *, threads: int | None) -> dict:
    import cv2

    from edge_ae import list_models

    cli = out / "cli"
    photos = cli / "in-photos"
    photos.mkdir(parents=True, exist_ok=True)
    for label, im in zip(inp.names, inp.color, strict=True):
        cv2.imwrite(str(photos / f"{label}.png"), im)
    denoiser = pick([m.name for m in list_models("denoiser")], "denoise-color-fast")
    anomaly = pick([m.name for m in list_models("anomaly")], "anomaly-magnetic-tile-fast")
    thread_args = ["--threads", str(threads)] if threads else []
    runs = {}
    pair: list[str] = []
    if denoiser:
        runs["denoise"] = [*edge_ae_command(), "denoise", str(photos), "-o", str(cli / "denoise"), "-m", denoiser,
                           "--sigma", "25", "--overwrite", *thread_args]
    if anomaly:
        runs["anomaly"] = [*edge_ae_command(), "anomaly", str(samples / "anomaly"), "-m", anomaly,
                           "--report", str(cli / "anomaly.json"), *thread_args]
    if denoiser:
        camera = [*edge_ae_command(), "camera", "--source", str(photos), "--denoise", denoiser, "--sigma", "25",
                  "--frames", str(cli / "camera"), *thread_args]
        runs["camera"] = camera
        # edge-ae bench must run here too; its times are meaningless under emulation, and it must say so
        pair = [denoiser] + ([f"{denoiser}-int8"] if f"{denoiser}-int8" in {m.name for m in list_models()} else [])
        runs["bench"] = [*edge_ae_command(), "bench", "-m", *pair, "--size", "160x120", "--repeat", "1",
                         "--warmup", "0", "--fps", "1", "--threads", str(threads or 1)]
    results: dict[str, dict[str, Any]] = {}
    for key, cmd in runs.items():
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        results[key] = {
            # shown with the output folder as OUT, so reports from two machines read alike
            "command": " ".join(Path(c).name if c == cmd[0] else c.replace(str(out), "OUT") for c in cmd)
            .replace(str(samples), "samples"),
            "exit": proc.returncode,
            "seconds": round(time.perf_counter() - start, 2),
            "stderr_tail": proc.stderr.strip().splitlines()[-3:],
        }
        if key == "bench":
            (cli / "bench.txt").write_text(proc.stdout)
            # table rows only ("NAME KIND BITS ms fps ..."): the lines after the table name models too
            results[key]["outputs"] = sum(len(row := line.split()) > 2 and row[0] in pair and row[2] in ("fp32", "int8")
                                          for line in proc.stdout.splitlines())
            results[key]["says_emulated"] = "looks emulated" in proc.stdout
    arrays: dict[str, Any] = {}
    for key in ("denoise", "camera"):
        folder = cli / key
        for f in sorted(folder.glob("*.png")) if folder.is_dir() else []:
            arrays[f"{key}/{f.stem}"] = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        results.get(key, {})["outputs"] = len([k for k in arrays if k.startswith(key + "/")])
    report = cli / "anomaly.json"
    if report.is_file():
        rows = json.loads(report.read_text())
        rows = rows.get("images", rows) if isinstance(rows, dict) else rows
        results["anomaly"]["outputs"] = len(rows)
        for row in rows:
            if isinstance(row, dict) and "score" in row:
                label = Path(str(row.get("path", row.get("file", len(arrays))))).stem
                arrays[f"anomaly/{label}"] = np.float64(row["score"])
    np.savez_compressed(out / "cli.npz", **arrays)
    return results


# ---------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    from edge_ae import list_models
    from edge_ae.errors import EdgeAEError

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inp = Inputs(Path(args.samples), crop=args.crop, count=args.count)
    info = platform_info()
    info["inputs"] = inp.hashes()
    info["crop"], info["count"] = args.crop, args.count
    (out / "platform.json").write_text(json.dumps(info, indent=2))
    print(f"{info['machine']} {info['qemu_cpu'] or ''} 8-bit path: {info['eight_bit_path']}", flush=True)

    entries = list_models()
    if args.models:
        unknown = sorted(set(args.models) - {e.name for e in entries})
        if unknown:
            raise SystemExit(f"arm64_check: unknown model(s) {unknown}")
        entries = [e for e in entries if e.name in args.models]
    results: dict[str, dict[str, Any]] = {}
    for entry in entries:
        driver = DRIVERS.get(entry.kind, drive_generic)
        start = time.perf_counter()
        try:
            arrays, extra = driver(entry.name, inp, args.threads)
        except (EdgeAEError, ValueError, RuntimeError) as exc:
            results[entry.name] = {"kind": entry.kind, "error": str(exc).splitlines()[0]}
            print(f"  {entry.name}: FAILED {results[entry.name]['error']}", flush=True)
            continue
        seconds = time.perf_counter() - start
        np.savez_compressed(out / f"{entry.name}.npz", **{k.replace("/", "__"): v for k, v in arrays.items()})
        results[entry.name] = {"kind": entry.kind, "int8": is_int8(entry.path), "seconds": round(seconds, 2),
                               "driver": driver.__name__, **extra}
        print(f"  {entry.name}: {len(arrays)} outputs, {seconds:.1f} s", flush=True)
    cli = {} if args.no_cli else run_cli(out, inp, Path(args.samples), threads=args.threads)
    for key, r in cli.items():
        print(f"  edge-ae {key}: exit {r['exit']}, {r.get('outputs', 0)} outputs, {r['seconds']} s", flush=True)
    (out / "results.json").write_text(json.dumps({"models": results, "cli": cli}, indent=2))
    failed = [n for n, r in results.items() if "error" in r] + [k for k, r in cli.items() if r["exit"] != 0]
    return 1 if failed else 0


# ---------------------------------------------------------------------------- compare


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k.replace("__", "/"): data[k] for k in data.files}


def diff_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict:
    """Largest differences over all outputs, split by dtype: uint8 in gray levels (and the share
    of pixels that differ), floats absolutely, divided by the array's largest magnitude where that
    exceeds 1."""
    missing = sorted(set(a) ^ set(b))
    levels, share, differing, total, fmax = 0, 0.0, 0, 0, 0.0
    for key in sorted(set(a) & set(b)):
        x, y = a[key], b[key]
        if x.shape != y.shape:
            missing.append(f"{key} (shape {x.shape} vs {y.shape})")
            continue
        if x.dtype == np.uint8 or x.dtype == np.uint16:
            d = np.abs(x.astype(np.int32) - y.astype(np.int32))
            levels = max(levels, int(d.max(initial=0)))
            differing += int(np.count_nonzero(d))
            total += d.size
        else:
            # relative to the array's scale where it exceeds 1 (scores, feature vectors): images on
            # [0, 1] are compared absolutely
            x64, y64 = x.astype(np.float64), y.astype(np.float64)
            scale = max(1.0, float(np.abs(x64).max(initial=0.0)))
            fmax = max(fmax, float(np.abs(x64 - y64).max(initial=0.0)) / scale)
    share = differing / total if total else 0.0
    return {"levels": levels, "share": share, "float": fmax, "missing": missing}


def judge(d: dict, int8: bool) -> list[str]:
    problems = []
    if d["missing"]:
        problems.append(f"outputs missing or reshaped: {d['missing'][:3]}")
    if int8:
        if d["levels"] > INT8_LEVELS or d["share"] > INT8_SHARE:
            problems.append(f"{d['levels']} levels on {100 * d['share']:.2f} % of pixels "
                            f"(bound {INT8_LEVELS} on {100 * INT8_SHARE:.0f} %)")
        if d["float"] > INT8_ABS:
            problems.append(f"float outputs differ by {d['float']:.2e} (bound {INT8_ABS:.2e})")
    else:
        if d["levels"] > FLOAT_LEVELS:
            problems.append(f"uint8 outputs differ by {d['levels']} levels (bound {FLOAT_LEVELS})")
        if d["float"] > FLOAT_ABS:
            problems.append(f"float outputs differ by {d['float']:.2e} (bound {FLOAT_ABS:.0e})")
    return problems


def fmt_diff(d: dict) -> str:
    if "text" in d:
        return d["text"]
    parts = []
    if d["levels"] or d["share"]:
        parts.append(f"max {d['levels']} level(s) on {100 * d['share']:.2f} % of pixels")
    elif d.get("has_u8"):
        parts.append("uint8 identical")
    parts.append(f"float max {d['float']:.1e}")
    return "; ".join(parts)


def model_row(name: str, r: dict, o: dict | None, ref: Path, other: Path) -> tuple[str, list[str]]:
    """One model's table row against the reference, and its problems."""
    if o is None:
        return f"| {name} | {r['kind']} | | not run here | | FAIL |", ["was not run"]
    if "error" in r or "error" in o:
        error = o.get("error") or r.get("error")
        return f"| {name} | {r['kind']} | | error: {error} | | FAIL |", [f"failed: {error}"]
    int8 = bool(r.get("int8"))
    a, b = load_npz(ref / f"{name}.npz"), load_npz(other / f"{name}.npz")
    d = diff_arrays(a, b)
    d["has_u8"] = any(v.dtype == np.uint8 for v in a.values())
    problems = judge(d, int8)
    psnr_text = ""
    if "psnr_mean" in r and "psnr_mean" in o:
        gap = abs(r["psnr_mean"] - o["psnr_mean"])
        psnr_text = f"{r['psnr_mean']:.3f} / {o['psnr_mean']:.3f}"
        if gap > PSNR_DB:
            problems.append(f"PSNR differs by {gap:.3f} dB (bound {PSNR_DB})")
    if r.get("flagged") != o.get("flagged"):
        problems.append(f"anomaly verdicts differ: {r.get('flagged')} vs {o.get('flagged')}")
    if r.get("generic"):
        psnr_text += " (raw graph)"
    result = "ok" if not problems else "FAIL: " + "; ".join(problems)
    return f"| {name} | {r['kind']} | {'8-bit' if int8 else 'float'} | {fmt_diff(d)} | {psnr_text} | {result} |", problems


def compare_dirs(ref: Path, other: Path) -> tuple[list[str], list[str]]:
    """Markdown table rows and the list of failures of ``other`` against ``ref``."""
    rp, op = (json.loads((p / "platform.json").read_text()) for p in (ref, other))
    rr, orr = (json.loads((p / "results.json").read_text()) for p in (ref, other))
    failures: list[str] = []
    label = op.get("qemu_cpu") or op["machine"]
    lines = [
        f"### {label} against {rp.get('qemu_cpu') or rp['machine']}",
        "",
        f"- {op['machine']}, Python {op['python']}, numpy {op['numpy']}, onnxruntime {op['onnxruntime']}, "
        f"OpenCV {op['opencv']}; emulated: {op.get('emulated') or 'not detected'}",
        f"- 8-bit kernels: {op['eight_bit_path']} (AT_HWCAP {op['hwcap']:#x})" if op.get("hwcap") is not None
        else f"- 8-bit kernels: {op['eight_bit_path']}",
        "",
    ]
    same_inputs = rp["inputs"] == op["inputs"]
    if not same_inputs:
        failures.append(f"{label}: inputs differ ({rp['inputs']} vs {op['inputs']}): nothing else is comparable")
    versions = [k for k in ("numpy", "onnxruntime", "opencv") if rp[k] != op[k]]
    if versions:
        lines.append(f"- library versions differ from the reference's: {', '.join(versions)}")
    lines += ["| model | kind | weights | outputs against reference | PSNR noisy set, ref / this (dB) | result |",
              "|---|---|---|---|---|---|"]
    for name, r in rr["models"].items():
        row, problems = model_row(name, r, orr["models"].get(name), ref, other)
        lines.append(row)
        failures += [f"{label}: {name}: {p}" for p in problems]
    # End-to-end CLI runs: both must exit 0; their outputs are judged like the model's.
    if rr.get("cli"):
        a, b = load_npz(ref / "cli.npz"), load_npz(other / "cli.npz")
        lines += ["", "| command | exit (ref / this) | outputs | against reference |", "|---|---|---|---|"]
        for key, r in rr["cli"].items():
            o = orr.get("cli", {}).get(key, {"exit": "not run", "outputs": 0, "command": ""})
            sub_a = {k: v for k, v in a.items() if k.startswith(key + "/")}
            sub_b = {k: v for k, v in b.items() if k.startswith(key + "/")}
            d = diff_arrays(sub_a, sub_b)
            problems = judge(d, int8=False)
            if r["exit"] != 0 or o["exit"] != 0:
                problems.append(f"exit {r['exit']} / {o['exit']}: {o.get('stderr_tail') or r.get('stderr_tail')}")
            if key == "bench":  # times, not outputs: it must run, and say so where the machine is emulated
                if not o.get("outputs"):
                    problems.append("no timing rows")
                if op.get("emulated") and not o.get("says_emulated"):
                    problems.append("did not say that the machine looks emulated")
                d = {"levels": 0, "share": 0.0, "float": 0.0, "missing": [], "text": (
                    f"{o.get('outputs', 0)} models timed; says emulated: {'yes' if o.get('says_emulated') else 'no'}")}
            elif not sub_a:
                problems.append("no outputs to compare")
            failures += [f"{label}: edge-ae {key}: {p}" for p in problems]
            d["has_u8"] = any(v.dtype == np.uint8 for v in sub_a.values())
            lines.append(f"| `{r['command']}` | {r['exit']} / {o['exit']} | {o.get('outputs', 0)} | "
                         f"{fmt_diff(d)}{'' if not problems else ' FAIL: ' + '; '.join(problems)} |")
    lines.append("")
    return lines, failures


def cmd_compare(args: argparse.Namespace) -> int:
    ref = Path(args.reference)
    rp = json.loads((ref / "platform.json").read_text())
    lines = [
        "# arm64 check",
        "",
        f"Reference: {rp['machine']} (Python {rp['python']}, numpy {rp['numpy']}, onnxruntime {rp['onnxruntime']}, "
        f"OpenCV {rp['opencv']}). Inputs: {rp['count']} sample photos cropped to {rp['crop']} px, "
        f"{len(json.loads((ref / 'results.json').read_text())['models'])} models.",
        f"Bounds: float models {FLOAT_LEVELS} gray level / {FLOAT_ABS:g}; 8-bit models {INT8_LEVELS} levels on at most "
        f"{100 * INT8_SHARE:.0f} % of pixels / {INT8_ABS:.3g}; PSNR on the noisy set within {PSNR_DB} dB.",
        "",
    ]
    failures = []
    for other in args.others:
        more, fails = compare_dirs(ref, Path(other))
        lines += more
        failures += fails
    lines += ["## Result", ""] + ([f"- {f}" for f in failures] or ["All checks passed."]) + [""]
    text = "\n".join(lines)
    if args.report:
        Path(args.report).write_text(text)
    print(text)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run every shipped model, save outputs")
    run.add_argument("--samples", default="samples", help="folder with noisy/*.png and anomaly/*.jpg")
    run.add_argument("--out", required=True, help="folder for the outputs (created)")
    run.add_argument("--models", nargs="+", help="only these registry names (default: all shipped)")
    run.add_argument("--crop", type=int, default=128, help="centre crop of the sample photos, pixels")
    run.add_argument("--count", type=int, default=6, help="how many sample images of each folder")
    run.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1: reproducible, fair)")
    run.add_argument("--no-cli", action="store_true", help="skip the end-to-end edge-ae commands")
    run.set_defaults(func=cmd_run)
    cmp = sub.add_parser("compare", help="compare runs against a reference run")
    cmp.add_argument("reference")
    cmp.add_argument("others", nargs="+")
    cmp.add_argument("--report", help="also write the Markdown report here")
    cmp.set_defaults(func=cmd_compare)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
