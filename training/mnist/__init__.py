"""The original MNIST autoencoder recipes (issue 4), in PyTorch, exported under the edge-ae
contract.

    python -m training.mnist <recipe>|all [--out runs/mnist]

Each recipe trains with a fixed seed and writes ``runs/mnist/<recipe>/metrics.json`` plus its
plots; the shipped ones also export to ``exported/`` and update the manifest. The report
``docs/SEEDS.md`` is rendered from those JSON files by ``tools/seeds_report.py``.
"""
