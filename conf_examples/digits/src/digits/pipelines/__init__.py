"""Pipelines of the digits project."""
