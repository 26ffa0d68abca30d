"""Benchmark 4 (informational): real ``kedro run`` processes under load.

A Kedro project is generated twice in a temporary folder; the two copies differ
only in ``conf/base/aim.yml``:

* candidate (tracked): ``system_tracking_interval: null``;
* baseline (untracked): the same plus ``enabled: false``. The project still
  uses ``AimConfigLoader`` and its catalog is still rewritten into tracking
  datasets, so both sides pay the loader and the wrapper; only the Aim run
  (opening, tracking, closing) is missing from the baseline.

Every repetition starts fresh ``python -m kedro run`` processes in the project
folder, as a user does, and times them from start to exit. Scenarios:

1. ``ThreadRunner`` with 8 workers (``--runner-params max_workers=8``): 8 nodes,
   each returning 100 outputs; every output is a ``MemoryDataset`` of the
   factory ``"threads_w{worker}_{i}"`` with ``aim: {type: metric, name:
   threads}``, so 800 tracked saves from 8 threads go to one sequence.
2. ``ParallelRunner`` with 4 worker processes (``KEDRO_MP_CONTEXT=fork``): 4
   nodes of 50 outputs, each a ``pickle.PickleDataset`` file (a
   ``MemoryDataset`` does not cross processes), 200 tracked saves to the
   sequence ``processes``; workers spool them to the owning process.
3. Two ``kedro run`` of scenario 1's pipeline at once (default
   ``SequentialRunner``) into one repository, against two untracked ones.

After every tracked repetition the repository is read back in this process:
each new run is indexed (``RepoIndexManager.index``), its sequences' values
are counted and compared with the values the nodes returned (each save is a
distinct number, so a save lost or given the step of another is missed). The
landed percentage must be 100.
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from common import Result, Timing, interleave, median, spread

from kedro_aim_cfg.run import RUN_HASH_ENV
from kedro_aim_cfg.spool import SPOOL_ENV

PACKAGE = "loadbench"
RUN_TIMEOUT = 300.0
"""Seconds one repetition may take before its processes are killed."""
_DROPPED_ENV = (RUN_HASH_ENV, SPOOL_ENV, "KEDRO_LOGGING_CONFIG", "KEDRO_MP_CONTEXT")
_FRAME = set("│╭╰─") | {""}


@dataclass(frozen=True)
class Scenario:
    """One kind of ``kedro run`` measured under load.

    Attributes:
        name: The row of the table.
        label: A short name for the notes.
        pipeline: The registered pipeline, also the name of its sequence.
        workers: Nodes of the pipeline, run side by side.
        saves: Tracked outputs of each node.
        arguments: Arguments of ``kedro run``.
        processes: ``kedro run`` processes started at once.
        env: Extra environment variables of the processes.
    """

    name: str
    label: str
    pipeline: str
    workers: int
    saves: int
    arguments: tuple[str, ...]
    processes: int = 1
    env: tuple[tuple[str, str], ...] = ()

    @property
    def expected(self) -> frozenset[float]:
        """The values one run tracks: ``worker * 1000 + i`` of every save."""
        return frozenset(
            float(value(worker, i))
            for worker in range(self.workers)
            for i in range(self.saves)
        )


def value(worker: int, index: int) -> int:
    """The number a node returns as its ``index``-th output."""
    return worker * 1000 + index


THREADS = Scenario(
    name="kedro run, ThreadRunner 8x100",
    label="ThreadRunner",
    pipeline="threads",
    workers=8,
    saves=100,
    arguments=("--runner", "ThreadRunner", "--runner-params", "max_workers=8"),
)
PROCESSES = Scenario(
    name="kedro run, ParallelRunner 4x50",
    label="ParallelRunner",
    pipeline="processes",
    workers=4,
    saves=50,
    arguments=(
        "--pipelines",
        "processes",
        "--runner",
        "ParallelRunner",
        "--runner-params",
        "max_workers=4",
    ),
    env=(("KEDRO_MP_CONTEXT", "fork"),),
)
CONCURRENT = Scenario(
    name="2 concurrent kedro runs 8x100",
    label="concurrent",
    pipeline="threads",
    workers=8,
    saves=100,
    arguments=(),
    processes=2,
)

NODES = '''"""Nodes of the generated load project."""


def burst(worker, count):
    """Return ``count`` distinct numbers, one per output."""
    return tuple(float(worker * 1000 + index) for index in range(count))
'''

REGISTRY = '''"""Pipelines of the generated load project."""

from kedro.pipeline import Pipeline, node

from {package}.nodes import burst


def _burst(name, workers, count):
    return Pipeline(
        [
            node(
                burst,
                [f"params:{{name}}.w{{worker}}", f"params:{{name}}.count"],
                [f"{{name}}_w{{worker}}_{{i}}" for i in range(count)],
                name=f"{{name}}_{{worker}}",
            )
            for worker in range(workers)
        ]
    )


def register_pipelines():
    threads = _burst("threads", {threads.workers}, {threads.saves})
    return {{
        "__default__": threads,
        "threads": threads,
        "processes": _burst("processes", {processes.workers}, {processes.saves}),
    }}
'''

# Kedro's default logging (its rich handler), the same on both sides.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "rich": {"class": "kedro.logging.RichHandler", "rich_tracebacks": True}
    },
    "loggers": {
        "kedro": {"level": "INFO"},
    },
    "root": {"handlers": ["rich"]},
}


def write_project(root: Path, *, tracked: bool) -> None:
    """Write the load project into ``root``, with tracking on or off.

    Args:
        root: An empty or missing folder.
        tracked: ``False`` writes ``enabled: false`` into ``aim.yml``.
    """
    package = root / "src" / PACKAGE
    package.mkdir(parents=True)
    (root / "conf" / "base").mkdir(parents=True)
    (root / "conf" / "local").mkdir()
    (root / "pyproject.toml").write_text(
        "[tool.kedro]\n"
        f'package_name = "{PACKAGE}"\n'
        f'project_name = "{PACKAGE}"\n'
        'kedro_init_version = "1.7.0"\n'
        'source_dir = "src"\n'
    )
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(
        "from kedro_aim_cfg import AimConfigLoader\n\n"
        "CONFIG_LOADER_CLASS = AimConfigLoader\n"
    )
    (package / "nodes.py").write_text(NODES)
    (package / "pipeline_registry.py").write_text(
        REGISTRY.format(package=PACKAGE, threads=THREADS, processes=PROCESSES)
    )
    catalog = {
        "threads_w{worker}_{i}": {
            "type": "MemoryDataset",
            "aim": {"type": "metric", "name": "threads"},
        },
        "processes_w{worker}_{i}": {
            "type": "pickle.PickleDataset",
            "filepath": "data/processes/{worker}_{i}.pkl",
            "aim": {"type": "metric", "name": "processes"},
        },
    }
    parameters = {
        scenario.pipeline: {
            "count": scenario.saves,
            **{f"w{worker}": worker for worker in range(scenario.workers)},
        }
        for scenario in (THREADS, PROCESSES)
    }
    settings: dict[str, Any] = {"system_tracking_interval": None}
    if not tracked:
        settings = {"enabled": False, **settings}
    files = {
        "base/catalog.yml": catalog,
        "base/parameters.yml": parameters,
        "base/aim.yml": settings,
        "logging.yml": LOGGING,
    }
    for name, content in files.items():
        text = yaml.safe_dump(content, sort_keys=False)
        (root / "conf" / name).write_text(text)


@dataclass
class Side:
    """One copy of the project and what its repetitions left.

    Attributes:
        root: The project folder; a tracked project's repository is its ``.aim``.
        tracked: Whether ``aim.yml`` enables tracking.
        logs: The folder of the processes' output.
        seen: Runs of the repository already counted.
        failures: Processes that did not end with exit code 0.
    """

    root: Path
    tracked: bool
    logs: Path
    seen: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


def _environment(scenario: Scenario) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env["KEDRO_DISABLE_TELEMETRY"] = "true"
    env.update(scenario.env)
    return env


def _children_cpu() -> float:
    """CPU seconds of every child process waited for so far, their own included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill a ``kedro run`` started here and the workers it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: only its group
    except ProcessLookupError:
        pass
    process.wait()


