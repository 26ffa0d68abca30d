"""``AimConfigLoader``: the rewrite of ``aim:`` blocks and everything it keeps."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from kedro.validation.exceptions import DataValidationError

from kedro_aim_cfg import AimConfigError, AimConfigLoader, AimTrackingDataset
from kedro_aim_cfg.dataset import DATASET_TYPE, RUN_DATASET_TYPE
from kedro_aim_cfg.loader import rewrite_catalog

LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}
RUN_INPUT = {"aim_run": {"type": RUN_DATASET_TYPE}}

PLAIN_CATALOG = """
_folder: data/01_raw
companies:
  type: pandas.CSVDataset
  filepath: ${_folder}/companies.csv
  load_args: {sep: ";"}
shuttles:
  type: json.JSONDataset
  filepath: ${globals:root}/shuttles.json
  credentials: store
"{namespace}.model":
  type: pickle.PickleDataset
  filepath: data/06_models/{namespace}.pkl
"""


class Conf:
    """A ``conf`` folder with base and local environments."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "base").mkdir(parents=True)
        (root / "local").mkdir()

    def write(self, name: str, content: Any, env: str = "base") -> Path:
        path = self.root / env / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not isinstance(content, str):
            content = yaml.safe_dump(content, sort_keys=False)
        path.write_text(content, encoding="utf-8")
        return path

    def aim(self, **kwargs: Any) -> AimConfigLoader:
        return AimConfigLoader(self.root, **{**LOADER_ARGS, **kwargs})

    def omega(self, **kwargs: Any) -> OmegaConfigLoader:
        return OmegaConfigLoader(self.root, **{**LOADER_ARGS, **kwargs})


@pytest.fixture
def conf(tmp_path: Path) -> Conf:
    return Conf(tmp_path / "conf")


def metric_entry(**aim: Any) -> dict[str, Any]:
    return {
        "type": "json.JSONDataset",
        "filepath": "data/accuracy.json",
        "aim": {"type": "metric", **aim},
    }


class TestSameAsOmegaConfigLoader:
    @pytest.fixture
    def project_conf(self, conf: Conf) -> Conf:
        conf.write("catalog.yml", PLAIN_CATALOG)
        conf.write("globals.yml", {"root": "data/02_intermediate"})
        conf.write(
            "parameters.yml",
            {"_p": "models", "seed": 3, "model": {"depth": 4, "path": "${_p}"}},
        )
        conf.write("parameters.yml", {"seed": 4}, env="local")
        conf.write("credentials.yml", {"store": {"token": "t0"}}, env="local")
        conf.write("parameters_extra.yml", {"extra": "${globals:root}"})
        return conf

    def test_catalog_without_blocks_adds_only_the_run_input(
        self, project_conf: Conf
    ) -> None:
        expected = project_conf.omega()["catalog"]

        assert project_conf.aim()["catalog"] == {**expected, **RUN_INPUT}

    def test_catalog_without_blocks_and_run_input_is_unchanged(
        self, project_conf: Conf
    ) -> None:
        project_conf.write("aim.yml", {"run_input": None})

        assert project_conf.aim()["catalog"] == project_conf.omega()["catalog"]

    @pytest.mark.parametrize("key", ["parameters", "credentials", "globals"])
    def test_other_keys_are_identical(self, project_conf: Conf, key: str) -> None:
        runtime = {"seed": 5}
        expected = project_conf.omega(runtime_params=runtime)[key]

        assert project_conf.aim(runtime_params=runtime)[key] == expected
        assert expected  # the comparison is between non-empty configurations

    def test_entries_without_blocks_are_untouched(self, project_conf: Conf) -> None:
        catalog = yaml.safe_load(PLAIN_CATALOG)
        catalog["accuracy"] = metric_entry()
        project_conf.write("catalog.yml", catalog)
        expected = project_conf.omega()["catalog"]

        rewritten = project_conf.aim()["catalog"]

        assert rewritten["accuracy"]["type"] == DATASET_TYPE
        for entry in ("companies", "shuttles", "{namespace}.model"):
            assert rewritten[entry] == expected[entry]


