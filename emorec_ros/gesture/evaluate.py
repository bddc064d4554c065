"""
Leave-one-movement-out evaluation of the gesture classifier on motion-capture clips.

The clips are seen by a camera (``camera.front_view``); the results are pooled over the folds
at the clip level.

In each fold the classifier is fitted on templates from the clips of every other movement, and
nothing it chooses (its C, its weights) sees the held-out movement: either all those clips whole
(grouped by movement, so that its regression learns from distances to other movements, as the
held-out one will be), or few-shot, K recordings of at most RECORDING_S seconds per label cut at
random from them, each its own group, as an operator records them. It classifies each window
of each clip of the held-out movement: windows of the classifier's length and stride, as the
node classifies a rolling window; a clip shorter than a window is looped to fill one
(``features.loop_to_length``). A clip's answer:
  - ours: the label of the highest mean log probability over its windows (the product of the
    window probabilities, as if the windows were independent evidence);
  - DTW-1NN baseline, from the same DTW searches: the label of each window's nearest template,
    majority vote over the clip's windows (a tie goes to the label with the nearest template).
"""
from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Callable

from emorec_ros.calibration import expected_calibration_error
from emorec_ros.face.evaluate import confusion_matrix
from emorec_ros.gesture.bandai import MocapClip
from emorec_ros.gesture.camera import front_view
from emorec_ros.gesture.classify import GestureClassifier
from emorec_ros.gesture.features import cut_windows
from emorec_ros.gesture.template import Template
import numpy as np

#: Our label for each Bandai-Namco style that is an emotion ('normal' is neutral).
STYLE_LABELS: dict[str, str] = {
    'angry': 'angry',
    'happy': 'happy',
    'sad': 'sad',
    'normal': 'neutral',
    'proud': 'proud',
    'not-confident': 'not_confident',
    'tired': 'tired',
}
#: Longest few-shot recording, seconds (an operator's record_template call).
RECORDING_S = 5.0
CLASS_SETS: dict[int, tuple[str, ...]] = {
    4: ('angry', 'happy', 'sad', 'neutral'),
    7: ('angry', 'happy', 'sad', 'neutral', 'proud', 'not_confident', 'tired'),
}


@dataclass(frozen=True, eq=False)
class LabelledClip:
    """A clip filmed by the camera, as a Template, with its movement."""

    template: Template
    movement: str


def filmed(clip: MocapClip, label: str) -> LabelledClip:
    """Film the clip with the default front camera (2-D skeletons in pixels)."""
    pixels, visible = front_view(clip.world)
    return LabelledClip(
        Template.new(label, pixels, visible, clip.fps, f'bandai_ds1/{clip.name}'), clip.movement
    )


@dataclass(frozen=True)
class LomoResult:
    """
    Per clip (in ``names`` order): true, ours and baseline label indices into ``labels``.

    ``window_probabilities`` (windows, labels) and ``window_true`` (windows,): every window's
    probabilities (over ``labels``) and true label, for calibration.
    """

    labels: tuple[str, ...]
    names: tuple[str, ...]
    movements: tuple[str, ...]
    true: np.ndarray
    ours: np.ndarray
    baseline: np.ndarray
    window_probabilities: np.ndarray
    window_true: np.ndarray
    seconds: float

    @property
    def windows(self) -> int:
        return len(self.window_true)

    def accuracy(self, predicted: np.ndarray) -> float:
        return float(np.mean(predicted == self.true))

    def window_ece(self) -> float:
        """Return the expected calibration error of the window probabilities."""
        return expected_calibration_error(self.window_probabilities, self.window_true)

    def confusion(self, predicted: np.ndarray) -> np.ndarray:
        """Count (C, C) true labels (rows) against predicted labels (columns)."""
        return confusion_matrix(self.true, predicted, len(self.labels))


