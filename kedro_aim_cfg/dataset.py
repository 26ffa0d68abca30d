"""The dataset that saves through a catalog entry's own dataset, then tracks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kedro.io import AbstractDataset, AbstractVersionedDataset, DatasetError, Version

from kedro_aim_cfg.artifacts import TrackedItem, convert, is_figure
from kedro_aim_cfg.exceptions import AimTrackingError
from kedro_aim_cfg.models import parse_block
from kedro_aim_cfg.run import (
    UntrackedRun,
    active_tracker,
    adopt_pipeline_environment,
    pipeline_environment,
    unavailable_reason,
)

logger = logging.getLogger(__name__)

DATASET_TYPE = "kedro_aim_cfg.AimTrackingDataset"
"""The ``type`` that the loader gives to every rewritten catalog entry."""
RUN_DATASET_TYPE = "kedro_aim_cfg.AimRunDataset"
"""The ``type`` of the catalog entry through which nodes receive the run."""


class _CarriesTheRun:
    """Pickles with the current pipeline's run, for worker processes."""

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pipeline_environment": pipeline_environment()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        environment = state.pop("_pipeline_environment", None)
        self.__dict__.update(state)
        if environment is not None:
            adopt_pipeline_environment(environment)


class AimTrackingDataset(_CarriesTheRun, AbstractDataset[Any, Any]):
    """Save through the wrapped dataset, then track the data into the Aim run.

    Users do not write this type: ``AimConfigLoader`` rewrites every catalog
    entry that has an ``aim:`` block into one. An entry such as

    .. code-block:: yaml

        confusion_matrix:
          type: matplotlib.MatplotlibDataset
          filepath: data/08_reporting/confusion_matrix.png
          aim:
            type: figure
            context: {subset: test}

    becomes

    .. code-block:: yaml

        confusion_matrix:
          type: kedro_aim_cfg.AimTrackingDataset
          entry: confusion_matrix
          dataset:
            type: matplotlib.MatplotlibDataset
            filepath: data/08_reporting/confusion_matrix.png
          aim: {type: figure, name: confusion_matrix, context: {subset: test}}

    Loading, ``exists``, ``release`` and versioning are the wrapped dataset's.
    A save writes the data first; if it then cannot be tracked (no active run,
    data of the wrong type), a warning names the entry and the cause and the
    data stays saved.
    """

    def __init__(
        self,
        *,
        dataset: dict[str, Any] | AbstractDataset[Any, Any],
        aim: dict[str, Any],
        entry: str | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the wrapped dataset and validate the block.

        Args:
            dataset: The wrapped dataset, or its catalog configuration.
            aim: The ``aim:`` block.
            entry: The catalog entry's name, for messages; defaults to the name
                of the block.
            version: The load and save versions Kedro gives a versioned entry.
            metadata: The entry's metadata, kept for kedro-viz and other readers.

        Raises:
            DatasetError: The wrapped dataset cannot be created.
        """
        self._block = parse_block(aim, entry=entry or "")
        self._entry = entry or self._block.name or "<unnamed>"
        self._name = self._block.name or self._entry
        self.metadata = metadata

        self._config: dict[str, Any] | None = None
        if isinstance(dataset, AbstractDataset):
            self._dataset = dataset
        else:
            self._config = dict(dataset)
            if version is not None:
                self._config["versioned"] = True
            self._dataset = AbstractDataset.from_config(
                self._entry,
                self._config,
                load_version=version.load if version else None,
                save_version=version.save if version else None,
            )
        self._EPHEMERAL = getattr(self._dataset, "_EPHEMERAL", False)
        self._saves_lazily = _evaluates_callables(self._dataset, self._config)
        self._warned_no_run = False

    def __getattr__(self, name: str) -> Any:
        # kedro-viz previews a dataset that has a ``preview`` method; the wrapped
        # dataset's preview is the entry's preview.
        if name == "preview":
            dataset = self.__dict__.get("_dataset")
            if dataset is not None:
                return getattr(dataset, name)
        raise AttributeError(
            f"'{type(self).__name__}' object has no attribute '{name}'"
        )

    @property
    def dataset(self) -> AbstractDataset[Any, Any]:
        """The wrapped dataset, which reads and writes the data."""
        return self._dataset

    @property
    def artifact_type(self) -> str:
        """The artifact type of the ``aim:`` block."""
        return str(self._block.type)

    @property
    def tracked_name(self) -> str:
        """The name of the Aim sequence the data is tracked under."""
        return self._name

    def load(self) -> Any:
        return self._dataset.load()

    def save(self, data: Any) -> None:
        items: list[TrackedItem] = []
        errors: list[str] = []
        if (
            self._saves_lazily
            and isinstance(data, Mapping)
            and any(callable(v) for v in data.values())
        ):
            data = {
                key: self._convert_lazily(key, value, items, errors)
                if callable(value)
                else value
                for key, value in data.items()
            }
            self._dataset.save(data)
            eager = {k: v for k, v in data.items() if not callable(v)}
            if eager:
                items.extend(self._convert(eager, errors))
        else:
            self._dataset.save(data)
            items.extend(self._convert(self._as_written(data), errors))

        if items:
            self._track(items)
        for cause in errors:
            self._not_tracked(cause)

    def _as_written(self, data: Any) -> Any:
        """Give a ``figure`` block the figure the wrapped dataset wrote.

        Some datasets are given data and write a figure made of it, such as
        kedro-datasets' ``plotly.PlotlyDataset``, given a DataFrame and its
        ``plotly_args``; what they load back is that figure.
        """
        if self._block.type != "figure" or is_figure(data) or isinstance(data, Mapping):
            return data
        try:
            written = self._load_saved()
        except Exception:  # it cannot load back: the given data is what is tracked
            return data
        return written if is_figure(written) else data

    def _load_saved(self) -> Any:
        """Load what the last save wrote, even where a load version is pinned."""
        dataset = self._dataset
        if self._config is not None and isinstance(dataset, AbstractVersionedDataset):
            saved = dataset.resolve_save_version()
            if saved != dataset.resolve_load_version():
                dataset = AbstractDataset.from_config(
                    self._entry, self._config, load_version=saved, save_version=saved
                )
        return dataset.load()

    def _convert(self, data: Any, errors: list[str]) -> list[TrackedItem]:
        block = self._block
        try:
            return convert(
                block.type,
                self._name,
                block.context,
                block.save_args.model_dump(exclude_none=True),
                data,
            )
        except Exception as exc:  # whatever fails, the data is saved already
            errors.append(str(exc) or type(exc).__name__)
            return []

    def _convert_lazily(
        self,
        key: Any,
        function: Callable[[], Any],
        items: list[TrackedItem],
        errors: list[str],
    ) -> Callable[[], Any]:
        """Wrap a lazy partition so that it is converted when the save calls it."""

        def evaluate() -> Any:
            value = function()
            items.extend(self._convert({key: value}, errors))
            return value

        return evaluate

    def _track(self, items: list[TrackedItem]) -> None:
        tracker = active_tracker()
        if tracker is None:
            if not self._warned_no_run and unavailable_reason() is None:
                self._warned_no_run = True
                logger.warning(
                    "'%s' was saved but not tracked: no Aim run is active. Run "
                    "the pipeline with 'kedro run', or open a run with "
                    "kedro_aim_cfg.tracking_run().",
                    self._entry,
                )
            return
        try:
            tracker.track_items(self._block.type, items)
        except Exception as exc:
            self._not_tracked(f"Aim could not track it: {exc}")

    def _not_tracked(self, cause: str) -> None:
        tracker = active_tracker()
        if tracker is not None:
            try:
                tracker.record_failure(self._entry, self._block.type, cause)
            except Exception as exc:  # the warning below still tells the user
                logger.debug("Could not record the failure: %s", exc)
            if tracker.raise_errors:
                raise AimTrackingError(
                    f"'{self._entry}' was saved but not tracked as "
                    f"{self._block.type}: {cause}"
                )
        logger.warning(
            "'%s' was saved but not tracked as %s: %s",
            self._entry,
            self._block.type,
            cause,
        )

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _release(self) -> None:
        self._dataset.release()

    def _describe(self) -> dict[str, Any]:
        # The wrapped dataset's own description comes first and unnested, so
        # that readers such as kedro-viz find its ``filepath`` where they look.
        wrapped = type(self._dataset)
        return {
            **self._dataset._describe(),
            "wraps": f"{wrapped.__module__}.{wrapped.__qualname__}",
            "aim": self._block.model_dump(exclude_defaults=True),
        }


class AimRunDataset(_CarriesTheRun, AbstractDataset[None, Any]):
    """Give a node the active Aim run, to track values the catalog does not hold.

    The loader adds this entry as ``aim_run`` (``run_input`` in ``aim.yml``
    renames it), so a node can take it as an input:

    .. code-block:: python

        def train(model_input, aim_run):
            for epoch, loss in enumerate(fit(model_input)):
                aim_run.track(loss, name="loss", context={"subset": "train"})

        node(train, ["model_input", "aim_run"], "model")

    Loading it gives the :class:`~kedro_aim_cfg.run.AimRunTracker` of the run.
    """

    def __init__(self, *, metadata: dict[str, Any] | None = None) -> None:
        """Create the dataset.

        Args:
            metadata: Free-form metadata, as every Kedro dataset takes.
        """
        self.metadata = metadata

    def load(self) -> Any:
        tracker = active_tracker()
        if tracker is not None:
            return tracker
        reason = unavailable_reason()
        if reason is not None:
            # Tracking is off for this pipeline, or its run could not be
            # opened: the node runs and what it tracks goes nowhere.
            return UntrackedRun(reason)
        raise DatasetError(
            "No Aim run is active in this process, so the run input has nothing "
            "to give. Nodes get it inside 'kedro run' with any runner; in a "
            "notebook or script, save inside 'with kedro_aim_cfg.tracking_run():'."
        )

    def save(self, data: None) -> None:
        raise DatasetError(
            f"{type(self).__name__} is read-only: it gives nodes the active Aim run."
        )

    def _exists(self) -> bool:
        return active_tracker() is not None

    def _describe(self) -> dict[str, Any]:
        return {}


def _evaluates_callables(
    dataset: AbstractDataset[Any, Any], config: Mapping[str, Any] | None
) -> bool:
    """Whether the dataset calls the callables of a dict it saves.

    A ``PartitionedDataset`` saving lazily does, and then each callable is
    converted as it is evaluated, so that it is evaluated once. Any other
    dataset saves the callables themselves.
    """
    try:
        from kedro_datasets.partitions import PartitionedDataset
    except ImportError:
        return False
    if not isinstance(dataset, PartitionedDataset):
        return False
    return bool((config or {}).get("save_lazily", True))


__all__ = ["DATASET_TYPE", "RUN_DATASET_TYPE", "AimRunDataset", "AimTrackingDataset"]
