"""The ``kedro aim`` commands, run through Kedro's own command line."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import free_port
from kedro_aim_cfg.models import AimSettings

CATALOG = """
metrics:
  type: json.JSONDataset
  filepath: data/metrics.json
  aim: {type: metrics, context: {subset: test}}
report:
  type: text.TextDataset
  filepath: data/report.txt
  aim: {type: text}
"""

BAD_CATALOG = """
metrics:
  type: json.JSONDataset
  filepath: data/metrics.json
  aim: {type: metricz}
report:
  type: text.TextDataset
  filepath: data/report.txt
  aim: {type: text, save_args: {caption: x}}
"""


@pytest.fixture
def project(make_project):
    project = make_project()
    project.write_catalog(CATALOG)
    project.write_pipeline(
        [
            ("make_metrics", "params:seed", "metrics"),
            ("make_text", "params:seed", "report"),
        ]
    )
    return project


ROOT = Path(__file__).parent.parent


def _global_entry_point() -> str:
    """The ``kedro.global_commands`` entry point pyproject.toml declares."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (value,) = project["entry-points"]["kedro.global_commands"].values()
    return str(value)


@pytest.fixture
def global_commands(tmp_path_factory, monkeypatch):
    """Make the global entry point visible to ``kedro``, installed or not.

    A distribution holding only pyproject.toml's entry point is put on the path
    of the ``kedro`` processes, so that what is tested is the entry point as
    declared, whether or not the installed package was built with it.
    """
    folder = tmp_path_factory.mktemp("entry-points")
    info = folder / "kedro_aim_cfg_global_probe-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kedro-aim-cfg-global-probe\nVersion: 0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[kedro.global_commands]\nkedro_aim_cfg = {_global_entry_point()}\n"
    )
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [path, str(folder)])))


def _help_sections(output: str) -> dict[str, str]:
    """``kedro --help`` by section title, such as ``Global commands from kedro``."""
    sections = re.split(
        r"^((?:Global|Project specific) commands from .+)$", output, flags=re.MULTILINE
    )
    return dict(zip(sections[1::2], sections[2::2], strict=True))


def _kedro_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
        timeout=300,
        check=False,
    )


class TestHelp:
    def test_aim_group_is_listed_in_kedro_help(self, project):
        result = project.kedro("--help")
        assert "aim" in result.stdout.split("Project specific commands")[1]

    @pytest.mark.usefixtures("global_commands")
    @pytest.mark.parametrize(
        "args", [("aim", "check"), ("aim", "runs", "--limit", "3"), ("aim", "--help")]
    )
    def test_outside_a_project_the_commands_say_so(self, tmp_path, args):
        result = _kedro_in(tmp_path, *args)
        assert result.returncode == 1
        assert (
            "kedro aim commands must run inside a Kedro project (no pyproject.toml "
            f"with [tool.kedro] found in {tmp_path.resolve()} or its parents)."
        ) in " ".join(result.stderr.split())
        assert "No such command" not in result.stdout + result.stderr

    @pytest.mark.usefixtures("global_commands")
    def test_outside_a_project_kedro_help_lists_aim(self, tmp_path):
        sections = _help_sections(_kedro_in(tmp_path, "--help").stdout)
        ours = sections["Global commands from kedro-aim-cfg"]
        assert re.search(r"^  aim ", ours, re.MULTILINE)

    @pytest.mark.usefixtures("global_commands")
    def test_inside_a_project_the_project_commands_answer(self, project):
        assert "OK: 2 tracked entries" in project.kedro("aim", "check").stdout
        assert "Commands:\n  check" in project.kedro("aim", "--help").stdout

        sections = _help_sections(project.kedro("--help").stdout)
        assert "aim" not in sections["Global commands from kedro-aim-cfg"]
        project_commands = sections["Project specific commands from kedro-aim-cfg"]
        assert re.search(r"^  aim ", project_commands, re.MULTILINE)


