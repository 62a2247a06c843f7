"""xaigate: an acceptance gate for image classifiers that checks explanation quality."""

__version__ = "0.1.0"
