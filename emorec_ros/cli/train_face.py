"""
Train the face-emotion CNN on FER+ votes, choose it on Valid, export it with its card.

Example::

    python -m emorec_ros.cli.train_face --data /path/to/data --work-dir work/face_training

``--data`` holds ``ferplus/ferplus.npz`` (training, selection and the Test score) and
``fer2013/`` (PrivateTest on FER-2013's own labels, reported for continuity). Run the command
again to resume after an interruption; ``--export-only`` exports the best model so far.

An ensemble: train members with other seeds in their own work dirs, then export the first with
the others as ``--member``; the exported model averages the members' logits and maps::

    python -m emorec_ros.cli.train_face --data D --work-dir work/face_seed8 --seed 8 --model \
        work/face_seed8/face_emotion.tflite
    python -m emorec_ros.cli.train_face --data D --work-dir work/face_training --export-only \
        --member work/face_seed8

A member can also be an exported model: ``--member models/face_emotion.tflite`` adds the
networks inside it (``emorec_ros.face.unpack``), when their work dirs are gone.

Distillation: a member can learn from an exported ensemble's scores as well as from the votes
(``--teacher MODEL --teacher-weight W``: targets = (1 - W) * votes + W * the teacher's softmax).

On a GPU machine with JAX and Keras but no TensorFlow, train there and export here::

    KERAS_BACKEND=jax python -m emorec_ros.cli.train_face --data D --work-dir W \
        --precision mixed_bfloat16 --no-export
    python -m emorec_ros.cli.train_face --data D --work-dir W --export-only
"""
from __future__ import annotations

import argparse
import dataclasses
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
        '--width', type=float, default=None,
        help="channels of every convolution times the base network's (32-256); 1.5 costs about "
             "2.25 times the arithmetic (default: the config's, 1)"
    )
    parser.add_argument(
        '--export-only', action='store_true', help='skip training; export the best model so far'
    )
    parser.add_argument(
        '--no-export', dest='export', action='store_false',
        help='train only (e.g. with KERAS_BACKEND=jax on a GPU machine without TensorFlow); '
             'export later with --export-only'
    )
    parser.add_argument(
        '--member', type=Path, action='append', default=[],
        help='another trained member to average with this one (repeatable): its work dir '
             '(another --seed), or an exported model (.tflite with its card), whose networks '
             'are unpacked into <work-dir>/members/ and join as members'
    )
    parser.add_argument(
        '--no-mirror', dest='mirror', action='store_false',
        help='ship the model without the mirror-image average (half the work per face)'
    )
    parser.add_argument(
        '--teacher', type=Path, default=None,
        help='distillation: a trained model (.tflite with its card, e.g. an ensemble) whose '
             'scores on the Train faces are mixed into the targets; its logits are kept in the '
             'work dir, so a resumed run needs the same --teacher but not the file'
    )
    parser.add_argument(
        '--teacher-weight', type=float, default=0.5,
        help="weight of the teacher's scores in the targets, the votes' is 1 minus it "
             '(default %(default)s)'
    )
    parser.add_argument(
        '--precision', choices=('auto', 'float32', 'mixed_bfloat16'), default='auto',
        help='training arithmetic; auto: mixed_bfloat16 where the CPU has bfloat16 instructions'
    )
    args = parser.parse_args(argv)
    ferplus_path = args.data / 'ferplus' / 'ferplus.npz'
    if not ferplus_path.is_file():
        parser.error(f'{ferplus_path} not found')
    if not 0.0 <= args.teacher_weight <= 1.0:
        parser.error(f'--teacher-weight must be in [0, 1], got {args.teacher_weight}')
    if args.export_only and not args.export:
        parser.error('--export-only and --no-export exclude each other')
    if args.width is not None and not args.width > 0:
        parser.error(f'--width must be positive, got {args.width}')

    from emorec_ros.face import train as training  # Keras loads here, after argument errors

    overrides = {key: value for key, value in (('epochs', args.epochs), ('seed', args.seed),
                                               ('width', args.width)) if value is not None}
    if args.teacher is not None:
        overrides.update(teacher=str(args.teacher), teacher_weight=args.teacher_weight)
    # A run resumed (or exported) in a work dir keeps the configuration it was started with;
    # options given again override it.
    recorded = (training.read_config(args.work_dir) if (args.work_dir / 'config.json').exists()
                else training.TrainConfig())
    config = dataclasses.replace(recorded, **overrides)
    train_set = ferplus.load_split(ferplus_path, 'Train')
    train_set = train_set.subset(train_set.trainable)
    valid = ferplus.load_split(ferplus_path, 'Valid').as_face_set()
    if not args.export_only:
        precision = training.default_precision() if args.precision == 'auto' else args.precision
        targets = train_set.targets()
        if args.teacher is not None:
            try:
                logits = _teacher_logits(args.teacher, train_set.images, args.work_dir)
            except (OSError, ValueError, RuntimeError) as e:
                print(f'error: teacher {args.teacher}: {e}', file=sys.stderr)
                return 1
            targets = training.distillation_targets(targets, logits, args.teacher_weight)
        print(f'training on {len(train_set.images)} FER+ Train faces, choosing on '
              f'{len(valid.images)} Valid faces, {precision} arithmetic', flush=True)
        one_hot = np.eye(ferplus.N_EMOTIONS, dtype=np.float32)
        training.train((train_set.images, targets),
                       (valid.images, one_hot[valid.labels]), args.work_dir, config,
                       precision)
    if not args.export:
        return 0
    from emorec_ros.face.unpack import unpack

    work_dirs = [args.work_dir]
    for member in args.member:
        if member.suffix != '.tflite':
            work_dirs.append(member)
            continue
        try:
            unpacked = unpack(member, args.work_dir / 'members')
        except ValueError as e:
            print(f'error: member {member}: {e}', file=sys.stderr)
            return 1
        print(f'{member}: {len(unpacked)} networks unpacked into '
              f'{", ".join(str(d) for d in unpacked)}', flush=True)
        work_dirs.extend(unpacked)
    for work_dir in work_dirs:
        if not (work_dir / 'best.keras').exists():
            print(f'error: no trained model in {work_dir}; train first', file=sys.stderr)
            return 1

    export(work_dirs, args.model, config, args.data, train_set.images, args.mirror)
    return 0