class TestRewrite:
    def test_entry_is_wrapped(self, conf: Conf) -> None:
        conf.write(
            "catalog.yml",
            {
                "accuracy": metric_entry(
                    context={"subset": "test"}, _note="helper", name="acc"
                )
            },
        )

        assert conf.aim()["catalog"]["accuracy"] == {
            "type": DATASET_TYPE,
            "entry": "accuracy",
            "dataset": {"type": "json.JSONDataset", "filepath": "data/accuracy.json"},
            "aim": {"type": "metric", "name": "acc", "context": {"subset": "test"}},
        }

    def test_name_defaults_to_the_entry(self, conf: Conf) -> None:
        conf.write("catalog.yml", {"accuracy": metric_entry()})

        assert conf.aim()["catalog"]["accuracy"]["aim"] == {
            "type": "metric",
            "name": "accuracy",
        }

    @pytest.mark.parametrize(
        "block",
        [None, {"type": "metric", "enabled": False}],
        ids=["aim null", "enabled false"],
    )
    def test_disabled_block_leaves_the_plain_entry(
        self, conf: Conf, block: Any
    ) -> None:
        entry = {**metric_entry(), "aim": block}
        conf.write("catalog.yml", {"accuracy": entry})

        assert conf.aim()["catalog"]["accuracy"] == {
            "type": "json.JSONDataset",
            "filepath": "data/accuracy.json",
        }

    def test_disabled_block_is_still_validated(self, conf: Conf) -> None:
        entry = metric_entry(enabled=False, colour="red")
        conf.write("catalog.yml", {"accuracy": entry})

        with pytest.raises(AimConfigError, match=r"aim\.colour: unknown key"):
            conf.aim()["catalog"]

    def test_versioned_validator_metadata_placement(self, conf: Conf) -> None:
        metadata = {"kedro-viz": {"layer": "reporting"}}
        entry = {
            **metric_entry(),
            "versioned": True,
            "validator": "operator.index",
            "metadata": metadata,
        }
        conf.write("catalog.yml", {"accuracy": entry})

        wrapper = conf.aim()["catalog"]["accuracy"]

        assert wrapper["versioned"] is True
        assert wrapper["validator"] == "operator.index"
        assert wrapper["metadata"] == metadata
        assert wrapper["dataset"] == {
            "type": "json.JSONDataset",
            "filepath": "data/accuracy.json",
            "metadata": metadata,
        }

    def test_versioned_false_is_not_carried(self, conf: Conf) -> None:
        conf.write("catalog.yml", {"accuracy": {**metric_entry(), "versioned": False}})

        wrapper = conf.aim()["catalog"]["accuracy"]

        assert "versioned" not in wrapper
        assert "versioned" not in wrapper["dataset"]

    def test_catalog_reads_placed_keys(self, conf: Conf, tmp_path: Path) -> None:
        entry = {
            **metric_entry(),
            "filepath": str(tmp_path / "accuracy.json"),
            "versioned": True,
            "validator": {"class": "operator.index", "on": ["save"]},
            "metadata": {"owner": "qa"},
        }
        conf.write("catalog.yml", {"accuracy": entry})

        catalog = DataCatalog.from_config(conf.aim()["catalog"], save_version="v1")
        dataset = catalog.get("accuracy")

        assert isinstance(dataset, AimTrackingDataset)
        assert dataset.metadata == {"owner": "qa"}
        assert dataset.dataset.metadata == {"owner": "qa"}
        assert catalog.validator_specs["accuracy"].class_path == "operator.index"
        with pytest.raises(DataValidationError, match="accuracy"):
            catalog.save("accuracy", 0.5)
        assert not (tmp_path / "accuracy.json").exists()
        catalog.save("accuracy", 3)
        assert (tmp_path / "accuracy.json" / "v1" / "accuracy.json").is_file()

    def test_rewriting_is_idempotent(self, conf: Conf) -> None:
        conf.write(
            "catalog.yml",
            {
                "accuracy": {**metric_entry(), "versioned": True},
                "off": {**metric_entry(), "aim": None},
                "{split}.roc": {
                    "type": "json.JSONDataset",
                    "filepath": "data/{split}.json",
                    "aim": {"type": "metrics", "context": {"split": "{split}"}},
                },
            },
        )
        once = conf.aim()["catalog"]
        kept = copy.deepcopy(once)

        assert rewrite_catalog(once) == once
        assert rewrite_catalog(rewrite_catalog(once)) == once
        assert once == kept

    def test_rewrite_does_not_change_its_input(self, conf: Conf) -> None:
        catalog = {"accuracy": metric_entry(context={"subset": "test"})}
        kept = copy.deepcopy(catalog)

        rewrite_catalog(catalog)

        assert catalog == kept


