"""
The gesture-emotion node in its own process, fed skeleton messages in lock step.

The skeletons are MediaPipe's on the demo clip (as body_pose publishes them). Templates are
recorded over the service, then the verdicts must follow the clip; every bad request and every
malformed skeleton is refused with a reason. Messages go out stamped 1/RATE s apart, and the
node publishes a verdict for each one once a person's window is full (publish_rate = RATE): the
next message goes out only once the verdicts for the last one came back, so what the node sees
does not depend on how fast this machine is. Before a window is full, messages go out in
batches smaller than the node's queue (reliable QoS: none is lost).
"""
from __future__ import annotations

import collections
import math
import signal
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from emorec_ros.gesture.skeleton import Skeleton
from emorec_ros.gesture.store import TemplateStore
from emorec_ros.gesture.template import Template
from emorec_ros.msg import GestureEmotion, SkeletonArray
from emorec_ros.nodes.skeleton_msgs import skeleton_array, skeleton_to_msg
from emorec_ros.srv import DeleteTemplate, ListTemplates, RecordTemplate
import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Header

STARTUP_S = 180.0  # tslearn's DTW compiled (numba) when not cached, busy machine
RATE = 15.0  # stamps of the messages fed: a 15 fps camera
STEP_NS = round(1e9 / RATE)
CLIP_FPS = 23.976
WINDOW_S = 2.0
FULL_S = 1.9  # a window is classified once it covers 0.9 of WINDOW_S: wait for verdicts after
RECORD_S = 3.0  # one short recording per label, as an operator makes
CRYING, LAUGHING = (60, 230), (280, 472)  # frames of the clip (a hand near the face while crying)
NODE = '/gesture_emotion'
#: Reliable, and deep enough for any batch the feeder sends without waiting (less than the
#: node's queue of 60).
FEED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE)
BATCH = 20
BATCH_PAUSE_S = 0.5  # after each batch, for the node to take it
#: The node forgets every window after person_lost_s of wall-clock time without a message (node
#: clock). Every pause of the tests (batches, waits for diagnostics or answers) must stay well
#: under it on a busy machine: a pause as long as the default (1.0 s) made the node forget a
#: window the feeder counted as full.
PERSON_LOST_S = 30.0


