"""The repository's folders, defined once: where models are exported and where the shared data
sets are (``../shared/data`` beside the checkout)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORTED = ROOT / "exported"
RUNS = ROOT / "runs"
SHARED = ROOT.parent / "shared" / "data"
