"""Nodes that train, evaluate and chart a classifier of the digits."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    f1_score,
    precision_recall_fscore_support,
)

logger = logging.getLogger(__name__)


def train_model(
    train_features: np.ndarray, train_labels: np.ndarray, parameters: dict[str, Any]
) -> LogisticRegression:
    """Fit a multinomial logistic regression.

    Args:
        train_features: Scaled pixels of shape ``(n_samples, 64)``.
        train_labels: Digit labels of shape ``(n_samples,)``.
        parameters: Keyword arguments of ``LogisticRegression``.

    Returns:
        The fitted classifier.
    """
    classifier = LogisticRegression(**parameters)
    classifier.fit(train_features, train_labels)
    return classifier


def predict(
    classifier: LogisticRegression, test_features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Predict the digit of each test sample.

    Args:
        classifier: The fitted classifier.
        test_features: Scaled pixels of shape ``(n_samples, 64)``.

    Returns:
        The predicted labels, of shape ``(n_samples,)``, and the predicted
        probabilities, of shape ``(n_samples, n_classes)``.
    """
    probabilities = classifier.predict_proba(test_features)
    predictions = classifier.classes_[probabilities.argmax(axis=1)]
    return predictions, probabilities


def evaluate_model(
    test_labels: np.ndarray, test_predictions: np.ndarray
) -> tuple[dict[str, Any], float, str]:
    """Score the predictions on the test set.

    Args:
        test_labels: True digit labels.
        test_predictions: Predicted digit labels.

    Returns:
        The metrics (accuracy, macro and weighted F1, and the F1 score of each digit
        nested under ``per_class_f1``), the accuracy on its own, and scikit-learn's
        text classification report.
    """
    accuracy = float(accuracy_score(test_labels, test_predictions))
    digits = np.unique(test_labels)
    per_class = f1_score(test_labels, test_predictions, labels=digits, average=None)
    metrics = {
        "accuracy": accuracy,
        "macro_f1": float(f1_score(test_labels, test_predictions, average="macro")),
        "weighted_f1": float(
            f1_score(test_labels, test_predictions, average="weighted")
        ),
        "per_class_f1": {
            f"digit_{digit}": float(score)
            for digit, score in zip(digits, per_class, strict=True)
        },
    }
    logger.info("Test accuracy: %.4f", accuracy)

    report = classification_report(
        test_labels,
        test_predictions,
        labels=digits,
        target_names=[f"digit {digit}" for digit in digits],
        digits=3,
    )
    return metrics, accuracy, report


def plot_confusion_matrix(
    test_labels: np.ndarray, test_predictions: np.ndarray
) -> Figure:
    """Draw the confusion matrix of the test predictions.

    The figure is built with matplotlib's object-oriented API rather than
    ``pyplot``, so it is never registered with pyplot and needs no closing.

    Args:
        test_labels: True digit labels.
        test_predictions: Predicted digit labels.

    Returns:
        The matplotlib figure.
    """
    figure = Figure(figsize=(6, 5.5), layout="constrained")
    axes = figure.add_subplot()
    ConfusionMatrixDisplay.from_predictions(
        test_labels, test_predictions, ax=axes, cmap="Blues", colorbar=False
    )
    axes.set_title("Confusion matrix on the test set")
    return figure


def plot_class_scores(
    test_labels: np.ndarray, test_predictions: np.ndarray
) -> go.Figure:
    """Chart the precision, recall and F1 score of each digit as grouped bars.

    Args:
        test_labels: True digit labels.
        test_predictions: Predicted digit labels.

    Returns:
        The plotly figure.
    """
    digits = np.unique(test_labels)
    precision, recall, f1, _ = precision_recall_fscore_support(
        test_labels, test_predictions, labels=digits
    )
    names = [str(digit) for digit in digits]

    figure = go.Figure(
        [
            go.Bar(name=score_name, x=names, y=scores)
            for score_name, scores in (
                ("precision", precision),
                ("recall", recall),
                ("F1", f1),
            )
        ]
    )
    figure.update_layout(
        title="Scores of each digit on the test set",
        barmode="group",
        xaxis_title="digit",
        yaxis={"title": "score", "range": [min(0.8, float(f1.min())), 1.0]},
    )
    return figure


def summarise_confidence(test_probabilities: np.ndarray) -> np.ndarray:
    """Take the probability of the predicted class of each test sample.

    Args:
        test_probabilities: Predicted probabilities of shape
            ``(n_samples, n_classes)``.

    Returns:
        The largest probability of each sample, of shape ``(n_samples,)``.
    """
    return test_probabilities.max(axis=1)
