"""The networks rebuilt from the shipped model give its logits; member work dirs from its card."""
from __future__ import annotations

import json
from pathlib import Path
import shutil

import cv2
from emorec_ros.face.classify import EmotionClassifier
import numpy as np
import pytest

training = pytest.importorskip('emorec_ros.face.train', reason='needs requirements-train.txt')
unpacking = pytest.importorskip('emorec_ros.face.unpack', reason='needs requirements-train.txt')

MODEL = Path(__file__).resolve().parents[1] / 'models' / 'face_emotion.tflite'
FACES = sorted((Path(__file__).parent / 'fixtures' / 'faces').glob('*.png'))


@pytest.fixture(scope='module')
def card() -> dict:
    return json.loads(MODEL.with_suffix('.json').read_text())


def test_rebuilt_networks_average_to_the_shipped_models_logits() -> None:
    import keras

    nets = unpacking.networks_in(MODEL)
    classifier = EmotionClassifier(MODEL)
    assert len(nets) >= 1
    logit_models = [keras.Model(n.input, n.get_layer(training.CLASSIFIER).output) for n in nets]
    assert len(FACES) >= 20
    for path in FACES:
        face = classifier.prepare(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
        x = training.network_input(face[None])
        rebuilt = np.mean([m(x).numpy()[0] for m in logit_models], axis=0)
        shipped = classifier.logits(face)
        # The shipped model rounds its activations to int8; the rebuilt networks do not.
        assert np.abs(rebuilt - shipped).max() < 0.4, (path.name, rebuilt, shipped)
        assert np.argmax(rebuilt) == np.argmax(shipped), path.name


def test_unpack_writes_a_member_work_dir_per_network_from_the_card(tmp_path, card) -> None:
    dirs = unpacking.unpack(MODEL, tmp_path)
    assert len(dirs) == len(unpacking.networks_in(MODEL))
    minutes, epochs = card['training_time'].split(' minutes for ')
    for work_dir in dirs:
        config = training.read_config(work_dir)
        best = json.loads((work_dir / 'best.json').read_text())
        assert work_dir.name == f'face_emotion_seed{config.seed}'
        assert (f'seed {config.seed}: FER+ Valid accuracy {best["val_accuracy"]:.4f}, best '
                f'epoch {best["epoch"]} of {config.epochs}') in card['selected_on']
        assert config.dropout == card['training_config']['dropout']
        seconds = json.loads((work_dir / 'epoch_seconds.json').read_text())
        assert len(seconds) == config.epochs
        assert sum(seconds.values()) == pytest.approx(
            60 * float(minutes) * config.epochs / int(epochs.split()[0]), rel=0.01)
        net = training.float32_copy(work_dir / 'best.keras', config)
        assert net.count_params() == training.build_model(config, 8).count_params()


def test_a_file_that_is_not_an_exported_model_is_refused(tmp_path) -> None:
    import keras

    corrupt = tmp_path / 'corrupt.tflite'
    corrupt.write_bytes(MODEL.read_bytes()[:1000])
    with pytest.raises(ValueError, match='not a LiteRT model'):
        unpacking.networks_in(corrupt)
    inputs = keras.Input((48, 48, 1))
    other = tmp_path / 'other.tflite'
    training.export_tflite(keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)), other)
    with pytest.raises(ValueError, match='no member networks'):
        unpacking.networks_in(other)


def test_a_card_without_the_members_selection_is_refused(tmp_path, card) -> None:
    model = tmp_path / 'model.tflite'
    shutil.copy(MODEL, model)
    model.with_suffix('.json').write_text(json.dumps({**card, 'selected_on': 'chosen by hand'}))
    with pytest.raises(ValueError, match='selected_on names 0 members'):
        unpacking.unpack(model, tmp_path / 'members')
    assert not (tmp_path / 'members').exists()
