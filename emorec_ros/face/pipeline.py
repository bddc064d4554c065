"""Image -> faces -> tracks -> emotions, the face-emotion pipeline without ROS."""
from __future__ import annotations

from dataclasses import dataclass

from emorec_ros.face.classify import EmotionClassifier
from emorec_ros.face.detect import crop_transform, face_crop, FaceBox, FaceDetector
from emorec_ros.face.track import FaceTracker
import numpy as np


@dataclass(frozen=True)
class Explanation:
    """
    Where in a face the evidence for its winning class lies: a class activation map.

    ``heat`` (float32 (h, w), 0..1) covers the square crop the classifier saw, ``side`` pixels,
    which ``to_crop`` (2x3 affine, see ``crop_transform``) maps the image onto.
    """

    heat: np.ndarray
    to_crop: np.ndarray
    side: int


@dataclass(frozen=True)
class FaceEmotionResult:
    """One tracked face of an image with its emotion scores (ordered like ``labels``)."""

    track_id: str
    box: FaceBox
    labels: tuple[str, ...]
    scores: np.ndarray
    explanation: Explanation | None = None

    @property
    def emotion(self) -> str:
        return self.labels[int(np.argmax(self.scores))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.scores))


class FaceEmotionPipeline:
    """
    Detects faces, follows them from frame to frame and scores their emotion.

    ``max_faces`` keeps the most confident detections; ``min_face_size`` (pixels, the smaller
    side of the box) skips faces too small to read; ``margin`` widens the square crop handed to
    the classifier.
    """

    def __init__(self, detector: FaceDetector, classifier: EmotionClassifier, tracker: FaceTracker,
                 margin: float, max_faces: int, min_face_size: int) -> None:
        if max_faces < 1 or min_face_size < 1 or margin < 0:
            raise ValueError(
                f'max_faces ({max_faces}) and min_face_size ({min_face_size}) must be >= 1 '
                f'and margin ({margin}) >= 0'
            )
        self.detector, self.classifier, self.tracker = detector, classifier, tracker
        self.margin, self.max_faces, self.min_face_size = margin, max_faces, min_face_size

    def process(self, bgr: np.ndarray, explain: bool = False) -> list[FaceEmotionResult]:
        """
        Faces in one BGR uint8 image, most confident detection first.

        With ``explain`` (and a model that has class activation maps), each result carries the
        map of its winning class before smoothing.
        """
        boxes = [
            b for b in self.detector.detect(bgr) if min(b.width, b.height) >= self.min_face_size
        ]
        boxes = boxes[:self.max_faces]
        explain = explain and self.classifier.explains
        results = []
        for box, track in zip(boxes, self.tracker.update(boxes)):
            crop = face_crop(bgr, box, self.margin)
            explanation = None
            if explain:
                scores, heat = self.classifier.explain(crop)
                explanation = Explanation(heat, *crop_transform(box, self.margin))
            else:
                scores = self.classifier.scores(crop)
            scores = self.tracker.smooth(track, scores)
            results.append(
                FaceEmotionResult(track.id, box, self.classifier.labels, scores, explanation))
        return results

    def close(self) -> None:
        self.detector.close()
