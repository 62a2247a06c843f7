"""Metrics: plain typed functions over numpy arrays; docstrings name paper and direction."""
