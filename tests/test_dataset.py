"""``AimTrackingDataset``: save through the wrapped dataset, then track."""

from __future__ import annotations

import json
import logging
import pickle
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, DatasetError, MemoryDataset

from conftest import read_runs, sequences_by_name
from kedro_aim_cfg import (
    AimConfigError,
    AimConfigLoader,
    AimTrackingDataset,
    tracking_run,
)
from kedro_aim_cfg.loader import rewrite_catalog
from kedro_aim_cfg.run import _ensure_local_repository, activate, deactivate

CATALOG = """
accuracy:
  type: json.JSONDataset
  filepath: {root}/accuracy.json
  aim: {{type: metric, context: {{subset: test}}}}
report:
  type: text.TextDataset
  filepath: {root}/report.txt
  aim: {{type: text}}
digits:
  type: pandas.CSVDataset
  filepath: {root}/digits.csv
  aim: {{type: image}}
score:
  type: json.JSONDataset
  filepath: {root}/score.json
  aim: {{type: metric}}
samples:
  type: pickle.PickleDataset
  filepath: {root}/samples.pkl
  aim: {{type: distribution, save_args: {{bin_count: 8}}}}
broken:
  type: text.TextDataset
  filepath: {root}/report.txt/inside.txt
  aim: {{type: text}}
parts:
  type: partitions.PartitionedDataset
  path: {root}/parts
  dataset: text.TextDataset
  filename_suffix: .txt
  aim: {{type: text, context: {{subset: test}}}}
pickled:
  type: json.JSONDataset
  filepath: {root}/pickled.json
  aim: {{type: metric, name: round_trip}}
"""

UNTRACKABLE = {
    "digits": (
        pd.DataFrame({"a": [1, 2]}),
        "image",
        r"image takes a PIL image, a uint8 or bool numpy array or a matplotlib "
        r"figure, got pandas\..*DataFrame",
    ),
    "score": ("high", "metric", r"metric takes a number, got builtins\.str"),
    "samples": (
        [1.0, float("nan")],
        "distribution",
        r"distribution samples contain NaN or infinite values",
    ),
}


def make_catalog(root: Path) -> DataCatalog:
    config = yaml.safe_load(CATALOG.format(root=root))
    return DataCatalog.from_config(rewrite_catalog(config))


