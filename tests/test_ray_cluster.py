"""``--ray`` fails fast and in one line when it cannot work, keeps Ray's log lines off the terminal,
and a private instance dies with its driver (issue 51, item 10).

The fast tests start no Ray instance. The slow ones start their own, in a subprocess (the module
of tests/test_ray_engine.py has shut its instance down by then); they run in CI.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edge_ae.cli.main import main
from edge_ae.errors import EdgeAEError
from edge_ae.jobs import ray_cluster, ray_reaper

ROOT = Path(__file__).resolve().parent.parent
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason='Ray not installed (pip install "edge-ae[ray]")')
needs_proc = pytest.mark.skipif(not ray_reaper.supported(), reason="needs /proc (Linux)")

# A line of Ray's own logging: "[2026-12-06 16:46:21,716 W 4417 4417] rpc_client.h:153: ..." (C++ core)
# or "2026-12-06 16:49:03,134 ERROR worker.py:..." (Python).
RAY_LOG_LINE = re.compile(r"^\[?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|\((raylet|pid=)|core_worker|rpc_client", re.M)


def _free_port() -> int:
    """A loopback port where nothing listens (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_image(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "a.png"), image)
    return folder


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edge_ae", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


@needs_ray
def test_nothing_listening_at_the_address_is_one_line(tmp_path):
    # Ray alone retried for minutes, printing a warning every few seconds. The timeout only keeps
    # a regression from hanging the suite; the connection attempt itself gives up after 5 s.
    port = _free_port()
    done = _cli("denoise", str(_one_image(tmp_path / "in")), "-o", str(tmp_path / "out"), f"--ray=127.0.0.1:{port}",
                timeout=150)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"edge-ae: error: cannot join Ray at 127.0.0.1:{port}: nothing answers at 127.0.0.1:{port} (connection refused, "
        "waited up to 5 s); is the cluster started (ray start --head)?"]
    assert not list((tmp_path / "out").glob("*.png"))


def test_ray_client_address_is_refused_before_any_work(tmp_path, capsys):
    # Ray Client connects, but Ray Data cannot run through it (Ray 2.60): refused in one line,
    # before the model is loaded or Ray imported.
    src = _one_image(tmp_path / "in")
    assert main(["denoise", str(src), "-o", str(tmp_path / "out"), "--ray=ray://127.0.0.1:10001"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Ray Client (ray://) cannot run Ray Data" in err and "--ray auto" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["head", "head:port", "head:0", ":6379", "head:99999"])
def test_malformed_address_is_a_usage_error(address, tmp_path, capsys):
    assert main(["denoise", str(_one_image(tmp_path / "in")), "-o", str(tmp_path / "out"), f"--ray={address}"]) == 2
    assert "--ray expects HOST:PORT" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["auto", "10.0.0.5:6379", "head.local:6379", "[::1]:6379"])
def test_well_formed_addresses_pass(address):
    ray_cluster.check_address(address)


def _fake_ray(cpus_per_node: list[float]) -> SimpleNamespace:
    nodes = [{"Alive": True, "Resources": {"CPU": c}} for c in cpus_per_node] + [{"Alive": False, "Resources": {"CPU": 64}}]
    return SimpleNamespace(nodes=lambda: nodes, cluster_resources=lambda: {"CPU": sum(cpus_per_node)})


def test_a_request_no_node_can_hold_is_refused():
    # Ray would wait for ever, silently, for a node with 4 CPUs (a dead node does not count).
    ray = _fake_ray([2, 2])
    with pytest.raises(EdgeAEError, match=r"--threads 4 needs a Ray node with 4 CPUs; the largest node of this "
                                          r"cluster has 2: use --threads 2 or fewer"):
        ray_cluster.check_fits(ray, threads=4, workers=None)
    with pytest.raises(EdgeAEError, match=r"--jobs 3 x --threads 2 needs 6 CPUs; this cluster has 4: use --jobs 2"):
        ray_cluster.check_fits(ray, threads=2, workers=3)
    ray_cluster.check_fits(ray, threads=2, workers=2)
    ray_cluster.check_fits(ray, threads=1, workers=None)


def test_a_private_instance_is_sized_to_fit_the_request():
    cores = os.cpu_count() or 1
    assert ray_cluster.private_cpus(threads=1, workers=None) == cores
    assert ray_cluster.private_cpus(threads=cores + 2, workers=None) == cores + 2
    assert ray_cluster.private_cpus(threads=2, workers=cores + 1) == 2 * (cores + 1)


@needs_proc
def test_reaper_kills_the_tree_when_its_driver_is_gone(tmp_path):
    # The watcher alone, on a process tree of sleeps: closing its stdin (the driver's end of the pipe)
    # makes it kill the root and the grandchildren that were re-parented away from it.
    root = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    try:
        deadline = time.monotonic() + 30
        while len(ray_reaper.children(root.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        kids = ray_reaper.children(root.pid)
        assert len(kids) == 2
        watcher = ray_reaper.start({root.pid})
        time.sleep(2 * ray_reaper.POLL_S)
        ray_reaper.stop(watcher)
        assert watcher is not None and watcher.returncode == 0
        root.wait(timeout=10)
        for pid in kids:
            assert not _running(pid), f"grandchild {pid} survived"
    finally:
        root.kill()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@needs_ray
@pytest.mark.slow  # a Ray instance takes ~10-40 s to start on 2 loaded cores
def test_ray_log_lines_stay_out_of_the_terminal(tiny_models, tmp_path):
    src = _one_image(tmp_path / "in")
    done = _cli("denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["color"]), "--ray", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 denoised, 0 failed" in done.stdout
    assert not RAY_LOG_LINE.search(done.stderr), done.stderr
    assert not RAY_LOG_LINE.search(done.stdout), done.stdout


DRIVER = textwrap.dedent("""
    import os, sys, time
    from edge_ae.jobs import ray_engine, ray_reaper
    ray_engine.connect(None, num_cpus=1)
    import ray

    @ray.remote
    def pid():
        return os.getpid()

    ray.get(pid.remote())  # a worker too, not only the instance's own processes
    def tree(root):
        found, todo = set(), [root]
        while todo:
            kids = ray_reaper.children(todo.pop())
            found |= kids
            todo.extend(kids)
        return found
    time.sleep(3)  # the agents the raylet starts, and the watcher's first look at them
    print(" ".join(map(str, sorted(tree(os.getpid())))), flush=True)
    time.sleep(600)
""")


@needs_ray
@needs_proc
@pytest.mark.slow  # a Ray instance takes ~10-40 s to start on 2 loaded cores
def test_killed_driver_takes_its_private_instance_with_it(tmp_path):
    # Before: Ray's dashboard and runtime-env agents stayed up about a minute after a kill -9 of
    # the driver (they try to tell the dead GCS). The deadline below is half that.
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        assert driver.stdout is not None
        pids = [int(p) for p in driver.stdout.readline().split()]
        assert len(pids) >= 4, "expected the GCS, raylet, agents and a worker"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 30
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:80] for p in pids if _running(p)}
    for pid in left:  # clean up for the next test, then fail
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running 30 s after kill -9 of the driver: {left}"
