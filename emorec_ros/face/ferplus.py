"""
FER+ (FER-2013 relabelled by 10 taggers per face) as numpy arrays (no TensorFlow, no ROS).

The dataset ships as one ``ferplus.npz``: ``images`` (N, 48, 48) uint8, ``votes`` (N, 10) over
``vote_names`` (8 emotions, then ``unknown`` and ``NF``, not a face) and ``split`` (0 Train,
1 Valid, 2 Test). Scoring follows the dataset's protocol: a face counts when its 8 emotion votes
have a unique majority and unknown + NF are fewer than half of all votes; a prediction is right
when it names that majority.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emorec_ros.face.fer2013 import FaceSet
import numpy as np

#: Model outputs, in FER+'s vote order, named like FER-2013's classes where both have one.
FERPLUS_CLASSES: tuple[str, ...] = (
    'neutral', 'happy', 'surprise', 'sad', 'angry', 'disgust', 'fear', 'contempt'
)
#: ``vote_names`` of the file, in its order; the first 8 are FERPLUS_CLASSES.
VOTE_NAMES: tuple[str, ...] = (
    'neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear', 'contempt',
    'unknown', 'NF'
)
SPLITS: tuple[str, ...] = ('Train', 'Valid', 'Test')
N_EMOTIONS = len(FERPLUS_CLASSES)


@dataclass(frozen=True)
class VotedFaces:
    """Grey 48x48 faces (uint8, (N, 48, 48)) with their taggers' votes (int, (N, 10))."""

    images: np.ndarray
    votes: np.ndarray
    split: str

    @property
    def scored(self) -> np.ndarray:
        """Mask of the faces the protocol scores: unique emotion majority, unknown + NF < half."""
        emotions = self.votes[:, :N_EMOTIONS]
        top = emotions.max(axis=1)
        unique = (emotions == top[:, None]).sum(axis=1) == 1
        unsure = self.votes[:, N_EMOTIONS:].sum(axis=1)
        return unique & (top > 0) & (2 * unsure < self.votes.sum(axis=1))

    @property
    def majority(self) -> np.ndarray:
        """Index into FERPLUS_CLASSES of the most-voted emotion (the first one on a tie)."""
        return np.argmax(self.votes[:, :N_EMOTIONS], axis=1)

    def targets(self) -> np.ndarray:
        """
        Vote distributions over FERPLUS_CLASSES (float32 (N, 8), rows sum to 1).

        As in the FER+ paper, an emotion that only one tagger chose is dropped as an outlier
        unless it is the face's only emotion vote. Faces without emotion votes get zero rows:
        use ``trainable`` to leave them out.
        """
        emotions = self.votes[:, :N_EMOTIONS].astype(np.float32)
        kept = np.where(emotions > 1, emotions, 0.0)
        kept = np.where(kept.sum(axis=1, keepdims=True) > 0, kept, emotions)
        total = kept.sum(axis=1, keepdims=True)
        return np.divide(kept, total, out=np.zeros_like(kept), where=total > 0)

    @property
    def trainable(self) -> np.ndarray:
        """Mask of the faces worth training on: some emotion vote, unknown + NF < half."""
        unsure = self.votes[:, N_EMOTIONS:].sum(axis=1)
        return (self.votes[:, :N_EMOTIONS].sum(axis=1) > 0) & (
            2 * unsure < self.votes.sum(axis=1))

    def subset(self, mask: np.ndarray) -> VotedFaces:
        """Return the faces where ``mask`` is true."""
        return VotedFaces(self.images[mask], self.votes[mask], self.split)

    def as_face_set(self) -> FaceSet:
        """Return the scored faces with their majority labels, for single-label evaluation."""
        keep = self.scored
        return FaceSet(self.images[keep], self.majority[keep], f'FER+ {self.split}')


def load_split(path: Path, split: str) -> VotedFaces:
    """Load one FER+ split from ``ferplus.npz``; raises ValueError on an unknown split or file."""
    if split not in SPLITS:
        raise ValueError(f'unknown FER+ split {split!r}; choose one of {", ".join(SPLITS)}')
    with np.load(Path(path)) as data:
        names = tuple(str(n) for n in data['vote_names'])
        if names != VOTE_NAMES:
            raise ValueError(f'{path}: vote names {list(names)} differ from {list(VOTE_NAMES)}')
        keep = data['split'] == SPLITS.index(split)
        return VotedFaces(np.ascontiguousarray(data['images'][keep], dtype=np.uint8),
                          data['votes'][keep].astype(np.int64), split)
