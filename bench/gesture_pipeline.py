"""
The gesture pipeline's speed on these 2 cores, in one run.

1. Pose: MediaPipe Pose (video mode, as in the node) on the demo clip letterboxed to 640x480,
   milliseconds per frame and frames per second.
2. DTW: classification latency against 10, 100 and 1000 templates of 60 frames (2 s at 30 fps).
   Templates and queries are windows of the Bandai-Namco motion capture filmed from in front as
   in the evaluation (``gesture.evaluate.filmed``), turned into the classifier's feature
   sequences (30 samples at 15 Hz); every row finds the nearest template of each of the 15 style
   labels, which is what the classifier needs from DTW. Rows:
     - tslearn, every template: ``cdist_dtw`` of the query against all templates (Sakoe-Chiba
       band);
     - tslearn + LB_Keogh (ours): ``TemplateIndex.nearest``, exact distances in bound order,
       skipping templates whose bound exceeds their label's best so far (same answers, checked);
     - dtaidistance (C), every template: the reference C implementation, same band (unpacked from
       its wheel into --cache when not installed; the row is skipped if that fails);
     - tslearn, every template, at 30 Hz: the features interpolated to 30 Hz (band doubled), to
       show what sampling the features at 15 Hz saves;
     - classify() (ours): the whole GestureClassifier.classify call: features, DTW, regression.
   Times are medians over the queries, after a warm-up. Target: 1000 templates in <= 20 ms.
3. Node: the installed gesture_emotion_node in its own process, with --node-templates of those
   windows as its templates, fed MediaPipe's skeletons of the demo clip at 30 per second
   (SkeletonArray over DDS, as body_pose publishes them) from this process: the rate at which it
   processes skeleton messages and its classification time per window (its diagnostics), and the
   gesture_emotion messages (rate; latency from the newest skeleton's stamp to receipt).
   Target: it keeps up with a 30 fps camera.

    python bench/gesture_pipeline.py --data DIR

(DIR holds bandai_motion/bandai_ds1_bvh.tar.xz.)
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path
import subprocess
import sys
import tempfile
import threading
import time
from types import ModuleType
import zipfile

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from emorec_ros.gesture.bandai import read_clips
from emorec_ros.gesture.classify import DTW_RADIUS, GestureClassifier, STRIDE_S, WINDOW_S
from emorec_ros.gesture.dtw import dtw_distances, TemplateIndex, warm_up
from emorec_ros.gesture.evaluate import filmed
from emorec_ros.gesture.features import cut_windows, FEATURE_RATE_HZ, resample, window_features
from emorec_ros.gesture.pose import PoseEstimator
from emorec_ros.gesture.skeleton import Skeleton
from emorec_ros.gesture.store import TemplateStore
from emorec_ros.gesture.template import Template
from emorec_ros.msg import GestureEmotion, SkeletonArray
from emorec_ros.nodes.skeleton_msgs import skeleton_array
import numpy as np
import rclpy
from rclpy.qos import QoSProfile
from std_msgs.msg import Header

sys.path.insert(0, str(Path(__file__).parent))  # the project's env runs Python with a safe path
from node_bench import ImageBench, letterbox, spinning, start_node, stop_node  # noqa: E402, I100

DTAIDISTANCE_VERSION = '2.5.1'
SIZES = (10, 100, 1000)
CLIP = Path(__file__).resolve().parents[1] / 'media' / 'WolfgangLanger_Pexels.mp4'
CAMERA_HZ = 30.0


def dtaidistance(cache: Path) -> tuple[ModuleType | None, str]:
    """dtaidistance.dtw_ndim (installed, or unpacked from its wheel into ``cache``), and a note."""
    try:
        return importlib.import_module('dtaidistance.dtw_ndim'), 'dtaidistance (installed)'
    except ImportError:
        pass
    site = cache / f'dtaidistance-{DTAIDISTANCE_VERSION}'
    if not (site / 'dtaidistance').is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        download = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q',
                                   '-d', str(cache), f'dtaidistance=={DTAIDISTANCE_VERSION}'],
                                  capture_output=True, text=True)
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


def clip_frames() -> list[np.ndarray]:
    """Read the demo clip's frames, letterboxed to 640x480."""
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(letterbox(frame))
    capture.release()
    if not frames:
        raise SystemExit(f'error: cannot read {CLIP}')
    return frames


def pose_speed(frames: list[np.ndarray]) -> tuple[float, float, list[Skeleton | None]]:
    """
    Time PoseEstimator in video mode over ``frames``, after 10 frames of warm-up.

    Returns the median and p95 milliseconds per frame, and the skeleton of each frame (None
    where it found nobody).
    """
    estimator = PoseEstimator(video=True)
    for frame in frames[:10]:
        estimator.estimate(frame)
    times, skeletons = [], []
    for frame in frames:
        start = time.perf_counter()
        skeletons.append(estimator.estimate(frame))
        times.append(time.perf_counter() - start)
    estimator.close()
    return 1000 * float(np.median(times)), 1000 * float(np.percentile(times, 95)), skeletons


