"""
Dynamic time warping between feature sequences.

tslearn's DTW in a Sakoe-Chiba band, and a search for the nearest templates of each class that
skips templates by their LB_Keogh bound.

Distances are tslearn's: the square root of the summed squared Euclidean distances along the
best path, in feature units. The band radius is in samples: sample i of one sequence may match
samples i - radius .. i + radius of the other.
"""
from __future__ import annotations

from dataclasses import dataclass
import sys

from numba.core.registry import CPUDispatcher
import numpy as np
from tslearn.backend import instantiate_backend
from tslearn.metrics import cdist_dtw, dtw_accumulated_matrix, sakoe_chiba_mask

#: tslearn's NumPy backend, made once: making one per call (be='numpy') costs as much as a DTW.
_NUMPY = instantiate_backend('numpy')


def _cache_compiled_dtw() -> None:
    """
    Keep tslearn's numba-compiled functions in numba's on-disk cache.

    tslearn does not ask numba to cache them, so every process compiled them again (about 8 s
    of CPU here). Cached, a later process loads them in about 2 s. Where no cache folder is
    writable, numba refuses and the functions are compiled as before.
    """
    for name, module in list(sys.modules.items()):
        if name.startswith('tslearn.'):
            for value in list(vars(module).values()):
                if isinstance(value, CPUDispatcher) and not value.signatures:
                    try:
                        value.enable_caching()
                    except RuntimeError:  # no cache locator for this file
                        pass


_cache_compiled_dtw()


def warm_up() -> None:
    """
    Compile the DTW functions used here for float64 sequences.

    tslearn uses numba: 10-15 s the first time in a process. Call it at start-up, so that the
    first classification is not that slow.
    """
    sequences = [np.zeros((4, 2)), np.ones((4, 2))]
    TemplateIndex(sequences, np.array([0, 1]), 2, radius=1).nearest(sequences[0])
    dtw_distances(sequences[0], sequences, radius=1)


def dtw_distances(
    query: np.ndarray, sequences: np.ndarray | list[np.ndarray], radius: int
) -> np.ndarray:
    """
    Return the DTW distances (N,) from a query (n, F) to N sequences (n_i, F).

    The sequences are an (N, n', F) array or a list. The band is a Sakoe-Chiba band of
    ``radius`` samples (for sequences of unequal length tslearn widens the band to keep the
    corners reachable).
    """
    if len(sequences) == 0:
        return np.zeros(0)
    # An explicit backend: tslearn otherwise picks one from str() of the arrays, which formats
    # them.
    return cdist_dtw(query[None], sequences, global_constraint='sakoe_chiba',
                     sakoe_chiba_radius=radius, be=_NUMPY)[0]