def _tail(log: Path, lines: int = 3) -> str:
    """The last lines of a log that are not the frame of a rich traceback."""
    text = log.read_text(errors="replace").splitlines()
    kept = [line.strip() for line in text if line.strip()[:1] not in _FRAME]
    return " | ".join(kept[-lines:])


def launch(side: Side, scenario: Scenario, tag: str) -> Timing:
    """Start the scenario's ``kedro run`` processes and wait for all of them.

    Args:
        side: The project to run.
        scenario: What to run, and how many processes at once.
        tag: Names the log files of this repetition.

    Returns:
        Wall time from the first start to the last exit, and CPU time of the
        processes (their worker processes included).
    """
    command = [sys.executable, "-m", "kedro", "run", *scenario.arguments]
    env = _environment(scenario)
    logs = [
        side.logs / f"{scenario.label}-{tag}-{k}.log" for k in range(scenario.processes)
    ]
    processes: list[subprocess.Popen[bytes]] = []
    cpu = _children_cpu()
    wall = time.perf_counter()
    try:
        for log in logs:
            with log.open("wb") as output:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=side.root,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = wall + RUN_TIMEOUT
        codes: list[int | str] = []
        for process in processes:
            try:
                left = max(deadline - time.perf_counter(), 0.1)
                codes.append(process.wait(timeout=left))
            except subprocess.TimeoutExpired:
                _kill(process)
                codes.append(f"killed after {RUN_TIMEOUT:.0f} s")
    finally:
        for process in processes:
            if process.poll() is None:
                _kill(process)
    timing = Timing(time.perf_counter() - wall, _children_cpu() - cpu)
    for log, code in zip(logs, codes, strict=True):
        if code != 0:
            side.failures.append(f"{log.name}: exit {code}: {_tail(log)}")
    return timing


