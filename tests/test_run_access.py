"""The active run where code needs it: as a node input and in notebooks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from kedro.io import DatasetError

from conftest import sequences_by_name
from kedro_aim_cfg import (
    AimConfigError,
    AimRunDataset,
    AimRunError,
    UntrackedRun,
    tracking_run,
)
from kedro_aim_cfg.run import active_tracker

NOTEBOOK_SCRIPT = """
import json
import sys

from IPython.testing.globalipapp import start_ipython

shell = start_ipython()
shell.run_line_magic("load_ext", "kedro.ipython")
shell.run_line_magic("reload_kedro", sys.argv[1])
cells = [
    "from kedro_aim_cfg import tracking_run",
    "with tracking_run() as run:\\n    catalog.save('report', 'from a cell')",
]
successes = [shell.run_cell(cell).success for cell in cells]
print("RESULT " + json.dumps({
    "successes": successes,
    "hash": shell.user_ns["run"].hash,
}))
"""

CURVE_NODE = """

def train_with_curve(seed, aim_run):
    for epoch in range(5):
        aim_run.track(1.0 / (epoch + 1), name="loss", context={"subset": "train"})
    aim_run.track(0.5, name="lr", step=10, epoch=2)
    return seed * 2
"""


def _curve_project(make_project, run_input_name: str = "aim_run"):
    project = make_project()
    nodes = project.src / "nodes.py"
    nodes.write_text(nodes.read_text() + CURVE_NODE)
    project.write_catalog(
        """
        doubled:
          type: json.JSONDataset
          filepath: data/doubled.json
          aim: {type: metric}
        """
    )
    project.write_pipeline(
        [("train_with_curve", ["params:seed", run_input_name], "doubled")]
    )
    return project


class TestRunInput:
    def test_node_tracks_a_curve_through_its_run_input(self, make_project):
        project = _curve_project(make_project)
        project.run()

        (run,) = project.read_runs()
        sequences = sequences_by_name(run)
        (loss,) = sequences[("metric", "loss")]
        assert loss["context"] == {"subset": "train"}
        assert loss["steps"] == [0, 1, 2, 3, 4]
        assert loss["values"] == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])
        (lr,) = sequences[("metric", "lr")]
        assert lr["steps"] == [10]
        assert sequences[("metric", "doubled")][0]["values"] == [6]
        assert run["kedro"]["tracked"] == {"metric": 7}

    def test_run_input_can_be_renamed(self, make_project):
        project = _curve_project(make_project, run_input_name="tracker")
        project.write_aim({"run_input": "tracker"})
        project.run()
        (run,) = project.read_runs()
        assert ("metric", "loss") in sequences_by_name(run)

    def test_a_user_entry_of_that_name_is_an_error(self, make_project):
        project = _curve_project(make_project)
        project.write_catalog(
            """
            aim_run:
              type: json.JSONDataset
              filepath: data/mine.json
            """,
            env="local",
        )
        with pytest.raises(AimConfigError, match=r"aim_run.*run_input in aim\.yml"):
            project.run()
        assert not (project.path / ".aim").exists()

    def test_null_run_input_adds_no_entry(self, make_project):
        project = make_project()
        project.write_aim({"run_input": None})
        project.write_catalog({"out": {"type": "MemoryDataset"}})
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(project.path)
        with KedroSession.create(project_path=project.path) as session:
            catalog = session.load_context().catalog
            assert "aim_run" not in catalog
            assert "out" in catalog

    @pytest.mark.parametrize(
        "settings",
        [
            {"enabled": False},
            {"disabled_pipelines": ["__default__"]},
            {
                "repository": "aim://127.0.0.1:9",
                "when_unavailable": "continue",
                "connect_timeout": 0.5,
            },
        ],
        ids=["tracking-off", "pipeline-off", "server-unreachable"],
    )
    def test_node_runs_without_a_run(self, make_project, settings):
        project = _curve_project(make_project)
        project.write_aim(settings)
        project.run()

        assert (project.path / "data" / "doubled.json").read_text() == "6"
        assert not (project.path / ".aim").exists()

    def test_loading_outside_a_run_is_a_clear_error(self):
        dataset = AimRunDataset()
        assert not dataset.exists()
        with pytest.raises(DatasetError, match="No Aim run is active"):
            dataset.load()
        with pytest.raises(DatasetError, match="read-only"):
            dataset.save(1)


class TestNotebook:
    def test_saves_outside_a_run_are_saved_and_warn_once(self, make_project, aim_logs):
        project = make_project()
        project.write_catalog(
            """
            report:
              type: text.TextDataset
              filepath: data/report.txt
              aim: {type: text}
            """
        )
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(project.path)
        with KedroSession.create(project_path=project.path) as session:
            catalog = session.load_context().catalog
            catalog.save("report", "first")
            catalog.save("report", "second")

        assert (project.path / "data" / "report.txt").read_text() == "second"
        warnings = [
            r for r in aim_logs.records if "no Aim run is active" in r.getMessage()
        ]
        assert len(warnings) == 1
        assert warnings[0].levelno == logging.WARNING
        assert "'report'" in warnings[0].getMessage()
        assert not (project.path / ".aim").exists()

    def test_tracking_run_collects_catalog_saves(self, make_project):
        project = make_project()
        project.write_catalog(
            """
            report:
              type: text.TextDataset
              filepath: data/report.txt
              aim: {type: text, context: {where: notebook}}
            """
        )
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(project.path)
        with KedroSession.create(project_path=project.path) as session:
            context = session.load_context()
            catalog = context.catalog
            with tracking_run(
                {"experiment": "notebook"}, project_path=context.project_path
            ) as run:
                assert active_tracker() is run
                catalog.save("report", "one")
                catalog.save("report", "two")
                assert catalog.load("aim_run") is run
            assert active_tracker() is None

        (read,) = project.read_runs()
        assert read["hash"] == run.hash
        assert read["experiment"] == "notebook"
        assert read["kedro"]["status"] == "finished"
        (report,) = sequences_by_name(read)[("text", "report")]
        assert report["context"] == {"where": "notebook"}
        assert report["steps"] == [0, 1]
        assert report["values"] == ["one", "two"]

    def test_tracking_run_in_ipython_follows_the_projects_aim_yml(
        self, make_project, tmp_path
    ):
        project = make_project()
        project.write_catalog(
            """
            report:
              type: text.TextDataset
              filepath: data/report.txt
              aim: {type: text}
            """
        )
        project.write_aim({"experiment": "from-aim-yml", "repository": "runs_here"})
        script = tmp_path / "notebook.py"
        script.write_text(NOTEBOOK_SCRIPT)
        result = subprocess.run(
            [sys.executable, str(script), str(project.path)],
            cwd=project.path / "src",
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        lines = [
            line for line in result.stdout.splitlines() if line.startswith("RESULT ")
        ]
        assert len(lines) == 1, result.stdout + result.stderr
        outcome = json.loads(lines[0].removeprefix("RESULT "))

        assert outcome["successes"] == [True, True]
        assert not (project.path / ".aim").exists()
        (read,) = project.read_runs(project.path / "runs_here")
        assert read["hash"] == outcome["hash"]
        assert read["experiment"] == "from-aim-yml"
        assert read["kedro"]["status"] == "finished"
        (report,) = sequences_by_name(read)[("text", "report")]
        assert report["values"] == ["from a cell"]

    @pytest.mark.parametrize(
        ("settings", "warned"),
        [
            ({"enabled": False}, False),
            (
                {
                    "repository": "aim://127.0.0.1:9",
                    "when_unavailable": "continue",
                    "connect_timeout": 0.5,
                },
                True,
            ),
        ],
        ids=["tracking-off", "server-unreachable"],
    )
    def test_tracking_run_without_a_run_runs_the_block_untracked(
        self, make_project, aim_logs, settings, warned
    ):
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        project = make_project()
        project.write_catalog(
            """
            report:
              type: text.TextDataset
              filepath: data/report.txt
              aim: {type: text}
            """
        )
        project.write_aim(settings)
        bootstrap_project(project.path)
        with KedroSession.create(project_path=project.path) as session:
            catalog = session.load_context().catalog
            with tracking_run(project_path=project.path) as run:
                assert isinstance(run, UntrackedRun)
                run.track(1.0, name="dropped")
                catalog.save("report", "kept")
                assert catalog.load("aim_run") is not None

        assert (project.path / "data" / "report.txt").read_text() == "kept"
        assert not (project.path / ".aim").exists()
        warnings = [
            r.getMessage() for r in aim_logs.records if r.levelno >= logging.WARNING
        ]
        assert len(warnings) == (1 if warned else 0), warnings

    def test_tracking_run_reads_the_environment_of_kedro_env(
        self, make_project, monkeypatch
    ):
        from kedro.framework.startup import bootstrap_project

        project = make_project()
        project.write_aim({"experiment": "from-base"})
        project.write_aim({"experiment": "from-prod"}, env="prod")
        bootstrap_project(project.path)
        monkeypatch.setenv("KEDRO_ENV", "prod")

        with tracking_run(project_path=project.path) as run:
            run.track(1.0, name="x")

        (read,) = project.read_runs()
        assert read["hash"] == run.hash
        assert read["experiment"] == "from-prod"

    def test_tracking_run_marks_an_error_as_failed(self, tmp_path):
        with pytest.raises(ValueError, match="boom"):
            with tracking_run(project_path=tmp_path) as run:
                run.track(1.0, name="x")
                raise ValueError("boom")
        from conftest import read_runs

        (read,) = read_runs(tmp_path)
        assert read["kedro"]["status"] == "failed"
        assert sequences_by_name(read)[("metric", "x")][0]["values"] == [1.0]

    def test_tracking_run_rejects_bad_settings(self, tmp_path):
        with pytest.raises(AimConfigError, match="colour: unknown key"):
            with tracking_run({"colour": "red"}, project_path=tmp_path):
                pass
        assert not (tmp_path / ".aim").exists()


class TestProgress:
    def test_long_tracking_reports_progress_through_logging(self, tmp_path, aim_logs):
        with tracking_run(project_path=tmp_path) as run:
            for step in range(1200):
                run.track(float(step), name="curve")

        progress = [
            r.getMessage()
            for r in aim_logs.records
            if r.levelno == logging.INFO and "so far" in r.getMessage()
        ]
        assert progress == [
            f"500 objects tracked into Aim run {run.hash} so far",
            f"1000 objects tracked into Aim run {run.hash} so far",
        ]
        assert run.counts == {"metric": 1200}


def test_a_malformed_run_hash_in_the_environment_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KEDRO_AIM_RUN_HASH", "not-a-hash")
    with pytest.raises(AimRunError, match="'not-a-hash' is not an Aim run hash"):
        with tracking_run(project_path=tmp_path):
            pass
    assert not (tmp_path / ".aim").exists()
