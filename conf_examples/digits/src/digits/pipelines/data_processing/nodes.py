"""Nodes that load the digits and render them as an image and a sound."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

logger = logging.getLogger(__name__)

MAX_INTENSITY = 16
"""Largest pixel value of the scikit-learn digits (pixels range from 0 to 16)."""


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """Load the 8x8 handwritten digits bundled with scikit-learn.

    Returns:
        The images, an array of shape ``(n_samples, 8, 8)`` with values from 0 to 16,
        and their labels, an array of shape ``(n_samples,)``.
    """
    digits = load_digits()
    logger.info("Loaded %d digit images", len(digits.images))
    return digits.images, digits.target


def split_data(
    images: np.ndarray, labels: np.ndarray, parameters: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flatten the images into scaled features and split them into train and test.

    Args:
        images: Digit images of shape ``(n_samples, 8, 8)``.
        labels: Digit labels of shape ``(n_samples,)``.
        parameters: ``test_size`` and ``random_state`` of the split.

    Returns:
        The train features, test features, train labels and test labels. Features
        are the 64 pixels of each image scaled to the range 0 to 1.
    """
    features = images.reshape(len(images), -1) / MAX_INTENSITY
    train_features, test_features, train_labels, test_labels = train_test_split(
        features,
        labels,
        test_size=parameters["test_size"],
        random_state=parameters["random_state"],
        stratify=labels,
    )
    return train_features, test_features, train_labels, test_labels


def draw_sample_digits(
    images: np.ndarray, labels: np.ndarray, parameters: dict[str, Any]
) -> Image.Image:
    """Draw a grid with one row per digit class and its first examples as columns.

    Args:
        images: Digit images of shape ``(n_samples, 8, 8)``.
        labels: Digit labels of shape ``(n_samples,)``.
        parameters: ``samples_per_digit`` (columns of the grid), ``pixel_scale``
            (screen pixels per image pixel) and ``padding`` (screen pixels between
            two images).

    Returns:
        A greyscale image, white strokes on a black background.
    """
    per_digit = parameters["samples_per_digit"]
    scale = parameters["pixel_scale"]
    padding = parameters["padding"]
    classes = np.unique(labels)
    cell = images.shape[1] * scale + padding

    grid = np.zeros(
        (len(classes) * cell + padding, per_digit * cell + padding), dtype=np.uint8
    )
    for row, digit in enumerate(classes):
        examples = images[labels == digit][:per_digit]
        for column, example in enumerate(examples):
            pixels = np.kron(example, np.ones((scale, scale)))
            top = row * cell + padding
            left = column * cell + padding
            grid[top : top + pixels.shape[0], left : left + pixels.shape[1]] = (
                pixels * 255 / MAX_INTENSITY
            ).astype(np.uint8)

    return Image.fromarray(grid)


def synthesise_digit_sound(
    images: np.ndarray, labels: np.ndarray, parameters: dict[str, Any]
) -> np.ndarray:
    """Play the pixels of one digit, row by row, as a sequence of tones.

    Each pixel becomes a note of ``note_duration`` seconds. Its pitch rises with the
    pixel's intensity, over ``octaves`` octaves above ``base_frequency``; blank
    pixels are rests. Short fades at the start and end of each note avoid clicks.

    Args:
        images: Digit images of shape ``(n_samples, 8, 8)``.
        labels: Digit labels of shape ``(n_samples,)``.
        parameters: ``digit_index`` (which image to play), ``sample_rate``,
            ``note_duration``, ``base_frequency``, ``octaves`` and ``volume``
            (from 0 to 1).

    Returns:
        Mono 16-bit PCM samples at ``sample_rate`` Hz.
    """
    index = parameters["digit_index"]
    rate = parameters["sample_rate"]
    note_length = int(rate * parameters["note_duration"])
    fade_length = max(1, note_length // 10)
    logger.info("Synthesising the pixels of image %d, a %d", index, labels[index])

    envelope = np.ones(note_length)
    envelope[:fade_length] = np.linspace(0.0, 1.0, fade_length)
    envelope[-fade_length:] = np.linspace(1.0, 0.0, fade_length)
    time = np.arange(note_length) / rate
    base_frequency = parameters["base_frequency"]
    octaves = parameters["octaves"]

    notes = []
    for intensity in images[index].ravel() / MAX_INTENSITY:
        if intensity == 0:
            notes.append(np.zeros(note_length))
            continue
        frequency = base_frequency * 2 ** (intensity * octaves)
        notes.append(np.sin(2 * np.pi * frequency * time) * envelope)

    signal = np.concatenate(notes) * parameters["volume"]
    return (signal * np.iinfo(np.int16).max).astype(np.int16)
