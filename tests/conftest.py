"""Shared fixtures: real Kedro projects in ``tmp_path`` and Aim read-back."""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kedro_aim_cfg import run as run_module

TESTS = Path(__file__).parent
READER = TESTS / "aim_reader.py"

# Nodes every generated project can use: each returns one kind of artifact.
NODES_SOURCE = """
from __future__ import annotations

import io
import wave

import numpy as np


def make_metrics(seed):
    return {"accuracy": 0.5 + seed / 100, "loss": {"train": 0.25, "test": 0.5}}


def make_metric(seed):
    return 0.125 * seed


def make_text(seed):
    return f"report for seed {seed}"


def make_pil_image(seed):
    from PIL import Image

    array = np.full((12, 16, 3), seed % 256, dtype=np.uint8)
    return Image.fromarray(array)


def make_matplotlib_figure(seed):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(2, 2), dpi=50)
    axes.imshow(np.eye(3) * seed)
    return figure


def make_plotly_figure(seed):
    import plotly.graph_objects as go

    return go.Figure(go.Bar(x=["a", "b"], y=[seed, seed + 1]))


def make_samples(seed):
    return np.linspace(0.0, 1.0, 200) * seed


def make_wave_array(seed):
    t = np.linspace(0, 0.1, 800, endpoint=False)
    return (np.sin(2 * np.pi * 440 * t) * 0.5).astype(np.float32)


def make_wav_bytes(seed):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(8000)
        clip.writeframes(np.zeros(400, dtype=np.int16).tobytes())
    return buffer.getvalue()


def fail(seed):
    raise RuntimeError("node failed on purpose")
"""


class KedroProject:
    """A real Kedro project written under ``tmp_path``.

    Each project gets its own package name, so that several projects can be
    bootstrapped in one test process without their modules clashing.
    """

    def __init__(self, path: Path, package: str) -> None:
        self.path = path
        self.package = package
        self.src = path / "src" / package

    # -- writing -------------------------------------------------------------

    def write_conf(self, name: str, content: Any, env: str = "base") -> Path:
        """Write ``conf/<env>/<name>`` from a mapping or from YAML text."""
        target = self.path / "conf" / env / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not isinstance(content, str):
            content = yaml.safe_dump(content, sort_keys=False)
        target.write_text(textwrap.dedent(content), encoding="utf-8")
        return target

    def write_catalog(self, content: Any, env: str = "base") -> Path:
        return self.write_conf("catalog.yml", content, env)

    def write_aim(self, content: Any, env: str = "base") -> Path:
        return self.write_conf("aim.yml", content, env)

    def write_pipeline(self, nodes: list[tuple[str, str, str | list[str]]]) -> None:
        """Write a ``__default__`` pipeline of ``(function, input, outputs)``."""
        lines = [
            "from kedro.pipeline import Pipeline, node",
            f"from {self.package} import nodes",
            "",
            "",
            "def register_pipelines():",
            "    return {'__default__': Pipeline([",
        ]
        for index, (function, inputs, outputs) in enumerate(nodes):
            lines.append(
                f"        node(nodes.{function}, {inputs!r}, {outputs!r}, "
                f"name='n{index}_{function}'),"
            )
        lines.append("    ])}")
        (self.src / "pipeline_registry.py").write_text("\n".join(lines) + "\n")

    # -- running -------------------------------------------------------------

    def run(self, **run_args: Any) -> dict[str, Any]:
        """Run the project in this process through a real ``KedroSession``."""
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(self.path)
        env = run_args.pop("env", None)
        runtime_params = run_args.pop("runtime_params", None)
        with KedroSession.create(
            project_path=self.path, env=env, runtime_params=runtime_params
        ) as session:
            return session.run(**run_args)  # type: ignore[no-any-return]

    def kedro(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``kedro`` command line in a fresh process in the project."""
        result = subprocess.run(
            [sys.executable, "-m", "kedro", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kedro {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def kedro_concurrently(
        self, commands: list[list[str]], *, check: bool = True
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run several ``kedro`` commands in fresh processes at the same time."""
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "kedro", *command],
                cwd=self.path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for command in commands
        ]
        results = []
        for command, process in zip(commands, started, strict=True):
            stdout, stderr = process.communicate(timeout=300)
            if check and process.returncode != 0:
                raise AssertionError(f"kedro {command}:\n{stdout}\n{stderr}")
            results.append(
                subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
            )
        return results

    @property
    def aim_repository(self) -> Path:
        return self.path

    def read_runs(self, repository: Path | str | None = None) -> list[dict[str, Any]]:
        """Read every run of the repository back in a fresh process."""
        return read_runs(repository or self.aim_repository)


