"""Face identities across frames and smoothing of emotion scores."""
from emorec_ros.face.detect import FaceBox
from emorec_ros.face.track import FaceTrack, FaceTracker
import numpy as np
import pytest


def _box(x, y, size=100, score=0.9):
    return FaceBox(x, y, size, size, score)


def _ids(tracks):
    return [t.id for t in tracks]


def test_id_is_stable_while_a_face_moves():
    tracker = FaceTracker()
    ids = [_ids(tracker.update([_box(100 + 10 * i, 50 + 5 * i)])) for i in range(20)]
    assert ids == [['face1']] * 20
    assert tracker.tracks[0].hits == 20 and tracker.tracks[0].box == _box(290, 145)


def test_a_new_face_gets_a_new_id_and_order_follows_the_boxes():
    tracker = FaceTracker()
    assert _ids(tracker.update([_box(0, 0)])) == ['face1']
    assert _ids(tracker.update([_box(400, 0), _box(5, 0)])) == ['face2', 'face1']
    assert _ids(tracker.update([_box(8, 2), _box(395, 3)])) == ['face1', 'face2']


def test_each_box_is_matched_to_its_best_overlapping_track():
    tracker = FaceTracker(iou_threshold=0.1)
    tracker.update([_box(0, 0), _box(60, 0)])
    # The box at 50 overlaps both tracks; it belongs to face2, and face1 keeps the box at 5.
    assert _ids(tracker.update([_box(50, 0), _box(5, 0)])) == ['face2', 'face1']


def test_a_jump_beyond_the_overlap_threshold_is_a_new_face():
    tracker = FaceTracker(iou_threshold=0.3)
    tracker.update([_box(0, 0)])
    assert _ids(tracker.update([_box(60, 0)])) == ['face2']  # IoU 40/160 = 0.25


def test_track_survives_max_missed_updates_then_is_dropped_and_ids_are_not_reused():
    tracker = FaceTracker(max_missed=3)
    tracker.update([_box(0, 0)])
    for missed in range(1, 4):
        assert tracker.update([]) == []
        assert [(t.id, t.missed) for t in tracker.tracks] == [('face1', missed)]
    assert _ids(tracker.update([_box(0, 0)])) == ['face1']  # back after 3 misses
    assert tracker.tracks[0].missed == 0
    for _ in range(4):
        tracker.update([])
    assert tracker.tracks == []
    assert _ids(tracker.update([_box(0, 0)])) == ['face2']


def test_max_missed_zero_drops_at_the_first_miss():
    tracker = FaceTracker(max_missed=0)
    tracker.update([_box(0, 0)])
    tracker.update([])
    assert _ids(tracker.update([_box(0, 0)])) == ['face2']


def test_no_smoothing_returns_the_scores_normalised():
    tracker = FaceTracker(smoothing=0.0)
    track = tracker.update([_box(0, 0)])[0]
    tracker.smooth(track, np.array([0.2, 0.8]))
    np.testing.assert_allclose(tracker.smooth(track, np.array([1.0, 3.0])), [0.25, 0.75])
    np.testing.assert_allclose(track.scores, [0.25, 0.75])


def test_smoothing_is_an_exponential_moving_average():
    tracker = FaceTracker(smoothing=0.75)
    track = FaceTrack(id='face1', box=_box(0, 0))
    np.testing.assert_allclose(tracker.smooth(track, np.array([1.0, 0.0])), [1.0, 0.0])
    np.testing.assert_allclose(tracker.smooth(track, np.array([0.0, 1.0])), [0.75, 0.25])
    # 0.75 * [0.75, 0.25] + 0.25 * [0.5, 0.5] = [0.6875, 0.3125]
    np.testing.assert_allclose(tracker.smooth(track, np.array([0.5, 0.5])), [0.6875, 0.3125])
    # Scores of another length start afresh.
    np.testing.assert_allclose(tracker.smooth(track, np.array([1.0, 1.0, 2.0])), [0.25, 0.25, 0.5])


def test_tracks_are_smoothed_separately():
    tracker = FaceTracker(smoothing=0.5)
    a, b = tracker.update([_box(0, 0), _box(400, 0)])
    tracker.smooth(a, np.array([1.0, 0.0]))
    tracker.smooth(b, np.array([0.0, 1.0]))
    a, b = tracker.update([_box(2, 0), _box(402, 0)])
    np.testing.assert_allclose(tracker.smooth(a, np.array([0.0, 1.0])), [0.5, 0.5])
    np.testing.assert_allclose(b.scores, [0.0, 1.0])


@pytest.mark.parametrize('kwargs, message', [
    ({'iou_threshold': 0.0}, 'iou_threshold'), ({'iou_threshold': 1.5}, 'iou_threshold'),
    ({'max_missed': -1}, 'max_missed'), ({'max_missed': 1.5}, 'max_missed'),
    ({'smoothing': 1.0}, 'smoothing'), ({'smoothing': -0.1}, 'smoothing'),
])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaceTracker(**kwargs)


@pytest.mark.parametrize(
    'scores',
    [np.array([0.0, 0.0]), np.array([-0.1, 1.0]), np.array([np.nan, 1.0]), np.ones((2, 2))],
)
def test_bad_scores_are_refused(scores):
    tracker = FaceTracker()
    with pytest.raises(ValueError, match='scores'):
        tracker.smooth(FaceTrack(id='face1', box=_box(0, 0)), scores)
