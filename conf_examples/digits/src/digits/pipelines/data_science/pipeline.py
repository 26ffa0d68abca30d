"""The data science pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import (
    evaluate_model,
    plot_class_scores,
    plot_confusion_matrix,
    predict,
    summarise_confidence,
    train_model,
)


def create_pipeline(**kwargs: object) -> Pipeline:
    """Create the pipeline that trains, evaluates and charts the classifier.

    Args:
        **kwargs: Unused; accepted for the signature ``find_pipelines`` expects.

    Returns:
        The data science pipeline.
    """
    return Pipeline(
        [
            Node(
                func=train_model,
                inputs=["train_features", "train_labels", "params:model"],
                outputs="classifier",
                name="train_model",
            ),
            Node(
                func=predict,
                inputs=["classifier", "test_features"],
                outputs=["test_predictions", "test_probabilities"],
                name="predict",
            ),
            Node(
                func=evaluate_model,
                inputs=["test_labels", "test_predictions"],
                outputs=["metrics", "accuracy", "classification_report"],
                name="evaluate_model",
            ),
            Node(
                func=plot_confusion_matrix,
                inputs=["test_labels", "test_predictions"],
                outputs="confusion_matrix",
                name="plot_confusion_matrix",
            ),
            Node(
                func=plot_class_scores,
                inputs=["test_labels", "test_predictions"],
                outputs="class_scores",
                name="plot_class_scores",
            ),
            Node(
                func=summarise_confidence,
                inputs="test_probabilities",
                outputs="predicted_probabilities",
                name="summarise_confidence",
            ),
        ]
    )
