"""The config loader that turns ``aim:`` blocks into tracking datasets."""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from string import Formatter
from typing import Any

import fsspec
import yaml
from kedro.config import MissingConfigException, OmegaConfigLoader
from kedro.io import CatalogConfigResolver
from omegaconf.errors import OmegaConfBaseException

from kedro_aim_cfg.dataset import DATASET_TYPE, RUN_DATASET_TYPE
from kedro_aim_cfg.exceptions import AimConfigError, ConfigProblem
from kedro_aim_cfg.models import (
    AimBlockModel,
    AimSettings,
    kind_of,
    parse_block,
    parse_settings,
)

logger = logging.getLogger(__name__)

AIM_KEY = "aim"
AIM_PATTERNS = ["aim*", "aim*/**"]
_PLACEHOLDER = re.compile(r"\{.*?\}")
_FIELD = re.compile(r"\{[^{}]*\}")
_MOVED_TO_WRAPPER = ("versioned", "validator")
TRANSCODING_SEPARATOR = "@"
_CONFIG_SUFFIXES = {".yml", ".yaml", ".json"}
_LOCAL_FS = fsspec.filesystem("file")


class AimConfigLoader(OmegaConfigLoader):
    """Kedro's ``OmegaConfigLoader``, with ``aim:`` blocks turned into tracking.

    For the ``catalog`` key, once Kedro has merged the environments and resolved
    interpolations, every entry with an ``aim:`` block is validated and rewritten
    into an ``AimTrackingDataset`` that wraps the entry's own dataset. Every
    other key, and every entry without a block, is exactly what
    ``OmegaConfigLoader`` gives. The loader also serves ``aim.yml`` under the
    ``aim`` key.

    Example:
    ::

        # settings.py
        from kedro_aim_cfg import AimConfigLoader

        CONFIG_LOADER_CLASS = AimConfigLoader
    """

    def __init__(
        self,
        conf_source: str | Path,
        env: str | None = None,
        runtime_params: dict[str, Any] | None = None,
        *,
        config_patterns: dict[str, list[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        """Accept every argument ``OmegaConfigLoader`` accepts.

        Args:
            conf_source: The configuration folder.
            env: The run environment.
            runtime_params: The ``--params`` of the run.
            config_patterns: Extra or changed patterns; ``aim`` defaults to
                ``aim*`` and ``aim*/**``.
            **kwargs: Passed on to ``OmegaConfigLoader``.
        """
        patterns = {AIM_KEY: list(AIM_PATTERNS), **(config_patterns or {})}
        super().__init__(
            conf_source, env, runtime_params, config_patterns=patterns, **kwargs
        )

    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        if key != "catalog":
            return config
        # Both files are checked, so that one error lists every problem.
        problems: list[ConfigProblem] = []
        catalog: dict[str, Any] = {}
        run_input: str | None = None
        try:
            catalog = rewrite_catalog(config, locate=self.files_defining)
        except AimConfigError as exc:
            problems.extend(exc.problems)
        try:
            run_input = self.aim_settings().run_input
        except AimConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            raise AimConfigError(problems, what=_what(problems))

        if run_input is not None:
            existing = catalog.get(run_input)
            if existing is not None and (
                not isinstance(existing, dict)
                or existing.get("type") != RUN_DATASET_TYPE
            ):
                problem = ConfigProblem(
                    ", ".join(self.files_defining(run_input)),
                    run_input,
                    "<entry>",
                    "this name is the run input of kedro-aim-cfg; rename the entry, "
                    "or set run_input in aim.yml to another name or to null",
                )
                raise AimConfigError([problem], what="the catalog")
            catalog[run_input] = {"type": RUN_DATASET_TYPE}
        return catalog

    def aim_settings(self) -> AimSettings:
        """Read and validate ``aim.yml``; all defaults when there is none.

        Raises:
            AimConfigError: With every problem of the file.
        """
        # The files are looked up for error messages only.
        try:
            raw = self[AIM_KEY]
        except MissingConfigException:
            raw = {}
        except OmegaConfBaseException as exc:
            files = self._config_files(AIM_KEY)
            raise AimConfigError(
                _root_problems(files, _sources(files), exc), what="aim.yml"
            ) from exc
        try:
            return parse_settings(raw)
        except AimConfigError as exc:
            files = self._config_files(AIM_KEY)
            problems = [
                ConfigProblem(
                    ", ".join(_files_holding(files, problem.path.split(".")[0]))
                    or _sources(files),
                    problem.entry,
                    problem.path,
                    problem.message,
                )
                for problem in exc.problems
            ]
            raise AimConfigError(problems, what="aim.yml") from exc

    def files_defining(self, entry: str) -> list[str]:
        """Return the catalog files of the base and run environments that define
        ``entry``, for error messages.

        Args:
            entry: A top-level catalog key.

        Returns:
            The files, base environment first; empty for a remote configuration.
        """
        return _files_holding(self._config_files("catalog"), entry)

    def _config_files(self, key: str) -> list[Path]:
        """Return the files Kedro reads for ``key``, base environment first.

        Files are matched as ``OmegaConfigLoader`` matches them: the fsspec glob
        of each pattern under each environment folder, without hidden files and
        folders unless ``ignore_hidden`` is off. A remote or archived
        configuration gives no files.
        """
        root = Path(str(self.conf_source)).absolute()
        if not root.is_dir():
            return []
        # An empty environment name is the configuration folder itself.
        envs = dict.fromkeys(
            e
            for e in (self.base_env, self.env or self.default_run_env)
            if e is not None
        )
        found: list[Path] = []
        for env in envs:
            folder = (root / env).as_posix()
            paths = {
                Path(path)
                for pattern in self.config_patterns.get(key, [])
                for path in _LOCAL_FS.glob(posixpath.join(folder, pattern))
            }
            found.extend(
                path
                for path in sorted(paths)
                if path.is_file()
                and path.suffix in _CONFIG_SUFFIXES
                and not (
                    self.ignore_hidden
                    and any(
                        part.startswith(".") for part in path.relative_to(root).parts
                    )
                )
            )
        return found


def _what(problems: list[ConfigProblem]) -> str:
    """Name what the problems are in: the catalog, aim.yml, or both."""
    in_settings = {not problem.entry for problem in problems}
    if in_settings == {True}:
        return "aim.yml"
    return "the catalog" if in_settings == {False} else "the project"


def _sources(files: Iterable[Path]) -> str:
    """Name every file a configuration key was read from."""
    return ", ".join(_display_path(path) for path in files) or "aim.yml"


def _files_holding(files: Iterable[Path], key: str) -> list[str]:
    """Name the files whose top level holds ``key``, for error messages."""
    return [_display_path(path) for path in files if key in _top_level_keys(path)]


def _read_yaml(path: Path) -> Any:
    """Read a configuration file for error messages; ``None`` if unreadable."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _top_level_keys(path: Path) -> set[str]:
    content = _read_yaml(path)
    return set(content) if isinstance(content, dict) else set()


def _root_problems(
    files: Iterable[Path], source: str, exc: Exception
) -> list[ConfigProblem]:
    """Name each aim file that is not a mapping, when Kedro cannot merge them."""
    problems: list[ConfigProblem] = []
    for path in files:
        content = _read_yaml(path)
        if content is None or isinstance(content, dict):
            continue
        try:
            parse_settings(content, source=_display_path(path))
        except AimConfigError as error:
            problems.extend(error.problems)
    if problems:
        return problems
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # An interpolation that cannot be resolved names its key.
    key = str(getattr(exc, "full_key", "") or "")
    if key:
        holding = (
            ", ".join(_files_holding(files, key.split(".", maxsplit=1)[0])) or source
        )
        return [ConfigProblem(holding, "", key, f"cannot be resolved: {first_line}")]
    return [ConfigProblem(source, "", "<root>", f"cannot be read: {first_line}")]


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Yield every string of a block with its key path, as Kedro walks it."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif type(value) in (list, tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}")
    elif isinstance(value, str):
        yield path, value


def _fields(value: str) -> set[str]:
    """Return the replacement fields of a format string, braces included.

    Raises:
        ValueError: When ``value`` has an unmatched brace.
    """
    fields = set()
    for _, name, spec, conversion in Formatter().parse(value):
        if name is not None:
            suffix = (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else ""
            )
            fields.add(f"{{{name}{suffix}}}")
    return fields


def _fits_pattern(value: str, placeholders: set[str]) -> bool:
    """Whether Kedro can fill ``value`` in for a pattern with ``placeholders``."""
    if "}" not in value:
        return True
    try:
        fields = _fields(value)
    except ValueError:
        return False
    return fields | set(_PLACEHOLDER.findall(value)) <= placeholders


def _escaped(value: str, placeholders: set[str]) -> str:
    """Double every brace of ``value`` that is not one of ``placeholders``."""
    if placeholders:
        alternatives = "|".join(map(re.escape, sorted(placeholders)))
        pieces = re.split(f"({alternatives})", value)
    else:
        pieces = [value]
    return "".join(
        piece if piece in placeholders else piece.replace("{", "{{").replace("}", "}}")
        for piece in pieces
    )


def _pattern_string_problem(pattern: str, value: str) -> str | None:
    """Say why Kedro cannot fill ``value`` in for ``pattern``, if it cannot.

    Kedro checks that every ``{...}`` of a string holding a ``}`` is one of the
    pattern's placeholders, then fills the string in with ``str.format_map``;
    strings without a ``}`` are left as written.
    """
    placeholders = set(_PLACEHOLDER.findall(pattern))
    if _fits_pattern(value, placeholders):
        return None
    unknown = {
        token
        for token in _PLACEHOLDER.findall(value)
        if _FIELD.fullmatch(token) and token not in placeholders
    }
    if unknown:
        return (
            f"placeholders {sorted(unknown)} are not in the pattern '{pattern}'; "
            "use only the pattern's own placeholders"
        )
    literal = (
        "Kedro reads every '{...}' in a factory pattern's entry as a "
        "placeholder, so a literal '{' cannot be followed by a '}' there; define "
        "the entry without a pattern (one entry per dataset name), or leave the "
        "brace out"
    )
    try:
        _fields(value)
    except ValueError as exc:
        escaped = _escaped(value, placeholders)
        if _fits_pattern(escaped, placeholders):
            return (
                f"{value!r} has an unmatched brace ({exc}): Kedro fills in the "
                "strings of a factory pattern's entry with str.format, where a "
                f"literal brace is doubled; write {escaped!r}"
            )
        return f"{value!r} has an unmatched brace ({exc}); {literal}"
    return f"{value!r}: {literal}"


def _pattern_problems(entry: str, block: Any) -> list[ConfigProblem]:
    """Find the strings of a pattern's block that Kedro cannot fill in."""
    if not CatalogConfigResolver.is_pattern(entry):
        return []
    if isinstance(block, dict):
        block = {k: v for k, v in block.items() if not str(k).startswith("_")}
    problems = []
    for path, value in _strings(block, AIM_KEY):
        message = _pattern_string_problem(entry, value)
        if message is not None:
            problems.append(ConfigProblem("", entry, path, message))
    return problems


def _dataset_type_problems(entry: str, config: dict[str, Any]) -> list[ConfigProblem]:
    """Check that an entry with a block names the class of its own dataset.

    Only its presence and shape are checked; Kedro loads the class.
    """
    example = "for example json.JSONDataset"
    if "type" not in config:
        message = (
            "'type' is missing from the entry; set it to the class of the dataset "
            f"that the aim: block tracks, {example}"
        )
    else:
        dataset_type = config["type"]
        if isinstance(dataset_type, type) or (
            isinstance(dataset_type, str) and dataset_type.strip()
        ):
            return []
        got = kind_of(dataset_type)
        if isinstance(dataset_type, str):
            got = "an empty string" if not dataset_type else "a blank string"
        message = f"must be the class path of a dataset, {example}; got {got}"
    return [ConfigProblem("", entry, "type", message)]


def default_name(entry: str, block: Any) -> str:
    """The block's name, or the entry's name without a transcoding suffix."""
    return str(block.name or entry.split(TRANSCODING_SEPARATOR, maxsplit=1)[0])


def wrap_entry(entry: str, config: dict[str, Any], block: Any) -> dict[str, Any]:
    """Rewrite one catalog entry into a tracking dataset.

    Keys that Kedro reads from the top of an entry (``versioned``,
    ``validator``, ``metadata``) stay on top; the rest is the wrapped dataset.

    Args:
        entry: The catalog key, a factory pattern included.
        config: The entry without its ``aim:`` block.
        block: The validated block.

    Returns:
        The entry as the catalog will read it.
    """
    inner = {k: v for k, v in config.items() if k not in _MOVED_TO_WRAPPER}
    aim = block.model_dump(exclude_defaults=True)
    aim["type"] = block.type
    aim["name"] = default_name(entry, block)
    wrapper: dict[str, Any] = {
        "type": DATASET_TYPE,
        "entry": entry,
        "dataset": inner,
        "aim": aim,
    }
    if config.get("versioned"):
        wrapper["versioned"] = True
    if "validator" in config:
        wrapper["validator"] = config["validator"]
    if "metadata" in config:
        wrapper["metadata"] = config["metadata"]
    return wrapper


def _type_clash(
    sequences: dict[tuple[Any, ...], tuple[str, str]], entry: str, block: Any
) -> ConfigProblem | None:
    """Find a second entry tracking one sequence as another artifact type.

    Aim keeps one type per sequence (name and context), so the second type's
    values would be lost at the first save; ``sequences`` remembers the first.
    """
    name = default_name(entry, block)
    key = (name, *sorted((k, repr(v)) for k, v in block.context.items()))
    first = sequences.setdefault(key, (entry, str(block.type)))
    if first[1] == block.type:
        return None
    return ConfigProblem(
        "",
        entry,
        "aim.type",
        f"'{block.type}' clashes with entry '{first[0]}', which tracks the same "
        f"name '{name}' and context as '{first[1]}'; Aim keeps one type per "
        "sequence, so give one of them another name or context",
    )


def rewrite_catalog(
    catalog: dict[str, Any],
    *,
    locate: Callable[[str], list[str]] | None = None,
) -> dict[str, Any]:
    """Validate every ``aim:`` block of a catalog and rewrite its entry.

    An entry whose block is ``null`` or has ``enabled: false`` is returned
    without the block. Entries already rewritten are left alone, so rewriting
    twice gives the same catalog.

    Args:
        catalog: The merged and resolved catalog configuration.
        locate: Gives the files defining an entry; only called on errors.

    Returns:
        A new catalog configuration.

    Raises:
        AimConfigError: With every problem of every block.
    """
    rewritten: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    sequences: dict[tuple[Any, ...], tuple[str, str]] = {}

    for entry, config in catalog.items():
        if (
            not isinstance(config, dict)
            or AIM_KEY not in config
            or config.get("type") == DATASET_TYPE
        ):
            rewritten[entry] = config
            continue

        raw_block = config[AIM_KEY]
        rest = {k: v for k, v in config.items() if k != AIM_KEY}
        if raw_block is None:
            rewritten[entry] = rest
            continue

        block: AimBlockModel | None = None
        block_problems: tuple[ConfigProblem, ...] = ()
        try:
            block = parse_block(raw_block, entry=entry)
        except AimConfigError as exc:
            block_problems = exc.problems
        found = [
            *_dataset_type_problems(entry, rest),
            *block_problems,
            *_pattern_problems(entry, raw_block),
        ]
        if found or block is None:
            problems.extend(found)
            continue

        if not block.enabled:
            logger.debug("Tracking of '%s' is disabled", entry)
            rewritten[entry] = rest
            continue
        clash = _type_clash(sequences, entry, block)
        if clash is not None:
            problems.append(clash)
            continue
        rewritten[entry] = wrap_entry(entry, rest, block)
        logger.debug("Catalog entry '%s' tracks into Aim as %s", entry, block.type)

    if problems:
        if locate is not None:
            problems = [
                ConfigProblem(", ".join(locate(p.entry)), p.entry, p.path, p.message)
                for p in problems
            ]
        raise AimConfigError(problems, what="the catalog")
    return rewritten
