"""
BVH motion capture: parser, forward kinematics, and the Bandai-Namco joints on our Skeleton.

Hand-written with numpy; the parser and forward kinematics take a page. Of the BVH packages on
PyPI, pybvh 0.9.0 (MIT, numpy) refuses position channels on non-root joints, which every joint of
the Bandai-Namco data has; bvhtools 1.6.0 pulls raylib, scipy, pyyaml and pillow; bvhio 1.5.4
pins pyglm and spatial-transform (bvhsdk 0.2.1 and the 2017-2020 ones were not tried).

Conventions (those of the BVH format): rotations are Euler angles in degrees, applied in the order
the CHANNELS line lists them (``Zrotation Xrotation Yrotation`` is R = Rz @ Rx @ Ry, acting on
column vectors in the joint's frame); a joint's translation from its parent is its position
channels where it has them, else its OFFSET. Positions are in the file's units and axes (the
Bandai-Namco data: centimetres, Y up, the actor facing +Z at the start).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emorec_ros.gesture.skeleton import JOINTS
import numpy as np

_ROTATIONS = ('Xrotation', 'Yrotation', 'Zrotation')
_POSITIONS = ('Xposition', 'Yposition', 'Zposition')

#: Bandai-Namco Research Motion dataset 1 joint for each Skeleton joint. The shoulders are the
#: upper-arm joints (the glenohumeral joint MediaPipe marks), not the clavicle joints, and the head
#: is the Head joint at the skull base (MediaPipe's mouth height; see ``skeleton.JOINTS``).
BANDAI_JOINTS: dict[str, str] = {
    'head': 'Head',
    'left_shoulder': 'UpperArm_L', 'right_shoulder': 'UpperArm_R',
    'left_elbow': 'LowerArm_L', 'right_elbow': 'LowerArm_R',
    'left_wrist': 'Hand_L', 'right_wrist': 'Hand_R',
    'left_hip': 'UpperLeg_L', 'right_hip': 'UpperLeg_R',
    'left_knee': 'LowerLeg_L', 'right_knee': 'LowerLeg_R',
    'left_ankle': 'Foot_L', 'right_ankle': 'Foot_R',
}

#: Metres per unit of the Bandai-Namco BVH files (centimetres).
BANDAI_METRES_PER_UNIT = 0.01


class BvhError(ValueError):
    """The text is not a BVH file this parser understands."""


def joint_map_with(entries: list[str], base: dict[str, str] = BANDAI_JOINTS) -> dict[str, str]:
    """
    Return ``base`` with the joints that ``entries`` ('<our joint>=<BVH joint>') name replaced.

    Raises BvhError for an entry that is not of that form or names a joint not in JOINTS.
    """
    joint_map = dict(base)
    for entry in entries:
        ours, sep, theirs = (part.strip() for part in entry.partition('='))
        if not sep or not theirs or ours not in JOINTS:
            raise BvhError(f'joint map entry {entry!r}: use <joint>=<BVH joint name>, <joint> '
                           f'one of {", ".join(JOINTS)}')
        joint_map[ours] = theirs
    return joint_map


@dataclass(frozen=True)
class BvhJoint:
    """One joint of the hierarchy; ``parent`` indexes ``BvhMotion.joints`` (-1 for the root)."""

    name: str
    parent: int
    offset: np.ndarray
    channels: tuple[str, ...]


@dataclass(frozen=True)
class BvhMotion:
    """
    A parsed BVH file.

    Joints in file order (parents before children; end sites dropped), seconds per frame, and
    the channel values (frames, channels) in CHANNELS order.
    """

    joints: tuple[BvhJoint, ...]
    frame_time: float
    values: np.ndarray

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    def global_positions(self) -> np.ndarray:
        """Joint positions (frames, joints, 3) in the file's units and world axes."""
        n = len(self.values)
        rotations = np.empty((len(self.joints), n, 3, 3))
        positions = np.empty((len(self.joints), n, 3))
        column = 0
        for j, joint in enumerate(self.joints):
            values = self.values[:, column:column + len(joint.channels)]
            column += len(joint.channels)
            local_rotation = np.broadcast_to(np.eye(3), (n, 3, 3))
            translation = np.broadcast_to(joint.offset, (n, 3)).copy()
            for k, channel in enumerate(joint.channels):
                if channel in _ROTATIONS:
                    local_rotation = local_rotation @ _axis_rotation(
                        _ROTATIONS.index(channel), values[:, k]
                    )
                else:
                    translation[:, _POSITIONS.index(channel)] = values[:, k]
            if joint.parent < 0:
                rotations[j], positions[j] = local_rotation, translation
            else:
                parent_rotation = rotations[joint.parent]
                rotations[j] = parent_rotation @ local_rotation
                positions[j] = positions[joint.parent] + np.einsum(
                    'nij,nj->ni', parent_rotation, translation
                )
        return positions.transpose(1, 0, 2)

    def skeleton_positions(self, joint_map: dict[str, str] = BANDAI_JOINTS,
                           metres_per_unit: float = BANDAI_METRES_PER_UNIT) -> np.ndarray:
        """
        Return the positions of the Skeleton joints, (frames, len(JOINTS), 3) in metres.

        The positions are in world axes, of the joints ``joint_map`` names for each Skeleton
        joint.
        """
        missing = [j for j in JOINTS if j not in joint_map]
        if missing:
            raise BvhError(f'the joint map lacks {", ".join(missing)}')
        absent = [j for j in JOINTS if joint_map[j] not in self.joint_names]
        if absent:
            raise BvhError(
                'lacks the joints ' + ', '.join(joint_map[j] for j in absent) + ' that the joint '
                f'map names for {", ".join(absent)} (its joints: {", ".join(self.joint_names)})')
        index = [self.joint_names.index(joint_map[j]) for j in JOINTS]
        return self.global_positions()[:, index] * metres_per_unit


