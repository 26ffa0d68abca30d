"""The run lifecycle: one Aim run per ``kedro run``, what it records, when not."""

from __future__ import annotations

import datetime
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import kedro
import numpy as np
import pytest

from conftest import KedroProject, sequences_by_name
from kedro_aim_cfg import AimRunError, AimTrackingDataset, active_tracker, tracking_run
from kedro_aim_cfg.hooks import runner_name, to_plain
from kedro_aim_cfg.run import _ensure_local_repository

SECRET = "s3cr3t-7f9d2c"
ENV_SECRET = "env-s3cr3t-41aa"

TRACKED_METRIC = {
    "type": "json.JSONDataset",
    "filepath": "data/accuracy.json",
    "aim": {"type": "metric", "context": {"subset": "test"}},
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty Aim repository to copy into projects: creating one takes seconds."""
    path = tmp_path_factory.mktemp("template")
    _ensure_local_repository(str(path))
    return path / ".aim"


def with_repository(project: KedroProject, template: Path) -> KedroProject:
    shutil.copytree(template, project.path / ".aim")
    return project


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


class TestRunRecord:
    @pytest.fixture
    def project(
        self, make_project, template: Path, monkeypatch: pytest.MonkeyPatch
    ) -> KedroProject:
        project = with_repository(
            make_project(
                parameters={
                    "seed": 3,
                    "other_seed": 5,
                    "model": {"depth": 4, "layers": [8, 4], "rate": 0.5},
                    "when": datetime.date(2024, 1, 2),
                    "nothing": None,
                    "huge": 10**30,
                }
            ),
            template,
        )
        project.write_catalog(
            {
                "accuracy": TRACKED_METRIC,
                "{fold}.cv": {
                    "type": "json.JSONDataset",
                    "filepath": "data/{fold}_cv.json",
                    "aim": {"type": "metric", "name": "cv_accuracy"},
                },
                "shuttles": {
                    "type": "json.JSONDataset",
                    "filepath": "data/shuttles.json",
                    "credentials": "store",
                    "aim": {"type": "metrics"},
                },
            }
        )
        project.write_conf(
            "credentials.yml", {"store": {"secret_token": SECRET}}, env="local"
        )
        project.write_pipeline(
            [
                ("make_metric", "params:seed", "accuracy"),
                ("make_metric", "params:seed", "f1.cv"),
                ("make_metric", "params:other_seed", "f2.cv"),
                ("make_metrics", "params:seed", "shuttles"),
            ]
        )
        monkeypatch.setenv("KEDRO_AIM_CFG_TEST_SECRET", ENV_SECRET)
        return project

    @pytest.fixture
    def record(
        self,
        project: KedroProject,
        aim_logs: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> dict[str, Any]:
        project.run(pipeline_names=["__default__"])
        (run,) = project.read_runs()
        output = capsys.readouterr()
        return {
            "run": run,
            "info": messages(aim_logs, logging.INFO),
            "log_text": aim_logs.text,
            "output": output.out + output.err,
        }

    def test_params_context_steps_status_and_summary(
        self, project: KedroProject, record: dict[str, Any]
    ) -> None:
        run = record["run"]
        sequences = sequences_by_name(run)
        info = record["info"]

        assert run["params"] == {
            "seed": 3,
            "other_seed": 5,
            "model": {"depth": 4, "layers": [8, 4], "rate": 0.5},
            "when": "2024-01-02",
            "nothing": None,
            "huge": str(10**30),
        }
        kedro_info = run["kedro"]
        assert kedro_info["env"] == "local"
        assert kedro_info["pipeline_names"] == ["__default__"]
        assert kedro_info["tags"] is None
        assert kedro_info["kedro_version"] == kedro.__version__
        assert kedro_info["runner"] == "SequentialRunner"
        assert kedro_info["status"] == "finished"
        assert kedro_info["tracked"] == {"metric": 3, "metrics": 3}
        assert kedro_info["not_tracked"] == []
        assert kedro_info["run_id"]
        assert run["active"] is False
        assert run["experiment"] == project.package
        assert active_tracker() is None

        (cv,) = sequences[("metric", "cv_accuracy")]
        assert (cv["context"], cv["steps"]) == ({}, [0, 1])
        assert sorted(cv["values"]) == [0.375, 0.625]
        (accuracy,) = sequences[("metric", "accuracy")]
        assert (accuracy["context"], accuracy["values"]) == (
            {"subset": "test"},
            [0.375],
        )
        assert sorted(
            (s["name"], s["values"][0])
            for s in run["sequences"]
            if "shuttles" in s["name"]
        ) == [
            ("shuttles.accuracy", 0.53),
            ("shuttles.loss.test", 0.5),
            ("shuttles.loss.train", 0.25),
        ]

        repository = str(project.path.resolve())
        assert f"Tracking into Aim run {run['hash']} in {repository}" in info
        (summary,) = [m for m in info if m.startswith(f"Aim run {run['hash']}")]
        assert summary.splitlines() == [
            f"Aim run {run['hash']} (experiment '{project.package}', finished) in "
            f"{repository}: tracked 3 metric, 3 metrics.",
            f"View it with: kedro aim ui (or: aim up --repo {repository})",
        ]

    def test_no_credentials_or_environment(
        self, project: KedroProject, record: dict[str, Any]
    ) -> None:
        stored = json.dumps(record["run"])
        repository_bytes = b"".join(
            path.read_bytes()
            for path in (project.path / ".aim").rglob("*")
            if path.is_file()
        )

        assert json.loads((project.path / "data" / "shuttles.json").read_text())
        assert record["run"]["hash"] in record["log_text"]
        assert "shuttles" in record["output"]
        for secret in (SECRET, ENV_SECRET):
            assert secret not in stored
            assert secret not in record["log_text"]
            assert secret not in record["output"]
            assert secret.encode() not in repository_bytes
        assert "KEDRO_AIM_CFG_TEST_SECRET" not in stored


class TestFailure:
    def test_failed_run_then_next_run(
        self, make_project, template: Path, aim_logs: pytest.LogCaptureFixture
    ) -> None:
        project = with_repository(make_project(), template)
        project.write_catalog({"accuracy": TRACKED_METRIC})
        project.write_pipeline(
            [("make_metric", "params:seed", "accuracy"), ("fail", "accuracy", "lost")]
        )

        with pytest.raises(RuntimeError, match="node failed on purpose"):
            project.run()
        assert active_tracker() is None
        project.run(node_names=["n0_make_metric"])

        runs = sorted(project.read_runs(), key=lambda r: r["kedro"]["status"])
        assert [r["kedro"]["status"] for r in runs] == ["failed", "finished"]
        for run in runs:
            assert run["active"] is False
            (accuracy,) = sequences_by_name(run)[("metric", "accuracy")]
            assert (accuracy["steps"], accuracy["values"]) == ([0], [0.375])
        assert runs[0]["kedro"]["node_names"] is None
        assert runs[1]["kedro"]["node_names"] == ["n0_make_metric"]
        info = messages(aim_logs, logging.INFO)
        for run in runs:
            (summary,) = [m for m in info if m.startswith(f"Aim run {run['hash']} ")]
            assert ": tracked 1 metric." in summary


INTERRUPT_NODE = """

def interrupt(value):
    raise KeyboardInterrupt
"""


class TestInterrupted:
    @pytest.fixture
    def project(self, make_project, template: Path) -> KedroProject:
        project = with_repository(make_project(), template)
        nodes = project.src / "nodes.py"
        nodes.write_text(nodes.read_text() + INTERRUPT_NODE)
        project.write_catalog({"accuracy": TRACKED_METRIC})
        project.write_pipeline(
            [
                ("make_metric", "params:seed", "accuracy"),
                ("interrupt", "accuracy", "lost"),
            ]
        )
        return project

    def test_next_run_closes_the_interrupted_one(self, project: KedroProject) -> None:
        with pytest.raises(KeyboardInterrupt):
            project.run()
        # Kedro calls no hook on a KeyboardInterrupt: the run is still open.
        interrupted = active_tracker()
        assert interrupted is not None

        project.run(node_names=["n0_make_metric"])

        assert active_tracker() is None
        runs = {run["hash"]: run for run in project.read_runs()}
        assert runs.pop(interrupted.hash)["kedro"]["status"] == "interrupted"
        ((_, finished),) = runs.items()
        assert finished["kedro"]["status"] == "finished"
        assert finished["active"] is False

    def test_run_inside_another_run_fails_and_closes(
        self, project: KedroProject
    ) -> None:
        settings = {"repository": str(project.path), "experiment": "notebook"}

        with tracking_run(settings, project_path=project.path) as outer:
            with pytest.raises(AimRunError, match="is already active in this process"):
                project.run(node_names=["n0_make_metric"])
            assert active_tracker() is outer

        runs = {run["kedro"]["status"]: run for run in project.read_runs()}
        assert sorted(runs) == ["failed", "finished"]
        assert runs["finished"]["hash"] == outer.hash
        assert runs["failed"]["active"] is False
        assert runs["failed"]["experiment"] == project.package


class TestSettings:
    def test_run_settings_are_honoured(self, make_project, tmp_path: Path) -> None:
        project = make_project()
        project.write_catalog({"accuracy": TRACKED_METRIC})
        project.write_pipeline([("make_metric", "params:seed", "accuracy")])
        project.write_aim(
            {
                "experiment": "nightly-exp",
                "run_name": "nightly",
                "description": "the nightly run",
                "tags": ["nightly", "cpu"],
                "repository": "../elsewhere/.aim",
            }
        )

        project.run()

        assert not (project.path / ".aim").exists()
        (run,) = project.read_runs(tmp_path / "elsewhere")
        assert run["experiment"] == "nightly-exp"
        assert run["name"] == "nightly"
        assert run["description"] == "the nightly run"
        assert sorted(run["tags"]) == ["cpu", "nightly"]
        assert run["kedro"]["status"] == "finished"
        assert sequences_by_name(run)[("metric", "accuracy")][0]["values"] == [0.375]

    @pytest.mark.parametrize(
        ("settings", "log"),
        [
            ({"enabled": False}, None),
            (
                {"disabled_pipelines": ["__default__"]},
                "Aim tracking is disabled for pipeline(s) ['__default__']",
            ),
        ],
        ids=["enabled false", "disabled pipeline"],
    )
    def test_no_run(
        self,
        make_project,
        aim_logs: pytest.LogCaptureFixture,
        settings: dict[str, Any],
        log: str | None,
    ) -> None:
        project = make_project()
        project.write_catalog({"accuracy": TRACKED_METRIC})
        project.write_pipeline([("make_metric", "params:seed", "accuracy")])
        project.write_aim(settings)

        project.run()

        assert not (project.path / ".aim").exists()
        assert json.loads((project.path / "data" / "accuracy.json").read_text())
        assert [m for m in messages(aim_logs, logging.INFO) if "Aim run" in m] == []
        assert (log in messages(aim_logs, logging.INFO)) is (log is not None)
        # Tracking is off on purpose: the saves stay quiet.
        assert messages(aim_logs, logging.WARNING) == []

    def test_other_pipeline_still_tracks(self, make_project, template: Path) -> None:
        project = with_repository(make_project(), template)
        project.write_catalog({"accuracy": TRACKED_METRIC})
        project.write_pipeline([("make_metric", "params:seed", "accuracy")])
        project.write_aim({"disabled_pipelines": ["training"]})

        project.run()

        (run,) = project.read_runs()
        assert run["kedro"]["status"] == "finished"


class TestNoRunOutsideKedroRun:
    def test_loading_the_context(self, make_project) -> None:
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        project = make_project()
        project.write_catalog({"accuracy": TRACKED_METRIC})
        project.write_pipeline([("make_metric", "params:seed", "accuracy")])
        bootstrap_project(project.path)

        with KedroSession.create(project_path=project.path) as session:
            context = session.load_context()
            dataset = context.catalog.get("accuracy")

        assert isinstance(dataset, AimTrackingDataset)
        assert context.params == {"seed": 3}
        assert active_tracker() is None
        assert not (project.path / ".aim").exists()

    def test_catalog_commands(self, make_project) -> None:
        project = make_project()
        project.write_catalog(
            {
                "accuracy": TRACKED_METRIC,
                "{split}.roc": {
                    "type": "json.JSONDataset",
                    "filepath": "data/{split}.json",
                    "aim": {"type": "metrics", "context": {"split": "{split}"}},
                },
            }
        )
        project.write_pipeline(
            [
                ("make_metric", "params:seed", "accuracy"),
                ("make_metrics", "params:seed", "test.roc"),
            ]
        )

        described = project.kedro("catalog", "describe-datasets").stdout
        patterns = project.kedro("catalog", "list-patterns").stdout

        assert "kedro_aim_cfg.dataset.AimTrackingDataset" in described
        assert "accuracy" in described
        assert "test.roc" in described
        assert "{split}.roc" in patterns
        assert not (project.path / ".aim").exists()

    def test_plain_loader_with_the_plugin_installed(
        self, make_project, aim_logs: pytest.LogCaptureFixture
    ) -> None:
        project = make_project(loader="kedro.config.OmegaConfigLoader")
        project.write_catalog(
            {"accuracy": {"type": "json.JSONDataset", "filepath": "data/a.json"}}
        )
        project.write_pipeline([("make_metric", "params:seed", "accuracy")])

        project.run()

        assert json.loads((project.path / "data" / "a.json").read_text()) == 0.375
        assert not (project.path / ".aim").exists()
        assert [r for r in aim_logs.records if r.levelno >= logging.INFO] == []
        assert "does not use AimConfigLoader" in aim_logs.text


class TestToPlain:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (np.float32(0.5), 0.5),
            (np.int64(3), 3),
            (np.bool_(True), True),
            (np.array(2.5), 2.5),
            (float("nan"), "nan"),
            (float("inf"), "inf"),
            (np.float64("-inf"), "-inf"),
            ((1, 2), [1, 2]),
            ({"x"}, ["x"]),
            ({1: {"a": (np.int8(1),)}}, {"1": {"a": [1]}}),
            (datetime.date(2024, 1, 2), "2024-01-02"),
            (Path("data/x"), "data/x"),
            (None, None),
            ("text", "text"),
            (np.array([1, 2]), "[1 2]"),
            (2**63 - 1, 2**63 - 1),
            (2**63, str(2**63)),
            (-(2**64), str(-(2**64))),
            (True, True),
        ],
        ids=[
            "float32",
            "int64",
            "numpy bool",
            "0-d array",
            "nan",
            "inf",
            "-inf",
            "tuple",
            "set",
            "nested",
            "date",
            "path",
            "None",
            "str",
            "array",
            "largest int",
            "int beyond 64 bits",
            "negative int beyond 64 bits",
            "bool",
        ],
    )
    def test_converted(self, value: Any, expected: Any) -> None:
        converted = to_plain(value)

        assert converted == expected
        assert type(converted) is type(expected)


class TestRunnerName:
    @pytest.mark.parametrize(
        ("recorded", "expected"),
        [
            (None, "SequentialRunner"),
            ("None", "SequentialRunner"),
            (
                "<kedro.runner.thread_runner.ThreadRunner object at 0x7f3a2c1d0>",
                "ThreadRunner",
            ),
            ("<my_runner.FastRunner object at 0xABC>", "FastRunner"),
            ("ParallelRunner", "ParallelRunner"),
        ],
    )
    def test_named(self, recorded: Any, expected: str) -> None:
        assert runner_name(recorded) == expected

    @pytest.mark.parametrize("runner", ["SequentialRunner", "ThreadRunner"])
    def test_real_runner_objects(self, runner: str) -> None:
        from kedro import runner as runners

        assert runner_name(str(getattr(runners, runner)())) == runner