class TestFactoryPatterns:
    @pytest.fixture
    def catalog(self, conf: Conf, tmp_path: Path) -> DataCatalog:
        conf.write(
            "catalog.yml",
            {
                "{split}.roc": {
                    "type": "json.JSONDataset",
                    "filepath": str(tmp_path / "data" / "{split}_roc.json"),
                    "aim": {"type": "metrics", "context": {"split": "{split}"}},
                },
                "{model}_{split}.score": {
                    "type": "json.JSONDataset",
                    "filepath": str(tmp_path / "data" / "{model}_{split}.json"),
                    "aim": {
                        "type": "metric",
                        "name": "{model}/score",
                        "context": {"split": "{split}", "fixed": 1},
                    },
                },
            },
        )
        return DataCatalog.from_config(conf.aim()["catalog"])

    @pytest.mark.parametrize("split", ["train", "test"])
    def test_placeholders_resolve_per_dataset(
        self, catalog: DataCatalog, tmp_path: Path, split: str
    ) -> None:
        dataset = catalog.get(f"{split}.roc")

        assert isinstance(dataset, AimTrackingDataset)
        assert dataset.tracked_name == f"{split}.roc"
        assert dataset.artifact_type == "metrics"
        assert dataset._describe()["aim"] == {
            "type": "metrics",
            "name": f"{split}.roc",
            "context": {"split": split},
        }
        assert dataset.dataset._filepath == tmp_path / "data" / f"{split}_roc.json"

    def test_placeholders_in_name_and_context(self, catalog: DataCatalog) -> None:
        dataset = catalog.get("forest_valid.score")

        assert dataset.tracked_name == "forest/score"
        assert dataset._describe()["aim"]["context"] == {"split": "valid", "fixed": 1}

    def test_pattern_entry_keeps_its_pattern(self, conf: Conf) -> None:
        conf.write(
            "catalog.yml",
            {
                "{split}.roc": {
                    "type": "json.JSONDataset",
                    "filepath": "data/{split}.json",
                    "aim": {"type": "metrics", "context": {"split": "{split}"}},
                }
            },
        )

        entry = conf.aim()["catalog"]["{split}.roc"]

        assert entry["entry"] == "{split}.roc"
        assert entry["aim"]["name"] == "{split}.roc"
        assert entry["dataset"]["filepath"] == "data/{split}.json"

    @pytest.mark.parametrize(
        "block",
        [
            {"type": "metric", "context": {"split": "{fold}"}},
            {"type": "metric", "name": "{fold}_roc"},
        ],
        ids=["in context", "in name"],
    )
    def test_unknown_placeholder_fails_at_config_time(
        self, conf: Conf, block: dict[str, Any]
    ) -> None:
        conf.write(
            "catalog.yml",
            {
                "{split}.roc": {
                    "type": "json.JSONDataset",
                    "filepath": "x",
                    "aim": block,
                }
            },
        )

        with pytest.raises(
            AimConfigError,
            match=r"entry '\{split\}\.roc', aim\.(context\.split|name): placeholders "
            r"\['\{fold\}'\] are not in the pattern '\{split\}\.roc'",
        ):
            conf.aim()["catalog"]

    def test_doubled_and_lone_braces_are_literal(self, conf: Conf) -> None:
        conf.write(
            "catalog.yml",
            {
                "{split}.report": {
                    "type": "text.TextDataset",
                    "filepath": "data/{split}.txt",
                    "aim": {
                        "type": "text",
                        "name": "{split} }}",
                        "context": {"open": "{split} {{", "as_written": "a {"},
                    },
                }
            },
        )

        dataset = DataCatalog.from_config(conf.aim()["catalog"]).get("train.report")

        assert dataset.tracked_name == "train }"
        assert dataset._describe()["aim"]["context"] == {
            "open": "train {",
            "as_written": "a {",
        }

    def test_braces_in_a_plain_entry_are_literal(self, conf: Conf) -> None:
        # Kedro resolves placeholders only in factory patterns.
        conf.write(
            "catalog.yml",
            {"roc": {**metric_entry(), "aim": {"type": "metric", "name": "{x}"}}},
        )

        assert conf.aim()["catalog"]["roc"]["aim"]["name"] == "{x}"


