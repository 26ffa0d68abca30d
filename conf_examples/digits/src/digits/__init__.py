"""Digits: an example project for kedro-aim-cfg."""

__version__ = "0.1"
