"""
Face-emotion classification with a LiteRT model described by its JSON model card.

TensorFlow is not imported here: inference runs on ``ai_edge_litert``, which loads in well under
a second and runs our model in about a millisecond per face on a laptop-class CPU.
"""
from __future__ import annotations

from dataclasses import dataclass
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np


class ModelError(RuntimeError):
    """The model file or its card is missing, unreadable or inconsistent."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


@dataclass(frozen=True)
class ModelCard:
    """What a model expects and produces; read from ``<model>.json`` beside the model file."""

    labels: tuple[str, ...]
    input_size: tuple[int, int]
    channels: int
    scale: float
    offset: float
    raw: dict

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        """
        Read and check the card at ``path``.

        Raises ModelError, naming the card file and the field, when the file is missing or not
        JSON, or when a field is missing or invalid: ``labels`` (distinct non-empty strings),
        ``input_size`` ([height, width], positive integers), ``channels`` (1: grey input only),
        ``scale`` (finite, non-zero) and ``offset`` (finite). Whether the card fits the model
        file is checked by ``EmotionClassifier``, which loads both.
        """
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding='utf-8'))
        except FileNotFoundError as e:
            raise ModelError(f'model card {path} not found') from e
        except (OSError, ValueError) as e:
            raise ModelError(f'model card {path} is unreadable: {e!r}') from e
        if not isinstance(raw, dict):
            raise ModelError(f'model card {path} is unreadable: expected a JSON object, '
                             f'got {type(raw).__name__}')
        missing = [key for key in ('labels', 'input_size', 'channels', 'scale', 'offset')
                   if key not in raw]
        if missing:
            raise ModelError(f'model card {path} is incomplete: no {", ".join(missing)}')

        def invalid(field: str, expected: str) -> ModelError:
            return ModelError(f'model card {path}: {field} must be {expected}, '
                              f'got {raw[field]!r}')

        labels = raw['labels']
        if (not isinstance(labels, list) or not labels
                or not all(isinstance(label, str) and label.strip() for label in labels)):
            raise invalid('labels', 'a non-empty list of non-empty strings')
        if len(set(labels)) != len(labels):
            duplicates = sorted({label for label in labels if labels.count(label) > 1})
            raise invalid('labels', f'distinct (repeated: {", ".join(duplicates)})')
        size = raw['input_size']
        if (not isinstance(size, list) or len(size) != 2
                or not all(_is_integer(side) and side > 0 for side in size)):
            raise invalid('input_size', '[height, width] in pixels, two positive integers')
        if not _is_integer(raw['channels']) or raw['channels'] != 1:
            raise invalid('channels', '1 (the classifier takes grey faces only)')
        if not _is_number(raw['scale']) or not math.isfinite(raw['scale']) or raw['scale'] == 0:
            raise invalid('scale', 'a finite, non-zero number')
        if not _is_number(raw['offset']) or not math.isfinite(raw['offset']):
            raise invalid('offset', 'a finite number')
        return cls(labels=tuple(labels), input_size=(int(size[0]), int(size[1])),
                   channels=int(raw['channels']), scale=float(raw['scale']),
                   offset=float(raw['offset']), raw=raw)


def card_path_for(model_path: Path) -> Path:
    """Return the card of a model: ``models/x.json`` for ``models/x.tflite``."""
    return Path(model_path).with_suffix('.json')


class EmotionClassifier:
    """Scores a grey face crop over the card's labels (scores sum to 1)."""

    def __init__(self, model_path: Path, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f'model file {model_path} not found')
        card_path = card_path_for(model_path)
        self.card = ModelCard.load(card_path)
        try:
            self._interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f'model file {model_path} could not be loaded: {e}') from e
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        in_shape = tuple(int(n) for n in inp['shape'])
        out_shape = tuple(int(n) for n in out['shape'])
        h, w = self.card.input_size
        if len(in_shape) != 4 or in_shape[0] != 1:
            raise ModelError(f'model file {model_path}: input tensor {in_shape} is not one '
                             f'(1, height, width, channels) image')
        if in_shape[1:3] != (h, w):
            raise ModelError(f'model card {card_path}: input_size [{h}, {w}] does not match the '
                             f'input tensor {in_shape} of {model_path}')
        if in_shape[3] != self.card.channels:
            raise ModelError(f'model card {card_path}: channels {self.card.channels} does not '
                             f'match the input tensor {in_shape} of {model_path}')
        if len(out_shape) != 2 or out_shape[0] != 1 or out_shape[1] != len(self.card.labels):
            raise ModelError(f'model card {card_path}: labels has {len(self.card.labels)} '
                             f'entries, but {model_path} outputs scores of shape {out_shape}')
        self._in, self._out = inp['index'], out['index']

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels of the scores, in their order."""
        return self.card.labels

    def prepare(self, crop: np.ndarray) -> np.ndarray:
        """Return a grey uint8 (h, w) crop at the model's input size, from any grey or BGR crop."""
        if crop.ndim == 3:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        h, w = self.card.input_size
        if crop.shape != (h, w):
            interpolation = cv2.INTER_AREA if crop.shape[0] > h else cv2.INTER_LINEAR
            crop = cv2.resize(crop, (w, h), interpolation=interpolation)
        return crop

    def scores(self, crop: np.ndarray) -> np.ndarray:
        """Return float32 scores, one per label, for one face crop (grey or BGR uint8)."""
        face = self.prepare(crop).astype(np.float32) * self.card.scale + self.card.offset
        self._interpreter.set_tensor(self._in, face[None, :, :, None])
        self._interpreter.invoke()
        scores = self._interpreter.get_tensor(self._out)[0].astype(np.float32)
        # An int8 model's softmax comes in steps of 1/256: renormalise so the scores sum to 1.
        total = float(scores.sum())
        return scores / total if total > 0 else np.full_like(scores, 1.0 / len(scores))

    def scores_batch(self, crops: np.ndarray) -> np.ndarray:
        """Return the scores (N, len(labels)) of N crops."""
        if not len(crops):
            return np.zeros((0, len(self.labels)), np.float32)
        return np.stack([self.scores(c) for c in crops])
