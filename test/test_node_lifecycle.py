"""
The managed-node contract, on face_emotion in its own process (the quickest node to start).

Lifecycle transitions over the standard services, in the right and the wrong order; parameters
changed at runtime (applied, or refused with a reason and the old value kept); a bad parameter
at start; compressed images; SIGINT and SIGTERM.
"""
from __future__ import annotations

import signal
import threading
import time

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from emorec_ros.msg import FaceEmotionArray
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

STARTUP_S = 60.0
NODE = '/face_emotion'


class FaceGraph:
    """A face_emotion process, its lifecycle and parameter services, and what it publishes."""

    def __init__(self, start_node, probe, wait, astronaut_bgr, **params) -> None:
        self.probe, self.wait = probe, wait
        self.node = start_node('face_emotion_node', {'smoothing': 0.0, **params})
        self._lock = threading.Lock()
        self.results: list[FaceEmotionArray] = []
        self.subscription = probe.create_subscription(FaceEmotionArray, 'face_emotions',
                                                      self._result, QoSProfile(depth=100))
        self.images = probe.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.compressed = probe.create_publisher(CompressedImage, 'image/compressed',
                                                 qos_profile_sensor_data)
        self.change = probe.create_client(ChangeState, f'{NODE}/change_state')
        self.get_state = probe.create_client(GetState, f'{NODE}/get_state')
        self.set_params = probe.create_client(SetParameters, f'{NODE}/set_parameters')
        self.get_params = probe.create_client(GetParameters, f'{NODE}/get_parameters')
        for client in (self.change, self.get_state, self.set_params, self.get_params):
            assert client.wait_for_service(timeout_sec=STARTUP_S), self.node.log()
        if params.get('autostart', True):  # the services come before the model is loaded
            assert self.node.wait_for_log(']: active', timeout=STARTUP_S), self.node.log()
        self.face = cv2.resize(astronaut_bgr, (320, 320))  # fits the shared-memory segment

    def _result(self, msg: FaceEmotionArray) -> None:
        with self._lock:
            self.results.append(msg)

    def connected(self, publisher) -> bool:
        """Wait until ``publisher`` reaches the node and the node's results reach the probe."""
        return self.wait(lambda: publisher.get_subscription_count() > 0
                         and self.subscription.get_publisher_count() > 0, STARTUP_S)

    def describe(self, publisher) -> str:
        """Say what the graph saw, for a failed assertion."""
        with self._lock:
            results = len(self.results)
        return (f'{results} results received; {publisher.topic_name} has '
                f'{publisher.get_subscription_count()} subscriber(s), face_emotions '
                f'{self.subscription.get_publisher_count()} publisher(s); node log:\n'
                f'{self.node.log()}')

    def call(self, client, request, timeout: float = 20.0):
        future = client.call_async(request)
        assert self.wait(future.done, timeout), f'no answer from {client.srv_name}'
        return future.result()

    def state(self) -> int:
        return self.call(self.get_state, GetState.Request()).current_state.id

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self.call(self.change, request, timeout=STARTUP_S).success

    def image(self, bgr: np.ndarray) -> Image:
        stamp = self.probe.get_clock().now().to_msg()
        return Image(header=Header(stamp=stamp, frame_id='test'), height=bgr.shape[0],
                     width=bgr.shape[1], encoding='bgr8', step=bgr.shape[1] * 3,
                     data=bgr.tobytes())

    def answer(self, msg, publisher=None, timeout: float = 20.0) -> FaceEmotionArray | None:
        """Publish ``msg`` until its result arrives; None when none does within ``timeout``."""
        def answered() -> bool:
            with self._lock:
                return any(r.header.stamp == msg.header.stamp for r in self.results)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (publisher or self.images).publish(msg)
            if self.wait(answered, 0.5, period=0.01):
                with self._lock:
                    return next(r for r in self.results if r.header.stamp == msg.header.stamp)
        return None

    def set_parameter(self, name: str, value) -> tuple[bool, str]:
        """Set one parameter over the service; return (successful, reason)."""
        kinds = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                 float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
        kind = kinds[type(value)]
        field = {ParameterType.PARAMETER_BOOL: 'bool_value',
                 ParameterType.PARAMETER_INTEGER: 'integer_value',
                 ParameterType.PARAMETER_DOUBLE: 'double_value',
                 ParameterType.PARAMETER_STRING: 'string_value'}[kind]
        parameter = Parameter(name=name, value=ParameterValue(type=kind, **{field: value}))
        result = self.call(self.set_params, SetParameters.Request(parameters=[parameter]))
        return result.results[0].successful, result.results[0].reason

    def get(self, name: str):
        value = self.call(self.get_params, GetParameters.Request(names=[name])).values[0]
        return {ParameterType.PARAMETER_DOUBLE: value.double_value,
                ParameterType.PARAMETER_INTEGER: value.integer_value,
                ParameterType.PARAMETER_STRING: value.string_value}[value.type]


