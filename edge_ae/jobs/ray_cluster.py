"""Start or join the Ray instance of ``edge-ae denoise --ray``, and fail fast and in one line when
that cannot work.

Ray left alone retries an address where nothing listens for minutes, printing its own warnings;
waits silently for ever for CPUs no node has; prints its C++ core's log lines on the user's
terminal; and, after a ``kill -9`` of the driver, its agents stay up for a minute. Here: the
address is tried with a plain TCP connection first (a few seconds), what a joined cluster cannot
hold is refused, the private instance is sized to fit the request, Ray's logs stay in its log
folder unless verbose, and a kill -9 of the driver takes the private instance with it
(``ray_reaper``).

Ray is imported only inside these functions.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from typing import Any

from edge_ae.errors import EdgeAEError
from edge_ae.files.native_stderr import NativeStderr
from edge_ae.jobs import ray_reaper

# A GCS (HOST:PORT) that does not accept a TCP connection within this many seconds is taken as
# absent. A connection across a busy network takes well under 1 s.
CONNECT_TIMEOUT_S = 5.0

# A local instance started for one command is a tool, not a cluster: small object store (rows
# carry only paths), no dashboard.
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2

# The watcher of the private instance started by this process (ray_reaper), if any.
_reaper: subprocess.Popen | None = None


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # the Data library is a separate import
    except ImportError:
        raise EdgeAEError('--ray needs Ray Data: pip install "edge-ae[ray]"') from None
    return ray


def connect(address: str | None, *, num_cpus: int | None = None, verbose: bool = False) -> bool:
    """Join the Ray cluster at ``address`` ("auto" or "HOST:PORT"), or start a private local
    instance on the loopback interface with ``num_cpus`` (default: all) when None. Returns True
    when this call started or joined it (so the caller shuts it down), False when Ray was already
    initialised. ``verbose``: let Ray's own log lines reach the terminal.

    Raises EdgeAEError (one line) for an address of another form (``check_address``), when nothing
    answers at the address within CONNECT_TIMEOUT_S, or when Ray fails to start or join."""
    if address is not None:
        check_address(address)
    if address is None or _is_loopback(address):
        # Read by every Ray process when it imports ray (raylet and workers inherit it): the node
        # address becomes 127.0.0.1, so a local instance listens on and talks to the loopback only,
        # and a driver joining one at 127.0.0.1 is not redirected to the machine's network address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if not verbose:
        # The C++ core writes its warnings (connection retries, actor notes) straight to this
        # process's stderr; Python's logging level does not reach it. Read when ray.init starts it.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address is not None:
        _check_reachable(ray, address)
    quiet = {"logging_level": logging.WARNING if verbose else logging.ERROR, "log_to_driver": verbose}
    # While ray.init runs, its C++ client logs retries to descriptor 2 before the log level above
    # applies (a port that answers but is not a GCS: one warning a second for 20 s).
    caught = NativeStderr()
    try:
        with caught:
            if address is None:
                before = ray_reaper.children(os.getpid()) if ray_reaper.supported() else set()
                ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, _node_ip_address="127.0.0.1",
                         object_store_memory=LOCAL_OBJECT_STORE_BYTES, **quiet)
                if ray_reaper.supported():  # the processes ray.init started: the instance's GCS, raylet, ...
                    global _reaper
                    ray_reaper.stop(_reaper)
                    _reaper = ray_reaper.start(ray_reaper.children(os.getpid()) - before)
            else:
                ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local instance"
        reason = str(exc).strip().splitlines()[0]
        if b"InvalidAuthToken" in caught.data:  # what Ray said on descriptor 2 while it retried
            reason = ("the cluster uses token authentication: set RAY_AUTH_MODE=token and the cluster's token "
                      "(RAY_AUTH_TOKEN or ~/.ray/auth_token)")
        raise EdgeAEError(f"cannot start or join Ray at {where}: {reason}") from None
    finally:
        if verbose:
            caught.pass_on()
    return True


def shutdown(ray: Any) -> None:
    """Leave or stop what ``connect`` started; a private instance's stragglers are killed."""
    global _reaper
    ray.shutdown()
    ray_reaper.stop(_reaper)
    _reaper = None


def check_fits(ray: Any, *, threads: int, workers: int | None) -> None:
    """Refuse, in one line, a request the joined cluster cannot schedule: Ray would otherwise wait
    for ever, silently, for a node with ``threads`` CPUs or for ``workers`` x ``threads`` CPUs."""
    nodes = [n for n in ray.nodes() if n.get("Alive", n.get("alive", True))]
    largest = max((float(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0.0)
    total = float(ray.cluster_resources().get("CPU", 0))
    if threads > largest:
        raise EdgeAEError(f"--threads {threads} needs a Ray node with {threads} CPUs; the largest node of this "
                          f"cluster has {largest:g}: use --threads {max(1, int(largest))} or fewer")
    if workers is not None and workers * threads > total:
        raise EdgeAEError(f"--jobs {workers} x --threads {threads} needs {workers * threads} CPUs; this cluster has "
                          f"{total:g}: use --jobs {max(1, int(total // threads))} or fewer (or leave --jobs out)")


def private_cpus(*, threads: int, workers: int | None) -> int:
    """CPUs to declare for a private instance: the machine's, or more when the request asks for
    more, so that it runs (oversubscribed, as ``--jobs``/``--threads`` do without Ray) instead of
    waiting for CPUs that will never come."""
    return max(os.cpu_count() or 1, threads * (workers or 1))


def check_address(address: str) -> None:
    """A usage error, before any work, for an address ``connect`` cannot use."""
    if "://" in address:
        # Ray Client (ray://) connects, but Ray Data's executor needs a driver on a cluster node:
        # with Ray 2.60 the run fails on its first batch ("'Worker' object has no attribute 'core_worker'").
        raise EdgeAEError(f"--ray {address}: Ray Client (ray://) cannot run Ray Data; run edge-ae on a node of the "
                          "cluster with --ray auto, or give the head's HOST:PORT (docs/SCALE_OUT.md)")
    if address != "auto":
        _host_port(address, given=address)


def _check_reachable(ray: Any, address: str) -> None:
    host, port = _host_port(_resolve(ray, address), given=address)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
        raise EdgeAEError(f"cannot join Ray at {address}: nothing answers at {host}:{port} ({reason}, "
                          f"waited up to {CONNECT_TIMEOUT_S:g} s); is the cluster started (ray start --head)?") from None


def _resolve(ray: Any, address: str) -> str:
    """HOST:PORT of the GCS that ray.init(address) would join ("auto": RAY_ADDRESS or the last
    `ray start` on this machine), found the way Ray finds it."""
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # a Ray without this helper: trust the address as given
        return address
    try:
        resolved = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as exc:
        raise EdgeAEError(f"cannot join Ray at {address}: {str(exc).strip().splitlines()[0]}") from None
    return resolved or address


def _host_port(text: str, *, given: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EdgeAEError(f"--ray expects HOST:PORT (the head's GCS port, 6379 by default) or auto, got {given!r}")
    return host, int(port)


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")
