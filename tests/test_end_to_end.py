"""A project tracking every artifact type, run by ``kedro run`` and by a session."""

from __future__ import annotations

import json
import pickle
from typing import Any

import kedro
import numpy as np
import pytest
from PIL import Image as PILImage

from conftest import KedroProject

CATALOG = """
sample_image:
  type: pillow.ImageDataset
  filepath: data/08_reporting/sample_image.png
  aim: {type: image, save_args: {caption: a tile, format: jpg, quality: 80}}
mpl_image:
  type: matplotlib.MatplotlibDataset
  filepath: data/08_reporting/mpl_image.png
  aim: {type: image, context: {source: matplotlib}}
mpl_figure:
  type: matplotlib.MatplotlibDataset
  filepath: data/08_reporting/mpl_figure.png
  aim: {type: figure, name: confusion_matrix, context: {subset: test}}
plotly_figure:
  type: plotly.JSONDataset
  filepath: data/08_reporting/plotly_figure.json
  aim: {type: figure}
report:
  type: text.TextDataset
  filepath: data/08_reporting/report.txt
  aim: {type: text, context: {subset: test}}
tone:
  type: pickle.PickleDataset
  filepath: data/08_reporting/tone.pkl
  aim: {type: audio, save_args: {rate: 8000, caption: a tone}}
clip:
  type: MemoryDataset
  aim: {type: audio, context: {source: bytes}}
samples:
  type: pickle.PickleDataset
  filepath: data/07_model_output/samples.pkl
  aim: {type: distribution, save_args: {bin_count: 20}}
accuracy:
  type: json.JSONDataset
  filepath: data/08_reporting/accuracy.json
  aim: {type: metric, context: {subset: test, fold: 1, final: true}}
metrics:
  type: json.JSONDataset
  filepath: data/08_reporting/metrics.json
  aim: {type: metrics, name: test, context: {subset: test}}
"""

PIPELINE = [
    ("make_pil_image", "params:seed", "sample_image"),
    ("make_matplotlib_figure", "params:seed", "mpl_image"),
    ("make_matplotlib_figure", "params:seed", "mpl_figure"),
    ("make_plotly_figure", "params:seed", "plotly_figure"),
    ("make_text", "params:seed", "report"),
    ("make_wave_array", "params:seed", "tone"),
    ("make_wav_bytes", "params:seed", "clip"),
    ("make_samples", "params:seed", "samples"),
    ("make_metric", "params:seed", "accuracy"),
    ("make_metrics", "params:seed", "metrics"),
]

TRACKED = {
    "audio": 2,
    "distribution": 1,
    "figure": 2,
    "image": 2,
    "metric": 1,
    "metrics": 3,
    "text": 1,
}


def sequence(
    kind: str, name: str, value: Any, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": kind,
        "name": name,
        "context": context or {},
        "steps": [0],
        "values": [value],
    }


def expected_sequences(seed: int) -> list[dict[str, Any]]:
    test = {"subset": "test"}
    sequences = [
        sequence(
            "image",
            "sample_image",
            {"width": 16, "height": 12, "format": "jpeg", "caption": "a tile"},
        ),
        sequence(
            "image",
            "mpl_image",
            {"width": 100, "height": 100, "format": "png", "caption": ""},
            {"source": "matplotlib"},
        ),
        sequence("figure", "confusion_matrix", {"traces": ["image"]}, test),
        sequence("figure", "plotly_figure", {"traces": ["bar"]}),
        sequence("text", "report", f"report for seed {seed}", test),
        sequence(
            "audio",
            "tone",
            {
                "format": "wav",
                "caption": "a tone",
                # Float samples: a 58-byte header (IEEE-float fmt and fact chunks).
                "bytes": 58 + 800 * 4,
                "rate": 8000,
                "frames": 800,
            },
        ),
        sequence(
            "audio",
            "clip",
            {
                "format": "wav",
                "caption": "",
                "bytes": 44 + 400 * 2,
                "rate": 8000,
                "frames": 400,
            },
            {"source": "bytes"},
        ),
        sequence("distribution", "samples", {"bin_count": 20, "total": 200.0}),
        sequence(
            "metric",
            "accuracy",
            0.125 * seed,
            {"subset": "test", "fold": 1, "final": True},
        ),
        sequence("metric", "test.accuracy", 0.5 + seed / 100, test),
        sequence("metric", "test.loss.train", 0.25, test),
        sequence("metric", "test.loss.test", 0.5, test),
    ]
    return sorted(
        sequences, key=lambda s: (s["type"], s["name"], sorted(s["context"].items()))
    )


@pytest.fixture
def project(make_project) -> KedroProject:
    project = make_project("full")
    project.write_catalog(CATALOG)
    project.write_pipeline(PIPELINE)
    return project


def check_files(project: KedroProject, seed: int) -> None:
    data = project.path / "data"
    reporting = data / "08_reporting"
    with PILImage.open(reporting / "sample_image.png") as image:
        assert image.size == (16, 12)
        assert image.getpixel((0, 0)) == (seed, seed, seed)
    for name in ("mpl_image.png", "mpl_figure.png"):
        with PILImage.open(reporting / name) as image:
            assert image.size == (100, 100)
    plotly_json = json.loads((reporting / "plotly_figure.json").read_text())
    assert plotly_json["data"][0]["y"] == [seed, seed + 1]
    assert (reporting / "report.txt").read_text() == f"report for seed {seed}"
    tone = pickle.loads((reporting / "tone.pkl").read_bytes())
    assert (tone.dtype, tone.shape) == (np.float32, (800,))
    samples = pickle.loads((data / "07_model_output" / "samples.pkl").read_bytes())
    assert samples.max() == seed
    assert json.loads((reporting / "accuracy.json").read_text()) == 0.125 * seed
    assert json.loads((reporting / "metrics.json").read_text()) == {
        "accuracy": 0.5 + seed / 100,
        "loss": {"train": 0.25, "test": 0.5},
    }


class TestEveryArtifactType:
    def test_cli_and_session_runs(self, project: KedroProject) -> None:
        result = project.kedro("run", "--params", "seed=5")
        check_files(project, 5)
        project.run()
        check_files(project, 3)

        runs = {run["params"]["seed"]: run for run in project.read_runs()}

        assert sorted(runs) == [3, 5]
        for seed, run in runs.items():
            assert run["sequences"] == expected_sequences(seed), seed
            assert run["params"] == {"seed": seed}
            assert run["experiment"] == project.package
            assert run["active"] is False
            kedro_info = run["kedro"]
            assert kedro_info["status"] == "finished"
            assert kedro_info["tracked"] == TRACKED
            assert kedro_info["not_tracked"] == []
            assert kedro_info["env"] == "local"
            assert kedro_info["runner"] == "SequentialRunner"
            assert kedro_info["kedro_version"] == kedro.__version__
        assert runs[5]["hash"] in result.stdout + result.stderr
        assert (project.path / ".aim").is_dir()
