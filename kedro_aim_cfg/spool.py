"""Bring what worker processes track into the run of the process that owns it.

Aim's storage lets one process write a run. Under ``ParallelRunner`` the nodes
run in worker processes, so a worker does not track: it writes each converted
item to a file in a spool folder, and the owning process reads the folder and
tracks the items into its run, while the pipeline runs and once more before the
run closes. The folder and the run are named in an environment variable that
the owning process sets before any worker starts, for ``fork`` and ``spawn``
alike.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import pickle
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro_aim_cfg.artifacts import TrackedItem
from kedro_aim_cfg.exceptions import AimRunError

if TYPE_CHECKING:
    from kedro_aim_cfg.run import AimRunTracker

logger = logging.getLogger(__name__)

SPOOL_ENV = "KEDRO_AIM_CFG_SPOOL"
"""Environment variable naming the spool of the run open in a parent process."""
_SUFFIX = ".pkl"


class SpoolWriter:
    """The run as a worker process sees it: tracking writes to the spool.

    It offers what tracking datasets and nodes use of
    :class:`~kedro_aim_cfg.run.AimRunTracker`: ``track``, ``track_items`` and
    ``record_failure``. Steps left out are given when the owning process reads
    the spool, in the order the items were written.
    """

    def __init__(self, folder: str | Path, *, run_hash: str, raise_errors: bool):
        self.folder = Path(folder)
        self.hash = run_hash
        self.raise_errors = raise_errors
        self.pid = os.getpid()
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def track_items(self, artifact_type: str, items: list[TrackedItem]) -> None:
        """Spool converted items of one save."""
        self._write({"kind": "items", "type": artifact_type, "items": items})

    def track(
        self,
        value: Any,
        *,
        name: str,
        step: int | None = None,
        epoch: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Spool one value, as :meth:`AimRunTracker.track` would track it."""
        record: dict[str, Any] = {"kind": "value", "value": value, "name": name}
        record.update(step=step, epoch=epoch, context=dict(context or {}))
        self._write(record)

    def record_failure(self, entry: str, artifact_type: str, cause: str) -> None:
        """Spool a save that was saved but not tracked."""
        failure = {"entry": entry, "type": artifact_type, "cause": cause}
        self._write({"kind": "failure", **failure})

    def set(self, key: Any, value: Any) -> None:
        """Run parameters are set by the owning process only."""
        raise AimRunError(
            f"Run parameters cannot be set from a worker process (setting {key!r} "
            f"of run {self.hash}); set them in the process that runs the pipeline."
        )

    def _write(self, record: dict[str, Any]) -> None:
        with self._lock:
            number = next(self._counter)
        stem = f"{time.time_ns():020d}-{self.pid}-{number:08d}"
        partial = self.folder / f".{stem}.tmp"
        partial.write_bytes(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, self.folder / f"{stem}{_SUFFIX}")


_writer_lock = threading.Lock()
_writer: SpoolWriter | None = None


def spool_writer() -> SpoolWriter | None:
    """Return the spool of a run opened by a parent process, if there is one."""
    global _writer  # noqa: PLW0603
    raw = os.environ.get(SPOOL_ENV)
    if not raw:
        return None
    with _writer_lock:
        if _writer is None or _writer.pid != os.getpid() or _writer.hash not in raw:
            shared = json.loads(raw)
            _writer = SpoolWriter(
                shared["folder"],
                run_hash=shared["hash"],
                raise_errors=shared["raise_errors"],
            )
        return _writer


def _record_name(record: Mapping[str, Any]) -> str:
    """Name what a spooled record tracks, for the run's list of failures."""
    if record.get("kind") == "items" and record.get("items"):
        return str(record["items"][0].name)
    return str(record.get("name") or record.get("entry") or "<unreadable record>")


class SpoolReader:
    """Track what workers spooled into the owning process's run.

    Args:
        tracker: The open run.
        folder: The spool folder, created here and removed by :meth:`close`.
        interval: Seconds between two reads while the pipeline runs.
    """

    def __init__(
        self, tracker: AimRunTracker, folder: Path, *, interval: float = 1.0
    ) -> None:
        self._tracker = tracker
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._interval = interval
        self._stop = threading.Event()
        self._drain_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._previous_env = os.environ.get(SPOOL_ENV)
        self._env_value = json.dumps(
            {
                "folder": str(folder),
                "hash": tracker.hash,
                "raise_errors": tracker.raise_errors,
            }
        )

    def start(self) -> None:
        """Name the spool for workers and read it in the background."""
        os.environ[SPOOL_ENV] = self._env_value
        self._thread = threading.Thread(
            target=self._poll, name="kedro-aim-cfg-spool", daemon=True
        )
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.drain()
            except Exception:  # the final drain reports what still fails
                logger.debug("Reading the spool failed", exc_info=True)

    def drain(self) -> int:
        """Track every complete spooled record, oldest first.

        Returns:
            How many records were read.
        """
        with self._drain_lock:
            paths = sorted(self.folder.glob(f"*{_SUFFIX}"))
            for path in paths:
                record: dict[str, Any] = {}
                try:
                    record = pickle.loads(path.read_bytes())
                    self._apply(record)
                except Exception as exc:
                    logger.warning(
                        "A value tracked in a worker process could not be "
                        "tracked into run %s: %s",
                        self._tracker.hash,
                        exc,
                    )
                    self._tracker.record_failure(
                        _record_name(record),
                        str(record.get("type", "value")),
                        f"tracked in a worker process, then: {exc}",
                    )
                path.unlink()
            return len(paths)

    def _apply(self, record: dict[str, Any]) -> None:
        tracker = self._tracker
        kind = record["kind"]
        if kind == "items":
            tracker.track_items(record["type"], record["items"])
        elif kind == "value":
            tracker.track(
                record["value"],
                name=record["name"],
                step=record["step"],
                epoch=record["epoch"],
                context=record["context"],
            )
        else:
            tracker.record_failure(record["entry"], record["type"], record["cause"])

    def close(self) -> None:
        """Stop reading, read what is left, and remove the spool."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.drain()
        finally:
            if os.environ.get(SPOOL_ENV) == self._env_value:
                if self._previous_env is None:
                    os.environ.pop(SPOOL_ENV, None)
                else:
                    os.environ[SPOOL_ENV] = self._previous_env
            for leftover in self.folder.glob("*"):
                leftover.unlink()
            self.folder.rmdir()
