"""Batch processing of image files: find inputs, plan outputs, run a per-file job on one or
several processes, and report each file as done, skipped or failed. No printing here: the CLI
renders the events this yields.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from edge_ae.errors import EdgeAEError
from edge_ae.files.imageio import READ_SUFFIXES


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
class MissingInput:
    """An input that named nothing to read; the input is kept as given, so reports never have to
    recover it from the message (a path may contain ':')."""

    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


@dataclass(frozen=True)
class Plan:
    tasks: list[Task]
    problems: list[Outcome]  # inputs refused before any work (missing, clashing, unsafe)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in READ_SUFFIXES


def find_inputs(inputs: list[str], *, recursive: bool) -> tuple[list[tuple[Path, Path]], list[MissingInput]]:
    """Expand files, folders and globs into (source, path relative to its output folder)."""
    found: list[tuple[Path, Path]] = []
    missing: list[MissingInput] = []
    for item in inputs:
        if any(ch in item for ch in "*?[") and not Path(item).exists():
            matches = sorted(glob.glob(item, recursive=recursive))
            if not matches:
                missing.append(MissingInput(item, "no file matches"))
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
            missing.append(MissingInput(item, "no such file or folder"))
    return found, missing


def _is_glob(item: str) -> bool:
    return any(ch in item for ch in "*?[") and not Path(item).exists()


def input_folders(inputs: list[str]) -> list[tuple[Path, str]]:
    """The folder each input lives in, with how to name it: a folder itself, the folder of a file,
    the fixed part of a glob ("in/*.png" and "in/**/x.png": in)."""
    folders: list[tuple[Path, str]] = []
    for item in inputs:
        path = Path(item)
        if _is_glob(item):
            fixed = []
            for part in path.parts:
                if any(ch in part for ch in "*?["):
                    break
                fixed.append(part)
            folders.append((Path(*fixed) if fixed else Path("."), f"the folder of the glob {item}"))
        elif path.is_dir():
            folders.append((path, f"the input folder {item}"))
        elif path.is_file():
            folders.append((path.parent, f"the folder of the input {item}"))
    return folders


def check_folder(folder: Path, inputs: list[str], *, label: str = "output folder", others: dict[str, Path] | None = None) -> None:
    """Refuse an output folder (``-o``, ``--compare``, ``--heatmaps``) that is a file, an input
    folder, inside one, or inside the folder of an input file or glob: a later run over that
    folder (``--recursive``) would take the outputs for inputs, and a same-named output would
    replace an original. ``others``: folders of this run it must not be (label -> folder)."""
    if folder.exists() and not folder.is_dir():
        # Caught here, before any work, rather than as a bare "File exists" per image.
        raise EdgeAEError(f"{label} {folder} is an existing file: expected a folder (new or existing)")
    resolved = folder.resolve()
    for root, what in input_folders(inputs):
        root = root.resolve()
        if resolved == root or root in resolved.parents:
            where = "is" if resolved == root else "is inside"
            raise EdgeAEError(f"{label} {folder} {where} {what}: choose one outside it")
    for other_label, other in (others or {}).items():
        if resolved == other.resolve():
            raise EdgeAEError(f"{label} {folder} is the {other_label} too: choose another")


def prepare_folder(folder: Path, *, label: str = "output folder") -> None:
    """Create ``folder`` and prove it writable before any work, so a bad ``-o`` is one line naming
    the folder, not a failure blamed on every input."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeAEError(f"{label} {folder}: cannot create it ({exc.strerror or exc})") from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise EdgeAEError(f"{label} {folder} is not writable ({exc.strerror or exc})") from None


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
