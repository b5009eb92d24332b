"""Batch processing of image files: find inputs, plan outputs, run a per-file job on one or
several processes, and report each file as done, skipped or failed. No printing here: the CLI
renders the events this yields.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from edge_ae.errors import EdgeAEError
from edge_ae.files.imageio import READ_SUFFIXES


@dataclass(frozen=True)
class Task:
    source: Path
    target: Path


@dataclass(frozen=True)
class Outcome:
    task: Task
    status: str  # "done", "skipped" or "failed"
    message: str = ""


@dataclass(frozen=True)
class Plan:
    tasks: list[Task]
    problems: list[Outcome]  # inputs refused before any work (missing, clashing, unsafe)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in READ_SUFFIXES


def find_inputs(inputs: list[str], *, recursive: bool) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files, folders and globs into (source, path relative to its output folder)."""
    found: list[tuple[Path, Path]] = []
    missing: list[str] = []
    for item in inputs:
        if any(ch in item for ch in "*?[") and not Path(item).exists():
            matches = sorted(glob.glob(item, recursive=recursive))
            if not matches:
                missing.append(f"{item}: no file matches")
            found += [(Path(m), Path(Path(m).name)) for m in matches if Path(m).is_file()]
            continue
        path = Path(item)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.is_file() and _is_image(p) and not p.name.startswith("."))
            found += [(p, p.relative_to(path)) for p in files]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            missing.append(f"{item}: no such file or folder")
    return found, missing


def plan(inputs: list[str], out_dir: Path, *, recursive: bool, overwrite: bool, suffix: str | None = None) -> Plan:
    """Decide the target of every input. Refuses to write into an input folder or over an input."""
    if out_dir.exists() and not out_dir.is_dir():
        # Caught here, before any work, rather than as a bare "File exists" per image.
        raise EdgeAEError(f"output folder {out_dir} is an existing file: expected a folder (new or existing)")
    found, missing = find_inputs(inputs, recursive=recursive)
    out_resolved = out_dir.resolve()
    for item in inputs:
        p = Path(item)
        if p.is_dir() and (out_resolved == p.resolve() or p.resolve() in out_resolved.parents):
            raise EdgeAEError(f"output folder {out_dir} is inside the input folder {item}: choose one outside it")
    sources = {src.resolve() for src, _ in found}
    tasks: list[Task] = []
    problems = [Outcome(Task(Path(m.split(":")[0]), Path()), "failed", m) for m in missing]
    seen: dict[Path, Path] = {}
    for src, rel in found:
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


def _run_one(job: Callable[[Task], None], task: Task) -> Outcome:
    try:
        job(task)
    except EdgeAEError as exc:
        return Outcome(task, "failed", str(exc))
    except OSError as exc:  # disk full, permission denied, vanished file
        return Outcome(task, "failed", f"{task.source}: {exc.strerror or exc}")
    except ValueError as exc:
        return Outcome(task, "failed", f"{task.source}: {exc}")
    return Outcome(task, "done")


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
        yield from pool.map(_run_in_worker, tasks, chunksize=1)


def default_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)
