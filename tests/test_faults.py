"""Faults: failing nodes, signals, killed processes, bad and busy repositories."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aim import Repo

from conftest import KedroProject, read_many, sequences_by_name
from kedro_aim_cfg import AimRunError, active_tracker
from kedro_aim_cfg.run import RUN_HASH_ENV, _ensure_local_repository

PROCESS_TIMEOUT = 120

FAULT_NODES = """

import os
import signal
import time
from pathlib import Path


def signal_self(value, signal_name):
    os.kill(os.getpid(), getattr(signal, signal_name))
    time.sleep(30)
    return value


def wait_forever(value, marker):
    Path(marker).write_text(str(os.getpid()))
    time.sleep(60)
    return value


def nap(accuracy, report, marker):
    Path(marker).write_text(str(os.getpid()))
    time.sleep(3)
    return 0.5
"""

CATALOG = {
    "accuracy": {
        "type": "json.JSONDataset",
        "filepath": "data/accuracy.json",
        "aim": {"type": "metric", "context": {"subset": "test"}},
    },
    "report": {
        "type": "text.TextDataset",
        "filepath": "data/report.txt",
        "aim": {"type": "text"},
    },
    "late": {
        "type": "json.JSONDataset",
        "filepath": "data/late.json",
        "aim": {"type": "metric"},
    },
    "never": {
        "type": "json.JSONDataset",
        "filepath": "data/never.json",
        "aim": {"type": "metric"},
    },
}
FIRST_NODES: list[tuple[str, Any, Any]] = [
    ("make_metric", "params:seed", "accuracy"),
    ("make_text", "params:seed", "report"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty Aim repository to copy: creating one takes seconds."""
    path = tmp_path_factory.mktemp("faults-template")
    _ensure_local_repository(str(path))
    return path / ".aim"


def fault_project(
    make_project, template: Path | None, name: str, last: tuple[str, Any, Any]
) -> KedroProject:
    project = make_project(name)
    nodes = project.src / "nodes.py"
    nodes.write_text(nodes.read_text() + FAULT_NODES)
    project.write_catalog(CATALOG)
    project.write_pipeline([*FIRST_NODES, last])
    if template is not None:
        shutil.copytree(template, project.path / ".aim")
    return project


def kedro_process(
    project: KedroProject, *args: str, **env: str
) -> subprocess.Popen[str]:
    """Start ``kedro`` in a fresh process of its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", *args],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "KEDRO_DISABLE_TELEMETRY": "true",
            "COLUMNS": "1000",
            **env,
        },
        start_new_session=True,
    )


def stop_group(process: subprocess.Popen[Any]) -> None:
    """Kill what is left of a process group started by a test."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=30)
    finally:
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[Any]]]:
    """Processes a test starts; whatever still runs at the end is killed."""
    started: list[subprocess.Popen[Any]] = []
    try:
        yield started
    finally:
        for process in started:
            stop_group(process)


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    return process.returncode, output


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the process ended early:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.1)


def check_first_nodes(project: KedroProject, run: dict[str, Any]) -> None:
    """What the first two nodes saved is on disk and in the run."""
    data = project.path / "data"
    assert json.loads((data / "accuracy.json").read_text()) == 0.375
    assert (data / "report.txt").read_text() == "report for seed 3"
    assert not (data / "never.json").exists()
    sequences = sequences_by_name(run)
    (accuracy,) = sequences[("metric", "accuracy")]
    assert (accuracy["context"], accuracy["steps"], accuracy["values"]) == (
        {"subset": "test"},
        [0],
        [0.375],
    )
    (report,) = sequences[("text", "report")]
    assert (report["steps"], report["values"]) == ([0], ["report for seed 3"])


def spool_folders(run_hash: str) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"kedro-aim-cfg-{run_hash}-*"))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


class TestFailingNode:
    def test_failed_then_finished_in_one_process(
        self, make_project, template: Path
    ) -> None:
        project = fault_project(
            make_project, template, "failing", ("fail", "accuracy", "never")
        )

        with pytest.raises(RuntimeError, match="node failed on purpose"):
            project.run()
        assert active_tracker() is None
        project.run(node_names=["n0_make_metric", "n1_make_text"])

        runs = sorted(project.read_runs(), key=lambda run: run["kedro"]["run_id"])
        assert [run["kedro"]["status"] for run in runs] == ["failed", "finished"]
        for run in runs:
            assert run["active"] is False
            assert spool_folders(run["hash"]) == []
            check_first_nodes(project, run)


