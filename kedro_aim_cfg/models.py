"""Pydantic models of the ``aim:`` block of a catalog entry and of ``aim.yml``.

One model per YAML level. Every model rejects unknown keys, so a typo fails when
the configuration is loaded rather than at the first save.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from kedro_aim_cfg.exceptions import AimConfigError, ConfigProblem

ARTIFACT_TYPES = (
    "image",
    "figure",
    "text",
    "audio",
    "distribution",
    "metric",
    "metrics",
)
RUN_HASH_PATTERN = r"^[0-9a-f]{24}$"
"""What an Aim run hash looks like."""
ITEM_CONTEXT_KEY = "key"
"""Context key under which each item of a dict of objects is tracked."""


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (Mapping, "a mapping"),
    ((list, tuple), "a list"),
)


def kind_of(value: Any) -> str:
    """Name the YAML kind of ``value``, such as ``a list`` or ``null``."""
    if value is None:
        return "null"
    for types, kind in _KINDS:
        if isinstance(value, types):
            return kind
    return _a(type(value).__name__)


def _plain_scalar(value: Any) -> Any:
    """Reject anything but a plain scalar with one error, not one per type."""
    if not isinstance(value, str | int | float | bool):
        raise ValueError(
            f"must be a plain scalar (str, int, float or bool), got {kind_of(value)}"
        )
    return value


ContextValue = Annotated[
    StrictStr | StrictInt | StrictFloat | StrictBool, BeforeValidator(_plain_scalar)
]


def _not_reserved(key: str) -> str:
    if key == ITEM_CONTEXT_KEY:
        raise ValueError(
            f"'{ITEM_CONTEXT_KEY}' is reserved for the keys of a dict of objects; "
            "use another context key"
        )
    return key


# Checked per key, so that a reserved key and a bad value are both reported.
ContextKey = Annotated[StrictStr, AfterValidator(_not_reserved)]

_REMOTE_REPOSITORY = re.compile(r"aim://(?P<host>[A-Za-z0-9.\-]+):(?P<port>\d{1,5})")


def _not_blank(default: str) -> AfterValidator:
    """Reject an empty or blank string; ``default`` says what leaving it out does."""

    def check(value: str) -> str:
        if not value.strip():
            raise ValueError(f"must not be empty or blank; leave it out to {default}")
        return value

    return AfterValidator(check)


_NOT_BLANK_SCHEMA: dict[str, Any] = {"pattern": r"\S"}
"""JSON schema of a string that is not blank: one non-space character."""


def _whole(regex: str) -> str:
    """A JSON schema pattern matching whole strings only.

    ``$`` also matches before a final newline in Python, which validates
    schemas with Python's ``re``; a look-ahead for no character does not.
    """
    return f"^(?:{regex})(?![\\s\\S])"


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def _formats_schema(*formats: str) -> WithJsonSchema:
    """JSON schema of a format name, in any case as the models read it."""
    return WithJsonSchema(
        {
            "type": "string",
            "pattern": _whole("|".join(map(_any_case, formats))),
            "examples": list(formats),
        }
    )


_PORT_SCHEMA = (
    r"(?=\d{1,5}(?![\s\S]))0*"
    r"(?:[1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])"
)
_REPOSITORY_SCHEMA: dict[str, Any] = {
    "pattern": r"\S",
    "anyOf": [
        {"not": {"pattern": "://"}},
        {"pattern": _whole(r"aim://[A-Za-z0-9.\-]+:" + _PORT_SCHEMA)},
    ],
}
"""JSON schema of a repository: a folder, or aim://HOST:PORT with a valid port."""


def _run_hash(value: str) -> str:
    if not re.fullmatch(RUN_HASH_PATTERN, value):
        raise ValueError(
            "must be a run hash: 24 lower-case hexadecimal characters, as "
            "`kedro aim runs` shows"
        )
    return value


def _catalog_name(value: str) -> str:
    if not value or any(c.isspace() or c in "{}" for c in value):
        raise ValueError("must be a catalog entry name, without spaces or braces")
    return value


