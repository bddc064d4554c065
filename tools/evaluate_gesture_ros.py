"""
Body-language emotion end to end through ROS, against the same classifier offline.

Every node runs as the installed executable in a process of its own (as ``ros2 launch`` starts
them, ``autostart``), on a ROS domain of its own (--domain, default a random one in 150-200),
with discovery on the local network, FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA for images (640x480
images do not get through with LOCALHOST discovery: README, Transports) and the default set for
skeletons alone. Four classes: angry, happy,
sad, neutral (the Bandai-Namco style 'normal'). The nodes run at real time: clips play at their
own rate.

A. Motion capture, the Bandai-Namco dataset 1, one movement held out at a time (folds:
--movements, default bandai.MAIN_MOVEMENTS). One gesture_emotion per fold, each in a namespace of
its own (/mocap_<movement>) with an empty template folder, all listening to /skeletons. Teaching:
per label, a shuffle of that label's clips (--seed); a fold takes the first --k that are not of
its movement. Of each clip some fold takes, a part of at most --record-s seconds (a seeded start;
a shorter clip whole) and TAIL_S seconds after it (the clip looped where it ends) are played, one
after the other, by one motion_player (after a LEAD_IN_S lead-in that shows whether every node
hears it), and each fold that takes the clip calls ``record_template`` (--record-s seconds at
most, the person id of the part's first skeleton) when the part starts. Then another
motion_player plays every held-out clip, a clip shorter than MIN_PLAY_S looped (whole
cycles) to at least that, so that the node sees full windows, as the offline evaluation loops a
clip shorter than a window. ROS: the clip's verdicts on its fold's ``gesture_emotion`` (by the
person id that the player's ``~/clip`` announced for it). Offline: the templates the fold's node
saved (TemplateStore), a GestureClassifier fitted on them as the node fits it, on the same clip
filmed as motion_player films it (camera.front_view, its default camera), windows of window_s
every 1 / publish_rate s (``scoring.stream_probabilities``).

B. Camera, the rendered clips of <data>/video/fullbody (walk, bow, byebye x the four emotions;
640x480, 30 fps, the true joint pixels ``gt`` beside each): video_source -> body_pose ->
gesture_emotion. One gesture_emotion per held-out movement (--camera-folds), taught on the other
two: each of their clips plays a part as above, one video_source process per play (activated
once it is discovered, so that no image is lost to the start of the connection), and the folds
record it. Then each held-out clip plays once (looped as above when short). ROS: the fold's
verdicts stamped with the clip's images; offline: the fold's templates on the skeletons body_pose
published for those images (an image without one counts as nobody seen). body_pose's joint
error: each published skeleton's joints against the true joints of its image, in pixels and in
torso lengths (true shoulder midpoint to true hip midpoint), all 13 joints however visible
MediaPipe thinks they are.

A clip's answer, through ROS and offline alike: the label with the highest mean log probability
over its windows (``scoring.clip_answer``); a clip without a verdict counts as wrong. Printed:
per clip, per fold and pooled, the ROS and offline accuracy and their difference (target: within
5 points), verdicts per clip against offline windows, and for each recording the share of the
skeletons published during it that the template kept.

Part A runs --parallel folds at a time (default 4): each gesture_emotion takes about an eighth
of a core, and ten at once on two cores left the nodes seconds behind the stream, so that
recordings were refused. The full run (10 folds, 12 camera clips) takes about 17 minutes on two
cores (A about 11, B about 6); --quick (folds bow and guide with --k 1; camera: bow held out,
taught on walk) about 5.

    python tools/evaluate_gesture_ros.py [--data ../shared/data] [--quick] [--parts AB]
        [--movements ...] [--camera-folds ...] [--k 2] [--parallel 4] [--seed 0] [--logs DIR]
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import dataclass, field
import itertools
import os
from pathlib import Path
import random
import sys
import tarfile
import tempfile
import threading
import time

import cv2
from emorec_ros.gesture.bandai import ARCHIVE, MAIN_MOVEMENTS
from emorec_ros.gesture.camera import front_view
from emorec_ros.gesture.classify import GestureClassifier, WINDOW_S
from emorec_ros.gesture.evaluate import CLASS_SETS, STYLE_LABELS
from emorec_ros.gesture.mocap import ClipFile, find_clips, load_clips
from emorec_ros.gesture.scoring import clip_answer, reorder, stream_probabilities
from emorec_ros.gesture.skeleton import JOINTS, Skeleton
from emorec_ros.gesture.store import read_template, TemplateStore
from emorec_ros.gesture.window import NS
from emorec_ros.msg import GestureEmotion, SkeletonArray
from emorec_ros.nodes.motion_player import CLIP_QOS
from emorec_ros.nodes.skeleton_msgs import skeleton_from_msg
from emorec_ros.srv import ListTemplates, RecordTemplate
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import String

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'test'))  # the project's env runs Python with a safe path
sys.path.insert(0, str(ROOT / 'bench'))
from conftest import NodeProcess  # noqa: E402, I100
from node_bench import spinning  # noqa: E402
from pose_accuracy import true_torso  # noqa: E402

LABELS = CLASS_SETS[4]
#: Bandai-Namco style of each label.
STYLES = {label: style for style, label in STYLE_LABELS.items() if label in LABELS}
#: Verdicts per person per second (the node's default), and so the offline window stride.
PUBLISH_RATE = 4.0
#: Held-out clips shorter than this play looped (whole cycles) to at least this, seconds.
MIN_PLAY_S = 3.0
#: Seconds played after a taught part, so that a recording that starts late still ends in it.
TAIL_S = 1.0
#: Seconds a node may take to become active (the gesture node's warm-up on a busy machine).
START_TIMEOUT_S = 300.0
#: Seconds a player may take until its services are discovered, and how often it is started.
DISCOVERY_TIMEOUT_S, PLAYER_STARTS = 30.0, 3
#: Clip played before the others by a motion_player, and its seconds.
LEAD_IN, LEAD_IN_S = '0_lead_in', 4.0
#: Seconds between a player's start and its activation, for DDS to connect it.
MATCH_S = 1.5
#: Seconds during which a recording refused because the node has not seen the person yet (it
#: is behind the stream) is asked again.
IN_VIEW_RETRY_S = 3.0
#: Seconds a record_template answer may take after its recording (the refit).
ANSWER_TIMEOUT_S = 180.0
#: FastDDS transports of each part: the default set carries skeletons; 640x480 images need
#: LARGE_DATA (README, Transports).
TRANSPORTS = {'A': 'DEFAULT', 'B': 'LARGE_DATA'}
#: Numbers the video_source processes (node names of their own).
VIDEO_PLAYS = itertools.count(1)
FULLBODY_MOVEMENTS = ('walk', 'bow', 'byebye')
QUICK_MOVEMENTS = ('bow', 'guide')
QUICK_CAMERA = {'bow': ('walk',)}


# --- what is played ------------------------------------------------------------------------

@dataclass(frozen=True)
class Clip:
    """A source clip: its name, movement, label, frames and frame rate."""

    name: str
    movement: str
    label: str
    frames: int
    fps: float


@dataclass(frozen=True)
class Play:
    """
    One play of a clip: the clip's frame indices in play order.

    ``record_s`` > 0: the folds in ``folds`` record that many seconds as the play starts.
    """

    clip: Clip
    frames: tuple[int, ...]
    record_s: float = 0.0
    folds: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.clip.fps


def taught_part(clip: Clip, record_s: float, rng: np.random.Generator) -> tuple[int, ...]:
    """Return a random part of at most ``record_s`` s and TAIL_S s after it (looped at the end)."""
    part = min(clip.frames, round(record_s * clip.fps))
    start = int(rng.integers(0, clip.frames - part + 1))
    return tuple((start + i) % clip.frames for i in range(part + round(TAIL_S * clip.fps)))


def held_out_play(clip: Clip) -> Play:
    """Return a play of the whole clip, repeated until it lasts MIN_PLAY_S."""
    repeats = max(1, int(np.ceil(MIN_PLAY_S * clip.fps / clip.frames)))
    return Play(clip, tuple(range(clip.frames)) * repeats)


def teaching_plays(clips: list[Clip], folds: dict[str, tuple[str, ...]], k: int | None,
                   record_s: float, seed: int) -> list[Play]:
    """
    Return the taught parts, each with the folds that record it.

    ``folds``: held-out movement -> movements it may be taught on. ``k`` None: every clip of
    those movements; else per label the first ``k`` of a seeded shuffle of the label's clips.
    """
    rng = np.random.default_rng(seed)
    taught: dict[Clip, list[str]] = defaultdict(list)
    for label in LABELS:
        own = [c for c in clips if c.label == label]
        order = [own[i] for i in rng.permutation(len(own))]
        for fold, movements in folds.items():
            chosen = [c for c in order if c.movement in movements]
            for clip in chosen if k is None else chosen[:k]:
                taught[clip].append(fold)
    plays = []
    for clip in sorted(taught, key=lambda c: c.name):
        part = taught_part(clip, record_s, np.random.default_rng([seed, clips.index(clip)]))
        plays.append(Play(clip, part, min(record_s, clip.frames / clip.fps), tuple(taught[clip])))
    return plays


# --- the listener ----------------------------------------------------------------------------

@dataclass
class Seen:
    """A skeleton that came on /skeletons: its stamp, person id and joints."""

    stamp_ns: int
    person: str
    skeleton: Skeleton


class Listener(Node):
    """Keeps what the graph publishes; calls the folds' services."""

    def __init__(self, namespaces: list[str]) -> None:
        super().__init__(f'evaluate_gesture_ros_{os.getpid()}')
        self._lock = threading.Lock()
        self.skeletons: list[Seen] = []
        self.arrays: list[int] = []  # stamps of every SkeletonArray
        self.images: list[int] = []  # stamps of video_source's camera_info, one per image
        self.clips: list[str] = []  # motion_player/clip announcements
        self.verdicts: dict[str, list[GestureEmotion]] = {ns: [] for ns in namespaces}
        deep = QoSProfile(depth=1000)
        self.create_subscription(SkeletonArray, '/skeletons', self._on_skeletons, deep)
        self.create_subscription(CameraInfo, '/camera_info', self._on_image,
                                 qos_profile_sensor_data)
        self.record_clients, self.list_clients = {}, {}
        for ns in namespaces:
            self.create_subscription(GestureEmotion, f'{ns}/gesture_emotion',
                                     lambda msg, ns=ns: self._on_verdict(ns, msg), deep)
            self.record_clients[ns] = self.create_client(
                RecordTemplate, f'{ns}/gesture_emotion/record_template')
            self.list_clients[ns] = self.create_client(
                ListTemplates, f'{ns}/gesture_emotion/list_templates')

    def _on_skeletons(self, msg: SkeletonArray) -> None:
        stamp = Time.from_msg(msg.header.stamp).nanoseconds
        seen = [Seen(stamp, s.id, skeleton_from_msg(s)) for s in msg.skeletons]
        with self._lock:
            self.arrays.append(stamp)
            self.skeletons += seen

    def _on_image(self, msg: CameraInfo) -> None:
        with self._lock:
            self.images.append(Time.from_msg(msg.header.stamp).nanoseconds)

    def listen_to_clips(self, topic: str) -> None:
        """Keep the announcements of a motion_player's ``~/clip`` topic."""
        self.create_subscription(String, topic, self._on_clip, CLIP_QOS)

    def _on_clip(self, msg: String) -> None:
        with self._lock:
            self.clips.append(msg.data)

    def _on_verdict(self, ns: str, msg: GestureEmotion) -> None:
        with self._lock:
            self.verdicts[ns].append(msg)

    def peek_verdicts(self, ns: str) -> list[GestureEmotion]:
        """Return the verdicts of a namespace that came so far."""
        with self._lock:
            return list(self.verdicts[ns])

    def take_verdicts(self) -> dict[str, list[GestureEmotion]]:
        """Return the verdicts that came so far, by namespace, and forget them."""
        with self._lock:
            verdicts = self.verdicts
            self.verdicts = {ns: [] for ns in verdicts}
        return verdicts

    def marks(self) -> tuple[int, int, int, int]:
        """Return how many skeletons, arrays, images and announcements came so far."""
        with self._lock:
            return len(self.skeletons), len(self.arrays), len(self.images), len(self.clips)

    def since(self, marks: tuple[int, int, int, int]) -> tuple[list, list, list, list]:
        """Return the skeletons, array stamps, image stamps and announcements after ``marks``."""
        with self._lock:
            return (self.skeletons[marks[0]:], self.arrays[marks[1]:], self.images[marks[2]:],
                    self.clips[marks[3]:])

    def first_person(self, marks: tuple[int, int, int, int], timeout: float) -> str:
        """Return the id of the first skeleton after ``marks``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.since(marks)[0]
            if seen:
                return seen[0].person
            time.sleep(0.005)
        raise RuntimeError(f'no skeleton on /skeletons within {timeout:g} s')


def wait_future(future, timeout: float):
    """Return the future's result, or None after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    return future.result() if future.done() else None


