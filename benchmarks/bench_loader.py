"""Benchmark 1: ``AimConfigLoader(conf)["catalog"]`` over ``OmegaConfigLoader``.

A configuration folder is generated in a temporary directory: a catalog of
2,000 entries, 500 of them with an ``aim:`` block (metrics, metric, image,
figure and text; with contexts, names, image ``save_args``, versioned entries,
metadata and a few dataset factory patterns). The entries are split over three
catalog files in ``conf/base`` (one in a ``catalog/`` subfolder) and one in
``conf/local``, which adds 200 entries and overrides 50 of ``base``; a quarter
of the file paths interpolate ``${globals:...}``.

Each repetition builds a fresh loader of each class (construction is *not*
timed; it reads ``globals`` only) and times one ``loader["catalog"]``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from common import (
    Result,
    Timing,
    frozen_heap,
    interleave,
    median,
    spread,
    time_once,
)
from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from kedro_aim_cfg import AimConfigLoader
from kedro_aim_cfg.dataset import DATASET_TYPE
from kedro_aim_cfg.loader import rewrite_catalog

ENTRIES = 2_000
TRACKED = 500
BASE_ENTRIES = 1_800
LOCAL_OVERRIDES = 50
TARGET = 1.05
LOADER_ARGS: dict[str, Any] = {"base_env": "base", "default_run_env": "local"}

_PLAIN_TYPES = (
    ("pandas.CSVDataset", "csv", {"load_args": {"sep": ","}}),
    ("pandas.ParquetDataset", "parquet", {}),
    ("pickle.PickleDataset", "pkl", {"backend": "pickle"}),
    ("json.JSONDataset", "json", {"save_args": {"indent": 2}}),
)
_SUBSETS = ("train", "validation", "test")


def _aim_entry(index: int, root: str) -> dict[str, Any]:
    """One tracked entry; the artifact type cycles through five kinds."""
    context: dict[str, Any] = {"subset": _SUBSETS[index % 3], "fold": index % 5}
    kind = index % 10
    if kind < 3:
        entry: dict[str, Any] = {
            "type": "json.JSONDataset",
            "filepath": f"{root}/08_reporting/metrics_{index}.json",
            "save_args": {"indent": 2},
            "aim": {"type": "metrics", "context": context},
        }
    elif kind == 3:
        entry = {
            "type": "MemoryDataset",
            "aim": {"type": "metric", "name": f"score_{index}", "context": context},
        }
    elif kind < 7:
        fmt = "jpeg" if index % 2 else "png"
        entry = {
            "type": "pillow.ImageDataset",
            "filepath": f"{root}/08_reporting/image_{index}.{fmt[:3]}",
            "aim": {
                "type": "image",
                "context": context,
                "save_args": {
                    "format": fmt,
                    "caption": f"image {index}",
                    "quality": 80 + index % 20,
                },
            },
        }
    elif kind < 9:
        dataset = "plotly.JSONDataset" if index % 2 else "matplotlib.MatplotlibDataset"
        suffix = "json" if index % 2 else "png"
        entry = {
            "type": dataset,
            "filepath": f"{root}/08_reporting/figure_{index}.{suffix}",
            "aim": {"type": "figure", "name": f"figure_{index}", "context": context},
        }
    else:
        entry = {
            "type": "text.TextDataset",
            "filepath": f"{root}/08_reporting/report_{index}.txt",
            "aim": {"type": "text", "context": {**context, "kind": "report"}},
        }
    if index % 7 == 0 and entry["type"] != "MemoryDataset":
        entry["versioned"] = True
    if index % 11 == 0:
        entry["metadata"] = {"kedro-viz": {"layer": "reporting"}}
    return entry


def _plain_entry(index: int, root: str) -> dict[str, Any]:
    """One untracked entry of an ordinary kedro-datasets type."""
    kind, suffix, extra = _PLAIN_TYPES[index % len(_PLAIN_TYPES)]
    entry: dict[str, Any] = {
        "type": kind,
        "filepath": f"{root}/0{1 + index % 7}_layer/table_{index}.{suffix}",
        **extra,
    }
    if index % 9 == 0:
        entry["versioned"] = True
    return entry


def _entries(interpolated: str) -> list[tuple[str, dict[str, Any]]]:
    """All entries, every fourth one tracked; the last few are factory patterns.

    A quarter of the file paths start with the ``interpolated`` root, the rest
    with a literal one.
    """
    entries = []
    patterns = 0
    for index in range(ENTRIES):
        root = interpolated if index % 8 in (0, 1) else "data"
        if index % (ENTRIES // TRACKED) == 0:
            config = _aim_entry(index, root)
            name = f"tracked_{index}"
            if index >= ENTRIES - 80 and patterns < 10:
                patterns += 1
                name = f"{{split}}_tracked_{index}"
                config["aim"]["name"] = f"{{split}}_series_{index}"
        else:
            config = _plain_entry(index, root)
            name = f"table_{index}"
        entries.append((name, config))
    return entries


def _dump(path: Path, entries: list[tuple[str, dict[str, Any]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(entries), sort_keys=False), encoding="utf-8")


def write_conf(folder: Path) -> Path:
    """Write the generated configuration under ``folder/conf``; return it."""
    conf = folder / "conf"
    entries = _entries("${globals:data_root}")
    base, local = entries[:BASE_ENTRIES], entries[BASE_ENTRIES:]
    third = BASE_ENTRIES // 3
    _dump(conf / "base" / "catalog.yml", base[:third])
    _dump(conf / "base" / "catalog_reporting.yml", base[third : 2 * third])
    _dump(conf / "base" / "catalog" / "models.yml", base[2 * third :])
    # local overrides every third of the first entries of base, tracked or not,
    # with the same kind of configuration under another root.
    overrides = []
    for index in range(0, LOCAL_OVERRIDES * 3, 3):
        name, config = base[index]
        make = _aim_entry if "aim" in config else _plain_entry
        overrides.append((name, make(index, "${globals:local}")))
    _dump(conf / "local" / "catalog.yml", overrides + local)
    globals_ = {"data_root": "data", "local": "data/local"}
    (conf / "base" / "globals.yml").write_text(yaml.safe_dump(globals_))
    (conf / "base" / "parameters.yml").write_text("seed: 1\n")
    (conf / "base" / "aim.yml").write_text("experiment: bench\n")
    return conf


def _traced_load(
    loader: OmegaConfigLoader, conf: Path
) -> tuple[dict[str, Any], list[str], int]:
    """Load the catalog, recording every configuration file parsed on the way.

    Returns:
        The catalog, the files read as ``key:path`` (sorted), and how many
        times ``OmegaConf.load`` ran.
    """
    files: list[str] = []
    read = OmegaConfigLoader._read_dir_configs

    def spy(self: Any, conf_path: str, patterns: Any, key: str, *args: Any) -> Any:
        configs = read(self, conf_path, patterns, key, *args)
        files.extend(f"{key}:{Path(path).relative_to(conf)}" for path in configs)
        return configs

    with (
        mock.patch.object(OmegaConfigLoader, "_read_dir_configs", spy),
        mock.patch.object(OmegaConf, "load", wraps=OmegaConf.load) as load,
    ):
        catalog = loader["catalog"]
    return catalog, sorted(files), load.call_count


def check_same_work(conf: Path) -> tuple[list[str], dict[str, Any]]:
    """Check, untimed, that both loaders do the same work and neither caches.

    Both classes must parse the same catalog files, and parse them again on a
    second ``["catalog"]`` of the same instance. Anything the candidate reads
    besides is part of its cost and is listed in the notes, as are entries it
    adds besides the rewritten ones.

    Returns:
        Lines for the report, and the catalog ``OmegaConfigLoader`` gave.

    Raises:
        AssertionError: One of the checks failed.
    """
    plain = OmegaConfigLoader(str(conf), **LOADER_ARGS)
    aim = AimConfigLoader(str(conf), **LOADER_ARGS)
    plain_catalog, plain_files, plain_parses = _traced_load(plain, conf)
    aim_catalog, aim_files, aim_parses = _traced_load(aim, conf)
    _, plain_again, _ = _traced_load(plain, conf)
    _, aim_again, _ = _traced_load(aim, conf)

    catalog_files = [f for f in plain_files if f.startswith("catalog:")]
    assert len(plain_catalog) == ENTRIES, len(plain_catalog)
    assert plain_files == catalog_files == plain_again, (plain_files, plain_again)
    assert aim_files == aim_again, (aim_files, aim_again)
    assert [f for f in aim_files if f.startswith("catalog:")] == catalog_files
    assert plain_parses == len(plain_files) and aim_parses == len(aim_files)
    assert "catalog" not in plain.data and "catalog" not in aim.data

    expected = rewrite_catalog(plain_catalog)
    assert all(aim_catalog.get(k) == v for k, v in expected.items())
    wrapped = sum(1 for c in expected.values() if c.get("type") == DATASET_TYPE)
    assert wrapped == TRACKED, wrapped
    extra_files = sorted(set(aim_files) - set(catalog_files))
    extra_entries = {k: aim_catalog[k] for k in aim_catalog.keys() - expected.keys()}
    return [
        f"loader: both classes parse the same {len(catalog_files)} catalog files "
        "on every load, a second load of one instance included (no cache); "
        f"{len(plain_catalog)} entries, {wrapped} rewritten, equal to "
        "rewrite_catalog(OmegaConfigLoader output).",
        "loader: the candidate also reads "
        + (", ".join(extra_files) or "nothing else")
        + " and adds "
        + (", ".join(f"{k}: {v}" for k, v in extra_entries.items()) or "no entry")
        + " (part of its cost).",
    ], plain_catalog


def _rewrite_only(catalog: dict[str, Any]) -> float:
    """Median ms of ``rewrite_catalog`` alone: the candidate's extra work."""
    return median(
        [time_once(lambda: rewrite_catalog(catalog)).wall * 1e3 for _ in range(9)]
    )