def _teacher_logits(teacher: Path, images: np.ndarray, work_dir: Path) -> np.ndarray:
    """
    Return the teacher's logits (N, 8) on the Train faces, computed once per work dir.

    They are kept in ``work_dir/teacher_logits.npy`` (written atomically), so that a resumed
    run trains on the same targets even after the teacher's file was replaced.
    """
    from emorec_ros.face.classify import EmotionClassifier
    from emorec_ros.face.evaluate import model_logits
    from emorec_ros.face.train import write_atomically

    cached = work_dir / 'teacher_logits.npy'
    if cached.exists():
        logits = np.load(cached)
        if logits.shape == (len(images), ferplus.N_EMOTIONS):
            print(f'teacher logits from {cached}', flush=True)
            return logits
    classifier = EmotionClassifier(teacher)
    if classifier.labels != ferplus.FERPLUS_CLASSES:
        raise ValueError(f'its labels {classifier.labels} are not those of FER+ '
                         f'{ferplus.FERPLUS_CLASSES}')
    start = time.perf_counter()
    logits = model_logits(classifier, images).astype(np.float32)
    print(f'teacher logits on {len(images)} Train faces in {time.perf_counter() - start:.0f} s',
          flush=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(cached, lambda tmp: np.save(tmp, logits))
    return logits


def _per_face_ms(classifier, images: np.ndarray) -> float:
    """Median milliseconds of one face through the classifier (one thread)."""
    times = []
    for image in images:
        start = time.perf_counter()
        classifier.scores(image)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _variant_name(precision: str, members: int, mirror: bool) -> str:
    """Name a trade-off variant: 'int8, 2 members, no mirror average'."""
    size = f'{members} members, ' if members > 1 else ''
    return f'{precision}, {size}{"" if mirror else "no "}mirror average'


def export(work_dirs: list[Path], model_path: Path, config, data: Path,
           train_images: np.ndarray, mirror: bool = True) -> None:
    """
    Export the chosen members, fit the temperature on Valid, measure once, write the card.

    ``work_dirs`` hold one trained member each (the first: this run's); the model averages
    their logits and maps, with ``mirror`` also over the face's mirror image. Variants for the
    accuracy/speed trade-off go to the first work dir: float32, int8 with the other mirror
    setting and, for an ensemble, the first member alone.
    """
    from emorec_ros.calibration import fit_temperature
    from emorec_ros.cpu import describe_cpu
    from emorec_ros.face import train as training
    from emorec_ros.face.classify import EmotionClassifier
    from emorec_ros.face.evaluate import (evaluate, load_labelled, model_logits, plot_confusion,
                                          plot_learning_curves)

    rng = np.random.default_rng(config.seed)
    calibration = train_images[rng.choice(len(train_images), CALIBRATION_FACES, replace=False)]
    configs = [config, *(training.read_config(member) for member in work_dirs[1:])]
    nets = [training.float32_copy(work_dir / 'best.keras', member_config)
            for work_dir, member_config in zip(work_dirs, configs)]
    averaged = ' and of its mirror image' if mirror else ''
    members = f' of {len(nets)} networks' if len(nets) > 1 else ''
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
        'outputs': (f'logits (1, classes): the mean of the logits{members} on the face'
                    f'{averaged}; class_maps (1, 6, 6, classes): the mean of their class '
                    f'activation maps{", the mirror maps flipped back" if mirror else ""}. '
                    'Scores = softmax(logits / temperature).'),
        'quantisation': (f'int8 weights and activations (float32 input and outputs), calibrated '
                         f'on {CALIBRATION_FACES} Train faces'),
    }
    work_dir = work_dirs[0]
    variants = [(_variant_name('int8', len(nets), mirror) + ' (shipped)', model_path, nets,
                 mirror, calibration),
                (_variant_name('float32', len(nets), mirror), work_dir / 'float32.tflite', nets,
                 mirror, None),
                (_variant_name('int8', len(nets), not mirror),
                 work_dir / 'int8_other_mirror.tflite', nets, not mirror, calibration)]
    if len(nets) > 1:
        variants.append((_variant_name('int8', 1, True) + ' (first member)',
                         work_dir / 'int8_first_member.tflite', nets[:1], True, calibration))
    test, test_classes = load_labelled(data, 'Test')
    valid, _ = load_labelled(data, 'Valid')
    trade_off = []
    for name, path, variant_nets, variant_mirror, faces in variants:
        training.export_tflite(training.explaining_model(variant_nets, variant_mirror), path,
                               faces)
        training.write_json(path.with_suffix('.json'), card)
        classifier = EmotionClassifier(path)
        trade_off.append({
            'model': name, 'kilobytes': round(path.stat().st_size / 1024),
            'valid_accuracy': round(evaluate(classifier, valid, test_classes).accuracy, 4),
            'test_accuracy': round(evaluate(classifier, test, test_classes).accuracy, 4),
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
    selections, seconds = [], {}
    for i, (member_dir, member_config) in enumerate(zip(work_dirs, configs)):
        selected = json.loads((member_dir / 'best.json').read_text())
        teacher = (f', distilled from {Path(member_config.teacher).name} (weight '
                   f'{member_config.teacher_weight:g})' if member_config.teacher else '')
        width = f', width {member_config.width:g}' if member_config.width != 1 else ''
        selections.append(f'seed {member_config.seed}{width}{teacher}: FER+ Valid accuracy '
                          f'{selected["val_accuracy"]:.4f}, best epoch {selected["epoch"]} of '
                          f'{member_config.epochs}')
        member_seconds = json.loads((member_dir / 'epoch_seconds.json').read_text())
        seconds.update({f'{i}:{epoch}': s for epoch, s in member_seconds.items()})
    ensemble = (f'an ensemble of {len(nets)} such networks (other seeds), ' if len(nets) > 1
                else '')
    stages = [training.stage_channels(member_config.width) for member_config in configs]
    channels = ' or '.join(sorted({f'{first}-{last}' for first, *_, last in stages}))
    card.update({
        'architecture': (f'{ensemble}VGG-style CNN, 8 conv layers ({channels} channels), batch '
                         'norm, global average pooling, dropout, one dense layer (class '
                         'activation maps)'),
        'parameters': int(sum(net.count_params() for net in nets)),
        'classes_note': ('8 classes, FER+ with contempt; contempt has no FER-2013 label, so on '
                         'FER-2013 the answer is the best of the other 7'),
        'trained_on': (f'FER+ Train ({len(train_images)} faces with an emotion vote and '
                       'unknown + not-a-face under half the votes), target: the vote '
                       'distribution (single votes dropped as outliers), augmented: mirror, '
                       'rotation, shift, zoom, contrast, brightness, blur/sharpen'),
        'selected_on': '; '.join(selections),
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
        'trade_off_measured_on': describe_cpu(),
        'trained': datetime.date.today().isoformat(),
        'licence_note': ("Weights trained on FER-2013's images with the FER+ votes (MIT); the "
                         "images' rights are not cleared and none ship here. Use the weights for "
                         'research and non-commercial work.'),
    })
    training.write_json(model_path.with_suffix('.json'), card)
    plot_confusion(test_eval, model_path.parent / 'face_emotion_confusion_test.png',
                   'face_emotion, FER+ Test (vote majority)')
    if (work_dir / 'history.csv').exists():
        plot_learning_curves(training.history_rows(work_dir),
                             model_path.parent / 'face_emotion_curves.png')
    else:  # a member unpacked from an exported model: its learning curves did not ship
        print(f'{work_dir} has no history.csv: learning curves not drawn')
    print(f'wrote {model_path} and its card {model_path.with_suffix(".json")}')


if __name__ == '__main__':
    sys.exit(main())
