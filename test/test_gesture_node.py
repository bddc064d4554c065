"""
The gesture-emotion node in its own process, fed the demo clip in lock step.

Templates are recorded over the service, then the verdicts must follow the clip; every bad
request is refused. Frames go out one at a time, stamped 1/RATE s apart: the next one only once
the node has processed the last (its debug image for that stamp came back), so what the node
sees does not depend on how fast this machine is.
"""
from __future__ import annotations

import collections
import math
import signal
import threading
import time

import cv2
from emorec_ros.gesture.store import TemplateStore
from emorec_ros.gesture.template import Template
from emorec_ros.msg import GestureEmotion
from emorec_ros.srv import DeleteTemplate, ListTemplates, RecordTemplate
import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

STARTUP_S = 180.0  # mediapipe, and tslearn's DTW compiled (numba) when not cached, busy machine
RATE = 15.0  # stamps of the frames fed: a 15 fps camera
CLIP_FPS = 23.976
RECORD_S = 13.0  # a whole loop of either part of the clip
CRYING, LAUGHING = (60, 230), (280, 472)  # frames of the clip (a hand near the face while crying)
SIZE = (480, 270)  # inside FastDDS's default shared-memory segment (512 kB), unlike 640x360
NODE = '/gesture_emotion'


class GestureGraph:
    """The node under test, its services, what it publishes, and a lock-step feeder."""

    def __init__(self, start_node, probe, wait, pexels_frame, template_dir, **params) -> None:
        self.probe, self.wait, self.frame = probe, wait, pexels_frame
        self.node = start_node('gesture_emotion_node', {
            'template_dir': str(template_dir), 'max_record_duration': 14.0,
            'publish_rate': 10.0, **params})
        self._lock = threading.Lock()
        self.messages: list[GestureEmotion] = []
        self.processed: set[int] = set()  # stamps (ns) of the debug images back from the node
        probe.create_subscription(GestureEmotion, 'gesture_emotion', self._verdict,
                                  QoSProfile(depth=1000))
        probe.create_subscription(Image, f'{NODE}/gesture_debug_image', self._debug,
                                  QoSProfile(depth=10))
        self.images = probe.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.record = probe.create_client(RecordTemplate, f'{NODE}/record_template')
        self.list = probe.create_client(ListTemplates, f'{NODE}/list_templates')
        self.delete = probe.create_client(DeleteTemplate, f'{NODE}/delete_template')
        for client in (self.record, self.list, self.delete):
            assert client.wait_for_service(timeout_sec=30.0), self.node.log()
        assert self.node.wait_for_log(']: active', timeout=STARTUP_S), self.node.log()
        # Stamps start an hour back: fed faster than RATE, they still never run ahead of the clock.
        self._next_ns = probe.get_clock().now().nanoseconds - 3600 * 10**9
        self._cursor: dict[tuple[int, int], int] = collections.defaultdict(int)

    def _verdict(self, msg: GestureEmotion) -> None:
        with self._lock:
            self.messages.append(msg)

    def _debug(self, msg: Image) -> None:
        with self._lock:
            self.processed.add(Time.from_msg(msg.header.stamp).nanoseconds)

    def feed_one(self, bgr: np.ndarray, timeout: float = 30.0) -> int:
        """Publish one frame until the node has processed it; return its stamp (ns)."""
        stamp_ns, self._next_ns = self._next_ns, self._next_ns + round(1e9 / RATE)
        msg = Image(
            header=Header(stamp=Time(nanoseconds=stamp_ns).to_msg(), frame_id='camera'),
            height=bgr.shape[0],
            width=bgr.shape[1],
            encoding='bgr8',
            step=bgr.shape[1] * 3,
            data=bgr.tobytes(),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.images.publish(msg)
            if self.wait(lambda: stamp_ns in self.processed, 0.5, period=0.005):
                return stamp_ns
        pytest.fail(
            f'the node did not process a frame in {timeout:g} s:\n{self.node.log()[-2000:]}'
        )

    def feed(self, part: tuple[int, int], count: int) -> tuple[int, int]:
        """Feed ``count`` frames of this part of the clip (looping); return the stamps' range."""
        stamps = []
        for _ in range(count):
            step = self._cursor[part]
            self._cursor[part] += 1
            index = part[0] + int(step * CLIP_FPS / RATE) % (part[1] - part[0])
            frame = cv2.resize(self.frame(index), SIZE, interpolation=cv2.INTER_AREA)
            stamps.append(self.feed_one(frame))
        return stamps[0], stamps[-1]

    def verdicts(self, stamps: tuple[int, int]) -> list[GestureEmotion]:
        """Return the verdicts on windows ending within these stamps."""
        self.wait(lambda: False, 0.5)  # the last verdict of the range is on its way
        with self._lock:
            return [m for m in self.messages
                    if stamps[0] <= Time.from_msg(m.header.stamp).nanoseconds <= stamps[1]]

    def call(self, client, request, timeout: float = 30.0):
        future = client.call_async(request)
        assert self.wait(future.done, timeout), \
            f'no answer from {client.srv_name}: {self.node.log()[-2000:]}'
        return future.result()

    def record_while_feeding(self, label: str, duration: float, feed) -> RecordTemplate.Response:
        """Call record_template and feed frames (``feed()`` one each) until it answers."""
        future = self.record.call_async(RecordTemplate.Request(label=label, duration=duration))
        assert self.node.wait_for_log(f'recording "{label}"', timeout=30.0), self.node.log()
        for _ in range(int(duration * RATE) + 60):
            if future.done():
                break
            feed()
        assert self.wait(future.done, 30.0), self.node.log()[-2000:]
        return future.result()


@pytest.fixture()
def graph(start_node, probe, wait, pexels_frame, tmp_path):
    return GestureGraph(start_node, probe, wait, pexels_frame, tmp_path / 'templates')


def test_record_list_classify_delete(graph, tmp_path):
    sad = graph.record_while_feeding('sad', RECORD_S, lambda: graph.feed(CRYING, 1))
    assert sad.success, sad.message
    assert sad.frames >= 0.9 * RECORD_S * RATE and sad.template_id  # lock step: none lost
    happy = graph.record_while_feeding('happy', RECORD_S, lambda: graph.feed(LAUGHING, 1))
    assert happy.success, happy.message
    assert len(list((tmp_path / 'templates').glob('*.npz'))) == 2

    listed = graph.call(graph.list, ListTemplates.Request())
    assert sorted(zip(listed.labels, listed.template_ids)) == [
        ('happy', happy.template_id), ('sad', sad.template_id)]
    assert listed.state == 'ready' and list(listed.in_use) == [True, True]
    assert list(listed.reasons) == ['', '']

    laughing = graph.verdicts(graph.feed(LAUGHING, 90))
    graph.feed(CRYING, 38)  # let the window fill with the new part
    crying = graph.verdicts(graph.feed(CRYING, 90))
    for part, expected in ((laughing, 'happy'), (crying, 'sad')):
        assert len(part) >= 8, graph.node.log()[-2000:]
        assert all(m.labels == ['happy', 'sad'] and len(m.scores) == 2 for m in part)
        assert all(m.person_id and m.nearest_template in (sad.template_id, happy.template_id)
                   for m in part)
        assert all(m.header.frame_id == 'camera' for m in part)
        assert all(_ns(m.window_start) < _ns(m.header.stamp) for m in part)
        counts = collections.Counter(m.emotion for m in part)
        print(expected, counts)
        assert counts[expected] > 0.5 * len(part), counts
    stamps = [_ns(m.header.stamp) for m in graph.messages]
    assert len(stamps) == len(set(stamps))  # one verdict per new skeleton at most

    deleted = graph.call(graph.delete, DeleteTemplate.Request(template_id=sad.template_id))
    assert deleted.success, deleted.message
    assert graph.call(graph.list, ListTemplates.Request()).template_ids == [happy.template_id]
    assert len(list((tmp_path / 'templates').glob('*.npz'))) == 1
    assert graph.wait(lambda: graph.call(graph.list, ListTemplates.Request()).state == 'ready',
                      30.0)  # refitted in the background
    after = graph.verdicts(graph.feed(LAUGHING, 45))
    assert after and all(m.labels == ['happy'] for m in after[1:])


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
        answer = graph.call(graph.record, RecordTemplate.Request(label=label, duration=duration),
                            timeout=10.0)
        assert not answer.success and reason in answer.message and not answer.template_id, \
            (label, duration)
    assert graph.node.process.poll() is None


def test_recording_refuses_a_second_one_and_nobody_in_view(graph):
    black = np.zeros((240, 320, 3), np.uint8)
    first = graph.record.call_async(RecordTemplate.Request(label='nobody', duration=2.0))
    assert graph.node.wait_for_log('recording "nobody"', 10.0)
    second = graph.call(graph.record, RecordTemplate.Request(label='other', duration=1.0),
                        timeout=10.0)
    assert not second.success and 'already in progress' in second.message
    for _ in range(int(2.0 * RATE) + 10):
        if first.done():
            break
        graph.feed_one(black)
    assert graph.wait(first.done, 10.0)
    answer = first.result()
    assert not answer.success and 'nobody visible' in answer.message


def test_recording_without_images_and_bad_deletes(graph):
    answer = graph.call(graph.record, RecordTemplate.Request(label='silence', duration=0.5),
                        timeout=20.0)
    assert not answer.success and 'images stopped arriving' in answer.message
    unknown = graph.call(graph.delete, DeleteTemplate.Request(template_id='0123abcd'))
    assert not unknown.success and 'no template' in unknown.message
    bad = graph.call(graph.delete, DeleteTemplate.Request(template_id='../../etc/passwd'))
    assert not bad.success
    # The node keeps publishing, and says it has no templates.
    messages = graph.verdicts(graph.feed(LAUGHING, 45))
    assert messages and all(m.labels == [] and m.emotion == '' and m.confidence == 0.0
                            for m in messages)
    assert all(m.nearest_template == '' and math.isnan(m.nearest_distance) for m in messages)
    assert graph.node.process.poll() is None


# --- robustness: start-up, time, bursts, shutdown --------------------------------------------

def test_unusable_template_dir_is_fatal(start_node, tmp_path):
    not_a_folder = tmp_path / 'file'
    not_a_folder.write_text('a file where the template folder should be')
    node = start_node('gesture_emotion_node', {'template_dir': str(not_a_folder)})
    assert node.process.wait(timeout=STARTUP_S) == 1
    log = node.log()
    fatal = [line for line in log.splitlines() if 'FATAL' in line]
    assert len(fatal) == 1 and 'template_dir is unusable' in fatal[0], log
    assert 'Traceback' not in log


def _template(label: str) -> Template:
    """Return a 40-frame template of a person swaying (pixels, every joint seen)."""
    rest = np.array([[320, 80], [280, 150], [360, 150], [260, 220], [380, 220], [250, 290],
                     [390, 290], [295, 300], [345, 300], [290, 400], [350, 400], [290, 480],
                     [350, 480]], float)
    sway = 10 * np.sin(np.linspace(0, 4 * np.pi, 40))[:, None, None] * np.array([1.0, 0.2])
    return Template.new(label, rest[None] + sway, np.ones((40, 13)), 15.0, 'test')


def test_interrupted_writes_recovered_and_unused_templates_explained(
        start_node, probe, wait, pexels_frame, tmp_path):
    folder = tmp_path / 'templates'
    store = TemplateStore(folder)
    kept = _template('calm')
    store.save(kept)
    interrupted = _template('calm')  # complete, but never renamed into place (kill -9)
    store.save(interrupted)
    store.path_of(interrupted.id).rename(folder / '.tmp-interrupted1.npz')
    (folder / '.tmp-halfwritten.npz').write_bytes(b'PK\x03\x04 cut short')
    (folder / 'random.npz').write_bytes(bytes(range(256)) * 4)
    graph = GestureGraph(start_node, probe, wait, pexels_frame, folder)
    assert 'recovered template' in graph.node.log()
    assert not (folder / '.tmp-halfwritten.npz').exists()
    listed = graph.call(graph.list, ListTemplates.Request())
    rows = {i: (use, why)
            for i, use, why in zip(listed.template_ids, listed.in_use, listed.reasons)}
    assert listed.state == 'ready'
    assert rows[kept.id] == (True, '') and rows[interrupted.id] == (True, '')
    assert rows['random'][0] is False and 'not an .npz archive' in rows['random'][1]


def test_time_jumps_and_future_stamps_do_not_silence_it(graph):
    assert graph.verdicts(graph.feed(LAUGHING, 40))  # no templates: verdicts say so
    future = Image(header=Header(stamp=Time(nanoseconds=graph._next_ns + 7200 * 10**9).to_msg(),
                                 frame_id='camera'), height=SIZE[1], width=SIZE[0],
                   encoding='bgr8', step=SIZE[0] * 3, data=bytes(SIZE[0] * SIZE[1] * 3))
    assert graph.wait(lambda: (graph.images.publish(future),
                               'ahead of the clock' in graph.node.log())[1], 20.0, period=0.2)
    assert graph.verdicts(graph.feed(LAUGHING, 40))  # the future image changed nothing
    graph._next_ns -= 100 * 10**9  # the stream's clock jumps back (a looping bag)
    after_jump = graph.feed(LAUGHING, 40)
    assert 'time jumped back by' in graph.node.log()
    assert graph.verdicts(after_jump)  # the window restarted at once


#: rmw_fastrtps hands every answer of a service to every client of it, and a client keeps the last
#: 10 by default: in a burst, other callers' answers pushed out a caller's own before its executor
#: took it (33-49 of 50 answered). Callers that burst keep more; the node queues every request.
CALLER_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)


