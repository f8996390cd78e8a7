"""Judging a fitted model: classification metrics, calibration, and the comparison with scikit-learn."""
