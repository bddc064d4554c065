"""Face-emotion classification with a LiteRT model described by its JSON model card.

TensorFlow is not imported here: inference runs on ``ai_edge_litert``, which loads in well under
a second and runs our model in about a millisecond per face on a laptop-class CPU.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


class ModelError(RuntimeError):
    """The model file or its card is missing, unreadable or inconsistent."""


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
    def load(cls, path: Path) -> 'ModelCard':
        try:
            raw = json.loads(Path(path).read_text())
            card = cls(labels=tuple(raw['labels']), input_size=(int(raw['input_size'][0]), int(raw['input_size'][1])),
                       channels=int(raw['channels']), scale=float(raw['scale']), offset=float(raw['offset']), raw=raw)
        except FileNotFoundError as e:
            raise ModelError(f'model card {path} not found') from e
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            raise ModelError(f'model card {path} is unreadable or incomplete: {e!r}') from e
        if card.channels != 1 or not card.labels or min(card.input_size) <= 0:
            raise ModelError(f'model card {path}: unsupported model (channels={card.channels}, '
                             f'input_size={card.input_size}, {len(card.labels)} labels)')
        return card


def card_path_for(model_path: Path) -> Path:
    """The card of ``models/x.tflite`` is ``models/x.json``."""
    return Path(model_path).with_suffix('.json')


class EmotionClassifier:
    """Scores a grey face crop over the card's labels (scores sum to 1)."""

    def __init__(self, model_path: Path, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f'model file {model_path} not found')
        self.card = ModelCard.load(card_path_for(model_path))
        try:
            self._interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f'model file {model_path} could not be loaded: {e}') from e
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        h, w = self.card.input_size
        if tuple(inp['shape']) != (1, h, w, 1) or out['shape'][-1] != len(self.card.labels):
            raise ModelError(f'{model_path}: tensors {tuple(inp["shape"])} -> {tuple(out["shape"])} do not match '
                             f'its card (input {h}x{w}x1, {len(self.card.labels)} labels)')
        self._in, self._out = inp['index'], out['index']

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    def prepare(self, crop: np.ndarray) -> np.ndarray:
        """Grey uint8 (h, w) at the model's input size from a grey or BGR crop of any size."""
        if crop.ndim == 3:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        h, w = self.card.input_size
        if crop.shape != (h, w):
            interpolation = cv2.INTER_AREA if crop.shape[0] > h else cv2.INTER_LINEAR
            crop = cv2.resize(crop, (w, h), interpolation=interpolation)
        return crop

    def scores(self, crop: np.ndarray) -> np.ndarray:
        """Scores (len(labels),) float32 for one face crop (grey or BGR, any size, uint8)."""
        face = self.prepare(crop).astype(np.float32) * self.card.scale + self.card.offset
        self._interpreter.set_tensor(self._in, face[None, :, :, None])
        self._interpreter.invoke()
        scores = self._interpreter.get_tensor(self._out)[0].astype(np.float32)
        # An int8 model's softmax comes in steps of 1/256: renormalise so the scores sum to 1.
        total = float(scores.sum())
        return scores / total if total > 0 else np.full_like(scores, 1.0 / len(scores))

    def scores_batch(self, crops: np.ndarray) -> np.ndarray:
        """Scores (N, len(labels)) for N crops."""
        return np.stack([self.scores(c) for c in crops]) if len(crops) else np.zeros((0, len(self.labels)), np.float32)
