"""
Benchmark how the lifecycle nodes start and stop, each started as a process of its own.

face_emotion, gesture_emotion and video_source are started as the launch file starts them
(``--ros-args -p autostart:=true``); this process talks to them over DDS.

1. Start-up: seconds from the process start to
   - handler: its first SIGTERM handler (seen in /proc; from then on a stop is handled),
   - configure: the start of configure, the node's first touch of its template folder, model or
     video file (seen with inotify; the nodes get private copies of the packaged model and clip
     for this),
   - configured, active: the '[<node>]: configured' and ': active' log lines,
   - diagnostics: its first /diagnostics status,
   - first message: face_emotions for a 480x270 frame of the demo clip published at 15 Hz from
     the start; a gesture_emotion verdict while the skeletons of the clip's frames (MediaPipe's,
     posed here) are fed at 15 per second (a verdict needs a full window, ~2 s of skeletons);
     image from video_source.
   Median and max. The gesture node runs with numba's cache cold (NUMBA_CACHE_DIR an empty
   folder) and warm (a folder a cold start has filled).
2. Shutdown: in steady state (after the first message) SIGINT, and separately SIGTERM: seconds
   until the process exits, its exit status, and whether it crashed (a traceback, 'terminate
   called', 'Segmentation fault', death by a signal) or hung (killed after STOP_TIMEOUT_S). The
   gesture node is also stopped with SIGINT 1 s after its start (imports run then), 1 s after
   its configure started, and 1 s into a recording: the pending record_template call must be
   answered with success false and a reason before the process exits.
3. With --stops N, instead of 1 and 2: N starts and stops of each node, in turn SIGINT and
   SIGTERM in steady state and a stop during start-up (SIGINT or SIGTERM at a random moment
   between its first signal handler and its usual time to active), the crashes and hangs
   counted, with how far the start had come when the signal was sent (importing, configuring,
   configured, active).

The gesture node gets a template folder with two templates for each of two labels (3 s at
15 fps of the clip's crying and laughing parts, posed by MediaPipe here), so its classifier fits.
Logs of failing runs are kept in a temporary folder whose path is printed.

    python bench/node_lifecycle.py [--runs 3] [--nodes face_emotion gesture_emotion ...]
    python bench/node_lifecycle.py --stops 20 [--nodes ...]

--runs N: N runs stopped with SIGINT and N with SIGTERM per node (for the gesture node N with a
cold cache and N with a warm one, the signals in turn), and N of each special gesture stop.
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import os
from pathlib import Path
import random
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable

from ament_index_python.packages import get_package_prefix, get_package_share_directory
import cv2
from diagnostic_msgs.msg import DiagnosticArray
from emorec_ros.gesture.skeleton import Skeleton, stack
from emorec_ros.gesture.store import TemplateStore
from emorec_ros.gesture.template import Template
from emorec_ros.image import bgr_to_image
from emorec_ros.msg import FaceEmotionArray, GestureEmotion, SkeletonArray
from emorec_ros.nodes.skeleton_msgs import skeleton_array
from emorec_ros.srv import RecordTemplate
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header

SHARE = Path(get_package_share_directory('emorec_ros'))
CLIP = SHARE / 'media' / 'WolfgangLanger_Pexels.mp4'
MODEL = SHARE / 'models' / 'face_emotion.tflite'  # with its card, face_emotion.json
SIZE = (480, 270)  # inside FastDDS's default shared-memory segment, as in the node tests
RATE = 15.0  # frames per second fed to the nodes: a 15 fps camera
CRYING, LAUGHING = (60, 230), (280, 472)  # frames of the clip
FACE_FRAME = 300  # a frame of the clip with a face (laughing)
TEMPLATE_S = 3.0
NODES = ('face_emotion', 'gesture_emotion', 'video_source')
EXECUTABLES = {'face_emotion': 'face_emotion_node', 'gesture_emotion': 'gesture_emotion_node',
               'video_source': 'video_source'}
#: Topic of the first message that shows a node works.
FIRST_MESSAGE = {'face_emotion': 'face_emotions', 'gesture_emotion': 'gesture_emotion',
                 'video_source': 'image'}
#: Seconds to wait for a node's first message (cold numba compile on a busy machine: minutes).
START_TIMEOUT_S = {'face_emotion': 90.0, 'gesture_emotion': 240.0, 'video_source': 60.0}
#: Seconds a stopped node may take to exit before it is killed and counted as hung.
STOP_TIMEOUT_S = 10.0
#: run_node promises an exit within about two seconds of the signal.
SLOW_STOP_S = 2.0
CRASH_MARKERS = ('Traceback', 'terminate called', 'Segmentation fault')
SIGNALS = {'SIGINT': signal.SIGINT, 'SIGTERM': signal.SIGTERM}
LOG_FORMAT = '[{severity}] [{time}] [{name}]: {message}'
_SIGTERM_BIT = 1 << (signal.SIGTERM - 1)
_IN_OPEN, _IN_CREATE = 0x20, 0x100
_LIBC = ctypes.CDLL(None, use_errno=True)


# --- the clip and the templates ---------------------------------------------------------------

def clip_fps() -> float:
    capture = cv2.VideoCapture(str(CLIP))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    if not fps or fps <= 0:
        raise SystemExit(f'error: cannot read {CLIP}')
    return fps


def sampled(first: int, end: int, count: int, fps: float) -> list[int]:
    """Return ``count`` frame indices of the clip at RATE from ``first``, looping before end."""
    return [first + int(k * fps / RATE) % (end - first) for k in range(count)]


def read_frames(indices: set[int]) -> dict[int, np.ndarray]:
    """Read these frames of the clip, resized to SIZE (BGR)."""
    capture = cv2.VideoCapture(str(CLIP))
    frames, index = {}, 0
    try:
        while index <= max(indices):
            ok, frame = capture.read()
            if not ok:
                break
            if index in indices:
                frames[index] = cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA)
            index += 1
    finally:
        capture.release()
    if indices - frames.keys():
        raise SystemExit(f'error: {CLIP} lacks frames {sorted(indices - frames.keys())[:5]}')
    return frames


def template_frames(fps: float) -> dict[str, list[list[int]]]:
    """Return the clip's frames of each template, by label: two of TEMPLATE_S per label."""
    count = round(TEMPLATE_S * RATE)
    step = round(TEMPLATE_S * fps)
    return {label: [sampled(first, first + step, count, fps)
                    for first in (part[0], part[0] + step)]
            for label, part in (('crying', CRYING), ('laughing', LAUGHING))}


