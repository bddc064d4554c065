"""
Emotion of a window of skeletons from labelled templates.

DTW to every template, then probabilities from what the nearest templates of each label say.

Templates are recordings of any length; the classifier cuts each into windows of WINDOW_S
seconds every STRIDE_S seconds (a shorter one is looped to one window), the windows it compares
with the window it classifies. For a window it finds the ``neighbours`` nearest template windows
of each label by DTW of the feature sequences (``features.window_features``). Two models turn
them into probabilities:
  - DTW softmax: p(label) proportional to exp(-d_label / T), d_label the DTW distance to the
    nearest template window of the label; one temperature T, so the most probable label is the
    nearest template's (DTW 1-NN);
  - logistic regression over one of INPUT_SETS: the distance profile (log DTW distance to the
    nearest template of each label, minus the mean over labels), the gap profile (the same for
    the distance between descriptors), the window's descriptors (kinematics: log speeds,
    accelerations, bounce; posture: where the hands, elbows and head are) minus the mean
    descriptors of those nearest templates (the same gesture is faster when angry and slower
    when sad, but a run is faster than a bow whatever the mood; the nearest templates do the
    most similar movement, so the difference says how this window departs from it), and the
    descriptors themselves.

Calibration: every model is fitted on held-out rows, windows described as a new recording's
windows will be, by templates they do not overlap. When every label has templates in
MIN_GROUPS_PER_LABEL groups (by default each template is its own group; in the evaluation a group
is a movement), each template window is described by the windows of the other groups, every
label losing one group alike: the window's own, or for a label without templates in it, the
group of the label's nearest template window (a new window's movement is usually missing from
every label's templates; without this, with a few recordings per label, the other labels kept a
recording of the window's movement that its own label lost, and the probabilities came out too
low: few-shot leave-one-movement-out, 4 classes, seeds 0-2, window ECE K = 2 0.288 -> 0.207,
K = 4 0.309 -> 0.112). The model (DTW softmax, or an input set with its C) is chosen by the lowest
log loss of cross-validation over those groups (whole groups held out), inside ``fit``: nothing
is tuned on the windows it will classify. With fewer groups (an operator who recorded each label
once), the model is the DTW softmax: each recording is split into SEGMENTS parts in time, windows
of min(window_s, shortest part) seconds are cut from each part, and each is described by the
windows of the other parts, of its own recording and of the other recordings alike (so every
label is described by as much of its recordings), and of the other groups; the distances are
scaled by sqrt(window / calibration window length), as DTW distances grow with the square root
of the length. T minimises the log loss on those rows with the targets smoothed by one window's
worth of doubt (1 / (rows + 1) spread over the labels), so that rows that all sit nearest their
own label give a finite T and probabilities short of 1.

One label: every window gets that label; its score is how typical the window is of it: the share
of the held-out windows of the label (as above) that are at least as far from their nearest
template, (count + 0.5) / (held-out windows + 1), so in (0, 1): about 0.5 for a window as close
as a typical new window of the label, near 0 for one much farther than any.

Fallbacks: without templates the result says so ('no_templates'); when no held-out rows can be
made for some label (its templates are too short to split), each label's probability is
proportional to 1 / (DTW distance to its nearest template) ('nearest_template'): graded, but not
calibrated.
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
#: Groups of templates a label needs for held-out rows of whole windows; with fewer, recordings
#: are split in time (SEGMENTS parts).
MIN_GROUPS_PER_LABEL = 2
#: Parts in time of each recording when some label has fewer groups. More parts give more (and
#: shorter) held-out windows to fit T on: on the demo clip's teach-ins (tools/teach_in_clip.py,
#: 90 pairs, verdicts within a part) the ECE was 0.108 with 2, 0.081 with 3, 0.061 with 4 (the
#: demo's own teaching: 0.302, 0.077, 0.135).
SEGMENTS = 3
#: Shortest calibration window, seconds (shorter parts are looped to it).
MIN_CALIBRATION_S = 0.5
#: Added to the spread of each descriptor over the template windows before descriptors are
#: compared (log units and torso lengths): a descriptor that hardly varies among the templates
#: (a joint never seen) must not dominate the comparison.
DESCRIPTOR_SCALE_FLOOR = 0.05
#: Inputs of the logistic regression, as blocks of ``GestureClassifier._inputs``, among which
#: (with C) the grouped cross-validation chooses: without and with posture.
INPUT_SETS: dict[str, tuple[str, ...]] = {
    'kinematics': ('profile', 'relative_kinematics', 'kinematics'),
    'posture': ('profile', 'gap', 'relative_kinematics', 'relative_posture', 'kinematics',
                'posture'),
}
#: Inverse regularisation strengths tried by grouped cross-validation, strongest first (ties go
#: to the stronger regularisation). With 0.01 as well, the cross-validation chose it in 9 of 10
#: leave-one-movement-out folds and the held-out accuracy fell (4 classes, every clip: 75.0 ->
#: 68.2%).
C_GRID = (0.1, 1.0, 10.0)
#: Folds of that cross-validation, at most (one group is never split).
CV_FOLDS = 5
#: Name of the DTW softmax among the models chosen.
DTW_SOFTMAX = 'dtw_softmax'

_LOG_FLOOR = 1e-6  # keeps log(distance) finite for a window identical to a template


@dataclass(frozen=True)
class GestureResult:
    """
    What the classifier says about one window.

    ``probabilities`` (len(labels),) over the template labels (sorted), summing to 1 with two or
    more labels; with one label, the single score of the module docstring; empty without
    templates. ``confidence``: the winning probability (the score with one label; 0 without
    templates). ``nearest_distance`` is the DTW distance to the nearest template (feature
    units; inf without templates). ``method``: 'dtw_softmax', 'logistic_regression',
    'single_label', 'nearest_template' or 'no_templates'.
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
        self._descriptors = np.zeros((0, 0))
        self._index: TemplateIndex | None = None
        self._model = None
        self._held_out = np.zeros(0)  # one label: held-out nearest distances, sorted
        self._descriptor_scale = np.ones(0)
        self._columns: dict[str, np.ndarray] = {}  # input block -> columns of _inputs' rows
        #: The model chosen: DTW_SOFTMAX or 'INPUTS C=c' (``_choose_model``); '' when none.
        self.choice = ''
        #: How its rows were held out: 'groups', 'time' (parts of recordings) or '' (no rows).
        self.held_out = ''
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
        kept_groups: list[str] = []
        windows: list[WindowFeatures] = []
        owner = []
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
                cut = self._windows(template.positions, template.visibility, template.fps,
                                    self.window_s)
            except ValueError as e:
                skipped.append((template.id, str(e)))
                continue
            self._dimension = dimension
            windows += cut
            owner += [len(kept)] * len(cut)
            kept.append(template)
            kept_groups.append(group)
        if not kept:
            return skipped
        self._templates, self._owner = kept, np.array(owner)
        self.labels = tuple(sorted({t.label for t in kept}))
        classes = np.array([self.labels.index(kept[i].label) for i in owner])
        self._index = TemplateIndex(
            [w.sequence for w in windows], classes, len(self.labels), self.radius
        )
        self._descriptors = np.stack([_descriptors(w) for w in windows])
        self._descriptor_scale = self._descriptors.std(axis=0) + DESCRIPTOR_SCALE_FLOOR
        self.method = 'nearest_template'
        self._fit_held_out(windows, np.array(kept_groups)[owner])
        return skipped

    def _windows(self, positions: np.ndarray, visibility: np.ndarray, fps: float,
                 window_s: float) -> list[WindowFeatures]:
        """
        Return the features of the usable windows of ``window_s`` cut from a recording.

        A window in which the shoulders are never seen is left out; ValueError when none is
        usable.
        """
        windows, problems = [], set()
        for p, v in cut_windows(positions, visibility, fps, window_s, self.stride_s):
            try:
                windows.append(window_features(p, v, fps))
            except ValueError as e:
                problems.add(str(e))
        if not windows:
            raise ValueError('; '.join(sorted(problems)))
        return windows

    def _fit_held_out(self, windows: list[WindowFeatures], window_groups: np.ndarray) -> None:
        """
        Describe held-out windows by the templates they do not overlap, and fit on them.

        Whole windows against other groups when every label has MIN_GROUPS_PER_LABEL groups,
        else windows of the recordings' parts in time (module docstring). A row counts when
        templates of every label are left to describe it.
        """
        label_groups = [{g for g, c in zip(window_groups, self._index.classes) if c == label}
                        for label in range(len(self.labels))]
        rich = min(len(g) for g in label_groups) >= MIN_GROUPS_PER_LABEL
        self.held_out = 'groups' if rich else 'time'
        if rich:
            queries, index, descriptors = windows, self._index, self._descriptors
            query_keys = window_groups
            allowed = window_groups[:, None] != window_groups[None, :]
        else:
            queries, index, descriptors, parts, owners = self._segment_windows()
            query_keys = np.array([f'{o}/{part}' for o, part in zip(owners, parts)])
            template_group = np.array(
                [window_groups[np.flatnonzero(self._owner == t)[0]]
                 for t in range(len(self._templates))])[owners]
            allowed = (parts[:, None] != parts[None, :]) & (
                (owners[:, None] == owners[None, :])
                | (template_group[:, None] != template_group[None, :]))
        rows, row_classes, row_keys = [], [], []
        for i, window in enumerate(queries):
            nearest = index.nearest(window.sequence, self.neighbours, allowed[i], self.prune)
            lacking = [c for c in range(len(self.labels))
                       if rich and window_groups[i] not in label_groups[c]
                       and nearest.indices[c, 0] >= 0]
            if lacking:  # each of these labels loses its nearest group instead
                nearest_groups = window_groups[nearest.indices[lacking, 0]]
                allowed[i] &= ~(np.isin(index.classes, lacking) & (
                    window_groups == nearest_groups[np.searchsorted(lacking, index.classes)
                                                    .clip(0, len(lacking) - 1)]))
                nearest = index.nearest(window.sequence, self.neighbours, allowed[i],
                                        self.prune)
            if np.isinf(nearest.distances[:, 0]).any():
                continue
            rows.append(self._inputs(window, nearest, descriptors, index.classes, allowed[i]))
            row_classes.append(index.classes[i])
            row_keys.append(query_keys[i])
        y = np.array(row_classes, dtype=int)
        if len(self.labels) == 1:
            self._held_out = np.sort([row[0] for row in rows])
            self.method = 'single_label'
            return
        if len(np.unique(y)) < len(self.labels):
            return
        x, keys = np.array(rows), np.array(row_keys)
        self.choice = _choose_model(x, y, keys, self._columns) if rich else DTW_SOFTMAX
        self._model = _make_model(self.choice, self._columns).fit(x, y)
        self.method = DTW_SOFTMAX if self.choice == DTW_SOFTMAX else 'logistic_regression'

    def _segment_windows(self) -> tuple[
            list[WindowFeatures], TemplateIndex, np.ndarray, np.ndarray, np.ndarray]:
        """
        Cut each template's SEGMENTS parts in time into windows of one calibration length.

        Returns the windows, their index (classes as labels), descriptors, part numbers and
        owning template indices.
        """
        length_s = max(MIN_CALIBRATION_S, min(
            [self.window_s] + [t.duration_s / SEGMENTS for t in self._templates]))
        windows, parts, owners = [], [], []
        for t, template in enumerate(self._templates):
            bounds = np.linspace(0, template.frames, SEGMENTS + 1).round().astype(int)
            for part, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
                try:
                    cut = self._windows(template.positions[lo:hi], template.visibility[lo:hi],
                                        template.fps, length_s)
                except ValueError:
                    continue
                windows += cut
                parts += [part] * len(cut)
                owners += [t] * len(cut)
        classes = np.array([self.labels.index(self._templates[t].label) for t in owners],
                           dtype=int)
        index = TemplateIndex([w.sequence for w in windows], classes, len(self.labels),
                              self.radius)
        descriptors = (np.stack([_descriptors(w) for w in windows]) if windows
                       else np.zeros((0, 0)))
        return windows, index, descriptors, np.array(parts, dtype=int), np.array(owners, int)

    def _inputs(self, window: WindowFeatures, nearest: NearestTemplates,
                descriptors: np.ndarray, classes: np.ndarray, allowed: np.ndarray | None = None
                ) -> np.ndarray:
        """
        Return every input of the models for a window (``_columns`` names their blocks).

        ``descriptors`` (N, P) and ``classes`` (N,) are those of the windows the nearest
        indices point into; only ``allowed`` ones (default all) describe the window. The DTW
        distances are scaled to a window of the templates' length.
        """
        distance = nearest.distances[:, 0] * np.sqrt(
            len(self._index.sequences[0]) / len(window.sequence))
        log_distance = np.log(distance + _LOG_FLOOR)
        own = _descriptors(window)
        gap = np.linalg.norm((descriptors - own) / self._descriptor_scale, axis=1)
        if allowed is not None:
            gap = np.where(allowed, gap, np.inf)
        log_gap = np.log(np.array([gap[classes == c].min() for c in range(len(self.labels))])
                         + _LOG_FLOOR)
        reference = np.mean(
            [descriptors[idx[idx >= 0]].mean(axis=0) for idx in nearest.indices], axis=0)
        relative = own - reference
        k = len(window.kinematics)
        blocks = {'distance': distance, 'profile': log_distance - log_distance.mean(),
                  'gap': log_gap - log_gap.mean(), 'relative_kinematics': relative[:k],
                  'relative_posture': relative[k:], 'kinematics': own[:k], 'posture': own[k:]}
        if not self._columns:
            sizes = np.cumsum([0] + [len(v) for v in blocks.values()])
            self._columns = {name: np.arange(lo, hi)
                             for name, lo, hi in zip(blocks, sizes[:-1], sizes[1:])}
        return np.concatenate(list(blocks.values()))

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
        if self._model is not None:
            probabilities = self._model.predict_proba(
                self._inputs(window, nearest, self._descriptors, self._index.classes)[None])[0]
        elif len(self.labels) == 1:
            farther = len(self._held_out) - np.searchsorted(self._held_out, distance)
            probabilities = np.array([(farther + 0.5) / (len(self._held_out) + 1)])
        else:
            inverse = 1 / (nearest.distances[:, 0] + _LOG_FLOOR)
            probabilities = inverse / inverse.sum()
        return GestureResult(self.labels, probabilities, float(probabilities.max()),
                             nearest_template.id, distance, self.method)