@dataclass
class Landing:
    """What one tracked repetition left in the repository.

    Attributes:
        expected: Values the repetition's runs should hold.
        landed: Expected values found, each counted once per run.
        runs: New runs found.
        problems: Anything else wrong: missing or extra runs, status, steps.
    """

    expected: int
    landed: int = 0
    runs: int = 0
    problems: list[str] = field(default_factory=list)


def _read_run(repo: Any, run_hash: str, scenario: Scenario, landing: Landing) -> None:
    """Count what one run holds of the scenario's values into ``landing``."""
    run = repo.get_run(run_hash)
    if run is None:
        landing.problems.append(f"run {run_hash} is not in the index")
        return
    values: list[float] = []
    steps: list[int] = []
    for metric in run.metrics():
        found_steps, (found, *_) = metric.data.items_list()
        if metric.name != scenario.pipeline or metric.context.to_dict():
            landing.problems.append(
                f"run {run_hash}: unexpected sequence {metric.name} "
                f"{metric.context.to_dict()} ({len(found)} values)"
            )
            continue
        values.extend(float(v) for v in found)
        steps.extend(int(s) for s in found_steps)
    expected = scenario.expected
    landing.landed += len(expected & set(values))
    if sorted(steps) != list(range(len(expected))):
        landing.problems.append(
            f"run {run_hash}: {len(steps)} steps, "
            f"{len(set(steps))} distinct, not 0..{len(expected) - 1}"
        )
    kedro = run.get("kedro") or {}
    if kedro.get("status") != "finished" or run.active:
        landing.problems.append(
            f"run {run_hash}: status {kedro.get('status')}, active {run.active}"
        )
    if kedro.get("tracked") != {"metric": len(expected)} or kedro.get("not_tracked"):
        landing.problems.append(
            f"run {run_hash}: kedro.tracked {kedro.get('tracked')}, "
            f"not_tracked {kedro.get('not_tracked')}"
        )


def count_landed(side: Side, scenario: Scenario) -> Landing:
    """Read the runs the last repetition added to the repository.

    The repository, its index manager and every run read are released before
    returning, so that nothing of Aim holds the folder afterwards.
    """
    from aim import Repo
    from aim.sdk.index_manager import RepoIndexManager

    landing = Landing(expected=scenario.processes * len(scenario.expected))
    repo = Repo.from_path(str(side.root))
    manager = RepoIndexManager.get_index_manager(repo)
    try:
        new = sorted(set(repo.list_all_runs()) - side.seen)
        side.seen.update(new)
        landing.runs = len(new)
        if len(new) != scenario.processes:
            landing.problems.append(
                f"{len(new)} new run(s) instead of {scenario.processes}"
            )
        # Index every new run before reading any: the first read fixes which
        # runs the repository's reader sees.
        for run_hash in new:
            manager.index(run_hash)
        for run_hash in new:
            try:
                _read_run(repo, run_hash, scenario, landing)
            except Exception as exc:  # a run that cannot be read did not land
                problem = f"run {run_hash} unreadable: {type(exc).__name__}: {exc}"
                landing.problems.append(problem)
    finally:
        release_repository(repo, manager)
        del manager, repo
        gc.collect()
    return landing


def release_repository(repo: Any, manager: Any = None) -> None:
    """Let go of everything of a repository opened in this process.

    The index manager's file watchers are stopped and the manager is dropped
    from Aim's pool of managers (which would keep the repository for good);
    the SQLite connections of the run metadata are closed with SQLAlchemy's
    own calls, as ``Repo.close`` leaves them open. Aim's short-lived cache of
    ``list_all_runs`` still refers to the closed ``Repo`` until that cache is
    next used, but the object then holds no file and no lock.
    """
    from aim.sdk.index_manager import RepoIndexManager

    if manager is not None:
        manager.stop()
        RepoIndexManager.index_manager_pool.pop(repo.path, None)
    database = repo.structured_db
    if database is not None:
        database.session_cls.remove()
        database.engine.dispose()
    repo.close()


