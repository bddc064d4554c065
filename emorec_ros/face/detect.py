"""
Face detection on BGR frames (MediaPipe or OpenCV's Haar cascade) and the classifier's crop.

All boxes are in pixels of the input image, origin at its top-left corner, x to the right and
y down, clipped to the image. Neither ROS nor TensorFlow is imported here (see
``emorec_ros.mediapipe_import`` for how MediaPipe is kept from importing TensorFlow).
"""
from __future__ import annotations

from dataclasses import dataclass
import math
import os
from pathlib import Path
from typing import Protocol

import cv2
from emorec_ros.mediapipe_import import import_solution
import numpy as np

#: Share of the longer box side that ``face_crop`` adds to the square's side (half above and
#: below, half left and right). On 2,944 FER-2013 training faces (the classifier's input)
#: MediaPipe finds a box of median side 40 of the 48 pixels, 48 / 40 - 1 = 0.2; by eye the crops
#: at 0.2 span forehead to chin like FER-2013 faces do. (MediaPipe's box centre sits ~0.1 of its
#: side below the FER centre; the crop stays centred on the box.)
DEFAULT_CROP_MARGIN = 0.2

#: The frontal-face cascade that ``HaarFaceDetector`` loads.
HAAR_CASCADE = 'haarcascade_frontalface_default.xml'

#: Where distributions' OpenCV packages put the Haar cascades, searched when ``cv2.data`` (only
#: in the pip wheels) is missing or lacks the file: Debian and Ubuntu's opencv-data package
#: (/usr/share/opencv4), older releases (/usr/share/opencv) and OpenCV built from source
#: (/usr/local/share).
HAAR_CASCADE_DIRS: tuple[str, ...] = (
    '/usr/share/opencv4/haarcascades',
    '/usr/share/opencv/haarcascades',
    '/usr/local/share/opencv4/haarcascades',
    '/usr/local/share/opencv/haarcascades',
)


@dataclass(frozen=True)
class FaceBox:
    """
    A detected face: top-left corner (x, y), size in pixels, confidence in [0, 1].

    ``roll`` is the angle in degrees from the image's x axis to the line from the face's right
    eye to its left eye (clockwise on screen, as y points down; 0 for an upright face), or None
    where the detector finds no eyes.
    """

    x: int
    y: int
    width: int
    height: int
    score: float
    roll: float | None = None

    @property
    def area(self) -> int:
        """Area in square pixels."""
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) in pixels."""
        return self.x + self.width / 2, self.y + self.height / 2


def iou(a: FaceBox, b: FaceBox) -> float:
    """Return the intersection over union of two boxes, in [0, 1] (0 if either is empty)."""
    w = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    h = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    inter = max(w, 0) * max(h, 0)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def clipped_box(x0: float, y0: float, x1: float, y1: float, score: float,
                image_size: tuple[int, int], roll: float | None = None) -> FaceBox | None:
    """
    Return the box from corners (x0, y0)-(x1, y1) in pixels, clipped to the image.

    ``image_size`` is (width, height). Return None when nothing of the box is left inside the
    image.
    """
    width, height = image_size
    left, top = max(0, int(round(x0))), max(0, int(round(y0)))
    right, bottom = min(width, int(round(x1))), min(height, int(round(y1)))
    if right <= left or bottom <= top:
        return None
    return FaceBox(left, top, right - left, bottom - top, float(score), roll)


class FaceDetector(Protocol):
    """Finds faces in one frame."""

    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        """Return the faces in a uint8 (H, W, 3) BGR image, sorted by score, highest first."""

    def close(self) -> None:
        """Release the detector's resources; it must not be used afterwards."""


def eye_roll(right_eye: tuple[float, float], left_eye: tuple[float, float]) -> float:
    """Return ``FaceBox.roll`` from the face's right and left eye (x, y) in image pixels."""
    return math.degrees(math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))


def check_bgr(bgr: np.ndarray) -> None:
    """Raise ValueError unless ``bgr`` is a uint8 (H, W, 3) image."""
    if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(
            f'expected a uint8 (H, W, 3) BGR image, got {bgr.dtype} {bgr.shape}')


def by_score(boxes: list[FaceBox | None]) -> list[FaceBox]:
    """Return the boxes that are not None, highest score first."""
    return sorted((b for b in boxes if b is not None), key=lambda b: b.score, reverse=True)


