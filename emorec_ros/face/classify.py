"""
Face-emotion classification with a LiteRT model described by its JSON model card.

TensorFlow is not imported here: inference runs on ``ai_edge_litert``, which loads in well under
a second and runs our model in about two milliseconds per face on a laptop-class CPU.

The model outputs logits (1, classes) and, optionally, class activation maps (1, h, w, classes):
for each class, where in the face its evidence lies (the logits are the maps' means plus a bias).
Scores are softmax(logits / temperature), the temperature coming from the card.
"""
from __future__ import annotations

from dataclasses import dataclass
import json
import math
from pathlib import Path
from typing import Any

import cv2
from emorec_ros.calibration import softmax
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
    temperature: float
    outputs_logits: bool
    raw: dict

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        """
        Read and check the card at ``path``.

        Raises ModelError, naming the card file and the field, when the file is missing or not
        JSON, or when a field is missing or invalid: ``labels`` (distinct non-empty strings),
        ``input_size`` ([height, width], positive integers), ``channels`` (1: grey input only),
        ``scale`` (finite, non-zero), ``offset`` (finite), and the optional ``temperature``
        (finite, > 0; 1 when absent) and ``output_kind`` ('logits', or 'probabilities' when
        absent: a softmax output, as peers' models have). Whether the card fits the model file
        is checked by ``EmotionClassifier``, which loads both.
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
        temperature = raw.get('temperature', 1.0)
        if not _is_number(temperature) or not math.isfinite(temperature) or temperature <= 0:
            raise invalid('temperature', 'a finite number > 0')
        output_kind = raw.get('output_kind', 'probabilities')
        if output_kind not in ('logits', 'probabilities'):
            raise ModelError(f"model card {path}: output_kind must be 'logits' or "
                             f"'probabilities', got {output_kind!r}")
        return cls(labels=tuple(labels), input_size=(int(size[0]), int(size[1])),
                   channels=int(raw['channels']), scale=float(raw['scale']),
                   offset=float(raw['offset']), temperature=float(temperature),
                   outputs_logits=output_kind == 'logits', raw=raw)


def card_path_for(model_path: Path) -> Path:
    """Return the card of a model: ``models/x.json`` for ``models/x.tflite``."""
    return Path(model_path).with_suffix('.json')


class EmotionClassifier:
    """
    Scores a grey face crop over the card's labels (scores sum to 1).

    ``explain`` also returns the winning class's activation map, where the model has one.
    """

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
        outputs = {len(o['shape']): o for o in self._interpreter.get_output_details()}
        in_shape = tuple(int(n) for n in inp['shape'])
        h, w = self.card.input_size
        n = len(self.card.labels)
        if len(in_shape) != 4 or in_shape[0] != 1:
            raise ModelError(f'model file {model_path}: input tensor {in_shape} is not one '
                             f'(1, height, width, channels) image')
        if in_shape[1:3] != (h, w):
            raise ModelError(f'model card {card_path}: input_size [{h}, {w}] does not match the '
                             f'input tensor {in_shape} of {model_path}')
        if in_shape[3] != self.card.channels:
            raise ModelError(f'model card {card_path}: channels {self.card.channels} does not '
                             f'match the input tensor {in_shape} of {model_path}')
        shapes = sorted(tuple(int(d) for d in o['shape']) for o in outputs.values())
        if 2 not in outputs or tuple(outputs[2]['shape']) != (1, n):
            raise ModelError(f'model card {card_path}: labels has {n} entries, but '
                             f'{model_path} outputs no logits of shape (1, {n}) '
                             f'(outputs: {shapes})')
        maps = outputs.get(4)
        if maps is not None and (maps['shape'][0] != 1 or maps['shape'][3] != n):
            raise ModelError(f'model file {model_path}: class activation maps {shapes} are not '
                             f'(1, height, width, {n})')
        self._in, self._logits = inp['index'], outputs[2]['index']
        self._maps = None if maps is None else maps['index']

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

    @property
    def explains(self) -> bool:
        """Whether the model has class activation maps."""
        return self._maps is not None

    def _run(self, crop: np.ndarray) -> None:
        face = self.prepare(crop).astype(np.float32) * self.card.scale + self.card.offset
        self._interpreter.set_tensor(self._in, face[None, :, :, None])
        self._interpreter.invoke()

    def _read_logits(self) -> np.ndarray:
        out = self._interpreter.get_tensor(self._logits)[0].astype(np.float32)
        # A softmax output's logits, up to a constant: log(p) (an int8 softmax has zeros).
        return out if self.card.outputs_logits else np.log(np.maximum(out, 1e-6))

    def logits(self, crop: np.ndarray) -> np.ndarray:
        """Return float32 logits, one per label, for one face crop (grey or BGR uint8)."""
        self._run(crop)
        return self._read_logits()

    def scores(self, crop: np.ndarray) -> np.ndarray:
        """Return float32 scores, one per label, for one face crop (grey or BGR uint8)."""
        return softmax(self.logits(crop), self.card.temperature).astype(np.float32)

    def explain(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        Return the scores and the winning class's activation map of one face crop.

        The map (float32, the model's map size, e.g. 6x6, covering the crop) is where the
        evidence for the winning class lies, scaled to 0..1 (0 everywhere when it is flat).
        Raises ModelError when the model has no maps.
        """
        if self._maps is None:
            raise ModelError('this face model has no class activation maps to explain with')
        self._run(crop)
        scores = softmax(self._read_logits(), self.card.temperature)
        heat = self._interpreter.get_tensor(self._maps)[0, :, :, int(np.argmax(scores))]
        heat = heat - heat.min()
        top = float(heat.max())
        heat = heat / top if top > 0 else heat
        return scores.astype(np.float32), heat.astype(np.float32)

    def scores_batch(self, crops: np.ndarray) -> np.ndarray:
        """Return the scores (N, len(labels)) of N crops."""
        if not len(crops):
            return np.zeros((0, len(self.labels)), np.float32)
        return np.stack([self.scores(c) for c in crops])
