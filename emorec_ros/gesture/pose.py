"""
Body pose on BGR frames with MediaPipe Pose (BlazePose), as Skeletons in image pixels.

mediapipe 0.10.21 bundles the model of ``model_complexity=1`` only (0 and 2 would be downloaded,
which fails offline). Neither ROS nor TensorFlow is imported here.
"""
from __future__ import annotations

import cv2
from emorec_ros.gesture.skeleton import JOINTS, Skeleton
from emorec_ros.mediapipe_import import import_solution
import numpy as np

#: MediaPipe Pose landmark indices averaged into each Skeleton joint: 'head' is the midpoint of
#: the mouth corners (9, 10), at the height of the BVH Head joint (the skull base).
MEDIAPIPE_LANDMARKS: dict[str, tuple[int, ...]] = {
    'head': (9, 10),
    'left_shoulder': (11,), 'right_shoulder': (12,), 'left_elbow': (13,), 'right_elbow': (14,),
    'left_wrist': (15,), 'right_wrist': (16,), 'left_hip': (23,), 'right_hip': (24,),
    'left_knee': (25,), 'right_knee': (26,), 'left_ankle': (27,), 'right_ankle': (28,),
}


class PoseEstimator:
    """
    One person's skeleton per frame.

    ``video=True`` tracks the person from frame to frame (faster, smoothed; frames must come in
    order from one stream); ``video=False`` detects afresh in every frame (still images).
    Visibilities are MediaPipe's: the likelihood that a landmark is in the image and not occluded.
    """

    def __init__(self, video: bool = True, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        pose = import_solution('pose')
        self._pose = pose.Pose(static_image_mode=not video, model_complexity=1,
                               min_detection_confidence=min_detection_confidence,
                               min_tracking_confidence=min_tracking_confidence)

    def estimate(self, bgr: np.ndarray) -> Skeleton | None:
        """
        Find the skeleton of the person in a uint8 (H, W, 3) BGR image.

        The skeleton is 2-D, in pixels of this image; None when MediaPipe finds nobody.
        """
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ValueError(f'expected a uint8 (H, W, 3) BGR image, got {bgr.dtype} {bgr.shape}')
        height, width = bgr.shape[:2]
        result = self._pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if result.pose_landmarks is None:
            return None
        landmarks = result.pose_landmarks.landmark
        points = np.array([[lm.x * width, lm.y * height, lm.visibility] for lm in landmarks])
        joints = np.array([points[list(MEDIAPIPE_LANDMARKS[name])].mean(axis=0)
                           for name in JOINTS])
        return Skeleton(joints[:, :2], joints[:, 2])

    def close(self) -> None:
        """Release MediaPipe's graph; the estimator must not be used afterwards."""
        self._pose.close()