def posed(frames: list[np.ndarray]) -> list[Skeleton | None]:
    """Return MediaPipe's skeleton of each frame of a sequence (video mode), None for nobody."""
    from emorec_ros.gesture.pose import PoseEstimator  # mediapipe: only for the gesture node

    pose = PoseEstimator(video=True)
    try:
        return [pose.estimate(frame) for frame in frames]
    finally:
        pose.close()


def build_templates(directory: Path, frames: dict[int, np.ndarray], fps: float) -> None:
    """Pose the template frames with MediaPipe and save the templates in ``directory``."""
    store = TemplateStore(directory)
    for label, templates in template_frames(fps).items():
        for indices in templates:
            skeletons = [s for s in posed([frames[i] for i in indices]) if s is not None]
            if len(skeletons) < len(indices) * 0.8:
                raise SystemExit(f'error: a person in only {len(skeletons)} of frames '
                                 f'{indices[0]}-{indices[-1]} of the clip')
            positions, visibility = stack(skeletons)
            store.save(Template.new(label, positions, visibility, RATE,
                                    source=f'{CLIP.name} frames {indices[0]}-{indices[-1]}'))


# --- this process's node ----------------------------------------------------------------------

class Bench(Node):
    """Publishes images and skeletons and notes when the nodes' messages arrive."""

    def __init__(self) -> None:
        super().__init__(f'node_lifecycle_bench_{os.getpid()}')
        self._arrived_cv = threading.Condition()
        self._arrivals: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
        self.images = self.create_publisher(Image, 'image', qos_profile_sensor_data)
        reliable = QoSProfile(depth=100)
        self.skeletons = self.create_publisher(SkeletonArray, 'skeletons', reliable)
        self.create_subscription(FaceEmotionArray, 'face_emotions',
                                 lambda m: self._arrived('face_emotions', ''), reliable)
        self.create_subscription(GestureEmotion, 'gesture_emotion',
                                 lambda m: self._arrived('gesture_emotion', m.emotion), reliable)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, reliable)
        self._image_subscription = None
        self.record = self.create_client(RecordTemplate, '/gesture_emotion/record_template')

    def _arrived(self, key: str, info: str) -> None:
        with self._arrived_cv:
            self._arrivals[key].append((time.monotonic(), info))
            self._arrived_cv.notify_all()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            self._arrived(f'diagnostics {status.hardware_id}', values.get('labels', ''))

    def listen_to_images(self, on: bool) -> None:
        """Subscribe to ``image`` (video_source's frames), or stop."""
        if on and self._image_subscription is None:
            self._image_subscription = self.create_subscription(
                Image, 'image', lambda m: self._arrived('image', ''), qos_profile_sensor_data)
        elif not on and self._image_subscription is not None:
            self.destroy_subscription(self._image_subscription)
            self._image_subscription = None

    def clear(self) -> None:
        with self._arrived_cv:
            self._arrivals.clear()

    def arrivals(self, key: str) -> list[tuple[float, str]]:
        with self._arrived_cv:
            return list(self._arrivals[key])

    def first(self, key: str, timeout: float,
              give_up: Callable[[], bool]) -> tuple[float, str] | None:
        """Wait for the first arrival on ``key`` since clear(); None on timeout or give_up()."""
        deadline = time.monotonic() + timeout
        with self._arrived_cv:
            while not self._arrivals[key]:
                if give_up() or time.monotonic() > deadline:
                    return None
                self._arrived_cv.wait(0.05)
            return self._arrivals[key][0]