def test_bursts_of_calls_are_all_answered(graph):
    started = time.monotonic()
    records = [graph.probe.create_client(RecordTemplate, f'{NODE}/record_template',
                                         qos_profile=CALLER_QOS) for _ in range(50)]
    for client in records:
        assert client.wait_for_service(timeout_sec=10.0)
    futures = [client.call_async(RecordTemplate.Request(label='burst', duration=0.5))
               for client in records]
    assert graph.wait(lambda: all(f.done() for f in futures), 60.0), \
        f'{sum(f.done() for f in futures)} of 50 record calls answered'
    answers = [f.result() for f in futures]
    assert sum('already in progress' in a.message for a in answers) >= 45
    assert not any(a.success for a in answers)
    print(f'50 concurrent record calls answered in {time.monotonic() - started:.1f} s')
    deletes = [graph.probe.create_client(DeleteTemplate, f'{NODE}/delete_template',
                                         qos_profile=CALLER_QOS) for _ in range(10)]
    lists = [graph.probe.create_client(ListTemplates, f'{NODE}/list_templates',
                                       qos_profile=CALLER_QOS) for _ in range(10)]
    for client in deletes + lists:
        assert client.wait_for_service(timeout_sec=10.0)
    started = time.monotonic()
    futures = [request for d, li in zip(deletes, lists) for _ in range(10) for request in (
        d.call_async(DeleteTemplate.Request(template_id='missing')),
        li.call_async(ListTemplates.Request()))]
    assert graph.wait(lambda: all(f.done() for f in futures), 60.0), \
        f'{sum(f.done() for f in futures)} of {len(futures)} list/delete calls answered'
    print(f'{len(futures)} list/delete calls answered in {time.monotonic() - started:.1f} s')


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_stop_during_a_recording_answers_the_caller(graph, signum):
    future = graph.record.call_async(RecordTemplate.Request(label='cut', duration=10.0))
    assert graph.node.wait_for_log('recording "cut"', 10.0)
    graph.feed(LAUGHING, 5)
    graph.node.process.send_signal(signum)
    assert graph.wait(future.done, 10.0), graph.node.log()[-2000:]
    answer = future.result()
    assert not answer.success and 'shutting down' in answer.message, answer.message
    assert graph.node.process.wait(timeout=10.0) == 0
    log = graph.node.log()
    assert 'Traceback' not in log and 'terminate called' not in log, log[-2000:]


