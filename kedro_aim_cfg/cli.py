"""``kedro aim`` commands: set up, check, list and view a project's Aim runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from kedro.config import MissingConfigException
from kedro.framework.cli.utils import env_option

from kedro_aim_cfg.exceptions import AimConfigError
from kedro_aim_cfg.loader import AimConfigLoader
from kedro_aim_cfg.models import AimSettings, block_json_schema
from kedro_aim_cfg.run import STATUS_INTERRUPTED, STATUS_RUNNING

SETTINGS_LINES = (
    "from kedro_aim_cfg import AimConfigLoader",
    "CONFIG_LOADER_CLASS = AimConfigLoader",
)


@click.group(name="kedro-aim-cfg")
def commands() -> None:
    """Project commands of kedro-aim-cfg."""


@commands.group(name="aim")
def aim_commands() -> None:
    """Set up, check, list and view this project's Aim tracking."""


def _project_path(metadata: Any) -> Path:
    if metadata is None:
        raise click.ClickException(
            "'kedro aim' runs inside a Kedro project: no pyproject.toml with a "
            "[tool.kedro] section was found here."
        )
    return Path(metadata.project_path)


def _config_loader(project_path: Path, env: str | None) -> Any:
    """Create the project's config loader as a Kedro session would."""
    from kedro.framework.project import settings

    conf_source = project_path / settings.CONF_SOURCE
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(conf_source), env=env, **settings.CONFIG_LOADER_ARGS
    )
    run_env = env or loader.default_run_env
    folder = conf_source / run_env
    if run_env and not folder.is_dir():
        raise click.ClickException(
            f"Environment '{run_env}' does not exist: no {folder}."
        )
    return loader


def _require_aim_loader(loader: Any) -> AimConfigLoader:
    if not isinstance(loader, AimConfigLoader):
        lines = "\n  ".join(SETTINGS_LINES)
        raise click.ClickException(
            f"This project's CONFIG_LOADER_CLASS is {type(loader).__name__}, so its "
            f"aim: blocks are not read. Put these lines in settings.py:\n  {lines}"
        )
    return loader


@contextmanager
def _config_errors() -> Iterator[None]:
    """Report configuration errors as a clean CLI error."""
    try:
        yield
    except (AimConfigError, MissingConfigException) as exc:
        raise click.ClickException(str(exc)) from exc


def _settings(loader: AimConfigLoader) -> AimSettings:
    from kedro_aim_cfg.hooks import read_settings

    return read_settings(loader)


@aim_commands.command(name="check")
@env_option
@click.pass_obj
def check(metadata: Any, env: str | None) -> None:
    """Validate the catalog's aim: blocks and aim.yml without running anything."""
    project_path = _project_path(metadata)
    with _config_errors():
        loader = _require_aim_loader(_config_loader(project_path, env))

    # Reading the catalog validates its blocks and aim.yml, with one error
    # listing the problems of both.
    try:
        try:
            catalog = loader["catalog"]
        except MissingConfigException:
            catalog = {}
        settings = _settings(loader)
    except AimConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)

    from kedro_aim_cfg.dataset import DATASET_TYPE

    kinds: dict[str, int] = {}
    for config in catalog.values():
        if isinstance(config, dict) and config.get("type") == DATASET_TYPE:
            kind = config["aim"]["type"]
            kinds[kind] = kinds.get(kind, 0) + 1
    tracked = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    count = sum(kinds.values())
    state = "on" if settings.enabled else "off"
    click.echo(
        f"OK: {count} tracked {'entry' if count == 1 else 'entries'} "
        f"({tracked or 'none'}); "
        f"aim.yml valid, tracking {state}, repository "
        f"{settings.repository_for(project_path)}"
    )


def _settings_template() -> str:
    lines = [
        "# Run-level settings of kedro-aim-cfg, all at their defaults.",
        "# The JSON schema of this file: `kedro aim schema`.",
        "",
    ]
    defaults = AimSettings().model_dump()
    for name, field in AimSettings.model_fields.items():
        lines.append(f"# {field.description}")
        value = json.dumps(defaults[name])
        lines.append(f"{name}: {value}")
        lines.append("")
    return "\n".join(lines)


@aim_commands.command(name="init")
@click.option(
    "--env", "-e", default="base", show_default=True, help="Environment to write into."
)
@click.option("--force", is_flag=True, help="Overwrite an existing aim.yml.")
@click.pass_obj
def init(metadata: Any, env: str, force: bool) -> None:
    """Write a commented aim.yml with every setting at its default."""
    from kedro.framework.project import settings

    project_path = _project_path(metadata)
    folder = project_path / settings.CONF_SOURCE / env
    if not folder.is_dir():
        raise click.ClickException(
            f"Environment '{env}' does not exist: no folder {folder}."
        )
    target = folder / "aim.yml"
    if target.exists() and not force:
        raise click.ClickException(
            f"{target} exists already; use --force to overwrite it."
        )

    target.write_text(_settings_template(), encoding="utf-8")
    click.echo(f"Wrote {target}")
    if not (
        isinstance(settings.CONFIG_LOADER_CLASS, type)
        and issubclass(settings.CONFIG_LOADER_CLASS, AimConfigLoader)
    ):
        click.echo("Now put these two lines in settings.py:")
        for line in SETTINGS_LINES:
            click.echo(f"  {line}")


