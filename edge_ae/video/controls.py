"""Live controls: changes asked from another thread (a web page, a GUI) while a stream runs,
applied by the frame pipeline between two frames, never in the middle of one.

The asking thread calls ``request(...)``; the pipeline calls ``take()`` at the start of each frame
and applies what it gets. The loop never waits on the asker: a request only stores a value under
a lock held for a few instructions."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from edge_ae.denoise.options import check_strength


@dataclass(frozen=True)
class ControlChange:
    """What to change on the next frame; None leaves a setting as it is."""

    strength: float | None = None
    denoise: bool | None = None  # False: frames pass the denoiser and the temporal filter untouched


class LiveControls:
    """The pending change, merged: two requests between frames keep the later value of each setting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = ControlChange()
        self.requests = 0  # how many were accepted, for reports and tests

    def request(self, *, strength: float | None = None, denoise: bool | None = None) -> ControlChange:
        """Ask for a change from any thread; raises ``ValueError`` (saying what was expected and
        what was received) before storing anything if a value is out of range."""
        if strength is not None:
            strength = check_strength(strength)
        if denoise is not None and not isinstance(denoise, bool):
            raise ValueError(f"denoise must be true or false, got {denoise!r}")
        with self._lock:
            self._pending = ControlChange(
                strength=strength if strength is not None else self._pending.strength,
                denoise=denoise if denoise is not None else self._pending.denoise,
            )
            self.requests += 1
            return self._pending

    def take(self) -> ControlChange | None:
        """The change asked since the last call, or None (the common case, without locking)."""
        if self._pending == ControlChange():
            return None
        with self._lock:
            change, self._pending = self._pending, ControlChange()
        return change
