"""Tracking into a real Aim server on the loopback, and a server that fails."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_end_to_end import CATALOG, PIPELINE, TRACKED, check_files, expected_sequences

from conftest import KedroProject, free_port, read_many, sequences_by_name
from kedro_aim_cfg import AimRunError
from kedro_aim_cfg.run import _ensure_local_repository

AIM = str(Path(sys.executable).parent / "aim")
START_TIMEOUT = 90.0


@dataclass
class AimServer:
    """An ``aim server`` process and the repository it writes into."""

    process: subprocess.Popen[bytes]
    repository: Path
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"aim://127.0.0.1:{self.port}"

    @property
    def pgid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Stop the server's whole process group: uvicorn outlives the CLI."""
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(self.pgid):
                break
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/", timeout=2):
            return True
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="session")
def server_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised repository to copy: ``aim server`` needs one."""
    path = tmp_path_factory.mktemp("server-template")
    _ensure_local_repository(str(path))
    return path / ".aim"


def start_server(root: Path, template: Path) -> AimServer:
    repository = root / "repository"
    shutil.copytree(template, repository / ".aim")
    port = free_port()
    log = root / "server.log"
    command = [AIM, "server", "--repo", str(repository), "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AimServer(process, repository, port, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"aim server exited:\n{log.read_text()}")
        if _answers(port):
            return server
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"aim server did not answer in time:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, server_template: Path
) -> Iterator[AimServer]:
    server = start_server(tmp_path_factory.mktemp("server"), server_template)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def doomed_server(tmp_path: Path, server_template: Path) -> Iterator[AimServer]:
    """A server of its own, for a test that kills it."""
    server = start_server(tmp_path / "doomed", server_template)
    try:
        yield server
    finally:
        server.stop()


def run_kedro(
    project: KedroProject, *args: str, timeout: float = 120
) -> tuple[int, str]:
    """Run ``kedro`` in a fresh process group, killed if it outlives ``timeout``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kedro", *args],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "1000"},
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None or _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=30)
    return process.returncode, output


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


class TestServer:
    def test_every_artifact_type_through_the_server(
        self, make_project, server: AimServer
    ) -> None:
        project = make_project("remote")
        project.write_catalog(CATALOG)
        project.write_pipeline(PIPELINE)
        project.write_aim({"repository": server.address})

        code, output = run_kedro(project, "run")

        assert code == 0, output
        check_files(project, 3)
        assert not (project.path / ".aim").exists()
        (server_runs,) = read_many(server.repository)
        (run,) = [r for r in server_runs if r["experiment"] == project.package]
        assert run["hash"] in output
        assert run["sequences"] == expected_sequences(3)
        assert run["params"] == {"seed": 3}
        assert run["active"] is False
        assert run["kedro"]["status"] == "finished"
        assert run["kedro"]["tracked"] == TRACKED
        assert run["kedro"]["not_tracked"] == []


CURVE_NODE = """

def curve(value, aim_run):
    for epoch in range(5):
        aim_run.track(value + epoch, name="curve", context={"subset": "train"})
    return value
"""


