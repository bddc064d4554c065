"""Window features: gap filling, resampling, windows, and no NaN from missing joints."""
from __future__ import annotations

from emorec_ros.gesture.classify import GestureClassifier
from emorec_ros.gesture.features import (cut_windows, FEATURE_RATE_HZ, fill_gaps, loop_to_length,
                                         resample, window_features, window_starts)
from emorec_ros.gesture.skeleton import JOINT_INDEX, JOINTS, REST_POSE
from emorec_ros.gesture.template import Template
import numpy as np
import pytest

J = len(JOINTS)


def waving(
    frames: int, fps: float, hz: float, amplitude: float = 0.5, torso_px: float = 100.0
) -> np.ndarray:
    """Positions (frames, J, 2) in pixels: the rest pose with the right wrist swinging sideways."""
    t = np.arange(frames) / fps
    poses = np.repeat(REST_POSE[None], frames, axis=0).copy()
    poses[:, JOINT_INDEX['right_wrist'], 0] += amplitude * np.sin(2 * np.pi * hz * t)
    return poses * torso_px + [320.0, 100.0]


def test_fill_gaps_takes_the_nearest_frame_where_the_joint_was_seen():
    positions = np.arange(6, dtype=float)[:, None, None] * np.ones((6, J, 2))
    visibility = np.ones((6, J))
    wrist, knee = JOINT_INDEX['left_wrist'], JOINT_INDEX['left_knee']
    visibility[[0, 1, 3, 5], wrist] = 0.0   # seen in frames 2 and 4 only
    visibility[:, knee] = 0.0               # never seen
    filled, filled_visibility = fill_gaps(positions, visibility)
    # Ties go to the earlier frame.
    np.testing.assert_array_equal(filled[:, wrist, 0], [2, 2, 2, 2, 4, 4])
    assert (filled_visibility[:, wrist] == 1).all()
    assert (filled_visibility[:, knee] == 0).all()


def test_resample_keeps_linear_motion_and_the_duration():
    values = np.arange(61, dtype=float)  # 2 s at 30 fps, one unit per frame
    resampled = resample(values, 30.0, 15.0)
    np.testing.assert_allclose(resampled, np.arange(0, 61, 2))


def test_features_do_not_depend_on_the_frame_rate():
    at_30 = window_features(waving(61, 30.0, 1.0), np.ones((61, J)), 30.0)
    at_15 = window_features(waving(31, 15.0, 1.0), np.ones((31, J)), 15.0)
    assert at_30.sequence.shape == (31, J * 5) == at_15.sequence.shape
    np.testing.assert_allclose(at_30.sequence, at_15.sequence, atol=1e-9)
    np.testing.assert_allclose(at_30.kinematics, at_15.kinematics, atol=1e-9)


def test_a_faster_wave_has_larger_speed_kinematics():
    slow = window_features(waving(60, 30.0, 0.5), np.ones((60, J)), 30.0).kinematics
    fast = window_features(waving(60, 30.0, 2.0), np.ones((60, J)), 30.0).kinematics
    wrist = JOINT_INDEX['right_wrist']
    assert fast[wrist] > slow[wrist] + 0.8  # mean log speed: four times faster, log 4 = 1.4
    # The head does not move.
    np.testing.assert_allclose(fast[JOINT_INDEX['head']], slow[JOINT_INDEX['head']])


def test_upper_body_only_gives_finite_features():
    positions = waving(60, 30.0, 1.0)
    visibility = np.ones((60, J))
    legs = [
        JOINT_INDEX[n]
        for n in ('left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
    ]
    visibility[:, legs] = 0.0
    positions[:, legs] = np.nan
    positions[10:20, JOINT_INDEX['left_wrist']] = np.inf  # a glitch, even at visibility 1
    features = window_features(positions, visibility, 30.0)
    assert np.isfinite(features.sequence).all() and np.isfinite(features.kinematics).all()


def test_windows_without_shoulders_or_too_short_are_refused():
    visibility = np.ones((60, J))
    visibility[:, JOINT_INDEX['left_shoulder']] = 0.0
    with pytest.raises(ValueError, match='shoulders'):
        window_features(waving(60, 30.0, 1.0), visibility, 30.0)
    with pytest.raises(ValueError, match='short'):
        window_features(waving(2, 30.0, 1.0), np.ones((2, J)), 30.0)


def test_windows_cover_a_recording_and_a_short_one_loops():
    assert window_starts(100, 60, 15) == [0, 15, 30, 40]
    assert window_starts(60, 60, 15) == [0]
    assert window_starts(20, 60, 15) == [0]
    np.testing.assert_array_equal(loop_to_length(np.arange(3), 7), [0, 1, 2, 0, 1, 2, 0])
    positions, visibility = waving(20, 30.0, 1.0), np.ones((20, J))
    windows = cut_windows(positions, visibility, 30.0, window_s=2.0, stride_s=0.5)
    assert len(windows) == 1 and windows[0][0].shape == (60, J, 2)
    np.testing.assert_array_equal(windows[0][0][20:40], positions)
    assert len(cut_windows(waving(150, 30.0, 1.0), np.ones((150, J)), 30.0, 2.0, 0.5)) == 7
    assert FEATURE_RATE_HZ == 15.0


def hands(at_face: bool, seed: int, frames: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """
    Return a person nodding slowly, hands at the face or hanging; only the hands differ.

    Hands at the face get the low visibility MediaPipe gives them there (0.1-0.3).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 30.0
    poses = np.repeat(REST_POSE[None], frames, axis=0).copy()
    poses[:, JOINT_INDEX['head'], 1] += 0.05 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    visibility = np.ones((frames, J))
    if at_face:
        for side, joint in ((1, 'left'), (-1, 'right')):
            poses[:, JOINT_INDEX[f'{joint}_wrist']] = [0.1 * side, -0.3]
            poses[:, JOINT_INDEX[f'{joint}_elbow']] = [0.3 * side, 0.35]
            visibility[:, JOINT_INDEX[f'{joint}_wrist']] = rng.uniform(0.1, 0.3)
    poses += rng.normal(scale=0.01, size=poses.shape)
    return poses * 100.0 + [320.0, 100.0], visibility


def test_posture_tells_hands_at_the_face_from_hands_down():
    face = window_features(*hands(True, 0, 60), 30.0)
    down = window_features(*hands(False, 1, 60), 30.0)
    # Posture: log distance from the head to the nearer wrist, mean over the window.
    assert face.posture[-2] < down.posture[-2] - 1.0
    # The same evidence reaches the classifier: one recording of each teaches it.
    classifier = GestureClassifier()
    classifier.fit([Template.new('sad', *hands(True, 2), 30.0, 'test'),
                    Template.new('neutral', *hands(False, 3), 30.0, 'test')])
    for seed in (4, 5):
        assert classifier.classify(*hands(True, seed, 60), 30.0).label == 'sad'
        assert classifier.classify(*hands(False, seed, 60), 30.0).label == 'neutral'