class GestureGraph:
    """The node under test, its services, what it publishes, and a lock-step feeder."""

    def __init__(self, start_node, probe, wait, skeletons, template_dir, **params) -> None:
        self.probe, self.wait, self.skeletons = probe, wait, skeletons
        self.node = start_node('gesture_emotion_node', {
            'template_dir': str(template_dir), 'max_record_duration': 14.0,
            'publish_rate': RATE, 'window_s': WINDOW_S, 'person_lost_s': PERSON_LOST_S,
            **params})
        self._lock = threading.Lock()
        self.messages: list[GestureEmotion] = []
        self._answered: set[tuple[str, int]] = set()  # (person, stamp) of the verdicts
        probe.create_subscription(GestureEmotion, 'gesture_emotion', self._verdict,
                                  QoSProfile(depth=1000))
        self.publisher = probe.create_publisher(SkeletonArray, 'skeletons', FEED_QOS)
        self.record = probe.create_client(RecordTemplate, f'{NODE}/record_template')
        self.list = probe.create_client(ListTemplates, f'{NODE}/list_templates')
        self.delete = probe.create_client(DeleteTemplate, f'{NODE}/delete_template')
        for client in (self.record, self.list, self.delete):
            assert client.wait_for_service(timeout_sec=30.0), self.node.log()
        assert self.node.wait_for_log(']: active', timeout=STARTUP_S), self.node.log()
        assert self.wait(lambda: self.publisher.get_subscription_count() > 0, 30.0)
        # Stamps start an hour back: fed faster than RATE, they never run ahead of the clock.
        self.next_ns = probe.get_clock().now().nanoseconds - 3600 * 10**9
        self._cursor: dict[tuple[int, int], int] = collections.defaultdict(int)
        self._seen_since: dict[str, int] = {}  # first stamp of each person's current run
        self._unanswered = 0

    def _verdict(self, msg: GestureEmotion) -> None:
        with self._lock:
            self.messages.append(msg)
            self._answered.add((msg.person_id, _ns(msg.header.stamp)))

    def publish(self, people: dict[str, Skeleton | None], stamp_ns: int | None = None) -> int:
        """Publish one message (no wait); return its stamp."""
        if stamp_ns is None:
            stamp_ns, self.next_ns = self.next_ns, self.next_ns + STEP_NS
        header = Header(stamp=Time(nanoseconds=stamp_ns).to_msg(), frame_id='camera')
        self.publisher.publish(skeleton_array(
            header, [(pid, s) for pid, s in people.items() if s is not None]))
        return stamp_ns

    def feed_one(self, people: dict[str, Skeleton | None], timeout: float = 30.0) -> int:
        """
        Publish one message of these people; return its stamp (ns).

        Once a person's window is full, wait until the node answered this stamp for each such
        person. Before, nothing comes back to wait for: pause briefly, and for BATCH_PAUSE_S after
        every BATCH messages (reliable delivery; the node's queue holds 60).
        """
        stamp_ns = self.publish(people)
        seen = {pid for pid, s in people.items() if s is not None}
        for pid in list(self._seen_since):
            if pid not in seen:
                del self._seen_since[pid]
        for pid in seen:
            self._seen_since.setdefault(pid, stamp_ns)
        full = [pid for pid in seen if stamp_ns - self._seen_since[pid] >= FULL_S * 1e9]
        if full:
            self._unanswered = 0
            if not self.wait(lambda: all((pid, stamp_ns) in self._answered for pid in full),
                             timeout, period=0.005):
                pytest.fail(f'no verdict for {full} at {stamp_ns} in {timeout:g} s:\n'
                            f'{self.node.log()[-2000:]}')
        else:
            self._unanswered += 1
            time.sleep(0.02 if self._unanswered % BATCH else BATCH_PAUSE_S)
        return stamp_ns

    def frame_of(self, part: tuple[int, int]) -> Skeleton | None:
        """Return the skeleton of the next frame of this part of the clip (looping, at RATE)."""
        step = self._cursor[part]
        self._cursor[part] += 1
        return self.skeletons[part[0] + int(step * CLIP_FPS / RATE) % (part[1] - part[0])]

    def feed(self, part: tuple[int, int], count: int, person: str = 'person1') -> tuple[int, int]:
        """Feed ``count`` messages of one person in this part of the clip; return the stamps."""
        stamps = [self.feed_one({person: self.frame_of(part)}) for _ in range(count)]
        return stamps[0], stamps[-1]

    def verdicts(self, stamps: tuple[int, int], person: str = 'person1') -> list[GestureEmotion]:
        """Return the verdicts on this person's windows ending within these stamps."""
        with self._lock:
            return [m for m in self.messages if m.person_id == person
                    and stamps[0] <= _ns(m.header.stamp) <= stamps[1]]

    def call(self, client, request, timeout: float = 30.0):
        future = client.call_async(request)
        assert self.wait(future.done, timeout), \
            f'no answer from {client.srv_name}: {self.node.log()[-2000:]}'
        return future.result()

    def record_while_feeding(self, label: str, duration: float, feed,
                             person_id: str = '') -> RecordTemplate.Response:
        """Call record_template and feed messages (``feed()`` one each) until it answers."""
        future = self.record.call_async(
            RecordTemplate.Request(label=label, duration=duration, person_id=person_id))
        assert self.node.wait_for_log(f'recording "{label}"', timeout=30.0), self.node.log()
        for _ in range(int(duration * RATE) + 60):
            if future.done():
                break
            feed()
        assert self.wait(future.done, 30.0), self.node.log()[-2000:]
        return future.result()


def _ns(t) -> int:
    return t.sec * 1_000_000_000 + t.nanosec


@pytest.fixture()
def graph(start_node, probe, wait, pexels_skeletons, tmp_path):
    return GestureGraph(start_node, probe, wait, pexels_skeletons, tmp_path / 'templates')


def test_record_list_classify_delete(graph, tmp_path):
    graph.feed(CRYING, 30)  # the operator sees the person before recording
    sad = graph.record_while_feeding('sad', RECORD_S, lambda: graph.feed(CRYING, 1))
    assert sad.success, sad.message
    assert 'person1' in sad.message
    assert sad.frames == RECORD_S * RATE and sad.template_id  # lock step: none lost
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
        assert len(part) >= 80, graph.node.log()[-2000:]
        assert all(m.labels == ['happy', 'sad'] and len(m.scores) == 2 for m in part)
        assert all(m.nearest_template in (sad.template_id, happy.template_id) for m in part)
        assert all(m.header.frame_id == 'camera' for m in part)
        assert all(_ns(m.window_start) < _ns(m.header.stamp) for m in part)
        counts = collections.Counter(m.emotion for m in part)
        print(expected, counts)
        assert counts[expected] >= 0.7 * len(part), counts  # the teach-in target
    stamps = [_ns(m.header.stamp) for m in graph.messages]
    assert len(stamps) == len(set(stamps))  # one verdict per person and stamp at most

    deleted = graph.call(graph.delete, DeleteTemplate.Request(template_id=sad.template_id))
    assert deleted.success, deleted.message
    assert graph.call(graph.list, ListTemplates.Request()).template_ids == [happy.template_id]
    assert len(list((tmp_path / 'templates').glob('*.npz'))) == 1
    assert graph.wait(lambda: graph.call(graph.list, ListTemplates.Request()).state == 'ready',
                      30.0)  # refitted in the background
    after = graph.verdicts(graph.feed(LAUGHING, 45))
    assert after and all(m.labels == ['happy'] for m in after[1:])


