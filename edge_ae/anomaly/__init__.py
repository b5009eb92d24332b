"""Anomaly detection: the ``AnomalyDetector``, its overlay and threshold calibration."""
