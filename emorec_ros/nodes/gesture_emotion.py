"""Node ``gesture_emotion``: what a person's body language says, from camera images.

Subscribes ``image``; estimates the person's pose in every processed image, keeps the last
``window_s`` seconds of skeletons and, ``publish_rate`` times a second once that window is full,
publishes ``gesture_emotion`` (emorec_ros/GestureEmotion): DTW against the recorded gesture
templates, then logistic regression over the per-label distances. ``gesture_debug_image`` (the
skeleton and the verdict) is published while someone subscribes; ``/diagnostics`` once a second.

Services: ``record_template`` (record the next seconds of the person as a template with a label),
``list_templates``, ``delete_template``. Recording does not block images or other calls.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from emorec_ros.gesture import dtw
from emorec_ros.gesture.classify import WINDOW_S, GestureClassifier
from emorec_ros.gesture.draw import draw_skeleton
from emorec_ros.gesture.pose import PoseEstimator
from emorec_ros.gesture.skeleton import stack
from emorec_ros.gesture.store import TemplateStore, default_directory
from emorec_ros.gesture.template import Template, validate_id, validate_label
from emorec_ros.gesture.window import PersonWindow, Recording
from emorec_ros.image import bgr_to_image
from emorec_ros.msg import GestureEmotion
from emorec_ros.nodes.common import (DEBUG_IMAGE_QOS, LATEST_IMAGE_QOS, declare, diagnostic_status, publish_diagnostics,
                                     read_image, record_processed, spin_node)
from emorec_ros.srv import DeleteTemplate, ListTemplates, RecordTemplate
from emorec_ros.stats import ProcessingStats

#: Fewest skeletons a recording needs to become a template.
MIN_RECORDED_SKELETONS = 10
#: Seconds a recording waits for images beyond its duration before it gives up.
RECORD_GRACE_S = 5.0


class GestureEmotionNode(Node):
    """Pose per image, a rolling window per person, DTW + logistic regression per window."""

    def __init__(self, **kwargs) -> None:
        super().__init__('gesture_emotion', **kwargs)
        template_dir = declare(self, 'template_dir', '', "gesture template folder; '' = "
                               "$ROS_HOME/emorec/templates (~/.ros/emorec/templates)")
        self.window_s = declare(self, 'window_s', WINDOW_S, 'seconds of motion classified at a time', 0.5, 10.0)
        publish_rate = declare(self, 'publish_rate', 4.0, 'gesture_emotion messages per second once the '
                               'window is full', 0.1, 30.0)
        lost_s = declare(self, 'person_lost_s', 1.0, 'seconds without a skeleton after which the person '
                         'is gone: the window empties and the next person gets a new id', 0.1, 60.0)
        self.max_record_s = declare(self, 'max_record_duration', 30.0, 'longest template recording (s)',
                                    0.5, 600.0)
        detection = declare(self, 'pose_detection_confidence', 0.5, 'MediaPipe pose detection confidence',
                            0.0, 1.0)
        tracking = declare(self, 'pose_tracking_confidence', 0.5, 'MediaPipe pose tracking confidence',
                           0.0, 1.0)
        self.max_image_pixels = declare(self, 'max_image_pixels', 4096 * 4096,
                                        'larger images are rejected (guards memory and time)', 1, 1 << 28)
        self.warn_ms = declare(self, 'diagnostics_warn_ms', 33.0,
                               'pose time per image (p95, ms) above which diagnostics warn', 0.0, 10000.0)
        self.error_ms = declare(self, 'diagnostics_error_ms', 100.0,
                                'pose time per image (p95, ms) above which diagnostics report an error',
                                0.0, 10000.0)
        self.stale_s = declare(self, 'diagnostics_stale_s', 5.0,
                               'seconds without an image before diagnostics warn', 0.0, 3600.0)

        self.store = TemplateStore(Path(template_dir) if template_dir else default_directory())
        self.pose = PoseEstimator(video=True, min_detection_confidence=detection,
                                  min_tracking_confidence=tracking)
        self.window = PersonWindow(self.window_s, lost_s)
        self.stats = ProcessingStats()
        self._lock = threading.Lock()             # window, recording, classifier, last result
        self._refit_lock = threading.Lock()       # one store change and refit at a time
        self._recording: Recording | None = None
        self._classifier: GestureClassifier | None = None  # None until templates are loaded
        self._templates: list[Template] = []
        self._caption = ''
        self._frame_id = ''  # of the newest image: the camera the verdicts are about

        image_group = MutuallyExclusiveCallbackGroup()
        timer_group = MutuallyExclusiveCallbackGroup()
        service_group = ReentrantCallbackGroup()
        self.publisher = self.create_publisher(GestureEmotion, 'gesture_emotion', 10)
        self.debug_publisher = self.create_publisher(Image, 'gesture_debug_image', DEBUG_IMAGE_QOS)
        self.diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(Image, 'image', self.on_image, LATEST_IMAGE_QOS, callback_group=image_group)
        self.create_timer(1.0 / publish_rate, self.classify_window, callback_group=timer_group)
        self.create_timer(1.0, self.publish_diagnostics, callback_group=timer_group)
        self.create_service(RecordTemplate, 'record_template', self.on_record, callback_group=service_group)
        self.create_service(ListTemplates, 'list_templates', self.on_list, callback_group=service_group)
        self.create_service(DeleteTemplate, 'delete_template', self.on_delete, callback_group=service_group)
        # tslearn compiles its DTW on first use (10-15 s): do that and the first fit off the callbacks.
        threading.Thread(target=self._start_classifier, daemon=True).start()

    def _start_classifier(self) -> None:
        dtw.warm_up()
        self._refit()
        labels = ', '.join(self._classifier.labels) or 'none yet: record some with the record_template service'
        self.get_logger().info(f'gesture templates from {self.store.directory}: {len(self._templates)} ({labels})')

    def _refit(self) -> list[str]:
        """Reload the store and fit a new classifier on it; returns what was left out and why."""
        templates, skipped_files = self.store.load()
        notes = [f'{f.path.name}: {f.reason}' for f in skipped_files]
        classifier = GestureClassifier(window_s=self.window_s)
        notes += [f'template {tid}: {reason}' for tid, reason in classifier.fit(templates)]
        for note in notes:
            self.get_logger().warning(f'skipped {note}')
        with self._lock:
            self._classifier, self._templates = classifier, templates
        return notes

    # --- images -----------------------------------------------------------------------------
    def on_image(self, msg: Image) -> None:
        start = time.perf_counter()
        bgr = read_image(self, msg, self.max_image_pixels, self.stats)
        if bgr is None:
            return
        skeleton = self.pose.estimate(bgr)
        stamp = Time.from_msg(msg.header.stamp)
        seconds = (stamp if stamp.nanoseconds else self.get_clock().now()).nanoseconds * 1e-9
        with self._lock:
            self.window.add(seconds, skeleton)
            self._frame_id = msg.header.frame_id
            recording = self._recording
            if recording is not None:
                recording.add(seconds, skeleton)
                caption = f'recording "{recording.label}" ({len(recording.skeletons)} skeletons)'
            else:
                caption = self._caption if skeleton is not None else 'nobody in view'
        if self.debug_publisher.get_subscription_count() > 0:
            self.debug_publisher.publish(bgr_to_image(draw_skeleton(bgr, skeleton, caption), msg.header))
        record_processed(self, self.stats, start, stamp)

    def classify_window(self) -> None:
        with self._lock:
            classifier = self._classifier
            if classifier is None or not self.window.is_full():
                return
            person, frame_id = self.window.person_id, self._frame_id
            first, last, positions, visibility, fps = self.window.snapshot()
        try:
            result = classifier.classify(positions, visibility, fps)
        except ValueError as e:  # e.g. no shoulders in the window
            self.get_logger().warning(f'window not classified: {e}', throttle_duration_sec=10.0)
            return
        msg = GestureEmotion(header=Header(stamp=_time_msg(last), frame_id=frame_id),
                             window_start=_time_msg(first),
                             person_id=person, emotion=result.label or '', confidence=float(result.confidence),
                             labels=list(result.labels), scores=[float(p) for p in result.probabilities],
                             nearest_template=result.nearest_id or '',
                             nearest_distance=float(min(result.nearest_distance, 3.4e38)))
        self.publisher.publish(msg)
        with self._lock:
            self._caption = (f'{person}: {result.label} {result.confidence:.2f} ({result.method})' if result.label
                             else f'{person}: no gesture templates')

    # --- services ---------------------------------------------------------------------------
    def on_record(self, request: RecordTemplate.Request, response: RecordTemplate.Response):
        def fail(message: str) -> RecordTemplate.Response:
            self.get_logger().warning(f'record_template refused: {message}')
            response.success, response.message = False, message
            return response

        try:
            label = validate_label(request.label)
        except ValueError as e:
            return fail(str(e))
        duration = float(request.duration)
        if not (math.isfinite(duration) and 0 < duration <= self.max_record_s):
            return fail(f'duration must be > 0 and <= max_record_duration ({self.max_record_s:g} s), '
                        f'got {duration:g}')
        with self._lock:
            if self._recording is not None:
                return fail(f'a recording ("{self._recording.label}") is already in progress')
            recording = self._recording = Recording(label, duration)
        self.get_logger().info(f'recording "{label}" for {duration:g} s')
        finished = recording.done.wait(timeout=duration + RECORD_GRACE_S)
        with self._lock:
            self._recording = None
        if not finished:
            return fail(f'images stopped arriving: {recording.images} images in {duration + RECORD_GRACE_S:g} s')
        if len(recording.skeletons) < MIN_RECORDED_SKELETONS:
            return fail(f'nobody visible during the recording: a person in {len(recording.skeletons)} of '
                        f'{recording.images} images, {MIN_RECORDED_SKELETONS} needed')
        positions, visibility = stack(recording.skeletons)
        template = Template.new(label, positions, visibility, recording.fps, source='camera')
        with self._refit_lock:
            try:
                self.store.save(template)
            except OSError as e:
                return fail(f'could not save the template in {self.store.directory}: {e}')
            notes = self._refit()
        mine = [n for n in notes if template.id in n]
        response.success, response.template_id, response.frames = not mine, template.id, template.frames
        response.message = (f'recorded "{label}": {template.frames} skeletons at {recording.fps:.1f} fps'
                             + (f'; saved but not used: {mine[0]}' if mine else ''))
        self.get_logger().info(response.message)
        return response

    def on_list(self, request: ListTemplates.Request, response: ListTemplates.Response):
        with self._lock:
            templates = list(self._templates)
        response.template_ids = [t.id for t in templates]
        response.labels = [t.label for t in templates]
        response.frames = [t.frames for t in templates]
        return response

    def on_delete(self, request: DeleteTemplate.Request, response: DeleteTemplate.Response):
        try:
            template_id = validate_id(request.template_id)
        except ValueError as e:
            response.success, response.message = False, str(e)
            return response
        with self._refit_lock:
            try:
                deleted = self.store.delete(template_id)
            except OSError as e:
                response.success, response.message = False, f'could not delete {template_id}: {e}'
                return response
            if deleted:
                self._refit()
        response.success = deleted
        response.message = f'deleted {template_id}' if deleted else f'no template with id {template_id}'
        self.get_logger().info(response.message) if deleted else self.get_logger().warning(response.message)
        return response

    # --- diagnostics ------------------------------------------------------------------------
    def publish_diagnostics(self) -> None:
        with self._lock:
            labels = ', '.join(self._classifier.labels) if self._classifier else 'loading'
            extra = {'templates': str(len(self._templates)), 'labels': labels,
                     'person': self.window.person_id or 'none', 'window (s)': f'{self.window.span_s:.2f}'}
        status = diagnostic_status(self, self.stats.snapshot(), self.warn_ms, self.error_ms, self.stale_s, extra)
        publish_diagnostics(self, self.diagnostics, status)

    def destroy_node(self) -> None:
        self.pose.close()
        super().destroy_node()


def _time_msg(seconds: float) -> TimeMsg:
    return Time(nanoseconds=round(seconds * 1e9)).to_msg()


def main(args: list[str] | None = None) -> None:
    sys.exit(spin_node(GestureEmotionNode, args, executor=lambda: MultiThreadedExecutor(num_threads=4)))


if __name__ == '__main__':
    main()
