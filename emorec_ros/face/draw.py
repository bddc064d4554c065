"""Annotated images for people to look at (rviz, the demo video)."""
from __future__ import annotations

from typing import Sequence

import cv2
from emorec_ros.face.pipeline import FaceEmotionResult
import numpy as np

#: BGR colour per emotion, so a glance tells the mood.
EMOTION_COLOURS: dict[str, tuple[int, int, int]] = {
    'angry': (40, 40, 220),
    'disgust': (40, 140, 40),
    'fear': (160, 60, 160),
    'happy': (40, 200, 250),
    'sad': (200, 120, 40),
    'surprise': (230, 230, 40),
    'neutral': (190, 190, 190),
}


def draw_faces(bgr: np.ndarray, faces: Sequence[FaceEmotionResult]) -> np.ndarray:
    """Return a copy of ``bgr`` with each face's box, track id, emotion and confidence on it."""
    out = bgr.copy()
    thickness = max(1, round(min(out.shape[:2]) / 240))
    for face in faces:
        colour = EMOTION_COLOURS.get(face.emotion, (255, 255, 255))
        b = face.box
        cv2.rectangle(out, (b.x, b.y), (b.x + b.width, b.y + b.height), colour, thickness)
        text = f'{face.track_id} {face.emotion} {face.confidence:.2f}'
        scale = 0.4 + 0.2 * thickness
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        y = b.y - 4 if b.y - th - base - 4 >= 0 else b.y + b.height + th + 4
        cv2.rectangle(out, (b.x, y - th - base), (b.x + tw, y + base), colour, cv2.FILLED)
        cv2.putText(
            out, text, (b.x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA
        )
    return out
