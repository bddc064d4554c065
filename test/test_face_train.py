"""The trained network's export wrapper: logits, mirror average and class activation maps."""
from __future__ import annotations

import numpy as np
import pytest

training = pytest.importorskip('emorec_ros.face.train', reason='needs requirements-train.txt')


def _random_net(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = training.build_model(training.TrainConfig(), 8)
    # Untrained batch norms pass their input through; random statistics make the check real.
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, rng.normal(0, 0.1, gamma.shape),
                               rng.uniform(0.5, 2, gamma.shape)])
    classifier = model.get_layer(training.CLASSIFIER)
    weights, bias = classifier.get_weights()
    classifier.set_weights([weights, rng.normal(0, 0.5, bias.shape)])  # a bias to account for
    return model


@pytest.fixture(scope='module')
def net():
    return _random_net(1)


def _faces(n: int = 3) -> np.ndarray:
    return np.random.default_rng(2).uniform(0, 1, (n, 48, 48, 1)).astype(np.float32)


def test_maps_average_to_the_logits_less_the_bias(net) -> None:
    single = training.explaining_model([net], mirror=False)
    bias = net.get_layer(training.CLASSIFIER).get_weights()[1]
    for face in _faces():
        logits, maps = (np.asarray(t) for t in single(face[None]))
        assert maps.shape == (1, 6, 6, 8)
        np.testing.assert_allclose(maps.mean(axis=(1, 2)) + bias, logits, atol=1e-4)
        scores = np.asarray(net(face[None]))
        np.testing.assert_allclose(scores, np.exp(logits) / np.exp(logits).sum(), atol=1e-5)


def test_mirror_average_of_logits_and_maps(net) -> None:
    single = training.explaining_model([net], mirror=False)
    both = training.explaining_model([net], mirror=True)
    for face in _faces():
        logits, maps = (np.asarray(t) for t in both(face[None]))
        plain_logits, plain_maps = (np.asarray(t) for t in single(face[None]))
        mirror_logits, mirror_maps = (np.asarray(t) for t in single(face[None, :, ::-1]))
        np.testing.assert_allclose(logits, (plain_logits + mirror_logits) / 2, atol=1e-4)
        np.testing.assert_allclose(maps, (plain_maps + mirror_maps[:, :, ::-1]) / 2, atol=1e-4)


def test_ensemble_averages_members_logits_and_maps(net) -> None:
    other = _random_net(2)
    ensemble = training.explaining_model([net, other], mirror=True)
    members = [training.explaining_model([n], mirror=True) for n in (net, other)]
    biases = [n.get_layer(training.CLASSIFIER).get_weights()[1] for n in (net, other)]
    for face in _faces():
        logits, maps = (np.asarray(t) for t in ensemble(face[None]))
        each = [[np.asarray(t) for t in m(face[None])] for m in members]
        np.testing.assert_allclose(logits, (each[0][0] + each[1][0]) / 2, atol=1e-4)
        np.testing.assert_allclose(maps, (each[0][1] + each[1][1]) / 2, atol=1e-4)
        np.testing.assert_allclose(maps.mean(axis=(1, 2)) + np.mean(biases, axis=0), logits,
                                   atol=1e-4)
        assert not np.allclose(each[0][0], each[1][0], atol=1e-2)  # two different members