def test_each_person_has_a_window_and_can_be_recorded(graph):
    """Two people in every message: verdicts for both, a recording of the one asked for."""
    def both() -> dict[str, Skeleton | None]:
        crying, laughing = graph.frame_of(CRYING), graph.frame_of(LAUGHING)
        return {'left': crying, 'right': _shifted(laughing, 700.0)}

    stamps = [graph.feed_one(both()) for _ in range(40)]
    for person in ('left', 'right'):
        mine = graph.verdicts((stamps[0], stamps[-1]), person)
        assert len(mine) >= 10 and all(m.person_id == person for m in mine)
    refused = graph.call(graph.record, RecordTemplate.Request(
        label='x', duration=1.0, person_id='nobody_here'))
    assert not refused.success and 'not in view' in refused.message
    assert 'left' in refused.message and 'right' in refused.message
    answer = graph.record_while_feeding('laughing', 2.0, lambda: graph.feed_one(both()),
                                        person_id='right')
    assert answer.success, answer.message
    template = TemplateStore(graph.node.log_path.parent / 'templates').load()[0][0]
    # The right person's skeletons were recorded: they stand 700 px to the right.
    assert template.positions[:, :, 0].mean() > 700


def _shifted(skeleton: Skeleton | None, dx: float) -> Skeleton | None:
    if skeleton is None:
        return None
    return Skeleton(skeleton.positions + [dx, 0.0], skeleton.visibility)


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
    first = graph.record.call_async(RecordTemplate.Request(label='nobody', duration=2.0))
    assert graph.node.wait_for_log('recording "nobody"', 10.0)
    second = graph.call(graph.record, RecordTemplate.Request(label='other', duration=1.0),
                        timeout=10.0)
    assert not second.success and 'already in progress' in second.message
    for _ in range(int(2.0 * RATE) + 10):
        if first.done():
            break
        graph.feed_one({})
    assert graph.wait(first.done, 10.0)
    answer = first.result()
    assert not answer.success and 'seen in 0 of' in answer.message, answer.message


def test_recording_without_messages_and_bad_deletes(graph):
    answer = graph.call(graph.record, RecordTemplate.Request(label='silence', duration=0.5),
                        timeout=20.0)
    assert not answer.success and 'stopped arriving' in answer.message
    # A stream that ends a little early (a clip, a bag): what was recorded is kept.
    graph.feed(CRYING, 30)  # the last ones answered: none is still on its way when it starts
    future = graph.record.call_async(RecordTemplate.Request(label='short', duration=3.0))
    assert graph.node.wait_for_log('recording "short"', 10.0)
    graph.feed(CRYING, 40)  # 2.6 s of the 3 s
    assert graph.wait(future.done, 30.0), graph.node.log()[-2000:]
    kept = future.result()
    assert kept.success and kept.frames == 40, kept.message
    assert 'the stream stopped after 2.6 s' in kept.message
    graph.call(graph.delete, DeleteTemplate.Request(template_id=kept.template_id))
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


def _malformed(good: Skeleton) -> list:
    """Return malformed skeleton messages: unequal lengths, unknown joint, NaN, empty, no id."""
    short, unknown, nan, empty, no_id = (skeleton_to_msg(pid, good)
                                         for pid in ('bad', 'bad', 'bad', 'bad', ''))
    short.x = short.x[:-1]
    unknown.joint_names = ['nose'] + list(unknown.joint_names[1:])
    nan.x = [math.nan] + list(nan.x[1:])
    empty.joint_names, empty.x, empty.y, empty.confidence = [], [], [], []
    return [short, unknown, nan, empty, no_id]