class MediaPipeFaceDetector:
    """
    MediaPipe's BlazeFace: short range (faces within ~2 m of the camera) or full range (~5 m).

    Scores are MediaPipe's detection confidences; faces below ``min_confidence`` are dropped
    here, because MediaPipe 0.10.21's face detection does not apply its own
    min_detection_confidence (a 0.92 face passes a threshold of 1.0).
    """

    def __init__(self, min_confidence: float = 0.5, full_range: bool = False) -> None:
        self.min_confidence = min_confidence
        face_detection = import_solution('face_detection')
        self._detector = face_detection.FaceDetection(min_detection_confidence=min_confidence,
                                                      model_selection=1 if full_range else 0)

    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        """Return the faces in a uint8 (H, W, 3) BGR image, sorted by score, highest first."""
        check_bgr(bgr)
        height, width = bgr.shape[:2]
        result = self._detector.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        boxes = []
        for detection in result.detections or ():
            if detection.score[0] < self.min_confidence:
                continue
            rel = detection.location_data.relative_bounding_box
            # Keypoints 0 and 1: the face's right and left eye, relative to the image.
            right, left = detection.location_data.relative_keypoints[:2]
            roll = eye_roll((right.x * width, right.y * height), (left.x * width, left.y * height))
            boxes.append(clipped_box(rel.xmin * width, rel.ymin * height,
                                     (rel.xmin + rel.width) * width,
                                     (rel.ymin + rel.height) * height,
                                     detection.score[0], (width, height), roll))
        return by_score(boxes)

    def close(self) -> None:
        """Release MediaPipe's graph."""
        self._detector.close()


def find_haar_cascade(name: str = HAAR_CASCADE) -> Path:
    """
    Return the path of one of OpenCV's Haar cascade files, e.g. the frontal-face one.

    The pip wheels of OpenCV ship the cascades in ``cv2.data.haarcascades``; distributions'
    OpenCV (Debian's python3-opencv) has no ``cv2.data`` and installs them with a separate
    package (opencv-data) into one of ``HAAR_CASCADE_DIRS``. Raise ValueError, naming every
    place searched and how to get the file, when none holds it.
    """
    data_dir = getattr(getattr(cv2, 'data', None), 'haarcascades', None)
    folders = [Path(os.fspath(data_dir))] if data_dir else []
    folders += [Path(folder) for folder in HAAR_CASCADE_DIRS]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    searched = [str(folder) for folder in folders]
    if not data_dir:
        searched.insert(0, 'cv2.data (not in this OpenCV)')
    raise ValueError(
        f"detector 'haar': OpenCV's cascade {name} is in none of: {', '.join(searched)}. "
        "Install your distribution's OpenCV data (Debian/Ubuntu: sudo apt-get install "
        'opencv-data) or the pip build of OpenCV (pip install opencv-contrib-python), or '
        "choose the detector 'mediapipe'.")


class HaarFaceDetector:
    """
    OpenCV's frontal-face Haar cascade, slower and less reliable than MediaPipe.

    It needs no MediaPipe, but the cascade file (see ``find_haar_cascade``).

    Score = n / (n + min_neighbors), n being the number of raw detections merged into the box:
    0.5 for a box that just passed the cascade's own threshold, towards 1 as more agree. Boxes
    scoring below ``min_confidence`` are dropped.
    """

    def __init__(self, min_size: int = 40, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_confidence: float = 0.0, cascade_path: str | Path | None = None) -> None:
        if min_size < 1 or scale_factor <= 1.0 or min_neighbors < 1:
            raise ValueError('Haar detector needs min_size >= 1 px, scale_factor > 1 and '
                             f'min_neighbors >= 1, got {min_size}, {scale_factor}, '
                             f'{min_neighbors}')
        path = Path(cascade_path) if cascade_path is not None else find_haar_cascade()
        try:
            # A file that is not a cascade raises cv2.error, which surfaces as SystemError.
            self._cascade = cv2.CascadeClassifier(str(path))
            loaded = not self._cascade.empty()
        except (cv2.error, SystemError) as e:
            raise ValueError(f"detector 'haar': could not load the Haar cascade {path} "
                             '(not a cascade file)') from e
        if not loaded:
            raise ValueError(f"detector 'haar': could not load the Haar cascade {path}")
        self.cascade_path = path
        self._min_size, self._scale_factor = min_size, scale_factor
        self._min_neighbors, self._min_confidence = min_neighbors, min_confidence

    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        """Return the faces in a uint8 (H, W, 3) BGR image, sorted by score, highest first."""
        check_bgr(bgr)
        height, width = bgr.shape[:2]
        grey = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        rects, neighbours = self._cascade.detectMultiScale2(
            grey, scaleFactor=self._scale_factor, minNeighbors=self._min_neighbors,
            minSize=(self._min_size, self._min_size))
        boxes = []
        for (x, y, w, h), n in zip(rects, neighbours):
            score = n / (n + self._min_neighbors)
            if score >= self._min_confidence:
                boxes.append(clipped_box(x, y, x + w, y + h, score, (width, height)))
        return by_score(boxes)

    def close(self) -> None:
        """Drop the cascade."""
        self._cascade = None


