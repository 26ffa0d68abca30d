"""Trains and evaluates a classifier of the digits."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
