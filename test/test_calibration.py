"""Expected calibration error on hand-made predictions."""
from __future__ import annotations

from emorec_ros.calibration import expected_calibration_error, fit_temperature, softmax
import numpy as np
import pytest


def test_ece_of_a_small_hand_made_case():
    # Bin [0.9, 1.0): confidences 0.95, 0.95, 1.0 (1.0 goes in the last bin), 2 of 3 right:
    # |0.9667 - 0.6667| = 0.3 over 3 of 5 predictions. Bin [0.6, 0.7): 0.6, 0.6, both right:
    # |0.6 - 1| = 0.4 over 2 of 5.
    probabilities = np.array([[0.95, 0.05], [0.05, 0.95], [1.0, 0.0], [0.6, 0.4], [0.4, 0.6]])
    true = np.array([0, 1, 1, 0, 1])
    assert expected_calibration_error(probabilities, true) == pytest.approx(
        3 / 5 * 0.3 + 2 / 5 * 0.4)


def test_calibrated_and_always_certain_predictions():
    # Four at 0.75, three of them right: calibrated.
    probabilities = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probabilities, np.array([0, 0, 0, 1])) == pytest.approx(0)
    # Always certain: the ECE is the error rate.
    certain = np.eye(3)[[0, 1, 2, 0, 1]]
    assert expected_calibration_error(certain, np.array([0, 1, 2, 1, 1])) == pytest.approx(0.2)
    assert np.isnan(expected_calibration_error(np.zeros((0, 2)), np.zeros(0, int)))
    with pytest.raises(ValueError):
        expected_calibration_error(probabilities, np.zeros(3, int))


def test_temperature_scaling_recovers_the_temperature_that_made_the_labels():
    # Labels drawn from softmax(logits / 2.5): the fitted temperature comes out near 2.5, and it
    # lowers the ECE of the raw logits' softmax.
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 4, (4000, 5))
    p = softmax(logits, 2.5)
    true = np.array([rng.choice(5, p=row) for row in p])
    t = fit_temperature(logits, true)
    assert t == pytest.approx(2.5, rel=0.1)
    assert expected_calibration_error(softmax(logits, t), true) < 0.5 * expected_calibration_error(
        softmax(logits), true)
    assert softmax(logits, t).sum(axis=1) == pytest.approx(np.ones(4000))
    with pytest.raises(ValueError):
        fit_temperature(logits, true[:3])
