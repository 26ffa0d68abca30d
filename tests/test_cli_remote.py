"""``kedro aim`` commands on a remote repository: a real ``aim server``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from test_cli import CATALOG
from test_remote import AimServer, start_server

from conftest import KedroProject, free_port, read_runs
from kedro_aim_cfg.run import _ensure_local_repository


@pytest.fixture(scope="module")
def aim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AimServer]:
    template = tmp_path_factory.mktemp("cli-server-template")
    _ensure_local_repository(str(template))
    server = start_server(tmp_path_factory.mktemp("cli-server"), template / ".aim")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def remote_project(make_project, aim_server: AimServer) -> KedroProject:
    project = make_project("remote_cli")
    project.write_catalog(CATALOG)
    project.write_aim({"repository": aim_server.address})
    return project


def _body(output: str) -> list[str]:
    return [line for line in output.splitlines() if "│" in line and "hash" not in line]


class TestRemoteRuns:
    def test_lists_the_runs_an_aim_server_holds(
        self, remote_project: KedroProject, aim_server: AimServer
    ) -> None:
        remote_project.write_pipeline(
            [
                ("make_metrics", "params:seed", "metrics"),
                ("make_text", "params:seed", "report"),
            ]
        )
        remote_project.kedro("run")
        remote_project.write_pipeline([("fail", "params:seed", "metrics")])
        assert remote_project.kedro("run", check=False).returncode != 0

        result = remote_project.kedro("aim", "runs")

        assert f"Aim runs in {aim_server.address}" in result.stdout
        assert "could not be read" not in result.stderr
        # What the server wrote, read from its folder in a fresh process.
        ours = {
            run["hash"]: run
            for run in read_runs(aim_server.repository)
            if run["experiment"] == remote_project.package
        }
        assert len(ours) == 2
        rows = [row for row in _body(result.stdout) if remote_project.package in row]
        assert len(rows) == 2
        failed, finished = rows
        assert ours[failed.split("│")[1].strip()]["kedro"]["status"] == "failed"
        assert "failed" in failed
        assert "finished" in finished
        assert "3 metrics, 1 text" in finished
        assert "__default__" in finished
        assert not (remote_project.path / ".aim").exists()

    def test_server_that_does_not_answer_is_an_error(
        self, make_project: object
    ) -> None:
        project = make_project("no_server")  # type: ignore[operator]
        address = f"aim://127.0.0.1:{free_port()}"
        project.write_aim({"repository": address, "connect_timeout": 2})
        started = time.monotonic()
        result = project.kedro("aim", "runs", check=False)
        assert time.monotonic() - started < 25
        assert result.returncode == 1
        assert f"The Aim server {address} could not be reached" in result.stderr
        assert "Traceback" not in result.stderr


class TestRemoteCheck:
    def test_says_the_server_answers(self, remote_project: KedroProject) -> None:
        result = remote_project.kedro("aim", "check")
        assert "OK: 2 tracked entries" in result.stdout
        assert "(the server answers)" in result.stdout

    def test_server_that_does_not_answer_fails_the_check(
        self, remote_project: KedroProject
    ) -> None:
        address = f"aim://127.0.0.1:{free_port()}"
        remote_project.write_aim({"repository": address, "connect_timeout": 2})
        result = remote_project.kedro("aim", "check", check=False)
        assert result.returncode == 1
        assert f"The Aim server {address} could not be reached" in result.stderr
        assert "when_unavailable: continue" in result.stderr
        assert "OK:" not in result.stdout

    def test_with_continue_an_absent_server_is_only_reported(
        self, remote_project: KedroProject
    ) -> None:
        address = f"aim://127.0.0.1:{free_port()}"
        settings = {"repository": address, "connect_timeout": 2}
        remote_project.write_aim({**settings, "when_unavailable": "continue"})
        result = remote_project.kedro("aim", "check")
        assert "OK: 2 tracked entries" in result.stdout
        assert "the server does not answer" in result.stdout

    def test_tracking_off_does_not_ask_the_server(
        self, remote_project: KedroProject
    ) -> None:
        address = f"aim://127.0.0.1:{free_port()}"
        remote_project.write_aim({"repository": address, "enabled": False})
        result = remote_project.kedro("aim", "check")
        assert "tracking off" in result.stdout
        assert "server" not in result.stdout.split("OK:")[1]
