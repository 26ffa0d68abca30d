"""Run every benchmark of kedro-aim-cfg and print candidate / baseline ratios.

Each candidate is measured against a baseline in the same run, alternating
repetitions of the two, and compared by the ratio of their medians. Timing is
never asserted: the exit code is 0 even when a ratio is over its target.

Usage::

    python benchmarks/run.py            # full run, about five minutes on 2 cores
    python benchmarks/run.py --quick    # fewer repetitions, for a smoke check
    python benchmarks/run.py --only save memory
    python benchmarks/run.py --only load
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
# Kedro registers its resolvers with an OmegaConf call that OmegaConf 2.4 deprecates;
# every fresh loader would repeat the warning.
warnings.filterwarnings("ignore", message="register_new_resolver", category=Warning)

import bench_load  # noqa: E402
import bench_loader  # noqa: E402
import bench_memory  # noqa: E402
import bench_save  # noqa: E402
from common import Result  # noqa: E402


@dataclass(frozen=True)
class Plan:
    """How many repetitions each benchmark makes."""

    loader_reps: int
    save_reps: int
    save_block: int
    memory_reps: int
    memory_block: int
    rss_reps: int
    rss_saves: int
    load_thread_reps: int
    load_process_reps: int
    load_concurrent_reps: int


FULL = Plan(
    loader_reps=7,
    save_reps=61,
    save_block=2,
    memory_reps=5,
    memory_block=4,
    rss_reps=2,
    rss_saves=20,
    load_thread_reps=5,
    load_process_reps=5,
    load_concurrent_reps=3,
)
QUICK = Plan(
    loader_reps=2,
    save_reps=11,
    save_block=2,
    memory_reps=3,
    memory_block=4,
    rss_reps=1,
    rss_saves=10,
    load_thread_reps=2,
    load_process_reps=2,
    load_concurrent_reps=1,
)
BENCHMARKS = ("loader", "save", "memory", "load")


def _versions() -> str:
    from importlib.metadata import version

    names = ("kedro", "kedro-datasets", "aim", "omegaconf", "pydantic", "pillow")
    found = ", ".join(f"{name} {version(name)}" for name in names)
    return (
        f"Python {platform.python_version()}, {found}; "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def _busy() -> bool:
    """Whether other processes kept the CPUs busy, which makes timings noisy."""
    try:
        return os.getloadavg()[1] > 0.75 * (os.cpu_count() or 1) + 1
    except OSError:
        return False


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if value < 1000 else f"{value:,.0f}"


def print_table(results: list[Result]) -> None:
    """Print the results as a table, then their notes."""
    header = (
        "benchmark",
        "unit",
        "baseline",
        "candidate",
        "ratio",
        "paired",
        "cpu",
        "target",
        "",
    )
    rows = [
        (
            r.name,
            r.unit,
            _fmt(r.baseline),
            _fmt(r.candidate),
            f"{r.ratio:.3f}",
            f"{r.paired:.3f}" if r.paired is not None else "-",
            f"{r.cpu_ratio:.3f}" if r.cpu_ratio is not None else "-",
            f"<= {r.target:.2f}" if r.target is not None else "-",
            r.verdict,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    align = ["<", "<", ">", ">", ">", ">", ">", ">", "<"]

    def line(row: tuple[str, ...]) -> str:
        cells = (f"{c:{a}{w}}" for c, a, w in zip(row, align, widths, strict=True))
        return "  ".join(cells).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    print(
        "\nbaseline, candidate: medians (wall time for timings). ratio: candidate "
        "/ baseline, judged\nagainst target. paired: median of per-repetition "
        "ratios. cpu: ratio of CPU-time medians."
    )
    for result in results:
        for note in result.notes:
            print(f"  - {note}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks and print the report; always returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions (noisier)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS)
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    print(f"kedro-aim-cfg benchmarks ({'quick' if args.quick else 'full'} run)")
    print(_versions())
    print(f"at start: {_load()}")
    started = time.perf_counter()
    results: list[Result] = []
    busy = _busy()
    with tempfile.TemporaryDirectory(prefix="kedro-aim-cfg-bench-") as tmp:
        for name in (n for n in BENCHMARKS if n in args.only):
            section = time.perf_counter()
            print(f"... {name}", end="", flush=True)
            if name == "loader":
                results.append(bench_loader.run(plan.loader_reps))
            elif name == "save":
                folder = Path(tmp) / "save"
                folder.mkdir()
                results.append(bench_save.run(plan.save_reps, plan.save_block, folder))
            elif name == "load":
                folder = Path(tmp) / "load"
                folder.mkdir()
                results.extend(
                    bench_load.run(
                        plan.load_thread_reps,
                        plan.load_process_reps,
                        plan.load_concurrent_reps,
                        folder,
                    )
                )
            else:
                results.extend(
                    bench_memory.run(
                        plan.memory_reps,
                        plan.memory_block,
                        plan.rss_reps,
                        plan.rss_saves,
                    )
                )
            busy = busy or _busy()
            print(f" {time.perf_counter() - section:.0f} s", flush=True)

    print()
    print_table(results)
    over = [r for r in results if r.verdict == "OVER"]
    failed = [r for r in results if r.failures]
    elapsed = time.perf_counter() - started
    print()
    for result in failed:
        print(f"FAIL {result.name}: {result.failures[0]} (more in the notes).")
    if over:
        names = ", ".join(f"{r.name} ({r.ratio:.3f} > {r.target})" for r in over)
        print(f"OVER TARGET: {names}. Measurement only; exit code stays 0.")
    else:
        print("All ratios with a target are within it.")
    print(f"Total time {elapsed:.0f} s; at end: {_load()}.")
    if busy:
        print(
            "WARNING: other processes kept the CPUs busy during this run; wall "
            "times are noisy. Compare the paired and cpu columns, or run again "
            "on a quiet machine."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
