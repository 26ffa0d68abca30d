"""Bad input fails clearly, through a real ``kedro run``.

Invalid ``aim:`` blocks and ``aim.yml`` settings fail before anything runs, with
one ``AimConfigError`` naming the file, the entry, the key path and what is
allowed. Data that does not fit its declared type at save time is saved and
reported (or fails the node when ``aim.yml`` asks for it).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from conftest import KedroProject, sequences_by_name
from kedro_aim_cfg import AimConfigError, AimTrackingError

TYPES = "image, figure, text, audio, distribution, metric, metrics"
BLOCK_KEYS = "allowed: type, save_args, name, context, enabled"
SETTINGS_KEYS = "allowed: enabled, repository, experiment, run_name, description"
SCALAR_ = "must be a plain scalar (str, int, float or bool), got"
SCALAR = f"{SCALAR_} a"
KEYS = "keys must be strings, got"
IMAGE_FORMATS = "'png', 'jpeg', 'gif', 'bmp', 'tiff' or 'webp'"
MAPPING = "must be a mapping of keys (type, name, ...), got a"
REPOSITORY = "is not a repository address; use a local folder or aim://HOST:PORT"
BLANK = "must not be empty or blank; leave it out to"
CATALOG_FILE = "conf/base/catalog.yml"
DATASET_CLASS = "must be the class path of a dataset, for example json.JSONDataset"
AIM_FILE = "conf/base/aim.yml"

# The block of entry 'bad', and the key path of its one problem with the part
# of the message that says what is wrong or what is allowed.
BLOCK_CASES = [
    ("{name: x}", "aim.type", f"is missing; set it to one of: {TYPES}"),
    ("{}", "aim.type", f"is missing; set it to one of: {TYPES}"),
    ("{type: figur}", "aim.type", f"'figur' is not an artifact type; allowed: {TYPES}"),
    ("{type: 3}", "aim.type", f"3 is not an artifact type; allowed: {TYPES}"),
    ("{type: null}", "aim.type", f"null is not an artifact type; allowed: {TYPES}"),
    ("{type: [metric]}", "aim.type", f"artifact type, got a list; allowed: {TYPES}"),
    ("{type: {a: 1}}", "aim.type", f"artifact type, got a mapping; allowed: {TYPES}"),
    ("[metric]", "aim", f"{MAPPING} list"),
    ("metric", "aim", f"{MAPPING} string"),
    ("5", "aim", f"{MAPPING}n integer"),
    ("true", "aim", f"{MAPPING} bool"),
    ("{type: metric, colour: red}", "aim.colour", f"unknown key; {BLOCK_KEYS}"),
    ("{type: metric, step: 3}", "aim.step", f"unknown key; {BLOCK_KEYS}"),
    ("{type: metric, epoch: 1}", "aim.epoch", f"unknown key; {BLOCK_KEYS}"),
    ("{type: metric, name: ''}", "aim.name", "(got '')"),
    ("{type: metric, name: '  '}", "aim.name", "(got '  ')"),
    ("{type: metric, name: 5}", "aim.name", "valid string (got 5)"),
    ("{type: metric, name: [a]}", "aim.name", "valid string (got ['a'])"),
    ("{type: metric, context: [a, b]}", "aim.context", "must be a mapping, got a list"),
    ("{type: metric, context: subset}", "aim.context", "mapping, got a string"),
    ("{type: metric, context: {1: a}}", "aim.context", f"{KEYS} an integer key 1"),
    ("{type: metric, context: {true: a}}", "aim.context", f"{KEYS} a boolean key true"),
    ("{type: metric, context: {split: [a]}}", "aim.context.split", f"{SCALAR} list"),
    (
        "{type: metric, context: {split: {a: 1}}}",
        "aim.context.split",
        f"{SCALAR} mapping",
    ),
    ("{type: metric, context: {split: null}}", "aim.context.split", f"{SCALAR_} null"),
    (
        "{type: metric, context: {key: a}}",
        "aim.context",
        "'key' is reserved for the keys of a dict of objects; use another context key",
    ),
    ("{type: metric, enabled: 'yes'}", "aim.enabled", "valid boolean (got 'yes')"),
    ("{type: metric, enabled: 1}", "aim.enabled", "valid boolean (got 1)"),
    (
        "{type: metric, save_args: {caption: x}}",
        "aim.save_args.caption",
        "unknown key; none allowed",
    ),
    (
        "{type: figure, save_args: {format: png}}",
        "aim.save_args.format",
        "unknown key; none allowed",
    ),
    (
        "{type: text, save_args: {caption: x}}",
        "aim.save_args.caption",
        "unknown key; none allowed",
    ),
    (
        "{type: metrics, save_args: {step: 1}}",
        "aim.save_args.step",
        "unknown key; none allowed",
    ),
    (
        "{type: image, save_args: {colour: red}}",
        "aim.save_args.colour",
        "unknown key; allowed: caption, format, quality, optimize",
    ),
    (
        "{type: image, save_args: {format: svg}}",
        "aim.save_args.format",
        f"{IMAGE_FORMATS} (got 'svg')",
    ),
    (
        "{type: image, save_args: {quality: 0}}",
        "aim.save_args.quality",
        "greater than or equal to 1 (got 0)",
    ),
    (
        "{type: image, save_args: {quality: 101}}",
        "aim.save_args.quality",
        "less than or equal to 100 (got 101)",
    ),
    (
        "{type: image, save_args: {quality: high}}",
        "aim.save_args.quality",
        "valid integer (got 'high')",
    ),
    (
        "{type: image, save_args: {optimize: 'yes'}}",
        "aim.save_args.optimize",
        "valid boolean (got 'yes')",
    ),
    (
        "{type: image, save_args: {caption: 5}}",
        "aim.save_args.caption",
        "valid string (got 5)",
    ),
    (
        "{type: audio, save_args: {rate: 0}}",
        "aim.save_args.rate",
        "greater than 0 (got 0)",
    ),
    (
        "{type: audio, save_args: {format: ogg}}",
        "aim.save_args.format",
        "'wav', 'mp3' or 'flac' (got 'ogg')",
    ),
    (
        "{type: audio, save_args: {quality: 5}}",
        "aim.save_args.quality",
        "unknown key; allowed: caption, format, rate",
    ),
    (
        "{type: distribution, save_args: {bin_count: 0}}",
        "aim.save_args.bin_count",
        "greater than or equal to 1 (got 0)",
    ),
    (
        "{type: distribution, save_args: {bin_count: 1000}}",
        "aim.save_args.bin_count",
        "less than or equal to 512 (got 1000)",
    ),
    (
        "{type: distribution, save_args: {caption: x}}",
        "aim.save_args.caption",
        "unknown key; allowed: bin_count",
    ),
    (
        "{type: image, save_args: [1]}",
        "aim.save_args",
        "must be a mapping of keys (caption, format, quality, optimize), got a list",
    ),
    ("{type: image, save_args: 5}", "aim.save_args", "quality, optimize), got an int"),
    ("{type: text, save_args: 5}", "aim.save_args", "a mapping, got an integer"),
    (
        "{type: audio, save_args: {rate: -8000}}",
        "aim.save_args.rate",
        "greater than 0 (got -8000)",
    ),
]

# aim.yml, and the key path of its one problem with the telling part of it.
SETTINGS_CASES = [
    ("repository: aim://localhost", "repository", f"'aim://localhost' {REPOSITORY}"),
    (
        "repository: aim://localhost:70000",
        "repository",
        f"'aim://localhost:70000' {REPOSITORY} with a port from 1 to 65535",
    ),
    (
        "repository: http://localhost:43800",
        "repository",
        f"'http://localhost:43800' {REPOSITORY}",
    ),
    ("repository: ''", "repository", f"{BLANK} use .aim in the project (got '')"),
    ("repository: '  '", "repository", f"{BLANK} use .aim in the project"),
    ("tags: vision", "tags", "valid list (got 'vision')"),
    ("tags: [1, a]", "tags.0", "valid string (got 1)"),
    ("tracking_errors: ignore", "tracking_errors", "'warn' or 'raise' (got 'ignore')"),
    ("colour: red", "colour", f"unknown key; {SETTINGS_KEYS}"),
    ("enabled: sometimes", "enabled", "valid boolean (got 'sometimes')"),
    (
        "system_tracking_interval: -1",
        "system_tracking_interval",
        "greater than 0 (got -1)",
    ),
    ("experiment: ''", "experiment", f"{BLANK} use the package name (got '')"),
    ("experiment: '  '", "experiment", f"{BLANK} use the package name (got '  ')"),
    ("run_name: ''", "run_name", f"{BLANK} let Aim name the run (got '')"),
    ("run_name: ' '", "run_name", f"{BLANK} let Aim name the run (got ' ')"),
    ("run_input: 'my run'", "run_input", "(got 'my run')"),
    ("run_input: '{x}'", "run_input", "(got '{x}')"),
    ("disabled_pipelines: __default__", "disabled_pipelines", "valid list"),
    ("capture_terminal_logs: 'yes'", "capture_terminal_logs", "valid boolean"),
    ("log_system_params: 2", "log_system_params", "valid boolean (got 2)"),
    ("run_name: [a]", "run_name", "valid string (got ['a'])"),
    ("description: {a: 1}", "description", "valid string (got {'a': 1})"),
    (
        "run_hash: abc",
        "run_hash",
        "must be a run hash: 24 lower-case hexadecimal characters, as `kedro aim "
        "runs` shows (got 'abc')",
    ),
    ("[enabled]", "<root>", "must be a mapping of keys (enabled, repository, ...)"),
    (
        "when_unavailable: sometimes",
        "when_unavailable",
        "'fail' or 'continue' (got 'sometimes')",
    ),
    ("connect_timeout: 0", "connect_timeout", "greater than 0 (got 0)"),
    ("close_timeout: long", "close_timeout", "valid number"),
    (
        "experiment: ${globals:nope}",
        "experiment",
        "cannot be resolved: Globals key 'nope' not found",
    ),
]

BAD_DATA_NODES = """

