"""Parameters and multiply-adds per pixel of an ONNX model, counted from its graph.

    python -m tools.macs exported/denoise-color.onnx

Counts Conv, ConvTranspose, Gemm and MatMul nodes at a fixed probe size (shape inference with
the ``onnx`` package), divided by the number of input pixels. Element-wise work is not counted.
In an 8-bit (QDQ) model a weight reaches its node through DequantizeLinear; it is followed back
to its initializer, and quantization scales and zero points are not counted as parameters.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import onnx
from onnx import numpy_helper, shape_inference


def count(path: Path, height: int = 256, width: int = 256) -> tuple[int, float]:
    """(parameters, multiply-adds per input pixel)."""
    model = onnx.load(str(path))
    qdq = {"QuantizeLinear", "DequantizeLinear"}
    scales = {i for n in model.graph.node if n.op_type in qdq for i in n.input[1:]}
    params = sum(int(numpy_helper.to_array(t).size) for t in model.graph.initializer if t.name not in scales)
    image = next((i for i in model.graph.input if i.name == "image"), model.graph.input[0])
    dims = image.type.tensor_type.shape.dim
    if len(dims) == 4:
        for d, v in zip(dims, (1, None, height, width), strict=True):
            if v is not None:
                d.ClearField("dim_param")
                d.dim_value = v
    for i in model.graph.input:
        if i.name != image.name:
            other = i.type.tensor_type.shape.dim
            # A per-pixel input (a denoiser's noise map) has the image's height and width.
            sizes = (1, 1, height, width) if len(other) == 4 else (1,) * len(other)
            for d, v in zip(other, sizes, strict=True):
                if d.dim_param:
                    d.ClearField("dim_param")
                    d.dim_value = v
    inferred = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    for n in model.graph.node:  # a dequantized weight has its initializer's shape
        if n.op_type == "DequantizeLinear" and n.input[0] in weights:
            weights[n.output[0]] = weights[n.input[0]]
    macs = 0
    for node in inferred.graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            w = weights[node.input[1]]
            if node.op_type == "Conv":
                out = shapes[node.output[0]]
                macs += math.prod(out) * math.prod(w[1:])  # each output: Cin/groups * kh * kw
            else:
                inp = shapes[node.input[0]]
                macs += math.prod(inp) * math.prod(w[1:])  # each input scatters Cout/groups * kh * kw
        elif node.op_type in ("Gemm", "MatMul"):
            gw = weights.get(node.input[1])
            a = shapes.get(node.input[0])
            if gw and a:
                macs += math.prod(a[:-1]) * gw[0] * gw[1]
    pixels = height * width if len(dims) == 4 else 1
    return params, macs / pixels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path)
    for path in ap.parse_args().models:
        params, per_pixel = count(path)
        print(f"{path.name}: {params:,} parameters, {per_pixel:,.0f} multiply-adds per pixel")


if __name__ == "__main__":
    main()
