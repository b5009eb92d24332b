"""Catch what C libraries print on file descriptor 2 while an image is decoded.

libpng writes "libpng error: IDAT: incorrect header check" straight to the process's stderr,
next to edge-ae's own one-line report of the same file. Python's ``sys.stderr`` cannot stop
it (the C code writes to descriptor 2 itself), so descriptor 2 is pointed at a temporary file
for the length of one decode and the caller decides what to pass on afterwards. Anything other
threads printed meanwhile is passed on too, so nothing else is lost.
"""

from __future__ import annotations

import os
import sys
import tempfile
from types import TracebackType
from typing import IO


class NativeStderr:
    """``with NativeStderr() as caught: decode(...)`` then ``caught.pass_on(drop=(b"libpng ",))``."""

    def __init__(self) -> None:
        self.data = b""
        self._saved: int | None = None
        self._tmp: IO[bytes] | None = None

    def __enter__(self) -> NativeStderr:
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no descriptor 2 (a daemon): nothing to catch
            self._saved = None
            return self
        tmp = tempfile.TemporaryFile()
        self._tmp = tmp
        os.dup2(tmp.fileno(), 2)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._saved is None or self._tmp is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._saved = None
        self._tmp.seek(0)
        self.data = self._tmp.read()
        self._tmp.close()
        self._tmp = None

    def pass_on(self, *, drop: tuple[bytes, ...] = ()) -> None:
        """Write what was caught to the real descriptor 2, less the lines starting with ``drop``."""
        kept = b"".join(line for line in self.data.splitlines(keepends=True) if not line.startswith(drop))
        if kept:
            try:
                os.write(2, kept)
            except OSError:
                pass