def frame(seed):
    import pandas as pd

    return pd.DataFrame({"a": [1, 2]})


def nan_samples(seed):
    return np.array([1.0, float("nan"), 3.0])
"""

BAD_DATA_CATALOG = """
good:
  type: json.JSONDataset
  filepath: data/good.json
  aim: {type: metric}
frame_image:
  type: pandas.CSVDataset
  filepath: data/frame.csv
  aim: {type: image}
text_metric:
  type: text.TextDataset
  filepath: data/text.txt
  aim: {type: metric}
nan_samples:
  type: pickle.PickleDataset
  filepath: data/nan.pkl
  aim: {type: distribution}
"""
BAD_DATA_PIPELINE = [
    ("make_metric", "params:seed", "good"),
    ("frame", "params:seed", "frame_image"),
    ("make_text", "params:seed", "text_metric"),
    ("nan_samples", "params:seed", "nan_samples"),
]
NOT_TRACKED = [
    (
        "frame_image",
        "image",
        "image takes a PIL image, a uint8 or bool numpy array or a matplotlib "
        "figure, got pandas.DataFrame",
    ),
    ("text_metric", "metric", "metric takes a number, got builtins.str"),
    (
        "nan_samples",
        "distribution",
        "distribution samples contain NaN or infinite values",
    ),
]


def _problem(file: str, entry: str, path: str, part: str) -> str:
    """A regex of one problem line: its file, entry and key path, then ``part``."""
    where = f"entry '{entry}', " if entry else ""
    return re.escape(f"{file}: {where}{path}: ") + ".*" + re.escape(part)


def _sources(project: KedroProject, error: AimConfigError) -> list[str]:
    """The source of each problem, with its files relative to the project."""
    root = project.path.resolve()
    return [
        ", ".join(
            Path(file).resolve().relative_to(root).as_posix()
            for file in problem.source.split(", ")
        )
        for problem in error.problems
    ]


def _assert_nothing_created(project: KedroProject) -> None:
    assert not (project.path / ".aim").exists()
    assert not (project.path / "data").exists()


def _run_fails(project: KedroProject, problems: list[str]) -> AimConfigError:
    """Run the project; it must fail with one error listing exactly ``problems``."""
    with pytest.raises(AimConfigError, match=problems[0]) as caught:
        project.run()
    message = str(caught.value)
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    header, *lines = message.splitlines()
    assert header.endswith(f"({count} {noun}):")
    assert len(caught.value.problems) == count == len(lines)
    for problem in problems:
        assert len([line for line in lines if re.search(problem, line)]) == 1, problem
    _assert_nothing_created(project)
    return caught.value


def _bad_entry_project(make_project, block: str) -> KedroProject:
    project = make_project()
    project.write_catalog(
        f"""
        good:
          type: json.JSONDataset
          filepath: data/good.json
          aim: {{type: metric}}
        bad:
          type: json.JSONDataset
          filepath: data/bad.json
          aim: {block}
        """
    )
    project.write_pipeline(
        [("make_metric", "params:seed", "good"), ("make_metric", "params:seed", "bad")]
    )
    return project


class TestBadBlocks:
    @pytest.mark.parametrize(
        ("block", "path", "part"),
        BLOCK_CASES,
        ids=[f"{i:02d}-{case[1]}" for i, case in enumerate(BLOCK_CASES)],
    )
    def test_one_problem(self, make_project, block: str, path: str, part: str):
        project = _bad_entry_project(make_project, block)
        _run_fails(project, [_problem(CATALOG_FILE, "bad", path, part)])

    def test_every_problem_of_every_entry_in_one_error(self, make_project):
        project = make_project()
        project.write_catalog(
            """
            first:
              type: pillow.ImageDataset
              filepath: data/first.png
              aim:
                type: image
                colour: red
                context: {split: [a], key: x}
                save_args: {quality: 0, format: svg}
            second:
              type: json.JSONDataset
              filepath: data/second.json
              aim: {type: metrc}
            """
        )
        project.write_pipeline(
            [
                ("make_pil_image", "params:seed", "first"),
                ("make_metric", "params:seed", "second"),
            ]
        )
        _run_fails(
            project,
            [
                _problem(
                    CATALOG_FILE,
                    "first",
                    "aim.save_args.format",
                    f"Input should be {IMAGE_FORMATS} (got 'svg')",
                ),
                _problem(
                    CATALOG_FILE,
                    "first",
                    "aim.save_args.quality",
                    "Input should be greater than or equal to 1 (got 0)",
                ),
                _problem(
                    CATALOG_FILE,
                    "first",
                    "aim.context.split",
                    f"{SCALAR} list",
                ),
                _problem(
                    CATALOG_FILE,
                    "first",
                    "aim.context",
                    "'key' is reserved for the keys of a dict of objects",
                ),
                _problem(
                    CATALOG_FILE,
                    "first",
                    "aim.colour",
                    f"unknown key; {BLOCK_KEYS}",
                ),
                _problem(
                    CATALOG_FILE,
                    "second",
                    "aim.type",
                    f"'metrc' is not an artifact type; allowed: {TYPES}",
                ),
            ],
        )

    @pytest.mark.parametrize(
        ("dataset_type", "part"),
        [
            ("", "'type' is missing from the entry; set it to the class of the"),
            ("type: [json.JSONDataset]", f"{DATASET_CLASS}; got a list"),
            ("type: {a: 1}", f"{DATASET_CLASS}; got a mapping"),
            ("type: 5", f"{DATASET_CLASS}; got an integer"),
            ("type: null", f"{DATASET_CLASS}; got null"),
            ("type: ''", f"{DATASET_CLASS}; got an empty string"),
        ],
        ids=["missing", "list", "mapping", "integer", "null", "empty"],
    )
    def test_the_wrapped_dataset_needs_a_type(
        self, make_project, dataset_type: str, part: str
    ):
        project = make_project()
        project.write_catalog(
            f"""
            bad:
              {dataset_type}
              filepath: data/bad.json
              aim: {{type: metric, step: 1}}
            """
        )
        project.write_pipeline([("make_metric", "params:seed", "bad")])
        _run_fails(
            project,
            [
                _problem(CATALOG_FILE, "bad", "type", part),
                _problem(CATALOG_FILE, "bad", "aim.step", "unknown key"),
            ],
        )

    def test_unknown_placeholder_in_a_pattern(self, make_project):
        project = make_project()
        project.write_catalog(
            """
            "{split}.roc":
              type: json.JSONDataset
              filepath: data/{split}_roc.json
              aim: {type: metric, context: {split: "{split}", model: "{model}"}}
            """
        )
        project.write_pipeline([("make_metric", "params:seed", "train.roc")])
        _run_fails(
            project,
            [
                _problem(
                    CATALOG_FILE,
                    "{split}.roc",
                    "aim.context.model",
                    "placeholders ['{model}'] are not in the pattern '{split}.roc'; "
                    "use only the pattern's own placeholders",
                )
            ],
        )

    @pytest.mark.parametrize(
        ("block", "path", "part"),
        [
            (
                '{type: text, name: "report }"}',
                "aim.name",
                "'report }' has an unmatched brace (Single '}' encountered in format "
                "string): Kedro fills in the strings of a factory pattern's entry "
                "with str.format, where a literal brace is doubled; write 'report }}'",
            ),
            (
                '{type: text, context: {note: "{split} {"}}',
                "aim.context.note",
                "'{split} {' has an unmatched brace (Single '{' encountered in format "
                "string): Kedro fills in the strings of a factory pattern's entry "
                "with str.format, where a literal brace is doubled; write "
                "'{split} {{'",
            ),
            (
                '{type: text, name: "{{x}}"}',
                "aim.name",
                "'{{x}}': Kedro reads every '{...}' in a factory pattern's entry as a "
                "placeholder, so a literal '{' cannot be followed by a '}' there; "
                "define the entry without a pattern (one entry per dataset name), "
                "or leave the brace out",
            ),
            (
                '{type: text, context: {run: "{run}"}}',
                "aim.context.run",
                "placeholders ['{run}'] are not in the pattern '{split}.report'",
            ),
        ],
        ids=["single }", "single {", "literal pair", "unknown placeholder"],
    )
    def test_a_pattern_string_kedro_cannot_fill_in(
        self, make_project, block: str, path: str, part: str
    ):
        project = make_project()
        project.write_catalog(
            f"""
            "{{split}}.report":
              type: text.TextDataset
              filepath: data/{{split}}_report.txt
              aim: {block}
            """
        )
        project.write_pipeline([("make_text", "params:seed", "train.report")])
        _run_fails(project, [_problem(CATALOG_FILE, "{split}.report", path, part)])

    def test_pattern_and_block_problems_together(self, make_project):
        project = make_project()
        project.write_catalog(
            """
            "{split}.report":
              type: text.TextDataset
              filepath: data/{split}_report.txt
              aim: {type: text, name: "report }", step: 1}
            """
        )
        project.write_pipeline([("make_text", "params:seed", "train.report")])
        _run_fails(
            project,
            [
                _problem(
                    CATALOG_FILE, "{split}.report", "aim.step", "unknown key; allowed"
                ),
                _problem(
                    CATALOG_FILE, "{split}.report", "aim.name", "write 'report }}'"
                ),
            ],
        )

    def test_two_entries_tracking_one_sequence_as_two_types(self, make_project):
        project = make_project()
        project.write_catalog(
            """
            score:
              type: json.JSONDataset
              filepath: data/score.json
              aim: {type: metric, name: quality, context: {subset: test}}
            score_report:
              type: text.TextDataset
              filepath: data/score.txt
              aim: {type: text, name: quality, context: {subset: test}}
            """
        )
        project.write_pipeline(
            [
                ("make_metric", "params:seed", "score"),
                ("make_text", "params:seed", "score_report"),
            ]
        )
        _run_fails(
            project,
            [
                _problem(
                    CATALOG_FILE,
                    "score_report",
                    "aim.type",
                    "'text' clashes with entry 'score', which tracks the same name "
                    "'quality' and context as 'metric'; Aim keeps one type per "
                    "sequence, so give one of them another name or context",
                )
            ],
        )

    def test_a_problem_in_local_names_the_local_file(self, make_project):
        project = _bad_entry_project(make_project, "{type: metric}")
        project.write_catalog(
            """
            bad:
              type: json.JSONDataset
              filepath: data/bad.json
              aim: {type: metric, step: 1}
            """,
            env="local",
        )
        error = _run_fails(
            project,
            [
                _problem(
                    "conf/local/catalog.yml",
                    "bad",
                    "aim.step",
                    f"unknown key; {BLOCK_KEYS}",
                )
            ],
        )
        # Both files define the entry, and both are named.
        assert error.problems[0].source.count("catalog.yml") == 2

    def test_a_problem_in_a_catalog_subfolder_names_its_file(self, make_project):
        project = _bad_entry_project(make_project, "{type: metric}")
        project.write_catalog("{}\n")
        bad = """
            good:
              type: json.JSONDataset
              filepath: data/good.json
              aim: {type: metric}
            bad:
              type: json.JSONDataset
              filepath: data/bad.json
              aim: {type: metric, step: 1}
            """
        project.write_conf("catalog/models.yml", bad)
        # Kedro reads no hidden folder, so neither is it named.
        project.write_conf(".drafts/catalog.yml", bad, env="local")
        error = _run_fails(
            project,
            [
                _problem(
                    "conf/base/catalog/models.yml",
                    "bad",
                    "aim.step",
                    f"unknown key; {BLOCK_KEYS}",
                )
            ],
        )
        assert _sources(project, error) == ["conf/base/catalog/models.yml"]


class TestBadSettings:
    @pytest.mark.parametrize(
        ("content", "path", "part"),
        SETTINGS_CASES,
        ids=[f"{i:02d}-{case[1]}" for i, case in enumerate(SETTINGS_CASES)],
    )
    def test_one_problem(self, make_project, content: str, path: str, part: str):
        project = _bad_entry_project(make_project, "{type: metric}")
        project.write_aim(content + "\n")
        _run_fails(project, [_problem(AIM_FILE, "", path, part)])

    def test_every_problem_of_the_file_in_one_error(self, make_project):
        project = _bad_entry_project(make_project, "{type: metric}")
        project.write_aim("tags: x\ntracking_errors: never\ncolour: red\n")
        _run_fails(
            project,
            [
                _problem(
                    AIM_FILE, "", "tags", "Input should be a valid list (got 'x')"
                ),
                _problem(
                    AIM_FILE,
                    "",
                    "tracking_errors",
                    "Input should be 'warn' or 'raise' (got 'never')",
                ),
                _problem(AIM_FILE, "", "colour", f"unknown key; {SETTINGS_KEYS}"),
            ],
        )

    def test_a_problem_in_an_aim_subfolder_names_its_file(self, make_project):
        project = _bad_entry_project(make_project, "{type: metric}")
        project.write_aim("experiment: nightly\n")
        project.write_conf("aim/extra.yml", "run_name: first\ncolour: red\n")
        error = _run_fails(
            project,
            [
                _problem(
                    "conf/base/aim/extra.yml",
                    "",
                    "colour",
                    f"unknown key; {SETTINGS_KEYS}",
                )
            ],
        )
        assert _sources(project, error) == ["conf/base/aim/extra.yml"]

    def test_each_problem_names_the_files_holding_its_key(self, make_project):
        project = _bad_entry_project(make_project, "{type: metric}")
        project.write_aim("experimnet: nightly\ntags: [a]\n")
        project.write_aim("tags: x\n", env="local")
        error = _run_fails(
            project,
            [
                _problem(AIM_FILE, "", "experimnet", f"unknown key; {SETTINGS_KEYS}"),
                _problem("conf/local/aim.yml", "", "tags", "valid list"),
            ],
        )
        assert sorted(
            zip((p.path for p in error.problems), _sources(project, error), strict=True)
        ) == [
            ("experimnet", AIM_FILE),
            ("tags", "conf/base/aim.yml, conf/local/aim.yml"),
        ]

    def test_with_bad_blocks_too_the_run_reports_both(self, make_project):
        project = _bad_entry_project(make_project, "{type: metrc}")
        project.write_aim("tags: x\n")
        error = _run_fails(
            project,
            [
                _problem(
                    AIM_FILE, "", "tags", "Input should be a valid list (got 'x')"
                ),
                _problem(CATALOG_FILE, "bad", "aim.type", "'metrc' is not an artifact"),
            ],
        )
        assert str(error).startswith(
            "Invalid kedro-aim-cfg configuration in the project"
        )


def _nodes_with(project: KedroProject, source: str) -> None:
    nodes = project.src / "nodes.py"
    nodes.write_text(nodes.read_text() + source)


class TestDataThatDoesNotFit:
    def test_is_saved_and_reported(self, make_project, aim_logs):
        project = make_project()
        _nodes_with(project, BAD_DATA_NODES)
        project.write_catalog(BAD_DATA_CATALOG)
        project.write_pipeline(BAD_DATA_PIPELINE)
        project.run()

        data = project.path / "data"
        assert sorted(p.name for p in data.iterdir()) == [
            "frame.csv",
            "good.json",
            "nan.pkl",
            "text.txt",
        ]
        warnings = [
            r.getMessage()
            for r in aim_logs.records
            if r.levelno == logging.WARNING
            and "was saved but not tracked" in r.getMessage()
        ]
        assert sorted(warnings) == sorted(
            f"'{entry}' was saved but not tracked as {kind}: {cause}"
            for entry, kind, cause in NOT_TRACKED
        )
        summary = [
            r.getMessage()
            for r in aim_logs.records
            if r.getMessage().startswith("Aim run ")
        ]
        assert len(summary) == 1
        assert "tracked 1 metric." in summary[0]
        assert "3 save(s) were saved but not tracked:" in summary[0]
        for entry, kind, cause in NOT_TRACKED:
            assert f"  {entry} ({kind}): {cause}" in summary[0]

        (run,) = project.read_runs()
        assert run["kedro"]["status"] == "finished"
        assert run["kedro"]["tracked"] == {"metric": 1}
        assert sorted(
            (r["entry"], r["type"], r["cause"]) for r in run["kedro"]["not_tracked"]
        ) == sorted(NOT_TRACKED)
        assert set(sequences_by_name(run)) == {("metric", "good")}

    def test_tracking_errors_raise_fails_the_node(self, make_project):
        project = make_project()
        _nodes_with(project, BAD_DATA_NODES)
        project.write_aim({"tracking_errors": "raise"})
        project.write_catalog(BAD_DATA_CATALOG)
        project.write_pipeline(BAD_DATA_PIPELINE)

        with pytest.raises(
            Exception, match="'frame_image' was saved but not"
        ) as caught:
            project.run()
        chain: list[BaseException] = []
        error: BaseException | None = caught.value
        while error is not None:
            chain.append(error)
            error = error.__cause__ or error.__context__
        assert any(isinstance(e, AimTrackingError) for e in chain), chain

        assert (project.path / "data" / "frame.csv").is_file()
        # The failing node stops the run: later nodes never wrote their files.
        assert not (project.path / "data" / "text.txt").exists()
        (run,) = project.read_runs()
        assert run["kedro"]["status"] == "failed"
        assert [
            (r["entry"], r["type"], r["cause"]) for r in run["kedro"]["not_tracked"]
        ] == [NOT_TRACKED[0]]
        assert sequences_by_name(run)[("metric", "good")][0]["values"] == [0.375]


class TestAimCheck:
    def test_exit_codes_summary_and_full_list(self, make_project):
        project = _bad_entry_project(make_project, "{type: metric, context: {a: 1}}")
        project.write_conf("catalog.yml", "{}\n", env="prod")
        project.write_catalog(
            """
            bad:
              type: json.JSONDataset
              filepath: data/bad.json
              aim: {type: metric, step: 1, name: ''}
            """,
            env="local",
        )
        project.write_aim("tags: [a]\n")
        project.write_aim("tags: x\n", env="local")
        prod, local, default = project.kedro_concurrently(
            [
                ["aim", "check", "--env", "prod"],
                ["aim", "check", "--env", "local"],
                ["aim", "check"],
            ],
            check=False,
        )

        assert prod.returncode == 0, prod.stderr
        summary = [line for line in prod.stdout.splitlines() if line.startswith("OK:")]
        assert summary == [
            f"OK: 2 tracked entries (2 metric); aim.yml valid, tracking on, "
            f"repository {project.path.resolve()}"
        ]

        for result in (local, default):
            assert result.returncode == 1
            assert "OK:" not in result.stdout
            error = result.stderr
            assert (
                "Invalid kedro-aim-cfg configuration in the project (3 problems):"
                in error
            )
            problems = error.splitlines()[1:]
            for problem in (
                _problem(
                    "conf/base/catalog.yml, conf/local/catalog.yml",
                    "bad",
                    "aim.name",
                    "(got '')",
                ),
                _problem(
                    "conf/base/catalog.yml, conf/local/catalog.yml",
                    "bad",
                    "aim.step",
                    f"unknown key; {BLOCK_KEYS}",
                ),
                _problem(
                    "conf/base/aim.yml, conf/local/aim.yml", "", "tags", "valid list"
                ),
            ):
                assert len([p for p in problems if re.search(problem, p)]) == 1
        assert not (project.path / ".aim").exists()
        assert not (project.path / "data").exists()

    def test_a_brace_kedro_cannot_fill_in_fails_the_check(self, make_project):
        project = make_project()
        project.write_catalog(
            """
            "{split}.report":
              type: text.TextDataset
              filepath: data/{split}_report.txt
              aim: {type: text, name: "report }"}
            """
        )
        project.write_pipeline([("make_text", "params:seed", "train.report")])

        result = project.kedro("aim", "check", check=False)

        assert result.returncode == 1
        assert "OK:" not in result.stdout
        assert re.search(
            _problem(CATALOG_FILE, "{split}.report", "aim.name", "write 'report }}'"),
            result.stderr,
        )
