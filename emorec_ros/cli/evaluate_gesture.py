"""
Leave-one-movement-out accuracy of the gesture classifier on the Bandai-Namco motion capture.

For 4 classes (angry, happy, sad, neutral = the 'normal' style) and 7 (+ proud, not_confident,
tired), with the DTW 1-nearest-neighbour baseline from the same run.

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
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        clips = read_clips(args.data)
    except (OSError, BvhError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    labelled = [filmed(c, STYLE_LABELS[c.style]) for c in clips
                if c.style in STYLE_LABELS and c.movement in MAIN_MOVEMENTS]
    print(f'{len(clips)} clips read and filmed in {time.perf_counter() - start:.0f} s; '
          f'{len(labelled)} with an emotion style in the {len(MAIN_MOVEMENTS)} main movements')
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {'window_s': WINDOW_S, 'stride_s': STRIDE_S, 'results': {}}
    rows = []
    for n in args.classes:
        labels = CLASS_SETS[n]
        print(f'{n} classes, leave one movement out:')
        result = leave_one_movement_out(labelled, labels, MAIN_MOVEMENTS, progress=print)
        for method, predicted in (('ours', result.ours), ('dtw_1nn', result.baseline)):
            evaluation = Evaluation(f'leave-one-movement-out, {len(result.names)} clips', labels,
                                    result.confusion(predicted))
            plot_confusion(
                evaluation,
                args.out / f'confusion_{n}class_{method}.png',
                f'gesture {n} classes, {"ours" if method == "ours" else "DTW 1-NN baseline"}',
            )
        summary['results'][f'{n}_classes'] = {
            'labels': labels,
            'clips': len(result.names),
            'windows': result.windows,
            'seconds': result.seconds,
            'accuracy_ours': result.accuracy(result.ours),
            'accuracy_dtw_1nn': result.accuracy(result.baseline),
            'confusion_ours': result.confusion(result.ours).tolist(),
            'confusion_dtw_1nn': result.confusion(result.baseline).tolist(),
            'per_clip': [
                {
                    'clip': name,
                    'movement': movement,
                    'true': labels[t],
                    'ours': labels[o],
                    'dtw_1nn': labels[b],
                }
                for name, movement, t, o, b in zip(
                    result.names, result.movements, result.true, result.ours, result.baseline
                )
            ],
        }
        rows.append((n, len(result.names), result.accuracy(result.ours),
                     result.accuracy(result.baseline), 1 / len(labels), result.seconds))
    print(f'\n{"classes":>7} {"clips":>5} {"ours":>7} {"DTW-1NN":>8} {"chance":>7} {"time":>6}')
    for n, clips_n, ours, baseline, chance, seconds in rows:
        print(f'{n:>7} {clips_n:>5} {100 * ours:6.1f}% {100 * baseline:7.1f}% '
              f'{100 * chance:6.1f}% {seconds:5.0f}s')
    (args.out / 'results.json').write_text(json.dumps(summary, indent=2))
    print(f'wrote {args.out}/confusion_*class_*.png and results.json '
          f'({time.perf_counter() - start:.0f} s in all)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
