"""Kedro's own tools on a project with ``aim:`` blocks.

``kedro catalog`` commands, kedro-viz and the IPython extension load the
project's catalog, so they build tracking datasets; none of them may open an
Aim run or create a ``.aim`` folder. Where these tools name a dataset's class,
they name ``AimTrackingDataset`` instead of the user's type (a known limit); the
wrapped dataset's description, file path and preview are the entry's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from conftest import KedroProject, free_port, new_project

WRAPPER = "kedro_aim_cfg.dataset.AimTrackingDataset"

TOOLS_CATALOG = """
score:
  type: json.JSONDataset
  filepath: data/score.json
  metadata: {kedro-viz: {layer: reporting}}
  aim: {type: metric, context: {subset: test}}
report:
  type: text.TextDataset
  filepath: data/report.txt
  aim: {type: text}
plain:
  type: json.JSONDataset
  filepath: data/plain.json
"{split}.picture":
  type: pillow.ImageDataset
  filepath: data/{split}_picture.png
  aim: {type: image, name: picture, context: {split: "{split}"}}
"""
TOOLS_PIPELINE = [
    ("make_metric", "params:seed", "score"),
    ("make_text", "params:seed", "report"),
    ("make_metric", "params:seed", "plain"),
    ("make_pil_image", "params:seed", "train.picture"),
]
TRACKED = ["report", "score", "train.picture"]

# Logs go to stderr so that the commands' YAML on stdout can be parsed.
LOGGING = """
version: 1
disable_existing_loggers: false
handlers:
  stderr:
    class: logging.StreamHandler
    stream: ext://sys.stderr
root:
  handlers: [stderr]
  level: INFO
"""

IPYTHON_SCRIPT = """
import json
import sys

from IPython.testing.globalipapp import start_ipython

shell = start_ipython()
shell.run_line_magic("load_ext", "kedro.ipython")
shell.run_line_magic("reload_kedro", sys.argv[1])
cells = [
    "first = catalog.get('score')",
    "second = context.catalog.get('score')",
    "again = catalog.get('score'), context.catalog.get('train.picture')",
    "names = sorted(catalog.keys())",
]
successes = [shell.run_cell(cell).success for cell in cells]
namespace = shell.user_ns
described = {
    name: [type(dataset).__name__, f"{type(dataset.dataset).__module__}."
           f"{type(dataset.dataset).__name__}"]
    for name, dataset in [
        ("first", namespace["first"]),
        ("second", namespace["second"]),
        ("picture", namespace["again"][1]),
    ]
}
shell.run_line_magic("reload_kedro", sys.argv[1])
reloaded = shell.run_cell("after = type(catalog.get('score').dataset).__name__")
print("RESULT " + json.dumps({
    "successes": successes + [reloaded.success],
    "described": described,
    "names": namespace["names"],
    "after_reload": shell.user_ns["after"],
}))
"""


def _viz_lite(process: subprocess.Popen[str], port: int) -> dict[str, Any] | None:
    """Poll the lite server's API until it answers or the process ends."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/main", timeout=2
            ) as response:
                main: dict[str, Any] = json.load(response)
                return main
        except OSError:
            time.sleep(0.3)
    return None


