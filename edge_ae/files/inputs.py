"""What the batch commands read: files, folders and quoted globs expanded once, before anything
is written, into (source, path relative to its output folder). No printing here; what could not
be read is returned for the CLI to report.

Folders are walked with ``os.walk`` rather than ``Path.glob`` so that a sub-folder that cannot
be read is reported instead of silently skipped, and a ``**`` glob is expanded by the same walk,
each real folder once, because ``glob.glob`` follows a symlink loop (``a/self -> .``) for ever.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass
from pathlib import Path

from edge_ae.files.imageio import READ_SUFFIXES

WILDCARDS = "*?["


@dataclass(frozen=True)
class MissingInput:
    """An input that named nothing to read; the input is kept as given, so reports never have to
    recover it from the message (a path may contain ':')."""

    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


def is_glob(item: str) -> bool:
    """A pattern to expand, unless a file of that very name exists."""
    return any(ch in item for ch in WILDCARDS) and not Path(item).exists()


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in READ_SUFFIXES


def glob_root(item: str) -> tuple[Path, list[str]]:
    """The fixed folder a glob starts from and its wildcard parts: "in/*.png" -> (in, ["*.png"]),
    "in/**/x.png" -> (in, ["**", "x.png"])."""
    parts = Path(item).parts
    for i, part in enumerate(parts):
        if any(ch in part for ch in WILDCARDS):
            return (Path(*parts[:i]) if i else Path(".")), list(parts[i:])
    return Path(item), []


def reaches_into_subfolders(item: str) -> bool:
    """Whether a glob can match a file below a folder it also lists ("in/*/x.png", "in/**/*.png"):
    then an output folder under its fixed part could be read back by the same glob later."""
    return len(glob_root(item)[1]) > 1


def _unreadable(error: OSError) -> MissingInput:
    return MissingInput(str(error.filename or "?"), f"cannot read this folder ({error.strerror or error}); "
                        "the images in it were not processed")


def _walk(root: Path, *, follow_links: bool, problems: list[MissingInput]) -> list[tuple[Path, Path]]:
    """Every file below ``root`` with its path relative to it; each real folder visited once (a
    symlink loop ends), and a folder that cannot be listed reported in ``problems``."""
    found: list[tuple[Path, Path]] = []
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, onerror=lambda e: problems.append(_unreadable(e)), followlinks=follow_links):
        try:
            st = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        base = Path(folder)
        found += [(base / name, (base / name).relative_to(root)) for name in files]
    return found


def _part_matches(name: str, pattern: str) -> bool:
    # glob's rule: a wildcard never matches a leading dot unless the pattern has one.
    return fnmatch.fnmatch(name, pattern) and (not name.startswith(".") or pattern.startswith("."))


def _matches(parts: tuple[str, ...], pattern: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":  # zero or more (non-hidden) folders
        rest = pattern[1:]
        for i in range(len(parts) + 1):
            if _matches(parts[i:], rest):
                return True
            if i < len(parts) and parts[i].startswith("."):
                return False
        return False
    return bool(parts) and _part_matches(parts[0], pattern[0]) and _matches(parts[1:], pattern[1:])


def expand_glob(item: str, *, recursive: bool, problems: list[MissingInput]) -> list[Path]:
    """The files a quoted glob names, sorted. ``**`` spans folders only with ``recursive`` (as in
    ``glob.glob``); then the walk follows symlinks but visits each real folder once."""
    root, pattern = glob_root(item)
    if not (recursive and "**" in pattern):
        return sorted(Path(m) for m in glob.glob(item) if Path(m).is_file())
    if not root.is_dir():
        return []
    return sorted(src for src, rel in _walk(root, follow_links=True, problems=problems)
                  if _matches(rel.parts, pattern) and src.is_file())


def find_inputs(inputs: list[str], *, recursive: bool) -> tuple[list[tuple[Path, Path]], list[MissingInput]]:
    """Expand files, folders and globs into (source, path relative to its output folder). A glob's
    files keep their names only (flattened); a folder's keep their path below it."""
    found: list[tuple[Path, Path]] = []
    missing: list[MissingInput] = []
    for item in inputs:
        if is_glob(item):
            matches = expand_glob(item, recursive=recursive, problems=missing)
            if not matches:
                missing.append(MissingInput(item, "no file matches"))
            found += [(m, Path(m.name)) for m in matches]
            continue
        path = Path(item)
        if path.is_dir():
            if recursive:
                files = _walk(path, follow_links=False, problems=missing)
            else:
                try:
                    files = [(p, p.relative_to(path)) for p in path.iterdir()]
                except OSError as exc:
                    missing.append(_unreadable(exc))
                    files = []
            found += sorted((src, rel) for src, rel in files
                            if _is_image(src) and not src.name.startswith(".") and src.is_file())
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            missing.append(MissingInput(item, "no such file or folder"))
    return found, missing