class Feeder:
    """Publishes messages (images, skeletons) in a loop at RATE, stamped now, while started."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, messages: list[Image | SkeletonArray], publisher) -> None:
        self.stop()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(messages, publisher),
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, messages: list[Image | SkeletonArray], publisher) -> None:
        sent, start = 0, time.monotonic()
        while not self._stop.is_set():
            msg = messages[sent % len(messages)]
            msg.header.stamp = self.bench.get_clock().now().to_msg()
            publisher.publish(msg)
            sent += 1
            late = time.monotonic() - (start + sent / RATE)
            if late > 1.0:  # starved of CPU: do not burst to catch up
                sent, start = 0, time.monotonic()
            self._stop.wait(max(0.0, -late))


# --- node processes ---------------------------------------------------------------------------

class FirstTouch:
    """Notes when a file in a folder (or the folder) is first opened or created (inotify)."""

    def __init__(self, folder: Path) -> None:
        self.at: float | None = None
        self.touched = threading.Event()
        self._closed = threading.Event()
        self._fd = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd >= 0 and _LIBC.inotify_add_watch(
                self._fd, os.fsencode(folder), _IN_OPEN | _IN_CREATE) < 0:
            os.close(self._fd)
            self._fd = -1
        if self._fd < 0:  # no inotify (e.g. out of watches): the start of configure is unknown
            print(f'warning: cannot watch {folder}: {os.strerror(ctypes.get_errno())}')
            return
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                if select.select([self._fd], [], [], 0.2)[0]:
                    self.at = time.monotonic()
                    self.touched.set()
                    return
        finally:
            os.close(self._fd)

    def close(self) -> None:
        self._closed.set()


class NodeRun:
    """One node process: its log, when its signal handlers came, the signal sent and its exit."""

    running: list[NodeRun] = []

    def __init__(self, node: str, params: dict, log_path: Path, env: dict,
                 watch: Path) -> None:
        command = [str(Path(get_package_prefix('emorec_ros')) / 'lib' / 'emorec_ros'
                       / EXECUTABLES[node]), '--ros-args']
        for key, value in {'autostart': 'true', **params}.items():
            command += ['-p', f'{key}:={value}']
        self.node, self.log_path = node, log_path
        self.signal_name: str | None = None
        self.signal_at: float | None = None
        self.exit_at: float | None = None
        self.handlers_at: float | None = None
        self.killed = False
        self.exited = threading.Event()
        self.handlers = threading.Event()
        self.configure = FirstTouch(watch)
        with open(log_path, 'w') as log:
            self.wall_start, self.start = time.time(), time.monotonic()
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, cwd=log_path.parent,
                                            process_group=0)
        NodeRun.running.append(self)
        threading.Thread(target=self._wait, daemon=True).start()
        threading.Thread(target=self._watch_handlers, daemon=True).start()

    def _wait(self) -> None:
        self.process.wait()
        self.exit_at = time.monotonic()
        self.exited.set()
        self.configure.close()

    def _watch_handlers(self) -> None:
        """Note when the process first catches SIGTERM: run_node has installed its handlers."""
        path = f'/proc/{self.process.pid}/status'
        while not self.exited.is_set():
            try:
                with open(path) as status:
                    caught = next((line.split()[1] for line in status
                                   if line.startswith('SigCgt:')), '0')
            except OSError:
                return
            if int(caught, 16) & _SIGTERM_BIT and not self.exited.is_set():
                self.handlers_at = time.monotonic()
                self.handlers.set()
                return
            time.sleep(0.005)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.exited.is_set() else None

    def send(self, name: str) -> bool:
        """Send SIGINT or SIGTERM; False when the process had already exited."""
        if self.exited.is_set():
            return False
        self.signal_name, self.signal_at = name, time.monotonic()
        self.process.send_signal(SIGNALS[name])
        return True

    def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Wait for the exit; kill the process (a hang) after ``timeout``."""
        if self.exited.wait(timeout):
            return True
        self.killed = True
        self.kill()
        return False

    def kill(self) -> None:
        if not self.exited.is_set():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.exited.wait(10)
        if self in NodeRun.running:
            NodeRun.running.remove(self)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors='replace')
        except OSError:
            return ''

    def logged_at(self, message: str) -> float | None:
        """Return seconds from the start to the log line '[<node>]: <message>', or None."""
        match = re.search(rf'^\[\w+\] \[(\d+\.\d+)\] \[{self.node}\]: {re.escape(message)}$',
                          self.log(), re.M)
        return float(match.group(1)) - self.wall_start if match else None

    def since_start(self, t: float | None) -> float | None:
        return None if t is None else t - self.start

    @property
    def stop_s(self) -> float | None:
        if self.signal_at is None or self.exit_at is None or self.killed:
            return None
        return self.exit_at - self.signal_at

    def problems(self) -> list[str]:
        """Return what went wrong: a hang, a non-zero or signal exit, a crash in the output."""
        found = []
        if self.killed:
            found.append(f'hung: killed {STOP_TIMEOUT_S:g} s after {self.signal_name}')
            active = self.logged_at('active')
            if active is not None and active > self.signal_at - self.start:
                found.append(f'the signal was lost: it went on to active {active:.2f} s after '
                             f'its start, {active - (self.signal_at - self.start):.2f} s after '
                             'the signal')
        elif self.returncode is not None and self.returncode < 0:
            found.append(f'died of {signal.Signals(-self.returncode).name}')
        elif self.returncode:
            found.append(f'exit status {self.returncode}')
        log = self.log()
        found += [f"'{marker}' in its output" for marker in CRASH_MARKERS if marker in log]
        return found

    def state_at_signal(self) -> str:
        """
        Say how far the start had come when the signal was sent.

        'no handler' (default signal actions), 'importing' (configure not started),
        'configuring', 'configured' or 'active'.
        """
        if self.signal_at is None:
            return '-'
        since = self.signal_at - self.start
        for message in ('active', 'configured'):
            at = self.logged_at(message)
            if at is not None and at <= since:
                return message
        if self.configure.at is not None and self.configure.at <= self.signal_at:
            return 'configuring'
        if self.handlers_at is not None and self.handlers_at <= self.signal_at:
            return 'importing'
        return 'no handler'