def test_distillation_targets_mix_votes_with_the_teachers_softmax() -> None:
    votes = np.array([[0.7, 0.3, 0, 0], [0, 0, 1.0, 0]], np.float32)
    logits = np.log(np.array([[0.1, 0.1, 0.4, 0.4], [0.25, 0.25, 0.25, 0.25]]))
    mixed = training.distillation_targets(votes, logits, 0.5)
    np.testing.assert_allclose(mixed, [[0.4, 0.2, 0.2, 0.2], [0.125, 0.125, 0.625, 0.125]],
                               atol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(training.distillation_targets(votes, logits, 0.0), votes)
    with pytest.raises(ValueError, match='differ'):
        training.distillation_targets(votes, logits[:, :3], 0.5)
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        training.distillation_targets(votes, logits, 1.5)


def test_write_atomically_keeps_the_old_file_and_no_partial_one_on_failure(tmp_path) -> None:
    path = tmp_path / 'logits.npy'
    training.write_atomically(path, lambda tmp: np.save(tmp, np.arange(3)))
    np.testing.assert_array_equal(np.load(path), np.arange(3))

    def failing(tmp):
        tmp.write_bytes(b'partial')
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        training.write_atomically(path, failing)
    np.testing.assert_array_equal(np.load(path), np.arange(3))
    training.write_json(tmp_path / 'card.json', {'a': 1})
    assert (tmp_path / 'card.json').read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['card.json', 'logits.npy']


def test_width_scales_every_stage_and_the_member_config_is_read_back(tmp_path) -> None:
    assert training.stage_channels(1.0) == training.BASE_CHANNELS
    assert training.stage_channels(1.5) == (48, 96, 192, 384)
    with pytest.raises(ValueError, match='positive'):
        training.stage_channels(0.0)
    base = training.build_model(training.TrainConfig(), 8)
    wide = training.build_model(training.TrainConfig(width=1.5), 8)
    assert wide.get_layer(training.FEATURES).output.shape[-1] == 384
    assert 2.0 < wide.count_params() / base.count_params() < 2.5
    # A run recorded before width existed reads back as width 1.
    training.write_json(tmp_path / 'config.json', {'epochs': 36, 'seed': 8})
    assert training.read_config(tmp_path) == training.TrainConfig(seed=8)


def test_jitter_is_reproducible_changes_the_faces_and_keeps_pixels_in_range() -> None:
    faces = np.random.default_rng(3).integers(50, 200, (16, 48, 48), dtype=np.uint8)
    jittered = training.jitter_faces(faces, np.random.default_rng(5))
    assert jittered.shape == (16, 48, 48, 1) and jittered.dtype == np.float32
    assert np.array_equal(jittered, training.jitter_faces(faces, np.random.default_rng(5)))
    plain = training.network_input(faces)
    assert np.abs(jittered - plain).mean() > 0.02
    assert jittered.min() >= training.OFFSET and jittered.max() <= 255 * training.SCALE


def test_jittered_batches_cover_every_face_once_per_epoch_in_an_order_set_by_the_epoch() -> None:
    images = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 48, 48), np.uint8)
    targets = np.eye(10, dtype=np.float32)
    batches = training.JitteredFaces(images, targets, batch_size=4, seed=1)

    def epoch(number: int) -> tuple[list[int], np.ndarray]:
        batches.set_epoch(number)
        order = [int(i) for b in range(len(batches)) for i in batches[b][1].argmax(axis=1)]
        return order, batches[0][0]

    assert len(batches) == 3 and [len(batches[b][1]) for b in range(3)] == [4, 4, 2]
    (first, faces), (second, _) = epoch(0), epoch(1)
    assert sorted(first) == sorted(second) == list(range(10)) and first != second
    again, faces_again = epoch(0)  # as a resumed run sees epoch 0 again
    assert again == first and np.array_equal(faces_again, faces)


def test_training_writes_the_best_network_and_its_config(tmp_path) -> None:
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (64, 48, 48), dtype=np.uint8)
    targets = np.eye(8, dtype=np.float32)[rng.integers(0, 8, 64)]
    config = training.TrainConfig(epochs=2, batch_size=16, width=0.25)
    best = training.train((images, targets), (images[:16], targets[:16]), tmp_path, config)
    import keras

    assert keras.models.load_model(best).name == 'face_emotion'
    assert training.read_config(tmp_path) == config
    net = training.float32_copy(best, config)
    scores = net.predict(training.network_input(images[:4]), verbose=0)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
