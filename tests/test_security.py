"""Secrets stay out of runs and logs; the UI listens on the loopback only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import READER, KedroProject, free_port
from kedro_aim_cfg.run import _ensure_local_repository

CREDENTIAL_SECRET = "cred-s3cr3t-9b1e77"
ENV_SECRET = "env-s3cr3t-5d20c4"
# Aim leaves out variables named like secrets (token, key, ...); this one is not.
ENV_NAME = "KEDRO_AIM_CFG_DATABASE_URL"
PROCESS_TIMEOUT = 120

CATALOG = {
    "shuttles": {
        "type": "json.JSONDataset",
        "filepath": "data/shuttles.json",
        "credentials": "store",
        "aim": {"type": "metrics"},
    },
    "report": {
        "type": "text.TextDataset",
        "filepath": "data/report.txt",
        "aim": {"type": "text"},
    },
}
PIPELINE = [
    ("make_metrics", "params:seed", "shuttles"),
    ("make_text", "params:seed", "report"),
]

FULL_READER = """
import json
import sys

sys.path.insert(0, sys.argv[1])

from aim import Repo
from aim_reader import read_repository

everything = []
for path in sys.argv[2:]:
    runs = read_repository(path)
    repo = Repo.from_path(path)
    for run in runs:
        run["tree"] = repo.get_run(run["hash"]).meta_run_tree.collect()
    everything.append(runs)
json.dump(everything, sys.stdout, default=str)
"""


def read_everything(*repositories: Path) -> list[list[dict[str, Any]]]:
    """Every attribute and sequence of every run, read in one fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", FULL_READER, str(READER.parent)]
        + [str(path) for path in repositories],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"reading failed:\n{result.stderr}")
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty Aim repository to copy: creating one takes seconds."""
    path = tmp_path_factory.mktemp("security-template")
    _ensure_local_repository(str(path))
    return path / ".aim"


def secret_project(make_project, template: Path, name: str) -> KedroProject:
    project = make_project(name)
    project.write_catalog(CATALOG)
    project.write_pipeline(PIPELINE)
    project.write_conf(
        "credentials.yml", {"store": {"secret_token": CREDENTIAL_SECRET}}, env="local"
    )
    shutil.copytree(template, project.path / ".aim")
    return project


class TestSecrets:
    def test_no_secret_in_runs_logs_or_output(
        self,
        make_project,
        template: Path,
        monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str],
        aim_logs: pytest.LogCaptureFixture,
    ) -> None:
        monkeypatch.setenv(ENV_NAME, ENV_SECRET)
        monkeypatch.setenv("COLUMNS", "1000")
        project = secret_project(make_project, template, "secrets")
        leaky = secret_project(make_project, template, "leaky")
        leaky.write_aim({"log_system_params": True})

        project.run()
        in_process = capfd.readouterr()
        result = project.kedro("run")
        leaky.run()

        runs, leaky_runs = read_everything(project.path, leaky.path)

        assert len(runs) == 2
        assert json.loads((project.path / "data" / "shuttles.json").read_text())
        texts = {
            "runs": json.dumps(runs, default=str),
            "in-process output": in_process.out + in_process.err,
            "plugin log": aim_logs.text,
            "command output": result.stdout + result.stderr,
        }
        for where, text in texts.items():
            for secret in (CREDENTIAL_SECRET, ENV_SECRET):
                assert secret not in text, where
        for run in runs:
            assert run["kedro"]["status"] == "finished"
            assert run["hash"] in texts["command output"] + texts["plugin log"]
            assert set(run["tree"]["attrs"]) == {"kedro", "params"}
        assert ENV_NAME not in texts["runs"]
        # The same scan finds the secret once Aim is told to store the environment.
        (leaky_run,) = leaky_runs
        system = leaky_run["tree"]["attrs"]["__system_params"]
        assert system["env_variables"][ENV_NAME] == ENV_SECRET
        assert ENV_SECRET in json.dumps(leaky_runs, default=str)


@pytest.fixture
def ui(make_project, template: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    project = make_project("ui")
    shutil.copytree(template, project.path / ".aim")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "kedro", "aim", "ui", "--port", str(port)],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
        start_new_session=True,
    )
    try:
        yield process, port
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=20)
                break
            except subprocess.TimeoutExpired:
                continue
        if process.stdout is not None:
            process.stdout.close()


def listening(port: int) -> list[str]:
    return sorted(
        connection.laddr.ip
        for connection in psutil.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
    )


class TestUi:
    def test_binds_the_loopback_by_default(
        self, ui: tuple[subprocess.Popen[str], int]
    ) -> None:
        process, port = ui
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while not listening(port):
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the UI did not start"
            time.sleep(0.25)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass

        assert listening(port) == ["127.0.0.1"]
        commands = [
            child.cmdline()
            for child in psutil.Process(process.pid).children(recursive=True)
        ]
        (aim_up,) = [c for c in commands if "up" in c and "--repo" in c]
        assert aim_up[aim_up.index("--host") + 1] == "127.0.0.1"
        assert aim_up[aim_up.index("--port") + 1] == str(port)
