"""Deterministic recipes that train the reference models from the project's own generator."""
