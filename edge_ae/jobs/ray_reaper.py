"""Make a private Ray instance die with the process that started it, even after ``kill -9``.

Ray ties its GCS and raylet to the driver (the kernel kills them when it dies), but the raylet's
agents (dashboard agent, runtime-env agent) then spend a minute trying to tell the dead GCS
about it before they exit. This watcher, a small process of its own session (so a Ctrl-C to the
terminal's process group does not stop it first), remembers the processes the instance started
and every descendant of theirs, and kills those still alive once the driver is gone: it learns
that from the end of its standard input, a pipe whose only writer is the driver.

Linux (and anything with /proc) only; elsewhere Ray's own clean-up applies.

Run as ``python -I ray_reaper.py PID...`` (the processes ray.init started); started and stopped by
``ray_cluster``.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

PROC = Path("/proc")

# How often the watcher looks for new descendants (Ray starts workers as it goes).
POLL_S = 1.0


def supported() -> bool:
    return (PROC / "self" / "stat").exists()


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time in clock ticks, state) of a process, or None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    return int(fields[1]), int(fields[19]), fields[0]


def children(pid: int) -> set[int]:
    """Direct children of ``pid`` now."""
    found = set()
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None and info[0] == pid:
                found.add(int(entry.name))
    return found


def _tree(roots: set[int]) -> dict[int, int]:
    """The roots and all their descendants now: pid -> start time (to tell a reused pid apart)."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None:
                table[int(entry.name)] = info
    by_parent: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        by_parent.setdefault(ppid, []).append(pid)
    found: dict[int, int] = {}
    todo = [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = table[pid][1]
            todo.extend(by_parent.get(pid, []))
    return found


def watch(roots: set[int]) -> int:
    """Remember ``roots`` and their descendants until standard input ends, then kill those left."""
    seen = _tree(roots)  # pid -> start time when first seen
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], POLL_S)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break
        # New descendants of the processes still alive (a pid reused by another process since is not followed).
        for pid, started in _tree(_alive(seen)).items():
            seen.setdefault(pid, started)
    for pid in _alive(seen) - {os.getpid()}:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return 0


def _alive(seen: dict[int, int]) -> set[int]:
    """The remembered processes still running as themselves (same start time, not a zombie)."""
    alive = set()
    for pid, started in seen.items():
        info = _stat(pid)
        if info is not None and info[1] == started and info[2] != "Z":
            alive.add(pid)
    return alive


def start(roots: set[int]) -> subprocess.Popen | None:
    """Start the watcher for ``roots``; closing its stdin (``stop``) or the death of this process
    makes it kill what is left of them."""
    if not roots or not supported():
        return None
    # Run as a file, isolated (-I): it needs only the standard library, and importing the edge_ae
    # package (numpy, onnxruntime, OpenCV) would delay it by seconds on a small CPU.
    return subprocess.Popen([sys.executable, "-I", str(Path(__file__).resolve()), *map(str, sorted(roots))],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(watcher: subprocess.Popen | None) -> None:
    """After ray.shutdown: let the watcher kill any straggler and end."""
    if watcher is None:
        return
    if watcher.stdin is not None:
        watcher.stdin.close()
    try:
        watcher.wait(timeout=10)
    except subprocess.TimeoutExpired:
        watcher.kill()


if __name__ == "__main__":
    sys.exit(watch({int(a) for a in sys.argv[1:]}))
