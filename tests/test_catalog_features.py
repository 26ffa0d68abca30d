"""Kedro's catalog features keep working on entries with an ``aim:`` block.

Each scenario is a real project run through ``KedroSession`` (and the Kedro CLI
where a fresh process matters); what was tracked is read back from Aim in a
fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from conftest import KedroProject, new_project, sequences_by_name
from kedro_aim_cfg import AimTrackingDataset

SEED = 3
SECRET = "s3cr3t-token-4f9a"

FEATURE_NODES = """
from pathlib import Path

EVALUATIONS = Path(__file__).parents[2] / "data" / "evaluations.log"


def split_metrics(seed):
    return {"auc": 0.5 + seed / 10}


def frame(seed):
    import pandas as pd

    return pd.DataFrame({"a": [1, 2, 3], "b": [seed, seed, seed]})


def text_length(text):
    return len(text)


def figures(seed):
    return {
        "first": make_matplotlib_figure(seed),
        "second": make_matplotlib_figure(seed + 1),
    }


def eager_images(seed):
    return {f"part_{i}": make_pil_image(seed + i) for i in range(3)}


def lazy_images(seed):
    def make(i):
        def load():
            EVALUATIONS.parent.mkdir(parents=True, exist_ok=True)
            with EVALUATIONS.open("a") as handle:
                handle.write(f"part_{i}\\n")
            return make_pil_image(seed + i)

        return load

    return {f"part_{i}": make(i) for i in range(3)}


def negative(seed):
    return -seed


def must_be_positive(data):
    if data <= 0:
        raise ValueError(f"{data} is not positive")


def identity(value):
    return value
"""


def _write_registry(project: KedroProject, body: str) -> None:
    """Write ``register_pipelines`` returning the dict expression ``body``."""
    (project.src / "pipeline_registry.py").write_text(
        "from kedro.pipeline import Pipeline, node, pipeline\n"
        f"from {project.package} import nodes\n\n\n"
        "def register_pipelines():\n"
        f"    return {textwrap.indent(textwrap.dedent(body).strip(), '    ')[4:]}\n"
    )


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A factory of projects that live as long as the module."""
    created: list[KedroProject] = []

    def factory(name: str, nodes: str = "") -> KedroProject:
        project = new_project(
            tmp_path_factory.mktemp(name), name, nodes=nodes, parameters={"seed": SEED}
        )
        created.append(project)
        return project

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
        yield factory
    for project in created:
        for module in [m for m in sys.modules if m.split(".")[0] == project.package]:
            del sys.modules[module]


def _catalog(project: KedroProject) -> Any:
    """The project's catalog, as a notebook or a script would load it."""
    bootstrap_project(project.path)
    with KedroSession.create(project_path=project.path) as session:
        return session.load_context().catalog


