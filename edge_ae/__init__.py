"""edge-ae runtime: denoise camera frames and flag visual anomalies with ONNX autoencoders.

numpy + onnxruntime + OpenCV only; never imports torch.
"""

from edge_ae.anomaly.calibration import calibrate_f1, calibrate_fpr
from edge_ae.anomaly.detector import AnomalyDetector, AnomalyResult, draw_overlay
from edge_ae.anomaly.fit import FitOptions
from edge_ae.autoencoder import Autoencoder
from edge_ae.denoise.blind import NoiseEstimate
from edge_ae.denoise.denoiser import Denoised, Denoiser
from edge_ae.denoise.noise_level import estimate_sigma
from edge_ae.denoise.options import DenoiseOptions
from edge_ae.errors import EdgeAEError, ImageError, ModelError
from edge_ae.model.contract import AnomalyCalibration, ModelSpec
from edge_ae.model.loading import LoadedModel, load_model, make_session
from edge_ae.model.registry import ModelEntry, list_models
from edge_ae.video.options import CaptureOptions, ControlOptions, FrameOptions, Limits, OutputOptions
from edge_ae.video.sinks import Output, Sink, SinkError
from edge_ae.video.sources import Source, SourceError, open_source
from edge_ae.video.stream import Stream, StreamReport, stream
from edge_ae.video.temporal import TemporalFilter

__version__ = "0.1.0"

__all__ = [
    "AnomalyCalibration",
    "AnomalyDetector",
    "AnomalyResult",
    "Autoencoder",
    "CaptureOptions",
    "ControlOptions",
    "DenoiseOptions",
    "Denoised",
    "Denoiser",
    "EdgeAEError",
    "FitOptions",
    "FrameOptions",
    "ImageError",
    "Limits",
    "LoadedModel",
    "ModelEntry",
    "ModelError",
    "ModelSpec",
    "NoiseEstimate",
    "Output",
    "OutputOptions",
    "Sink",
    "SinkError",
    "Source",
    "SourceError",
    "Stream",
    "StreamReport",
    "TemporalFilter",
    "__version__",
    "calibrate_f1",
    "calibrate_fpr",
    "draw_overlay",
    "estimate_sigma",
    "list_models",
    "load_model",
    "make_session",
    "open_source",
    "stream",
    "__version__",
]
