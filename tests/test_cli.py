"""The batch CLI end to end on temporary folders that mix good and broken files."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge_ae.cli.main import main


@pytest.fixture
def photo_tree(tmp_path, rng):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "a.png"), (rng.random((40, 56, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(src / "b.jpg"), (rng.random((33, 47, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(src / "sub" / "deep16.png"), (rng.random((30, 20)) * 65535).astype(np.uint16))
    cv2.imwrite(str(src / "sub" / "c.tif"), (rng.random((24, 24, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(src / "d.bmp"), (rng.random((24, 24)) * 255).astype(np.uint8))
    cv2.imwrite(str(src / "e.webp"), (rng.random((24, 24, 3)) * 255).astype(np.uint8))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (src / "empty.jpg").write_bytes(b"")
    (src / "notes.txt").write_text("not an image, not even looked at")
    return src


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_mixed_folder(tiny_models, photo_tree, tmp_path, capsys):
    out = tmp_path / "out"
    before = {p: p.read_bytes() for p in photo_tree.rglob("*") if p.is_file()}
    rc = main(["denoise", str(photo_tree), "-o", str(out), "-r", "-m", str(tiny_models["color"]),
               "--compare", str(tmp_path / "cmp")])
    captured = capsys.readouterr()
    assert rc == 1  # something failed
    assert "6 denoised, 2 failed" in captured.out
    assert "broken.png: not a readable image" in captured.err
    assert "empty.jpg: empty file" in captured.err
    assert "Traceback" not in captured.err
    assert _files(out) == ["a.png", "b.jpg", "d.bmp", "e.webp", "sub/c.tif", "sub/deep16.png"]
    assert len(_files(tmp_path / "cmp")) == 6
    assert cv2.imread(str(out / "sub" / "deep16.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED).shape == (40, 56, 3)
    # originals untouched
    assert before == {p: p.read_bytes() for p in photo_tree.rglob("*") if p.is_file()}


def test_resume_skips_existing_and_overwrite_replaces(tiny_models, photo_tree, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["denoise", str(photo_tree / "a.png"), str(photo_tree / "d.bmp"), "-o", str(out), "-m", str(tiny_models["color"])]
    assert main(args) == 0
    (out / "a.png").unlink()  # as if the first run was killed after d.bmp
    stamp = (out / "d.bmp").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert "1 denoised, 0 failed, 1 skipped" in capsys.readouterr().out
    assert (out / "d.bmp").stat().st_mtime_ns == stamp
    assert main([*args, "--overwrite"]) == 0
    assert "2 denoised" in capsys.readouterr().out


def test_glob_and_jobs(tiny_models, photo_tree, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["denoise", str(photo_tree / "*.png"), "-o", str(out), "-m", str(tiny_models["gray"]), "--jobs", "2"])
    assert rc == 1  # broken.png matches the glob too
    assert _files(out) == ["a.png"]


def test_refuses_output_inside_input(tiny_models, photo_tree, capsys):
    rc = main(["denoise", str(photo_tree), "-o", str(photo_tree / "clean"), "-m", str(tiny_models["gray"])])
    assert rc == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert not (photo_tree / "clean").exists()


def test_refuses_an_output_path_that_is_a_file(tiny_models, photo_tree, tmp_path, capsys):
    taken = tmp_path / "out.png"
    taken.write_bytes(b"keep me")
    rc = main(["denoise", str(photo_tree / "a.png"), "-o", str(taken), "-m", str(tiny_models["gray"])])
    assert rc == 2
    assert "is an existing file: expected a folder" in capsys.readouterr().err
    assert taken.read_bytes() == b"keep me"


def test_refuses_to_overwrite_an_original(tiny_models, photo_tree, capsys):
    before = (photo_tree / "sub" / "c.tif").read_bytes()
    rc = main(["denoise", str(photo_tree / "sub" / "c.tif"), "-o", str(photo_tree / "sub"), "--overwrite",
               "-m", str(tiny_models["gray"])])
    assert rc == 2  # refused before any work: the output folder is the input file's folder
    assert "is the folder of the input" in capsys.readouterr().err
    assert (photo_tree / "sub" / "c.tif").read_bytes() == before


def test_missing_input_and_bad_model(tiny_models, tmp_path, capsys):
    assert main(["denoise", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o"), "-m", str(tiny_models["gray"])]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"nope")
    assert main(["denoise", str(tmp_path), "-o", str(tmp_path / "o"), "-m", str(broken)]) == 2
    assert "not a usable ONNX model" in capsys.readouterr().err


def test_disk_full_leaves_no_partial_file(tiny_models, photo_tree, tmp_path, monkeypatch, capsys):
    import edge_ae.files.atomic as atomic

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    out = tmp_path / "out"
    rc = main(["denoise", str(photo_tree / "a.png"), "-o", str(out), "-m", str(tiny_models["color"])])
    assert rc == 1
    assert "No space left on device" in capsys.readouterr().err
    assert _files(out) == []  # neither the image nor its temporary file


def test_outputs_get_the_permissions_of_a_plain_write(tiny_models, photo_tree, tmp_path):
    # The temporary file of an atomic write is private (0600); the output must not stay so, or a
    # web server or another user could not read the cleaned photos. Existing files keep theirs.
    mask = os.umask(0o027)
    try:
        out = tmp_path / "out"
        assert main(["denoise", str(photo_tree / "a.png"), str(photo_tree / "d.bmp"), "-o", str(out),
                     "-m", str(tiny_models["color"])]) == 0
        assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == {"a.png": 0o640, "d.bmp": 0o640}
        (out / "a.png").chmod(0o604)
        assert main(["denoise", str(photo_tree / "a.png"), "-o", str(out), "-m", str(tiny_models["color"]),
                     "--overwrite"]) == 0
        assert (out / "a.png").stat().st_mode & 0o777 == 0o604
    finally:
        os.umask(mask)


def test_models_and_info_commands(tiny_models, capsys):
    assert main(["models"]) == 0
    assert main(["info", "-m", str(tiny_models["gray"])]) == 0
    out = capsys.readouterr().out
    assert "kind            denoiser" in out and "receptive field" in out


def test_python_dash_m_entry_point(tiny_models):
    result = subprocess.run([sys.executable, "-m", "edge_ae", "info", "-m", str(tiny_models["gray"])],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "tiny-gray" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "edge_ae", "info", "-m", "no-such-model"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("edge-ae: error: unknown model")