class TestSignals:
    def test_sigint_and_sigterm_close_the_run_as_interrupted(
        self, make_project, template: Path, processes: list[subprocess.Popen[Any]]
    ) -> None:
        projects = {
            "SIGINT": fault_project(
                make_project,
                template,
                "sigint",
                ("signal_self", ["report", "params:signal"], "never"),
            ),
            "SIGTERM": fault_project(
                make_project,
                template,
                "sigterm",
                ("signal_self", ["report", "params:signal"], "never"),
            ),
            "external": fault_project(
                make_project,
                template,
                "external",
                ("wait_forever", ["report", "params:marker"], "never"),
            ),
        }
        marker = projects["external"].path / "sleeping.pid"
        for name in ("SIGINT", "SIGTERM"):
            processes.append(
                kedro_process(projects[name], "run", "--params", f"signal={name}")
            )
        processes.append(
            kedro_process(projects["external"], "run", "--params", f"marker={marker}")
        )
        wait_for(marker, processes[2])
        processes[2].send_signal(signal.SIGTERM)

        results = [finish(process) for process in processes]
        all_runs = read_many(*(project.path for project in projects.values()))

        for (code, output), runs, project in zip(
            results, all_runs, projects.values(), strict=True
        ):
            assert code != 0, output
            (run,) = runs
            assert run["kedro"]["status"] == "interrupted", output
            assert run["active"] is False
            assert run["hash"] in output
            assert "KeyboardInterrupt" in output or "Aborted" in output
            check_first_nodes(project, run)
            assert run["kedro"]["tracked"] == {"metric": 1, "text": 1}
            assert spool_folders(run["hash"]) == []

    @pytest.mark.parametrize(
        "to_group",
        [True, False],
        ids=["ctrl-c-to-the-group", "sigterm-to-the-main-process"],
    )
    def test_parallel_runner_interrupted_keeps_what_workers_saved(
        self,
        make_project,
        template: Path,
        processes: list[subprocess.Popen[Any]],
        to_group: bool,
    ) -> None:
        project = fault_project(
            make_project,
            template,
            "parallel",
            ("nap", ["accuracy", "report", "params:marker"], "late"),
        )
        marker = project.path / "napping.pid"
        processes.append(
            kedro_process(
                project,
                "run",
                "--runner",
                "ParallelRunner",
                "--params",
                f"marker={marker}",
                KEDRO_MP_CONTEXT="fork",
            )
        )
        wait_for(marker, processes[0])
        if to_group:
            os.killpg(processes[0].pid, signal.SIGINT)
        else:
            processes[0].send_signal(signal.SIGTERM)
        code, output = finish(processes[0])

        assert code != 0, output
        (run,) = project.read_runs()
        assert run["kedro"]["status"] == "interrupted", output
        assert run["kedro"]["runner"] == "ParallelRunner"
        assert run["active"] is False
        check_first_nodes(project, run)
        late_file = project.path / "data" / "late.json"
        tracked_late = sequences_by_name(run).get(("metric", "late"), [])
        if to_group:
            # Ctrl-C reaches the worker too: its node ends before saving.
            assert not late_file.exists()
            assert tracked_late == []
        else:
            # SIGTERM to the main process alone lets the running node finish,
            # and what it saved is tracked before the run closes.
            assert json.loads(late_file.read_text()) == 0.5
            (late,) = tracked_late
            assert (late["steps"], late["values"]) == ([0], [0.5])
        assert spool_folders(run["hash"]) == []

    def test_sigkill_leaves_a_repository_that_keeps_working(
        self, make_project, template: Path, processes: list[subprocess.Popen[Any]]
    ) -> None:
        project = fault_project(
            make_project,
            template,
            "sigkill",
            ("wait_forever", ["report", "params:marker"], "never"),
        )
        marker = project.path / "sleeping.pid"
        processes.append(kedro_process(project, "run", "--params", f"marker={marker}"))
        wait_for(marker, processes[0])
        os.killpg(processes[0].pid, signal.SIGKILL)
        code, _ = finish(processes[0])
        assert code == -signal.SIGKILL

        follow_up = project.kedro("run", "--nodes", "n0_make_metric,n1_make_text")

        runs = {run["kedro"]["status"]: run for run in project.read_runs()}
        assert sorted(runs) == ["finished", "running"]
        assert runs["finished"]["hash"] in follow_up.stdout
        assert runs["finished"]["active"] is False
        for run in runs.values():
            check_first_nodes(project, run)
        assert spool_folders(runs["finished"]["hash"]) == []
        # Nothing could remove the killed process's spool folder.
        for folder in spool_folders(runs["running"]["hash"]):
            shutil.rmtree(folder)


