"""
What the class activation maps cost per face, in process (no DDS): classifier and drawing.

On a 640x480 scene, each step runs --repeats times and prints its median and p95:
  - the classifier on the face crop: ``scores`` (explain off) and ``explain`` (scores + map);
  - drawing the annotated debug image without and with the heat map.
The node only explains while ``explain`` is on and someone watches its debug image; with it
off, the node runs ``scores`` as before.

    python bench/face_explain.py --data DIR   (DIR holds video/single_face.jpg)
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

import cv2
from emorec_ros.face.classify import EmotionClassifier
from emorec_ros.face.detect import crop_transform, face_crop, make_detector
from emorec_ros.face.draw import draw_faces
from emorec_ros.face.pipeline import Explanation, FaceEmotionResult
from emorec_ros.nodes.common import package_file
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # the project's env runs Python with a safe path
from node_bench import letterbox  # noqa: E402, I100


def timed(step, repeats: int) -> tuple[float, float]:
    """Median and p95 milliseconds of ``step()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times)), float(np.percentile(times, 95))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--data', type=Path, required=True, help='folder with video/')
    parser.add_argument('--repeats', type=int, default=500, help='default: %(default)s')
    args = parser.parse_args()

    bgr = letterbox(cv2.imread(str(args.data / 'video' / 'single_face.jpg')))
    detector = make_detector('mediapipe')
    box = detector.detect(bgr)[0]
    detector.close()
    classifier = EmotionClassifier(package_file('models/face_emotion.tflite'))
    crop = face_crop(bgr, box)
    scores, heat = classifier.explain(crop)
    plain = FaceEmotionResult('face1', box, classifier.labels, scores)
    explained = FaceEmotionResult('face1', box, classifier.labels, scores,
                                  Explanation(heat, *crop_transform(box)))
    rows = [
        ('classifier, explain off (scores)', lambda: classifier.scores(crop)),
        ('classifier, explain on (scores + map)', lambda: classifier.explain(crop)),
        ('debug image, boxes and labels', lambda: draw_faces(bgr, [plain])),
        ('debug image, boxes, labels and heat map', lambda: draw_faces(bgr, [explained])),
    ]
    for _, step in rows:  # warm up
        step()
    print(f'one face ({box.width}x{box.height} px) in a 640x480 image, {args.repeats} runs each')
    print(f'{"step":<42} {"p50 ms":>7} {"p95 ms":>7}')
    for name, step in rows:
        p50, p95 = timed(step, args.repeats)
        print(f'{name:<42} {p50:7.3f} {p95:7.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
