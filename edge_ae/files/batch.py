"""Batch processing of image files: find inputs, plan outputs, run a per-file job on one or
several processes, and report each file as done, skipped or failed. No printing here: the CLI
renders the events this yields.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from edge_ae.errors import EdgeAEError
from edge_ae.files.inputs import MissingInput, find_inputs
from edge_ae.files.output_paths import check_folder, prepare_folder

# Where inputs come from and where outputs may go live in their own modules; these names stay
# importable from here for the commands that use them.
__all__ = ["MissingInput", "Outcome", "Plan", "Task", "check_folder", "find_inputs", "plan", "prepare_folder", "run"]


@dataclass(frozen=True)
class Task:
    source: Path
    target: Path
    extras_only: bool = False  # the target exists; only optional outputs (a compare picture) are missing


@dataclass(frozen=True)
class Outcome:
    task: Task
    status: str  # "done", "skipped" or "failed"
    message: str = ""
    value: float | None = None  # a number the job returned for the report (denoise: the noise level used)


@dataclass(frozen=True)
class Plan:
    tasks: list[Task]
    problems: list[Outcome]  # inputs refused before any work (missing, clashing, unsafe)


def plan(inputs: list[str], out_dir: Path, *, recursive: bool, overwrite: bool, suffix: str | None = None,
         append: str | None = None) -> Plan:
    """Decide the target of every input. Refuses to write into an input folder or over an input.
    ``suffix`` replaces a target's suffix; ``append`` adds one, keeping the input's (a.jpg ->
    a.jpg.png), so a.jpg and a.png never share a name."""
    check_folder(out_dir, inputs)
    found, missing = find_inputs(inputs, recursive=recursive)
    sources = {src.resolve() for src, _ in found}
    tasks: list[Task] = []
    problems = [Outcome(Task(Path(m.item), Path()), "failed", str(m)) for m in missing]
    seen: dict[Path, Path] = {}
    for src, rel in found:
        if append:
            rel = rel.with_name(rel.name + append)
        target = out_dir / (rel.with_suffix(suffix) if suffix else rel)
        task = Task(src, target)
        if target.resolve() in sources:
            problems.append(Outcome(task, "failed", f"{src}: output would overwrite an input"))
        elif target in seen:
            problems.append(Outcome(task, "failed", f"{src}: same output name as {seen[target]}"))
        elif target.exists() and not overwrite:
            problems.append(Outcome(task, "skipped", f"{target} exists (use --overwrite)"))
        else:
            seen[target] = src
            tasks.append(task)
    return Plan(tasks, problems)


# A job is built once per worker process (model sessions are not picklable) and then called
# for each task.
JobFactory = Callable[[], Callable[[Task], None]]
_worker_job: Callable[[Task], None] | None = None


def _init_worker(factory: JobFactory) -> None:
    global _worker_job
    _worker_job = factory()


def failure_message(source: Path, exc: BaseException) -> str:
    """One line for what went wrong with one file, naming the file once."""
    if isinstance(exc, EdgeAEError):
        text = str(exc)
    elif isinstance(exc, OSError):  # disk full, permission denied, vanished file
        text = exc.strerror or str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    elif isinstance(exc, ValueError):
        text = str(exc)
    else:  # a library's own error (cv2.error, onnxruntime's): its last meaningful line
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        text = f"{type(exc).__name__}: {lines[-1] if lines else 'no message'}"
    return text if str(source) in text else f"{source}: {text}"


def _run_one(job: Callable[[Task], float | None], task: Task) -> Outcome:
    try:
        value = job(task)
    except Exception as exc:  # one file's failure must never end the batch
        return Outcome(task, "failed", failure_message(task.source, exc))
    return Outcome(task, "done", value=float(value) if isinstance(value, (int, float)) else None)


def _run_in_worker(task: Task) -> Outcome:
    assert _worker_job is not None
    return _run_one(_worker_job, task)


def run(tasks: list[Task], factory: JobFactory, *, jobs: int = 1) -> Iterator[Outcome]:
    """Yield one Outcome per task, in completion order for ``jobs`` > 1."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if not tasks:
        return
    if jobs == 1 or len(tasks) == 1:
        job = factory()
        for task in tasks:
            yield _run_one(job, task)
        return
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), initializer=_init_worker, initargs=(factory,)) as pool:
        pending = {pool.submit(_run_in_worker, task): task for task in tasks}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                task = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    # A worker was killed (out of memory, a crash in a decoder): every task not
                    # finished is reported, none is silently dropped.
                    yield Outcome(task, "failed", f"{task.source}: worker process died (out of memory?) "
                                  "before this file was finished")


def default_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)