def test_transitions_in_order_and_out_of_order(start_node, probe, wait, astronaut_bgr):
    statuses = []
    probe.create_subscription(DiagnosticArray, '/diagnostics', lambda m: statuses.extend(m.status),
                              QoSProfile(depth=50))
    graph = FaceGraph(start_node, probe, wait, astronaut_bgr, autostart=False)
    assert graph.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert wait(lambda: any(s.name == 'emorec_ros: /face_emotion' and s.message == 'unconfigured'
                            and s.level == DiagnosticStatus.STALE for s in statuses), 10.0)
    assert not graph.transition(Transition.TRANSITION_ACTIVATE)  # not configured yet
    assert graph.answer(graph.image(graph.face), timeout=2.0) is None  # nothing loaded, no work
    assert graph.transition(Transition.TRANSITION_CONFIGURE)
    assert graph.state() == State.PRIMARY_STATE_INACTIVE
    assert not graph.transition(Transition.TRANSITION_CONFIGURE)  # already configured
    assert graph.answer(graph.image(graph.face), timeout=2.0) is None  # inactive: no work
    assert graph.transition(Transition.TRANSITION_ACTIVATE)
    result = graph.answer(graph.image(graph.face))
    assert result is not None and len(result.faces) == 1
    assert graph.transition(Transition.TRANSITION_DEACTIVATE)
    assert graph.answer(graph.image(graph.face), timeout=2.0) is None
    assert graph.transition(Transition.TRANSITION_CLEANUP)
    assert graph.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert graph.transition(Transition.TRANSITION_CONFIGURE)  # again, after a clean-up
    assert graph.transition(Transition.TRANSITION_ACTIVATE)
    assert graph.answer(graph.image(graph.face)) is not None
    assert graph.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert graph.state() == State.PRIMARY_STATE_FINALIZED
    assert graph.node.stop() == 0
    assert 'Traceback' not in graph.node.log()


def test_parameters_change_at_runtime_or_are_refused(start_node, probe, wait, astronaut_bgr):
    graph = FaceGraph(start_node, probe, wait, astronaut_bgr)
    assert graph.answer(graph.image(graph.face)).faces
    assert graph.set_parameter('smoothing', 0.8) == (True, '')
    assert graph.get('smoothing') == pytest.approx(0.8)
    for name, value, reason in [
            ('smoothing', 1.5, 'out of range'),
            ('smoothing', 'high', 'type'),
            ('max_faces', 0, 'out of range'),
            ('diagnostics_warn_ms', 500.0, 'must not exceed diagnostics_error_ms'),
            ('detector', 'haar', 'read-only'),
            ('model_path', '/tmp/other.tflite', 'read-only')]:
        successful, why = graph.set_parameter(name, value)
        assert not successful and reason in why.lower() or reason in why, (name, value, why)
    assert graph.get('smoothing') == pytest.approx(0.8)  # the old value is kept
    assert graph.get('detector') == 'blazeface'
    # Accepted values are applied at once: a minimum face size larger than the face hides it.
    assert graph.set_parameter('min_face_size', 4000) == (True, '')
    assert graph.answer(graph.image(graph.face)).faces == []
    assert graph.set_parameter('min_face_size', 24) == (True, '')
    assert len(graph.answer(graph.image(graph.face)).faces) == 1
    assert graph.set_parameter('detection_confidence', 1.0) == (True, '')  # a stricter detector
    assert graph.answer(graph.image(graph.face)).faces == []
    assert 'Traceback' not in graph.node.log()


def test_compressed_images(start_node, probe, wait, astronaut_bgr):
    graph = FaceGraph(start_node, probe, wait, astronaut_bgr, image_transport='compressed')
    ok, jpeg = cv2.imencode('.jpg', graph.face)  # 45 kB: one UDP datagram, if not shared memory
    assert ok
    raw = graph.image(graph.face)
    msg = CompressedImage(header=raw.header, format='bgr8; jpeg compressed bgr8',
                          data=jpeg.tobytes())
    assert graph.connected(graph.compressed), graph.describe(graph.compressed)
    result = graph.answer(msg, graph.compressed)
    assert result is not None, graph.describe(graph.compressed)
    assert len(result.faces) == 1 and result.header == msg.header
    broken = CompressedImage(header=graph.image(graph.face).header, format='jpeg',
                             data=b'not a jpeg' * 10)
    assert graph.answer(broken, graph.compressed, timeout=2.0) is None
    assert graph.node.wait_for_log('image skipped', 10.0)
    assert graph.answer(graph.image(graph.face), timeout=2.0) is None  # raw is not read


def test_bad_parameter_at_start_is_one_fatal_line(start_node):
    node = start_node('face_emotion_node', {'smoothing': 1.5})
    assert node.process.wait(timeout=STARTUP_S) == 1
    log = node.log()
    assert 'Traceback' not in log
    fatal = [line for line in log.splitlines() if 'FATAL' in line]
    assert len(fatal) == 1 and 'smoothing' in fatal[0], log


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_the_node_cleanly(start_node, probe, wait, astronaut_bgr, signum):
    graph = FaceGraph(start_node, probe, wait, astronaut_bgr)
    assert graph.answer(graph.image(graph.face)) is not None
    started = time.monotonic()
    assert graph.node.stop(signum) == 0
    print(f'{signal.Signals(signum).name}: stopped in {time.monotonic() - started:.2f} s')
    log = graph.node.log()
    assert 'Traceback' not in log and 'terminate called' not in log, log


def test_stamps_are_copied_exactly(start_node, probe, wait, astronaut_bgr):
    graph = FaceGraph(start_node, probe, wait, astronaut_bgr)
    msg = graph.image(graph.face)
    msg.header.stamp = Time(nanoseconds=1_700_000_000_123_456_789).to_msg()
    result = graph.answer(msg)
    assert result is not None and result.header.stamp.nanosec == 123_456_789


def test_images_lost_on_the_way_are_reported(start_node, probe, wait, astronaut_bgr):
    graph = FaceGraph(start_node, probe, wait, astronaut_bgr)
    assert graph.answer(graph.image(graph.face)) is not None
    huge = graph.image(np.zeros((1500, 2000, 3), np.uint8))  # 9 MB: more than any transport's
    assert wait(lambda: (graph.images.publish(huge),  # shared-memory segment takes by default
                         'lost on the way' in graph.node.log())[1], 30.0, period=0.2), \
        graph.node.log()[-2000:]
    assert graph.answer(graph.image(graph.face)) is not None  # and it goes on
