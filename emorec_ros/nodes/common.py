"""What every emorec_ros node does the same way: image input, QoS, package files, diagnostics."""
from __future__ import annotations

from collections.abc import Callable
import math
from pathlib import Path
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from emorec_ros.image import compressed_to_bgr, image_to_bgr, ImageError
from emorec_ros.stats import ProcessingStats, StatsSnapshot
import numpy as np
from rclpy.callback_groups import CallbackGroup
from rclpy.event_handler import (QoSMessageLostInfo, SubscriptionEventCallbacks,
                                 UnsupportedEventTypeError)
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, qos_profile_sensor_data, QoSProfile
from rclpy.subscription import Subscription
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image

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

#: How images arrive, as image_transport names it: 'raw' (sensor_msgs/Image on ``image``) or
#: 'compressed' (sensor_msgs/CompressedImage, jpeg or png, on ``<image>/compressed``).
IMAGE_TRANSPORTS = ('raw', 'compressed')


def check_transport(value: str) -> str | None:
    """Return why ``value`` is not an image transport, or None."""
    return None if value in IMAGE_TRANSPORTS else f"use one of {', '.join(IMAGE_TRANSPORTS)}"


def declare_image_parameters(node, warn_ms: float, timed: str) -> str:
    """
    Declare the parameters of a node that reads images; return its image transport.

    ``node`` is a ManagedNode; ``timed`` says what the diagnostics thresholds time, e.g.
    'processing time'.
    """
    transport = node.declare(
        'image_transport', 'raw', "'raw': sensor_msgs/Image on image; 'compressed': "
        'sensor_msgs/CompressedImage (jpeg, png) on <image>/compressed', read_only=True,
        check=check_transport)
    node.declare('max_image_pixels', 4096 * 4096,
                 'larger images are rejected (guards memory and time)', 1, 1 << 28)
    declare_diagnostics_parameters(node, warn_ms, timed, 'an image')
    return transport


def declare_diagnostics_parameters(node, warn_ms: float, timed: str, one_input: str) -> None:
    """
    Declare the diagnostics thresholds of a ManagedNode.

    ``timed`` says what the time thresholds time; ``one_input`` names one input of the node ('an
    image', 'a skeleton message'): diagnostics warn after diagnostics_stale_s without one.
    """
    node.declare('diagnostics_warn_ms', warn_ms,
                 f'{timed} (p95, ms) above which diagnostics warn', 0.0, 10000.0)
    node.declare('diagnostics_error_ms', 100.0,
                 f'{timed} (p95, ms) above which diagnostics report an error', 0.0, 10000.0)
    node.declare('diagnostics_stale_s', 5.0,
                 f'seconds without {one_input} before diagnostics warn', 0.0, 3600.0)


def subscribe_images(node: Node, transport: str,
                     callback: Callable[[Image | CompressedImage], None], stats: ProcessingStats,
                     callback_group: CallbackGroup | None = None) -> Subscription:
    """
    Subscribe to the newest image on ``image`` (raw) or ``<image>/compressed``.

    The compressed topic follows the remapping of ``image``, as image_transport's subscribers do.
    Images that the transport reports lost (partly received: too large for it) are counted in
    ``stats.lost`` and logged.
    """
    msg_type, topic = Image, 'image'
    if transport == 'compressed':
        msg_type, topic = CompressedImage, node.resolve_topic_name('image') + '/compressed'

    def on_lost(info: QoSMessageLostInfo) -> None:
        if info.total_count_change > 0:
            stats.lost = info.total_count
            node.get_logger().warning(
                f'{info.total_count_change} image(s) lost on the way ({info.total_count} in all): '
                'too large for the DDS transport? (see README, Transports)',
                throttle_duration_sec=5.0)

    try:
        return node.create_subscription(
            msg_type, topic, callback, LATEST_IMAGE_QOS, callback_group=callback_group,
            event_callbacks=SubscriptionEventCallbacks(message_lost=on_lost))
    except UnsupportedEventTypeError:  # an RMW that does not report lost messages
        return node.create_subscription(msg_type, topic, callback, LATEST_IMAGE_QOS,
                                        callback_group=callback_group)


