"""Exceptions the runtime raises for user mistakes. The CLI turns them into one-line messages;
library code never prints or exits."""


class EdgeAEError(Exception):
    """Base class: a problem the user can fix (bad model, bad image, bad argument)."""


class ModelError(EdgeAEError):
    """A model file that is missing, not ONNX, or does not meet the edge-ae contract."""


class ImageError(EdgeAEError):
    """An image of a shape, dtype or content the runtime cannot use."""


def a_model_of(kind: str) -> str:
    """'a denoiser model', 'an anomaly model': for messages that name a model's kind."""
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind} model"


class WriteError(EdgeAEError):
    """A result that was computed but could not be saved (full disk, folder gone read-only): the
    CLI says so on one line naming the path and exits 1, not 2, since the command itself was fine."""