def create_repository(root: Path) -> None:
    """Create the tracked project's repository before timing, as a user has one.

    Creating one takes a second or two, which would otherwise fall on the first
    tracked repetition.
    """
    from aim import Repo

    repo = Repo.from_path(str(root), init=True)
    release_repository(repo)
    del repo
    gc.collect()


def measure(scenario: Scenario, repetitions: int, base: Side, cand: Side) -> Result:
    """Time ``repetitions`` of each side, interleaved, and check what landed.

    Args:
        scenario: What to run.
        repetitions: Repetitions of each side.
        base: The untracked project.
        cand: The tracked project.

    Returns:
        The result, in seconds per repetition (all its processes).
    """
    landings: list[Landing] = []
    base.failures.clear()
    cand.failures.clear()

    def baseline(index: int) -> Timing:
        return launch(base, scenario, f"base{index}")

    def candidate(index: int) -> Timing:
        timing = launch(cand, scenario, f"cand{index}")
        landings.append(count_landed(cand, scenario))
        return timing

    base_t, cand_t = interleave(baseline, candidate, repetitions)
    base_s = [t.wall for t in base_t]
    cand_s = [t.wall for t in cand_t]
    base_cpu = [t.cpu for t in base_t]
    cand_cpu = [t.cpu for t in cand_t]

    expected = sum(landing.expected for landing in landings)
    landed = sum(landing.landed for landing in landings)
    runs = sum(landing.runs for landing in landings)
    percent = 100.0 * landed / expected if expected else 0.0
    problems = [p for landing in landings for p in landing.problems]
    problems += [f"tracked {failure}" for failure in cand.failures]
    problems += [f"untracked {failure}" for failure in base.failures]
    what = (
        f"landed {percent:.1f}% ({landed}/{expected} values in {runs} run(s) "
        f"of {repetitions} tracked repetition(s)"
    )
    failures: list[str] = []
    if landed == expected and not problems:
        landed_note = (
            f"{scenario.label}: {what}; each run finished, its sequence "
            f"'{scenario.pipeline}' at steps 0..{len(scenario.expected) - 1})."
        )
    else:
        landed_note = f"FAIL {scenario.label}: {what})."
        failures = [f"{scenario.label}: {what})", *problems]
    notes = [landed_note, *(f"FAIL {scenario.label}: {p}" for p in problems)]
    notes.append(
        f"{scenario.label}: {repetitions} repetitions of {scenario.processes} "
        f"process(es) each side; wall s base {spread(base_s)}, cand "
        f"{spread(cand_s)}; cpu s base {spread(base_cpu)}, cand {spread(cand_cpu)}."
    )
    return Result(
        name=scenario.name,
        unit="s",
        baseline=median(base_s),
        candidate=median(cand_s),
        target=None,
        baseline_runs=base_s,
        candidate_runs=cand_s,
        cpu_ratio=median(cand_cpu) / median(base_cpu) if any(base_cpu) else None,
        notes=notes,
        failures=failures,
    )


def run(
    thread_reps: int, process_reps: int, concurrent_reps: int, folder: Path
) -> list[Result]:
    """Measure the three scenarios; return one result for each.

    Args:
        thread_reps: Repetitions of each side of the ``ThreadRunner`` scenario.
        process_reps: Repetitions of each side of the ``ParallelRunner`` one.
        concurrent_reps: Repetitions of each side of the concurrent runs.
        folder: An empty folder for the two projects and their logs. Aim holds
            nothing in it once this returns.
    """
    base = Side(folder / "untracked", tracked=False, logs=folder / "logs")
    cand = Side(folder / "tracked", tracked=True, logs=folder / "logs")
    base.logs.mkdir()
    for side in (base, cand):
        write_project(side.root, tracked=side.tracked)
    create_repository(cand.root)

    plan = ((THREADS, thread_reps), (PROCESSES, process_reps))
    results = [measure(s, reps, base, cand) for s, reps in plan]
    results.append(measure(CONCURRENT, concurrent_reps, base, cand))

    fair = not (base.root / ".aim").exists() and not any(
        "Tracking into Aim run" in log.read_text(errors="replace")
        for log in base.logs.glob("*-base*.log")
    )
    results[0].notes.insert(
        0,
        "load: baseline is the same project with enabled: false in aim.yml "
        "(same AimConfigLoader and catalog rewrite, no Aim run); it "
        + ("opened no run and created no repository." if fair else "OPENED A RUN."),
    )
    if not fair:
        results[0].failures.append("the untracked baseline opened an Aim run")
    return results
