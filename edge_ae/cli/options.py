"""Options every command spells the same way, defined once: the model a command runs
(``-m/--model``), inference threads, 8-bit or float, and the notes that keep old spellings
working for a while.

One convention so a user can guess: ``-m NAME`` names the model a command runs (camera keeps
``--denoise``/``--anomaly`` for its two roles); ``--threads N`` is inference threads per process,
all cores by default; ``--precision auto|float|int8`` picks between a denoiser and its 8-bit twin.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from edge_ae.cli.values import positive_int
from edge_ae.denoise.precision import PRECISIONS
from edge_ae.errors import EdgeAEError
from edge_ae.model.registry import list_models

THREADS_HELP = ("inference threads per process (default: all cores this process may use, shared among "
                "--jobs processes where there are several)")


def usable_cores() -> int:
    """The logical CPUs this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_threads(threads: int | None, *, jobs: int = 1) -> int:
    """``--threads`` as given, else all usable cores divided among ``jobs`` processes."""
    return threads if threads is not None else max(1, usable_cores() // max(1, jobs))


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, metavar="N", help=THREADS_HELP)


def add_model(parser: argparse.ArgumentParser, what: str, *, default: str | None = None,
              default_help: str | None = None, several: bool = False, paths: bool = True) -> None:
    """``-m/--model``: the model this command runs. ``several``: a list (``-m A B`` or ``-m A -m B``).
    ``paths``: whether an .onnx path is accepted besides a shipped name (bench times manifest entries only)."""
    shown = default_help or (f"default {default}" if default else None)
    accepted = "a shipped model name (edge-ae models)" + (" or an .onnx path" if paths else "")
    help_text = f"{what}: {accepted}" + (f" ({shown})" if shown else "")
    if several:
        parser.add_argument("-m", "--model", nargs="+", action="extend", metavar="NAME", default=default,
                            help=help_text)
    else:
        parser.add_argument("-m", "--model", metavar="NAME", default=default, help=help_text)


PRECISION_HELP = ("auto (default): the 8-bit twin of a shipped denoiser where this CPU has 8-bit dot products and "
                  "the twin loses at most 0.1 dB on the benchmark, else float; float or int8 force one")


def add_precision(parser: argparse.ArgumentParser, *, bench: bool = False) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help=PRECISION_HELP + (" (bench: every model is timed as named; the recommendation considers "
                                               "the denoisers this precision runs)" if bench else
                                               " (-v says which ran and why)"))


def deprecated(old: str, new: str) -> None:
    """One line on stderr for an old spelling that still works."""
    print(f"note: {old} is deprecated and will be removed; write {new}", file=sys.stderr)


def add_old_positional_model(parser: argparse.ArgumentParser) -> None:
    """The model as a positional argument, as info/calibrate/check took it before ``-m``: hidden
    from help, still accepted (``take_model`` says it is deprecated)."""
    parser.add_argument("old_model", nargs="?", metavar="MODEL", help=argparse.SUPPRESS)


def take_model(args: argparse.Namespace, command: str, *, required: bool = False) -> Any:
    """Merge the hidden positional model into ``args.model`` with a deprecation note; both given is
    a usage error, neither (when ``required``) too."""
    old = getattr(args, "old_model", None)
    if old is not None:
        if args.model is not None:
            raise argparse.ArgumentTypeError(f"two models given ({old} and -m {args.model}): name one, with -m")
        deprecated(f"'edge-ae {command} MODEL'", f"'edge-ae {command} -m MODEL'")
        args.model = old
    if required and args.model is None:
        raise argparse.ArgumentTypeError(f"edge-ae {command}: name the model with -m NAME (edge-ae models lists them)")
    return args.model


def default_anomaly_model() -> str:
    """The anomaly model a command runs when none is named: the one shipped, if there is one."""
    shipped = list_models("anomaly")
    if len(shipped) != 1:
        names = ", ".join(e.name for e in shipped) or "none"
        raise EdgeAEError(f"choose an anomaly model with -m (shipped anomaly models: {names})")
    return shipped[0].name
