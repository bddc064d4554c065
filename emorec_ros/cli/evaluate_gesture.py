"""
Leave-one-movement-out accuracy of the gesture classifier on the Bandai-Namco motion capture.

For 4 classes (angry, happy, sad, neutral = the 'normal' style) and 7 (+ proud, not_confident,
tired), against the number of recordings per label K (few-shot: K random recordings of at most
5 s per label from the other movements' clips, several fixed seeds; all: every clip of the
other movements, whole), with the expected calibration error of the window probabilities and
the DTW 1-nearest-neighbour baseline from the same run. Prints its run time and the constants
that were also chosen by looking at these results.

Example::

    python -m emorec_ros.cli.evaluate_gesture --data ../shared/data/bandai_motion --out out/gesture

The clips are read from ``DATA/bandai_ds1_bvh.tar.xz`` by our BVH loader, filmed by a virtual
camera from in front (``gesture.camera.front_view``: 2-D skeletons, like MediaPipe's) and cut into
the windows the node classifies. Only the ten movements that every style performs are used; the
normal-only takes (call, dance, kick, punch, respond, slash) are left out, since no emotion can
be told from a movement with one style. Writes ``confusion_<n>class.png`` (ours and baseline)
and ``results.json`` to --out.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time

from emorec_ros.face.evaluate import Evaluation, plot_confusion
from emorec_ros.gesture.bandai import MAIN_MOVEMENTS, read_clips
from emorec_ros.gesture.bvh import BvhError
from emorec_ros.gesture.classify import STRIDE_S, WINDOW_S
from emorec_ros.gesture.evaluate import CLASS_SETS, filmed, leave_one_movement_out, STYLE_LABELS
import numpy as np


#: Constants of the classifier and its features that were fixed while looking at the outer
#: results of this evaluation (and the demo clip's teach-in), so those numbers also chose them.
ALSO_USED_TO_CHOOSE = (
    'features: FEATURE_RATE_HZ, VELOCITY_SPAN_S, LOG_SPEED_WEIGHT, SEQUENCE_SPEED_FLOOR, '
    'SPEED_FLOOR, ACCELERATION_FLOOR, BOUNCE_FLOOR, SCALE_PERCENTILE, POSTURE_VISIBLE, '
    'HAND_HEAD_FLOOR, the posture statistics; classify: WINDOW_S, STRIDE_S, DTW_RADIUS, '
    'NEIGHBOURS, MIN_GROUPS_PER_LABEL, SEGMENTS, MIN_CALIBRATION_S, DESCRIPTOR_SCALE_FLOOR, '
    'the blocks of INPUT_SETS, C_GRID, the DTW softmax and its smoothing, the held-out rows '
    '(each label loses one group); chosen inside each fold (grouped cross-validation on the '
    'training movements): the model (DTW softmax or an input set) and C'
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--data', type=Path, required=True, help='folder with bandai_ds1_bvh.tar.xz'
    )
    parser.add_argument(
        '--out',
        type=Path,
        required=True,
        help='folder for the confusion matrices and results.json',
    )
    parser.add_argument(
        '--classes', type=int, nargs='+', choices=sorted(CLASS_SETS), default=sorted(CLASS_SETS)
    )
    parser.add_argument('--k', nargs='+', default=['1', '2', '4', 'all'],
                        help="recordings per label: numbers and/or 'all' (every clip, whole)")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='random seeds of the few-shot draws (K = all needs none)')
    args = parser.parse_args(argv)
    try:
        ks = [None if k == 'all' else int(k) for k in args.k]
    except ValueError:
        parser.error(f"--k takes positive numbers or 'all', got {args.k}")
    if any(k is not None and k < 1 for k in ks):
        parser.error(f"--k takes positive numbers or 'all', got {args.k}")
    start = time.perf_counter()
    try:
        clips = read_clips(args.data)
    except (OSError, BvhError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    labelled = [filmed(c, STYLE_LABELS[c.style]) for c in clips
                if c.style in STYLE_LABELS and c.movement in MAIN_MOVEMENTS]
    print(f'{len(clips)} clips read and filmed in {time.perf_counter() - start:.0f} s; '
          f'{len(labelled)} with an emotion style in the {len(MAIN_MOVEMENTS)} main movements; '
          f'seeds {args.seeds}')
    print(f'also used to choose: {ALSO_USED_TO_CHOOSE}')
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {'window_s': WINDOW_S, 'stride_s': STRIDE_S,
               'seeds': args.seeds, 'also_used_to_choose': ALSO_USED_TO_CHOOSE, 'results': {}}
    rows = []
    for n in args.classes:
        labels = CLASS_SETS[n]
        for k in ks:
            name = 'all' if k is None else str(k)
            results = []
            for seed in (args.seeds if k is not None else [0]):
                print(f'{n} classes, K = {name}, seed {seed}, leave one movement out:')
                results.append(leave_one_movement_out(
                    labelled, labels, MAIN_MOVEMENTS, progress=print, k=k, seed=seed))
            ours = [r.accuracy(r.ours) for r in results]
            baseline = [r.accuracy(r.baseline) for r in results]
            ece = [r.window_ece() for r in results]
            seconds = sum(r.seconds for r in results)
            rows.append((n, name, len(results), len(results[0].names), ours, baseline, ece,
                         seconds))
            summary['results'][f'{n}_classes_k{name}'] = {
                'labels': labels, 'k': name, 'clips': len(results[0].names),
                'windows': [r.windows for r in results], 'seconds': seconds,
                'accuracy_ours': ours, 'accuracy_dtw_1nn': baseline, 'window_ece_ours': ece,
            }
            if k is None:
                result = results[0]
                for method, predicted in (('ours', result.ours), ('dtw_1nn', result.baseline)):
                    evaluation = Evaluation(
                        f'leave-one-movement-out, {len(result.names)} clips', labels,
                        result.confusion(predicted))
                    plot_confusion(
                        evaluation, args.out / f'confusion_{n}class_{method}.png',
                        f'gesture {n} classes, K = all, '
                        f'{"ours" if method == "ours" else "DTW 1-NN baseline"}')
                summary['results'][f'{n}_classes_k{name}']['per_clip'] = [
                    {'clip': clip, 'movement': movement, 'true': labels[t], 'ours': labels[o],
                     'dtw_1nn': labels[b]}
                    for clip, movement, t, o, b in zip(
                        result.names, result.movements, result.true, result.ours,
                        result.baseline)]
    print(f'\n{"classes":>7} {"K":>4} {"runs":>4} {"clips":>5} {"ours":>15} {"DTW-1NN":>15} '
          f'{"ECE":>13} {"chance":>7} {"time":>6}')
    for n, name, runs, clips_n, ours, baseline, ece, seconds in rows:
        print(f'{n:>7} {name:>4} {runs:>4} {clips_n:>5} {_spread(ours):>15} '
              f'{_spread(baseline):>15} {_spread(ece, 1):>13} {100 / n:6.1f}% {seconds:5.0f}s')
    print('(accuracy: clip level, mean (min-max) over the seeds; ECE: window probabilities, '
          '10 bins)')
    (args.out / 'results.json').write_text(json.dumps(summary, indent=2))
    print(f'wrote {args.out}/confusion_*class_*.png and results.json '
          f'({time.perf_counter() - start:.0f} s in all)')
    return 0


def _spread(values: list[float], scale: float = 100.0) -> str:
    """Mean (min-max) of values times ``scale``."""
    unit = '%' if scale == 100.0 else ''
    mean = f'{scale * np.mean(values):.1f}{unit}' if scale == 100.0 else \
        f'{np.mean(values):.3f}'
    if len(values) == 1:
        return mean
    if scale == 100.0:
        return f'{mean} ({scale * min(values):.0f}-{scale * max(values):.0f})'
    return f'{mean} ({min(values):.2f}-{max(values):.2f})'


if __name__ == '__main__':
    sys.exit(main())