@dataclass
class Tools:
    project: KedroProject
    results: dict[str, subprocess.CompletedProcess[str]]
    lite: dict[str, Any] | None
    lite_output: str


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tools]:
    """Run every tool at once, each in its own process, on one project."""
    project = new_project(tmp_path_factory.mktemp("tools"), "tools")
    project.write_catalog(TOOLS_CATALOG)
    project.write_pipeline(TOOLS_PIPELINE)
    logging_file = project.path / "logging.yml"
    logging_file.write_text(LOGGING)
    script = project.path.parent / "ipython_session.py"
    script.write_text(IPYTHON_SCRIPT)
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "KEDRO_LOGGING_CONFIG": str(logging_file),
    }
    commands = {
        "describe-datasets": ["-m", "kedro", "catalog", "describe-datasets"],
        "list-patterns": ["-m", "kedro", "catalog", "list-patterns"],
        "resolve-patterns": ["-m", "kedro", "catalog", "resolve-patterns"],
        "viz build": ["-m", "kedro", "viz", "build"],
        "ipython": [str(script), str(project.path)],
    }

    def start(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=project.path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if "stderr" not in kwargs else kwargs["stderr"],
            **{k: v for k, v in kwargs.items() if k != "stderr"},
        )

    port = free_port(below=45000)
    lite_process = start(
        [
            "-m",
            "kedro",
            "viz",
            "run",
            "--lite",
            "--no-browser",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = {name: start(args) for name, args in commands.items()}
    try:
        lite = _viz_lite(lite_process, port)
        results = {}
        for name, process in started.items():
            stdout, stderr = process.communicate(timeout=300)
            results[name] = subprocess.CompletedProcess(
                commands[name], process.returncode, stdout, stderr
            )
    finally:
        if lite_process.poll() is None:
            os.killpg(lite_process.pid, signal.SIGTERM)
        try:
            lite_output, _ = lite_process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lite_process.pid, signal.SIGKILL)
            lite_output, _ = lite_process.communicate()
    yield Tools(project, results, lite, lite_output)


def _ok(tools: Tools, name: str) -> subprocess.CompletedProcess[str]:
    result = tools.results[name]
    assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
    return result


class TestCatalogCommands:
    def test_describe_datasets_names_the_wrapper(self, tools: Tools):
        described = yaml.safe_load(_ok(tools, "describe-datasets").stdout)
        default = described["__default__"]
        # The user's type shows only for entries without a block.
        assert sorted(default["datasets"][WRAPPER]) == ["report", "score"]
        assert default["datasets"]["kedro_datasets.json.json_dataset.JSONDataset"] == [
            "plain"
        ]
        assert default["factories"] == {WRAPPER: ["train.picture"]}
        assert default["defaults"] == {}

    def test_list_patterns(self, tools: Tools):
        patterns = yaml.safe_load(_ok(tools, "list-patterns").stdout)
        assert patterns == ["{split}.picture", "{default}"]

    def test_resolve_patterns_keeps_the_users_dataset_inside(self, tools: Tools):
        resolved = yaml.safe_load(_ok(tools, "resolve-patterns").stdout)
        picture = resolved["train.picture"]
        assert picture["type"] == "kedro_aim_cfg.AimTrackingDataset"
        assert picture["dataset"]["type"] == "pillow.ImageDataset"
        assert picture["dataset"]["filepath"].endswith("data/train_picture.png")
        assert picture["aim"] == {
            "type": "image",
            "name": "picture",
            "context": {"split": "train"},
        }
        assert resolved["score"]["type"] == WRAPPER
        # Inside the wrapper the entry's own configuration is kept as written.
        assert resolved["score"]["dataset"]["type"] == "json.JSONDataset"
        assert resolved["plain"]["type"] == (
            "kedro_datasets.json.json_dataset.JSONDataset"
        )

    def test_no_aim_repository_and_no_data(self, tools: Tools):
        assert not (tools.project.path / ".aim").exists()
        assert not (tools.project.path / "data").exists()


class TestKedroViz:
    def _data_nodes(self, main: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {node["name"]: node for node in main["nodes"] if node["type"] == "data"}

    def test_build_writes_the_pipeline(self, tools: Tools):
        _ok(tools, "viz build")
        main = json.loads((tools.project.path / "build" / "api" / "main").read_text())
        nodes = self._data_nodes(main)
        assert sorted(nodes) == ["plain", "report", "score", "train.picture"]
        assert {nodes[name]["dataset_type"] for name in TRACKED} == {WRAPPER}
        assert nodes["plain"]["dataset_type"] == "json.json_dataset.JSONDataset"
        assert nodes["score"]["layer"] == "reporting"
        assert main["layers"] == ["reporting"]

    def test_build_node_metadata_has_the_wrapped_filepath(self, tools: Tools):
        main = json.loads((tools.project.path / "build" / "api" / "main").read_text())
        folder = tools.project.path / "build" / "api" / "nodes"
        filepaths = {}
        for name, node in self._data_nodes(main).items():
            metadata = json.loads((folder / node["id"]).read_text())
            filepaths[name] = metadata["filepath"]
        assert filepaths["plain"].endswith("data/plain.json")
        assert filepaths["score"].endswith("data/score.json")
        assert filepaths["report"].endswith("data/report.txt")
        assert filepaths["train.picture"].endswith("data/train_picture.png")

    def test_lite_mode_serves_the_pipeline(self, tools: Tools):
        assert tools.lite is not None, tools.lite_output[-3000:]
        nodes = self._data_nodes(tools.lite)
        assert sorted(nodes) == ["plain", "report", "score", "train.picture"]
        assert nodes["score"]["dataset_type"] == WRAPPER
        assert nodes["score"]["layer"] == "reporting"

    def test_no_aim_run(self, tools: Tools):
        assert not (tools.project.path / ".aim").exists()


class TestIPythonExtension:
    @pytest.fixture
    def session(self, tools: Tools) -> dict[str, Any]:
        result = _ok(tools, "ipython")
        lines = [
            line for line in result.stdout.splitlines() if line.startswith("RESULT ")
        ]
        assert len(lines) == 1, result.stdout + result.stderr
        described: dict[str, Any] = json.loads(lines[0].removeprefix("RESULT "))
        return described

    def test_every_cell_and_reload_succeeds(self, tools: Tools, session):
        assert session["successes"] == [True] * 5
        assert "Traceback" not in tools.results["ipython"].stderr

    def test_tracked_entries_wrap_the_users_type(self, session):
        assert session["described"] == {
            "first": [
                "AimTrackingDataset",
                "kedro_datasets.json.json_dataset.JSONDataset",
            ],
            "second": [
                "AimTrackingDataset",
                "kedro_datasets.json.json_dataset.JSONDataset",
            ],
            "picture": [
                "AimTrackingDataset",
                "kedro_datasets.pillow.image_dataset.ImageDataset",
            ],
        }
        assert session["after_reload"] == "JSONDataset"

    def test_the_catalog_holds_the_run_input(self, session):
        assert {"aim_run", "plain", "report", "score"} <= set(session["names"])

    def test_no_aim_run(self, tools: Tools, session):
        assert not (tools.project.path / ".aim").exists()
