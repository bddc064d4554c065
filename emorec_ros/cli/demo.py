"""The main job: run the emotion graph on a video and show what it found, without a display.

Starts ``video_source`` and ``face_emotion`` (the same nodes ``ros2 launch`` starts, talking over
DDS) with config/emorec.yaml, records what they publish, then prints a timeline of emotions and
writes to ``--out``: an annotated video, a plot of emotion scores over time and a CSV.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from emorec_ros.face.fer2013 import FER_CLASSES
from emorec_ros.image import image_to_bgr
from emorec_ros.msg import FaceEmotionArray
from emorec_ros.nodes.common import StartupError, package_file
from emorec_ros.nodes.face_emotion import FaceEmotionNode
from emorec_ros.nodes.video_source import DEMO_CLIP, VideoSourceNode
from emorec_ros.face.draw import EMOTION_COLOURS


class Recorder(Node):
    """Keeps every FaceEmotionArray and debug image the graph publishes."""

    def __init__(self) -> None:
        super().__init__('emorec_demo_recorder')
        self.results: list[FaceEmotionArray] = []
        self.frames: list[np.ndarray] = []
        self.create_subscription(FaceEmotionArray, 'face_emotions', self.results.append, QoSProfile(depth=100))
        self.create_subscription(Image, 'face_debug_image', lambda m: self.frames.append(image_to_bgr(m)),
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))


def timeline(results: list[FaceEmotionArray], seconds_per_row: float = 1.0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Rows of text, one per ``seconds_per_row``, with the dominant emotion of the main face;
    plus times (s) and scores (frames x labels, NaN where no face) for the plot."""
    t0 = results[0].header.stamp.sec + results[0].header.stamp.nanosec * 1e-9
    times = np.array([r.header.stamp.sec + r.header.stamp.nanosec * 1e-9 - t0 for r in results])
    scores = np.full((len(results), len(FER_CLASSES)), np.nan)
    for i, r in enumerate(results):
        if r.faces:
            face = r.faces[0]
            scores[i] = [face.scores[list(face.labels).index(c)] for c in FER_CLASSES]
    rows = []
    for start in np.arange(0.0, times[-1] + 1e-9, seconds_per_row):
        sel = (times >= start) & (times < start + seconds_per_row)
        seen = sel & ~np.isnan(scores[:, 0])
        if not seen.any():
            rows.append(f'{start:5.1f}-{start + seconds_per_row:5.1f} s  (no face)')
            continue
        mean = scores[seen].mean(axis=0)
        best = int(np.argmax(mean))
        bar = '#' * int(round(20 * mean[best]))
        rows.append(f'{start:5.1f}-{start + seconds_per_row:5.1f} s  {FER_CLASSES[best]:<8} {mean[best]:.2f} {bar:<20} '
                    f'face in {seen.sum()}/{sel.sum()} frames')
    return rows, times, scores


def plot_timeline(times: np.ndarray, scores: np.ndarray, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    for j, label in enumerate(FER_CLASSES):
        b, g, r = EMOTION_COLOURS[label]
        ax.plot(times, scores[:, j], label=label, color=(r / 255, g / 255, b / 255), lw=1.5)
    ax.set_xlabel('time (s)')
    ax.set_ylabel('score (main face)')
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(ncol=7, fontsize=8, loc='upper center')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--video', default='', help=f'video file or image folder (default: the bundled {DEMO_CLIP})')
    parser.add_argument('--out', type=Path, default=Path('out'), help='output folder (default: %(default)s)')
    parser.add_argument('--params', type=Path, default=None, help='parameters file (default: config/emorec.yaml)')
    args = parser.parse_args(argv)
    video = args.video or str(package_file(DEMO_CLIP))
    params = args.params or package_file('config/emorec.yaml')
    args.out.mkdir(parents=True, exist_ok=True)

    rclpy.init(args=['--ros-args', '--params-file', str(params)])
    executor = SingleThreadedExecutor()
    nodes: list[Node] = []
    try:
        recorder = Recorder()
        face = FaceEmotionNode()
        source = VideoSourceNode(parameter_overrides=[Parameter('source', value=video)])
        nodes = [recorder, face, source]
        for node in nodes:
            executor.add_node(node)
        print(f'emorec_ros demo: {video} at {source.rate:.1f} fps -> face_emotion', flush=True)
        while not source.finished:
            executor.spin_once(timeout_sec=0.1)
        drain_until = time.monotonic() + 1.0
        while time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.05)
    except StartupError:
        return 1
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()

    results = recorder.results
    if not results:
        print('error: the face node published nothing', file=sys.stderr)
        return 1
    rows, times, scores = timeline(results)
    print(f'\n{source.published} frames published, {len(results)} processed, '
          f'a face in {int((~np.isnan(scores[:, 0])).sum())}; main face emotion per second:')
    print('\n'.join('  ' + row for row in rows))
    snapshot = face.stats.snapshot()
    print(f'face_emotion processing per frame: p50 {snapshot.processing_ms_p50:.1f} ms, '
          f'p95 {snapshot.processing_ms_p95:.1f} ms')

    video_path, plot_path, csv_path = (args.out / 'face_emotion.mp4', args.out / 'face_emotion_timeline.png',
                                       args.out / 'face_emotion.csv')
    if recorder.frames:
        h, w = recorder.frames[0].shape[:2]
        writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*'mp4v'), source.rate, (w, h))
        for frame in recorder.frames:
            writer.write(frame)
        writer.release()
    plot_timeline(times, scores, plot_path, f'face emotion over time: {Path(video).name}')
    with open(csv_path, 'w', newline='') as f:
        writer_csv = csv.writer(f)
        writer_csv.writerow(['time_s', 'faces', 'main_face_id', 'main_face_emotion', *FER_CLASSES])
        for t, r, s in zip(times, results, scores):
            main_face = r.faces[0] if r.faces else None
            writer_csv.writerow([f'{t:.3f}', len(r.faces), main_face.id if main_face else '',
                                 main_face.emotion if main_face else '', *[f'{v:.4f}' for v in s]])
    print(f'wrote {video_path} ({len(recorder.frames)} frames), {plot_path}, {csv_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
