"""
Teach the gesture classifier on the bundled clip as an operator would, and score its verdicts.

The clip (media/WolfgangLanger_Pexels.mp4, 472 frames: a woman crying up to frame ~230, with a
hand at her face from ~60, then smiling and laughing from ~260) is replayed at --fps (each frame
stamped 1 / fps s after the previous one) and loops. MediaPipe Pose in video mode (the node's
PoseEstimator) follows it over --passes plays in a row; the skeletons are cached in --cache.
For every pair of recording start points (every --step-s seconds where a --record-s recording
fits in a part) the operator records, during the first play, one template of the crying part
(label sad) and one of the laughing part (happy), as the node's record_template does
(``window.Recording``); the classifier is fitted on those two templates and classifies the
windows the node would classify during the later plays (``replay.node_windows``: the last
window_s seconds of skeletons, --rate times a second of stream). A verdict counts for sad when
its window's newest frame is in frames 0-230, for happy in 260-471; 'within' keeps only windows
that lie entirely inside the part (in one play).

Prints, per part: the share of verdicts that match the part (min and mean over the start
pairs), and the expected calibration error (10 bins, verdicts of all pairs pooled), for the
classifier and for the DTW 1-nearest-neighbour answer of the same run (the label of the nearest
template window); the same for the demo's teaching alone (``cli.demo.TEACHING``: the recordings
start at the first frame of each part it names); and the classifier's fit and classify times.

    python tools/teach_in_clip.py [--clip media/WolfgangLanger_Pexels.mp4] [--cache out/teach_in]
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

from emorec_ros.calibration import expected_calibration_error
from emorec_ros.cli.demo import TEACHING
from emorec_ros.gesture.classify import GestureClassifier, WINDOW_S
from emorec_ros.gesture.dtw import warm_up
from emorec_ros.gesture.replay import node_windows, record, stream_stamps
from emorec_ros.gesture.skeleton import JOINTS, Skeleton
from emorec_ros.video import FrameSource
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The clip's parts: label -> first and last frame (inclusive).
PARTS: dict[str, tuple[int, int]] = {'sad': (0, 230), 'happy': (260, 471)}


def clip_skeletons(clip: Path, passes: int, cache: Path) -> tuple[list[Skeleton | None], int]:
    """
    Return the skeletons of ``passes`` plays of the clip in a row, and the frames per play.

    From the cache when it was made from the same file (size and time), else computed with
    PoseEstimator (video mode, the node's defaults) and cached.
    """
    stat = clip.stat()
    key = f'{clip.stem}_{stat.st_size}_{int(stat.st_mtime)}_{passes}pass.npz'
    path = cache / key
    if path.exists():
        data = np.load(path)
        positions, visibility, found = data['positions'], data['visibility'], data['found']
    else:
        from emorec_ros.gesture.pose import PoseEstimator

        estimator = PoseEstimator(video=True)
        source = FrameSource(str(clip))
        frames = []
        while (item := source.read()) is not None:
            frames.append(item[1])
        source.close()
        start = time.perf_counter()
        positions = np.zeros((passes * len(frames), len(JOINTS), 2))
        visibility = np.zeros((passes * len(frames), len(JOINTS)))
        found = np.zeros(passes * len(frames), bool)
        for i in range(passes * len(frames)):
            skeleton = estimator.estimate(frames[i % len(frames)])
            if skeleton is not None:
                positions[i], visibility[i], found[i] = skeleton.positions, skeleton.visibility, 1
        estimator.close()
        print(f'pose on {len(found)} frames in {time.perf_counter() - start:.0f} s; '
              f'cached in {path}')
        cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, positions=positions, visibility=visibility, found=found)
    skeletons = [Skeleton(p, v) if f else None for p, v, f in zip(positions, visibility, found)]
    return skeletons, len(found) // passes


def part_of(frame: int) -> str | None:
    """Return the part whose frames include ``frame`` (an index into one play), or None."""
    return next((label for label, (lo, hi) in PARTS.items() if lo <= frame <= hi), None)


def main(argv: list[str] | None = None) -> int:
    """Run the teach-ins and print the table; return the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--clip', type=Path, default=ROOT / 'media' / 'WolfgangLanger_Pexels.mp4')
    parser.add_argument('--cache', type=Path, default=ROOT / 'out' / 'teach_in')
    parser.add_argument('--fps', type=float, default=30.0, help='replay rate (stamps)')
    parser.add_argument('--passes', type=int, default=2, help='plays: record in the first')
    parser.add_argument('--record-s', type=float, default=3.0, help='template duration')
    parser.add_argument('--step-s', type=float, default=0.5, help='between recording starts')
    parser.add_argument('--window-s', type=float, default=WINDOW_S)
    parser.add_argument('--rate', type=float, default=4.0, help='verdicts per second')
    args = parser.parse_args(argv)
    if args.passes < 2:
        parser.error('--passes must be >= 2: one to record, one or more to classify')
    start_time = time.perf_counter()
    skeletons, frames = clip_skeletons(args.clip, args.passes, args.cache)
    stamps = stream_stamps(len(skeletons), args.fps)
    windows = [w for w in node_windows(stamps, skeletons, args.window_s, 1 / args.rate)
               if w.newest >= frames and part_of(w.newest % frames)]
    truth = [part_of(w.newest % frames) for w in windows]
    within = np.array([w.first // frames == w.newest // frames
                       and part_of(w.first % frames) == part for w, part in zip(windows, truth)])
    record_frames = round(args.record_s * args.fps)
    step = max(1, round(args.step_s * args.fps))
    starts = {label: list(range(lo, hi - record_frames + 2, step))
              for label, (lo, hi) in PARTS.items()}
    print(f'{frames} frames per play, {args.passes} plays at {args.fps:g} fps; '
          f'{len(windows)} verdicts per teach-in in the later plays ({within.sum()} within a '
          f'part); recordings of {args.record_s:g} s from frames '
          + '; '.join(f'{label} {s[0]}-{s[-1]} ({len(s)})' for label, s in starts.items()))
    warm_up()
    labels = tuple(sorted(PARTS))
    true = np.array([labels.index(p) for p in truth])
    demo = {label: lo for label, (lo, _) in TEACHING}
    pairs = [(a, b) for a in starts['sad'] for b in starts['happy']] + [
        (demo['sad'], demo['happy'])]
    ours = np.zeros((len(pairs), len(windows), len(labels)))
    nearest = np.zeros((len(pairs), len(windows)), int)
    fit_s, classify_s, methods = [], [], set()
    for p, (sad_start, happy_start) in enumerate(pairs):
        templates = [record(stamps, skeletons, sad_start, args.record_s, 'sad'),
                     record(stamps, skeletons, happy_start, args.record_s, 'happy')]
        label_of = {t.id: t.label for t in templates}
        classifier = GestureClassifier(window_s=args.window_s)
        tic = time.perf_counter()
        skipped = classifier.fit(templates)
        fit_s.append(time.perf_counter() - tic)
        if skipped or classifier.labels != labels:
            print(f'error: templates from {sad_start}, {happy_start} not used: {skipped}')
            return 1
        methods.add(classifier.method)
        for i, w in enumerate(windows):
            tic = time.perf_counter()
            result = classifier.classify(w.positions, w.visibility, w.fps)
            classify_s.append(time.perf_counter() - tic)
            ours[p, i] = result.probabilities
            nearest[p, i] = labels.index(label_of[result.nearest_id])
    print(f"{len(pairs) - 1} teach-ins (sad start x happy start) and the demo's, method "
          f'{", ".join(sorted(methods))}'
          f'; fit median {np.median(fit_s):.2f} s, max {np.max(fit_s):.2f} s; classify p50 '
          f'{1e3 * np.median(classify_s):.1f} ms, '
          f'p95 {1e3 * np.percentile(classify_s, 95):.1f} ms')
    teachings = ((f'{len(pairs) - 1} teach-ins (acc min and mean over them)', slice(0, -1)),
                 (f"the demo's teaching: sad from frame {demo['sad']}, happy from "
                  f"{demo['happy']}", slice(-1, None)))
    for teaching, chosen_pairs in teachings:
        print(f'\n{teaching}:\n{"method":<10} {"part":<6} {"verdicts":<9} {"acc min":>8} '
              f'{"acc mean":>9} {"ECE":>6} {"mean p(true)":>13}')
        for name, probabilities in (('ours', ours), ('DTW-1NN', np.eye(len(labels))[nearest])):
            probabilities = probabilities[chosen_pairs]
            for label in (*PARTS, 'both'):
                for scope, keep in (('every', np.ones(len(windows), bool)), ('within', within)):
                    if label != 'both':
                        keep = keep & (true == labels.index(label))
                    chosen = probabilities[:, keep]
                    correct = chosen.argmax(axis=2) == true[keep]
                    ece = expected_calibration_error(
                        chosen.reshape(-1, len(labels)),
                        np.broadcast_to(true[keep], correct.shape).ravel())
                    p_true = np.take_along_axis(chosen, np.broadcast_to(
                        true[keep][None, :, None], correct.shape + (1,)), axis=2)
                    print(f'{name:<10} {label:<6} {scope:<9} '
                          f'{100 * correct.mean(axis=1).min():7.1f}% {100 * correct.mean():8.1f}% '
                          f'{ece:6.3f} {p_true.mean():13.3f}')
    print(f'\n({time.perf_counter() - start_time:.0f} s in all)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
