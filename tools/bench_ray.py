"""Images per second for ``edge-ae denoise --jobs 2`` and ``edge-ae denoise --ray`` (a local Ray
instance on this machine's CPUs) on the same folder of synthetic noisy 640x480 photos, and how
much Ray costs on top.

    nice -n 10 python -m tools.bench_ray       # writes docs/benchmarks/ray.md, rebuilds BENCHMARKS.md

Each configuration runs as a user runs it: a fresh ``python -m edge_ae denoise`` process into an
empty output folder, timed wall clock from start to exit (process start, model loading, and for
``--ray`` starting and stopping Ray, included). The configurations alternate ``--repeat`` times;
the fastest and slowest run of each are reported (other jobs on the machine only ever slow a run
down, and the spread says how much they did).
Ray's start-up alone (start and stop a local instance, in a fresh process) is timed the same
way. Last in each turn, a helper process starts a local instance (untimed) and holds it while
``--ray ADDRESS`` joins it: what a run on an already running cluster pays (connecting, starting
the actors, loading the model in each). Everything stays on the loopback interface. The images come from
``tools/make_noisy_folder.py`` (fixed seed) and are written to a temporary folder, never the
repository.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.make_noisy_folder import write_folder

ROOT = Path(__file__).resolve().parent.parent

RAY_START_STOP = (
    "from edge_ae.jobs import ray_engine\n"
    "ray_engine.connect(None)\n"
    "import ray\n"
    "ray.shutdown()\n"
)
# Starts a local instance, prints its address, holds it until stdin closes.
RAY_HOLD = (
    "import sys\n"
    "from edge_ae.jobs import ray_engine\n"
    "ray_engine.connect(None)\n"
    "import ray\n"
    "print(ray.get_runtime_context().gcs_address, flush=True)\n"
    "sys.stdin.read()\n"
    "ray.shutdown()\n"
)


def _timed(cmd: list[str], *, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def _run_config(name: str, cmd: list[str], out: Path, *, count: int, label: str,
                env: dict[str, str] | None = None) -> float:
    shutil.rmtree(out, ignore_errors=True)
    seconds = _timed(cmd, env=env)
    written = len(list(out.iterdir()))
    if written != count:
        raise SystemExit(f"{name}: {written} outputs, expected {count}")
    print(f"{label} {name}: {seconds:.1f} s ({count / seconds:.2f} images/s)", flush=True)
    return seconds


def _joined(base: list[str], out: Path, *, count: int, label: str) -> float:
    """One ``--ray ADDRESS`` run against a local instance that a helper process started (untimed)
    and holds until the run is over."""
    holder = subprocess.Popen([sys.executable, "-c", RAY_HOLD], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        address = holder.stdout.readline().strip()
        if not address.startswith("127.0.0.1:"):
            raise SystemExit(f"the held Ray instance did not start on the loopback interface: {address!r}")
        # A local instance uses Ray's token authentication; a second driver must ask for it.
        env = {**os.environ, "RAY_AUTH_MODE": "token"}
        return _run_config("ray_join", [*base, "-o", str(out), "--ray", address], out, count=count, label=label, env=env)
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=120)


def measure(folder: Path, *, count: int, repeat: int, model: str | None) -> dict[str, list[float]]:
    """Seconds of every run of each configuration, the configurations taking turns."""
    base = [sys.executable, "-m", "edge_ae", "denoise", str(folder)] + (["-m", model] if model else [])
    out = folder.parent / "out"
    runs: dict[str, list[float]] = {name: [] for name in ("jobs2", "ray", "ray_start", "ray_join")}
    for i in range(repeat):
        label = f"run {i + 1}/{repeat}"
        runs["jobs2"].append(_run_config("jobs2", [*base, "-o", str(out), "--jobs", "2"], out, count=count, label=label))
        runs["ray"].append(_run_config("ray", [*base, "-o", str(out), "--ray"], out, count=count, label=label))
        runs["ray_start"].append(_timed([sys.executable, "-c", RAY_START_STOP]))
        print(f"{label} Ray start+stop alone: {runs['ray_start'][-1]:.1f} s", flush=True)
        runs["ray_join"].append(_joined(base, out, count=count, label=label))
    return runs


def render(runs: dict[str, list[float]], *, count: int, size: str, repeat: int, command: str, minutes: float,
           load: tuple[float, float, float]) -> str:
    import ray

    best = {name: min(times) for name, times in runs.items()}
    local, remote, start, join = best["jobs2"], best["ray"], best["ray_start"], best["ray_join"]
    rows = [
        ("`edge-ae denoise DIR -o OUT --jobs 2` (2 processes, 1 thread each)", "jobs2"),
        ("`edge-ae denoise DIR -o OUT --ray` (starts and stops a local Ray; 2 actors, 1 CPU each)", "ray"),
        ("`edge-ae denoise DIR -o OUT --ray 127.0.0.1:PORT` (joins a Ray already running here; 2 actors)", "ray_join"),
    ]
    # How far the runs of one configuration lay apart: differences below it are the other jobs' doing.
    spread = max(max(runs[key]) / min(runs[key]) - 1 for _, key in rows)

    def versus(seconds: float) -> str:
        change = seconds / local - 1
        return f"{abs(change):.0%} {'more' if change >= 0 else 'less'} time than `--jobs 2`"

    lines = [
        "## Batch cleaning on Ray (`edge-ae denoise --ray`)",
        "",
        f"Command: `{command}` — {datetime.date.today()}, {platform.machine()} CPU, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Ray {ray.__version__}, {minutes:.0f} min; "
        f"load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other jobs on the machine). "
        f"{count} synthetic noisy {size} color PNGs (`python -m tools.make_noisy_folder`, seed 0), default model; "
        f"{repeat} runs of each, taking turns, a fresh process each time, wall clock from start to exit; "
        "images/s from the fastest run.",
        "",
        "| run | fastest | slowest | images/s |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {min(runs[key]):.1f} s | {max(runs[key]):.1f} s | {count / min(runs[key]):.2f} |"
              for name, key in rows]
    lines += [
        "",
        f"Ray's overhead on {count} images: starting and stopping a private local instance takes {start:.1f} s "
        f"(timed alone: a fixed cost per run, large for a small folder). Fastest runs: `--ray` took {versus(remote)}, "
        f"joining a running instance, as on a cluster, {versus(join)}; the runs of one configuration lay up to "
        f"{spread:.0%} apart, so a difference smaller than that is the other jobs', not Ray's. "
        "On one machine `--jobs` needs nothing more; `--ray` is for more machines.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model", help="model name (default: the CLI's default)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "ray.md")
    ap.add_argument("--no-rebuild", action="store_true", help="do not rebuild docs/BENCHMARKS.md")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    load = os.getloadavg()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        folder = Path(tmp) / "noisy"
        write_folder(folder, count=args.count, width=width, height=height, sigma=25.0, seed=0)
        runs = measure(folder, count=args.count, repeat=args.repeat, model=args.model)
    niceness = os.nice(0)
    command = " ".join([*(["nice", "-n", str(niceness)] if niceness else []), "python -m tools.bench_ray", *sys.argv[1:]])
    text = render(runs, count=args.count, size=args.size, repeat=args.repeat, command=command,
                  minutes=(time.monotonic() - start) / 60, load=load)
    args.out.write_text(text)
    if not args.no_rebuild:
        from tools.benchmarks_md import main as rebuild

        rebuild()
    print(text)


if __name__ == "__main__":
    main()
