"""Node ``face_emotion``: faces in camera images and the emotion of each.

Subscribes ``image`` (sensor_msgs/Image); publishes ``face_emotions``
(emorec_ros/FaceEmotionArray) for every processed image, ``face_debug_image`` (annotated) while
someone subscribes to it, and ``/diagnostics``. Parameters: see config/emorec.yaml.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image, RegionOfInterest

from emorec_ros.face.classify import EmotionClassifier, ModelError
from emorec_ros.face.detect import make_detector
from emorec_ros.face.draw import draw_faces
from emorec_ros.face.pipeline import FaceEmotionPipeline, FaceEmotionResult
from emorec_ros.face.track import FaceTracker
from emorec_ros.image import bgr_to_image
from emorec_ros.msg import FaceEmotion, FaceEmotionArray
from emorec_ros.nodes.common import (DEBUG_IMAGE_QOS, LATEST_IMAGE_QOS, StartupError, declare, diagnostic_status,
                                     package_file, publish_diagnostics, read_image, record_processed, spin_node)
from emorec_ros.stats import ProcessingStats

DEFAULT_MODEL = 'models/face_emotion.tflite'


class FaceEmotionNode(Node):
    """Detects, tracks and classifies faces on the newest image; never queues a backlog."""

    def __init__(self, **kwargs) -> None:
        super().__init__('face_emotion', **kwargs)
        detector = declare(self, 'detector', 'mediapipe',
                           "face detector: 'mediapipe' (short range, faces within ~2 m), "
                           "'mediapipe_full' (up to ~5 m) or 'haar' (OpenCV cascade)")
        model_path = declare(self, 'model_path', '',
                             f"emotion model (.tflite with its .json card beside it); '' = the packaged "
                             f'{DEFAULT_MODEL}')
        min_confidence = declare(self, 'detection_confidence', 0.5,
                                 'minimum face detector confidence', 0.0, 1.0)
        margin = declare(self, 'face_margin', 0.2, 'extra border around a face box in the crop handed to '
                         'the classifier, as a share of the box size', 0.0, 1.0)
        max_faces = declare(self, 'max_faces', 10, 'most faces classified per image (most confident first)',
                            1, 100)
        min_face_size = declare(self, 'min_face_size', 24, 'smallest face (pixels, shorter box side) to '
                                'classify', 1, 4096)
        smoothing = declare(self, 'smoothing', 0.5, 'weight of the past in the per-face moving average of '
                            'emotion scores (0 = none)', 0.0, 0.99)
        iou = declare(self, 'track_iou_threshold', 0.3, 'box overlap (IoU) needed to continue a face track',
                      0.01, 1.0)
        max_missed = declare(self, 'track_max_missed', 5, 'images a face may go unseen before its track '
                             'ends and its id is retired', 0, 1000)
        self.max_image_pixels = declare(self, 'max_image_pixels', 4096 * 4096,
                                        'larger images are rejected (guards memory and time)', 1, 1 << 28)
        self.warn_ms = declare(self, 'diagnostics_warn_ms', 30.0,
                               'processing time (p95, ms) above which diagnostics warn', 0.0, 10000.0)
        self.error_ms = declare(self, 'diagnostics_error_ms', 100.0,
                                'processing time (p95, ms) above which diagnostics report an error', 0.0, 10000.0)
        self.stale_s = declare(self, 'diagnostics_stale_s', 5.0,
                               'seconds without an image before diagnostics warn', 0.0, 3600.0)

        path = Path(model_path) if model_path else package_file(DEFAULT_MODEL)
        try:
            classifier = EmotionClassifier(path)
        except ModelError as e:
            self.get_logger().fatal(f'{e}. The package ships {DEFAULT_MODEL} with its card; set model_path to '
                                    'a model trained with `python -m emorec_ros.cli.train_face` or reinstall '
                                    'the package.')
            raise StartupError(str(e)) from e
        try:
            self.pipeline = FaceEmotionPipeline(
                make_detector(detector, min_confidence), classifier,
                FaceTracker(iou_threshold=iou, max_missed=max_missed, smoothing=smoothing),
                margin=margin, max_faces=max_faces, min_face_size=min_face_size)
        except ValueError as e:
            self.get_logger().fatal(f'bad parameter: {e}')
            raise StartupError(str(e)) from e

        self.stats = ProcessingStats()
        self.faces_seen = 0
        self.publisher = self.create_publisher(FaceEmotionArray, 'face_emotions', 10)
        self.debug_publisher = self.create_publisher(Image, 'face_debug_image', DEBUG_IMAGE_QOS)
        self.diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.subscription = self.create_subscription(Image, 'image', self.on_image, LATEST_IMAGE_QOS)
        self.create_timer(1.0, self.publish_diagnostics)
        self.get_logger().info(f'classifying faces with {path.name} ({", ".join(classifier.labels)}), '
                               f'detector {detector}')

    def on_image(self, msg: Image) -> None:
        start = time.perf_counter()
        bgr = read_image(self, msg, self.max_image_pixels, self.stats)
        if bgr is None:
            return
        faces = self.pipeline.process(bgr)
        out = FaceEmotionArray(header=msg.header, faces=[self._face_msg(f) for f in faces])
        self.publisher.publish(out)
        if self.debug_publisher.get_subscription_count() > 0:
            self.debug_publisher.publish(bgr_to_image(draw_faces(bgr, faces), msg.header))
        self.faces_seen += len(faces)
        record_processed(self, self.stats, start, Time.from_msg(msg.header.stamp))

    @staticmethod
    def _face_msg(face: FaceEmotionResult) -> FaceEmotion:
        b = face.box
        return FaceEmotion(
            id=face.track_id,
            roi=RegionOfInterest(x_offset=b.x, y_offset=b.y, width=b.width, height=b.height, do_rectify=False),
            detection_confidence=float(b.score), emotion=face.emotion, confidence=face.confidence,
            labels=list(face.labels), scores=[float(s) for s in face.scores])

    def publish_diagnostics(self) -> None:
        status = diagnostic_status(self, self.stats.snapshot(), self.warn_ms, self.error_ms, self.stale_s,
                                   {'faces classified': str(self.faces_seen)})
        publish_diagnostics(self, self.diagnostics, status)

    def destroy_node(self) -> None:
        self.pipeline.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    sys.exit(spin_node(FaceEmotionNode, args))


if __name__ == '__main__':
    main()
