"""Veil: direct messages with end-to-end encrypted secret conversations."""

__all__ = ["__version__"]

__version__ = "0.1.0"
