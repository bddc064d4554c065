"""
The main job: run the emotion graph on a video and show what it found, without a display.

Starts ``video_source``, ``face_emotion``, ``body_pose`` and ``gesture_emotion`` (the nodes
``ros2 launch`` starts, talking over DDS) with config/emorec.yaml. On the bundled clip it first
teaches the gesture node as an operator would: it plays the crying part and calls
``record_template`` for 3 seconds with label "sad", then the laughing part with "happy". Then it
plays the whole clip, records what the nodes publish, prints a timeline (face emotion and
body-language emotion per second) and writes to ``--out``: an annotated video, a plot of the
scores over time and a CSV.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path
import shutil
import sys
import threading
import time

import cv2
from emorec_ros.face.draw import EMOTION_COLOURS
from emorec_ros.image import image_to_bgr
from emorec_ros.msg import FaceEmotionArray, GestureEmotion
from emorec_ros.nodes.body_pose import BodyPoseNode
from emorec_ros.nodes.common import package_file
from emorec_ros.nodes.face_emotion import FaceEmotionNode
from emorec_ros.nodes.gesture_emotion import GestureEmotionNode
from emorec_ros.nodes.video_source import DEMO_CLIP, VideoSourceNode
from emorec_ros.srv import RecordTemplate
import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

#: Parts of the bundled clip an operator would record gesture templates from: (label, frames).
TEACHING = (('sad', (60, 230)), ('happy', (280, 472)))
#: Seconds recorded of each part: one short recording per label, as an operator would make.
TEACH_SECONDS = 3.0


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class Recorder(Node):
    """Keeps what the graph publishes, and calls the gesture node's services."""

    def __init__(self) -> None:
        super().__init__('emorec_demo_recorder')
        self.lock = threading.Lock()
        self.faces: list[FaceEmotionArray] = []
        self.gestures: list[GestureEmotion] = []
        self.frames: list[tuple[float, np.ndarray]] = []
        self.recording = False
        self.create_subscription(
            FaceEmotionArray, 'face_emotions', self._keep(self.faces), QoSProfile(depth=100)
        )
        self.create_subscription(
            GestureEmotion, 'gesture_emotion', self._keep(self.gestures), QoSProfile(depth=100)
        )
        self.create_subscription(Image, 'face_emotion/face_debug_image', self._on_frame,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.record_client = self.create_client(RecordTemplate, '/gesture_emotion/record_template')

    def _keep(self, store: list):
        def keep(msg) -> None:
            if self.recording:
                with self.lock:
                    store.append(msg)
        return keep

    def _on_frame(self, msg: Image) -> None:
        if self.recording:
            frame = (_seconds(msg.header.stamp), image_to_bgr(msg))
            with self.lock:
                self.frames.append(frame)

    def record_template(self, label: str, seconds: float) -> RecordTemplate.Response:
        if not self.record_client.wait_for_service(timeout_sec=30.0):
            raise RuntimeError('the gesture node offers no record_template service')
        future = self.record_client.call_async(
            RecordTemplate.Request(label=label, duration=seconds)
        )
        deadline = time.monotonic() + seconds + 30.0
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not future.done():
            raise RuntimeError(f'record_template "{label}" did not answer')
        return future.result()


def play(
    executor: MultiThreadedExecutor,
    video: str,
    frames: tuple[int, int] = (0, -1),
    loop: bool = False,
    until=None,
) -> VideoSourceNode:
    """Run a video_source on ``frames`` of ``video`` until it ends or ``until()`` holds."""
    source = VideoSourceNode(parameter_overrides=[
        Parameter('source', value=video), Parameter('start_frame', value=frames[0]),
        Parameter('end_frame', value=frames[1]), Parameter('loop', value=loop)])
    executor.add_node(source)
    if not source.start():
        raise RuntimeError(f'video_source could not open {video}')
    try:
        while not source.finished and not (until and until()):
            time.sleep(0.05)
    finally:
        source.stop()
        executor.remove_node(source)
        source.destroy_node()
    return source


def face_labels(results: list[FaceEmotionArray]) -> tuple[str, ...]:
    """Return the face model's labels, as its results name them (none if no face was seen)."""
    return next((tuple(r.faces[0].labels) for r in results if r.faces), ())


def main_face_scores(results: list[FaceEmotionArray], labels: tuple[str, ...]) -> np.ndarray:
    """Scores (frames x labels) of each result's main face, NaN where there is none."""
    scores = np.full((len(results), len(labels)), np.nan)
    for i, r in enumerate(results):
        if r.faces:
            face = r.faces[0]
            scores[i] = [face.scores[list(face.labels).index(c)] for c in labels]
    return scores


def gesture_at(gestures: list[GestureEmotion], t: float) -> GestureEmotion | None:
    """Return the newest gesture message whose window ends at or before time ``t``."""
    ends = [_seconds(g.header.stamp) for g in gestures]
    i = int(np.searchsorted(ends, t, side='right')) - 1
    return gestures[i] if i >= 0 else None


def timeline_rows(
    t0: float, times: np.ndarray, scores: np.ndarray, labels: tuple[str, ...],
    gestures: list[GestureEmotion],
) -> list[str]:
    """One text row per second of video: the main face's mean emotion and the body language."""
    rows = []
    for start in np.arange(0.0, times[-1] + 1e-9, 1.0):
        sel = (times >= start) & (times < start + 1.0)
        seen = sel & ~np.isnan(scores[:, 0]) if labels else np.zeros_like(sel)
        if seen.any():
            mean = scores[seen].mean(axis=0)
            best = int(np.argmax(mean))
            face = (
                f'{labels[best]:<8} {mean[best]:.2f} {"#" * int(round(10 * mean[best])):<10}'
            )
        else:
            face = f'{"(no face)":<24}'
        in_second = [g for g in gestures if start <= _seconds(g.header.stamp) - t0 < start + 1.0]
        if in_second:
            verdicts = [g.emotion for g in in_second]
            top = max(set(verdicts), key=verdicts.count)
            confidence = np.mean([g.confidence for g in in_second if g.emotion == top])
            body = f'{top or "(no templates)":<8} {confidence:.2f}'
        else:
            body = '(window filling)'
        rows.append(f'{start:5.1f}-{start + 1:5.1f} s  face: {face}  body: {body}')
    return rows


def plot(
    times: np.ndarray,
    scores: np.ndarray,
    labels: tuple[str, ...],
    t0: float,
    gestures: list[GestureEmotion],
    path: Path,
    title: str,
) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_face, ax_body) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for j, label in enumerate(labels):
        b, g, r = EMOTION_COLOURS.get(label, (128, 128, 128))
        ax_face.plot(times, scores[:, j], label=label, color=(r / 255, g / 255, b / 255), lw=1.5)
    ax_face.set_ylabel('face score')
    ax_face.legend(ncol=max(1, len(labels)), fontsize=8, loc='upper center')
    body_labels = sorted({label for g in gestures for label in g.labels})
    for label in body_labels:
        points = [(_seconds(g.header.stamp) - t0, g.scores[list(g.labels).index(label)])
                  for g in gestures if label in g.labels]
        b, g_, r = EMOTION_COLOURS.get(label, (128, 128, 128))
        ax_body.plot(
            *zip(*points), label=label, color=(r / 255, g_ / 255, b / 255), lw=1.5, marker='.'
        )
    ax_body.set_ylabel('body-language probability')
    ax_body.set_xlabel('time (s)')
    if body_labels:
        ax_body.legend(fontsize=8)
    for ax in (ax_face, ax_body):
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    ax_face.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--video',
        default='',
        help=(f'video file or image folder (default: the bundled {DEMO_CLIP}; gesture templates '
              'are recorded only from the bundled clip, whose parts are known)'),
    )
    parser.add_argument(
        '--out', type=Path, default=Path('out'), help='output folder (default: %(default)s)'
    )
    parser.add_argument(
        '--params', type=Path, default=None, help='parameters file (default: config/emorec.yaml)'
    )
    args = parser.parse_args(argv)
    video = args.video or str(package_file(DEMO_CLIP))
    params = args.params or package_file('config/emorec.yaml')
    templates = args.out / 'gesture_templates'
    if templates.exists():
        shutil.rmtree(templates)  # the demo's own templates from an earlier run
    args.out.mkdir(parents=True, exist_ok=True)

    rclpy.init(args=['--ros-args', '--params-file', str(params)])
    executor = MultiThreadedExecutor(num_threads=4)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    nodes: list[Node] = []
    try:
        recorder = Recorder()
        face = FaceEmotionNode()
        pose = BodyPoseNode()
        gesture = GestureEmotionNode(
            parameter_overrides=[Parameter('template_dir', value=str(templates))]
        )
        nodes = [recorder, face, pose, gesture]
        for node in nodes:
            executor.add_node(node)
        spinner.start()
        for node in (face, pose, gesture):
            if not node.start():
                raise RuntimeError(f'{node.get_name()} could not start (see its log above)')
        print(
            f'emorec_ros demo: {video} -> video_source -> face_emotion, '
            'body_pose -> gesture_emotion',
            flush=True,
        )
        if not args.video:
            print(
                'teaching the gesture node as an operator would (record_template service):',
                flush=True,
            )
            for label, frames in TEACHING:
                answer: list[RecordTemplate.Response] = []
                recording = threading.Thread(
                    target=lambda: answer.append(recorder.record_template(label, TEACH_SECONDS)))
                recording.start()
                play(executor, video, frames, loop=True, until=lambda: not recording.is_alive())
                print(
                    f'  frames {frames[0]}-{frames[1]}, "{label}", {TEACH_SECONDS:g} s: '
                    f'{"ok" if answer[0].success else "FAILED"}: {answer[0].message}',
                    flush=True,
                )
        recorder.recording = True
        source = play(executor, video)
        time.sleep(1.0)
        recorder.recording = False
    except RuntimeError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    finally:
        for node in nodes[1:]:
            node.stop()
        executor.shutdown()
        spinner.join(timeout=5.0)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()

    faces, gestures, frames = recorder.faces, recorder.gestures, recorder.frames
    if not faces:
        print('error: the face node published nothing', file=sys.stderr)
        return 1
    t0 = _seconds(faces[0].header.stamp)
    times = np.array([_seconds(r.header.stamp) - t0 for r in faces])
    labels = face_labels(faces)
    scores = main_face_scores(faces, labels)
    print(f'\n{source.published} frames published; face_emotion processed {len(faces)} '
          f'(a face in {int((~np.isnan(scores[:, 0])).sum())}), gesture_emotion published '
          f'{len(gestures)} verdicts. Per second of video:')
    print('\n'.join('  ' + row for row in timeline_rows(t0, times, scores, labels, gestures)))
    for name, snap, what in (('face_emotion', face.stats.snapshot(), 'image'),
                             ('body_pose', pose.stats.snapshot(), 'image'),
                             ('gesture_emotion', gesture.classify_stats.snapshot(), 'window')):
        print(f'{name} processing per {what}: p50 {snap.processing_ms_p50:.1f} ms, '
              f'p95 {snap.processing_ms_p95:.1f} ms')

    video_path, plot_path, csv_path = (args.out / 'emorec_demo.mp4',
                                       args.out / 'emorec_timeline.png',
                                       args.out / 'emorec_demo.csv')
    if frames:
        h, w = frames[0][1].shape[:2]
        writer = cv2.VideoWriter(
            str(video_path), cv2.VideoWriter_fourcc(*'mp4v'), source.rate, (w, h)
        )
        for stamp, frame in frames:
            body = gesture_at(gestures, stamp)
            text = (f'body: {body.emotion} {body.confidence:.2f}' if body and body.emotion
                    else 'body: -')
            cv2.rectangle(frame, (0, h - 26), (w, h), (0, 0, 0), cv2.FILLED)
            cv2.putText(frame, text, (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255),
                        1, cv2.LINE_AA)
            writer.write(frame)
        writer.release()
    plot(times, scores, labels, t0, gestures, plot_path, f'emotion over time: {Path(video).name}')
    with open(csv_path, 'w', newline='') as f:
        out = csv.writer(f)
        out.writerow(['time_s', 'faces', 'main_face_id', 'main_face_emotion', *labels,
                      'body_emotion', 'body_confidence'])
        for t, r, s in zip(times, faces, scores):
            main_face = r.faces[0] if r.faces else None
            body = gesture_at(gestures, t + t0)
            out.writerow([f'{t:.3f}', len(r.faces), main_face.id if main_face else '',
                          main_face.emotion if main_face else '', *[f'{v:.4f}' for v in s],
                          body.emotion if body else '', f'{body.confidence:.3f}' if body else ''])
    print(f'wrote {video_path} ({len(frames)} frames), {plot_path}, {csv_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
