"""Conversion of saved data into Aim objects, one converter per artifact type."""

from __future__ import annotations

import inspect
import io
import wave
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from aim import Audio, Distribution, Figure, Image, Text
from PIL import Image as PILImage

from kedro_aim_cfg.artifacts import (
    CONVERTERS,
    TrackedItem,
    convert,
    to_audio,
    to_distribution,
    to_figure,
    to_image,
    to_metric,
    to_text,
)
from kedro_aim_cfg.models import (
    ARTIFACT_TYPES,
    ITEM_CONTEXT_KEY,
    AudioSaveArgs,
    DistributionSaveArgs,
    ImageSaveArgs,
    NoSaveArgs,
)


@pytest.fixture
def mpl_figure() -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(3, 2), dpi=40)
    axes.imshow(np.eye(4))
    yield figure
    plt.close(figure)


def plotly_bar() -> Any:
    import plotly.graph_objects as go

    return go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))


def wav_bytes(frames: int = 400, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(rate)
        clip.writeframes(np.zeros(frames, dtype=np.int16).tobytes())
    return buffer.getvalue()


AIM_CLASSES = {
    "Image": Image,
    "Audio": Audio,
    "Distribution": Distribution,
    "Figure": Figure,
    "Text": Text,
}


def pixels(image: Image) -> np.ndarray:
    return np.asarray(image.to_pil_image())


class TestToImage:
    @pytest.mark.parametrize(
        ("array", "size", "mode"),
        [
            (np.zeros((4, 6), dtype=np.uint8), (6, 4), "L"),
            (np.zeros((4, 6, 1), dtype=np.uint8), (6, 4), "L"),
            (np.zeros((4, 6, 3), dtype=np.uint8), (6, 4), "RGB"),
            (np.zeros((4, 6, 4), dtype=np.uint8), (6, 4), "RGBA"),
        ],
        ids=["HxW", "HxWx1", "HxWx3", "HxWx4"],
    )
    def test_uint8_arrays(
        self, array: np.ndarray, size: tuple[int, int], mode: str
    ) -> None:
        image = to_image(array, {})

        assert isinstance(image, Image)
        assert (image.width, image.height) == size
        assert image.to_pil_image().mode == mode

    def test_uint8_values_are_kept(self) -> None:
        array = np.array([[0, 7], [128, 255]], dtype=np.uint8)

        assert pixels(to_image(array, {})).tolist() == array.tolist()

    def test_bool_array_becomes_black_and_white(self) -> None:
        array = np.array([[True, False], [False, True]])

        assert pixels(to_image(array, {})).tolist() == [[255, 0], [0, 255]]

    def test_pil_image(self) -> None:
        source = PILImage.new("RGB", (5, 3), color=(10, 20, 30))

        image = to_image(source, {"caption": "tile", "format": "png"})

        assert (image.width, image.height, image.caption) == (5, 3, "tile")
        assert pixels(image)[0, 0].tolist() == [10, 20, 30]

    def test_save_args_reach_aim(self) -> None:
        save_args = ImageSaveArgs(format="jpg", caption="c", quality=50)

        image = to_image(np.zeros((4, 4, 3), dtype=np.uint8), save_args.model_dump())

        assert (image.format, image.caption) == ("jpeg", "c")

    def test_matplotlib_figure(self, mpl_figure: Any) -> None:
        image = to_image(mpl_figure, {})

        assert (image.width, image.height) == (120, 80)
        assert image.format.lower() == "png"

    @pytest.mark.parametrize(
        ("data", "error", "message"),
        [
            (
                np.zeros((4, 4), dtype=np.float64),
                TypeError,
                r"an image array must be of dtype uint8 or bool, got float64; "
                r"scale it to 0-255",
            ),
            (
                np.zeros((4, 4), dtype=np.int64),
                TypeError,
                r"must be of dtype uint8 or bool, got int64",
            ),
            (
                np.zeros(4, dtype=np.uint8),
                ValueError,
                r"an image array must have 2 or 3 dimensions, got shape \(4,\)",
            ),
            (
                np.zeros((2, 2, 2, 3), dtype=np.uint8),
                ValueError,
                r"must have 2 or 3 dimensions, got shape \(2, 2, 2, 3\)",
            ),
            (
                "picture.png",
                TypeError,
                r"image takes a PIL image, a uint8 or bool numpy array or a "
                r"matplotlib figure, got builtins\.str",
            ),
            (
                [[0, 1], [1, 0]],
                TypeError,
                r"image takes a PIL image.*got builtins\.list",
            ),
        ],
        ids=["float array", "int64 array", "1-D", "4-D", "str", "list"],
    )
    def test_rejected(self, data: Any, error: type[Exception], message: str) -> None:
        with pytest.raises(error, match=message):
            to_image(data, {})


class TestToFigure:
    def test_plotly_figure(self) -> None:
        figure = to_figure(plotly_bar(), {})

        assert isinstance(figure, Figure)
        assert [trace.type for trace in figure.to_plotly_figure().data] == ["bar"]

    def test_matplotlib_figure_is_one_image_trace(self, mpl_figure: Any) -> None:
        plotly_figure = to_figure(mpl_figure, {}).to_plotly_figure()

        (trace,) = plotly_figure.data
        assert trace.type == "image"
        assert trace.source.startswith("data:image/png;base64,")
        assert (plotly_figure.layout.width, plotly_figure.layout.height) == (120, 80)

    @pytest.mark.parametrize(
        "data",
        [PILImage.new("RGB", (2, 2)), {"data": []}, "figure"],
        ids=["PIL image", "dict", "str"],
    )
    def test_rejected(self, data: Any) -> None:
        with pytest.raises(
            TypeError, match=r"figure takes a plotly or matplotlib figure, got "
        ):
            to_figure(data, {})


class TestToText:
    def test_str(self) -> None:
        text = to_text("report\nline 2", {})

        assert isinstance(text, Text)
        assert text.data == "report\nline 2"

    @pytest.mark.parametrize(
        ("data", "got"),
        [(b"bytes", "builtins.bytes"), (3, "builtins.int"), (None, "NoneType")],
    )
    def test_rejected(self, data: Any, got: str) -> None:
        with pytest.raises(
            TypeError, match=rf"text takes a str or a pandas DataFrame, got .*{got}"
        ):
            to_text(data, {})


class TestToAudio:
    @pytest.mark.parametrize(
        ("data", "detected"),
        [
            (wav_bytes(), "wav"),
            (b"fLaC\x00\x00\x00\x22" + bytes(40), "flac"),
            (b"ID3\x04\x00" + bytes(40), "mp3"),
            (b"\xff\xfb\x90\x00" + bytes(40), "mp3"),
            (b"\xff\xf3\x90\x00" + bytes(40), "mp3"),
            (bytearray(wav_bytes()), "wav"),
            (io.BytesIO(wav_bytes()), "wav"),
        ],
        ids=[
            "wav",
            "flac",
            "mp3 ID3",
            "mp3 frame",
            "mp3 mpeg2",
            "bytearray",
            "BytesIO",
        ],
    )
    def test_format_is_sniffed_from_bytes(self, data: Any, detected: str) -> None:
        expected = data.getvalue() if isinstance(data, io.BytesIO) else bytes(data)

        audio = to_audio(data, {"caption": "clip"})

        assert isinstance(audio, Audio)
        assert audio.storage["format"] == detected
        assert audio.storage["caption"] == "clip"
        assert audio.get().getvalue() == expected

    def test_given_format_wins(self) -> None:
        audio = to_audio(b"\x00\x01 raw mp3 frames", {"format": "mp3", "rate": 5})

        assert audio.storage["format"] == "mp3"

    def test_numpy_array_with_rate(self) -> None:
        from aim.sdk.objects.io import wavfile

        samples = np.sin(np.linspace(0, 6.28, 800)).astype(np.float32)

        audio = to_audio(samples, AudioSaveArgs(rate=8000, format="mp3").model_dump())

        assert audio.storage["format"] == "wav"
        rate, read_back = wavfile.read(audio.get())
        assert rate == 8000
        np.testing.assert_array_equal(read_back, samples)

    @pytest.mark.parametrize(
        ("data", "save_args", "error", "message"),
        [
            (
                np.zeros(10, dtype=np.float32),
                {},
                ValueError,
                r"audio from a numpy array needs save_args\.rate",
            ),
            (
                np.zeros(10, dtype=np.float32),
                {"rate": None},
                ValueError,
                r"needs save_args\.rate",
            ),
            (
                b"OggS\x00\x02" + bytes(20),
                {},
                ValueError,
                r"cannot tell the audio format of these bytes; set save_args\.format "
                r"to wav, mp3 or flac",
            ),
            (
                "clip.wav",
                {},
                TypeError,
                r"audio takes a numpy array or wav, mp3 or flac bytes, "
                r"got builtins\.str",
            ),
            ([0.0, 0.1], {"rate": 8000}, TypeError, r"got builtins\.list"),
        ],
        ids=["no rate", "rate null", "ogg bytes", "path", "list"],
    )
    def test_rejected(
        self,
        data: Any,
        save_args: dict[str, Any],
        error: type[Exception],
        message: str,
    ) -> None:
        with pytest.raises(error, match=message):
            to_audio(data, save_args)


class TestToDistribution:
    @pytest.mark.parametrize(
        "data",
        [
            [1, 2, 3, 4],
            (1.0, 2.5, 3.0, 4.0),
            np.arange(4),
            np.arange(4.0).reshape(2, 2),
        ],
        ids=["list", "tuple", "int array", "2-D array"],
    )
    def test_accepted(self, data: Any) -> None:
        distribution = to_distribution(data, {"bin_count": 4})

        assert isinstance(distribution, Distribution)
        assert distribution.bin_count == 4
        assert int(np.sum(distribution.weights)) == 4

    def test_default_bins(self) -> None:
        save_args = DistributionSaveArgs().model_dump()

        assert to_distribution(np.linspace(0, 1, 100), save_args).bin_count == 64

    @pytest.mark.parametrize(
        ("data", "error", "message"),
        [
            (
                [1.0, float("nan")],
                ValueError,
                r"distribution samples contain NaN or infinite values",
            ),
            (np.array([1.0, np.inf]), ValueError, r"contain NaN or infinite values"),
            ([], ValueError, r"distribution got no samples"),
            (
                ["a", "b"],
                TypeError,
                r"distribution takes an array of numbers, got builtins\.list",
            ),
            ({"a": 1}, TypeError, r"distribution takes an array of numbers"),
        ],
        ids=["NaN", "inf", "empty", "strings", "dict"],
    )
    def test_rejected(self, data: Any, error: type[Exception], message: str) -> None:
        with pytest.raises(error, match=message):
            to_distribution(data, {})


class TestToMetric:
    @pytest.mark.parametrize(
        ("data", "expected", "kind"),
        [
            (3, 3, int),
            (0.25, 0.25, float),
            (np.float32(0.5), 0.5, float),
            (np.int64(7), 7, int),
            (np.array(0.75), 0.75, float),
            (np.array([2]), 2, int),
            (Fraction(1, 4), 0.25, float),
        ],
        ids=["int", "float", "float32", "int64", "0-d array", "1-item array", "frac"],
    )
    def test_accepted(self, data: Any, expected: float, kind: type) -> None:
        value = to_metric(data, {})

        assert value == expected
        assert type(value) is kind

    @pytest.mark.parametrize(
        ("data", "got"),
        [
            ("0.5", "builtins.str"),
            (True, "builtins.bool"),
            (np.bool_(True), "builtins.bool"),
            (None, "builtins.NoneType"),
            (Decimal("0.5"), "decimal.Decimal"),
            (np.array([1, 2]), "numpy.ndarray"),
            ([0.5], "builtins.list"),
        ],
        ids=["str", "bool", "numpy bool", "None", "Decimal", "array", "list"],
    )
    def test_rejected(self, data: Any, got: str) -> None:
        with pytest.raises(TypeError, match=rf"metric takes a number, got {got}"):
            to_metric(data, {})


class TestSaveArgsMatchAim:
    """Each save_args model must stay a subset of the Aim object's parameters."""

    @pytest.mark.parametrize(
        ("model", "aim_class", "data_parameter"),
        [
            (ImageSaveArgs, "Image", "image"),
            (AudioSaveArgs, "Audio", "data"),
            (DistributionSaveArgs, "Distribution", "samples"),
        ],
    )
    def test_fields_are_constructor_parameters(
        self, model: type, aim_class: str, data_parameter: str
    ) -> None:
        parameters = inspect.signature(AIM_CLASSES[aim_class]).parameters

        assert set(model.model_fields) <= set(parameters) - {data_parameter}
        for name, field in model.model_fields.items():
            default = parameters[name].default
            if field.default is not None and default not in ("", None):
                assert field.default == default, name

    @pytest.mark.parametrize("aim_class", ["Figure", "Text"])
    def test_types_without_save_args_take_only_data(self, aim_class: str) -> None:
        parameters = inspect.signature(AIM_CLASSES[aim_class]).parameters

        assert len(parameters) == 1
        assert NoSaveArgs.model_fields == {}


class TestConvert:
    def test_metrics_nested_names(self) -> None:
        data = {"accuracy": 0.5, "loss": {"train": 0.25, "test": {"a": 1}}}

        items = convert("metrics", "scores", {"subset": "test"}, {}, data)

        assert items == [
            TrackedItem("scores.accuracy", 0.5, {"subset": "test"}),
            TrackedItem("scores.loss.train", 0.25, {"subset": "test"}),
            TrackedItem("scores.loss.test.a", 1, {"subset": "test"}),
        ]

    def test_metrics_numpy_values_become_numbers(self) -> None:
        items = convert("metrics", "m", {}, {}, {"f1": np.float64(0.5)})

        assert items == [TrackedItem("m.f1", 0.5, {})]
        assert type(items[0].value) is float

    @pytest.mark.parametrize(
        ("data", "error", "message"),
        [
            (0.5, TypeError, r"metrics takes a dict of numbers, got builtins\.float"),
            ([0.5], TypeError, r"metrics takes a dict of numbers, got builtins\.list"),
            (
                {"loss": {"train": "low"}},
                TypeError,
                r"metrics \('scores\.loss\.train'\) takes a number, got builtins\.str",
            ),
        ],
        ids=["number", "list", "str leaf"],
    )
    def test_metrics_rejected(
        self, data: Any, error: type[Exception], message: str
    ) -> None:
        with pytest.raises(error, match=message):
            convert("metrics", "scores", {}, {}, data)

    def test_single_object(self) -> None:
        (item,) = convert("text", "report", {"subset": "test"}, {}, "hello")

        assert item.name == "report"
        assert item.context == {"subset": "test"}
        assert item.value.data == "hello"

    def test_dict_of_objects_is_tracked_item_by_item(self) -> None:
        data = {"b": "second", 3: "third", "a": "first"}

        items = convert("text", "report", {"subset": "test"}, {}, data)

        assert [(i.name, i.context, i.value.data) for i in items] == [
            ("report", {"subset": "test", ITEM_CONTEXT_KEY: "b"}, "second"),
            ("report", {"subset": "test", ITEM_CONTEXT_KEY: "3"}, "third"),
            ("report", {"subset": "test", ITEM_CONTEXT_KEY: "a"}, "first"),
        ]

    def test_a_callable_item_is_not_called(self) -> None:
        calls: list[str] = []

        def lazy() -> str:
            calls.append("called")
            return "lazy"

        with pytest.raises(TypeError, match=r"text takes a str .*got builtins\.func"):
            convert("text", "report", {}, {}, {"a": lazy})
        assert calls == []

    def test_dict_of_figures(self, mpl_figure: Any) -> None:
        items = convert(
            "figure", "plots", {}, {}, {"mpl": mpl_figure, "bar": plotly_bar()}
        )

        assert [i.context for i in items] == [{"key": "mpl"}, {"key": "bar"}]
        assert [[t.type for t in i.value.to_plotly_figure().data] for i in items] == [
            ["image"],
            ["bar"],
        ]

    def test_dict_item_of_the_wrong_type_fails_the_whole_save(self) -> None:
        with pytest.raises(
            TypeError,
            match=r"text takes a str or a pandas DataFrame, got builtins\.int",
        ):
            convert("text", "report", {}, {}, {"a": "ok", "b": 3})

    def test_context_is_not_shared_between_items(self) -> None:
        context = {"subset": "test"}

        items = convert("metric", "m", context, {}, {"a": 1, "b": 2})

        assert context == {"subset": "test"}
        assert items[0].context is not items[1].context

    def test_every_type_has_a_converter(self) -> None:
        assert set(CONVERTERS) | {"metrics"} == set(ARTIFACT_TYPES)

    @pytest.mark.parametrize("converter", list(CONVERTERS.values()))
    def test_converters_take_data_and_save_args(self, converter: Any) -> None:
        assert list(inspect.signature(converter).parameters) == ["data", "save_args"]