def envelopes(sequences: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the LB_Keogh envelopes of sequences (N, n, F).

    The envelopes are the running minimum and maximum over samples i - radius .. i + radius,
    each (N, n, F).
    """
    n = sequences.shape[1]
    lower, upper = sequences.copy(), sequences.copy()
    for shift in range(1, min(radius, n - 1) + 1):
        for sl_out, sl_in in ((np.s_[:, shift:], np.s_[:, :-shift]),
                              (np.s_[:, :-shift], np.s_[:, shift:])):
            np.minimum(lower[sl_out], sequences[sl_in], out=lower[sl_out])
            np.maximum(upper[sl_out], sequences[sl_in], out=upper[sl_out])
    return lower, upper


def lb_keogh(values: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """
    Return lower bounds (N,) of the banded DTW distance between sequences and envelopes.

    The envelopes are made with the same radius, of the same length; sequences and envelopes
    broadcast to (N, n, F). The bound is how far the values leave the envelopes (multivariate
    LB_Keogh, valid for the squared Euclidean local cost). DTW is symmetric, so a query against
    the templates' envelopes and the templates against the query's envelope both bound it.
    """
    excess = np.maximum(values, lower)  # values clipped to the envelope, then values minus that,
    np.minimum(excess, upper, out=excess)  # in place: a third faster than values - np.clip(...)
    np.subtract(values, excess, out=excess)
    return np.sqrt(np.einsum('nij,nij->n', excess, excess))


#: Relative amount by which the float32 bounds are lowered, so that rounding (float32 keeps 7
#: digits; the bound sums a few thousand squares) cannot lift a bound above the exact distance of
#: a template it would then skip; only near-ties within this margin could be decided differently.
_FLOAT32_MARGIN = 1e-4


@dataclass(frozen=True)
class NearestTemplates:
    """
    The ``k`` nearest allowed templates of each class.

    ``distances`` (C, k) ascending (inf where a class has fewer), ``indices`` (C, k) into the
    templates (-1 there), and how many exact DTW distances the search computed.
    """

    distances: np.ndarray
    indices: np.ndarray
    computed: int


class TemplateIndex:
    """
    Feature sequences of templates with class indices, searched for the nearest ones per class.

    Sequences of the query's length are pruned with LB_Keogh (the bound of the template's
    envelope and of the query's envelope, whichever is tighter; computed in float32, which halves
    its cost, and lowered by _FLOAT32_MARGIN to stay a bound): a class's templates are compared
    exactly in the order of their bounds until the bound reaches the k-th best distance found.
    Sequences of other lengths are always compared exactly. The result is that of an exhaustive
    search (ties aside). Exact distances come from tslearn's DTW accumulated cost matrix with the
    Sakoe-Chiba mask made once per pair of lengths: the same numbers as ``dtw_distances`` with
    less overhead per call than ``tslearn.metrics.dtw``.
    """

    def __init__(
        self, sequences: list[np.ndarray], classes: np.ndarray, n_classes: int, radius: int
    ) -> None:
        if len(sequences) != len(classes):
            raise ValueError(f'{len(sequences)} sequences but {len(classes)} class indices')
        self.sequences = [np.ascontiguousarray(s, dtype=np.float64) for s in sequences]
        self.classes = np.asarray(classes, dtype=int)
        self.n_classes = n_classes
        self.radius = radius
        self._masks: dict[tuple[int, int], np.ndarray] = {}
        lengths = np.array([len(s) for s in sequences])
        self._by_length: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for length in np.unique(lengths):
            members = np.where(lengths == length)[0]
            stacked = np.stack([self.sequences[i] for i in members]).astype(np.float32)
            self._by_length[int(length)] = (members, stacked, *envelopes(stacked, radius))

    def __len__(self) -> int:
        return len(self.sequences)

    def distance(self, query: np.ndarray, i: int) -> float:
        """Return the exact banded DTW distance from ``query`` (n, F) to sequence ``i``."""
        sequence = self.sequences[i]
        key = (len(query), len(sequence))
        if key not in self._masks:
            self._masks[key] = sakoe_chiba_mask(*key, radius=self.radius)
        return float(
            np.sqrt(dtw_accumulated_matrix(query, sequence, self._masks[key], be=_NUMPY)[-1, -1])
        )

    def nearest(self, query: np.ndarray, k: int = 1, allowed: np.ndarray | None = None,
                prune: bool = True) -> NearestTemplates:
        """
        Find the k nearest templates per class to ``query`` (n, F).

        Only templates ``allowed`` (bool (N,), default all) count; ``prune=False`` computes
        every distance (the reference).
        """
        query = np.ascontiguousarray(query, dtype=np.float64)
        allowed = np.ones(len(self), bool) if allowed is None else np.asarray(allowed, bool)
        bound = np.zeros(len(self))
        same = self._by_length.get(len(query))
        if prune and same is not None:
            members, stacked, lower, upper = same
            query32 = query.astype(np.float32)
            query_lower, query_upper = envelopes(query32[None], self.radius)
            bounds = np.maximum(
                lb_keogh(query32, lower, upper), lb_keogh(stacked, query_lower, query_upper)
            )
            bound[members] = bounds * (1 - _FLOAT32_MARGIN)
        distances = np.full((self.n_classes, k), np.inf)
        indices = np.full((self.n_classes, k), -1)
        computed = 0
        for c in range(self.n_classes):
            candidates = np.where(allowed & (self.classes == c))[0]
            for i in candidates[np.argsort(bound[candidates], kind='stable')]:
                if prune and bound[i] >= distances[c, -1]:
                    break
                d = self.distance(query, i)
                computed += 1
                if d < distances[c, -1]:
                    slot = np.searchsorted(distances[c], d, side='right')
                    distances[c, slot + 1:] = distances[c, slot:-1].copy()
                    indices[c, slot + 1:] = indices[c, slot:-1].copy()
                    distances[c, slot], indices[c, slot] = d, i
        return NearestTemplates(distances, indices, computed)
