"""Entry point: ``edge-ae`` / ``python -m edge_ae``. User mistakes end in a one-line message
and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from edge_ae import __version__
from edge_ae.cli import anomaly, bench, camera, denoise, embed, models
from edge_ae.cli.values import Parser
from edge_ae.errors import EdgeAEError, WriteError

# What `edge-ae` alone shows under the command list: the two invocations most users want first.
COMMON = (
    "edge-ae denoise photos/ -o clean/            clean a folder of photos (default model by channels)",
    "edge-ae camera --source 0 --record out.mp4   denoise a camera live (the fast models)",
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="edge-ae", description="Denoise images and flag visual anomalies with ONNX autoencoders.",
        epilog="Most used:\n  " + "\n  ".join(COMMON), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"edge-ae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    denoise.add_parser(sub)
    anomaly.add_parser(sub)
    camera.add_parser(sub)
    embed.add_parser(sub)
    models.add_parser(sub)
    bench.add_parser(sub)
    return parser


def overview(parser: argparse.ArgumentParser) -> str:
    """The commands, one line each, and the most used invocations: what `edge-ae` alone prints."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    width = max(len(name) for name in helps)
    lines = ["usage: edge-ae COMMAND [options]   (edge-ae COMMAND --help for its options)", "", "Commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in helps.items()]
    lines += ["", "Most used:", *(f"  {line}" for line in COMMON)]
    return "\n".join(lines)


def _never_fail_on_a_file_name() -> None:
    """A file name that is not valid UTF-8 reaches Python as lone surrogates; printed on a stream
    in strict mode (a UTF-8 locale other than C) it raised after the work was done. Escape it."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _never_fail_on_a_file_name()
    parser = build_parser()
    if not argv:
        print(overview(parser))
        # git run alone prints its commands and exits non-zero (1): a script that calls it without
        # a command did not get what it needed. Here non-zero is 2, this CLI's usage-error status.
        return 2
    args = parser.parse_args(anomaly.with_default_subcommand(argv))
    # SIGTERM would kill at once, leaving temporary files and batch workers behind; as an
    # exception it unwinds like Ctrl-C. Only where it would kill (not under a caller's own
    # handler), and restored after; `edge-ae camera` installs its own to stop between two frames.
    catch = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if catch:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args)
    finally:
        if catch:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, systemd stopping a service), raised where the command is, so it unwinds
    like Ctrl-C: atomic writes remove their temporary files, batch workers are stopped."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Terminated


def _run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except WriteError as exc:  # the command was right; its result could not be saved
        print(f"edge-ae: error: {exc}", file=sys.stderr)
        return 1
    except (EdgeAEError, argparse.ArgumentTypeError) as exc:
        print(f"edge-ae: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("\nedge-ae: interrupted; finished outputs are kept, nothing is half-written", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except BrokenPipeError:
        return 1
    except MemoryError:
        print("edge-ae: error: out of memory", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
