"""Atomic file writes: write a temporary file next to the target, flush it to disk, then rename
it into place. A killed process or a full disk never leaves a half-written file, and an
existing file is only ever replaced whole."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Sequence
from pathlib import Path

# ".NAME.PID-HOST-XXXXXXXX.part": what ``_create_temporary`` makes (the writer's process id, a
# short hash of its host name, 8 random hex digits), so that a later run can tell whether the
# writer is gone. ".NAME.XXXXXXXX.part" is what earlier releases made. Nothing else matches.
TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?:(?P<pid>[0-9]+)-(?P<host>[0-9a-f]{6})-)?[0-9a-f]{8}\.part")
# A temporary whose writer cannot be asked (another host on a shared folder, an earlier release,
# a process id now used by another program) is removed once it has not changed for this long: a
# writer fills and renames its temporary within one file's write, never a whole day.
STALE_AFTER_S = 24 * 3600.0


def _host_id() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:6]


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, uniquely named file next to ``path``, opened for writing. Created with mode 0666 so
    that the kernel applies the umask, as for a plain ``open(path, "w")``: a private temporary
    file (``tempfile.mkstemp`` makes 0600) would leave every output readable by its owner only."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{_host_id()}-{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


def write_bytes_atomic(path: str | Path, data: bytes | memoryview | Sequence[bytes | memoryview], *,
                       durable: bool = True) -> None:
    """``data``: bytes, or a sequence of parts written one after another (never joined: an
    encoded image with its metadata is not copied into one more buffer). ``durable=False`` skips
    the flush to disk: the file is still replaced whole, and survives a crash of the process, but
    maybe not a power cut (for a report rewritten after every row)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            for part in (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data:
                f.write(part)
            f.flush()
            if path.exists():  # a replaced file keeps its permissions
                os.chmod(f.fileno(), stat.S_IMODE(path.stat().st_mode))
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def encode_text(text: str) -> bytes:
    """UTF-8, with a file name that is not valid UTF-8 (lone surrogates, as Python decodes it)
    written back byte for byte as the file system has it, never an error after the work is done."""
    return text.encode("utf-8", "surrogateescape")


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> None:
    """``write_bytes_atomic`` for UTF-8 text, written as given (no newline translation); file
    names that are not UTF-8 keep their bytes (``encode_text``)."""
    write_bytes_atomic(path, encode_text(text), durable=durable)


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, run by someone else
        return True
    return True


def writer_gone(path: Path, *, now: float | None = None) -> bool:
    """Whether the temporary file ``path`` (this module's pattern) has no writer left: its
    process, on this host, has ended; or, where that cannot be asked, it has not changed for
    ``STALE_AFTER_S``. A concurrent run's file in flight is never taken for a leftover."""
    match = TEMPORARY.fullmatch(path.name)
    if match is None:
        return False
    # On Windows os.kill(pid, 0) would send Ctrl-C: only the age is used there.
    if match["pid"] is not None and match["host"] == _host_id() and os.name == "posix":
        if not _process_running(int(match["pid"])):
            return True
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age > STALE_AFTER_S


def remove_stale_temporaries(folder: str | Path, *, names: tuple[str, ...] | None = None) -> list[Path]:
    """Delete temporary files a killed run left (this module's pattern only, and only those whose
    writer is gone: ``writer_gone``) in ``folder`` and its sub-folders, or, with ``names``, only
    those of these file names directly in ``folder``. Call it at the start of a run that writes
    there; returns what went."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.glob(".*.part") if names is not None else folder.rglob(".*.part")
    removed = []
    for path in candidates:
        match = TEMPORARY.fullmatch(path.name)
        if match is None or (names is not None and match["name"] not in names) or not path.is_file():
            continue
        if not writer_gone(path):
            continue  # another run is writing it now
        try:
            path.unlink()
        except OSError:
            continue  # not ours to fight over; the run's own writes use fresh names
        removed.append(path)
    return sorted(removed)