def call(client, request, timeout: float = 30.0):
    """Call a service and wait for its answer (None when it does not come)."""
    if not client.wait_for_service(timeout_sec=timeout):
        raise RuntimeError(f'service {client.srv_name} is not offered')
    return wait_future(client.call_async(request), timeout)


# --- the nodes --------------------------------------------------------------------------------

class Graph:
    """The node processes of a run; every one is stopped by stop_all()."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[NodeProcess] = []

    def start(self, executable: str, log_name: str, params: dict,
              remaps: dict | None = None) -> NodeProcess:
        process = NodeProcess(executable, params, self.logs / f'{log_name}.log', remaps)
        self.processes.append(process)
        return process

    def wait_active(self, process: NodeProcess, timeout: float = START_TIMEOUT_S) -> None:
        if not process.wait_for_log(']: active', timeout):
            ended = process.process.poll()
            raise RuntimeError(
                f'{process.log_path.stem} is not active '
                + (f'(it exited with status {ended})' if ended is not None else
                   f'after {timeout:g} s') + f':\n{process.log()[-3000:]}')

    def stop(self, process: NodeProcess) -> None:
        process.stop()
        self.processes.remove(process)

    def start_player(self, listener: Listener, executable: str, name: str,
                     params: dict) -> tuple[NodeProcess, str]:
        """
        Start a player paused; configure and activate it once DDS has had MATCH_S to connect it.

        A publisher that starts at once loses its first seconds to the subscribers that have not
        discovered it yet (up to several seconds on a busy machine). Each player gets a node name
        of its own, so that no call goes to the lifecycle services of a player stopped earlier,
        which discovery may still list. A player whose services are not discovered within
        DISCOVERY_TIMEOUT_S (seen once in about 30 starts) is stopped and started again under
        another name, up to PLAYER_STARTS times. Returns the process and its node name.
        """
        for attempt in range(PLAYER_STARTS):
            node = name if not attempt else f'{name}_{attempt}'
            process = self.start(executable, node, {**params, 'autostart': False},
                                 {'__node': node})
            client = listener.create_client(ChangeState, f'/{node}/change_state')
            if client.wait_for_service(timeout_sec=DISCOVERY_TIMEOUT_S):
                break
            print(f'    {node}: not discovered in {DISCOVERY_TIMEOUT_S:g} s, started again')
            self.stop(process)
        else:
            raise RuntimeError(f'{name}: not discovered in {PLAYER_STARTS} starts:\n'
                               f'{process.log()[-3000:]}')
        time.sleep(MATCH_S)
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            answer = call(client, ChangeState.Request(transition=Transition(id=transition)))
            if answer is None or not answer.success:
                raise RuntimeError(f'{node}: transition {transition} failed:\n'
                                   f'{process.log()[-3000:]}')
        return process, node

    def stop_all(self) -> None:
        for process in list(self.processes):
            self.stop(process)


def start_folds(graph: Graph, path: str, folds: list[str], scratch: Path) -> dict[str, str]:
    """Start one gesture_emotion per fold (empty template folder); return fold -> namespace."""
    namespaces = {}
    processes = []
    for fold in folds:
        ns = f'/{path}_{fold.replace("-", "_")}'
        directory = scratch / ns.strip('/') / 'templates'
        directory.mkdir(parents=True)
        processes.append(graph.start(
            'gesture_emotion_node', f'gesture_emotion{ns.replace("/", "_")}',
            {'template_dir': str(directory), 'window_s': WINDOW_S,
             'publish_rate': PUBLISH_RATE},
            {'__ns': ns, 'skeletons': '/skeletons'}))
        namespaces[fold] = ns
    for process in processes:
        graph.wait_active(process)
    return namespaces


def fold_store(scratch: Path, ns: str) -> TemplateStore:
    return TemplateStore(scratch / ns.strip('/') / 'templates')


@dataclass
class Recorded:
    """A record_template call of a fold during a play, and what came of it."""

    fold: str
    play: Play
    person: str
    client: object
    request: RecordTemplate.Request
    future: object = None
    response: RecordTemplate.Response | None = None
    skeletons: list[Seen] = field(default_factory=list)  # of the play
    images: list[int] = field(default_factory=list)  # stamps of the play's images

    def __post_init__(self) -> None:
        self.retry_until = time.monotonic() + IN_VIEW_RETRY_S
        self.future = self.client.call_async(self.request)

    def retry(self) -> None:
        """Call again when refused because the node has not seen the person yet."""
        if (self.future.done() and time.monotonic() < self.retry_until
                and 'is not in view' in self.future.result().message):
            self.future = self.client.call_async(self.request)


def record(listener: Listener, namespaces: dict[str, str], play: Play,
           person: str) -> list[Recorded]:
    """
    Ask every fold of the play (among ``namespaces``) to record the person.

    Call ``retry()`` of each while the play goes on: a call refused because the node has not
    seen the person yet (it is behind the stream) is made again, for up to IN_VIEW_RETRY_S.
    """
    request = RecordTemplate.Request(label=play.clip.label, duration=play.record_s,
                                     person_id=person)
    return [Recorded(fold, play, person, listener.record_clients[namespaces[fold]], request)
            for fold in play.folds if fold in namespaces]


def finish_recordings(listener: Listener, namespaces: dict[str, str],
                      recordings: list[Recorded]) -> None:
    """Wait for the answers, then for every fold's classifier to be fitted on all its labels."""
    for r in recordings:
        r.response = wait_future(r.future, ANSWER_TIMEOUT_S)
        if r.response is None or not r.response.success:
            print(f'  record_template of {r.play.clip.name} for fold {r.fold} failed: '
                  f'{r.response.message if r.response else "no answer"}')
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    for fold, ns in namespaces.items():
        while True:
            answer = call(listener.list_clients[ns], ListTemplates.Request())
            labels = {label for label, used in zip(answer.labels, answer.in_use) if used}
            if answer.state == 'ready':
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f'fold {fold}: the classifier is still loading')
            time.sleep(0.5)
        if set(LABELS) - labels:
            raise RuntimeError(f'fold {fold}: templates of {", ".join(sorted(labels))} only, '
                               f'not of every one of {", ".join(LABELS)}')


