"""The CPU as far as inference speed goes: architecture, cores, whether it has the 8-bit
dot-product instructions onnxruntime's fast 8-bit kernels use, and whether this process runs
under an emulator (then timings say nothing about the device).

On arm64 the dot-product bit is the kernel's ``AT_HWCAP`` bit 20 (asimddp, Armv8.2 DotProd):
the Raspberry Pi 5's Cortex-A76 has it, the Pi 4's Cortex-A72 does not. onnxruntime makes the
same test to pick its 8-bit GEMM kernels. On x86 the counterpart is AVX-VNNI / AVX512-VNNI.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

AT_HWCAP = 16
HWCAP_ASIMDDP = 1 << 20
ARM64 = ("aarch64", "arm64")
X86_SIGNS = ("vendor_id", "GenuineIntel", "AuthenticAMD")


@dataclass(frozen=True)
class CpuInfo:
    machine: str  # platform.machine(): x86_64, aarch64, ...
    cores: int  # logical CPUs this process may use
    model: str  # the CPU's name where the system says it, else ""
    int8_dot: bool | None  # 8-bit dot-product instructions (None: unknown)
    int8_dot_name: str  # "asimddp", "avx512_vnni", ... or "" when absent/unknown
    emulated: str | None  # why this process looks emulated, or None

    def describe(self) -> str:
        dot = "unknown" if self.int8_dot is None else (f"yes ({self.int8_dot_name})" if self.int8_dot else "no")
        name = f", {self.model}" if self.model else ""
        return f"{self.machine}{name}, {self.cores} cores, 8-bit dot product: {dot}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def arm64_hwcap() -> int | None:
    """``getauxval(AT_HWCAP)`` (under qemu-user: the emulated CPU's), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.getauxval.restype = ctypes.c_ulong
        libc.getauxval.argtypes = [ctypes.c_ulong]
        return int(libc.getauxval(AT_HWCAP))
    except (OSError, AttributeError):
        return None


def emulation_reason(*, machine: str | None = None, environ: Mapping[str, str] | None = None,
                     cpuinfo: str | None = None) -> str | None:
    """Why this process looks emulated (qemu-user), or None if nothing says so. Not every
    emulator can be told from the inside; these are the signs qemu-user leaves."""
    machine = platform.machine() if machine is None else machine
    env: Mapping[str, str] = os.environ if environ is None else environ
    for var in ("QEMU_CPU", "QEMU_LD_PREFIX"):
        if env.get(var):
            return f"{var}={env[var]} is set (qemu-user)"
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    if machine in ARM64 and any(sign in text for sign in X86_SIGNS):
        # qemu-user (before 8.1) passes the host's /proc/cpuinfo through to the guest
        return "an arm64 process sees an x86 /proc/cpuinfo (qemu-user)"
    return None


def _model_name(cpuinfo: str) -> str:
    for key in ("model name", "Model", "Hardware"):
        for line in cpuinfo.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return ""


def cpu_info() -> CpuInfo:
    machine = platform.machine()
    text = _read("/proc/cpuinfo")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    dot: bool | None = None
    dot_name = ""
    if machine in ARM64:
        hwcap = arm64_hwcap()
        if hwcap is not None:
            dot = bool(hwcap & HWCAP_ASIMDDP)
            dot_name = "asimddp" if dot else ""
    elif machine in ("x86_64", "AMD64") and text:
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
        found = [f for f in ("avx512_vnni", "avx_vnni") if f in flags]
        dot, dot_name = bool(found), ", ".join(found)
    emulated = emulation_reason(machine=machine, cpuinfo=text)
    # under emulation /proc/cpuinfo may name the host's CPU, not the one being emulated
    model = "" if emulated else _model_name(text)
    return CpuInfo(machine=machine, cores=cores, model=model, int8_dot=dot, int8_dot_name=dot_name, emulated=emulated)