def _handles_sigterm(pid: int) -> bool:
    """Return whether the process has its own SIGTERM handler (Python has none by default)."""
    with open(f'/proc/{pid}/status') as status:
        caught = next(line for line in status if line.startswith('SigCgt:'))
    return bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


@pytest.mark.parametrize('delay', [0.0, 1.5, 3.0])
def test_stop_while_starting(start_node, wait, tmp_path, delay):
    node = start_node('gesture_emotion_node', {'template_dir': str(tmp_path)})
    # A signal before the executable's first line runs would end it the default way.
    assert wait(lambda: _handles_sigterm(node.process.pid), 30.0, period=0.01)
    time.sleep(delay)  # importing, loading MediaPipe, or compiling the DTW
    node.process.send_signal(signal.SIGINT)
    assert node.process.wait(timeout=10.0) == 0
    log = node.log()
    assert 'Traceback' not in log and 'terminate called' not in log, log[-2000:]


def test_stop_while_a_template_is_written_loses_nothing(graph, start_node, probe, wait,
                                                        pexels_frame, tmp_path):
    future = graph.record.call_async(RecordTemplate.Request(label='last', duration=1.0))
    assert graph.node.wait_for_log('recording "last"', 10.0)
    graph.feed(LAUGHING, int(1.0 * RATE) + 1)  # the recording ends: the template is being saved
    graph.node.process.send_signal(signal.SIGINT)
    assert graph.node.process.wait(timeout=10.0) == 0
    folder = tmp_path / 'templates'
    saved = list(folder.glob('*.npz'))
    if future.done() and future.result().success:
        assert [p.stem for p in saved] == [future.result().template_id]
    assert len(saved) <= 1 and not list(folder.glob('.tmp-*'))
    again = GestureGraph(start_node, probe, wait, pexels_frame, folder)  # it starts, and lists
    listed = again.call(again.list, ListTemplates.Request())  # what was written, whole
    assert sorted(listed.template_ids) == sorted(p.stem for p in saved)
    assert all(listed.in_use)
