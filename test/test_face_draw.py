"""Heat maps drawn over faces: where the classifier's crop was, turned with the face."""
from __future__ import annotations

from emorec_ros.face.detect import crop_transform, face_crop, FaceBox
from emorec_ros.face.draw import draw_explanation
from emorec_ros.face.pipeline import Explanation
import numpy as np
import pytest


@pytest.mark.parametrize('roll', [0.0, 30.0])
def test_the_map_covers_the_crop_and_nothing_else(roll: float) -> None:
    image = np.full((200, 300, 3), 128, np.uint8)
    box = FaceBox(100, 60, 80, 80, 1.0, roll)
    side = face_crop(image, box, margin=0.25).shape[0]  # 100
    # Hot in the crop's top-left quarter only.
    heat = np.zeros((6, 6), np.float32)
    heat[:3, :3] = 1.0
    painted = image.copy()
    draw_explanation(painted, Explanation(heat, *crop_transform(box, margin=0.25)))
    changed = np.any(painted != image, axis=2)
    # What face_crop would hand the classifier: the painted crop, levelled again.
    crop = face_crop(painted, box, margin=0.25)
    assert crop.shape[:2] == (side, side)
    # Inside the crop, red (hot) at the top left and blue (cold) at the bottom right.
    hot, cold = crop[20, 20].astype(int), crop[80, 80].astype(int)
    assert hot[2] > hot[0] + 40 and cold[0] > cold[2] + 40, (hot, cold)
    # Nothing outside the turned square; the square's area is painted.
    assert not changed[:, :40].any() and not changed[:, 250:].any()
    assert changed.sum() == pytest.approx(side * side, rel=0.05)


def test_a_map_off_the_image_paints_nothing() -> None:
    image = np.zeros((50, 50, 3), np.uint8)
    off = FaceBox(-240, -240, 40, 40, 1.0)  # wholly left of and above the image
    draw_explanation(image, Explanation(np.ones((6, 6), np.float32), *crop_transform(off, 0.0)))
    assert not image.any()
