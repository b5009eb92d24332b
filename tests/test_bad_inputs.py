"""A corpus of bad inputs, made here, through the batch commands as a user would meet them
(issue 43): crafted headers, elongated and multi-frame files, NaN pixels, stale temporary files,
outputs pointed at the wrong place. Each bad file is one line; the rest of the batch finishes."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, requires_torch, write_hand_made_denoiser
from edge_ae import Denoiser, ImageError
from edge_ae.cli.main import main
from edge_ae.files.imageio import read_image

# -- the corpus ----------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny, well-formed PNG (valid CRCs) whose header claims ``width`` x ``height`` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 100))
                     + _chunk(b"IEND", b""))
    return path


def png_bad_data(path: Path) -> Path:
    """A PNG whose header is fine but whose pixel data is not zlib: libpng complains on stderr."""
    ihdr = struct.pack(">IIBBBBB", 10, 10, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"not zlib") + _chunk(b"IEND", b""))
    return path


def gray_alpha_png(path: Path, grey: np.ndarray, alpha: np.ndarray) -> Path:
    """An 8-bit PNG of color type 4 (gray + alpha), written by hand (OpenCV cannot)."""
    h, w = grey.shape
    rows = np.dstack([grey, alpha]).astype(np.uint8).reshape(h, 2 * w)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 4, 0, 0, 0))
                     + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    return path


def multi_frame(path: Path, frames: int = 3) -> Path:
    """An animated GIF / PNG / WebP or a multi-page TIFF, by the suffix of ``path``."""
    images = [np.full((24, 32, 3), 40 * i, np.uint8) for i in range(frames)]
    if path.suffix in (".png", ".webp"):
        animation = cv2.Animation()
        animation.frames, animation.durations = images, [100] * frames
        assert cv2.imwriteanimation(str(path), animation)
    else:
        assert cv2.imwritemulti(str(path), images)
    return path


def float_tiff(path: Path, *, bad: float, count: int, rng: np.random.Generator) -> Path:
    image = rng.random((32, 32)).astype(np.float32)
    image.flat[rng.choice(image.size, count, replace=False)] = bad
    assert cv2.imwrite(str(path), image)
    return path


def good_images(folder: Path, rng: np.random.Generator, names: tuple[str, ...] = ("good1.png", "good2.png")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        cv2.imwrite(str(folder / name), (rng.random((32, 40, 3)) * 255).astype(np.uint8))
    return folder


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1: --compare gets the output folder's checks --------------------------------------------


@pytest.mark.parametrize("where", ["in", "in/cmp", "out", "in/good1.png", "out/cmp"])
def test_compare_folder_gets_the_output_checks(tiny_models, tmp_path, rng, capsys, where):
    src = good_images(tmp_path / "in", rng)
    before = _tree(src)
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"]),
               "--compare", str(tmp_path / where)])
    err = capsys.readouterr().err
    assert rc == 2 and "--compare folder" in err and len(err.strip().splitlines()) == 1
    assert _tree(src) == before  # no original replaced by a before|after picture
    assert not (tmp_path / "out").exists()


def test_compare_names_are_readable_unique_and_missing_ones_are_made_again(tiny_models, tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng, names=("same.png",))
    cv2.imwrite(str(src / "same.jpg"), (rng.random((32, 40, 3)) * 255).astype(np.uint8))
    out, cmp = tmp_path / "out", tmp_path / "cmp"
    args = ["denoise", str(src), "-o", str(out), "-m", str(tiny_models["color"]), "--compare", str(cmp)]
    assert main(args) == 0
    assert sorted(p.name for p in cmp.iterdir()) == ["same-compare-jpg.png", "same-compare.png"]
    (cmp / "same-compare-jpg.png").unlink()  # as if the run had been killed between output and compare picture
    stamp = (out / "same.jpg").stat().st_mtime_ns
    assert main(args) == 0
    again = cv2.imread(str(cmp / "same-compare-jpg.png"))
    assert np.array_equal(again[:, :40], cv2.imread(str(src / "same.jpg")))  # before | after, after = the output
    assert np.array_equal(again[:, 44:], cv2.imread(str(out / "same.jpg")))
    assert (out / "same.jpg").stat().st_mtime_ns == stamp  # the output itself is not rewritten


# -- 2: a crafted header, the pixel limit, any decoder error is one file's line ---------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_header_bomb_is_one_line_and_the_batch_finishes(tiny_models, tmp_path, rng, capsys, jobs):
    src = good_images(tmp_path / "in", rng)
    png_bomb(src / "bomb.png")
    out = tmp_path / "out"
    rc = main(["denoise", str(src), "-o", str(out), "-m", str(tiny_models["color"]), "--jobs", jobs])
    captured = capsys.readouterr()
    assert rc == 1
    assert "2 denoised, 1 failed" in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "bomb.png" in lines[0] and "100000x100000" in lines[0] and "--max-pixels" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["good1.png", "good2.png"]


def test_raised_pixel_limit_still_reports_the_decoder_error_on_one_line(tiny_models, tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    png_bomb(src / "bomb.png")
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"]),
               "--max-pixels", "2e10"])
    captured = capsys.readouterr()
    assert rc == 1 and "2 denoised, 1 failed" in captured.out
    assert len(captured.err.strip().splitlines()) == 1 and "bomb.png" in captured.err
    assert "Traceback" not in captured.err


def test_max_pixels_option_and_read_image_limit(tiny_models, tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)  # 32x40 = 1280 pixels each
    rc = main(["denoise", str(src / "good1.png"), "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"]),
               "--max-pixels", "1000"])
    assert rc == 1 and "over the limit" in capsys.readouterr().err
    assert read_image(src / "good1.png", max_pixels=1280).shape == (32, 40, 3)
    with pytest.raises(ImageError, match="over the limit"):
        read_image(src / "good1.png", max_pixels=1279)


def test_any_exception_of_one_file_becomes_its_failure_line(tiny_models, tmp_path, rng, capsys, monkeypatch):
    import edge_ae.jobs.denoise_job as cli

    src = good_images(tmp_path / "in", rng)
    real = cli.read_photo

    def flaky(path, **kwargs):
        if Path(path).name == "good2.png":
            raise cv2.error("OpenCV(5.1.0) loadsave.cpp:80: error: (-215:Assertion failed) something deep")
        return real(path, **kwargs)

    monkeypatch.setattr(cli, "read_photo", flaky)
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"])])
    captured = capsys.readouterr()
    assert rc == 1 and "1 denoised, 1 failed" in captured.out
    assert captured.err.count("\n") == 1 and "good2.png" in captured.err and "Assertion failed" in captured.err


# -- 7: multi-frame files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["anim.gif", "pages.tif", "apng.png", "anim.webp"])
def test_multi_frame_files_are_refused_not_cut_to_one_frame(tiny_models, tmp_path, rng, capsys, name):
    src = good_images(tmp_path / "in", rng)
    multi_frame(src / name)
    out = tmp_path / "out"
    rc = main(["denoise", str(src / "good1.png"), str(src / name), "-o", str(out), "-m", str(tiny_models["color"])])
    captured = capsys.readouterr()
    assert rc == 1 and "1 denoised, 1 failed" in captured.out
    assert ("several frames" if name.endswith(".webp") else "3 frames") in captured.err and name in captured.err
    assert not (out / name).exists()


def test_single_page_tiff_still_reads(tmp_path):
    path = tmp_path / "one.tif"
    cv2.imwrite(str(path), np.zeros((8, 8), np.uint16))
    assert read_image(path).dtype == np.uint16


# -- 8: stale temporary files of a killed run ---------------------------------------------------


def test_stale_temporaries_of_our_own_pattern_are_removed_at_start(tiny_models, tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    # Files of an earlier release's pattern (no process id) go once they are a day old (issue 51:
    # only a temporary whose writer is gone is removed; tests/test_safety_round2.py has the rest).
    stale = [out / ".good1.png.0a1b2c3d.part", out / "sub" / ".x.png.deadbeef.part"]
    kept = [out / ".hidden.part", out / "mine.part", out / ".x.png.NOTHEX00.part", out / ".x.png.0a1b2c3d.partial"]
    for path in stale + kept:
        path.write_bytes(b"half an image")
        os.utime(path, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    assert main(["denoise", str(src), "-o", str(out), "-m", str(tiny_models["color"])]) == 0
    assert "removed 2 temporary file(s)" in capsys.readouterr().err
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() == b"half an image" for p in kept)


# -- 9: NaN and inf -------------------------------------------------------------------------------


def test_non_finite_pixels_are_refused_never_spread(tiny_models, tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng, names=())
    float_tiff(src / "nan.tif", bad=np.nan, count=100, rng=rng)
    float_tiff(src / "inf.tif", bad=np.inf, count=1, rng=rng)
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["gray"]), "--sigma", "20"])
    captured = capsys.readouterr()
    assert rc == 1 and "0 denoised, 2 failed" in captured.out
    assert "100 pixel value(s) are NaN or infinite" in captured.err and "1 pixel value(s)" in captured.err
    assert "sigma" not in captured.err  # the user gave a valid sigma; the pixels are the problem
    image = rng.random((32, 32)).astype(np.float32)
    image[5, 5] = np.nan
    with pytest.raises(ImageError, match="NaN or infinite"):
        Denoiser(tiny_models["gray"], threads=1)(image)
    with pytest.raises(ImageError, match="NaN or infinite"):
        Denoiser(tiny_models["gray"], threads=1)(image, sigma=20)


# -- 10 and 11: where the output may go -------------------------------------------------------


def test_output_folder_that_cannot_be_created_is_one_line_naming_it(tiny_models, tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    afile = tmp_path / "afile"
    afile.write_text("a file, not a folder")
    rc = main(["denoise", str(src), "-o", str(afile / "sub"), "-m", str(tiny_models["color"])])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"output folder {afile / 'sub'}: cannot create it" in err and "good1.png" not in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user for permissions")
def test_output_folder_that_is_not_writable_is_refused_before_the_batch(tiny_models, tmp_path, rng, capsys):
    src = good_images(tmp_path / "in", rng)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        rc = main(["denoise", str(src), "-o", str(locked), "-m", str(tiny_models["color"])])
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "is not writable" in err and str(locked) in err and len(err.splitlines()) == 1


# Rule 11 went too far (issue 51): its purpose is never to write over an input and never to let
# a later run over an input folder (or a glob that reaches into sub-folders) read the outputs back.
# An output folder next to input files or a one-level glob is the first command users type.


@pytest.mark.parametrize("inputs", [["in3/*.png"], ["in3/good1.png", "in3/good2.png"]])
def test_output_folder_next_to_input_files_or_a_glob_is_allowed(tiny_models, tmp_path, rng, capsys, monkeypatch,
                                                                inputs):
    good_images(tmp_path / "in3", rng)
    before = _tree(tmp_path / "in3")
    monkeypatch.chdir(tmp_path)
    args = ["denoise", *inputs, "-o", "in3/den", "-m", str(tiny_models["color"])]
    assert main(args) == 0
    assert "2 denoised, 0 failed" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "in3" / "den").iterdir()) == ["good1.png", "good2.png"]
    assert {k: v for k, v in _tree(tmp_path / "in3").items() if not k.startswith("den/")} == before
    # The glob is expanded once, before anything is written; a rerun does not read the outputs back.
    assert main(args) == 0
    assert "0 denoised, 0 failed, 2 skipped" in capsys.readouterr().out
    assert not (tmp_path / "in3" / "den" / "den").exists()


def test_the_natural_command_from_inside_the_photo_folder(tiny_models, tmp_path, rng, capsys, monkeypatch):
    good_images(tmp_path / "photos", rng, names=("IMG_0001.png",))
    monkeypatch.chdir(tmp_path / "photos")
    assert main(["denoise", "IMG_0001.png", "-o", "clean", "-m", str(tiny_models["color"])]) == 0
    assert (tmp_path / "photos" / "clean" / "IMG_0001.png").is_file()


@pytest.mark.parametrize(("inputs", "out", "why"), [
    (["in3"], "in3/den", "is inside the input folder in3"),
    (["in3"], "in3", "is the input folder in3"),
    (["in3/**/*.png"], "in3/den", "is inside the folder of the glob in3/**/*.png"),
    (["in3/*/*.png"], "in3/den", "is inside the folder of the glob in3/*/*.png"),
    (["in3/*.png"], "in3", "is the folder of the glob in3/*.png"),
    (["in3/good1.png"], "in3", "is the folder of the input in3/good1.png"),
])
def test_output_folder_in_or_on_an_input_tree_is_still_refused(tiny_models, tmp_path, rng, capsys, monkeypatch,
                                                                inputs, out, why):
    good_images(tmp_path / "in3", rng)
    before = _tree(tmp_path / "in3")
    monkeypatch.chdir(tmp_path)
    rc = main(["denoise", *inputs, "-o", out, "-m", str(tiny_models["color"]), "-r"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and why in err
    assert _tree(tmp_path / "in3") == before and not (tmp_path / "in3" / "den").exists()


# -- 12: channel layout, and the C library's own stderr line ------------------------------------


def test_gray_alpha_png_keeps_its_layout(tiny_models, tmp_path, rng):
    src = tmp_path / "in"
    src.mkdir()
    grey = (rng.random((24, 30)) * 255).astype(np.uint8)
    alpha = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (24, 1))
    gray_alpha_png(src / "ga.png", grey, alpha)
    out = tmp_path / "out"
    assert main(["denoise", str(src), "-o", str(out), "-m", str(tiny_models["gray"]), "--compare",
                 str(tmp_path / "cmp")]) == 0
    data = (out / "ga.png").read_bytes()
    assert data[12:16] == b"IHDR" and data[24] == 8 and data[25] == 4  # 8-bit gray + alpha, as the input
    back = cv2.imread(str(out / "ga.png"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (24, 30, 4) and np.array_equal(back[:, :, 3], alpha)
    assert np.array_equal(back[:, :, 0], back[:, :, 2])
    expected = Denoiser(tiny_models["gray"])(read_image(src / "ga.png")[:, :, 0])
    np.testing.assert_array_equal(back[:, :, 0], expected)


def test_libpng_stderr_line_is_silenced_where_edge_ae_reports_the_file(tiny_models, tmp_path, rng, capfd):
    src = good_images(tmp_path / "in", rng)
    png_bad_data(src / "bad.png")
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"])])
    err = capfd.readouterr().err
    assert rc == 1
    assert "libpng error" not in err and "[ERROR" not in err and "[ WARN" not in err
    assert [line for line in err.splitlines() if line] == [f"failed: {src / 'bad.png'}: not a readable image "
                                                           "(corrupt or unsupported format)"]


# -- kill -9 and resume ---------------------------------------------------------------------------


def _denoise_cmd(src: Path, out: Path, model: Path) -> list[str]:
    return [sys.executable, "-m", "edge_ae", "denoise", str(src), "-o", str(out), "-m", str(model), "--threads", "1"]


@pytest.mark.slow
def test_kill_9_then_rerun_gives_the_clean_run_arrays(tiny_models, tmp_path, rng):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(24):
        cv2.imwrite(str(src / f"{i:02d}.png"), (rng.random((160, 200, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(src / "deep.tif"), (rng.random((120, 90)) * 65535).astype(np.uint16))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run(_denoise_cmd(src, clean, tiny_models["color"]), env=env, check=True, capture_output=True)

    proc = subprocess.Popen(_denoise_cmd(src, killed, tiny_models["color"]), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if killed.is_dir() and len([p for p in killed.iterdir() if not p.name.startswith(".")]) >= 3:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len([p for p in killed.iterdir() if not p.name.startswith(".")])
    assert 0 < done_before < 25, "the run must be killed mid-batch"
    # What a kill during a write leaves: a temporary named after the killed writer (issue 51).
    host = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
    (killed / f".07.png.{proc.pid}-{host}-0123abcd.part").write_bytes(b"\x89PNG half")

    rerun = subprocess.run(_denoise_cmd(src, killed, tiny_models["color"]), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{25 - done_before} denoised, 0 failed, {done_before} skipped" in rerun.stdout
    assert sorted(p.name for p in killed.iterdir()) == sorted(p.name for p in clean.iterdir())
    for path in clean.iterdir():
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(killed / path.name), cv2.IMREAD_UNCHANGED)
        assert a.dtype == b.dtype and np.array_equal(a, b), path.name


# -- 6: model input shapes at load, inference errors per file -------------------------------------


def test_denoiser_with_a_fixed_input_size_is_refused_at_load(tmp_path, rng, capsys):
    requires_torch()
    import torch

    from edge_ae.model.contract import ModelSpec
    from training.denoise.export import DenoiserGraph
    from training.nets import build
    from training.onnx_export import export

    torch.manual_seed(0)
    net = build("unet_dae", channels=1, width=4, depths=(1, 1, 1)).eval()
    spec = ModelSpec(name="fixed64", kind="denoiser", channels=1, color_order="GRAY", size_multiple=net.size_multiple,
                     receptive_field=9, noise_input=True, noise_levels=(0.0, 50.0))
    example = (torch.rand(1, 1, 64, 64), torch.full((1, 1), 0.1))
    model = export(DenoiserGraph(net, True), example, spec, tmp_path / "fixed64.onnx",
                   dynamic_axes={"image": {0: "batch"}, "sigma": {0: "batch"}, "denoised": {0: "batch"}})
    src = good_images(tmp_path / "in", rng)
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(model)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "must take images of any size" in err and "fixed at 64x64" in err
    assert not (tmp_path / "out").exists()


def size_bound_denoiser(path: Path, size: int = 32) -> Path:
    """A denoiser that loads (dynamic input) but can only run on size x size images: it adds a
    constant of that size, so any other size fails inside onnxruntime."""
    from onnx import TensorProto, helper

    const = helper.make_tensor("c", TensorProto.FLOAT, [1, 3, size, size], np.zeros(3 * size * size, np.float32))
    return write_hand_made_denoiser(path, helper.make_node("Add", ["image", "c"], ["denoised"]), const,
                                    name="bound", receptive_field=1)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_inference_failure_is_that_files_line(tmp_path, rng, capfd, jobs):
    model = size_bound_denoiser(tmp_path / "bound.onnx")
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "fits.png"), (rng.random((32, 32, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(src / "other.png"), (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(model), "--jobs", jobs])
    captured = capfd.readouterr()  # descriptor level: onnxruntime's own log line would show here
    assert rc == 1 and "1 denoised, 1 failed" in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "other.png" in lines[0] and "inference failed on image 1x3x40x48" in lines[0]
    assert "onnxruntime_src" not in lines[0]
    assert (tmp_path / "out" / "fits.png").is_file()


# -- 2, 3, 4: edge-ae anomaly ----------------------------------------------------------------------


def spot_model(path: Path, *, short_side: int | None = 32) -> Path:
    """A hand-made anomaly model (no torch): the map is each pixel's distance from mid-gray, the
    score its maximum. With ``short_side`` it takes any height and width (aspect ratio kept)."""
    import onnx
    from onnx import TensorProto, helper

    from edge_ae.model.contract import METADATA_KEY, AnomalyCalibration, ModelSpec

    dims = ["h", "w"] if short_side else [32, 32]
    graph = helper.make_graph(
        [helper.make_node("Sub", ["image", "half"], ["centred"]), helper.make_node("Abs", ["centred"], ["dist"]),
         helper.make_node("ReduceMean", ["dist"], ["anomaly_map"], axes=[1], keepdims=1),
         helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2, 3], keepdims=0)],
        "spot",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, *dims])],
        [helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["n", 1, *dims]),
         helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    size = {"short_side": short_side} if short_side else {"input_size": (32, 32)}
    spec = ModelSpec(name="spot", kind="anomaly", channels=3, color_order="BGR", size_multiple=1, **size,
                     anomaly=AnomalyCalibration(threshold=0.3, score_mean=0.15, score_std=0.05))
    helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    onnx.save(model, str(path))
    return path


def anomaly_corpus(folder: Path, rng: np.random.Generator) -> Path:
    good_images(folder, rng)
    png_bomb(folder / "bomb.png")
    cv2.imwrite(str(folder / "strip.png"), (rng.random((1, 5000)) * 255).astype(np.uint8))
    return folder


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_anomaly_bomb_and_strip_are_one_line_each_and_the_report_is_written(tmp_path, rng, capsys, suffix):
    import csv
    import json

    src = anomaly_corpus(tmp_path / "in", rng)
    model = spot_model(tmp_path / "spot.onnx")
    report = tmp_path / "rep" / f"report{suffix}"
    rc = main(["anomaly", str(src), "-m", str(model), "--report", str(report), "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "2 scored" in out and "2 failed" in out
    failures = [line for line in out.splitlines() if line.startswith("failed:")]
    assert len(failures) == 2
    assert any("bomb.png" in f and "over the limit" in f for f in failures)
    assert any("strip.png" in f and "aspect ratio 5000:1" in f for f in failures)
    rows = json.loads(report.read_text())["images"] if suffix == ".json" else list(csv.DictReader(report.open()))
    assert sorted((Path(r["file"]).name, r["status"]) for r in rows) == [
        ("bomb.png", "failed"), ("good1.png", "done"), ("good2.png", "done"), ("strip.png", "failed")]


def test_anomaly_refuses_a_strip_before_resizing_it(tmp_path):
    from edge_ae import AnomalyDetector

    detector = AnomalyDetector(spot_model(tmp_path / "spot.onnx"), threads=1)
    with pytest.raises(ImageError, match="aspect ratio"):
        detector(np.zeros((1, 5000), np.uint8))
    assert detector(np.zeros((30, 300), np.uint8)).anomaly_map.shape == (30, 300)  # 10:1 is still scored
    fixed = AnomalyDetector(spot_model(tmp_path / "fixed.onnx", short_side=None), threads=1)
    with pytest.raises(ImageError, match="aspect ratio"):
        fixed(np.zeros((5000, 1), np.uint8))


def test_anomaly_heatmap_names_keep_the_extension_and_never_stop_scoring(tmp_path, rng, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("part.jpg", "part.png"):
        cv2.imwrite(str(src / name), (rng.random((32, 40, 3)) * 255).astype(np.uint8))
    heat = tmp_path / "heat"
    rc = main(["anomaly", str(src), "-m", str(spot_model(tmp_path / "spot.onnx")), "--heatmaps", str(heat),
               "--all-heatmaps"])
    out = capsys.readouterr().out
    assert rc == 0 and "2 scored" in out and "0 failed" in out
    assert sorted(p.name for p in heat.iterdir()) == ["part-heatmap-jpg.png", "part-heatmap.png"]
    # Two folders with a part.png each: both scored, one overlay, the other said, no failure.
    other = tmp_path / "other"
    other.mkdir()
    (other / "part.png").write_bytes((src / "part.png").read_bytes())
    rc = main(["anomaly", str(src / "part.png"), str(other), "-m", str(spot_model(tmp_path / "spot.onnx")),
               "--heatmaps", str(tmp_path / "heat2"), "--all-heatmaps"])
    out = capsys.readouterr().out
    # ... and the run says so in its exit status (issue 51: an output asked for is missing).
    assert rc == 1 and "2 scored" in out and "0 failed, 1 heatmap(s) not written" in out
    assert out.count("heatmap not written") == 1


@pytest.mark.parametrize("where", ["in", "in/heat"])
def test_anomaly_heatmaps_folder_gets_the_output_checks(tmp_path, rng, capsys, where):
    src = good_images(tmp_path / "in", rng)
    before = _tree(src)
    rc = main(["anomaly", str(src), "-m", str(spot_model(tmp_path / "spot.onnx")), "--heatmaps", str(tmp_path / where)])
    assert rc == 2 and "--heatmaps folder" in capsys.readouterr().err
    assert _tree(src) == before


def test_anomaly_report_survives_a_kill(tmp_path, rng):
    """The process is killed (SIGKILL, as the kernel's out-of-memory killer does) while scoring the
    fourth image: the report on disk already holds the three finished rows."""
    import csv

    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        cv2.imwrite(str(src / f"{i}.png"), (rng.random((32, 40, 3)) * 255).astype(np.uint8))
    model = spot_model(tmp_path / "spot.onnx")
    report = tmp_path / "report.csv"
    script = f"""
import os, signal, time
import edge_ae.anomaly.detector as d
from edge_ae.cli.main import main
real, calls = d.AnomalyDetector.__call__, []
def dying(self, image):
    calls.append(1)
    time.sleep(0.05)
    if len(calls) == 4:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, image)