def _descriptors(window: WindowFeatures) -> np.ndarray:
    """Return what the regression sees of a window besides distances: kinematics, posture."""
    return np.concatenate([window.kinematics, window.posture])


class DtwSoftmax:
    """
    p(label) proportional to exp(-d_label / T) over the nearest DTW distances of a row.

    ``columns`` are the rows' distance columns, one per label. T minimises the log loss of the
    rows with targets smoothed by 1 / (rows + 1) spread over the labels (module docstring).
    """

    def __init__(self, columns: np.ndarray) -> None:
        self.columns = columns
        self.classes_ = np.arange(len(columns))
        self.temperature = 1.0

    def _log_p(self, distances: np.ndarray, temperature: float) -> np.ndarray:
        scores = -distances / temperature
        scores -= scores.max(axis=1, keepdims=True)
        return scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))

    def fit(self, x: np.ndarray, y: np.ndarray) -> DtwSoftmax:
        """Fit T on rows (N, inputs) with true label indices (N,)."""
        from scipy.optimize import minimize_scalar

        distances = x[:, self.columns]
        doubt = 1 / (len(y) + 1)
        targets = np.full(distances.shape, doubt / len(self.columns))
        targets[np.arange(len(y)), y] += 1 - doubt
        scale = max(float(np.median(distances)), _LOG_FLOOR)
        log_t = minimize_scalar(
            lambda t: -(targets * self._log_p(distances, np.exp(t))).sum(),
            bounds=(np.log(scale) - 10, np.log(scale) + 10), method='bounded').x
        self.temperature = float(np.exp(log_t))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Return the probabilities (N, labels) of rows (N, inputs)."""
        return np.exp(self._log_p(np.atleast_2d(x)[:, self.columns], self.temperature))


def _make_model(choice: str, columns: dict[str, np.ndarray]):
    """
    Return an unfitted model: the DTW softmax, or 'INPUTS C=c' (a key of INPUT_SETS, a C).

    The logistic regression standardises its inputs.
    """
    if choice == DTW_SOFTMAX:
        return DtwSoftmax(columns['distance'])
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    inputs, c = choice.split(' C=')
    kept = np.concatenate([columns[block] for block in INPUT_SETS[inputs]])
    return make_pipeline(ColumnTransformer([('inputs', 'passthrough', kept)]), StandardScaler(),
                         LogisticRegression(C=float(c), max_iter=5000))


def _choose_model(x: np.ndarray, y: np.ndarray, groups: np.ndarray,
                  columns: dict[str, np.ndarray]) -> str:
    """
    Choose the model with the lowest log loss when whole groups are held out.

    The candidates are the DTW softmax, then each of INPUT_SETS with each of C_GRID (ties go to
    the earlier one). Log loss rather than accuracy, because the probabilities are what is
    published. The DTW softmax when no fold can be fitted.
    """
    from sklearn.model_selection import GroupKFold

    candidates = [DTW_SOFTMAX] + [f'{inputs} C={c:g}' for inputs in INPUT_SETS for c in C_GRID]
    n_groups = len(np.unique(groups))
    folds = [] if n_groups < 2 else [
        (train, test)
        for train, test in GroupKFold(n_splits=min(CV_FOLDS, n_groups)).split(x, y, groups)
        if len(np.unique(y[train])) > 1
    ]
    if not folds:
        return DTW_SOFTMAX
    losses = []
    for choice in candidates:
        loss = 0.0
        for train, test in folds:
            model = _make_model(choice, columns).fit(x[train], y[train])
            p = model.predict_proba(x[test])
            known = np.isin(y[test], model.classes_)
            column = np.searchsorted(model.classes_, y[test][known])
            loss -= (np.log(np.maximum(p[known, column], 1e-6)).sum()
                     + np.log(1e-6) * (~known).sum())
        losses.append(loss)
    return candidates[int(np.argmin(losses))]
