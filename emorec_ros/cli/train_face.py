"""
Train the face-emotion CNN on FER+ votes, choose it on Valid, export it with its card.

Example::

    python -m emorec_ros.cli.train_face --data /path/to/data --work-dir work/face_training

``--data`` holds ``ferplus/ferplus.npz`` (training, selection and the Test score) and
``fer2013/`` (PrivateTest on FER-2013's own labels, reported for continuity). Run the command
again to resume after an interruption; ``--export-only`` exports the best model so far.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
from pathlib import Path
import sys
import time

from emorec_ros.face import ferplus
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
        help='folder with ferplus/ferplus.npz and fer2013/fer2013_*.npz',
    )
    parser.add_argument('--work-dir', type=Path, default=Path('work/face_training'),
                        help='checkpoints, logs and plots (default: %(default)s)')
    parser.add_argument('--model', type=Path, default=DEFAULT_MODEL,
                        help='where to write the .tflite; its card goes beside it as .json')
    parser.add_argument(
        '--epochs', type=int, default=None, help="number of epochs (default: the config's)"
    )
    parser.add_argument(
        '--seed', type=int, default=None,
        help="random seed (default: the config's); another seed trains another ensemble member"
    )
    parser.add_argument(
        '--export-only', action='store_true', help='skip training; export the best model so far'
    )
    parser.add_argument(
        '--precision', choices=('auto', 'float32', 'mixed_bfloat16'), default='auto',
        help='training arithmetic; auto: mixed_bfloat16 where the CPU has bfloat16 instructions'
    )
    args = parser.parse_args(argv)
    ferplus_path = args.data / 'ferplus' / 'ferplus.npz'
    if not ferplus_path.is_file():
        parser.error(f'{ferplus_path} not found')

    from emorec_ros.face import train as training  # TensorFlow loads here, after argument errors

    overrides = {key: value for key, value in (('epochs', args.epochs), ('seed', args.seed))
                 if value is not None}
    config = training.TrainConfig(**overrides)
    train_set = ferplus.load_split(ferplus_path, 'Train')
    train_set = train_set.subset(train_set.trainable)
    valid = ferplus.load_split(ferplus_path, 'Valid').as_face_set()
    best = args.work_dir / 'best.keras'
    if not args.export_only:
        precision = training.default_precision() if args.precision == 'auto' else args.precision
        print(f'training on {len(train_set.images)} FER+ Train faces, choosing on '
              f'{len(valid.images)} Valid faces, {precision} arithmetic', flush=True)
        one_hot = np.eye(ferplus.N_EMOTIONS, dtype=np.float32)
        best = training.train((train_set.images, train_set.targets()),
                              (valid.images, one_hot[valid.labels]),
                              args.work_dir, config, precision)
    if not best.exists():
        print(f'error: no trained model at {best}; train first', file=sys.stderr)
        return 1

    export(best, args.model, args.work_dir, config, args.data, train_set.images)
    return 0


def _per_face_ms(classifier, images: np.ndarray) -> float:
    """Median milliseconds of one face through the classifier (one thread)."""
    times = []
    for image in images:
        start = time.perf_counter()
        classifier.scores(image)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def export(best: Path, model_path: Path, work_dir: Path, config, data: Path,
           train_images: np.ndarray) -> None:
    """
    Export the chosen model, fit its temperature on Valid, measure it once, write its card.

    Besides the shipped int8 model (mirror average), the float32 model and an int8 model
    without the mirror average go to ``work_dir`` to measure the accuracy/speed trade-off.
    """
    from emorec_ros.calibration import fit_temperature
    from emorec_ros.face import train as training
    from emorec_ros.face.classify import EmotionClassifier
    from emorec_ros.face.evaluate import (evaluate, load_labelled, model_logits, plot_confusion,
                                          plot_learning_curves)

    rng = np.random.default_rng(config.seed)
    calibration = train_images[rng.choice(len(train_images), CALIBRATION_FACES, replace=False)]
    net = training.float32_copy(best, config)
    card = {
        'name': 'emorec_ros face emotion CNN (FER+)',
        'labels': list(ferplus.FERPLUS_CLASSES),
        'input_size': list(training.INPUT_SIZE),
        'channels': 1,
        'scale': training.SCALE,
        'offset': training.OFFSET,
        'output_kind': 'logits',
        'temperature': 1.0,
        'preprocessing': (
            'grey face crop: a square around the detected face box, its side the longer box side '
            "times 1 + the node's margin, rotated about the box centre so that the eyes are "
            'level (where the detector finds eyes), resized to input_size with INTER_AREA; '
            'input = pixel * scale + offset'),
        'outputs': ('logits (1, classes): the mean of the logits of the face and of its mirror '
                    'image; class_maps (1, 6, 6, classes): class activation maps of the same '
                    'two, the mirror map flipped back. Scores = softmax(logits / temperature).'),
        'quantisation': (f'int8 weights and activations (float32 input and outputs), calibrated '
                         f'on {CALIBRATION_FACES} Train faces'),
    }
    variants = [('int8, mirror average (shipped)', model_path, True, calibration),
                ('float32, mirror average', work_dir / 'float32_mirror.tflite', True, None),
                ('int8, no mirror average', work_dir / 'int8_single.tflite', False, calibration)]
    test, test_classes = load_labelled(data, 'Test')
    valid, _ = load_labelled(data, 'Valid')
    trade_off = []
    for name, path, mirror, faces in variants:
        training.export_tflite(training.explaining_model(net, mirror), path, faces)
        training.write_json(path.with_suffix('.json'), card)
        classifier = EmotionClassifier(path)
        result = evaluate(classifier, test, test_classes)
        trade_off.append({'model': name, 'kilobytes': round(path.stat().st_size / 1024),
                          'test_accuracy': round(result.accuracy, 4),
                          'ms_per_face': round(_per_face_ms(classifier, test.images[:300]), 2)})
        print(trade_off[-1], flush=True)

    classifier = EmotionClassifier(model_path)
    temperature = fit_temperature(model_logits(classifier, valid.images), valid.labels)
    # Test is measured here, once, on the model chosen by Valid accuracy.
    test_logits = model_logits(classifier, test.images)
    before = evaluate(classifier, test, test_classes, test_logits)
    card['temperature'] = round(temperature, 4)
    training.write_json(model_path.with_suffix('.json'), card)
    classifier = EmotionClassifier(model_path)
    test_eval = evaluate(classifier, test, test_classes, test_logits)
    print(test_eval.report())
    fer_faces, fer_classes = load_labelled(data, 'PrivateTest')
    private_eval = evaluate(classifier, fer_faces, fer_classes)
    print(private_eval.report())
    selected = json.loads((work_dir / 'best.json').read_text())
    seconds = json.loads((work_dir / 'epoch_seconds.json').read_text())
    card.update({
        'architecture': ('VGG-style CNN, 8 conv layers (32-256 channels), batch norm, global '
                         'average pooling, dropout, one dense layer (class activation maps)'),
        'parameters': int(net.count_params()),
        'classes_note': ('8 classes, FER+ with contempt; contempt has no FER-2013 label, so on '
                         'FER-2013 the answer is the best of the other 7'),
        'trained_on': (f'FER+ Train ({len(train_images)} faces with an emotion vote and '
                       'unknown + not-a-face under half the votes), target: the vote '
                       'distribution (single votes dropped as outliers), augmented: mirror, '
                       'rotation, shift, zoom, contrast, brightness, blur/sharpen'),
        'selected_on': (f'FER+ Valid accuracy {selected["val_accuracy"]:.4f}, best epoch '
                        f'{selected["epoch"]} of {config.epochs}'),
        'training_config': vars(config),
        'training_time': (f'{sum(seconds.values()) / 60:.0f} minutes for {len(seconds)} epochs '
                          f'on {os.cpu_count()} CPU cores'),
        'ferplus_test_accuracy': round(test_eval.accuracy, 4),
        'ferplus_test_faces': int(test_eval.confusion.sum()),
        'ferplus_test_per_class_accuracy': {
            k: round(v, 4) for k, v in test_eval.per_class_accuracy.items()},
        'ferplus_test_confusion': test_eval.confusion.tolist(),
        'ferplus_test_ece': {'temperature 1': round(before.ece, 4),
                             f'temperature {temperature:.2f} (fitted on Valid)':
                             round(test_eval.ece, 4)},
        'fer2013_privatetest_accuracy': round(private_eval.accuracy, 4),
        'fer2013_privatetest_per_class_accuracy': {
            k: round(v, 4) for k, v in private_eval.per_class_accuracy.items()},
        'trade_off': trade_off,
        'trained': datetime.date.today().isoformat(),
        'licence_note': ("Weights trained on FER-2013's images with the FER+ votes (MIT); the "
                         "images' rights are not cleared and none ship here. Use the weights for "
                         'research and non-commercial work.'),
    })
    training.write_json(model_path.with_suffix('.json'), card)
    plot_confusion(test_eval, model_path.parent / 'face_emotion_confusion_test.png',
                   'face_emotion, FER+ Test (vote majority)')
    plot_learning_curves(training.history_rows(work_dir),
                         model_path.parent / 'face_emotion_curves.png')
    print(f'wrote {model_path} and its card {model_path.with_suffix(".json")}')


if __name__ == '__main__':
    sys.exit(main())