def read_image(node: Node, msg: Image | CompressedImage, max_pixels: int,
               stats: ProcessingStats) -> np.ndarray | None:
    """
    Return the image as BGR, or None when it cannot be used.

    An image that is too large, malformed, of an unsupported encoding or that does not decode
    is logged (throttled) and counted as rejected.
    """
    try:
        if isinstance(msg, CompressedImage):
            return compressed_to_bgr(msg, max_pixels)
        if msg.width * msg.height > max_pixels:
            raise ImageError(f'{msg.width}x{msg.height} image is larger than max_image_pixels '
                             f'({max_pixels})')
        return image_to_bgr(msg)
    except ImageError as e:
        stats.reject()
        node.get_logger().warning(f'image skipped: {e}', throttle_duration_sec=5.0)
        return None


def record_processed(node: Node, stats: ProcessingStats, started: float, stamp: Time) -> None:
    """
    Count an image as processed.

    ``started`` is the time.perf_counter() when its processing began; its age is measured on the
    node's clock (NaN for an image without a stamp).
    """
    age = (node.get_clock().now() - stamp).nanoseconds * 1e-9 if stamp.nanoseconds else math.nan
    stats.record(time.perf_counter() - started, age)


def package_file(relative: str) -> Path:
    """Return a file installed with the package (share/emorec_ros/<relative>)."""
    try:
        from ament_index_python.packages import (get_package_share_directory,
                                                 PackageNotFoundError)
        try:
            return Path(get_package_share_directory(PACKAGE)) / relative
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parents[2] / relative


def diagnostic_status(node: Node, stats: StatsSnapshot, warn_ms: float, error_ms: float,
                      stale_s: float, extra: dict[str, str] | None = None,
                      inputs: str = 'images') -> DiagnosticStatus:
    """
    Say OK, WARN or ERROR from processing time (p95, ms) and from how long no input came.

    The status is named after the node's full name, so two cameras' nodes never share one.
    ``inputs`` names what the node processes, in the plural ('images', 'skeleton messages').
    """
    name = node.get_fully_qualified_name()
    status = DiagnosticStatus(name=f'{PACKAGE}: {name}', hardware_id=name)
    p95 = stats.processing_ms_p95
    if stats.seconds_since_last > stale_s:
        status.level = DiagnosticStatus.WARN
        status.message = f'no {inputs} processed for {stale_s:g} s'
    elif p95 > error_ms:
        status.level, status.message = DiagnosticStatus.ERROR, f'processing p95 {p95:.1f} ms'
    elif p95 > warn_ms:
        status.level, status.message = DiagnosticStatus.WARN, f'processing p95 {p95:.1f} ms'
    else:
        status.level, status.message = DiagnosticStatus.OK, 'ok'
    values = {
        'rate (Hz)': f'{stats.rate_hz:.1f}',
        'processing p50 (ms)': f'{stats.processing_ms_p50:.1f}',
        'processing p95 (ms)': f'{p95:.1f}',
        'latency p50 (ms)': f'{stats.latency_ms_p50:.1f}',
        'latency p95 (ms)': f'{stats.latency_ms_p95:.1f}',
        f'{inputs} processed': str(stats.processed),
        f'{inputs} rejected': str(stats.rejected),
        f'{inputs} lost': str(stats.lost),
        **(extra or {}),
    }
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return status


def lifecycle_status(node: Node, state: str) -> DiagnosticStatus:
    """Say that a node is not active, and what it is doing ('configuring': loading)."""
    name = node.get_fully_qualified_name()
    message = 'configuring: loading models and data' if state == 'configuring' else state
    return DiagnosticStatus(level=DiagnosticStatus.STALE, name=f'{PACKAGE}: {name}',
                            hardware_id=name, message=message,
                            values=[KeyValue(key='lifecycle state', value=state)])


def publish_diagnostics(node: Node, publisher, status: DiagnosticStatus) -> None:
    """Publish one status, stamped now."""
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(array)


def check_diagnostics_thresholds(values: dict, current: Callable[[str], float]) -> str | None:
    """Return why new diagnostics thresholds (warn below error) do not fit, or None."""
    warn = values.get('diagnostics_warn_ms', current('diagnostics_warn_ms'))
    error = values.get('diagnostics_error_ms', current('diagnostics_error_ms'))
    if warn > error:
        return f'diagnostics_warn_ms ({warn:g}) must not exceed diagnostics_error_ms ({error:g})'
    return None
