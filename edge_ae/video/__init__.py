"""Live video: sources, the capture thread, sinks, temporal smoothing and the ``Stream`` that ties them."""
