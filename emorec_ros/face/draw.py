"""Annotated images for people to look at (rviz, the demo video)."""
from __future__ import annotations

from typing import Sequence

import cv2
from emorec_ros.face.pipeline import Explanation, FaceEmotionResult
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
    'contempt': (60, 90, 150),
}

#: Weight of the heat map where it is drawn over a face.
HEAT_ALPHA = 0.45


def draw_explanation(out: np.ndarray, explanation: Explanation) -> None:
    """
    Blend the explanation's heat map (jet colours: red = most evidence) over its face, in place.

    The map is stretched over the classifier's square crop and turned back with the face.
    """
    side = explanation.side
    heat = cv2.resize(explanation.heat, (side, side), interpolation=cv2.INTER_LINEAR)
    colours = cv2.applyColorMap(cv2.convertScaleAbs(heat, alpha=255), cv2.COLORMAP_JET)
    to_image = cv2.invertAffineTransform(explanation.to_crop)
    cx, cy = to_image @ (side / 2, side / 2, 1.0)
    # Paint only the bounds of the turned square (its half diagonal around the centre).
    reach = side / np.sqrt(2) + 1
    height, width = out.shape[:2]
    x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
    x1, y1 = min(width, int(np.ceil(cx + reach))), min(height, int(np.ceil(cy + reach)))
    if x1 <= x0 or y1 <= y0:
        return
    to_image[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    painted = cv2.warpAffine(colours, to_image, size, flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.full((side, side), 255, np.uint8), to_image, size,
                            flags=cv2.INTER_NEAREST)
    region = out[y0:y1, x0:x1]
    # cv2.copyTo writes through the view, 20x faster than numpy's masked assignment.
    cv2.copyTo(cv2.addWeighted(region, 1 - HEAT_ALPHA, painted, HEAT_ALPHA, 0), inside, region)


def draw_faces(bgr: np.ndarray, faces: Sequence[FaceEmotionResult]) -> np.ndarray:
    """
    Return a copy of ``bgr`` with each face's box, track id, emotion and confidence on it.

    Faces with an explanation get its heat map under their box.
    """
    out = bgr.copy()
    thickness = max(1, round(min(out.shape[:2]) / 240))
    for face in faces:
        if face.explanation is not None:
            draw_explanation(out, face.explanation)
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
