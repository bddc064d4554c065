"""Rolling processing statistics behind /diagnostics."""
from __future__ import annotations

import math

from emorec_ros.stats import ProcessingStats
import pytest


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_percentiles_and_counts():
    clock = FakeClock()
    stats = ProcessingStats(window=10, clock=clock)
    for i in range(20):                      # 20 frames at 50 Hz; the window keeps the last 10
        clock.now += 0.02
        stats.record(processing_s=0.001 * (i + 1), latency_s=0.010)
    stats.reject()
    clock.now += 0.5
    snap = stats.snapshot()
    assert snap.rate_hz == pytest.approx(50.0)
    assert snap.processing_ms_p50 == pytest.approx(15.5)   # median of 11..20 ms
    assert snap.latency_ms_p95 == pytest.approx(10.0)
    assert (snap.processed, snap.rejected) == (20, 1)
    assert snap.seconds_since_last == pytest.approx(0.5)


def test_empty_stats_say_nothing_happened():
    snap = ProcessingStats().snapshot()
    assert snap.rate_hz == 0.0 and snap.processed == 0
    assert math.isnan(snap.processing_ms_p50) and math.isinf(snap.seconds_since_last)
