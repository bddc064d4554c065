"""
MediaPipe's short-range face detector (BlazeFace) run by LiteRT, without MediaPipe's graph.

MediaPipe's face-detection solution runs its model in about 1.4 ms on a 2-core AVX2 CPU but
takes 3.7 ms an image, the rest being its graph (packets, image conversion, scheduling).
``BlazeFaceDetector`` feeds the same model file (bundled with the mediapipe package) through
LiteRT and prepares its input and decodes its output as MediaPipe's graph for it does
(modules/face_detection: ImageToTensorCalculator, SsdAnchorsCalculator,
TensorsToDetectionsCalculator, weighted NonMaxSuppressionCalculator). MediaPipe offers no API for
this, so it is hand-written here; ``test/test_face_detect.py`` checks it against MediaPipe's own
detections.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
from emorec_ros.face.detect import by_score, check_bgr, clipped_box, eye_roll, FaceBox
import numpy as np

#: The model's input side (pixels) and its anchors: a 16x16 grid with 2 anchors per cell
#: (stride 8) and an 8x8 grid with 6 (three layers of stride 16), centred in their cells, of
#: fixed unit size (MediaPipe's options for this model).
INPUT_SIDE = 128
ANCHOR_GRIDS = ((16, 2), (8, 6))
#: Detections overlapping a better one by more than this IoU are merged into it.
MERGE_IOU = 0.3
#: The 6 keypoints per face: right eye, left eye, nose tip, mouth, right and left ear tragion.
KEYPOINTS = 6


def model_file() -> Path:
    """Return the short-range model file of the installed mediapipe package (not imported)."""
    spec = importlib.util.find_spec('mediapipe')
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError('the mediapipe package is not installed')
    path = (Path(spec.submodule_search_locations[0]) / 'modules' / 'face_detection' /
            'face_detection_short_range.tflite')
    if not path.is_file():
        raise RuntimeError(f'mediapipe has no short-range face model at {path}')
    return path


def anchor_centres() -> np.ndarray:
    """Return the anchors' centres (N, 2) as (x, y) in 0..1, in the model's output order."""
    centres = []
    for grid, per_cell in ANCHOR_GRIDS:
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid,
                             indexing='ij')
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def merge_overlapping(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray
                      ) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """
    Weighted non-maximum suppression, as MediaPipe's for this model.

    Taking the best remaining detection each time, it and every detection overlapping it by
    more than MERGE_IOU become one: box and keypoints averaged with the scores as weights, the
    best one's score. ``boxes``: (N, 4) x0, y0, x1, y1; ``keypoints``: (N, K, 2). Returns
    (score, box, keypoints) per face, best first.
    """
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    faces = []
    while len(order):
        best = boxes[order[0]]
        rest = boxes[order]
        width = np.clip(np.minimum(rest[:, 2], best[2]) - np.maximum(rest[:, 0], best[0]), 0, None)
        height = np.clip(np.minimum(rest[:, 3], best[3]) - np.maximum(rest[:, 1], best[1]), 0,
                         None)
        inter = width * height
        union = areas[order] + areas[order[0]] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        merged = order[overlap > MERGE_IOU]
        if not len(merged):  # a degenerate best box overlaps nothing, not even itself
            merged = order[:1]
        weights = scores[merged] / scores[merged].sum()
        faces.append((float(scores[order[0]]), weights @ boxes[merged],
                      np.tensordot(weights, keypoints[merged], axes=1)))
        order = order[np.isin(order, merged, invert=True)]
    return faces


class BlazeFaceDetector:
    """
    MediaPipe's short-range BlazeFace model (faces within ~2 m), run by LiteRT.

    Faces, scores, boxes and ``roll`` (from the eye keypoints) are those of MediaPipe's
    solution with ``model_selection=0``, up to rounding.
    """

    def __init__(self, min_confidence: float = 0.5) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.min_confidence = min_confidence
        self._interpreter = Interpreter(model_path=str(model_file()), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]['index']
        outputs = {o['name']: o['index'] for o in self._interpreter.get_output_details()}
        self._regressors, self._scores = outputs['regressors'], outputs['classificators']
        self._anchors = anchor_centres()
        self._tensor = np.empty((1, INPUT_SIDE, INPUT_SIDE, 3), np.float32)

    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        """Return the faces in a uint8 (H, W, 3) BGR image, sorted by score, highest first."""
        check_bgr(bgr)
        height, width = bgr.shape[:2]
        # Letterbox as MediaPipe's ImageToTensorCalculator does: the image scaled to fit the
        # square input (bilinear, input pixel i samples the image at i / scale), centred, the
        # border black; pixel values map to -1..1.
        scale = INPUT_SIDE / max(height, width)
        offset = np.array([(INPUT_SIDE - width * scale) / 2, (INPUT_SIDE - height * scale) / 2])
        to_input = np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])
        small = cv2.warpAffine(bgr, to_input, (INPUT_SIDE, INPUT_SIDE), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        self._tensor[0] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB) * np.float32(2 / 255) - 1
        self._interpreter.set_tensor(self._input, self._tensor)
        self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
        keep = np.flatnonzero(scores >= self.min_confidence)
        if not len(keep):
            return []
        # Offsets in input pixels from the anchor's centre: box centre, width, height, keypoints.
        raw = self._interpreter.get_tensor(self._regressors)[0, keep] / INPUT_SIDE
        anchors = self._anchors[keep]
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2,
                          cx + raw[:, 2] / 2, cy + raw[:, 3] / 2], axis=1)
        keypoints = raw[:, 4:4 + 2 * KEYPOINTS].reshape(-1, KEYPOINTS, 2) + anchors[:, None]
        faces = []
        for score, box, points in merge_overlapping(boxes, keypoints, scores[keep]):
            # From the input's 0..1 to the image's pixels.
            corners = (box.reshape(2, 2) * INPUT_SIDE - offset) / scale
            right_eye, left_eye = (points[:2] * INPUT_SIDE - offset) / scale
            faces.append(clipped_box(*corners.ravel(), score, (width, height),
                                     eye_roll(right_eye, left_eye)))
        return by_score(faces)

    def close(self) -> None:
        """Release the model (nothing to do: LiteRT frees it with the detector)."""
