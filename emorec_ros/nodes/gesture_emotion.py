"""
Node ``gesture_emotion``: what a person's body language says, from camera images.

A lifecycle node. Configure checks the template folder, recovers interrupted writes, loads
MediaPipe Pose and the templates and compiles the DTW; activate subscribes to ``image`` (or
``<image>/compressed``). It estimates the person's pose in every processed image, keeps the last
``window_s`` seconds of skeletons and, at most ``publish_rate`` times a second and only when a new
skeleton has come, publishes ``gesture_emotion`` (emorec_ros/GestureEmotion): DTW against the
recorded gesture templates, then logistic regression over the per-label distances.
``~/gesture_debug_image`` (the skeleton and the verdict) is published while someone subscribes;
``/diagnostics`` once a second.

Services (from the start, in every state): ``~/record_template`` (record the next seconds of the
person as a template with a label; only while active), ``~/list_templates`` (from disk, with
which templates are in use and why others are not), ``~/delete_template``. Recording blocks
neither images nor other calls; a change of the templates refits the classifier in the
background, one refit for any number of changes.
"""
from __future__ import annotations

import math
from pathlib import Path
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from emorec_ros.gesture import dtw
from emorec_ros.gesture.classify import GestureClassifier, GestureResult, WINDOW_S
from emorec_ros.gesture.draw import draw_skeleton
from emorec_ros.gesture.pose import PoseEstimator
from emorec_ros.gesture.skeleton import stack
from emorec_ros.gesture.store import default_directory, TemplateStore, TemplateStoreError
from emorec_ros.gesture.template import Template, validate_id, validate_label
from emorec_ros.gesture.window import NS, PersonWindow, Recording
from emorec_ros.image import bgr_to_image
from emorec_ros.msg import GestureEmotion
from emorec_ros.nodes.common import (check_diagnostics_thresholds, DEBUG_IMAGE_QOS,
                                     declare_image_parameters, diagnostic_status, read_image,
                                     record_processed, subscribe_images)
from emorec_ros.nodes.managed import ManagedNode, run_node, StartupError
from emorec_ros.srv import DeleteTemplate, ListTemplates, RecordTemplate
from emorec_ros.stats import ProcessingStats
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

#: Fewest skeletons a recording needs to become a template.
MIN_RECORDED_SKELETONS = 10
#: Seconds without an image after which a recording gives up.
RECORD_GRACE_S = 5.0
#: Services keep every request until it is taken: a burst of calls is queued, never dropped
#: (the default keeps 10, and a burst of 50 record calls lost 34 of them).
SERVICE_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)


