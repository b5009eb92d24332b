"""Run a batch plan on Ray Data instead of local processes (``edge-ae denoise --ray``).

What stays the same as the local path: the plan (``batch.plan`` decides inputs, outputs and what
to skip), the per-file work (each actor runs its tasks through ``batch.run``, so reading,
atomic writing and the one-line failure report are the local code), the outcomes and hence the
CLI's summary and exit codes. What Ray adds: the tasks are rows of a Dataset, a ``map_batches``
actor pool spreads them over a cluster, and the job (for denoising: the ``Denoiser`` with its
ONNX session) is built once per actor. Rows carry paths, never pixels: every worker reads its
inputs and writes its outputs itself, so no image passes through the driver or the object store.

A killed worker leaves no half-written output (writes are renamed into place) and Ray Data
restarts the actor and retries its batch; if the run still fails, the files it did not report
are listed as failed and a rerun, which skips existing outputs, completes them.

Ray is imported only inside these functions: the runtime keeps its three dependencies and
``import edge_ae`` stays fast. Install with ``pip install "edge-ae[ray]"``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_ae.denoise.options import DenoiseOptions
from edge_ae.errors import EdgeAEError
from edge_ae.files import batch
from edge_ae.files.imageio import DEFAULT_MAX_PIXELS
from edge_ae.jobs.denoise_job import DenoiseJob
from edge_ae.jobs.ray_cluster import check_fits, connect, import_ray, private_cpus, shutdown

__all__ = ["RunTasks", "connect", "denoise_dataset", "map_tasks", "run", "tasks_dataset"]

if TYPE_CHECKING:
    import ray.data

# Columns of the task and result datasets (an optional "extras_only" column carries
# batch.Task.extras_only: the output exists, only its before|after picture is to be made).
TASK_COLUMNS = ("source", "target")
RESULT_COLUMNS = ("source", "target", "status", "message", "value")

# Files per Dataset block (at least 4 blocks per actor). Small blocks balance the load across
# actors and make a retried block (after a worker died) redo little; many blocks cost scheduling
# time. Not tuned: tools/bench_ray.py measures the overhead with it.
FILES_PER_BLOCK = 8

# Ray Data restarts a dead actor and retries its block without end by default: a file that kills
# its worker every time (a decoder crash) would never let the run finish. After this many, the
# run ends, the files not done are reported as failed, and a rerun resumes.
RESTARTS = 5


class RunTasks:
    """``map_batches``-ready callable class: builds the per-file job once per actor, then runs
    each batch of (source, target) rows through ``batch.run``, the local path's own code.

    ``factory`` is a picklable ``batch.JobFactory`` (for denoising, ``DenoiseJob``). Returns the
    rows with ``status`` ("done" or "failed"), ``message`` (the one-line reason) and ``value``
    (the number the job returned, for denoising the noise level used; None if none) added.
    """

    def __init__(self, factory: batch.JobFactory) -> None:
        self._job = factory()

    def __call__(self, rows: dict[str, Any]) -> dict[str, list]:
        extras = rows["extras_only"] if "extras_only" in rows else [False] * len(rows["source"])
        tasks = [batch.Task(Path(str(s)), Path(str(t)), extras_only=bool(e))
                 for s, t, e in zip(rows["source"], rows["target"], extras, strict=True)]
        # jobs=1 runs in this actor with the job built above (batch.run calls the factory once).
        outcomes = {o.task.target: o for o in batch.run(tasks, lambda: self._job, jobs=1)}
        result: dict[str, list] = {name: [] for name in RESULT_COLUMNS}
        for task in tasks:
            outcome = outcomes[task.target]
            result["source"].append(str(task.source))
            result["target"].append(str(task.target))
            result["status"].append(outcome.status)
            result["message"].append(outcome.message)
            result["value"].append(outcome.value)  # the job's number for the report, if any
        return result


def tasks_dataset(tasks: list[batch.Task], *, files_per_block: int = FILES_PER_BLOCK, min_blocks: int = 1) -> ray.data.Dataset:
    """A Dataset with one (source, target, extras_only) row per task, paths as strings, in small blocks."""
    ray = import_ray()
    rows = [{"source": str(t.source), "target": str(t.target), "extras_only": t.extras_only} for t in tasks]
    blocks = max(1, min(len(rows), max(math.ceil(len(rows) / files_per_block), min_blocks)))
    return ray.data.from_items(rows, override_num_blocks=blocks)


def map_tasks(ds: ray.data.Dataset, factory: batch.JobFactory, *, workers: int | None = None,
              threads: int = 1, batch_size: int = 1) -> ray.data.Dataset:
    """Run ``factory``'s job over a Dataset of (source, target) rows with a pool of actors.

    ``workers``: actors (default: an autoscaling pool of 1 up to what the cluster's CPUs hold);
    ``threads``: CPUs reserved per actor, and the inference threads the job was built with.
    """
    ray = import_ray()
    missing = [c for c in TASK_COLUMNS if c not in ds.columns()]
    if missing:
        raise EdgeAEError(f"dataset needs columns {list(TASK_COLUMNS)} (path strings), missing {missing}; got {ds.columns()}")
    if workers is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        pool = ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, cpus // threads))
    elif workers < 1:
        raise EdgeAEError(f"workers must be at least 1, got {workers}")
    else:
        pool = ray.data.ActorPoolStrategy(size=workers)
    options = {"fn_constructor_kwargs": {"factory": factory}, "batch_size": batch_size, "compute": pool, "num_cpus": threads}
    with warnings.catch_warnings():
        # Ray 2.60 deprecates passing actor options this way (removal announced for 2.64) and has
        # no named parameter for them yet; without them, Ray's default (retry without end) applies.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        try:
            return ds.map_batches(RunTasks, **options, max_restarts=RESTARTS, max_task_retries=RESTARTS)
        except TypeError:
            return ds.map_batches(RunTasks, **options)


def denoise_dataset(ds: ray.data.Dataset, *, model: str | None = None, options: DenoiseOptions | None = None,
                    quality: int = 95, max_pixels: int | None = DEFAULT_MAX_PIXELS, threads: int = 1,
                    workers: int | None = None) -> ray.data.Dataset:
    """Denoise the images named by a Ray Dataset of ``source``/``target`` path strings.

    Each actor builds one ``Denoiser`` and writes every output itself, atomically, to its
    ``target`` (in the format the target's suffix names); returns a Dataset of
    ``source, target, status, message, value`` rows, one per input, with status "done" or
    "failed" and value the noise level used (0-255 scale).
    Paths must be visible to every worker (shared file system). ``options`` (a
    ``DenoiseOptions``: sigma, strength, tile, ensemble, precision) and ``quality`` as for
    ``edge-ae denoise``; ``threads`` is both the CPUs reserved per actor and its inference
    threads. Existing targets are overwritten: plan with ``edge_ae.files.batch.plan`` (and
    ``tasks_dataset``) to skip them as the CLI does.
    """
    job = DenoiseJob(model=model, options=options or DenoiseOptions(), threads=threads, out_dir=Path("."),
                     quality=quality, max_pixels=max_pixels)
    return map_tasks(ds, job, workers=workers, threads=threads)


def _quiet_data(ray: Any) -> None:
    """The CLI draws its own bar and one line per failure; Ray Data's bars and INFO logs would
    interleave with them."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def run(tasks: list[batch.Task], factory: batch.JobFactory, *, address: str | None = None,
        workers: int | None = None, threads: int = 1, verbose: bool = False) -> Iterator[batch.Outcome]:
    """``batch.run`` on Ray: yield one Outcome per task as the workers finish them.

    Starts a local instance (loopback only, sized to hold ``workers`` x ``threads`` CPUs) or joins
    ``address`` (refusing, in one line, what its nodes cannot hold); shuts down what it started.
    ``verbose`` lets Ray's own log lines through to the terminal.
    If Ray itself fails (a node lost for good, the cluster gone), the tasks not yet reported
    are yielded as failed with the reason, so the summary counts them and a rerun resumes.
    """
    if not tasks:
        return
    started = connect(address, num_cpus=private_cpus(threads=threads, workers=workers), verbose=verbose)
    ray = import_ray()
    try:
        if address is not None or not started:  # a cluster sized by someone else
            check_fits(ray, threads=threads, workers=workers)
        _quiet_data(ray)
        # Workers may run on other nodes, in another folder: they get absolute paths, and their
        # messages are given back with the paths as the user wrote them, as the local path prints them.
        rows = [batch.Task(t.source.absolute(), t.target.absolute(), t.extras_only) for t in tasks]
        by_target = {str(row.target): (row, task) for row, task in zip(rows, tasks, strict=True)}
        # A fixed pool (an autoscaling one starts with one actor and grows late in a short run),
        # never larger than the work.
        pool_size = min(len(tasks), workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads))
        ds = map_tasks(tasks_dataset(rows, min_blocks=4 * pool_size), factory, workers=pool_size, threads=threads)
        try:
            for result in ds.iter_rows():
                pair = by_target.pop(result["target"], None)
                if pair is None:  # a batch retried after its worker died reports its rows again
                    continue
                sent, task = pair
                message = result["message"].replace(str(sent.source), str(task.source))
                message = message.replace(str(sent.target), str(task.target))
                value = result.get("value")
                value = float(value) if value is not None and value == value else None  # NaN: an empty Arrow cell
                yield batch.Outcome(task, result["status"], message, value=value)
        except ray.exceptions.RayError as exc:
            reason = str(exc).strip().splitlines()[0]
            for _, task in by_target.values():
                yield batch.Outcome(task, "failed", f"{task.source}: not done, Ray failed ({reason}); rerun to finish")
    finally:
        if started:
            shutdown(ray)
