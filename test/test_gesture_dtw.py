"""
Tests of DTW, LB_Keogh and the pruned nearest template search.

DTW is checked against a brute-force dynamic programme, LB_Keogh as a lower bound, and the
pruned nearest template search against the exhaustive one.
"""
from __future__ import annotations

from emorec_ros.gesture.dtw import dtw_distances, envelopes, lb_keogh, TemplateIndex, warm_up
import numpy as np
import pytest


@pytest.fixture(scope='module', autouse=True)
def compiled():
    warm_up()  # numba compilation, once for the module


def brute_force_dtw(a: np.ndarray, b: np.ndarray, radius: int) -> float:
    """
    Return the square root of the least summed squared Euclidean distance along a path.

    The paths are monotone, from (0, 0) to (n-1, m-1) with steps (1,0), (0,1), (1,1), staying
    within |i - j| <= radius.
    """
    n, m = len(a), len(b)
    cost = np.full((n + 1, m + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if abs(i - j) <= radius:
                local = float(np.sum((a[i - 1] - b[j - 1]) ** 2))
                cost[i, j] = local + min(cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1])
    return float(np.sqrt(cost[n, m]))


@pytest.mark.parametrize('radius', [0, 1, 3, 20])
def test_dtw_equals_the_brute_force_programme(radius):
    rng = np.random.default_rng(radius)
    for _ in range(5):
        a, b = rng.normal(size=(12, 3)), rng.normal(size=(12, 3))
        expected = brute_force_dtw(a, b, radius)
        assert dtw_distances(a, np.stack([b]), radius)[0] == pytest.approx(expected, rel=1e-12)
        assert TemplateIndex([b], np.array([0]), 1, radius).distance(a, 0) == pytest.approx(
            expected, rel=1e-12
        )


def test_unequal_lengths_without_a_binding_band():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(9, 2)), rng.normal(size=(14, 2))
    expected = brute_force_dtw(a, b, radius=100)
    assert dtw_distances(a, [b], radius=100)[0] == pytest.approx(expected, rel=1e-12)
    assert TemplateIndex([b], np.array([0]), 1, radius=100).distance(a, 0) == pytest.approx(
        expected, rel=1e-12
    )


def test_a_band_of_zero_is_the_euclidean_distance_and_dtw_is_symmetric():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
    assert dtw_distances(a, [b], 0)[0] == pytest.approx(np.linalg.norm(a - b))
    assert dtw_distances(a, [b], 2)[0] == pytest.approx(dtw_distances(b, [a], 2)[0])


def test_envelopes_are_running_minima_and_maxima():
    rng = np.random.default_rng(4)
    sequences = rng.normal(size=(3, 10, 2))
    lower, upper = envelopes(sequences, 2)
    for i in range(10):
        window = sequences[:, max(0, i - 2):i + 3]
        np.testing.assert_array_equal(lower[:, i], window.min(axis=1))
        np.testing.assert_array_equal(upper[:, i], window.max(axis=1))


@pytest.mark.parametrize('radius', [0, 1, 3])
def test_lb_keogh_bounds_dtw_from_below_both_ways(radius):
    rng = np.random.default_rng(10 + radius)
    sequences = np.cumsum(rng.normal(size=(40, 15, 3)), axis=1)
    query = np.cumsum(rng.normal(size=(15, 3)), axis=0)
    exact = dtw_distances(query, sequences, radius)
    lower, upper = envelopes(sequences, radius)
    query_lower, query_upper = envelopes(query[None], radius)
    assert (lb_keogh(query, lower, upper) <= exact + 1e-9).all()
    assert (lb_keogh(sequences, query_lower, query_upper) <= exact + 1e-9).all()
    if radius == 0:
        np.testing.assert_allclose(lb_keogh(query, lower, upper), exact)


def test_pruned_search_finds_what_the_exhaustive_search_finds():
    rng = np.random.default_rng(11)
    # Random walks (smooth, like motion) of 4 classes that drift apart, and a few of another
    # length.
    sequences = [
        np.cumsum(rng.normal(size=(20, 4)), axis=0) + c * 3.0 for c in range(4) for _ in range(30)
    ]
    sequences += [np.cumsum(rng.normal(size=(25, 4)), axis=0) for _ in range(4)]
    classes = np.r_[np.repeat(np.arange(4), 30), [0, 1, 2, 3]]
    index = TemplateIndex(sequences, classes, 4, radius=2)
    allowed = rng.random(len(sequences)) > 0.2
    total_computed = 0
    for q in range(5):
        query = np.cumsum(rng.normal(size=(20, 4)), axis=0) + q
        for k in (1, 3):
            pruned = index.nearest(query, k, allowed)
            exhaustive = index.nearest(query, k, allowed, prune=False)
            np.testing.assert_allclose(pruned.distances, exhaustive.distances, rtol=1e-12)
            np.testing.assert_array_equal(pruned.indices, exhaustive.indices)
            assert exhaustive.computed == allowed.sum()
            total_computed += pruned.computed
            # And the exhaustive search agrees with tslearn's cdist_dtw.
            all_distances = dtw_distances(query, sequences, 2)
            for c in range(4):
                members = np.where(allowed & (classes == c))[0]
                np.testing.assert_allclose(
                    exhaustive.distances[c], np.sort(all_distances[members])[:k], rtol=1e-12
                )
    assert total_computed < 0.6 * 10 * allowed.sum()  # the bound skips a good part of the work


def test_classes_without_allowed_templates_stay_empty():
    sequences = [np.zeros((5, 2)), np.ones((5, 2))]
    result = TemplateIndex(sequences, np.array([0, 1]), 3, radius=1).nearest(
        np.zeros((5, 2)), k=2, allowed=np.array([True, False])
    )
    np.testing.assert_array_equal(result.indices, [[0, -1], [-1, -1], [-1, -1]])
    assert result.distances[0, 0] == 0.0 and np.isinf(result.distances[1:]).all()