def recording_share(r: Recorded, store: TemplateStore) -> tuple[int, int, int] | None:
    """
    Return the template's frames, the person's skeletons and the images during the recording.

    The recording's first skeleton is found among the play's by its joints; None when the
    template is missing or its first skeleton was not seen here.
    """
    if r.response is None or not r.response.success:
        return None
    template = read_template(store.path_of(r.response.template_id))
    own = [s for s in r.skeletons if s.person == r.person]
    first = next((s.stamp_ns for s in own
                  if np.allclose(s.skeleton.positions, template.positions[0], atol=1e-3)), None)
    if first is None:
        return None
    end = first + r.play.record_s * NS
    return (template.frames, sum(first <= s.stamp_ns < end for s in own),
            sum(first <= t < end for t in r.images))


def print_recordings(recordings: list[Recorded], stores: dict[str, TemplateStore],
                     with_images: bool) -> None:
    print('  recordings: template frames / skeletons published during the recording'
          + (' / images' if with_images else ''))
    kept, published = 0, 0
    by_play: dict[Play, list[str]] = defaultdict(list)
    for r in recordings:
        share = recording_share(r, stores[r.fold])
        if share is None:
            by_play[r.play].append(f'{r.fold} -')
            continue
        kept, published = kept + share[0], published + share[1]
        by_play[r.play].append(f'{r.fold} {share[0]}/{share[1]}'
                               + (f'/{share[2]}' if with_images else ''))
    for play, shares in by_play.items():
        print(f'    {play.clip.name:<32} {play.clip.label:<8} {play.record_s:4.1f} s: '
              + ', '.join(shares))
    if published:
        print(f'  recordings kept {kept} of {published} skeletons published during them '
              f'({kept / published:.1%})')


