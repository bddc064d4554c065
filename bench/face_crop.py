"""
Choose the face crop (margin, vertical shift) that matches the classifier's training faces.

The model learnt from FER's 48x48 faces; the node hands it crops around MediaPipe boxes,
turned so that the eyes are level. This finds MediaPipe's box on FER+ Valid faces (upscaled
and padded, so the detector sees a face in a larger frame, as on a robot), crops it with each
candidate margin and shift, and measures accuracy against the vote majority; the faces as the
dataset gives them are the upper bound; the node's default crop is also measured without
levelling. Valid only: it is a choice of preprocessing.

    python bench/face_crop.py --data DIR   (DIR holds ferplus/)
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path
import sys

import cv2
from emorec_ros.face.classify import EmotionClassifier
from emorec_ros.face.detect import DEFAULT_CROP_MARGIN, face_crop, MediaPipeFaceDetector
from emorec_ros.face.evaluate import load_labelled
from emorec_ros.nodes.common import package_file
import numpy as np

UPSCALE, PAD = 4, 64


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--data', type=Path, required=True, help='folder with ferplus/')
    parser.add_argument(
        '--faces', type=int, default=1500, help='Valid faces to use (default %(default)s)'
    )
    parser.add_argument('--model', type=Path, default=None, help='default: the packaged model')
    args = parser.parse_args()
    classifier = EmotionClassifier(args.model or package_file('models/face_emotion.tflite'))
    faces, classes = load_labelled(args.data, 'Valid')
    pick = np.random.default_rng(0).choice(
        len(faces.images), min(args.faces, len(faces.images)), replace=False
    )
    detector = MediaPipeFaceDetector()
    margins, shifts = (0.0, 0.1, 0.2, 0.3, 0.4), (0.0, -0.05, -0.1, -0.15)
    correct = dict.fromkeys(itertools.product(margins, shifts), 0)
    direct = detected = unlevelled = 0
    for i in pick:
        label = classifier.labels.index(classes[faces.labels[i]])
        direct += int(np.argmax(classifier.scores(faces.images[i]))) == label
        big = cv2.resize(
            faces.images[i], None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC
        )
        frame = cv2.cvtColor(
            cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE), cv2.COLOR_GRAY2BGR
        )
        boxes = detector.detect(frame)
        if not boxes:
            continue
        detected += 1
        for margin, shift in correct:
            crop = face_crop(frame, boxes[0], margin, shift)
            correct[margin, shift] += int(np.argmax(classifier.scores(crop))) == label
        crop = face_crop(frame, boxes[0], DEFAULT_CROP_MARGIN, level=False)
        unlevelled += int(np.argmax(classifier.scores(crop))) == label
    n = len(pick)
    print(f'{n} FER+ Valid faces; MediaPipe found {detected}; '
          f'dataset crops (upper bound): {100 * direct / n:.2f}%')
    print(f'default crop (margin {DEFAULT_CROP_MARGIN}, shift 0) without levelling the eyes: '
          f'{100 * unlevelled / max(1, detected):.2f}%')
    print('accuracy on the faces MediaPipe found, by crop margin (rows) and shift '
          '(columns, box heights):')
    print('margin ' + ''.join(f'{s:>9.2f}' for s in shifts))
    for margin in margins:
        print(f'{margin:6.2f} '
              + ''.join(f'{100 * correct[margin, s] / max(1, detected):8.2f}%' for s in shifts))
    best = max(correct, key=correct.get)
    print(f'best: margin {best[0]}, shift {best[1]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
