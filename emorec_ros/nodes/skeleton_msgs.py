"""
Between the core's Skeleton and the emorec_ros/Skeleton and SkeletonArray messages.

A message's joints may come in any order and may be fewer than the core's 13 (the others are
not seen). A malformed message (unequal array lengths, unknown or repeated joint names, a
non-finite number, a confidence outside 0..1, no joint at all) raises ValueError saying what is
wrong, so that a node can log it and skip that skeleton.
"""
from __future__ import annotations

import math
from typing import Iterable

from emorec_ros.gesture.skeleton import JOINT_INDEX, JOINTS, Skeleton
from emorec_ros.msg import Skeleton as SkeletonMsg
from emorec_ros.msg import SkeletonArray
import numpy as np
from std_msgs.msg import Header


def skeleton_to_msg(person_id: str, skeleton: Skeleton) -> SkeletonMsg:
    """
    Return the message of a 2-D skeleton (pixels), joints in JOINTS order.

    Joints that are not seen (visibility 0, e.g. a position that was not finite) are sent with
    confidence 0 at (0, 0).
    """
    if skeleton.positions.shape[1] != 2:
        raise ValueError(f'a Skeleton message is 2-D, got {skeleton.positions.shape[1]}-D')
    return SkeletonMsg(
        id=person_id, joint_names=list(JOINTS),
        x=skeleton.positions[:, 0].astype(np.float32).tolist(),
        y=skeleton.positions[:, 1].astype(np.float32).tolist(),
        confidence=skeleton.visibility.astype(np.float32).tolist())


def skeleton_array(header: Header, people: Iterable[tuple[str, Skeleton]]) -> SkeletonArray:
    """Return the SkeletonArray of (person id, skeleton) pairs, with the image's header."""
    return SkeletonArray(header=header,
                         skeletons=[skeleton_to_msg(pid, s) for pid, s in people])


def skeleton_from_msg(msg: SkeletonMsg) -> Skeleton:
    """
    Return the core Skeleton (2-D) of a message; ValueError when it is malformed.

    x and y of a joint with confidence 0 are ignored (they may be NaN).
    """
    n = len(msg.joint_names)
    if n == 0:
        raise ValueError('no joints')
    if not (len(msg.x) == len(msg.y) == len(msg.confidence) == n):
        raise ValueError(f'unequal array lengths: {n} joint_names, {len(msg.x)} x, '
                         f'{len(msg.y)} y, {len(msg.confidence)} confidence')
    positions = np.zeros((len(JOINTS), 2))
    visibility = np.zeros(len(JOINTS))
    seen: set[str] = set()
    for name, x, y, confidence in zip(msg.joint_names, msg.x, msg.y, msg.confidence):
        index = JOINT_INDEX.get(name)
        if index is None:
            raise ValueError(f'unknown joint name {name!r} (known: {", ".join(JOINTS)})')
        if name in seen:
            raise ValueError(f'joint {name!r} given twice')
        seen.add(name)
        if not 0.0 <= confidence <= 1.0:  # also false for NaN
            raise ValueError(f'confidence of {name} is {confidence}, not within 0..1')
        if confidence > 0.0:
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError(f'{name} is at ({x}, {y}): not a finite position')
            positions[index] = (x, y)
            visibility[index] = confidence
    return Skeleton(positions, visibility)
