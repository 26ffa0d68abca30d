"""The pydantic models of the ``aim:`` block and of ``aim.yml``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kedro.config import BadConfigException

from kedro_aim_cfg import AimConfigError, AimConfigLoader, AimSettings
from kedro_aim_cfg.loader import rewrite_catalog
from kedro_aim_cfg.models import (
    ARTIFACT_TYPES,
    BLOCK_MODELS,
    AudioSaveArgs,
    DistributionSaveArgs,
    ImageSaveArgs,
    NoSaveArgs,
    block_json_schema,
    parse_block,
    parse_settings,
)

TYPES = ", ".join(ARTIFACT_TYPES)
SOURCE = "conf/base/catalog.yml"

# (block, the one problem it must give); each pattern names the key path and
# what is wrong or allowed.
INVALID_BLOCKS: dict[str, tuple[Any, str]] = {
    "unknown type": (
        {"type": "video"},
        rf"aim\.type: 'video' is not an artifact type; allowed: {TYPES}",
    ),
    "type in capitals": (
        {"type": "Image"},
        r"aim\.type: 'Image' is not an artifact type; allowed: image, ",
    ),
    "missing type": (
        {"name": "accuracy"},
        rf"aim\.type: is missing; set it to one of: {TYPES}",
    ),
    "empty block": ({}, r"aim\.type: is missing; set it to one of: image, "),
    "type a list": (
        {"type": ["metric"]},
        rf"aim\.type: must be one artifact type, got a list; allowed: {TYPES}$",
    ),
    "type a mapping": (
        {"type": {"a": 1}},
        rf"aim\.type: must be one artifact type, got a mapping; allowed: {TYPES}$",
    ),
    "block is a list": (
        ["image"],
        r"aim: must be a mapping of keys \(type, name, \.\.\.\), got a list",
    ),
    "block is a string": (
        "image",
        r"aim: must be a mapping of keys \(type, name, \.\.\.\), got a string$",
    ),
    "block is an int": (
        3,
        r"aim: must be a mapping of keys \(type, name, \.\.\.\), got an integer$",
    ),
    "unknown key at top": (
        {"type": "image", "colour": "red"},
        r"aim\.colour: unknown key; allowed: type, save_args, name, context, enabled",
    ),
    "figure takes no save_args": (
        {"type": "figure", "save_args": {"caption": "x"}},
        r"aim\.save_args\.caption: unknown key; none allowed",
    ),
    "text takes no save_args": (
        {"type": "text", "save_args": {"caption": "x"}},
        r"aim\.save_args\.caption: unknown key; none allowed",
    ),
    "metric takes no save_args": (
        {"type": "metric", "save_args": {"step": 1}},
        r"aim\.save_args\.step: unknown key; none allowed",
    ),
    "metrics takes no save_args": (
        {"type": "metrics", "save_args": {"prefix": "x"}},
        r"aim\.save_args\.prefix: unknown key; none allowed",
    ),
    "image save_args key": (
        {"type": "image", "save_args": {"colour": "red"}},
        r"aim\.save_args\.colour: unknown key; "
        r"allowed: caption, format, quality, optimize$",
    ),
    "audio save_args key": (
        {"type": "audio", "save_args": {"quality": 5}},
        r"aim\.save_args\.quality: unknown key; allowed: caption, format, rate$",
    ),
    "distribution save_args key": (
        {"type": "distribution", "save_args": {"bins": 10}},
        r"aim\.save_args\.bins: unknown key; allowed: bin_count$",
    ),
    "save_args not a mapping": (
        {"type": "text", "save_args": "x"},
        r"aim\.save_args: must be a mapping, got a string$",
    ),
    "image save_args not a mapping": (
        {"type": "image", "save_args": 5},
        r"aim\.save_args: must be a mapping of keys \(caption, format, quality, "
        r"optimize\), got an integer$",
    ),
    "audio save_args null": (
        {"type": "audio", "save_args": None},
        r"aim\.save_args: must be a mapping of keys \(caption, format, rate\), "
        r"got null$",
    ),
    "caption not a string": (
        {"type": "image", "save_args": {"caption": 3}},
        r"aim\.save_args\.caption: Input should be a valid string \(got 3\)",
    ),
    "quality a word": (
        {"type": "image", "save_args": {"quality": "high"}},
        r"aim\.save_args\.quality: Input should be a valid integer",
    ),
    "quality a bool": (
        {"type": "image", "save_args": {"quality": True}},
        r"aim\.save_args\.quality: Input should be a valid integer \(got true\)$",
    ),
    "quality 0": (
        {"type": "image", "save_args": {"quality": 0}},
        r"aim\.save_args\.quality: Input should be greater than or equal to 1",
    ),
    "quality 101": (
        {"type": "image", "save_args": {"quality": 101}},
        r"aim\.save_args\.quality: Input should be less than or equal to 100",
    ),
    "optimize not a bool": (
        {"type": "image", "save_args": {"optimize": "yes"}},
        r"aim\.save_args\.optimize: Input should be a valid boolean \(got 'yes'\)",
    ),
    "image format tif": (
        {"type": "image", "save_args": {"format": "tif"}},
        r"aim\.save_args\.format: Input should be 'png', 'jpeg', 'gif', 'bmp', "
        r"'tiff' or 'webp' \(got 'tif'\)",
    ),
    "bin_count 0": (
        {"type": "distribution", "save_args": {"bin_count": 0}},
        r"aim\.save_args\.bin_count: Input should be greater than or equal to 1",
    ),
    "bin_count 513": (
        {"type": "distribution", "save_args": {"bin_count": 513}},
        r"aim\.save_args\.bin_count: Input should be less than or equal to 512",
    ),
    "bin_count a fraction": (
        {"type": "distribution", "save_args": {"bin_count": 2.5}},
        r"aim\.save_args\.bin_count: Input should be a valid integer",
    ),
    "rate 0": (
        {"type": "audio", "save_args": {"rate": 0}},
        r"aim\.save_args\.rate: Input should be greater than 0 \(got 0\)",
    ),
    "rate negative": (
        {"type": "audio", "save_args": {"rate": -8000}},
        r"aim\.save_args\.rate: Input should be greater than 0 \(got -8000\)",
    ),
    "rate a string": (
        {"type": "audio", "save_args": {"rate": "8000"}},
        r"aim\.save_args\.rate: Input should be a valid integer",
    ),
    "audio format ogg": (
        {"type": "audio", "save_args": {"format": "ogg"}},
        r"aim\.save_args\.format: Input should be 'wav', 'mp3' or 'flac' "
        r"\(got 'ogg'\)",
    ),
    "context a list value": (
        {"type": "text", "context": {"subset": ["a", "b"]}},
        r"aim\.context\.subset: must be a plain scalar "
        r"\(str, int, float or bool\), got a list$",
    ),
    "context a dict value": (
        {"type": "text", "context": {"subset": {"a": 1}}},
        r"aim\.context\.subset: must be a plain scalar "
        r"\(str, int, float or bool\), got a mapping$",
    ),
    "context a null value": (
        {"type": "text", "context": {"subset": None}},
        r"aim\.context\.subset: must be a plain scalar "
        r"\(str, int, float or bool\), got null$",
    ),
    "context not a mapping": (
        {"type": "text", "context": "test"},
        r"aim\.context: must be a mapping, got a string$",
    ),
    "context key a number": (
        {"type": "text", "context": {1: "a"}},
        r"aim\.context: keys must be strings, got an integer key 1; quote it$",
    ),
    "context key a boolean": (
        {"type": "text", "context": {True: "a"}},
        r"aim\.context: keys must be strings, got a boolean key true; quote it$",
    ),
    "context key 'key' reserved": (
        {"type": "image", "context": {"key": "a"}},
        r"aim\.context: .*'key' is reserved for the keys of a dict of objects",
    ),
    "empty name": (
        {"type": "metric", "name": ""},
        r"aim\.name: must not be empty or blank; leave it out to use the entry",
    ),
    "whitespace name": (
        {"type": "metric", "name": "   "},
        r"aim\.name: must not be empty or blank",
    ),
    "name not a string": (
        {"type": "metric", "name": 3},
        r"aim\.name: Input should be a valid string \(got 3\)",
    ),
    "enabled a word": (
        {"type": "metric", "enabled": "no"},
        r"aim\.enabled: Input should be a valid boolean \(got 'no'\)",
    ),
    "enabled a number": (
        {"type": "metric", "enabled": 0},
        r"aim\.enabled: Input should be a valid boolean \(got 0\)",
    ),
}


class TestParseBlock:
    @pytest.mark.parametrize(
        ("block", "expected"), list(INVALID_BLOCKS.values()), ids=list(INVALID_BLOCKS)
    )
    def test_invalid_block_gives_one_problem(self, block: Any, expected: str) -> None:
        with pytest.raises(AimConfigError, match=expected) as info:
            parse_block(block, source=SOURCE, entry="scores")

        (problem,) = info.value.problems
        assert problem.source == SOURCE
        assert problem.entry == "scores"
        assert str(info.value).startswith(
            "Invalid kedro-aim-cfg configuration in the catalog (1 problem):\n"
            f"  - {SOURCE}: entry 'scores', aim"
        )

    def test_every_problem_of_one_block_is_listed(self) -> None:
        block = {
            "type": "image",
            "colour": "red",
            "save_args": {"quality": 0, "format": "tif"},
            "context": {"subset": [1]},
        }
        with pytest.raises(AimConfigError, match=r"\(4 problems\)") as info:
            parse_block(block, entry="scores")

        assert sorted(p.path for p in info.value.problems) == [
            "aim.colour",
            "aim.context.subset",
            "aim.save_args.format",
            "aim.save_args.quality",
        ]

    def test_a_reserved_context_key_is_listed_with_bad_values(self) -> None:
        block = {"type": "text", "context": {"subset": ["a", "b"], "key": "x", 3: 1}}

        with pytest.raises(AimConfigError, match=r"\(3 problems\)") as info:
            parse_block(block, entry="scores")

        assert sorted((p.path, p.message) for p in info.value.problems) == [
            (
                "aim.context",
                "'key' is reserved for the keys of a dict of objects; "
                "use another context key",
            ),
            ("aim.context", "keys must be strings, got an integer key 3; quote it"),
            (
                "aim.context.subset",
                "must be a plain scalar (str, int, float or bool), got a list",
            ),
        ]

    def test_error_is_a_kedro_config_error(self) -> None:
        with pytest.raises(BadConfigException, match=r"aim\.type"):
            parse_block({"type": "video"})

    @pytest.mark.parametrize(
        ("artifact_type", "save_args_model"),
        [
            ("image", ImageSaveArgs),
            ("figure", NoSaveArgs),
            ("text", NoSaveArgs),
            ("audio", AudioSaveArgs),
            ("distribution", DistributionSaveArgs),
            ("metric", NoSaveArgs),
            ("metrics", NoSaveArgs),
        ],
    )
    def test_defaults(self, artifact_type: str, save_args_model: type) -> None:
        block = parse_block({"type": artifact_type})

        assert type(block) is BLOCK_MODELS[artifact_type]
        assert block.type == artifact_type
        assert block.name is None
        assert block.context == {}
        assert block.enabled is True
        assert block.save_args == save_args_model()

    @pytest.mark.parametrize(
        ("block", "save_args"),
        [
            (
                {"type": "image", "save_args": {"format": "jpg"}},
                {"caption": "", "format": "jpeg", "quality": 90, "optimize": False},
            ),
            (
                {"type": "image", "save_args": {"format": "PNG", "quality": 1}},
                {"caption": "", "format": "png", "quality": 1, "optimize": False},
            ),
            (
                {"type": "image", "save_args": {"format": "JPG", "optimize": True}},
                {"caption": "", "format": "jpeg", "quality": 90, "optimize": True},
            ),
            (
                {"type": "audio", "save_args": {"format": "WAV", "rate": 8000}},
                {"caption": "", "format": "wav", "rate": 8000},
            ),
            (
                {"type": "distribution", "save_args": {"bin_count": 512}},
                {"bin_count": 512},
            ),
            ({"type": "distribution", "save_args": {"bin_count": 1}}, {"bin_count": 1}),
        ],
        ids=["jpg", "PNG", "JPG", "WAV", "512 bins", "1 bin"],
    )
    def test_valid_save_args(self, block: dict[str, Any], save_args: dict) -> None:
        assert parse_block(block).save_args.model_dump() == save_args

    def test_helper_keys_are_dropped(self) -> None:
        block = parse_block(
            {"type": "metric", "_anchor": {"a": 1}, "_note": "x", "name": "acc"}
        )

        assert block.model_dump(exclude_defaults=True) == {
            "type": "metric",
            "name": "acc",
        }

    def test_context_keeps_plain_scalars(self) -> None:
        context = {"subset": "test", "fold": 2, "ratio": 0.5, "best": False}

        block = parse_block({"type": "metric", "context": context, "enabled": False})

        assert block.context == context
        assert [type(v) for v in block.context.values()] == [str, int, float, bool]
        assert block.enabled is False


INVALID_SETTINGS: dict[str, tuple[Any, str]] = {
    "unknown key": (
        {"repo": "x"},
        r"repo: unknown key; allowed: enabled, repository, experiment, run_name, ",
    ),
    "remote without port": (
        {"repository": "aim://host"},
        r"repository: .*'aim://host' is not a repository address; use a local "
        r"folder or aim://HOST:PORT with a port from 1 to 65535",
    ),
    "remote port too high": (
        {"repository": "aim://h:99999"},
        r"repository: .*'aim://h:99999' is not a repository address",
    ),
    "remote port 0": (
        {"repository": "aim://h:0"},
        r"repository: .*'aim://h:0' is not a repository address",
    ),
    "http address": (
        {"repository": "http://x"},
        r"repository: .*'http://x' is not a repository address",
    ),
    "empty repository": (
        {"repository": ""},
        r"repository: must not be empty or blank; leave it out to use \.aim in the "
        r"project \(got ''\)$",
    ),
    "blank repository": (
        {"repository": "  "},
        r"repository: must not be empty or blank; leave it out to use \.aim",
    ),
    "tags not a list": ({"tags": "nightly"}, r"tags: Input should be a valid list"),
    "tag not a string": (
        {"tags": ["a", 1]},
        r"tags\.1: Input should be a valid string \(got 1\)",
    ),
    "negative interval": (
        {"system_tracking_interval": -1},
        r"system_tracking_interval: Input should be greater than 0 \(got -1\)",
    ),
    "enabled a word": (
        {"enabled": "yes"},
        r"enabled: Input should be a valid boolean \(got 'yes'\)",
    ),
    "empty experiment": (
        {"experiment": ""},
        r"experiment: must not be empty or blank; leave it out to use the package "
        r"name \(got ''\)$",
    ),
    "blank experiment": (
        {"experiment": " \t"},
        r"experiment: must not be empty or blank; leave it out to use the package",
    ),
    "empty run_name": (
        {"run_name": ""},
        r"run_name: must not be empty or blank; leave it out to let Aim name the "
        r"run \(got ''\)$",
    ),
    "blank run_name": (
        {"run_name": "   "},
        r"run_name: must not be empty or blank; leave it out to let Aim name",
    ),
    "disabled_pipelines not a list": (
        {"disabled_pipelines": "training"},
        r"disabled_pipelines: Input should be a valid list",
    ),
    "settings not a mapping": (
        ["enabled"],
        r"<root>: must be a mapping of keys \(enabled, repository, \.\.\.\), "
        r"got a list$",
    ),
    "settings an empty list": (
        [],
        r"<root>: must be a mapping of keys \(enabled, repository, \.\.\.\), "
        r"got a list$",
    ),
    "settings a string": (
        "enabled",
        r"<root>: must be a mapping of keys \(enabled, repository, \.\.\.\), "
        r"got a string$",
    ),
    "run_hash too short": (
        {"run_hash": "abc"},
        r"run_hash: must be a run hash: 24 lower-case hexadecimal characters, as "
        r"`kedro aim runs` shows \(got 'abc'\)$",
    ),
    "run_hash in capitals": (
        {"run_hash": "0123456789ABCDEF01234567"},
        r"run_hash: must be a run hash: 24 lower-case hexadecimal characters",
    ),
    "tag null": (
        {"tags": [None]},
        r"tags\.0: Input should be a valid string \(got null\)$",
    ),
}


class TestParseSettings:
    @pytest.mark.parametrize(
        ("raw", "expected"), list(INVALID_SETTINGS.values()), ids=list(INVALID_SETTINGS)
    )
    def test_invalid_settings(self, raw: Any, expected: str) -> None:
        with pytest.raises(AimConfigError, match=expected) as info:
            parse_settings(raw, source="conf/base/aim.yml")

        assert str(info.value).startswith(
            "Invalid kedro-aim-cfg configuration in aim.yml (1 problem):\n"
            "  - conf/base/aim.yml: "
        )

    def test_every_problem_is_listed(self) -> None:
        raw = {"repo": "x", "tags": "a", "system_tracking_interval": 0}

        with pytest.raises(AimConfigError, match=r"\(3 problems\)") as info:
            parse_settings(raw)

        assert sorted(p.path for p in info.value.problems) == [
            "repo",
            "system_tracking_interval",
            "tags",
        ]

    @pytest.mark.parametrize("raw", [None, {}, {"_anchor": {"tags": ["x"]}}])
    def test_defaults(self, raw: Any) -> None:
        settings = parse_settings(raw)

        assert settings == AimSettings()
        assert settings.enabled is True
        assert settings.repository == ".aim"
        assert settings.experiment is None
        assert settings.tags == []
        assert settings.system_tracking_interval is None
        assert settings.capture_terminal_logs is False
        assert settings.log_system_params is False
        assert settings.disabled_pipelines == []

    @pytest.mark.parametrize(
        "repository", ["aim://localhost:53800", "aim://10.0.0.2:1", "aim://h:65535"]
    )
    def test_remote_repository(self, repository: str) -> None:
        settings = parse_settings({"repository": repository})

        assert settings.is_remote
        assert settings.repository_for("/anywhere") == repository


class TestRepositoryFor:
    @pytest.mark.parametrize(
        ("repository", "expected"),
        [
            (".aim", "project"),
            ("runs", "project/runs"),
            ("runs/.aim", "project/runs"),
            ("../shared/.aim", "shared"),
            ("../shared", "shared"),
        ],
    )
    def test_relative_to_the_project(
        self, tmp_path: Path, repository: str, expected: str
    ) -> None:
        settings = AimSettings(repository=repository)

        assert not settings.is_remote
        assert settings.repository_for(tmp_path / "project") == str(
            (tmp_path / expected).resolve()
        )

    @pytest.mark.parametrize("suffix", ["", "/.aim"])
    def test_absolute(self, tmp_path: Path, suffix: str) -> None:
        elsewhere = tmp_path / "elsewhere"
        settings = AimSettings(repository=f"{elsewhere}{suffix}")

        assert settings.repository_for(tmp_path / "project") == str(elsewhere)


def _write(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")


class TestCatalogErrors:
    """Errors raised through the loader name every problem, file and entry."""

    @pytest.fixture
    def conf(self, tmp_path: Path) -> Path:
        (tmp_path / "conf" / "local").mkdir(parents=True)
        return tmp_path / "conf"

    @staticmethod
    def load(conf: Path) -> dict[str, Any]:
        loader = AimConfigLoader(conf, base_env="base", default_run_env="local")
        return loader["catalog"]

    def test_every_problem_of_the_catalog_in_one_error(self, conf: Path) -> None:
        _write(
            conf / "base" / "catalog.yml",
            {
                "scores": {
                    "type": "json.JSONDataset",
                    "filepath": "s.json",
                    "aim": {"type": "metrcs"},
                },
                "good": {
                    "type": "json.JSONDataset",
                    "filepath": "g.json",
                    "aim": {"type": "metric"},
                },
                "digits": {
                    "type": "pillow.ImageDataset",
                    "filepath": "d.png",
                    "aim": {"type": "image", "save_args": {"colour": 1, "quality": 0}},
                },
                "report": {
                    "type": "text.TextDataset",
                    "filepath": "r.txt",
                    "aim": "text",
                },
            },
        )

        with pytest.raises(AimConfigError, match=r"\(4 problems\)") as info:
            self.load(conf)

        message = str(info.value)
        source = str(conf / "base" / "catalog.yml")
        assert sorted((p.entry, p.path) for p in info.value.problems) == [
            ("digits", "aim.save_args.colour"),
            ("digits", "aim.save_args.quality"),
            ("report", "aim"),
            ("scores", "aim.type"),
        ]
        assert all(p.source == source for p in info.value.problems)
        for line in (
            f"{source}: entry 'scores', aim.type: 'metrcs' is not an artifact type",
            f"{source}: entry 'digits', aim.save_args.colour: unknown key; allowed:",
            f"{source}: entry 'digits', aim.save_args.quality: Input should be",
            f"{source}: entry 'report', aim: must be a mapping",
        ):
            assert line in message
        assert "'good'" not in message

    def test_overridden_block_names_both_files(self, conf: Path) -> None:
        _write(
            conf / "base" / "catalog.yml",
            {
                "scores": {
                    "type": "json.JSONDataset",
                    "filepath": "s.json",
                    "aim": {"type": "metric"},
                },
                "other": {"type": "json.JSONDataset", "filepath": "o.json"},
            },
        )
        _write(
            conf / "local" / "catalog.yml",
            {
                "scores": {
                    "type": "json.JSONDataset",
                    "filepath": "s.json",
                    "aim": {"type": "metric", "context": {"key": "x"}},
                }
            },
        )

        with pytest.raises(AimConfigError, match=r"'key' is reserved") as info:
            self.load(conf)

        (problem,) = info.value.problems
        assert problem.source == (
            f"{conf / 'base' / 'catalog.yml'}, {conf / 'local' / 'catalog.yml'}"
        )
        assert re.search(
            r"conf/base/catalog\.yml, .*conf/local/catalog\.yml: entry 'scores', "
            r"aim\.context: ",
            str(info.value),
        )

    def test_aim_yml_error_names_its_file(self, conf: Path) -> None:
        _write(conf / "base" / "catalog.yml", {})
        _write(conf / "base" / "aim.yml", {"tags": "nightly"})

        with pytest.raises(AimConfigError, match=r"aim\.yml: tags: Input should be"):
            self.load(conf)


# Values of an entry's aim: key, and whether the loader accepts them.
BLOCK_EXAMPLES: list[tuple[Any, bool]] = [
    ({"type": "metric"}, True),
    (None, True),
    ({"type": "image", "save_args": {"format": "jpg"}}, True),
    ({"type": "image", "save_args": {"format": "JPG"}}, True),
    ({"type": "image", "save_args": {"format": "Png", "quality": 1}}, True),
    ({"type": "image", "save_args": {"format": "TIFF", "optimize": True}}, True),
    ({"type": "audio", "save_args": {"format": "WAV", "rate": 8000}}, True),
    ({"type": "audio", "save_args": {"format": "Flac"}}, True),
    ({"type": "metric", "_note": "x", "_anchor": {"a": 1}}, True),
    ({"type": "metric", "context": {"subset": "a", "fold": 1, "r": 0.5}}, True),
    ({"type": "metric", "context": {"best": False}, "enabled": False}, True),
    ({"type": "distribution", "save_args": {"bin_count": 512}}, True),
    ({"type": "text", "name": "report"}, True),
    ({"type": "metric", "context": {"key": 1}}, False),
    ({"type": "metric", "context": {"key": "a", "subset": "b"}}, False),
    ({"type": "metric", "context": {"a": None}}, False),
    ({"type": "metric", "context": {"a": [1]}}, False),
    ({"type": "metric", "context": ["a"]}, False),
    ({"type": "image", "save_args": {"format": "svg"}}, False),
    ({"type": "image", "save_args": {"format": "jpgx"}}, False),
    ({"type": "image", "save_args": {"format": "png\n"}}, False),
    ({"type": "image", "save_args": {"format": 5}}, False),
    ({"type": "audio", "save_args": {"format": "ogg"}}, False),
    ({"type": "audio", "save_args": {"format": "jpg"}}, False),
    ({"type": "image", "save_args": {"quality": True}}, False),
    ({"type": "image", "save_args": {"quality": 0}}, False),
    ({"type": "image", "save_args": {"_x": 1}}, False),
    ({"type": "audio", "save_args": {"rate": 0}}, False),
    ({"type": "figure", "save_args": {"caption": "x"}}, False),
    ({"type": "metric", "name": ""}, False),
    ({"type": "metric", "name": " \t"}, False),
    ({"type": "metric", "colour": "red"}, False),
    ({"type": "metric", "enabled": "yes"}, False),
    ({"type": "Image"}, False),
    ({"type": ["metric"]}, False),
    ({}, False),
    ([], False),
    ("metric", False),
]

# Contents of aim.yml, and whether the models accept them.
SETTINGS_EXAMPLES: list[tuple[Any, bool]] = [
    (None, True),
    ({}, True),
    ({"_anchor": {"tags": ["x"]}, "tags": ["a"]}, True),
    ({"repository": "runs/.aim", "experiment": "e", "run_name": "r"}, True),
    ({"repository": "aim://localhost:53800"}, True),
    ({"repository": "aim://10.0.0.2:1"}, True),
    ({"repository": "aim://h:65535"}, True),
    ({"repository": "aim://h:00080"}, True),
    ({"run_hash": "0123456789abcdef01234567"}, True),
    ({"connect_timeout": 5, "close_timeout": 0.5}, True),
    ({"system_tracking_interval": None}, True),
    ({"run_input": None}, True),
    ({"run_input": "tracker"}, True),
    ({"when_unavailable": "continue", "tracking_errors": "raise"}, True),
    ({"repository": ""}, False),
    ({"repository": "  "}, False),
    ({"repository": "aim://h"}, False),
    ({"repository": "aim://h:0"}, False),
    ({"repository": "aim://h:00000"}, False),
    ({"repository": "aim://h:65536"}, False),
    ({"repository": "aim://h:123456"}, False),
    ({"repository": "aim://h:80\n"}, False),
    ({"repository": "http://h:80"}, False),
    ({"experiment": " "}, False),
    ({"run_name": ""}, False),
    ({"run_hash": "abc"}, False),
    ({"run_hash": "0123456789ABCDEF01234567"}, False),
    ({"run_hash": "0123456789abcdef01234567\n"}, False),
    ({"connect_timeout": "5"}, False),
    ({"connect_timeout": True}, False),
    ({"connect_timeout": 0}, False),
    ({"system_tracking_interval": -1}, False),
    ({"run_input": ""}, False),
    ({"run_input": "my run"}, False),
    ({"run_input": "{x}"}, False),
    ({"run_input": "run\n"}, False),
    ({"tags": "x"}, False),
    ({"tags": [1]}, False),
    ({"colour": "red"}, False),
    ([], False),
    (["enabled"], False),
    ("enabled", False),
]


def _block_accepted(value: Any) -> bool:
    entry = {"type": "json.JSONDataset", "filepath": "x.json", "aim": value}
    try:
        rewrite_catalog({"entry": entry})
    except AimConfigError:
        return False
    return True


def _settings_accepted(value: Any) -> bool:
    try:
        parse_settings(value)
    except AimConfigError:
        return False
    return True


class TestJsonSchemas:
    """The JSON schemas accept exactly what the models accept."""

    @pytest.fixture(scope="class")
    @classmethod
    def block_schema(cls) -> jsonschema.Draft202012Validator:
        schema = block_json_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        return jsonschema.Draft202012Validator(schema)

    @pytest.fixture(scope="class")
    @classmethod
    def settings_schema(cls) -> jsonschema.Draft202012Validator:
        schema = AimSettings.model_json_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        return jsonschema.Draft202012Validator(schema)

    @pytest.mark.parametrize(
        ("block", "accepted"),
        BLOCK_EXAMPLES,
        ids=[f"{i:02d}-{repr(case[0])[:40]}" for i, case in enumerate(BLOCK_EXAMPLES)],
    )
    def test_block_schema_agrees_with_the_loader(
        self, block_schema: jsonschema.Draft202012Validator, block: Any, accepted: bool
    ) -> None:
        assert _block_accepted(block) is accepted
        assert block_schema.is_valid(block) is accepted

    @pytest.mark.parametrize(
        ("settings", "accepted"),
        SETTINGS_EXAMPLES,
        ids=[
            f"{i:02d}-{repr(case[0])[:40]}" for i, case in enumerate(SETTINGS_EXAMPLES)
        ],
    )
    def test_settings_schema_agrees_with_the_model(
        self,
        settings_schema: jsonschema.Draft202012Validator,
        settings: Any,
        accepted: bool,
    ) -> None:
        assert _settings_accepted(settings) is accepted
        assert settings_schema.is_valid(settings) is accepted