class TestServerRunners:
    def test_threads_then_processes_add_to_one_run(
        self, make_project, server: AimServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        project = make_project("remote_runners")
        nodes = project.src / "nodes.py"
        nodes.write_text(nodes.read_text() + CURVE_NODE)
        project.write_catalog(METRIC_CATALOG)
        project.write_pipeline(
            [*METRIC_PIPELINE, ("curve", ["accuracy", "aim_run"], "curved")]
        )
        project.write_aim(
            "repository: " + server.address + "\n"
            "run_hash: ${runtime_params:aim_run_hash,null}\n"
        )

        code, threads = run_kedro(project, "run", "--runner", "ThreadRunner")
        assert code == 0, threads
        (run_hash,) = re.findall(r"Tracking into Aim run ([0-9a-f]{24})", threads)
        monkeypatch.setenv("KEDRO_MP_CONTEXT", "spawn")
        code, processes = run_kedro(
            project,
            "run",
            "--runner",
            "ParallelRunner",
            "--params",
            f"aim_run_hash={run_hash}",
        )
        assert code == 0, processes

        (server_runs,) = read_many(server.repository)
        (run,) = [r for r in server_runs if r["experiment"] == project.package]
        assert run["hash"] == run_hash
        assert f"Tracking into Aim run {run_hash}" in processes
        assert run["active"] is False
        assert run["kedro"]["status"] == "finished"
        assert run["kedro"]["runner"] == "ParallelRunner"
        sequences = sequences_by_name(run)
        (accuracy,) = sequences[("metric", "accuracy")]
        assert (accuracy["steps"], accuracy["values"]) == ([0, 1], [0.375, 0.375])
        (report,) = sequences[("text", "report")]
        assert report["steps"] == [0, 1]
        (curve,) = sequences[("metric", "curve")]
        assert curve["context"] == {"subset": "train"}
        assert curve["steps"] == list(range(10))
        assert curve["values"] == pytest.approx(2 * [0.375 + e for e in range(5)])
        assert run["kedro"]["tracked"] == {"metric": 12, "text": 2}


METRIC_CATALOG = {
    "accuracy": {
        "type": "json.JSONDataset",
        "filepath": "data/accuracy.json",
        "aim": {"type": "metric"},
    },
    "report": {
        "type": "text.TextDataset",
        "filepath": "data/report.txt",
        "aim": {"type": "text"},
    },
}
METRIC_PIPELINE = [
    ("make_metric", "params:seed", "accuracy"),
    ("make_text", "params:seed", "report"),
]


@pytest.fixture
def metric_project(make_project) -> KedroProject:
    project = make_project("unreachable")
    project.write_catalog(METRIC_CATALOG)
    project.write_pipeline(METRIC_PIPELINE)
    return project


class SilentServer:
    """Accepts TCP connections on the loopback and never answers them."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self.port = int(self._socket.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted.append(connection)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for connection in self.accepted:
            connection.close()
        self._socket.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


class TestUnavailableServer:
    def test_closed_port_fails_before_any_node(
        self, metric_project: KedroProject
    ) -> None:
        address = f"aim://127.0.0.1:{free_port()}"
        metric_project.write_aim({"repository": address})

        with pytest.raises(
            AimRunError,
            match=f"^The Aim server {address} could not be reached within 5.0 s "
            r"\(.*Connection refused.*\)\. Start it with `aim server`, or set "
            "when_unavailable: continue in aim.yml to run without tracking.$",
        ):
            metric_project.run()

        assert not (metric_project.path / "data").exists()
        assert not (metric_project.path / ".aim").exists()

    def test_closed_port_with_continue_runs_untracked_with_one_warning(
        self, metric_project: KedroProject, aim_logs: pytest.LogCaptureFixture
    ) -> None:
        address = f"aim://127.0.0.1:{free_port()}"
        metric_project.write_aim(
            {"repository": address, "when_unavailable": "continue"}
        )

        metric_project.run()

        data = metric_project.path / "data"
        assert (data / "accuracy.json").read_text() == "0.375"
        assert (data / "report.txt").read_text() == "report for seed 3"
        (warning,) = warnings_of(aim_logs)
        assert warning.startswith(
            f"Nothing of this run is tracked: The Aim server {address} could not "
            "be reached within 5.0 s ("
        )
        assert warning.endswith(
            "Start it with `aim server`. The pipeline runs and saves its data as usual."
        )
        assert not (metric_project.path / ".aim").exists()

    def test_silent_server_fails_within_the_connect_timeout(
        self, metric_project: KedroProject, silent_server: SilentServer
    ) -> None:
        address = f"aim://127.0.0.1:{silent_server.port}"
        metric_project.write_aim({"repository": address, "connect_timeout": 1})

        started = time.monotonic()
        with pytest.raises(
            AimRunError,
            match=f"^The Aim server {address} could not be reached within 1.0 s "
            r"\(.*timed out",
        ):
            metric_project.run()
        elapsed = time.monotonic() - started

        assert elapsed < 15
        assert silent_server.accepted
        assert not (metric_project.path / "data").exists()


KILL_NODE = """

import os
import signal
import socket
import time


def kill_server(value, pgid, port):
    os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            break
        time.sleep(0.1)
    return value * 2
"""


class TestServerGoneMidRun:
    def test_run_ends_within_close_timeout_and_data_is_saved(
        self, make_project, doomed_server: AimServer
    ) -> None:
        project = make_project("doomed")
        nodes = project.src / "nodes.py"
        nodes.write_text(nodes.read_text() + KILL_NODE)
        project.write_catalog(
            {
                **METRIC_CATALOG,
                "doubled": {
                    "type": "json.JSONDataset",
                    "filepath": "data/doubled.json",
                    "aim": {"type": "metric"},
                },
            }
        )
        project.write_pipeline(
            [
                ("make_metric", "params:seed", "accuracy"),
                ("kill_server", ["accuracy", "params:pgid", "params:port"], "doubled"),
            ]
        )
        project.write_aim({"repository": doomed_server.address, "close_timeout": 3})

        started = time.monotonic()
        code, output = run_kedro(
            project,
            "run",
            "--params",
            f"pgid={doomed_server.pgid},port={doomed_server.port}",
        )
        elapsed = time.monotonic() - started

        assert doomed_server.process.wait(timeout=10) == -signal.SIGKILL
        assert (project.path / "data" / "accuracy.json").read_text() == "0.375"
        assert (project.path / "data" / "doubled.json").read_text() == "0.75"
        assert code == 0, output
        assert elapsed < 60
        # The run was created on the server, but its end never reached it; of
        # what was tracked, the server holds what Aim had sent when it went.
        ((run,),) = read_many(doomed_server.repository)
        assert run["experiment"] == project.package
        assert run["hash"] in output
        assert (run["kedro"] or {}).get("status", "running") == "running"
        assert run["sequences"] in (
            [],
            [
                {
                    "type": "metric",
                    "name": "accuracy",
                    "context": {},
                    "steps": [0],
                    "values": [0.375],
                }
            ],
        )
        assert doomed_server.address in output
        assert "Aim did not close run " in output
        assert "within 3.0 s; what it had not sent to" in output
        assert "The run did not close within 3.0 s: the counts are what" in output
