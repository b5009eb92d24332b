"""Saving a command's single result file (a fitted model, latents): the work is done by then, so
a write that fails (full disk, a folder gone read-only) must say so on one line naming the path,
leave nothing half-written, and never end in a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge_ae.errors import WriteError


def saved(path: Path, write: Callable[[], object]) -> None:
    """Run ``write`` (an atomic write of ``path``); an OSError becomes a ``WriteError`` naming it."""
    try:
        write()
    except OSError as exc:
        # The atomic write removed its temporary file: nothing half-written is left.
        raise WriteError(f"cannot write {path}: {exc.strerror or exc} (nothing was saved)") from None
