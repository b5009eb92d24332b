"""Names of the pictures derived from an input (``--compare``, ``--heatmaps``): readable, and
unique for every input name.

    Marilyn.png -> Marilyn-compare.png       a.jpg -> a-compare-jpg.png

A PNG input keeps its stem; any other keeps its extension as the last word before ``.png``, so
``a.png`` and ``a.jpg`` in one folder never share a name (an extension has no ``-``, so the name
says which input it came from).
"""

from __future__ import annotations

from pathlib import Path


def derived_name(rel: Path, tag: str) -> Path:
    """``rel`` (a path relative to its input root) -> the derived PNG's relative path."""
    stem, ext = rel.stem, rel.suffix[1:]
    if not rel.suffix or ext == "png":
        return rel.with_name(f"{stem}-{tag}.png")
    return rel.with_name(f"{stem}-{tag}-{ext}.png")
