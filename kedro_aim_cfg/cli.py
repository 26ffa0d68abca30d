"""``kedro aim`` commands: set up, check, list and view a project's Aim runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import yaml
from kedro.config import BadConfigException, MissingConfigException
from kedro.framework.cli.utils import _split_params, env_option
from omegaconf.errors import OmegaConfBaseException

from kedro_aim_cfg.exceptions import AimConfigError, AimRunError
from kedro_aim_cfg.loader import AimConfigLoader
from kedro_aim_cfg.models import AimSettings, block_json_schema
from kedro_aim_cfg.run import STATUS_RUNNING

STATUS_STOPPED = "stopped"
"""Shown for a run whose process ended without recording how its pipeline ended."""

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


def _outside_project_message() -> str:
    return (
        "kedro aim commands must run inside a Kedro project (no pyproject.toml "
        f"with [tool.kedro] found in {Path.cwd()} or its parents)."
    )


def _project_path(metadata: Any) -> Path:
    if metadata is None:
        raise click.ClickException(_outside_project_message())
    return Path(metadata.project_path)


@click.command(
    name="aim",
    context_settings={"ignore_unknown_options": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def _aim_outside_project(args: tuple[str, ...]) -> None:
    """kedro aim commands run inside a Kedro project."""
    raise click.ClickException(_outside_project_message())


class _OutsideProjectCommands(click.Group):
    """Offers ``aim`` only where Kedro loads no project commands.

    Kedro looks a command up in its global groups before the project's, and
    passes a project's metadata to its commands only inside a project: there,
    this group offers nothing, so that the project's ``aim`` group is found.
    """

    @staticmethod
    def _in_project(ctx: click.Context) -> bool:
        from kedro.framework.startup import ProjectMetadata

        return isinstance(ctx.find_root().obj, ProjectMetadata)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [] if self._in_project(ctx) else ["aim"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name != "aim" or self._in_project(ctx):
            return None
        return _aim_outside_project


global_commands = _OutsideProjectCommands(name="kedro-aim-cfg")
"""Global commands of kedro-aim-cfg: ``kedro aim`` outside a project says why."""


def _config_loader(
    project_path: Path, env: str | None, runtime_params: dict[str, Any] | None = None
) -> Any:
    """Create the project's config loader as a Kedro session would."""
    from kedro.framework.project import settings

    conf_source = project_path / settings.CONF_SOURCE
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(conf_source),
        env=env,
        runtime_params=runtime_params or None,
        **settings.CONFIG_LOADER_ARGS,
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


CONFIG_ERRORS: tuple[type[Exception], ...] = (
    # Kedro's own, and this plugin's AimConfigError.
    BadConfigException,
    MissingConfigException,
    # Interpolations: unknown globals, runtime parameters without a default.
    OmegaConfBaseException,
    # Files that are not YAML.
    yaml.YAMLError,
    # What OmegaConfigLoader raises for duplicate keys across files.
    ValueError,
)
"""What Kedro's config loader raises for a configuration it cannot load."""


def _config_message(exc: Exception) -> str:
    if isinstance(exc, AimConfigError):
        return str(exc)
    return f"Invalid configuration: {exc}"


@contextmanager
def _config_errors() -> Iterator[None]:
    """Report configuration errors as a clean CLI error."""
    try:
        yield
    except CONFIG_ERRORS as exc:
        raise click.ClickException(_config_message(exc)) from exc


def _settings(loader: AimConfigLoader) -> AimSettings:
    from kedro_aim_cfg.hooks import read_settings

    return read_settings(loader)


def _require_server(settings: AimSettings) -> None:
    """Fail at once when the Aim server of a remote repository does not answer.

    Aim's client would retry for half a minute before failing.
    """
    from kedro_aim_cfg.run import _check_server

    try:
        _check_server(
            settings.repository, settings.connect_timeout, suggest_continue=False
        )
    except AimRunError as exc:
        raise click.ClickException(str(exc)) from exc


@aim_commands.command(name="check")
@env_option
@click.option(
    "--params",
    type=click.UNPROCESSED,
    default="",
    callback=_split_params,
    help="Runtime parameters, as for `kedro run --params`: key1=value1,"
    "key2.sub=value2. Needed for ${runtime_params:...} without a default.",
)
@click.pass_obj
def check(metadata: Any, env: str | None, params: dict[str, Any]) -> None:
    """Validate the catalog's aim: blocks and aim.yml without running anything."""
    project_path = _project_path(metadata)
    with _config_errors():
        loader = _require_aim_loader(_config_loader(project_path, env, params))

    # Reading the catalog validates its blocks and aim.yml, with one error
    # listing the problems of both.
    try:
        try:
            catalog = loader["catalog"]
        except MissingConfigException:
            catalog = {}
        settings = _settings(loader)
    except CONFIG_ERRORS as exc:
        click.echo(_config_message(exc), err=True)
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
    server = _server_state(settings) if settings.is_remote and settings.enabled else ""
    click.echo(
        f"OK: {count} tracked {'entry' if count == 1 else 'entries'} "
        f"({tracked or 'none'}); "
        f"aim.yml valid, tracking {state}, repository "
        f"{settings.repository_for(project_path)}{server}"
    )


