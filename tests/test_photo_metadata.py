"""Photos keep their orientation and metadata (issue 51, item 8): a phone's portrait JPEG (EXIF
orientation 6) comes out upright, with its EXIF (camera, date, exposure) and ICC profile, and so
do PNG, TIFF and WebP photos; 16-bit outputs stay exact.

The photos are made here with Pillow (a dependency of the dev tools, not of the runtime).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_ae.cli.main import main
from edge_ae.files.imageio import read_photo, write_image

Image = pytest.importorskip("PIL.Image", reason="Pillow makes the test photos")
ImageCms = pytest.importorskip("PIL.ImageCms", reason="Pillow makes the test photos' ICC profile")

EXPOSURE, MAKE, MODEL, TAKEN = 33434, 271, 272, 36867
# A real profile (libpng checks one it decodes, and would print a warning for a fake).
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _scene(h: int = 96, w: int = 128) -> np.ndarray:
    """RGB, smooth and lopsided (a bright top-left corner), so that every turn and flip differs."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.dstack([255 - x * 1.5 - y, 40 + y * 1.5, 60 + x]).clip(0, 255)
    noise = np.random.default_rng(3).normal(0, 4, rgb.shape)
    return (rgb + noise).clip(0, 255).astype(np.uint8)


def _photo(path: Path, *, orientation: int = 6, fmt: str | None = None) -> Path:
    exif = Image.Exif()
    exif[MAKE], exif[MODEL], exif[306], exif[274] = "EdgeCam", "Phone 7", "2026:12:06 10:11:12", orientation
    exif.get_ifd(0x8769).update({EXPOSURE: (1, 125), TAKEN: "2026:12:06 10:11:12", 37386: (43, 10)})
    Image.fromarray(_scene()).save(path, format=fmt, exif=exif.tobytes(), icc_profile=ICC,
                                   **({"quality": 95} if path.suffix in (".jpg", ".webp") else {}))
    return path


def _check_metadata(path: Path) -> None:
    with Image.open(path) as out:
        exif = out.getexif()
        assert exif.get(MAKE) == "EdgeCam" and exif.get(MODEL) == "Phone 7", dict(exif)
        assert exif.get(274, 1) == 1  # the pixels are upright now
        details = exif.get_ifd(0x8769)
        exposure = details[EXPOSURE]
        exposure = exposure[0] / exposure[1] if isinstance(exposure, tuple) else float(exposure)
        assert exposure == pytest.approx(1 / 125) and details[TAKEN] == "2026:12:06 10:11:12"
        assert out.info.get("icc_profile") == ICC


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_denoise_keeps_orientation_exif_and_icc(suffix, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    src = _photo(tmp_path / "in" / f"IMG_0001{suffix}")
    assert main(["denoise", str(src), "-o", str(tmp_path / "out"), "-m", "denoise-color-fast"]) == 0
    capsys.readouterr()
    out = tmp_path / "out" / src.name
    _check_metadata(out)
    pixels = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    stored = cv2.cvtColor(_scene(), cv2.COLOR_RGB2BGR)
    assert pixels.shape[:2] == (128, 96)  # portrait: the stored landscape pixels turned
    upright = np.rot90(stored, k=-1)  # orientation 6: turn a quarter clockwise to display
    wrong_way = np.rot90(stored, k=1)
    assert np.abs(pixels.astype(int) - upright).mean() < 8 < np.abs(pixels.astype(int) - wrong_way).mean()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_turned_as_opencv_displays_it(orientation, tmp_path):
    path = _photo(tmp_path / f"o{orientation}.jpg", orientation=orientation)
    image, _, metadata = read_photo(path)
    assert np.array_equal(image, cv2.imread(str(path), cv2.IMREAD_COLOR))  # OpenCV applies the tag in this mode
    out = tmp_path / f"out{orientation}.jpg"
    write_image(out, image, metadata=metadata)
    _check_metadata(out)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_outputs_stay_exact_with_metadata(suffix, tmp_path):
    _, _, metadata = read_photo(_photo(tmp_path / "src.jpg", orientation=1))
    deep = (np.random.default_rng(5).random((40, 52, 3)) * 65535).astype(np.uint16)
    out = tmp_path / f"deep{suffix}"
    write_image(out, deep, metadata=metadata)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back, deep)
    _check_metadata(out)


def test_a_photo_without_metadata_is_written_as_before(tmp_path):
    path = tmp_path / "plain.png"
    cv2.imwrite(str(path), _scene())
    image, _, metadata = read_photo(path)
    assert metadata.exif is None and metadata.icc is None
    write_image(tmp_path / "out.png", image, metadata=metadata)
    assert (tmp_path / "out.png").read_bytes() == cv2.imencode(".png", image)[1].tobytes()
