"""The packaged face-emotion model and its card, through LiteRT (no ROS, no TensorFlow)."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from emorec_ros.face.classify import EmotionClassifier, ModelError
from emorec_ros.face.fer2013 import FER_CLASSES


@pytest.fixture(scope='module')
def classifier(model_path):
    return EmotionClassifier(model_path)


def _fixture_faces(fixtures, label):
    paths = sorted((fixtures / 'faces').glob(f'{label}_*.png'))
    assert len(paths) >= 10
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]


def test_card_describes_the_model(model_path, classifier):
    card = json.loads(model_path.with_suffix('.json').read_text())
    assert tuple(card['labels']) == FER_CLASSES == classifier.labels
    assert card['input_size'] == [48, 48] and card['channels'] == 1
    for key in ('scale', 'offset', 'privatetest_accuracy', 'trained_on', 'licence_note'):
        assert key in card
    assert card['privatetest_accuracy'] >= 0.66
    assert model_path.stat().st_size <= 10_000_000


def test_scores_are_a_distribution_for_any_crop(classifier):
    rng = np.random.default_rng(0)
    for crop in (rng.integers(0, 256, (48, 48), dtype=np.uint8), rng.integers(0, 256, (130, 97, 3), dtype=np.uint8)):
        scores = classifier.scores(crop)
        assert scores.shape == (7,) and np.all(scores >= 0) and abs(scores.sum() - 1) < 1e-4


def test_laughing_faces_are_happy(classifier, fixtures):
    predicted = [classifier.labels[int(np.argmax(classifier.scores(f)))] for f in _fixture_faces(fixtures, 'happy')]
    assert predicted.count('happy') >= 0.8 * len(predicted), predicted


def test_crying_faces_are_not_happy_and_lean_sad(classifier, fixtures):
    scores = classifier.scores_batch(np.stack(_fixture_faces(fixtures, 'sad')))
    predicted = [classifier.labels[i] for i in scores.argmax(axis=1)]
    assert predicted.count('happy') <= 0.2 * len(predicted), predicted
    mean = dict(zip(classifier.labels, scores.mean(axis=0)))
    assert mean['sad'] > mean['happy'], mean


def test_missing_model_or_card(tmp_path, model_path):
    with pytest.raises(ModelError, match='not found'):
        EmotionClassifier(tmp_path / 'missing.tflite')
    lonely = tmp_path / 'lonely.tflite'
    shutil.copy(model_path, lonely)
    with pytest.raises(ModelError, match='card .* not found'):
        EmotionClassifier(lonely)


def test_corrupt_model_or_card(tmp_path, model_path):
    bad = tmp_path / 'bad.tflite'
    bad.write_bytes(b'\x00garbage' * 64)
    shutil.copy(model_path.with_suffix('.json'), bad.with_suffix('.json'))
    with pytest.raises(ModelError, match='could not be loaded'):
        EmotionClassifier(bad)
    good = tmp_path / 'good.tflite'
    shutil.copy(model_path, good)
    good.with_suffix('.json').write_text('{"labels": ["a"]')
    with pytest.raises(ModelError, match='unreadable'):
        EmotionClassifier(good)


def test_card_that_does_not_match_the_model(tmp_path, model_path):
    card = json.loads(model_path.with_suffix('.json').read_text())
    card['labels'] = card['labels'][:5]          # the hri_emotion_recognizer bug: fewer labels than outputs
    other = tmp_path / 'other.tflite'
    shutil.copy(model_path, other)
    other.with_suffix('.json').write_text(json.dumps(card))
    with pytest.raises(ModelError, match='do not match'):
        EmotionClassifier(other)
