"""The hook that opens one Aim run per ``kedro run`` and closes it at the end.

It is registered through the ``kedro.hooks`` entry point and acts only in
projects whose ``CONFIG_LOADER_CLASS`` is ``AimConfigLoader``; in any other
project it does nothing.
"""

from __future__ import annotations

import atexit
import logging
import math
import re
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from kedro_aim_cfg.artifacts import prepare_converters
from kedro_aim_cfg.exceptions import AimConfigError, AimRunError
from kedro_aim_cfg.loader import AimConfigLoader
from kedro_aim_cfg.models import AimSettings
from kedro_aim_cfg.run import (
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_INTERRUPTED,
    STATUS_RUNNING,
    AimRunTracker,
    activate,
    deactivate,
    set_unavailable,
)

logger = logging.getLogger(__name__)

_RUN_PARAMS_LOGGED = (
    "run_id",
    "env",
    "kedro_version",
    "tags",
    "pipeline_names",
    "namespaces",
    "node_names",
    "from_nodes",
    "to_nodes",
    "from_inputs",
    "to_outputs",
    "runner",
    "only_missing_outputs",
)


def to_plain(value: Any) -> Any:
    """Convert a value into types that Aim stores as run parameters.

    Mappings and sequences are converted item by item; numpy scalars become
    Python numbers; NaN, infinity and integers beyond 64 bits, which Aim cannot
    store, become strings; any other object becomes its ``str``.
    """
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if value is None or isinstance(value, bool | str) or _storable_number(value):
        return value
    return str(value)


