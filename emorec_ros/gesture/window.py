"""
The recent skeletons of the person in view, and recordings of them (no ROS).

Times are integer nanoseconds on the images' clock (their header stamps), so a window and a
recording follow the stream whatever the node's load, and a stamp handed back (the newest
image's) is exactly the one that came in. Time that jumps back (a looping bag, a restarted
camera) empties the window rather than silencing it until the clock catches up again.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import threading
import time

from emorec_ros.gesture.skeleton import Skeleton, stack
import numpy as np

NS = 1_000_000_000


class PersonWindow:
    """
    A rolling window of one person's skeletons, ``window_s`` seconds long.

    The person keeps an id ("person1", "person2", ...) while seen; after ``lost_s`` seconds
    without a skeleton, the window empties and the next person seen gets a new id.
    """

    def __init__(self, window_s: float, lost_s: float) -> None:
        if window_s <= 0 or lost_s <= 0:
            raise ValueError(f'window_s ({window_s}) and lost_s ({lost_s}) must be > 0')
        self.window_s, self.lost_s = window_s, lost_s
        self._frames: deque[tuple[int, Skeleton]] = deque()
        self._people = 0
        self.person_id = ''
        self._last_seen: int | None = None
        self._newest: int | None = None  # newest stamp of any image, skeleton or not

    def add(self, stamp_ns: int, skeleton: Skeleton | None) -> str | None:
        """
        Add one image's result: a skeleton, or None when nobody was seen.

        Return a note when the window was reset because time jumped back, else None.
        """
        note = None
        if self._newest is not None and stamp_ns < self._newest:
            note = (f'time jumped back by {(self._newest - stamp_ns) / NS:.3f} s: '
                    'gesture window reset')
            self.reset()
        self._newest = stamp_ns
        if self._last_seen is not None and stamp_ns - self._last_seen > self.lost_s * NS:
            self._frames.clear()
            self.person_id = ''
            self._last_seen = None
        if skeleton is None:
            return note
        if not self.person_id:
            self._people += 1
            self.person_id = f'person{self._people}'
        self._last_seen = stamp_ns
        self._frames.append((stamp_ns, skeleton))
        while self._frames and stamp_ns - self._frames[0][0] > self.window_s * NS:
            self._frames.popleft()
        return note

    def reset(self) -> None:
        """Forget the window and the person (the next one seen gets a new id)."""
        self._frames.clear()
        self.person_id = ''
        self._last_seen = self._newest = None

    @property
    def newest_ns(self) -> int | None:
        """Return the stamp of the newest skeleton in the window (None when empty)."""
        return self._frames[-1][0] if self._frames else None

    @property
    def span_s(self) -> float:
        """Return the seconds from the oldest to the newest skeleton in the window."""
        if len(self._frames) < 2:
            return 0.0
        return (self._frames[-1][0] - self._frames[0][0]) / NS

    def is_full(self, share: float = 0.9) -> bool:
        """Return whether the window covers at least ``share`` of window_s."""
        return self.span_s >= share * self.window_s

    def snapshot(self) -> tuple[int, int, np.ndarray, np.ndarray, float]:
        """
        Return the window's content.

        (first stamp ns, last stamp ns, positions (T, J, D), visibilities (T, J), frames per
        second); the window must hold at least two skeletons.
        """
        frames = list(self._frames)
        positions, visibility = stack([s for _, s in frames])
        span = (frames[-1][0] - frames[0][0]) / NS
        return frames[0][0], frames[-1][0], positions, visibility, (len(frames) - 1) / span


@dataclass
class Recording:
    """
    Skeletons of ``duration`` seconds of stream, from the first image after it starts.

    ``done`` is set when the duration has passed, or when the recording is aborted (then
    ``failure`` says why).
    """

    label: str
    duration: float
    stamps: list[int] = field(default_factory=list)
    skeletons: list[Skeleton] = field(default_factory=list)
    images: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    failure: str = ''
    last_image: float = field(default_factory=time.monotonic)  # when an image last came
    _start: int | None = None
    _newest: int | None = None

    def add(self, stamp_ns: int, skeleton: Skeleton | None) -> None:
        """Feed one image's result; set ``done`` once ``duration`` seconds of images passed."""
        if self.done.is_set():
            return
        self.last_image = time.monotonic()
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
        self.images += 1
        if skeleton is not None:
            self.stamps.append(stamp_ns)
            self.skeletons.append(skeleton)

    def abort(self, reason: str) -> None:
        """End the recording without a template; ``failure`` says why."""
        if not self.done.is_set():
            self.failure = reason
            self.done.set()

    @property
    def fps(self) -> float:
        """Return the frame rate of the recorded skeletons (0 with fewer than two)."""
        span = (self.stamps[-1] - self.stamps[0]) / NS if len(self.stamps) > 1 else 0.0
        return (len(self.stamps) - 1) / span if span > 0 else 0.0
