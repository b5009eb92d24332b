"""The model contract: the edge-ae metadata every model file carries, read once into a typed,
frozen object and validated at load. ``docs/MODEL_CONTRACT.md`` is the prose reference.

The metadata is one JSON document stored in the ONNX ``metadata_props`` under the key
``edge_ae``. Training writes it (``ModelSpec.to_json``); the runtime reads it
(``ModelSpec.from_json``) and refuses what it cannot use.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edge_ae.errors import ModelError

METADATA_KEY = "edge_ae"
SCHEMA_VERSION = 1
KINDS = ("denoiser", "noise-level", "anomaly", "autoencoder", "encoder", "decoder", "features")
COLOR_ORDERS = {1: "GRAY", 3: "BGR"}

# Graph input and output names, fixed per kind so the runtime never guesses.
IO_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "denoiser": (("image", "sigma"), ("denoised",)),
    "noise-level": (("image",), ("noise_map",)),  # the level a denoiser should be told, per pixel and channel
    "anomaly": (("image",), ("anomaly_map", "score")),
    "autoencoder": (("image",), ("reconstruction",)),
    "encoder": (("image",), ("latent",)),
    "decoder": (("latent",), ("image",)),
    "features": (("image",), ("features",)),  # frozen pretrained extractor that anomaly fitting builds on
}


@dataclass(frozen=True)
class AnomalyCalibration:
    """How an anomaly model's image score is turned into a verdict."""

    threshold: float  # score above which an image is anomalous
    score_mean: float  # statistics of scores on held-out normal images
    score_std: float
    target_fpr: float | None = None  # false-positive rate the threshold was chosen for, if so
    method: str = "fpr"  # "fpr" (quantile of normal scores) or "f1" (best F1 on labelled validation)
    n_images: int = 0  # how many images the calibration saw
    # Median pixel of the calibration's normal images' maps (the median of each map's median): the
    # overlay's color scale starts there, so the normal background stays cold and a defect stands
    # out (None: models calibrated before 2026-12-06; the scale then starts at 0).
    map_median: float | None = None

    def normalized(self, score: float) -> float:
        """Map a raw score so that the threshold sits at 0.5 (a logistic on the standardised
        distance to the threshold); monotone in the raw score."""
        import math

        scale = self.score_std if self.score_std > 0 else 1.0
        z = (score - self.threshold) / scale
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True)
class ModelSpec:
    """Everything the runtime needs to use a model correctly."""

    name: str
    kind: str
    channels: int
    color_order: str
    value_range: tuple[float, float] = (0.0, 1.0)
    size_multiple: int = 1
    receptive_field: int = 1  # pixels across; tiles overlap by at least this much
    input_size: tuple[int, int] | None = None  # fixed (height, width) for models that need one
    # Aspect kept instead (anomaly models): the image's shorter side is resized to this many
    # pixels, the longer side in proportion, both rounded to a multiple of size_multiple.
    short_side: int | None = None
    noise_input: bool = False  # denoiser takes a ``sigma`` input (noise std on the value range)
    noise_levels: tuple[float, float] | None = None  # sigma range trained on, 0-255 scale
    # ``sigma`` is a per-pixel, per-channel map (N, C, H, W) instead of one value per image (N, 1).
    noise_map: bool = False
    # The noise-level model (a name, or a file name next to this model) whose estimate this
    # denoiser was trained with: the blind path runs it first.
    noise_estimator: str | None = None
    latent_dim: int | None = None
    parts: dict[str, str] = field(default_factory=dict)  # companion graphs, e.g. {"encoder": "x-encoder.onnx"}
    anomaly: AnomalyCalibration | None = None
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        problems = [*self._format_problems(), *self._size_problems(), *self._kind_problems()]
        if problems:
            raise ModelError(f"model {self.name!r}: invalid edge-ae metadata: " + "; ".join(problems))

    def _format_problems(self) -> list[str]:
        """What every model must say about its pixels: kind, channels, order, value range."""
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)}, found {self.kind!r}")
        if self.channels not in COLOR_ORDERS:
            problems.append(f"channels must be 1 or 3, found {self.channels!r}")
        elif self.color_order != COLOR_ORDERS[self.channels]:
            problems.append(
                f"color_order must be {COLOR_ORDERS[self.channels]!r} for {self.channels} channel(s), "
                f"found {self.color_order!r}"
            )
        if tuple(self.value_range) != (0.0, 1.0):
            problems.append(f"value_range must be [0, 1], found {list(self.value_range)}")
        return problems

    def _size_problems(self) -> list[str]:
        """Size multiple, receptive field, and a fixed input size or a short side (not both)."""
        problems = []
        if not isinstance(self.size_multiple, int) or self.size_multiple < 1:
            problems.append(f"size_multiple must be a positive integer, found {self.size_multiple!r}")
        if not isinstance(self.receptive_field, int) or self.receptive_field < 1:
            problems.append(f"receptive_field must be a positive integer, found {self.receptive_field!r}")
        if self.short_side is not None:
            if self.input_size is not None:
                problems.append("a model has either a fixed input_size or a short_side, not both")
            if not isinstance(self.short_side, int) or self.short_side < 1:
                problems.append(f"short_side must be a positive integer, found {self.short_side!r}")
            elif isinstance(self.size_multiple, int) and self.size_multiple >= 1 and self.short_side % self.size_multiple:
                problems.append(f"short_side ({self.short_side}) must be a multiple of size_multiple ({self.size_multiple})")
        elif self.kind == "anomaly" and self.input_size is None:
            problems.append("an anomaly model needs a fixed input_size or a short_side")
        return problems

    def _kind_problems(self) -> list[str]:
        """Fields that belong to one kind: calibration, noise map and estimator, latent size."""
        problems = []
        if self.kind == "anomaly" and self.anomaly is None:
            problems.append("an anomaly model needs its 'anomaly' calibration (threshold, score statistics)")
        noise_model = self.kind == "denoiser" and self.noise_input
        if self.noise_map and not noise_model:
            problems.append("noise_map is for a denoiser with noise_input")
        if self.noise_estimator is not None and not noise_model:
            problems.append("noise_estimator is for a denoiser with noise_input")
        if self.noise_estimator is not None and (not isinstance(self.noise_estimator, str) or not self.noise_estimator):
            problems.append(f"noise_estimator must be a model name, found {self.noise_estimator!r}")
        if self.kind in ("encoder", "decoder") and not self.latent_dim:
            problems.append(f"an {self.kind} model needs 'latent_dim'")
        return problems

    @property
    def input_names(self) -> tuple[str, ...]:
        """The graph inputs a model of this kind has (``sigma`` only where ``noise_input``)."""
        return IO_NAMES[self.kind][0]

    @property
    def output_names(self) -> tuple[str, ...]:
        """The graph outputs a model of this kind gives, in the order ``LoadedModel.run`` returns them."""
        return IO_NAMES[self.kind][1]

    def to_json(self) -> str:
        """The metadata as stored in the model file (key ``edge_ae``), keys sorted."""
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str, *, source: str = "model") -> ModelSpec:
        """Read and validate a model's metadata; a ModelError naming ``source`` if it does not hold."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{source}: edge-ae metadata is not valid JSON ({exc})") from None
        except RecursionError:  # thousands of nested brackets: a crafted file, never one we wrote
            raise ModelError(f"{source}: edge-ae metadata is nested too deeply "
                             f"(at most {MAX_METADATA_DEPTH} levels)") from None
        if _nesting(raw) > MAX_METADATA_DEPTH:  # shallower, yet deep enough to break printing it
            raise ModelError(f"{source}: edge-ae metadata is nested too deeply (at most {MAX_METADATA_DEPTH} levels)")
        if not isinstance(raw, dict):
            raise ModelError(f"{source}: edge-ae metadata must be a JSON object, found {type(raw).__name__}")
        version = raw.get("schema_version")
        if not isinstance(version, int):
            raise ModelError(f"{source}: edge-ae metadata has no integer schema_version")
        if version > SCHEMA_VERSION:
            raise ModelError(
                f"{source}: edge-ae metadata schema {version} is newer than this runtime understands "
                f"(up to {SCHEMA_VERSION}); upgrade edge-ae"
            )
        known = {f.name for f in fields(ModelSpec)}
        missing = [k for k in ("name", "kind", "channels", "color_order") if k not in raw]
        if missing:
            raise ModelError(f"{source}: edge-ae metadata lacks {', '.join(missing)}")
        # Unknown keys are ignored so that minor additions stay readable by older runtimes.
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("value_range", "input_size", "noise_levels"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        if values.get("anomaly") is not None:
            if not isinstance(values["anomaly"], dict):
                raise ModelError(f"{source}: invalid anomaly calibration (expected an object, got "
                                 f"{type(values['anomaly']).__name__})")
            try:
                known_cal = {f.name for f in fields(AnomalyCalibration)}
                values["anomaly"] = AnomalyCalibration(**{k: v for k, v in values["anomaly"].items() if k in known_cal})
            except TypeError as exc:
                raise ModelError(f"{source}: invalid anomaly calibration ({exc})") from None
        try:
            return ModelSpec(**values)
        except TypeError as exc:
            raise ModelError(f"{source}: invalid edge-ae metadata ({exc})") from None


# Metadata nesting allowed: what the exporters write is 4 levels deep (provenance records);
# deeper structures would only serve to exhaust the stack when the metadata is copied or printed.
MAX_METADATA_DEPTH = 32


def _nesting(value: object) -> int:
    """How deeply JSON lists and objects nest in ``value`` (0 for a plain value), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        if depth + 1 <= MAX_METADATA_DEPTH:  # beyond the limit the answer is known
            stack += [(child, depth + 1) for child in children]
    return deepest

