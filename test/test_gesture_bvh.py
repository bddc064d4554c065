"""
Tests of the BVH loader, the Bandai-Namco joint map and the camera that films mocap skeletons.

BVH parsing and forward kinematics are checked against hand-computed positions and bone
lengths.
"""
from __future__ import annotations

from pathlib import Path
import tarfile

from emorec_ros.gesture.bvh import BANDAI_JOINTS, BvhError, parse_bvh
from emorec_ros.gesture.camera import front_view, PinholeCamera
from emorec_ros.gesture.skeleton import JOINT_INDEX, JOINTS, REST_POSE
import numpy as np
import pytest

BANDAI = Path(__file__).parents[2] / 'shared' / 'data' / 'bandai_motion'

# A root with a translation, a spine of 10 along y, an arm of 5 along x rotating in Z-X-Y order,
# and a joint with position channels (as every Bandai-Namco joint has).
BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Arm
    {
      OFFSET 5 0 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 4 0
      }
    }
  }
  JOINT Tail
  {
    OFFSET 0 -3 0
    CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
    JOINT TailTip
    {
      OFFSET 0 -2 0
      CHANNELS 3 Zrotation Xrotation Yrotation
    }
  }
}
MOTION
Frames: 4
Frame Time: 0.04
"""
#        Hips: x y z  rz rx ry   Chest: rz rx ry   Arm: rz rx ry   Tail: x y z rz rx ry  TailTip
FRAMES = [
    '    0 0 0    0  0  0       0  0  0        0 0 0           0 -3 0  0 0 0        0 0 0',
    '    1 2 3    0  0 90       0  0  0        0 0 0           0 -3 0  0 0 0        0 0 0',
    '    0 0 0    0  0  0       90 0  0        0 0 0           0 -3 0  0 0 0        0 0 0',
    '    0 0 0    0  0  0       90 90 0        0 0 0           7 -3 0  0 0 0        0 0 0',
]


def motion():
    return parse_bvh(BVH + '\n'.join(FRAMES) + '\n')


def test_hierarchy_and_motion_are_parsed():
    m = motion()
    assert m.joint_names == ('Hips', 'Chest', 'Arm', 'Tail', 'TailTip')
    assert [j.parent for j in m.joints] == [-1, 0, 1, 0, 3]
    assert m.values.shape == (4, 6 + 3 + 3 + 6 + 3)
    assert m.fps == pytest.approx(25.0)


def test_forward_kinematics_matches_hand_computed_positions():
    p = motion().global_positions()
    hips, chest, arm, tail, tip = range(5)
    # Rest: offsets add up.
    np.testing.assert_allclose(
        p[0], [[0, 0, 0], [0, 10, 0], [5, 10, 0], [0, -3, 0], [0, -5, 0]], atol=1e-12
    )
    # Root moved to (1, 2, 3) and turned 90 degrees about y: x -> -z.
    np.testing.assert_allclose(p[1, chest], [1, 12, 3], atol=1e-12)
    np.testing.assert_allclose(p[1, arm], [1, 12, -2], atol=1e-12)
    # Chest turned 90 degrees about z: the arm points up.
    np.testing.assert_allclose(p[2, arm], [0, 15, 0], atol=1e-12)
    # Zrotation 90 then Xrotation 90 (R = Rz @ Rx): x stays x under Rx, then z turns it to y.
    # (Rx @ Rz would give (0, 0, 5).)
    np.testing.assert_allclose(p[3, arm], [0, 15, 0], atol=1e-12)
    # Position channels replace the offset: the tail sits at x = 7.
    np.testing.assert_allclose(p[3, tail], [7, -3, 0], atol=1e-12)
    np.testing.assert_allclose(p[3, tip], [7, -5, 0], atol=1e-12)


def test_bone_lengths_stay_those_of_the_offsets():
    p = motion().global_positions()
    for child, parent, length in ((1, 0, 10.0), (2, 1, 5.0), (4, 3, 2.0)):
        np.testing.assert_allclose(
            np.linalg.norm(p[:, child] - p[:, parent], axis=1), length, atol=1e-12
        )


def test_rotation_order_follows_the_channels_line():
    # The same angles with the channels listed X before Z: R = Rx @ Rz.
    swapped = BVH.replace(
        'JOINT Chest\n  {\n    OFFSET 0 10 0\n    CHANNELS 3 Zrotation Xrotation Yrotation',
        'JOINT Chest\n  {\n    OFFSET 0 10 0\n    CHANNELS 3 Xrotation Zrotation Yrotation',
    )
    row = '0 0 0 0 0 0   90 90 0   0 0 0   0 -3 0 0 0 0   0 0 0'  # now Chest: rx=90, rz=90
    p = parse_bvh(swapped.replace('Frames: 4', 'Frames: 1') + row + '\n').global_positions()
    np.testing.assert_allclose(p[0, 2] - p[0, 1], [0, 0, 5], atol=1e-12)


@pytest.mark.parametrize(
    'text, message',
    [
        ('MOTION\nFrames: 1\nFrame Time: 0.1\n0\n', 'HIERARCHY'),
        (BVH.replace('Frames: 4', 'Frames: 5') + '\n'.join(FRAMES), 'values'),
        (
            BVH.replace('Xrotation Yrotation\n      End', 'Xrotation Wrotation\n      End')
            + '\n'.join(FRAMES),
            'CHANNELS',
        ),
        (BVH.replace('  JOINT Tail', '  }\n  JOINT Tail', 1) + '\n'.join(FRAMES), 'HIERARCHY'),
        (BVH.replace('Frame Time: 0.04', 'Frame Time: 0') + '\n'.join(FRAMES), 'frame time'),
    ],
)
def test_malformed_files_raise_bvh_error(text, message):
    with pytest.raises(BvhError, match=message):
        parse_bvh(text)


def test_skeleton_positions_map_joints_and_convert_units():
    joint_map = dict.fromkeys(JOINTS, 'Hips') | {'head': 'Chest', 'left_wrist': 'Arm'}
    positions = motion().skeleton_positions(joint_map, metres_per_unit=0.01)
    assert positions.shape == (4, len(JOINTS), 3)
    np.testing.assert_allclose(positions[0, JOINT_INDEX['left_wrist']], [0.05, 0.10, 0.0])
    with pytest.raises(BvhError, match='joint map'):
        motion().skeleton_positions({'head': 'Chest'})


def standing_person(frames: int = 3) -> np.ndarray:
    """
    Return world positions (frames, J, 3) of a person walking towards +Z.

    Metres, Y up, facing +Z: the rest pose stood up, 0.5 m torso.
    """
    xy = REST_POSE * 0.5
    world = np.c_[xy[:, 0], 1.5 - xy[:, 1], np.zeros(len(JOINTS))]
    return (np.repeat(world[None], frames, axis=0)
            + np.array([[[0.0, 0.0, 0.1]]]) * np.arange(frames)[:, None, None])


def test_front_view_sees_the_persons_left_on_the_right_of_the_image():
    pixels, visible = front_view(standing_person())
    left, right = JOINT_INDEX['left_shoulder'], JOINT_INDEX['right_shoulder']
    assert (pixels[:, left, 0] > pixels[:, right, 0]).all()
    # y down:
    assert (pixels[:, JOINT_INDEX['head'], 1] < pixels[:, JOINT_INDEX['left_ankle'], 1]).all()
    assert visible.all()
    # The camera pans with the person walking towards it: the picture does not change.
    np.testing.assert_allclose(pixels[0], pixels[-1], atol=1e-9)
    # From behind, left and right swap.
    behind, _ = front_view(standing_person(), yaw_deg=180.0)
    assert (behind[:, left, 0] < behind[:, right, 0]).all()


def test_pinhole_projection_and_visibility():
    camera = PinholeCamera(width=640, height=480, horizontal_fov_deg=90.0)
    assert camera.focal_px == pytest.approx(320.0)
    pixels, inside = camera.project(
        np.array([[0.0, 0.0, 2.0], [1.0, -0.5, 1.0], [0.0, 0.0, -1.0], [5.0, 0.0, 1.0]])
    )
    np.testing.assert_allclose(pixels[:2], [[320, 240], [640, 80]])
    np.testing.assert_array_equal(inside, [True, False, False, False])  # x = 640 is just outside


@pytest.mark.skipif(
    not (BANDAI / 'bandai_ds1_bvh.tar.xz').exists(), reason=f'{BANDAI} not reachable'
)
def test_bandai_clips_match_the_published_positions():
    reference = np.load(BANDAI / 'bandai_ds1_positions.npz')
    names = list(reference['clip_name'])
    checked = 0
    with tarfile.open(BANDAI / 'bandai_ds1_bvh.tar.xz') as archive:
        for member in archive.getmembers():
            stem = Path(member.name).stem
            wanted = ('dataset-1_bow_sad_001', 'dataset-1_run_angry_001')
            if not member.name.endswith('.bvh') or stem not in wanted:
                continue
            m = parse_bvh(archive.extractfile(member).read().decode())
            k = names.index(stem)
            start, length = reference['clip_start'][k], reference['clip_len'][k]
            assert list(m.joint_names) == list(reference['joint_names'])
            np.testing.assert_allclose(m.global_positions(),
                                       reference['positions'][start:start + length], atol=1e-3)
            assert set(BANDAI_JOINTS.values()) <= set(m.joint_names)
            checked += 1
    assert checked == 2
