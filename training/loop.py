"""The one training core every loop here runs on: the step count and stopping rule, the
evaluation hook, crash-safe checkpoints with exact resume, progress with an ETA, the learning-rate
schedule and the seeded generators that fix the data order.

A loop supplies what is its own (one training step, one evaluation, how to report and which
checkpoint to ship); :class:`Loop` does the rest the same way for all of them::

    loop = Loop(steps=cfg.steps, eval_every=250, checkpoint=run / "checkpoint.pt",
                state={"model": model, "opt": opt, "rng": NumpyRNG(rng), "torch_rng": TorchRNG()})
    loop.resume()                     # continues where a killed run stopped, if it did
    loop.run(step=train_one_batch, evaluate=validation_psnr, report=log_and_keep_best)

Why written here and not taken from a library (Lightning Fabric, Hugging Face accelerate): see
docs/ARCHITECTURE.md ("Training"). In short: both are built for devices and processes this
project does not use (one CPU process), Fabric pulls in Lightning's stack and accelerate
Hugging Face's, and neither has the stopping rules or the exact, RNG-complete resume these
loops need; that part would still be written here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch


class Stateful(Protocol):
    """What a checkpoint holds: modules, optimisers, schedulers and the RNG adapters below."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any, /) -> Any: ...


class NumpyRNG:
    """A numpy ``Generator`` as checkpoint state (the data order and the noise drawn)."""

    def __init__(self, generator: np.random.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        return dict(self.generator.bit_generator.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.bit_generator.state = state


class TorchRNG:
    """torch's global CPU generator as checkpoint state (weight init, ``torch.randn`` noise)."""

    def state_dict(self) -> torch.Tensor:
        return torch.get_rng_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        torch.set_rng_state(state)


class TorchGenerator:
    """A ``torch.Generator`` as checkpoint state (a loop's own shuffling generator)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> torch.Tensor:
        return self.generator.get_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def seed_all(seed: int, *, data_seed: int | None = None) -> np.random.Generator:
    """Seed torch's global generator (weight init) with ``seed`` and return the numpy generator
    that draws the data order and the noise (``data_seed``, by default ``seed + 1``, so the two
    streams are independent)."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed + 1 if data_seed is None else data_seed)


def cosine_factor(step: float, steps: float, *, warmup: int = 0) -> float:
    """Share of the base learning rate at ``step``: a linear warm-up over ``warmup`` steps (none
    by default), then cosine decay from 1 to 0 at ``steps``."""
    steps = max(1, steps)
    ramp = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    return ramp * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))


def cosine_schedule(opt: torch.optim.Optimizer, steps: int, *, warmup: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`cosine_factor` as a scheduler (``sched.step()`` once per training step)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: cosine_factor(step, steps, warmup=warmup))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate (for schedules that are planned on the fly)."""
    for group in opt.param_groups:
        group["lr"] = lr


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


@dataclass(frozen=True)
class Progress:
    """Where a run stands at an evaluation: handed to the loop's ``report`` hook."""

    step: int
    total: int  # the planned last step (a time budget re-plans it)
    score: float | None  # the evaluation's score (higher is better); None: no score
    improved: bool  # the best so far (always, when there is no score)
    best: float  # best score so far
    best_step: int
    elapsed_s: float  # the whole run's, earlier sessions included
    eta_min: float  # at this session's speed


# Checkpoint keys the loop itself uses; a loop's own state and extras take any other names.
_LOOP_KEYS = ("step", "total", "best", "best_step", "stale", "elapsed_s")


