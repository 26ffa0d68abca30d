"""The Aim run of a Kedro run: opening, tracking into, and closing it.

At most one run is active in a process. The hook opens it before the pipeline
starts and closes it when the pipeline ends; :func:`tracking_run` does the same
by hand, for notebooks and scripts. Tracking datasets look the active run up at
every save, so they hold no reference to it and stay picklable.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from kedro_aim_cfg.artifacts import TrackedItem
from kedro_aim_cfg.exceptions import AimRunError
from kedro_aim_cfg.models import RUN_HASH_PATTERN, AimSettings
from kedro_aim_cfg.spool import SPOOL_ENV, SpoolReader, SpoolWriter, spool_writer

logger = logging.getLogger(__name__)

STATUS_FINISHED = "finished"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"
STATUS_RUNNING = "running"

PROGRESS_EVERY = 500
"""Every so many tracked objects, a run logs how many it has tracked."""

CREATE_TIMEOUT = 120
"""Seconds to wait for another process that creates the same repository."""

RUN_HASH_ENV = "KEDRO_AIM_RUN_HASH"
"""Environment variable naming an existing run for ``kedro run`` to add to."""

_SEQUENCE_GETTERS = {
    "float": "get_metric",
    "int": "get_metric",
    "aim.image": "get_image_sequence",
    "list(aim.image)": "get_image_sequence",
    "aim.figure": "get_figure_sequence",
    "aim.text": "get_text_sequence",
    "aim.audio": "get_audio_sequence",
    "aim.distribution": "get_distribution_sequence",
}


def _context_key(name: str, context: Mapping[str, Any]) -> tuple[Any, ...]:
    return (name, *sorted((str(k), repr(v)) for k, v in context.items()))


def _check_server(address: str, timeout: float, *, suggest_continue: bool) -> None:
    """Fail fast when an Aim server does not answer.

    Aim's client retries a silent server for half a minute before it fails.
    """
    host_port = address.removeprefix("aim://")
    url = f"http://{host_port}/status/"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        advice = "Start it with `aim server`"
        if suggest_continue:
            advice += (
                ", or set when_unavailable: continue in aim.yml to run without tracking"
            )
        reason = getattr(exc, "reason", exc)
        raise AimRunError(
            f"The Aim server {address} could not be reached within {timeout} s "
            f"({reason}). "
            f"{advice}."
        ) from exc


def _forget_aim_exit_hook() -> None:
    """Drop the exit hook with which Aim waits for its unfinished runs."""
    try:
        from aim.ext.cleanup import AutoClean
    except ImportError:
        return
    atexit.unregister(AutoClean.cleanup)


def _ensure_local_repository(path: str) -> None:
    """Create a local repository once, even when processes race to create it."""
    from aim.sdk.repo import Repo

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    # Always under the lock: the `.aim` folder exists before Aim has finished
    # creating the repository, and a process opening it then fails.
    digest = hashlib.sha1(str(root.resolve()).encode(), usedforsecurity=False)
    lock = Path(tempfile.gettempdir()) / f"kedro-aim-cfg-{digest.hexdigest()}.lock"
    try:
        with FileLock(str(lock), timeout=CREATE_TIMEOUT):
            if not Repo.exists(path):
                Repo.from_path(path, init=True)
            # Whoever waits on this lock finds the repository once it gets it.
            lock.unlink(missing_ok=True)
    except Timeout as exc:
        raise AimRunError(
            f"Another process has been creating the Aim repository '{path}' for "
            f"{CREATE_TIMEOUT} s and still holds {lock}. If no such process runs, "
            "remove that file and run again."
        ) from exc


class AimRunTracker:
    """One open Aim run and the bookkeeping of what was tracked into it.

    Steps are counted here, per sequence name and context, so that saves from
    many threads each get their own step. Tracking is serialised by a lock.

    Attributes:
        raise_errors: Whether a save that cannot be tracked raises
            ``AimTrackingError`` instead of warning.
        counts: How many objects of each artifact type were tracked.
        failures: ``(entry, artifact type, cause)`` of each save that was saved
            but not tracked.
    """

    def __init__(
        self,
        run: Any,
        *,
        repository: str,
        raise_errors: bool = False,
        close_timeout: float | None = None,
    ) -> None:
        self._run: Any = run
        self._close_timeout = close_timeout
        self._close_timed_out = False
        self.pid = os.getpid()
        self.raise_errors = raise_errors
        self._lock = threading.Lock()
        self._steps: dict[tuple[Any, ...], int] = {}
        self.repository = repository
        self.hash: str = run.hash
        self.experiment: str | None = run.experiment
        self.counts: Counter[str] = Counter()
        self.failures: list[tuple[str, str, str]] = []
        self.status: str = STATUS_RUNNING
        self._earlier_counts: Counter[str] = Counter()
        self._spool: SpoolReader | None = None

    @classmethod
    def open(
        cls,
        settings: AimSettings,
        *,
        project_path: str | Path,
        experiment: str | None = None,
    ) -> AimRunTracker:
        """Open a new Aim run as the settings say.

        Args:
            settings: The run-level settings.
            project_path: The root that a relative repository folder is taken from.
            experiment: The experiment to use when the settings name none.

        Returns:
            The tracker of the new run.

        Raises:
            AimRunError: The repository could not be opened or the run created.
        """
        from aim.sdk.run import Run

        repository = settings.repository_for(project_path)
        run_hash = os.environ.get(RUN_HASH_ENV) or settings.run_hash
        if run_hash and not re.match(RUN_HASH_PATTERN, run_hash):
            raise AimRunError(
                f"{RUN_HASH_ENV}={run_hash!r} is not an Aim run hash: 24 lower-case "
                "hexadecimal characters, as `kedro aim runs` shows them."
            )
        try:
            if settings.is_remote:
                _check_server(
                    repository,
                    settings.connect_timeout,
                    suggest_continue=settings.when_unavailable == "fail",
                )
            else:
                _ensure_local_repository(repository)
            run = Run(
                run_hash,
                repo=repository,
                experiment=settings.experiment or experiment,
                system_tracking_interval=settings.system_tracking_interval,
                log_system_params=settings.log_system_params,
                capture_terminal_logs=settings.capture_terminal_logs,
            )
        except AimRunError:
            raise
        except Exception as exc:
            what = f"run {run_hash}" if run_hash else "an Aim run"
            raise AimRunError(
                f"Could not open {what} in repository '{repository}': "
                f"{type(exc).__name__}: {exc}"
            ) from exc

        if settings.run_name:
            run.name = settings.run_name
        if settings.description:
            run.description = settings.description
        for tag in settings.tags:
            run.add_tag(tag)
        tracker = cls(
            run,
            repository=repository,
            raise_errors=settings.tracking_errors == "raise",
            # Only a remote close waits on something that may never answer.
            close_timeout=settings.close_timeout if settings.is_remote else None,
        )
        if run_hash:
            tracker.continue_run()
        return tracker

    def set(self, key: str | tuple[str, ...], value: Any) -> None:
        """Store a run parameter, such as ``kedro`` or ``("kedro", "env")``."""
        with self._lock:
            self._open_run()[key] = value

    def _next_step(self, name: str, context: Mapping[str, Any]) -> int:
        """Return the next step of a sequence, starting at 0; hold the lock."""
        key = _context_key(name, context)
        step = self._steps.get(key, -1) + 1
        self._steps[key] = step
        return step

    def track_items(self, artifact_type: str, items: list[TrackedItem]) -> None:
        """Track converted items, each at the next step of its sequence."""
        with self._lock:
            run = self._open_run()
            for item in items:
                step = self._next_step(item.name, item.context)
                run.track(item.value, name=item.name, step=step, context=item.context)
            self._count(artifact_type, len(items))

    def _count(self, artifact_type: str, added: int) -> None:
        """Count tracked objects; report progress now and then on long runs."""
        before = self.counts.total()
        self.counts[artifact_type] += added
        if before // PROGRESS_EVERY != self.counts.total() // PROGRESS_EVERY:
            logger.info(
                "%d objects tracked into Aim run %s so far",
                self.counts.total(),
                self.hash,
            )

    def track(
        self,
        value: Any,
        *,
        name: str,
        step: int | None = None,
        epoch: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Track one value, as ``aim.Run.track`` does, from inside a node.

        Args:
            value: A number or an Aim object (``aim.Image``, ``aim.Text``, ...).
            name: The sequence name.
            step: The step; by default the next step of the sequence.
            epoch: The training epoch, a whole number.
            context: The sequence context, a mapping of plain scalars.
        """
        context = dict(context or {})
        with self._lock:
            run = self._open_run()
            if step is None:
                step = self._next_step(name, context)
            else:
                key = _context_key(name, context)
                self._steps[key] = max(step, self._steps.get(key, -1))
            run.track(value, name=name, step=step, epoch=epoch, context=context)
            kind = "metric" if isinstance(value, int | float) else type(value).__name__
            self._count(kind.lower(), 1)

    def _open_run(self) -> Any:
        if self._run is None:
            raise AimRunError(f"The Aim run {self.hash} is closed already.")
        return self._run

    def record_failure(self, entry: str, artifact_type: str, cause: str) -> None:
        """Remember a save that was not tracked, for the run's summary."""
        with self._lock:
            self.failures.append((entry, artifact_type, cause))

    def continue_run(self) -> None:
        """Carry on a resumed run: after the last step of every sequence, and
        with the counts of the earlier invocations kept in its totals."""
        with self._lock:
            run = self._open_run()
            try:
                earlier = run["kedro", "tracked"]
            except KeyError:
                earlier = {}
            if isinstance(earlier, Mapping):
                self._earlier_counts.update(
                    {str(k): int(v) for k, v in earlier.items() if isinstance(v, int)}
                )
            for dtype, getter in _SEQUENCE_GETTERS.items():
                for name, context, _ in run.iter_sequence_info_by_type(dtype):
                    sequence = getattr(run, getter)(name, context)
                    if sequence is not None:
                        key = _context_key(name, context.to_dict())
                        last = max(self._steps.get(key, -1), sequence.last_step())
                        self._steps[key] = last

    def share_with_workers(self) -> None:
        """Let worker processes track into this run through a spool folder."""
        if self._spool is not None:
            return
        folder = Path(tempfile.mkdtemp(prefix=f"kedro-aim-cfg-{self.hash}-"))
        self._spool = SpoolReader(self, folder)
        self._spool.start()

    def close(self, status: str) -> None:
        """Record the status and the summary, then close the run.

        What workers spooled is tracked first. Aim keeps a run's lock while the
        ``Run`` object is referenced, so the reference is dropped as well.
        """
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()
        with self._lock:
            run, self._run = self._run, None
        if run is None:
            return
        self.status = status
        try:
            run["kedro", "status"] = status
            run["kedro", "tracked"] = dict(self._earlier_counts + self.counts)
            run["kedro", "not_tracked"] = [
                {"entry": entry, "type": kind, "cause": cause}
                for entry, kind, cause in self.failures
            ]
        finally:
            self._close_run(run)
            del run

    def _close_run(self, run: Any) -> None:
        """Close the run, waiting at most the close timeout.

        Aim's ``close`` waits for a remote server for as long as it takes, and
        so does the exit hook Aim registers; when the timeout passes, both are
        given up so that the process can end.
        """
        if self._close_timeout is None:
            run.close()
            return
        closer = threading.Thread(target=run.close, name="aim-close", daemon=True)
        closer.start()
        closer.join(self._close_timeout)
        if not closer.is_alive():
            return
        self._close_timed_out = True
        logger.warning(
            "Aim did not close run %s within %s s; what it had not sent to %s "
            "yet is not tracked. The data of the pipeline is saved.",
            self.hash,
            self._close_timeout,
            self.repository,
        )
        _forget_aim_exit_hook()

    def summary(self) -> str:
        """One line per fact a user wants once the run ends."""
        tracked = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))
        lines = [
            f"Aim run {self.hash} (experiment '{self.experiment}', {self.status}) "
            f"in {self.repository}: tracked {tracked or 'nothing'}."
        ]
        if self._close_timed_out:
            lines.append(
                f"The run did not close within {self._close_timeout} s: the counts "
                f"are what was handed to Aim, and what Aim had not sent to "
                f"{self.repository} by then is lost."
            )
        if self.failures:
            lines.append(f"{len(self.failures)} save(s) were saved but not tracked:")
            lines.extend(
                f"  {entry} ({kind}): {cause}" for entry, kind, cause in self.failures
            )
        lines.append(f"View it with: {self.view_command()}")
        return "\n".join(lines)

    def view_command(self) -> str:
        """The command that shows this run."""
        if self.repository.startswith("aim://"):
            return f"the UI of the Aim server behind {self.repository}"
        return f"kedro aim ui (or: aim up --repo {self.repository})"


