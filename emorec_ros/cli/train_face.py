"""
Train the face-emotion CNN on FER-2013, choose it on PublicTest, export it with its card.

Example::

    python -m emorec_ros.cli.train_face --data /path/to/fer2013 --work-dir work/face_training

Run it again to resume after an interruption. ``--export-only`` exports the best model so far.
"""
from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
import sys

from emorec_ros.face.fer2013 import FER_CLASSES, load_split
import numpy as np

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / 'models' / 'face_emotion.tflite'
#: Training faces that calibrate the int8 quantisation of the exported model.
CALIBRATION_FACES = 500


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--data',
        type=Path,
        required=True,
        help='folder with fer2013_train_publictest.npz and fer2013_privatetest.npz',
    )
    parser.add_argument('--work-dir', type=Path, default=Path('work/face_training'),
                        help='checkpoints, logs and plots (default: %(default)s)')
    parser.add_argument('--model', type=Path, default=DEFAULT_MODEL,
                        help='where to write the .tflite; its card goes beside it as .json')
    parser.add_argument(
        '--epochs', type=int, default=None, help="number of epochs (default: the config's)"
    )
    parser.add_argument(
        '--export-only', action='store_true', help='skip training; export the best model so far'
    )
    args = parser.parse_args(argv)

    from emorec_ros.face import train as training  # TensorFlow loads here, after argument errors
    from emorec_ros.face.classify import EmotionClassifier
    from emorec_ros.face.evaluate import evaluate, plot_confusion, plot_learning_curves

    config = (training.TrainConfig() if args.epochs is None
              else training.TrainConfig(epochs=args.epochs))
    public, train_set = load_split(args.data, 'PublicTest'), load_split(args.data, 'Training')
    best = args.work_dir / 'best.keras'
    if not args.export_only:
        best = training.train(train_set, public, args.work_dir, config)
    if not best.exists():
        print(f'error: no trained model at {best}; train first', file=sys.stderr)
        return 1

    rng = np.random.default_rng(config.seed)
    pick = rng.choice(len(train_set.images), CALIBRATION_FACES, replace=False)
    calibration = train_set.images[pick]
    training.export_tflite(best, args.model, calibration)
    card = {
        'name': 'emorec_ros face emotion CNN',
        'labels': list(FER_CLASSES),
        'input_size': list(training.INPUT_SIZE),
        'channels': 1,
        'scale': training.SCALE,
        'offset': training.OFFSET,
        'preprocessing': ('grey face crop (square box around the detected face), resized to '
                          'input_size with INTER_AREA, input = pixel * scale + offset; the model '
                          'averages the scores of the crop and its mirror image'),
        'quantisation': (f'int8 weights and activations (float32 input and output), calibrated '
                         f'on {CALIBRATION_FACES} Training faces'),
        'output': 'softmax scores in the order of labels',
    }
    # The classifier below reads the card.
    (args.model.with_suffix('.json')).write_text(json.dumps(card, indent=2) + '\n')
    classifier = EmotionClassifier(args.model)
    public_eval = evaluate(classifier, public, FER_CLASSES)
    print(public_eval.report())
    # PrivateTest is measured once here, on the model already chosen by PublicTest accuracy.
    private_eval = evaluate(classifier, load_split(args.data, 'PrivateTest'), FER_CLASSES)
    print(private_eval.report())
    selected = json.loads((args.work_dir / 'best.json').read_text())
    card.update({
        'architecture': ('VGG-style CNN, 7 conv layers (32-256 channels) + dense 256, batch norm, '
                         'dropout'),
        'parameters': int(training.keras.models.load_model(best).count_params()),
        'trained_on': ('FER-2013 Training split (28,709 faces), augmented: mirror, rotation, '
                       'shift, zoom, contrast'),
        'selected_on': (f'FER-2013 PublicTest accuracy, best epoch {selected["epoch"]} of '
                        f'{config.epochs}'),
        'training_config': vars(config),
        'publictest_accuracy': round(public_eval.accuracy, 4),
        'privatetest_accuracy': round(private_eval.accuracy, 4),
        'privatetest_per_class_accuracy': {k: round(v, 4)
                                           for k, v in private_eval.per_class_accuracy.items()},
        'trained': datetime.date.today().isoformat(),
        'licence_note': ("Weights trained on FER-2013 (ICML 2013 challenge); the images' rights "
                         'are not cleared and none ship here. Use the weights for research and '
                         'non-commercial work.'),
    })
    tmp = args.model.with_suffix('.json.tmp')
    tmp.write_text(json.dumps(card, indent=2) + '\n')
    tmp.replace(args.model.with_suffix('.json'))
    plot_confusion(
        public_eval, args.model.parent / 'face_emotion_confusion_publictest.png', 'face_emotion'
    )
    plot_learning_curves(
        training.history_rows(args.work_dir), args.model.parent / 'face_emotion_curves.png'
    )
    print(f'wrote {args.model} and its card {args.model.with_suffix(".json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