class Loop:
    """Step counting, the evaluation hook, the stopping rule (``steps``, and optionally
    ``patience`` evaluations without an improvement of more than ``min_delta``, and a time
    budget of ``minutes`` that re-plans ``total`` on the measured speed), checkpoints after every
    evaluation and exact resume.

    ``state`` names the objects a checkpoint holds (anything with ``state_dict`` and
    ``load_state_dict``; wrap generators in :class:`NumpyRNG` / :class:`TorchRNG`), ``extra``
    returns further entries to store (the config, the loop's own counters), handed back by
    :meth:`resume`. Without ``checkpoint`` nothing is written and nothing resumes.
    """

    def __init__(self, *, steps: int, eval_every: int, state: Mapping[str, Stateful] | None = None,
                 checkpoint: Path | None = None, extra: Callable[[], dict[str, Any]] | None = None,
                 patience: int | None = None, min_delta: float = 0.0, minutes: float = 0.0,
                 plan_after: int = 20, log: Callable[[str], None] = print) -> None:
        if steps < 0 or eval_every < 1:
            raise ValueError(f"expected steps >= 0 and eval_every >= 1, got {steps} and {eval_every}")
        self.steps = steps
        self.eval_every = eval_every
        self.state = dict(state or {})
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.extra = extra
        self.patience = patience
        self.min_delta = min_delta
        self.minutes = minutes
        self.plan_after = plan_after
        self.log = log
        self.step = 0
        self.total = steps
        self.best = -1.0
        self.best_step = 0
        self.stale = 0
        self.stopped = ""  # why the run ended early: "patience" or "time", else ""
        self._elapsed_before = 0.0
        self.elapsed_s = 0.0  # the whole run's training time when ``run`` returns

    def resume(self, *, matching: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Load the checkpoint, if there is one: every ``state`` object and the loop's counters
        as they were; returns the whole checkpoint (for the loop's ``extra`` entries), or None.

        With ``matching``, a checkpoint whose entries differ from it (another config in the same
        folder) is not resumed: the run starts afresh and overwrites it."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return None
        saved = torch.load(self.checkpoint, weights_only=False)
        differ = [key for key, value in (matching or {}).items() if saved.get(key) != value]
        if differ:
            self.log(f"{self.checkpoint} is from another run ({', '.join(differ)} differ): starting afresh")
            return None
        missing = [name for name in self.state if name not in saved]
        if missing:
            raise ValueError(f"{self.checkpoint} cannot resume this run: expected the entries "
                             f"{sorted(self.state)}, it lacks {missing}")
        for name, obj in self.state.items():
            obj.load_state_dict(saved[name])
        self.step = int(saved["step"])
        self.best = float(saved.get("best", self.best))
        self.best_step = int(saved.get("best_step", self.step))
        self.stale = int(saved.get("stale", 0))
        # A run resumed with more steps than it planned gets the new count.
        self.total = max(int(saved.get("total", self.steps)), self.step) if self.minutes > 0 else self.steps
        self._elapsed_before = float(saved.get("elapsed_s", 0.0))
        return saved

    def save(self, elapsed_s: float) -> None:
        if self.checkpoint is None:
            return
        entries = {name: obj.state_dict() for name, obj in self.state.items()}
        entries.update(self.extra() if self.extra is not None else {})
        clash = [k for k in _LOOP_KEYS if k in entries]
        if clash:
            raise ValueError(f"checkpoint entries {clash} are the loop's own: name them otherwise")
        entries.update(step=self.step, total=self.total, best=self.best, best_step=self.best_step,
                       stale=self.stale, elapsed_s=elapsed_s)
        save_checkpoint(entries, self.checkpoint)

    def run(self, *, step: Callable[[int], object], evaluate: Callable[[int], float | None],
            report: Callable[[Progress], None]) -> None:
        """Train until the stopping rule says so: ``step(n)`` takes training step ``n`` (1-based);
        every ``eval_every`` steps, at the last one and when the time runs out, ``evaluate(n)``
        scores the model (higher is better, None: no score, each evaluation counts as the best),
        ``report(progress)`` logs it and keeps the best weights, then the checkpoint is written."""
        t0 = time.monotonic()
        start_step = self.step

        def elapsed() -> float:
            return self._elapsed_before + time.monotonic() - t0

        def speed() -> float:  # seconds per step in this session
            return (time.monotonic() - t0) / max(1, self.step - start_step)

        try:
            self._run(step, evaluate, report, elapsed, speed, t0, start_step)
        finally:
            self.elapsed_s = elapsed()

    def _run(self, step: Callable[[int], object], evaluate: Callable[[int], float | None],
             report: Callable[[Progress], None], elapsed: Callable[[], float], speed: Callable[[], float],
             t0: float, start_step: int) -> None:
        budget = self.minutes > 0
        while self.step < self.total:
            step(self.step + 1)
            self.step += 1
            if budget and self.step - start_step == self.plan_after:  # plan to end inside the budget
                self.total = max(self.step + 1, min(self.steps, int(self.minutes * 60 / speed() * 0.92)))
                self.log(f"{speed():.2f} s/step: planning {self.total} steps (budget {self.minutes:g} min)")
            over_time = budget and elapsed() > self.minutes * 60
            if not (self.step % self.eval_every == 0 or self.step == self.total or over_time):
                continue
            score = evaluate(self.step)
            improved = score is None or score > self.best + self.min_delta
            if improved:
                self.stale = 0
                self.best_step = self.step
                if score is not None:
                    self.best = score
            else:
                self.stale += 1
            report(Progress(self.step, self.total, score, improved, self.best, self.best_step, elapsed(),
                            eta_minutes(time.monotonic() - t0, self.step - start_step, self.total - self.step)))
            self.save(elapsed())
            if self.patience is not None and self.stale >= self.patience:
                self.log(f"early stop: no better validation score for {self.stale} evaluations")
                self.stopped = "patience"
                break
            if budget:  # re-plan on the measured speed: other jobs on the machine change it
                left = self.minutes * 60 - elapsed()
                self.total = min(self.steps, self.step + int(left / speed()))
            if self.step >= self.steps:
                break
            if over_time or self.total <= self.step:
                self.log(f"time budget of {self.minutes:g} min spent at step {self.step}")
                self.stopped = "time"
                break
