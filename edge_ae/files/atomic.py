"""Atomic file writes: write a temporary file next to the target, flush it to disk, then rename
it into place. A killed process or a full disk never leaves a half-written file, and an
existing file is only ever replaced whole."""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

# ".NAME.8-hex-digits.part": what ``_create_temporary`` makes, and nothing else.
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.part")


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, uniquely named file next to ``path``, opened for writing. Created with mode 0666 so
    that the kernel applies the umask, as for a plain ``open(path, "w")``: a private temporary
    file (``tempfile.mkstemp`` makes 0600) would leave every output readable by its owner only."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


def write_bytes_atomic(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    """``durable=False`` skips the flush to disk: the file is still replaced whole, and survives a
    crash of the process, but maybe not a power cut (for a report rewritten after every row)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if path.exists():  # a replaced file keeps its permissions
                os.chmod(f.fileno(), stat.S_IMODE(path.stat().st_mode))
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> None:
    """``write_bytes_atomic`` for UTF-8 text, written as given (no newline translation)."""
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def remove_stale_temporaries(folder: str | Path, *, names: tuple[str, ...] | None = None) -> list[Path]:
    """Delete temporary files a killed run left (``.NAME.XXXXXXXX.part``, this module's pattern
    only) in ``folder`` and its sub-folders, or, with ``names``, only those of these file names
    directly in ``folder``. Call it at the start of a run that writes there; returns what went."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.glob(".*.part") if names is not None else folder.rglob(".*.part")
    removed = []
    for path in candidates:
        match = TEMPORARY.fullmatch(path.name)
        if match is None or (names is not None and match["name"] not in names) or not path.is_file():
            continue
        try:
            path.unlink()
        except OSError:
            continue  # not ours to fight over; the run's own writes use fresh names
        removed.append(path)
    return sorted(removed)
