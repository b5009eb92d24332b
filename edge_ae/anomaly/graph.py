"""Write a fitted feature-memory anomaly model as ONE self-contained ONNX graph (needs ``onnx``,
imported here only, so ``import edge_ae`` stays light).

The graph: the frozen feature extractor's nodes, then for every feature patch the distance to its
nearest neighbour in the memory of normal patches, as one matrix product against an initializer
(|a - b|^2 = |a|^2 + min over the memory of (|b|^2 - 2 a.b), the bracket one product of [a, 1]),
resized bilinearly to the input size (cell i at pixel i * stride),
smoothed with a Gaussian (reflected borders, so a defect at the edge keeps its height), and the
image score = the mean of the map's highest pixels (a fixed count: 1 % of size x size by default).
Inputs and outputs follow the anomaly contract (``image`` ->
``anomaly_map``, ``score``); the input keeps the extractor's dynamic height and width, so the same
graph serves fixed-size and aspect-keeping models.
"""

from __future__ import annotations

import numpy as np

OPSET = 17


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps, radius ceil(3 sigma) (what the graph and a reference use)."""
    radius = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def build_anomaly_graph(features_model: bytes, memory: np.ndarray, *, blur_sigma: float, channels: int,
                        metadata: dict[str, str], score_pixels: int = 1,
                        projection: tuple[np.ndarray, np.ndarray] | None = None, doc: str = ""):
    """The anomaly model (an ``onnx.ModelProto``) from the extractor's serialized ONNX, whose output
    ``features`` is (N, D, h, w), and ``memory`` (M, d): the normal patches. With ``projection``
    (mean (D,), axes (D, d)) every patch is first centred and projected, ``(f - mean) @ axes``, the
    space ``memory`` is in. The image score is the mean of the map's ``score_pixels`` highest pixels
    (1: its maximum)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    feat = onnx.load_from_string(features_model)
    graph = feat.graph
    fout = graph.output[0].name
    memory = np.ascontiguousarray(memory, dtype=np.float32)
    kernel = gaussian_kernel(blur_sigma)
    radius = (kernel.size - 1) // 2

    def const(name: str, value: np.ndarray):
        return numpy_helper.from_array(np.asarray(value), name=f"nn/{name}")

    inits = [
        # (d + 1, M): -2 b above |b|^2, so [a, 1] @ it = |b|^2 - 2 a.b in one product (a separate
        # broadcast Add over the (P, M) distances cost half as much again as the product).
        const("memory_t_neg2", np.vstack([-2.0 * memory.T, np.einsum("ij,ij->i", memory, memory)[None]]).astype(np.float32)),
        const("ones_pad", np.array([0, 0, 0, 0, 0, 1], np.int64)),
        const("one_f", np.array(1.0, np.float32)),
        const("flat_shape", np.array([0, 0, -1], np.int64)),  # 0: keep that dimension
        const("one", np.array([1], np.int64)),
        const("i0", np.array([0], np.int64)), const("i1", np.array([1], np.int64)),
        const("i2", np.array([2], np.int64)), const("i4", np.array([4], np.int64)),
        const("blur_v", kernel.reshape(1, 1, -1, 1)), const("blur_h", kernel.reshape(1, 1, 1, -1)),
        const("blur_pads", np.array([0, 0, radius, radius, 0, 0, radius, radius], np.int64)),
    ]
    n = helper.make_node
    nodes = [
        n("Shape", [fout], ["nn/f_shape"]),
        n("Slice", ["nn/f_shape", "nn/i0", "nn/i1"], ["nn/f_batch"]),
        n("Slice", ["nn/f_shape", "nn/i2", "nn/i4"], ["nn/f_hw"]),
        n("Concat", ["nn/f_batch", "nn/f_hw"], ["nn/grid"], axis=0),  # (N, h, w)
        n("Reshape", [fout, "nn/flat_shape"], ["nn/flat"]),  # (N, D, P)
        n("Transpose", ["nn/flat"], ["nn/patches_full"], perm=[0, 2, 1]),  # (N, P, D)
    ]
    patches = "nn/patches_full"
    if projection is not None:
        mean, axes = projection
        inits += [const("proj_mean", np.asarray(mean, np.float32).reshape(-1)),
                  const("proj_axes", np.asarray(axes, np.float32))]
        nodes += [n("Sub", [patches, "nn/proj_mean"], ["nn/centred"]),
                  n("MatMul", ["nn/centred", "nn/proj_axes"], ["nn/patches"])]  # (N, P, d)
        patches = "nn/patches"
    nodes += [
        n("Pad", [patches, "nn/ones_pad", "nn/one_f"], ["nn/patches_1"], mode="constant"),  # (N, P, d + 1): [a, 1]
        n("MatMul", ["nn/patches_1", "nn/memory_t_neg2"], ["nn/partial"]),  # (N, P, M): |b|^2 - 2 a.b
        n("ReduceMin", ["nn/partial"], ["nn/nearest"], axes=[2], keepdims=0),  # (N, P)
        n("ReduceSumSquare", [patches], ["nn/patch_sq"], axes=[2], keepdims=0),  # (N, P)
        n("Add", ["nn/nearest", "nn/patch_sq"], ["nn/dist_sq"]),
        n("Relu", ["nn/dist_sq"], ["nn/dist_sq_pos"]),  # rounding can dip just below zero
        n("Sqrt", ["nn/dist_sq_pos"], ["nn/dist_flat"]),
        n("Reshape", ["nn/dist_flat", "nn/grid"], ["nn/dist"]),  # (N, h, w)
        n("Unsqueeze", ["nn/dist", "nn/i1"], ["nn/dist4"]),  # (N, 1, h, w)
        n("Shape", [graph.input[0].name], ["nn/in_shape"]),
        n("Slice", ["nn/in_shape", "nn/i0", "nn/i1"], ["nn/batch"]),
        n("Slice", ["nn/in_shape", "nn/i2", "nn/i4"], ["nn/in_hw"]),
        n("Concat", ["nn/batch", "nn/one", "nn/in_hw"], ["nn/map_size"], axis=0),
        # "asymmetric": input pixel x reads the map at x / stride, so cell i sits at pixel i * stride,
        # where the extractor's symmetric-padded stride-2 convolutions centre it (half_pixel would
        # shift the map by half a cell).
        n("Resize", ["nn/dist4", "", "", "nn/map_size"], ["nn/map_raw"], mode="linear",
          coordinate_transformation_mode="asymmetric"),
        n("Pad", ["nn/map_raw", "nn/blur_pads"], ["nn/map_padded"], mode="reflect"),
        n("Conv", ["nn/map_padded", "nn/blur_v"], ["nn/map_v"]),
        n("Conv", ["nn/map_v", "nn/blur_h"], ["anomaly_map"]),
    ]
    if score_pixels <= 1:
        nodes.append(n("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2, 3], keepdims=0))
    else:
        inits += [const("flat_map", np.array([0, -1], np.int64)), const("score_k", np.array([score_pixels], np.int64))]
        nodes += [n("Reshape", ["anomaly_map", "nn/flat_map"], ["nn/map_flat"]),
                  n("TopK", ["nn/map_flat", "nn/score_k"], ["nn/top", "nn/top_index"], axis=1),
                  n("ReduceMean", ["nn/top"], ["score"], axes=[1], keepdims=0)]
    image = helper.make_tensor_value_info(graph.input[0].name, TensorProto.FLOAT,
                                          ["batch", channels, "height", "width"])
    outputs = [helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["batch", 1, "height", "width"]),
               helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])]
    merged = helper.make_graph(list(graph.node) + nodes, "edge_ae_feature_memory", [image], outputs,
                               initializer=list(graph.initializer) + inits)
    model = helper.make_model(merged, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edge-ae")
    model.ir_version = feat.ir_version
    model.doc_string = doc
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model
