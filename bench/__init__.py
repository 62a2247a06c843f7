"""Benchmarks of explainer cost against the model's forward-pass floor (see README.md)."""
