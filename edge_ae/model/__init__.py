"""The model contract (metadata), the registry of shipped models and loading one into an onnxruntime session."""