# --- one run ----------------------------------------------------------------------------------

class Runner:
    """Starts and stops the nodes; keeps the logs of failing runs."""

    def __init__(self, bench: Bench, logs: Path, watch: dict[str, Path],
                 feed: list[SkeletonArray], face_image: Image, keep_logs: bool) -> None:
        self.bench, self.logs, self.watch = bench, logs, watch
        self.feed, self.face_image, self.keep_logs = feed, face_image, keep_logs
        self.feeder = Feeder(bench)
        self.count = 0
        self.failed_logs: list[Path] = []

    def in_graph(self, node: str) -> bool:
        return (node, '/') in self.bench.get_node_names_and_namespaces()

    def start(self, node: str, tag: str, cache: Path | None = None) -> NodeRun:
        """Start a node (with its input fed at once, for face and gesture)."""
        deadline = time.monotonic() + 30.0  # a killed node stays in the graph for a while
        while self.in_graph(node) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.count += 1
        self.bench.clear()
        self.bench.listen_to_images(node == 'video_source')
        params = {'face_emotion': {'model_path': self.watch[node] / MODEL.name},
                  'gesture_emotion': {'template_dir': self.watch[node]},
                  'video_source': {'source': self.watch[node] / CLIP.name}}[node]
        if node == 'face_emotion':
            self.feeder.start([self.face_image], self.bench.images)
        elif node == 'gesture_emotion':
            self.feeder.start(self.feed, self.bench.skeletons)
        env = dict(os.environ, RCUTILS_CONSOLE_OUTPUT_FORMAT=LOG_FORMAT,
                   RCUTILS_COLORIZED_OUTPUT='0', PYTHONUNBUFFERED='1')
        if cache is not None:
            env['NUMBA_CACHE_DIR'] = str(cache)
        name = f'{self.count:03d}_{node}_{re.sub(r"[^A-Za-z0-9]+", "_", tag)}.log'
        return NodeRun(node, params, self.logs / name, env, self.watch[node])

    def first_message(self, run: NodeRun, timeout: float | None = None) -> float | None:
        """Wait for the node's first message; return its seconds from the start, or None."""
        first = self.bench.first(FIRST_MESSAGE[run.node], timeout or START_TIMEOUT_S[run.node],
                                 run.exited.is_set)
        return run.since_start(first[0]) if first else None

    def first_diagnostics(self, run: NodeRun) -> tuple[float | None, list[str]]:
        """Return when the node's first diagnostics came, and the 'labels' values seen."""
        arrivals = self.bench.arrivals(f'diagnostics /{run.node}')
        if not arrivals:
            return None, []
        return run.since_start(arrivals[0][0]), [info for _, info in arrivals]

    def finish(self, run: NodeRun, extra_problem: str = '') -> list[str]:
        """Wait for the exit (kill on timeout), stop feeding; return the run's problems."""
        run.wait_exit()
        self.feeder.stop()
        self.bench.listen_to_images(False)
        run.kill()
        problems = run.problems() + ([extra_problem] if extra_problem else [])
        if problems:
            self.failed_logs.append(run.log_path)
        elif not self.keep_logs:
            run.log_path.unlink(missing_ok=True)
        return problems


