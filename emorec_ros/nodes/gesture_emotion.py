"""
Node ``gesture_emotion``: what each person's body language says, from their skeletons.

A lifecycle node. Configure checks the template folder, recovers interrupted writes, loads the
templates and compiles the DTW; activate subscribes to ``skeletons`` (emorec_ros/SkeletonArray,
from body_pose, motion_player or any pose estimator that fills it). It keeps the last
``window_s`` seconds of skeletons of each person id and, every ``1 / publish_rate`` seconds of
the stream's stamps, publishes one ``gesture_emotion`` (emorec_ros/GestureEmotion) per person in
view: DTW against the recorded gesture templates, then logistic regression. Windows, verdicts and
recordings follow the messages' stamps, so a bag played at any speed (with ``--clock`` and
``use_sim_time``) gives the same verdicts; the waits that no stamp can end (a person gone
because skeleton messages stopped, a recording without messages) follow the node's clock.
Malformed skeletons are logged (throttled) and skipped. ``/diagnostics`` once a second.

Services (from the start, in every state): ``~/record_template`` (record the next seconds of a
person as a template with a label; only while active), ``~/list_templates`` (from disk, with
which templates are in use and why others are not), ``~/delete_template``. Recording blocks
neither skeletons nor other calls; a change of the templates refits the classifier in the
background, one refit for any number of changes. Classification runs in a worker thread of its
own, newest window first, so skeleton messages are never held up by it.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from emorec_ros.gesture import dtw
from emorec_ros.gesture.classify import GestureClassifier, GestureResult, WINDOW_S
from emorec_ros.gesture.skeleton import Skeleton, stack
from emorec_ros.gesture.store import default_directory, TemplateStore, TemplateStoreError
from emorec_ros.gesture.template import Template, validate_id, validate_label
from emorec_ros.gesture.window import NS, PersonWindows, Recording, WindowSnapshot
from emorec_ros.msg import GestureEmotion, SkeletonArray
from emorec_ros.nodes.common import (check_diagnostics_thresholds,
                                     declare_diagnostics_parameters, diagnostic_status)
from emorec_ros.nodes.managed import ManagedNode, run_node, StartupError
from emorec_ros.nodes.skeleton_msgs import skeleton_from_msg
from emorec_ros.srv import DeleteTemplate, ListTemplates, RecordTemplate
from emorec_ros.stats import ProcessingStats
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from std_msgs.msg import Header

#: Fewest skeletons a recording needs to become a template.
MIN_RECORDED_SKELETONS = 10
#: Seconds (node clock) without a skeleton message after which a recording ends: kept when its
#: skeletons span RECORD_KEEP_SHARE of the duration (a clip or bag that ended a little early),
#: else refused.
RECORD_GRACE_S = 5.0
RECORD_KEEP_SHARE = 0.8
#: Services keep every request until it is taken: a burst of calls is queued, never dropped
#: (the default keeps 10, and a burst of 50 record calls lost 34 of them).
SERVICE_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
#: Skeleton messages are small and every one counts (a recording keeps them all): reliable, with
#: a queue of two seconds at 30 per second should the callback ever be held up.
SKELETON_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=60,
                          reliability=ReliabilityPolicy.RELIABLE)


class GestureEmotionNode(ManagedNode):
    """A rolling window per person id, DTW + logistic regression per window."""

    NAME = 'gesture_emotion'
    DIAGNOSTICS = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        template_dir = self.declare('template_dir', '', "gesture template folder; '' = "
                                    '$ROS_HOME/emorec/templates (~/.ros/emorec/templates)',
                                    read_only=True)
        self.declare('window_s', WINDOW_S, 'seconds of motion classified at a time', 0.5, 10.0)
        self.declare('publish_rate', 4.0, 'gesture_emotion messages per person per second of '
                     'the stream (stamps)', 0.1, 30.0)
        self.declare('person_lost_s', 1.0, 'seconds without a skeleton of a person after which '
                     'their window is forgotten', 0.1, 60.0)
        self.declare('max_record_duration', 30.0, 'longest template recording (s)', 0.5, 600.0)
        self.declare('max_stamp_ahead_s', 1.0, 'skeleton messages stamped further ahead of the '
                     'node clock are skipped (a wrong stamp would otherwise hold the windows)',
                     0.0, 3600.0)
        declare_diagnostics_parameters(self, 50.0, 'classification time per window',
                                       'a skeleton message')

        self.store = TemplateStore(Path(template_dir) if template_dir else default_directory())
        self.windows = PersonWindows(self.value('window_s'), self.value('person_lost_s'),
                                     1.0 / self.value('publish_rate'))
        self.stats = ProcessingStats()            # skeleton messages
        self.classify_stats = ProcessingStats()   # windows classified
        self._lock = threading.Lock()             # windows, recording, classifier, pending
        self._refit_wanted = threading.Condition()  # template changes for the refit thread
        self._refit_generation = 0                # changes asked for
        self._fitted_generation = -1              # changes the classifier has seen
        self._refit_thread: threading.Thread | None = None
        self._pending: dict[str, tuple[WindowSnapshot, str]] = {}  # newest due window per person
        self._work = threading.Condition(self._lock)  # pending windows for the classify thread
        self._classify_thread: threading.Thread | None = None
        self._recording: Recording | None = None
        self._classifier: GestureClassifier | None = None  # None until configured
        self._configured = False
        self._unused: dict[str, str] = {}         # template id -> why the classifier skips it
        self._last_stamp_ns: int | None = None    # of the last message processed
        self._last_input_ns: int | None = None    # when it came, on the node clock
        self._skeletons_rejected = 0              # malformed skeletons skipped
        self._subscription = None
        self._lost_timer = None

        self.skeleton_group = MutuallyExclusiveCallbackGroup()
        service_group = ReentrantCallbackGroup()
        self.publisher = self.create_lifecycle_publisher(GestureEmotion, 'gesture_emotion', 10)
        for srv_type, name, handler in (
                (RecordTemplate, '~/record_template', self.on_record),
                (ListTemplates, '~/list_templates', self.on_list),
                (DeleteTemplate, '~/delete_template', self.on_delete)):
            self.create_service(srv_type, name, handler, qos_profile=SERVICE_QOS,
                                callback_group=service_group)
        self.declared_all()

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self) -> None:
        """Check the template folder, load the templates, compile the DTW."""
        log = self.get_logger()
        try:
            self.store.check_usable()
        except TemplateStoreError as e:
            log.fatal(f'template_dir is unusable: {e}')
            raise StartupError(str(e)) from e
        for note in self.store.recover():
            log.warning(f'template folder: {note}')
        dtw.warm_up()
        self._configured = True
        self._fit(self._refit_generation)
        self._refit_thread = threading.Thread(target=self._refit_loop, daemon=True)
        self._refit_thread.start()
        with self._lock:
            labels = ', '.join(self._classifier.labels) or \
                'none yet: record some with the record_template service'
        log.info(f'gesture templates from {self.store.directory}: {labels}')

    def activate(self) -> None:
        """Subscribe to skeletons; classify in a thread of its own."""
        with self._lock:
            self._classify_thread = threading.Thread(target=self._classify_loop, daemon=True)
            self._classify_thread.start()
        self._subscription = self.create_subscription(
            SkeletonArray, 'skeletons', self.on_skeletons, SKELETON_QOS,
            callback_group=self.skeleton_group)
        self._lost_timer = self.create_timer(0.25, self._check_input_stopped,
                                             callback_group=self.skeleton_group)

    def deactivate(self) -> None:
        """Stop taking skeletons, end a recording, and return once no window is classified."""
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        if self._lost_timer is not None:
            self.destroy_timer(self._lost_timer)
            self._lost_timer = None
        self._abort_recording('the node is shutting down' if self.stopping.is_set()
                              else 'the node was deactivated')
        with self._lock:
            thread, self._classify_thread = self._classify_thread, None
            self._pending.clear()
            self._work.notify_all()
        if thread is not None:
            thread.join(timeout=2.0)
        with self._lock:
            self.windows.reset()
            self._last_stamp_ns = self._last_input_ns = None

    def cleanup(self) -> None:
        """Forget the classifier."""
        self._abort_recording('the node was cleaned up')
        with self._refit_wanted:
            thread, self._refit_thread = self._refit_thread, None
            self._refit_wanted.notify_all()
        if thread is not None:
            thread.join(timeout=0.5)
        with self._lock:
            self._configured = False
            self._classifier = None

    def _abort_recording(self, reason: str) -> None:
        with self._lock:
            if self._recording is not None:
                self._recording.abort(reason)

    # --- parameters ------------------------------------------------------------------------
    def check_parameters(self, values: dict[str, Any]) -> str | None:
        return check_diagnostics_thresholds(values, self.value)

    def apply_parameters(self, values: dict[str, Any]) -> None:
        with self._lock:
            if 'window_s' in values:
                self.windows.window_s = values['window_s']
            if 'person_lost_s' in values:
                self.windows.lost_s = values['person_lost_s']
            if 'publish_rate' in values:
                self.windows.period_s = 1.0 / values['publish_rate']
        if 'window_s' in values and self._classifier is not None:
            self._request_refit()  # template windows are cut to this length

    # --- templates -------------------------------------------------------------------------
    def _fit(self, generation: int) -> dict[str, str]:
        """Reload the store and fit a classifier; return the skipped templates and why."""
        templates, skipped = self.store.load()
        unused = {f.template_id or f.name: f.reason for f in skipped}
        classifier = GestureClassifier(window_s=self.value('window_s'))
        unused.update(dict(classifier.fit(templates)))
        for key, reason in unused.items():
            self.get_logger().warning(f'template {key} not used: {reason}')
        if not self._configured:  # cleaned up meanwhile: keep nothing
            return unused
        with self._lock:
            self._classifier, self._unused = classifier, unused
            self._fitted_generation = generation
        return unused

    def _request_refit(self) -> int:
        with self._refit_wanted:
            self._refit_generation += 1
            self._refit_wanted.notify_all()
            return self._refit_generation

    def _refit_loop(self) -> None:
        """Refit after template changes; changes made during a refit share the next one."""
        me = threading.current_thread()
        while True:
            with self._refit_wanted:
                while (self._refit_thread is me
                       and self._fitted_generation >= self._refit_generation):
                    self._refit_wanted.wait()
                if self._refit_thread is not me:
                    return
                generation = self._refit_generation
            try:
                self._fit(generation)
            except Exception as e:  # keep the old classifier, say why
                self.get_logger().error(f'refit failed: {type(e).__name__}: {e}')
                with self._lock:
                    self._fitted_generation = generation
            with self._refit_wanted:
                self._refit_wanted.notify_all()

    def _wait_for_fit(self, generation: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._refit_wanted:
            while self._fitted_generation < generation and not self.stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0 or self._refit_thread is None:
                    return False
                self._refit_wanted.wait(min(left, 0.1))
        return self._fitted_generation >= generation

    # --- skeletons -------------------------------------------------------------------------
    def on_skeletons(self, msg: SkeletonArray) -> None:
        """Add a message's skeletons to the windows and the recording; queue due windows."""
        start = time.perf_counter()
        now = self.get_clock().now()
        stamp = Time.from_msg(msg.header.stamp)
        if not stamp.nanoseconds:
            stamp = now
        ahead = (stamp - now).nanoseconds / NS
        if ahead > self.value('max_stamp_ahead_s'):
            self.stats.reject()
            self.get_logger().warning(
                f'skeletons stamped {ahead:.3f} s ahead of the clock: skipped',
                throttle_duration_sec=5.0)
            return
        if stamp.nanoseconds == self._last_stamp_ns:
            return  # the same message again (a publisher that repeats what may have been lost)
        people = self._read_people(msg)
        with self._lock:
            self._last_stamp_ns, self._last_input_ns = stamp.nanoseconds, now.nanoseconds
            note = self.windows.add(stamp.nanoseconds, people)
            if self._recording is not None:
                self._recording.last_input_ns = now.nanoseconds
                self._recording.add(stamp.nanoseconds, people, self.windows.in_view)
            due = self.windows.due() if self._classifier is not None else []
            for snapshot in due:
                self._pending[snapshot.person_id] = (snapshot, msg.header.frame_id)
            if due:
                self._work.notify_all()
        if note:
            self.get_logger().warning(note, throttle_duration_sec=5.0)
        self.stats.record(time.perf_counter() - start, (now - stamp).nanoseconds / NS)

    def _read_people(self, msg: SkeletonArray) -> dict[str, Skeleton]:
        """Return the message's well-formed skeletons by person id; log and skip the others."""
        people: dict[str, Skeleton] = {}
        for i, skeleton_msg in enumerate(msg.skeletons):
            try:
                if not skeleton_msg.id:
                    raise ValueError('no person id')
                if skeleton_msg.id in people:
                    raise ValueError('a second skeleton with this id in the message')
                people[skeleton_msg.id] = skeleton_from_msg(skeleton_msg)
            except ValueError as e:
                self._skeletons_rejected += 1
                self.get_logger().warning(
                    f'skeleton {i} ({skeleton_msg.id or "no id"}) skipped: {e}',
                    throttle_duration_sec=5.0)
        return people

    def _check_input_stopped(self) -> None:
        """Forget every person once no skeleton message came for person_lost_s (node clock)."""
        now = self.get_clock().now().nanoseconds
        with self._lock:
            if (self._last_input_ns is not None and self.windows.people
                    and now - self._last_input_ns > self.value('person_lost_s') * NS):
                self.windows.reset()
                self._last_stamp_ns = None
                self.get_logger().info('no skeletons for person_lost_s: every window forgotten')
            recording = self._recording
            if recording is not None and recording.last_input_ns \
                    and now - recording.last_input_ns > RECORD_GRACE_S * NS:
                recording.stream_stopped(f'skeleton messages stopped arriving: none for '
                                         f'{RECORD_GRACE_S:g} s, {recording.messages} recorded',
                                         RECORD_KEEP_SHARE)

    def _classify_loop(self) -> None:
        """Classify the due windows, newest per person, until the node is deactivated."""
        me = threading.current_thread()
        while True:
            with self._lock:
                while self._classify_thread is me and not self._pending:
                    self._work.wait()
                if self._classify_thread is not me:
                    return
                work, self._pending = list(self._pending.values()), {}
                classifier = self._classifier
            for snapshot, frame_id in work:
                self._classify(classifier, snapshot, frame_id)

    def _classify(self, classifier: GestureClassifier, window: WindowSnapshot,
                  frame_id: str) -> None:
        start = time.perf_counter()
        try:
            result = classifier.classify(window.positions, window.visibility, window.fps)
        except ValueError as e:  # e.g. no shoulders in the window
            self.get_logger().warning(f'window of {window.person_id} not classified: {e}',
                                      throttle_duration_sec=10.0)
            return
        self.publisher.publish(self._verdict(result, window, frame_id))
        age = (self.get_clock().now().nanoseconds - window.last_ns) / NS
        self.classify_stats.record(time.perf_counter() - start, age)

    @staticmethod
    def _verdict(result: GestureResult, window: WindowSnapshot, frame_id: str) -> GestureEmotion:
        distance = result.nearest_distance
        return GestureEmotion(
            header=Header(stamp=Time(nanoseconds=window.last_ns).to_msg(), frame_id=frame_id),
            window_start=Time(nanoseconds=window.first_ns).to_msg(),
            person_id=window.person_id, emotion=result.label or '',
            confidence=float(result.confidence), labels=list(result.labels),
            scores=[float(p) for p in result.probabilities],
            nearest_template=result.nearest_id or '',
            nearest_distance=float(distance) if math.isfinite(distance) else math.nan)

    # --- services --------------------------------------------------------------------------
    def on_record(self, request: RecordTemplate.Request,
                  response: RecordTemplate.Response) -> RecordTemplate.Response:
        """Record the next ``duration`` seconds of a person as a template."""
        def fail(message: str) -> RecordTemplate.Response:
            self.get_logger().warning(f'record_template refused: {message}')
            response.success, response.message = False, message
            return response

        try:
            label = validate_label(request.label)
        except ValueError as e:
            return fail(str(e))
        duration, longest = float(request.duration), self.value('max_record_duration')
        if not (math.isfinite(duration) and 0 < duration <= longest):
            return fail(f'duration must be > 0 and <= max_record_duration ({longest:g} s), '
                        f'got {duration:g}')
        if self.state != 'active' or self.stopping.is_set():
            return fail(f'the node is {self.state}, not active: activate it to record')
        person = request.person_id
        with self._lock:
            if self._recording is not None:
                return fail(f'a recording ("{self._recording.label}") is already in progress')
            in_view = self.windows.in_view
            if person and person not in in_view:
                return fail(f'person "{person}" is not in view (in view: '
                            f'{", ".join(in_view) or "nobody"})')
            recording = self._recording = Recording(
                label, duration, person, self.get_clock().now().nanoseconds)
        self.get_logger().info(f'recording "{label}" of {person or "the person most in view"} '
                               f'for {duration:g} s')
        # The duration is on the stream's stamps; only a stream that stops (RECORD_GRACE_S on
        # the node clock, checked with the person timeouts) or a shutdown ends it early.
        while not recording.done.wait(timeout=0.1):
            if self.stopping.is_set():
                recording.abort('the node is shutting down')
        with self._lock:
            self._recording = None
        if recording.failure:
            return fail(recording.failure)
        who = recording.person_id or 'anyone'
        if len(recording.skeletons) < MIN_RECORDED_SKELETONS:
            return fail(f'{who} was seen in {len(recording.skeletons)} of '
                        f'{recording.messages} skeleton messages, '
                        f'{MIN_RECORDED_SKELETONS} needed')
        positions, visibility = stack(recording.skeletons)
        try:
            template = Template.new(label, positions, visibility, recording.fps,
                                    source=f'recording of {who}')
            self.store.save(template)
        except (OSError, ValueError) as e:
            return fail(f'could not save the template in {self.store.directory}: {e}')
        used = self._wait_for_fit(self._request_refit(), timeout=60.0)
        with self._lock:
            reason = self._unused.get(template.id)
        response.success, response.template_id = True, template.id
        response.frames = template.frames
        response.message = (f'recorded "{label}" of {who}: {template.frames} skeletons at '
                            f'{recording.fps:.1f} fps')
        if recording.stopped_early:
            response.message += f' ({recording.stopped_early})'
        if reason:
            response.message += f'; saved but not used: {reason}'
        elif not used:
            response.message += '; saved, the classifier is still being refitted'
        self.get_logger().info(response.message)
        return response

    def on_list(self, request: ListTemplates.Request,
                response: ListTemplates.Response) -> ListTemplates.Response:
        """List the template files on disk, and which the classifier uses."""
        templates, skipped = self.store.load()
        with self._lock:
            ready = (self._classifier is not None
                     and self._fitted_generation >= self._refit_generation)
            unused = dict(self._unused)
        response.state = 'ready' if ready else 'loading'
        for t in templates:
            reason = unused.get(t.id, '') if ready else 'the classifier is loading'
            self._list_entry(response, t.id, t.label, t.frames, reason)
        for f in skipped:
            self._list_entry(response, f.template_id or f.name, '', 0, f.reason)
        return response

    @staticmethod
    def _list_entry(response: ListTemplates.Response, template_id: str, label: str,
                    frames: int, reason: str) -> None:
        response.template_ids.append(template_id)
        response.labels.append(label)
        response.frames.append(frames)
        response.in_use.append(not reason)
        response.reasons.append(reason)

    def on_delete(self, request: DeleteTemplate.Request,
                  response: DeleteTemplate.Response) -> DeleteTemplate.Response:
        """Delete a template file; the classifier is refitted in the background."""
        try:
            template_id = validate_id(request.template_id)
            deleted = self.store.delete(template_id)
        except (ValueError, OSError) as e:
            response.success, response.message = False, f'could not delete: {e}'
            self.get_logger().warning(response.message)
            return response
        if deleted and self._classifier is not None:
            self._request_refit()
        response.success = deleted
        response.message = (f'deleted {template_id}' if deleted
                            else f'no template with id {template_id}')
        # One call site per severity: rclpy refuses a call site whose severity changes (it
        # raised in the executor after a delete that worked and one that did not).
        if deleted:
            self.get_logger().info(response.message)
        else:
            self.get_logger().warning(response.message)
        return response

    # --- diagnostics -----------------------------------------------------------------------
    def diagnostic_status(self) -> DiagnosticStatus:
        v = self.value
        classified = self.classify_stats.snapshot()
        # Processing times are the classification's; rate, latency and counts the messages'.
        stats = dataclasses.replace(self.stats.snapshot(),
                                    processing_ms_p50=classified.processing_ms_p50,
                                    processing_ms_p95=classified.processing_ms_p95)
        with self._lock:
            classifier = self._classifier
            people = self.windows.people
            extra = {'labels': ', '.join(classifier.labels) if classifier else 'loading',
                     'templates not used': str(len(self._unused)),
                     'people': ', '.join(people) or 'none',
                     'skeletons rejected': str(self._skeletons_rejected),
                     'verdicts': str(classified.processed),
                     'verdict latency p95 (ms)': f'{classified.latency_ms_p95:.1f}'}
        return diagnostic_status(self, stats, v('diagnostics_warn_ms'),
                                 v('diagnostics_error_ms'), v('diagnostics_stale_s'), extra,
                                 inputs='skeleton messages')


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(GestureEmotionNode, args, threads=6))


if __name__ == '__main__':
    main()