def bandai_windows(data: Path) -> list[Template]:
    """
    Cut every Bandai-Namco clip, filmed from in front, into windows labelled with its style.

    The windows are WINDOW_S seconds long, every STRIDE_S.
    """
    windows: list[Template] = []
    for clip in read_clips(data):
        whole = filmed(clip, clip.style.replace('-', '_')).template
        windows += [Template.new(whole.label, p, v, whole.fps, whole.source)
                    for p, v in cut_windows(whole.positions, whole.visibility, whole.fps,
                                            WINDOW_S, STRIDE_S)]
    return windows


def dtw_rows(windows: list[Template], queries: int,
             cache: Path) -> list[tuple[int, str, float, str]]:
    """(templates, method, ms per query, note) for each size in SIZES."""
    features = [window_features(w.positions, w.visibility, w.fps) for w in windows]
    labels = sorted({w.label for w in windows})
    classes = np.array([labels.index(w.label) for w in windows])
    at_30_hz = [resample(x.sequence, FEATURE_RATE_HZ, 30.0) for x in features]
    dtai, dtai_note = dtaidistance(cache)
    order = np.random.default_rng(0).permutation(len(windows))
    query_ids, pool = order[:queries], order[queries:]
    n, f = features[0].sequence.shape
    print(f'{len(windows)} windows of {windows[0].frames} frames from {len(labels)} styles; '
          f'features {n} x {f} at {FEATURE_RATE_HZ:g} Hz, band radius {DTW_RADIUS}; '
          f'{queries} queries; {dtai_note}', flush=True)

    rows = []
    for size in SIZES:
        chosen = pool[:size]
        sequences = np.stack([features[i].sequence for i in chosen])
        index = TemplateIndex(list(sequences), classes[chosen], len(labels), DTW_RADIUS)
        query_sequences = [features[i].sequence for i in query_ids]

        def per_label_min(distances: np.ndarray) -> np.ndarray:
            return np.array([distances[classes[chosen] == c].min(initial=np.inf)
                             for c in range(len(labels))])

        plain = [per_label_min(dtw_distances(q, sequences, DTW_RADIUS)) for q in query_sequences]
        pruned = [index.nearest(q) for q in query_sequences]
        assert all(np.allclose(p.distances[:, 0], e) for p, e in zip(pruned, plain)), (
            'pruned search disagrees'
        )
        share = np.mean([p.computed for p in pruned]) / size
        rows.append((size, 'tslearn, every template',
                     median_ms(lambda q: dtw_distances(q, sequences, DTW_RADIUS), query_sequences),
                     ''))
        rows.append((size, 'tslearn + LB_Keogh (ours)', median_ms(index.nearest, query_sequences),
                     f'{100 * share:.0f}% of DTWs computed'))
        if dtai is not None:
            def dtai_row(q: np.ndarray) -> np.ndarray:
                matrix = dtai.distance_matrix_fast([q] + list(sequences), window=DTW_RADIUS + 1,
                                                   block=((0, 1), (1, size + 1)), parallel=False)
                return matrix[0, 1:]
            difference = max(np.abs(dtai_row(q) - dtw_distances(q, sequences, DTW_RADIUS)).max()
                             for q in query_sequences[:3])
            rows.append((size, 'dtaidistance (C), every template',
                         median_ms(dtai_row, query_sequences),
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
                               [windows[i] for i in query_ids]),
                     f'{classifier.method}; fit {fit_s:.1f} s'))
    if dtai is None:
        print(f'dtaidistance row skipped: {dtai_note}')
    return rows


class DiagnosticsWatch:
    """Every diagnostics status of one node, with when it arrived (time.monotonic())."""

    def __init__(self, node, status_name: str) -> None:
        self.name, self._lock = status_name, threading.Lock()
        self.history: list[tuple[float, dict[str, str]]] = []
        node.create_subscription(
            DiagnosticArray, '/diagnostics', self._on_diagnostics, QoSProfile(depth=50)
        )

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == self.name:
                with self._lock:
                    self.history.append(
                        (time.monotonic(), {v.key: v.value for v in status.values})
                    )

    def between(self, start: float, end: float) -> list[tuple[float, dict[str, str]]]:
        """Return (arrival, values) of the statuses that arrived between two monotonic times."""
        with self._lock:
            return [(t, values) for t, values in self.history if start <= t <= end]


