"""The skeleton and the body-language verdict drawn on an image, for people to look at."""
from __future__ import annotations

import cv2
from emorec_ros.gesture.skeleton import JOINT_INDEX, Skeleton
import numpy as np

#: Pairs of joints joined by a line.
BONES: tuple[tuple[str, str], ...] = (
    ('left_shoulder', 'right_shoulder'),
    ('left_shoulder', 'left_elbow'),
    ('left_elbow', 'left_wrist'),
    ('right_shoulder', 'right_elbow'),
    ('right_elbow', 'right_wrist'),
    ('left_shoulder', 'left_hip'),
    ('right_shoulder', 'right_hip'),
    ('left_hip', 'right_hip'),
    ('left_hip', 'left_knee'),
    ('left_knee', 'left_ankle'),
    ('right_hip', 'right_knee'),
    ('right_knee', 'right_ankle'),
)


def draw_skeleton(bgr: np.ndarray, skeleton: Skeleton | None, caption: str) -> np.ndarray:
    """
    Return a copy of ``bgr`` with the skeleton's present joints and bones, and a caption.

    The skeleton is 2-D, in pixels.
    """
    out = bgr.copy()
    thickness = max(1, round(min(out.shape[:2]) / 240))
    if skeleton is not None:
        points = np.round(skeleton.positions[:, :2]).astype(int)
        present = skeleton.present
        for a, b in BONES:
            i, j = JOINT_INDEX[a], JOINT_INDEX[b]
            if present[i] and present[j]:
                cv2.line(
                    out, tuple(points[i]), tuple(points[j]), (80, 220, 80), thickness, cv2.LINE_AA
                )
        for point in points[present]:
            cv2.circle(
                out, tuple(point), 2 * thickness + 1, (40, 160, 255), cv2.FILLED, cv2.LINE_AA
            )
    scale = 0.4 + 0.2 * thickness
    (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), cv2.FILLED)
    cv2.putText(out, caption, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thickness, cv2.LINE_AA)
    return out