#: Detector names accepted by ``make_detector``.
DETECTOR_NAMES: tuple[str, ...] = ('blazeface', 'mediapipe', 'mediapipe_full', 'haar')


def make_detector(name: str, min_confidence: float = 0.5) -> FaceDetector:
    """
    Return a detector by name.

    'blazeface' (MediaPipe's short-range model run by LiteRT, ``face.blazeface``), 'mediapipe'
    (the same model in MediaPipe's graph), 'mediapipe_full' (full range) or 'haar'.
    """
    if name == 'blazeface':
        from emorec_ros.face.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(min_confidence)
    if name == 'mediapipe':
        return MediaPipeFaceDetector(min_confidence, full_range=False)
    if name == 'mediapipe_full':
        return MediaPipeFaceDetector(min_confidence, full_range=True)
    if name == 'haar':
        return HaarFaceDetector(min_confidence=min_confidence)
    raise ValueError(
        f'unknown face detector {name!r}; choose one of {", ".join(DETECTOR_NAMES)}')


def _square(box: FaceBox, margin: float, shift: float) -> tuple[int, int, int]:
    """Return (left, top, side) of the square around ``box``, before any turn."""
    if margin < 0:
        raise ValueError(f'margin must be >= 0, got {margin}')
    side = max(1, int(round(max(box.width, box.height) * (1 + margin))))
    cx, cy = box.center
    return int(round(cx - side / 2)), int(round(cy + shift * box.height - side / 2)), side


def crop_transform(box: FaceBox, margin: float = DEFAULT_CROP_MARGIN, shift: float = 0.0,
                   level: bool = True) -> tuple[np.ndarray, int]:
    """
    Return how ``face_crop`` maps the image onto its crop: a 2x3 affine matrix, and the side.

    Turning the image by +roll about the box centre (counter-clockwise on screen) levels the
    eyes; the translation puts the square's corner at the origin of the crop.
    """
    left, top, side = _square(box, margin, shift)
    turn = cv2.getRotationMatrix2D(box.center, box.roll if level and box.roll else 0.0, 1.0)
    turn[:, 2] -= (left, top)
    return turn, side


def face_crop(image: np.ndarray, box: FaceBox, margin: float = DEFAULT_CROP_MARGIN,
              shift: float = 0.0, level: bool = True) -> np.ndarray:
    """
    Return a square crop around ``box``, side max(width, height) * (1 + margin) pixels.

    Its centre lies ``shift`` box heights below the box centre (negative: above). With
    ``level`` and a box that knows its ``roll``, the square turns with the face about the box
    centre, so that the eyes come out level, as in the (mostly upright) training faces.

    Works on grey (H, W) or colour (H, W, C) images; where the square leaves the image its border
    pixels are repeated. Returns a new array of shape (side, side[, C]), same dtype.
    """
    left, top, side = _square(box, margin, shift)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f'{box} lies outside the {width}x{height} image')
    if level and box.roll:
        turn, _ = crop_transform(box, margin, shift, level)
        return cv2.warpAffine(image, turn, (side, side), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return cv2.copyMakeBorder(image[y0:y1, x0:x1], y0 - top, top + side - y1, x0 - left,
                              left + side - x1, cv2.BORDER_REPLICATE)
