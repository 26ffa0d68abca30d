"""Errors raised by kedro-aim-cfg.

Configuration problems subclass Kedro's ``BadConfigException`` so that they read
like any other configuration error of a Kedro project; tracking problems subclass
``DatasetError`` like every other dataset failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kedro.config import BadConfigException
from kedro.io import DatasetError


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid value in an ``aim:`` block or in ``aim.yml``.

    Attributes:
        source: The file (or files) the value was read from, when known.
        entry: The catalog entry holding the block; empty for ``aim.yml``.
        path: The dotted key path of the value, for example ``aim.context.subset``.
        message: What is wrong and what is allowed.
    """

    source: str
    entry: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"entry '{self.entry}', " if self.entry else ""
        source = self.source or "<unknown file>"
        return f"{source}: {where}{self.path}: {self.message}"


class AimConfigError(BadConfigException):
    """The ``aim:`` blocks of a catalog or the ``aim.yml`` settings are invalid.

    The message lists every problem found, one per line, each with its file,
    catalog entry, key path and what is allowed.
    """

    def __init__(self, problems: Iterable[ConfigProblem], what: str = "aim") -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"Invalid kedro-aim-cfg configuration in {what} ({count} {noun}):"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        super().__init__("\n".join(lines))


class AimTrackingError(DatasetError):
    """Data could not be tracked into Aim.

    Raised only where tracking failures were asked to be errors; by default a
    failure to track is a warning and the data stays saved.
    """


class AimRunError(RuntimeError):
    """The Aim run of a Kedro run could not be opened or used."""
