"""Entry point: ``edge-ae`` / ``python -m edge_ae``. User mistakes end in a one-line message
and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys

from edge_ae import __version__
from edge_ae.cli import anomaly, bench, camera, denoise, embed, models
from edge_ae.errors import EdgeAEError

ANOMALY_SUBCOMMANDS = {
    "calibrate": "edge_ae.cli.anomaly_calibrate",
    "check": "edge_ae.cli.anomaly_check",
    "fit": "edge_ae.cli.anomaly_fit",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-ae", description="Denoise images and flag visual anomalies with ONNX autoencoders."
    )
    parser.add_argument("--version", action="version", version=f"edge-ae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    denoise.add_parser(sub)
    models.add_parser(sub)
    embed.add_parser(sub)
    anomaly.add_parser(sub)
    camera.add_parser(sub)
    bench.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == "anomaly" and argv[1] in ANOMALY_SUBCOMMANDS:
        # 'anomaly' takes image paths positionally, so its sub-commands are told apart by the
        # word itself (a folder of that name is scored as ./calibrate) and parse on their own.
        module = importlib.import_module(ANOMALY_SUBCOMMANDS[argv[1]])
        args = module.build_parser().parse_args(argv[2:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (EdgeAEError, argparse.ArgumentTypeError) as exc:
        print(f"edge-ae: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nedge-ae: interrupted; finished outputs are kept, nothing is half-written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