def _axis_rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
    """Rotations (n, 3, 3) by ``degrees`` (n,) about axis 0 (x), 1 (y) or 2 (z), right-handed."""
    angle = np.radians(degrees)
    c, s, one, zero = np.cos(angle), np.sin(angle), np.ones_like(angle), np.zeros_like(angle)
    rows = {0: ((one, zero, zero), (zero, c, -s), (zero, s, c)),
            1: ((c, zero, s), (zero, one, zero), (-s, zero, c)),
            2: ((c, -s, zero), (s, c, zero), (zero, zero, one))}[axis]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def parse_bvh(text: str) -> BvhMotion:
    """Parse the text of a BVH file; raises BvhError on anything malformed."""
    head, sep, motion = text.partition('MOTION')
    tokens = head.split()
    if not sep or not tokens or tokens[0] != 'HIERARCHY':
        raise BvhError('not a BVH file (HIERARCHY ... MOTION expected)')
    names: list[str] = []
    parents: list[int] = []
    offsets: list[np.ndarray] = []
    channels: list[tuple[str, ...]] = []
    stack: list[int] = []  # open blocks: a joint's index, or -1 for an end site
    opening: int | None = None  # the block the next '{' opens
    i = 1
    try:
        while i < len(tokens):
            token = tokens[i]
            if token in ('ROOT', 'JOINT'):
                if (token == 'ROOT') != (not stack) or (stack and stack[-1] < 0):
                    raise BvhError(f'{token} {tokens[i + 1]} in the wrong place')
                names.append(tokens[i + 1])
                parents.append(stack[-1] if stack else -1)
                offsets.append(np.zeros(3))
                channels.append(())
                opening, i = len(names) - 1, i + 2
            elif token == 'End':  # End Site: an offset only, not a joint
                opening, i = -1, i + 2
            elif token == '{' and opening is not None:
                stack.append(opening)
                opening, i = None, i + 1
            elif token == '}' and stack:
                stack.pop()
                i += 1
            elif token == 'OFFSET' and stack:
                if stack[-1] >= 0:
                    offsets[stack[-1]] = np.array([float(t) for t in tokens[i + 1:i + 4]])
                i += 4
            elif token == 'CHANNELS' and stack and stack[-1] >= 0:
                count = int(tokens[i + 1])
                listed = tuple(tokens[i + 2:i + 2 + count])
                if len(listed) != count or any(c not in _ROTATIONS + _POSITIONS for c in listed):
                    raise BvhError(f'bad CHANNELS of {names[stack[-1]]}: {listed}')
                channels[stack[-1]] = listed
                i += 2 + count
            else:
                raise BvhError(f'unexpected {token!r} in HIERARCHY')
    except (IndexError, ValueError) as e:
        raise BvhError(f'malformed HIERARCHY: {e}') from e
    if stack or not names or any(len(o) != 3 for o in offsets):
        raise BvhError('HIERARCHY has unbalanced braces, no joints or a short OFFSET')

    lines = motion.strip().split('\n', 2)
    try:
        frames = int(lines[0].split(':')[1])
        frame_time = float(lines[1].split(':')[1])
        values = np.array(lines[2].split() if len(lines) > 2 else [], dtype=float)
    except (IndexError, ValueError) as e:
        raise BvhError(f'malformed MOTION header or values: {e}') from e
    width = sum(len(c) for c in channels)
    if frame_time <= 0 or frames < 1 or values.size != frames * width:
        raise BvhError(f'MOTION: {values.size} values for {frames} frames of {width} channels, '
                       f'frame time {frame_time}')
    joints = tuple(BvhJoint(*fields) for fields in zip(names, parents, offsets, channels))
    return BvhMotion(joints, frame_time, values.reshape(frames, width))


def load_bvh(path: Path) -> BvhMotion:
    """Parse a BVH file (UTF-8 or ASCII text)."""
    return parse_bvh(Path(path).read_text(encoding='utf-8'))
