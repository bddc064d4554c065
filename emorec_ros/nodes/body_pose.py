"""
Node ``body_pose``: the skeleton of the person in camera images (a lifecycle node).

Subscribes ``image`` (sensor_msgs/Image; or ``<image>/compressed`` with
``image_transport: compressed``) and ``gesture_emotion`` (the verdicts, for the debug image's
caption); publishes ``skeletons`` (emorec_ros/SkeletonArray) for every processed image, with an
empty list when nobody is seen, ``~/pose_debug_image`` (skeleton and verdict) while someone
subscribes to it, and ``/diagnostics``. Configure loads MediaPipe Pose; activate subscribes.
Parameters: see config/emorec.yaml.
"""
from __future__ import annotations

from collections import OrderedDict
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from emorec_ros.gesture.draw import draw_skeleton
from emorec_ros.gesture.pose import PoseEstimator
from emorec_ros.gesture.window import NS
from emorec_ros.image import bgr_to_image
from emorec_ros.msg import GestureEmotion, SkeletonArray
from emorec_ros.nodes.common import (check_diagnostics_thresholds, DEBUG_IMAGE_QOS,
                                     declare_image_parameters, diagnostic_status, read_image,
                                     record_processed, subscribe_images)
from emorec_ros.nodes.managed import ManagedNode, run_node
from emorec_ros.nodes.skeleton_msgs import skeleton_array
from emorec_ros.stats import ProcessingStats
from rclpy.qos import QoSProfile
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image

#: Skeletons are small and the gesture node must not lose any: reliable, depth 10.
SKELETONS_QOS = QoSProfile(depth=10)

#: Verdicts kept for debug-image captions: those of the most recent people.
MAX_VERDICTS = 16


class PersonIds:
    """
    Ids of the person in view, on the images' clock: 'person1', 'person2', ...

    The id is kept while the person is seen; after ``lost_s`` seconds (of image stamps) without
    a skeleton, or when time goes back (a looped video, a bag played again), the next person
    seen gets a new id.
    """

    def __init__(self, lost_s: float) -> None:
        self.lost_s = lost_s
        self.current = ''
        self._people = 0
        self._last_seen: int | None = None
        self._newest: int | None = None

    def update(self, stamp_ns: int, seen: bool) -> tuple[str, str | None]:
        """
        Take one image's stamp (ns) and whether a person was seen in it.

        Return the person's id ('' when nobody was seen) and a note when time went back
        (else None).
        """
        note = None
        if self._newest is not None and stamp_ns < self._newest:
            note = (f'time went back by {(self._newest - stamp_ns) / NS:.3f} s: the next '
                    'person gets a new id')
            self.current, self._last_seen = '', None
        self._newest = stamp_ns
        if self._last_seen is not None and stamp_ns - self._last_seen > self.lost_s * NS:
            self.current, self._last_seen = '', None
        if not seen:
            return '', note
        if not self.current:
            self._people += 1
            self.current = f'person{self._people}'
        self._last_seen = stamp_ns
        return self.current, note


