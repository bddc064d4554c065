"""
How well probabilities match how often they are right (no ROS).

The expected calibration error (ECE) of a set of predictions: their winning probabilities are put
in ECE_BINS equal-width bins over [0, 1]; in each bin, the gap between the mean winning
probability and the share of predictions that are right, weighted by the bin's share of the
predictions. 0 for perfectly calibrated predictions; a classifier that always states 1 has an
ECE equal to its error rate.
"""
from __future__ import annotations

import numpy as np

#: Equal-width bins over the winning probability.
ECE_BINS = 10


def expected_calibration_error(
    probabilities: np.ndarray, true: np.ndarray, bins: int = ECE_BINS
) -> float:
    """
    Return the ECE of predictions: probabilities (N, C) over C classes, true class indices (N,).

    The winning class is the argmax of each row (the first on ties); a winning probability of
    exactly 1 falls in the last bin. NaN for N = 0.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    true = np.asarray(true)
    if probabilities.ndim != 2 or true.shape != probabilities.shape[:1] or bins < 1:
        raise ValueError(f'need probabilities (N, C), true (N,) and bins >= 1; got '
                         f'{probabilities.shape}, {true.shape}, {bins}')
    if not len(true):
        return float('nan')
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == true
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, confidence, bins) - np.bincount(which, correct, bins))
    return float(gap[count > 0].sum() / len(true))