class TestLoaderArguments:
    def test_custom_patterns_and_merge_strategy(self, conf: Conf) -> None:
        conf.write("parameters.yml", {"model": {"depth": 4, "lr": 0.1}})
        conf.write("parameters.yml", {"model": {"depth": 8}}, env="local")
        conf.write("datasets.yml", {"accuracy": metric_entry()})
        conf.write("spark.yml", {"spark.master": "local[2]"})
        conf.write("tracking.yml", {"experiment": "custom"})
        args = {
            "config_patterns": {
                "catalog": ["catalog*", "datasets*"],
                "spark": ["spark*"],
                "aim": ["tracking*"],
            },
            "merge_strategy": {"parameters": "soft"},
        }
        loader = conf.aim(**args)

        assert loader["parameters"] == {"model": {"depth": 8, "lr": 0.1}}
        assert loader["parameters"] == conf.omega(**args)["parameters"]
        assert loader["spark"] == {"spark.master": "local[2]"}
        assert loader["catalog"]["accuracy"]["type"] == DATASET_TYPE
        assert loader["aim"] == {"experiment": "custom"}
        assert loader.aim_settings().experiment == "custom"

    def test_aim_patterns_by_default(self, conf: Conf) -> None:
        conf.write("aim.yml", {"experiment": "base", "tags": ["a"]})
        conf.write("aim/extra.yml", {"run_name": "nightly"})

        assert conf.aim().config_patterns["aim"] == ["aim*", "aim*/**"]
        assert conf.aim()["aim"] == {
            "experiment": "base",
            "tags": ["a"],
            "run_name": "nightly",
        }

    def test_project_settings_reach_the_loader(self, make_project) -> None:
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        project = make_project()
        settings = project.src / "settings.py"
        settings.write_text(
            settings.read_text() + "CONFIG_LOADER_ARGS = {\n"
            "    'base_env': 'base',\n"
            "    'default_run_env': 'local',\n"
            "    'config_patterns': {'catalog': ['catalog*', 'datasets*']},\n"
            "    'merge_strategy': {'parameters': 'soft'},\n"
            "}\n"
        )
        project.write_conf("parameters.yml", {"model": {"depth": 4, "lr": 0.1}})
        project.write_conf("parameters.yml", {"model": {"depth": 8}}, env="local")
        project.write_conf("datasets.yml", {"accuracy": metric_entry()})
        bootstrap_project(project.path)

        with KedroSession.create(project_path=project.path) as session:
            context = session.load_context()

        assert isinstance(context.config_loader, AimConfigLoader)
        assert context.params == {"model": {"depth": 8, "lr": 0.1}}
        assert isinstance(context.catalog.get("accuracy"), AimTrackingDataset)


class TestEnvironments:
    def test_local_overrides_the_block(self, conf: Conf) -> None:
        conf.write("catalog.yml", {"accuracy": metric_entry(context={"subset": "a"})})
        conf.write(
            "catalog.yml",
            {"accuracy": metric_entry(context={"subset": "b"}, name="acc")},
            env="local",
        )

        assert conf.aim()["catalog"]["accuracy"]["aim"] == {
            "type": "metric",
            "name": "acc",
            "context": {"subset": "b"},
        }

    def test_local_turns_tracking_off(self, conf: Conf) -> None:
        conf.write("catalog.yml", {"accuracy": metric_entry()})
        conf.write(
            "catalog.yml", {"accuracy": {**metric_entry(), "aim": None}}, "local"
        )

        assert conf.aim()["catalog"]["accuracy"] == {
            "type": "json.JSONDataset",
            "filepath": "data/accuracy.json",
        }

    def test_run_env_overrides_aim_yml(self, conf: Conf) -> None:
        conf.write("aim.yml", {"experiment": "base", "tags": ["a"]})
        conf.write("aim.yml", {"experiment": "local"}, env="local")
        conf.write("aim.yml", {"experiment": "prod", "enabled": False}, env="prod")

        assert conf.aim()["aim"] == {"experiment": "local", "tags": ["a"]}
        assert conf.aim().aim_settings().experiment == "local"
        prod = conf.aim(env="prod").aim_settings()
        assert (prod.experiment, prod.enabled) == ("prod", False)

    def test_no_aim_yml_gives_defaults(self, conf: Conf) -> None:
        settings = conf.aim().aim_settings()

        assert settings.enabled is True
        assert settings.repository == ".aim"
        assert settings.run_input == "aim_run"


class TestRunInput:
    def test_renamed(self, conf: Conf) -> None:
        conf.write("aim.yml", {"run_input": "tracker"})
        conf.write("catalog.yml", {})

        catalog = conf.aim()["catalog"]

        assert catalog == {"tracker": {"type": RUN_DATASET_TYPE}}

    def test_user_entry_of_that_name_is_an_error(self, conf: Conf) -> None:
        conf.write("catalog.yml", {"aim_run": {"type": "json.JSONDataset"}})

        with pytest.raises(
            AimConfigError, match=r"entry 'aim_run', .*this name is the run input"
        ):
            conf.aim()["catalog"]


