"""Soak test of the live path (issue 43): thousands of frames of a generated video through
``edge-ae camera`` with every stage on (denoiser, temporal filter, anomaly model, recording),
and resident memory at the end within 5 % of what it was after warm-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_bad_inputs import spot_model
from test_stream import blur_denoiser, write_video

from conftest import ROOT

FRAMES = 3000
WARM_UP = 300

# Run in a child process: ``edge-ae camera`` as a user runs it, with a probe on the stream's
# per-frame step that samples resident memory (/proc/self/statm) after warm-up and at the end.
PROBE = """
import json, os, sys
import edge_ae.video.stream as stream
from edge_ae.cli.main import main

page = os.sysconf("SC_PAGE_SIZE")
samples = {}
real = stream.Stream._process

def probe(self, frame):
    out = real(self, frame)
    if self.stats.processed in (%(warm)d, %(frames)d):
        with open("/proc/self/statm") as f:
            samples[self.stats.processed] = int(f.read().split()[1]) * page
    return out

stream.Stream._process = probe
rc = main(sys.argv[1:])
print("SAMPLES " + json.dumps(samples))
sys.exit(rc)
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident memory from /proc (Linux)")
def test_camera_soak_keeps_memory_flat(tmp_path):
    video = write_video(tmp_path / "soak.avi", FRAMES, fps=30.0)
    args = ["camera", "--source", str(video), "--denoise", str(blur_denoiser(tmp_path / "blur.onnx")), "--temporal",
            "--sigma", "10", "--anomaly", str(spot_model(tmp_path / "spot.onnx")), "--record", str(tmp_path / "out.avi"),
            "--threads", "1"]
    proc = subprocess.run([sys.executable, "-c", PROBE % {"warm": WARM_UP, "frames": FRAMES}, *args],
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{FRAMES} frames processed" in proc.stdout and "stopped: end of source" in proc.stdout
    samples = {int(k): v for k, v in json.loads(proc.stdout.split("SAMPLES ")[1]).items()}
    warm, end = samples[WARM_UP], samples[FRAMES]
    print(f"resident memory after {WARM_UP} frames {warm / 2**20:.1f} MB, after {FRAMES} {end / 2**20:.1f} MB")
    assert end <= warm * 1.05, f"resident memory grew from {warm / 2**20:.1f} MB to {end / 2**20:.1f} MB"