def _one(run: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    (sequence,) = sequences_by_name(run)[(kind, name)]
    return sequence


def _by_context(run: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """The values of one sequence name, keyed by its sorted context items."""
    return {
        tuple(sorted(s["context"].items())): s["values"]
        for s in sequences_by_name(run).get((kind, name), [])
    }


def _error_chain(error: BaseException | None) -> list[BaseException]:
    chain = []
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


# -- factories, namespaces, interpolation, transcoding, multi-file outputs --

FEATURES_CATALOG = """
_team: &team {team: "${globals:team}", owner: data-science}
"{split}.roc":
  type: json.JSONDataset
  filepath: data/roc/{split}.json
  aim: {type: metric, name: roc, context: {split: "{split}"}}
"{split}.report":
  type: text.TextDataset
  filepath: data/reports/{split}.txt
  aim: {type: text, _note: a helper key of the block}
"{namespace}.metrics":
  type: json.JSONDataset
  filepath: data/{namespace}/metrics.json
  aim: {type: metrics, context: {namespace: "{namespace}"}}
"{default}":
  type: json.JSONDataset
  filepath: data/default/{default}.json
  aim: {type: metric, context: *team}
labelled:
  type: json.JSONDataset
  filepath: data/labelled.json
  metadata: {kedro-viz: {layer: reporting}}
  aim:
    type: metric
    context: {label: "${runtime_params:label, none}", team: "${globals:team}"}
table@pandas:
  type: pandas.CSVDataset
  filepath: data/table.csv
  aim: {type: text}
table@text:
  type: text.TextDataset
  filepath: data/table.csv
figures:
  type: matplotlib.MatplotlibDataset
  filepath: data/figures
  aim: {type: image, context: {kind: matplotlib}}
eager:
  type: partitions.PartitionedDataset
  path: data/eager
  dataset: {type: pillow.ImageDataset}
  filename_suffix: .png
  aim: {type: image, context: {mode: eager}}
lazy:
  type: partitions.PartitionedDataset
  path: data/lazy
  dataset: {type: pillow.ImageDataset}
  filename_suffix: .png
  aim: {type: image, context: {mode: lazy}}
checked:
  type: json.JSONDataset
  filepath: data/checked.json
  validator: {class: PACKAGE.nodes.must_be_positive, "on": [save]}
  aim: {type: metric}
"""

FEATURES_PIPELINES = """
{
    "__default__": Pipeline(
        [
            node(nodes.make_metric, "params:seed", "train.roc", name="train_roc"),
            node(nodes.make_metric, "params:seed", "test.roc", name="test_roc"),
            node(nodes.make_text, "params:seed", "train.report", name="report"),
            node(nodes.make_metric, "params:seed", "loose", name="loose"),
            node(nodes.make_metric, "params:seed", "labelled", name="label"),
            node(nodes.frame, "params:seed", "table@pandas", name="frame"),
            node(nodes.text_length, "table@text", "table_length", name="length"),
            node(nodes.figures, "params:seed", "figures", name="figures"),
            node(nodes.eager_images, "params:seed", "eager", name="eager"),
            node(nodes.lazy_images, "params:seed", "lazy", name="lazy"),
            node(nodes.make_metric, "params:seed", "checked", name="checked"),
        ]
    )
    + pipeline(
        [node(nodes.split_metrics, "params:seed", "metrics", name="metrics")],
        namespace="ns_a",
        parameters={"params:seed": "params:seed"},
    )
    + pipeline(
        [node(nodes.split_metrics, "params:seed", "metrics", name="metrics")],
        namespace="ns_b",
        parameters={"params:seed": "params:seed"},
    ),
    "labelled": Pipeline([node(nodes.make_metric, "params:seed", "labelled")]),
    "reject": Pipeline([node(nodes.negative, "params:seed", "checked")]),
}
"""


@dataclass
class Features:
    project: KedroProject
    run: dict[str, Any]
    cli_run: dict[str, Any]
    reject_run: dict[str, Any]
    reject_error: BaseException
    catalog: Any


@pytest.fixture(scope="module")
def features(projects) -> Features:
    project = projects("features", FEATURE_NODES)
    project.write_conf("globals.yml", {"team": "vision"})
    project.write_catalog(FEATURES_CATALOG.replace("PACKAGE", project.package))
    _write_registry(project, FEATURES_PIPELINES)

    project.run(runtime_params={"label": "session"})
    with pytest.raises(Exception, match="is not positive") as rejected:
        project.run(pipeline_names=["reject"])
    project.kedro("run", "--pipeline", "labelled", "--params", "label=cli")
    catalog = _catalog(project)

    runs = {
        tuple(run["kedro"]["pipeline_names"] or ()): run for run in project.read_runs()
    }
    assert sorted(runs) == [(), ("labelled",), ("reject",)]
    return Features(
        project,
        runs[()],
        runs[("labelled",)],
        runs[("reject",)],
        rejected.value,
        catalog,
    )


class TestDatasetFactories:
    def test_one_name_with_a_context_per_split(self, features: Features):
        assert _by_context(features.run, "metric", "roc") == {
            (("split", "test"),): [0.125 * SEED],
            (("split", "train"),): [0.125 * SEED],
        }
        assert (features.project.path / "data" / "roc" / "train.json").is_file()

    def test_a_block_without_name_takes_the_resolved_name(self, features: Features):
        report = _one(features.run, "text", "train.report")
        assert report["values"] == [f"report for seed {SEED}"]
        assert report["context"] == {}

    def test_a_pattern_resolves_per_dataset_in_the_catalog(self, features: Features):
        dataset = features.catalog.get("validation.roc")
        assert isinstance(dataset, AimTrackingDataset)
        assert dataset.tracked_name == "roc"
        assert dataset._describe()["aim"]["context"] == {"split": "validation"}
        assert dataset.dataset._filepath.name == "validation.json"

    def test_catch_all_pattern_tracks_unlisted_outputs(self, features: Features):
        team = (("owner", "data-science"), ("team", "vision"))
        assert _by_context(features.run, "metric", "loose") == {team: [0.125 * SEED]}
        assert (features.project.path / "data" / "default" / "loose.json").is_file()
        # Parameters and the run input are not datasets of the pattern.
        names = {name for _, name in sequences_by_name(features.run)}
        assert not any("params" in name or "aim_run" in name for name in names)

    def test_namespaced_outputs_match_the_namespace_pattern(self, features: Features):
        for namespace in ("ns_a", "ns_b"):
            sequence = _one(features.run, "metric", f"{namespace}.metrics.auc")
            assert sequence["context"] == {"namespace": namespace}
            assert sequence["values"] == [pytest.approx(0.5 + SEED / 10)]
            path = features.project.path / "data" / namespace / "metrics.json"
            assert json.loads(path.read_text()) == {"auc": 0.5 + SEED / 10}


class TestInterpolation:
    def test_globals_and_a_yaml_anchor_in_the_block(self, features: Features):
        loose = _one(features.run, "metric", "loose")
        assert loose["context"] == {"team": "vision", "owner": "data-science"}

    def test_helper_keys_inside_the_block_are_dropped(self, features: Features):
        dataset = features.catalog.get("train.report")
        assert dataset._describe()["aim"] == {"type": "text", "name": "train.report"}

    def test_runtime_params_of_the_session(self, features: Features):
        labelled = _one(features.run, "metric", "labelled")
        assert labelled["context"] == {"label": "session", "team": "vision"}

    def test_runtime_params_of_the_command_line(self, features: Features):
        labelled = _one(features.cli_run, "metric", "labelled")
        assert labelled["context"] == {"label": "cli", "team": "vision"}
        assert features.cli_run["kedro"]["status"] == "finished"

    def test_runtime_params_default_outside_a_run(self, features: Features):
        labelled = features.catalog.get("labelled")
        assert labelled._describe()["aim"]["context"] == {
            "label": "none",
            "team": "vision",
        }


class TestTranscoding:
    def test_the_tracked_side_tracks_under_the_plain_name(self, features: Features):
        expected = pd.DataFrame({"a": [1, 2, 3], "b": [SEED] * 3}).to_string()
        assert _one(features.run, "text", "table")["values"] == [expected]
        names = {name for _, name in sequences_by_name(features.run)}
        assert not any("@" in name for name in names)

    def test_the_other_side_reads_the_same_file(self, features: Features):
        text = (features.project.path / "data" / "table.csv").read_text()
        length = json.loads(
            (
                features.project.path / "data" / "default" / "table_length.json"
            ).read_text()
        )
        assert length == len(text)
        assert not isinstance(features.catalog.get("table@text"), AimTrackingDataset)


class TestMultiFileOutputs:
    def test_each_matplotlib_figure_once_under_its_key(self, features: Features):
        contexts = _by_context(features.run, "image", "figures")
        assert sorted(contexts) == [
            (("key", "first"), ("kind", "matplotlib")),
            (("key", "second"), ("kind", "matplotlib")),
        ]
        for values in contexts.values():
            assert len(values) == 1
        folder = features.project.path / "data" / "figures"
        assert sorted(p.name for p in folder.iterdir()) == ["first", "second"]

    @pytest.mark.parametrize("mode", ["eager", "lazy"])
    def test_each_partition_once_under_its_key(self, features: Features, mode: str):
        contexts = _by_context(features.run, "image", mode)
        assert sorted(contexts) == [
            (("key", f"part_{i}"), ("mode", mode)) for i in range(3)
        ]
        for values in contexts.values():
            assert [(v["width"], v["height"]) for v in values] == [(16, 12)]
        folder = features.project.path / "data" / mode
        assert sorted(p.name for p in folder.iterdir()) == [
            f"part_{i}.png" for i in range(3)
        ]

    def test_each_lazy_partition_is_evaluated_once(self, features: Features):
        log = features.project.path / "data" / "evaluations.log"
        assert sorted(log.read_text().split()) == ["part_0", "part_1", "part_2"]

    def test_the_run_counts_every_item(self, features: Features):
        assert features.run["kedro"]["tracked"] == {
            "image": 8,
            "metric": 6,
            "metrics": 2,
            "text": 2,
        }
        assert features.run["kedro"]["not_tracked"] == []


class TestMetadataAndValidator:
    def test_metadata_is_on_the_catalog_dataset(self, features: Features):
        dataset = features.catalog.get("labelled")
        assert isinstance(dataset, AimTrackingDataset)
        assert dataset.metadata == {"kedro-viz": {"layer": "reporting"}}

    def test_the_validator_is_declared_on_the_entry(self, features: Features):
        spec = features.catalog.validator_specs["checked"]
        assert spec.class_path == f"{features.project.package}.nodes.must_be_positive"
        assert spec.on == ("save",)

    def test_valid_data_is_saved_and_tracked(self, features: Features):
        assert _one(features.run, "metric", "checked")["values"] == [0.125 * SEED]

    def test_invalid_data_is_neither_saved_nor_tracked(self, features: Features):
        from kedro.validation import DataValidationError

        chain = _error_chain(features.reject_error)
        assert any(isinstance(e, DataValidationError) for e in chain), chain
        path = features.project.path / "data" / "checked.json"
        assert json.loads(path.read_text()) == 0.125 * SEED
        assert features.reject_run["kedro"]["status"] == "failed"
        assert features.reject_run["sequences"] == []


# -- environments --

ENV_NAMES = ("changed", "nulled", "disabled", "redefined", "kept")
LOCAL_CATALOG = """
changed:
  type: json.JSONDataset
  filepath: data/changed.json
  aim: {type: metric, context: {env: local}}
nulled:
  type: json.JSONDataset
  filepath: data/nulled.json
  aim: null
disabled:
  type: json.JSONDataset
  filepath: data/disabled.json
  aim: {type: metric, enabled: false}
redefined:
  type: json.JSONDataset
  filepath: data/redefined_local.json
"""
SOFT_ONLY_LOCAL = """
partial:
  aim: {context: {stage: local}}
switched_off:
  aim: {enabled: false}
"""
SOFT_SETTINGS = """
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"catalog": "soft"},
}
"""

# (strategy, entry, context tracked or None, file written)
ENV_CASES = [
    ("destructive", "changed", {"env": "local"}, "changed.json"),
    ("destructive", "nulled", None, "nulled.json"),
    ("destructive", "disabled", None, "disabled.json"),
    ("destructive", "redefined", None, "redefined_local.json"),
    ("destructive", "kept", {"env": "base"}, "kept.json"),
    ("soft", "changed", {"env": "local"}, "changed.json"),
    ("soft", "nulled", None, "nulled.json"),
    ("soft", "disabled", None, "disabled.json"),
    # A soft merge keeps the base block of an entry redefined without one.
    ("soft", "redefined", {"env": "base"}, "redefined_local.json"),
    ("soft", "kept", {"env": "base"}, "kept.json"),
    ("soft", "partial", {"env": "base", "stage": "local"}, "partial.json"),
    ("soft", "switched_off", None, "switched_off.json"),
]


@pytest.fixture(scope="module")
def environments(projects, tmp_path_factory) -> dict[str, Any]:
    shared = tmp_path_factory.mktemp("shared_repository")
    result: dict[str, Any] = {"repository": shared}
    for strategy in ("destructive", "soft"):
        project = projects(f"env_{strategy}")
        names = list(ENV_NAMES)
        local = LOCAL_CATALOG
        if strategy == "soft":
            names += ["partial", "switched_off"]
            local += SOFT_ONLY_LOCAL
            with (project.src / "settings.py").open("a") as settings:
                settings.write(SOFT_SETTINGS)
        project.write_catalog(
            {
                name: {
                    "type": "json.JSONDataset",
                    "filepath": f"data/{name}.json",
                    "aim": {"type": "metric", "context": {"env": "base"}},
                }
                for name in names
            }
        )
        project.write_catalog(local, env="local")
        project.write_aim({"repository": str(shared), "experiment": strategy})
        project.write_pipeline([("make_metric", "params:seed", name) for name in names])
        project.run()
        result[strategy] = project
    from conftest import read_runs

    result["runs"] = {run["experiment"]: run for run in read_runs(shared)}
    return result


class TestEnvironments:
    @pytest.mark.parametrize(
        ("strategy", "entry", "context", "filename"),
        ENV_CASES,
        ids=[f"{case[0]}-{case[1]}" for case in ENV_CASES],
    )
    def test_local_overrides_the_block(
        self, environments, strategy, entry, context, filename
    ):
        run = environments["runs"][strategy]
        sequences = sequences_by_name(run).get(("metric", entry), [])
        if context is None:
            assert sequences == []
        else:
            assert [(s["context"], s["values"]) for s in sequences] == [
                (context, [0.125 * SEED])
            ]
        assert (environments[strategy].path / "data" / filename).is_file()

    def test_both_projects_wrote_into_the_shared_repository(self, environments):
        assert sorted(environments["runs"]) == ["destructive", "soft"]
        for strategy in ("destructive", "soft"):
            assert not (environments[strategy].path / ".aim").exists()


# -- versioning, exists() and --only-missing-outputs --


@dataclass
class Versioned:
    project: KedroProject
    versions: list[str]
    exists: dict[str, bool]
    runs: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def versioned(projects) -> Versioned:
    project = projects("versioned", FEATURE_NODES)
    project.write_catalog(
        """
        score:
          type: json.JSONDataset
          filepath: data/score.json
          versioned: true
          aim: {type: metric}
        copy:
          type: json.JSONDataset
          filepath: data/copy.json
          aim: {type: metric, context: {stage: copy}}
        """
    )
    project.write_pipeline(
        [("make_metric", "params:seed", "score"), ("identity", "score", "copy")]
    )
    project.run(runtime_params={"seed": 1})
    project.run(runtime_params={"seed": 2})
    versions = sorted(p.name for p in (project.path / "data" / "score.json").iterdir())
    project.run(node_names=["n1_identity"], load_versions={"score": versions[0]})

    (project.path / "data" / "copy.json").unlink()
    catalog = _catalog(project)
    exists = {name: catalog.exists(name) for name in ("score", "copy")}
    project.kedro(
        "run", "--only-missing-outputs", "--load-versions", f"score:{versions[1]}"
    )
    runs = sorted(project.read_runs(), key=lambda run: run["kedro"]["run_id"])
    return Versioned(project, versions, exists, runs)


class TestVersioning:
    def test_each_save_goes_under_its_session_version(self, versioned: Versioned):
        assert len(versioned.versions) == 2
        for version, value in zip(versioned.versions, (0.125, 0.25), strict=True):
            path = versioned.project.path / "data" / "score.json" / version
            assert json.loads((path / "score.json").read_text()) == value
        first, second = versioned.runs[:2]
        assert [first["kedro"]["run_id"], second["kedro"]["run_id"]] == (
            versioned.versions
        )

    def test_only_the_current_save_is_tracked(self, versioned: Versioned):
        first, second = versioned.runs[:2]
        assert _one(first, "metric", "score")["values"] == [0.125]
        assert _one(second, "metric", "score")["values"] == [0.25]

    @pytest.mark.parametrize(
        ("index", "expected"), [(2, 0.125), (3, 0.25)], ids=["session", "cli"]
    )
    def test_load_versions_load_the_requested_version(
        self, versioned: Versioned, index: int, expected: float
    ):
        run = versioned.runs[index]
        assert set(sequences_by_name(run)) == {("metric", "copy")}
        assert _one(run, "metric", "copy")["values"] == [expected]
        assert json.loads(
            (versioned.project.path / "data" / "copy.json").read_text()
        ) == pytest.approx(0.25)


class TestOnlyMissingOutputs:
    def test_exists_is_the_wrapped_datasets(self, versioned: Versioned):
        assert versioned.exists == {"score": True, "copy": False}

    def test_the_next_run_skips_nodes_whose_outputs_exist(self, versioned: Versioned):
        last = versioned.runs[3]
        assert last["kedro"]["only_missing_outputs"] is True
        assert last["kedro"]["status"] == "finished"
        # 'score' exists (its latest version), so only the node writing 'copy' ran.
        assert last["kedro"]["tracked"] == {"metric": 1}
        assert set(sequences_by_name(last)) == {("metric", "copy")}
        versions = sorted(
            p.name for p in (versioned.project.path / "data" / "score.json").iterdir()
        )
        assert versions == versioned.versions


# -- credentials --

CREDENTIALS_CATALOG = """
frame:
  type: pandas.CSVDataset
  filepath: data/frame.csv
  credentials: store
  fs_args: {open_args_save: {newline: ""}}
  aim: {type: text}
"{name}.scores":
  type: pandas.CSVDataset
  filepath: data/{name}_scores.csv
  credentials: store
  aim: {type: distribution}
"""
CATALOG_COMMANDS = [
    ["catalog", "describe-datasets"],
    ["catalog", "list-patterns"],
    ["catalog", "resolve-patterns"],
    ["aim", "check"],
]


GUARDED_DATASET = """

from kedro.io import AbstractDataset, DatasetError


class GuardedText(AbstractDataset):
    \"\"\"Saves text only when it is given the token of the store credentials.\"\"\"

    def __init__(self, filepath, credentials=None):
        self._path = Path(filepath)
        self._token = (credentials or {}).get("token")

    def save(self, data):
        if self._token != TOKEN:
            raise DatasetError("the store credentials did not reach the dataset")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._path.write_text(data)

    def load(self):
        return self._path.read_text()

    def _describe(self):
        return {"filepath": str(self._path)}


def guarded_text(seed):
    return f"guarded {seed}"
"""


@dataclass
class Credentials:
    project: KedroProject
    outputs: dict[str, subprocess.CompletedProcess[str]]
    runs: list[dict[str, Any]]


@pytest.fixture(scope="module")
def credentials(projects) -> Credentials:
    project = projects(
        "credentials", FEATURE_NODES + f"\nTOKEN = {SECRET!r}\n" + GUARDED_DATASET
    )
    project.write_conf(
        "credentials.yml",
        {"store": {"token": SECRET, "client_kwargs": {"password": SECRET}}},
        env="local",
    )
    guarded = {
        "guarded": {
            "type": f"{project.package}.nodes.GuardedText",
            "filepath": "data/guarded.txt",
            "credentials": "store",
            "aim": {"type": "text"},
        }
    }
    project.write_catalog(CREDENTIALS_CATALOG + yaml.safe_dump(guarded))
    project.write_pipeline(
        [
            ("frame", "params:seed", "frame"),
            ("frame", "params:seed", "test.scores"),
            ("guarded_text", "params:seed", "guarded"),
        ]
    )
    project.run()
    results = project.kedro_concurrently(CATALOG_COMMANDS)
    outputs = {
        " ".join(command): result
        for command, result in zip(CATALOG_COMMANDS, results, strict=True)
    }
    return Credentials(project, outputs, project.read_runs())


class TestCredentials:
    def test_the_wrapped_dataset_gets_its_credentials(self, credentials: Credentials):
        (run,) = credentials.runs
        assert _one(run, "text", "frame")["values"][0].startswith("   a  b")
        assert _one(run, "distribution", "test.scores")["values"] == [
            {"bin_count": 64, "total": 6.0}
        ]
        assert (credentials.project.path / "data" / "test_scores.csv").is_file()
        # This dataset refuses to save unless the credentials reached it.
        guarded = credentials.project.path / "data" / "guarded.txt"
        assert guarded.read_text() == "guarded 3"
        assert _one(run, "text", "guarded")["values"] == ["guarded 3"]

    def test_the_secret_is_not_in_the_run(self, credentials: Credentials):
        assert SECRET not in json.dumps(credentials.runs, default=str)

    @pytest.mark.parametrize("command", [" ".join(c) for c in CATALOG_COMMANDS])
    def test_the_secret_is_not_in_any_output(self, credentials: Credentials, command):
        result = credentials.outputs[command]
        assert SECRET not in result.stdout + result.stderr

    def test_resolve_patterns_names_the_credentials(self, credentials: Credentials):
        stdout = credentials.outputs["catalog resolve-patterns"].stdout
        assert "credentials: frame_credentials" in stdout
        assert "credentials: test.scores_credentials" in stdout