def fmt(value: float | None, digits: int = 2) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def med_max(values: list[float | None]) -> str:
    """Return 'median / max' of the values that are not None, and how many are None."""
    known = [v for v in values if v is not None]
    text = f'{statistics.median(known):.2f} / {max(known):.2f}' if known else '-'
    missing = len(values) - len(known)
    return text + (f' ({missing} none)' if missing and known else '')


def problem_lines(run: NodeRun, limit: int = 6) -> list[str]:
    """Return the log lines that show what went wrong (tracebacks, errors, fatal lines)."""
    lines = run.log().splitlines()
    keep = [i for i, line in enumerate(lines)
            if any(m in line for m in CRASH_MARKERS + ('[ERROR]', '[FATAL]', '[WARN]', 'Error'))]
    out = []
    for i in keep:
        if lines[i].startswith('Traceback'):
            out += lines[i:i + 40]
        else:
            out.append(lines[i])
    return out[:limit] if not any(line.startswith('Traceback') for line in out) else out


# --- 1 and 2: start-up and shutdown -----------------------------------------------------------

def steady_runs(runner: Runner, node: str, runs: int, cold_cache: Callable[[], Path] | None,
                warm_cache: Path | None) -> tuple[list[dict], list[dict]]:
    """Start ``node`` 2 x runs times, stop it in steady state; return start and stop rows."""
    starts, stops = [], []
    for i in range(2 * runs):
        signal_name = ('SIGINT', 'SIGTERM')[i % 2]
        cache_name, cache_dir = '-', None
        if node == 'gesture_emotion':
            cache_name = 'cold' if i < runs else 'warm'
            cache_dir = cold_cache() if i < runs else warm_cache
        tag = f'{"" if cache_name == "-" else cache_name} {signal_name} steady'
        run = runner.start(node, tag, cache_dir)
        first = runner.first_message(run)
        diagnostics, labels = runner.first_diagnostics(run)
        row = {'node': node, 'cache': cache_name,
               'handlers': run.since_start(run.handlers_at),
               'configure': run.since_start(run.configure.at),
               'configured': run.logged_at('configured'), 'active': run.logged_at('active'),
               'diagnostics': diagnostics, 'labels': labels, 'first': first}
        if node == 'gesture_emotion':
            row['verdicts'] = [info for _, info in runner.bench.arrivals('gesture_emotion')]
        starts.append(row)
        sent = run.send(signal_name)
        extra = '' if first is not None else \
            f'no {FIRST_MESSAGE[node]} within {START_TIMEOUT_S[node]:g} s'
        if not sent:
            extra = 'exited before the signal'
        problems = runner.finish(run, extra)
        stops.append({'node': node, 'signal': signal_name, 'stop_s': run.stop_s,
                      'status': run.returncode, 'problems': problems, 'run': run})
        print(f'  {node} {tag.strip()}: handler {fmt(row["handlers"])} s, configure '
              f'{fmt(row["configure"])} s, configured '
              f'{fmt(row["configured"])} s, active {fmt(row["active"])} s, first message '
              f'{fmt(first)} s, exit {fmt(run.stop_s)} s after {signal_name}, status '
              f'{run.returncode}{"; " + "; ".join(problems) if problems else ""}', flush=True)
    return starts, stops