class TestErrorSources:
    """Problems name the files Kedro read them from, and only those."""

    def test_a_flat_conf_folder_is_its_own_environment(self, tmp_path: Path) -> None:
        root = tmp_path / "conf"
        root.mkdir()
        (root / "catalog.yml").write_text(
            yaml.safe_dump({"scores": metric_entry(step=1)})
        )

        with pytest.raises(AimConfigError) as info:
            AimConfigLoader(root, base_env="", default_run_env="")["catalog"]

        (problem,) = info.value.problems
        assert (problem.source, problem.entry) == (str(root / "catalog.yml"), "scores")

    @pytest.mark.parametrize(
        ("ignore_hidden", "expected"),
        [
            (True, ["base/catalog/models.yml"]),
            (False, ["base/catalog/models.yml", "local/.drafts/catalog.yml"]),
        ],
    )
    def test_catalog_files_in_subfolders(
        self, conf: Conf, ignore_hidden: bool, expected: list[str]
    ) -> None:
        conf.write("catalog/models.yml", {"scores": metric_entry(step=1)})
        conf.write("catalog/other.yml", {"other": metric_entry()})
        conf.write(".drafts/catalog.yml", {"scores": metric_entry(step=2)}, "local")

        with pytest.raises(AimConfigError, match=r"aim\.step: unknown key") as info:
            conf.aim(ignore_hidden=ignore_hidden)["catalog"]

        (problem,) = info.value.problems
        assert problem.source == ", ".join(str(conf.root / f) for f in expected)

    def test_json_catalog_file(self, conf: Conf) -> None:
        conf.write("catalog.json", '{"scores": {"type": "x", "aim": {"type": "v"}}}')

        with pytest.raises(AimConfigError) as info:
            conf.aim()["catalog"]

        assert info.value.problems[0].source == str(conf.root / "base/catalog.json")

    def test_aim_problems_name_the_files_holding_their_key(self, conf: Conf) -> None:
        conf.write("aim.yml", {"experiment": "x", "tags": "a"})
        conf.write("aim/extra.yml", {"colour": "red"})
        conf.write("aim.yml", {"run_name": 5, "tags": "b"}, env="local")
        files = ("base/aim.yml", "base/aim/extra.yml", "local/aim.yml")
        base, extra, local = (str(conf.root / file) for file in files)

        with pytest.raises(AimConfigError, match=r"\(3 problems\)") as info:
            conf.aim().aim_settings()

        assert sorted((p.path, p.source) for p in info.value.problems) == [
            ("colour", extra),
            ("run_name", local),
            ("tags", f"{base}, {local}"),
        ]

    def test_aim_file_not_a_mapping_is_named(self, conf: Conf) -> None:
        conf.write("aim.yml", {"experiment": "x"})
        conf.write("aim.yml", "[a, b]\n", env="local")

        with pytest.raises(AimConfigError) as info:
            conf.aim().aim_settings()

        (problem,) = info.value.problems
        assert (problem.source, problem.path, problem.message) == (
            str(conf.root / "local/aim.yml"),
            "<root>",
            "must be a mapping of keys (enabled, repository, ...), got a list",
        )

    def test_an_interpolation_kedro_cannot_resolve_names_its_key_and_file(
        self, conf: Conf
    ) -> None:
        conf.write("aim.yml", {"experiment": "${missing}"})
        conf.write("aim.yml", {"tags": ["a"]}, env="local")

        with pytest.raises(AimConfigError) as info:
            conf.aim().aim_settings()

        (problem,) = info.value.problems
        assert (problem.source, problem.path, problem.message) == (
            str(conf.root / "base/aim.yml"),
            "experiment",
            "cannot be resolved: Interpolation key 'missing' not found",
        )


class TestWrappedDatasetType:
    def test_a_class_object_is_accepted(self) -> None:
        from kedro_datasets.json import JSONDataset

        catalog = {"accuracy": {**metric_entry(), "type": JSONDataset}}

        wrapper = rewrite_catalog(catalog)["accuracy"]

        assert wrapper["type"] == DATASET_TYPE
        assert wrapper["dataset"]["type"] is JSONDataset

    @pytest.mark.parametrize("dataset_type", ["  ", ["json.JSONDataset"], 1.5, True])
    def test_a_blank_or_non_string_type_is_a_problem(self, dataset_type: Any) -> None:
        catalog = {"accuracy": {**metric_entry(), "type": dataset_type}}

        with pytest.raises(
            AimConfigError,
            match=r"entry 'accuracy', type: must be the class path of a dataset",
        ):
            rewrite_catalog(catalog)
