"""Batch processing of image files: find inputs, plan outputs, run a per-file job on one or
several processes, and report each file as done, skipped or failed. No printing here: the CLI
renders the events this yields.
"""

from __future__ import annotations

import os
import signal
import threading
import time
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
_worker_busy = False  # a task (and so maybe an atomic write) is in progress in this worker
# How long stopped workers get to remove their temporary file before they are killed.
STOP_GRACE_SECONDS = 5.0
PARENT_CHECK_SECONDS = 0.5  # how often a worker looks whether its parent is still there


class _WorkerStopped(BaseException):
    """Raised in a worker by SIGTERM mid-task: unwinds the task so that an atomic write in
    progress removes its temporary file; not an Exception, so no job reports it as a failure."""


def _on_worker_sigterm(signum: int, _frame: object) -> None:
    if _worker_busy:
        raise _WorkerStopped
    os._exit(128 + signum)  # idle, waiting for a task: nothing to clean up


def _init_worker(factory: JobFactory) -> None:
    global _worker_job
    # Ctrl-C reaches the whole process group; only the parent decides what it means (stop the
    # batch, then stop the workers with SIGTERM), or a worker would report its file as failed
    # and take the next one. Set before the models load, so Ctrl-C then is the parent's alone too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_worker_sigterm)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="edge-ae-parent-watch").start()
    _worker_job = factory()


def _watch_parent(parent: int) -> None:
    """A parent killed outright (kill -9) cannot stop its workers, which would wait for tasks for
    ever: a worker whose parent is gone stops itself as if SIGTERMed (the file in hand abandoned,
    its temporary file removed)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


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
    global _worker_busy
    assert _worker_job is not None
    _worker_busy = True
    try:
        return _run_one(_worker_job, task)
    except _WorkerStopped:
        os._exit(128 + signal.SIGTERM)  # the temporary file is gone; the parent is stopping the batch
    finally:
        _worker_busy = False


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
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), initializer=_init_worker, initargs=(factory,))
    finished = False
    try:
        pending = {pool.submit(_run_in_worker, task): task for task in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    # A worker was killed (out of memory, a crash in a decoder): every task not
                    # finished is reported, none is silently dropped.
                    yield Outcome(task, "failed", f"{task.source}: worker process died (out of memory?) "
                                  "before this file was finished")
        finished = True
    finally:
        # Left early (Ctrl-C, SIGTERM turned into an exception, the consumer stopped reading):
        # the executor's own exit would wait for every queued file, so stop the workers here.
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop_pool(pool)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and stop the workers within seconds: SIGTERM first (a task in
    progress unwinds and its atomic write removes its temporary file), SIGKILL for any worker
    still there after ``STOP_GRACE_SECONDS``. No worker outlives the batch."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # the executor has no public list
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)


def default_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)
