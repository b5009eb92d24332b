"""Shared rendering of a batch run: progress, one line per problem, and a summary."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from edge_ae.cli.progress import Progress
from edge_ae.files import batch

Runner = Callable[[list[batch.Task], batch.JobFactory], Iterator[batch.Outcome]]


def run_and_report(plan: batch.Plan, job: batch.JobFactory, *, jobs: int, verb: str, out_dir: Path,
                   runner: Runner | None = None, value_label: str | None = None, verbose: bool = False) -> int:
    """Run ``plan`` and print a summary; exit code 1 if any file failed, else 0. ``runner``
    replaces ``batch.run`` with ``jobs`` processes (``ray_engine.run`` for ``--ray``). Values the
    job returns per file (``Outcome.value``) are summarised as ``value_label`` and, ``verbose``,
    printed per file."""
    counts = {"done": 0, "skipped": 0, "failed": 0}
    values: list[float] = []
    progress = Progress(len(plan.tasks), label=f"{verb} ")
    for problem in plan.problems:
        counts[problem.status] += 1
        if problem.status == "failed":
            progress.note(f"failed: {problem.message}")
    outcomes = runner(plan.tasks, job) if runner is not None else batch.run(plan.tasks, job, jobs=jobs)
    try:
        for outcome in outcomes:
            counts[outcome.status] += 1
            if outcome.status == "failed":
                progress.note(f"failed: {outcome.message}")
            elif outcome.value is not None and value_label:
                values.append(outcome.value)
                if verbose:
                    progress.note(f"{outcome.task.source}: {value_label} {outcome.value:.1f}")
            progress.advance()
    finally:
        # Interrupted (Ctrl-C, SIGTERM): stop the workers now, not when the traceback is freed.
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
    progress.close()
    skipped = f", {counts['skipped']} skipped (exist already; --overwrite replaces them)" if counts["skipped"] else ""
    print(f"{counts['done']} {verb}, {counts['failed']} failed{skipped} -> {out_dir}", file=sys.stdout)
    if values:
        mean = sum(values) / len(values)
        spread = f"{min(values):.1f}-{max(values):.1f}, mean {mean:.1f}" if len(values) > 1 else f"{mean:.1f}"
        print(f"{value_label}: {spread}", file=sys.stdout)
    return 1 if counts["failed"] else 0
