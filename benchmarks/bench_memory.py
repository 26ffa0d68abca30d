"""Benchmark 3 (informational): memory of the tracked save loop vs the baseline.

Two measures of the same loops as :mod:`bench_save`:

* tracemalloc peak: in this process, the peak of Python allocations made during
  a block of saves (``tracemalloc`` started just before the block), interleaved
  and repeated. It sees Python objects and buffers, not memory that Pillow,
  RocksDB or zlib allocate in C.
* peak RSS growth: in a fresh interpreter per measurement (so that neither side
  inherits the other's heap), the peak resident set size during the block
  minus the resident set size just before it. The peak is reset through
  ``/proc/self/clear_refs``; where that is not allowed, ``ru_maxrss`` is used
  and the growth can read low.

Run as a script, it is the child process of the RSS measure::

    python benchmarks/bench_memory.py --rss candidate --saves 40
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import resource
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

from bench_save import save_pair
from common import Result, frozen_heap, interleave, median

HERE = Path(__file__).resolve().parent
STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak() -> bool:
    """Reset the kernel's peak RSS of this process; return whether it could."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(side: str, saves: int) -> dict[str, object]:
    """Measure the peak RSS growth of ``saves`` saves of one side, here.

    Both runs are opened, as in the timed benchmark, and both sides are warmed
    up; only ``side`` is measured.
    """
    with (
        tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp,
        save_pair(Path(tmp)) as pair,
    ):
        pair.baseline(3)
        pair.candidate(3)
        loop = pair.candidate if side == "candidate" else pair.baseline
        gc.collect()
        before = _status_kib("VmRSS") or _max_rss_kib()
        exact = _reset_peak() and _status_kib("VmHWM") is not None
        loop(saves)
        peak = _status_kib("VmHWM") if exact else _max_rss_kib()
    return {"growth_kib": max(int(peak or 0) - before, 0), "exact": exact}


def _rss_in_child(side: str, saves: int) -> tuple[float, bool]:
    command = [sys.executable, str(HERE / "bench_memory.py"), "--rss", side]
    output = subprocess.run(
        [*command, "--saves", str(saves)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return float(result["growth_kib"]), bool(result["exact"])


def _tracemalloc_peak(loop: object, saves: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        loop(saves)  # type: ignore[operator]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1024


def run(
    repetitions: int, saves: int, rss_repetitions: int, rss_saves: int
) -> list[Result]:
    """Measure both memory figures; return one result for each.

    Args:
        repetitions: tracemalloc blocks of each side, interleaved.
        saves: Saves per tracemalloc block.
        rss_repetitions: Child processes of each side, interleaved.
        rss_saves: Saves measured in each child process.
    """
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp,
        save_pair(Path(tmp)) as pair,
    ):
        pair.baseline(3)
        pair.candidate(3)
        with frozen_heap():
            base, cand = interleave(
                lambda _: _tracemalloc_peak(pair.baseline, saves),
                lambda _: _tracemalloc_peak(pair.candidate, saves),
                repetitions,
            )
    traced = Result(
        name="tracemalloc peak, save loop",
        unit="KiB",
        baseline=median(base),
        candidate=median(cand),
        target=None,
        baseline_runs=base,
        candidate_runs=cand,
        notes=[
            f"memory: tracemalloc peak of a block of {saves} saves, {repetitions} "
            "blocks each side (Python allocations only)."
        ],
    )

    rss_base, rss_cand = interleave(
        lambda _: _rss_in_child("baseline", rss_saves),
        lambda _: _rss_in_child("candidate", rss_saves),
        rss_repetitions,
    )
    exact = all(e for _, e in rss_base + rss_cand)
    base_kib = [g for g, _ in rss_base]
    cand_kib = [g for g, _ in rss_cand]
    rss = Result(
        name="peak RSS growth, save loop",
        unit="KiB",
        baseline=median(base_kib),
        candidate=median(cand_kib),
        target=None,
        baseline_runs=base_kib,
        candidate_runs=cand_kib,
        notes=[
            f"memory: peak RSS growth over {rss_saves} saves, one fresh process per "
            f"measurement, {rss_repetitions} each side; KiB base {base_kib}, "
            f"cand {cand_kib}; peak reset "
            + ("via clear_refs." if exact else "unavailable: ru_maxrss used.")
        ],
    )
    return [traced, rss]


def main() -> None:
    """Entry point of the RSS child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss", choices=["baseline", "candidate"], required=True)
    parser.add_argument("--saves", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(rss_child(args.rss, args.saves)))


if __name__ == "__main__":
    main()