def free_port(*, below: int | None = None) -> int:
    """A port on 127.0.0.1 that is free now; ``below`` keeps it under a limit.

    kedro-viz refuses ports in the ephemeral range, hence ``below``.
    """
    if below is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])
    for port in random.sample(range(20000, below), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port below {below}")


def read_many(*repositories: Path | str) -> list[list[dict[str, Any]]]:
    """Read every run of several Aim repositories back in one fresh process."""
    result = subprocess.run(
        [sys.executable, str(READER), *map(str, repositories)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"reading {repositories} failed:\n{result.stderr}")
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def read_runs(repository: Path | str) -> list[dict[str, Any]]:
    """Read every run of an Aim repository back in a fresh process."""
    (runs,) = read_many(repository)
    return runs


def sequences_by_name(
    run: dict[str, Any],
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Group a read-back run's sequences by ``(type, name)``."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for sequence in run["sequences"]:
        grouped.setdefault((sequence["type"], sequence["name"]), []).append(sequence)
    return grouped


def new_project(
    root: Path,
    name: str,
    *,
    nodes: str = "",
    loader: str = "kedro_aim_cfg.AimConfigLoader",
    parameters: dict[str, Any] | None = None,
) -> KedroProject:
    """Write a real Kedro project under ``root``, with its own package name.

    Args:
        root: The folder to create the project in.
        name: The project's folder and the start of its package name.
        nodes: Extra node functions, appended to the shared ``nodes.py``.
        loader: The dotted path of the project's ``CONFIG_LOADER_CLASS``.
        parameters: The project's parameters; by default ``{"seed": 3}``.
    """
    package = f"{name}_{uuid.uuid4().hex[:8]}"
    project = KedroProject(root / name, package)
    project.src.mkdir(parents=True)
    (project.path / "conf" / "local").mkdir(parents=True)
    (project.path / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [tool.kedro]
            package_name = "{package}"
            project_name = "{name}"
            kedro_init_version = "1.7.0"
            source_dir = "src"
            """
        )
    )
    (project.src / "__init__.py").write_text("")
    (project.src / "nodes.py").write_text(NODES_SOURCE + nodes)
    module, _, cls = loader.rpartition(".")
    (project.src / "settings.py").write_text(
        f"from {module} import {cls}\n\nCONFIG_LOADER_CLASS = {cls}\n"
    )
    project.write_conf("parameters.yml", parameters or {"seed": 3})
    return project


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No telemetry, and no Aim run left active by a failed test."""
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    yield
    tracker = run_module.active_tracker()
    if tracker is not None:
        run_module.deactivate(tracker)
        tracker.close(run_module.STATUS_FAILED)


@pytest.fixture
def aim_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture the plugin's log records, also after Kedro configured logging.

    A Kedro session applies its logging configuration, which replaces the root
    handlers that ``caplog`` relies on; the handler is attached to the plugin's
    own logger instead.
    """
    package_logger = logging.getLogger("kedro_aim_cfg")
    package_logger.addHandler(caplog.handler)
    level, propagate = package_logger.level, package_logger.propagate
    package_logger.setLevel(logging.DEBUG)
    # Without Kedro's logging, caplog's root handler would see each record too.
    package_logger.propagate = False
    yield caplog
    package_logger.removeHandler(caplog.handler)
    package_logger.setLevel(level)
    package_logger.propagate = propagate


@pytest.fixture
def make_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Return a factory of real Kedro projects using ``AimConfigLoader``."""
    created: list[KedroProject] = []

    def factory(
        name: str = "project",
        *,
        loader: str = "kedro_aim_cfg.AimConfigLoader",
        parameters: dict[str, Any] | None = None,
    ) -> KedroProject:
        project = new_project(tmp_path, name, loader=loader, parameters=parameters)
        created.append(project)
        return project

    yield factory

    for project in created:
        for module in [m for m in sys.modules if m.split(".")[0] == project.package]:
            del sys.modules[module]
