"""
FER-2013 splits as numpy arrays (no TensorFlow, no ROS).

The dataset ships as two ``.npz`` files: ``fer2013_train_publictest.npz`` (Training and
PublicTest, told apart by ``split``) and ``fer2013_privatetest.npz`` (the held-out PrivateTest).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Label index -> class name, the order of the dataset and of our model's outputs.
FER_CLASSES: tuple[str, ...] = ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')
SPLITS: tuple[str, ...] = ('Training', 'PublicTest', 'PrivateTest')


@dataclass(frozen=True)
class FaceSet:
    """Grey 48x48 faces (uint8, shape (N, 48, 48)) with int labels into FER_CLASSES."""

    images: np.ndarray
    labels: np.ndarray
    split: str


def load_split(data_dir: Path, split: str) -> FaceSet:
    """Load one FER-2013 split from ``data_dir``; raises ValueError on an unknown split."""
    if split not in SPLITS:
        raise ValueError(f'unknown split {split!r}; choose one of {", ".join(SPLITS)}')
    data_dir = Path(data_dir)
    if split == 'PrivateTest':
        with np.load(data_dir / 'fer2013_privatetest.npz') as data:
            images, labels, names = data['images'], data['labels'], data['class_names']
    else:
        with np.load(data_dir / 'fer2013_train_publictest.npz') as data:
            keep = data['split'] == SPLITS.index(split)
            images, labels, names = data['images'][keep], data['labels'][keep], data['class_names']
    if tuple(str(n) for n in names) != FER_CLASSES:
        raise ValueError(f'{data_dir}: class order {list(names)} differs from {list(FER_CLASSES)}')
    return FaceSet(images=np.ascontiguousarray(images, dtype=np.uint8),
                   labels=labels.astype(np.int64), split=split)
