"""One run per ``kedro run`` under every runner, and one run across invocations."""

from __future__ import annotations

import pickle
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from aim import Repo
from kedro.runner import ParallelRunner, SequentialRunner, ThreadRunner

from conftest import KedroProject, sequences_by_name
from kedro_aim_cfg import AimRunError, AimTrackingDataset, active_tracker, tracking_run
from kedro_aim_cfg.run import RUN_HASH_ENV, _ensure_local_repository

PARTS = 6

RUNNER_NODES = """

import json
import time
from pathlib import Path

from kedro.io import AbstractDataset


def score(index):
    time.sleep(0.2)
    return float(index), float(index) * 10


def curve(seed, aim_run):
    for epoch in range(5):
        aim_run.track(seed + epoch / 10, name="curve", context={"subset": "train"})
    return seed, f"seed {seed}"


class LambdaJSONDataset(AbstractDataset):
    def __init__(self, filepath):
        self._filepath = filepath
        self._encode = lambda value: json.dumps(value)

    def load(self):
        return json.loads(Path(self._filepath).read_text())

    def save(self, data):
        Path(self._filepath).write_text(self._encode(data))

    def _describe(self):
        return {"filepath": self._filepath}
"""

CATALOG = {
    "{part}_score": {
        "type": "json.JSONDataset",
        "filepath": "data/{part}_score.json",
        "aim": {"type": "metric", "name": "score"},
    },
    "{part}_own": {
        "type": "json.JSONDataset",
        "filepath": "data/{part}_own.json",
        "aim": {"type": "metric", "name": "own", "context": {"part": "{part}"}},
    },
    "curve_seed": {
        "type": "json.JSONDataset",
        "filepath": "data/curve_seed.json",
        "aim": {"type": "metric"},
    },
    "curve_note": {
        "type": "text.TextDataset",
        "filepath": "data/curve_note.txt",
        "aim": {"type": "text", "context": {"subset": "train"}},
    },
}
PIPELINE: list[tuple[str, Any, Any]] = [
    ("score", f"params:p{i}", [f"p{i}_score", f"p{i}_own"]) for i in range(PARTS)
] + [("curve", ["params:seed", "aim_run"], ["curve_seed", "curve_note"])]
PARAMETERS = {"seed": 3, **{f"p{i}": i for i in range(PARTS)}}
TRACKED = {"metric": 2 * PARTS + 5 + 1, "text": 1}
LOCK_ERRORS = ("RocksIOError", "RunLockingError", "Cannot acquire lock", "LockError")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty Aim repository to copy: creating one takes seconds."""
    path = tmp_path_factory.mktemp("runners-template")
    _ensure_local_repository(str(path))
    return path / ".aim"


@pytest.fixture
def project(make_project, template: Path) -> KedroProject:
    project = make_project("runners", parameters=PARAMETERS)
    nodes = project.src / "nodes.py"
    nodes.write_text(nodes.read_text() + RUNNER_NODES)
    project.write_catalog(CATALOG)
    project.write_pipeline(PIPELINE)
    shutil.copytree(template, project.path / ".aim")
    return project


def spool_folders(run_hash: str) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"kedro-aim-cfg-{run_hash}-*"))


def check_run(project: KedroProject, run: dict[str, Any], runner: str) -> None:
    """Every value of the pipeline landed in ``run``, at the right steps."""
    kedro_info = run["kedro"]
    assert kedro_info["status"] == "finished"
    assert kedro_info["runner"] == runner
    assert kedro_info["tracked"] == TRACKED
    assert kedro_info["not_tracked"] == []
    assert run["active"] is False
    sequences = sequences_by_name(run)
    assert sorted(sequences) == [
        ("metric", "curve"),
        ("metric", "curve_seed"),
        ("metric", "own"),
        ("metric", "score"),
        ("text", "curve_note"),
    ]
    (note,) = sequences[("text", "curve_note")]
    assert (note["steps"], note["values"]) == ([0], ["seed 3"])
    (score,) = sequences[("metric", "score")]
    assert score["context"] == {}
    assert score["steps"] == list(range(PARTS))
    assert sorted(score["values"]) == [float(i) for i in range(PARTS)]
    own = {
        s["context"]["part"]: (s["steps"], s["values"])
        for s in sequences[("metric", "own")]
    }
    assert own == {f"p{i}": ([0], [10.0 * i]) for i in range(PARTS)}
    (curve,) = sequences[("metric", "curve")]
    assert curve["context"] == {"subset": "train"}
    assert curve["steps"] == [0, 1, 2, 3, 4]
    assert curve["values"] == pytest.approx([3.0, 3.1, 3.2, 3.3, 3.4])
    for i in range(PARTS):
        assert (project.path / "data" / f"p{i}_own.json").read_text() == str(10.0 * i)
    assert spool_folders(run["hash"]) == []


def check_output(text: str) -> None:
    for error in LOCK_ERRORS:
        assert error not in text


def by_order(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs in the order they were started: Kedro's run ids are timestamps."""
    return sorted(runs, key=lambda run: run["kedro"]["run_id"])