# --- scoring --------------------------------------------------------------------------------

@dataclass
class ClipScore:
    """One held-out clip's answers through ROS and offline, with their verdicts and windows."""

    fold: str
    name: str
    label: str
    ros: int | None
    verdicts: int
    offline: int | None
    windows: int


def fitted(fold: str, store: TemplateStore) -> GestureClassifier:
    """Return the classifier the node fits on the templates of its folder."""
    templates, _ = store.load()
    classifier = GestureClassifier(window_s=WINDOW_S)
    skipped = classifier.fit(templates)
    print(f'  fold {fold}: {len(templates) - len(skipped)} of {len(templates)} templates used, '
          f'{classifier.method}')
    return classifier


def verdict_probabilities(verdicts: list[GestureEmotion]) -> np.ndarray:
    """Return the verdicts' probabilities over LABELS (verdicts, labels)."""
    return np.array([reorder(v.scores, v.labels, LABELS) for v in verdicts]).reshape(
        len(verdicts), len(LABELS))


def score(fold: str, clip: Clip, verdicts: list[GestureEmotion],
          classifier: GestureClassifier, positions: np.ndarray,
          visibility: np.ndarray) -> ClipScore:
    """Score one clip's verdicts and the classifier on its stream."""
    offline = stream_probabilities(classifier, positions, visibility, clip.fps,
                                   1.0 / PUBLISH_RATE, LABELS)
    result = ClipScore(fold, clip.name, clip.label, clip_answer(verdict_probabilities(verdicts)),
                       len(verdicts), clip_answer(offline), len(offline))
    answer = (lambda i: LABELS[i] if i is not None else '-')
    print(f'    {clip.name:<32} {clip.label:<8} ROS {answer(result.ros):<8} '
          f'({result.verdicts:>2} verdicts)  offline {answer(result.offline):<8} '
          f'({result.windows:>2} windows)')
    return result