class GestureEmotionNode(ManagedNode):
    """Pose per image, a rolling window per person, DTW + logistic regression per window."""

    NAME = 'gesture_emotion'
    DIAGNOSTICS = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        template_dir = self.declare('template_dir', '', "gesture template folder; '' = "
                                    '$ROS_HOME/emorec/templates (~/.ros/emorec/templates)',
                                    read_only=True)
        self.declare('window_s', WINDOW_S, 'seconds of motion classified at a time', 0.5, 10.0)
        self.declare('publish_rate', 4.0, 'most gesture_emotion messages per second', 0.1, 30.0)
        self.declare('person_lost_s', 1.0, 'seconds without a skeleton after which the person '
                     'is gone: the window empties and the next person gets a new id', 0.1, 60.0)
        self.declare('max_record_duration', 30.0, 'longest template recording (s)', 0.5, 600.0)
        self.declare('max_stamp_ahead_s', 1.0, 'images stamped further ahead of the node clock '
                     'are skipped (a wrong stamp would otherwise hold the window)', 0.0, 3600.0)
        self.declare('pose_detection_confidence', 0.5, 'MediaPipe pose detection confidence',
                     0.0, 1.0)
        self.declare('pose_tracking_confidence', 0.5, 'MediaPipe pose tracking confidence',
                     0.0, 1.0)
        self.transport = declare_image_parameters(self, 33.0, 'pose time per image')

        self.store = TemplateStore(Path(template_dir) if template_dir else default_directory())
        self.pose: PoseEstimator | None = None
        self.window = PersonWindow(self.value('window_s'), self.value('person_lost_s'))
        self.stats = ProcessingStats()
        self._lock = threading.Lock()             # window, recording, classifier, last result
        self._processing = threading.Lock()       # one image through the pose estimator
        self._refit_wanted = threading.Condition()  # template changes for the refit thread
        self._refit_generation = 0                # changes asked for
        self._fitted_generation = -1              # changes the classifier has seen
        self._refit_thread: threading.Thread | None = None
        self._recording: Recording | None = None
        self._classifier: GestureClassifier | None = None  # None until configured
        self._unused: dict[str, str] = {}         # template id -> why the classifier skips it
        self._caption = ''
        self._frame_id = ''  # of the newest image: the camera the verdicts are about
        self._published_ns: int | None = None  # newest skeleton already classified
        self._last_stamp_ns: int | None = None  # of the last image processed
        self._subscription = None
        self._classify_timer = None

        self.image_group = MutuallyExclusiveCallbackGroup()
        self.timer_group = MutuallyExclusiveCallbackGroup()
        service_group = ReentrantCallbackGroup()
        self.publisher = self.create_lifecycle_publisher(GestureEmotion, 'gesture_emotion', 10)
        self.debug_publisher = self.create_lifecycle_publisher(Image, '~/gesture_debug_image',
                                                               DEBUG_IMAGE_QOS)
        for srv_type, name, handler in (
                (RecordTemplate, '~/record_template', self.on_record),
                (ListTemplates, '~/list_templates', self.on_list),
                (DeleteTemplate, '~/delete_template', self.on_delete)):
            self.create_service(srv_type, name, handler, qos_profile=SERVICE_QOS,
                                callback_group=service_group)
        self.declared_all()

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self) -> None:
        """Check the template folder, load MediaPipe and the templates, compile the DTW."""
        log = self.get_logger()
        try:
            self.store.check_usable()
        except TemplateStoreError as e:
            log.fatal(f'template_dir is unusable: {e}')
            raise StartupError(str(e)) from e
        for note in self.store.recover():
            log.warning(f'template folder: {note}')
        self.pose = self._make_pose()
        dtw.warm_up()
        self._fit(self._refit_generation)
        self._refit_thread = threading.Thread(target=self._refit_loop, daemon=True)
        self._refit_thread.start()
        with self._lock:
            labels = ', '.join(self._classifier.labels) or \
                'none yet: record some with the record_template service'
        log.info(f'gesture templates from {self.store.directory}: {labels}')

    def _make_pose(self) -> PoseEstimator:
        return PoseEstimator(video=True,
                             min_detection_confidence=self.value('pose_detection_confidence'),
                             min_tracking_confidence=self.value('pose_tracking_confidence'))

    def activate(self) -> None:
        """Subscribe to images; classify on a timer."""
        self._subscription = subscribe_images(self, self.transport, self.on_image, self.stats,
                                              self.image_group)
        self._start_classifying()

    def _start_classifying(self) -> None:
        self._classify_timer = self.create_timer(1.0 / self.value('publish_rate'),
                                                 self.classify_window,
                                                 callback_group=self.timer_group)

    def _stop_classifying(self) -> None:
        if self._classify_timer is not None:
            self.destroy_timer(self._classify_timer)
            self._classify_timer = None

    def deactivate(self) -> None:
        """Stop taking images, end a recording, and return once no image is processed."""
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        self._stop_classifying()
        self._abort_recording('the node is shutting down' if self.stopping.is_set()
                              else 'the node was deactivated')
        with self._processing, self._lock:
            self.window.reset()
            self._published_ns = None

    def cleanup(self) -> None:
        """Close MediaPipe and forget the classifier."""
        self._abort_recording('the node was cleaned up')
        with self._refit_wanted:
            thread, self._refit_thread = self._refit_thread, None
            self._refit_wanted.notify_all()
        if thread is not None:
            thread.join(timeout=0.5)
        with self._processing:
            if self.pose is not None:
                self.pose.close()
                self.pose = None
        with self._lock:
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
                self.window.window_s = values['window_s']
            if 'person_lost_s' in values:
                self.window.lost_s = values['person_lost_s']
        if 'window_s' in values and self._classifier is not None:
            self._request_refit()  # template windows are cut to this length
        if 'publish_rate' in values and self._classify_timer is not None:
            self._stop_classifying()
            self._start_classifying()
        if {'pose_detection_confidence', 'pose_tracking_confidence'} & values.keys():
            with self._processing:
                if self.pose is not None:
                    self.pose.close()
                    self.pose = self._make_pose()

    # --- templates -------------------------------------------------------------------------
    def _fit(self, generation: int) -> dict[str, str]:
        """Reload the store and fit a classifier; return the skipped templates and why."""
        templates, skipped = self.store.load()
        unused = {f.template_id or f.name: f.reason for f in skipped}
        classifier = GestureClassifier(window_s=self.value('window_s'))
        unused.update(dict(classifier.fit(templates)))
        for key, reason in unused.items():
            self.get_logger().warning(f'template {key} not used: {reason}')
        if self.pose is None:  # cleaned up meanwhile: keep nothing
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

    # --- images ----------------------------------------------------------------------------
    def on_image(self, msg: Image | CompressedImage) -> None:
        start = time.perf_counter()
        stamp = Time.from_msg(msg.header.stamp)
        now = self.get_clock().now()
        if not stamp.nanoseconds:
            stamp = now
        ahead = (stamp - now).nanoseconds / NS
        if ahead > self.value('max_stamp_ahead_s'):
            self.stats.reject()
            self.get_logger().warning(
                f'image stamped {ahead:.3f} s ahead of the clock: skipped',
                throttle_duration_sec=5.0)
            return
        if stamp.nanoseconds == self._last_stamp_ns:
            return  # the same image again (a publisher that repeats what may have been lost)
        bgr = read_image(self, msg, self.value('max_image_pixels'), self.stats)
        if bgr is None:
            return
        with self._processing:
            if self.pose is None:
                return
            skeleton = self.pose.estimate(bgr)
        self._last_stamp_ns = stamp.nanoseconds
        with self._lock:
            note = self.window.add(stamp.nanoseconds, skeleton)
            if note:
                self._published_ns = None
            self._frame_id = msg.header.frame_id
            recording = self._recording
            if recording is not None:
                recording.add(stamp.nanoseconds, skeleton)
                caption = (f'recording "{recording.label}" ({len(recording.skeletons)} '
                           'skeletons)')
            else:
                caption = self._caption if skeleton is not None else 'nobody in view'
        if note:
            self.get_logger().warning(note, throttle_duration_sec=5.0)
        if self.debug_publisher.get_subscription_count() > 0:
            self.debug_publisher.publish(
                bgr_to_image(draw_skeleton(bgr, skeleton, caption), msg.header))
        record_processed(self, self.stats, start, stamp)

    def classify_window(self) -> None:
        """Classify the window when a skeleton came since the last verdict, and publish it."""
        with self._lock:
            classifier, newest = self._classifier, self.window.newest_ns
            if (classifier is None or newest is None or newest == self._published_ns
                    or not self.window.is_full()):
                return
            self._published_ns = newest
            person, frame_id = self.window.person_id, self._frame_id
            first, last, positions, visibility, fps = self.window.snapshot()
        try:
            result = classifier.classify(positions, visibility, fps)
        except ValueError as e:  # e.g. no shoulders in the window
            self.get_logger().warning(f'window not classified: {e}', throttle_duration_sec=10.0)
            return
        self.publisher.publish(self._verdict(result, person, frame_id, first, last))
        with self._lock:
            self._caption = (f'{person}: {result.label} {result.confidence:.2f} '
                             f'({result.method})' if result.label
                             else f'{person}: no gesture templates')

    @staticmethod
    def _verdict(result: GestureResult, person: str, frame_id: str, first_ns: int,
                 last_ns: int) -> GestureEmotion:
        distance = result.nearest_distance
        return GestureEmotion(
            header=Header(stamp=Time(nanoseconds=last_ns).to_msg(), frame_id=frame_id),
            window_start=Time(nanoseconds=first_ns).to_msg(), person_id=person,
            emotion=result.label or '', confidence=float(result.confidence),
            labels=list(result.labels), scores=[float(p) for p in result.probabilities],
            nearest_template=result.nearest_id or '',
            nearest_distance=float(distance) if math.isfinite(distance) else math.nan)

    # --- services --------------------------------------------------------------------------
    def on_record(self, request: RecordTemplate.Request,
                  response: RecordTemplate.Response) -> RecordTemplate.Response:
        """Record the next ``duration`` seconds of the person in view as a template."""
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
        with self._lock:
            if self._recording is not None:
                return fail(f'a recording ("{self._recording.label}") is already in progress')
            recording = self._recording = Recording(label, duration)
        self.get_logger().info(f'recording "{label}" for {duration:g} s')
        # The duration is on the images' clock; only a stream that stops ends it early.
        while not recording.done.wait(timeout=0.1):
            if time.monotonic() - recording.last_image > RECORD_GRACE_S:
                recording.abort(f'images stopped arriving: none for {RECORD_GRACE_S:g} s, '
                                f'{recording.images} images recorded')
        with self._lock:
            self._recording = None
        if recording.failure:
            return fail(recording.failure)
        if len(recording.skeletons) < MIN_RECORDED_SKELETONS:
            return fail(f'nobody visible during the recording: a person in '
                        f'{len(recording.skeletons)} of {recording.images} images, '
                        f'{MIN_RECORDED_SKELETONS} needed')
        positions, visibility = stack(recording.skeletons)
        try:
            template = Template.new(label, positions, visibility, recording.fps,
                                    source='camera')
            self.store.save(template)
        except (OSError, ValueError) as e:
            return fail(f'could not save the template in {self.store.directory}: {e}')
        used = self._wait_for_fit(self._request_refit(), timeout=60.0)
        with self._lock:
            reason = self._unused.get(template.id)
        response.success, response.template_id = True, template.id
        response.frames = template.frames
        response.message = (f'recorded "{label}": {template.frames} skeletons at '
                            f'{recording.fps:.1f} fps')
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
        (self.get_logger().info if deleted else self.get_logger().warning)(response.message)
        return response

    # --- diagnostics -----------------------------------------------------------------------
    def diagnostic_status(self) -> DiagnosticStatus:
        v = self.value
        with self._lock:
            classifier = self._classifier
            extra = {'labels': ', '.join(classifier.labels) if classifier else 'loading',
                     'templates not used': str(len(self._unused)),
                     'person': self.window.person_id or 'none',
                     'window (s)': f'{self.window.span_s:.2f}'}
        return diagnostic_status(self, self.stats.snapshot(), v('diagnostics_warn_ms'),
                                 v('diagnostics_error_ms'), v('diagnostics_stale_s'), extra)


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(GestureEmotionNode, args, threads=6))


if __name__ == '__main__':
    main()
