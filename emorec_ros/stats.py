"""Rolling processing statistics for diagnostics (no ROS)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import time

import numpy as np


@dataclass(frozen=True)
class StatsSnapshot:
    """Rates in Hz and times in milliseconds over the recent window."""

    rate_hz: float
    processing_ms_p50: float
    processing_ms_p95: float
    latency_ms_p50: float
    latency_ms_p95: float
    processed: int
    rejected: int
    lost: int
    seconds_since_last: float


class ProcessingStats:
    """
    Rolling statistics of the last ``window`` processed frames.

    For each frame it keeps when it finished, how long it took and how old its image was by
    then (``latency``: image stamp to result, seconds).
    """

    def __init__(self, window: int = 100, clock=time.monotonic) -> None:
        self._clock = clock
        self._done: deque[float] = deque(maxlen=window)
        self._processing: deque[float] = deque(maxlen=window)
        self._latency: deque[float] = deque(maxlen=window)
        self.processed = 0
        self.rejected = 0
        self.lost = 0  # inputs the transport reported lost on the way (total)

    def record(self, processing_s: float, latency_s: float) -> None:
        self._done.append(self._clock())
        self._processing.append(processing_s)
        self._latency.append(latency_s)
        self.processed += 1

    def reject(self) -> None:
        """Count an input that could not be processed (bad image, ...)."""
        self.rejected += 1

    def snapshot(self) -> StatsSnapshot:
        now = self._clock()
        span = self._done[-1] - self._done[0] if len(self._done) > 1 else 0.0
        rate = (len(self._done) - 1) / span if span > 0 else 0.0
        proc = 1000 * np.asarray(self._processing or [np.nan])
        lat = 1000 * np.asarray(self._latency or [np.nan])
        return StatsSnapshot(
            rate_hz=rate,
            processing_ms_p50=float(np.percentile(proc, 50)),
            processing_ms_p95=float(np.percentile(proc, 95)),
            latency_ms_p50=float(np.percentile(lat, 50)),
            latency_ms_p95=float(np.percentile(lat, 95)),
            processed=self.processed,
            rejected=self.rejected,
            lost=self.lost,
            seconds_since_last=now - self._done[-1] if self._done else float('inf'),
        )