class TestCheck:
    def test_valid_project_exits_0_with_a_summary(self, project):
        result = project.kedro("aim", "check")
        assert "OK: 2 tracked entries (1 metrics, 1 text)" in result.stdout
        assert not (project.path / ".aim").exists()
        assert not (project.path / "data").exists()

    def test_every_problem_of_catalog_and_aim_yml_is_listed(self, project):
        project.write_catalog(BAD_CATALOG)
        project.write_aim({"experiment": "x", "colour": "red"})
        result = project.kedro("aim", "check", check=False)
        assert result.returncode == 1
        output = result.stderr
        assert "3 problems" in output
        assert "entry 'metrics', aim.type: 'metricz' is not an artifact type" in output
        assert "entry 'report', aim.save_args.caption: unknown key; none allowed" in (
            output
        )
        assert "colour: unknown key; allowed: enabled, repository" in output
        assert "conf/base/catalog.yml" in output
        assert "conf/base/aim.yml" in output
        assert not (project.path / ".aim").exists()

    @pytest.mark.parametrize(
        ("files", "message"),
        [
            (
                {"catalog.yml": CATALOG.replace("data/metrics", "${globals:nope}")},
                "Globals key 'nope' not found and no default value provided",
            ),
            (
                {"catalog.yml": CATALOG + "broken: [unclosed\n"},
                "Invalid YAML or JSON file",
            ),
            (
                {"aim.yml": "experiment: [unclosed\n"},
                "Invalid YAML or JSON file",
            ),
            (
                {"catalog_more.yml": "report: {type: text.TextDataset, filepath: x}\n"},
                "Duplicate keys found in",
            ),
        ],
        ids=["unknown-global", "catalog-yaml", "aim-yml-yaml", "duplicate-keys"],
    )
    def test_any_configuration_error_is_a_clean_exit_1(self, project, files, message):
        for name, content in files.items():
            project.write_conf(name, content)
        result = project.kedro("aim", "check", check=False)
        assert result.returncode == 1
        assert message in result.stderr
        assert "Traceback" not in result.stdout + result.stderr

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("experiment: ${globals:nope}\n", "Globals key 'nope' not found"),
            ("experiment: [unclosed\n", "Invalid YAML or JSON file"),
        ],
        ids=["unknown-global", "yaml"],
    )
    @pytest.mark.parametrize("command", ["runs", "ui"])
    def test_other_commands_report_aim_yml_errors_cleanly(
        self, project, content, message, command
    ):
        project.write_aim(content)
        result = project.kedro("aim", command, check=False)
        assert result.returncode == 1
        assert message in result.stderr
        assert "Traceback" not in result.stdout + result.stderr

    def test_runtime_params_are_given_with_params(self, project):
        project.write_catalog(
            CATALOG.replace(
                "{subset: test}", "{subset: '${runtime_params:subset}'}"
            ).replace("{type: text}", "{type: '${runtime_params:kind.report}'}")
        )
        missing = project.kedro("aim", "check", check=False)
        assert missing.returncode == 1
        assert "Runtime parameter 'subset' not found" in missing.stderr
        assert "Traceback" not in missing.stdout + missing.stderr

        result = project.kedro(
            "aim", "check", "--params", "subset=test,kind.report=text"
        )
        assert "OK: 2 tracked entries (1 metrics, 1 text)" in result.stdout

        wrong = project.kedro(
            "aim", "check", "--params", "subset=test,kind.report=txt", check=False
        )
        assert wrong.returncode == 1
        assert "entry 'report', aim.type: 'txt' is not an artifact type" in (
            wrong.stderr
        )

    def test_params_without_a_value_are_a_usage_error(self, project):
        result = project.kedro("aim", "check", "--params", "subset", check=False)
        assert result.returncode == 2
        assert "must contain a key and a value separated by `=`" in result.stderr

    def test_missing_environment_is_an_error(self, project):
        result = project.kedro("aim", "check", "--env", "nowhere", check=False)
        assert result.returncode != 0
        assert "nowhere" in result.stdout + result.stderr

    def test_project_without_the_loader_is_told_what_to_add(self, make_project):
        project = make_project(loader="kedro.config.OmegaConfigLoader")
        result = project.kedro("aim", "check", check=False)
        assert result.returncode != 0
        assert "CONFIG_LOADER_CLASS = AimConfigLoader" in result.stdout + result.stderr


def _uncommented(template: str) -> object:
    """The settings of a commented-out ``aim.yml`` once all are uncommented."""
    names = set(AimSettings.model_fields)
    lines = [
        line[2:] if line[2:].partition(":")[0] in names else line
        for line in template.splitlines()
    ]
    return yaml.safe_load("\n".join(lines))