def _server_state(settings: AimSettings) -> str:
    """Say whether the server answers; exit 1 if it does not and runs would fail."""
    from kedro_aim_cfg.run import _check_server

    fail = settings.when_unavailable == "fail"
    try:
        _check_server(
            settings.repository, settings.connect_timeout, suggest_continue=fail
        )
    except AimRunError as exc:
        if fail:
            click.echo(str(exc), err=True)
            sys.exit(1)
        return (
            " (the server does not answer: with when_unavailable: continue, "
            "runs would not be tracked)"
        )
    return " (the server answers)"


def _settings_template(*, commented: bool) -> str:
    """Every setting at its default, each under its description.

    Args:
        commented: Comment the settings out too, so that the file changes
            nothing until a setting is uncommented.
    """
    if commented:
        lines = [
            "# Run-level settings of kedro-aim-cfg for this environment. Every",
            "# setting is commented out: one given here overrides the base",
            "# environment's, so uncomment only those to change.",
        ]
    else:
        lines = ["# Run-level settings of kedro-aim-cfg, all at their defaults."]
    lines += ["# The JSON schema of this file: `kedro aim schema`.", ""]
    prefix = "# " if commented else ""
    defaults = AimSettings().model_dump()
    for name, field in AimSettings.model_fields.items():
        lines.append(f"# {field.description}")
        value = json.dumps(defaults[name])
        lines.append(f"{prefix}{name}: {value}")
        lines.append("")
    return "\n".join(lines)


@aim_commands.command(name="init")
@click.option(
    "--env",
    "-e",
    default=None,
    help="Environment to write into; by default the base environment. In any "
    "other, every setting is written commented out.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing aim.yml.")
@click.pass_obj
def init(metadata: Any, env: str | None, force: bool) -> None:
    """Write a commented aim.yml with every setting at its default."""
    from kedro.framework.project import settings

    project_path = _project_path(metadata)
    conf_source = project_path / settings.CONF_SOURCE
    base_env = settings.CONFIG_LOADER_ARGS.get("base_env") or "base"
    env = env or base_env
    folder = conf_source / env
    if not folder.is_dir():
        raise click.ClickException(
            f"Environment '{env}' does not exist: no folder {folder}."
        )
    target = folder / "aim.yml"
    if target.exists() and not force:
        raise click.ClickException(
            f"{target} exists already; use --force to overwrite it."
        )

    # In an environment over the base one, a setting written at its default
    # would silently override the base environment's value.
    commented = env != base_env
    target.write_text(_settings_template(commented=commented), encoding="utf-8")
    if commented:
        base_files = sorted(
            str(path.relative_to(project_path))
            for path in (conf_source / base_env).glob("aim*")
        )
        overridden = ", ".join(base_files) or f"the '{base_env}' environment's"
        click.echo(
            f"Wrote {target} with every setting commented out; a setting "
            f"uncommented there overrides that of {overridden}."
        )
    else:
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


def _writer_gone(repo: Any, run_hash: str) -> bool:
    """Whether the process that opened a local run ended without closing it.

    While a process writes a run, Aim keeps a lock file naming the machine and
    the process; closing the run removes it. Like Aim, which takes such a lock
    as stale when it reopens the run, a lock whose process no longer exists on
    this machine means the writer is gone. A lock taken on another machine, or
    by the server of a remote repository, cannot be told from a live one.
    """
    if repo.is_remote_repo:
        return False
    from aim.sdk.lock_manager import LockingVersion, LockManager

    manager = LockManager(repo.path)
    info = manager.get_run_lock_info(run_hash)
    if not info.locked:
        # Aim writes the end time before it removes the lock.
        return True
    if info.version != LockingVersion.NEW:
        return False
    try:
        return bool(
            manager.is_stalled_lock(
                manager.locks_path / manager.softlock_fname(run_hash)
            )
        )
    except (OSError, ValueError):
        # Removed meanwhile, or not written out yet by a process taking it.
        return False