_Positive = Annotated[StrictFloat, Field(gt=0)]
"""A number above 0; an integer is read as a float, a string is not a number."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoSaveArgs(_Strict):
    """No keyword arguments: the Aim object of this type takes none."""


class ImageSaveArgs(_Strict):
    """Keyword arguments of ``aim.Image``."""

    caption: str = Field(default="", description="Caption shown under the image.")
    format: (
        Annotated[
            Literal["png", "jpeg", "gif", "bmp", "tiff", "webp"],
            _formats_schema("png", "jpeg", "jpg", "gif", "bmp", "tiff", "webp"),
        ]
        | None
    ) = Field(
        default=None,
        description="Encoding of the stored image; 'jpg' is read as 'jpeg'. "
        "Defaults to the image's own format, else png.",
    )
    quality: StrictInt = Field(
        default=90, ge=1, le=100, description="JPEG quality, from 1 to 100."
    )
    optimize: StrictBool = Field(
        default=False, description="Let Pillow optimise the file."
    )

    @field_validator("format", mode="before")
    @classmethod
    def _normalise_format(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.lower()
            return "jpeg" if value == "jpg" else value
        return value


class AudioSaveArgs(_Strict):
    """Keyword arguments of ``aim.Audio``."""

    caption: str = Field(default="", description="Caption shown with the clip.")
    format: (
        Annotated[Literal["wav", "mp3", "flac"], _formats_schema("wav", "mp3", "flac")]
        | None
    ) = Field(
        default=None,
        description="Encoding of raw bytes; numpy arrays are always stored as wav.",
    )
    rate: Annotated[StrictInt, Field(gt=0)] | None = Field(
        default=None, description="Sample rate in Hz of a numpy array."
    )

    @field_validator("format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class DistributionSaveArgs(_Strict):
    """Keyword arguments of ``aim.Distribution``."""

    bin_count: StrictInt = Field(
        default=64, ge=1, le=512, description="Number of histogram bins, 1 to 512."
    )


_HELPER_KEYS: dict[str, Any] = {"patternProperties": {"^_": {}}}
"""JSON schema of YAML helper keys, which are dropped before validation."""


class AimBlockModel(_Strict):
    """What every ``aim:`` block has, whatever its artifact type."""

    model_config = ConfigDict(json_schema_extra=_HELPER_KEYS)

    type: str
    save_args: BaseModel = Field(default_factory=NoSaveArgs)
    name: Annotated[str, _not_blank("use the entry's name")] | None = Field(
        default=None,
        json_schema_extra=_NOT_BLANK_SCHEMA,
        description="Name of the Aim sequence; defaults to the catalog entry's name.",
    )
    context: dict[ContextKey, ContextValue] = Field(
        default_factory=dict,
        description="Aim context of the sequence: a mapping of plain scalars.",
        json_schema_extra={"propertyNames": {"not": {"const": ITEM_CONTEXT_KEY}}},
    )
    enabled: StrictBool = Field(
        default=True, description="Set to false to keep the entry but not track it."
    )


class ImageBlock(AimBlockModel):
    """Track a PIL image, a uint8 or bool array, or a matplotlib figure."""

    type: Literal["image"]
    save_args: ImageSaveArgs = Field(default_factory=ImageSaveArgs)


class FigureBlock(AimBlockModel):
    """Track a plotly figure, or a matplotlib figure rendered into one."""

    type: Literal["figure"]
    save_args: NoSaveArgs = Field(default_factory=NoSaveArgs)


class TextBlock(AimBlockModel):
    """Track a string."""

    type: Literal["text"]
    save_args: NoSaveArgs = Field(default_factory=NoSaveArgs)


class AudioBlock(AimBlockModel):
    """Track a numpy array (with a rate) or wav, mp3 or flac bytes."""

    type: Literal["audio"]
    save_args: AudioSaveArgs = Field(default_factory=AudioSaveArgs)


class DistributionBlock(AimBlockModel):
    """Track the histogram of an array of numbers."""

    type: Literal["distribution"]
    save_args: DistributionSaveArgs = Field(default_factory=DistributionSaveArgs)


class MetricBlock(AimBlockModel):
    """Track one number."""

    type: Literal["metric"]
    save_args: NoSaveArgs = Field(default_factory=NoSaveArgs)


class MetricsBlock(AimBlockModel):
    """Track a flat or nested dict of numbers, one sequence per key."""

    type: Literal["metrics"]
    save_args: NoSaveArgs = Field(default_factory=NoSaveArgs)


AimBlock = Annotated[
    ImageBlock
    | FigureBlock
    | TextBlock
    | AudioBlock
    | DistributionBlock
    | MetricBlock
    | MetricsBlock,
    Field(discriminator="type"),
]
"""The ``aim:`` block of a catalog entry, chosen by its ``type``."""

BLOCK_MODELS: dict[str, type[AimBlockModel]] = {
    "image": ImageBlock,
    "figure": FigureBlock,
    "text": TextBlock,
    "audio": AudioBlock,
    "distribution": DistributionBlock,
    "metric": MetricBlock,
    "metrics": MetricsBlock,
}
_BLOCK_ADAPTER: TypeAdapter[Any] = TypeAdapter(AimBlock)


def block_json_schema() -> dict[str, Any]:
    """Return the JSON schema of the value of an ``aim:`` key, for editors.

    It is a block, or null, which turns tracking of the entry off.
    """
    blocks = _BLOCK_ADAPTER.json_schema()
    return {
        "title": "kedro-aim-cfg aim: block",
        "$defs": blocks.pop("$defs"),
        "anyOf": [
            blocks,
            {"type": "null", "description": "Do not track the entry."},
        ],
    }


def _settings_schema(schema: dict[str, Any]) -> None:
    # An empty aim.yml reads as null and means every default.
    schema["type"] = ["object", "null"]
    schema.update(_HELPER_KEYS)


class AimSettings(_Strict):
    """Run-level settings, read from ``aim.yml`` in the project's configuration."""

    model_config = ConfigDict(json_schema_extra=_settings_schema)

    enabled: StrictBool = Field(
        default=True, description="Turn all tracking of the project on or off."
    )
    repository: Annotated[str, _not_blank("use .aim in the project")] = Field(
        default=".aim",
        json_schema_extra=_REPOSITORY_SCHEMA,
        description="Aim repository: a folder (relative to the project root) or "
        "aim://host:port of an Aim tracking server.",
    )
    experiment: Annotated[str, _not_blank("use the package name")] | None = Field(
        default=None,
        json_schema_extra=_NOT_BLANK_SCHEMA,
        description="Aim experiment; defaults to the project's package name.",
    )
    run_name: Annotated[str, _not_blank("let Aim name the run")] | None = Field(
        default=None,
        json_schema_extra=_NOT_BLANK_SCHEMA,
        description="Name of the Aim run.",
    )
    description: str | None = Field(
        default=None, description="Description of the Aim run."
    )
    tags: list[StrictStr] = Field(
        default_factory=list, description="Tags added to every run."
    )
    system_tracking_interval: _Positive | None = Field(
        default=None,
        description="Seconds between system metric samples; null turns them off.",
    )
    capture_terminal_logs: StrictBool = Field(
        default=False,
        description="Capture the terminal output into the run. This replaces "
        "sys.stdout for the whole process.",
    )
    log_system_params: StrictBool = Field(
        default=False,
        description="Log system parameters. Aim then also stores the environment "
        "variables, which may hold secrets.",
    )
    disabled_pipelines: list[StrictStr] = Field(
        default_factory=list,
        description="Pipelines whose runs open no Aim run.",
    )
    run_hash: Annotated[str, AfterValidator(_run_hash)] | None = Field(
        default=None,
        json_schema_extra={"pattern": _whole(RUN_HASH_PATTERN.strip("^$"))},
        description="Hash of an existing run to add to instead of starting one; "
        "the KEDRO_AIM_RUN_HASH environment variable takes precedence.",
    )
    when_unavailable: Literal["fail", "continue"] = Field(
        default="fail",
        description="When the repository cannot be opened: fail before any node "
        "runs, or run the pipeline without tracking and warn once.",
    )
    connect_timeout: _Positive = Field(
        default=5.0,
        description="Seconds to wait for a remote Aim server to answer at start.",
    )
    close_timeout: _Positive = Field(
        default=60.0,
        description="Seconds to wait for Aim to close the run; past that, the run "
        "is left unclosed and a warning says so.",
    )
    tracking_errors: Literal["warn", "raise"] = Field(
        default="warn",
        description="What a save that is saved but cannot be tracked does: warn, "
        "or raise an error that fails the node (the data stays saved).",
    )
    run_input: (
        Annotated[
            str,
            AfterValidator(_catalog_name),
            WithJsonSchema(
                {"type": "string", "minLength": 1, "not": {"pattern": r"[\s{}]"}}
            ),
        ]
        | None
    ) = Field(
        default="aim_run",
        description="Catalog entry through which nodes receive the active run; "
        "null adds none.",
    )

    @field_validator("repository")
    @classmethod
    def _check_repository(cls, value: str) -> str:
        if "://" not in value:
            return value
        match = _REMOTE_REPOSITORY.fullmatch(value)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise ValueError(
                f"'{value}' is not a repository address; use a local folder or "
                "aim://HOST:PORT with a port from 1 to 65535"
            )
        return value

    @property
    def is_remote(self) -> bool:
        """Whether the repository is an Aim tracking server."""
        return self.repository.startswith("aim://")

    def repository_for(self, project_path: str | Path) -> str:
        """Return the repository as Aim expects it.

        Like Aim's own ``--repo`` option, a local repository may be named by the
        ``.aim`` folder itself or by the folder that holds it.

        Args:
            project_path: The project root that relative folders are taken from.

        Returns:
            The ``aim://`` address unchanged, or the absolute folder holding
            ``.aim``.
        """
        if self.is_remote:
            return self.repository
        path = Path(self.repository).expanduser()
        if not path.is_absolute():
            path = Path(project_path) / path
        path = path.resolve()
        return str(path.parent if path.name == ".aim" else path)


