"""
The body-pose node in its own process, fed frames of the demo clip in lock step over DDS.

Each image goes out with a stamp the test chooses, and the next one only once the node's
SkeletonArray for that stamp came back, so what the node sees does not depend on how fast this
machine is.
"""
from __future__ import annotations

import threading
import time

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from emorec_ros.gesture.skeleton import JOINTS
from emorec_ros.msg import GestureEmotion, SkeletonArray
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, SetParameters
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

STARTUP_S = 60.0  # MediaPipe start-up on a busy 2-core machine
NODE = '/body_pose'
SIZE = (480, 270)  # inside FastDDS's default shared-memory segment (512 kB), unlike 640x360
NS = 1_000_000_000
STEP_NS = NS // 15  # stamps of a 15 fps camera


class PoseGraph:
    """The node under test, what it publishes, and a lock-step feeder with chosen stamps."""

    def __init__(self, start_node, probe, wait, **params) -> None:
        self.probe, self.wait = probe, wait
        self.node = start_node('body_pose_node', params)
        self._lock = threading.Lock()
        self.skeletons: list[SkeletonArray] = []
        self.debug: list[Image] = []
        self.diagnostics: list[DiagnosticArray] = []
        probe.create_subscription(SkeletonArray, 'skeletons', self._keep(self.skeletons),
                                  QoSProfile(depth=100))
        probe.create_subscription(DiagnosticArray, '/diagnostics', self._keep(self.diagnostics),
                                  QoSProfile(depth=50))
        self.images = probe.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.verdicts = probe.create_publisher(GestureEmotion, 'gesture_emotion', 10)
        assert self.node.wait_for_log(']: active', timeout=STARTUP_S), self.node.log()
        # Stamps start an hour back, so that no stamp is ever ahead of the clock.
        self.next_ns = probe.get_clock().now().nanoseconds - 3600 * NS

    def _keep(self, items: list):
        def add(msg) -> None:
            with self._lock:
                items.append(msg)
        return add

    def watch_debug_images(self) -> None:
        self.probe.create_subscription(Image, f'{NODE}/pose_debug_image',
                                       self._keep(self.debug), QoSProfile(depth=10))

    def message(self, bgr: np.ndarray, stamp_ns: int | None = None, **fields) -> Image:
        """Return a bgr8 image stamped ``stamp_ns`` (default: STEP_NS after the last one)."""
        if stamp_ns is None:
            stamp_ns = self.next_ns
        self.next_ns = stamp_ns + STEP_NS
        msg = Image(header=Header(stamp=Time(nanoseconds=stamp_ns).to_msg(), frame_id='camera'),
                    height=bgr.shape[0], width=bgr.shape[1], encoding='bgr8', is_bigendian=0,
                    step=bgr.shape[1] * 3, data=bgr.tobytes())
        for key, value in fields.items():
            setattr(msg, key, value)
        return msg

    def answer(self, msg: Image, timeout: float = 30.0) -> SkeletonArray:
        """Publish ``msg`` until its SkeletonArray (same stamp) arrives; return it."""
        def answered() -> list[SkeletonArray]:
            with self._lock:
                return [s for s in self.skeletons if s.header.stamp == msg.header.stamp]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.images.publish(msg)  # best effort: it may be lost on the way, so repeat
            if self.wait(lambda: bool(answered()), 0.5, period=0.005):
                return answered()[0]
        pytest.fail(f'no skeletons for the image in {timeout:g} s:\n{self.node.log()[-2000:]}')

    def feed(self, bgr: np.ndarray, stamp_ns: int | None = None) -> SkeletonArray:
        return self.answer(self.message(bgr, stamp_ns))

    def set_parameter(self, name: str, value: float) -> bool:
        client = self.probe.create_client(SetParameters, f'{NODE}/set_parameters')
        assert client.wait_for_service(timeout_sec=10.0)
        parameter = Parameter(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE, double_value=value))
        future = client.call_async(SetParameters.Request(parameters=[parameter]))
        assert self.wait(future.done, 10.0)
        return future.result().results[0].successful


@pytest.fixture()
def graph(start_node, probe, wait):
    return PoseGraph(start_node, probe, wait)


@pytest.fixture(scope='module')
def person(pexels_frame):
    """Return frames 0, 6, ... 138 of the demo clip (a woman from the chest up), at SIZE."""
    return [cv2.resize(pexels_frame(i), SIZE, interpolation=cv2.INTER_AREA)
            for i in range(0, 140, 6)]


GREY = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)


def test_a_person_has_one_skeleton_with_our_joints_and_a_stable_id(graph, person):
    ids = []
    for frame in person:
        msg = graph.message(frame)
        out = graph.answer(msg)
        assert out.header == msg.header
        assert len(out.skeletons) == 1, f'{len(ids)} frames in'
        skeleton = out.skeletons[0]
        assert list(skeleton.joint_names) == list(JOINTS)
        assert len(skeleton.x) == len(skeleton.y) == len(skeleton.confidence) == len(JOINTS)
        head, left, right = (JOINTS.index(n) for n in ('head', 'left_shoulder', 'right_shoulder'))
        assert 0 < skeleton.x[head] < SIZE[0] and 0 < skeleton.y[head] < SIZE[1]
        assert skeleton.x[left] > skeleton.x[head] > skeleton.x[right]  # she faces the camera
        ids.append(skeleton.id)
    assert set(ids) == {'person1'}