def _status(kedro: dict[str, Any], end_time: float | None, writer_gone: bool) -> str:
    """The status the run recorded, unless its process ended without recording.

    A ``kedro run`` records ``running`` when it starts and its outcome when it
    ends; a run still ``running`` after its process ended was stopped outright
    (SIGKILL, a crash of the machine) and is shown as ``stopped``.
    """
    status = str(kedro.get("status", "unknown"))
    if status == STATUS_RUNNING and (end_time or writer_gone):
        return STATUS_STOPPED
    return status


def _pipelines(kedro: dict[str, Any]) -> str:
    """The pipelines a ``kedro run`` ran; ``-`` for a run opened by hand."""
    if "pipeline_names" not in kedro:
        # tracking_run() records no Kedro run parameters.
        return "-"
    return ",".join(kedro["pipeline_names"] or ["__default__"])


def _run_meta(repo: Any, run_hash: str) -> Any:
    """The metadata a run's writer stored, read from the run's own container.

    ``Repo.get_run`` reads the repository's index, which only ``aim up`` (or
    indexing by hand) brings up to date, and which an ``aim server`` never
    writes: read through it, a remote run does not exist.
    """
    # Without skip_read_optimization, Aim would open for writing, and flush, a
    # container nobody writes, such as that of a run whose writer was killed.
    tree = repo.request_tree(
        "meta", run_hash, read_only=True, skip_read_optimization=True
    )
    return tree.subtree(("meta", "chunks", run_hash))


def _describe_run(repo: Any, run: Any) -> dict[str, Any]:
    # The lock first: a writer that closes the run in between has written the
    # end time by the time the metadata is read.
    writer_gone = _writer_gone(repo, run.hash)
    meta = _run_meta(repo, run.hash)
    kedro = meta.get(("attrs", "kedro")) or {}
    if not isinstance(kedro, dict):
        kedro = {}
    created = run.creation_time
    started = datetime.fromtimestamp(created, tz=timezone.utc).astimezone()
    end = meta.get("end_time")
    duration = (end - created) if end else None
    tracked = kedro.get("tracked") or {}
    return {
        "hash": run.hash,
        "experiment": run.experiment,
        "pipeline": _pipelines(kedro),
        "status": _status(kedro, end, writer_gone),
        "started": started.isoformat(sep=" ", timespec="seconds"),
        "duration": f"{duration:.1f}s" if duration is not None else "-",
        "tracked": ", ".join(f"{n} {k}" for k, n in sorted(tracked.items())) or "-",
    }


@dataclass(frozen=True)
class RunListing:
    """The newest runs of a repository, and the runs that could not be read.

    Attributes:
        rows: One mapping per run, newest first: hash, experiment, pipeline,
            status, start, duration and the objects tracked per type.
        total: How many runs the repository holds.
        unreadable: Why each run that could not be read could not, by hash.
    """

    rows: list[dict[str, Any]]
    total: int
    unreadable: dict[str, str]


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def list_runs(repository: str, limit: int) -> RunListing:
    """Describe the newest runs of a repository, newest first.

    Each run is read from its own container, so the repository's index, which
    an ``aim server`` never updates, is neither needed nor changed.

    Args:
        repository: The folder holding ``.aim``, or an ``aim://`` address.
        limit: How many runs at most.

    Returns:
        The newest runs, and the runs that could not be read.
    """
    from aim.sdk.repo import Repo
    from aim.sdk.run import Run

    repo = Repo.from_path(repository)
    hashes = repo.list_all_runs()
    unreadable: dict[str, str] = {}
    started: list[tuple[float, Any]] = []
    # Aim's own errors, local or relayed from a server, share no base class.
    for run_hash in hashes:
        try:
            run = Run(run_hash, repo=repo, read_only=True)
            started.append((run.creation_time, run))
        except Exception as exc:
            unreadable[run_hash] = _reason(exc)
    started.sort(key=lambda pair: pair[0], reverse=True)
    rows: list[dict[str, Any]] = []
    for _, run in started:
        if len(rows) == limit:
            break
        try:
            rows.append(_describe_run(repo, run))
        except Exception as exc:
            unreadable[run.hash] = _reason(exc)
    return RunListing(rows, len(hashes), unreadable)


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

    if settings.is_remote:
        _require_server(settings)
    listing = list_runs(repository, limit)
    table = Table(title=f"Aim runs in {repository}")
    columns = ("hash", "experiment", "pipeline", "status", "started", "duration")
    for column in (*columns, "tracked"):
        table.add_column(column)
    for row in listing.rows:
        table.add_row(*(str(row[column]) for column in (*columns, "tracked")))
    Console(width=200).print(table)
    if listing.unreadable:
        count = len(listing.unreadable)
        click.echo(f"{count} of {listing.total} runs could not be read:", err=True)
        for run_hash, reason in sorted(listing.unreadable.items()):
            click.echo(f"  {run_hash}: {reason}", err=True)