def _storable_number(value: Any) -> bool:
    """Aim stores finite floats and whole numbers that fit in 64 bits."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and -(2**63) <= value < 2**63


def runner_name(runner: Any) -> str:
    """Name the runner of ``run_params``, which Kedro gives as ``str(runner)``.

    A session run without a runner records ``'None'`` and uses a
    ``SequentialRunner``.
    """
    text = "SequentialRunner" if runner in (None, "None") else str(runner)
    match = re.match(r"<(?:[\w.]+\.)?(\w+) object at", text)
    return match.group(1) if match else text


def read_settings(config_loader: Any) -> AimSettings:
    """Read ``aim.yml`` through the project's config loader.

    Args:
        config_loader: The project's config loader.

    Returns:
        The validated settings; all defaults when the project has no ``aim.yml``
        or does not use ``AimConfigLoader``.
    """
    if isinstance(config_loader, AimConfigLoader):
        return config_loader.aim_settings()
    return AimSettings()


class AimHook:
    """Open the Aim run before the pipeline and close it after.

    The run records the project's parameters and the run's Kedro context
    (pipelines, environment, tags, runner, Kedro version). It never records
    credentials or environment variables.
    """

    def __init__(self) -> None:
        self._settings: AimSettings | None = None
        self._project_path: Path | None = None
        self._env: str | None = None
        self._tracker: AimRunTracker | None = None
        self._sigterm_installed = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read the settings of projects that use ``AimConfigLoader``."""
        self._settings = None
        if not isinstance(context.config_loader, AimConfigLoader):
            logger.debug("The project does not use AimConfigLoader: no Aim run")
            return

        # Kedro's default logging shows INFO only for its own loggers and the
        # project's; the run hash and summary are worth showing too, unless the
        # project's logging configuration says otherwise.
        package_logger = logging.getLogger("kedro_aim_cfg")
        if package_logger.level == logging.NOTSET:
            package_logger.setLevel(logging.INFO)
        try:
            self._settings = read_settings(context.config_loader)
        except AimConfigError:
            # Reading the catalog raises one error with the problems of both.
            context.config_loader["catalog"]
            raise
        self._project_path = Path(context.project_path)
        loader = context.config_loader
        self._env = loader.env or loader.default_run_env or None

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        """Open the run, unless tracking is off for this run."""
        settings = self._settings
        set_unavailable(None)
        if settings is None:
            return
        if not settings.enabled:
            set_unavailable("tracking is off in aim.yml")
            return
        names = run_params.get("pipeline_names") or ["__default__"]
        if set(names) & set(settings.disabled_pipelines):
            set_unavailable(f"tracking is off for pipeline(s) {names}")
            logger.info("Aim tracking is disabled for pipeline(s) %s", names)
            return

        if self._tracker is not None:
            # The previous pipeline never ended: Kedro calls no hook when a
            # KeyboardInterrupt (Ctrl-C in a notebook) stops it.
            self._close(STATUS_INTERRUPTED)

        from kedro.framework.project import PACKAGE_NAME

        try:
            tracker = AimRunTracker.open(
                settings,
                project_path=self._project_path or Path.cwd(),
                experiment=PACKAGE_NAME,
            )
        except AimRunError as exc:
            if settings.when_unavailable == "fail":
                raise
            set_unavailable(str(exc))
            logger.warning(
                "Nothing of this run is tracked: %s The pipeline runs and saves "
                "its data as usual.",
                exc,
            )
            return
        kedro_info = {key: run_params.get(key) for key in _RUN_PARAMS_LOGGED}
        kedro_info["runner"] = runner_name(run_params.get("runner"))
        kedro_info["env"] = run_params.get("env") or self._env
        kedro_info["status"] = STATUS_RUNNING
        try:
            tracker.set("kedro", to_plain(kedro_info))
            tracker.set("params", to_plain(_parameters(catalog)))
            activate(tracker)
            tracker.share_with_workers()
        except Exception:
            deactivate(tracker)
            tracker.close(STATUS_FAILED)
            raise
        self._tracker = tracker
        self._handle_interruptions()
        prepare_converters()
        logger.info("Tracking into Aim run %s in %s", tracker.hash, tracker.repository)

    def _handle_interruptions(self) -> None:
        """Close the run as interrupted on Ctrl-C and SIGTERM.

        Kedro calls no hook when a ``KeyboardInterrupt`` stops the pipeline, so
        the run is closed when the process exits; SIGTERM, whose default is to
        end the process at once, is turned into a ``KeyboardInterrupt`` while
        the pipeline runs, unless the process already handles it.
        """
        atexit.register(self._close_at_exit)
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _interrupt)
            self._sigterm_installed = True

    def _close_at_exit(self) -> None:
        self._close(STATUS_INTERRUPTED)

    @hook_impl
    def after_pipeline_run(
        self,
        run_params: dict[str, Any],
        run_result: dict[str, Any],
        pipeline: Any,
        catalog: Any,
    ) -> None:
        """Close the run as finished."""
        self._close(STATUS_FINISHED)

    @hook_impl
    def on_pipeline_error(
        self,
        error: Exception,
        run_params: dict[str, Any],
        pipeline: Any,
        catalog: Any,
    ) -> None:
        """Close the run as failed."""
        status = (
            STATUS_INTERRUPTED
            if isinstance(error, KeyboardInterrupt)
            else STATUS_FAILED
        )
        self._close(status)

    def _close(self, status: str) -> None:
        set_unavailable(None)
        # SIGTERM stops being an interruption first: raised from here on, it
        # would leave the run unclosed.
        if self._sigterm_installed and (
            threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._sigterm_installed = False
        tracker, self._tracker = self._tracker, None
        if tracker is None:
            return
        atexit.unregister(self._close_at_exit)
        deactivate(tracker)
        tracker.close(status)
        logger.info("%s", tracker.summary())


def _parameters(catalog: Any) -> Any:
    """The run's parameters, as the catalog gives them to nodes.

    Read from the catalog rather than the context, whose ``params`` validates
    them again on every access.
    """
    if "parameters" not in catalog:
        return {}
    return catalog.get("parameters").load()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


aim_hook = AimHook()
"""The instance registered through the ``kedro.hooks`` entry point."""
