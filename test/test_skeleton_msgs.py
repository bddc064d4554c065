"""Skeleton messages to and from the core's Skeleton, and the reasons a message is refused."""
from __future__ import annotations

import math

from emorec_ros.gesture.skeleton import JOINTS, Skeleton
from emorec_ros.msg import Skeleton as SkeletonMsg
from emorec_ros.nodes.skeleton_msgs import skeleton_array, skeleton_from_msg, skeleton_to_msg
import numpy as np
import pytest
from std_msgs.msg import Header


def _skeleton() -> Skeleton:
    rng = np.random.default_rng(0)
    visibility = rng.uniform(0.1, 1.0, len(JOINTS))
    visibility[3] = 0.0
    return Skeleton(rng.uniform(0, 640, (len(JOINTS), 2)), visibility)


def test_a_skeleton_goes_there_and_back():
    skeleton = _skeleton()
    msg = skeleton_to_msg('person7', skeleton)
    assert msg.id == 'person7' and list(msg.joint_names) == list(JOINTS)
    back = skeleton_from_msg(msg)
    seen = skeleton.visibility > 0
    np.testing.assert_allclose(back.positions[seen], skeleton.positions[seen], atol=1e-3)
    np.testing.assert_allclose(back.visibility, skeleton.visibility, atol=1e-6)
    array = skeleton_array(Header(frame_id='cam'), [('a', skeleton), ('b', skeleton)])
    assert [s.id for s in array.skeletons] == ['a', 'b'] and array.header.frame_id == 'cam'


def test_fewer_joints_in_any_order_and_ignored_positions_of_unseen_joints():
    msg = SkeletonMsg(id='p', joint_names=['right_shoulder', 'left_shoulder', 'head'],
                      x=[100.0, 200.0, math.nan], y=[50.0, 50.0, math.nan],
                      confidence=[0.9, 0.8, 0.0])
    skeleton = skeleton_from_msg(msg)
    right, left = JOINTS.index('right_shoulder'), JOINTS.index('left_shoulder')
    assert skeleton.positions[right].tolist() == [100.0, 50.0]
    assert skeleton.positions[left].tolist() == [200.0, 50.0]
    assert skeleton.visibility[JOINTS.index('head')] == 0.0
    assert skeleton.visibility.sum() == pytest.approx(1.7)


@pytest.mark.parametrize('change, reason', [
    ({'joint_names': []}, 'no joints'),
    ({'x': [1.0]}, 'unequal array lengths'),
    ({'joint_names': ['nose', 'left_shoulder']}, "unknown joint name 'nose'"),
    ({'joint_names': ['head', 'head']}, "joint 'head' given twice"),
    ({'x': [math.nan, 1.0]}, 'not a finite position'),
    ({'y': [1.0, math.inf]}, 'not a finite position'),
    ({'confidence': [math.nan, 1.0]}, 'not within 0..1'),
    ({'confidence': [1.5, 1.0]}, 'not within 0..1'),
])
def test_malformed_messages_are_refused_with_the_reason(change, reason):
    fields = {'id': 'p', 'joint_names': ['head', 'left_shoulder'], 'x': [1.0, 2.0],
              'y': [3.0, 4.0], 'confidence': [1.0, 1.0], **change}
    with pytest.raises(ValueError, match=reason):
        skeleton_from_msg(SkeletonMsg(**fields))
