"""Every kedro-datasets type a block is meant for: saved, tracked, loaded back.

One project holds one tracked entry per dataset type and runs once through a
real ``KedroSession``; each case then checks its file, what Aim holds in a fresh
process, and what the catalog loads back.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError
from PIL import Image

from conftest import KedroProject, new_project, sequences_by_name
from kedro_aim_cfg import AimTrackingDataset

MATRIX_NODES = """

def numeric_frame(seed):
    import pandas as pd

    return pd.DataFrame({"value": [float(i) for i in range(10)]})


def mixed_frame(seed):
    import pandas as pd

    return pd.DataFrame({"name": ["a", "b"], "score": [seed, seed * 2]})


def nested_metrics(seed):
    return {"f1": {"macro": 0.5, "micro": 0.75}, "support": seed}


def image_partitions(seed):
    return {f"p{i}": make_pil_image(seed + i) for i in range(2)}


def identity(value):
    return value
"""

SEED = 3
MIXED = pd.DataFrame({"name": ["a", "b"], "score": [SEED, SEED * 2]})


@dataclass(frozen=True)
class Case:
    """One catalog entry: its dataset, its block, and what to expect."""

    entry: str
    dataset: dict[str, Any]
    aim: dict[str, Any]
    node: str
    wrapped: str
    tracked: list[tuple[str, str, dict[str, Any], list[Any]]]
    loaded: Callable[[Any], None]
    files: list[str] = field(default_factory=list)


def _frame_equal(expected: pd.DataFrame) -> Callable[[Any], None]:
    def check(loaded: Any) -> None:
        pd.testing.assert_frame_equal(
            loaded.reset_index(drop=True), expected, check_dtype=False
        )

    return check


def _equal(expected: Any) -> Callable[[Any], None]:
    def check(loaded: Any) -> None:
        assert loaded == expected

    return check


def _wave(loaded: Any) -> None:
    assert isinstance(loaded, np.ndarray)
    assert loaded.shape == (800,)
    assert loaded.dtype == np.float32


def _pil_size(loaded: Any) -> None:
    assert isinstance(loaded, Image.Image)
    assert loaded.size == (16, 12)


def _not_loadable(loaded: Any) -> None:
    # MatplotlibDataset writes only; the wrapper passes its refusal on.
    assert isinstance(loaded, DatasetError)
    assert "not supported" in str(loaded)


def _bar_figure(loaded: Any) -> None:
    assert [trace.type for trace in loaded.data] == ["bar"]
    assert list(loaded.data[0].y) == [SEED, SEED * 2]


def _partitions(loaded: Any) -> None:
    assert sorted(loaded) == ["p0", "p1"]
    for load in loaded.values():
        _pil_size(load())


def _plotly_bar(loaded: Any) -> None:
    assert [trace.type for trace in loaded.data] == ["bar"]
    assert list(loaded.data[0].y) == [SEED, SEED + 1]


CASES = [
    Case(
        "csv_values",
        {"type": "pandas.CSVDataset", "filepath": "data/values.csv"},
        {"type": "distribution", "save_args": {"bin_count": 5}},
        "numeric_frame",
        "kedro_datasets.pandas.csv_dataset.CSVDataset",
        [("distribution", "csv_values", {}, [{"bin_count": 5, "total": 10.0}])],
        _frame_equal(pd.DataFrame({"value": [float(i) for i in range(10)]})),
        ["values.csv"],
    ),
    Case(
        "parquet_table",
        {"type": "pandas.ParquetDataset", "filepath": "data/table.parquet"},
        {"type": "text", "context": {"format": "parquet"}},
        "mixed_frame",
        "kedro_datasets.pandas.parquet_dataset.ParquetDataset",
        [("text", "parquet_table", {"format": "parquet"}, [MIXED.to_string()])],
        _frame_equal(MIXED),
        ["table.parquet"],
    ),
    Case(
        "pickled_wave",
        {"type": "pickle.PickleDataset", "filepath": "data/wave.pkl"},
        {"type": "audio", "save_args": {"rate": 8000, "caption": "a tone"}},
        "make_wave_array",
        "kedro_datasets.pickle.pickle_dataset.PickleDataset",
        [
            (
                "audio",
                "pickled_wave",
                {},
                [{"format": "wav", "caption": "a tone", "rate": 8000, "frames": 800}],
            )
        ],
        _wave,
        ["wave.pkl"],
    ),
    Case(
        "json_metrics",
        {"type": "json.JSONDataset", "filepath": "data/metrics.json"},
        {"type": "metrics", "context": {"subset": "test"}},
        "make_metrics",
        "kedro_datasets.json.json_dataset.JSONDataset",
        [
            ("metric", "json_metrics.accuracy", {"subset": "test"}, [0.53]),
            ("metric", "json_metrics.loss.train", {"subset": "test"}, [0.25]),
            ("metric", "json_metrics.loss.test", {"subset": "test"}, [0.5]),
        ],
        _equal({"accuracy": 0.53, "loss": {"train": 0.25, "test": 0.5}}),
        ["metrics.json"],
    ),
    Case(
        "yaml_metrics",
        {"type": "yaml.YAMLDataset", "filepath": "data/metrics.yml"},
        {"type": "metrics", "name": "scores"},
        "nested_metrics",
        "kedro_datasets.yaml.yaml_dataset.YAMLDataset",
        [
            ("metric", "scores.f1.macro", {}, [0.5]),
            ("metric", "scores.f1.micro", {}, [0.75]),
            ("metric", "scores.support", {}, [SEED]),
        ],
        _equal({"f1": {"macro": 0.5, "micro": 0.75}, "support": SEED}),
        ["metrics.yml"],
    ),
    Case(
        "report",
        {"type": "text.TextDataset", "filepath": "data/report.txt"},
        {"type": "text"},
        "make_text",
        "kedro_datasets.text.text_dataset.TextDataset",
        [("text", "report", {}, [f"report for seed {SEED}"])],
        _equal(f"report for seed {SEED}"),
        ["report.txt"],
    ),
    Case(
        "picture",
        {"type": "pillow.ImageDataset", "filepath": "data/picture.png"},
        {"type": "image", "save_args": {"caption": "flat", "format": "jpg"}},
        "make_pil_image",
        "kedro_datasets.pillow.image_dataset.ImageDataset",
        [
            (
                "image",
                "picture",
                {},
                [{"width": 16, "height": 12, "format": "jpeg", "caption": "flat"}],
            )
        ],
        _pil_size,
        ["picture.png"],
    ),
    Case(
        "mpl_figure",
        {"type": "matplotlib.MatplotlibDataset", "filepath": "data/mpl_figure.png"},
        {"type": "figure"},
        "make_matplotlib_figure",
        "kedro_datasets.matplotlib.matplotlib_dataset.MatplotlibDataset",
        [("figure", "mpl_figure", {}, [{"traces": ["image"]}])],
        _not_loadable,
        ["mpl_figure.png"],
    ),
    Case(
        "mpl_image",
        {"type": "matplotlib.MatplotlibDataset", "filepath": "data/mpl_image.png"},
        {"type": "image"},
        "make_matplotlib_figure",
        "kedro_datasets.matplotlib.matplotlib_dataset.MatplotlibDataset",
        [("image", "mpl_image", {}, [{"width": 100, "height": 100}])],
        _not_loadable,
        ["mpl_image.png"],
    ),
    Case(
        "plotly_chart",
        {
            "type": "plotly.PlotlyDataset",
            "filepath": "data/plotly_chart.json",
            "plotly_args": {"type": "bar", "fig": {"x": "name", "y": "score"}},
        },
        {"type": "figure"},
        "mixed_frame",
        "kedro_datasets.plotly.plotly_dataset.PlotlyDataset",
        [("figure", "plotly_chart", {}, [{"traces": ["bar"]}])],
        _bar_figure,
        ["plotly_chart.json"],
    ),
    Case(
        "plotly_json",
        {"type": "plotly.JSONDataset", "filepath": "data/plotly.json"},
        {"type": "figure"},
        "make_plotly_figure",
        "kedro_datasets.plotly.json_dataset.JSONDataset",
        [("figure", "plotly_json", {}, [{"traces": ["bar"]}])],
        _plotly_bar,
        ["plotly.json"],
    ),
    Case(
        "partitions",
        {
            "type": "partitions.PartitionedDataset",
            "path": "data/partitions",
            "dataset": {"type": "pillow.ImageDataset"},
            "filename_suffix": ".png",
        },
        {"type": "image"},
        "image_partitions",
        "kedro_datasets.partitions.partitioned_dataset.PartitionedDataset",
        [
            ("image", "partitions", {"key": "p0"}, [{"width": 16, "height": 12}]),
            ("image", "partitions", {"key": "p1"}, [{"width": 16, "height": 12}]),
        ],
        _partitions,
        ["partitions/p0.png", "partitions/p1.png"],
    ),
    Case(
        "in_memory",
        {"type": "MemoryDataset"},
        {"type": "metric", "context": {"kept": "in memory"}},
        "make_metric",
        "kedro.io.memory_dataset.MemoryDataset",
        [("metric", "in_memory", {"kept": "in memory"}, [0.125 * SEED])],
        # A MemoryDataset lives as long as its run: a node loads it back.
        lambda loaded: None,
    ),
]


@dataclass
class MatrixRun:
    project: KedroProject
    run: dict[str, Any]
    loaded: dict[str, Any]
    datasets: dict[str, Any]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixRun]:
    project = new_project(
        tmp_path_factory.mktemp("matrix"),
        "matrix",
        nodes=MATRIX_NODES,
        parameters={"seed": SEED},
    )
    catalog: dict[str, Any] = {
        case.entry: {**case.dataset, "aim": case.aim} for case in CASES
    }
    catalog["in_memory_copy"] = {
        "type": "json.JSONDataset",
        "filepath": "data/in_memory_copy.json",
    }
    project.write_catalog(catalog)
    project.write_pipeline(
        [(case.node, "params:seed", case.entry) for case in CASES]
        + [("identity", "in_memory", "in_memory_copy")]
    )
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
            project.run()
            from kedro.framework.session import KedroSession

            with KedroSession.create(project_path=project.path) as session:
                context_catalog = session.load_context().catalog
                datasets = {
                    case.entry: context_catalog.get(case.entry) for case in CASES
                }
                loaded: dict[str, Any] = {}
                for case in CASES:
                    if case.dataset["type"] == "MemoryDataset":
                        loaded[case.entry] = context_catalog.load("in_memory_copy")
                        continue
                    try:
                        loaded[case.entry] = context_catalog.load(case.entry)
                    except DatasetError as exc:
                        loaded[case.entry] = exc
        (run,) = project.read_runs()
        yield MatrixRun(project, run, loaded, datasets)
    finally:
        for module in [m for m in sys.modules if m.split(".")[0] == project.package]:
            del sys.modules[module]


def _matches(actual: Any, expected: Any) -> bool:
    """Whether ``actual`` holds ``expected``; dicts need only the expected keys."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _matches(actual[key], value)
            for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_matches(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, float):
        return actual == pytest.approx(expected)
    return bool(actual == expected)