def print_scores(title: str, scores: list[ClipScore]) -> None:
    """Print ROS and offline accuracy per fold and pooled, and their difference."""
    print(f'\n{title}: clip-level accuracy, {len(LABELS)} classes (chance 25%)')
    print(f'  {"fold":<12} {"clips":>5} {"ROS":>7} {"offline":>8} {"difference":>11} '
          f'{"agree":>6} {"verdicts/clip":>14} {"windows/clip":>13}')
    folds = list(dict.fromkeys(s.fold for s in scores))
    for fold in folds + ['pooled']:
        own = [s for s in scores if fold in ('pooled', s.fold)]
        true = [LABELS.index(s.label) for s in own]
        ros = np.mean([s.ros == t for s, t in zip(own, true)])
        offline = np.mean([s.offline == t for s, t in zip(own, true)])
        agree = np.mean([s.ros == s.offline for s in own])
        print(f'  {fold:<12} {len(own):>5} {ros:>7.1%} {offline:>8.1%} '
              f'{100 * (ros - offline):>+10.1f}p {agree:>6.0%} '
              f'{np.mean([s.verdicts for s in own]):>14.1f} '
              f'{np.mean([s.windows for s in own]):>13.1f}')
    missing = [s.name for s in scores if s.ros is None]
    if missing:
        print(f'  clips without a verdict (counted wrong): {", ".join(missing)}')
    difference = 100 * abs(np.mean([s.ros == LABELS.index(s.label) for s in scores])
                           - np.mean([s.offline == LABELS.index(s.label) for s in scores]))
    print(f'  ROS vs offline, pooled: {difference:.1f} points apart (target: within 5) -> '
          f'{"met" if difference <= 5 else "NOT met"}')


# --- A. motion capture ------------------------------------------------------------------------

def bvh_section(text: str, frames: tuple[int, ...]) -> str:
    """Return a BVH text with these motion frames of ``text`` (its hierarchy unchanged)."""
    head, _, motion = text.partition('MOTION')
    lines = motion.strip().split('\n')
    rows = lines[2:]
    return (f'{head}MOTION\nFrames: {len(frames)}\n{lines[1].strip()}\n'
            + '\n'.join(rows[i].strip() for i in frames) + '\n')


def bandai_clips(archive: Path, movements: tuple[str, ...]) -> tuple[list[Clip], dict[str, str]]:
    """Return the clips of the four styles in these movements, and their BVH texts."""
    wanted = {f.member: f for f in find_clips([archive], 'dataset-1_*')
              if f.movement_and_style[0] in movements
              and f.movement_and_style[1] in STYLES.values()}
    clips, texts = [], {}
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.name not in wanted:
                continue
            file = wanted[member.name]
            text = tar.extractfile(member).read().decode('utf-8')
            motion = text.partition('MOTION')[2].split()
            frames, frame_time = int(motion[1]), float(motion[4])
            movement, style = file.movement_and_style
            clips.append(Clip(file.name, movement, STYLE_LABELS[style], frames, 1 / frame_time))
            texts[file.name] = text
    return sorted(clips, key=lambda c: c.name), texts