@aim_commands.command(name="schema")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write the schemas into; prints them when omitted.",
)
def schema(output: Path | None) -> None:
    """JSON schemas of aim.yml and of a catalog entry's aim: block."""
    schemas = {
        "aim-settings.schema.json": AimSettings.model_json_schema(),
        "aim-block.schema.json": block_json_schema(),
    }
    if output is None:
        click.echo(json.dumps(schemas, indent=2))
        return
    output.mkdir(parents=True, exist_ok=True)
    for name, content in schemas.items():
        (output / name).write_text(json.dumps(content, indent=2) + "\n")
        click.echo(f"Wrote {output / name}")


def _aim_executable() -> str:
    local = Path(sys.executable).parent / "aim"
    found = str(local) if local.exists() else shutil.which("aim")
    if found is None:
        raise click.ClickException("The 'aim' command was not found; is aim installed?")
    return found


@aim_commands.command(name="ui")
@env_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Host to bind.")
@click.option("--port", default=43800, show_default=True, help="Port to listen on.")
@click.pass_obj
def ui(metadata: Any, env: str | None, host: str, port: int) -> None:
    """Start Aim's UI on the project's repository."""
    project_path = _project_path(metadata)
    with _config_errors():
        settings = _settings(_require_aim_loader(_config_loader(project_path, env)))
    if settings.is_remote:
        click.echo(
            f"The repository is the Aim server {settings.repository}: open the UI "
            "that serves it, or start one where its repository lives with "
            "`aim up --repo PATH`."
        )
        return

    repository = settings.repository_for(project_path)
    if not Path(repository, ".aim").is_dir():
        raise click.ClickException(
            f"No Aim repository at {repository} yet: run the pipeline first."
        )
    command = [_aim_executable(), "up", "--repo", repository]
    command += ["--host", host, "--port", str(port)]
    click.echo(f"Starting Aim UI on http://{host}:{port} for {repository}")
    sys.exit(subprocess.call(command))


def _status(run: Any) -> str:
    kedro = run.get("kedro") or {}
    status = kedro.get("status", "unknown") if isinstance(kedro, dict) else "unknown"
    if status == STATUS_RUNNING and not run.active:
        return STATUS_INTERRUPTED
    return str(status)


def _pipelines(kedro: dict[str, Any]) -> str:
    """The pipelines a ``kedro run`` ran; ``-`` for a run opened by hand."""
    if "pipeline_names" not in kedro:
        # tracking_run() records no Kedro run parameters.
        return "-"
    return ",".join(kedro["pipeline_names"] or ["__default__"])


def _describe_run(run: Any) -> dict[str, Any]:
    kedro = run.get("kedro") or {}
    started = datetime.fromtimestamp(run.creation_time, tz=timezone.utc).astimezone()
    end = run.end_time
    duration = (end - run.creation_time) if end else None
    tracked = kedro.get("tracked") or {}
    return {
        "hash": run.hash,
        "experiment": run.experiment,
        "pipeline": _pipelines(kedro),
        "status": _status(run),
        "started": started.isoformat(sep=" ", timespec="seconds"),
        "duration": f"{duration:.1f}s" if duration is not None else "-",
        "tracked": ", ".join(f"{n} {k}" for k, n in sorted(tracked.items())) or "-",
    }


def list_runs(repository: str, limit: int) -> list[dict[str, Any]]:
    """Describe the newest runs of a repository, newest first.

    Args:
        repository: The folder holding ``.aim``, or an ``aim://`` address.
        limit: How many runs at most.

    Returns:
        One mapping per run: hash, experiment, pipeline, status, start, duration
        and the objects tracked per type.
    """
    from aim.sdk.index_manager import RepoIndexManager
    from aim.sdk.repo import Repo

    repo = Repo.from_path(repository)
    hashes = repo.list_all_runs()
    if not repo.is_remote_repo:
        # Index every run before reading any: the first read fixes which runs
        # the repository's reader sees.
        manager = RepoIndexManager.get_index_manager(repo)
        for run_hash in hashes:
            manager.index(run_hash)
    runs = [run for run in map(repo.get_run, hashes) if run is not None]
    runs.sort(key=lambda run: run.creation_time, reverse=True)
    return [_describe_run(run) for run in runs[:limit]]


@aim_commands.command(name="runs")
@env_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many runs.",
)
@click.pass_obj
def runs(metadata: Any, env: str | None, limit: int) -> None:
    """List the project's recent Aim runs, newest first."""
    from rich.console import Console
    from rich.table import Table

    project_path = _project_path(metadata)
    with _config_errors():
        settings = _settings(_require_aim_loader(_config_loader(project_path, env)))
    repository = settings.repository_for(project_path)
    if not settings.is_remote and not Path(repository, ".aim").is_dir():
        click.echo(f"No Aim repository at {repository} yet: no runs.")
        return

    rows = list_runs(repository, limit)
    table = Table(title=f"Aim runs in {repository}")
    columns = ("hash", "experiment", "pipeline", "status", "started", "duration")
    for column in (*columns, "tracked"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[column]) for column in (*columns, "tracked")))
    Console(width=200).print(table)
