"""Memory of a large image (issue 51, item 9): the denoiser runs end to end in tiles (noise
estimate included) and never holds a full-size float copy; its output is the whole-image path's,
pixel for pixel; a file larger than its image can be is refused before it is read.

Peak memory per megapixel of the command itself is measured by ``tools/measure_memory.py``
(docs/BATCH.md); here numpy's own allocations are counted (tracemalloc), which is exact and quick.
"""

from __future__ import annotations

import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_ae import Denoiser
from edge_ae.cli.main import main
from edge_ae.denoise import denoiser as denoiser_module
from edge_ae.errors import ImageError
from edge_ae.files import imageio

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "noisy"


def _colour(h: int, w: int) -> np.ndarray:
    """A real noisy colour image: three of the sample photos as B, G and R, resized."""
    names = ("Building.png", "Vinegar.png", "Chupa_Chups.png")
    return np.dstack([cv2.resize(cv2.imread(str(SAMPLES / n), cv2.IMREAD_GRAYSCALE), (w, h)) for n in names])


def _whole_image_path(monkeypatch) -> None:
    """Send every call down the whole-image path (the one taken before tiles went end to end), at
    the same tile size, for comparison."""
    monkeypatch.setattr(denoiser_module, "one_tile", lambda *a, **k: True)


