"""
Frame-to-frame face identities, and per-face smoothing of emotion scores.

Matching is greedy on box overlap (IoU), best pair first. There is no motion model: a face that
moves by more than about half its size between two updates, or vanishes for more than
``max_missed`` updates, comes back under a new id. At the 10-30 Hz a face detector runs at,
faces move far less than that.
"""
from __future__ import annotations

from dataclasses import dataclass

from emorec_ros.face.detect import FaceBox, iou
import numpy as np


@dataclass
class FaceTrack:
    """
    One face followed over frames.

    ``id`` is "face<N>", N counted per tracker from 1 and never reused; ``box`` is the latest
    matched box (pixels); ``hits`` counts matched updates (1 when new); ``missed`` counts updates
    since the last match; ``scores`` are the smoothed emotion scores (sum 1), None until the
    first ``FaceTracker.smooth``.
    """

    id: str  # noqa: A003
    box: FaceBox
    hits: int = 1
    missed: int = 0
    scores: np.ndarray | None = None


class FaceTracker:
    """
    Gives each detected face a stable id across calls to ``update``.

    iou_threshold: least IoU, in (0, 1], for a box to continue a track.
    max_missed: updates a track survives without a matching box; it is dropped on the next miss.
    smoothing: weight of the past in the scores' exponential moving average, in [0, 1);
        0 = no smoothing.
    """

    def __init__(
        self, iou_threshold: float = 0.3, max_missed: int = 5, smoothing: float = 0.0
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f'iou_threshold must be in (0, 1], got {iou_threshold}')
        if int(max_missed) != max_missed or max_missed < 0:
            raise ValueError(f'max_missed must be an integer >= 0, got {max_missed}')
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f'smoothing must be in [0, 1), got {smoothing}')
        self.iou_threshold = iou_threshold
        self.max_missed = int(max_missed)
        self.smoothing = smoothing
        self._tracks: list[FaceTrack] = []
        self._created = 0

    @property
    def tracks(self) -> list[FaceTrack]:
        """All live tracks, including those that missed the latest update, oldest first."""
        return list(self._tracks)

    def update(self, boxes: list[FaceBox]) -> list[FaceTrack]:
        """Match one frame's boxes to the tracks; return each box's track, in ``boxes``' order."""
        pairs = sorted(((iou(track.box, box), t, b) for t, track in enumerate(self._tracks)
                        for b, box in enumerate(boxes)), key=lambda p: p[0], reverse=True)
        track_of_box: list[FaceTrack | None] = [None] * len(boxes)
        matched_tracks: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < self.iou_threshold:
                break
            if t in matched_tracks or track_of_box[b] is not None:
                continue
            track = self._tracks[t]
            track.box, track.hits, track.missed = boxes[b], track.hits + 1, 0
            track_of_box[b] = track
            matched_tracks.add(t)
        for t, track in enumerate(self._tracks):
            if t not in matched_tracks:
                track.missed += 1
        self._tracks = [track for track in self._tracks if track.missed <= self.max_missed]
        result = []
        for box, track in zip(boxes, track_of_box):
            if track is None:
                self._created += 1
                track = FaceTrack(id=f'face{self._created}', box=box)
                self._tracks.append(track)
            result.append(track)
        return result

    def smooth(self, track: FaceTrack, scores: np.ndarray) -> np.ndarray:
        """
        Blend ``scores`` into the track's running average, and return the new average.

        ``scores`` are one frame's non-negative emotion scores, shape (K,); the average is
        ``smoothing * past + (1 - smoothing) * scores``, renormalised to sum 1.

        The first scores of a track (or scores of a different length) start the average afresh.
        The new average (float64, shape (K,)) is also stored as ``track.scores``.
        """
        scores = np.asarray(scores, dtype=np.float64)
        if (
            scores.ndim != 1
            or not np.all(np.isfinite(scores))
            or np.any(scores < 0)
            or scores.sum() <= 0
        ):
            raise ValueError('scores must be a 1-D array of finite values >= 0 with a positive '
                             f'sum, got {scores!r}')
        if track.scores is not None and track.scores.shape == scores.shape:
            scores = self.smoothing * track.scores + (1.0 - self.smoothing) * scores
        track.scores = scores / scores.sum()
        return track.scores
