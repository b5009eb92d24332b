"""Float or 8 bits: which of a shipped denoiser and its ``-int8`` twin runs on this CPU.

``precision="auto"`` (the default of ``Denoiser`` and of ``--precision``) takes the 8-bit twin
when both hold, and the float model otherwise:

1. the CPU has 8-bit dot-product instructions (x86 AVX512-VNNI or AVX-VNNI, Arm dotprod such as
   the Raspberry Pi 5's Cortex-A76; ``edge_ae.hardware``). onnxruntime's fast 8-bit kernels are
   built on them; without them (a Pi 4) the twin can be slower than float (docs/RASPBERRY_PI.md);
2. the twin loses at most ``MAX_DROP_DB`` (0.1 dB) PSNR against the float model in every cell of
   the benchmark grid the manifest records for both (each test set at sigma 15, 25 and 50,
   ``tools/bench_denoise.py``), so a default never gets noticeably worse for its speed.

``"float"`` and ``"int8"`` force one. A model named with its ``-int8`` suffix runs as named under
``"auto"``; a model file (a path) always runs as it is. Library code: no printing; the reason for
each choice travels in ``PrecisionChoice.reason`` for the CLI to show.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from edge_ae.errors import ModelError
from edge_ae.hardware import CpuInfo, cpu_info
from edge_ae.model.registry import ModelEntry, list_models

PRECISIONS = ("auto", "float", "int8")
MAX_DROP_DB = 0.1
TWIN_SUFFIX = "-int8"


@dataclass(frozen=True)
class PrecisionChoice:
    model: Any  # what to load: a shipped name, or the path / loaded model given
    eight_bit: bool | None  # None: a model file, not known here
    reason: str  # one clause: why this one

    def describe(self) -> str:
        bits = "8-bit" if self.eight_bit else ("float" if self.eight_bit is False else "as given")
        return f"{self.model} ({bits}: {self.reason})"


def check_precision(precision: object) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return str(precision)


def _entries() -> dict[str, ModelEntry]:
    return {e.name: e for e in list_models("denoiser")}


def twin_drop(float_entry: ModelEntry, twin_entry: ModelEntry) -> float | None:
    """The twin's largest PSNR drop (dB) against the float model over the benchmark cells the
    manifest records for both; None where they share none."""
    drops = []
    for key, value in float_entry.quality.items():
        other = twin_entry.quality.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            a, b = value.get("psnr"), other.get("psnr")
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                drops.append(float(a) - float(b))
    return max(drops) if drops else None


@lru_cache(maxsize=1)
def _this_cpu() -> CpuInfo:
    return cpu_info()


def _auto(base: str, twin: str, entries: dict[str, ModelEntry], cpu: CpuInfo) -> PrecisionChoice:
    if cpu.int8_dot is None:
        return PrecisionChoice(base, False, "whether this CPU has 8-bit dot products is unknown")
    if not cpu.int8_dot:
        return PrecisionChoice(base, False, "this CPU has no 8-bit dot-product instructions")
    drop = twin_drop(entries[base], entries[twin])
    if drop is None:
        return PrecisionChoice(base, False, f"{twin} has no benchmark figures to compare")
    if drop > MAX_DROP_DB:
        return PrecisionChoice(base, False, f"{twin} loses up to {drop:.2f} dB on the benchmark "
                               f"(auto allows {MAX_DROP_DB:g})")
    return PrecisionChoice(twin, True, f"8-bit dot products ({cpu.int8_dot_name}) and at most {max(drop, 0):.2f} dB "
                           f"lost on the benchmark (auto allows {MAX_DROP_DB:g})")


def choose(model: Any, precision: str = "auto", *, cpu: CpuInfo | None = None) -> PrecisionChoice:
    """Which model to load for ``model`` (a shipped name, a path or a loaded model) at ``precision``."""
    check_precision(precision)
    text = str(model)
    if not isinstance(model, str) or text.endswith(".onnx") or "/" in text or os.sep in text:
        if precision != "auto":
            raise ValueError(f"precision={precision!r} picks between a shipped denoiser and its 8-bit twin; "
                             f"a model file ({text}) runs as it is: leave precision at auto")
        return PrecisionChoice(model, None, "a model file runs as it is")
    entries = _entries()
    base = text[: -len(TWIN_SUFFIX)] if text.endswith(TWIN_SUFFIX) else text
    if text not in entries and base not in entries:
        return PrecisionChoice(model, None, "not a shipped denoiser")  # loading says what is wrong
    twin = base + TWIN_SUFFIX
    has_twin = base in entries and twin in entries
    if precision == "float":
        if base not in entries:
            raise ModelError(f"{text} has no float model shipped beside it")
        return PrecisionChoice(base, False, "float asked for")
    if precision == "int8":
        if not has_twin and text != twin:
            raise ModelError(f"{base} has no 8-bit twin shipped (8-bit denoisers: "
                             f"{', '.join(n for n in entries if n.endswith(TWIN_SUFFIX)) or 'none'})")
        return PrecisionChoice(twin, True, "8 bits asked for")
    if text.endswith(TWIN_SUFFIX):
        return PrecisionChoice(text, True, "named")
    if not has_twin:
        return PrecisionChoice(text, False, "no 8-bit twin shipped")
    return _auto(base, twin, entries, cpu if cpu is not None else _this_cpu())


def exact(model: Any) -> str:
    """The precision that loads ``model`` itself (for tools that time or measure a named model and
    must not be given its twin): float for a float name, int8 for an ``-int8`` name, auto (as it
    is) for a file."""
    text = str(model)
    if not isinstance(model, str) or text.endswith(".onnx") or "/" in text or os.sep in text:
        return "auto"
    return "int8" if text.endswith(TWIN_SUFFIX) else "float"
