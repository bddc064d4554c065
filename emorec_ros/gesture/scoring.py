"""
Clip-level answers from window verdicts, and the windows of a stream classified offline (no ROS).

A clip's answer is the label with the highest mean log probability over its windows (the product
of the window probabilities, as if the windows were independent evidence), whether the windows
are the gesture node's published verdicts or windows classified here. Offline, a stream is cut
into windows of the classifier's length every ``period_s`` seconds (the node's publish period),
as ``evaluate.leave_one_movement_out`` cuts the held-out clips.
"""
from __future__ import annotations

from typing import Sequence

from emorec_ros.gesture.classify import GestureClassifier
from emorec_ros.gesture.features import cut_windows
import numpy as np

#: Smallest probability whose log counts (a window sure of another label is not -inf).
PROBABILITY_FLOOR = 1e-12


def reorder(probabilities: Sequence[float], labels: Sequence[str],
            wanted: Sequence[str]) -> np.ndarray:
    """
    Return ``probabilities`` over ``labels`` as probabilities over ``wanted`` (len(wanted),).

    ValueError when a wanted label is missing (a classifier without templates of that label).
    """
    labels = list(labels)
    missing = [label for label in wanted if label not in labels]
    if missing:
        raise ValueError(f'no probability for {", ".join(missing)} among {", ".join(labels)}')
    return np.array([probabilities[labels.index(label)] for label in wanted], dtype=float)


def clip_answer(probabilities: np.ndarray) -> int | None:
    """
    Return the index of the label with the highest mean log probability over the windows.

    ``probabilities`` is (windows, labels); None when there is no window.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2 or not len(probabilities):
        return None
    return int(np.argmax(np.log(np.maximum(probabilities, PROBABILITY_FLOOR)).mean(axis=0)))


def stream_probabilities(classifier: GestureClassifier, positions: np.ndarray,
                         visibility: np.ndarray, fps: float, period_s: float,
                         labels: Sequence[str]) -> np.ndarray:
    """
    Classify the windows of a stream (T, J, D), (T, J) at ``fps``; return (windows, len(labels)).

    Windows of ``classifier.window_s`` every ``period_s`` seconds (``features.cut_windows``: a
    stream shorter than a window is looped to one). A window the classifier refuses (no
    shoulders seen in it) is left out, as the node leaves it out.
    """
    rows = []
    for p, v in cut_windows(positions, visibility, fps, classifier.window_s, period_s):
        try:
            result = classifier.classify(p, v, fps)
        except ValueError:
            continue
        rows.append(reorder(result.probabilities, result.labels, labels))
    return np.array(rows).reshape(len(rows), len(labels))