def gesture_special_stops(runner: Runner, runs: int, warm_cache: Path) -> list[dict]:
    """Stop the gesture node 1 s after start, during configure, and during a recording."""
    rows = []
    for i in range(runs):
        for case in ('1 s after start', '1 s into configure', 'recording'):
            run = runner.start('gesture_emotion', f'SIGINT {case}', warm_cache)
            row = {'case': case, 'answer': None, 'answer_s': None, 'first': None}
            extra, future, answered = '', None, {}
            if case == '1 s after start':
                time.sleep(max(0.0, run.start + 1.0 - time.monotonic()))
            elif case == '1 s into configure':
                if run.configure.touched.wait(120.0):
                    time.sleep(max(0.0, run.configure.at + 1.0 - time.monotonic()))
                else:
                    extra = 'configure did not start within 120 s'
            else:
                row['first'] = runner.first_message(run)
                future = None
                if row['first'] is None:
                    extra = 'no verdict before the recording'
                elif not runner.bench.record.wait_for_service(timeout_sec=10.0):
                    extra = 'record_template service not found'
                else:
                    future = runner.bench.record.call_async(
                        RecordTemplate.Request(label='x', duration=10.0))
                    future.add_done_callback(
                        lambda _: answered.setdefault('at', time.monotonic()))
                    deadline = time.monotonic() + 10.0
                    while (run.logged_at('recording "x"') is None
                           and time.monotonic() < deadline and not run.exited.is_set()):
                        time.sleep(0.05)
                    if run.logged_at('recording "x"') is None:
                        extra = 'the recording did not start within 10 s'
                    time.sleep(1.0)
            run.send('SIGINT')
            run.wait_exit()
            if case == 'recording' and future is not None:
                deadline = time.monotonic() + 5.0
                while not future.done() and time.monotonic() < deadline:
                    time.sleep(0.02)
                if future.done() and future.result() is not None:
                    result = future.result()
                    row['answer'] = f'success {result.success}: {result.message!r}'
                    row['answer_s'] = answered.get('at', time.monotonic()) - run.signal_at
                    if result.success:
                        extra = 'the interrupted recording answered success true'
                else:
                    extra = 'the record_template call was never answered'
                    row['answer'] = 'none'
            state = run.state_at_signal()
            problems = runner.finish(run, extra)
            row.update(stop_s=run.stop_s, status=run.returncode, problems=problems,
                       state=state, run=run)
            rows.append(row)
            answer = f', answer {fmt(row["answer_s"], 3)} s after SIGINT: {row["answer"]}' \
                if case == 'recording' else ''
            print(f'  gesture_emotion SIGINT {case} (while {state}): exit {fmt(run.stop_s)} s, '
                  f'status {run.returncode}{answer}'
                  f'{"; " + "; ".join(problems) if problems else ""}', flush=True)
    return rows


def print_startup(starts: list[dict]) -> None:
    print('\nStart-up: seconds from process start, median / max')
    header = (f'{"node":16} {"numba":5} {"runs":>4}  {"handler":>12}  {"configure":>12}  '
              f'{"configured":>12}  {"active":>12}  {"diagnostics":>12}  {"first message":>13}')
    print(header)
    print('-' * len(header))
    groups = collections.defaultdict(list)
    for row in starts:
        groups[(row['node'], row['cache'])].append(row)
    for (node, cache), rows in groups.items():
        cells = [med_max([r[k] for r in rows])
                 for k in ('handlers', 'configure', 'configured', 'active', 'diagnostics',
                           'first')]
        print(f'{node:16} {cache:5} {len(rows):>4}  ' + '  '.join(f'{c:>12}' for c in cells))
    print("handler: the process catches SIGTERM (the executable's own handler); configure: "
          'its start; diagnostics: the first /diagnostics status (- : none before the first '
          'message); first message: face_emotions, a gesture_emotion verdict, image')
    gesture = [r for r in starts if r['node'] == 'gesture_emotion']
    if gesture:
        labels = collections.Counter(v for r in gesture for v in r['labels'][:1])
        loading = sum('loading' in r['labels'] for r in gesture)
        print(f"gesture_emotion's first diagnostics said labels = "
              f'{", ".join(f"{k!r} ({n}x)" for k, n in labels.items()) or "-"}; '
              f"'loading' seen in {loading} of {len(gesture)} runs")


def print_shutdown(stops: list[dict], special: list[dict]) -> None:
    print(f'\nShutdown: seconds from the signal to the exit (killed after {STOP_TIMEOUT_S:g} s)')
    header = (f'{"node":16} {"stop":34} {"runs":>4}  {"exit s med / max":>17}  '
              f'{"status":10} problems')
    print(header)
    print('-' * len(header))
    groups = collections.defaultdict(list)
    for row in stops:
        groups[(row['node'], f'{row["signal"]}, steady state')].append(row)
    for row in special:
        groups[('gesture_emotion', f'SIGINT {row["case"]}')].append(row)
    for (node, stop), rows in groups.items():
        statuses = ','.join(str(r['status']) for r in rows)
        problems = collections.Counter(p for r in rows for p in r['problems'])
        text = '; '.join(f'{p} ({n}x)' for p, n in problems.items()) or 'none'
        print(f'{node:16} {stop:34} {len(rows):>4}  {med_max([r["stop_s"] for r in rows]):>17}  '
              f'{statuses:10} {text}')
    for case in dict.fromkeys(r['case'] for r in special):
        rows = [r for r in special if r['case'] == case]
        states = collections.Counter(r['state'] for r in rows)
        sent = ', '.join(f'{s} ({n}x)' for s, n in states.items())
        print(f'  SIGINT {case}: sent while {sent}')
    for row in special:
        if row['case'] == 'recording':
            print(f'  record_template answered {fmt(row["answer_s"], 3)} s after SIGINT (exit '
                  f'{fmt(row["stop_s"])} s after): {row["answer"]}')


