"""FER+ votes: targets, the protocol's scored faces and majorities (hand-made votes)."""
from __future__ import annotations

from emorec_ros.face.ferplus import FERPLUS_CLASSES, load_split, N_EMOTIONS, VotedFaces
import numpy as np
import pytest


def _faces(*votes: list[int]) -> VotedFaces:
    return VotedFaces(np.zeros((len(votes), 48, 48), np.uint8), np.array(votes), 'Test')


def test_protocol_scores_unique_majorities_of_sure_taggers() -> None:
    #                neu hap sur sad ang dis fea con unk NF
    faces = _faces([6, 0, 0, 3, 1, 0, 0, 0, 0, 0],   # neutral, scored
                   [0, 4, 4, 0, 0, 0, 0, 0, 2, 0],   # tie: not scored
                   [2, 0, 0, 0, 0, 0, 0, 0, 3, 5],   # unknown + NF = 8 of 10: not scored
                   [0, 0, 0, 0, 3, 0, 0, 0, 4, 1],   # unknown + NF = 5 of 8: not scored
                   [0, 0, 0, 0, 0, 0, 0, 4, 2, 1])   # contempt 4, unknown + NF 3 of 7: scored
    assert faces.scored.tolist() == [True, False, False, False, True]
    assert [FERPLUS_CLASSES[i] for i in faces.majority[faces.scored]] == ['neutral', 'contempt']
    kept = faces.as_face_set()
    assert kept.labels.tolist() == [0, 7] and len(kept.images) == 2


def test_targets_drop_single_votes_unless_alone() -> None:
    faces = _faces([6, 0, 0, 3, 1, 0, 0, 0, 0, 0],
                   [0, 1, 0, 0, 0, 0, 1, 0, 8, 0],   # only single votes: kept
                   [0, 0, 0, 0, 0, 0, 0, 0, 0, 10])  # no emotion vote: a zero row
    targets = faces.targets()
    np.testing.assert_allclose(targets[0], [6 / 9, 0, 0, 3 / 9, 0, 0, 0, 0])
    np.testing.assert_allclose(targets[1], [0, 0.5, 0, 0, 0, 0, 0.5, 0])
    assert targets.shape == (3, N_EMOTIONS) and not targets[2].any()
    assert faces.trainable.tolist() == [True, False, False]
    assert len(faces.subset(faces.trainable).images) == 1


def test_unknown_split_and_wrong_file(tmp_path) -> None:
    with pytest.raises(ValueError, match='choose one of Train, Valid, Test'):
        load_split(tmp_path / 'ferplus.npz', 'PrivateTest')
    bad = tmp_path / 'ferplus.npz'
    np.savez(bad, images=np.zeros((1, 48, 48), np.uint8), votes=np.zeros((1, 10), np.int8),
             split=np.zeros(1, np.int8), vote_names=np.array(['a'] * 10))
    with pytest.raises(ValueError, match='vote names'):
        load_split(bad, 'Train')
