"""The recent skeletons of the person in view, and recordings of them (no ROS).

Times are seconds on the images' clock (their header stamps), so a window and a recording
follow the stream, whatever the node's load.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from emorec_ros.gesture.skeleton import Skeleton, stack


class PersonWindow:
    """A rolling window of one person's skeletons, ``window_s`` seconds long.

    The person keeps an id ("person1", "person2", ...) while seen; after ``lost_s`` seconds without
    a skeleton, the window empties and the next person seen gets a new id.
    """

    def __init__(self, window_s: float, lost_s: float) -> None:
        if window_s <= 0 or lost_s <= 0:
            raise ValueError(f'window_s ({window_s}) and lost_s ({lost_s}) must be > 0')
        self.window_s, self.lost_s = window_s, lost_s
        self._frames: deque[tuple[float, Skeleton]] = deque()
        self._people = 0
        self.person_id = ''
        self._last_seen = -np.inf

    def add(self, stamp: float, skeleton: Skeleton | None) -> None:
        """One image's result: a skeleton, or None when nobody was seen."""
        if stamp - self._last_seen > self.lost_s:
            self._frames.clear()
            self.person_id = ''
        if skeleton is None:
            return
        if not self.person_id:
            self._people += 1
            self.person_id = f'person{self._people}'
        self._last_seen = stamp
        self._frames.append((stamp, skeleton))
        while self._frames and stamp - self._frames[0][0] > self.window_s:
            self._frames.popleft()

    @property
    def span_s(self) -> float:
        """Seconds from the oldest to the newest skeleton in the window."""
        return self._frames[-1][0] - self._frames[0][0] if len(self._frames) > 1 else 0.0

    def is_full(self, share: float = 0.9) -> bool:
        """Whether the window covers at least ``share`` of window_s."""
        return self.span_s >= share * self.window_s

    def snapshot(self) -> tuple[float, float, np.ndarray, np.ndarray, float]:
        """(first stamp, last stamp, positions (T, J, D), visibilities (T, J), frames per second)."""
        frames = list(self._frames)
        positions, visibility = stack([s for _, s in frames])
        span = frames[-1][0] - frames[0][0]
        return frames[0][0], frames[-1][0], positions, visibility, (len(frames) - 1) / span


@dataclass
class Recording:
    """Skeletons of ``duration`` seconds of stream, from the first image after it starts."""

    label: str
    duration: float
    stamps: list[float] = field(default_factory=list)
    skeletons: list[Skeleton] = field(default_factory=list)
    images: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    _start: float | None = None

    def add(self, stamp: float, skeleton: Skeleton | None) -> None:
        """Feed one image's result; sets ``done`` once ``duration`` seconds of images have passed."""
        if self.done.is_set():
            return
        if self._start is None:
            self._start = stamp
        if stamp - self._start >= self.duration:
            self.done.set()
            return
        self.images += 1
        if skeleton is not None:
            self.stamps.append(stamp)
            self.skeletons.append(skeleton)

    @property
    def fps(self) -> float:
        """Frame rate of the recorded skeletons (0 with fewer than two)."""
        span = self.stamps[-1] - self.stamps[0] if len(self.stamps) > 1 else 0.0
        return (len(self.stamps) - 1) / span if span > 0 else 0.0