def write_bvh(folder: Path, name: str, text: str, frames: tuple[int, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{name}.bvh'
    path.write_text(bvh_section(text, frames))
    return path


def play_bvh(graph: Graph, listener: Listener, plays: list[Play], texts: dict[str, str],
             folder: Path, namespaces: dict[str, str]) -> tuple[dict[str, Play], list[Recorded]]:
    """
    Play the plays in one motion_player, the folds recording those that say so.

    A lead-in of LEAD_IN_S seconds comes first (the first play's clip), so that each fold's node
    is connected to the player when the plays start; a node without a verdict on it is named.

    Returns the person id of each play and the recordings (with the skeletons of the play).
    Prints, per play, the skeletons received here and the rate of their stamps.
    """
    for play in plays:
        write_bvh(folder, play.clip.name, texts[play.clip.name], play.frames)
    first = plays[0].clip
    lead_in = Play(Clip(LEAD_IN, '', '', first.frames, first.fps),
                   tuple(i % first.frames for i in range(round(LEAD_IN_S * first.fps))))
    write_bvh(folder, LEAD_IN, texts[first.name], lead_in.frames)
    by_name = {play.clip.name: play for play in [lead_in, *plays]}
    marks = listener.marks()
    player, name = graph.start_player(listener, 'motion_player',
                                      f'motion_player_{folder.parent.name}_{folder.name}',
                                      {'clips': [str(folder)]})
    listener.listen_to_clips(f'/{name}/clip')  # transient local: every announcement so far
    people: dict[str, Play] = {}
    recordings: list[Recorded] = []
    deadline = time.monotonic() + sum(p.seconds for p in plays) * 5 + 60
    try:
        while 'done: played' not in player.log():
            if time.monotonic() > deadline:
                raise RuntimeError(f'motion_player did not finish:\n{player.log()[-3000:]}')
            skeletons, _, _, announced = listener.since(marks)
            play_of = {person: by_name[name] for name, person in (a.split() for a in announced)}
            for person in dict.fromkeys(s.person for s in skeletons):
                if person not in people and person in play_of:
                    people[person] = play_of[person]
                    if play_of[person].record_s:
                        recordings += record(listener, namespaces, play_of[person], person)
            for r in recordings:
                r.retry()
            time.sleep(0.01)
        time.sleep(0.5)  # the last skeletons
    finally:
        graph.stop(player)
    late = [fold for fold, ns in namespaces.items()
            if not any(people.get(v.person_id) is lead_in for v in listener.peek_verdicts(ns))]
    if late:
        print(f'    warning: no verdict on the {LEAD_IN_S:g}-s lead-in from the nodes of '
              f'{", ".join(late)}: they got its skeletons late (DDS matching)')
    people = {person: play for person, play in people.items() if play is not lead_in}
    skeletons = listener.since(marks)[0]
    for person, play in people.items():
        own = [s.stamp_ns for s in skeletons if s.person == person]
        rate = (len(own) - 1) / ((own[-1] - own[0]) / NS) if len(own) > 1 else 0.0
        print(f'    {play.clip.name:<32} {person:<9} {len(own):>4} of {len(play.frames):>4} '
              f'skeletons received here, stamps at {rate:4.1f} per s')
    for r in recordings:
        r.skeletons = skeletons
    return people, recordings


def mocap_path(args: argparse.Namespace, graph: Graph, scratch: Path,
               movements: tuple[str, ...]) -> list[ClipScore]:
    """Run part A, --parallel folds at a time; return the clip scores."""
    archive = args.data / 'bandai_motion' / ARCHIVE
    clips, texts = bandai_clips(archive, MAIN_MOVEMENTS)
    folds = {m: tuple(x for x in MAIN_MOVEMENTS if x != m) for m in movements}
    teach = teaching_plays(clips, folds, args.k, args.record_s, args.seed)
    held_out = [held_out_play(c) for c in clips if c.movement in movements]
    print(f'\nA. Motion capture ({archive}): {len(movements)} folds ({", ".join(movements)}), '
          f'{args.parallel} at a time; k = {args.k} recordings per label per fold, seed '
          f'{args.seed}')
    print('  taught parts: ' + '; '.join(
        f'{p.clip.name} [{p.frames[0]}:+{p.record_s:.1f} s] for {", ".join(p.folds)}'
        for p in teach))
    print(f'  held-out clips: {len(held_out)} ({sum(p.seconds for p in held_out):.0f} s of '
          f'play; shorter than {MIN_PLAY_S:g} s looped)')
    started = time.monotonic()
    scores = []
    for first in range(0, len(movements), args.parallel):
        batch = movements[first:first + args.parallel]
        scores += mocap_batch(graph, scratch / f'batch{first // args.parallel + 1}', texts,
                              [p for p in teach if set(p.folds) & set(batch)],
                              [p for p in held_out if p.clip.movement in batch], batch)
        print(f'  {first + len(batch)} folds done after {time.monotonic() - started:.0f} s')
    return scores


def mocap_batch(graph: Graph, scratch: Path, texts: dict[str, str], teach: list[Play],
                held_out: list[Play], movements: tuple[str, ...]) -> list[ClipScore]:
    """Teach and test the folds of these held-out movements at once; return the clip scores."""
    print(f'\n  folds {", ".join(movements)}: {len(teach)} taught parts '
          f'({sum(p.seconds for p in teach):.0f} s), {len(held_out)} held-out clips '
          f'({sum(p.seconds for p in held_out):.0f} s)')
    started = time.monotonic()
    listener_folds = [f'/mocap_{m.replace("-", "_")}' for m in movements]
    with spinning(Listener(listener_folds), shutdown=False) as listener:
        namespaces = start_folds(graph, 'mocap', list(movements), scratch)
        print(f'  {len(namespaces)} gesture_emotion nodes active after '
              f'{time.monotonic() - started:.0f} s')
        _, recordings = play_bvh(graph, listener, teach, texts, scratch / 'mocap_teach',
                                 namespaces)
        finish_recordings(listener, namespaces, recordings)
        print(f'  taught after {time.monotonic() - started:.0f} s')
        stores = {fold: fold_store(scratch, ns) for fold, ns in namespaces.items()}
        print_recordings(recordings, stores, with_images=False)

        listener.take_verdicts()
        folder = scratch / 'mocap_held_out'
        people, _ = play_bvh(graph, listener, held_out, texts, folder, namespaces)
        time.sleep(2.0)  # the last verdicts
        person_of = {play.clip.name: person for person, play in people.items()}
        print(f'  held-out clips played after {time.monotonic() - started:.0f} s')
        received = listener.take_verdicts()
        verdicts = {fold: received[ns] for fold, ns in namespaces.items()}
    graph.stop_all()

    scores = []
    for fold in movements:
        classifier = fitted(fold, stores[fold])
        for play in held_out:
            if play.clip.movement != fold:
                continue
            person = person_of.get(play.clip.name)
            own = [v for v in verdicts[fold] if person and v.person_id == person]
            file = folder / f'{play.clip.name}.bvh'
            clip = load_clips([ClipFile(file.stem, file)])[0]
            pixels, visible = front_view(clip.world)
            scores.append(score(fold, play.clip, own, classifier, pixels, visible))
    return scores


# --- B. camera --------------------------------------------------------------------------------

@dataclass
class VideoPlay:
    """What came of one play through video_source: its image stamps and the skeletons."""

    play: Play
    images: list[int]
    arrays: list[int]
    skeletons: list[Seen]


def fullbody_clips(folder: Path) -> list[Clip]:
    clips = []
    for path in sorted(folder.glob('*.mp4')):
        movement, _, style = path.stem.partition('_')
        if movement in FULLBODY_MOVEMENTS and style in STYLES.values():
            truth = np.load(path.with_suffix('.npz'))
            clips.append(Clip(path.stem, movement, STYLE_LABELS[style], len(truth['gt']),
                              float(truth['fps'])))
    return clips


def video_source_params(play: Play, folder: Path, scratch: Path) -> dict:
    """Return video_source's parameters: the clip's file, or a folder of the looped frames."""
    first = play.frames[0]
    if play.frames == tuple(range(first, first + len(play.frames))):
        return {'source': str(folder / f'{play.clip.name}.mp4'), 'start_frame': first,
                'end_frame': first + len(play.frames)}
    frames_dir = scratch / f'frames_{play.clip.name}_{first}_{len(play.frames)}'
    frames_dir.mkdir()
    capture = cv2.VideoCapture(str(folder / f'{play.clip.name}.mp4'))
    images = []
    while len(images) < play.clip.frames:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    for i, frame in enumerate(play.frames):
        cv2.imwrite(str(frames_dir / f'{i:06d}.png'), images[frame])
    return {'source': str(frames_dir)}


def play_video(graph: Graph, listener: Listener, play: Play, folder: Path, scratch: Path,
               on_person=None) -> VideoPlay:
    """
    Play through a video_source of its own, activated once DDS has had MATCH_S to connect it.

    ``on_person(person)`` is called with the id of the first skeleton body_pose publishes; the
    recordings it returns are retried while the play goes on.
    """
    params = {**video_source_params(play, folder, scratch), 'rate': play.clip.fps}
    marks = listener.marks()
    source, _ = graph.start_player(listener, 'video_source',
                                   f'video_source_{next(VIDEO_PLAYS)}_{play.clip.name}', params)
    try:
        recordings = [] if on_person is None else on_person(listener.first_person(marks, 30.0))
        deadline = time.monotonic() + play.seconds * 5 + 30
        while 'end of' not in source.log():
            if time.monotonic() > deadline:
                raise RuntimeError(f'{play.clip.name}: video_source did not finish')
            for r in recordings:
                r.retry()
            time.sleep(0.01)
        time.sleep(1.0)  # body_pose's last skeletons
        skeletons, arrays, images, _ = listener.since(marks)
    finally:
        graph.stop(source)
    if len(images) != len(play.frames):
        print(f'    {play.clip.name}: {len(images)} images seen of {len(play.frames)} played; '
              'frames are matched by order')
    return VideoPlay(play, images[:len(play.frames)], arrays, skeletons)


def print_joint_errors(plays: list[VideoPlay], folder: Path) -> None:
    """Print body_pose's joint errors against the true joints of the images they came with."""
    pixels, torsos, found, total = [], [], 0, 0
    for vp in plays:
        truth = np.load(folder / f'{vp.play.clip.name}.npz')
        if list(truth['joints']) != list(JOINTS):
            raise RuntimeError(f'{vp.play.clip.name}.npz names other joints')
        gt, torso = truth['gt'], true_torso(truth['gt'])
        frame_of = {stamp: vp.play.frames[i] for i, stamp in enumerate(vp.images)}
        for seen in vp.skeletons:
            frame = frame_of.get(seen.stamp_ns)
            if frame is None:
                continue
            error = np.linalg.norm(seen.skeleton.positions - gt[frame], axis=-1)
            pixels.append(error)
            torsos.append(error / torso[frame])
            found += 1
        total += len(vp.images)
    if not pixels:
        print('  body_pose published no skeleton for a known image')
        return
    pixels, torsos = np.array(pixels), np.array(torsos)
    print(f'\n  body_pose joint error against the true joints ({found} skeletons, on '
          f'{found / total:.0%} of {total} images; px / torso lengths)')
    print(f'    {"joint":<16} {"median":>15} {"p90":>15}')
    for j, name in enumerate(JOINTS):
        median, p90 = np.percentile(pixels[:, j], [50, 90])
        t_median, t_p90 = np.percentile(torsos[:, j], [50, 90])
        print(f'    {name:<16} {median:>6.1f} / {t_median:.3f} {p90:>6.1f} / {t_p90:.3f}')
    median, p90 = np.percentile(pixels, [50, 90])
    t_median, t_p90 = np.percentile(torsos, [50, 90])
    print(f'    {"all joints":<16} {median:>6.1f} / {t_median:.3f} {p90:>6.1f} / {t_p90:.3f}')


def camera_stream(vp: VideoPlay) -> tuple[np.ndarray, np.ndarray]:
    """Return the published skeletons per image of the play; nobody seen where none came."""
    by_stamp = {s.stamp_ns: s.skeleton for s in vp.skeletons}
    positions = np.zeros((len(vp.images), len(JOINTS), 2))
    visibility = np.zeros((len(vp.images), len(JOINTS)))
    for i, stamp in enumerate(vp.images):
        if stamp in by_stamp:
            positions[i], visibility[i] = by_stamp[stamp].positions, by_stamp[stamp].visibility
    return positions, visibility


def camera_path(args: argparse.Namespace, graph: Graph, scratch: Path,
                folds: dict[str, tuple[str, ...]]) -> list[ClipScore]:
    """Run part B; return the clip scores."""
    folder = args.data / 'video' / 'fullbody'
    clips = fullbody_clips(folder)
    teach = teaching_plays(clips, folds, None, args.record_s, args.seed)
    held_out = [held_out_play(c) for c in clips if c.movement in folds]
    print(f'\nB. Camera ({folder}): video_source -> body_pose -> gesture_emotion; folds: '
          + '; '.join(f'{m} held out, taught on {" and ".join(t)}' for m, t in folds.items()))
    print(f'  taught parts ({sum(p.seconds for p in teach):.0f} s of play): ' + '; '.join(
        f'{p.clip.name} [{p.frames[0]}:+{p.record_s:.1f} s]' for p in teach))
    started = time.monotonic()
    with spinning(Listener([f'/camera_{m}' for m in folds]), shutdown=False) as listener:
        pose = graph.start('body_pose_node', 'body_pose', {})
        namespaces = start_folds(graph, 'camera', list(folds), scratch)
        graph.wait_active(pose)
        print(f'  body_pose and {len(namespaces)} gesture_emotion nodes active after '
              f'{time.monotonic() - started:.0f} s')
        recordings: list[Recorded] = []
        for play in teach:
            calls: list[Recorded] = []
            vp = play_video(graph, listener, play, folder, scratch,
                            lambda person, play=play: calls.extend(
                                record(listener, namespaces, play, person)) or calls)
            for r in calls:
                r.skeletons, r.images = vp.skeletons, vp.images
            recordings += calls
        finish_recordings(listener, namespaces, recordings)
        print(f'  taught after {time.monotonic() - started:.0f} s')
        stores = {fold: fold_store(scratch, ns) for fold, ns in namespaces.items()}
        print_recordings(recordings, stores, with_images=True)
        plays = []
        for play in held_out:
            plays.append(play_video(graph, listener, play, folder, scratch))
            vp = plays[-1]
            gap = max(np.diff([s.stamp_ns for s in vp.skeletons]), default=0) / NS
            people = ', '.join(dict.fromkeys(s.person for s in vp.skeletons))
            print(f'    {play.clip.name:<16} {len(play.frames)} images played, '
                  f'{len(vp.images)} seen here, {len(vp.arrays)} SkeletonArrays from body_pose, '
                  f'{len(vp.skeletons)} skeletons ({people}; longest gap {gap:.2f} s)')
        time.sleep(1.0)
        received = listener.take_verdicts()
        verdicts = {fold: received[ns] for fold, ns in namespaces.items()}

    scores = []
    for fold in folds:
        classifier = fitted(fold, stores[fold])
        for vp in plays:
            if vp.play.clip.movement != fold:
                continue
            stamps = set(vp.images)
            own = [v for v in verdicts[fold]
                   if Time.from_msg(v.header.stamp).nanoseconds in stamps]
            positions, visibility = camera_stream(vp)
            scores.append(score(fold, vp.play.clip, own, classifier, positions, visibility))
    print_joint_errors(plays, folder)
    print(f'  part B took {time.monotonic() - started:.0f} s')
    return scores


# --- main -------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, default=Path('../shared/data'),
                        help='the datasets folder (default ../shared/data)')
    parser.add_argument('--quick', action='store_true',
                        help=f'a short run: folds {" and ".join(QUICK_MOVEMENTS)}, k 1; camera '
                        'fold bow taught on walk')
    parser.add_argument('--movements', nargs='+', choices=MAIN_MOVEMENTS,
                        help='held-out movements of part A (default all ten)')
    parser.add_argument('--camera-folds', nargs='+', choices=FULLBODY_MOVEMENTS,
                        help='held-out movements of part B (default all three)')
    parser.add_argument('--k', type=int, default=2,
                        help='recordings per label per fold in part A (default 2)')
    parser.add_argument('--parallel', type=int, default=4,
                        help='part A folds run at once, each a gesture_emotion process (default '
                        '4; each takes about an eighth of a core)')
    parser.add_argument('--record-s', type=float, default=5.0,
                        help='longest recording, seconds (default 5)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the choices (default 0)')
    parser.add_argument('--parts', default='AB', help="'A', 'B' or 'AB' (default)")
    parser.add_argument('--domain', type=int, default=random.randint(150, 200),
                        help='ROS_DOMAIN_ID of the run (default a random one in 150-200)')
    parser.add_argument('--logs', type=Path,
                        help='keep the node logs and templates in this new folder')
    args = parser.parse_args()
    args.data = args.data.resolve()  # the nodes run in folders of their own
    sys.stdout.reconfigure(line_buffering=True)
    needed = [args.data / 'bandai_motion' / ARCHIVE] if 'A' in args.parts else []
    needed += [args.data / 'video' / 'fullbody'] if 'B' in args.parts else []
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        print(f'error: {", ".join(missing)} not found: the datasets are not at --data '
              f'{args.data} (see ../shared/data/README.md)', file=sys.stderr)
        return 2
    if args.quick:
        args.k = 1
    movements = tuple(args.movements or (QUICK_MOVEMENTS if args.quick else MAIN_MOVEMENTS))
    camera = (QUICK_CAMERA if args.quick and not args.camera_folds else
              {m: tuple(x for x in FULLBODY_MOVEMENTS if x != m)
               for m in args.camera_folds or FULLBODY_MOVEMENTS})

    os.environ['ROS_DOMAIN_ID'] = str(args.domain)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'SUBNET'
    os.environ.pop('ROS_LOCALHOST_ONLY', None)
    print(f'Body-language emotion through ROS: ROS_DOMAIN_ID={args.domain}, discovery SUBNET, '
          f'FASTDDS_BUILTIN_TRANSPORTS {TRANSPORTS["A"]} (A), {TRANSPORTS["B"]} (B); window_s '
          f'{WINDOW_S:g}, publish_rate {PUBLISH_RATE:g}; load average {os.getloadavg()[0]:.2f} '
          f'on {os.cpu_count()} cores')
    started = time.monotonic()
    scratch_dir = None
    if args.logs is None:
        scratch_dir = tempfile.TemporaryDirectory(prefix='emorec_evaluate_gesture_ros_')
        scratch = Path(scratch_dir.name)
    else:
        scratch = args.logs.resolve()
        scratch.mkdir(parents=True)
    results = {}
    try:
        for part, run in (('A', lambda s, g: mocap_path(args, g, s, movements)),
                          ('B', lambda s, g: camera_path(args, g, s, camera))):
            if part not in args.parts:
                continue
            os.environ['FASTDDS_BUILTIN_TRANSPORTS'] = TRANSPORTS[part]
            rclpy.init()
            graph = Graph(scratch / part)
            (scratch / part).mkdir()
            try:
                results[part] = run(scratch / part, graph)
            finally:
                graph.stop_all()
                rclpy.try_shutdown()
    except RuntimeError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    finally:
        if scratch_dir is not None:
            scratch_dir.cleanup()
    for part, title in (('A', 'A. Motion capture through motion_player'),
                        ('B', 'B. Camera through video_source and body_pose')):
        if part in results:
            print_scores(title, results[part])
    print(f'\ntotal {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
