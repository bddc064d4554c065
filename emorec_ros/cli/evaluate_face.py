"""
Per-class and overall accuracy of a face-emotion model on a FER-2013 split.

Example::

    python -m emorec_ros.cli.evaluate_face --data /path/to/fer2013 --split PublicTest

Any LiteRT model with a card (``<model>.json``) whose labels name the FER-2013 classes works,
so peers' models are measured the same way as ours. PrivateTest is the held-out benchmark:
report it for a model already chosen, never choose by it.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys

from emorec_ros.cli.train_face import DEFAULT_MODEL
from emorec_ros.face.classify import EmotionClassifier, ModelError
from emorec_ros.face.evaluate import evaluate, plot_confusion
from emorec_ros.face.fer2013 import FER_CLASSES, load_split, SPLITS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--data', type=Path, required=True, help='folder with the FER-2013 .npz files'
    )
    parser.add_argument(
        '--split', choices=SPLITS, default='PublicTest', help='default: %(default)s'
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
        result = evaluate(classifier, load_split(args.data, args.split), FER_CLASSES)
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
