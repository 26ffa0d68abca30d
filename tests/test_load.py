"""Many tracked saves at once: every value lands, at the right step."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kedro.runner import ParallelRunner, ThreadRunner

from conftest import KedroProject, sequences_by_name
from kedro_aim_cfg.run import _ensure_local_repository

LOAD_NODES = """

def burst(worker, count):
    return tuple(worker + index / 1000 for index in range(count))
"""

REGISTRY = """
from kedro.pipeline import Pipeline, node

from {package} import nodes


def register_pipelines():
    return {{
        "__default__": Pipeline(
            [
                node(
                    nodes.burst,
                    ["params:w" + str(worker), "params:count"],
                    ["w" + str(worker) + "_" + str(i) for i in range({count})],
                    name="burst_" + str(worker),
                )
                for worker in range({workers})
            ]
        )
    }}
"""

QUIET_LOGGING = """
version: 1
disable_existing_loggers: false
handlers:
  console: {class: logging.StreamHandler}
loggers:
  kedro: {level: WARNING}
  kedro_aim_cfg: {level: INFO}
root: {handlers: [console], level: INFO}
"""

CATALOG = {
    "w{worker}_{i}": {
        "type": "json.JSONDataset",
        "filepath": "data/w{worker}/{i}.json",
        # One sequence for every worker: its steps are contended by all threads.
        "aim": {"type": "metric", "name": "burst", "context": {"load": True}},
    }
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty Aim repository to copy: creating one takes seconds."""
    path = tmp_path_factory.mktemp("load-template")
    _ensure_local_repository(str(path))
    return path / ".aim"


def load_project(
    make_project, template: Path, name: str, workers: int, count: int
) -> KedroProject:
    parameters = {"count": count, **{f"w{w}": w for w in range(workers)}}
    project = make_project(name, parameters=parameters)
    nodes = project.src / "nodes.py"
    nodes.write_text(nodes.read_text() + LOAD_NODES)
    (project.src / "pipeline_registry.py").write_text(
        REGISTRY.format(package=project.package, count=count, workers=workers)
    )
    project.write_catalog(CATALOG)
    # Kedro logs every load and save; at this volume that is most of the time.
    (project.path / "conf" / "logging.yml").write_text(QUIET_LOGGING)
    shutil.copytree(template, project.path / ".aim")
    return project


def check_everything_landed(
    project: KedroProject, run: dict[str, Any], workers: int, count: int
) -> None:
    assert run["kedro"]["status"] == "finished"
    assert run["kedro"]["tracked"] == {"metric": workers * count}
    assert run["kedro"]["not_tracked"] == []
    assert run["active"] is False
    sequences = sequences_by_name(run)
    assert list(sequences) == [("metric", "burst")]
    (sequence,) = sequences[("metric", "burst")]
    assert sequence["context"] == {"load": True}
    assert sequence["steps"] == list(range(workers * count))
    values = sequence["values"]
    for worker in range(workers):
        # A node saves its outputs in order, so its values keep their order.
        own = [value for value in values if int(value) == worker]
        assert own == pytest.approx([worker + index / 1000 for index in range(count)])
        folder = project.path / "data" / f"w{worker}"
        assert len(list(folder.glob("*.json"))) == count


class TestLoad:
    def test_thread_runner_eight_workers_eight_hundred_saves(
        self, make_project, template: Path
    ) -> None:
        project = load_project(make_project, template, "threads", 8, 100)

        project.run(runner=ThreadRunner(max_workers=8))

        (run,) = project.read_runs()
        assert run["kedro"]["runner"] == "ThreadRunner"
        check_everything_landed(project, run, 8, 100)

    def test_parallel_runner_four_workers_fifty_saves_each(
        self, make_project, template: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KEDRO_MP_CONTEXT", "fork")
        project = load_project(make_project, template, "processes", 4, 50)

        project.run(runner=ParallelRunner(max_workers=4))

        (run,) = project.read_runs()
        assert run["kedro"]["runner"] == "ParallelRunner"
        check_everything_landed(project, run, 4, 50)

    def test_two_concurrent_runs_into_one_repository(
        self, make_project, template: Path
    ) -> None:
        project = load_project(make_project, template, "concurrent", 4, 100)
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "1000"}
        command = [sys.executable, "-m", "kedro", "run", "--runner", "ThreadRunner"]
        processes = [
            subprocess.Popen(
                command,
                cwd=project.path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                start_new_session=True,
            )
            for _ in range(2)
        ]
        try:
            outputs = [process.communicate(timeout=120)[0] for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)

        for process, output in zip(processes, outputs, strict=True):
            assert process.returncode == 0, output
        runs = project.read_runs()
        assert len(runs) == 2
        for run in runs:
            check_everything_landed(project, run, 4, 100)
            assert sum(run["hash"] in output for output in outputs) == 1
