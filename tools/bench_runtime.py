"""Runtime start-up and large-image figures: import time, default model load time, and the time
and peak memory to denoise a 4000x3000 color photo.

    python -m tools.bench_runtime          # writes docs/benchmarks/speed.md

Each measurement runs in a fresh Python process (so imports are cold and peak memory, read from
the kernel's max-RSS for that process, belongs to that one job).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STARTUP = """
import time, json
t0 = time.perf_counter()
import edge_ae
t1 = time.perf_counter()
d = edge_ae.Denoiser("denoise-color", threads=2, precision="float")
t2 = time.perf_counter()
import sys
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "torch_imported": "torch" in sys.modules}))
"""

LARGE = """
import json, resource, time
import numpy as np
import edge_ae
rng = np.random.default_rng(0)
image = rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
d = edge_ae.Denoiser("{model}", threads=2, precision="float")  # the named model, never its 8-bit twin
t = time.perf_counter()
out = d(image)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "peak_rss_mb": peak / 1024, "before_mb": base / 1024, "shape": list(out.shape)}}))
"""


def run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "speed.md")
    args = ap.parse_args()
    starts = [run(STARTUP) for _ in range(args.repeat)]
    starts.sort(key=lambda r: r["import_s"] + r["load_s"])
    median = starts[len(starts) // 2]
    large = {m: run(LARGE.format(model=m)) for m in ("denoise-color", "denoise-color-fast")}
    lines = [
        "## Runtime start-up and large images",
        "",
        f"Command: `python -m tools.bench_runtime` — {datetime.date.today().isoformat()}, {platform.machine()} CPU, "
        f"Python {platform.python_version()}; each figure from a fresh process.",
        "",
        "| measurement | result |",
        "|---|---|",
        f"| `import edge_ae` (median of {args.repeat} cold starts) | {median['import_s'] * 1000:.0f} ms |",
        f"| load `denoise-color` (sha256 check + session) | {median['load_s'] * 1000:.0f} ms |",
        f"| torch imported by the runtime | {'**yes**' if median['torch_imported'] else 'no'} |",
    ]
    for model, r in large.items():
        lines.append(f"| 4000x3000 color uint8 with `{model}`, 2 threads: time / peak memory of the process | "
                     f"{r['seconds']:.1f} s / {r['peak_rss_mb']:.0f} MB ({r['before_mb']:.0f} MB before the call, "
                     f"the input image included) |")
    ok = all(r["peak_rss_mb"] < 1024 for r in large.values())
    lines += ["", f"Target: peak memory under 1 GB for a 4000x3000 color photo — {'met' if ok else '**missed**'}.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    if args.out.resolve().parent == (ROOT / "docs" / "benchmarks").resolve():
        from tools.benchmarks_md import main as rebuild

        rebuild()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
