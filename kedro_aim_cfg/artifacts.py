"""Conversion of saved data into the Aim objects of each artifact type.

Each artifact type has one converter that takes the data a node returned and the
block's ``save_args`` and gives the value to pass to ``Run.track``. Converters
raise ``TypeError`` or ``ValueError`` naming what they accept; the tracking
dataset turns those into warnings so that the data itself is never lost.
"""

from __future__ import annotations

import base64
import io
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kedro_aim_cfg.models import ITEM_CONTEXT_KEY


@dataclass(frozen=True)
class TrackedItem:
    """One value to track: its sequence name, Aim value and context."""

    name: str
    value: Any
    context: dict[str, Any] = field(default_factory=dict)


def _type_name(data: Any) -> str:
    kind = type(data)
    return f"{kind.__module__}.{kind.__qualname__}"


def _has_type(data: Any, module: str, name: str) -> bool:
    """Check the class of ``data`` without importing optional libraries."""
    return any(
        cls.__module__.split(".")[0] == module and cls.__name__ == name
        for cls in type(data).__mro__
    )


def _is_matplotlib_figure(data: Any) -> bool:
    return _has_type(data, "matplotlib", "Figure")


def _is_plotly_figure(data: Any) -> bool:
    return _has_type(data, "plotly", "BaseFigure")


def prepare_converters() -> None:
    """Do, in the calling thread, the imports that converters do on first use.

    Plotly imports IPython when it makes its first figure. A module that one
    thread is importing is visible half-initialised to the others, and
    matplotlib looks IPython up when it saves a figure, so under a thread
    runner a save can fail. Called before a pipeline starts, this makes the
    first figure there instead.
    """
    try:
        import plotly.graph_objects as go
    except ImportError:
        return
    go.Figure()


def is_figure(data: Any) -> bool:
    """Whether ``data`` is a matplotlib or plotly figure."""
    return _is_matplotlib_figure(data) or _is_plotly_figure(data)


