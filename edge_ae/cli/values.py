"""Option values checked where they are parsed: the argparse ``type=`` functions every command
shares (options.py defines the options themselves). A bad value (``--threads 0``, ``--sigma
nan``, ``--max-pixels inf``) is refused with one line and exit status 2 before any model loads or
any file is read, never per file or after the work with a traceback.

Each function takes the option's text and returns its value or raises
``argparse.ArgumentTypeError`` saying what was expected and what was given.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

# A frame larger than this (``--size`` of bench and camera) is refused: 100 megapixels, the
# image files' default limit; a 100000x100000 frame would ask for 150 GB before failing.
MAX_FRAME_PIXELS = 100_000_000


class Parser(argparse.ArgumentParser):
    """argparse with the house's usage errors: one line (what was wrong, where to read more) and
    exit status 2, instead of the usage block before the message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except (ValueError, OverflowError):
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _kept(value: float, text: str, ok: bool, rule: str) -> float:
    """``value`` when ``ok``, else the one-line refusal ``rule, got TEXT``."""
    if not ok:
        raise argparse.ArgumentTypeError(f"{rule}, got {text}")
    return value


def int_at_least(low: int) -> Callable[[str], int]:
    """A whole number >= ``low``."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        return int(_kept(value, text, value >= low, f"must be at least {low}"))

    return parse


positive_int = int_at_least(1)  # threads, jobs, frames
non_negative_int = int_at_least(0)


def int_range(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``, both included."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        return int(_kept(value, text, low <= value <= high, f"must be from {low} to {high}"))

    return parse


def finite_float(text: str) -> float:
    """Any finite number (no nan, no inf)."""
    return float(_number(text, float))


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (a noise level)."""
    value = finite_float(text)
    return _kept(value, text, value >= 0, "must be 0 or more")


def positive_float(text: str) -> float:
    """A finite number > 0 (a frame rate, a duration)."""
    value = finite_float(text)
    return _kept(value, text, value > 0, "must be positive")


def seconds_or_inf(text: str) -> float:
    """A number of seconds >= 0, or ``inf`` for ever."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds or 'inf', got {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, or 'inf', got {text}")
    return value


def float_range(low: float, high: float) -> Callable[[str], float]:
    """A finite number from ``low`` to ``high``, both included."""

    def parse(text: str) -> float:
        value = finite_float(text)
        return _kept(value, text, low <= value <= high, f"must be from {low:g} to {high:g}")

    return parse


def share(text: str) -> float:
    """A rate strictly between 0 and 1 (a false-positive rate)."""
    value = finite_float(text)
    return _kept(value, text, 0.0 < value < 1.0, "must be between 0 and 1 (both excluded), such as 0.01")


def pixel_count(text: str) -> int:
    """A number of pixels >= 1, written whole or in exponent form (200000000, 2e8)."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels such as 200000000 or 2e8, got {text!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite number of pixels such as 2e8, got {text!r}")
    value = int(number)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def frame_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, each side at least 16 pixels and at most ``MAX_FRAME_PIXELS`` in all."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"frame size too small: {text} (each side at least 16 pixels)")
    if w * h > MAX_FRAME_PIXELS:
        raise argparse.ArgumentTypeError(f"frame size too large: {text} is {w * h / 1e6:.0f} megapixels, at most "
                                         f"{MAX_FRAME_PIXELS / 1e6:g}")
    return w, h

