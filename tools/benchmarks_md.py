"""Assemble docs/BENCHMARKS.md from the sections the benchmark scripts write in docs/benchmarks/.

    python tools/benchmarks_md.py

Each ``tools/bench_*.py`` writes its own generated section (numbers plus the command that made
them) and calls this, so BENCHMARKS.md never holds a hand-typed figure.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ROOT / "docs" / "benchmarks"
ORDER = ["denoise.md", "temporal.md", "anomaly.md", "anomaly-fast.md", "speed.md"]

INTRO = """# Benchmarks

Every figure below was written by a script in `tools/`; each section names the command that
produced it, on which machine, and when. Rerun the command to reproduce or update it; this page
is then rebuilt by `python tools/benchmarks_md.py`. Where a target is missed, the section says so.
"""


def build() -> str:
    files = sorted(SECTIONS.glob("*.md"), key=lambda p: (ORDER.index(p.name) if p.name in ORDER else 99, p.name))
    return INTRO + "".join("\n" + p.read_text().strip() + "\n" for p in files)


def main() -> None:
    (ROOT / "docs" / "BENCHMARKS.md").write_text(build())


if __name__ == "__main__":
    main()
