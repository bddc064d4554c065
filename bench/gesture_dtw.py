"""DTW classification latency against 10, 100 and 1000 templates of 60 frames (2 s at 30 fps).

Templates and queries are windows of the Bandai-Namco motion capture filmed by the front camera
(``emorec_ros.gesture.camera``), turned into the classifier's feature sequences (30 samples at
15 Hz, 65 features); every row finds the nearest template of each of the 15 style labels, which is
what the classifier needs from DTW. Rows:
  - tslearn, every template: ``cdist_dtw`` of the query against all templates (Sakoe-Chiba band);
  - tslearn + LB_Keogh (ours): ``TemplateIndex.nearest``, exact distances in bound order, skipping
    templates whose bound exceeds their label's best so far (same answers, checked here);
  - dtaidistance (C), every template: the reference C implementation, same band (installed into
    --cache with ``pip download --no-deps`` when missing; the row is skipped if that fails);
  - tslearn, every template, at 30 Hz: the same features interpolated to 30 Hz (59 samples, band
    radius doubled), to show what sampling the features at 15 Hz saves;
  - classify() (ours): the whole GestureClassifier.classify call: features, pruned DTW, regression.
Times are medians over the queries, after a warm-up; target: 1000 templates in 20 ms.

    python bench/gesture_dtw.py --data DIR   (DIR holds bandai_ds1_bvh.tar.xz)
"""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np

from emorec_ros.gesture.bandai import read_clips
from emorec_ros.gesture.camera import front_view
from emorec_ros.gesture.classify import DTW_RADIUS, STRIDE_S, WINDOW_S, GestureClassifier
from emorec_ros.gesture.dtw import TemplateIndex, dtw_distances, warm_up
from emorec_ros.gesture.features import FEATURE_RATE_HZ, cut_windows, resample, window_features
from emorec_ros.gesture.template import Template

DTAIDISTANCE_VERSION = '2.5.1'
SIZES = (10, 100, 1000)


def dtaidistance(cache: Path) -> tuple[ModuleType | None, str]:
    """dtaidistance.dtw_ndim (installed, or unpacked from its wheel into ``cache``), and a note."""
    try:
        return importlib.import_module('dtaidistance.dtw_ndim'), 'dtaidistance (installed)'
    except ImportError:
        pass
    site = cache / f'dtaidistance-{DTAIDISTANCE_VERSION}'
    if not (site / 'dtaidistance').is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        download = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', '-d', str(cache),
                                   f'dtaidistance=={DTAIDISTANCE_VERSION}'], capture_output=True, text=True)
        wheels = sorted(cache.glob(f'dtaidistance-{DTAIDISTANCE_VERSION}-*.whl'))
        if download.returncode != 0 or not wheels:
            return None, (f'dtaidistance {DTAIDISTANCE_VERSION} could not be downloaded: '
                          f'{download.stderr.strip()[-200:]}')
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extractall(site)
    sys.path.insert(0, str(site))
    try:
        module = importlib.import_module('dtaidistance.dtw_ndim')
        return module, f'dtaidistance {DTAIDISTANCE_VERSION} (from its wheel)'
    except ImportError as e:
        return None, f'dtaidistance {DTAIDISTANCE_VERSION} does not import: {e}'


def median_ms(function, queries: list) -> float:
    function(queries[0])  # warm-up
    times = []
    for query in queries:
        start = time.perf_counter()
        function(query)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, required=True, help='folder with bandai_ds1_bvh.tar.xz')
    parser.add_argument('--cache', type=Path, default=Path('work/bench'), help='where dtaidistance is unpacked')
    parser.add_argument('--queries', type=int, default=20, help='query windows per size (default: %(default)s)')
    args = parser.parse_args()

    warm_up()
    windows: list[Template] = []
    for clip in read_clips(args.data):
        pixels, visible = front_view(clip.world)
        label = clip.style.replace('-', '_')
        windows += [Template.new(label, p, v, clip.fps, clip.name)
                    for p, v in cut_windows(pixels, visible, clip.fps, WINDOW_S, STRIDE_S)]
    features = [window_features(w.positions, w.visibility, w.fps) for w in windows]
    labels = sorted({w.label for w in windows})
    classes = np.array([labels.index(w.label) for w in windows])
    at_30_hz = [resample(x.sequence, FEATURE_RATE_HZ, 30.0) for x in features]
    dtai, dtai_note = dtaidistance(args.cache)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(windows))
    query_ids, pool = order[:args.queries], order[args.queries:]
    n, f = features[0].sequence.shape
    print(f'{len(windows)} windows of {windows[0].frames} frames from {len(labels)} styles; features {n} x {f} '
          f'at {FEATURE_RATE_HZ:g} Hz, band radius {DTW_RADIUS}; {args.queries} queries; {dtai_note}')

    rows = []
    for size in SIZES:
        chosen = pool[:size]
        sequences = np.stack([features[i].sequence for i in chosen])
        index = TemplateIndex(list(sequences), classes[chosen], len(labels), DTW_RADIUS)
        queries = [features[i].sequence for i in query_ids]

        def per_label_min(distances: np.ndarray) -> np.ndarray:
            return np.array([distances[classes[chosen] == c].min(initial=np.inf) for c in range(len(labels))])

        plain = [per_label_min(dtw_distances(q, sequences, DTW_RADIUS)) for q in queries]
        pruned = [index.nearest(q) for q in queries]
        assert all(np.allclose(p.distances[:, 0], e) for p, e in zip(pruned, plain)), 'pruned search disagrees'
        share = np.mean([p.computed for p in pruned]) / size
        rows.append((size, 'tslearn, every template', median_ms(lambda q: dtw_distances(q, sequences, DTW_RADIUS),
                                                                queries), ''))
        rows.append((size, 'tslearn + LB_Keogh (ours)', median_ms(index.nearest, queries),
                     f'{100 * share:.0f}% of DTWs computed'))
        if dtai is not None:
            def dtai_row(q: np.ndarray) -> np.ndarray:
                matrix = dtai.distance_matrix_fast([q] + list(sequences), window=DTW_RADIUS + 1,
                                                   block=((0, 1), (1, size + 1)), parallel=False)
                return matrix[0, 1:]
            difference = max(np.abs(dtai_row(q) - dtw_distances(q, sequences, DTW_RADIUS)).max() for q in queries[:3])
            rows.append((size, 'dtaidistance (C), every template', median_ms(dtai_row, queries),
                         f'max |difference| to tslearn {difference:.1e}'))
        templates_30 = np.stack([at_30_hz[i] for i in chosen])
        rows.append((size, 'tslearn, every template, at 30 Hz',
                     median_ms(lambda q: dtw_distances(q, templates_30, 2 * DTW_RADIUS),
                               [at_30_hz[i] for i in query_ids]),
                     f'{len(at_30_hz[0])} samples'))
        classifier = GestureClassifier()
        start = time.perf_counter()
        classifier.fit([windows[i] for i in chosen])
        fit_s = time.perf_counter() - start
        rows.append((size, 'classify() (ours)',
                     median_ms(lambda w: classifier.classify(w.positions, w.visibility, w.fps),
                               [windows[i] for i in query_ids]), f'{classifier.method}; fit {fit_s:.1f} s'))

    print(f'\n{"templates":>9}  {"method":<44} {"ms/query":>9}  notes')
    for size, method, ms, note in rows:
        print(f'{size:>9}  {method:<44} {ms:9.2f}  {note}')
    if dtai is None:
        print(f'dtaidistance row skipped: {dtai_note}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
