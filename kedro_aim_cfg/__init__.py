"""Track Kedro catalog entries into Aim from an ``aim:`` block in the catalog.

Set ``CONFIG_LOADER_CLASS = AimConfigLoader`` in ``settings.py`` and add an
``aim:`` block to any catalog entry; every save of that entry is then tracked
into the Aim run of the ``kedro run``.
"""

from __future__ import annotations

from kedro_aim_cfg.dataset import AimRunDataset, AimTrackingDataset
from kedro_aim_cfg.exceptions import AimConfigError, AimRunError, AimTrackingError
from kedro_aim_cfg.loader import AimConfigLoader
from kedro_aim_cfg.models import AimSettings
from kedro_aim_cfg.run import (
    AimRunTracker,
    UntrackedRun,
    active_tracker,
    tracking_run,
)

__version__ = "0.1.0"

__all__ = [
    "AimConfigError",
    "AimConfigLoader",
    "AimRunDataset",
    "AimRunError",
    "AimRunTracker",
    "AimSettings",
    "AimTrackingDataset",
    "AimTrackingError",
    "UntrackedRun",
    "active_tracker",
    "tracking_run",
]
