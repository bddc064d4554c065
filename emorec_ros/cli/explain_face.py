"""
Show where in each face of an image the face model found its evidence (class activation maps).

Example::

    python -m emorec_ros.cli.explain_face photo.jpg --out photo_explained.png

Faces are found and cropped as ``face_emotion`` does; each gets its box, emotion and score, and
over it the activation map of the winning emotion (red: most evidence). ``--whole-image``
treats the image as one face crop (e.g. a 48x48 FER face), shown enlarged.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys

import cv2
from emorec_ros.cli.train_face import DEFAULT_MODEL
from emorec_ros.face.classify import EmotionClassifier, ModelError
from emorec_ros.face.detect import DEFAULT_CROP_MARGIN, DETECTOR_NAMES, FaceBox, make_detector
from emorec_ros.face.draw import draw_faces
from emorec_ros.face.pipeline import Explanation, FaceEmotionPipeline, FaceEmotionResult
from emorec_ros.face.track import FaceTracker
import numpy as np

#: A face crop given whole is enlarged to at least this many pixels a side for the picture.
WHOLE_IMAGE_SIDE = 240


def explain_whole_image(bgr: np.ndarray, classifier: EmotionClassifier,
                        ) -> tuple[np.ndarray, list[FaceEmotionResult]]:
    """Classify a face crop as it is; return it enlarged and square, and its one result."""
    side = max(WHOLE_IMAGE_SIDE, *bgr.shape[:2])
    square = cv2.resize(bgr, (side, side), interpolation=cv2.INTER_CUBIC)
    scores, heat = classifier.explain(square)
    explanation = Explanation(heat, np.eye(2, 3), side)
    box = FaceBox(0, 0, side, side, 1.0)
    return square, [FaceEmotionResult('face', box, classifier.labels, scores, explanation)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('image', type=Path, help='an image file OpenCV reads (jpg, png, ...)')
    parser.add_argument('--out', type=Path, required=True, help='the annotated PNG to write')
    parser.add_argument('--model', type=Path, default=DEFAULT_MODEL,
                        help='.tflite with its .json card beside it (default: the packaged one)')
    parser.add_argument('--detector', choices=DETECTOR_NAMES, default='mediapipe_full',
                        help='face detector (default: %(default)s)')
    parser.add_argument('--margin', type=float, default=DEFAULT_CROP_MARGIN,
                        help='extra border around a face box in the crop (default: %(default)s)')
    parser.add_argument('--whole-image', action='store_true',
                        help='the image is one face crop: classify it as it is')
    args = parser.parse_args(argv)

    bgr = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if bgr is None:
        print(f'error: {args.image} is missing or not an image OpenCV can read', file=sys.stderr)
        return 1
    try:
        classifier = EmotionClassifier(args.model)
        if not classifier.explains:
            raise ModelError(f'{args.model} has no class activation maps to explain with')
    except ModelError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if args.whole_image:
        bgr, faces = explain_whole_image(bgr, classifier)
    else:
        pipeline = FaceEmotionPipeline(make_detector(args.detector), classifier,
                                       FaceTracker(smoothing=0.0), margin=args.margin,
                                       max_faces=100, min_face_size=1)
        try:
            faces = pipeline.process(bgr, explain=True)
        finally:
            pipeline.close()
        if not faces:
            print(f'{args.image}: no face found (try --whole-image for a face crop)')
    for face in faces:
        b = face.box
        scores = ', '.join(f'{label} {score:.2f}'
                           for label, score in zip(face.labels, face.scores))
        print(f'{face.track_id} at ({b.x}, {b.y}) {b.width}x{b.height}: {face.emotion} '
              f'{face.confidence:.2f} ({scores})')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), draw_faces(bgr, faces)):
        print(f'error: could not write {args.out}', file=sys.stderr)
        return 1
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