def _drop_helper_keys(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return {k: v for k, v in raw.items() if not str(k).startswith("_")}
    return raw


def _loc_to_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    parts = [prefix] if prefix else []
    parts.extend(str(part) for part in loc)
    return ".".join(parts) or "<root>"


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Return the keys allowed at ``loc`` inside ``model``, for error messages."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return list(getattr(current, "model_fields", {}))


def _show(value: Any) -> str:
    """Write ``value`` as YAML's flow style would, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_show(k)}: {_show(v)}" for k, v in value.items())
        return f"{{{items}}}"
    if isinstance(value, list | tuple):
        return f"[{', '.join(map(_show, value))}]"
    return repr(value)


def _some(keys: list[str]) -> str:
    return ", ".join(keys) if len(keys) <= 4 else f"{keys[0]}, {keys[1]}, ..."


_NOT_A_MAPPING = {"model_type", "model_attributes_type", "dict_type"}
_DICT_KEY = "[key]"


def _describe_type(block: Any) -> str:
    """Say what is wrong with a block's artifact type."""
    choices = ", ".join(ARTIFACT_TYPES)
    if not isinstance(block, Mapping) or "type" not in block:
        return f"is missing; set it to one of: {choices}"
    tag = block["type"]
    if isinstance(tag, list | dict):
        return f"must be one artifact type, got {kind_of(tag)}; allowed: {choices}"
    return f"{_show(tag)} is not an artifact type; allowed: {choices}"


def _describe_error(
    error: Any, model: type[BaseModel] | None
) -> tuple[tuple[int | str, ...], str]:
    """Turn one pydantic error into a key path and a message for the user."""
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")

    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return ("type",), _describe_type(value if kind == "union_tag_invalid" else {})
    if kind == "extra_forbidden" and model is not None:
        allowed = _allowed_keys(model, loc[:-1])
        hint = f"; allowed: {', '.join(allowed)}" if allowed else "; none allowed"
        return loc, f"unknown key{hint}"
    if _DICT_KEY in loc:
        # pydantic places a bad key of a mapping under the key itself.
        loc = loc[: loc.index(_DICT_KEY) - 1]
        if kind == "string_type":
            return loc, (
                f"keys must be strings, got {kind_of(value)} key {_show(value)}; "
                "quote it"
            )
    if kind in _NOT_A_MAPPING:
        if model is None and not loc:
            keys = "type, name, ..."
        else:
            keys = _some(_allowed_keys(model, loc)) if model is not None else ""
        of = f" of keys ({keys})" if keys else ""
        return loc, f"must be a mapping{of}, got {kind_of(value)}"

    message = str(error["msg"])
    if kind == "value_error" and "error" in error.get("ctx", {}):
        message = str(error["ctx"]["error"])
    got = _show(value)
    said = "got " in message or (kind == "value_error" and got in message)
    if kind != "missing" and "input" in error and not said:
        message = f"{message} (got {got})"
    return loc, message


def validation_problems(
    exc: ValidationError,
    *,
    source: str,
    entry: str,
    prefix: str,
    block_type: str | None = None,
    model: type[BaseModel] | None = None,
) -> list[ConfigProblem]:
    """Turn a pydantic error into one problem per invalid value.

    Args:
        exc: The pydantic validation error.
        source: The configuration file(s), for the message.
        entry: The catalog entry, or an empty string for ``aim.yml``.
        prefix: The key path of the validated mapping, such as ``aim``.
        block_type: The block's artifact type, when validating a block.
        model: The validated model, used to list allowed keys.

    Returns:
        The problems, in pydantic's order.
    """
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        target = model
        if (
            isinstance(block_type, str)
            and block_type in BLOCK_MODELS
            and loc[:1] == (block_type,)
        ):
            # A discriminated union puts the tag first; the user never wrote it.
            loc = loc[1:]
            target = BLOCK_MODELS[block_type]
        loc, message = _describe_error({**error, "loc": loc}, target)
        problems.append(
            ConfigProblem(source, entry, _loc_to_path(prefix, loc), message)
        )
    return problems


def parse_block(raw: Any, *, source: str = "", entry: str = "") -> AimBlockModel:
    """Validate an ``aim:`` block.

    Keys starting with an underscore are YAML helpers and are dropped first.

    Args:
        raw: The block as read from the catalog.
        source: The catalog file(s), for error messages.
        entry: The catalog entry, for error messages.

    Returns:
        The block model of the block's artifact type.

    Raises:
        AimConfigError: With every problem of the block.
    """
    raw = _drop_helper_keys(raw)
    try:
        return _BLOCK_ADAPTER.validate_python(raw)  # type: ignore[no-any-return]
    except ValidationError as exc:
        block_type = raw.get("type") if isinstance(raw, Mapping) else None
        problems = validation_problems(
            exc, source=source, entry=entry, prefix="aim", block_type=block_type
        )
        raise AimConfigError(problems, what="the catalog") from exc


def parse_settings(raw: Any, *, source: str = "aim.yml") -> AimSettings:
    """Validate the settings read from ``aim.yml``.

    Args:
        raw: The mapping read from ``aim.yml``; ``None`` means all defaults.
        source: The file(s) it came from, for error messages.

    Returns:
        The settings.

    Raises:
        AimConfigError: With every problem of the file.
    """
    try:
        return AimSettings.model_validate(_drop_helper_keys({} if raw is None else raw))
    except ValidationError as exc:
        problems = validation_problems(
            exc, source=source, entry="", prefix="", model=AimSettings
        )
        raise AimConfigError(problems, what="aim.yml") from exc
