"""
The body skeleton that MediaPipe pose and BVH motion capture both turn into.

And its normalisation.

Frame: image axes, x to the right and y down (2-D: pixels; 3-D: a camera frame with z pointing
away from the camera, metres). "left" and "right" are the person's own sides, so a person facing
the camera has the left joints at larger x.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Joint names, in the order of ``Skeleton.positions`` rows. 'head' is the base of the skull at
#: about mouth height: the BVH Head joint, MediaPipe's mouth midpoint.
JOINTS: tuple[str, ...] = (
    'head',
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
    'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle',
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINTS)}
_LS, _RS, _LH, _RH = (
    JOINT_INDEX[n] for n in ('left_shoulder', 'right_shoulder', 'left_hip', 'right_hip')
)

#: Visibility from which a joint counts as present.
VISIBLE = 0.5
#: Visibility from which a shoulder counts as present. Lower, because the shoulders anchor the
#: normalisation (no frame can be used without both) and pose estimators infer them well when a
#: hand or arm is in front of them: MediaPipe places such a shoulder where it is while reporting a
#: visibility of 0.35-0.5 (the demo clip, a hand at the face).
SHOULDER_VISIBLE = 0.2
_THRESHOLDS = np.full(len(JOINTS), VISIBLE)
_THRESHOLDS[[_LS, _RS]] = SHOULDER_VISIBLE

#: Torso length (shoulder midpoint to hip midpoint) per shoulder width, to scale a skeleton whose
#: hips are missing (a camera that sees the upper body only). MediaPipe's shoulder landmarks of an
#: adult standing facing the camera are about two thirds of the torso length apart.
TORSO_PER_SHOULDER_WIDTH = 1.5

#: A person standing facing the camera, arms hanging, in normalised units (origin at the shoulder
#: midpoint, one unit = torso length, y down). Missing joints take these positions.
REST_POSE = np.array([
    [0.0, -0.3],
    [0.3, 0.0], [-0.3, 0.0], [0.35, 0.55], [-0.35, 0.55], [0.35, 1.05], [-0.35, 1.05],
    [0.18, 1.0], [-0.18, 1.0], [0.18, 2.0], [-0.18, 2.0], [0.18, 3.0], [-0.18, 3.0],
])


@dataclass(frozen=True, eq=False)
class Skeleton:
    """
    Joint positions (len(JOINTS), D), D = 2 or 3, and visibilities (len(JOINTS),) in [0, 1].

    Non-finite positions are stored as missing (visibility 0, position 0), so no NaN leaves a
    Skeleton. The arrays are copies; do not modify them.
    """

    positions: np.ndarray
    visibility: np.ndarray

    def __post_init__(self) -> None:
        positions = np.array(self.positions, dtype=np.float64)
        visibility = np.clip(np.array(self.visibility, dtype=np.float64), 0.0, 1.0)
        if (positions.shape not in ((len(JOINTS), 2), (len(JOINTS), 3))
                or visibility.shape != (len(JOINTS),)):
            raise ValueError(
                f'expected positions ({len(JOINTS)}, 2|3) and visibility ({len(JOINTS)},), '
                f'got {positions.shape} and {visibility.shape}'
            )
        drop_non_finite(positions, visibility)
        object.__setattr__(self, 'positions', positions)
        object.__setattr__(self, 'visibility', visibility)

    @property
    def present(self) -> np.ndarray:
        """Which joints are present, by ``present_joints``: bool (len(JOINTS),)."""
        return present_joints(self.visibility)

    @property
    def has_reference(self) -> bool:
        """Whether both shoulders are present, which normalisation needs."""
        return bool(self.present[_LS] and self.present[_RS])

    def normalised(self, scale: float | None = None) -> Skeleton:
        """
        Return this skeleton with the shoulder midpoint at the origin and ``scale`` as one unit.

        ``scale`` defaults to this skeleton's ``body_scale``, in its own units; missing joints
        are put at REST_POSE. Raises ValueError when a shoulder is missing.
        """
        if not self.has_reference:
            raise ValueError('normalisation needs both shoulders')
        if scale is None:
            scale = float(body_scale(self.positions, self.visibility))
        return Skeleton(normalise(self.positions, self.visibility, np.float64(scale)),
                        self.visibility)


def drop_non_finite(positions: np.ndarray, visibility: np.ndarray) -> None:
    """
    Mark joints with a non-finite position or visibility as missing, in place.

    Joints (..., J) with a non-finite position (..., J, D) or visibility get position 0 and
    visibility 0.
    """
    unknown = ~np.isfinite(positions).all(axis=-1) | ~np.isfinite(visibility)
    positions[unknown] = 0.0
    visibility[unknown] = 0.0


def present_joints(visibility: np.ndarray) -> np.ndarray:
    """
    Tell which joints of skeletons (..., J) are present.

    Present means visibility >= VISIBLE, for the shoulders >= SHOULDER_VISIBLE.
    """
    return visibility >= _THRESHOLDS


def body_scale(positions: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """
    Return the torso length (..., ) of skeletons (..., J, D) with visibilities (..., J).

    In the positions' units: shoulder midpoint to hip midpoint where both hips are present, else
    shoulder width times TORSO_PER_SHOULDER_WIDTH; 0 where a shoulder is missing.
    """
    known = present_joints(visibility)
    shoulders = (positions[..., _LS, :] + positions[..., _RS, :]) / 2
    hips = (positions[..., _LH, :] + positions[..., _RH, :]) / 2
    torso = np.linalg.norm(hips - shoulders, axis=-1)
    width = (np.linalg.norm(positions[..., _LS, :] - positions[..., _RS, :], axis=-1)
             * TORSO_PER_SHOULDER_WIDTH)
    scale = np.where(known[..., _LH] & known[..., _RH] & (torso > 0), torso, width)
    return np.where(known[..., _LS] & known[..., _RS], scale, 0.0)


def normalise(positions: np.ndarray, visibility: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """
    Return skeletons (..., J, D) in normalised units.

    The origin is at each one's shoulder midpoint, and positions are divided by ``scale`` (..., )
    (broadcast; e.g. one scale for a whole window). Missing joints, and every joint of a skeleton
    without both shoulders or with a scale <= 0, take REST_POSE positions (z = 0 in 3-D).
    """
    rest = np.zeros(positions.shape[-2:])
    rest[:, :2] = REST_POSE
    known = present_joints(visibility)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), positions.shape[:-2])
    usable = known[..., _LS] & known[..., _RS] & (scale > 0)
    origin = (positions[..., _LS, :] + positions[..., _RS, :]) / 2
    safe_scale = np.where(usable, scale, 1.0)[..., None, None]
    result = (positions - origin[..., None, :]) / safe_scale
    return np.where((known & usable[..., None])[..., None], result, rest)


def stack(skeletons: Sequence[Skeleton]) -> tuple[np.ndarray, np.ndarray]:
    """Positions (T, J, D) and visibilities (T, J) of T skeletons of the same dimension."""
    if not skeletons:
        raise ValueError('no skeletons')
    return np.stack([s.positions for s in skeletons]), np.stack([s.visibility for s in skeletons])
