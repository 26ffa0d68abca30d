"""Benchmark 2: a tracked image save against a plain save plus a bare Aim track.

Candidate: ``AimTrackingDataset`` wrapping ``pillow.ImageDataset``, saving a
256x256 RGB PIL image inside ``tracking_run({"system_tracking_interval": None},
project_path=tmp/candidate)``. Every save overwrites the same PNG file and
tracks the image at the next step of one sequence.

Baseline: the same ``pillow.ImageDataset`` save (same PNG file, overwritten)
followed by ``run.track(aim.Image(image), name=..., step=i)`` on a bare
``aim.Run`` in a local repository of the same kind (created with
``Repo.from_path(init=True)``, system tracking off, no terminal log capture,
no system parameters), with ``i`` counted by hand.

Both runs stay open for the whole benchmark, so both sequences grow alike;
a repetition times a block of saves of each side, interleaved.
"""

from __future__ import annotations

import filecmp
import gc
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import (
    Result,
    Timing,
    frozen_heap,
    interleave,
    median,
    spread,
    time_once,
)
from PIL import Image as PILImage

from kedro_aim_cfg import AimTrackingDataset, tracking_run

TARGET = 1.05
SEQUENCE = "bench_image"
SIZE = 256


def make_image() -> PILImage.Image:
    """A 256x256 RGB image: smooth gradients with some noise, like a plot."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, SIZE, dtype=np.float64)
    pixels = np.stack(
        [
            np.add.outer(ramp, ramp) / 2,
            np.tile(ramp, (SIZE, 1)),
            np.tile(ramp[:, None], (1, SIZE)),
        ],
        axis=-1,
    )
    pixels += rng.normal(0, 8, pixels.shape)
    return PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


@dataclass
class SavePair:
    """The two save loops over one image, and what they wrote.

    Attributes:
        baseline: Saves ``n`` times with the plain dataset plus a bare track.
        candidate: Saves ``n`` times with the tracking dataset.
        baseline_file: The PNG the baseline overwrites.
        candidate_file: The PNG the candidate overwrites.
        baseline_steps: How many images the baseline tracked.
        tracker: The candidate's tracker, for its counts.
    """

    baseline: Callable[[int], None]
    candidate: Callable[[int], None]
    baseline_file: Path
    candidate_file: Path
    baseline_steps: Callable[[], int]
    tracker: object


@contextmanager
def save_pair(folder: Path) -> Iterator[SavePair]:
    """Open both runs under ``folder`` and yield the two save loops.

    Args:
        folder: An empty folder; ``baseline/`` and ``candidate/`` go under it.

    Yields:
        The loops; both runs are closed on exit.
    """
    import aim
    from kedro_datasets.pillow import ImageDataset

    image = make_image()
    base_dir, cand_dir = folder / "baseline", folder / "candidate"
    base_file = base_dir / "data" / "image.png"
    cand_file = cand_dir / "data" / "image.png"

    plain = ImageDataset(filepath=str(base_file))
    base_dir.mkdir(parents=True)
    aim.Repo.from_path(str(base_dir), init=True)
    bare = aim.Run(
        repo=str(base_dir),
        system_tracking_interval=None,
        log_system_params=False,
        capture_terminal_logs=False,
    )
    runs = [bare]
    steps = itertools.count()
    done = [0]

    def baseline(n: int) -> None:
        for _ in range(n):
            plain.save(image)
            runs[0].track(aim.Image(image), name=SEQUENCE, step=next(steps))
        done[0] += n

    tracked = AimTrackingDataset(
        dataset={"type": "pillow.ImageDataset", "filepath": str(cand_file)},
        aim={"type": "image", "name": SEQUENCE},
        entry=SEQUENCE,
    )

    def candidate(n: int) -> None:
        for _ in range(n):
            tracked.save(image)

    try:
        settings = {"system_tracking_interval": None}
        with tracking_run(settings, project_path=cand_dir) as tracker:
            yield SavePair(
                baseline, candidate, base_file, cand_file, lambda: done[0], tracker
            )
    finally:
        runs[0].close()
        # Aim flushes a run's files when its last reference goes, which must
        # happen while the folder still exists.
        runs.clear()
        del bare
        release_aim(folder)


def release_aim(folder: Path) -> None:
    """Close the repositories under ``folder`` now, while it still exists.

    Aim otherwise flushes them from an exit hook, after the temporary folder is
    gone; the flush then fails and the hook waits forever for it.
    """
    from aim import Repo

    gc.collect()
    for side in ("baseline", "candidate"):
        Repo.from_path(str(folder / side)).close()


def check_same_work(pair: SavePair) -> str:
    """Check that both sides wrote the same file and tracked as many images.

    Raises:
        AssertionError: One of the checks failed.
    """
    tracker = pair.tracker
    tracked = tracker.counts["image"]  # type: ignore[attr-defined]
    assert not tracker.failures, tracker.failures  # type: ignore[attr-defined]
    assert tracked == pair.baseline_steps(), (tracked, pair.baseline_steps())
    assert filecmp.cmp(pair.baseline_file, pair.candidate_file, shallow=False)
    return (
        f"save: both sides tracked {tracked} images at steps 0..{tracked - 1} and "
        f"wrote byte-identical PNGs ({pair.candidate_file.stat().st_size} B)."
    )


def run(repetitions: int, saves: int, folder: Path) -> Result:
    """Time ``repetitions`` blocks of ``saves`` saves of each side, interleaved.

    Args:
        repetitions: Blocks of each side.
        saves: Saves per block; the reported figure is per save.
        folder: An empty folder for the repositories and images.

    Returns:
        The result, in milliseconds per save.
    """
    with save_pair(folder) as pair:
        pair.baseline(3)  # warm-up: plugin loading, first writes
        pair.candidate(3)

        def baseline(_: int) -> Timing:
            return time_once(lambda: pair.baseline(saves))

        def candidate(_: int) -> Timing:
            return time_once(lambda: pair.candidate(saves))

        with frozen_heap():
            base, cand = interleave(baseline, candidate, repetitions)
        checked = check_same_work(pair)

    base_ms = [t.wall * 1e3 / saves for t in base]
    cand_ms = [t.wall * 1e3 / saves for t in cand]
    cpu_ratio = median([t.cpu for t in cand]) / median([t.cpu for t in base])
    return Result(
        name="tracked image save",
        unit="ms/save",
        baseline=median(base_ms),
        candidate=median(cand_ms),
        target=TARGET,
        baseline_runs=base_ms,
        candidate_runs=cand_ms,
        cpu_ratio=cpu_ratio,
        notes=[
            checked,
            f"save: {repetitions} blocks of {saves} saves each side; wall ms/save "
            f"base {spread(base_ms)}, cand {spread(cand_ms)}.",
        ],
    )
