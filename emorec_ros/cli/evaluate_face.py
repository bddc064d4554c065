"""
Per-class and overall accuracy, and calibration, of a face-emotion model on one split.

Example::

    python -m emorec_ros.cli.evaluate_face --data /path/to/data --split Valid

``--data`` holds ``ferplus/ferplus.npz`` (splits Train, Valid, Test: the FER+ vote majority,
scored by the FER+ protocol) and ``fer2013/`` (Training, PublicTest, PrivateTest: FER-2013's own
labels). Any LiteRT model with a card (``<model>.json``) whose labels name these classes works,
so peers' models are measured the same way as ours. Test and PrivateTest are held out: report
them for a model already chosen, never choose by them.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys

from emorec_ros.cli.train_face import DEFAULT_MODEL
from emorec_ros.face.classify import EmotionClassifier, ModelError
from emorec_ros.face.evaluate import ALL_SPLITS, evaluate, load_labelled, plot_confusion


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--data', type=Path, required=True, help='folder with ferplus/ and fer2013/'
    )
    parser.add_argument(
        '--split', choices=ALL_SPLITS, default='Valid', help='default: %(default)s'
    )
    parser.add_argument(
        '--model', type=Path, default=DEFAULT_MODEL, help='.tflite with its .json card beside it'
    )
    parser.add_argument(
        '--confusion', type=Path, default=None, help='write the confusion matrix as this PNG'
    )
    args = parser.parse_args(argv)
    try:
        classifier = EmotionClassifier(args.model)
        result = evaluate(classifier, *load_labelled(args.data, args.split))
    except (ModelError, OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'model {args.model}')
    print(result.report())
    if args.confusion:
        plot_confusion(result, args.confusion, args.model.name)
        print(f'wrote {args.confusion}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
