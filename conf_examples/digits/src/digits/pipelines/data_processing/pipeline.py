"""The data processing pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import (
    draw_sample_digits,
    load_digit_images,
    split_data,
    synthesise_digit_sound,
)


def create_pipeline(**kwargs: object) -> Pipeline:
    """Create the pipeline that loads, splits and renders the digits.

    Args:
        **kwargs: Unused; accepted for the signature ``find_pipelines`` expects.

    Returns:
        The data processing pipeline.
    """
    return Pipeline(
        [
            Node(
                func=load_digit_images,
                inputs=None,
                outputs=["digit_images", "digit_labels"],
                name="load_digit_images",
            ),
            Node(
                func=split_data,
                inputs=["digit_images", "digit_labels", "params:split"],
                outputs=[
                    "train_features",
                    "test_features",
                    "train_labels",
                    "test_labels",
                ],
                name="split_data",
            ),
            Node(
                func=draw_sample_digits,
                inputs=["digit_images", "digit_labels", "params:sample_digits"],
                outputs="sample_digits",
                name="draw_sample_digits",
            ),
            Node(
                func=synthesise_digit_sound,
                inputs=["digit_images", "digit_labels", "params:digit_sound"],
                outputs="digit_sound",
                name="synthesise_digit_sound",
            ),
        ]
    )
