"""Replaying a skeleton stream as the gesture node sees it: its windows and recordings."""
from __future__ import annotations

from emorec_ros.gesture.replay import node_windows, record, stream_stamps
from emorec_ros.gesture.skeleton import REST_POSE, Skeleton
import numpy as np
import pytest


def stream(frames: int) -> list[Skeleton | None]:
    """Return a person at rest, moving right a pixel a frame; nobody in frames 100-109."""
    return [None if 100 <= i < 110 else Skeleton(REST_POSE * 100 + [i, 0.0], np.ones(13))
            for i in range(frames)]


def test_windows_are_the_last_window_s_of_skeletons_at_the_verdict_rate():
    skeletons = stream(300)
    stamps = stream_stamps(300, 30.0)
    assert stamps[30] == 1_000_000_000
    windows = node_windows(stamps, skeletons, window_s=2.0, period_s=0.25)
    first = windows[0]
    assert first.newest == 54  # the window covers 90% of 2 s: 1.8 s
    assert (first.first, len(first.positions), first.fps) == (0, 55, pytest.approx(30.0))
    full = [w for w in windows if w.newest > 180]
    assert all(w.newest - w.first == 60 and len(w.positions) == 61 for w in full)
    np.testing.assert_array_equal(full[0].positions[:, 0, 0], REST_POSE[0, 0] * 100
                                  + np.arange(full[0].first, full[0].newest + 1))
    steps = np.diff([w.newest for w in full])
    assert set(steps) <= {7, 8} and steps.mean() == pytest.approx(7.5, abs=0.1)
    # Windows that span the gap hold only the skeletons seen.
    gap = next(w for w in windows if w.first < 100 <= w.newest)
    assert len(gap.positions) == gap.newest - gap.first + 1 - 10


def test_record_takes_duration_s_of_stream():
    skeletons = stream(300)
    stamps = stream_stamps(300, 30.0)
    template = record(stamps, skeletons, 150, 3.0, 'sad')
    assert (template.label, template.frames, template.fps) == ('sad', 90, pytest.approx(30.0))
    assert template.positions[0, 0, 0] == pytest.approx(REST_POSE[0, 0] * 100 + 150)
    with pytest.raises(ValueError):
        record(stamps, skeletons, 250, 3.0, 'sad')
