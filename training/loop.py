"""The pieces every training loop here shares, one copy each: the learning-rate schedule, the
ETA, and checkpoints written whole or not at all.

Why not a training library (Lightning, Ignite, Accelerate): the loops are a few dozen lines on
one CPU process, and each has its own stopping rule (steps, a time budget, early stopping on a
validation AUROC); a framework would add a dependency and hide the step the docs point at,
while saving only these few helpers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch


def cosine_schedule(opt: torch.optim.Optimizer, steps: int, *, warmup: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps (none by default), then cosine decay to zero at ``steps``."""
    steps = max(1, steps)

    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        return ramp * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def eta_minutes(elapsed_s: float, done: int, remaining: int) -> float:
    """Minutes left at the speed so far (``done`` steps took ``elapsed_s``)."""
    return elapsed_s / max(1, done) * max(0, remaining) / 60.0


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file renamed into place: a run killed mid-write leaves the
    previous checkpoint, never a truncated one that resume would choke on."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
