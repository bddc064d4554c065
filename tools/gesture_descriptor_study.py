"""
How far the gesture descriptors carry the Bandai-Namco emotions to a movement not seen: a study.

The issue's few-shot targets (4 classes, leave one movement out: K = 2 recordings per label
>= 70%, every clip >= 85%) are far from what the classifier reaches (44.7% and 75.0%). This
study asks whether better use of the descriptors could close the gap, or whether the
descriptors cannot carry it. Each clip (the ten main movements, all 15 styles, filmed from in
front as the evaluation films them) becomes one vector: the mean over its 2-s windows (every
0.25 s) of ``features.window_features``' kinematics and posture. Logistic regression on those
vectors, standardised on the training clips, with C chosen among C_GRID by cross-validation
grouped by movement inside the training folds; a clip's answer is its most probable label.
Rows (4 classes, leave one movement out, clip accuracy):

- every clip: all clips of the four labels of the other movements;
- minus a reference: each vector minus the mean of its REFERENCE_NEIGHBOURS nearest clips of the
  other eleven styles (proud, tired, old, ...) of movements other than its own and the held-out
  one, as a robot could carry a library of neutral-to-odd motion recordings and compare a person
  with the nearest ones;
- oracle: each vector minus the mean of its own movement's clips in all 15 styles (the held-out
  movement included): what removing the movement perfectly would give; not available to a
  robot, a ceiling for these descriptors;
- few-shot, K = 1, 2, 4 whole clips per label from the other movements (random, seeds 0-2, as
  the evaluation draws them): logistic regression with C = 1 (too few clips to choose it) and
  the nearest class mean.

Usage::

    python tools/gesture_descriptor_study.py --data ../shared/data/bandai_motion

Prints the table; about a minute on 2 cores.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time
from typing import Callable

from emorec_ros.gesture.bandai import MAIN_MOVEMENTS, read_clips
from emorec_ros.gesture.camera import front_view
from emorec_ros.gesture.classify import STRIDE_S, WINDOW_S
from emorec_ros.gesture.features import cut_windows, window_features
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

LABELS = ('angry', 'happy', 'sad', 'normal')
C_GRID = (0.01, 0.1, 1.0, 10.0)
REFERENCE_NEIGHBOURS = 8
SEEDS = 3


def clip_vectors(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (clips, D) mean descriptors, the clips' movements and their styles."""
    vectors, movements, styles = [], [], []
    for clip in read_clips(data):
        if clip.movement not in MAIN_MOVEMENTS:
            continue
        pixels, visible = front_view(clip.world)
        windows = [window_features(p, v, clip.fps)
                   for p, v in cut_windows(pixels, visible, clip.fps, WINDOW_S, STRIDE_S)]
        vectors.append(np.mean([np.concatenate([w.kinematics, w.posture]) for w in windows], 0))
        movements.append(clip.movement)
        styles.append(clip.style)
    return np.array(vectors), np.array(movements), np.array(styles)


def fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None
        ) -> Callable[[np.ndarray], np.ndarray]:
    """Logistic regression on standardised x; C by grouped cross-validation when groups given."""
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    c = 1.0
    if groups is not None:
        folds = list(GroupKFold(n_splits=min(5, len(set(groups)))).split(z, y, groups))
        scores = [np.mean([LogisticRegression(C=c, max_iter=5000).fit(z[a], y[a])
                           .score(z[b], y[b]) for a, b in folds]) for c in C_GRID]
        c = C_GRID[int(np.argmax(scores))]
    model = LogisticRegression(C=c, max_iter=5000).fit(z, y)
    return lambda new: model.predict(scaler.transform(new))


def referenced(x: np.ndarray, movements: np.ndarray, library: np.ndarray) -> np.ndarray:
    """Each row minus the mean of its nearest library rows of another movement."""
    scaler = StandardScaler().fit(x[library])
    z = scaler.transform(x)
    out = np.empty_like(x)
    for i in range(len(x)):
        pool = np.flatnonzero(library & (movements != movements[i]))
        nearest = pool[np.argsort(np.linalg.norm(z[pool] - z[i], axis=1))[:REFERENCE_NEIGHBOURS]]
        out[i] = x[i] - x[nearest].mean(axis=0)
    return out


def leave_one_movement_out(x: np.ndarray, movements: np.ndarray, styles: np.ndarray,
                           reference: bool = False) -> float:
    """Clip accuracy over the folds, every clip of the other movements as training."""
    labelled = np.isin(styles, LABELS)
    correct = 0
    for movement in MAIN_MOVEMENTS:
        train, test = labelled & (movements != movement), labelled & (movements == movement)
        features = x
        if reference:
            features = referenced(x, movements, ~labelled & (movements != movement))
        predict = fit(features[train], styles[train], movements[train])
        correct += int(np.sum(predict(features[test]) == styles[test]))
    return correct / int(labelled.sum())


def few_shot(x: np.ndarray, movements: np.ndarray, styles: np.ndarray, k: int,
             method: str) -> float:
    """Mean clip accuracy over SEEDS draws of ``k`` clips per label from the other movements."""
    labelled = np.isin(styles, LABELS)
    accuracies = []
    for seed in range(SEEDS):
        correct = 0
        for m, movement in enumerate(MAIN_MOVEMENTS):
            rng = np.random.default_rng([seed, m])
            chosen = np.concatenate([
                rng.choice(np.flatnonzero(labelled & (movements != movement) & (styles == s)),
                           size=k, replace=False) for s in LABELS])
            test = np.flatnonzero(labelled & (movements == movement))
            if method == 'logistic':
                predicted = fit(x[chosen], styles[chosen], None)(x[test])
            else:
                scaler = StandardScaler().fit(x[chosen])
                means = np.array([scaler.transform(x[chosen][styles[chosen] == s]).mean(0)
                                  for s in LABELS])
                distances = np.linalg.norm(
                    scaler.transform(x[test])[:, None] - means[None], axis=-1)
                predicted = np.array(LABELS)[np.argmin(distances, axis=1)]
            correct += int(np.sum(predicted == styles[test]))
        accuracies.append(correct / int(labelled.sum()))
    return float(np.mean(accuracies))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, default=Path('../shared/data/bandai_motion'))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    x, movements, styles = clip_vectors(args.data)
    centred = x.copy()
    for movement in MAIN_MOVEMENTS:
        centred[movements == movement] -= x[movements == movement].mean(axis=0)
    print(f'{len(x)} clips, {x.shape[1]} descriptors each; 4 classes, leave one movement out, '
          'clip accuracy')
    print(f'  every clip                  {leave_one_movement_out(x, movements, styles):.1%}')
    print(f'  minus a reference           '
          f'{leave_one_movement_out(x, movements, styles, reference=True):.1%}')
    oracle = leave_one_movement_out(centred, movements, styles)
    print(f'  oracle (movement removed)   {oracle:.1%}')
    for k in (1, 2, 4):
        print(f'  K = {k}: logistic {few_shot(x, movements, styles, k, "logistic"):.1%}, '
              f'nearest mean {few_shot(x, movements, styles, k, "nearest"):.1%}')
    print(f'{time.perf_counter() - start:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
