"""Template: the bounds checked when one is made, and what it does with missing joints."""
from __future__ import annotations

from emorec_ros.gesture.skeleton import JOINTS
from emorec_ros.gesture.template import (
    MAX_COORDINATE, MAX_DURATION_S, MAX_FPS, MIN_FPS, Template, validate_fps, validate_joints)
import numpy as np
import pytest

J = len(JOINTS)
CREATED = '2026-01-01T00:00:00+00:00'


def make(frames: int = 10, fps: float = 30.0, joints: tuple[str, ...] = JOINTS,
         dimension: int = 2, **changes) -> Template:
    """Return a template of ``frames`` still skeletons, with ``changes`` to its fields."""
    fields = {
        'id': 'abc', 'label': 'calm', 'positions': np.ones((frames, len(joints), dimension)),
        'visibility': np.ones((frames, len(joints))), 'fps': fps, 'source': 'test',
        'created': CREATED, 'joints': joints,
    }
    fields.update(changes)
    return Template(**fields)


def test_a_template_inside_the_bounds():
    template = make(frames=int(MAX_DURATION_S), fps=MIN_FPS, dimension=3)
    assert template.frames == 600 and template.duration_s == MAX_DURATION_S
    assert template.positions.dtype == np.float32 and template.joints == JOINTS
    assert make(fps=np.float32(MAX_FPS)).fps == 1000.0
    assert isinstance(make(fps=25).fps, float)


@pytest.mark.parametrize('fps, expected', [
    (1e9, r'template abc: fps 1e\+09 is outside \[1, 1000\]'),
    (0.5, r'fps 0.5 is outside \[1, 1000\]'),
    (0.0, 'fps 0 is outside'),
    (-30.0, 'fps -30 is outside'),
    (float('nan'), 'fps nan is outside'),
    (float('inf'), 'fps inf is outside'),
    (True, 'fps True is not a number'),
    ('30', "fps '30' is not a number"),
    (None, 'fps None is not a number'),
])
def test_fps_outside_the_bounds_is_refused(fps, expected):
    with pytest.raises(ValueError, match=expected):
        make(fps=fps)


def test_a_template_longer_than_the_bound_is_refused():
    with pytest.raises(ValueError, match=r'duration 601 s \(601 frames at 1 fps\) is over 600 s'):
        make(frames=601, fps=1.0)
    with pytest.raises(ValueError, match='frames 0 is below 1'):
        make(frames=0)


@pytest.mark.parametrize('joints, expected', [
    ((), r'joints: 0 names, expected 1-64'),
    (('head',) * 2, 'joints: head named more than once'),
    (('head', 'Left Arm'), "joints: bad joint name 'Left Arm'"),
    (('head', 3), 'joints: bad joint name 3'),
    (tuple(f'j{i}' for i in range(65)), 'joints: 65 names, expected 1-64'),
])
def test_bad_joint_lists_are_refused(joints, expected):
    with pytest.raises(ValueError, match=expected):
        make(joints=joints)


def test_joint_names_a_string_is_refused():
    with pytest.raises(ValueError, match="joints 'head' is not a list"):
        validate_joints('head')


def test_foreign_joint_names_make_a_template_that_the_store_refuses():
    # The classifier reports such a template; the store keeps only skeleton.JOINTS.
    assert make(joints=('nose', 'left_eye')).joints == ('nose', 'left_eye')
    assert validate_joints(JOINTS[:3], known_only=True) == JOINTS[:3]
    with pytest.raises(ValueError, match="unknown joint 'nose'"):
        validate_joints(['nose', 'head'], known_only=True)


@pytest.mark.parametrize('coordinate', [2 * MAX_COORDINATE, -2 * MAX_COORDINATE, 1e39])
def test_implausible_coordinates_are_refused(coordinate):
    positions = np.ones((10, J, 2))
    positions[4, 2, 1] = coordinate  # 1e39 would be inf in float32, and pass as missing
    with pytest.raises(ValueError, match=r'positions: coordinate magnitude .* is over 1e\+06'):
        make(positions=positions)


def test_non_finite_joints_become_missing():
    positions, visibility = np.ones((10, J, 2)), np.full((10, J), 0.9)
    positions[1, 2, 0], positions[3, 4, 1], visibility[5, 6] = np.nan, -np.inf, np.nan
    template = make(positions=positions, visibility=visibility)
    assert np.isfinite(template.positions).all() and np.isfinite(template.visibility).all()
    assert template.visibility[1, 2] == template.visibility[3, 4] == template.visibility[5, 6] == 0


@pytest.mark.parametrize('changes, expected', [
    ({'id': '../x'}, r"bad template id '../x'"),
    ({'label': 'Calm'}, "bad label 'Calm'"),
    ({'source': None}, 'source None is not a string'),
    ({'created': 'yesterday'}, "created 'yesterday' is not an ISO 8601 time"),
    ({'created': 20260101}, 'created 20260101 is not an ISO 8601 time'),
    ({'positions': np.ones((10, J, 4))}, r'positions \(10, 13, 4\) .* do not fit 13 joints'),
    ({'visibility': np.ones((9, J))}, r'visibility \(9, 13\) do not fit 13 joints'),
    ({'positions': np.float64(1.0)}, r'positions \(\) and visibility'),
    ({'positions': np.full((10, J, 2), 'x')}, 'could not convert'),
])
def test_other_bad_fields_are_refused(changes, expected):
    with pytest.raises(ValueError, match=expected):
        make(**changes)


def test_validate_fps_returns_a_float():
    assert validate_fps(np.int64(30)) == 30.0 and type(validate_fps(np.int64(30))) is float
