"""A gesture template: a labelled recording of skeletons, from a camera or from motion capture."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
import math
import numbers
import re
import uuid

from emorec_ros.gesture.skeleton import drop_non_finite, JOINTS
import numpy as np

#: Labels are lowercase identifiers of at most 32 characters: safe in file names, topics, YAML.
LABEL_PATTERN = re.compile(r'[a-z][a-z0-9_]{0,31}')
#: Template ids: letters, digits, '_' and '-' (new ones are 32 hex digits), never a path.
ID_PATTERN = re.compile(r'[A-Za-z0-9_-]{1,64}')
#: Joint names: lowercase identifiers, like those of skeleton.JOINTS.
JOINT_NAME_PATTERN = re.compile(r'[a-z][a-z0-9_]{0,31}')

# Bounds on a template. Everything downstream (feature windows, resampling, DTW) sizes its
# arrays from fps and duration, so a template outside them, e.g. a file claiming fps = 1e9,
# would make the node allocate gigabytes; real recordings are far inside them.
#: Frame rates, frames per second: cameras give 5-240, motion capture up to a few hundred.
MIN_FPS = 1.0
MAX_FPS = 1000.0
#: Longest template, seconds (frames / fps): a gesture lasts seconds, a take a few minutes.
MAX_DURATION_S = 600.0
#: Largest coordinate magnitude: image pixels and metres (or millimetres) of motion capture
#: stay far below; a larger value is corrupt data.
MAX_COORDINATE = 1e6
#: Most joints a template may name (skeleton.JOINTS has 13).
MAX_JOINTS = 64


def validate_label(label: str) -> str:
    """
    Return ``label`` if it is a lowercase identifier (``[a-z][a-z0-9_]{0,31}``).

    Raise ValueError otherwise.
    """
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        raise ValueError(f'bad label {label!r}: use 1-32 characters a-z, 0-9 and _, '
                         'starting with a letter')
    return label


def validate_id(template_id: str) -> str:
    """Return ``template_id`` if it matches ID_PATTERN, else raise ValueError."""
    if not isinstance(template_id, str) or not ID_PATTERN.fullmatch(template_id):
        raise ValueError(f'bad template id {template_id!r}: use 1-64 characters A-Z, a-z, 0-9, '
                         '_ and -')
    return template_id


def validate_fps(fps: float) -> float:
    """
    Return ``fps`` as a float if it is a finite number in [MIN_FPS, MAX_FPS].

    Raise ValueError otherwise.
    """
    if isinstance(fps, (bool, np.bool_)) or not isinstance(fps, numbers.Real):
        raise ValueError(f'fps {fps!r} is not a number')
    fps = float(fps)
    if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise ValueError(f'fps {fps:g} is outside [{MIN_FPS:g}, {MAX_FPS:g}]')
    return fps


def validate_duration(frames: int, fps: float) -> None:
    """Raise ValueError unless 1 <= ``frames`` and frames / fps <= MAX_DURATION_S."""
    if isinstance(frames, (bool, np.bool_)) or not isinstance(frames, numbers.Integral):
        raise ValueError(f'frames {frames!r} is not an integer')
    if frames < 1:
        raise ValueError(f'frames {frames} is below 1')
    if frames / fps > MAX_DURATION_S:
        raise ValueError(f'duration {frames / fps:.6g} s ({frames} frames at {fps:g} fps) '
                         f'is over {MAX_DURATION_S:g} s')


def validate_joints(joints: Iterable[str], known_only: bool = False) -> tuple[str, ...]:
    """
    Return ``joints`` as a tuple if it names 1-MAX_JOINTS distinct joints, else ValueError.

    Names are lowercase identifiers; with ``known_only`` each must also be one of
    skeleton.JOINTS, as the store requires (no code here reads other joints).
    """
    if isinstance(joints, (str, bytes)) or not isinstance(joints, Iterable):
        raise ValueError(f'joints {joints!r} is not a list of joint names')
    joints = tuple(joints)
    if not 1 <= len(joints) <= MAX_JOINTS:
        raise ValueError(f'joints: {len(joints)} names, expected 1-{MAX_JOINTS}')
    for name in joints:
        if not isinstance(name, str) or not JOINT_NAME_PATTERN.fullmatch(name):
            raise ValueError(f'joints: bad joint name {name!r}')
        if known_only and name not in JOINTS:
            raise ValueError(f'joints: unknown joint {name!r}, not one of skeleton.JOINTS')
    if len(set(joints)) != len(joints):
        duplicates = sorted({name for name in joints if joints.count(name) > 1})
        raise ValueError(f'joints: {", ".join(duplicates)} named more than once')
    return joints


def validate_created(created: str) -> str:
    """Return ``created`` if it is an ISO 8601 time, else raise ValueError."""
    if not isinstance(created, str) or len(created) > 64:
        raise ValueError(f'created {created!r} is not an ISO 8601 time')
    try:
        datetime.fromisoformat(created)
    except ValueError:
        raise ValueError(f'created {created!r} is not an ISO 8601 time') from None
    return created


@dataclass(frozen=True, eq=False)
class Template:
    """
    Skeletons over time, with the label of the emotion they show.

    Positions (frames, len(joints), D), D = 2 (pixels) or 3 (metres), and visibilities
    (frames, len(joints)) in [0, 1], at ``fps`` frames per second. ``source`` says where it came
    from (free text, e.g. 'camera' or a BVH file name); ``created`` is an ISO 8601 UTC time;
    ``joints`` names the rows of the arrays (distinct lowercase names; the store keeps only
    templates whose joints are among skeleton.JOINTS). Arrays are stored as float32 copies;
    non-finite joints become missing (visibility 0), as in Skeleton.

    Raise ValueError for values outside the bounds of this module (MIN_FPS, MAX_FPS,
    MAX_DURATION_S, MAX_COORDINATE, MAX_JOINTS), a bad id or label, or arrays of the wrong shape.
    """

    id: str  # noqa: A003 -- the template's public name, used by services and messages
    label: str
    positions: np.ndarray
    visibility: np.ndarray
    fps: float
    source: str
    created: str
    joints: tuple[str, ...] = field(default=JOINTS)

    def __post_init__(self) -> None:
        validate_id(self.id)
        try:
            self._validate()
        except (TypeError, ValueError) as e:  # TypeError: arrays of something not numbers
            raise ValueError(f'template {self.id}: {e}') from None

    def _validate(self) -> None:
        validate_label(self.label)
        if not isinstance(self.source, str):
            raise ValueError(f'source {self.source!r} is not a string')
        validate_created(self.created)
        joints = validate_joints(self.joints)
        fps = validate_fps(self.fps)
        # float64 first: a huge value would become inf in float32 and pass as a missing joint.
        positions = np.array(self.positions, dtype=np.float64)
        visibility = np.clip(np.array(self.visibility, dtype=np.float32), 0.0, 1.0)
        frames = len(positions) if positions.ndim else 0
        if (positions.ndim != 3 or positions.shape[1:] not in ((len(joints), 2), (len(joints), 3))
                or visibility.shape != (frames, len(joints))):
            raise ValueError(f'positions {positions.shape} and visibility {visibility.shape} '
                             f'do not fit {len(joints)} joints')
        validate_duration(frames, fps)
        finite = positions[np.isfinite(positions)]
        largest = float(np.abs(finite).max()) if finite.size else 0.0
        if largest > MAX_COORDINATE:
            raise ValueError(f'positions: coordinate magnitude {largest:g} is over '
                             f'{MAX_COORDINATE:g}')
        positions = positions.astype(np.float32)
        drop_non_finite(positions, visibility)
        object.__setattr__(self, 'positions', positions)
        object.__setattr__(self, 'visibility', visibility)
        object.__setattr__(self, 'fps', fps)
        object.__setattr__(self, 'joints', joints)

    @property
    def frames(self) -> int:
        """Return the number of skeletons."""
        return len(self.positions)

    @property
    def duration_s(self) -> float:
        """Return the length in seconds (frames / fps)."""
        return self.frames / self.fps

    @classmethod
    def new(cls, label: str, positions: np.ndarray, visibility: np.ndarray, fps: float,
            source: str) -> Template:
        """Return a template with a fresh id and the current time as ``created``."""
        return cls(uuid.uuid4().hex, label, positions, visibility, fps, source,
                   datetime.now(timezone.utc).isoformat(timespec='seconds'))
