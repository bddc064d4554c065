"""MediaPipe pose on the demo clip: a woman seen from the chest up."""
from __future__ import annotations

import sys

from emorec_ros.gesture.features import window_features
from emorec_ros.gesture.pose import PoseEstimator
from emorec_ros.gesture.skeleton import JOINT_INDEX, stack, VISIBLE
import numpy as np
import pytest

UPPER_BODY = ('head', 'left_shoulder', 'right_shoulder')
LEGS = ('left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')


@pytest.fixture(scope='module')
def estimator():
    tensorflow_before = 'tensorflow' in sys.modules
    pose = PoseEstimator(video=True)
    assert ('tensorflow' in sys.modules) == tensorflow_before  # MediaPipe came without TensorFlow
    yield pose
    pose.close()


def test_head_and_shoulders_are_found_and_the_legs_are_missing(estimator, pexels_frame):
    frame = pexels_frame(0)
    skeleton = estimator.estimate(frame)
    assert skeleton is not None and skeleton.positions.shape == (13, 2)
    for name in UPPER_BODY:
        assert skeleton.present[JOINT_INDEX[name]], name
    for name in LEGS:
        assert not skeleton.present[JOINT_INDEX[name]], name
    height, width = frame.shape[:2]
    head, left, right = (skeleton.positions[JOINT_INDEX[n]] for n in UPPER_BODY)
    assert 0 <= head[0] < width and 0 <= head[1] < height
    assert left[0] > head[0] > right[0]  # she faces the camera: her left is on the image's right
    assert head[1] < min(left[1], right[1])


def test_a_window_of_her_skeletons_gives_finite_features(estimator, pexels_frame):
    skeletons = [estimator.estimate(pexels_frame(i)) for i in range(140, 170)]
    assert all(s is not None for s in skeletons)
    positions, visibility = stack(skeletons)
    assert (visibility[:, [JOINT_INDEX[n] for n in LEGS]] < VISIBLE).all()
    features = window_features(positions, visibility, fps=23.98)
    assert np.isfinite(features.sequence).all() and np.isfinite(features.kinematics).all()


def test_an_empty_image_has_nobody_and_bad_input_is_refused():
    still = PoseEstimator(video=False)
    try:
        assert still.estimate(np.zeros((480, 640, 3), np.uint8)) is None
        with pytest.raises(ValueError):
            still.estimate(np.zeros((480, 640), np.uint8))
    finally:
        still.close()