def test_nobody_gives_an_empty_list_with_the_image_header(graph):
    msg = graph.message(GREY)
    msg.header.frame_id = 'another_camera'
    out = graph.answer(msg)
    assert out.header == msg.header
    assert list(out.skeletons) == []


def test_a_new_id_after_person_lost_s_or_when_time_goes_back(graph, person):
    def person_id(frame: np.ndarray, stamp_ns: int | None = None) -> str:
        out = graph.feed(frame, stamp_ns)
        assert len(out.skeletons) == 1
        return out.skeletons[0].id

    assert person_id(person[0]) == 'person1'
    assert list(graph.feed(GREY).skeletons) == []
    # Unseen for 0.9 s of stamps: less than person_lost_s (1.0), the same person.
    assert person_id(person[1], graph.next_ns + 8 * STEP_NS) == 'person1'
    # Unseen for 1.5 s: a new person.
    assert person_id(person[2], graph.next_ns + round(1.5 * NS)) == 'person2'
    assert person_id(person[3]) == 'person2'
    # Time goes back (a looped video): a new person, and the node says why.
    assert person_id(person[4], graph.next_ns - 10 * NS) == 'person3'
    assert graph.node.wait_for_log('time went back', timeout=10.0), graph.node.log()
    # A longer person_lost_s, set at runtime, keeps the person over a 1.5 s gap.
    assert graph.set_parameter('person_lost_s', 2.0)
    assert not graph.set_parameter('person_lost_s', -1.0)  # out of range: refused
    assert person_id(person[5], graph.next_ns + round(1.5 * NS)) == 'person3'


@pytest.mark.parametrize('bad', [
    {'encoding': '16UC1'},
    {'step': 10},                       # step shorter than a row
    {'data': b'\x00' * 100},            # data shorter than step * height
    {'height': 0, 'width': 0, 'step': 0, 'data': b''},
])
def test_a_bad_image_is_logged_and_skipped(graph, person, bad):
    bad_msg = graph.message(GREY, **bad)

    def skipped() -> bool:  # best effort, and maybe not matched yet: publish until it is seen
        graph.images.publish(bad_msg)
        return 'image skipped' in graph.node.log()

    assert graph.wait(skipped, 30.0, period=0.2), graph.node.log()
    out = graph.feed(person[0])
    assert len(out.skeletons) == 1
    assert all(s.header.stamp != bad_msg.header.stamp for s in graph.skeletons)
    assert graph.node.process.poll() is None


def test_debug_image_with_the_verdict_and_diagnostics(graph, person):
    graph.watch_debug_images()

    def debug_image_of(frame: np.ndarray) -> np.ndarray:
        """Feed frames until a debug image comes back; return the last one (BGR)."""
        def arrived() -> Image | None:
            with graph._lock:
                return next((d for d in graph.debug if d.header == msg.header), None)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            msg = graph.message(frame)
            graph.answer(msg)
            if graph.wait(lambda: arrived() is not None, 1.0):
                image = arrived()
                assert (image.height, image.width, image.encoding) == (SIZE[1], SIZE[0], 'bgr8')
                return np.frombuffer(image.data, np.uint8).reshape(SIZE[1], SIZE[0], 3)
        pytest.fail(f'no debug image in 30 s:\n{graph.node.log()[-2000:]}')

    plain = debug_image_of(person[0])
    assert (plain != person[0]).any()  # the skeleton and the caption are drawn
    # The caption (top rows) follows the person's latest verdict once one comes.
    verdict = GestureEmotion(person_id='person1', emotion='happy', confidence=0.9)

    def captioned() -> bool:
        graph.verdicts.publish(verdict)
        return (debug_image_of(person[0])[:20] != plain[:20]).any()
    assert graph.wait(captioned, 30.0, period=0.1), graph.node.log()[-2000:]

    def latest_status() -> dict[str, str]:
        """Return the node's latest diagnostics values ({} before the first)."""
        with graph._lock:
            statuses = [s for d in graph.diagnostics for s in d.status
                        if s.name == f'emorec_ros: {NODE}']
        return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}
    assert graph.wait(lambda: int(latest_status().get('skeletons published', 0)) >= 2, 20.0)
    assert {'processing p95 (ms)', 'images processed', 'person'} <= latest_status().keys()


def test_parameters_are_described_and_a_new_confidence_rebuilds_the_estimator(graph, person):
    describe = graph.probe.create_client(DescribeParameters, f'{NODE}/describe_parameters')
    assert describe.wait_for_service(timeout_sec=10.0)
    names = ['pose_detection_confidence', 'pose_tracking_confidence', 'person_lost_s']
    future = describe.call_async(DescribeParameters.Request(names=names))
    assert graph.wait(future.done, 10.0)
    for descriptor in future.result().descriptors:
        assert descriptor.description and descriptor.floating_point_range, descriptor.name
    assert len(graph.feed(person[0]).skeletons) == 1
    assert graph.set_parameter('pose_detection_confidence', 0.6)
    assert not graph.set_parameter('pose_tracking_confidence', 1.5)
    assert graph.node.wait_for_log('pose_detection_confidence = 0.6', timeout=10.0)
    assert len(graph.feed(person[1]).skeletons) == 1
