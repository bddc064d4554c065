"""
The recent skeletons of each person in view, when to classify them, and recordings (no ROS).

Times are integer nanoseconds on the stream's clock (the header stamps of the skeleton
messages), so windows, verdicts and recordings follow the stream whatever the node's load or
the playback speed, and a stamp handed back (the newest skeleton's) is exactly the one that came
in. Time that jumps back (a looping bag, a restarted camera) empties every window rather than
silencing them until the clock catches up again.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import threading

from emorec_ros.gesture.skeleton import body_scale, Skeleton, stack
import numpy as np

NS = 1_000_000_000


class _PositiveSeconds:
    """A duration set in seconds (> 0), kept as integer nanoseconds in ``_<name>_ns``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.ns_name = name, f'_{name.removesuffix("_s")}_ns'

    def __get__(self, instance, owner: type | None = None) -> float:
        return getattr(instance, self.ns_name) / NS

    def __set__(self, instance, value: float) -> None:
        if value <= 0:
            raise ValueError(f'{self.name} must be > 0, got {value}')
        setattr(instance, self.ns_name, round(value * NS))


@dataclass(frozen=True, eq=False)
class WindowSnapshot:
    """One person's window: stamps (ns) of its first and last skeleton, and the skeletons."""

    person_id: str
    first_ns: int
    last_ns: int
    positions: np.ndarray  # (T, J, D)
    visibility: np.ndarray  # (T, J)

    @property
    def fps(self) -> float:
        """Return the frame rate of the window's skeletons."""
        return (len(self.positions) - 1) / ((self.last_ns - self.first_ns) / NS)


