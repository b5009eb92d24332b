"""Loading a model: resolve a name or path, read and validate its contract, build one
onnxruntime session, and check the graph's inputs and outputs against the contract."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_ae.errors import ModelError, a_model_of
from edge_ae.model.contract import METADATA_KEY, ModelSpec
from edge_ae.model.registry import resolve_model


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A validated model and its inference session; build once, reuse for every frame."""

    spec: ModelSpec
    path: Path
    session: ort.InferenceSession

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the graph on ``feeds`` (input name -> array); the outputs in ``spec.output_names`` order."""
        try:
            return self.session.run(list(self.spec.output_names), feeds)
        except Exception as exc:  # onnxruntime raises several private types; one line says what failed
            shapes = ", ".join(f"{name} {'x'.join(map(str, np.shape(value)))}" for name, value in feeds.items())
            raise ModelError(f"{self.spec.name}: inference failed on {shapes} ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    """onnxruntime's message without its source paths: "[ONNXRuntimeError] : 1 : FAIL : ...
    Status Message: /onnxruntime_src/...h:563 void ...Init(...) axis == 1 ... 32 by 48"."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    text = text.split("Status Message:")[-1]
    text = re.sub(r"^\s*\S+\.(?:h|cc|cpp):\d+\s*", "", text).strip()
    return text if len(text) <= 240 else text[:237] + "..."


CPU = ("CPUExecutionProvider",)


def make_session(path: Path | bytes, threads: int | None = None, *, providers: Sequence[str] | None = None,
                 profile_prefix: str | None = None) -> ort.InferenceSession:
    """The one way edge-ae (and its tools and exports) builds an onnxruntime session, for a model
    file or a model's serialized bytes (a model fitted in memory, ``edge_ae.anomaly.fit``), so
    that what a benchmark times is what a user runs.

    ``threads``: intra-op threads (None: onnxruntime's default); ``providers``: execution
    providers in order of preference (default: the CPU one); ``profile_prefix``: write
    onnxruntime's per-node profile there (``tools/profile_graph.py``)."""
    options = ort.SessionOptions()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # Fatal only: warnings are not the user's business, and an error is raised as an exception
    # that edge-ae reports in its own line (logged too, it would print a second, colored line).
    options.log_severity_level = 4
    # No spin-waiting after a run: the blind denoiser runs two sessions in turn (estimator, then
    # denoiser), and one session's spinning threads took the cores the next one needed: on 2
    # cores a 512x512 blind call went from 70 to 41 ms (fast model) and 134 to 91 ms (quality
    # model), a single session unchanged (docs/experiments/2026-12-05-session-spinning.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    wanted = list(CPU if providers is None else providers)
    if not wanted:
        raise ValueError("providers must name at least one onnxruntime execution provider, got none")
    unknown = [p for p in wanted if p not in ort.get_available_providers()]
    if unknown:
        raise ModelError(f"execution provider(s) {unknown} not available in this onnxruntime; "
                         f"available: {ort.get_available_providers()}")
    try:
        return ort.InferenceSession(path if isinstance(path, bytes) else str(path), sess_options=options,
                                    providers=wanted)
    except Exception as exc:  # onnxruntime raises several private exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        source = "model bytes" if isinstance(path, bytes) else path
        raise ModelError(f"{source}: not a usable ONNX model ({first})") from None


def read_spec(session: ort.InferenceSession, source: str) -> ModelSpec:
    """The edge-ae metadata of a loaded graph, validated; a ModelError if it has none."""
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise ModelError(
            f"{source}: no edge-ae metadata (key {METADATA_KEY!r} in the ONNX metadata_props); "
            "export models with python -m training.denoise.export (or training.anomaly, training.mnist) "
            "or see docs/MODEL_CONTRACT.md"
        )
    return ModelSpec.from_json(meta[METADATA_KEY], source=source)