class TestRepositoryFaults:
    @pytest.fixture
    def blocked(self, make_project) -> KedroProject:
        project = fault_project(
            make_project, None, "blocked", ("make_metric", "params:seed", "never")
        )
        (project.path / "somefile").write_text("not a folder")
        return project

    def test_repository_under_a_file_fails_before_any_node(
        self, blocked: KedroProject
    ) -> None:
        blocked.write_aim({"repository": "somefile/sub"})
        repository = re.escape(str(blocked.path / "somefile" / "sub"))

        with pytest.raises(
            AimRunError,
            match=f"Could not open an Aim run in repository '{repository}': "
            "NotADirectoryError",
        ):
            blocked.run()

        assert not (blocked.path / "data").exists()
        assert active_tracker() is None

    def test_repository_under_a_file_with_continue_warns_once(
        self, blocked: KedroProject, aim_logs: pytest.LogCaptureFixture
    ) -> None:
        blocked.write_aim(
            {"repository": "somefile/sub", "when_unavailable": "continue"}
        )

        blocked.run()

        data = blocked.path / "data"
        assert json.loads((data / "accuracy.json").read_text()) == 0.375
        assert json.loads((data / "never.json").read_text()) == 0.375
        (warning,) = warnings_of(aim_logs)
        assert warning.startswith("Nothing of this run is tracked: Could not open")
        assert str(blocked.path / "somefile" / "sub") in warning


HOLDER = """
import sys

from aim.sdk.run import Run

run = Run(run_hash=sys.argv[2], repo=sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
run.close()
"""


class TestBusyRun:
    def test_resuming_a_run_another_process_holds(
        self,
        make_project,
        template: Path,
        processes: list[subprocess.Popen[Any]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        project = fault_project(
            make_project, template, "busy", ("make_metric", "params:seed", "never")
        )
        project.run(node_names=["n0_make_metric"])
        (run_hash,) = Repo.from_path(str(project.path)).list_all_runs()
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(project.path), run_hash],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        processes.append(holder)
        assert holder.stdout.readline() == "holding\n"

        monkeypatch.setenv(RUN_HASH_ENV, run_hash)
        started = time.monotonic()
        with pytest.raises(
            AimRunError,
            match=f"Could not open run {run_hash} in repository .*: RocksIOError: "
            ".*LOCK: Resource temporarily unavailable",
        ):
            project.run(node_names=["n0_make_metric"])
        assert time.monotonic() - started < 60
        assert active_tracker() is None

        holder.stdin.close()
        assert holder.wait(timeout=PROCESS_TIMEOUT) == 0
        # From another process: the failed attempt left no lock behind either.
        resumed = kedro_process(project, "run", "--nodes", "n0_make_metric")
        processes.append(resumed)
        code, output = finish(resumed)
        assert code == 0, output

        monkeypatch.delenv(RUN_HASH_ENV)
        (run,) = project.read_runs()
        assert run["hash"] == run_hash
        assert f"Tracking into Aim run {run_hash} in" in output
        assert run["kedro"]["status"] == "finished"
        (accuracy,) = sequences_by_name(run)[("metric", "accuracy")]
        assert (accuracy["steps"], accuracy["values"]) == ([0, 1], [0.375, 0.375])


class TestConcurrentRuns:
    def test_two_runs_into_one_new_repository(
        self, make_project, processes: list[subprocess.Popen[Any]]
    ) -> None:
        project = fault_project(
            make_project, None, "racing", ("make_metric", "params:seed", "never")
        )
        processes.extend(kedro_process(project, "run") for _ in range(2))

        results = [finish(process) for process in processes]

        for code, output in results:
            assert code == 0, output
        runs = project.read_runs()
        assert len(runs) == 2
        for run in runs:
            assert run["kedro"]["status"] == "finished"
            assert run["active"] is False
            assert run["kedro"]["tracked"] == {"metric": 2, "text": 1}
            assert any(run["hash"] in output for _, output in results)
            sequences = sequences_by_name(run)
            assert sorted(sequences) == [
                ("metric", "accuracy"),
                ("metric", "never"),
                ("text", "report"),
            ]
            (accuracy,) = sequences[("metric", "accuracy")]
            assert accuracy["context"] == {"subset": "test"}
            assert (accuracy["steps"], accuracy["values"]) == ([0], [0.375])
            (never,) = sequences[("metric", "never")]
            assert (never["steps"], never["values"]) == ([0], [0.375])
            (report,) = sequences[("text", "report")]
            assert (report["steps"], report["values"]) == ([0], ["report for seed 3"])