class PersonWindows:
    """
    A rolling window of ``window_s`` seconds of skeletons per person id, and a verdict schedule.

    A person is forgotten after ``lost_s`` seconds of stream without a skeleton of theirs. Each
    person's window is due for a verdict every ``period_s`` seconds of stream (the first once
    the window covers ``full_share`` of window_s), on the stamps alone: the same stream gives
    the same verdicts at any playback speed.
    """

    def __init__(self, window_s: float, lost_s: float, period_s: float,
                 full_share: float = 0.9) -> None:
        self.window_s, self.lost_s, self.period_s, self.full_share = (
            window_s, lost_s, period_s, full_share)
        self._frames: dict[str, deque[tuple[int, Skeleton]]] = {}
        self._next_due: dict[str, int] = {}
        self._newest: int | None = None  # stamp of the newest message, people or not
        self._in_view: list[str] = []  # ids in the newest message, most in view first

    window_s = _PositiveSeconds()
    lost_s = _PositiveSeconds()
    period_s = _PositiveSeconds()

    def add(self, stamp_ns: int, people: dict[str, Skeleton]) -> str | None:
        """
        Add one message's skeletons by person id (empty: nobody in view).

        Return a note when every window was emptied because time jumped back, else None.
        """
        note = None
        if self._newest is not None and stamp_ns < self._newest:
            note = (f'time jumped back by {(self._newest - stamp_ns) / NS:.3f} s: '
                    'gesture windows reset')
            self.reset()
        self._newest = stamp_ns
        for person_id in [p for p, f in self._frames.items()
                          if stamp_ns - f[-1][0] > self._lost_ns]:
            self.forget(person_id)  # gone: a skeleton with this id starts a new window
        for person_id, skeleton in people.items():
            frames = self._frames.setdefault(person_id, deque())
            frames.append((stamp_ns, skeleton))
            while stamp_ns - frames[0][0] > self._window_ns:
                frames.popleft()
        self._in_view = sorted(people, key=lambda p: _in_view_key(people[p]), reverse=True)
        return note

    def forget(self, person_id: str) -> None:
        """Drop one person's window."""
        self._frames.pop(person_id, None)
        self._next_due.pop(person_id, None)

    def reset(self) -> None:
        """Forget every window."""
        self._frames.clear()
        self._next_due.clear()
        self._newest = None
        self._in_view = []

    @property
    def people(self) -> list[str]:
        """Return the ids with a window, in the order they were first seen."""
        return list(self._frames)

    @property
    def in_view(self) -> list[str]:
        """Return the ids in the newest message: most joints seen first, then the largest."""
        return list(self._in_view)

    def span_s(self, person_id: str) -> float:
        """Return the seconds from the oldest to the newest skeleton of a person's window."""
        frames = self._frames.get(person_id)
        if not frames or len(frames) < 2:
            return 0.0
        return (frames[-1][0] - frames[0][0]) / NS

    def due(self) -> list[WindowSnapshot]:
        """
        Return the windows due for a verdict now, and count them as given.

        Due: the person is in the newest message, the window covers ``full_share`` of window_s,
        and period_s has passed on the stamps since the previous verdict's schedule.
        """
        snapshots = []
        for person_id in self._in_view:
            frames = self._frames[person_id]
            newest = frames[-1][0]
            if self.span_s(person_id) < self.full_share * self.window_s:
                continue
            due = self._next_due.get(person_id, newest)
            if newest < due:
                continue
            # The schedule keeps the rate exact whatever the frame rate.
            self._next_due[person_id] = due + ((newest - due) // self._period_ns + 1) * \
                self._period_ns
            positions, visibility = stack([s for _, s in frames])
            snapshots.append(
                WindowSnapshot(person_id, frames[0][0], newest, positions, visibility))
        return snapshots


def _in_view_key(skeleton: Skeleton) -> tuple[int, float]:
    """Joints seen, then body size: how much of a person the camera sees."""
    scale = float(body_scale(skeleton.positions, skeleton.visibility))
    return int(skeleton.present.sum()), scale


@dataclass
class Recording:
    """
    One person's skeletons over ``duration`` seconds of stream.

    The recording starts with the first message after it is made. ``person_id`` '' means the
    person most in view in the first message that has anyone. ``done`` is set when the duration
    has passed, or when the recording is aborted (then ``failure`` says why).
    ``last_input_ns`` is when a message last came, on the node's clock (set by the node).
    """

    label: str
    duration: float
    person_id: str = ''
    last_input_ns: int = 0
    stamps: list[int] = field(default_factory=list)
    skeletons: list[Skeleton] = field(default_factory=list)
    messages: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    failure: str = ''
    stopped_early: str = ''  # why a recording that is kept ended before its duration
    _start: int | None = None
    _newest: int | None = None

    def add(self, stamp_ns: int, people: dict[str, Skeleton], in_view: list[str]) -> None:
        """
        Feed one message: skeletons by id, and the ids most in view first.

        ``done`` is set once ``duration`` seconds of stream have passed.
        """
        if self.done.is_set():
            return
        if self._newest is not None and stamp_ns < self._newest:
            self.abort(f'time jumped back by {(self._newest - stamp_ns) / NS:.3f} s during the '
                       'recording')
            return
        self._newest = stamp_ns
        if self._start is None:
            self._start = stamp_ns
        if stamp_ns - self._start >= self.duration * NS:
            self.done.set()
            return
        self.messages += 1
        if not self.person_id and in_view:
            self.person_id = in_view[0]
        skeleton = people.get(self.person_id) if self.person_id else None
        if skeleton is not None:
            self.stamps.append(stamp_ns)
            self.skeletons.append(skeleton)

    def abort(self, reason: str) -> None:
        """End the recording without a template; ``failure`` says why."""
        if not self.done.is_set():
            self.failure = reason
            self.done.set()

    def stream_stopped(self, reason: str, keep_share: float) -> None:
        """
        End a recording whose stream stopped before its duration.

        It is kept (``stopped_early`` says so) when its skeletons span at least ``keep_share``
        of the duration, else aborted with ``reason``.
        """
        if self.done.is_set():
            return
        covered = (self.stamps[-1] - self._start) / NS if self.stamps else 0.0
        if covered >= keep_share * self.duration:
            self.stopped_early = f'the stream stopped after {covered:.1f} s'
            self.done.set()
        else:
            self.abort(reason)

    @property
    def fps(self) -> float:
        """Return the frame rate of the recorded skeletons (0 with fewer than two)."""
        span = (self.stamps[-1] - self.stamps[0]) / NS if len(self.stamps) > 1 else 0.0
        return (len(self.stamps) - 1) / span if span > 0 else 0.0
