"""Shared pytest fixtures: repository paths and the real media in media/."""
from __future__ import annotations

from collections.abc import Callable
import itertools
import os
from pathlib import Path
import signal
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).parent.parent
MEDIA_DIR = REPO_ROOT / 'media'


@pytest.fixture(scope='session')
def media() -> Path:
    """Return the committed media folder (demo clip, astronaut.png)."""
    return MEDIA_DIR


@pytest.fixture(scope='session')
def fixtures() -> Path:
    """Return the small committed test data folder (test/fixtures)."""
    return REPO_ROOT / 'test' / 'fixtures'


@pytest.fixture(scope='session')
def model_path() -> Path:
    """Return the packaged face-emotion model; its card is beside it."""
    return REPO_ROOT / 'models' / 'face_emotion.tflite'


@pytest.fixture(scope='session')
def pexels_frame() -> Callable[[int], np.ndarray]:
    """
    Return a reader of frame i (uint8 360x640x3 BGR) of media/WolfgangLanger_Pexels.mp4.

    One woman, crying in frames 0-230 (a hand near her face in 60-230), laughing from 260 to the
    last frame, 471. Frames are cached; callers must not modify them.
    """
    cache: dict[int, np.ndarray] = {}

    def read(index: int) -> np.ndarray:
        if index not in cache:
            capture = cv2.VideoCapture(str(MEDIA_DIR / 'WolfgangLanger_Pexels.mp4'))
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
            capture.release()
            assert ok, f'could not read frame {index} of the Pexels clip'
            cache[index] = frame
        return cache[index]

    return read


@pytest.fixture(scope='session')
def pexels_skeletons() -> list:
    """
    Return the skeleton (or None) that MediaPipe Pose finds in each frame of the Pexels clip.

    emorec_ros.gesture.pose.PoseEstimator in video mode, over the 472 frames in order: 2-D
    Skeletons in pixels of the 640x360 frames, as body_pose publishes them.
    """
    from emorec_ros.gesture.pose import PoseEstimator

    estimator = PoseEstimator(video=True)
    capture = cv2.VideoCapture(str(MEDIA_DIR / 'WolfgangLanger_Pexels.mp4'))
    skeletons = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            skeletons.append(estimator.estimate(frame))
    finally:
        capture.release()
        estimator.close()
    assert len(skeletons) == 472, f'read {len(skeletons)} frames of the Pexels clip'
    return skeletons


@pytest.fixture(scope='session')
def astronaut_bgr() -> np.ndarray:
    """media/astronaut.png (512x512 BGR, public domain): one face, near (178, 83), 95 px wide."""
    image = cv2.imread(str(MEDIA_DIR / 'astronaut.png'))
    assert image is not None, 'media/astronaut.png is missing'
    return image


# --- ROS graph fixtures: real nodes in their own processes, talking over DDS ----------------

@pytest.fixture(scope='session')
def ros_context():
    """Initialise rclpy for the test process (tools/run_tests.sh picks its ROS_DOMAIN_ID)."""
    import rclpy

    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture()
def probe():
    """
    Yield a node of the test's own, spun in a background thread.

    Each test's node has a DDS participant of its own: a participant's shared-memory segment
    (512 kB) holds one or two test images, and a node stopped by an earlier test while it held
    one of them could leave it taken, so that later images fell back to lossy UDP.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    context = Context()
    rclpy.init(context=context)
    node = Node(f'test_probe_{os.getpid()}_{next(_probe_ids)}', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node
    executor.shutdown()
    thread.join(timeout=5)  # before the node goes: the spin thread may still be waiting on it
    node.destroy_node()
    rclpy.try_shutdown(context=context)


_probe_ids = itertools.count()


def node_executable(name: str) -> str:
    """Return the installed executable, as `ros2 run emorec_ros <name>` finds it."""
    from ament_index_python.packages import get_package_prefix

    path = Path(get_package_prefix('emorec_ros')) / 'lib' / 'emorec_ros' / name
    assert path.exists(), f'{path} missing: build the package first (make setup)'
    return str(path)


class NodeProcess:
    """An emorec_ros node started as a process with ``--ros-args``; output goes to a log file."""

    def __init__(
        self, executable: str, params: dict, log_path: Path, remaps: dict | None = None
    ) -> None:
        args = [node_executable(executable), '--ros-args']
        for key, value in {'autostart': True, **params}.items():
            args += ['-p', f'{key}:={value}']
        for old, new in (remaps or {}).items():
            args += ['-r', f'{old}:={new}']
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.process = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, cwd=log_path.parent
        )

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def wait_for_log(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if self.process.poll() is not None:
                return text in self.log()
            time.sleep(0.1)
        return False

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Send ``signum`` (once) and wait for the exit status; kill after 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture()
def start_node(tmp_path):
    """Start nodes by executable name; every one still running is stopped after the test."""
    started: list[NodeProcess] = []

    def start(
        executable: str, params: dict | None = None, remaps: dict | None = None
    ) -> NodeProcess:
        node = NodeProcess(
            executable, params or {}, tmp_path / f'{executable}_{len(started)}.log', remaps
        )
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def wait_until(condition, timeout: float, period: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period)
    return condition()


@pytest.fixture()
def wait():
    """Return wait_until: poll until a condition holds, and say whether it did."""
    return wait_until