def node_speed(
    skeletons: list[Skeleton | None], templates: list[Template], seconds: float, log: Path
) -> dict | None:
    """Measure the gesture node with these templates, fed ``skeletons`` in a loop at CAMERA_HZ."""
    images = [skeleton_array(Header(), [('person1', s)] if s is not None else [])
              for s in skeletons]
    bench_node = ImageBench('gesture_pipeline_bench', GestureEmotion, 'gesture_emotion',
                            SkeletonArray, 'skeletons', QoSProfile(depth=100))
    with tempfile.TemporaryDirectory() as folder, spinning(bench_node) as bench:
        store = TemplateStore(folder)
        for template in templates:
            store.save(template)
        diagnostics = DiagnosticsWatch(bench, 'emorec_ros: /gesture_emotion')
        node = start_node(
            'gesture_emotion_node', {'template_dir': folder, 'diagnostics_stale_s': 60.0}, log
        )
        try:
            # Pose start-up, DTW compilation, fit on the templates.
            deadline = time.monotonic() + 300
            while 'gesture templates from' not in log.read_text():
                if node.poll() is not None or time.monotonic() > deadline:
                    print(f'  node did not start:\n{log.read_text()[-1000:]}')
                    return None
                time.sleep(0.5)
            bench.run(lambda i: images[i % len(images)], CAMERA_HZ, 4.0)  # the window fills
            start = time.monotonic()
            results, sent = bench.run(lambda i: images[i % len(images)], CAMERA_HZ, seconds)
            statuses = diagnostics.between(start, start + seconds)  # about one a second
            if len(statuses) < 2 or not results:
                print(f'  too little came back: {len(statuses)} diagnostics, '
                      f'{len(results)} gesture_emotion')
                return None
            (first_t, first), (last_t, last) = statuses[0], statuses[-1]
            key = 'skeleton messages processed'
            processed = int(last[key]) - int(first[key])
            latency = 1000 * np.array([r[1] for r in results])
            return {
                'offered': sent / seconds,
                'processed': processed / (last_t - first_t),
                'classify_p50': float(last['processing p50 (ms)']),
                'classify_p95': float(last['processing p95 (ms)']),
                'messages': len(results) / seconds,
                'labels': len(results[-1][2].labels),
                'latency_p50': float(np.percentile(latency, 50)),
                'latency_p95': float(np.percentile(latency, 95)),
            }
        finally:
            stop_node(node)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--data', type=Path, required=True, help='folder with bandai_motion/bandai_ds1_bvh.tar.xz'
    )
    parser.add_argument('--cache', type=Path, default=Path('work/bench'),
                        help='where dtaidistance is unpacked and the node log is written')
    parser.add_argument(
        '--queries', type=int, default=20, help='query windows per size (default: %(default)s)'
    )
    parser.add_argument('--node-templates', type=int, default=1000,
                        help='templates the node classifies against (default: %(default)s)')
    parser.add_argument(
        '--seconds', type=float, default=15.0, help='seconds of 30 fps input to the node'
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    frames = clip_frames()
    print(f'pose on {len(frames)} frames of {CLIP.name}, letterboxed to 640x480 ...', flush=True)
    pose_p50, pose_p95, skeletons = pose_speed(frames)
    found = sum(s is not None for s in skeletons)
    warm_up()
    windows = bandai_windows(args.data / 'bandai_motion')
    rows = dtw_rows(windows, args.queries, args.cache)
    chosen = np.random.default_rng(1).permutation(len(windows))[:args.node_templates]
    print(f'gesture_emotion_node with {len(chosen)} templates, {CAMERA_HZ:g} fps for '
          f'{args.seconds:g} s ...', flush=True)
    rclpy.init()
    node = node_speed(skeletons, [windows[i] for i in chosen], args.seconds,
                      args.cache / 'gesture_emotion_node.log')

    print(f'\n1. pose (MediaPipe Pose, video mode, 640x480): median {pose_p50:.1f} ms = '
          f'{1000 / pose_p50:.1f} fps, p95 {pose_p95:.1f} ms; '
          f'person found in {found}/{len(frames)} frames')
    print(f'\n2. DTW classification\n{"templates":>9}  {"method":<36} {"ms/query":>9}  notes')
    for size, method, ms, note in rows:
        print(f'{size:>9}  {method:<36} {ms:9.2f}  {note}')
    print('   target: 1000 templates in <= 20 ms')
    print(f'\n3. gesture_emotion_node, {len(chosen)} templates, {CAMERA_HZ:g} skeleton messages '
          'per second over DDS')
    if node is None:
        print('   no result: the node did not start (see above)')
    else:
        print(f'   skeleton messages processed: {node["processed"]:.1f} per second of '
              f'{node["offered"]:.1f} offered (by its diagnostics, once a second); '
              f'classification per window p50 {node["classify_p50"]:.1f} ms, '
              f'p95 {node["classify_p95"]:.1f} ms')
        print(f'   gesture_emotion: {node["messages"]:.1f} messages/s over {node["labels"]} '
              f'labels, latency from the newest skeleton p50 {node["latency_p50"]:.0f} ms, '
              f'p95 {node["latency_p95"]:.0f} ms')
    print('   target: keeps up with 30 fps')
    print("peers: the seeds' DTW + logistic-regression notebook took about 2 s per clip "
          '(documented, not measured); dtaidistance above is the reference C DTW')
    return 0


if __name__ == '__main__':
    sys.exit(main())
