"""
How far body_pose's joints are from the true ones, on the rendered full-body clips.

Each clip of ``<data>/video/fullbody`` (640x480, 30 fps, a shaded figure moving as a
Bandai-Namco motion-capture take) goes frame by frame through PoseEstimator in video mode, as
the body_pose node runs it. The error of a joint is its distance from the true image position
(the ``gt`` array of the .npz beside the clip), in torso lengths of that frame (true shoulder
midpoint to true hip midpoint), so it does not depend on how large the figure is in the image.
Printed per clip and over all clips: the share of frames with a skeleton, the median and 90th
percentile of the joint errors (all 13 joints, however visible MediaPipe thinks they are), and
the milliseconds per frame.

    python bench/pose_accuracy.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

import cv2
from emorec_ros.gesture.pose import PoseEstimator
from emorec_ros.gesture.skeleton import JOINT_INDEX, JOINTS
import numpy as np


def true_torso(gt: np.ndarray) -> np.ndarray:
    """Return the torso length (frames,) of true joints (frames, 13, 2), in pixels."""
    shoulders = (gt[:, JOINT_INDEX['left_shoulder']] + gt[:, JOINT_INDEX['right_shoulder']]) / 2
    hips = (gt[:, JOINT_INDEX['left_hip']] + gt[:, JOINT_INDEX['right_hip']]) / 2
    return np.linalg.norm(hips - shoulders, axis=-1)


def clip_errors(clip: Path) -> tuple[np.ndarray, int, int, list[float]]:
    """
    Pose every frame of ``clip``.

    Return the joint errors (frames with a skeleton, 13) in torso lengths, the frames with a
    skeleton, the frames, and the seconds each estimate took.
    """
    truth = np.load(clip.with_suffix('.npz'))
    if list(truth['joints']) != list(JOINTS):
        raise SystemExit(f'error: {clip.with_suffix(".npz")} names other joints: '
                         f'{list(truth["joints"])}')
    gt = truth['gt']
    torso = true_torso(gt)
    capture = cv2.VideoCapture(str(clip))
    pose = PoseEstimator(video=True)
    errors, times, frames = [], [], 0
    try:
        while frames < len(gt):
            ok, bgr = capture.read()
            if not ok:
                break
            started = time.perf_counter()
            skeleton = pose.estimate(bgr)
            times.append(time.perf_counter() - started)
            if skeleton is not None:
                distance = np.linalg.norm(skeleton.positions - gt[frames], axis=-1)
                errors.append(distance / torso[frames])
            frames += 1
    finally:
        pose.close()
        capture.release()
    return np.array(errors).reshape(-1, len(JOINTS)), len(errors), frames, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, default=Path('../shared/data'),
                        help='the datasets folder (default ../shared/data)')
    args = parser.parse_args()
    clips = sorted((args.data / 'video' / 'fullbody').glob('*.mp4'))
    if not clips:
        print(f'error: no clips in {args.data / "video" / "fullbody"}', file=sys.stderr)
        return 1
    print('body_pose joint error against the true joints of the rendered full-body clips '
          '(torso lengths; MediaPipe Pose, video mode, full 640x480 frames)')
    print(f'{"clip":<16} {"frames":>6} {"found":>6} {"median":>7} {"p90":>6} {"ms/frame":>8}')
    all_errors, all_times, found, total = [], [], 0, 0
    for clip in clips:
        errors, seen, frames, times = clip_errors(clip)
        all_errors.append(errors)
        all_times += times
        found, total = found + seen, total + frames
        median, p90 = np.percentile(errors, [50, 90]) if seen else (np.nan, np.nan)
        print(f'{clip.stem:<16} {frames:>6} {seen / frames:>6.0%} {median:>7.3f} {p90:>6.3f} '
              f'{1000 * np.median(times):>8.1f}')
    errors = np.concatenate(all_errors)
    median, p90 = np.percentile(errors, [50, 90])
    print(f'{"all":<16} {total:>6} {found / total:>6.0%} {median:>7.3f} {p90:>6.3f} '
          f'{1000 * np.median(all_times):>8.1f}')
    per_joint = np.median(errors, axis=0)
    print('median per joint: ' + ', '.join(f'{n} {e:.3f}' for n, e in zip(JOINTS, per_joint)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