class TestInProcessRunners:
    def test_threads_and_async(
        self, project: KedroProject, capfd: pytest.CaptureFixture[str]
    ) -> None:
        # Every node gets a thread of its own, so their saves overlap.
        project.run(runner=ThreadRunner(max_workers=PARTS + 1))
        with pytest.warns(UserWarning, match="'ThreadRunner' doesn't support"):
            threads_async = ThreadRunner(max_workers=PARTS + 1, is_async=True)
        project.run(runner=threads_async)
        project.run(runner=SequentialRunner(is_async=True))

        runs = by_order(project.read_runs())
        names = ["ThreadRunner", "ThreadRunner", "SequentialRunner"]
        assert [run["kedro"]["runner"] for run in runs] == names
        for run, name in zip(runs, names, strict=True):
            check_run(project, run, name)
        check_output("".join(capfd.readouterr()))

    def test_parallel_fork_and_spawn(
        self,
        project: KedroProject,
        monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        for context in ("fork", "spawn"):
            monkeypatch.setenv("KEDRO_MP_CONTEXT", context)
            project.run(runner=ParallelRunner(max_workers=2))

        runs = project.read_runs()
        assert len(runs) == 2
        for run in runs:
            check_run(project, run, "ParallelRunner")
        check_output("".join(capfd.readouterr()))
        assert active_tracker() is None

    def test_forkserver_workers_follow_each_new_run(
        self,
        project: KedroProject,
        monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        # The forkserver outlives the first run: its workers must still reach
        # the spool of the second, not the removed one of the first.
        monkeypatch.setenv("KEDRO_MP_CONTEXT", "forkserver")
        project.run(runner=ParallelRunner(max_workers=2))
        project.write_aim({"enabled": False})
        project.run(runner=ParallelRunner(max_workers=2))
        project.write_aim({})
        project.run(runner=ParallelRunner(max_workers=2))

        runs = project.read_runs()
        assert len(runs) == 2
        for run in runs:
            check_run(project, run, "ParallelRunner")
        output = "".join(capfd.readouterr())
        check_output(output)
        assert "not tracked" not in output
        assert active_tracker() is None


class TestCommandLineRunners:
    def test_async_and_parallel_fork_and_spawn(
        self, project: KedroProject, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COLUMNS", "1000")
        outputs = []
        result = project.kedro("run", "--async")
        outputs.append(result.stdout + result.stderr)
        for context in ("fork", "spawn"):
            monkeypatch.setenv("KEDRO_MP_CONTEXT", context)
            result = project.kedro("run", "--runner", "ParallelRunner")
            outputs.append(result.stdout + result.stderr)

        runs = by_order(project.read_runs())
        names = ["SequentialRunner", "ParallelRunner", "ParallelRunner"]
        assert [run["kedro"]["runner"] for run in runs] == names
        for run, name, output in zip(runs, names, outputs, strict=True):
            check_run(project, run, name)
            check_output(output)
            assert run["hash"] in output


class TestPickling:
    def test_catalog_datasets_survive_a_pickle_round_trip(
        self, project: KedroProject
    ) -> None:
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(project.path)
        with KedroSession.create(project_path=project.path) as session:
            catalog = session.load_context().catalog
            original = catalog.get("p2_own")
            restored = pickle.loads(pickle.dumps(original))
            run_input = pickle.loads(pickle.dumps(catalog.get("aim_run")))

        assert isinstance(restored, AimTrackingDataset)
        assert restored.tracked_name == "own"
        assert restored.dataset._filepath == original.dataset._filepath
        settings = {"repository": str(project.path), "experiment": "pickled"}
        with tracking_run(settings, project_path=project.path) as tracker:
            restored.save(7.5)
            assert run_input.load() is tracker

        (run,) = project.read_runs()
        (own,) = sequences_by_name(run)[("metric", "own")]
        assert (own["context"], own["steps"], own["values"]) == (
            {"part": "p2"},
            [0],
            [7.5],
        )
        assert (project.path / "data" / "p2_own.json").read_text() == "7.5"

    def test_unpicklable_wrapped_dataset_is_named_under_parallel_runner(
        self, project: KedroProject, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        project.write_catalog(
            {
                **CATALOG,
                "lambda_out": {
                    "type": f"{project.package}.nodes.LambdaJSONDataset",
                    "filepath": "data/lambda_out.json",
                    "aim": {"type": "metric"},
                },
            }
        )
        project.write_pipeline([("score", "params:p1", ["p1_score", "lambda_out"])])
        monkeypatch.setenv("KEDRO_MP_CONTEXT", "fork")

        with pytest.raises(
            AttributeError,
            match=r"cannot be used with multiprocessing: \['lambda_out'\]",
        ):
            project.run(runner=ParallelRunner(max_workers=2))

        assert active_tracker() is None
        assert not (project.path / "data").exists()
        (run,) = project.read_runs()
        assert run["kedro"]["status"] == "failed"
        assert run["active"] is False
        assert run["sequences"] == []
        assert spool_folders(run["hash"]) == []


RESUME_AIM_YML = """
run_hash: ${runtime_params:aim_run_hash,null}
"""
TRACKING_INTO = re.compile(r"Tracking into Aim run ([0-9a-f]{24}) in ")


class TestOneRunAcrossProcesses:
    def test_env_and_runtime_params_add_to_the_first_run(
        self, project: KedroProject, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COLUMNS", "1000")
        project.write_aim(RESUME_AIM_YML)
        first = project.kedro("run")
        (run_hash,) = TRACKING_INTO.findall(first.stdout)

        monkeypatch.setenv(RUN_HASH_ENV, run_hash)
        second = project.kedro("run", "--params", "seed=4")
        monkeypatch.delenv(RUN_HASH_ENV)
        third = project.kedro("run", "--params", f"seed=5,aim_run_hash={run_hash}")

        (run,) = project.read_runs()
        assert run["hash"] == run_hash
        for result in (first, second, third):
            assert TRACKING_INTO.findall(result.stdout) == [run_hash]
            check_output(result.stdout + result.stderr)
        assert run["kedro"]["status"] == "finished"
        assert run["active"] is False
        assert run["params"]["seed"] == 5
        sequences = sequences_by_name(run)
        (seed,) = sequences[("metric", "curve_seed")]
        assert (seed["steps"], seed["values"]) == ([0, 1, 2], [3, 4, 5])
        (curve,) = sequences[("metric", "curve")]
        assert curve["steps"] == list(range(15))
        assert curve["values"] == pytest.approx(
            [seed + epoch / 10 for seed in (3, 4, 5) for epoch in range(5)]
        )
        (note,) = sequences[("text", "curve_note")]
        assert note["context"] == {"subset": "train"}
        assert (note["steps"], note["values"]) == (
            [0, 1, 2],
            ["seed 3", "seed 4", "seed 5"],
        )
        (score,) = sequences[("metric", "score")]
        assert score["steps"] == list(range(3 * PARTS))
        assert sorted(score["values"]) == sorted(3 * [float(i) for i in range(PARTS)])
        own = {s["context"]["part"]: s["steps"] for s in sequences[("metric", "own")]}
        assert own == {f"p{i}": [0, 1, 2] for i in range(PARTS)}
        # The run's totals count what all three invocations tracked.
        tracked = sum(run["kedro"]["tracked"].values())
        assert tracked == sum(len(s["values"]) for s in run["sequences"])

    def test_unknown_hash_fails_before_any_node(
        self, project: KedroProject, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        unknown = "0123456789abcdef01234567"
        monkeypatch.setenv(RUN_HASH_ENV, unknown)

        with pytest.raises(
            AimRunError,
            match=f"Could not open run {unknown} in repository "
            f"'{re.escape(str(project.path.resolve()))}': MissingRunError",
        ):
            project.run()

        assert not (project.path / "data").exists()
        assert active_tracker() is None
        assert Repo.from_path(str(project.path)).list_all_runs() == []
