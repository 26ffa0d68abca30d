"""The digits example, run as ``make demo`` runs it, read back from its repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import read_runs, sequences_by_name

EXAMPLE = Path(__file__).resolve().parents[1] / "conf_examples" / "digits"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run a copy of the example, so that the checkout stays as it is."""
    pytest.importorskip("sklearn", reason="the example's requirements.txt")
    project = tmp_path_factory.mktemp("example") / "digits"
    shutil.copytree(
        EXAMPLE,
        project,
        ignore=shutil.ignore_patterns(".aim", ".viz", "logs", "__pycache__"),
    )
    for produced in project.glob("data/0[2-8]_*"):
        shutil.rmtree(produced)
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "1000"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (run,) = read_runs(project / ".aim")
    return {"project": project, "output": result.stdout + result.stderr, "run": run}


class TestDigitsExample:
    def test_every_artifact_type_lands(self, example: dict[str, Any]) -> None:
        run = example["run"]
        sequences = sequences_by_name(run)

        assert run["experiment"] == "digits"
        assert run["kedro"]["status"] == "finished"
        assert run["kedro"]["not_tracked"] == []
        assert {kind for kind, _ in sequences} == {
            "metric",
            "image",
            "figure",
            "text",
            "audio",
            "distribution",
        }
        (accuracy,) = sequences[("metric", "test_accuracy")]
        assert accuracy["context"] == {"subset": "test"}
        assert 0.8 < accuracy["values"][0] <= 1.0
        f1 = [name for kind, name in sequences if name.startswith("metrics.")]
        assert "metrics.per_class_f1.digit_0" in f1
        (digits,) = sequences[("image", "sample_digits")]
        assert digits["values"][0]["format"] == "png"
        assert {s["context"]["subset"] for s in sequences[("figure", "class_scores")]}
        (sound,) = sequences[("audio", "digit_sound")]
        assert sound["values"][0]["rate"] == 8000
        (report,) = sequences[("text", "classification_report")]
        assert "precision" in report["values"][0]
        (probabilities,) = sequences[("distribution", "predicted_probabilities")]
        assert probabilities["values"][0]["bin_count"] == 20
        for sequence in run["sequences"]:
            assert sequence["steps"] == [0], sequence["name"]

    def test_files_are_where_the_catalog_says(self, example: dict[str, Any]) -> None:
        reporting = example["project"] / "data" / "08_reporting"
        assert sorted(p.name for p in reporting.iterdir()) == [
            "class_scores.json",
            "classification_report.txt",
            "confusion_matrix.png",
            "digit_sound.pkl",
            "metrics.json",
            "predicted_probabilities.pkl",
            "sample_digits.png",
        ]

    def test_the_log_names_the_run_and_what_it_tracked(
        self, example: dict[str, Any]
    ) -> None:
        run = example["run"]
        summary = re.search(
            rf"Aim run {run['hash']} \(experiment 'digits', finished\) in .*: "
            r"tracked (?P<tracked>[^.]+)\.",
            example["output"],
        )
        assert summary is not None, example["output"][-3000:]
        tracked = dict(
            (kind, int(count))
            for count, kind in (
                item.split(" ") for item in summary["tracked"].split(", ")
            )
        )
        assert tracked == run["kedro"]["tracked"]
        assert "View it with: kedro aim ui" in example["output"]
