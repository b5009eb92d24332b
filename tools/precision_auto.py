"""What ``precision="auto"`` runs on this CPU, for each shipped denoiser with an 8-bit twin, and why.

    python -m tools.precision_auto            # or: python tools/precision_auto.py

The rule (``edge_ae/denoise/precision.py``) needs only the standard library: the CPU's 8-bit
dot-product bit and the manifest's benchmark figures. So this script also runs on a bare Python
without numpy or onnxruntime, such as an emulated Arm core under qemu-user without a whole
Debian root (docs/experiments/2026-12-06-precision-auto.md):

    QEMU_CPU=cortex-a76 qemu-aarch64-static -L ARM64ROOT ARM64ROOT/usr/bin/python3.11 tools/precision_auto.py
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _precision_module():
    try:
        from edge_ae.denoise import precision
    except ImportError:
        # A bare Python (no numpy): the package's __init__ imports the whole runtime, the rule
        # needs none of it, so the package is entered without running its __init__.
        for name in [m for m in sys.modules if m == "edge_ae" or m.startswith("edge_ae.")]:
            del sys.modules[name]
        package = types.ModuleType("edge_ae")
        package.__path__ = [str(ROOT / "edge_ae")]
        sys.modules["edge_ae"] = package
        from edge_ae.denoise import precision
    return precision


def main() -> int:
    precision = _precision_module()
    from edge_ae.hardware import cpu_info
    from edge_ae.model.registry import list_models

    cpu = cpu_info()
    print(f"CPU: {cpu.describe()}" + (f" (emulated: {cpu.emulated})" if cpu.emulated else ""))
    names = {e.name for e in list_models("denoiser")}
    for name in sorted(n for n in names if n + precision.TWIN_SUFFIX in names):
        print(f"  {name:<20} -> {precision.choose(name, 'auto', cpu=cpu).describe()}")
    return 0


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    sys.exit(main())
