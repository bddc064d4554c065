"""What every emorec_ros node does the same way: parameters, QoS, package files, diagnostics."""
from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image

from emorec_ros.image import ImageError, image_to_bgr
from emorec_ros.stats import ProcessingStats, StatsSnapshot

PACKAGE = 'emorec_ros'

#: Sensor-data QoS (best effort, volatile) keeping only the newest image: a busy node never
#: works through a backlog, it goes straight to the latest frame.
LATEST_IMAGE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                              reliability=qos_profile_sensor_data.reliability,
                              durability=qos_profile_sensor_data.durability)


#: Annotated images for people (rviz): reliable, so large frames are repaired rather than lost,
#: and only the newest is kept, so a slow viewer never holds the node back. Reliable publishers
#: also serve best-effort subscribers.
DEBUG_IMAGE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1)


def declare(node: Node, name: str, default: Any, description: str,
            low: float | None = None, high: float | None = None, read_only: bool = True) -> Any:
    """Declare a parameter with its description (and range, for numbers) and return its value."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if low is not None and high is not None:
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise TypeError(f'{name}: a range needs a numeric default')
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
    return node.declare_parameter(name, default, descriptor).value


def read_image(node: Node, msg: Image, max_pixels: int, stats: ProcessingStats) -> np.ndarray | None:
    """The image as BGR, or None (logged, throttled, and counted as rejected) when it is too
    large, malformed or of an unsupported encoding."""
    try:
        if msg.width * msg.height > max_pixels:
            raise ImageError(f'{msg.width}x{msg.height} image is larger than max_image_pixels ({max_pixels})')
        return image_to_bgr(msg)
    except ImageError as e:
        stats.reject()
        node.get_logger().warning(f'image skipped: {e}', throttle_duration_sec=5.0)
        return None


def record_processed(node: Node, stats: ProcessingStats, started: float, stamp: Time) -> None:
    """Count an image as processed: the time since ``started`` (time.perf_counter()) and its age
    on the node's clock (NaN for an image without a stamp)."""
    age = (node.get_clock().now() - stamp).nanoseconds * 1e-9 if stamp.nanoseconds else math.nan
    stats.record(time.perf_counter() - started, age)


def package_file(relative: str) -> Path:
    """A file installed with the package (share/emorec_ros/<relative>), or the source tree's copy."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            return Path(get_package_share_directory(PACKAGE)) / relative
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parents[2] / relative


def diagnostic_status(node: Node, stats: StatsSnapshot, warn_ms: float, error_ms: float,
                      stale_s: float, extra: dict[str, str] | None = None) -> DiagnosticStatus:
    """OK / WARN / ERROR from processing time (p95, ms) and from how long no image came."""
    status = DiagnosticStatus(name=f'{PACKAGE}: {node.get_name()}', hardware_id=node.get_fully_qualified_name())
    if stats.seconds_since_last > stale_s:
        status.level, status.message = DiagnosticStatus.WARN, f'no image processed for {stale_s:g} s'
    elif stats.processing_ms_p95 > error_ms:
        status.level, status.message = DiagnosticStatus.ERROR, f'processing p95 {stats.processing_ms_p95:.1f} ms'
    elif stats.processing_ms_p95 > warn_ms:
        status.level, status.message = DiagnosticStatus.WARN, f'processing p95 {stats.processing_ms_p95:.1f} ms'
    else:
        status.level, status.message = DiagnosticStatus.OK, 'ok'
    values = {
        'rate (Hz)': f'{stats.rate_hz:.1f}',
        'processing p50 (ms)': f'{stats.processing_ms_p50:.1f}',
        'processing p95 (ms)': f'{stats.processing_ms_p95:.1f}',
        'latency p50 (ms)': f'{stats.latency_ms_p50:.1f}',
        'latency p95 (ms)': f'{stats.latency_ms_p95:.1f}',
        'images processed': str(stats.processed),
        'images rejected': str(stats.rejected),
        **(extra or {}),
    }
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return status


def publish_diagnostics(node: Node, publisher, status: DiagnosticStatus) -> None:
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(array)


def spin_node(node_class: type[Node], args: list[str] | None = None,
              executor: Callable[[], Executor] | None = None) -> int:
    """rclpy.init, build the node, spin until shutdown (on an executor made by ``executor``,
    default single-threaded); a node that fails to start returns 1."""
    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        rclpy.spin(node, executor=executor() if executor else None)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except StartupError:
        return 1
    except Exception:
        if rclpy.ok():
            raise
        # Shutdown (Ctrl-C) invalidated the context while a callback was publishing: a normal exit.
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


class StartupError(RuntimeError):
    """A node cannot start (its reason is already logged as fatal)."""
