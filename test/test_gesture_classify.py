"""GestureClassifier with no templates, one label, too few templates, and enough to fit."""
from __future__ import annotations

from emorec_ros.gesture.classify import (_choose_model, _make_model, DTW_SOFTMAX,
                                         DtwSoftmax, GestureClassifier)
from emorec_ros.gesture.dtw import warm_up
from emorec_ros.gesture.skeleton import JOINT_INDEX, JOINTS, REST_POSE
from emorec_ros.gesture.template import Template
import numpy as np
import pytest

J = len(JOINTS)
FPS = 30.0
# Three "gestures": waving slowly with small swings, waving fast with big swings, and bobbing the
# head; each recorded several times with its own tempo, phase, position and noise.
STYLES = {'calm': (0.6, 0.15, 'right_wrist', 0), 'excited': (2.2, 0.6, 'right_wrist', 0),
          'nodding': (1.2, 0.1, 'head', 1)}


@pytest.fixture(scope='module', autouse=True)
def compiled():
    warm_up()


def recording(label: str, seed: int, seconds: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Positions (frames, J, 2) in pixels and visibilities of one take of a gesture."""
    hz, amplitude, joint, axis = STYLES[label]
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FPS)) / FPS
    hz *= rng.uniform(0.85, 1.15)
    poses = np.repeat(REST_POSE[None], len(t), axis=0).copy()
    poses[:, JOINT_INDEX[joint], axis] += amplitude * np.sin(
        2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi)
    )
    poses += rng.normal(scale=0.01, size=poses.shape)
    return poses * rng.uniform(80, 120) + rng.uniform(100, 400, size=2), np.ones((len(t), J))


def template(label: str, seed: int, seconds: float = 3.0) -> Template:
    positions, visibility = recording(label, seed, seconds)
    return Template.new(label, positions, visibility, FPS, source='test')


def test_without_templates_it_says_so():
    classifier = GestureClassifier()
    assert classifier.fit([]) == []
    result = classifier.classify(*recording('calm', 0), FPS)
    assert result.method == 'no_templates' and result.label is None and result.labels == ()
    assert (
        result.probabilities.size == 0 and result.confidence == 0.0 and result.nearest_id is None
    )


def test_one_label_scores_how_typical_a_window_is_of_it():
    templates = [template('calm', 1), template('calm', 2)]
    classifier = GestureClassifier()
    classifier.fit(templates)
    assert classifier.method == 'single_label'
    like = classifier.classify(*recording('calm', 3, seconds=2.0), FPS)
    unlike = classifier.classify(*recording('excited', 3, seconds=2.0), FPS)
    for result in (like, unlike):
        assert result.label == 'calm' and 0 < result.confidence < 1
        assert result.confidence == result.probabilities[0]
        assert result.nearest_id in {t.id for t in templates}
    assert unlike.confidence < 0.2 < like.confidence


def test_one_recording_per_label_gives_graded_probabilities():
    # One 3-s recording per label, as an operator makes them: no 0/1, no fixed confidence.
    templates = [template('calm', 4), template('excited', 5), template('nodding', 6)]
    classifier = GestureClassifier()
    classifier.fit(templates)
    assert classifier.method == 'dtw_softmax'
    confidences = []
    for i, label in enumerate(STYLES):
        for seed in (40, 41):
            result = classifier.classify(*recording(label, 100 * i + seed, seconds=2.0), FPS)
            assert result.probabilities.sum() == pytest.approx(1.0)
            assert (result.probabilities > 0).all() and (result.probabilities < 1).all()
            assert result.label == label, (label, result)
            confidences.append(result.confidence)
    assert len(set(np.round(confidences, 6))) > 1


def test_enough_templates_fit_a_model_chosen_by_grouped_cross_validation():
    templates = [
        template(label, 100 * i + seed) for i, label in enumerate(STYLES) for seed in range(4)
    ]
    classifier = GestureClassifier()
    assert classifier.fit(templates) == []
    assert classifier.held_out == 'groups' and classifier.labels == ('calm', 'excited', 'nodding')
    for i, label in enumerate(STYLES):
        for seed in (50, 51):
            result = classifier.classify(*recording(label, 100 * i + seed, seconds=2.0), FPS)
            assert result.method == classifier.method
            assert result.probabilities.sum() == pytest.approx(1.0)
            assert result.label == label, (label, result)
            assert result.confidence == pytest.approx(result.probabilities.max())
            assert next(t.label for t in templates if t.id == result.nearest_id) == label


def test_unusable_templates_are_reported_and_left_out():
    good = [template('calm', 7), template('excited', 8)]
    positions, visibility = recording('calm', 9)
    no_shoulders = Template.new('calm', positions, np.zeros_like(visibility), FPS, 'test')
    depth = np.ones((len(positions), J, 1))
    three_d = Template.new('calm', np.concatenate([positions, depth], axis=2), visibility, FPS,
                           'test')
    foreign = Template('abc', 'calm', positions[:, :3], visibility[:, :3], FPS, 'test',
                       '2026-01-01T00:00:00+00:00', joints=('nose', 'left_eye', 'right_eye'))
    classifier = GestureClassifier()
    skipped = dict(classifier.fit(good + [no_shoulders, three_d, foreign]))
    assert set(skipped) == {no_shoulders.id, three_d.id, foreign.id}
    assert 'shoulders' in skipped[no_shoulders.id] and '3-D' in skipped[three_d.id]
    assert classifier.labels == ('calm', 'excited')
    with pytest.raises(ValueError, match='3-D window'):
        classifier.classify(three_d.positions[:60], three_d.visibility[:60], FPS)


def test_windows_without_shoulders_are_left_out_of_a_template_that_has_others():
    positions, visibility = recording('calm', 14, seconds=4.0)
    visibility[:70, JOINT_INDEX['left_shoulder']] = 0.0  # the first 2.3 s: not usable
    templates = [Template.new('calm', positions, visibility, FPS, 'test'), template('calm', 15)]
    classifier = GestureClassifier()
    assert classifier.fit(templates) == []
    result = classifier.classify(*recording('calm', 16, seconds=2.0), FPS)
    assert result.label == 'calm' and np.isfinite(result.nearest_distance)


def test_groups_keep_a_recordings_windows_from_describing_each_other():
    # Two labels, each recorded twice, but both takes of a label in one group: no template of its
    # own label is left in another group to describe a take by, so the full regression cannot be
    # fitted.
    templates = [template('calm', 10), template('calm', 11), template('excited', 12),
                 template('excited', 13)]
    classifier = GestureClassifier()
    classifier.fit(templates, groups=['a', 'a', 'b', 'b'])
    # parts in time of each recording instead, and the DTW softmax over them
    assert classifier.held_out == 'time' and classifier.method == 'dtw_softmax'
    classifier.fit(templates)  # each template its own group
    assert classifier.held_out == 'groups'
    with pytest.raises(ValueError):
        classifier.fit(templates, groups=['a'])


def test_the_cross_validation_prefers_a_regression_when_distances_say_nothing():
    # Rows of two labels in eight groups: the DTW distances are noise, the first kinematics
    # column tells the labels apart.
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 80)
    columns = {'distance': np.arange(2), 'profile': np.arange(2, 4), 'gap': np.arange(4, 6),
               'relative_kinematics': np.arange(6, 8), 'relative_posture': np.arange(8, 9),
               'kinematics': np.arange(9, 11), 'posture': np.arange(11, 12)}
    x = rng.normal(size=(len(y), 12)) + 1.0
    x[:, 9] += 3 * y
    choice = _choose_model(x, y, np.repeat(np.arange(8), 20), columns)
    assert choice != DTW_SOFTMAX
    predicted = _make_model(choice, columns).fit(x, y).predict_proba(x).argmax(axis=1)
    assert np.mean(predicted == y) > 0.9


def test_the_dtw_softmax_is_graded_and_picks_the_nearest_label():
    rng = np.random.default_rng(1)
    y = np.tile([0, 1, 2], 30)
    distances = rng.uniform(1.0, 2.0, size=(len(y), 3))
    distances[np.arange(len(y)), y] -= rng.uniform(-0.3, 1.0, size=len(y))  # mostly nearest
    model = DtwSoftmax(np.arange(3)).fit(distances, y)
    p = model.predict_proba(distances)
    assert np.allclose(p.sum(axis=1), 1) and (p > 0).all() and (p < 1).all()
    assert (p.argmax(axis=1) == distances.argmin(axis=1)).all()
    separated = np.where(np.eye(3)[y] > 0, 1.0, 2.0)  # always nearest: T stays finite
    assert (DtwSoftmax(np.arange(3)).fit(separated, y).predict_proba(separated) < 1).all()