@pytest.mark.parametrize("case", CASES, ids=[case.entry for case in CASES])
class TestDatasetMatrix:
    def test_the_entry_wraps_its_own_dataset(self, matrix: MatrixRun, case: Case):
        dataset = matrix.datasets[case.entry]
        assert isinstance(dataset, AimTrackingDataset)
        inner = type(dataset.dataset)
        assert f"{inner.__module__}.{inner.__name__}" == case.wrapped
        assert dataset.artifact_type == case.aim["type"]

    def test_the_data_is_written(self, matrix: MatrixRun, case: Case):
        for name in case.files:
            assert (matrix.project.path / "data" / name).is_file(), name

    def test_aim_holds_the_tracked_values(self, matrix: MatrixRun, case: Case):
        sequences = sequences_by_name(matrix.run)
        for kind, name, context, values in case.tracked:
            found = [
                s for s in sequences.get((kind, name), []) if s["context"] == context
            ]
            assert len(found) == 1, (kind, name, context, sequences.get((kind, name)))
            assert found[0]["steps"] == [0]
            assert _matches(found[0]["values"], values), found[0]["values"]

    def test_the_catalog_loads_it_back(self, matrix: MatrixRun, case: Case):
        case.loaded(matrix.loaded[case.entry])


class TestMatrixRun:
    def test_every_save_was_tracked(self, matrix: MatrixRun):
        kedro = matrix.run["kedro"]
        assert kedro["status"] == "finished"
        assert kedro["not_tracked"] == []
        assert kedro["tracked"] == {
            "audio": 1,
            "distribution": 1,
            "figure": 3,
            "image": 4,
            "metric": 1,
            "metrics": 6,
            "text": 2,
        }

    def test_only_the_tracked_entries_have_sequences(self, matrix: MatrixRun):
        expected = {(kind, name) for case in CASES for kind, name, _, _ in case.tracked}
        assert set(sequences_by_name(matrix.run)) == expected

    def test_a_memory_dataset_is_loaded_by_the_next_node(self, matrix: MatrixRun):
        assert matrix.loaded["in_memory"] == pytest.approx(0.125 * SEED)

    def test_the_mpl_files_are_the_rendered_figures(self, matrix: MatrixRun):
        for name in ("mpl_figure.png", "mpl_image.png"):
            with Image.open(matrix.project.path / "data" / name) as image:
                assert image.size == (100, 100)
