"""Shared helpers of the benchmarks: interleaved timing, medians and results."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Result:
    """One line of the report: a candidate measured against its baseline.

    Attributes:
        name: What was measured.
        unit: Unit of the two medians, such as ``ms`` or ``KiB``.
        baseline: Median of the baseline repetitions.
        candidate: Median of the candidate repetitions.
        target: Highest acceptable ratio, or ``None`` when informational.
        baseline_runs: Every baseline repetition, for the spread.
        candidate_runs: Every candidate repetition, for the spread.
        cpu_ratio: The ratio of the medians in CPU time, when measured.
        notes: Extra lines printed under the table.
        failures: What the candidate got wrong besides its timing, such as
            tracked values that did not land; any makes the verdict ``FAIL``.
    """

    name: str
    unit: str
    baseline: float
    candidate: float
    target: float | None
    baseline_runs: list[float] = field(default_factory=list)
    candidate_runs: list[float] = field(default_factory=list)
    cpu_ratio: float | None = None
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def paired(self) -> float | None:
        """Median of the per-repetition ratios, when repetitions are paired."""
        if not self.baseline_runs or not self.candidate_runs:
            return None
        return paired_ratio(self.baseline_runs, self.candidate_runs)

    @property
    def ratio(self) -> float:
        """Candidate median over baseline median."""
        if self.baseline == 0:
            return float("inf") if self.candidate else 1.0
        return self.candidate / self.baseline

    @property
    def verdict(self) -> str:
        """``FAIL`` on a failure, else ``PASS`` or ``OVER`` against the target.

        Without a target, ``info``.
        """
        if self.failures:
            return "FAIL"
        if self.target is None:
            return "info"
        return "PASS" if self.ratio <= self.target else "OVER"


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """Minimum and maximum of the repetitions, for the notes."""
    return f"{min(values):.3f}..{max(values):.3f}"


@dataclass(frozen=True)
class Timing:
    """Wall-clock and CPU seconds of one measurement."""

    wall: float
    cpu: float


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Move every object alive now out of the collector's reach, for a while.

    With kedro, aim and their dependencies imported, a full collection takes
    a few hundred milliseconds; frozen, it only walks what the benchmark made
    since, so :func:`time_once` can collect before every measurement cheaply.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def time_once(function: Callable[[], object]) -> Timing:
    """Run ``function`` once after a collection; return the time taken.

    The garbage collector stays on while timing, so a candidate that creates
    more objects also pays for collecting them. CPU time (of all threads of the
    process) is kept next to wall time: it does not count the time the process
    waits for a CPU that other processes hold.
    """
    gc.collect()
    cpu = time.process_time()
    wall = time.perf_counter()
    function()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def interleave(
    baseline: Callable[[int], T],
    candidate: Callable[[int], T],
    repetitions: int,
) -> tuple[list[T], list[T]]:
    """Measure baseline and candidate alternately, ``repetitions`` times each.

    The order flips every repetition (B C, C B, B C, ...) so that a slow drift
    of the machine, or a warm cache left by the previous call, does not favour
    either side.

    Args:
        baseline: Takes the repetition index, returns one measurement.
        candidate: Takes the repetition index, returns one measurement.
        repetitions: How many measurements of each.

    Returns:
        The baseline measurements and the candidate measurements.
    """
    base: list[T] = []
    cand: list[T] = []
    for index in range(repetitions):
        if index % 2 == 0:
            base.append(baseline(index))
            cand.append(candidate(index))
        else:
            cand.append(candidate(index))
            base.append(baseline(index))
    return base, cand


def paired_ratio(baseline: list[float], candidate: list[float]) -> float:
    """Median of the per-repetition ratios candidate / baseline.

    Each pair was measured back to back, so this cancels slow drifts of the
    machine that the ratio of the two medians does not.
    """
    return median([c / b for b, c in zip(baseline, candidate, strict=True) if b])
