"""A dependency-free progress line with rate and ETA, drawn on stderr only when it is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, *, label: str = "", stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.count = 0
        self.start = time.monotonic()
        self.live = self.stream.isatty()
        self._last = 0.0

    def advance(self) -> None:
        self.count += 1
        now = time.monotonic()
        if self.live and (now - self._last > 0.1 or self.count == self.total):
            self._last = now
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()

    def note(self, message: str) -> None:
        """Print a message line without breaking the bar."""
        if self.live:
            self.stream.write("\r\x1b[K")
        self.stream.write(message + "\n")
        if self.live and self.count:
            self.stream.write(self.line())
        self.stream.flush()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.count / elapsed
        left = (self.total - self.count) / rate if rate > 0 else 0.0
        width = 24
        filled = int(width * self.count / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        return (f"{self.label}[{bar}] {self.count}/{self.total} {rate:.2f}/s "
                f"ETA {int(left // 60)}:{int(left % 60):02d}")

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