d.AnomalyDetector.__call__ = dying
main(["anomaly", {str(src)!r}, "-m", {str(model)!r}, "--report", {str(report)!r}, "--threads", "1"])
"""
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    rows = list(csv.DictReader(report.open()))
    assert [r["file"] for r in rows] == [str(src / f"{i}.png") for i in range(3)]
    assert all(r["status"] == "done" for r in rows)
    assert not list(tmp_path.glob(".report.csv.*.part"))


# -- 5: camera --source FOLDER goes past bad files ------------------------------------------------


def test_camera_folder_source_skips_and_names_bad_files(tmp_path, rng, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(8):
        cv2.imwrite(str(frames / f"f{i}.png"), (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    (frames / "f2.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    png_bomb(frames / "f4.png")
    float_tiff(frames / "f5.tif", bad=np.nan, count=4, rng=rng)
    cv2.imwrite(str(frames / "f6.png"), (rng.random((1, 5000)) * 255).astype(np.uint8))  # unscorable strip
    out = tmp_path / "out"
    events = tmp_path / "events.jsonl"
    rc = main(["camera", "--source", str(frames), "--anomaly", str(spot_model(tmp_path / "spot.onnx")),
               "--frames", str(out), "--events", str(events)])
    captured = capsys.readouterr()
    assert rc == 1
    skipped = [line for line in captured.err.splitlines() if "frame skipped" in line]
    assert [Path(line.split(":")[1].strip()).name for line in skipped] == ["f2.png", "f4.png", "f5.tif", "f6.png"]
    assert "over the limit" in skipped[1] and "NaN" in skipped[2] and "aspect ratio" in skipped[3]
    assert "5 frames processed" in captured.out and "skipped frames: 4" in captured.out  # f0 f1 f3 f5.png f7
    assert "stopped: end of source" in captured.out
    assert len(list(out.iterdir())) == 5
    assert events.read_text().count('"source_skipped"') == 4


# -- a worker process that dies ----------------------------------------------------------------------


class DyingJob:
    """A picklable job factory whose job kills its own worker process on ``die.png``."""

    def __call__(self):
        def job(task):
            if task.source.name == "die.png":
                os._exit(9)  # as the kernel's out-of-memory killer would end it
            task.target.write_bytes(task.source.read_bytes())

        return job


def test_a_dead_worker_gives_every_task_an_outcome(tmp_path):
    from edge_ae.files import batch

    names = ["a.png", "b.png", "die.png", "c.png", "d.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "out").mkdir()
    tasks = [batch.Task(tmp_path / n, tmp_path / "out" / n) for n in names]
    outcomes = list(batch.run(tasks, DyingJob(), jobs=2))
    assert sorted(o.task.source.name for o in outcomes) == sorted(names)  # none dropped, no exception
    dead = [o for o in outcomes if o.status == "failed"]
    assert any(o.task.source.name == "die.png" for o in dead)
    assert all("worker process died" in o.message for o in dead)


def test_output_folder_write_probe_failure_is_one_line_naming_it(tiny_models, tmp_path, rng, capsys, monkeypatch):
    """As the permission test above, where it cannot run (root may write anywhere): the probe
    file fails as on a read-only mount."""
    import errno

    import edge_ae.files.output_paths as output_paths

    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    src = good_images(tmp_path / "in", rng)
    monkeypatch.setattr(output_paths.tempfile, "TemporaryFile", read_only)
    rc = main(["denoise", str(src), "-o", str(tmp_path / "ro"), "-m", str(tiny_models["color"])])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"output folder {tmp_path / 'ro'} is not writable (Read-only file system)" in err
