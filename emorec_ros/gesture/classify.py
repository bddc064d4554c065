"""
Emotion of a window of skeletons from labelled templates.

DTW to every template, then a logistic regression over what the nearest templates of each label
say.

Templates are recordings of any length; the classifier cuts each into windows of WINDOW_S
seconds every STRIDE_S seconds (a shorter one is looped to one window), the windows it compares
with the window it classifies. For a window, it finds the ``neighbours`` nearest template windows
of each label by DTW of the feature sequences (``features.window_features``) and gives the
logistic regression:
  - the distance profile: log DTW distance to the nearest template of each label, minus the mean
    over labels (how much closer one label's templates are than the others');
  - the window's kinematics (log speeds, accelerations, bounce) minus the mean kinematics of
    those nearest templates (all labels alike): the same gesture is faster when angry and slower
    when sad, but a run is faster than a bow whatever the mood, and the nearest templates are the
    ones doing the most similar movement, so the difference says how this window departs from
    that movement;
  - the kinematics themselves.
The regression is fitted on the template windows, each described as above against the windows
of templates of other groups (by default each template is its own group; in the evaluation a
group is a movement), so that it learns from distances like those of a new recording.

Fallbacks: without templates the result says so ('no_templates'); with a single label, or too few
templates to fit (fewer than MIN_TEMPLATES_PER_LABEL of a label with templates of every other
label in other groups), the nearest template answers ('nearest_template') with the fixed
NEAREST_TEMPLATE_CONFIDENCE.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from emorec_ros.gesture.dtw import NearestTemplates, TemplateIndex
from emorec_ros.gesture.features import cut_windows, window_features, WindowFeatures
from emorec_ros.gesture.skeleton import JOINTS
from emorec_ros.gesture.template import Template
import numpy as np

#: Length of the windows compared, seconds (the node classifies windows of about this length).
WINDOW_S = 2.0
#: Step between the windows cut from a template, seconds: the live window starts anywhere in a
#: recording, so a fine step leaves a template window within 0.125 s of it (the DTW band
#: absorbs that). Against 0.5 s it doubles the template windows (the evaluation takes 2.8 times
#: as long) and made the node's camera test reliable; leave-one-movement-out: 4 classes
#: 81.8 -> 79.5%, 7 classes 59.7 -> 63.6%.
STRIDE_S = 0.25
#: Sakoe-Chiba radius in samples at FEATURE_RATE_HZ (3 = 0.2 s).
DTW_RADIUS = 3
#: Nearest templates per label whose kinematics make the reference of a window.
NEIGHBOURS = 1
#: Templates a label needs, with templates of every label in other groups, to fit the regression.
MIN_TEMPLATES_PER_LABEL = 2
#: Confidence stated for an answer of the nearest-template fallback.
NEAREST_TEMPLATE_CONFIDENCE = 0.3
#: Inverse regularisation strengths tried by grouped cross-validation, strongest first (ties go
#: to the stronger regularisation).
C_GRID = (0.1, 1.0, 10.0)
#: Folds of that cross-validation, at most (one group is never split).
CV_FOLDS = 5

_LOG_FLOOR = 1e-6  # keeps log(distance) finite for a window identical to a template


@dataclass(frozen=True)
class GestureResult:
    """
    What the classifier says about one window.

    ``probabilities`` (len(labels),) over the template labels (sorted), summing to 1 (empty
    without templates). ``confidence`` in [0, 1]: the winning probability of the regression,
    NEAREST_TEMPLATE_CONFIDENCE for the fallback, 0 without templates. ``nearest_distance`` is
    the DTW distance to the nearest template (feature units; inf without templates).
    ``method``: 'logistic_regression', 'nearest_template' or 'no_templates'.
    """

    labels: tuple[str, ...]
    probabilities: np.ndarray
    confidence: float
    nearest_id: str | None
    nearest_distance: float
    method: str

    @property
    def label(self) -> str | None:
        """Return the most probable label, or None without templates."""
        return self.labels[int(np.argmax(self.probabilities))] if self.labels else None


class GestureClassifier:
    """Fit on templates, then classify windows of skeletons (same dimension as the templates)."""

    def __init__(
        self,
        window_s: float = WINDOW_S,
        stride_s: float = STRIDE_S,
        radius: int = DTW_RADIUS,
        neighbours: int = NEIGHBOURS,
        prune: bool = True,
    ) -> None:
        if window_s <= 0 or stride_s <= 0 or radius < 0 or neighbours < 1:
            raise ValueError(
                f'need window_s, stride_s > 0, radius >= 0, neighbours >= 1; got {window_s}, '
                f'{stride_s}, {radius}, {neighbours}'
            )
        self.window_s, self.stride_s, self.radius, self.neighbours, self.prune = (
            window_s, stride_s, radius, neighbours, prune)
        self._fit_nothing()

    def _fit_nothing(self) -> None:
        self.labels: tuple[str, ...] = ()
        self.method = 'no_templates'
        self._templates: list[Template] = []
        self._owner = np.zeros(0, dtype=int)  # template index of each window
        self._kinematics = np.zeros((0, 0))
        self._index: TemplateIndex | None = None
        self._model = None
        self._dimension: int | None = None

    def fit(
        self, templates: Sequence[Template], groups: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        """
        Use these templates from now on.

        ``groups`` (one per template; default: each template its own) says which templates come
        from the same recording or session. Returns (template id, reason) for each template left
        out (other joints or dimension, no window with the shoulders in view, too short).
        """
        groups = [t.id for t in templates] if groups is None else list(groups)
        if len(groups) != len(templates):
            raise ValueError(f'{len(templates)} templates but {len(groups)} groups')
        self._fit_nothing()
        skipped: list[tuple[str, str]] = []
        kept: list[Template] = []
        windows: list[WindowFeatures] = []
        owner, window_groups = [], []
        for template, group in zip(templates, groups):
            dimension = template.positions.shape[2]
            if template.joints != JOINTS:
                skipped.append((template.id, f'joint set {template.joints} is not {JOINTS}'))
                continue
            if self._dimension is not None and dimension != self._dimension:
                skipped.append(
                    (template.id, f'{dimension}-D positions among {self._dimension}-D templates')
                )
                continue
            try:
                cut = self._windows(template)
            except ValueError as e:
                skipped.append((template.id, str(e)))
                continue
            self._dimension = dimension
            windows += cut
            owner += [len(kept)] * len(cut)
            window_groups += [group] * len(cut)
            kept.append(template)
        if not kept:
            return skipped
        self._templates, self._owner = kept, np.array(owner)
        self.labels = tuple(sorted({t.label for t in kept}))
        classes = np.array([self.labels.index(kept[i].label) for i in owner])
        self._index = TemplateIndex(
            [w.sequence for w in windows], classes, len(self.labels), self.radius
        )
        self._kinematics = np.stack([w.kinematics for w in windows])
        self.method = 'nearest_template'
        if len(self.labels) > 1:
            self._fit_regression(windows, classes, np.array(window_groups))
        return skipped

    def _windows(self, template: Template) -> list[WindowFeatures]:
        """
        Return the features of the usable windows cut from a template.

        A window in which the shoulders are never seen is left out; ValueError when none is
        usable.
        """
        windows, problems = [], set()
        for positions, visibility in cut_windows(
            template.positions, template.visibility, template.fps, self.window_s, self.stride_s
        ):
            try:
                windows.append(window_features(positions, visibility, template.fps))
            except ValueError as e:
                problems.add(str(e))
        if not windows:
            raise ValueError('; '.join(sorted(problems)))
        return windows

    def _fit_regression(
        self, windows: list[WindowFeatures], classes: np.ndarray, groups: np.ndarray
    ) -> None:
        """
        Fit the regression on the template windows that have templates of each label elsewhere.

        A window counts when there are templates of each label in other groups than its own;
        the regression is fitted if each label keeps MIN_TEMPLATES_PER_LABEL templates that way.
        """
        rows, used = [], []
        for i, window in enumerate(windows):
            nearest = self._index.nearest(
                window.sequence, self.neighbours, groups != groups[i], self.prune
            )
            if not np.isinf(nearest.distances[:, 0]).any():
                rows.append(self._inputs(window, nearest))
                used.append(i)
        used_templates = set(self._owner[used])
        templates_per_label = np.bincount(
            [self.labels.index(self._templates[t].label) for t in used_templates],
            minlength=len(self.labels),
        )
        if templates_per_label.min() < MIN_TEMPLATES_PER_LABEL:
            return
        x, y = np.array(rows), classes[used]
        self._model = _make_model(_choose_c(x, y, groups[used])).fit(x, y)
        self.method = 'logistic_regression'

    def _inputs(self, window: WindowFeatures, nearest: NearestTemplates) -> np.ndarray:
        """Return the regression's inputs for a window, from its nearest templates per label."""
        log_distance = np.log(nearest.distances[:, 0] + _LOG_FLOOR)
        reference = np.mean(
            [self._kinematics[idx[idx >= 0]].mean(axis=0) for idx in nearest.indices], axis=0
        )
        return np.concatenate(
            [log_distance - log_distance.mean(), window.kinematics - reference, window.kinematics]
        )

    def classify(self, positions: np.ndarray, visibility: np.ndarray, fps: float) -> GestureResult:
        """
        Classify a window: positions (T, J, D), visibilities (T, J), at ``fps`` Hz.

        Raises ValueError for a window that has no shoulders, is too short, or has another
        dimension than the templates.
        """
        if not self._templates:
            return GestureResult((), np.zeros(0), 0.0, None, float('inf'), 'no_templates')
        if np.shape(positions)[-1] != self._dimension:
            raise ValueError(
                f'{np.shape(positions)[-1]}-D window, the templates are {self._dimension}-D'
            )
        window = window_features(positions, visibility, fps)
        nearest = self._index.nearest(window.sequence, self.neighbours, prune=self.prune)
        best_class = int(np.argmin(nearest.distances[:, 0]))
        nearest_template = self._templates[self._owner[nearest.indices[best_class, 0]]]
        distance = float(nearest.distances[best_class, 0])
        if self._model is None:
            probabilities = np.eye(len(self.labels))[best_class]
            return GestureResult(self.labels, probabilities, NEAREST_TEMPLATE_CONFIDENCE,
                                 nearest_template.id, distance, self.method)
        probabilities = self._model.predict_proba(self._inputs(window, nearest)[None])[0]
        return GestureResult(self.labels, probabilities, float(probabilities.max()),
                             nearest_template.id, distance, self.method)


def _make_model(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def _choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """
    Choose the C of C_GRID with the best accuracy when whole groups are held out.

    The first of C_GRID with fewer than two groups, or when no fold can be fitted.
    """
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return C_GRID[0]
    folds = [
        (train, test)
        for train, test in GroupKFold(n_splits=min(CV_FOLDS, n_groups)).split(x, y, groups)
        if len(np.unique(y[train])) > 1
    ]
    if not folds:
        return C_GRID[0]
    scores = [np.mean([(_make_model(c).fit(x[train], y[train]).predict(x[test]) == y[test]).mean()
                       for train, test in folds]) for c in C_GRID]
    return C_GRID[int(np.argmax(scores))]
