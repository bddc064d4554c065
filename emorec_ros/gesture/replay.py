"""
One person's stream of skeletons replayed as the gesture node sees it, without ROS.

The node keeps the last ``window_s`` seconds of each person's skeletons and classifies them
every ``period_s`` seconds of stream (``window.PersonWindows``), and records templates with
``window.Recording``. These functions do the same on a stream given as stamps (integer
nanoseconds) and skeletons (None where nobody was seen), so that offline evaluations see exactly
the windows and recordings the node would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from emorec_ros.gesture.skeleton import Skeleton, stack
from emorec_ros.gesture.template import Template
from emorec_ros.gesture.window import NS, PersonWindows, Recording
import numpy as np

PERSON = 'person1'


@dataclass(frozen=True)
class NodeWindow:
    """
    One window the node classifies: stream indices ``first``..``newest`` (inclusive).

    ``positions`` (T, J, D) and ``visibility`` (T, J) of its skeletons, at ``fps`` as the node
    computes it (skeletons - 1 over the span).
    """

    first: int
    newest: int
    positions: np.ndarray
    visibility: np.ndarray
    fps: float


def stream_stamps(frames: int, fps: float, start_ns: int = 0) -> np.ndarray:
    """Return integer-nanosecond stamps (frames,) of images ``1 / fps`` seconds apart."""
    return start_ns + np.round(np.arange(frames) * (NS / fps)).astype(np.int64)


def _people(skeleton: Skeleton | None) -> dict[str, Skeleton]:
    return {} if skeleton is None else {PERSON: skeleton}


def node_windows(
    stamps_ns: np.ndarray,
    skeletons: Sequence[Skeleton | None],
    window_s: float,
    period_s: float,
    lost_s: float = 1.0,
) -> list[NodeWindow]:
    """Return the windows the node would classify, in order (stamps must increase)."""
    windows = PersonWindows(window_s, lost_s, period_s)
    result: list[NodeWindow] = []
    for stamp, skeleton in zip(stamps_ns, skeletons):
        windows.add(int(stamp), _people(skeleton))
        result += [NodeWindow(int(np.searchsorted(stamps_ns, w.first_ns)),
                              int(np.searchsorted(stamps_ns, w.last_ns)),
                              w.positions, w.visibility, w.fps) for w in windows.due()]
    return result


def record(
    stamps_ns: np.ndarray,
    skeletons: Sequence[Skeleton | None],
    start: int,
    duration_s: float,
    label: str,
    source: str = 'camera',
) -> Template:
    """
    Record a template as the node's record_template does, from stream index ``start`` on.

    Raises ValueError when the stream ends first or fewer than two skeletons were seen.
    """
    recording = Recording(label, duration_s)
    for stamp, skeleton in zip(stamps_ns[start:], skeletons[start:]):
        people = _people(skeleton)
        recording.add(int(stamp), people, list(people))
        if recording.done.is_set():
            break
    if not recording.done.is_set() or len(recording.skeletons) < 2:
        raise ValueError(f'no {duration_s:g} s recording from index {start}')
    positions, visibility = stack(recording.skeletons)
    return Template.new(label, positions, visibility, recording.fps, source)