def run(repetitions: int) -> Result:
    """Measure both loaders ``repetitions`` times each, interleaved."""
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        conf = write_conf(Path(tmp))
        notes, catalog = check_same_work(conf)  # also warms both classes up

        def baseline(_: int) -> Timing:
            loader = OmegaConfigLoader(str(conf), **LOADER_ARGS)
            return time_once(lambda: loader["catalog"])

        def candidate(_: int) -> Timing:
            loader = AimConfigLoader(str(conf), **LOADER_ARGS)
            return time_once(lambda: loader["catalog"])

        with frozen_heap():
            base, cand = interleave(baseline, candidate, repetitions)
            rewrite = _rewrite_only(catalog)

    base_ms = [t.wall * 1e3 for t in base]
    cand_ms = [t.wall * 1e3 for t in cand]
    cpu_ratio = median([t.cpu for t in cand]) / median([t.cpu for t in base])
    notes += [
        f"loader: {repetitions} reps each, fresh instance per rep, construction "
        f"excluded; wall ms base {spread(base_ms)}, cand {spread(cand_ms)}.",
        f"loader: rewrite_catalog alone (the candidate's extra work) takes "
        f"{rewrite:.1f} ms = {rewrite / median(base_ms):.2%} of the baseline "
        "median.",
    ]
    return Result(
        name='loader["catalog"] 2000/500',
        unit="ms",
        baseline=median(base_ms),
        candidate=median(cand_ms),
        target=TARGET,
        baseline_runs=base_ms,
        candidate_runs=cand_ms,
        cpu_ratio=cpu_ratio,
        notes=notes,
    )
