"""Anomaly-detection training: learn "normal" from a folder of images, calibrate a threshold,
export one ONNX graph that outputs the anomaly map and the image score.

    python -m training.anomaly --normal DIR [--val-normal DIR] [--val-anomalous DIR] --name NAME
"""