class UntrackedRun:
    """What a node's run input gives while the pipeline runs without a run.

    Tracking is off for the pipeline, or its run could not be opened (the reason
    was logged once); everything tracked through it is dropped, so that the
    pipeline runs as it would with tracking on.

    Attributes:
        reason: Why the pipeline has no run.
    """

    hash = None
    experiment = None
    repository = None
    raise_errors = False

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.counts: Counter[str] = Counter()

    def track(
        self,
        value: Any,
        *,
        name: str,
        step: int | None = None,
        epoch: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Drop the value; takes what :meth:`AimRunTracker.track` takes."""

    def track_items(self, artifact_type: str, items: list[TrackedItem]) -> None:
        """Drop the items."""

    def set(self, key: str | tuple[str, ...], value: Any) -> None:
        """Drop the run parameter."""

    def record_failure(self, entry: str, artifact_type: str, cause: str) -> None:
        """Nothing is tracked, so nothing is counted."""

    def __repr__(self) -> str:
        return f"UntrackedRun({self.reason!r})"


_active_lock = threading.Lock()
_active: AimRunTracker | None = None

UNTRACKED_ENV = "KEDRO_AIM_CFG_UNTRACKED"
"""Environment variable saying why the pipeline runs without an Aim run."""


def set_unavailable(reason: str | None) -> None:
    """Record that this pipeline runs without a run, and why (None: it has one).

    Saves then stay quiet: the reason was told once, or tracking is off on
    purpose. It is kept in the environment, so that worker processes of the
    pipeline know it too.
    """
    if reason is None:
        os.environ.pop(UNTRACKED_ENV, None)
    else:
        os.environ[UNTRACKED_ENV] = reason


def unavailable_reason() -> str | None:
    """Why the current pipeline runs without an Aim run, if it does."""
    return os.environ.get(UNTRACKED_ENV)


_SENDER = "pid"


def pipeline_environment() -> dict[str, Any]:
    """What worker processes need to know of the current pipeline's run.

    Tracking datasets carry it when they are pickled for a worker, because a
    worker process started before this pipeline (a ``forkserver``, or a pool
    kept from an earlier run) still has the environment of its own start.
    """
    values: dict[str, Any] = {
        name: os.environ.get(name) for name in (SPOOL_ENV, UNTRACKED_ENV)
    }
    values[_SENDER] = os.getpid()
    return values


def adopt_pipeline_environment(values: Mapping[str, Any]) -> None:
    """Take on, in a worker process, the run of the process that sent a dataset.

    Only while that pipeline runs: a dataset unpickled in the process that sent
    it, in a process owning a run of its own, after the sender has ended or
    after the run's spool is gone, changes nothing.
    """
    sender = values.get(_SENDER)
    owner = _active
    if sender == os.getpid() or (owner is not None and owner.pid == os.getpid()):
        return
    if not isinstance(sender, int) or not _alive(sender):
        return
    spool = values.get(SPOOL_ENV)
    if spool and not Path(json.loads(spool)["folder"]).is_dir():
        return
    for name in (SPOOL_ENV, UNTRACKED_ENV):
        value = values.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def active_tracker() -> AimRunTracker | SpoolWriter | None:
    """Return the run that saves in this process track into, if any.

    That is the run opened in this process, or, in a worker process of a
    pipeline (``ParallelRunner``), a :class:`~kedro_aim_cfg.spool.SpoolWriter`
    that hands what it tracks to the process owning the run. A forked process
    inherits the owner's tracker but must not write into the run: Aim's storage
    belongs to the opening process.
    """
    tracker = _active
    if tracker is not None and tracker.pid == os.getpid():
        return tracker
    return spool_writer()


def activate(tracker: AimRunTracker) -> None:
    """Make ``tracker`` the run that tracking datasets write into.

    Raises:
        AimRunError: Another run is active already.
    """
    global _active  # noqa: PLW0603
    with _active_lock:
        if _active is not None and _active is not tracker:
            raise AimRunError(
                f"An Aim run ({_active.hash}) is already active in this process; "
                "close it before opening another."
            )
        _active = tracker


def deactivate(tracker: AimRunTracker) -> None:
    """Stop tracking into ``tracker`` if it is the active run."""
    global _active  # noqa: PLW0603
    with _active_lock:
        if _active is tracker:
            _active = None


def project_settings(
    project_path: str | Path, env: str | None = None
) -> tuple[AimSettings, str | None]:
    """Read the ``aim.yml`` of the Kedro project bootstrapped in this process.

    Args:
        project_path: The project's root folder.
        env: The run environment; Kedro's default when not given.

    Returns:
        The settings, all defaults where the project has no ``aim.yml`` or does
        not use ``AimConfigLoader``, and the project's package name, None outside
        a project.

    Raises:
        AimConfigError: The project's ``aim.yml`` is invalid.
    """
    from kedro.framework.project import PACKAGE_NAME
    from kedro.framework.project import settings as kedro_settings
    from kedro.utils import is_kedro_project

    from kedro_aim_cfg.loader import AimConfigLoader

    if not PACKAGE_NAME or not is_kedro_project(project_path):
        return AimSettings(), None
    loader_class = kedro_settings.CONFIG_LOADER_CLASS
    if not (
        isinstance(loader_class, type) and issubclass(loader_class, AimConfigLoader)
    ):
        return AimSettings(), PACKAGE_NAME
    loader = loader_class(
        conf_source=str(Path(project_path) / kedro_settings.CONF_SOURCE),
        env=env,
        **kedro_settings.CONFIG_LOADER_ARGS,
    )
    return loader.aim_settings(), PACKAGE_NAME


@contextmanager
def tracking_run(
    settings: AimSettings | Mapping[str, Any] | None = None,
    *,
    project_path: str | Path | None = None,
    experiment: str | None = None,
    env: str | None = None,
) -> Iterator[AimRunTracker | UntrackedRun]:
    """Open an Aim run for the saves made inside the ``with`` block.

    Meant for notebooks and scripts, where no ``kedro run`` opens one. In a
    notebook of a Kedro project (``%load_ext kedro.ipython``) the run follows
    the project's ``aim.yml``, as ``kedro run`` would::

        from kedro_aim_cfg import tracking_run

        with tracking_run() as run:
            catalog.save("confusion_matrix", figure)
        print(run.hash)

    Args:
        settings: Settings as in ``aim.yml``; by default the project's own
            ``aim.yml`` inside a Kedro project, else all defaults.
        project_path: The root a relative repository folder is taken from; by
            default the Kedro project's root, else the current folder.
        experiment: The experiment to use when the settings name none; by
            default the project's package name.
        env: The environment whose ``aim.yml`` is read when ``settings`` is
            not given; by default ``KEDRO_ENV``, as for a Kedro session.

    Yields:
        The tracker of the open run; an :class:`UntrackedRun` where the
        settings turn tracking off, or the repository is unavailable and
        ``when_unavailable`` is ``continue``, so that the block runs as
        ``kedro run`` would.
    """
    if project_path is None:
        from kedro.utils import find_kedro_project

        project_path = find_kedro_project(Path.cwd()) or Path.cwd()
    if settings is None:
        settings, package = project_settings(
            project_path, env or os.environ.get("KEDRO_ENV")
        )
        experiment = experiment or package
    elif not isinstance(settings, AimSettings):
        from kedro_aim_cfg.models import parse_settings

        settings = parse_settings(settings, source="tracking_run(settings=...)")
    reason = "tracking is off in aim.yml" if not settings.enabled else None
    tracker: AimRunTracker | None = None
    if reason is None:
        try:
            tracker = AimRunTracker.open(
                settings, project_path=project_path, experiment=experiment
            )
        except AimRunError as exc:
            if settings.when_unavailable == "fail":
                raise
            reason = str(exc)
            logger.warning("Nothing inside this block is tracked: %s", exc)
    if tracker is None:
        yield from _untracked(reason or "no run")
        return

    activate(tracker)
    status = STATUS_FAILED
    try:
        yield tracker
        status = STATUS_FINISHED
    except KeyboardInterrupt:
        status = STATUS_INTERRUPTED
        raise
    finally:
        deactivate(tracker)
        tracker.close(status)
        logger.info("%s", tracker.summary())


def _untracked(reason: str) -> Iterator[UntrackedRun]:
    """Run a ``tracking_run`` block without a run, as ``kedro run`` would."""
    previous = unavailable_reason()
    set_unavailable(reason)
    try:
        yield UntrackedRun(reason)
    finally:
        set_unavailable(previous)