def few_shot_templates(
    clips: list[LabelledClip], labels: tuple[str, ...], k: int, rng: np.random.Generator
) -> list[Template]:
    """
    Return ``k`` recordings per label: random distinct clips, a random RECORDING_S-s part of each.

    A clip no longer than RECORDING_S seconds is taken whole; a label with fewer than ``k``
    clips gives all of them.
    """
    templates = []
    for label in labels:
        own = [c.template for c in clips if c.template.label == label]
        for i in rng.choice(len(own), size=min(k, len(own)), replace=False):
            template = own[i]
            frames = round(RECORDING_S * template.fps)
            start = int(rng.integers(0, max(1, template.frames - frames + 1)))
            templates.append(Template.new(
                label, template.positions[start:start + frames],
                template.visibility[start:start + frames], template.fps,
                f'{template.source}[{start}:{start + frames}]'))
    return templates


def leave_one_movement_out(
    clips: list[LabelledClip],
    labels: tuple[str, ...],
    movements: tuple[str, ...],
    classifier: Callable[[], GestureClassifier] = GestureClassifier,
    progress: Callable[[str], None] = lambda line: None,
    k: int | None = None,
    seed: int = 0,
) -> LomoResult:
    """
    Hold out each movement in turn (clips of other labels or movements are not used).

    ``k`` None: the templates are every clip of the other movements, whole, grouped by
    movement. ``k`` = 1, 2, ...: ``few_shot_templates`` of the other movements' clips (random
    generator seeded with ``seed`` and the movement), each its own group, as an operator's
    recordings.
    """
    clips = [c for c in clips if c.template.label in labels and c.movement in movements]
    start = time.perf_counter()
    answers: dict[str, tuple[int, int]] = {}
    window_probabilities, window_true = [], []
    for m, movement in enumerate(movements):
        train = [c for c in clips if c.movement != movement]
        test = [c for c in clips if c.movement == movement]
        if not test:
            continue
        model = classifier()
        if k is None:
            templates, groups = [c.template for c in train], [c.movement for c in train]
        else:
            templates = few_shot_templates(train, labels, k, np.random.default_rng([seed, m]))
            groups = None
        model.fit(templates, groups)
        if model.labels != tuple(sorted(labels)):
            raise ValueError(
                f'fold {movement}: training labels {model.labels} are not {sorted(labels)}'
            )
        order = [model.labels.index(label) for label in labels]
        label_of = {t.id: t.label for t in templates}
        correct = 0
        for clip in test:
            template = clip.template
            cut = cut_windows(template.positions, template.visibility, template.fps,
                              model.window_s, model.stride_s)
            results = [
                model.classify(positions, visibility, template.fps)
                for positions, visibility in cut
            ]
            probabilities = np.array([r.probabilities[order] for r in results])
            window_probabilities.append(probabilities)
            window_true += [labels.index(template.label)] * len(results)
            ours = int(np.argmax(np.log(np.maximum(probabilities, 1e-12)).mean(axis=0)))
            votes = [labels.index(label_of[r.nearest_id]) for r in results]
            counts = np.bincount(votes, minlength=len(labels))
            nearest = [
                min(
                    (r.nearest_distance for r, v in zip(results, votes) if v == label),
                    default=np.inf,
                )
                for label in range(len(labels))
            ]
            tied = np.flatnonzero(counts == counts.max())
            answers[clip.template.id] = (ours, int(tied[np.argmin(np.take(nearest, tied))]))
            correct += ours == labels.index(clip.template.label)
        progress(f'  {movement:<11} {len(templates)} templates, held out by '
                 f'{model.held_out}, {model.choice or model.method}: '
                 f'{correct}/{len(test)} clips right ({time.perf_counter() - start:.0f} s)')
    ids = [c.template.id for c in clips]
    return LomoResult(
        labels=labels,
        names=tuple(c.template.source for c in clips),
        movements=tuple(c.movement for c in clips),
        true=np.array([labels.index(c.template.label) for c in clips]),
        ours=np.array([answers[i][0] for i in ids]),
        baseline=np.array([answers[i][1] for i in ids]),
        window_probabilities=np.concatenate(window_probabilities),
        window_true=np.array(window_true),
        seconds=time.perf_counter() - start,
    )