def check_graph(spec: ModelSpec, session: ort.InferenceSession, source: str) -> None:
    """Refuse (ModelError) a graph whose inputs, outputs or sizes disagree with its metadata."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    wanted_in = [n for n in spec.input_names if n != "sigma" or spec.noise_input]
    missing = [n for n in wanted_in if n not in inputs] + [n for n in spec.output_names if n not in outputs]
    if missing:
        raise ModelError(
            f"{source}: {a_model_of(spec.kind)} needs graph inputs {wanted_in} and outputs "
            f"{list(spec.output_names)}; found inputs {sorted(inputs)} and outputs {sorted(outputs)}"
        )
    image = inputs.get("image")
    if image is not None and len(image.shape) == 4 and isinstance(image.shape[1], int):
        if image.shape[1] != spec.channels:
            raise ModelError(
                f"{source}: metadata says {spec.channels} channel(s) but the graph's image input "
                f"has {image.shape[1]}"
            )
    fixed = image is not None and len(image.shape) == 4 and all(isinstance(d, int) for d in image.shape[2:])
    if spec.kind == "denoiser" and image is not None and len(image.shape) == 4:
        # The denoiser feeds whole images or tiles of any size, and a batch of planes (a color
        # image through a gray model): a graph fixed to one size loads but fails on every file.
        if any(isinstance(d, int) for d in image.shape[2:]):
            raise ModelError(
                f"{source}: a denoiser must take images of any size, but the graph's image input is fixed at "
                f"{image.shape[2]}x{image.shape[3]}; export it with dynamic height and width"
            )
        if isinstance(image.shape[0], int):
            raise ModelError(
                f"{source}: a denoiser must take any batch size, but the graph's image input is fixed at "
                f"batch {image.shape[0]}; export it with a dynamic batch axis"
            )
    if not fixed or image is None:
        return
    if spec.short_side is not None:
        raise ModelError(
            f"{source}: metadata says the aspect ratio is kept (short_side {spec.short_side}) but the graph's "
            f"image input is fixed at {image.shape[2]}x{image.shape[3]}"
        )
    if spec.input_size is not None and tuple(image.shape[2:]) != tuple(spec.input_size):
        raise ModelError(
            f"{source}: metadata says input_size {spec.input_size[0]}x{spec.input_size[1]} but the graph's "
            f"image input is fixed at {image.shape[2]}x{image.shape[3]}"
        )


def load_model(model: str | Path | LoadedModel, *, kind: str | tuple[str, ...] | None = None,
               threads: int | None = None, providers: Sequence[str] | None = None) -> LoadedModel:
    """Load a shipped model by name or any edge-ae ONNX file by path; a model loaded already is
    taken as it is (its session keeps the threads it was built with), so one session can serve
    several task objects.

    ``kind`` restricts what is accepted (e.g. ``"denoiser"``); a model of another kind is
    refused with a message naming both. ``providers``: onnxruntime execution providers in order
    of preference (default: the CPU one; see ``make_session``)."""
    kinds = (kind,) if isinstance(kind, str) else kind
    if isinstance(model, LoadedModel):
        if kinds is not None and model.spec.kind not in kinds:
            raise ModelError(f"{model.path}: expected {' or '.join(a_model_of(k) for k in kinds)}, "
                             f"found {a_model_of(model.spec.kind)}")
        return model
    path, source = resolve_model(model)
    session = make_session(path, threads, providers=providers)
    spec = read_spec(session, source)
    if kinds is not None and spec.kind not in kinds:
        raise ModelError(f"{source}: expected {' or '.join(a_model_of(k) for k in kinds)}, found {a_model_of(spec.kind)}")
    check_graph(spec, session, source)
    return LoadedModel(spec=spec, path=path, session=session)


def model_from_bytes(data: bytes, spec: ModelSpec, *, threads: int | None = None,
                     providers: Sequence[str] | None = None) -> LoadedModel:
    """A model built in memory (``edge_ae.anomaly.fit``) with its spec, ready to run; its path is
    only a name (``<name>.onnx``) until it is saved."""
    return LoadedModel(spec=spec, path=Path(f"{spec.name}.onnx"), session=make_session(data, threads, providers=providers))