class TestInit:
    def test_writes_every_setting_at_its_default(self, project):
        result = project.kedro("aim", "init")
        target = project.path / "conf" / "base" / "aim.yml"
        assert f"Wrote {target}" in result.stdout
        written = yaml.safe_load(target.read_text())
        assert written == AimSettings().model_dump()
        assert "# Aim repository" in target.read_text()
        assert "settings.py" not in result.stdout
        project.kedro("aim", "check")

    def test_refuses_to_overwrite_without_force(self, project):
        project.write_aim({"experiment": "mine"})
        result = project.kedro("aim", "init", check=False)
        assert result.returncode != 0
        assert "--force" in result.stdout + result.stderr
        aim_yml = project.path / "conf" / "base" / "aim.yml"
        assert yaml.safe_load(aim_yml.read_text()) == {"experiment": "mine"}

        project.kedro("aim", "init", "--force")
        assert yaml.safe_load(aim_yml.read_text())["experiment"] is None

    def test_into_another_environment_every_setting_is_commented_out(self, project):
        result = project.kedro("aim", "init", "--env", "local")
        target = project.path / "conf" / "local" / "aim.yml"
        assert "every setting commented out" in result.stdout
        assert "the 'base' environment's" in result.stdout
        assert yaml.safe_load(target.read_text()) is None
        assert _uncommented(target.read_text()) == AimSettings().model_dump()
        project.kedro("aim", "check")

    def test_over_a_base_aim_yml_the_new_file_overrides_nothing(self, project):
        base = {"experiment": "mine", "tags": ["base"], "enabled": False}
        project.write_aim(base)
        result = project.kedro("aim", "init", "--env", "local")
        assert "conf/base/aim.yml" in result.stdout
        assert "tracking off" in project.kedro("aim", "check").stdout

        from kedro_aim_cfg import AimConfigLoader

        loader = AimConfigLoader(
            str(project.path / "conf"), base_env="base", default_run_env="local"
        )
        settings = loader.aim_settings()
        assert settings.experiment == "mine"
        assert settings.tags == ["base"]
        assert settings.enabled is False

    def test_prints_settings_lines_for_a_project_without_the_loader(self, make_project):
        project = make_project(loader="kedro.config.OmegaConfigLoader")
        result = project.kedro("aim", "init")
        assert "from kedro_aim_cfg import AimConfigLoader" in result.stdout
        assert "CONFIG_LOADER_CLASS = AimConfigLoader" in result.stdout


class TestSchema:
    def test_schemas_validate_what_the_models_validate(self, project, tmp_path):
        output = tmp_path / "schemas"
        project.kedro("aim", "schema", "--output", str(output))
        settings = json.loads((output / "aim-settings.schema.json").read_text())
        block = json.loads((output / "aim-block.schema.json").read_text())

        jsonschema.validate({"experiment": "e", "tags": ["a"]}, settings)
        with pytest.raises(jsonschema.ValidationError, match="colour"):
            jsonschema.validate({"colour": "red"}, settings)

        jsonschema.validate({"type": "image", "save_args": {"caption": "c"}}, block)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(
                {"type": "figure", "save_args": {"caption": "c"}}, block
            )
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"type": "metricz"}, block)

    def test_prints_both_schemas_without_output(self, project):
        result = project.kedro("aim", "schema")
        schemas = json.loads(result.stdout[result.stdout.index("{") :])
        assert set(schemas) == {"aim-settings.schema.json", "aim-block.schema.json"}