# --- 3: many stops ----------------------------------------------------------------------------

def stop_test(runner: Runner, nodes: list[str], stops: int, warm_cache: Path,
              rng: random.Random) -> list[dict]:
    """Start and stop each node ``stops`` times; return one row per stop."""
    rows = []
    for node in nodes:
        to_active: list[float] = []
        for i in range(stops):
            mode = 'start-up' if i % 3 == 2 else 'steady'
            signal_name = ('SIGINT', 'SIGTERM')[(i // 3) % 2 if mode == 'start-up' else i % 3]
            run = runner.start(node, f'{signal_name} {mode}',
                               warm_cache if node == 'gesture_emotion' else None)
            extra, delay = '', None
            if mode == 'steady':
                if runner.first_message(run) is None:
                    extra = f'no {FIRST_MESSAGE[node]} within {START_TIMEOUT_S[node]:g} s'
                active = run.logged_at('active')
                if active is not None and run.handlers_at is not None:
                    to_active.append(active - run.since_start(run.handlers_at))
            elif run.handlers.wait(120):
                usual = statistics.median(to_active) if to_active else 2.0
                delay = rng.uniform(0.0, usual)
                time.sleep(max(0.0, run.handlers_at + delay - time.monotonic()))
            else:
                extra = 'no signal handlers within 120 s'
            sent = run.send(signal_name)
            if not sent and not extra:
                extra = 'exited before the signal'
            run.wait_exit()
            state = run.state_at_signal()
            problems = runner.finish(run, extra)
            rows.append({'node': node, 'mode': mode, 'signal': signal_name, 'state': state,
                         'stop_s': run.stop_s, 'status': run.returncode, 'problems': problems,
                         'run': run, 'delay': delay})
            print(f'  {node} #{i + 1} {signal_name} {mode}'
                  f'{f" {delay:.2f} s after handlers" if delay is not None else ""} (while '
                  f'{state}): exit {fmt(run.stop_s)} s, status {run.returncode}'
                  f'{"; " + "; ".join(problems) if problems else ""}', flush=True)
    return rows


def print_stop_test(rows: list[dict]) -> None:
    print(f'\nStops: crash = non-zero or signal exit, {", ".join(CRASH_MARKERS)} in the '
          f'output; hang = killed {STOP_TIMEOUT_S:g} s after the signal; slow = over '
          f'{SLOW_STOP_S:g} s')
    header = (f'{"node":16} {"stop":22} {"stops":>5} {"crashes":>7} {"hangs":>5} {"slow":>4}  '
              f'{"exit s med / max":>17}  signal sent while')
    print(header)
    print('-' * len(header))
    groups = collections.defaultdict(list)
    for row in rows:
        stop = f'{row["signal"]} steady' if row['mode'] == 'steady' else 'start-up INT/TERM'
        groups[(row['node'], stop)].append(row)
    for node in dict.fromkeys(r['node'] for r in rows):
        groups[(node, 'all')] = [r for r in rows if r['node'] == node]
    for (node, stop), group in sorted(groups.items(),
                                      key=lambda kv: (kv[0][0], kv[0][1] == 'all')):
        hangs = sum(r['run'].killed for r in group)
        crashes = sum(bool(r['problems']) and not r['run'].killed for r in group)
        slow = sum(r['stop_s'] is not None and r['stop_s'] > SLOW_STOP_S for r in group)
        states = collections.Counter(r['state'] for r in group)
        print(f'{node:16} {stop:22} {len(group):>5} {crashes:>7} {hangs:>5} {slow:>4}  '
              f'{med_max([r["stop_s"] for r in group]):>17}  '
              + ', '.join(f'{s} {n}' for s, n in states.items()))


def print_failures(rows: list[dict]) -> None:
    failed = [r for r in rows if r['problems']]
    if not failed:
        return
    print('\nFailing runs:')
    for row in failed:
        run = row['run']
        print(f'- {run.log_path.name}: {"; ".join(row["problems"])} (signal '
              f'{run.signal_name} while {run.state_at_signal()})')
        for line in problem_lines(run):
            print(f'    {line}')


# --- main -------------------------------------------------------------------------------------

def default_domain() -> int:
    current = os.environ.get('ROS_DOMAIN_ID', '')
    if current.isdigit() and 150 <= int(current) <= 200:
        return int(current)
    return 150 + os.getpid() % 51


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].strip())
    parser.add_argument('--nodes', nargs='+', choices=NODES, default=list(NODES))
    parser.add_argument('--runs', type=int, default=3,
                        help='runs per signal (start-up and shutdown); default 3')
    parser.add_argument('--stops', type=int, nargs='?', const=10, default=0,
                        help='instead: start and stop each node N times (default 10)')
    parser.add_argument('--domain', type=int, default=default_domain(),
                        help='ROS_DOMAIN_ID (default: from the environment if in 150-200)')
    parser.add_argument('--seed', type=int, default=0, help='for the start-up stop moments')
    parser.add_argument('--keep-logs', action='store_true', help='keep every log, not only '
                        "failing runs' logs")
    args = parser.parse_args()
    os.environ['ROS_DOMAIN_ID'] = str(args.domain)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the nodes are killed

    temporary = Path(tempfile.mkdtemp(prefix='node_lifecycle_'))
    logs = temporary / 'logs'
    logs.mkdir()
    fps = clip_fps()
    feed_indices = sampled(CRYING[0], CRYING[1], round((CRYING[1] - CRYING[0]) * RATE / fps),
                           fps)
    wanted = {FACE_FRAME, *feed_indices}
    if 'gesture_emotion' in args.nodes:
        wanted |= {i for t in template_frames(fps).values() for f in t for i in f}
    frames = read_frames(wanted)
    header = Header(frame_id='camera')
    feed = ([skeleton_array(header, [('person1', s)] if s is not None else [])
             for s in posed([frames[i] for i in feed_indices])]
            if 'gesture_emotion' in args.nodes else [])
    face_image = bgr_to_image(frames[FACE_FRAME], header)
    # Each node's folder, watched for the start of its configure: private copies of the files.
    watch = {node: temporary / node for node in NODES}
    for folder, files in ((watch['face_emotion'], (MODEL, MODEL.with_suffix('.json'))),
                          (watch['video_source'], (CLIP,))):
        folder.mkdir()
        for file in files:
            shutil.copyfile(file, folder / file.name)
    if 'gesture_emotion' in args.nodes:
        build_templates(watch['gesture_emotion'], frames, fps)
    del frames
    print(f'ROS_DOMAIN_ID {args.domain}; frames {SIZE[0]}x{SIZE[1]} at {RATE:g} fps; '
          f'templates: 2 x crying, 2 x laughing, {TEMPLATE_S:g} s each', flush=True)

    rclpy.init()
    bench = Bench()
    executor = SingleThreadedExecutor()
    executor.add_node(bench)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    runner = Runner(bench, logs, watch, feed, face_image, args.keep_logs)
    caches: list[Path] = []

    def new_cache() -> Path:
        caches.append(Path(tempfile.mkdtemp(prefix='numba_', dir=temporary)))
        return caches[-1]

    warm_cache = new_cache()
    all_rows: list[dict] = []
    try:
        if args.stops:
            rows = stop_test(runner, args.nodes, args.stops, warm_cache,
                             random.Random(args.seed))
            all_rows = rows
            print_stop_test(rows)
        else:
            starts, stops, special = [], [], []
            cold_used = []

            def cold() -> Path:
                # The first cold folder, once filled, is the warm one.
                cold_used.append(warm_cache if not cold_used else new_cache())
                return cold_used[-1]

            for node in args.nodes:
                print(f'{node}:', flush=True)
                got_starts, got_stops = steady_runs(runner, node, args.runs, cold, warm_cache)
                starts += got_starts
                stops += got_stops
                if node == 'gesture_emotion':
                    files = sum(1 for _ in warm_cache.rglob('*.nbi'))
                    off = '' if files else ' (caching is off: warm = cold)'
                    print(f'  numba cache: a cold start wrote {files} index files to its '
                          f'NUMBA_CACHE_DIR{off}')
                    special = gesture_special_stops(runner, args.runs, warm_cache)
            all_rows = stops + special
            print_startup(starts)
            print_shutdown(stops, special)
        print_failures(all_rows)
    finally:
        runner.feeder.stop()
        for run in list(NodeRun.running):
            run.kill()
        executor.shutdown()
        spinner.join(timeout=5)  # a thread left in the executor at exit aborts the process
        bench.destroy_node()
        rclpy.try_shutdown()
        for folder in [*caches, *watch.values()]:
            shutil.rmtree(folder, ignore_errors=True)
    if runner.failed_logs or args.keep_logs:
        print(f'\nlogs{"" if args.keep_logs else " of failing runs"}: {logs}')
    else:
        shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
