"""
How well probabilities match how often they are right (no ROS).

The expected calibration error (ECE) of a set of predictions: their winning probabilities are put
in ECE_BINS equal-width bins over [0, 1]; in each bin, the gap between the mean winning
probability and the share of predictions that are right, weighted by the bin's share of the
predictions. 0 for perfectly calibrated predictions; a classifier that always states 1 has an
ECE equal to its error rate.

Temperature scaling (Guo et al. 2017) divides a model's logits by one number T, fitted on held-out
data to minimise the negative log-likelihood: it changes how sure the scores are, never which
class wins.
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


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of ``logits / temperature`` (float64, rows sum to 1)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, true: np.ndarray) -> float:
    """
    Return the temperature in [0.05, 20] that minimises the mean negative log-likelihood.

    ``logits`` (N, C) from held-out data, ``true`` (N,) class indices.
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    true = np.asarray(true)
    if logits.ndim != 2 or true.shape != logits.shape[:1] or not len(true):
        raise ValueError(f'need logits (N, C) and true (N,) with N > 0; got {logits.shape}, '
                         f'{true.shape}')

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(true)), true].mean())

    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method='bounded')
    return float(np.exp(best.x))