class TestRuns:
    def test_lists_runs_newest_first_with_status_and_counts(self, project):
        project.run()
        project.write_pipeline([("fail", "params:seed", "metrics")])
        failed = project.kedro("run", check=False)
        assert failed.returncode != 0
        assert "node failed on purpose" in failed.stdout + failed.stderr

        result = project.kedro("aim", "runs")
        rows = [line for line in result.stdout.splitlines() if "│" in line]
        body = [row for row in rows if "hash" not in row]
        assert len(body) == 2
        assert "failed" in body[0]
        assert "finished" in body[1]
        assert "3 metrics, 1 text" in body[1]
        assert "__default__" in body[1]

        limited = project.kedro("aim", "runs", "--limit", "1")
        limited_rows = [
            line
            for line in limited.stdout.splitlines()
            if "│" in line and "hash" not in line
        ]
        assert len(limited_rows) == 1
        assert "failed" in limited_rows[0]

    def test_notebook_run_has_no_pipeline_and_times_carry_their_offset(
        self, project, monkeypatch
    ):
        from kedro_aim_cfg import tracking_run

        with tracking_run({"experiment": "notebook"}, project_path=project.path):
            pass
        project.run()

        # UTC+05:30 without the time zone database: POSIX offsets count westwards.
        monkeypatch.setenv("TZ", "IST-05:30")
        result = project.kedro("aim", "runs")
        rows = [line for line in result.stdout.splitlines() if "│" in line]
        (notebook,) = [row for row in rows if "notebook" in row]
        (pipeline,) = [row for row in rows if "__default__" in row]
        cells = [cell.strip() for cell in notebook.split("│")[1:-1]]
        assert cells[2] == "-"
        assert cells[3] == "finished"

        started = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+05:30", pipeline)
        assert started is not None, pipeline
        moment = datetime.fromisoformat(started.group(0))
        assert abs((datetime.now(timezone.utc) - moment).total_seconds()) < 600

    def test_run_killed_outright_shows_as_stopped_once_its_process_is_gone(
        self, project
    ):
        marker = project.path / "node-started"
        with (project.src / "nodes.py").open("a") as nodes:
            nodes.write(
                "\n\ndef sleep_forever(seed):\n"
                "    import pathlib, time\n"
                f"    pathlib.Path({str(marker)!r}).touch()\n"
                "    time.sleep(600)\n"
            )
        project.write_pipeline([("sleep_forever", "params:seed", "report")])
        process = subprocess.Popen(
            [sys.executable, "-m", "kedro", "run"],
            cwd=project.path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not marker.exists() and process.poll() is None:
                assert time.monotonic() < deadline, "the node never started"
                time.sleep(0.2)
            assert process.poll() is None, "kedro run ended early"

            live = [
                row
                for row in project.kedro("aim", "runs").stdout.splitlines()
                if "│" in row and "hash" not in row
            ]
            assert len(live) == 1
            assert "running" in live[0]
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL

        (run,) = project.read_runs()
        assert run["kedro"]["status"] == "running"
        assert run["active"] is True
        # A killed process leaves its spool folder behind (a documented limit).
        spools = Path(tempfile.gettempdir()).glob(f"kedro-aim-cfg-{run['hash']}-*")
        for folder in spools:
            shutil.rmtree(folder)

        result = project.kedro("aim", "runs")
        (row,) = [line for line in result.stdout.splitlines() if run["hash"] in line]
        cells = [cell.strip() for cell in row.split("│")[1:-1]]
        assert cells[3] == "stopped"
        assert cells[5] == "-"

        # Closed by hand, the run keeps the status it never recorded.
        aim = str(Path(sys.executable).parent / "aim")
        subprocess.run(
            [aim, "runs", "--repo", str(project.path), "close", "--yes", run["hash"]],
            capture_output=True,
            check=True,
            timeout=120,
        )
        closed = project.kedro("aim", "runs").stdout
        (row,) = [line for line in closed.splitlines() if run["hash"] in line]
        cells = [cell.strip() for cell in row.split("│")[1:-1]]
        assert cells[3] == "stopped"
        assert cells[5].endswith("s")

    def test_a_run_that_cannot_be_read_is_named_with_the_reason(self, project):
        project.run()
        (run,) = project.read_runs()
        # A run's folder without its record, as while Aim is still creating it.
        partial = "f" * 24
        (project.path / ".aim" / "meta" / "chunks" / partial).mkdir()

        result = project.kedro("aim", "runs")
        (row,) = [line for line in result.stdout.splitlines() if run["hash"] in line]
        assert "finished" in row
        assert "1 of 2 runs could not be read:" in result.stderr
        assert f"{partial}: " in result.stderr

    def test_listing_writes_nothing_into_the_repository(self, project):
        project.run()
        aim = project.path / ".aim"
        before = {
            path: path.stat().st_mtime_ns for path in aim.rglob("*") if path.is_file()
        }
        project.kedro("aim", "runs")
        after = {
            path: path.stat().st_mtime_ns for path in aim.rglob("*") if path.is_file()
        }
        assert after == before

    @pytest.mark.parametrize("limit", ["0", "-1"])
    def test_limit_below_one_is_a_usage_error(self, project, limit):
        result = project.kedro("aim", "runs", "--limit", limit, check=False)
        assert result.returncode == 2
        assert "Invalid value for '--limit'" in result.stderr
        assert "x>=1" in result.stderr
        assert "│" not in result.stdout

    def test_no_repository_yet(self, project):
        result = project.kedro("aim", "runs")
        assert "no runs" in result.stdout
        assert not (project.path / ".aim").exists()


class TestUi:
    def test_serves_the_project_runs_on_loopback(self, project):
        project.run()
        (run,) = project.read_runs()
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "kedro", "aim", "ui", "--port", str(port)],
            cwd=project.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
            start_new_session=True,
        )
        try:
            info = None
            deadline = time.monotonic() + 120
            url = f"http://127.0.0.1:{port}/api/runs/{run['hash']}/info/"
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        info = json.load(response)
                        break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.5)
            assert info is not None, "the UI did not answer"
            assert info["props"]["experiment"]["name"] == run["experiment"]
            assert info["params"]["params"] == {"seed": 3}
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def test_remote_repository_points_elsewhere(self, project):
        project.write_aim({"repository": "aim://127.0.0.1:53800"})
        result = project.kedro("aim", "ui")
        assert "aim://127.0.0.1:53800" in result.stdout
        assert not (project.path / ".aim").exists()

    def test_no_repository_yet_is_an_error(self, project):
        result = project.kedro("aim", "ui", check=False)
        assert result.returncode != 0
        assert "run the pipeline first" in result.stdout + result.stderr


def test_no_command_creates_a_run(project: object) -> None:
    path = Path(project.path)  # type: ignore[attr-defined]
    for args in (("aim", "check"), ("aim", "schema"), ("aim", "runs")):
        project.kedro(*args)  # type: ignore[attr-defined]
    assert not (path / ".aim").exists()
