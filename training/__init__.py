"""PyTorch side of edge-ae: data, noise models, networks, training loops and ONNX export.

Needs the ``train`` extra (torch, onnx). The runtime package ``edge_ae`` never imports this.
"""
