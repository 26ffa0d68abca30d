"""Loads the digits, splits them and renders the raw data as an image and a sound."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
