"""DenoiseOptions: the denoise options the batch job, the Ray engine and the live pipeline share,
checked once when made; the strength range is defined and checked in one place."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ae.denoise.options import STRENGTHS, DenoiseOptions, check_strength
from edge_ae.jobs.denoise_job import DenoiseJob
from edge_ae.video.controls import LiveControls
from edge_ae.video.pipeline import FramePipeline


@pytest.mark.parametrize(("field", "value", "message"), [
    ("strength", 5, "strength must be a number from 0.25 to 4, got 5"),
    ("strength", True, "strength must be a number"),
    ("strength", float("nan"), "strength must be a number"),
    ("sigma", -1, "sigma must be a finite number >= 0"),
    ("tile", 0, "tile must be a whole number"),
    ("ensemble", 3, "ensemble must be one of"),
    ("precision", "fp16", "precision must be one of"),
])
def test_options_are_checked_when_made(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        DenoiseOptions(**{field: value})


def test_one_strength_range_everywhere(tiny_models):
    assert STRENGTHS == (0.25, 4.0) and check_strength(np.float32(2)) == 2.0
    for make in (lambda: LiveControls().request(strength=4.5), lambda: FramePipeline(options=DenoiseOptions(strength=0.1))):
        with pytest.raises(ValueError, match="strength must be a number from 0.25 to 4"):
            make()
    from edge_ae import Denoiser

    with pytest.raises(ValueError, match="strength must be a number from 0.25 to 4"):
        Denoiser(tiny_models["gray"], threads=1)(np.zeros((8, 8), np.float32), strength=9)


def test_the_batch_job_denoises_as_its_options_say(tiny_models, tmp_path, rng):
    from edge_ae import Denoiser
    from edge_ae.files import batch
    from edge_ae.files.imageio import read_image, write_image

    src = tmp_path / "a.png"
    image = (rng.random((24, 32)) * 255).astype(np.uint8)
    write_image(src, image)
    options = DenoiseOptions(sigma=12.0, strength=2.0)
    job = DenoiseJob(model=str(tiny_models["gray"]), options=options, out_dir=tmp_path / "out")()
    level = job(batch.Task(src, tmp_path / "out" / "a.png"))
    expected = Denoiser(tiny_models["gray"], threads=1)(image, sigma=12.0, strength=2.0)
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "a.png"), expected)
    assert level == pytest.approx(24.0)
    with pytest.raises(TypeError):
        DenoiseJob(str(tiny_models["gray"]), options, 1, tmp_path)  # keyword-only: no positional mix-ups