CASES = {
    "blind colour map model": (dict(model="denoise-color-fast"), lambda: _colour(300, 262), {}),
    "given sigma": (dict(model="denoise-color-fast"), lambda: _colour(260, 300), dict(sigma=20.0)),
    "given map, strength": (dict(model="denoise-color-fast"), lambda: _colour(200, 250),
                            dict(sigma=np.linspace(2, 30, 200 * 250 * 3, dtype=np.float32).reshape(200, 250, 3),
                                 strength=1.5)),
    "16-bit": (dict(model="denoise-color-fast"), lambda: _colour(250, 211).astype(np.uint16) * 257, {}),
    "float": (dict(model="denoise-color-fast"), lambda: _colour(211, 250).astype(np.float32) / 255, {}),
    "gray image, colour model": (dict(model="denoise-color-fast"), lambda: _colour(230, 250)[:, :, 1], {}),
    "colour image, gray model": (dict(model="denoise-gray-fast"), lambda: _colour(230, 250), {}),
    "alpha": (dict(model="denoise-color-fast"), lambda: np.dstack([_colour(230, 250), _colour(230, 250)[:, :, 0]]), {}),
    "gate: a nearly clean image": (dict(model="denoise-color-fast"), lambda: cv2.GaussianBlur(_colour(230, 250), (9, 9), 3),
                                   {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tiles_end_to_end_give_the_whole_image_paths_pixels(case, monkeypatch):
    options, make, call = CASES[case]
    image = make()
    streamed = Denoiser(threads=1, tile=96, **options)
    got = streamed(image, **call)
    with monkeypatch.context() as m:
        _whole_image_path(m)
        whole = Denoiser(threads=1, tile=96, **options)
        want = whole(image, **call)
    assert got.shape == want.shape and got.dtype == want.dtype
    difference = np.abs(got.astype(np.float64) - want.astype(np.float64)).max()
    if got.dtype == np.float32:  # the map of a window differs from the whole image's by float rounding
        assert difference <= 1e-6
    else:  # ... which never moves a rounded pixel here
        assert difference == 0
    assert streamed.last_sigma == pytest.approx(whole.last_sigma, rel=1e-5)


def test_a_model_fed_one_level_gets_the_maps_mean(tiny_models, monkeypatch):
    # The tiny model takes a scalar sigma: it is fed the mean of the blind map, summed tile by tile.
    image = _colour(200, 230)
    got = Denoiser(tiny_models["color"], threads=1, tile=64)
    out = got(image)
    with monkeypatch.context() as m:
        _whole_image_path(m)
        whole = Denoiser(tiny_models["color"], threads=1, tile=64)
        want = whole(image)
    assert got.last_sigma == pytest.approx(whole.last_sigma, rel=1e-5)
    assert np.abs(out.astype(int) - want.astype(int)).max() <= 1  # the level differs by float rounding only


def test_a_large_image_holds_no_full_size_float_copy():
    # Before: the blind call held the noise map, its scaled and broadcast copies, the float image
    # and the model's input and output: about 20 times the image. Now: the output plus a few tiles.
    image = _colour(1200, 1000)
    denoise = Denoiser("denoise-color-fast", threads=1, tile=128)
    denoise(image[:64, :64])  # models loaded, sessions warm
    tracemalloc.start()
    try:
        denoise(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tile_allowance = 12 * 2**20  # a few 256x256 windows of float32 maps and activations' numpy copies
    assert peak < 1.5 * image.nbytes + tile_allowance, f"peak {peak / 2**20:.1f} MiB for a {image.nbytes / 2**20:.1f} MiB image"


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


@pytest.mark.parametrize("claims", [(1000, 800), (200_000, 200_000)])
def test_a_huge_sparse_file_is_refused_before_it_is_read(claims, tmp_path, monkeypatch, capsys):
    # A 3 GB sparse PNG: refused from its header and size; before, it was read whole into memory
    # (np.fromfile) and then failed with an OpenCV assertion or an out-of-memory kill.
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.write(_png_header(*claims))
        f.truncate(3 * 2**30)  # sparse: takes no disk space
    read: list[str] = []
    real_fromfile = np.fromfile
    monkeypatch.setattr(imageio.np, "fromfile", lambda *a, **k: read.append(str(a[0])) or real_fromfile(*a, **k))
    with pytest.raises(ImageError, match="huge.png: ") as err:
        imageio.read_image(path)
    assert not read, "the file was read before being refused"
    assert "over the limit" in str(err.value) or "more than a 1000x800 PNG can take" in str(err.value)
    # the command: one line, the run goes on to the next file
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), _colour(40, 48))
    assert main(["denoise", str(path), str(good), "-o", str(tmp_path / "out"), "-m", "denoise-color-fast"]) == 1
    out, err_text = capsys.readouterr()
    assert "1 denoised, 1 failed" in out
    assert err_text.count("huge.png") == 1 and "Traceback" not in err_text
    assert read == [str(good)]  # only the good file was read


def test_a_tiff_header_is_read_without_reading_the_file(tmp_path, monkeypatch):
    # A TIFF's page directories can be anywhere: they are read from a memory map, not a copy.
    path = tmp_path / "a.tif"
    image = _colour(60, 80)
    cv2.imwrite(str(path), image)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) + 2 * 2**30)  # 2 GB of sparse trailing bytes
    read: list[str] = []
    monkeypatch.setattr(imageio.np, "fromfile", lambda *a, **k: read.append(str(a[0])))
    with pytest.raises(ImageError, match="more than a 80x60 TIFF can take"):
        imageio.read_image(path)
    assert not read


def test_a_jpeg_frame_header_past_its_metadata_is_read_before_the_file(tmp_path, monkeypatch):
    # A phone's EXIF, ICC profile and previews can put the frame header past 64 KiB; it is still
    # found from the file's first bytes, so a 20000x20000 claim is refused before anything is read
    # or decoded (before: no header found, the file read and a 1.2 GB decode tried).
    encoded = bytearray(cv2.imencode(".jpg", _colour(48, 64))[1].tobytes())
    sof = encoded.index(b"\xff\xc0")
    encoded[sof + 5 : sof + 9] = struct.pack(">HH", 20000, 20000)
    padding = b"".join(b"\xff\xe2" + struct.pack(">H", 60002) + bytes(60000) for _ in range(3))
    path = tmp_path / "phone.jpg"
    path.write_bytes(bytes(encoded[:2]) + padding + bytes(encoded[2:]))

    def no_read(*args, **kwargs):
        raise AssertionError("the file was read before being refused")

    monkeypatch.setattr(imageio.np, "fromfile", no_read)
    with pytest.raises(ImageError, match=r"phone.jpg: JPEG header says 20000x20000 \(400 megapixels\), over the limit"):
        imageio.read_image(path)
