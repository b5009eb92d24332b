"""The README's commands and code run as written (from a fresh checkout's root, after install).

Python blocks are executed; `edge-ae ...` lines are run as `python -m edge_ae ...`. Commands
that need hardware (a live camera) or training data/torch set-up are listed and skipped here:
they are covered by their own tests."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(sh|python)\n(.*?)```", README, flags=re.S)
NEEDS_HARDWARE = ("--source 0", "--source picamera2")
# The exit status a README command must end with, when it is not 0: a command that is meant to
# report failed or flagged files (status 1) or a refused input (status 2) is listed here, so a
# command that breaks on every image is never taken for one that reports a result.
EXIT_STATUS: dict[str, int] = {}


def _sh_commands() -> list[str]:
    commands = []
    for kind, body in BLOCKS:
        if kind != "sh":
            continue
        for line in body.splitlines():
            line = re.split(r"\s+#\s", line)[0].strip()
            if line.startswith("edge-ae ") and not any(h in line for h in NEEDS_HARDWARE):
                commands.append(line)
    return commands


@pytest.fixture
def checkout(tmp_path):
    """A working folder that looks like the repository root for relative paths."""
    for name in ("samples", "exported"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "out").mkdir()
    return tmp_path


def test_readme_starts_with_the_two_commands():
    first = BLOCKS[0][1].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first] == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_is_a_five_minute_read_with_its_pictures_near_the_top():
    """Issue 55: under 10 KB, the before/after picture embedded (shown on the repository page, not
    only linked) before the models table; issue 56: the camera page's picture embedded too."""
    assert len(README.encode()) < 10_000, f"README.md is {len(README.encode())} bytes"
    assert README.index("![") < README.index("## Models")
    assert "](docs/img/rni6_before_after.png)" in README and "](docs/img/camera_serve.png)" in README


@pytest.mark.slow
@pytest.mark.parametrize("command", _sh_commands())
def test_readme_cli_command_runs(command, checkout):
    args = shlex.split(command)[1:]
    result = subprocess.run([sys.executable, "-m", "edge_ae", *args], cwd=checkout, capture_output=True, text=True,
                            timeout=300)
    expected = EXIT_STATUS.get(command, 0)
    assert result.returncode == expected, f"exit status {result.returncode}, README promises {expected}: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr


def test_declared_exit_statuses_are_of_readme_commands():
    """An entry left behind after its command left the README would hide nothing, but mislead."""
    assert set(EXIT_STATUS) <= set(_sh_commands())


@pytest.mark.slow
@pytest.mark.parametrize("index", [i for i, (kind, _) in enumerate(BLOCKS) if kind == "python"])
def test_readme_python_runs(index, checkout, monkeypatch):
    monkeypatch.chdir(checkout)
    exec(compile(BLOCKS[index][1], f"README block {index}", "exec"), {})


def test_rendered_figures_are_what_the_benchmark_script_renders_now():
    """The models table in README (and any rendered block under docs/) and BENCHMARKS.md hold what
    tools/benchmarks_md.py renders from the benchmark files and the manifest now: no figure edited by hand."""
    from tools import benchmarks_md

    files = benchmarks_md.rendered_files()
    assert ROOT / "README.md" in files
    for path in files:
        text = path.read_text()
        assert benchmarks_md.render_blocks(text) == text, f"{path.name} is stale: run python -m tools.benchmarks_md"
    assert (ROOT / "docs" / "BENCHMARKS.md").read_text() == benchmarks_md.build(), \
        "docs/BENCHMARKS.md is stale: run python -m tools.benchmarks_md"


def test_models_table_shows_what_it_does_not_know_as_a_dash(tmp_path):
    """Kinds and fields added after the script was written get a row with '-', never a guess or a crash."""
    from tools import benchmarks_md

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema_version": 1, "models": [
        {"name": "noise-level-estimator", "kind": "noise_estimator", "description": "Estimates sigma: per pixel"},
        {"name": "tile-features", "kind": "features", "quality": {"recall_at_1": 0.5}, "speed": {"odd_ms": 3}},
        {"name": "anomaly-new", "kind": "anomaly", "quality": {"image_auroc": 0.9012}},
        {"name": "denoise-new", "kind": "denoiser", "quality": {"Set12/sigma15": {"psnr": 31.0}}, "speed": None},
        {"name": "mnist-x-encoder", "kind": "encoder"},
    ]}))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in benchmarks_md.models_table(manifest=manifest).splitlines() if line.startswith("| `")}
    assert list(rows) == ["`denoise-new`", "`anomaly-new`", "`tile-features`", "`noise-level-estimator`"]
    assert rows["`noise-level-estimator`"] == ["Estimates sigma", "-", "-", "-"]
    assert rows["`tile-features`"][1:] == ["-", "-", "-"]
    assert rows["`anomaly-new`"][1:3] == ["image AUROC 0.901", "-"]
    assert rows["`denoise-new`"][1:3] == ["-", "-"]  # no sigma 25 figure: nothing picked in its place


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_relative_links_in_readme_and_docs_resolve():
    """Pages move and sections are renamed (the experiments left the user pages): every relative link
    and #anchor in README.md and docs/ must still point at something."""
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken
