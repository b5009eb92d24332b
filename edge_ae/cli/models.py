"""``edge-ae models`` and ``edge-ae info``: what is shipped, and what a model file says of itself."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from edge_ae.cli.options import add_model, add_old_positional_model, take_model
from edge_ae.model.contract import KINDS
from edge_ae.model.loading import load_model
from edge_ae.model.registry import list_models, models_dir


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the shipped models")
    p.add_argument("--kind", choices=KINDS, metavar="KIND", help=f"only models of this kind: {', '.join(KINDS)}")
    p.set_defaults(func=run_models)
    q = sub.add_parser("info", help="print a model's edge-ae metadata")
    add_model(q, "the model to describe")
    add_old_positional_model(q)
    q.add_argument("--json", action="store_true", help="print the raw metadata as JSON")
    q.set_defaults(func=run_info)


def run_models(args: argparse.Namespace) -> int:
    entries = list_models(args.kind)
    if not entries:
        print(f"no shipped models{' of kind ' + args.kind if args.kind else ''} in {models_dir()}")
        return 0
    width = max(len(e.name) for e in entries)
    for e in entries:
        print(f"{e.name:<{width}}  {e.kind:<11} {'gray ' if e.channels == 1 else 'color'}  {e.description}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    model = load_model(take_model(args, "info", required=True))
    spec = model.spec
    if args.json:
        print(json.dumps(asdict(spec), indent=2))
        return 0
    print(f"{spec.name}  ({model.path})")
    print(f"  kind            {spec.kind}")
    print(f"  channels        {spec.channels} ({spec.color_order}), values {list(spec.value_range)}")
    print(f"  size multiple   {spec.size_multiple}; receptive field {spec.receptive_field}px")
    if spec.input_size:
        print(f"  input size      {spec.input_size[0]}x{spec.input_size[1]}")
    if spec.short_side:
        print(f"  input size      shorter side {spec.short_side}, aspect ratio kept")
    if spec.kind == "denoiser":
        levels = f"{spec.noise_levels[0]:g}-{spec.noise_levels[1]:g} (0-255 scale)" if spec.noise_levels else "n/a"
        print(f"  noise input     {'yes' if spec.noise_input else 'no (blind)'}; trained on sigma {levels}")
    if spec.latent_dim:
        print(f"  latent dim      {spec.latent_dim}")
    if spec.anomaly:
        a = spec.anomaly
        print(f"  threshold       {a.threshold:.6g} ({a.method}, normal scores mean {a.score_mean:.4g} std {a.score_std:.4g})")
    if spec.description:
        print(f"  description     {spec.description}")
    for key, value in spec.provenance.items():
        print(f"  {key:<15} {value}")
    return 0