def counting(values: dict[str, Any], calls: Counter[str]) -> dict[str, Callable]:
    def lazy(key: str) -> Callable[[], Any]:
        def load() -> Any:
            calls[key] += 1
            return values[key]

        return load

    return {key: lazy(key) for key in values}


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Aim repository for the module: creating one takes seconds."""
    path = tmp_path_factory.mktemp("repository")
    _ensure_local_repository(str(path))
    return path


def open_run(repository: Path) -> Any:
    return tracking_run(
        {"repository": str(repository), "experiment": "dataset-tests"},
        project_path=repository,
    )


class TestTrackedRun:
    """Many saves into one run, read back once in a fresh process."""

    @pytest.fixture(scope="class")
    @classmethod
    def result(
        cls, tmp_path_factory: pytest.TempPathFactory, repository: Path
    ) -> dict[str, Any]:
        root = tmp_path_factory.mktemp("tracked")
        catalog = make_catalog(root)
        calls: Counter[str] = Counter()
        with open_run(repository) as tracker:
            catalog.save("accuracy", 0.5)
            catalog.save("accuracy", 0.75)
            catalog.save("report", "first")
            for name, (data, _, _) in UNTRACKABLE.items():
                catalog.save(name, data)
            with pytest.raises(DatasetError, match=r"inside\.txt"):
                catalog.save("broken", "lost")
            catalog.save(
                "parts",
                {**counting({"a": "alpha", "b": "beta"}, calls), "c": "gamma"},
            )
            copy = pickle.loads(pickle.dumps(catalog.get("pickled")))
            copy.save(1.5)
        (run,) = [r for r in read_runs(repository) if r["hash"] == tracker.hash]
        return {
            "root": root,
            "run": run,
            "sequences": sequences_by_name(run),
            "calls": calls,
            "hash": tracker.hash,
        }

    def test_saved_then_tracked(self, result: dict[str, Any]) -> None:
        (accuracy,) = result["sequences"][("metric", "accuracy")]

        assert json.loads((result["root"] / "accuracy.json").read_text()) == 0.75
        assert accuracy["context"] == {"subset": "test"}
        assert accuracy["steps"] == [0, 1]
        assert accuracy["values"] == [0.5, 0.75]
        assert result["run"]["hash"] == result["hash"]
        assert result["run"]["experiment"] == "dataset-tests"

    def test_failed_save_tracks_nothing(self, result: dict[str, Any]) -> None:
        (report,) = result["sequences"][("text", "report")]

        assert report["values"] == ["first"]
        assert ("text", "broken") not in result["sequences"]
        assert (result["root"] / "report.txt").read_text() == "first"

    def test_untrackable_data_is_saved_and_recorded(
        self, result: dict[str, Any]
    ) -> None:
        root = result["root"]
        not_tracked = result["run"]["kedro"]["not_tracked"]

        assert [(n["entry"], n["type"]) for n in not_tracked] == [
            (name, kind) for name, (_, kind, _) in UNTRACKABLE.items()
        ]
        for record, (_, _, cause) in zip(
            not_tracked, UNTRACKABLE.values(), strict=True
        ):
            assert re.search(cause, record["cause"])
        assert pd.read_csv(root / "digits.csv")["a"].tolist() == [1, 2]
        assert json.loads((root / "score.json").read_text()) == "high"
        assert pickle.loads((root / "samples.pkl").read_bytes())[0] == 1.0
        for kind, name in [("image", "digits"), ("metric", "score")]:
            assert (kind, name) not in result["sequences"]
        assert ("distribution", "samples") not in result["sequences"]

    def test_status_and_counts(self, result: dict[str, Any]) -> None:
        kedro = result["run"]["kedro"]

        assert kedro["status"] == "finished"
        assert kedro["tracked"] == {"metric": 3, "text": 4}
        assert result["run"]["active"] is False

    def test_lazy_partitions_evaluated_once_and_tracked_by_key(
        self, result: dict[str, Any]
    ) -> None:
        sequences = result["sequences"][("text", "parts")]

        assert result["calls"] == {"a": 1, "b": 1}
        assert sorted(
            (s["context"]["key"], s["context"]["subset"], s["steps"], s["values"])
            for s in sequences
        ) == [
            ("a", "test", [0], ["alpha"]),
            ("b", "test", [0], ["beta"]),
            ("c", "test", [0], ["gamma"]),
        ]
        parts = result["root"] / "parts"
        assert sorted(p.name for p in parts.iterdir()) == ["a.txt", "b.txt", "c.txt"]
        assert (parts / "a.txt").read_text() == "alpha"

    def test_pickled_copy_tracks(self, result: dict[str, Any]) -> None:
        (sequence,) = result["sequences"][("metric", "round_trip")]

        assert sequence["values"] == [1.5]
        assert json.loads((result["root"] / "pickled.json").read_text()) == 1.5


class TestUntrackable:
    @pytest.mark.parametrize("entry", list(UNTRACKABLE))
    def test_saved_and_warned(
        self,
        tmp_path: Path,
        repository: Path,
        caplog: pytest.LogCaptureFixture,
        entry: str,
    ) -> None:
        data, kind, cause = UNTRACKABLE[entry]
        catalog = make_catalog(tmp_path)

        with caplog.at_level(logging.WARNING), open_run(repository) as tracker:
            catalog.save(entry, data)

        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert warnings[0].name == "kedro_aim_cfg.dataset"
        assert re.search(
            rf"^'{entry}' was saved but not tracked as {kind}: {cause}",
            warnings[0].getMessage(),
        )
        ((failed_entry, failed_kind, failed_cause),) = tracker.failures
        assert (failed_entry, failed_kind) == (entry, kind)
        assert failed_cause in warnings[0].getMessage()
        assert tracker.counts == Counter()
        assert any(p.name.startswith(entry) for p in tmp_path.iterdir())

    def test_closed_run_is_a_warning(
        self, tmp_path: Path, repository: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        catalog = make_catalog(tmp_path)
        with open_run(repository) as tracker:
            pass
        activate(tracker)
        try:
            with caplog.at_level(logging.WARNING):
                catalog.save("accuracy", 0.5)
        finally:
            deactivate(tracker)

        assert json.loads((tmp_path / "accuracy.json").read_text()) == 0.5
        (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert warning.getMessage().startswith(
            "'accuracy' was saved but not tracked as metric: Aim could not track it: "
        )
        assert "closed" in warning.getMessage()
        assert tracker.failures[0][:2] == ("accuracy", "metric")


class TestNoActiveRun:
    def test_saved_and_warned_once_per_dataset(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        catalog = make_catalog(tmp_path)

        with caplog.at_level(logging.WARNING):
            for value in (0.1, 0.2, 0.3):
                catalog.save("accuracy", value)
                catalog.save("report", f"report {value}")

        assert json.loads((tmp_path / "accuracy.json").read_text()) == 0.3
        assert (tmp_path / "report.txt").read_text() == "report 0.3"
        records = [r for r in caplog.records if r.name.startswith("kedro_aim_cfg")]
        assert sorted(r.getMessage() for r in records) == [
            f"'{name}' was saved but not tracked: no Aim run is active. Run the "
            "pipeline with 'kedro run', or open a run with "
            "kedro_aim_cfg.tracking_run()."
            for name in ("accuracy", "report")
        ]
        assert {r.levelno for r in records} == {logging.WARNING}

    def test_conversion_error_still_warns_without_run(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        catalog = make_catalog(tmp_path)

        with caplog.at_level(logging.WARNING):
            catalog.save("score", "high")

        (warning,) = [r for r in caplog.records if r.name.startswith("kedro_aim")]
        assert warning.getMessage() == (
            "'score' was saved but not tracked as metric: "
            "metric takes a number, got builtins.str"
        )

    def test_lazy_partitions_evaluated_once(self, tmp_path: Path) -> None:
        calls: Counter[str] = Counter()

        make_catalog(tmp_path).save("parts", counting({"x": "ex", "y": "why"}, calls))

        assert calls == {"x": 1, "y": 1}
        assert (tmp_path / "parts" / "y.txt").read_text() == "why"

    def test_pickle_round_trip(self, tmp_path: Path) -> None:
        dataset = make_catalog(tmp_path).get("accuracy")

        copy = pickle.loads(pickle.dumps(dataset))
        copy.save(0.25)

        assert isinstance(copy, AimTrackingDataset)
        assert copy.tracked_name == "accuracy"
        assert copy.load() == 0.25
        assert dataset.load() == 0.25


class TestLikeTheWrappedDataset:
    def test_load_exists_describe(self, tmp_path: Path) -> None:
        dataset = make_catalog(tmp_path).get("accuracy")
        inner = dataset.dataset

        assert not dataset.exists()
        inner.save({"a": 1})

        assert dataset.exists()
        assert dataset.load() == inner.load() == {"a": 1}
        assert dataset._describe() == {
            **inner._describe(),
            "wraps": "kedro_datasets.json.json_dataset.JSONDataset",
            "aim": {
                "type": "metric",
                "name": "accuracy",
                "context": {"subset": "test"},
            },
        }
        assert str(tmp_path / "accuracy.json") in repr(dataset)

    def test_preview_is_the_wrapped_datasets(self, tmp_path: Path) -> None:
        dataset = AimTrackingDataset(
            dataset={"type": "pandas.CSVDataset", "filepath": str(tmp_path / "t.csv")},
            aim={"type": "text"},
        )
        dataset.dataset.save(pd.DataFrame({"a": range(10)}))
        in_memory = AimTrackingDataset(
            dataset={"type": "kedro.io.MemoryDataset"}, aim={"type": "metric"}
        )

        assert dataset.preview(nrows=3) == dataset.dataset.preview(nrows=3)
        assert len(dataset.preview(nrows=3)["data"]) == 3
        assert not hasattr(in_memory, "preview")
        assert not hasattr(dataset, "_filepath")

    def test_release_and_ephemeral(self) -> None:
        dataset = AimTrackingDataset(
            dataset={"type": "kedro.io.MemoryDataset"}, aim={"type": "metric"}
        )
        dataset.save(3)

        assert dataset.load() == 3
        assert dataset._EPHEMERAL is True
        dataset.release()
        assert not dataset.exists()
        with pytest.raises(DatasetError, match="has not been saved yet"):
            dataset.load()

    def test_wraps_a_dataset_instance(self) -> None:
        inner = MemoryDataset(data=5)

        dataset = AimTrackingDataset(
            dataset=inner, aim={"type": "metric", "name": "m"}, metadata={"a": 1}
        )

        assert dataset.dataset is inner
        assert dataset.load() == 5
        assert dataset.metadata == {"a": 1}
        assert (dataset.tracked_name, dataset.artifact_type) == ("m", "metric")

    def test_metadata_from_the_catalog(self, tmp_path: Path) -> None:
        config = {
            "accuracy": {
                "type": "json.JSONDataset",
                "filepath": str(tmp_path / "a.json"),
                "metadata": {"kedro-viz": {"layer": "reporting"}},
                "aim": {"type": "metric"},
            }
        }
        dataset = DataCatalog.from_config(rewrite_catalog(config)).get("accuracy")

        assert dataset.metadata == {"kedro-viz": {"layer": "reporting"}}
        assert dataset.dataset.metadata == dataset.metadata

    def test_invalid_block_fails_on_creation(self) -> None:
        with pytest.raises(
            AimConfigError, match=r"aim\.type: 'video' is not an artifact"
        ):
            AimTrackingDataset(
                dataset={"type": "kedro.io.MemoryDataset"}, aim={"type": "video"}
            )


class TestVersioned:
    def test_session_save_version_and_load_versions(
        self, make_project, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        project = make_project()
        project.write_catalog(
            {
                "accuracy": {
                    "type": "json.JSONDataset",
                    "filepath": "data/accuracy.json",
                    "versioned": True,
                    "aim": {"type": "metric"},
                }
            }
        )
        project.write_aim({"enabled": False})
        project.write_pipeline([("make_metric", "params:seed", "accuracy")])
        bootstrap_project(project.path)
        versions = []
        for seed in (3, 5):
            with KedroSession.create(
                project_path=project.path, runtime_params={"seed": seed}
            ) as session:
                session.run()
                versions.append(session.session_id)

        folder = project.path / "data" / "accuracy.json"
        assert sorted(p.name for p in folder.iterdir()) == sorted(versions)
        for version, seed in zip(versions, (3, 5), strict=True):
            saved = folder / version / "accuracy.json"
            assert json.loads(saved.read_text()) == 0.125 * seed

        monkeypatch.chdir(project.path)
        config = AimConfigLoader("conf", base_env="base", default_run_env="local")
        catalog = config["catalog"]
        assert DataCatalog.from_config(catalog).load("accuracy") == 0.625
        first = DataCatalog.from_config(
            catalog, load_versions={"accuracy": versions[0]}
        )
        assert first.load("accuracy") == 0.375


class TestFigureDatasets:
    def test_dict_of_matplotlib_figures_tracked_as_figures(self, tmp_path):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from conftest import read_runs, sequences_by_name
        from kedro_aim_cfg import AimTrackingDataset, tracking_run

        figures = {}
        for name in ("a", "b"):
            figure, axes = plt.subplots(figsize=(1, 1), dpi=40)
            axes.plot([0, 1])
            figures[f"{name}.png"] = figure
        dataset = AimTrackingDataset(
            dataset={
                "type": "matplotlib.MatplotlibDataset",
                "filepath": str(tmp_path / "plots"),
            },
            aim={"type": "figure", "name": "plots"},
            entry="plots",
        )
        with tracking_run(project_path=tmp_path):
            dataset.save(figures)

        assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
            "a.png",
            "b.png",
        ]
        (run,) = read_runs(tmp_path)
        contexts = [s["context"] for s in sequences_by_name(run)[("figure", "plots")]]
        assert sorted(c["key"] for c in contexts) == ["a.png", "b.png"]
        assert run["kedro"]["not_tracked"] == []


def _chart(colours: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(len(colours))), "y": 1, "c": colours})


class TestNothingLost:
    """Whatever fails while tracking, the wrapped dataset saves what it is given."""

    def test_any_conversion_error_keeps_the_data(self, tmp_path: Path) -> None:
        from PIL import Image

        dataset = AimTrackingDataset(
            dataset={
                "type": "pickle.PickleDataset",
                "filepath": str(tmp_path / "depth.pkl"),
            },
            aim={"type": "image", "save_args": {"format": "jpg"}},
            entry="depth",
        )
        # Pillow cannot write a floating-point image as JPEG: an OSError.
        depth = Image.new("F", (4, 4), 0.5)
        with tracking_run(project_path=tmp_path):
            dataset.save(depth)

        assert pickle.loads((tmp_path / "depth.pkl").read_bytes()).mode == "F"
        (run,) = read_runs(tmp_path)
        (failure,) = run["kedro"]["not_tracked"]
        assert (failure["entry"], failure["type"]) == ("depth", "image")
        assert "JPEG" in failure["cause"]

    def test_partitions_saved_eagerly_keep_their_callables(
        self, tmp_path: Path
    ) -> None:
        dataset = AimTrackingDataset(
            dataset={
                "type": "partitions.PartitionedDataset",
                "path": str(tmp_path / "parts"),
                "dataset": "pickle.PickleDataset",
                "save_lazily": False,
            },
            aim={"type": "text"},
            entry="parts",
        )
        with tracking_run(project_path=tmp_path):
            dataset.save({"a": str.upper})

        # The partition holds the callable itself, as without an aim: block.
        assert pickle.loads((tmp_path / "parts" / "a").read_bytes()) is str.upper
        (run,) = read_runs(tmp_path)
        (failure,) = run["kedro"]["not_tracked"]
        assert failure["type"] == "text"
        assert "got builtins.method_descriptor" in failure["cause"]

    def test_figure_made_from_data_is_the_one_just_saved(self, tmp_path: Path) -> None:
        from kedro.io import Version

        config = {
            "type": "plotly.PlotlyDataset",
            "filepath": str(tmp_path / "chart.json"),
            "plotly_args": {"type": "bar", "fig": {"x": "x", "y": "y", "color": "c"}},
        }
        first, second = "2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"

        def chart(version: Version) -> AimTrackingDataset:
            return AimTrackingDataset(
                dataset=config, aim={"type": "figure"}, entry="chart", version=version
            )

        chart(Version(None, first)).save(_chart(["red"]))
        with tracking_run(project_path=tmp_path):
            # Loads stay pinned to the first version, as with --load-versions.
            chart(Version(first, second)).save(_chart(["red", "blue"]))

        (run,) = read_runs(tmp_path)
        (sequence,) = sequences_by_name(run)[("figure", "chart")]
        assert sequence["values"] == [{"traces": ["bar", "bar"]}]
        assert len(chart(Version(first, None)).load().data) == 1


class TestPickledAcrossRuns:
    """A dataset carries its pipeline's run to workers, and only to workers."""

    def test_unpickled_after_its_run_it_changes_nothing(
        self, tmp_path: Path, repository: Path
    ) -> None:
        import os
        import subprocess
        import sys

        from kedro_aim_cfg.spool import SPOOL_ENV

        dataset = make_catalog(tmp_path).get("accuracy")
        with open_run(repository) as run:
            run.share_with_workers()
            blob = pickle.dumps(dataset)
            assert SPOOL_ENV in os.environ
        assert SPOOL_ENV not in os.environ

        copy = pickle.loads(blob)
        assert SPOOL_ENV not in os.environ
        copy.save(0.5)
        assert json.loads((tmp_path / "accuracy.json").read_text()) == 0.5
        # In another process, while this one still lives: the spool is gone.
        script = (
            "import os, pickle, sys; pickle.loads(sys.stdin.buffer.read()); "
            f"print({SPOOL_ENV!r} in os.environ)"
        )
        other = subprocess.run(
            [sys.executable, "-c", script],
            input=blob,
            capture_output=True,
            check=True,
            timeout=120,
            cwd=Path(__file__).parent,
        )
        assert other.stdout.decode().strip() == "False"
