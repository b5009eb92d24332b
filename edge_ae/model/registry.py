"""The registry of shipped models, backed by ``exported/manifest.json``.

Models ship inside the wheel as the package ``edge_ae.exported`` (mapped from the repository's
``exported/`` folder by pyproject.toml); running from a source checkout uses ``exported/``
directly. ``EDGE_AE_MODELS`` points at another folder with the same layout.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from edge_ae.errors import ModelError

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ModelEntry:
    """One shipped model as the manifest describes it."""

    name: str
    file: str
    sha256: str
    kind: str
    channels: int
    description: str
    quality: dict[str, Any]
    speed: dict[str, Any]

    @property
    def path(self) -> Path:
        """Where the model file is (in ``models_dir()``)."""
        return models_dir() / self.file


def models_dir() -> Path:
    """The folder of shipped models: ``EDGE_AE_MODELS`` if set, else the installed ``exported/``."""
    override = os.environ.get("EDGE_AE_MODELS")
    if override:
        return Path(override)
    try:
        from importlib.resources import files

        installed = Path(str(files("edge_ae.exported")))
        if (installed / MANIFEST).is_file():
            return installed
    except (ModuleNotFoundError, TypeError):
        pass
    # A source checkout: edge_ae/model/registry.py -> <repo>/exported
    return Path(__file__).resolve().parents[2] / "exported"


@lru_cache(maxsize=4)
def _read_manifest(folder: Path) -> dict[str, ModelEntry]:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {
            m["name"]: ModelEntry(
                name=m["name"], file=m["file"], sha256=m["sha256"], kind=m["kind"],
                channels=m["channels"], description=m.get("description", ""),
                quality=m.get("quality", {}), speed=m.get("speed", {}),
            )
            for m in raw["models"]
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: unreadable model manifest ({exc})") from None


def list_models(kind: str | None = None) -> list[ModelEntry]:
    """The shipped models, optionally only those of one ``kind``."""
    entries = _read_manifest(models_dir()).values()
    return [e for e in entries if kind is None or e.kind == kind]


def get_entry(name: str) -> ModelEntry:
    """The manifest entry of a shipped model; a ModelError listing the names if there is none."""
    entries = _read_manifest(models_dir())
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none installed"
        raise ModelError(f"unknown model {name!r}: expected a shipped model name ({known}) or a path to an .onnx file")
    return entries[name]


def sha256_of(path: Path) -> str:
    """The file's SHA-256 (hex), read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(model: str | Path) -> tuple[Path, str]:
    """Return (path, label for messages). Names are checked against their sha256."""
    text = str(model)
    looks_like_path = isinstance(model, Path) or text.endswith(".onnx") or os.sep in text or "/" in text
    if looks_like_path:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return path, str(path)
    entry = get_entry(text)
    path = entry.path
    if not path.is_file():
        raise ModelError(f"shipped model {text!r} is missing its file {path}; reinstall edge-ae")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ModelError(
            f"shipped model {text!r} is corrupt: sha256 {actual[:12]}... does not match the manifest's "
            f"{entry.sha256[:12]}...; reinstall edge-ae"
        )
    return path, text
