"""Read every run of an Aim repository and print it as JSON.

Tests run this file in a fresh process, so that what they assert is what landed
in the repository, not what the writing process still holds in memory.

Usage: python aim_reader.py REPOSITORY [REPOSITORY ...]; prints one list of runs
per repository.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

from aim import Repo
from aim.sdk.index_manager import RepoIndexManager
from aim.sdk.objects.io import wavfile

SEQUENCE_TYPES = {
    "image": "aim.image",
    "figure": "aim.figure",
    "text": "aim.text",
    "audio": "aim.audio",
    "distribution": "aim.distribution",
}


def _image(value: Any) -> dict[str, Any]:
    return {
        "width": value.width,
        "height": value.height,
        "format": value.format,
        "caption": value.caption,
    }


def _figure(value: Any) -> dict[str, Any]:
    return {"traces": [trace.type for trace in value.to_plotly_figure().data]}


def _audio(value: Any) -> dict[str, Any]:
    data = value.get().getvalue()
    described: dict[str, Any] = {
        "format": value.storage["format"],
        "caption": value.storage["caption"],
        "bytes": len(data),
    }
    if described["format"] == "wav":
        # Aim writes float samples as IEEE-float wav, which `wave` cannot read.
        rate, samples = wavfile.read(io.BytesIO(data))
        described["rate"] = int(rate)
        described["frames"] = len(samples)
    return described


def _distribution(value: Any) -> dict[str, Any]:
    return {"bin_count": value.bin_count, "total": float(sum(value.weights))}


DESCRIBE = {
    "image": _image,
    "figure": _figure,
    "text": lambda value: value.data,
    "audio": _audio,
    "distribution": _distribution,
}


def _describe(kind: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_describe(kind, item) for item in value]
    return DESCRIBE.get(kind, lambda plain: plain)(value)


def read_repository(path: str) -> list[dict[str, Any]]:
    repo = Repo.from_path(path)
    manager = RepoIndexManager.get_index_manager(repo)
    run_hashes = repo.list_all_runs()
    # Index every run before the first read: the repository caches its view of
    # the index on first use, so a run indexed after that would not be found.
    for run_hash in run_hashes:
        manager.index(run_hash)
    runs = []
    for run_hash in run_hashes:
        run = repo.get_run(run_hash)
        sequences: list[dict[str, Any]] = []
        for metric in run.metrics():
            steps, (values, *_) = metric.data.items_list()
            sequences.append(
                {
                    "type": "metric",
                    "name": metric.name,
                    "context": metric.context.to_dict(),
                    "steps": [int(s) for s in steps],
                    "values": list(values),
                }
            )
        for kind, dtype in SEQUENCE_TYPES.items():
            for name, context, _ in run.iter_sequence_info_by_type(dtype):
                getter = getattr(run, f"get_{kind}_sequence")
                sequence = getter(name, context)
                steps, (values, *_) = sequence.data.items_list()
                sequences.append(
                    {
                        "type": kind,
                        "name": name,
                        "context": context.to_dict(),
                        "steps": [int(s) for s in steps],
                        "values": [_describe(kind, v) for v in values],
                    }
                )
        runs.append(
            {
                "hash": run_hash,
                "experiment": run.experiment,
                "name": run.name,
                "description": run.description,
                "tags": list(run.props.tags),
                "params": run.get("params"),
                "kedro": run.get("kedro"),
                "active": run.active,
                "sequences": sorted(
                    sequences,
                    key=lambda s: (s["type"], s["name"], sorted(s["context"].items())),
                ),
            }
        )
    return runs


if __name__ == "__main__":
    json.dump([read_repository(path) for path in sys.argv[1:]], sys.stdout, default=str)
