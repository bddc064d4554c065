"""A gesture template: a labelled recording of skeletons, from a camera or from motion capture."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from emorec_ros.gesture.skeleton import JOINTS, drop_non_finite

#: Labels are lowercase identifiers of at most 32 characters: safe in file names, topics, YAML.
LABEL_PATTERN = re.compile(r'[a-z][a-z0-9_]{0,31}')
#: Template ids: letters, digits, '_' and '-' (new ones are 32 hex digits), never a path.
ID_PATTERN = re.compile(r'[A-Za-z0-9_-]{1,64}')


def validate_label(label: str) -> str:
    """``label`` if it is a lowercase identifier (``[a-z][a-z0-9_]{0,31}``), else ValueError."""
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        raise ValueError(f'bad label {label!r}: use 1-32 characters a-z, 0-9 and _, starting with a letter')
    return label


def validate_id(template_id: str) -> str:
    """``template_id`` if it matches ID_PATTERN, else ValueError."""
    if not isinstance(template_id, str) or not ID_PATTERN.fullmatch(template_id):
        raise ValueError(f'bad template id {template_id!r}')
    return template_id


@dataclass(frozen=True, eq=False)
class Template:
    """Skeletons over time: positions (frames, len(joints), D), D = 2 (pixels) or 3 (metres),
    visibilities (frames, len(joints)) in [0, 1], at ``fps`` frames per second.

    ``source`` says where it came from (free text, e.g. 'camera' or a BVH file name);
    ``created`` is an ISO 8601 UTC time; ``joints`` names the rows of the arrays. Arrays are
    stored as float32 copies; non-finite joints become missing (visibility 0), as in Skeleton.
    """

    id: str
    label: str
    positions: np.ndarray
    visibility: np.ndarray
    fps: float
    source: str
    created: str
    joints: tuple[str, ...] = field(default=JOINTS)

    def __post_init__(self) -> None:
        validate_id(self.id)
        validate_label(self.label)
        positions = np.array(self.positions, dtype=np.float32)
        visibility = np.clip(np.array(self.visibility, dtype=np.float32), 0.0, 1.0)
        frames = len(positions)
        if (positions.ndim != 3 or positions.shape[1:] not in ((len(self.joints), 2), (len(self.joints), 3))
                or visibility.shape != (frames, len(self.joints)) or frames < 1):
            raise ValueError(f'template {self.id}: positions {positions.shape} and visibility {visibility.shape} '
                             f'do not fit {len(self.joints)} joints')
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f'template {self.id}: fps must be > 0, got {self.fps}')
        drop_non_finite(positions, visibility)
        object.__setattr__(self, 'positions', positions)
        object.__setattr__(self, 'visibility', visibility)
        object.__setattr__(self, 'fps', float(self.fps))
        object.__setattr__(self, 'joints', tuple(self.joints))

    @property
    def frames(self) -> int:
        return len(self.positions)

    @classmethod
    def new(cls, label: str, positions: np.ndarray, visibility: np.ndarray, fps: float, source: str) -> Template:
        """A template with a fresh id and the current time as ``created``."""
        return cls(uuid.uuid4().hex, label, positions, visibility, fps, source,
                   datetime.now(timezone.utc).isoformat(timespec='seconds'))
