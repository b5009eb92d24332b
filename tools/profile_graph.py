"""Where a denoiser's time goes: onnxruntime's own profiler over the graph's nodes, on one
640x480 frame at 2 threads, so a speed change can be aimed at the layers that cost the most.

    python -m tools.profile_graph exported/denoise-color-int8.onnx
    python -m tools.profile_graph exported/denoise-color.onnx exported/denoise-color-int8.onnx --top 5

For each file: the nodes that took the longest (milliseconds per run, the mean over ``--repeat``
profiled runs after a warm-up), their share of the kernel time, and the total. Profiling adds a
little overhead per node, so the totals run above ``tools/time_config.py``'s graph times; compare
nodes within one run rather than totals across runs (this host's speed drifts). Needs only the
runtime's packages.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from edge_ae import load_model, make_session

THREADS = 2
HEIGHT, WIDTH = 480, 640
KERNEL_SUFFIX = "_kernel_time"


def profile(model: str, repeat: int) -> tuple[Path, Counter[tuple[str, str]]]:
    """The file of ``model`` and the mean microseconds per run of each (op type, node name)."""
    loaded = load_model(model, kind="denoiser")  # validates the file; channels and inputs from its metadata
    spec = loaded.spec
    feeds = {"image": np.random.default_rng(0).random((1, spec.channels, HEIGHT, WIDTH), dtype=np.float32)}
    if spec.noise_input:
        feeds["sigma"] = np.full((1, 1), 25 / 255, np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        session = make_session(loaded.path, THREADS, profile_prefix=str(Path(tmp) / "profile"))
        for _ in range(repeat + 1):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: Counter[tuple[str, str]] = Counter()
    seen: set[str] = set()
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith(KERNEL_SUFFIX):
            continue
        if name not in seen:  # each node runs once per run: its first event is the warm-up run, which allocates
            seen.add(name)
            continue
        totals[(event["args"]["op_name"], name[: -len(KERNEL_SUFFIX)])] += event["dur"] / repeat
    return loaded.path, totals


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="exported denoisers: shipped names or .onnx paths")
    ap.add_argument("--top", type=int, default=10, help="nodes listed per model (default 10)")
    ap.add_argument("--repeat", type=int, default=30, help="profiled runs per model (default 30)")
    args = ap.parse_args(argv)
    for model in args.models:
        _, times = profile(model, args.repeat)
        total = sum(times.values())
        print(f"\n{model}: {total / 1000:.1f} ms of kernel time per 640x480 run, {THREADS} threads")
        print("| op | node | ms | share |")
        print("|---|---|---|---|")
        for (op, node), us in times.most_common(args.top):
            print(f"| {op} | {node} | {us / 1000:.2f} | {us / total:.0%} |")


if __name__ == "__main__":
    main()