def test_malformed_skeletons_are_skipped_with_a_reason(graph):
    """Each is logged (throttled) and counted; the good skeleton beside it is still used."""
    diagnostics = []
    graph.probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    good = graph.skeletons[LAUGHING[0]]
    graph.feed(LAUGHING, 35)
    for bad in _malformed(good):
        stamp = graph.next_ns
        graph.next_ns += STEP_NS
        header = Header(stamp=Time(nanoseconds=stamp).to_msg(), frame_id='camera')
        message = skeleton_array(header, [('person1', graph.frame_of(LAUGHING))])
        message.skeletons.append(bad)
        graph.publisher.publish(message)
        assert graph.wait(lambda: ('person1', stamp) in graph._answered, 30.0)
    assert graph.node.wait_for_log('unequal array lengths', 10.0), graph.node.log()[-2000:]
    assert not any(m.person_id in ('bad', '') for m in graph.messages)

    def rejected() -> str | None:
        values = [{kv.key: kv.value for kv in s.values} for a in diagnostics for s in a.status
                  if s.name == f'emorec_ros: {NODE}']
        return values[-1].get('skeletons rejected') if values else None

    assert graph.wait(lambda: rejected() == '5', 10.0), rejected()
    assert graph.verdicts(graph.feed(LAUGHING, 5))
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
        start_node, probe, wait, pexels_skeletons, tmp_path):
    folder = tmp_path / 'templates'
    store = TemplateStore(folder)
    kept = _template('calm')
    store.save(kept)
    interrupted = _template('calm')  # complete, but never renamed into place (kill -9)
    store.save(interrupted)
    store.path_of(interrupted.id).rename(folder / '.tmp-interrupted1.npz')
    (folder / '.tmp-halfwritten.npz').write_bytes(b'PK\x03\x04 cut short')
    (folder / 'random.npz').write_bytes(bytes(range(256)) * 4)
    graph = GestureGraph(start_node, probe, wait, pexels_skeletons, folder)
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
    future = graph.next_ns + 7200 * 10**9
    assert graph.wait(lambda: (graph.publish({'person1': graph.frame_of(LAUGHING)}, future),
                               'ahead of the clock' in graph.node.log())[1], 20.0, period=0.2)
    assert graph.verdicts(graph.feed(LAUGHING, 40))  # the future message changed nothing
    graph.next_ns -= 100 * 10**9  # the stream's clock jumps back (a looping bag)
    graph._seen_since.clear()
    after_jump = graph.feed(LAUGHING, 40)
    assert 'time jumped back by' in graph.node.log()
    assert graph.verdicts(after_jump)  # the windows restarted at once


def test_verdicts_follow_the_stamps_not_the_wall_clock(start_node, probe, wait,
                                                       pexels_skeletons, tmp_path):
    """
    With use_sim_time, the same stream gives the same verdicts however fast it is played.

    A bag played at 2x with --clock: /clock runs with the stamps. The stream is fed once as
    fast as the node answers and once in real time of the simulated clock's half (2x), with
    templates recorded (on the stamps) in the first pass and kept for the second.
    """
    folder = tmp_path / 'templates'
    clock = probe.create_publisher(Clock, '/clock', 10)
    runs = []
    for pace in (0.0, 0.5 / RATE):
        # /clock is best effort: a skeleton may come before the clock it was sent after.
        graph = GestureGraph(start_node, probe, wait, pexels_skeletons, folder,
                             use_sim_time=True, max_stamp_ahead_s=3600.0)
        graph.next_ns = 1_000 * 10**9  # the bag's time
        real_publish = graph.publish

        def publish(people, stamp_ns=None, real_publish=real_publish, graph=graph, pace=pace):
            stamp = graph.next_ns if stamp_ns is None else stamp_ns
            clock.publish(Clock(clock=Time(nanoseconds=stamp).to_msg()))
            time.sleep(pace)
            return real_publish(people, stamp_ns)

        graph.publish = publish
        if not runs:
            graph.feed(CRYING, 20)
            sad = graph.record_while_feeding('sad', 3.0, lambda: graph.feed(CRYING, 1))
            happy = graph.record_while_feeding('happy', 3.0, lambda: graph.feed(LAUGHING, 1))
            assert sad.success and happy.success, (sad.message, happy.message)
            assert sad.frames == happy.frames == 3 * RATE  # the stamps decide, whatever the pace
        graph.next_ns = 2_000 * 10**9
        graph._seen_since.clear()
        graph._cursor.clear()  # both runs replay the same frames
        start, end = graph.feed(LAUGHING, 45)[0], graph.feed(CRYING, 45)[1]
        # The node answers from 0.9 of a window on; the feeder waits from FULL_S on, and only
        # the verdicts it waited for are certain to be there.
        waited = (start + round(FULL_S * 1e9), end)
        runs.append([(_ns(m.header.stamp), m.emotion, tuple(np.round(m.scores, 5)))
                     for m in graph.verdicts(waited)])
        graph.node.stop()
    assert len(runs[0]) >= 60 and runs[0] == runs[1]


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
    time.sleep(delay)  # importing, or compiling the DTW
    node.process.send_signal(signal.SIGINT)
    assert node.process.wait(timeout=10.0) == 0
    log = node.log()
    assert 'Traceback' not in log and 'terminate called' not in log, log[-2000:]


def test_stop_while_a_template_is_written_loses_nothing(graph, start_node, probe, wait,
                                                        pexels_skeletons, tmp_path):
    graph.feed(LAUGHING, 5)
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
    again = GestureGraph(start_node, probe, wait, pexels_skeletons, folder)  # it starts, and
    listed = again.call(again.list, ListTemplates.Request())  # lists what was written, whole
    assert sorted(listed.template_ids) == sorted(p.stem for p in saved)
    assert all(listed.in_use)
