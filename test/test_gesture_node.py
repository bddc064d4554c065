"""The gesture-emotion node in its own process: templates recorded over the service from the
demo clip, then classification that follows the clip; every bad request is refused."""
from __future__ import annotations

import collections
import math

import numpy as np
import pytest
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from emorec_ros.msg import GestureEmotion
from emorec_ros.srv import DeleteTemplate, ListTemplates, RecordTemplate

STARTUP_S = 180.0  # mediapipe, and tslearn compiling its DTW (numba, ~13 s of CPU), on a busy 2-core machine
RATE = 15.0
RECORD_S = 13.0  # a whole loop of either part of the clip (170 and 192 frames at RATE)
CRYING, LAUGHING = (60, 230), (280, 472)  # frames of the clip (a hand near the face while crying)


class GestureGraph:
    """The node under test, its services, and what it publishes."""

    def __init__(self, start_node, probe, wait, template_dir) -> None:
        self.start_node, self.probe, self.wait = start_node, probe, wait
        self.node = start_node('gesture_emotion_node', {'template_dir': str(template_dir),
                                                        'max_record_duration': 14.0, 'publish_rate': 4.0})
        self.messages: list[GestureEmotion] = []
        probe.create_subscription(GestureEmotion, 'gesture_emotion', self.messages.append, QoSProfile(depth=500))
        self.images = probe.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.record = probe.create_client(RecordTemplate, 'record_template')
        self.list = probe.create_client(ListTemplates, 'list_templates')
        self.delete = probe.create_client(DeleteTemplate, 'delete_template')
        assert self.node.wait_for_log('gesture templates from', timeout=STARTUP_S), self.node.log()
        for client in (self.record, self.list, self.delete):
            assert client.wait_for_service(timeout_sec=10.0), self.node.log()
        self.video = None

    def play(self, frames: tuple[int, int]) -> None:
        """video_source loops over these frames of the clip until the next play() or stop()."""
        self.stop()
        self.video = self.start_node('video_source', {'start_frame': frames[0], 'end_frame': frames[1],
                                                      'rate': RATE, 'loop': True})
        assert self.video.wait_for_log('publishing', timeout=30.0), self.video.log()

    def stop(self) -> None:
        if self.video is not None:
            self.video.stop()
            self.video = None

    def call(self, client, request, timeout: float = 30.0):
        future = client.call_async(request)
        assert self.wait(future.done, timeout), f'no answer from {client.srv_name}: {self.node.log()[-2000:]}'
        return future.result()

    def collect(self, seconds: float) -> list[GestureEmotion]:
        start = len(self.messages)
        self.wait(lambda: False, seconds)
        return self.messages[start:]


@pytest.fixture()
def graph(start_node, probe, wait, tmp_path):
    graph = GestureGraph(start_node, probe, wait, tmp_path / 'templates')
    yield graph
    graph.stop()


def test_record_list_classify_delete(graph, tmp_path):
    graph.play(CRYING)
    sad = graph.call(graph.record, RecordTemplate.Request(label='sad', duration=RECORD_S))
    assert sad.success, sad.message
    assert sad.frames >= 0.5 * RECORD_S * RATE and sad.template_id
    graph.play(LAUGHING)
    happy = graph.call(graph.record, RecordTemplate.Request(label='happy', duration=RECORD_S))
    assert happy.success, happy.message
    assert len(list((tmp_path / 'templates').glob('*.npz'))) == 2

    listed = graph.call(graph.list, ListTemplates.Request())
    assert sorted(zip(listed.labels, listed.template_ids)) == [('happy', happy.template_id), ('sad', sad.template_id)]

    laughing = graph.collect(6.0)
    graph.play(CRYING)
    graph.collect(2.5)  # let the window fill with the new part
    crying = graph.collect(6.0)
    for part, expected in ((laughing, 'happy'), (crying, 'sad')):
        assert len(part) >= 8, graph.node.log()[-2000:]
        assert all(m.labels == ['happy', 'sad'] and len(m.scores) == 2 for m in part)
        assert all(m.person_id and m.nearest_template in (sad.template_id, happy.template_id) for m in part)
        assert all(m.header.frame_id == 'camera' for m in part)  # video_source's frame_id
        assert all(_ns(m.window_start) < _ns(m.header.stamp) for m in part)
        counts = collections.Counter(m.emotion for m in part)
        print(expected, counts)
        assert counts[expected] > 0.5 * len(part), counts

    deleted = graph.call(graph.delete, DeleteTemplate.Request(template_id=sad.template_id))
    assert deleted.success, deleted.message
    assert graph.call(graph.list, ListTemplates.Request()).template_ids == [happy.template_id]
    assert len(list((tmp_path / 'templates').glob('*.npz'))) == 1
    assert all(m.labels == ['happy'] for m in graph.collect(2.0)[1:])


def _ns(t) -> int:
    return t.sec * 1_000_000_000 + t.nanosec


BAD_RECORD_REQUESTS = [
    ('', 2.0, 'label'),
    ('Happy', 2.0, 'label'),
    ('../etc', 2.0, 'label'),
    ('a' * 40, 2.0, 'label'),
    ('happy', 0.0, 'duration'),
    ('happy', -1.0, 'duration'),
    ('happy', math.nan, 'duration'),
    ('happy', 15.0, 'duration'),
]


def test_bad_record_requests_are_refused(graph):
    for label, duration, reason in BAD_RECORD_REQUESTS:  # one node for all: it starts slowly
        answer = graph.call(graph.record, RecordTemplate.Request(label=label, duration=duration), timeout=10.0)
        assert not answer.success and reason in answer.message and not answer.template_id, (label, duration)
    assert graph.node.process.poll() is None


def test_recording_refuses_a_second_one_and_nobody_in_view(graph):
    black = Image(header=Header(frame_id='test'), height=240, width=320, encoding='bgr8', step=960,
                  data=np.zeros(240 * 960, np.uint8).tobytes())
    first = graph.record.call_async(RecordTemplate.Request(label='nobody', duration=2.0))
    graph.wait(lambda: 'recording "nobody"' in graph.node.log(), 10.0)
    second = graph.call(graph.record, RecordTemplate.Request(label='other', duration=1.0), timeout=10.0)
    assert not second.success and 'already in progress' in second.message

    def feed_black():
        black.header.stamp = graph.probe.get_clock().now().to_msg()
        graph.images.publish(black)
        return first.done()
    assert graph.wait(feed_black, 20.0, period=1 / RATE)
    answer = first.result()
    assert not answer.success and 'nobody visible' in answer.message


def test_recording_without_images_and_bad_deletes(graph):
    answer = graph.call(graph.record, RecordTemplate.Request(label='silence', duration=0.5), timeout=20.0)
    assert not answer.success and 'images stopped arriving' in answer.message
    unknown = graph.call(graph.delete, DeleteTemplate.Request(template_id='0123abcd'))
    assert not unknown.success and 'no template' in unknown.message
    bad = graph.call(graph.delete, DeleteTemplate.Request(template_id='../../etc/passwd'))
    assert not bad.success
    graph.play(LAUGHING)  # the node keeps publishing, and says it has no templates
    graph.collect(3.0)
    messages = graph.collect(3.0)
    assert messages and all(m.labels == [] and m.emotion == '' and m.confidence == 0.0 for m in messages)
    assert graph.node.process.poll() is None