def _render_matplotlib(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def to_image(data: Any, save_args: Mapping[str, Any]) -> Any:
    """Convert a PIL image, a uint8 or bool array or a matplotlib figure."""
    from aim.sdk.objects import Image
    from PIL import Image as PILImage

    if isinstance(data, np.ndarray):
        if data.dtype == np.bool_:
            data = data.astype(np.uint8) * 255
        elif data.dtype != np.uint8:
            raise TypeError(
                f"an image array must be of dtype uint8 or bool, got {data.dtype}; "
                "scale it to 0-255 and cast it to uint8"
            )
        if data.ndim == 3 and data.shape[2] == 1:
            data = data[:, :, 0]
        if data.ndim not in (2, 3):
            raise ValueError(
                f"an image array must have 2 or 3 dimensions, got shape {data.shape}"
            )
        data = PILImage.fromarray(data)
    elif _is_matplotlib_figure(data):
        data = PILImage.open(io.BytesIO(_render_matplotlib(data)))
    elif not isinstance(data, PILImage.Image):
        raise TypeError(
            "image takes a PIL image, a uint8 or bool numpy array or a matplotlib "
            f"figure, got {_type_name(data)}"
        )
    args = dict(save_args)
    # Aim stores Pillow's own format name ("PNG") unless one is given.
    args.setdefault("format", (data.format or "png").lower())
    return Image(data, **args)


def to_figure(data: Any, save_args: Mapping[str, Any]) -> Any:
    """Convert a plotly figure, or render a matplotlib figure into one.

    Plotly's own converter drops images and heat maps (a confusion matrix among
    them), so a matplotlib figure is rendered to PNG at its own size and DPI and
    shown as the single image of a plotly figure.
    """
    from aim.sdk.objects import Figure

    if _is_matplotlib_figure(data):
        import plotly.graph_objects as go

        png = base64.b64encode(_render_matplotlib(data)).decode("ascii")
        width, height = (int(v) for v in data.get_size_inches() * data.dpi)
        data = go.Figure(go.Image(source=f"data:image/png;base64,{png}"))
        data.update_layout(
            width=width,
            height=height,
            margin={"l": 0, "r": 0, "t": 0, "b": 0},
            xaxis={"visible": False},
            yaxis={"visible": False},
        )
    elif not _is_plotly_figure(data):
        raise TypeError(
            f"figure takes a plotly or matplotlib figure, got {_type_name(data)}"
        )
    return Figure(data, **dict(save_args))


def to_text(data: Any, save_args: Mapping[str, Any]) -> Any:
    """Convert a string, or a pandas DataFrame or Series rendered as text."""
    from aim.sdk.objects import Text

    if _has_type(data, "pandas", "DataFrame") or _has_type(data, "pandas", "Series"):
        data = data.to_string()
    if not isinstance(data, str):
        raise TypeError(
            f"text takes a str or a pandas DataFrame, got {_type_name(data)}"
        )
    return Text(data, **dict(save_args))


_AUDIO_SIGNATURES = (
    (b"RIFF", "wav"),
    (b"fLaC", "flac"),
    (b"ID3", "mp3"),
    (b"\xff\xfb", "mp3"),
    (b"\xff\xf3", "mp3"),
    (b"\xff\xf2", "mp3"),
)


def to_audio(data: Any, save_args: Mapping[str, Any]) -> Any:
    """Convert a numpy array of samples or wav, mp3 or flac bytes."""
    from aim.sdk.objects import Audio

    args = dict(save_args)
    if isinstance(data, np.ndarray):
        if args.get("rate") is None:
            raise ValueError("audio from a numpy array needs save_args.rate")
        args["format"] = "wav"
        return Audio(data, **args)

    if isinstance(data, io.BytesIO):
        data = data.getvalue()
    if not isinstance(data, bytes | bytearray):
        raise TypeError(
            "audio takes a numpy array or wav, mp3 or flac bytes, "
            f"got {_type_name(data)}"
        )
    if args.get("format") is None:
        detected = next(
            (fmt for magic, fmt in _AUDIO_SIGNATURES if data.startswith(magic)), None
        )
        if detected is None:
            raise ValueError(
                "cannot tell the audio format of these bytes; set save_args.format "
                "to wav, mp3 or flac"
            )
        args["format"] = detected
    args.pop("rate", None)
    return Audio(bytes(data), **args)


def to_distribution(data: Any, save_args: Mapping[str, Any]) -> Any:
    """Convert an array-like of finite numbers."""
    from aim.sdk.objects import Distribution

    try:
        samples = np.asarray(data, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"distribution takes an array of numbers, got {_type_name(data)}"
        ) from exc
    if samples.size == 0:
        raise ValueError("distribution got no samples")
    if not np.isfinite(samples).all():
        raise ValueError("distribution samples contain NaN or infinite values")
    return Distribution(samples, **dict(save_args))


def _as_number(value: Any, what: str) -> float | int:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} takes a number, got {_type_name(value)}")
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def to_metric(data: Any, save_args: Mapping[str, Any]) -> Any:
    """Convert one number."""
    return _as_number(data, "metric")


def _flatten(data: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, name)
        else:
            yield name, _as_number(value, f"metrics ('{name}')")


CONVERTERS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "image": to_image,
    "figure": to_figure,
    "text": to_text,
    "audio": to_audio,
    "distribution": to_distribution,
    "metric": to_metric,
}


def convert(
    artifact_type: str,
    name: str,
    context: Mapping[str, Any],
    save_args: Mapping[str, Any],
    data: Any,
) -> list[TrackedItem]:
    """Convert saved data into the items to track.

    A dict is tracked item by item, each under its key in the context, except for
    ``metrics``, where a dict is the value itself and each key becomes a sequence
    named ``<name>.<key>`` (nested keys joined with dots).

    Args:
        artifact_type: One of the artifact types of the ``aim:`` block.
        name: The sequence name.
        context: The block's context.
        save_args: Keyword arguments for the Aim object.
        data: What the node returned.

    Returns:
        The items, in the order of the data.

    Raises:
        TypeError: The data is of a type the artifact type does not take.
        ValueError: The data has the right type but cannot be tracked.
    """
    context = dict(context)
    if artifact_type == "metrics":
        if not isinstance(data, Mapping):
            raise TypeError(f"metrics takes a dict of numbers, got {_type_name(data)}")
        return [TrackedItem(key, value, context) for key, value in _flatten(data, name)]

    converter = CONVERTERS[artifact_type]
    if isinstance(data, Mapping):
        return [
            TrackedItem(
                name,
                converter(value, save_args),
                {**context, ITEM_CONTEXT_KEY: str(key)},
            )
            for key, value in data.items()
        ]
    return [TrackedItem(name, converter(data, save_args), context)]