class BodyPoseNode(ManagedNode):
    """MediaPipe Pose on the newest image, one person with a stable id; never queue a backlog."""

    NAME = 'body_pose'
    DIAGNOSTICS = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.declare('pose_detection_confidence', 0.5, 'minimum MediaPipe pose detection '
                     'confidence to find a person (a change reloads the estimator)', 0.0, 1.0)
        self.declare('pose_tracking_confidence', 0.5, 'minimum MediaPipe landmark tracking '
                     'confidence to keep following the person, else the next image detects '
                     'afresh (a change reloads the estimator)', 0.0, 1.0)
        self.declare('person_lost_s', 1.0, 'seconds of image stamps without a skeleton after '
                     'which the person is gone: the next person seen gets a new id', 0.1, 60.0)
        self.transport = declare_image_parameters(self, 33.0, 'processing time')
        self.pose: PoseEstimator | None = None
        self.people = PersonIds(self.value('person_lost_s'))
        self._processing = threading.Lock()  # one image at a time; the estimator outlives none
        self._verdicts: OrderedDict[str, str] = OrderedDict()  # person id -> caption
        self._verdicts_lock = threading.Lock()
        self.stats = ProcessingStats()
        self.skeletons_published = 0
        self.publisher = self.create_lifecycle_publisher(SkeletonArray, 'skeletons',
                                                         SKELETONS_QOS)
        self.debug_publisher = self.create_lifecycle_publisher(Image, '~/pose_debug_image',
                                                               DEBUG_IMAGE_QOS)
        self._subscription = None
        self._verdict_subscription = None
        self.declared_all()

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self) -> None:
        """Load MediaPipe Pose."""
        self.pose = self._make_pose()
        self.get_logger().info('estimating body pose with MediaPipe Pose (BlazePose, '
                               'model_complexity 1)')

    def _make_pose(self) -> PoseEstimator:
        return PoseEstimator(video=True,
                             min_detection_confidence=self.value('pose_detection_confidence'),
                             min_tracking_confidence=self.value('pose_tracking_confidence'))

    def activate(self) -> None:
        """Subscribe to images and to the verdicts."""
        self._verdict_subscription = self.create_subscription(
            GestureEmotion, 'gesture_emotion', self.on_verdict, 10)
        self._subscription = subscribe_images(self, self.transport, self.on_image, self.stats)

    def deactivate(self) -> None:
        """Stop taking images; return once the image being processed is done."""
        for subscription in (self._subscription, self._verdict_subscription):
            if subscription is not None:
                self.destroy_subscription(subscription)
        self._subscription = self._verdict_subscription = None
        with self._processing:
            pass

    def cleanup(self) -> None:
        """Close MediaPipe and forget the person and the verdicts."""
        with self._processing:
            if self.pose is not None:
                self.pose.close()
                self.pose = None
            self.people = PersonIds(self.value('person_lost_s'))
        with self._verdicts_lock:
            self._verdicts.clear()

    # --- parameters ------------------------------------------------------------------------
    def check_parameters(self, values: dict[str, Any]) -> str | None:
        return check_diagnostics_thresholds(values, self.value)

    def apply_parameters(self, values: dict[str, Any]) -> None:
        with self._processing:
            if 'person_lost_s' in values:
                self.people.lost_s = values['person_lost_s']
            if ({'pose_detection_confidence', 'pose_tracking_confidence'} & values.keys()
                    and self.pose is not None):
                self.pose.close()
                self.pose = self._make_pose()

    # --- messages --------------------------------------------------------------------------
    def on_verdict(self, msg: GestureEmotion) -> None:
        """Keep the person's latest verdict as the caption of their debug images."""
        if not msg.person_id:
            return
        caption = (f'{msg.person_id}: {msg.emotion} {msg.confidence:.2f}' if msg.emotion
                   else f'{msg.person_id}: no gesture templates')
        with self._verdicts_lock:
            self._verdicts[msg.person_id] = caption
            self._verdicts.move_to_end(msg.person_id)
            while len(self._verdicts) > MAX_VERDICTS:
                self._verdicts.popitem(last=False)

    def on_image(self, msg: Image | CompressedImage) -> None:
        start = time.perf_counter()
        bgr = read_image(self, msg, self.value('max_image_pixels'), self.stats)
        if bgr is None:
            return
        stamp = Time.from_msg(msg.header.stamp)
        # An unstamped image is as old as its arrival, for the person's id.
        stamp_ns = stamp.nanoseconds or self.get_clock().now().nanoseconds
        with self._processing:
            if self.pose is None:
                return
            skeleton = self.pose.estimate(bgr)
            person, note = self.people.update(stamp_ns, skeleton is not None)
        if note:
            self.get_logger().warning(note, throttle_duration_sec=5.0)
        people = [(person, skeleton)] if skeleton is not None else []
        self.publisher.publish(skeleton_array(msg.header, people))
        self.skeletons_published += len(people)
        if self.debug_publisher.get_subscription_count() > 0:
            with self._verdicts_lock:
                caption = self._verdicts.get(person, person) if person else 'nobody in view'
            self.debug_publisher.publish(
                bgr_to_image(draw_skeleton(bgr, skeleton, caption), msg.header))
        record_processed(self, self.stats, start, stamp)

    def diagnostic_status(self) -> DiagnosticStatus:
        v = self.value
        return diagnostic_status(self, self.stats.snapshot(), v('diagnostics_warn_ms'),
                                 v('diagnostics_error_ms'), v('diagnostics_stale_s'),
                                 {'skeletons published': str(self.skeletons_published),
                                  'person': self.people.current or 'none'})


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(BodyPoseNode, args))


if __name__ == '__main__':
    main()
