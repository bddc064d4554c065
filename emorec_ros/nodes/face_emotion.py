"""
Node ``face_emotion``: faces in camera images and the emotion of each (a lifecycle node).

Subscribes ``image`` (sensor_msgs/Image; or ``<image>/compressed`` with
``image_transport: compressed``); publishes ``face_emotions`` (emorec_ros/FaceEmotionArray) for
every processed image, ``~/face_debug_image`` (annotated; with ``explain``, each face's class
activation map) while someone subscribes to it, and ``/diagnostics``. Configure loads the
detector and the model; activate subscribes. Parameters: see config/emorec.yaml.
"""
from __future__ import annotations

from pathlib import Path
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from emorec_ros.face.classify import EmotionClassifier, ModelError
from emorec_ros.face.detect import DETECTOR_NAMES, make_detector
from emorec_ros.face.draw import draw_faces
from emorec_ros.face.pipeline import FaceEmotionPipeline, FaceEmotionResult
from emorec_ros.face.track import FaceTracker
from emorec_ros.image import bgr_to_image
from emorec_ros.msg import FaceEmotion, FaceEmotionArray
from emorec_ros.nodes.common import (check_diagnostics_thresholds, DEBUG_IMAGE_QOS,
                                     declare_image_parameters, diagnostic_status, package_file,
                                     read_image, record_processed, subscribe_images)
from emorec_ros.nodes.managed import ManagedNode, run_node, StartupError
from emorec_ros.stats import ProcessingStats
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest

DEFAULT_MODEL = 'models/face_emotion.tflite'


