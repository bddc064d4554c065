"""Skeleton: normalisation (origin, scale, hips missing), missing joints, validation."""
from __future__ import annotations

from emorec_ros.gesture.skeleton import (body_scale, JOINT_INDEX, JOINTS, normalise, REST_POSE,
                                         Skeleton, stack, TORSO_PER_SHOULDER_WIDTH)
import numpy as np
import pytest

# The rest pose as a camera would see it: torso 120 px long, shoulder midpoint at (320, 150).
TORSO_PX = 120.0
ORIGIN_PX = np.array([320.0, 150.0])


def camera_skeleton(visibility: np.ndarray | None = None) -> Skeleton:
    return Skeleton(
        REST_POSE * TORSO_PX + ORIGIN_PX,
        np.ones(len(JOINTS)) if visibility is None else visibility,
    )


def test_normalised_puts_the_shoulder_midpoint_at_the_origin_and_the_torso_at_one_unit():
    normalised = camera_skeleton().normalised()
    np.testing.assert_allclose(normalised.positions, REST_POSE, atol=1e-12)
    shoulders = normalised.positions[
        [JOINT_INDEX['left_shoulder'], JOINT_INDEX['right_shoulder']]
    ].mean(axis=0)
    hips = normalised.positions[[JOINT_INDEX['left_hip'], JOINT_INDEX['right_hip']]].mean(axis=0)
    np.testing.assert_allclose(shoulders, [0, 0], atol=1e-12)
    assert np.linalg.norm(hips - shoulders) == pytest.approx(1.0)


def test_normalisation_is_independent_of_position_and_size():
    small = Skeleton(REST_POSE * 40 + [10, 20], np.ones(len(JOINTS)))
    np.testing.assert_allclose(
        small.normalised().positions, camera_skeleton().normalised().positions, atol=1e-12
    )


def test_without_hips_the_shoulder_width_sets_the_scale():
    visibility = np.ones(len(JOINTS))
    visibility[[JOINT_INDEX['left_hip'], JOINT_INDEX['right_hip']]] = 0.0
    skeleton = camera_skeleton(visibility)
    width = np.linalg.norm(
        REST_POSE[JOINT_INDEX['left_shoulder']] - REST_POSE[JOINT_INDEX['right_shoulder']]
    )
    expected = width * TORSO_PX * TORSO_PER_SHOULDER_WIDTH
    assert body_scale(skeleton.positions, skeleton.visibility) == pytest.approx(expected)


def test_missing_joints_take_the_rest_pose_and_nothing_is_nan():
    positions = REST_POSE * TORSO_PX + ORIGIN_PX
    positions[JOINT_INDEX['left_knee']] = np.nan            # a detector's "don't know"
    positions[JOINT_INDEX['left_wrist']] += [500.0, 500.0]   # far off, but not visible
    visibility = np.ones(len(JOINTS))
    visibility[JOINT_INDEX['left_wrist']] = 0.1
    skeleton = Skeleton(positions, visibility)
    assert (
        not skeleton.present[JOINT_INDEX['left_knee']]
        and skeleton.visibility[JOINT_INDEX['left_knee']] == 0
    )
    normalised = skeleton.normalised()
    assert np.isfinite(normalised.positions).all()
    np.testing.assert_allclose(
        normalised.positions[JOINT_INDEX['left_knee']], REST_POSE[JOINT_INDEX['left_knee']]
    )
    np.testing.assert_allclose(
        normalised.positions[JOINT_INDEX['left_wrist']], REST_POSE[JOINT_INDEX['left_wrist']]
    )


def test_a_skeleton_without_both_shoulders_cannot_be_normalised():
    visibility = np.ones(len(JOINTS))
    visibility[JOINT_INDEX['right_shoulder']] = 0.1
    skeleton = camera_skeleton(visibility)
    assert not skeleton.has_reference
    with pytest.raises(ValueError, match='shoulders'):
        skeleton.normalised()
    assert body_scale(skeleton.positions, skeleton.visibility) == 0.0
    # Vectorised: such a frame becomes the rest pose rather than NaN.
    np.testing.assert_allclose(
        normalise(skeleton.positions, skeleton.visibility, np.float64(TORSO_PX)), REST_POSE
    )


def test_a_dimly_visible_shoulder_still_anchors_the_skeleton_but_a_dim_wrist_is_missing():
    visibility = np.full(len(JOINTS), 0.3)  # e.g. a hand in front of the chest
    visible = ('head', 'left_hip', 'right_hip')
    visibility[[JOINT_INDEX[n] for n in visible]] = 1.0
    skeleton = camera_skeleton(visibility)
    assert skeleton.has_reference
    assert skeleton.present.tolist() == [
        n in visible + ('left_shoulder', 'right_shoulder') for n in JOINTS
    ]
    np.testing.assert_allclose(skeleton.normalised().positions, REST_POSE, atol=1e-12)


def test_normalise_works_on_sequences_with_one_scale_and_in_3d():
    frames = 5
    positions = np.stack(
        [np.c_[REST_POSE * 0.5, np.full(len(JOINTS), 2.0 + t)] for t in range(frames)]
    )
    visibility = np.ones((frames, len(JOINTS)))
    normalised = normalise(positions, visibility, np.float64(0.5))
    assert normalised.shape == (frames, len(JOINTS), 3)
    np.testing.assert_allclose(
        normalised[..., :2], np.broadcast_to(REST_POSE, (frames, len(JOINTS), 2)), atol=1e-12
    )
    # Depth is relative to the shoulders.
    np.testing.assert_allclose(normalised[..., 2], 0.0, atol=1e-12)


def test_bad_shapes_are_refused_and_inputs_are_copied():
    with pytest.raises(ValueError):
        Skeleton(np.zeros((len(JOINTS), 4)), np.ones(len(JOINTS)))
    with pytest.raises(ValueError):
        Skeleton(np.zeros((len(JOINTS), 2)), np.ones(len(JOINTS) - 1))
    positions = REST_POSE.copy()
    skeleton = Skeleton(positions, np.full(len(JOINTS), 2.0))
    positions[0] = 99.0
    assert skeleton.positions[0, 0] != 99.0 and skeleton.visibility.max() == 1.0


def test_stack_gives_sequences():
    positions, visibility = stack([camera_skeleton(), camera_skeleton()])
    assert positions.shape == (2, len(JOINTS), 2) and visibility.shape == (2, len(JOINTS))
    with pytest.raises(ValueError):
        stack([])
