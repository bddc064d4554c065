"""
What the node benchmarks share.

640x480 test images, the installed nodes started in their own processes, and a bench node that
publishes images at a set rate and keeps what comes back.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
import subprocess
import threading
import time
from typing import Any, Callable, Iterator

from ament_index_python.packages import get_package_prefix
import cv2
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

SIZE = (640, 480)


def letterbox(image: np.ndarray) -> np.ndarray:
    """Scale a BGR image to fit 640x480, centred on black."""
    scale = min(SIZE[0] / image.shape[1], SIZE[1] / image.shape[0])
    resized = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA)
    canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    y, x = (SIZE[1] - resized.shape[0]) // 2, (SIZE[0] - resized.shape[1]) // 2
    canvas[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return canvas


def start_node(executable: str, params: dict, log: Path) -> subprocess.Popen:
    """
    Start the installed node ``executable`` of emorec_ros with these parameters.

    It configures and activates itself (``autostart``, as the launch file starts it) unless the
    parameters say otherwise. Its output goes to ``log``.
    """
    path = Path(get_package_prefix('emorec_ros')) / 'lib' / 'emorec_ros' / executable
    command = [str(path), '--ros-args'] + [a for k, v in {'autostart': True, **params}.items()
                                           for a in ('-p', f'{k}:={v}')]
    with open(log, 'w') as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)


def stop_node(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ImageBench(Node):
    """
    Publishes images on ``image`` (sensor-data QoS) and keeps what comes back.

    Each message of ``result_type`` on ``result_topic`` is kept as (receipt time.monotonic(),
    seconds since its header stamp, message). Another input (e.g. skeletons) is given by
    ``input_type``, ``input_topic`` and ``input_qos``.
    """

    def __init__(self, name: str, result_type, result_topic: str, input_type=Image,
                 input_topic: str = 'image',
                 input_qos: QoSProfile = qos_profile_sensor_data) -> None:
        super().__init__(name)
        self.publisher = self.create_publisher(input_type, input_topic, input_qos)
        self._lock = threading.Lock()
        self._received: list[tuple[float, float, object]] = []
        self.create_subscription(result_type, result_topic, self._on_result,
                                 QoSProfile(depth=1000))

    def _on_result(self, msg) -> None:
        age = (self.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds * 1e-9
        with self._lock:
            self._received.append((time.monotonic(), age, msg))

    def run(self, images: Callable[[int], Any], hz: float,
            seconds: float) -> tuple[list[tuple[float, float, object]], int]:
        """
        Publish ``images(i)`` (inputs with a header, stamped now) at ``hz`` for ``seconds``.

        Returns what came back meanwhile (and 0.5 s after) and how many inputs were sent.
        """
        with self._lock:
            self._received = []
        sent, start = 0, time.monotonic()
        while time.monotonic() - start < seconds:
            image = images(sent)
            image.header = Header(stamp=self.get_clock().now().to_msg(), frame_id='bench')
            self.publisher.publish(image)
            sent += 1
            time.sleep(max(0.0, start + sent / hz - time.monotonic()))
        time.sleep(0.5)
        with self._lock:
            return list(self._received), sent


@contextmanager
def spinning(node: Node, shutdown: bool = True) -> Iterator[Node]:
    """
    Spin ``node`` in a background thread for the block.

    Then the node is destroyed, once the thread has ended (destroying a node that the spin
    thread still waits on deadlocks), and rclpy is shut down unless ``shutdown`` is false.
    """
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield node
    finally:
        executor.shutdown()
        thread.join(timeout=10.0)
        node.destroy_node()
        if shutdown:
            rclpy.try_shutdown()
