"""edge-ae runtime: denoise camera frames and flag visual anomalies with ONNX autoencoders.

numpy + onnxruntime + OpenCV only; never imports torch.
"""

from edge_ae.anomaly.detector import AnomalyDetector, AnomalyResult, draw_overlay
from edge_ae.autoencoder import Autoencoder
from edge_ae.denoise.denoiser import Denoiser
from edge_ae.denoise.noise_level import estimate_sigma
from edge_ae.errors import EdgeAEError, ImageError, ModelError
from edge_ae.model.contract import ModelSpec
from edge_ae.model.loading import LoadedModel, load_model
from edge_ae.model.registry import ModelEntry, list_models
from edge_ae.video.stream import Stream, StreamReport, stream

__version__ = "0.1.0"

__all__ = [
    "AnomalyDetector",
    "AnomalyResult",
    "Autoencoder",
    "Denoiser",
    "EdgeAEError",
    "ImageError",
    "LoadedModel",
    "ModelEntry",
    "ModelError",
    "ModelSpec",
    "Stream",
    "StreamReport",
    "__version__",
    "draw_overlay",
    "estimate_sigma",
    "list_models",
    "load_model",
    "stream",
]