class FaceEmotionNode(ManagedNode):
    """Detect, track and classify faces on the newest image; never queue a backlog."""

    NAME = 'face_emotion'
    DIAGNOSTICS = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.detector_name = self.declare(
            'detector', 'blazeface', "face detector: 'blazeface' (MediaPipe's short-range model, "
            "faces within ~2 m, run by LiteRT), 'mediapipe' (the same in MediaPipe's graph, "
            "slower), 'mediapipe_full' (up to ~5 m) or 'haar' (OpenCV cascade)", read_only=True,
            check=lambda v: None if v in DETECTOR_NAMES else f'use one of {DETECTOR_NAMES}')
        self.model_path = self.declare(
            'model_path', '', "emotion model (.tflite with its .json card beside it); '' = the "
            f'packaged {DEFAULT_MODEL}', read_only=True)
        self.classifier_threads = self.declare(
            'classifier_threads', 1, 'CPU threads that run the emotion model on each face '
            '(LiteRT); 2 or more cut its time on a multi-core CPU', 1, 16, read_only=True)
        self.declare('detection_confidence', 0.5, 'minimum face detector confidence', 0.0, 1.0)
        self.declare('face_margin', 0.2, 'extra border around a face box in the crop handed to '
                     'the classifier, as a share of the box size', 0.0, 1.0)
        self.declare('max_faces', 10, 'most faces classified per image (most confident first)',
                     1, 100)
        self.declare('min_face_size', 24, 'smallest face (pixels, shorter box side) to classify',
                     1, 4096)
        self.declare('smoothing', 0.5, 'weight of the past in the per-face moving average of '
                     'emotion scores (0 = none)', 0.0, 0.99)
        self.declare('track_iou_threshold', 0.3, 'box overlap (IoU) needed to continue a face '
                     'track', 0.01, 1.0)
        self.declare('track_max_missed', 5, 'images a face may go unseen before its track ends '
                     'and its id is retired', 0, 1000)
        self.declare('explain', False, 'overlay on ~/face_debug_image where in each face the '
                     "winning emotion's evidence lies (class activation map); costs nothing "
                     'while off or while nobody subscribes to the debug image')
        self.transport = declare_image_parameters(self, 30.0, 'processing time')
        self.pipeline: FaceEmotionPipeline | None = None
        self._processing = threading.Lock()  # one image at a time; the pipeline outlives none
        self.stats = ProcessingStats()
        self.faces_seen = 0
        self.publisher = self.create_lifecycle_publisher(FaceEmotionArray, 'face_emotions', 10)
        self.debug_publisher = self.create_lifecycle_publisher(Image, '~/face_debug_image',
                                                               DEBUG_IMAGE_QOS)
        self._subscription = None
        self.declared_all()

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self) -> None:
        """Load the model and the detector."""
        path = Path(self.model_path) if self.model_path else package_file(DEFAULT_MODEL)
        try:
            classifier = EmotionClassifier(path, self.classifier_threads)
        except ModelError as e:
            self.get_logger().fatal(
                f'{e}. The package ships {DEFAULT_MODEL} with its card; set model_path to a '
                'model trained with `python -m emorec_ros.cli.train_face` or reinstall the '
                'package.')
            raise StartupError(str(e)) from e
        v = self.value
        try:
            detector = make_detector(self.detector_name, v('detection_confidence'))
        except (ValueError, RuntimeError) as e:
            self.get_logger().fatal(f'detector {self.detector_name!r}: {e}')
            raise StartupError(str(e)) from e
        tracker = FaceTracker(iou_threshold=v('track_iou_threshold'),
                              max_missed=v('track_max_missed'), smoothing=v('smoothing'))
        self.pipeline = FaceEmotionPipeline(
            detector, classifier, tracker, margin=v('face_margin'), max_faces=v('max_faces'),
            min_face_size=v('min_face_size'))
        self.get_logger().info(f'classifying faces with {path.name} '
                               f'({", ".join(classifier.labels)}, {self.classifier_threads} '
                               f'thread(s)), detector '
                               f'{self.detector_name}')
        if v('explain') and not classifier.explains:
            self.get_logger().warning(f'explain is on, but {path.name} has no class activation '
                                      'maps: the debug image shows no explanations')

    def activate(self) -> None:
        """Subscribe to images."""
        self._subscription = subscribe_images(self, self.transport, self.on_image, self.stats)

    def deactivate(self) -> None:
        """Stop taking images; return once the image being processed is done."""
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        with self._processing:
            pass

    def cleanup(self) -> None:
        """Close the detector and forget the model and the face tracks."""
        with self._processing:
            if self.pipeline is not None:
                self.pipeline.close()
                self.pipeline = None

    # --- parameters ------------------------------------------------------------------------
    def check_parameters(self, values: dict[str, Any]) -> str | None:
        pipeline = self.pipeline
        if values.get('explain') and pipeline is not None and not pipeline.classifier.explains:
            return 'explain: the loaded model has no class activation maps'
        return check_diagnostics_thresholds(values, self.value)

    def apply_parameters(self, values: dict[str, Any]) -> None:
        with self._processing:
            pipeline = self.pipeline
            if pipeline is None:
                return  # configure reads the parameters
            tracker = pipeline.tracker
            for name, value in values.items():
                if name == 'face_margin':
                    pipeline.margin = value
                elif name in ('max_faces', 'min_face_size'):
                    setattr(pipeline, name, value)
                elif name == 'smoothing':
                    tracker.smoothing = value
                elif name == 'track_iou_threshold':
                    tracker.iou_threshold = value
                elif name == 'track_max_missed':
                    tracker.max_missed = value
                elif name == 'detection_confidence':
                    pipeline.detector.close()
                    pipeline.detector = make_detector(self.detector_name, value)

    # --- images ----------------------------------------------------------------------------
    def on_image(self, msg: Image | CompressedImage) -> None:
        start = time.perf_counter()
        bgr = read_image(self, msg, self.value('max_image_pixels'), self.stats)
        if bgr is None:
            return
        watched = self.debug_publisher.get_subscription_count() > 0
        with self._processing:
            if self.pipeline is None:
                return
            faces = self.pipeline.process(bgr, explain=watched and self.value('explain'))
        self.publisher.publish(
            FaceEmotionArray(header=msg.header, faces=[self._face_msg(f) for f in faces]))
        if watched:
            self.debug_publisher.publish(bgr_to_image(draw_faces(bgr, faces), msg.header))
        self.faces_seen += len(faces)
        record_processed(self, self.stats, start, Time.from_msg(msg.header.stamp))

    @staticmethod
    def _face_msg(face: FaceEmotionResult) -> FaceEmotion:
        b = face.box
        return FaceEmotion(
            id=face.track_id,
            roi=RegionOfInterest(x_offset=b.x, y_offset=b.y, width=b.width, height=b.height,
                                 do_rectify=False),
            detection_confidence=float(b.score), emotion=face.emotion,
            confidence=face.confidence, labels=list(face.labels),
            scores=[float(s) for s in face.scores])

    def diagnostic_status(self) -> DiagnosticStatus:
        v = self.value
        return diagnostic_status(self, self.stats.snapshot(), v('diagnostics_warn_ms'),
                                 v('diagnostics_error_ms'), v('diagnostics_stale_s'),
                                 {'faces classified': str(self.faces_seen)})


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(FaceEmotionNode, args))


if __name__ == '__main__':
    main()
