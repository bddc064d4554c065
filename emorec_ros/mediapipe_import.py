"""Import a MediaPipe solution without importing TensorFlow."""
from __future__ import annotations

import importlib
import sys
from types import ModuleType


def import_solution(name: str) -> ModuleType:
    """
    ``mediapipe.python.solutions.<name>`` (e.g. 'face_detection', 'pose') without TensorFlow.

    Any ``import mediapipe.<anything>`` first runs ``mediapipe/__init__.py``, which imports
    ``mediapipe.tasks.python``; its ``core/optional_dependencies.py`` does
    ``from tensorflow.tools.docs import doc_controls`` (used only to build API docs, with a no-op
    fallback on ModuleNotFoundError). Where TensorFlow is installed that costs ~5-8 s and
    ~700 MB. A None entry in ``sys.modules`` makes that one import raise ModuleNotFoundError, so
    MediaPipe takes its fallback; the entry is removed at once, so a later ``import tensorflow``
    works as usual. Not safe against another thread importing TensorFlow at the same moment.
    """
    block = 'mediapipe' not in sys.modules and 'tensorflow' not in sys.modules
    if block:
        sys.modules['tensorflow'] = None  # type: ignore[assignment]
    try:
        return importlib.import_module(f'mediapipe.python.solutions.{name}')
    finally:
        if block:
            del sys.modules['tensorflow']
